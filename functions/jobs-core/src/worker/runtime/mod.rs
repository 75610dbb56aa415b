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
//! Fairness: a tenant never has more than `release.limit` (W) chunk messages of one type
//! released and not yet settled, however many jobs it starts (its release window). The plan
//! takes free slots for a job's first chunks, or puts the job in line; a settled chunk
//! passes its slot, exactly once (recorded in its ledger item), to the next chunk of the job
//! whose turn it is. The pass happens before the chunk's message is acknowledged, on the
//! first delivery and on any duplicate: a crash after the last commit leaves the message on
//! the queue, and its redelivery makes or repeats the pass (the ledger absorbs a duplicate
//! chunk). Tenants interleave on a queue: another tenant's job waits behind at most W chunks
//! of each tenant. A plan that finds its tenant's window full before its job started is put
//! off (deferred) and sent again when a pass finds nobody else waiting, so a tenant's many
//! queued jobs are planned a few at a time.
//!
//! The parts: `plan.rs` expands a job into chunks (and runs a job of one chunk in the
//! plan's delivery); `window.rs` releases them into the
//! release window; `run.rs` works a chunk's items (retries, checkpoints, continuations);
//! `commit.rs` records outcomes exactly once and completes the job. The chunk ledger's types are `crate::domain::chunk`.

mod admission;
mod commit;
mod file;
mod plan;

pub use file::{Checkpoint, ItemAt, ItemList, Planned, write_item_list, write_retry_list};
mod run;
mod window;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use serde_json::Value;
use time::OffsetDateTime;
use tracing::Instrument;

use super::{Processor, WorkError};
use crate::clock;
use crate::domain::ended::Observers;
use crate::domain::job::{JobStatus, JobType};
use crate::domain::limits::TenantLimits;
use crate::domain::record::JobRecord;
use crate::domain::window::ReleaseSettings;
use crate::env::{self, SettingError};
use crate::ports::WorkerPorts;
use crate::ports::{InputStore, ProgressStore, WorkMessage, WorkQueue};

/// Time kept back from the invocation's deadline: a chunk running into it commits and
/// hands itself on, and a message not started by then is handed on unchanged.
const DEADLINE_MARGIN: Duration = Duration::from_secs(3);
/// Jobs whose params and chunks a warm worker keeps: jobs of one type interleave.
const CACHED_JOBS: usize = 32;

/// How a worker runs its type's messages.
pub struct WorkerSettings {
    /// The queue's `maxReceiveCount`: on the delivery that reaches it, items that meet a
    /// transient (not a throttling) failure are recorded as failed instead of retried, so a
    /// chunk that crashes its worker every time still ends.
    pub max_receive_count: u32,
    /// Most items in one chunk (the type's registry `chunk_size`).
    pub chunk_size: usize,
    /// How chunk messages are released (`RELEASE_WINDOW`, `RELEASE_WINDOW_SCOPE`).
    pub release: ReleaseSettings,
    /// Most time a running chunk goes without committing its settled items
    /// (`CHECKPOINT_INTERVAL_SECONDS`): a crash repeats at most what ran in that time.
    pub checkpoint_interval: Duration,
    /// How long a chunk's unsettled items may keep failing, with no item of the chunk
    /// settling, before they are recorded as failed (`RETRY_BUDGET_SECONDS`).
    pub retry_budget: Duration,
    /// The limits of a tenant that has none of its own ([`TenantLimits::from_env`]).
    pub default_limits: TenantLimits,
    /// Where a file job's item list starts a new segment
    /// ([`crate::domain::file::SEGMENT_BYTES`]).
    pub segment_bytes: usize,
}

impl WorkerSettings {
    /// `MAX_RECEIVE_COUNT`, `RELEASE_WINDOW`, `RELEASE_WINDOW_SCOPE` (optional),
    /// `CHECKPOINT_INTERVAL_SECONDS` and `RETRY_BUDGET_SECONDS` from the environment; the chunk size from `job_type`'s
    /// registry entry.
    pub fn from_env(job_type: JobType) -> Result<WorkerSettings, SettingError> {
        Ok(WorkerSettings {
            max_receive_count: env::parsed("MAX_RECEIVE_COUNT")?,
            chunk_size: job_type.spec().chunk_size,
            release: ReleaseSettings::from_env()?,
            checkpoint_interval: Duration::from_secs(env::parsed("CHECKPOINT_INTERVAL_SECONDS")?),
            retry_budget: Duration::from_secs(env::parsed("RETRY_BUDGET_SECONDS")?),
            default_limits: TenantLimits::from_env()?,
            segment_bytes: crate::domain::file::SEGMENT_BYTES,
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

pub struct Worker<P: Processor, W: WorkerPorts> {
    processor: P,
    store: W::Store,
    inputs: W::Inputs,
    queue: W::Queue,
    /// Where job ends are recorded and announced ([`crate::domain::ended`]).
    observers: Observers<W::Audit, W::Bus>,
    settings: WorkerSettings,
    /// The params of recent jobs, by input key: a warm worker usually gets many chunks of
    /// a few jobs.
    params_cache: Recent<Arc<P::Params>>,
    /// The chunks of recent jobs that released one, by job id.
    chunks_cache: Recent<Chunks>,
}

impl<P: Processor, W: WorkerPorts> Worker<P, W> {
    pub fn new(
        processor: P,
        store: W::Store,
        inputs: W::Inputs,
        queue: W::Queue,
        observers: Observers<W::Audit, W::Bus>,
        settings: WorkerSettings,
    ) -> Self {
        Worker {
            processor,
            store,
            inputs,
            queue,
            observers,
            settings,
            params_cache: Recent::new(),
            chunks_cache: Recent::new(),
        }
    }

    pub fn audit(&self) -> &W::Audit {
        self.observers.audit().log()
    }

    pub fn bus(&self) -> &W::Bus {
        self.observers.bus()
    }

    pub fn store(&self) -> &W::Store {
        &self.store
    }

    pub fn inputs(&self) -> &W::Inputs {
        &self.inputs
    }

    pub fn queue(&self) -> &W::Queue {
        &self.queue
    }

    /// Handles a batch with no deadline; the response names the messages to retry.
    pub async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        self.handle_batch_until(event, None).await
    }

    /// Handles a batch: its plans at once ([`PLANS_AT_ONCE`] at most), then its chunks one
    /// after another (a chunk runs alone, so it settles soon and commits once), tenants
    /// taking turns ([`in_turns`]). A plan is mostly a few conditional writes (or one that
    /// defers it), so a tenant that starts many jobs at once holds the plan queue for one
    /// plan's time per five plans. A message not started `DEADLINE_MARGIN` (3 s) before
    /// `deadline` is handed on. The response names the messages to retry.
    pub async fn handle_batch_until(
        &self,
        event: SqsEvent,
        deadline: Option<SystemTime>,
    ) -> SqsBatchResponse {
        let deadline = deadline
            .map(|at| Instant::now() + at.duration_since(SystemTime::now()).unwrap_or_default());
        // Each body is parsed once, here: a chunk's can be near SQS's 256 KiB.
        let read: Vec<Read<'_>> = event
            .records
            .iter()
            .map(|record| (record, read(record)))
            .collect();
        let (plans, chunks): (Vec<Read<'_>>, Vec<Read<'_>>) = in_turns(read)
            .into_iter()
            .partition(|(_, message)| matches!(message, Some(WorkMessage::Plan { .. })));
        // Boxed: a message's future is deep enough to overflow the compiler's layout
        // recursion limit when nested in the Lambda runtime's.
        let mut retry: Vec<&SqsMessage> = Vec::new();
        let mut plans = plans.into_iter().peekable();
        while plans.peek().is_some() {
            let group: Vec<Read<'_>> = plans.by_ref().take(PLANS_AT_ONCE).collect();
            let records: Vec<&SqsMessage> = group.iter().map(|(record, _)| *record).collect();
            let planned =
                futures_util::future::join_all(group.into_iter().map(|(record, message)| {
                    Box::pin(self.handle_read(record, message, deadline))
                }))
                .await;
            retry.extend(
                records
                    .into_iter()
                    .zip(planned)
                    .filter(|(_, disposition)| *disposition == Disposition::Retry)
                    .map(|(record, _)| record),
            );
        }
        for (record, message) in chunks {
            if Box::pin(self.handle_read(record, message, deadline)).await == Disposition::Retry {
                retry.push(record);
            }
        }
        let mut response = SqsBatchResponse::default();
        for record in retry {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = record.message_id.clone().unwrap_or_default();
            response.batch_item_failures.push(failure);
        }
        response
    }

    pub async fn handle_message(&self, record: &SqsMessage) -> Disposition {
        self.handle_read(record, read(record), None).await
    }

    /// Handles `record`, whose body `message` is (`None`: unreadable, acknowledged).
    async fn handle_read(
        &self,
        record: &SqsMessage,
        message: Option<WorkMessage>,
        deadline: Option<Instant>,
    ) -> Disposition {
        let Some(message) = message else {
            return Disposition::Ack;
        };
        let attempt: u32 = record
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        let (job_id, tenant, chunk) = match &message {
            WorkMessage::Plan { job_id, tenant, .. } => (job_id, tenant, None),
            WorkMessage::Chunk {
                job_id,
                tenant,
                chunk,
                ..
            } => (job_id, tenant, Some(*chunk)),
        };
        let span = tracing::info_span!("message", job_id = %job_id, tenant = %tenant, job_type = P::JOB_TYPE.key(), chunk, attempt);
        let result = async {
            if near(deadline) {
                tracing::info!("too close to the deadline to start; handed on");
                return self
                    .queue
                    .send(P::JOB_TYPE, &message)
                    .await
                    .map(|()| Disposition::Ack)
                    .map_err(WorkError::from);
            }
            match message {
                WorkMessage::Plan {
                    job_id,
                    tenant,
                    woken,
                } => {
                    let delivery = Delivery {
                        attempt,
                        retry_since: None,
                        deadline,
                    };
                    self.plan(&job_id, &tenant, woken, delivery).await
                }
                WorkMessage::Chunk {
                    job_id,
                    tenant,
                    chunk,
                    items,
                    retry_since,
                } => {
                    let delivery = Delivery {
                        attempt,
                        retry_since: retry_since.as_deref().and_then(clock::parse),
                        deadline,
                    };
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
        if !valid_job_id(job_id) {
            return Ok(None);
        }
        let job = self.store.load(job_id).await?;
        Ok(Self::job_of(job, tenant))
    }

    /// `job` if it is of this worker's type and belongs to `tenant`; anything else is
    /// logged and left alone.
    fn job_of(job: Option<JobRecord>, tenant: &str) -> Option<JobRecord> {
        match job {
            Some(job) if job.tenant == tenant && job.job_type == P::JOB_TYPE => Some(job),
            Some(_) => {
                tracing::warn!("message does not match the job's tenant or type; acknowledged");
                None
            }
            None => {
                tracing::warn!("no such job; acknowledged");
                None
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
            serde_json::from_slice(&bytes)
                .map_err(|e| WorkError::Rejected(format!("the job's input is unreadable: {e}")))?,
        );
        self.params_cache.put(&job.input_key, params.clone());
        Ok(params)
    }
}

/// Whether a message's job id can name a job (1 to 64 characters); logs when not.
fn valid_job_id(job_id: &str) -> bool {
    let valid = !job_id.is_empty() && job_id.len() <= 64;
    if !valid {
        tracing::warn!("message names no valid job id; acknowledged");
    }
    valid
}

/// Plans of one batch run at once at most. A plan holds its job's item list (an inline job's
/// params, up to the API's 5 MiB body, parsed), so this bounds a batch's memory to five
/// plans' whatever the batch size (10 on AWS, 5 in LocalStack).
const PLANS_AT_ONCE: usize = 5;

/// A batch's message and its body as read (`None`: unreadable).
type Read<'a> = (&'a SqsMessage, Option<WorkMessage>);

/// The body of `record`; `None`, logged, when it is not a [`WorkMessage`].
fn read(record: &SqsMessage) -> Option<WorkMessage> {
    let body = record.body.as_deref().unwrap_or("");
    match serde_json::from_str(body) {
        Ok(message) => Some(message),
        Err(err) => {
            tracing::warn!(message_id = ?record.message_id, bytes = body.len(), error = %err, "unreadable message acknowledged");
            None
        }
    }
}

/// The order a batch's messages run in: tenants take turns (each tenant's first message,
/// then each one's second, …), and in each round the tenant with fewer messages in the
/// batch goes first (then the order received), so a tenant with one message in a batch full
/// of another tenant's runs first; each tenant's messages run in the order received.
/// Unreadable messages take turns as one more tenant (each is acknowledged at once).
fn in_turns(read: Vec<Read<'_>>) -> Vec<Read<'_>> {
    let tenant = |(_, message): &Read<'_>| -> String {
        message
            .as_ref()
            .map_or_else(String::new, |m| m.tenant().to_string())
    };
    let mut counts: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for entry in &read {
        *counts.entry(tenant(entry)).or_default() += 1;
    }
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut ranked: Vec<((usize, usize), Read<'_>)> = read
        .into_iter()
        .map(|entry| {
            let key = tenant(&entry);
            let count = counts.get(&key).copied().unwrap_or(0);
            let turn = seen.entry(key).or_default();
            *turn += 1;
            ((*turn, count), entry)
        })
        .collect();
    // Stable: within a turn and a count, the order received.
    ranked.sort_by_key(|(rank, _)| *rank);
    ranked.into_iter().map(|(_, entry)| entry).collect()
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

/// Waits before attempt `attempt` (from 0) of a write that lost to a concurrent one on the
/// same item (a chunk's ledger, a release window): nothing before the first, then a random
/// time up to 10 ms × 2^`attempt`, at most 320 ms ("full jitter": AWS Architecture Blog,
/// *Exponential Backoff And Jitter*), so writers that collided do not collide again in
/// step. DynamoDB cancels both of two transactions that meet on an item
/// (`TransactionConflict`), so without it concurrent commits can keep refusing each other.
pub(super) async fn after_contention(attempt: usize) {
    if attempt > 0 {
        let most = 10u64 << attempt.min(5);
        tokio::time::sleep(Duration::from_millis(fastrand::u64(0..=most))).await;
    }
}

/// Whether the deadline is within [`DEADLINE_MARGIN`].
fn near(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|at| at.saturating_duration_since(Instant::now()) < DEADLINE_MARGIN)
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
