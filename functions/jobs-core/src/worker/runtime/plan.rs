//! Planning: a `plan` message expands its job into numbered chunks, marks it running and
//! releases its first chunks into free slots of its release window (`window.rs`). The item list is the same whoever computes it (for types whose worker
//! finds the items, the list the first plan stored), so chunk `n` is always the same items.

use std::sync::Arc;
use std::time::Instant;

use super::commit::settled_all;
use super::file::Planned;
use super::{Chunks, Delivery, Disposition, Worker};
use crate::clock;
use crate::domain::chunk::{ChunkCommit, ItemFailure, MAX_CHUNK_BYTES, Tally, chunk_items};
use crate::domain::job::{ItemError, JobStatus};
use crate::domain::record::JobRecord;
use crate::ports::WorkerPorts;
use crate::ports::{InputStore, ProgressStore, WorkMessage, WorkQueue};
use crate::worker::{Processor, WorkError};

impl<P: Processor, W: WorkerPorts> Worker<P, W> {
    /// A plan message: `woken` when a pass (or another woken plan) sent it again for a
    /// deferred job. A woken plan first sends again what its earlier run woke (a crash may
    /// have cut that short); while its job is in `woken` it plans the job and leaves `woken`
    /// at its end, whatever its outcome (`window.rs`, `leave_woken`); otherwise it is a
    /// plan like any other (a duplicate is absorbed, a plan cut short resumes).
    pub(super) async fn plan(
        &self,
        job_id: &str,
        tenant: &str,
        woken: bool,
        delivery: Delivery,
    ) -> Result<Disposition, WorkError> {
        let key = self.settings.release.scope.key(tenant, P::JOB_TYPE, job_id);
        if !woken || !self.woken_again(&key, tenant, job_id).await? {
            return self.plan_job(job_id, tenant, true, delivery).await;
        }
        let disposition = self.plan_job(job_id, tenant, false, delivery).await?;
        if disposition == Disposition::Ack {
            self.leave_woken(&key, tenant, job_id).await?;
        }
        Ok(disposition)
    }

    /// Expands a job into numbered chunk messages and marks it running, unless it waits for
    /// its tenant's running limit, or `may_defer` and its release window is full before it
    /// started any work (it is then deferred). A job from a file whose reading does not
    /// finish before the delivery's deadline records how far it got and sends its plan
    /// message again. A job of one chunk runs it here ([`Worker::run_inline`]).
    async fn plan_job(
        &self,
        job_id: &str,
        tenant: &str,
        may_defer: bool,
        delivery: Delivery,
    ) -> Result<Disposition, WorkError> {
        let deadline = delivery.deadline;
        let Some(job) = self.job_for(job_id, tenant).await? else {
            return Ok(Disposition::Ack);
        };
        if job.status.is_terminal() {
            if job.status == JobStatus::Cancelled && job.chunks_total.is_none() && job.total > 0 {
                self.list_cancelled_items(&job).await?;
            }
            self.observers
                .on_job_end(&self.store, &self.queue, &job)
                .await?;
            return Ok(Disposition::Ack);
        }
        if !self.admitted(&job).await? {
            return Ok(Disposition::Ack);
        }
        if may_defer && self.deferred(&job).await? {
            tracing::info!("release window full; plan deferred");
            return Ok(Disposition::Ack);
        }
        let params = match self.params(&job).await {
            Ok(params) => params,
            Err(WorkError::Rejected(reason)) => {
                tracing::error!(%reason, "job cannot be planned; failing it");
                self.fail_plan(&job, reason).await?;
                return Ok(Disposition::Ack);
            }
            Err(err) => return Err(err),
        };
        // Inline items are cut here and kept; a file's are written by `plan_file` and read
        // back chunk by chunk.
        let (total, count, chunks) = match &job.file {
            Some(file) => {
                if job.chunks_total.is_none() && !self.lease_plan(&job, deadline).await? {
                    tracing::info!("another plan reads the job's file; acknowledged");
                    return Ok(Disposition::Ack);
                }
                match self.plan_file(&job, file, deadline).await? {
                    Planned::Done(list) => (list.total, list.chunks, None),
                    Planned::Refused(reason) => {
                        tracing::warn!(%reason, "the job's file is refused; failing the job");
                        self.fail_plan(&job, reason).await?;
                        return Ok(Disposition::Ack);
                    }
                    Planned::Paused(checkpoint) => {
                        self.store.plan_paused(job_id, checkpoint.total).await?;
                        let again = WorkMessage::Plan {
                            job_id: job_id.into(),
                            tenant: tenant.into(),
                            woken: false,
                        };
                        self.queue.send(P::JOB_TYPE, &again).await?;
                        tracing::info!(rows = checkpoint.total, "plan handed on");
                        return Ok(Disposition::Ack);
                    }
                }
            }
            None => {
                let chunks = self.chunks(&job, &params).await?;
                let total = chunks.iter().map(|c| c.len() as u64).sum::<u64>();
                (total, chunks.len() as u64, Some(chunks))
            }
        };
        if !self
            .store
            .begin(job_id, total, count, &clock::format(clock::now()))
            .await?
        {
            tracing::info!("job no longer queued or running; plan acknowledged");
            return Ok(Disposition::Ack);
        }
        let Some(job) = self.store.load(job_id).await? else {
            return Ok(Disposition::Ack);
        };
        let released = self.release_first(&job).await?;
        let mut messages = Vec::with_capacity(released.len());
        for n in released {
            let items = match &chunks {
                Some(chunks) => usize::try_from(n).ok().and_then(|i| chunks.get(i)).cloned(),
                None => self.file_chunk(&job, n).await?,
            };
            if let Some(items) = items {
                messages.push(WorkMessage::Chunk {
                    job_id: job_id.into(),
                    tenant: tenant.into(),
                    chunk: n,
                    items,
                    retry_since: None,
                });
            }
        }
        if count == 1 && messages.len() == 1 {
            tracing::info!(
                total,
                chunks = count,
                "job planned; its one chunk runs here"
            );
            return self.run_inline(messages.remove(0), delivery).await;
        }
        self.queue.send_all(P::JOB_TYPE, &messages).await?;
        tracing::info!(
            total,
            chunks = count,
            released = messages.len(),
            "job planned"
        );
        self.finish_if_done(job_id).await?;
        Ok(Disposition::Ack)
    }

    /// Runs a one-chunk job's released chunk 0 in its plan's delivery instead of sending
    /// it: the smallest jobs, whose latency is mostly queue hops, take one SQS hop instead
    /// of two. The plan message stays unacknowledged until the chunk has run, so a crash
    /// leaves it on the queue and its redelivery releases and runs the chunk again (its
    /// ledger absorbs what settled). A chunk that asks to be retried, or whose run fails,
    /// is sent as its own message, as the plan would have, and the plan is acknowledged.
    /// `message` is the chunk's message as the plan built it (anything else is sent as is).
    async fn run_inline(
        &self,
        message: WorkMessage,
        delivery: Delivery,
    ) -> Result<Disposition, WorkError> {
        let WorkMessage::Chunk {
            job_id,
            tenant,
            chunk,
            items,
            ..
        } = &message
        else {
            self.queue.send(P::JOB_TYPE, &message).await?;
            return Ok(Disposition::Ack);
        };
        let outcome = self
            .chunk(job_id, tenant, *chunk, items.clone(), delivery)
            .await;
        match outcome {
            Ok(Disposition::Ack) => return Ok(Disposition::Ack),
            Ok(Disposition::Retry) => tracing::warn!("the chunk run here asks for a retry; sent"),
            Err(err) => tracing::warn!(error = %err, "the chunk run here failed; sent"),
        }
        self.queue.send(P::JOB_TYPE, &message).await?;
        Ok(Disposition::Ack)
    }

    /// Takes the reading of `job`'s file until 30 s past `deadline` (15 minutes without
    /// one, a Lambda's longest run): a duplicate plan message finds it taken, and one
    /// delivered after a crash finds it expired.
    async fn lease_plan(
        &self,
        job: &JobRecord,
        deadline: Option<Instant>,
    ) -> Result<bool, WorkError> {
        let now = clock::now().unix_timestamp();
        let left = deadline.map_or(900, |d| {
            d.saturating_duration_since(Instant::now()).as_secs() as i64
        });
        Ok(self.store.lease_plan(&job.id, now + left + 30, now).await?)
    }

    /// Ends a job that cannot be planned as failed, with `reason` as its one error: its
    /// items (at least one) count as failed.
    async fn fail_plan(&self, job: &JobRecord, reason: String) -> Result<(), WorkError> {
        let total = job.total.max(1);
        self.store
            .begin(&job.id, total, 1, &clock::format(clock::now()))
            .await?;
        let commit = ChunkCommit {
            after: settled_all(total),
            tally: Tally {
                failed: total,
                ..Tally::default()
            },
            errors: vec![ItemError {
                item: "*".into(),
                reason: reason.clone(),
            }],
            failures: vec![ItemFailure {
                position: 0,
                reason,
            }],
            done: true,
            ..ChunkCommit::default()
        };
        self.store
            .commit_chunk(&job.id, 0, &commit, job.expires_at)
            .await?;
        self.finish_if_done(&job.id).await?;
        Ok(())
    }

    /// The items of chunk `n` of `job`, as the plan cut them; `None` when the job has no
    /// chunk `n`.
    pub(super) async fn chunk_values(
        &self,
        job: &JobRecord,
        n: u64,
    ) -> Result<Option<Vec<serde_json::Value>>, WorkError> {
        if job.file.is_some() {
            return self.file_chunk(job, n).await;
        }
        let params = self.params(job).await?;
        let chunks = self.chunks(job, &params).await?;
        Ok(usize::try_from(n).ok().and_then(|i| chunks.get(i)).cloned())
    }

    /// A job cancelled before its plan has every item cancelled. A type whose worker finds
    /// its items stores their list now, so that the item report and a retry name them
    /// (params that name no items, such as idle sessions, have a total of 0 and list none).
    async fn list_cancelled_items(&self, job: &JobRecord) -> Result<(), WorkError> {
        if !matches!(
            P::JOB_TYPE.spec().items,
            crate::domain::registry::ItemSource::Snapshot { .. }
        ) {
            return Ok(());
        }
        match self.params(job).await {
            Ok(params) => self.items(job, &params).await.map(drop),
            Err(WorkError::Rejected(reason)) => {
                tracing::warn!(%reason, "the items of a job cancelled before its plan cannot be listed");
                Ok(())
            }
            Err(err) => Err(err),
        }
    }

    /// The job's items in chunks, as the plan cuts them: the same list every time (for live
    /// sources, the list the first plan stored), so chunk `n` is the same items whoever
    /// computes it. Kept for the last few jobs.
    pub(super) async fn chunks(
        &self,
        job: &JobRecord,
        params: &P::Params,
    ) -> Result<Chunks, WorkError> {
        if let Some(chunks) = self.chunks_cache.get(&job.id) {
            return Ok(chunks);
        }
        let items = self.items(job, params).await?;
        let chunks = Arc::new(
            chunk_items(&items, self.settings.chunk_size, MAX_CHUNK_BYTES)
                .map_err(|e| WorkError::Rejected(e.to_string()))?,
        );
        self.chunks_cache.put(&job.id, chunks.clone());
        Ok(chunks)
    }

    /// The job's items; for live sources, the list the first plan stored.
    async fn items(&self, job: &JobRecord, params: &P::Params) -> Result<Vec<P::Item>, WorkError> {
        if !matches!(
            P::JOB_TYPE.spec().items,
            crate::domain::registry::ItemSource::Snapshot { .. }
        ) {
            return self.processor.items(job, params).await;
        }
        let key = crate::domain::record::snapshot_key(&job.input_key);
        let decode = |bytes: &[u8]| {
            serde_json::from_slice(bytes)
                .map_err(|e| WorkError::Rejected(format!("unreadable item list: {e}")))
        };
        if let Some(bytes) = self.inputs.get(&key).await? {
            return decode(&bytes);
        }
        let items = self.processor.items(job, params).await?;
        let bytes = serde_json::to_vec(&items).map_err(|e| WorkError::Rejected(e.to_string()))?;
        if self.inputs.put_if_absent(&key, bytes).await? {
            return Ok(items);
        }
        // A concurrent delivery of the same plan stored its list first: use that one.
        let bytes = self
            .inputs
            .get(&key)
            .await?
            .ok_or_else(|| WorkError::Transient("item list vanished".into()))?;
        decode(&bytes)
    }
}
