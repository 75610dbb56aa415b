//! The Jobs table in DynamoDB: [`JobStore`](crate::ports::JobStore) for the API (`jobs.rs`)
//! and [`ProgressStore`](crate::ports::ProgressStore) for the workers (`progress.rs`).
//! Their tests assert the exact requests each call sends: the conditions there are the
//! exactly-once protocol (docs/design.md).

mod audit;
mod jobs;
mod limits;
mod metrics;
mod owned;
mod progress;
mod schedules;
#[cfg(test)]
mod test_client;
mod usage;
mod window;

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};

use crate::domain::record::{ENDS_PENDING_INDEX, JOB_SK, JobRecord, job_pk};
use crate::error::StoreError;
use crate::ports::{IdPage, IndexKey};

type Item = HashMap<String, AttributeValue>;

pub use audit::DynamoAuditLog;

/// The Jobs table (`TABLE_NAME`): the adapter of `JobStore`, `ProgressStore`, `JobEnds`,
/// `ScheduleStore`, `ApiKeyStore` and `MetricsStore`.
#[derive(Clone)]
pub struct DynamoJobStore {
    client: Client,
    table: String,
}

impl DynamoJobStore {
    pub fn new(client: Client, table: impl Into<String>) -> DynamoJobStore {
        DynamoJobStore {
            client,
            table: table.into(),
        }
    }

    /// A job by id; `consistent` for a strongly consistent read (the workers' view).
    async fn job(&self, id: &str, consistent: bool) -> Result<Option<JobRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(job_key(id)))
            .consistent_read(consistent)
            .send()
            .await
            .map_err(|e| StoreError::aws("dynamodb:GetItem", e))?;
        out.item.map(from_item).transpose()
    }
}

/// `<attribute> <op> <bound>`: the sort-key condition of [`DynamoJobStore::ids_in_index`].
struct SortRange<'a> {
    attribute: &'a str,
    op: &'a str,
    bound: &'a str,
}

impl DynamoJobStore {
    /// The ids in one partition of a keys-only index (`partition` = (attribute, value)),
    /// with the sort key in `range`, first `limit` in sort order: one `Query`. The ids come
    /// from the items' `pk`, `<prefix><id>`.
    async fn ids_in_index(
        &self,
        index: &str,
        partition: (&str, &str),
        range: SortRange<'_>,
        start: Option<IndexKey>,
        limit: u32,
        prefix: &str,
    ) -> Result<IdPage, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression(format!("#p = :p AND #s {} :bound", range.op))
            .expression_attribute_names("#p", partition.0)
            .expression_attribute_names("#s", range.attribute)
            .expression_attribute_values(":p", s(partition.1))
            .expression_attribute_values(":bound", s(range.bound))
            .set_exclusive_start_key(
                start.map(|key| key.into_iter().map(|(k, v)| (k, s(v))).collect()),
            )
            .limit(limit.max(1) as i32)
            .send()
            .await
            .map_err(|e| StoreError::aws("dynamodb:Query", e))?;
        let last = out.last_evaluated_key.map(|key| {
            key.into_iter()
                .filter_map(|(k, v)| v.as_s().ok().map(|v| (k, v.clone())))
                .collect()
        });
        let ids = out
            .items
            .unwrap_or_default()
            .iter()
            .map(|item| {
                item.get("pk")
                    .and_then(|pk| pk.as_s().ok())
                    .and_then(|pk| pk.strip_prefix(prefix))
                    .map(str::to_string)
                    .ok_or_else(|| {
                        StoreError::Corrupt(format!("a {index} entry without a {prefix} key"))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((ids, last))
    }
}

impl DynamoJobStore {
    /// The item at `key`, read strongly consistently; `None` when there is none.
    async fn get_consistent<T: serde::de::DeserializeOwned>(
        &self,
        key: Item,
    ) -> Result<Option<T>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::aws("dynamodb:GetItem", e))?;
        out.item.map(from_item).transpose()
    }

    /// The items at `keys` (at most 100), in any order; missing ones are left out.
    /// `BatchGetItem` may leave keys unprocessed under load: those are asked again with a
    /// short backoff, 5 attempts in all, and any still left are an error, never a silent
    /// absence.
    async fn batch_get<T: serde::de::DeserializeOwned>(
        &self,
        keys: Vec<Item>,
        consistent: bool,
    ) -> Result<Vec<T>, StoreError> {
        self.batch_get_items(keys, consistent)
            .await?
            .into_iter()
            .map(from_item)
            .collect()
    }

    /// [`Self::batch_get`]'s items as read, for keys of different kinds of item.
    async fn batch_get_items(
        &self,
        keys: Vec<Item>,
        consistent: bool,
    ) -> Result<Vec<Item>, StoreError> {
        let mut records = Vec::with_capacity(keys.len());
        let mut pending = keys;
        for attempt in 0..5u32 {
            if pending.is_empty() {
                break;
            }
            if attempt > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(20 << attempt)).await;
            }
            let request = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut pending)))
                .set_consistent_read(consistent.then_some(true))
                .build()
                .map_err(|e| StoreError::encode("a BatchGetItem", e))?;
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(|e| StoreError::aws("dynamodb:BatchGetItem", e))?;
            for item in out
                .responses
                .and_then(|mut r| r.remove(&self.table))
                .unwrap_or_default()
            {
                records.push(item);
            }
            pending = out
                .unprocessed_keys
                .and_then(|mut u| u.remove(&self.table))
                .map(|k| k.keys)
                .unwrap_or_default();
        }
        if !pending.is_empty() {
            return Err(StoreError::Incomplete {
                operation: "dynamodb:BatchGetItem",
                count: pending.len(),
                detail: "keys still unprocessed after 5 attempts".into(),
            });
        }
        Ok(records)
    }
}

impl crate::ports::JobEnds for DynamoJobStore {
    async fn claim_end(
        &self,
        id: &str,
        mark: &str,
        at: &str,
        stale_before: &str,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(job_key(id)))
            .update_expression("SET #claim = :at")
            .condition_expression(
                "#pending = :mark AND (attribute_not_exists(#claim) OR #claim < :stale)",
            )
            .expression_attribute_names("#pending", "end_pending")
            .expression_attribute_names("#claim", "end_claimed_at")
            .expression_attribute_values(":mark", s(mark))
            .expression_attribute_values(":at", s(at))
            .expression_attribute_values(":stale", s(stale_before))
            .send()
            .await;
        conditional(result.map(|_| ()), "dynamodb:UpdateItem")
    }

    async fn release_end(&self, id: &str, claimed_at: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(job_key(id)))
            .update_expression("REMOVE #claim")
            .condition_expression("#claim = :at")
            .expression_attribute_names("#claim", "end_claimed_at")
            .expression_attribute_values(":at", s(claimed_at))
            .send()
            .await;
        conditional(result.map(|_| ()), "dynamodb:UpdateItem").map(|_| ())
    }

    async fn end_handled(&self, id: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(job_key(id)))
            .update_expression("REMOVE #pending, #ending, #claim")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#pending", "end_pending")
            .expression_attribute_names("#ending", "ending")
            .expression_attribute_names("#claim", "end_claimed_at")
            .send()
            .await;
        // A job removed by TTL in between has nothing left to mark.
        conditional(result.map(|_| ()), "dynamodb:UpdateItem").map(|_| ())
    }

    async fn pending_ends(
        &self,
        shard: u32,
        before: &str,
        start: Option<IndexKey>,
        limit: u32,
    ) -> Result<IdPage, StoreError> {
        let range = SortRange {
            attribute: "end_pending",
            op: "<",
            bound: before,
        };
        self.ids_in_index(
            ENDS_PENDING_INDEX,
            ("ending", &shard.to_string()),
            range,
            start,
            limit,
            "JOB#",
        )
        .await
    }
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn job_key(id: &str) -> Item {
    HashMap::from([
        ("pk".to_string(), s(job_pk(id))),
        ("sk".to_string(), s(JOB_SK)),
    ])
}

fn to_item<T: serde::Serialize>(value: &T) -> Result<Item, StoreError> {
    serde_dynamo::to_item(value).map_err(|e| StoreError::encode("a DynamoDB item", e))
}

fn from_item<T: serde::de::DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Ok(true) on success, Ok(false) when the condition failed, Err otherwise.
fn conditional<E>(
    result: Result<(), SdkError<E>>,
    operation: &'static str,
) -> Result<bool, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match result {
        Ok(()) => Ok(true),
        Err(err)
            if err.as_service_error().and_then(|e| e.code())
                == Some("ConditionalCheckFailedException") =>
        {
            Ok(false)
        }
        Err(err) => Err(StoreError::aws(operation, err)),
    }
}

/// For a `TransactWriteItems` that failed: true when it was cancelled because a condition
/// failed or another transaction held one of its items (read again and retry).
fn refused_or_conflicted(error: &TransactWriteItemsError) -> bool {
    let TransactWriteItemsError::TransactionCanceledException(cancelled) = error else {
        return false;
    };
    cancelled.cancellation_reasons().iter().any(|r| {
        matches!(
            r.code(),
            Some("ConditionalCheckFailed" | "TransactionConflict")
        )
    })
}

/// The outcome of a `TransactWriteItems` whose refusal means "read again and decide again":
/// true when written, false when a condition failed or a concurrent write conflicted.
fn written<O>(result: Result<O, SdkError<TransactWriteItemsError>>) -> Result<bool, StoreError> {
    match result.map_err(|e| e.into_service_error()) {
        Ok(_) => Ok(true),
        Err(error) if refused_or_conflicted(&error) => Ok(false),
        Err(error) => Err(StoreError::aws("dynamodb:TransactWriteItems", error)),
    }
}

/// For a `TransactWriteItems` that failed: true when it was cancelled because the condition
/// of its `index`-th item failed (the transaction's whole effect is then "already done").
fn condition_failed_at(error: &TransactWriteItemsError, index: usize) -> bool {
    let TransactWriteItemsError::TransactionCanceledException(cancelled) = error else {
        return false;
    };
    cancelled
        .cancellation_reasons()
        .get(index)
        .and_then(|r| r.code())
        == Some("ConditionalCheckFailed")
}
