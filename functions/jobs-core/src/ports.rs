//! The ports the domain needs from the outside world; `aws` holds their adapters.

use std::collections::BTreeMap;
use std::future::Future;

use crate::domain::api_key::ApiKeyRecord;
use crate::domain::audit::AuditRecord;
pub use crate::domain::chunk::{
    ChunkCommit, ChunkLedger, ChunkOutcomes, ItemFailure, Settled, Tally,
};
use crate::domain::ended::JobEndEvent;
use crate::domain::job::{JobStatus, JobType};
use crate::domain::limits::{Admission, LimitsRecord, UsageCounts};
use crate::domain::metrics::{MetricAdd, MetricItem};
use crate::domain::record::{IdempotencyRecord, JobRecord, ListIndex, ScheduleRecord};
use crate::domain::sender::SenderRecord;
use crate::domain::window::{Acquired, ReleaseWindow, SlotPass, WindowKey};
use crate::error::StoreError;

/// A DynamoDB key of a list index entry (table and index key attributes, all strings).
pub type IndexKey = BTreeMap<String, String>;

/// A page of ids read from a keys-only index, and the key to continue after (`None` at the
/// end).
pub type IdPage = (Vec<String>, Option<IndexKey>);

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListFilter {
    pub status: Option<JobStatus>,
    pub job_type: Option<JobType>,
    /// Exact user id; only needed when the index is not already per user.
    pub user: Option<String>,
    pub search: Option<Search>,
}

impl ListFilter {
    pub fn is_empty(&self) -> bool {
        *self == ListFilter::default()
    }
}

/// A case-insensitive prefix search over type, tenant and user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Search {
    /// Lower-cased term.
    pub term: String,
    /// The types whose key or label the term matches.
    pub types: Vec<JobType>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexQuery {
    pub index: ListIndex,
    pub partition: String,
    /// Inclusive `list_sk` bounds.
    pub sort_from: Option<String>,
    pub sort_to: Option<String>,
    pub filter: ListFilter,
    pub start_key: Option<IndexKey>,
    /// Index entries to evaluate (DynamoDB `Limit`), before the filter.
    pub limit: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    pub id: String,
    /// This entry's key: a valid exclusive start key for the entries after it.
    pub key: IndexKey,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IndexPage {
    pub entries: Vec<IndexEntry>,
    pub last_key: Option<IndexKey>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CreateOutcome {
    Created,
    /// The idempotency record already exists (and has not expired).
    IdempotencyKeyTaken,
    /// The tenant has its `max_queued_jobs` queued ([`UsageStore::create_counted`]).
    QueueFull,
    /// The job's uploaded file (`job.file`) has already given another job its items.
    UploadUsed,
}

pub trait JobStore:
    JobEnds + MetricsStore + ScheduleStore + ApiKeyStore + SenderStore + UsageStore
{
    /// Writes a new job, and its idempotency record if given, atomically. A job from an
    /// uploaded file (`job.file`) also marks the upload used, in the same write:
    /// [`CreateOutcome::UploadUsed`] when another job used it first.
    fn create(
        &self,
        job: &JobRecord,
        idempotency: Option<&IdempotencyRecord>,
    ) -> impl Future<Output = Result<CreateOutcome, StoreError>> + Send;

    fn get(&self, id: &str) -> impl Future<Output = Result<Option<JobRecord>, StoreError>> + Send;

    /// Jobs by id, in any order; missing ids are left out. At most 100 ids.
    fn get_many(
        &self,
        ids: &[String],
    ) -> impl Future<Output = Result<Vec<JobRecord>, StoreError>> + Send;

    fn get_idempotency(
        &self,
        pk: &str,
        now_epoch: i64,
    ) -> impl Future<Output = Result<Option<IdempotencyRecord>, StoreError>> + Send;

    /// Moves `job` from the list indexes to the hidden ones (`hidden_at` set once).
    /// `tenant` guards members: a job of another tenant is not touched. False when no such
    /// (visible-to-caller) job exists.
    fn hide(
        &self,
        job: &JobRecord,
        tenant: Option<&str>,
        at: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Moves a hidden `job` back to the list indexes, in its place (its `list_sk` is its
    /// creation time and id). `tenant` guards members as for [`JobStore::hide`].
    fn unhide(
        &self,
        job: &JobRecord,
        tenant: Option<&str>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Marks a queued job failed (its work could not be enqueued) and its end pending.
    fn fail_queued(
        &self,
        id: &str,
        reason: &str,
        at: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn query(
        &self,
        query: &IndexQuery,
    ) -> impl Future<Output = Result<IndexPage, StoreError>> + Send;

    /// Entries of the `active_by_type` index partition `partition` (queued and running jobs),
    /// oldest first, at most `limit`.
    fn active_jobs(
        &self,
        partition: &str,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<ActiveJob>, StoreError>> + Send;

    /// Records on job `id` that `retry` retries its items (`retries`, appended).
    fn add_retry(
        &self,
        id: &str,
        retry: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Asks a job to stop: a queued job becomes `cancelled` at once (its end pending), a running one gets
    /// `cancel_requested_at` and its workers settle the rest. Returns false when the job is
    /// no longer in `from` (the caller re-reads and decides).
    fn cancel(
        &self,
        id: &str,
        from: JobStatus,
        at: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Schedules in the Jobs table (`SCHED#<id>`). Every write replaces the whole record,
/// conditional on the version it was read at, so an edit and a run never undo each other.
pub trait ScheduleStore: Send + Sync {
    /// Writes `schedule` (its index attributes set by [`ScheduleRecord::index`]). With
    /// `expected`, only if the stored version is still that (false if not); without, only
    /// if no schedule has its id.
    fn save_schedule(
        &self,
        schedule: &ScheduleRecord,
        expected: Option<u64>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// A strongly consistent read.
    fn get_schedule(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<ScheduleRecord>, StoreError>> + Send;

    /// A tenant's schedules, oldest first, at most `limit`, after `start` (an entry key
    /// from an earlier page); the key of the last one when more may follow.
    fn list_schedules(
        &self,
        tenant: &str,
        start: Option<IndexKey>,
        limit: u32,
    ) -> impl Future<Output = Result<(Vec<ScheduleRecord>, Option<IndexKey>), StoreError>> + Send;

    /// The ids of the schedules of due-index shard `shard` whose `next_run_at` is at or
    /// before `now`, earliest first, at most `limit`, after `start` (the key of an earlier
    /// page). Eventually consistent: a run reads the schedule itself before it acts.
    fn due_schedules(
        &self,
        shard: u32,
        now: &str,
        start: Option<IndexKey>,
        limit: u32,
    ) -> impl Future<Output = Result<IdPage, StoreError>> + Send;
}

/// API keys in the Jobs table (`APIKEY#<id>`, [`crate::domain::api_key`]). A revocation is
/// an update that takes the key out of its tenant's index; nothing is deleted but by TTL.
pub trait ApiKeyStore: Send + Sync {
    /// Writes a new key; false when a key already has its id.
    fn create_api_key(
        &self,
        key: &ApiKeyRecord,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// A strongly consistent read: a revocation holds from the next request on.
    fn get_api_key(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<ApiKeyRecord>, StoreError>> + Send;

    /// A tenant's live keys (at most [`crate::domain::api_key::MAX_API_KEYS`] + 1), by id.
    fn list_api_keys(
        &self,
        tenant: &str,
    ) -> impl Future<Output = Result<Vec<ApiKeyRecord>, StoreError>> + Send;

    /// Revokes `tenant`'s live key `id` at `at`, its item removed by TTL at `ttl` (epoch
    /// seconds); false when there is no such live key.
    fn revoke_api_key(
        &self,
        id: &str,
        tenant: &str,
        at: &str,
        ttl: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Sets a live key's `last_used_at` to `at` unless it is already at or after `since`:
    /// false when another request wrote it meanwhile (or the key is gone).
    fn touch_api_key(
        &self,
        id: &str,
        at: &str,
        since: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Senders in the Jobs table (`SENDER#<identity>`, [`crate::domain::sender`]): each
/// address or domain belongs to one tenant at a time. A removal is an update that takes it
/// out of its tenant's index; nothing is deleted but by TTL.
pub trait SenderStore: Send + Sync {
    /// Registers a sender; false when a registered one has its identity (any tenant's).
    fn add_sender(
        &self,
        sender: &SenderRecord,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The stored senders (registered or removed) among `identities` (at most 100),
    /// strongly consistent, in any order.
    fn get_senders(
        &self,
        identities: &[String],
    ) -> impl Future<Output = Result<Vec<SenderRecord>, StoreError>> + Send;

    /// A tenant's registered senders (at most [`crate::domain::sender::MAX_SENDERS`] + 1).
    fn list_senders(
        &self,
        tenant: &str,
    ) -> impl Future<Output = Result<Vec<SenderRecord>, StoreError>> + Send;

    /// Removes `tenant`'s registered sender `identity` at `at`, its item removed by TTL at
    /// `ttl`; false when there is no such registered sender.
    fn remove_sender(
        &self,
        identity: &str,
        tenant: &str,
        at: &str,
        ttl: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Tenants' limits and their create counters in the Jobs table (`TENANT#<tenant>`,
/// [`crate::domain::limits`]).
pub trait LimitsStore: Send + Sync {
    /// A tenant's own limits (strongly consistent: a change holds from the next create).
    fn get_limits(
        &self,
        tenant: &str,
    ) -> impl Future<Output = Result<Option<LimitsRecord>, StoreError>> + Send;

    /// Replaces a tenant's limits.
    fn put_limits(
        &self,
        limits: &LimitsRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Counts one create of `tenant` in `minute` if fewer than `limit` were counted there;
    /// false (nothing counted) at the limit. The counter expires at `ttl` (epoch seconds).
    fn count_create(
        &self,
        tenant: &str,
        minute: &str,
        limit: u32,
        ttl: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Counts one upload of `tenant` on `day` (`yyyy-mm-dd`) if fewer than `limit` were
    /// counted that day; false (nothing counted) at the limit. Expires at `ttl`.
    fn count_upload(
        &self,
        tenant: &str,
        day: &str,
        limit: u32,
        ttl: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The creates counted for `tenant` in `minute`.
    fn creates_in(
        &self,
        tenant: &str,
        minute: &str,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// The end-of-job mark on the Jobs table. The writes that give a job its final status
/// (`ProgressStore::complete`, `JobStore::cancel` of a queued job, `JobStore::fail_queued`)
/// also set its `end_pending`; [`crate::domain::ended::on_job_end`] removes it when done.
pub trait JobEnds: Send + Sync {
    /// Takes the handling of job `id`'s end: sets its `end_claimed_at` to `at`, only while
    /// its `end_pending` is still `mark` and no other claim is newer than `stale_before`
    /// (RFC 3339). False when another caller holds it or has finished it (or the job is
    /// gone): then this caller leaves the end alone, so concurrent callers handle it once.
    fn claim_end(
        &self,
        id: &str,
        mark: &str,
        at: &str,
        stale_before: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Gives up the claim made at `claimed_at` (a step of the end failed), so the next
    /// caller need not wait for it to go stale. Nothing happens if the claim is not that one.
    fn release_end(
        &self,
        id: &str,
        claimed_at: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Removes job `id`'s `end_pending`, `ending` and `end_claimed_at` (nothing happens
    /// for a job that no longer exists).
    fn end_handled(&self, id: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The ids of the jobs of `ends_pending` shard `shard` whose end has been pending since
    /// before `before` (RFC 3339), oldest first, at most `limit`, after `start` (the key of
    /// an earlier page).
    fn pending_ends(
        &self,
        shard: u32,
        before: &str,
        start: Option<IndexKey>,
        limit: u32,
    ) -> impl Future<Output = Result<IdPage, StoreError>> + Send;
}

/// A queued or running job as the `active_by_type` index holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActiveJob {
    pub id: String,
    pub status: JobStatus,
    /// `<created_at>#<id>`.
    pub list_sk: String,
}

/// A job type's messages (SQS approximate counts): its work and plan queues together.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct QueueDepths {
    /// Waiting to be received (`ApproximateNumberOfMessages`).
    pub messages_visible: u64,
    /// Received and not yet deleted (`ApproximateNumberOfMessagesNotVisible`).
    pub messages_in_flight: u64,
    /// On the queue's dead-letter queue.
    pub dlq_messages: u64,
}

/// Release windows ([`crate::domain::window`]) in the Jobs table: per tenant and type (or
/// per job), the chunk messages released and not yet settled and the jobs waiting for a
/// slot. Every write is per plan or per settled chunk, never per item.
pub trait WindowStore: Send + Sync {
    /// The window, strongly consistent; the default (empty) one before its first write.
    fn window(
        &self,
        key: &WindowKey,
    ) -> impl Future<Output = Result<ReleaseWindow, StoreError>> + Send;

    /// Holds the heads of job `job_id`'s first `chains` chains (chunks `0..chains`), once:
    /// a plan delivered again leaves the job's `held` as it is.
    fn hold_first(
        &self,
        job_id: &str,
        chains: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Releases job `job_id`'s held chain heads `heads` (at most
    /// [`HEADS_PER_ACQUIRE`](crate::domain::window::HEADS_PER_ACQUIRE)) into free slots, in
    /// one transaction: the window's `in_flight` goes up by `heads.len()` if that keeps it
    /// at most `limit`, and every head leaves the job's `held` (only if all are there).
    fn acquire(
        &self,
        key: &WindowKey,
        limit: u64,
        job_id: &str,
        heads: &[u64],
    ) -> impl Future<Output = Result<Acquired, StoreError>> + Send;

    /// Puts job `job_id` in the window's line (keeping its turn if it is there), only while
    /// the window is full (`in_flight >= limit`). False when it is not: acquire again.
    fn wait(
        &self,
        key: &WindowKey,
        limit: u64,
        job_id: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Puts off the plan of job `job_id` (adds it to the window's `deferred`), only while
    /// the window is full (`in_flight >= limit`), or while other plans are deferred or woken
    /// and a chunk is in flight (so plans run in the order they were put off, and a plan
    /// never waits on an idle window). False otherwise: plan the job now.
    fn defer(
        &self,
        key: &WindowKey,
        limit: u64,
        job_id: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Wakes deferred jobs `jobs` at the end of job `by`'s woken plan, in one transaction:
    /// they leave `deferred` (only if all are there) and join `woken`, and `by`'s item adds
    /// them to its `woke` (a string set: a duplicate of the plan adds, never replaces), so
    /// that a redelivery of its plan sends theirs again. False when one of them is no
    /// longer deferred: read again.
    fn wake(
        &self,
        key: &WindowKey,
        by: &str,
        jobs: &[String],
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Job `job_id` leaves the window's `deferred` and `woken` (its woken plan has ended);
    /// with `seen` (`in_flight`, the size of `woken`, as read) only if both are unchanged, so
    /// that a leave that woke nobody was decided on the window as it is. False when refused.
    fn leave(
        &self,
        key: &WindowKey,
        job_id: &str,
        seen: Option<(u64, u64)>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Passes a settled chunk's slot on, exactly once, in one transaction: the settled
    /// chunk's ledger records `pass.to` (only if it is done and has no pass yet), `pass.take`
    /// leaves its job's `held` (only if it is there), `pass.hold` joins the settled chunk's
    /// job's `held`, and the window takes `pass.window` (only if its `next_turn` is still the
    /// version read). False when a condition failed: re-read and decide again.
    fn pass(
        &self,
        key: &WindowKey,
        pass: &SlotPass,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// The progress side of the Jobs table, as the workers use it. Every write is per job or
/// per chunk commit, never per item.
/// What each tenant uses of its limits ([`crate::domain::limits`]): queued jobs, running
/// and waiting jobs per type, and the line of waiting jobs. Every write changes the usage
/// item in the transaction of the job write that causes it, conditional on the job's state,
/// so a job is counted once however often a step is retried.
pub trait UsageStore: LimitsStore {
    /// The tenant's usage, strongly consistent; zeros before its first counted job.
    fn usage(&self, tenant: &str) -> impl Future<Output = Result<UsageCounts, StoreError>> + Send;

    /// As [`JobStore::create`], and counts the job (`job.counted` must be set) as queued
    /// if its tenant has fewer than `max_queued` queued: [`CreateOutcome::QueueFull`]
    /// otherwise, with nothing written. Concurrent creates at the limit: exactly the limit
    /// is accepted.
    fn create_counted(
        &self,
        job: &JobRecord,
        idempotency: Option<&IdempotencyRecord>,
        max_queued: u32,
    ) -> impl Future<Output = Result<CreateOutcome, StoreError>> + Send;

    /// Starts counting queued `job` as running, if its tenant runs fewer than
    /// `max_running` of its type and, for a job not in line, none of its type waits: the job
    /// is `admitted` (and leaves the line), in one transaction with the usage item.
    fn admit(
        &self,
        job: &JobRecord,
        max_running: u32,
    ) -> impl Future<Output = Result<Admission, StoreError>> + Send;

    /// Puts queued `job` in its tenant's line for its type (`limit_wait`, an entry
    /// `WAIT#<type>#<id>`, the `waiting_<type>` count). False when the job is no longer
    /// as read (admitted, ended, or in line already).
    fn join_line(&self, job: &JobRecord) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Takes ended `job` off its tenant's usage, once (`usage_released`): running if it
    /// was admitted, else queued (and its place in line). False when done before, or for a
    /// job that is not counted.
    fn release_usage(
        &self,
        job: &JobRecord,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Up to `count` jobs first in their tenant's line for `job_type`, oldest first.
    fn first_waiting(
        &self,
        tenant: &str,
        job_type: JobType,
        count: usize,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
}

pub trait ProgressStore: JobEnds + MetricsStore + WindowStore + UsageStore {
    /// A strongly consistent read of the job.
    fn load(&self, id: &str) -> impl Future<Output = Result<Option<JobRecord>, StoreError>> + Send;

    /// Strongly consistent reads of the jobs `ids` (at most 100) in one request, in any
    /// order; missing ids are left out. A pass reads its own job and the first in line
    /// together.
    fn load_many(
        &self,
        ids: &[String],
    ) -> impl Future<Output = Result<Vec<JobRecord>, StoreError>> + Send;

    /// Marks the job running with its item and chunk counts. False when the job is no
    /// longer queued or running (e.g. cancelled before planning).
    fn begin(
        &self,
        id: &str,
        total: u64,
        chunks_total: u64,
        at: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Takes the plan of queued job `id` until `until` (epoch seconds): only one plan of a
    /// job reads its file at a time. False when another plan holds it and `now` is before
    /// its `until`, or the job is not queued.
    fn lease_plan(
        &self,
        id: &str,
        until: i64,
        now: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// A queued job's plan stopped after reading `rows` rows of its file (`planned_rows`,
    /// shown as the job's rows read) and gives up its lease.
    fn plan_paused(
        &self,
        id: &str,
        rows: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The ledger items of job `id` from chunk `from` on, in chunk order, at most `limit`;
    /// the second value is true when more follow.
    fn chunk_outcomes(
        &self,
        id: &str,
        from: u64,
        limit: u32,
    ) -> impl Future<Output = Result<(Vec<ChunkOutcomes>, bool), StoreError>> + Send;

    /// The chunk's ledger item, strongly consistent; `None` before its first commit.
    fn chunk_ledger(
        &self,
        id: &str,
        chunk: u64,
    ) -> impl Future<Output = Result<Option<ChunkLedger>, StoreError>> + Send;

    /// The job and chunk `chunk`'s ledger item, strongly consistent, in one request (what
    /// a chunk delivery reads first): each `None` when absent.
    fn chunk_start(
        &self,
        id: &str,
        chunk: u64,
    ) -> impl Future<Output = Result<(Option<JobRecord>, Option<ChunkLedger>), StoreError>> + Send;

    /// Records outcomes of a chunk exactly once: the ledger item and the job's counters in
    /// one transaction, applied only if the ledger's `settled` is still `commit.before`.
    /// False when it is not (a concurrent delivery committed in between: re-read and merge).
    fn commit_chunk(
        &self,
        id: &str,
        chunk: u64,
        commit: &ChunkCommit,
        expires_at: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Moves a running job whose every chunk is committed to its final status and marks its
    /// end pending. Exactly one caller gets true.
    fn complete(
        &self,
        id: &str,
        status: JobStatus,
        at: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// The email identities the service may send from (SES verified identities).
pub trait SenderIdentities: Send + Sync {
    /// True when mail from `address` would be accepted: the address or its domain is a
    /// verified identity.
    fn is_verified(&self, address: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// A presigned single-part upload: the client sends `method` to `url` with every one of
/// `headers` (they are signed: another value, or a missing one, is refused with `403`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PresignedPut {
    pub method: String,
    pub url: String,
    pub headers: BTreeMap<String, String>,
}

/// What an upload's `PUT` must declare: its media type, and `gzip` when compressed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadFormat {
    pub content_type: String,
    pub content_encoding: Option<String>,
}

/// An object's bytes as they arrive ([`InputStore::open`]).
pub type ByteReader = Box<dyn tokio::io::AsyncRead + Send + Unpin>;

/// What S3 says of a stored object (`HeadObject`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectHead {
    /// Its size in bytes.
    pub bytes: u64,
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
}

/// Where the full params of a job live (they can exceed a DynamoDB item or SQS message),
/// and where uploaded files land.
pub trait InputStore: Send + Sync {
    /// The size and declared type of the object under `key`; `None` when there is none.
    fn head(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<ObjectHead>, StoreError>> + Send;

    /// A URL that writes `key` once (signed `If-None-Match: *`: a second `PUT` is `412`),
    /// with `format`'s `Content-Type` and `Content-Encoding`, valid for `expires_in`
    /// (at most 7 days: S3's limit for SigV4 presigned URLs).
    fn presign_put(
        &self,
        key: &str,
        format: &UploadFormat,
        expires_in: std::time::Duration,
    ) -> impl Future<Output = Result<PresignedPut, StoreError>> + Send;

    fn put(&self, key: &str, body: Vec<u8>) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;

    /// The object under `key` from byte `from` on, as a stream of bytes (read as it
    /// arrives, never held whole); `None` when there is none.
    fn open(
        &self,
        key: &str,
        from: u64,
    ) -> impl Future<Output = Result<Option<ByteReader>, StoreError>> + Send;

    /// Bytes `start..end` of the object under `key` (`end: None`: to its end; a range past
    /// its end holds what there is); `None` when there is no object.
    fn get_range(
        &self,
        key: &str,
        start: u64,
        end: Option<u64>,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;

    /// Writes only if nothing is stored under `key` yet; false when something was.
    fn put_if_absent(
        &self,
        key: &str,
        body: Vec<u8>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Starts writing `key` in parts (S3 `CreateMultipartUpload`, with `content_type`); the
    /// upload's id. Nothing is readable under `key` until [`Self::complete_multipart_upload`].
    fn create_multipart_upload(
        &self,
        key: &str,
        content_type: &str,
    ) -> impl Future<Output = Result<String, StoreError>> + Send;

    /// Part `number` (1 to 10,000) of upload `upload_id`; its ETag. Every part but the last
    /// holds at least 5 MiB (S3's limits, Amazon S3 User Guide, "Multipart upload limits").
    fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: i32,
        body: Vec<u8>,
    ) -> impl Future<Output = Result<String, StoreError>> + Send;

    /// Joins the parts (their ETags, part 1 first) into the object under `key`.
    fn complete_multipart_upload(
        &self,
        key: &str,
        upload_id: &str,
        etags: &[String],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A URL that reads `key` (`GET`) for `expires_in`, which a browser saves as `filename`
    /// (`response-content-disposition`).
    fn presign_get(
        &self,
        key: &str,
        filename: &str,
        expires_in: std::time::Duration,
    ) -> impl Future<Output = Result<String, StoreError>> + Send;
}

/// Messages on a type's work queue: the API asks for a plan; the plan step fans the job
/// out into numbered chunks that carry their items.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum WorkMessage {
    Plan {
        job_id: String,
        tenant: String,
        /// Sent again for a job whose plan was deferred, when its turn came: it is not
        /// deferred again.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        woken: bool,
    },
    Chunk {
        job_id: String,
        tenant: String,
        chunk: u64,
        items: Vec<serde_json::Value>,
        /// On a continuation (a chunk handed on before its invocation's deadline): since
        /// when (RFC 3339) its unsettled items have failed without any item settling, the
        /// start of its retry budget.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_since: Option<String>,
    },
}

impl WorkMessage {
    /// The tenant of the job the message is for.
    pub fn tenant(&self) -> &str {
        match self {
            WorkMessage::Plan { tenant, .. } | WorkMessage::Chunk { tenant, .. } => tenant,
        }
    }
}

pub trait WorkQueue: Send + Sync {
    fn send(
        &self,
        job_type: JobType,
        message: &WorkMessage,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Sends many messages with as few `SendMessageBatch` calls as their sizes allow.
    fn send_all(
        &self,
        job_type: JobType,
        messages: &[WorkMessage],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The type's work queues' (chunks and plans) and dead-letter queue's depths.
    fn depths(
        &self,
        job_type: JobType,
    ) -> impl Future<Output = Result<QueueDepths, StoreError>> + Send;

    /// Asks the exporter for an item report (the export queue, one for every type).
    fn send_export(
        &self,
        message: &ExportMessage,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// A message on the export queue: write export `export_id` of job `job_id`
/// (`exports/<job_id>/<export_id>.json` says what to write).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportMessage {
    pub job_id: String,
    pub tenant: String,
    pub export_id: String,
}

/// The hourly job metrics' side of the Jobs table (`METRIC#<scope>#<shard>` items).
pub trait MetricsStore: Send + Sync {
    /// Adds to each item (`UpdateItem ADD`, one request per item).
    fn add_metrics(
        &self,
        adds: &[MetricAdd],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The items of partition `pk` with `from <= sk <= to`.
    fn read_metrics(
        &self,
        pk: &str,
        from: &str,
        to: &str,
    ) -> impl Future<Output = Result<Vec<MetricItem>, StoreError>> + Send;
}

/// The audit table as the domain uses it: appends and two reads, never an update.
pub trait AuditLog: Send + Sync {
    /// Appends `record` unless an entry with its key exists (that is the same event
    /// written before: appends are idempotent).
    fn append(&self, record: &AuditRecord) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Job `job_id`'s entries with a sort key after `after`, oldest first, at most `limit`;
    /// true when more may follow.
    fn job_entries(
        &self,
        job_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> impl Future<Output = Result<(Vec<AuditRecord>, bool), StoreError>> + Send;

    /// One day partition's entries with `from <= sk <= to`, newest first, at most `limit`:
    /// a `by_day` partition (`<day>#<shard>`), or with `tenant` a `by_tenant_day` one
    /// (`<tenant>#<day>#<shard>`), as [`crate::domain::audit::day_partitions`] names them.
    fn day_entries(
        &self,
        tenant: Option<&str>,
        partition: &str,
        from: &str,
        to: &str,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<AuditRecord>, StoreError>> + Send;
}

/// Where job ends are announced (an EventBridge bus, `EVENT_BUS_NAME`).
pub trait EventBus: Send + Sync {
    /// Puts one event on the bus; an error when the bus did not accept it.
    fn put_event(&self, event: &JobEndEvent)
    -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The adapters a worker runs over, named once, so that `Worker<P, W>` takes one parameter
/// for them. `aws::AwsPorts` names the AWS adapters; tests name their doubles.
pub trait WorkerPorts {
    type Store: ProgressStore;
    type Inputs: InputStore;
    type Queue: WorkQueue;
    type Audit: AuditLog;
    type Bus: EventBus;
}

/// The adapters the jobs service (the API and the scheduler's tick) works over: a worker's,
/// with a store that also serves the API's reads and writes, and SES's identities. Named
/// once, so that its types and their impls take one parameter (`Jobs<P>`, `JobsApi<P>` in
/// jobs-api-core). `aws::AwsPorts` names the AWS adapters; tests name their doubles.
pub trait ServicePorts: WorkerPorts<Store: JobStore> {
    type Senders: SenderIdentities;
}
