//! What every worker shares: the plan/chunk protocol, exactly-once progress, cancellation,
//! retries and partial batch failures. A job type contributes only a [`Processor`].

pub mod emf;
mod failure;
pub mod file_reader;
mod pacing;
mod runtime;

use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::domain::job::JobType;
use crate::domain::record::JobRecord;
use crate::error::StoreError;

pub use crate::concurrency::in_order;
pub use pacing::AdaptiveRate;
pub use runtime::{
    Checkpoint, Disposition, ItemAt, ItemList, Planned, Worker, WorkerSettings, final_status,
    write_item_list, write_retry_list,
};
pub mod lambda;
#[cfg(any(test, feature = "test-support"))]
pub mod scripted;

/// How one item of a chunk ended. A rejected item counts as failed in the job's progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ItemOutcome {
    Succeeded,
    /// The item failed for its own reason (an invalid address, a missing profile…);
    /// retrying cannot change that.
    Rejected(String),
}

/// Why a call, a chunk or a plan did not succeed. AWS SDK errors convert with `From`
/// (`failure.rs`): throttling is `Throttled`, 5xx and network errors `Transient`, the rest
/// `Rejected`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WorkError {
    /// The downstream refused for its rate limit: pressure, not failure. The item is
    /// retried once the caller has slowed down.
    #[error("throttled: {0}")]
    Throttled(String),
    /// Timeouts, a service briefly down: retry after a back-off.
    #[error("transient: {0}")]
    Transient(String),
    /// Retrying cannot help: for one call, its item is rejected ([`ItemOutcome::of`]); for a
    /// whole chunk or plan (e.g. the job's input is gone), every item it holds is.
    #[error("{0}")]
    Rejected(String),
}

/// What the runtime learns of one item: settled (`Ok`), or not yet (`Err` of a throttled
/// or transient failure: the runtime retries the item, never the items that settled).
pub type ItemResult = Result<ItemOutcome, WorkError>;

impl ItemOutcome {
    /// An item's result from its call's result: a rejected call rejects the item; a
    /// throttled or transient failure leaves it to be retried.
    pub fn of<T, E: Into<WorkError>>(result: Result<T, E>) -> ItemResult {
        match result.map_err(Into::into) {
            Ok(_) => Ok(ItemOutcome::Succeeded),
            Err(WorkError::Rejected(reason)) => Ok(ItemOutcome::Rejected(reason)),
            Err(transient) => Err(transient),
        }
    }
}

impl From<StoreError> for WorkError {
    fn from(err: StoreError) -> Self {
        WorkError::Transient(err.to_string())
    }
}

/// One job type's work. Its chunk size and limits are the type's registry entry
/// ([`crate::domain::registry`]).
pub trait Processor: Send + Sync + 'static {
    const JOB_TYPE: JobType;
    /// Most items handed to one [`Processor::process`] call. The runtime commits settled
    /// outcomes between calls (at most every `CHECKPOINT_INTERVAL_SECONDS`), so a crash
    /// repeats at most a step plus what was done since the last checkpoint. By default a
    /// whole chunk.
    const STEP: usize = usize::MAX;

    /// The job's stored params.
    type Params: DeserializeOwned + Send + Sync + 'static;
    /// One unit of work, carried inside chunk messages.
    type Item: Serialize + DeserializeOwned + Send + Sync;

    /// Every item of the job, in a stable order.
    fn items(
        &self,
        job: &JobRecord,
        params: &Self::Params,
    ) -> impl Future<Output = Result<Vec<Self::Item>, WorkError>> + Send;

    /// How an item is named in the job's error sample.
    fn label(item: &Self::Item) -> String;

    /// Does the work of up to [`Processor::STEP`] items of a chunk: one result per item, in
    /// order. A failure that concerns them all (e.g. a batch write) is that error for each.
    fn process(
        &self,
        job: &JobRecord,
        params: &Self::Params,
        items: &[Self::Item],
    ) -> impl Future<Output = Vec<ItemResult>> + Send;
}
