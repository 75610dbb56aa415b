//! The ports the domain needs from the outside world; `aws` holds their adapters.

use std::collections::BTreeMap;
use std::future::Future;

use crate::error::StoreError;
use crate::job::{JobStatus, JobType};
use crate::record::{IdempotencyRecord, JobRecord, ListIndex};

/// A DynamoDB key of a list index entry (table and index key attributes, all strings).
pub type IndexKey = BTreeMap<String, String>;

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
}

pub trait JobStore: Send + Sync {
    /// Writes a new job, and its idempotency record if given, atomically.
    fn create(
        &self,
        job: &JobRecord,
        idempotency: Option<&IdempotencyRecord>,
    ) -> impl Future<Output = Result<CreateOutcome, StoreError>> + Send;

    fn get(&self, id: &str) -> impl Future<Output = Result<Option<JobRecord>, StoreError>> + Send;

    /// Jobs by id, in any order; missing ids are left out. At most 100 ids.
    fn get_many(&self, ids: &[String]) -> impl Future<Output = Result<Vec<JobRecord>, StoreError>> + Send;

    fn get_idempotency(
        &self,
        pk: &str,
        now_epoch: i64,
    ) -> impl Future<Output = Result<Option<IdempotencyRecord>, StoreError>> + Send;

    /// Drops a job from every list index. `tenant` guards members: a job of another tenant
    /// is reported as not found. Returns false when no such (visible-to-caller) job exists.
    fn hide(
        &self,
        id: &str,
        tenant: Option<&str>,
        at: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Marks a queued job failed (its work could not be enqueued).
    fn fail_queued(&self, id: &str, reason: &str, at: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn query(&self, query: &IndexQuery) -> impl Future<Output = Result<IndexPage, StoreError>> + Send;

    /// Asks a job to stop: a queued job becomes `cancelled` at once, a running one gets
    /// `cancel_requested_at` and its workers settle the rest. Returns false when the job is
    /// no longer in `from` (the caller re-reads and decides).
    fn cancel(&self, id: &str, from: JobStatus, at: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// How a chunk's items ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub succeeded: u64,
    pub failed: u64,
    pub cancelled: u64,
}

/// The progress side of the Jobs table, as the workers use it. Every write is per job or
/// per chunk, never per item.
pub trait ProgressStore: Send + Sync {
    /// A strongly consistent read of the job.
    fn load(&self, id: &str) -> impl Future<Output = Result<Option<JobRecord>, StoreError>> + Send;

    /// Marks the job running with its item and chunk counts. False when the job is no
    /// longer queued or running (e.g. cancelled before planning).
    fn begin(&self, id: &str, total: u64, chunks_total: u64, at: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;

    fn chunk_committed(&self, id: &str, chunk: u64) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Records a chunk's outcome exactly once: the ledger item and the job's counters in
    /// one transaction. False when the chunk was already committed (a duplicate delivery).
    fn commit_chunk(
        &self,
        id: &str,
        chunk: u64,
        tally: &Tally,
        errors: &[crate::job::ItemError],
        expires_at: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Moves a running job whose every chunk is committed to its final status. Exactly one
    /// caller gets true.
    fn complete(&self, id: &str, status: JobStatus, at: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// The email identities the service may send from (SES verified identities).
pub trait SenderIdentities: Send + Sync {
    /// True when mail from `address` would be accepted: the address or its domain is a
    /// verified identity.
    fn is_verified(&self, address: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Where the full params of a job live (they can exceed a DynamoDB item or SQS message).
pub trait InputStore: Send + Sync {
    fn put(&self, key: &str, body: Vec<u8>) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;

    /// Writes only if nothing is stored under `key` yet; false when something was.
    fn put_if_absent(&self, key: &str, body: Vec<u8>) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Messages on a type's work queue: the API asks for a plan; the plan step fans the job
/// out into numbered chunks that carry their items.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum WorkMessage {
    Plan { job_id: String, tenant: String },
    Chunk { job_id: String, tenant: String, chunk: u64, items: Vec<serde_json::Value> },
}

pub trait WorkQueue: Send + Sync {
    fn send(&self, job_type: JobType, message: &WorkMessage) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Sends many messages with as few `SendMessageBatch` calls as their sizes allow.
    fn send_all(&self, job_type: JobType, messages: &[WorkMessage]) -> impl Future<Output = Result<(), StoreError>> + Send;
}
