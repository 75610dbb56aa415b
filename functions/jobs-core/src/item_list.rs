//! A job's item list read back in chunk order, each chunk with its ledger item: what the
//! exporter writes into a report, and what the plan of a file job's retry reads its items
//! from. Memory: one window of [`INDEX_WINDOW`] index entries (16 bytes each), one segment
//! of the item list (about [`crate::domain::file::SEGMENT_BYTES`]) and one page of
//! [`LEDGER_PAGE`] ledger items, whatever the job's size.

use std::collections::VecDeque;

use serde_json::Value;

use crate::domain::chunk::ChunkOutcomes;
use crate::domain::file::{
    ChunkStart, INDEX_ENTRY_BYTES, ReadError, index_key, parse_lines, segment_key,
};
use crate::error::StoreError;
use crate::ports::{InputStore, ProgressStore};

/// Ledger items read per `Query` (each holds a chunk's failures: at most a few kB).
pub const LEDGER_PAGE: u32 = 100;
/// Chunks of a file job whose index entries one ranged `GetObject` brings.
pub const INDEX_WINDOW: u64 = 1_000;

/// A job's ledger items read in chunk order, a page at a time.
pub struct Ledgers<'a, S> {
    store: &'a S,
    job_id: &'a str,
    next: u64,
    buffer: VecDeque<ChunkOutcomes>,
    more: bool,
}

impl<'a, S: ProgressStore> Ledgers<'a, S> {
    /// `planned`: whether the job has chunks (an unplanned one has no ledger item).
    pub fn new(store: &'a S, job_id: &'a str, planned: bool) -> Self {
        Ledgers {
            store,
            job_id,
            next: 0,
            buffer: VecDeque::new(),
            more: planned,
        }
    }

    /// Chunk `chunk`'s ledger item; `None` when it has none. Chunks are asked for in
    /// increasing order.
    pub async fn take(&mut self, chunk: u64) -> Result<Option<ChunkOutcomes>, StoreError> {
        loop {
            while self.buffer.front().is_some_and(|l| l.chunk < chunk) {
                self.buffer.pop_front();
            }
            match self.buffer.front() {
                Some(l) if l.chunk == chunk => return Ok(self.buffer.pop_front()),
                Some(_) => return Ok(None),
                None if !self.more => return Ok(None),
                None => {}
            }
            let (page, more) = self
                .store
                .chunk_outcomes(self.job_id, self.next.max(chunk), LEDGER_PAGE)
                .await?;
            self.more = more && !page.is_empty();
            self.next = page.last().map_or(self.next, |l| l.chunk + 1);
            self.buffer.extend(page);
        }
    }
}

/// One chunk of a file job's item list.
#[derive(Debug)]
pub struct ListedChunk {
    /// The chunk's number.
    pub n: u64,
    /// Its first item's position in the job.
    pub position: u64,
    pub items: Vec<Value>,
    /// Its ledger item; `None` when it has not run.
    pub ledger: Option<ChunkOutcomes>,
}

/// The chunks of a file job's item list (`<input>.items/`, [`crate::domain::file`]) from
/// a given chunk on, with their ledger items: index entries [`INDEX_WINDOW`] at a time,
/// each segment read once (whole, one `GetObject`), ledgers [`LEDGER_PAGE`] at a time.
pub struct FileItems<'a, I, S> {
    inputs: &'a I,
    input_key: &'a str,
    chunks: u64,
    next: u64,
    /// Index entries from chunk `window_from` on.
    window: Vec<ChunkStart>,
    window_from: u64,
    segment: Option<(u32, Vec<u8>)>,
    ledgers: Ledgers<'a, S>,
}

impl<'a, I: InputStore, S: ProgressStore> FileItems<'a, I, S> {
    /// The item list of job `job_id`, stored beside `input_key`, of `chunks` chunks, read
    /// from chunk `from` on.
    pub fn new(
        inputs: &'a I,
        store: &'a S,
        job_id: &'a str,
        input_key: &'a str,
        chunks: u64,
        from: u64,
    ) -> Self {
        FileItems {
            inputs,
            input_key,
            chunks,
            next: from,
            window: Vec::new(),
            window_from: from,
            segment: None,
            ledgers: Ledgers::new(store, job_id, chunks > 0),
        }
    }

    /// The number of the chunk [`FileItems::next`] reads.
    pub fn next_chunk(&self) -> u64 {
        self.next
    }

    /// The next chunk; `None` after the last. [`ReadError::Expired`] when the index or a
    /// segment is gone.
    pub async fn next(&mut self) -> Result<Option<ListedChunk>, ReadError> {
        let n = self.next;
        if n >= self.chunks {
            return Ok(None);
        }
        let (from, to) = self.bounds(n).await?;
        if self
            .segment
            .as_ref()
            .is_none_or(|(s, _)| *s != from.segment)
        {
            let bytes = self
                .inputs
                .get(&segment_key(self.input_key, from.segment))
                .await?
                .ok_or(ReadError::Expired)?;
            self.segment = Some((from.segment, bytes));
        }
        let bytes = self.segment.as_ref().map_or(&[][..], |(_, b)| b.as_slice());
        let start = (from.offset as usize).min(bytes.len());
        let end = if to.segment == from.segment {
            (to.offset as usize).clamp(start, bytes.len())
        } else {
            bytes.len()
        };
        let items = parse_lines(&bytes[start..end])?;
        let ledger = self.ledgers.take(n).await?;
        self.next += 1;
        Ok(Some(ListedChunk {
            n,
            position: from.position,
            items,
            ledger,
        }))
    }

    /// Chunk `n`'s index entry and the next one (where it ends).
    async fn bounds(&mut self, n: u64) -> Result<(ChunkStart, ChunkStart), ReadError> {
        let at = n.checked_sub(self.window_from).map(|i| i as usize);
        if let Some(i) = at
            && i + 1 < self.window.len()
        {
            return Ok((self.window[i], self.window[i + 1]));
        }
        let first = n.saturating_mul(INDEX_ENTRY_BYTES);
        self.window = self
            .inputs
            .get_range(
                &index_key(self.input_key),
                first,
                Some(first + (INDEX_WINDOW + 1) * INDEX_ENTRY_BYTES),
            )
            .await?
            .map(|bytes| ChunkStart::decode_all(&bytes))
            .unwrap_or_default();
        self.window_from = n;
        match self.window[..] {
            [from, to, ..] => Ok((from, to)),
            _ => Err(ReadError::Expired),
        }
    }
}
