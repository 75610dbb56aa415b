//! What every worker shares: the plan/chunk protocol, exactly-once progress, cancellation,
//! retries and partial batch failures. A job type contributes only a [`Processor`].

mod chunking;
mod runtime;

use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::StoreError;
use crate::job::JobType;
use crate::record::JobRecord;

pub use chunking::{MAX_CHUNK_BYTES, chunk_items};
pub use runtime::{Disposition, Worker, WorkerSettings};

/// How one item of a chunk ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ItemOutcome {
    Succeeded,
    Failed(String),
}

/// Why a whole chunk (or plan) could not be done now.
#[derive(Debug, thiserror::Error)]
pub enum WorkError {
    /// Throttling, timeouts, a service briefly down: retry the message.
    #[error("transient: {0}")]
    Transient(String),
    /// Retrying cannot help (e.g. the job's input is gone): record the items as failed.
    #[error("{0}")]
    Permanent(String),
}

impl From<StoreError> for WorkError {
    fn from(err: StoreError) -> Self {
        WorkError::Transient(err.to_string())
    }
}

/// One job type's work.
pub trait Processor: Send + Sync + 'static {
    const JOB_TYPE: JobType;
    /// Most items in one chunk (one SQS message, one progress write).
    const CHUNK_SIZE: usize;
    /// True when items are discovered from a live source rather than read from the params:
    /// the plan then stores the list it found, so a re-delivered plan chunks the same list.
    const SNAPSHOT_ITEMS: bool = false;

    /// The job's stored params.
    type Params: DeserializeOwned + Send + Sync + 'static;
    /// One unit of work, carried inside chunk messages.
    type Item: Serialize + DeserializeOwned + Send + Sync;

    /// Every item of the job, in a stable order.
    fn items(&self, job: &JobRecord, params: &Self::Params) -> impl Future<Output = Result<Vec<Self::Item>, WorkError>> + Send;

    /// How an item is named in the job's error sample.
    fn label(item: &Self::Item) -> String;

    /// Does the work of one chunk: one outcome per item, in order.
    fn process(
        &self,
        job: &JobRecord,
        params: &Self::Params,
        items: &[Self::Item],
    ) -> impl Future<Output = Result<Vec<ItemOutcome>, WorkError>> + Send;
}
