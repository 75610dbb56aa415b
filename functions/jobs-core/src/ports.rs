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
}

/// Where the full params of a job live (they can exceed a DynamoDB item or SQS message).
pub trait InputStore: Send + Sync {
    fn put(&self, key: &str, body: Vec<u8>) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The message that asks a type's worker to plan a job.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WorkMessage {
    Plan { job_id: String, tenant: String },
}

pub trait WorkQueue: Send + Sync {
    fn send(&self, job_type: JobType, message: &WorkMessage) -> impl Future<Output = Result<(), StoreError>> + Send;
}
