//! Release windows: how many chunk messages a tenant (or, with the job scope, a job) has
//! released on a job type's queue and not yet settled, and which of its jobs wait for a
//! slot. The worker runtime (`worker/runtime/window.rs`) takes slots when it plans a job
//! and passes a settled chunk's slot on, exactly once, to the next chunk: the job whose
//! turn it is. The rules are in `docs/design.md` (Fairness: release windows).

use std::collections::BTreeMap;

use crate::domain::job::JobType;

/// What one release window counts: every job of a tenant and type, or one job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowScope {
    /// Every job of the tenant and type shares one window (the default): a tenant's share
    /// of a queue does not grow with the number of jobs it starts.
    Tenant,
    /// Each job has its own window: a tenant with N jobs holds N windows.
    Job,
}

impl WindowScope {
    /// `tenant` or `job` (`RELEASE_WINDOW_SCOPE`).
    pub fn parse(value: &str) -> Option<WindowScope> {
        match value {
            "tenant" => Some(WindowScope::Tenant),
            "job" => Some(WindowScope::Job),
            _ => None,
        }
    }

    /// The key of the window job `job_id` of `tenant` releases its chunks into.
    pub fn key(self, tenant: &str, job_type: JobType, job_id: &str) -> WindowKey {
        match self {
            WindowScope::Tenant => WindowKey {
                pk: format!("TENANT#{tenant}"),
                sk: format!("WINDOW#{}", job_type.key()),
            },
            WindowScope::Job => WindowKey {
                pk: crate::domain::record::job_pk(job_id),
                sk: "WINDOW".into(),
            },
        }
    }
}

/// A release window's item in the Jobs table: `TENANT#<tenant>` / `WINDOW#<type key>`, or
/// `JOB#<id>` / `WINDOW` with the job scope.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct WindowKey {
    pub pk: String,
    pub sk: String,
}

/// A release window as last read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReleaseWindow {
    /// Chunk messages released and not yet settled.
    pub in_flight: u64,
    /// Jobs with chunks to release that wait for a slot, by job id, with their turn: the
    /// lowest turn goes first.
    pub waiting: BTreeMap<String, u64>,
    /// The turn the next job to join `waiting` gets. Every write that changes `waiting`
    /// raises it, so it is also the item's version.
    pub next_turn: u64,
}

impl ReleaseWindow {
    /// The waiting jobs in turn order (oldest turn first, then job id).
    pub fn in_turn(&self) -> Vec<(&str, u64)> {
        let mut waiting: Vec<(&str, u64)> = self
            .waiting
            .iter()
            .map(|(id, turn)| (id.as_str(), *turn))
            .collect();
        waiting.sort_by_key(|&(id, turn)| (turn, id));
        waiting
    }
}

/// Where a settled chunk's slot went, recorded in the chunk's ledger item (`passed_to`)
/// by the write that moves it: exactly once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Passed {
    /// Chunk `chunk` of job `job_id` was released into it.
    To { job_id: String, chunk: u64 },
    /// No job had a chunk to release: the window has one slot more.
    Freed,
}

impl Passed {
    /// `<job id>#<chunk>`, or `-` for [`Passed::Freed`].
    pub fn encode(&self) -> String {
        match self {
            Passed::To { job_id, chunk } => format!("{job_id}#{chunk}"),
            Passed::Freed => "-".into(),
        }
    }

    /// The inverse of [`Passed::encode`]; `None` for anything else.
    pub fn decode(value: &str) -> Option<Passed> {
        if value == "-" {
            return Some(Passed::Freed);
        }
        let (job_id, chunk) = value.rsplit_once('#')?;
        Some(Passed::To {
            job_id: job_id.to_string(),
            chunk: chunk.parse().ok()?,
        })
    }
}

/// The changes a slot pass makes to its window, applied only if the window's `next_turn`
/// is still `version`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WindowChange {
    /// `next_turn` as read.
    pub version: u64,
    /// `next_turn` after the change (always above `version`).
    pub next_turn: u64,
    /// Waiting jobs to add or move to the back, with their new turns.
    pub set: Vec<(String, u64)>,
    /// Jobs that no longer wait: their last chunk is released, or they are gone.
    pub remove: Vec<String>,
    /// The slot is freed: `in_flight` goes down by one.
    pub free: bool,
}

/// One slot pass: settled chunk `from_chunk` of job `from_job` hands its slot to `to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotPass {
    pub from_job: String,
    pub from_chunk: u64,
    /// With [`Passed::To`], that job's `released` moves from `chunk` to `chunk + 1`.
    pub to: Passed,
    /// `None` when the window's item is left as it is.
    pub window: Option<WindowChange>,
}

/// The outcome of taking a free slot for a job's next chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acquired {
    /// The chunk is released: the window counts it and the job's `released` moved on.
    Granted,
    /// The window is full.
    Full,
    /// The job's `released` is no longer the chunk asked for (someone else released it).
    Taken,
}

/// A job that may take the slot, as its record says now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub job_id: String,
    /// The job's next chunk to release (its `released`).
    pub next_chunk: u64,
    /// The job's chunks (`chunks_total`).
    pub chunks_total: u64,
}

impl Candidate {
    /// It has a chunk to release.
    pub fn wants(&self) -> bool {
        self.next_chunk < self.chunks_total
    }
}

/// Where the slot of settled chunk `from_chunk` of job `own` goes, given the window as
/// read and the waiting jobs looked at (`waiting`, by id: `None` for a job that is gone).
/// The caller looks at the line in turn order up to the first job that has a chunk to
/// release; the jobs after it keep their places.
///
/// The rule: the waiting job with the lowest turn takes the slot and goes to the back of
/// the line (or leaves it, with its last chunk); `own`, if it has chunks left, joins the
/// back of the line before it. With nobody waiting, `own` keeps the slot for its next chunk
/// and the window is not written; with nobody wanting it, the slot is freed.
pub fn pass_slot(
    window: &ReleaseWindow,
    own: &Candidate,
    from_chunk: u64,
    waiting: &BTreeMap<String, Option<Candidate>>,
) -> SlotPass {
    let mut change = WindowChange {
        version: window.next_turn,
        ..WindowChange::default()
    };
    // The jobs in line, in turn order; `None`: `own`, not yet in line.
    let mut line: Vec<(&Candidate, Option<u64>)> = Vec::new();
    for (id, turn) in window.in_turn() {
        let candidate = if id == own.job_id {
            Some(Some(own))
        } else {
            waiting.get(id).map(Option::as_ref)
        };
        match candidate {
            Some(Some(candidate)) if candidate.wants() => line.push((candidate, Some(turn))),
            Some(_) => change.remove.push(id.to_string()),
            // Not looked at: it keeps its place behind the taker.
            None => {}
        }
    }
    if own.wants() && !window.waiting.contains_key(&own.job_id) {
        line.push((own, None));
    }
    let Some(&(taker, taker_turn)) = line.first() else {
        change.free = true;
        change.next_turn = window.next_turn + 1;
        return SlotPass {
            from_job: own.job_id.clone(),
            from_chunk,
            to: Passed::Freed,
            window: Some(change),
        };
    };
    let to = Passed::To {
        job_id: taker.job_id.clone(),
        chunk: taker.next_chunk,
    };
    if taker_turn.is_none() && change.remove.is_empty() {
        // Nobody else in line: `own` goes on with its next chunk.
        return SlotPass {
            from_job: own.job_id.clone(),
            from_chunk,
            to,
            window: None,
        };
    }
    let mut next_turn = window.next_turn + 1;
    if let Some(&(joining, None)) = line.last()
        && line.len() > 1
    {
        change.set.push((joining.job_id.clone(), next_turn));
        next_turn += 1;
    }
    if taker_turn.is_some() {
        if taker.next_chunk + 1 < taker.chunks_total {
            change.set.push((taker.job_id.clone(), next_turn));
            next_turn += 1;
        } else {
            change.remove.push(taker.job_id.clone());
        }
    }
    change.next_turn = next_turn;
    SlotPass {
        from_job: own.job_id.clone(),
        from_chunk,
        to,
        window: Some(change),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str, next_chunk: u64, chunks_total: u64) -> Candidate {
        Candidate {
            job_id: id.into(),
            next_chunk,
            chunks_total,
        }
    }

    fn window(in_flight: u64, waiting: &[(&str, u64)], next_turn: u64) -> ReleaseWindow {
        ReleaseWindow {
            in_flight,
            waiting: waiting.iter().map(|(id, t)| (id.to_string(), *t)).collect(),
            next_turn,
        }
    }

    fn records(jobs: &[Candidate]) -> BTreeMap<String, Option<Candidate>> {
        jobs.iter()
            .map(|c| (c.job_id.clone(), Some(c.clone())))
            .collect()
    }

    #[test]
    fn alone_a_job_keeps_its_slot_and_the_window_is_not_written() {
        let pass = pass_slot(&window(3, &[], 7), &job("a", 5, 9), 2, &BTreeMap::new());
        assert_eq!(
            pass,
            SlotPass {
                from_job: "a".into(),
                from_chunk: 2,
                to: Passed::To {
                    job_id: "a".into(),
                    chunk: 5
                },
                window: None
            }
        );
    }

    #[test]
    fn the_waiting_job_with_the_lowest_turn_takes_the_slot_and_the_giver_joins_the_line() {
        let waiting = records(&[job("b", 0, 4), job("c", 2, 4)]);
        let pass = pass_slot(
            &window(10, &[("c", 4), ("b", 3)], 5),
            &job("a", 5, 9),
            2,
            &waiting,
        );
        assert_eq!(
            pass.to,
            Passed::To {
                job_id: "b".into(),
                chunk: 0
            }
        );
        assert_eq!(
            pass.window,
            Some(WindowChange {
                version: 5,
                next_turn: 8,
                set: vec![("a".into(), 6), ("b".into(), 7)],
                remove: vec![],
                free: false,
            }),
            "a joins behind c, b goes to the back"
        );
    }

    #[test]
    fn a_job_given_its_last_chunk_leaves_the_line() {
        let waiting = records(&[job("b", 3, 4)]);
        let pass = pass_slot(&window(10, &[("b", 0)], 1), &job("a", 9, 9), 8, &waiting);
        assert_eq!(
            (pass.to, pass.window.map(|w| (w.set, w.remove, w.free))),
            (
                Passed::To {
                    job_id: "b".into(),
                    chunk: 3
                },
                Some((vec![], vec!["b".to_string()], false))
            )
        );
    }

    #[test]
    fn a_waiting_job_that_is_gone_or_done_is_removed_and_the_slot_freed_when_nobody_wants_it() {
        let mut waiting = records(&[job("c", 4, 4)]);
        waiting.insert("b".into(), None);
        let pass = pass_slot(
            &window(2, &[("b", 0), ("c", 1)], 2),
            &job("a", 9, 9),
            8,
            &waiting,
        );
        assert_eq!(pass.to, Passed::Freed);
        assert_eq!(
            pass.window,
            Some(WindowChange {
                version: 2,
                next_turn: 3,
                set: vec![],
                remove: vec!["b".into(), "c".into()],
                free: true,
            })
        );
    }

    #[test]
    fn a_giver_already_in_line_keeps_its_turn_and_takes_the_slot_when_first() {
        let waiting = records(&[job("b", 0, 4)]);
        let pass = pass_slot(
            &window(10, &[("a", 1), ("b", 2)], 3),
            &job("a", 5, 9),
            4,
            &waiting,
        );
        assert_eq!(
            (pass.to, pass.window.map(|w| (w.set, w.next_turn))),
            (
                Passed::To {
                    job_id: "a".into(),
                    chunk: 5
                },
                Some((vec![("a".to_string(), 4)], 5))
            )
        );
    }

    #[test]
    fn jobs_not_looked_at_keep_their_places() {
        let waiting = records(&[job("b", 0, 4)]);
        let pass = pass_slot(
            &window(10, &[("b", 1), ("c", 2)], 3),
            &job("a", 5, 9),
            4,
            &waiting,
        );
        let change = pass.window.unwrap();
        assert_eq!(
            (change.set, change.remove),
            (vec![("a".to_string(), 4), ("b".to_string(), 5)], vec![]),
            "c keeps turn 2, ahead of both"
        );
    }

    #[test]
    fn passed_round_trips_through_its_ledger_encoding() {
        for passed in [
            Passed::Freed,
            Passed::To {
                job_id: "01JOB".into(),
                chunk: 12,
            },
        ] {
            assert_eq!(Passed::decode(&passed.encode()), Some(passed));
        }
        assert_eq!(Passed::decode("no-chunk"), None);
    }
}
