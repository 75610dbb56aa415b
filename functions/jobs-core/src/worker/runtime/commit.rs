//! The exactly-once commit. A chunk's ledger item records which of its items are settled
//! (`settled`, a bit set); every commit adds outcomes to the ledger and the job's counters
//! in one transaction, conditional on the ledger being as last read
//! ([`ProgressStore::commit_chunk`]). A delivery that loses to a concurrent one re-reads
//! the ledger, drops what the other settled, and commits the rest. Completion is a
//! conditional write (`chunks_done = chunks_total` and still running), so exactly one
//! caller finishes a job and runs its end ([`crate::domain::ended`]).

use std::time::Instant;

use serde_json::Value;

use super::Worker;
use super::window::Decided;
use crate::clock;
use crate::domain::chunk::{
    ChainRest, ChunkCommit, ChunkLedger, ItemFailure, Settled, chain_after,
};
use crate::domain::file::{ChunkStart, index_key};
use crate::domain::job::{ItemError, JobStatus};
use crate::domain::record::JobRecord;
use crate::ports::{InputStore, ProgressStore, WorkerPorts};
use crate::worker::{Processor, WorkError, final_status};

/// Attempts at a commit that finds the ledger changed by a concurrent delivery, or the
/// release window by another chunk's pass.
const COMMIT_ATTEMPTS: usize = 8;

/// How one item of a chunk is settled.
pub(super) enum Settle {
    Succeeded,
    Failed(String),
    Cancelled,
}

/// A chunk's outcomes as they settle: what its ledger holds and what is not committed yet.
pub(super) struct ChunkProgress {
    /// The ledger's `settled` as last read (`None`: no ledger item yet).
    pub(super) before: Option<Settled>,
    /// `before` plus the uncommitted items.
    pub(super) settled: Settled,
    pub(super) uncommitted: Vec<(usize, Settle)>,
    /// Room left in the job's error sample.
    pub(super) sample_room: usize,
    /// Set when an item met throttling since the last commit.
    pub(super) paced_at: Option<String>,
    pub(super) items: usize,
    pub(super) last_commit: Instant,
    /// When this delivery started on the chunk.
    pub(super) started: Instant,
    /// The slot pass the commit that settled the chunk wrote: its chunk is still to send.
    pub(super) passed: Option<Decided>,
    /// The job is cancelled: the commit that settles the chunk ends its chain.
    pub(super) cancelling: bool,
}

impl ChunkProgress {
    pub(super) fn settle(&mut self, position: usize, settle: Settle) {
        if !self.settled.contains(position) {
            self.settled.insert(position);
            self.uncommitted.push((position, settle));
        }
    }

    pub(super) fn is_done(&self) -> bool {
        self.settled.len() >= self.items
    }

    /// After a refused commit: the ledger as read now (`None`: still no ledger item, the
    /// refusal came from the release window). What a concurrent delivery settled is
    /// dropped from the uncommitted items, and the next commit expects the ledger as read.
    pub(super) fn merge(&mut self, theirs: Option<ChunkLedger>) {
        let Some(theirs) = theirs else {
            self.before = None;
            return;
        };
        self.uncommitted
            .retain(|(position, _)| !theirs.done && !theirs.settled.contains(*position));
        let mut settled = theirs.settled.clone();
        for (position, _) in &self.uncommitted {
            settled.insert(*position);
        }
        if theirs.done {
            settled = settled_all(self.items as u64);
        }
        self.settled = settled;
        self.before = Some(theirs.settled);
    }
}

impl<P: Processor, W: WorkerPorts> Worker<P, W> {
    /// Commits what settled since the last commit. When a concurrent delivery of the chunk
    /// committed in between, re-reads the ledger, drops what it settled, and tries again.
    pub(super) async fn commit(
        &self,
        job: &JobRecord,
        chunk: u64,
        progress: &mut ChunkProgress,
        raw: &[Value],
    ) -> Result<(), WorkError> {
        progress.last_commit = Instant::now();
        for attempt in 0..COMMIT_ATTEMPTS {
            super::after_contention(attempt).await;
            if progress.uncommitted.is_empty() {
                return Ok(());
            }
            let mut commit = ChunkCommit {
                before: progress.before.clone(),
                after: progress.settled.clone(),
                done: progress.is_done(),
                paced_at: progress.paced_at.clone(),
                ..ChunkCommit::default()
            };
            // The commit that settles the chunk passes its slot on in the same transaction;
            // for a cancelled job, it also ends the chunk's chain.
            let rest = if commit.done && progress.cancelling {
                self.chain_rest(job, chunk).await?
            } else {
                None
            };
            commit.chain_rest = rest.unwrap_or_default();
            let decided = if commit.done {
                self.decide_pass(job, chunk, rest.is_some()).await?
            } else {
                None
            };
            commit.pass = decided.as_ref().map(|d| (d.key.clone(), d.pass.clone()));
            for (position, settle) in &progress.uncommitted {
                match settle {
                    Settle::Succeeded => commit.tally.succeeded += 1,
                    Settle::Cancelled => {
                        commit.tally.cancelled += 1;
                        commit.cancelled.push(*position as u32);
                    }
                    Settle::Failed(reason) => {
                        let reason = &shorten(reason);
                        commit.tally.failed += 1;
                        commit.failures.push(ItemFailure {
                            position: *position as u32,
                            reason: reason.clone(),
                        });
                        if commit.errors.len() < progress.sample_room {
                            // Decoded for its label only when it enters the sample.
                            let item = raw.get(*position).map_or_else(
                                || format!("item {position}"),
                                |v| {
                                    crate::domain::file::invalid_label(v).unwrap_or_else(|| {
                                        serde_json::from_value::<P::Item>(v.clone())
                                            .map_or_else(|_| v.to_string(), |i| P::label(&i))
                                    })
                                },
                            );
                            commit.errors.push(ItemError {
                                item,
                                reason: reason.clone(),
                            });
                        }
                    }
                }
            }
            if self
                .store
                .commit_chunk(&job.id, chunk, &commit, job.expires_at)
                .await?
            {
                tracing::info!(
                    succeeded = commit.tally.succeeded,
                    failed = commit.tally.failed,
                    cancelled = commit.tally.cancelled,
                    done = commit.done,
                    chain_rest = commit.chain_rest.chunks,
                    "chunk committed"
                );
                let chunk_ms = commit.done.then(|| {
                    u64::try_from(progress.started.elapsed().as_millis()).unwrap_or(u64::MAX)
                });
                crate::worker::emf::emit_commit(
                    P::JOB_TYPE,
                    commit.tally.succeeded,
                    commit.tally.failed,
                    chunk_ms,
                );
                progress.sample_room -= commit.errors.len();
                progress.before = Some(commit.after);
                progress.uncommitted.clear();
                progress.paced_at = None;
                progress.passed = decided;
                return Ok(());
            }
            let theirs = self.store.chunk_ledger(&job.id, chunk).await?;
            tracing::info!(
                theirs = theirs.as_ref().map_or(0, |l| l.settled.len()),
                "the commit was refused (a concurrent delivery's commit, or the release window \
                 changed); merging and trying again"
            );
            progress.merge(theirs);
        }
        Err(WorkError::Transient(
            "the chunk's ledger or release window kept changing under concurrent writers".into(),
        ))
    }

    /// The chunks after `chunk` in its chain and the items in them: a file job's from its
    /// chunk index (one `GetObject`, 16 bytes a chunk), inline ones as the plan cut them.
    /// `None` when they cannot be counted (the params or the index are unreadable): the
    /// chain then runs on, each chunk cancelling its items, as before.
    async fn chain_rest(
        &self,
        job: &JobRecord,
        chunk: u64,
    ) -> Result<Option<ChainRest>, WorkError> {
        let total = job.chunks_total.unwrap_or(0);
        let w = self.settings.release.limit;
        let chunks = chain_after(chunk, w, total).count() as u64;
        if chunks == 0 {
            return Ok(Some(ChainRest::default()));
        }
        let items: Option<u64> = if job.file.is_some() {
            let index = self.inputs.get(&index_key(&job.input_key)).await?;
            let entries = index.map(|bytes| ChunkStart::decode_all(&bytes));
            entries.and_then(|entries| {
                chain_after(chunk, w, total)
                    .map(|n| {
                        let at = usize::try_from(n).ok()?;
                        let (from, to) = (entries.get(at)?, entries.get(at + 1)?);
                        to.position.checked_sub(from.position)
                    })
                    .sum()
            })
        } else {
            match self.params(job).await {
                Ok(params) => {
                    let cut = self.chunks(job, &params).await?;
                    chain_after(chunk, w, total)
                        .map(|n| {
                            usize::try_from(n)
                                .ok()
                                .and_then(|at| cut.get(at))
                                .map(|c| c.len() as u64)
                        })
                        .sum()
                }
                Err(WorkError::Rejected(_)) => None,
                Err(err) => return Err(err),
            }
        };
        if items.is_none() {
            tracing::warn!("the rest of the chain cannot be counted; it runs on");
        }
        Ok(items.map(|items| ChainRest { chunks, items }))
    }

    /// Completes the job if every chunk is committed. The conditional write lets exactly
    /// one of several concurrent finishers through.
    pub(super) async fn finish_if_done(&self, job_id: &str) -> Result<(), WorkError> {
        let Some(mut job) = self.store.load(job_id).await? else {
            return Ok(());
        };
        if job.status.is_terminal() {
            // Ended by a delivery that crashed before its end steps ran: run them now.
            self.observers
                .on_job_end(&self.store, &self.queue, &job)
                .await?;
            return Ok(());
        }
        if job.status != JobStatus::Running || job.chunks_total != Some(job.chunks_done) {
            return Ok(());
        }
        let status = final_status(&job);
        let at = clock::format(clock::now());
        if self.store.complete(job_id, status, &at).await? {
            tracing::info!(
                status = status.key(),
                succeeded = job.succeeded,
                failed = job.failed,
                cancelled = job.cancelled,
                "job completed"
            );
            job.status = status;
            job.completed_at = Some(at.clone());
            job.end_pending = Some(at);
            self.observers
                .on_job_end(&self.store, &self.queue, &job)
                .await?;
        }
        Ok(())
    }
}

/// Most characters of a failure reason kept in the ledger and the job's error sample, so a
/// 10,000-item report stays within Lambda's 6 MB response.
pub const MAX_REASON_CHARS: usize = 200;

fn shorten(reason: &str) -> String {
    match reason.char_indices().nth(MAX_REASON_CHARS) {
        Some((cut, _)) => format!("{}…", &reason[..cut]),
        None => reason.to_string(),
    }
}

/// Every position of a chunk of `count` items.
pub(super) fn settled_all(count: u64) -> Settled {
    let mut settled = Settled::default();
    for position in 0..count {
        settled.insert(position as usize);
    }
    settled
}

#[cfg(test)]
mod tests {
    use aws_lambda_events::event::sqs::SqsEvent;

    use super::super::Disposition;
    use super::super::tests::*;
    use crate::clock;
    use crate::domain::job::{ItemError, JobStatus};
    use crate::ports::{JobStore, ProgressStore, WorkMessage};

    fn progress(items: usize, settled: &[usize]) -> super::ChunkProgress {
        let mut progress = super::ChunkProgress {
            before: None,
            settled: Default::default(),
            uncommitted: Vec::new(),
            sample_room: 10,
            paced_at: None,
            items,
            last_commit: std::time::Instant::now(),
            started: std::time::Instant::now(),
            passed: None,
            cancelling: false,
        };
        for position in settled {
            progress.settle(*position, super::Settle::Succeeded);
        }
        progress
    }

    #[test]
    fn a_commit_refused_by_the_window_before_any_ledger_expects_none_again() {
        let mut refused = progress(3, &[0, 1]);
        refused.merge(None);
        assert_eq!(refused.before, None, "the next commit creates the ledger");
        assert_eq!(refused.uncommitted.len(), 2, "nothing dropped");
    }

    #[test]
    fn a_concurrent_delivery_s_settled_items_are_dropped_and_expected() {
        let mut mine = progress(3, &[0, 1]);
        let mut theirs = crate::domain::chunk::Settled::default();
        theirs.insert(1);
        mine.merge(Some(crate::domain::chunk::ChunkLedger {
            settled: theirs.clone(),
            ..Default::default()
        }));
        assert_eq!(mine.before, Some(theirs));
        let open: Vec<usize> = mine.uncommitted.iter().map(|(p, _)| *p).collect();
        assert_eq!(open, vec![0], "item 1 is theirs");
        assert!(mine.settled.contains(0) && mine.settled.contains(1));
    }

    #[tokio::test]
    async fn duplicate_plans_and_chunks_count_once() {
        let w = worker();
        let id = job(&w, &["a", "b", "c", "d", "fail-e"]);
        deliver(&w, &plan(&id), 1).await;
        deliver(&w, &plan(&id), 1).await; // re-delivered plan: its chunks are duplicates
        run_queue(&w, 2).await; // and every chunk delivered twice
        let done = w.store.job(&id).unwrap();
        assert_eq!(
            (done.status, done.succeeded, done.failed, done.chunks_done),
            (JobStatus::CompletedWithErrors, 4, 1, 3)
        );
        assert_eq!(
            done.errors,
            vec![ItemError {
                item: "fail-e".into(),
                reason: "fail-e is broken".into()
            }]
        );
        assert_eq!(w.store.completions.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn the_end_of_a_job_is_recorded_once_even_when_every_message_comes_twice() {
        let w = worker();
        let id = job(&w, &["a", "b", "c", "fail-d"]);
        deliver(&w, &plan(&id), 1).await;
        deliver(&w, &plan(&id), 1).await;
        run_queue(&w, 2).await;
        let ended = ended_entries(&w, &id);
        assert_eq!(ended.len(), 1);
        let done = w.store.job(&id).unwrap();
        assert_eq!(
            (ended[0].event.status, Some(ended[0].event.at.clone())),
            (Some(JobStatus::CompletedWithErrors), done.completed_at)
        );
        assert!(done.end_pending.is_none());
        let events = w.bus().events.lock().unwrap().clone();
        assert_eq!(events.len(), 1, "one event on the bus");
        assert_eq!(
            (
                events[0].event_id.clone(),
                events[0].succeeded,
                events[0].failed
            ),
            (format!("{id}:completed_with_errors"), 3, 1)
        );
    }

    #[tokio::test]
    async fn an_end_whose_hook_failed_is_handled_by_the_redelivery() {
        let w = worker();
        let id = job(&w, &["a", "b"]);
        w.audit()
            .broken
            .store(true, std::sync::atomic::Ordering::Relaxed);
        // The job's one chunk runs in its plan's delivery; its end is refused, so the plan
        // sends the chunk as its own message.
        assert_eq!(deliver(&w, &plan(&id), 1).await, Disposition::Ack);
        let last = w.queue.drain();
        assert!(
            matches!(&last[..], [WorkMessage::Chunk { chunk: 0, .. }]),
            "{last:?}"
        );
        assert_eq!(
            deliver(&w, &last[0], 1).await,
            Disposition::Retry,
            "the message stays while the end is unrecorded"
        );
        let ended = w.store.job(&id).unwrap();
        assert_eq!(
            (ended.status, ended.end_pending.is_some()),
            (JobStatus::Completed, true)
        );
        assert!(ended_entries(&w, &id).is_empty());
        w.audit()
            .broken
            .store(false, std::sync::atomic::Ordering::Relaxed);
        w.bus()
            .broken
            .store(true, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(
            deliver(&w, &last[0], 2).await,
            Disposition::Retry,
            "the bus refused the event: the end stays pending"
        );
        assert!(w.store.job(&id).unwrap().end_pending.is_some());
        w.bus()
            .broken
            .store(false, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(deliver(&w, &last[0], 3).await, Disposition::Ack);
        let events = w.bus().events.lock().unwrap().clone();
        assert_eq!(
            events
                .iter()
                .map(|e| e.event_id.clone())
                .collect::<Vec<_>>(),
            vec![format!("{id}:completed")],
            "published once, with its stable id"
        );
        assert_eq!(ended_entries(&w, &id).len(), 1);
        assert!(w.store.job(&id).unwrap().end_pending.is_none());
        assert_eq!(
            w.store.completions.lock().unwrap().len(),
            1,
            "completed once"
        );
    }

    #[tokio::test]
    async fn concurrent_last_chunks_complete_the_job_exactly_once() {
        let w = worker();
        let id = job(&w, &["a", "b", "c", "d"]);
        deliver(&w, &plan(&id), 1).await;
        let chunks = w.queue.drain();
        let mut event = SqsEvent::default();
        event.records = chunks
            .iter()
            .enumerate()
            .map(|(i, c)| message(&i.to_string(), c, 1))
            .collect();
        assert!(w.handle_batch(event).await.batch_item_failures.is_empty());
        assert_eq!(
            w.store.completions.lock().unwrap().clone(),
            vec![(id.clone(), JobStatus::Completed)]
        );
    }

    #[tokio::test]
    async fn a_queued_cancel_whose_end_the_api_and_the_plan_handle_at_once_is_counted_once() {
        let w = worker();
        let id = job(&w, &["a", "b", "c"]);
        assert!(
            w.store
                .cancel(&id, JobStatus::Queued, &clock::format(clock::now()))
                .await
                .unwrap()
        );
        // Both paths read the job while its end was pending: the API after its cancel, the
        // worker for the plan message that was already on the queue.
        let read_by_both = w.store.load(&id).await.unwrap().unwrap();
        let (api, worker) = tokio::join!(
            w.observers.on_job_end(&w.store, &w.queue, &read_by_both),
            w.observers.on_job_end(&w.store, &w.queue, &read_by_both)
        );
        api.unwrap();
        worker.unwrap();
        assert_eq!(deliver(&w, &plan(&id), 1).await, Disposition::Ack);
        assert_eq!(cancelled_ends_counted(&w).await, 1, "one end, counted once");
        assert_eq!(
            ended_entries(&w, &id).len(),
            1,
            "one ended entry in the audit trail"
        );
        let job = w.store.job(&id).unwrap();
        assert_eq!(
            (job.cancelled, job.total, job.end_pending),
            (3, 3, None),
            "every item cancelled"
        );
    }

    #[tokio::test]
    async fn a_claim_on_an_end_is_left_alone_while_live_and_taken_over_once_stale() {
        let w = worker();
        let id = job(&w, &["a"]);
        assert!(
            w.store
                .cancel(&id, JobStatus::Queued, &clock::format(clock::now()))
                .await
                .unwrap()
        );
        let mut claimed = w.store.job(&id).unwrap();
        claimed.end_claimed_at = Some(clock::format(clock::now()));
        w.store.insert(claimed.clone());
        w.observers
            .on_job_end(&w.store, &w.queue, &claimed)
            .await
            .unwrap();
        assert!(
            w.store.job(&id).unwrap().end_pending.is_some(),
            "another caller is handling it"
        );
        assert_eq!(cancelled_ends_counted(&w).await, 0);
        // That caller crashed: its claim goes stale.
        claimed.end_claimed_at = Some(clock::format(
            clock::now() - time::Duration::seconds(crate::domain::ended::CLAIM_SECONDS + 1),
        ));
        w.store.insert(claimed.clone());
        w.observers
            .on_job_end(&w.store, &w.queue, &claimed)
            .await
            .unwrap();
        let job = w.store.job(&id).unwrap();
        assert_eq!((job.end_pending, job.end_claimed_at), (None, None));
        assert_eq!(cancelled_ends_counted(&w).await, 1);
    }
}
