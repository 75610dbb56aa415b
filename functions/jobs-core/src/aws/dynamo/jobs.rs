//! The API's side of the Jobs table ([`JobStore`]): create with an idempotency record,
//! read, list through the indexes, hide, cancel, fail a job that could not be queued.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};

use super::{
    DynamoJobStore, Item, condition_failed_at, conditional, from_item, job_key, s, to_item,
};
use crate::domain::file::JobFile;
use crate::domain::job::JobStatus;
use crate::domain::record::{
    ACTIVE_INDEX, HIDDEN_PARTITIONS, IDEMPOTENCY_SK, IdempotencyRecord, JobRecord, LIST_PARTITIONS,
    LIST_SORT_ATTRIBUTE, end_shard,
};
use crate::error::StoreError;
use crate::ports::{
    ActiveJob, CreateOutcome, IndexEntry, IndexKey, IndexPage, IndexQuery, JobStore,
};

/// `a = :p0, b = :p1, c = :p2`: the job's partitions ([`JobRecord::list_keys`]) into `attributes`.
fn assign_partitions(attributes: &[&str; 3]) -> String {
    attributes
        .iter()
        .enumerate()
        .map(|(i, a)| format!("{a} = :p{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl DynamoJobStore {
    /// Hide and unhide: `expression` moves the job's list partitions (values `:p0..:p2`,
    /// `#hidden` = `hidden_at`, and one more value), under the member's tenant guard.
    async fn move_partitions(
        &self,
        job: &JobRecord,
        tenant: Option<&str>,
        expression: String,
        value: (&str, String),
    ) -> Result<bool, StoreError> {
        let (_, partitions) = job.list_keys();
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(job_key(&job.id)))
            .update_expression(expression)
            .expression_attribute_names("#hidden", "hidden_at")
            .expression_attribute_values(value.0, s(value.1));
        for (i, partition) in partitions.into_iter().enumerate() {
            request = request.expression_attribute_values(format!(":p{i}"), s(partition));
        }
        conditional(
            guarded(request, tenant).send().await.map(|_| ()),
            "dynamodb:UpdateItem",
        )
    }
}

/// An update of an existing job; with `tenant`, only of that tenant's job.
fn guarded(
    request: aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
    tenant: Option<&str>,
) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
    match tenant {
        Some(tenant) => request
            .condition_expression("attribute_exists(pk) AND #tenant = :tenant")
            .expression_attribute_names("#tenant", "tenant")
            .expression_attribute_values(":tenant", s(tenant)),
        None => request.condition_expression("attribute_exists(pk)"),
    }
}

impl DynamoJobStore {
    fn put(&self, item: Item, condition: &str) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .build()
            .map_err(|e| StoreError::encode("a Put", e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }
}

/// The record's creation time: its expiry less the fixed TTL.
fn created_epoch(idem: &IdempotencyRecord) -> i64 {
    idem.expires_at - crate::domain::record::IDEMPOTENCY_TTL_SECONDS
}

/// The item that marks an upload as used by a job: `UPLOAD#<upload key>` / `UPLOAD`.
fn upload_claim_pk(upload_key: &str) -> String {
    format!("UPLOAD#{upload_key}")
}
const UPLOAD_CLAIM_SK: &str = "UPLOAD";

fn string_key(item: &Item) -> IndexKey {
    item.iter()
        .filter_map(|(k, v)| v.as_s().ok().map(|s| (k.clone(), s.clone())))
        .collect()
}

impl DynamoJobStore {
    /// Writes a new job, with its idempotency record and `usage` (the tenant's queued
    /// count, [`crate::ports::UsageStore::create_counted`]) if given, in one transaction.
    pub(super) async fn create_with(
        &self,
        job: &JobRecord,
        idempotency: Option<&IdempotencyRecord>,
        usage: Option<TransactWriteItem>,
    ) -> Result<CreateOutcome, StoreError> {
        let job_item = to_item(job)?;
        let upload = job.file.as_ref().and_then(JobFile::upload);
        if idempotency.is_none() && usage.is_none() && upload.is_none() {
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(job_item))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await
                .map_err(|e| StoreError::aws("dynamodb:PutItem", e))?;
            return Ok(CreateOutcome::Created);
        }
        let mut request = self
            .client
            .transact_write_items()
            .transact_items(self.put(job_item, "attribute_not_exists(pk)")?);
        if let Some(idem) = idempotency {
            // An expired record that TTL has not swept yet counts as absent.
            let mut idem_put = self.put(
                to_item(idem)?,
                "attribute_not_exists(pk) OR expires_at < :now",
            )?;
            if let Some(put) = idem_put.put.as_mut() {
                put.expression_attribute_values = Some(HashMap::from([(
                    ":now".to_string(),
                    AttributeValue::N(created_epoch(idem).to_string()),
                )]));
            }
            request = request.transact_items(idem_put);
        }
        let mut next = if idempotency.is_some() { 2 } else { 1 };
        // A job from an uploaded file uses it up: a second job from it is refused.
        let upload_at = upload.map(|upload| {
            let at = next;
            next += 1;
            (at, upload)
        });
        if let Some((_, upload)) = upload_at {
            let claim = HashMap::from([
                ("pk".to_string(), AttributeValue::S(upload_claim_pk(upload))),
                ("sk".to_string(), AttributeValue::S(UPLOAD_CLAIM_SK.into())),
                ("job_id".to_string(), AttributeValue::S(job.id.clone())),
                (
                    "expires_at".to_string(),
                    AttributeValue::N(job.expires_at.to_string()),
                ),
            ]);
            request = request.transact_items(self.put(claim, "attribute_not_exists(pk)")?);
        }
        let usage_at = next;
        if let Some(usage) = usage {
            request = request.transact_items(usage);
        }
        match request.send().await.map_err(|e| e.into_service_error()) {
            Ok(_) => Ok(CreateOutcome::Created),
            // The idempotency record's key is taken.
            Err(error) if idempotency.is_some() && condition_failed_at(&error, 1) => {
                Ok(CreateOutcome::IdempotencyKeyTaken)
            }
            Err(error) if upload_at.is_some_and(|(at, _)| condition_failed_at(&error, at)) => {
                Ok(CreateOutcome::UploadUsed)
            }
            // The tenant's queued count is at its limit.
            Err(error) if condition_failed_at(&error, usage_at) => Ok(CreateOutcome::QueueFull),
            Err(error) => Err(StoreError::aws("dynamodb:TransactWriteItems", error)),
        }
    }
}

impl JobStore for DynamoJobStore {
    async fn create(
        &self,
        job: &JobRecord,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<CreateOutcome, StoreError> {
        self.create_with(job, idempotency, None).await
    }

    async fn get(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        self.job(id, false).await
    }

    async fn get_many(&self, ids: &[String]) -> Result<Vec<JobRecord>, StoreError> {
        self.batch_get(ids.iter().map(|id| job_key(id)).collect(), false)
            .await
    }

    async fn get_idempotency(
        &self,
        pk: &str,
        now_epoch: i64,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(IDEMPOTENCY_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::aws("dynamodb:GetItem", e))?;
        let record: Option<IdempotencyRecord> = out.item.map(from_item).transpose()?;
        Ok(record.filter(|r| r.expires_at >= now_epoch))
    }

    async fn hide(
        &self,
        job: &JobRecord,
        tenant: Option<&str>,
        at: &str,
    ) -> Result<bool, StoreError> {
        let expression = format!(
            "REMOVE {} SET #hidden = if_not_exists(#hidden, :at), {}",
            LIST_PARTITIONS.join(", "),
            assign_partitions(&HIDDEN_PARTITIONS)
        );
        self.move_partitions(job, tenant, expression, (":at", at.to_string()))
            .await
    }

    async fn unhide(&self, job: &JobRecord, tenant: Option<&str>) -> Result<bool, StoreError> {
        let (sort, _) = job.list_keys();
        let expression = format!(
            "SET {LIST_SORT_ATTRIBUTE} = :sk, {} REMOVE #hidden, {}",
            assign_partitions(&LIST_PARTITIONS),
            HIDDEN_PARTITIONS.join(", ")
        );
        self.move_partitions(job, tenant, expression, (":sk", sort))
            .await
    }

    async fn fail_queued(&self, id: &str, reason: &str, at: &str) -> Result<(), StoreError> {
        let error = AttributeValue::M(HashMap::from([
            ("item".to_string(), s("*")),
            ("reason".to_string(), s(reason)),
        ]));
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(job_key(id)))
            .update_expression("SET #st = :failed, #completed = :at, #pending = :at, #ending = :shard, #errors = :errors REMOVE #active")
            .expression_attribute_names("#active", "active")
            .expression_attribute_names("#ending", "ending")
            .expression_attribute_values(":shard", s(end_shard(id)))
            .condition_expression("#st = :queued")
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#completed", "completed_at")
            .expression_attribute_names("#pending", "end_pending")
            .expression_attribute_names("#errors", "errors")
            .expression_attribute_values(":failed", s(JobStatus::Failed.key()))
            .expression_attribute_values(":queued", s(JobStatus::Queued.key()))
            .expression_attribute_values(":at", s(at))
            .expression_attribute_values(":errors", AttributeValue::L(vec![error]))
            .send()
            .await;
        // Not queued any more (already planned or cancelled): nothing to mark.
        conditional(result.map(|_| ()), "dynamodb:UpdateItem").map(|_| ())
    }

    async fn active_jobs(&self, partition: &str, limit: u32) -> Result<Vec<ActiveJob>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(ACTIVE_INDEX)
            .key_condition_expression("#active = :p")
            .expression_attribute_names("#active", "active")
            .expression_attribute_values(":p", s(partition))
            .scan_index_forward(true)
            .limit(limit.max(1) as i32)
            .send()
            .await
            .map_err(|e| StoreError::aws("dynamodb:Query", e))?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .map(|item| {
                let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
                let status = text("status")
                    .as_deref()
                    .and_then(JobStatus::parse)
                    .ok_or_else(|| StoreError::Corrupt("active index entry: status".into()))?;
                Ok(ActiveJob {
                    id: text("id").unwrap_or_default(),
                    status,
                    list_sk: text(LIST_SORT_ATTRIBUTE).unwrap_or_default(),
                })
            })
            .collect()
    }

    async fn add_retry(&self, id: &str, retry: &str) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(job_key(id)))
            .update_expression("SET #retries = list_append(if_not_exists(#retries, :none), :retry)")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#retries", "retries")
            .expression_attribute_values(":none", AttributeValue::L(Vec::new()))
            .expression_attribute_values(":retry", AttributeValue::L(vec![s(retry)]))
            .send()
            .await
            .map_err(|e| StoreError::aws("dynamodb:UpdateItem", e))?;
        Ok(())
    }

    async fn cancel(&self, id: &str, from: JobStatus, at: &str) -> Result<bool, StoreError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(job_key(id)))
            .condition_expression("#st = :from")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":from", s(from.key()))
            .expression_attribute_values(":at", s(at));
        request = if from == JobStatus::Queued {
            // Nothing was planned yet: the job is over at once, every item cancelled.
            request
                .update_expression("SET #st = :cancelled, #completed = :at, #pending = :at, #ending = :shard, #cancel = :at, #cancelled = #total REMOVE #active")
                .expression_attribute_names("#cancelled", "cancelled")
                .expression_attribute_names("#total", "total")
                .expression_attribute_names("#active", "active")
                .expression_attribute_names("#ending", "ending")
                .expression_attribute_values(":shard", s(end_shard(id)))
                .expression_attribute_names("#completed", "completed_at")
                .expression_attribute_names("#pending", "end_pending")
                .expression_attribute_names("#cancel", "cancel_requested_at")
                .expression_attribute_values(":cancelled", s(JobStatus::Cancelled.key()))
        } else {
            request
                .update_expression("SET #cancel = if_not_exists(#cancel, :at)")
                .expression_attribute_names("#cancel", "cancel_requested_at")
        };
        conditional(request.send().await.map(|_| ()), "dynamodb:UpdateItem")
    }

    async fn query(&self, query: &IndexQuery) -> Result<IndexPage, StoreError> {
        let partition_attr = query.index.partition_attribute();
        let mut names = HashMap::from([("#p".to_string(), partition_attr.to_string())]);
        let mut values = HashMap::from([(":p".to_string(), s(&query.partition))]);
        let mut key_condition = "#p = :p".to_string();
        match (&query.sort_from, &query.sort_to) {
            (Some(from), Some(to)) => {
                key_condition
                    .push_str(&format!(" AND {LIST_SORT_ATTRIBUTE} BETWEEN :from AND :to"));
                values.insert(":from".into(), s(from));
                values.insert(":to".into(), s(to));
            }
            (Some(from), None) => {
                key_condition.push_str(&format!(" AND {LIST_SORT_ATTRIBUTE} >= :from"));
                values.insert(":from".into(), s(from));
            }
            (None, Some(to)) => {
                key_condition.push_str(&format!(" AND {LIST_SORT_ATTRIBUTE} <= :to"));
                values.insert(":to".into(), s(to));
            }
            (None, None) => {}
        }
        let filter = filter_expression(query, &mut names, &mut values);
        let start_key = query
            .start_key
            .as_ref()
            .map(|key| key.iter().map(|(k, v)| (k.clone(), s(v))).collect::<Item>());
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(query.index.name())
            .key_condition_expression(key_condition)
            .set_filter_expression(filter)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .set_exclusive_start_key(start_key)
            .scan_index_forward(false)
            .limit(i32::try_from(query.limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| StoreError::aws("dynamodb:Query", e))?;
        let key_attrs = ["pk", "sk", LIST_SORT_ATTRIBUTE, partition_attr];
        let entries = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| {
                let id = item
                    .get("id")
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .ok_or_else(|| StoreError::Corrupt("index entry without id".into()))?;
                let key = string_key(&item)
                    .into_iter()
                    .filter(|(k, _)| key_attrs.contains(&k.as_str()))
                    .collect();
                Ok(IndexEntry { id, key })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(IndexPage {
            entries,
            last_key: out.last_evaluated_key.as_ref().map(string_key),
        })
    }
}

/// Builds the filter over the attributes projected into the list indexes.
fn filter_expression(
    query: &IndexQuery,
    names: &mut HashMap<String, String>,
    values: &mut HashMap<String, AttributeValue>,
) -> Option<String> {
    let f = &query.filter;
    let mut parts = Vec::new();
    if let Some(status) = f.status {
        names.insert("#st".into(), "status".into());
        values.insert(":st".into(), s(status.key()));
        parts.push("#st = :st".to_string());
    }
    if let Some(job_type) = f.job_type {
        names.insert("#ty".into(), "job_type".into());
        values.insert(":ty".into(), s(job_type.key()));
        parts.push("#ty = :ty".to_string());
    }
    if let Some(user) = &f.user {
        names.insert("#us".into(), "user".into());
        values.insert(":us".into(), s(user));
        parts.push("#us = :us".to_string());
    }
    if let Some(search) = &f.search {
        names.insert("#te".into(), "tenant".into());
        names.insert("#ul".into(), "user_lc".into());
        values.insert(":q".into(), s(&search.term));
        let mut any = vec![
            "begins_with(#te, :q)".to_string(),
            "begins_with(#ul, :q)".to_string(),
        ];
        if !search.types.is_empty() {
            names.insert("#ty".into(), "job_type".into());
            let placeholders: Vec<String> = search
                .types
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    values.insert(format!(":qt{i}"), s(t.key()));
                    format!(":qt{i}")
                })
                .collect();
            any.push(format!("#ty IN ({})", placeholders.join(", ")));
        }
        parts.push(format!("({})", any.join(" OR ")));
    }
    (!parts.is_empty()).then(|| parts.join(" AND "))
}

#[cfg(test)]
mod tests;
