//! Chunks and their ledger: how a job's items are cut into numbered chunks
//! ([`chunk_items`]), which items of a chunk are settled ([`Settled`]), and what one
//! commit of a chunk records ([`ChunkCommit`]) in its ledger item (`JOB#<id>` /
//! `CHUNK#<n>`). The API (item report), the ports and the worker runtime share them.

mod cutting;
mod settled;

pub use cutting::{ChunkCutter, MAX_CHUNK_BYTES, chunk_items};
pub use settled::Settled;

use crate::domain::job::ItemError;

/// How a chunk's items ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub succeeded: u64,
    pub failed: u64,
    pub cancelled: u64,
}

/// A chunk's ledger item (`JOB#<id>` / `CHUNK#<n>`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChunkLedger {
    /// The chunk's items whose outcome is counted in the job.
    pub settled: Settled,
    /// Every item is settled, and the chunk is counted in the job's `chunks_done`.
    pub done: bool,
    /// Where the chunk's release-window slot went once it was done (`passed_to`).
    pub passed: Option<crate::domain::window::Passed>,
    /// The deferred jobs that pass woke (`woke`): a redelivery sends their plans again.
    pub woke: Vec<String>,
}

/// A failed item of a chunk: its position in the chunk and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemFailure {
    pub position: u32,
    pub reason: String,
}

/// What a chunk's ledger item says about each item, for the job's item report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChunkOutcomes {
    pub chunk: u64,
    /// Items whose outcome is counted; those neither failed nor cancelled succeeded.
    pub settled: Settled,
    pub failures: Vec<ItemFailure>,
    /// Cancelled items, by position.
    pub cancelled: Vec<u32>,
}

/// An item's outcome as a job's item report gives it (`GET /jobs/{id}/items`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    Failed,
    Cancelled,
    /// Not settled yet (the job is still running).
    Pending,
}

impl Outcome {
    /// `succeeded`, `failed`, `cancelled` or `pending`.
    pub fn parse(value: &str) -> Option<Outcome> {
        match value {
            "succeeded" => Some(Outcome::Succeeded),
            "failed" => Some(Outcome::Failed),
            "cancelled" => Some(Outcome::Cancelled),
            "pending" => Some(Outcome::Pending),
            _ => None,
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Cancelled => "cancelled",
            Outcome::Pending => "pending",
        }
    }
}

/// The outcome of item `i` of a chunk whose ledger item is `ledger`, and why it failed;
/// `unrun` when the chunk has no ledger item (pending, or cancelled when the job was
/// cancelled before the chunk ran).
pub fn outcome_of(
    ledger: Option<&ChunkOutcomes>,
    i: usize,
    unrun: Outcome,
) -> (Outcome, Option<String>) {
    match ledger {
        Some(l) => match l.failures.iter().find(|f| f.position as usize == i) {
            Some(f) => (Outcome::Failed, Some(f.reason.clone())),
            None if l.cancelled.contains(&(i as u32)) => (Outcome::Cancelled, None),
            None if l.settled.contains(i) => (Outcome::Succeeded, None),
            None => (Outcome::Pending, None),
        },
        None => (unrun, None),
    }
}

/// Chunks, and the items in them, that a cancelled job's chain will not run
/// ([`ChunkCommit::chain_rest`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChainRest {
    pub chunks: u64,
    pub items: u64,
}

/// The chunks after `chunk` in its chain (`chunk + w`, `chunk + 2w`, …) of a job of
/// `total` chunks.
pub fn chain_after(chunk: u64, w: u64, total: u64) -> impl Iterator<Item = u64> {
    (1..)
        .map(move |k: u64| chunk.saturating_add(k.saturating_mul(w.max(1))))
        .take_while(move |n| *n < total)
}

/// One commit of a chunk: the outcomes settled since its previous commit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChunkCommit {
    /// The ledger's `settled` as last read; `None` when the chunk has no ledger item yet.
    pub before: Option<Settled>,
    /// `before` plus this commit's items.
    pub after: Settled,
    /// This commit's items only.
    pub tally: Tally,
    /// This commit's failed items, for the ledger.
    pub failures: Vec<ItemFailure>,
    /// This commit's cancelled items, by position, for the ledger.
    pub cancelled: Vec<u32>,
    /// What to add to the job's error sample (the caller keeps it within its bound).
    pub errors: Vec<ItemError>,
    /// The commit settles the chunk's last items: the job's `chunks_done` grows by one.
    pub done: bool,
    /// With `done`, when the job is cancelled: the rest of the chunk's chain (the chunks
    /// `chunk + W`, `chunk + 2W`, … that its slot would have released one after the other),
    /// which will not run. They count as done with it and their items as cancelled, on the
    /// job only (they have no ledger item: the item report shows them cancelled), so a
    /// cancelled job ends in one commit per chain, whatever its size.
    pub chain_rest: ChainRest,
    /// When the chunk was last slowed by a downstream limit (the job's `paced_at`).
    pub paced_at: Option<String>,
    /// With `done`: where the chunk's release-window slot goes, written in the same
    /// transaction (`crate::ports::WindowStore::pass` says what it writes and when it is
    /// refused: then the commit is refused too).
    pub pass: Option<(
        crate::domain::window::WindowKey,
        crate::domain::window::SlotPass,
    )>,
}
