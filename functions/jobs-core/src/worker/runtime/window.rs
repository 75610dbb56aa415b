//! Release windows ([`crate::domain::window`]): a plan finding the window full before its
//! job started is deferred, and woken by a later pass; the plan takes free slots for a job's
//! first chunks (and puts the job in line when the window is full); a settled chunk passes
//! its slot on, exactly once, to the chunk of the job whose turn it is, in the transaction
//! of the commit that settles it (`commit.rs`). The pass is in the chunk's ledger before its
//! message is acknowledged, so a crash anywhere leaves the message on the queue and its
//! redelivery sends the released chunk again.

use std::collections::BTreeMap;

use super::Worker;
use crate::domain::record::JobRecord;
use crate::domain::window::{
    Acquired, Candidate, HEADS_PER_ACQUIRE, Passed, Settling, SlotPass, WindowKey, ends_turn,
    pass_slot,
};
use crate::ports::{ProgressStore, WindowStore, WorkMessage, WorkQueue, WorkerPorts};
use crate::worker::{Processor, WorkError};

/// Attempts at a pass or a slot that concurrent writers keep changing.
const ATTEMPTS: usize = 8;

/// A slot pass decided from what was read, and the record of the job it releases a chunk of.
pub(super) struct Decided {
    pub(super) key: WindowKey,
    /// The tenant of the window's jobs.
    pub(super) tenant: String,
    pub(super) pass: SlotPass,
    pub(super) to: Option<JobRecord>,
}

fn candidate(job: &JobRecord) -> Candidate {
    let heads = job.held_heads();
    Candidate {
        job_id: job.id.clone(),
        next: heads.first().copied(),
        more: heads.len() > 1,
    }
}

impl<P: Processor, W: WorkerPorts> Worker<P, W> {
    pub(super) fn window_key(&self, job: &JobRecord) -> WindowKey {
        self.settings
            .release
            .scope
            .key(&job.tenant, P::JOB_TYPE, &job.id)
    }

    /// The job's W chains start held (chunk `c` heads chain `c`: `c, c + W, c + 2W, …`);
    /// the plan takes free slots for their heads, at most the window, a group of heads per
    /// transaction, and puts the job in line when the window is full first. Returns the
    /// chunks released among the first W, which the plan sends (a plan delivered again
    /// sends them again: duplicates are absorbed by the ledger).
    pub(super) async fn release_first(&self, job: &JobRecord) -> Result<Vec<u64>, WorkError> {
        let total = job.chunks_total.unwrap_or(0);
        let limit = self.settings.release.limit;
        let chains = total.min(limit);
        self.store.hold_first(&job.id, chains).await?;
        let Some(job) = self.store.load(&job.id).await? else {
            return Ok(Vec::new());
        };
        let key = self.window_key(&job);
        let mut heads = job.held_heads();
        let mut tries = 0;
        while !heads.is_empty() {
            let room = limit.saturating_sub(self.store.window(&key).await?.in_flight);
            let count = heads
                .len()
                .min(HEADS_PER_ACQUIRE)
                .min(usize::try_from(room).unwrap_or(usize::MAX));
            let outcome = if count == 0 {
                if self.store.wait(&key, limit, &job.id).await? {
                    tracing::info!("release window full; job waits its turn");
                    break;
                }
                None
            } else {
                Some(
                    self.store
                        .acquire(&key, limit, &job.id, &heads[..count])
                        .await?,
                )
            };
            match outcome {
                Some(Acquired::Granted) => {
                    heads.drain(..count);
                    continue;
                }
                Some(Acquired::Taken) => {
                    heads = self
                        .store
                        .load(&job.id)
                        .await?
                        .map(|j| j.held_heads())
                        .unwrap_or_default();
                }
                Some(Acquired::Full) | None => {}
            }
            tries += 1;
            if tries >= ATTEMPTS {
                return Err(WorkError::Transient(
                    "the release window kept changing".into(),
                ));
            }
            super::after_contention(tries).await;
        }
        let held = self
            .store
            .load(&job.id)
            .await?
            .map(|j| j.held_heads())
            .unwrap_or_default();
        Ok((0..chains).filter(|c| !held.contains(c)).collect())
    }

    /// Where the slot of chunk `chunk` of `job`, about to settle or settled, goes: the
    /// window and the jobs in line read now. `chain_ends`: the chunk's chain stops with it
    /// (a cancelled job's), so its next chunk is not released. `None` when the job is gone.
    pub(super) async fn decide_pass(
        &self,
        job: &JobRecord,
        chunk: u64,
        chain_ends: bool,
    ) -> Result<Option<Decided>, WorkError> {
        let key = self.window_key(job);
        let window = self.store.window(&key).await?;
        let total = job.chunks_total.unwrap_or(0);
        let chain_next = chunk
            .checked_add(self.settings.release.limit)
            .filter(|next| *next < total && !chain_ends);
        // The chain goes on and nobody waits, or others wait and the job's turn goes on: the
        // slot stays with the job whatever it holds (`pass_slot`'s first rules), so the
        // record in hand serves without reading it again. Otherwise the job is read again,
        // with the first job in line in the same request (the one that usually takes the
        // slot): `read`, `None` for a job read and absent.
        let keeps = window.waiting.is_empty()
            || (window.others_wait(&job.id) && !ends_turn(chunk, self.settings.release.limit));
        let mut read: BTreeMap<String, Option<JobRecord>> = BTreeMap::new();
        let own = if keeps && chain_next.is_some() {
            job.clone()
        } else {
            let mut ids = vec![job.id.clone()];
            ids.extend(
                window
                    .in_turn()
                    .into_iter()
                    .map(|(id, _)| id.to_string())
                    .find(|id| *id != job.id),
            );
            read = ids.iter().map(|id| (id.clone(), None)).collect();
            for record in self.store.load_many(&ids).await? {
                read.insert(record.id.clone(), Some(record));
            }
            let Some(own) = read.remove(&job.id).flatten() else {
                return Ok(None);
            };
            own
        };
        // The waiting jobs in turn order, up to the first that has a chunk to release; the
        // ones gone or done on the way leave the line.
        let mut records: BTreeMap<String, Option<JobRecord>> = BTreeMap::new();
        for (id, _) in window.in_turn() {
            let record = if id == own.id {
                Some(own.clone())
            } else if let Some(record) = read.remove(id) {
                record
            } else {
                self.store.load(id).await?
            };
            let wants = record.as_ref().is_some_and(|r| candidate(r).wants());
            records.insert(id.to_string(), record);
            if wants {
                break;
            }
        }
        let looked_at: BTreeMap<String, Option<Candidate>> = records
            .iter()
            .map(|(id, r)| (id.clone(), r.as_ref().map(candidate)))
            .collect();
        let settling = Settling {
            job_id: own.id.clone(),
            chain_next,
            held: candidate(&own),
        };
        let pass = pass_slot(
            &window,
            &settling,
            chunk,
            &looked_at,
            self.settings.release.limit,
        );
        let tenant = own.tenant.clone();
        let to = match &pass.to {
            Passed::To { job_id, .. } if *job_id == own.id => Some(own),
            Passed::To { job_id, .. } => records.remove(job_id).flatten(),
            Passed::Freed => None,
        };
        Ok(Some(Decided {
            key,
            tenant,
            pass,
            to,
        }))
    }

    /// Sends the chunk a pass released, and the plans of the jobs it woke.
    pub(super) async fn send_passed(&self, decided: &Decided) -> Result<(), WorkError> {
        self.send_wakes(&decided.tenant, decided.pass.woken())
            .await?;
        match (&decided.pass.to, &decided.to) {
            (Passed::To { job_id, chunk }, Some(to)) => {
                tracing::debug!(to = %job_id, chunk, "slot passed");
                self.send_chunk(to, *chunk).await
            }
            _ => {
                tracing::debug!("slot freed");
                Ok(())
            }
        }
    }

    /// For a settled chunk whose commit did not pass its slot (a duplicate delivery, or a
    /// concurrent one committed first): passes it on now if nobody has, exactly once, and
    /// sends the chunk released into it unless that chunk has run (its ledger item exists).
    pub(super) async fn pass_on(&self, job: &JobRecord, chunk: u64) -> Result<(), WorkError> {
        for attempt in 0..ATTEMPTS {
            super::after_contention(attempt).await;
            let Some(ledger) = self.store.chunk_ledger(&job.id, chunk).await? else {
                return Ok(());
            };
            if let Some(passed) = ledger.passed {
                // The wakes of that pass, if the process died before sending them: those
                // still woken have a plan to run.
                if !ledger.woke.is_empty() {
                    let woken = self.store.window(&self.window_key(job)).await?.woken;
                    let again: Vec<String> = ledger
                        .woke
                        .into_iter()
                        .filter(|id| woken.contains(id))
                        .collect();
                    self.send_wakes(&job.tenant, &again).await?;
                }
                if let Passed::To { job_id, chunk } = passed
                    && self.store.chunk_ledger(&job_id, chunk).await?.is_none()
                {
                    tracing::info!(to = %job_id, chunk, "released chunk sent again");
                    if let Some(to) = self.store.load(&job_id).await? {
                        self.send_chunk(&to, chunk).await?;
                    }
                }
                return Ok(());
            }
            let Some(decided) = self.decide_pass(job, chunk, false).await? else {
                return Ok(());
            };
            if self.store.pass(&decided.key, &decided.pass).await? {
                return self.send_passed(&decided).await;
            }
            tracing::info!("release window changed under the pass; reading it again");
        }
        Err(WorkError::Transient(
            "the release window kept changing".into(),
        ))
    }

    /// Puts off the plan of `job` when its release window is full (or other plans are put
    /// off: they go first) and the job has not started any work (no plan has read its file or taken a slot; it may hold a running
    /// slot of its tenant's limit): its plan is sent again when a pass wakes it
    /// (`ReleaseWindow::to_wake`). True when deferred.
    pub(super) async fn deferred(&self, job: &JobRecord) -> Result<bool, WorkError> {
        let untouched = job.status == crate::domain::job::JobStatus::Queued
            && job.chunks_total.is_none()
            && job.planned_rows.is_none()
            && job.plan_lease.is_none()
            && self.settings.release.scope == crate::domain::window::WindowScope::Tenant;
        if !untouched {
            return Ok(false);
        }
        let key = self.window_key(job);
        Ok(self
            .store
            .defer(&key, self.settings.release.limit, &job.id)
            .await?)
    }

    /// The plans job `job_id`'s woken plan woke at its end that are still woken (its
    /// item's `woke`), sent again: a redelivery of its plan repeats what a crash may have cut
    /// short. Returns whether `job_id` itself is still woken.
    pub(super) async fn woken_again(
        &self,
        key: &WindowKey,
        tenant: &str,
        job_id: &str,
    ) -> Result<bool, WorkError> {
        let woken = self.store.window(key).await?.woken;
        if let Some(job) = self.store.load(job_id).await?
            && !job.woke.is_empty()
        {
            let again: Vec<String> = job
                .woke
                .into_iter()
                .filter(|id| woken.contains(id))
                .collect();
            self.send_wakes(tenant, &again).await?;
        }
        Ok(woken.contains(job_id))
    }

    /// The end of a woken plan, whatever it did (planned the job, found it ended, put it
    /// behind its tenant's limit): if nobody waits for a slot, the deferred jobs the window
    /// has room for are woken (recorded on this job's item, so that a redelivery sends their
    /// plans again: [`Self::woken_again`]) and their plans sent; then the job leaves
    /// `deferred` and `woken`.
    pub(super) async fn leave_woken(
        &self,
        key: &WindowKey,
        tenant: &str,
        job_id: &str,
    ) -> Result<(), WorkError> {
        let limit = self.settings.release.limit;
        for attempt in 0..ATTEMPTS {
            super::after_contention(attempt).await;
            let window = self.store.window(key).await?;
            if !window.woken.contains(job_id) {
                return Ok(());
            }
            let mut stays = window.clone();
            stays.woken.remove(job_id);
            stays.deferred.remove(job_id);
            let wake = if window.waiting.is_empty() {
                stays.to_wake(window.in_flight, limit)
            } else {
                Vec::new()
            };
            // Waking nobody while plans stay deferred was decided on `in_flight` and `woken`
            // as read: the leave holds only if they are unchanged.
            let seen = if wake.is_empty() && !stays.deferred.is_empty() {
                Some((window.in_flight, window.woken.len() as u64))
            } else {
                None
            };
            if !wake.is_empty() {
                if !self.store.wake(key, job_id, &wake).await? {
                    continue;
                }
                self.send_wakes(tenant, &wake).await?;
            }
            if self.store.leave(key, job_id, seen).await? {
                return Ok(());
            }
        }
        Err(WorkError::Transient(
            "the release window kept changing".into(),
        ))
    }

    /// Sends the plans of woken jobs `jobs` of `tenant`.
    async fn send_wakes(&self, tenant: &str, jobs: &[String]) -> Result<(), WorkError> {
        let messages: Vec<WorkMessage> = jobs
            .iter()
            .map(|id| WorkMessage::Plan {
                job_id: id.clone(),
                tenant: tenant.to_string(),
                woken: true,
            })
            .collect();
        if messages.is_empty() {
            return Ok(());
        }
        tracing::info!(woken = ?jobs, "deferred plans woken");
        self.queue.send_all(P::JOB_TYPE, &messages).await?;
        Ok(())
    }

    /// Sends `job`'s chunk `chunk` (its items cut again, or read from its file's item
    /// list, as the plan cut them).
    pub(super) async fn send_chunk(&self, job: &JobRecord, chunk: u64) -> Result<(), WorkError> {
        let Some(items) = self.chunk_values(job, chunk).await? else {
            tracing::warn!(
                chunk,
                "the job's items no longer cut into its planned chunks"
            );
            return Ok(());
        };
        let message = WorkMessage::Chunk {
            job_id: job.id.clone(),
            tenant: job.tenant.clone(),
            chunk,
            items,
            retry_since: None,
        };
        self.queue.send(P::JOB_TYPE, &message).await?;
        Ok(())
    }
}
