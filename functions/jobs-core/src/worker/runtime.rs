//! The worker runtime: decodes an SQS batch, runs each message's plan or chunk, and
//! reports only the messages to retry.
//!
//! Exactly-once progress under at-least-once delivery: a chunk's outcome is committed in
//! one transaction with a ledger item that may not exist yet; a duplicate finds the ledger
//! and is acknowledged. Completion is a conditional write (`chunks_done = chunks_total` and
//! still running), so exactly one worker finishes a job.
//!
//! Fairness: a job never has more than `release_window` (W) chunk messages released and not
//! yet committed. The plan releases chunks `0..W`; chunk `n`, once committed, releases chunk
//! `n + W`. Each chunk has exactly one releaser, so there is no frontier to store and no
//! extra write. The release happens before the chunk's message is acknowledged, on the
//! first delivery and on any duplicate: a crash after the commit leaves the message on the
//! queue, and its redelivery releases `n + W` again (the ledger absorbs the duplicate). Jobs
//! of one type interleave: a later job waits behind at most W chunks of an earlier one.

use std::sync::{Arc, Mutex};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use serde_json::Value;
use tracing::Instrument;

use super::{ItemOutcome, MAX_CHUNK_BYTES, Processor, WorkError, chunk_items};
use crate::clock;
use crate::env::{self, SettingError};
use crate::job::{ItemError, JobStatus, JobType};
use crate::ports::{InputStore, ProgressStore, Tally, WorkMessage, WorkQueue};
use crate::record::{JobRecord, MAX_ERROR_SAMPLE};

/// How a worker runs its type's messages.
pub struct WorkerSettings {
    /// The queue's `maxReceiveCount`: the delivery that reaches it is the last one, so its
    /// failure is recorded instead of retried.
    pub max_receive_count: u32,
    /// Most items in one chunk (the type's registry `chunk_size`).
    pub chunk_size: usize,
    /// Most chunk messages of one job released and not yet committed (`RELEASE_WINDOW`).
    pub release_window: u64,
}

impl WorkerSettings {
    /// `MAX_RECEIVE_COUNT` and `RELEASE_WINDOW` from the environment; the chunk size from
    /// `job_type`'s registry entry.
    pub fn from_env(job_type: JobType) -> Result<WorkerSettings, SettingError> {
        let release_window: u64 = env::parsed("RELEASE_WINDOW")?;
        if release_window == 0 {
            return Err(SettingError::Invalid { name: "RELEASE_WINDOW".into(), reason: "must be at least 1".into() });
        }
        Ok(WorkerSettings { max_receive_count: env::parsed("MAX_RECEIVE_COUNT")?, chunk_size: job_type.spec().chunk_size, release_window })
    }
}

/// A job's items, chunk by chunk, as the plan cuts them.
type Chunks = Arc<Vec<Vec<Value>>>;

/// What happens to one SQS message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Done, a duplicate, or nothing can ever be done with it: delete it.
    Ack,
    /// Leave it on the queue for another attempt.
    Retry,
}

pub struct Worker<P: Processor, S, I, Q> {
    processor: P,
    store: S,
    inputs: I,
    queue: Q,
    settings: WorkerSettings,
    /// The params of the last job seen: a warm worker usually gets many chunks of one job.
    params_cache: Mutex<Option<(String, Arc<P::Params>)>>,
    /// The chunks of the last job that released one, by job id.
    chunks_cache: Mutex<Option<(String, Chunks)>>,
}

impl<P: Processor, S: ProgressStore, I: InputStore, Q: WorkQueue> Worker<P, S, I, Q> {
    pub fn new(processor: P, store: S, inputs: I, queue: Q, settings: WorkerSettings) -> Self {
        Worker { processor, store, inputs, queue, settings, params_cache: Mutex::new(None), chunks_cache: Mutex::new(None) }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn inputs(&self) -> &I {
        &self.inputs
    }

    pub fn queue(&self) -> &Q {
        &self.queue
    }

    /// Handles a batch; the response names the messages to retry.
    pub async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        let dispositions = futures_util::future::join_all(event.records.iter().map(|r| self.handle_message(r))).await;
        let mut response = SqsBatchResponse::default();
        for (record, disposition) in event.records.iter().zip(dispositions) {
            if disposition == Disposition::Retry {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = record.message_id.clone().unwrap_or_default();
                response.batch_item_failures.push(failure);
            }
        }
        response
    }

    pub async fn handle_message(&self, record: &SqsMessage) -> Disposition {
        let attempt: u32 = record.attributes.get("ApproximateReceiveCount").and_then(|n| n.parse().ok()).unwrap_or(1);
        let body = record.body.as_deref().unwrap_or("");
        let message: WorkMessage = match serde_json::from_str(body) {
            Ok(message) => message,
            Err(err) => {
                tracing::warn!(message_id = ?record.message_id, bytes = body.len(), error = %err, "unreadable message acknowledged");
                return Disposition::Ack;
            }
        };
        let (job_id, tenant, chunk) = match &message {
            WorkMessage::Plan { job_id, tenant } => (job_id, tenant, None),
            WorkMessage::Chunk { job_id, tenant, chunk, .. } => (job_id, tenant, Some(*chunk)),
        };
        let span = tracing::info_span!("message", job_id = %job_id, tenant = %tenant, job_type = P::JOB_TYPE.key(), chunk, attempt);
        let result = async {
            match message {
                WorkMessage::Plan { job_id, tenant } => self.plan(&job_id, &tenant).await,
                WorkMessage::Chunk { job_id, tenant, chunk, items } => {
                    self.chunk(&job_id, &tenant, chunk, items, attempt).await
                }
            }
        }
        .instrument(span.clone())
        .await;
        let _entered = span.enter();
        match result {
            Ok(disposition) => disposition,
            Err(err) => {
                tracing::warn!(error = %err, "message will be retried");
                Disposition::Retry
            }
        }
    }

    /// The job a message may act on: it must exist, be of this worker's type and belong to
    /// the message's tenant. Anything else is logged and left alone.
    async fn job_for(&self, job_id: &str, tenant: &str) -> Result<Option<JobRecord>, WorkError> {
        if job_id.is_empty() || job_id.len() > 64 {
            tracing::warn!("message names no valid job id; acknowledged");
            return Ok(None);
        }
        let job = self.store.load(job_id).await?;
        match job {
            Some(job) if job.tenant == tenant && job.job_type == P::JOB_TYPE => Ok(Some(job)),
            Some(_) => {
                tracing::warn!("message does not match the job's tenant or type; acknowledged");
                Ok(None)
            }
            None => {
                tracing::warn!("no such job; acknowledged");
                Ok(None)
            }
        }
    }

    async fn params(&self, job: &JobRecord) -> Result<Arc<P::Params>, WorkError> {
        if let Ok(cache) = self.params_cache.lock()
            && let Some((key, params)) = cache.as_ref().filter(|(key, _)| *key == job.input_key)
        {
            tracing::debug!(input = %key, "params from cache");
            return Ok(params.clone());
        }
        let bytes = self
            .inputs
            .get(&job.input_key)
            .await?
            .ok_or_else(|| WorkError::Rejected("the job's input is missing".into()))?;
        let params: Arc<P::Params> = Arc::new(
            serde_json::from_slice(&bytes).map_err(|e| WorkError::Rejected(format!("the job's input is unreadable: {e}")))?,
        );
        if let Ok(mut cache) = self.params_cache.lock() {
            *cache = Some((job.input_key.clone(), params.clone()));
        }
        Ok(params)
    }

    /// Expands a job into numbered chunk messages and marks it running.
    async fn plan(&self, job_id: &str, tenant: &str) -> Result<Disposition, WorkError> {
        let Some(job) = self.job_for(job_id, tenant).await? else { return Ok(Disposition::Ack) };
        if job.status.is_terminal() {
            return Ok(Disposition::Ack);
        }
        let params = match self.params(&job).await {
            Ok(params) => params,
            Err(WorkError::Rejected(reason)) => {
                tracing::error!(%reason, "job cannot be planned; failing it");
                let total = job.total.max(1);
                self.store.begin(job_id, total, 1, &clock::format(clock::now())).await?;
                let error = ItemError { item: "*".into(), reason };
                let tally = Tally { failed: total, ..Tally::default() };
                self.store.commit_chunk(job_id, 0, &tally, &[error], job.expires_at).await?;
                self.finish_if_done(job_id).await?;
                return Ok(Disposition::Ack);
            }
            Err(err) => return Err(err),
        };
        let chunks = self.chunks(&job, &params).await?;
        let total = chunks.iter().map(|c| c.len() as u64).sum::<u64>();
        if !self.store.begin(job_id, total, chunks.len() as u64, &clock::format(clock::now())).await? {
            tracing::info!("job no longer queued or running; plan acknowledged");
            return Ok(Disposition::Ack);
        }
        let window = usize::try_from(self.settings.release_window).unwrap_or(usize::MAX);
        let messages: Vec<WorkMessage> = chunks
            .iter()
            .take(window)
            .enumerate()
            .map(|(n, items)| WorkMessage::Chunk { job_id: job_id.into(), tenant: tenant.into(), chunk: n as u64, items: items.clone() })
            .collect();
        self.queue.send_all(P::JOB_TYPE, &messages).await?;
        tracing::info!(total, chunks = chunks.len(), released = messages.len(), "job planned");
        self.finish_if_done(job_id).await?;
        Ok(Disposition::Ack)
    }

    /// The job's items in chunks, as the plan cuts them: the same list every time (for live
    /// sources, the list the first plan stored), so chunk `n` is the same items whoever
    /// computes it. Kept for the last job seen.
    async fn chunks(&self, job: &JobRecord, params: &P::Params) -> Result<Chunks, WorkError> {
        if let Ok(cache) = self.chunks_cache.lock()
            && let Some((_, chunks)) = cache.as_ref().filter(|(id, _)| *id == job.id)
        {
            return Ok(chunks.clone());
        }
        let items = self.items(job, params).await?;
        let chunks = Arc::new(chunk_items(&items, self.settings.chunk_size, MAX_CHUNK_BYTES).map_err(|e| WorkError::Rejected(e.to_string()))?);
        if let Ok(mut cache) = self.chunks_cache.lock() {
            *cache = Some((job.id.clone(), chunks.clone()));
        }
        Ok(chunks)
    }

    /// Releases the chunk that chunk `committed` is the releaser of (`committed + W`), if
    /// the job has one.
    async fn release_after(&self, job: &JobRecord, committed: u64) -> Result<(), WorkError> {
        let next = committed.saturating_add(self.settings.release_window);
        if job.chunks_total.is_none_or(|total| next >= total) {
            return Ok(());
        }
        let params = self.params(job).await?;
        let chunks = self.chunks(job, &params).await?;
        let Some(items) = usize::try_from(next).ok().and_then(|n| chunks.get(n)) else {
            tracing::warn!(next, "the job's items no longer cut into its planned chunks");
            return Ok(());
        };
        let message = WorkMessage::Chunk { job_id: job.id.clone(), tenant: job.tenant.clone(), chunk: next, items: items.clone() };
        self.queue.send(P::JOB_TYPE, &message).await?;
        tracing::debug!(next, "chunk released");
        Ok(())
    }

    /// The job's items; for live sources, the list the first plan stored.
    async fn items(&self, job: &JobRecord, params: &P::Params) -> Result<Vec<P::Item>, WorkError> {
        if !P::SNAPSHOT_ITEMS {
            return self.processor.items(job, params).await;
        }
        let key = format!("{}.items.json", job.input_key.trim_end_matches(".json"));
        let decode = |bytes: &[u8]| serde_json::from_slice(bytes).map_err(|e| WorkError::Rejected(format!("unreadable item list: {e}")));
        if let Some(bytes) = self.inputs.get(&key).await? {
            return decode(&bytes);
        }
        let items = self.processor.items(job, params).await?;
        let bytes = serde_json::to_vec(&items).map_err(|e| WorkError::Rejected(e.to_string()))?;
        if self.inputs.put_if_absent(&key, bytes).await? {
            return Ok(items);
        }
        // A concurrent delivery of the same plan stored its list first: use that one.
        let bytes = self.inputs.get(&key).await?.ok_or_else(|| WorkError::Transient("item list vanished".into()))?;
        decode(&bytes)
    }

    async fn chunk(&self, job_id: &str, tenant: &str, chunk: u64, items: Vec<Value>, attempt: u32) -> Result<Disposition, WorkError> {
        let Some(job) = self.job_for(job_id, tenant).await? else { return Ok(Disposition::Ack) };
        if job.chunks_total.is_none_or(|total| chunk >= total) {
            tracing::warn!("chunk number outside the job's plan; acknowledged");
            return Ok(Disposition::Ack);
        }
        if self.store.chunk_committed(job_id, chunk).await? {
            tracing::info!("chunk already committed (duplicate delivery)");
            self.release_after(&job, chunk).await?;
            self.finish_if_done(job_id).await?;
            return Ok(Disposition::Ack);
        }
        let count = items.len() as u64;
        // Chunks come only from this worker's plan (the queue accepts nothing else, by IAM), so
        // more items than the job has unsettled is a forged or corrupt message: counting it
        // would push progress past 100 %.
        if job.succeeded + job.failed + job.cancelled + count > job.total {
            tracing::warn!(items = count, "chunk holds more items than the job has unsettled; acknowledged");
            return Ok(Disposition::Ack);
        }
        let (tally, errors) = if job.cancel_requested_at.is_some() || job.status == JobStatus::Cancelled {
            (Tally { cancelled: count, ..Tally::default() }, Vec::new())
        } else {
            match self.work(&job, items).await {
                Ok(settled) => settled,
                Err(WorkError::Transient(reason)) if attempt < self.settings.max_receive_count => {
                    return Err(WorkError::Transient(reason));
                }
                Err(err) => {
                    // Rejected, or the last delivery: record the items as failed so the job ends.
                    let reason = match err {
                        WorkError::Transient(reason) => format!("gave up after {attempt} attempts: {reason}"),
                        WorkError::Rejected(reason) => reason,
                    };
                    tracing::error!(%reason, items = count, "chunk failed as a whole");
                    (Tally { failed: count, ..Tally::default() }, vec![ItemError { item: format!("chunk {chunk}"), reason }])
                }
            }
        };
        let sample: Vec<ItemError> =
            if job.errors.len() >= MAX_ERROR_SAMPLE { Vec::new() } else { errors.into_iter().take(MAX_ERROR_SAMPLE - job.errors.len()).collect() };
        if self.store.commit_chunk(job_id, chunk, &tally, &sample, job.expires_at).await? {
            tracing::info!(succeeded = tally.succeeded, failed = tally.failed, cancelled = tally.cancelled, "chunk committed");
        } else {
            tracing::info!("chunk committed by a concurrent delivery");
        }
        self.release_after(&job, chunk).await?;
        self.finish_if_done(job_id).await?;
        Ok(Disposition::Ack)
    }

    /// Runs the processor over a chunk's items.
    async fn work(&self, job: &JobRecord, items: Vec<Value>) -> Result<(Tally, Vec<ItemError>), WorkError> {
        let items: Vec<P::Item> = serde_json::from_value(Value::Array(items))
            .map_err(|e| WorkError::Rejected(format!("unreadable chunk: {e}")))?;
        let params = self.params(job).await?;
        let outcomes = self.processor.process(job, &params, &items).await?;
        if outcomes.len() != items.len() {
            return Err(WorkError::Rejected(format!("{} outcomes for {} items", outcomes.len(), items.len())));
        }
        let mut tally = Tally::default();
        let mut errors = Vec::new();
        for (item, outcome) in items.iter().zip(outcomes) {
            match outcome {
                ItemOutcome::Succeeded => tally.succeeded += 1,
                ItemOutcome::Rejected(reason) => {
                    tally.failed += 1;
                    errors.push(ItemError { item: P::label(item), reason });
                }
            }
        }
        Ok((tally, errors))
    }

    /// Completes the job if every chunk is committed. The conditional write lets exactly
    /// one of several concurrent finishers through.
    async fn finish_if_done(&self, job_id: &str) -> Result<(), WorkError> {
        let Some(job) = self.store.load(job_id).await? else { return Ok(()) };
        if job.status != JobStatus::Running || job.chunks_total != Some(job.chunks_done) {
            return Ok(());
        }
        let status = final_status(&job);
        if self.store.complete(job_id, status, &clock::format(clock::now())).await? {
            tracing::info!(status = status.key(), succeeded = job.succeeded, failed = job.failed, cancelled = job.cancelled, "job completed");
        }
        Ok(())
    }
}

/// The status a job ends with, from its settled counters.
pub fn final_status(job: &JobRecord) -> JobStatus {
    if job.cancel_requested_at.is_some() {
        JobStatus::Cancelled
    } else if job.failed == 0 {
        JobStatus::Completed
    } else if job.succeeded == 0 {
        JobStatus::Failed
    } else {
        JobStatus::CompletedWithErrors
    }
}

#[cfg(test)]
mod tests;
