//! The worker runtime: decodes an SQS batch, runs each message's plan or chunk, and
//! reports only the messages to retry.
//!
//! Exactly-once progress under at-least-once delivery: a chunk's ledger item records which
//! of its items are settled (`settled`, a bit set), and every commit adds outcomes to the
//! ledger and the job's counters in one transaction, conditional on the ledger being as
//! last read. A delivery works only on the items the ledger does not hold; a duplicate of
//! a settled chunk is acknowledged. Completion is a conditional write (`chunks_done =
//! chunks_total` and still running), so exactly one worker finishes a job.
//!
//! Retry without repetition: an item that meets throttling or a transient failure is
//! retried inside the invocation (after a back-off); the items that settled are committed
//! and never run again. A running chunk commits at most every `checkpoint_interval`, so a
//! crash repeats only what ran since. Before the invocation's deadline the chunk commits
//! and hands itself on as a new message (a continuation) carrying the start of its retry
//! budget. Items fail for their own reasons, or once `retry_budget` passes with no item of
//! the chunk settling: never because the queue's receive count ran out while the
//! downstream was busy.
//!
//! Fairness: a job never has more than `release_window` (W) chunk messages released and not
//! yet settled. The plan releases chunks `0..W`; chunk `n`, once settled, releases chunk
//! `n + W`. Each chunk has exactly one releaser, so there is no frontier to store and no
//! extra write. The release happens before the chunk's message is acknowledged, on the
//! first delivery and on any duplicate: a crash after the last commit leaves the message
//! on the queue, and its redelivery releases `n + W` again (the ledger absorbs the
//! duplicate). Jobs of one type interleave: a later job waits behind at most W chunks of an
//! earlier one.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use serde_json::Value;
use time::OffsetDateTime;
use tracing::Instrument;

use super::{ItemOutcome, MAX_CHUNK_BYTES, Processor, Settled, WorkError, chunk_items};
use crate::audit::AuditLog;
use crate::ended::{EventBus, Observers};
use crate::clock;
use crate::env::{self, SettingError};
use crate::job::{ItemError, JobStatus, JobType};
use crate::ports::{ChunkCommit, ChunkLedger, InputStore, ItemFailure, ProgressStore, Tally, WorkMessage, WorkQueue};
use crate::record::{JobRecord, MAX_ERROR_SAMPLE};

/// Time kept back from the invocation's deadline: a chunk running into it commits and
/// hands itself on, and a message not started by then is handed on unchanged.
const DEADLINE_MARGIN: Duration = Duration::from_secs(3);
/// The first wait before retrying items that all failed; it doubles up to [`MAX_BACKOFF`]
/// and starts again once an item settles.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Jobs whose params and chunks a warm worker keeps: jobs of one type interleave.
const CACHED_JOBS: usize = 8;
/// Attempts at a commit that finds the ledger changed by a concurrent delivery.
const COMMIT_ATTEMPTS: usize = 4;

/// How a worker runs its type's messages.
pub struct WorkerSettings {
    /// The queue's `maxReceiveCount`: on the delivery that reaches it, items that meet a
    /// transient (not a throttling) failure are recorded as failed instead of retried, so a
    /// chunk that crashes its worker every time still ends.
    pub max_receive_count: u32,
    /// Most items in one chunk (the type's registry `chunk_size`).
    pub chunk_size: usize,
    /// Most chunk messages of one job released and not yet settled (`RELEASE_WINDOW`).
    pub release_window: u64,
    /// Most time a running chunk goes without committing its settled items
    /// (`CHECKPOINT_INTERVAL_SECONDS`): a crash repeats at most what ran in that time.
    pub checkpoint_interval: Duration,
    /// How long a chunk's unsettled items may keep failing, with no item of the chunk
    /// settling, before they are recorded as failed (`RETRY_BUDGET_SECONDS`).
    pub retry_budget: Duration,
}

impl WorkerSettings {
    /// `MAX_RECEIVE_COUNT`, `RELEASE_WINDOW`, `CHECKPOINT_INTERVAL_SECONDS` and
    /// `RETRY_BUDGET_SECONDS` from the environment; the chunk size from `job_type`'s
    /// registry entry.
    pub fn from_env(job_type: JobType) -> Result<WorkerSettings, SettingError> {
        let release_window: u64 = env::parsed("RELEASE_WINDOW")?;
        if release_window == 0 {
            return Err(SettingError::Invalid { name: "RELEASE_WINDOW".into(), reason: "must be at least 1".into() });
        }
        Ok(WorkerSettings {
            max_receive_count: env::parsed("MAX_RECEIVE_COUNT")?,
            chunk_size: job_type.spec().chunk_size,
            release_window,
            checkpoint_interval: Duration::from_secs(env::parsed("CHECKPOINT_INTERVAL_SECONDS")?),
            retry_budget: Duration::from_secs(env::parsed("RETRY_BUDGET_SECONDS")?),
        })
    }
}

/// A job's items, chunk by chunk, as the plan cuts them.
type Chunks = Arc<Vec<Vec<Value>>>;

/// The last few jobs' values, by job id, newest last.
struct Recent<V>(Mutex<VecDeque<(String, V)>>);

impl<V: Clone> Recent<V> {
    fn new() -> Recent<V> {
        Recent(Mutex::new(VecDeque::with_capacity(CACHED_JOBS)))
    }

    fn get(&self, key: &str) -> Option<V> {
        let cache = self.0.lock().ok()?;
        cache.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    fn put(&self, key: &str, value: V) {
        if let Ok(mut cache) = self.0.lock() {
            cache.retain(|(k, _)| k != key);
            if cache.len() >= CACHED_JOBS {
                cache.pop_front();
            }
            cache.push_back((key.to_string(), value));
        }
    }
}

/// What happens to one SQS message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Done, a duplicate, handed on, or nothing can ever be done with it: delete it.
    Ack,
    /// Leave it on the queue for another attempt.
    Retry,
}

/// How one item of a chunk is settled.
enum Settle {
    Succeeded,
    Failed(String),
    Cancelled,
}

/// A chunk's outcomes as they settle: what its ledger holds and what is not committed yet.
struct ChunkProgress {
    /// The ledger's `settled` as last read (`None`: no ledger item yet).
    before: Option<Settled>,
    /// `before` plus the uncommitted items.
    settled: Settled,
    uncommitted: Vec<(usize, Settle)>,
    /// Room left in the job's error sample.
    sample_room: usize,
    /// Set when an item met throttling since the last commit.
    paced_at: Option<String>,
    items: usize,
    last_commit: Instant,
    /// When this delivery started on the chunk.
    started: Instant,
}

impl ChunkProgress {
    fn settle(&mut self, position: usize, settle: Settle) {
        if !self.settled.contains(position) {
            self.settled.insert(position);
            self.uncommitted.push((position, settle));
        }
    }

    fn is_done(&self) -> bool {
        self.settled.len() >= self.items
    }
}

/// How a chunk's run ended.
enum RunEnd {
    Settled,
    HandedOn,
}

pub struct Worker<P: Processor, S, I, Q, A, B> {
    processor: P,
    store: S,
    inputs: I,
    queue: Q,
    /// Where job ends are recorded and announced ([`crate::ended`]).
    observers: Observers<A, B>,
    settings: WorkerSettings,
    /// The params of recent jobs, by input key: a warm worker usually gets many chunks of
    /// a few jobs.
    params_cache: Recent<Arc<P::Params>>,
    /// The chunks of recent jobs that released one, by job id.
    chunks_cache: Recent<Chunks>,
}

impl<P: Processor, S: ProgressStore, I: InputStore, Q: WorkQueue, A: AuditLog, B: EventBus> Worker<P, S, I, Q, A, B> {
    pub fn new(processor: P, store: S, inputs: I, queue: Q, observers: Observers<A, B>, settings: WorkerSettings) -> Self {
        Worker { processor, store, inputs, queue, observers, settings, params_cache: Recent::new(), chunks_cache: Recent::new() }
    }

    pub fn audit(&self) -> &A {
        self.observers.audit().log()
    }

    pub fn bus(&self) -> &B {
        self.observers.bus()
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

    /// Handles a batch with no deadline; the response names the messages to retry.
    pub async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        self.handle_batch_until(event, None).await
    }

    /// Handles a batch, its messages one after another (a chunk runs alone, so it settles
    /// soon and commits once); a message not started `DEADLINE_MARGIN` (3 s) before
    /// `deadline` is handed on. The response names the messages to retry.
    pub async fn handle_batch_until(&self, event: SqsEvent, deadline: Option<SystemTime>) -> SqsBatchResponse {
        let deadline = deadline.map(|at| Instant::now() + at.duration_since(SystemTime::now()).unwrap_or_default());
        let mut response = SqsBatchResponse::default();
        for record in &event.records {
            // Boxed: the message's future is deep enough to overflow the compiler's layout
            // recursion limit when nested in the Lambda runtime's.
            if Box::pin(self.handle_message_until(record, deadline)).await == Disposition::Retry {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = record.message_id.clone().unwrap_or_default();
                response.batch_item_failures.push(failure);
            }
        }
        response
    }

    pub async fn handle_message(&self, record: &SqsMessage) -> Disposition {
        self.handle_message_until(record, None).await
    }

    async fn handle_message_until(&self, record: &SqsMessage, deadline: Option<Instant>) -> Disposition {
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
            if near(deadline) {
                tracing::info!("too close to the deadline to start; handed on");
                return self.queue.send(P::JOB_TYPE, &message).await.map(|()| Disposition::Ack).map_err(WorkError::from);
            }
            match message {
                WorkMessage::Plan { job_id, tenant } => self.plan(&job_id, &tenant).await,
                WorkMessage::Chunk { job_id, tenant, chunk, items, retry_since } => {
                    let delivery = Delivery { attempt, retry_since: retry_since.as_deref().and_then(clock::parse), deadline };
                    self.chunk(&job_id, &tenant, chunk, items, delivery).await
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
        if let Some(params) = self.params_cache.get(&job.input_key) {
            return Ok(params);
        }
        let bytes = self
            .inputs
            .get(&job.input_key)
            .await?
            .ok_or_else(|| WorkError::Rejected("the job's input is missing".into()))?;
        let params: Arc<P::Params> = Arc::new(
            serde_json::from_slice(&bytes).map_err(|e| WorkError::Rejected(format!("the job's input is unreadable: {e}")))?,
        );
        self.params_cache.put(&job.input_key, params.clone());
        Ok(params)
    }

    /// Expands a job into numbered chunk messages and marks it running.
    async fn plan(&self, job_id: &str, tenant: &str) -> Result<Disposition, WorkError> {
        let Some(job) = self.job_for(job_id, tenant).await? else { return Ok(Disposition::Ack) };
        if job.status.is_terminal() {
            self.observers.on_job_end(&self.store, &job).await?;
            return Ok(Disposition::Ack);
        }
        let params = match self.params(&job).await {
            Ok(params) => params,
            Err(WorkError::Rejected(reason)) => {
                tracing::error!(%reason, "job cannot be planned; failing it");
                let total = job.total.max(1);
                self.store.begin(job_id, total, 1, &clock::format(clock::now())).await?;
                let commit = ChunkCommit {
                    after: settled_all(total),
                    tally: Tally { failed: total, ..Tally::default() },
                    errors: vec![ItemError { item: "*".into(), reason: reason.clone() }],
                    failures: vec![ItemFailure { position: 0, reason }],
                    done: true,
                    ..ChunkCommit::default()
                };
                self.store.commit_chunk(job_id, 0, &commit, job.expires_at).await?;
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
            .map(|(n, items)| WorkMessage::Chunk {
                job_id: job_id.into(),
                tenant: tenant.into(),
                chunk: n as u64,
                items: items.clone(),
                retry_since: None,
            })
            .collect();
        self.queue.send_all(P::JOB_TYPE, &messages).await?;
        tracing::info!(total, chunks = chunks.len(), released = messages.len(), "job planned");
        self.finish_if_done(job_id).await?;
        Ok(Disposition::Ack)
    }

    /// The job's items in chunks, as the plan cuts them: the same list every time (for live
    /// sources, the list the first plan stored), so chunk `n` is the same items whoever
    /// computes it. Kept for the last few jobs.
    async fn chunks(&self, job: &JobRecord, params: &P::Params) -> Result<Chunks, WorkError> {
        if let Some(chunks) = self.chunks_cache.get(&job.id) {
            return Ok(chunks);
        }
        let items = self.items(job, params).await?;
        let chunks = Arc::new(chunk_items(&items, self.settings.chunk_size, MAX_CHUNK_BYTES).map_err(|e| WorkError::Rejected(e.to_string()))?);
        self.chunks_cache.put(&job.id, chunks.clone());
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
        let message =
            WorkMessage::Chunk { job_id: job.id.clone(), tenant: job.tenant.clone(), chunk: next, items: items.clone(), retry_since: None };
        self.queue.send(P::JOB_TYPE, &message).await?;
        tracing::debug!(next, "chunk released");
        Ok(())
    }

    /// The job's items; for live sources, the list the first plan stored.
    async fn items(&self, job: &JobRecord, params: &P::Params) -> Result<Vec<P::Item>, WorkError> {
        if !matches!(P::JOB_TYPE.spec().items, crate::registry::ItemSource::Snapshot { .. }) {
            return self.processor.items(job, params).await;
        }
        let key = crate::record::snapshot_key(&job.input_key);
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

    async fn chunk(&self, job_id: &str, tenant: &str, chunk: u64, items: Vec<Value>, delivery: Delivery) -> Result<Disposition, WorkError> {
        let Some(job) = self.job_for(job_id, tenant).await? else { return Ok(Disposition::Ack) };
        if job.chunks_total.is_none_or(|total| chunk >= total) {
            tracing::warn!("chunk number outside the job's plan; acknowledged");
            return Ok(Disposition::Ack);
        }
        let ledger = self.store.chunk_ledger(job_id, chunk).await?;
        if ledger.as_ref().is_some_and(|l| l.done) {
            tracing::info!("chunk already settled (duplicate delivery)");
            self.release_after(&job, chunk).await?;
            self.finish_if_done(job_id).await?;
            return Ok(Disposition::Ack);
        }
        let settled = ledger.map(|l| l.settled);
        let unsettled = items.len().saturating_sub(settled.as_ref().map_or(0, Settled::len)) as u64;
        // Chunks come only from this worker's plan (the queue accepts nothing else, by IAM), so
        // more items than the job has unsettled is a forged or corrupt message: counting it
        // would push progress past 100 %.
        if job.succeeded + job.failed + job.cancelled + unsettled > job.total {
            tracing::warn!(items = items.len(), "chunk holds more items than the job has unsettled; acknowledged");
            return Ok(Disposition::Ack);
        }
        let mut progress = ChunkProgress {
            settled: settled.clone().unwrap_or_default(),
            before: settled,
            uncommitted: Vec::new(),
            sample_room: MAX_ERROR_SAMPLE.saturating_sub(job.errors.len()),
            paced_at: None,
            items: items.len(),
            last_commit: Instant::now(),
            started: Instant::now(),
        };
        let end = if job.cancel_requested_at.is_some() || job.status == JobStatus::Cancelled {
            self.cancel_rest(&job, chunk, &mut progress, &[]).await?;
            RunEnd::Settled
        } else {
            self.run(&job, chunk, &items, &mut progress, delivery).await?
        };
        if let RunEnd::HandedOn = end {
            return Ok(Disposition::Ack);
        }
        self.release_after(&job, chunk).await?;
        self.finish_if_done(job_id).await?;
        Ok(Disposition::Ack)
    }

    /// Works through a chunk's unsettled items, [`Processor::STEP`] at a time, retrying the
    /// ones that fail for throttling or a transient reason, committing at most every
    /// checkpoint interval and handing the chunk on before the deadline.
    async fn run(&self, job: &JobRecord, chunk: u64, raw: &[Value], progress: &mut ChunkProgress, delivery: Delivery) -> Result<RunEnd, WorkError> {
        let params = match self.params(job).await {
            Ok(params) => params,
            Err(WorkError::Rejected(reason)) => {
                tracing::error!(%reason, "chunk cannot run; its items fail");
                for position in progress.settled.missing(raw.len()) {
                    progress.settle(position, Settle::Failed(reason.clone()));
                }
                self.commit(job, chunk, progress, raw).await?;
                return Ok(RunEnd::Settled);
            }
            Err(err) => return Err(err),
        };
        let last_delivery = delivery.attempt >= self.settings.max_receive_count;
        let mut retry_since = delivery.retry_since;
        let mut backoff = FIRST_BACKOFF;
        let mut pending: VecDeque<usize> = progress.settled.missing(raw.len()).into();
        while !pending.is_empty() {
            if near(delivery.deadline) {
                self.commit(job, chunk, progress, raw).await?;
                let message = WorkMessage::Chunk {
                    job_id: job.id.clone(),
                    tenant: job.tenant.clone(),
                    chunk,
                    items: raw.to_vec(),
                    retry_since: retry_since.map(clock::format),
                };
                self.queue.send(P::JOB_TYPE, &message).await?;
                tracing::info!(unsettled = pending.len(), "deadline near; chunk handed on");
                return Ok(RunEnd::HandedOn);
            }
            let step: Vec<usize> = pending.drain(..P::STEP.clamp(1, pending.len())).collect();
            let mut positions = Vec::with_capacity(step.len());
            let mut items = Vec::with_capacity(step.len());
            for position in step {
                match serde_json::from_value::<P::Item>(raw[position].clone()) {
                    Ok(item) => {
                        positions.push(position);
                        items.push(item);
                    }
                    Err(err) => progress.settle(position, Settle::Failed(format!("unreadable item: {err}"))),
                }
            }
            let mut results = self.processor.process(job, &params, &items).await;
            if results.len() != items.len() {
                let reason = format!("{} outcomes for {} items", results.len(), items.len());
                results = vec![Err(WorkError::Rejected(reason)); items.len()];
            }
            let mut progressed = false;
            let mut again = Vec::new();
            let mut last_reason = String::new();
            for (position, result) in positions.into_iter().zip(results) {
                match result {
                    Ok(ItemOutcome::Succeeded) => progress.settle(position, Settle::Succeeded),
                    Ok(ItemOutcome::Rejected(reason)) | Err(WorkError::Rejected(reason)) => progress.settle(position, Settle::Failed(reason)),
                    Err(WorkError::Throttled(reason)) => {
                        progress.paced_at = Some(clock::format(clock::now()));
                        again.push((position, true));
                        last_reason = reason;
                        continue;
                    }
                    Err(WorkError::Transient(reason)) => {
                        again.push((position, false));
                        last_reason = reason;
                        continue;
                    }
                }
                progressed = true;
            }
            if progressed {
                retry_since = None;
                backoff = FIRST_BACKOFF;
            }
            if !again.is_empty() {
                let since = *retry_since.get_or_insert_with(clock::now);
                let spent = clock::now() - since >= self.settings.retry_budget;
                for (position, throttled) in again {
                    if spent || (last_delivery && !throttled) {
                        let why = if spent { format!("no progress for {} s", (clock::now() - since).whole_seconds()) } else { format!("delivery {}", delivery.attempt) };
                        progress.settle(position, Settle::Failed(format!("gave up after {why}: {last_reason}")));
                    } else {
                        pending.push_back(position);
                    }
                }
                if !progressed && !pending.is_empty() {
                    let room = delivery.deadline.map_or(backoff, |d| d.saturating_duration_since(Instant::now()).saturating_sub(DEADLINE_MARGIN));
                    tokio::time::sleep(backoff.min(room)).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
            if !pending.is_empty() && progress.last_commit.elapsed() >= self.settings.checkpoint_interval {
                self.commit(job, chunk, progress, raw).await?;
                pending.retain(|&position| !progress.settled.contains(position));
                // The job may have been cancelled meanwhile: a long chunk stops at a checkpoint.
                if let Some(now) = self.store.load(&job.id).await?
                    && now.cancel_requested_at.is_some()
                {
                    let rest: Vec<usize> = pending.drain(..).collect();
                    self.cancel_rest(job, chunk, progress, raw).await?;
                    tracing::info!(cancelled = rest.len(), "job cancelled; chunk stopped at a checkpoint");
                }
            }
        }
        self.commit(job, chunk, progress, raw).await?;
        Ok(RunEnd::Settled)
    }

    /// Settles every item still open as cancelled, and commits.
    async fn cancel_rest(&self, job: &JobRecord, chunk: u64, progress: &mut ChunkProgress, raw: &[Value]) -> Result<(), WorkError> {
        for position in progress.settled.missing(progress.items) {
            progress.settle(position, Settle::Cancelled);
        }
        self.commit(job, chunk, progress, raw).await
    }

    /// Commits what settled since the last commit. When a concurrent delivery of the chunk
    /// committed in between, re-reads the ledger, drops what it settled, and tries again.
    async fn commit(&self, job: &JobRecord, chunk: u64, progress: &mut ChunkProgress, raw: &[Value]) -> Result<(), WorkError> {
        progress.last_commit = Instant::now();
        for _ in 0..COMMIT_ATTEMPTS {
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
                        commit.failures.push(ItemFailure { position: *position as u32, reason: reason.clone() });
                        if commit.errors.len() < progress.sample_room {
                            // Named only for the sample: decoding every item for its label doubled a chunk's decoding.
                            let item = raw.get(*position).map_or_else(
                                || format!("item {position}"),
                                |v| serde_json::from_value::<P::Item>(v.clone()).map_or_else(|_| v.to_string(), |i| P::label(&i)),
                            );
                            commit.errors.push(ItemError { item, reason: reason.clone() });
                        }
                    }
                }
            }
            if self.store.commit_chunk(&job.id, chunk, &commit, job.expires_at).await? {
                tracing::info!(
                    succeeded = commit.tally.succeeded,
                    failed = commit.tally.failed,
                    cancelled = commit.tally.cancelled,
                    done = commit.done,
                    "chunk committed"
                );
                let chunk_ms = commit.done.then(|| u64::try_from(progress.started.elapsed().as_millis()).unwrap_or(u64::MAX));
                super::emf::emit_commit(P::JOB_TYPE, commit.tally.succeeded, commit.tally.failed, chunk_ms);
                progress.sample_room -= commit.errors.len();
                progress.before = Some(commit.after);
                progress.uncommitted.clear();
                progress.paced_at = None;
                return Ok(());
            }
            let theirs: ChunkLedger = self.store.chunk_ledger(&job.id, chunk).await?.unwrap_or_default();
            tracing::info!(theirs = theirs.settled.len(), "a concurrent delivery committed first; merging");
            progress.uncommitted.retain(|(position, _)| !theirs.done && !theirs.settled.contains(*position));
            let mut settled = theirs.settled.clone();
            for (position, _) in &progress.uncommitted {
                settled.insert(*position);
            }
            if theirs.done {
                settled = settled_all(progress.items as u64);
            }
            progress.settled = settled;
            progress.before = Some(theirs.settled);
        }
        Err(WorkError::Transient("the chunk's ledger kept changing under concurrent deliveries".into()))
    }

    /// Completes the job if every chunk is committed. The conditional write lets exactly
    /// one of several concurrent finishers through.
    async fn finish_if_done(&self, job_id: &str) -> Result<(), WorkError> {
        let Some(mut job) = self.store.load(job_id).await? else { return Ok(()) };
        if job.status.is_terminal() {
            // Ended by a delivery that crashed before its end steps ran: run them now.
            self.observers.on_job_end(&self.store, &job).await?;
            return Ok(());
        }
        if job.status != JobStatus::Running || job.chunks_total != Some(job.chunks_done) {
            return Ok(());
        }
        let status = final_status(&job);
        let at = clock::format(clock::now());
        if self.store.complete(job_id, status, &at).await? {
            tracing::info!(status = status.key(), succeeded = job.succeeded, failed = job.failed, cancelled = job.cancelled, "job completed");
            job.status = status;
            job.completed_at = Some(at.clone());
            job.end_pending = Some(at);
            self.observers.on_job_end(&self.store, &job).await?;
        }
        Ok(())
    }
}

/// What a chunk delivery brings besides its items.
#[derive(Clone, Copy)]
struct Delivery {
    /// SQS `ApproximateReceiveCount`.
    attempt: u32,
    /// A continuation's start of its retry budget.
    retry_since: Option<OffsetDateTime>,
    deadline: Option<Instant>,
}

/// Whether the deadline is within [`DEADLINE_MARGIN`].
fn near(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|at| at.saturating_duration_since(Instant::now()) < DEADLINE_MARGIN)
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
fn settled_all(count: u64) -> Settled {
    let mut settled = Settled::default();
    for position in 0..count {
        settled.insert(position as usize);
    }
    settled
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
