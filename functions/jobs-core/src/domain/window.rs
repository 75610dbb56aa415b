//! Release windows: how many chunk messages a tenant (or, with the job scope, a job) has
//! released on a job type's queue and not yet settled, and which of its jobs wait for a
//! slot. The worker runtime (`worker/runtime/window.rs`) takes slots when it plans a job
//! and passes a settled chunk's slot on, exactly once, to the next chunk: the job whose
//! turn it is. The rules are in `docs/design.md` (Fairness: release windows).

use std::collections::{BTreeMap, BTreeSet};

use crate::domain::job::JobType;
use crate::env::{self, SettingError};

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

/// How chunk messages are released: at most `limit` of one window released and not yet
/// settled, and what one window counts. The workers release by it; the API defers a new
/// job's plan by it (`WindowStore::defer`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReleaseSettings {
    /// Most chunk messages of one window released and not yet settled (`RELEASE_WINDOW`,
    /// at least 1).
    pub limit: u64,
    /// What one window counts (`RELEASE_WINDOW_SCOPE`: `tenant`, the default, or `job`).
    pub scope: WindowScope,
}

impl ReleaseSettings {
    /// `RELEASE_WINDOW` (required) and `RELEASE_WINDOW_SCOPE` (optional) from the
    /// environment; the error names the variable.
    pub fn from_env() -> Result<ReleaseSettings, SettingError> {
        let limit: u64 = env::parsed("RELEASE_WINDOW")?;
        if limit == 0 {
            return Err(SettingError::Invalid {
                name: "RELEASE_WINDOW".into(),
                reason: "must be at least 1".into(),
            });
        }
        let scope = env::parsed_or("RELEASE_WINDOW_SCOPE", "tenant".to_string())?;
        let scope = WindowScope::parse(&scope).ok_or_else(|| SettingError::Invalid {
            name: "RELEASE_WINDOW_SCOPE".into(),
            reason: format!("{scope:?} is neither \"tenant\" nor \"job\""),
        })?;
        Ok(ReleaseSettings { limit, scope })
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
    /// Jobs whose plan found the window full and was put off, before any of their work
    /// (a string set: ids are ULIDs, so the set's order is the order of creation).
    pub deferred: BTreeSet<String>,
    /// Deferred jobs whose plan has been sent again and has not finished yet.
    pub woken: BTreeSet<String>,
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

    /// Whether a job other than `job_id` waits in line.
    pub fn others_wait(&self, job_id: &str) -> bool {
        self.waiting.keys().any(|id| id != job_id)
    }

    /// The deferred jobs to wake when nobody else waits for a slot: as many as the slots
    /// free once `in_flight_after` chunks are in flight, at least one, less those already
    /// woken; the oldest first. When the window empties at least one is woken whatever is
    /// woken already, so a woken plan that never finishes (one in the dead-letter queue)
    /// holds nobody up for good. A plan woken into a full window joins the line, so a
    /// tenant's jobs beyond the first few wait unplanned, and its messages on the queue stay
    /// about W whatever the number of jobs it starts.
    /// At most [`WAKES_PER_WRITE`] at once; woken plans wake the rest.
    pub fn to_wake(&self, in_flight_after: u64, limit: u64) -> Vec<String> {
        let room = limit.saturating_sub(in_flight_after).max(1);
        let count = if in_flight_after == 0 {
            room.saturating_sub(self.woken.len() as u64).max(1)
        } else {
            room.saturating_sub(self.woken.len() as u64)
        }
        .min(WAKES_PER_WRITE as u64);
        self.deferred
            .iter()
            .filter(|id| !self.woken.contains(*id))
            .take(usize::try_from(count).unwrap_or(usize::MAX))
            .cloned()
            .collect()
    }
}

/// Most deferred jobs one write wakes: each adds a condition to the window's update, and
/// DynamoDB caps an expression at 4 KB ("Expression parameters", DynamoDB Developer Guide,
/// Service quotas).
pub const WAKES_PER_WRITE: usize = 25;

/// Chunks of one chain a job runs on a slot, while other jobs of its window wait, before it
/// passes the slot to the next job in line. A settle that passes to another job reads that
/// job and adds two items (the window's and that job's) to the settling transaction; one
/// that keeps its slot writes only its own two. Measured in LocalStack (`make bench
/// BENCH=fairness`, docs/performance.md): passing at every chunk left a tenant's 20 jobs at
/// 0.85 of their throughput with a window per job, turns of four at 0.93. A job joining the
/// line waits about `CHUNKS_PER_TURN` × W chunk times at most, behind its own tenant's jobs.
pub const CHUNKS_PER_TURN: u64 = 4;

/// Whether chunk `chunk` ends its job's turn on its slot: the last of each
/// [`CHUNKS_PER_TURN`] chunks of its chain (its place in the chain is `chunk / limit`, W =
/// `limit`). Decided from the chunk number alone, so every delivery of it decides the same.
pub fn ends_turn(chunk: u64, limit: u64) -> bool {
    (chunk / limit.max(1)) % CHUNKS_PER_TURN == CHUNKS_PER_TURN - 1
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

/// The changes a slot pass makes to its window. A change of the line ([`WindowChange::versioned`])
/// applies only if the window's `next_turn` is still `version`; a free that changes no line
/// applies only if nobody waits (and, when it saw no deferred plan, none is deferred); wakes
/// apply only if every woken job is still deferred.
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
    /// Deferred jobs woken: out of `deferred` (only if all are there), into `woken`. Their
    /// plans are sent once the change is written.
    pub wake: Vec<String>,
    /// The window was read with no deferred plan: a free then needs that to hold still, so
    /// that a plan deferred meanwhile is not passed by.
    pub none_deferred: bool,
    /// A free that saw deferred plans and woke none applies only while `in_flight` is
    /// still this: concurrent frees that each read the window before the others cannot all
    /// pass by its emptying (which wakes one).
    pub in_flight_seen: Option<u64>,
}

impl WindowChange {
    /// It frees a slot and leaves the line alone. Such a change needs no version: frees
    /// commute with each other and with taking a free slot, and its condition (nobody
    /// waits) is the one a job joining the line refutes (`in_flight >= limit` to join, an
    /// empty line to free), so a slot is never freed while a job waits for one.
    pub fn frees_only(&self) -> bool {
        self.free && !self.versioned()
    }

    /// It changes the line: it applies only at `version`, and raises `next_turn`.
    pub fn versioned(&self) -> bool {
        !self.set.is_empty() || !self.remove.is_empty()
    }
}

/// One slot pass: settled chunk `from_chunk` of job `from_job` hands its slot to `to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotPass {
    pub from_job: String,
    pub from_chunk: u64,
    pub to: Passed,
    /// A held chain head the pass releases: removed from that job's `held` (only if it is
    /// still there). `None` when `to` is the next chunk of the settled chunk's own chain.
    pub take: Option<(String, u64)>,
    /// The settled chunk's chain goes on later: its next chunk joins `from_job`'s `held`.
    pub hold: Option<u64>,
    /// `None` when the window's item is left as it is.
    pub window: Option<WindowChange>,
}

impl SlotPass {
    /// The deferred jobs the pass wakes.
    pub fn woken(&self) -> &[String] {
        self.window.as_ref().map_or(&[], |w| w.wake.as_slice())
    }
}

/// Most chain heads one acquire releases: each adds a path and a condition to the job's
/// update, and DynamoDB caps an expression at 4 KB ("Expression parameters", DynamoDB
/// Developer Guide, Service quotas).
pub const HEADS_PER_ACQUIRE: usize = 25;

/// The outcome of taking free slots for some of a job's held chain heads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acquired {
    /// The chunks are released: the window counts them and they left the job's `held`.
    Granted,
    /// The window has no room for them all.
    Full,
    /// A chunk is no longer in the job's `held` (someone else released it).
    Taken,
}

/// A job in line, as its record says now: its smallest held chain head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub job_id: String,
    /// The chunk it would release (`None`: it holds no chain head, it no longer waits).
    pub next: Option<u64>,
    /// It holds another chain head after `next`.
    pub more: bool,
}

impl Candidate {
    /// It has a chunk to release.
    pub fn wants(&self) -> bool {
        self.next.is_some()
    }
}

/// The job whose chunk settled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settling {
    pub job_id: String,
    /// The next chunk of the settled chunk's chain (`chunk + W`), if the job has it.
    pub chain_next: Option<u64>,
    /// The job's own held chain heads, as a candidate.
    pub held: Candidate,
}

/// Where the slot of settled chunk `from_chunk` of job `own` goes, given the window as
/// read and the waiting jobs looked at (`waiting`, by id: `None` for a job that is gone).
/// The caller looks at the line in turn order up to the first job that has a chunk to
/// release; the jobs after it keep their places.
///
/// The rule: a job whose chain goes on keeps the slot until its turn ends ([`ends_turn`]),
/// whoever waits, and nothing is written beyond the settling commit's own items. Then the
/// waiting job with the lowest turn takes the slot for its smallest held
/// chain head and goes to the back of the line (or leaves it, with its last head); the
/// settled chunk's chain is then held by its job, which joins the back of the line before
/// it. With nobody else waiting, the job goes on with its chain (`chunk + W`: no write
/// beyond the settling commit's own), or with its smallest held head once the chain ends;
/// with nobody wanting the slot, it is freed. When nobody else waits for a slot, deferred
/// jobs are woken ([`ReleaseWindow::to_wake`]; `limit` is W).
pub fn pass_slot(
    window: &ReleaseWindow,
    own: &Settling,
    from_chunk: u64,
    waiting: &BTreeMap<String, Option<Candidate>>,
    limit: u64,
) -> SlotPass {
    if let Some(next) = own.chain_next
        && window.others_wait(&own.job_id)
        && !ends_turn(from_chunk, limit)
    {
        // Its turn goes on: others wait, so nobody is woken, and the line is left alone.
        return SlotPass {
            from_job: own.job_id.clone(),
            from_chunk,
            to: Passed::To {
                job_id: own.job_id.clone(),
                chunk: next,
            },
            take: None,
            hold: None,
            window: None,
        };
    }
    let mut change = WindowChange {
        version: window.next_turn,
        none_deferred: window.deferred.is_empty(),
        ..WindowChange::default()
    };
    let own_wants = own.chain_next.is_some() || own.held.wants();
    let own_in_line = window.waiting.contains_key(&own.job_id);
    // The other jobs in line that want the slot, in turn order, and whether `own` (in line
    // with held heads) is ahead of them all.
    let mut others: Vec<&Candidate> = Vec::new();
    let mut own_ahead = false;
    for (id, _) in window.in_turn() {
        if id == own.job_id {
            if own.held.wants() {
                own_ahead = others.is_empty();
            } else {
                change.remove.push(id.to_string());
            }
            continue;
        }
        match waiting.get(id).map(Option::as_ref) {
            Some(Some(candidate)) if candidate.wants() => others.push(candidate),
            Some(_) => change.remove.push(id.to_string()),
            // Not looked at: it keeps its place behind the taker.
            None => {}
        }
    }
    let mut pass = SlotPass {
        from_job: own.job_id.clone(),
        from_chunk,
        to: Passed::Freed,
        take: None,
        hold: None,
        window: None,
    };
    if others.is_empty() && !window.deferred.is_empty() {
        let frees = !own_wants;
        let after = window.in_flight.saturating_sub(u64::from(frees));
        change.wake = window.to_wake(after, limit);
    }
    if !window.deferred.is_empty() && change.wake.is_empty() {
        change.in_flight_seen = Some(window.in_flight);
    }
    let mut next_turn = window.next_turn + 1;
    if own_wants && (own_ahead || others.is_empty()) {
        // `own` takes the slot: its chain's next chunk, else its smallest held head.
        let still_held = match own.chain_next {
            Some(next) => {
                pass.to = Passed::To {
                    job_id: own.job_id.clone(),
                    chunk: next,
                };
                own.held.wants()
            }
            None => {
                let head = own.held.next.unwrap_or_default();
                pass.to = Passed::To {
                    job_id: own.job_id.clone(),
                    chunk: head,
                };
                pass.take = Some((own.job_id.clone(), head));
                own.held.more
            }
        };
        if own_in_line && !still_held {
            if !change.remove.contains(&own.job_id) {
                change.remove.push(own.job_id.clone());
            }
        } else if own_in_line && !others.is_empty() {
            // It had its turn: to the back of the line.
            change.set.push((own.job_id.clone(), next_turn));
            next_turn += 1;
        }
        if change.set.is_empty() && change.remove.is_empty() && change.wake.is_empty() {
            // Nobody else waits and nobody wakes: nothing to write beyond the settling
            // commit's own.
            return pass;
        }
    } else if let Some(taker) = others.first() {
        // The job whose turn it is takes the slot for its smallest held head; `own`'s chain
        // waits in its `held`, and `own` joins the back of the line before the taker.
        let head = taker.next.unwrap_or_default();
        pass.to = Passed::To {
            job_id: taker.job_id.clone(),
            chunk: head,
        };
        pass.take = Some((taker.job_id.clone(), head));
        if let Some(next) = own.chain_next {
            pass.hold = Some(next);
            // It holds a head again: in line, even if it was about to leave it.
            if !own_in_line || change.remove.contains(&own.job_id) {
                change.remove.retain(|id| *id != own.job_id);
                change.set.push((own.job_id.clone(), next_turn));
                next_turn += 1;
            }
        }
        if taker.more {
            change.set.push((taker.job_id.clone(), next_turn));
            next_turn += 1;
        } else {
            change.remove.push(taker.job_id.clone());
        }
    } else {
        change.free = true;
    }
    change.next_turn = if change.versioned() {
        next_turn
    } else {
        window.next_turn
    };
    pass.window = Some(change);
    pass
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting_job(id: &str, next: Option<u64>, more: bool) -> Candidate {
        Candidate {
            job_id: id.into(),
            next,
            more,
        }
    }

    fn settling(id: &str, chain_next: Option<u64>, held: Option<u64>, more: bool) -> Settling {
        Settling {
            job_id: id.into(),
            chain_next,
            held: waiting_job(id, held, more),
        }
    }

    fn window(in_flight: u64, waiting: &[(&str, u64)], next_turn: u64) -> ReleaseWindow {
        ReleaseWindow {
            in_flight,
            waiting: waiting.iter().map(|(id, t)| (id.to_string(), *t)).collect(),
            next_turn,
            ..ReleaseWindow::default()
        }
    }

    fn records(jobs: &[Candidate]) -> BTreeMap<String, Option<Candidate>> {
        jobs.iter()
            .map(|c| (c.job_id.clone(), Some(c.clone())))
            .collect()
    }

    fn to(job_id: &str, chunk: u64) -> Passed {
        Passed::To {
            job_id: job_id.into(),
            chunk,
        }
    }

    #[test]
    fn alone_a_job_goes_on_with_its_chain_and_nothing_else_is_written() {
        let pass = pass_slot(
            &window(3, &[], 7),
            &settling("a", Some(12), None, false),
            2,
            &BTreeMap::new(),
            10,
        );
        assert_eq!(
            pass,
            SlotPass {
                from_job: "a".into(),
                from_chunk: 2,
                to: to("a", 12),
                take: None,
                hold: None,
                window: None,
            }
        );
    }

    #[test]
    fn the_waiting_job_with_the_lowest_turn_takes_the_slot_and_the_giver_holds_its_chain() {
        let waiting = records(&[
            waiting_job("b", Some(0), true),
            waiting_job("c", Some(2), false),
        ]);
        let pass = pass_slot(
            &window(10, &[("c", 4), ("b", 3)], 5),
            &settling("a", Some(42), None, false),
            32,
            &waiting,
            10,
        );
        assert_eq!(
            (pass.to, pass.take, pass.hold),
            (to("b", 0), Some(("b".to_string(), 0)), Some(42))
        );
        assert_eq!(
            pass.window,
            Some(WindowChange {
                version: 5,
                next_turn: 8,
                set: vec![("a".into(), 6), ("b".into(), 7)],
                remove: vec![],
                free: false,
                none_deferred: true,
                ..WindowChange::default()
            }),
            "a joins behind c, b goes to the back"
        );
    }

    #[test]
    fn a_job_given_its_last_held_head_leaves_the_line() {
        let waiting = records(&[waiting_job("b", Some(3), false)]);
        let pass = pass_slot(
            &window(10, &[("b", 0)], 1),
            &settling("a", None, None, false),
            8,
            &waiting,
            10,
        );
        assert_eq!(
            (
                pass.to,
                pass.hold,
                pass.window.map(|w| (w.set, w.remove, w.free))
            ),
            (
                to("b", 3),
                None,
                Some((vec![], vec!["b".to_string()], false))
            )
        );
    }

    #[test]
    fn first_in_line_a_job_goes_on_with_its_chain_then_with_its_held_heads() {
        let pass = pass_slot(
            &window(10, &[("a", 1), ("b", 2)], 3),
            &settling("a", Some(44), Some(5), true),
            34,
            &records(&[waiting_job("b", Some(0), false)]),
            10,
        );
        assert_eq!(
            (
                pass.to,
                pass.take,
                pass.window.map(|w| (w.set, w.next_turn))
            ),
            (to("a", 44), None, Some((vec![("a".to_string(), 4)], 5))),
            "its turn: it goes on with its chain, and to the back of the line"
        );
        let pass = pass_slot(
            &window(10, &[("a", 1)], 3),
            &settling("a", None, Some(5), false),
            4,
            &BTreeMap::new(),
            10,
        );
        assert_eq!(
            (pass.to, pass.take, pass.window.map(|w| w.remove)),
            (
                to("a", 5),
                Some(("a".to_string(), 5)),
                Some(vec!["a".to_string()])
            ),
            "its last held head: it leaves the line"
        );
    }

    #[test]
    fn waiting_jobs_gone_or_done_are_removed_and_the_slot_freed_when_nobody_wants_it() {
        let mut waiting = records(&[waiting_job("c", None, false)]);
        waiting.insert("b".into(), None);
        let pass = pass_slot(
            &window(2, &[("b", 0), ("c", 1)], 2),
            &settling("a", None, None, false),
            8,
            &waiting,
            10,
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
                none_deferred: true,
                ..WindowChange::default()
            })
        );
    }

    #[test]
    fn jobs_not_looked_at_keep_their_places() {
        let waiting = records(&[waiting_job("b", Some(0), true)]);
        let pass = pass_slot(
            &window(10, &[("b", 1), ("c", 2)], 3),
            &settling("a", Some(44), None, false),
            34,
            &waiting,
            10,
        );
        let change = pass.window.unwrap();
        assert_eq!(
            (change.set, change.remove),
            (vec![("a".to_string(), 4), ("b".to_string(), 5)], vec![]),
            "c keeps turn 2, ahead of both"
        );
    }

    #[test]
    fn a_job_keeps_its_slot_while_others_wait_until_its_turn_ends() {
        assert_eq!(
            (0..10)
                .filter(|chunk| ends_turn(*chunk, 2))
                .collect::<Vec<_>>(),
            [6, 7],
            "chain positions 0 to 3 are a turn (W = 2): chunks 6 and 7 end it"
        );
        let waiting = records(&[waiting_job("b", Some(0), true)]);
        let line = window(10, &[("b", 1)], 3);
        let pass = pass_slot(
            &line,
            &settling("a", Some(22), None, false),
            12,
            &waiting,
            10,
        );
        assert_eq!(
            (pass.to, pass.take, pass.hold, pass.window),
            (to("a", 22), None, None, None),
            "b waits, a's turn goes on: nothing written beyond the settling commit"
        );
        let pass = pass_slot(
            &line,
            &settling("a", Some(40), None, false),
            30,
            &waiting,
            10,
        );
        assert_eq!(
            (pass.to, pass.hold),
            (to("b", 0), Some(40)),
            "chunk 30 ends a's turn: b takes the slot, a holds its chain"
        );
        let pass = pass_slot(&line, &settling("a", None, None, false), 12, &waiting, 10);
        assert_eq!(
            pass.to,
            to("b", 0),
            "a chain that ends passes its slot at once"
        );
    }

    #[test]
    fn passed_round_trips_through_its_ledger_encoding() {
        for passed in [Passed::Freed, to("01JOB", 12)] {
            assert_eq!(Passed::decode(&passed.encode()), Some(passed));
        }
        assert_eq!(Passed::decode("no-chunk"), None);
    }

    fn deferring(in_flight: u64, deferred: &[&str], woken: &[&str]) -> ReleaseWindow {
        ReleaseWindow {
            in_flight,
            next_turn: 9,
            deferred: deferred.iter().map(|id| id.to_string()).collect(),
            woken: woken.iter().map(|id| id.to_string()).collect(),
            ..ReleaseWindow::default()
        }
    }

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|id| id.to_string()).collect()
    }

    #[test]
    fn alone_in_a_full_window_a_job_goes_on_and_wakes_one_deferred_plan_if_none_is_woken() {
        let alone = settling("a", Some(12), None, false);
        let pass = pass_slot(
            &deferring(10, &["d1", "d2"], &[]),
            &alone,
            2,
            &BTreeMap::new(),
            10,
        );
        assert_eq!((&pass.to, pass.woken()), (&to("a", 12), &ids(&["d1"])[..]));
        let change = pass.window.unwrap();
        assert!(
            !change.versioned() && change.next_turn == 9 && !change.free,
            "a wake alone changes no line: {change:?}"
        );
        let pass = pass_slot(
            &deferring(10, &["d2"], &["d1"]),
            &alone,
            2,
            &BTreeMap::new(),
            10,
        );
        assert_eq!(
            (pass.woken().len(), pass.window),
            (0, None),
            "one woken plan is enough while the window is full: nothing to write"
        );
    }

    #[test]
    fn a_freed_slot_wakes_as_many_deferred_plans_as_the_window_has_room_for() {
        let last = settling("a", None, None, false);
        let pass = pass_slot(
            &deferring(2, &["d1", "d2", "d3", "d4"], &["d0"]),
            &last,
            7,
            &BTreeMap::new(),
            3,
        );
        assert_eq!(pass.to, Passed::Freed);
        assert_eq!(
            pass.woken(),
            ids(&["d1"]),
            "2 free slots once this one is freed, one plan woken already"
        );
        let change = pass.window.unwrap();
        assert!(change.free && !change.none_deferred);
        let pass = pass_slot(
            &deferring(1, &["d4"], &["d1", "d2", "d3"]),
            &last,
            7,
            &BTreeMap::new(),
            3,
        );
        assert_eq!(
            pass.woken(),
            ids(&["d4"]),
            "the window empties: one more is woken whatever is woken already"
        );
        let pass = pass_slot(&deferring(1, &[], &[]), &last, 7, &BTreeMap::new(), 3);
        let change = pass.window.unwrap();
        assert!(
            change.frees_only() && change.none_deferred,
            "a free that saw no deferred plan needs none to be deferred meanwhile"
        );
    }

    #[test]
    fn deferred_plans_are_not_woken_while_another_job_waits_in_line() {
        let waiting = records(&[waiting_job("b", Some(0), true)]);
        let mut window = deferring(10, &["d1"], &[]);
        window.waiting = [("b".to_string(), 3)].into();
        let pass = pass_slot(
            &window,
            &settling("a", Some(42), None, false),
            32,
            &waiting,
            10,
        );
        assert_eq!((pass.to.clone(), pass.woken().len()), (to("b", 0), 0));
    }

    #[test]
    fn at_most_the_free_slots_are_woken_less_the_plans_woken_already() {
        let window = deferring(2, &["d1", "d2"], &["d0"]);
        assert_eq!(
            (window.to_wake(1, 3), window.to_wake(2, 3)),
            (ids(&["d1"]), vec![]),
        );
    }

    #[test]
    fn a_job_in_line_with_no_head_left_stays_in_line_when_its_chain_is_held() {
        // A duplicate plan put `a` in line after its heads were taken: it holds nothing.
        let waiting = records(&[waiting_job("b", Some(0), false)]);
        let pass = pass_slot(
            &window(10, &[("a", 0), ("b", 1)], 2),
            &settling("a", Some(42), None, false),
            32,
            &waiting,
            10,
        );
        let change = pass.window.unwrap();
        assert_eq!(
            (pass.to, pass.hold, change.set, change.remove),
            (
                to("b", 0),
                Some(42),
                vec![("a".to_string(), 3)],
                vec!["b".to_string()]
            ),
            "a holds chunk 42 and keeps a place in line; nothing is removed twice"
        );
        let pass = pass_slot(
            &window(10, &[("a", 0)], 2),
            &settling("a", Some(12), None, false),
            2,
            &BTreeMap::new(),
            10,
        );
        assert_eq!(
            pass.window.unwrap().remove,
            ["a"],
            "alone, it goes on with its chain and leaves the line once"
        );
    }

    #[test]
    fn a_free_that_wakes_nobody_while_plans_are_deferred_holds_only_at_the_in_flight_read() {
        let last = settling("a", None, None, false);
        let pass = pass_slot(
            &deferring(2, &["d1"], &["d0", "d2"]),
            &last,
            7,
            &BTreeMap::new(),
            2,
        );
        let change = pass.window.unwrap();
        assert_eq!(
            (change.wake.len(), change.free, change.in_flight_seen),
            (0, true, Some(2))
        );
    }
}
