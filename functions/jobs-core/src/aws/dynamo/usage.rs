//! Tenants' usage in the Jobs table ([`UsageStore`]): the usage item changes only inside
//! the transaction of the job write that causes it, each conditional on the job's state
//! ([`crate::domain::limits`] has the items).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};

use super::{DynamoJobStore, Item, condition_failed_at, job_key, n, refused_or_conflicted, s};
use crate::domain::job::{JobStatus, JobType};
use crate::domain::limits::{
    Admission, USAGE_SK, UsageCounts, running_attribute, tenant_pk, wait_prefix, wait_sk,
    waiting_attribute,
};
use crate::domain::record::{IdempotencyRecord, JobRecord};
use crate::error::StoreError;
use crate::ports::{CreateOutcome, UsageStore};

fn tenant_key(tenant: &str, sk: String) -> Item {
    HashMap::from([
        ("pk".to_string(), s(tenant_pk(tenant))),
        ("sk".to_string(), s(sk)),
    ])
}

fn update(
    update: aws_sdk_dynamodb::types::builders::UpdateBuilder,
) -> Result<TransactWriteItem, StoreError> {
    let update = update
        .build()
        .map_err(|e| StoreError::encode("an Update", e))?;
    Ok(TransactWriteItem::builder().update(update).build())
}

/// The job's line entry leaves, only if it is there.
fn leave_line(table: &str, job: &JobRecord) -> Result<TransactWriteItem, StoreError> {
    let delete = Delete::builder()
        .table_name(table)
        .set_key(Some(tenant_key(
            &job.tenant,
            wait_sk(job.job_type, &job.id),
        )))
        .condition_expression("attribute_exists(pk)")
        .build()
        .map_err(|e| StoreError::encode("a Delete", e))?;
    Ok(TransactWriteItem::builder().delete(delete).build())
}

fn number(value: &AttributeValue) -> u64 {
    value
        .as_n()
        .ok()
        .and_then(|n| n.parse::<i64>().ok())
        .map_or(0, |n| n.max(0) as u64)
}

impl DynamoJobStore {
    /// The usage item's update that counts one more queued job, below `max_queued`.
    pub(super) fn count_queued(
        &self,
        tenant: &str,
        max_queued: u32,
    ) -> Result<TransactWriteItem, StoreError> {
        update(
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(tenant_key(tenant, USAGE_SK.into())))
                .update_expression("ADD #queued :one")
                .condition_expression("attribute_not_exists(#queued) OR #queued < :max")
                .expression_attribute_names("#queued", "queued")
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":max", n(u64::from(max_queued))),
        )
    }
}

impl UsageStore for DynamoJobStore {
    async fn usage(&self, tenant: &str) -> Result<UsageCounts, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(tenant_key(tenant, USAGE_SK.into())))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::aws("dynamodb:GetItem", e))?;
        let mut usage = UsageCounts::default();
        for (name, value) in out.item.unwrap_or_default() {
            if name == "queued" {
                usage.queued = number(&value);
            } else if let Some(key) = name.strip_prefix("running_") {
                usage.running.insert(key.to_string(), number(&value));
            } else if let Some(key) = name.strip_prefix("waiting_") {
                usage.waiting.insert(key.to_string(), number(&value));
            }
        }
        Ok(usage)
    }

    async fn create_counted(
        &self,
        job: &JobRecord,
        idempotency: Option<&IdempotencyRecord>,
        max_queued: u32,
    ) -> Result<CreateOutcome, StoreError> {
        self.create_with(
            job,
            idempotency,
            Some(self.count_queued(&job.tenant, max_queued)?),
        )
        .await
    }

    async fn admit(&self, job: &JobRecord, max_running: u32) -> Result<Admission, StoreError> {
        let running = running_attribute(job.job_type);
        let waiting = waiting_attribute(job.job_type);
        let in_line = if job.limit_wait {
            "attribute_exists(#wait)"
        } else {
            "attribute_not_exists(#wait)"
        };
        let job_update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(job_key(&job.id)))
            .update_expression("SET #admitted = :true REMOVE #wait")
            .condition_expression(format!(
                "#st = :queued AND attribute_not_exists(#admitted) AND {in_line}"
            ))
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#admitted", "admitted")
            .expression_attribute_names("#wait", "limit_wait")
            .expression_attribute_values(":queued", s(JobStatus::Queued.key()))
            .expression_attribute_values(":true", AttributeValue::Bool(true));
        let mut usage = Update::builder()
            .table_name(&self.table)
            .set_key(Some(tenant_key(&job.tenant, USAGE_SK.into())))
            .expression_attribute_names("#running", running)
            .expression_attribute_names("#queued", "queued")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":minus_one", AttributeValue::N("-1".into()))
            .expression_attribute_values(":max", n(u64::from(max_running)))
            .expression_attribute_names("#waiting", waiting);
        let room = "(attribute_not_exists(#running) OR #running < :max)";
        usage = if job.limit_wait {
            usage
                .update_expression("ADD #running :one, #queued :minus_one, #waiting :minus_one")
                .condition_expression(room)
        } else {
            // A job not in line starts only if none of its type waits: the line keeps
            // creation order.
            usage
                .update_expression("ADD #running :one, #queued :minus_one")
                .condition_expression(format!(
                    "{room} AND (attribute_not_exists(#waiting) OR #waiting <= :zero)"
                ))
                .expression_attribute_values(":zero", n(0))
        };
        let mut request = self
            .client
            .transact_write_items()
            .transact_items(update(job_update)?)
            .transact_items(update(usage)?);
        if job.limit_wait {
            request = request.transact_items(leave_line(&self.table, job)?);
        }
        match request.send().await.map_err(|e| e.into_service_error()) {
            Ok(_) => Ok(Admission::Admitted),
            Err(error) if condition_failed_at(&error, 1) && !condition_failed_at(&error, 0) => {
                Ok(Admission::Full)
            }
            Err(error) if refused_or_conflicted(&error) => Ok(Admission::Changed),
            Err(error) => Err(StoreError::aws("dynamodb:TransactWriteItems", error)),
        }
    }

    async fn join_line(&self, job: &JobRecord) -> Result<bool, StoreError> {
        let job_update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(job_key(&job.id)))
            .update_expression("SET #wait = :true")
            .condition_expression(
                "#st = :queued AND attribute_not_exists(#admitted) AND attribute_not_exists(#wait)",
            )
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#admitted", "admitted")
            .expression_attribute_names("#wait", "limit_wait")
            .expression_attribute_values(":queued", s(JobStatus::Queued.key()))
            .expression_attribute_values(":true", AttributeValue::Bool(true));
        let usage = Update::builder()
            .table_name(&self.table)
            .set_key(Some(tenant_key(&job.tenant, USAGE_SK.into())))
            .update_expression("ADD #waiting :one")
            .expression_attribute_names("#waiting", waiting_attribute(job.job_type))
            .expression_attribute_values(":one", n(1));
        let mut entry = tenant_key(&job.tenant, wait_sk(job.job_type, &job.id));
        entry.insert("job_id".into(), s(job.id.clone()));
        entry.insert("expires_at".into(), n(job.expires_at.max(0) as u64));
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(entry))
            .build()
            .map_err(|e| StoreError::encode("a Put", e))?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(update(job_update)?)
            .transact_items(update(usage)?)
            .transact_items(TransactWriteItem::builder().put(put).build())
            .send()
            .await;
        super::written(result)
    }

    async fn release_usage(&self, job: &JobRecord) -> Result<bool, StoreError> {
        if !job.counted {
            return Ok(false);
        }
        let job_update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(job_key(&job.id)))
            .update_expression("SET #released = :true")
            .condition_expression("attribute_not_exists(#released)")
            .expression_attribute_names("#released", "usage_released")
            .expression_attribute_values(":true", AttributeValue::Bool(true));
        let usage = Update::builder()
            .table_name(&self.table)
            .set_key(Some(tenant_key(&job.tenant, USAGE_SK.into())))
            .expression_attribute_values(":minus_one", AttributeValue::N("-1".into()));
        let in_line = job.limit_wait && !job.admitted;
        let usage = if job.admitted {
            usage
                .update_expression("ADD #running :minus_one")
                .expression_attribute_names("#running", running_attribute(job.job_type))
        } else if in_line {
            usage
                .update_expression("ADD #queued :minus_one, #waiting :minus_one")
                .expression_attribute_names("#queued", "queued")
                .expression_attribute_names("#waiting", waiting_attribute(job.job_type))
        } else {
            usage
                .update_expression("ADD #queued :minus_one")
                .expression_attribute_names("#queued", "queued")
        };
        let mut request = self
            .client
            .transact_write_items()
            .transact_items(update(job_update)?)
            .transact_items(update(usage)?);
        if in_line {
            request = request.transact_items(leave_line(&self.table, job)?);
        }
        match request.send().await.map_err(|e| e.into_service_error()) {
            Ok(_) => Ok(true),
            Err(error) if condition_failed_at(&error, 0) => Ok(false),
            Err(error) => Err(StoreError::aws("dynamodb:TransactWriteItems", error)),
        }
    }

    async fn first_waiting(
        &self,
        tenant: &str,
        job_type: JobType,
        count: usize,
    ) -> Result<Vec<String>, StoreError> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(tenant_pk(tenant)))
            .expression_attribute_values(":prefix", s(wait_prefix(job_type)))
            .consistent_read(true)
            .limit(i32::try_from(count).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| StoreError::aws("dynamodb:Query", e))?;
        Ok(out
            .items
            .unwrap_or_default()
            .iter()
            .filter_map(|item| item.get("job_id"))
            .filter_map(|id| id.as_s().ok())
            .cloned()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::test_client::{
        ID, TABLE, job_key as job_key_json, sent, store, store_answering, transaction_cancelled,
    };
    use super::*;
    use crate::domain::record::NewJob;

    fn counted_job() -> JobRecord {
        let mut job = JobRecord::new(NewJob {
            id: ID.into(),
            job_type: JobType::AiTextEmbedding,
            tenant: "acme".into(),
            user: "alice".into(),
            created_at: "2026-12-05T10:00:00.000Z".into(),
            month: "2026-12".into(),
            total: 1,
            summary: json!({}),
            input_key: "inputs/acme/x.json".into(),
            expires_at: 1_900_000_000,
        });
        job.counted = true;
        job
    }

    fn usage_key() -> serde_json::Value {
        json!({"pk": {"S": "TENANT#acme"}, "sk": {"S": "USAGE"}})
    }

    #[tokio::test]
    async fn a_counted_create_adds_to_the_queued_count_in_its_transaction() {
        let (adapter, http) = store();
        let job = counted_job();
        assert_eq!(
            adapter.create_counted(&job, None, 7).await.unwrap(),
            CreateOutcome::Created
        );
        let (operation, body) = sent(http);
        assert_eq!(operation, "TransactWriteItems");
        let items = body["TransactItems"].as_array().unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0]["Put"]["Item"]["counted"], json!({"BOOL": true}));
        let usage = &items[1]["Update"];
        assert_eq!(usage["Key"], usage_key());
        assert_eq!(usage["UpdateExpression"], "ADD #queued :one");
        assert_eq!(
            usage["ConditionExpression"],
            "attribute_not_exists(#queued) OR #queued < :max"
        );
        assert_eq!(
            usage["ExpressionAttributeValues"][":max"],
            json!({"N": "7"})
        );
        let (adapter, _) = store_answering(
            400,
            transaction_cancelled(&["None", "ConditionalCheckFailed"]),
        );
        assert_eq!(
            adapter.create_counted(&job, None, 7).await.unwrap(),
            CreateOutcome::QueueFull
        );
    }

    #[tokio::test]
    async fn an_admission_counts_the_job_running_only_below_the_limit_and_behind_the_line() {
        let (adapter, http) = store();
        let job = counted_job();
        assert_eq!(adapter.admit(&job, 3).await.unwrap(), Admission::Admitted);
        let (_, body) = sent(http);
        let items = body["TransactItems"].as_array().unwrap();
        assert_eq!(items.len(), 2, "a job not in line has no entry to remove");
        assert_eq!(items[0]["Update"]["Key"], job_key_json());
        assert_eq!(items[0]["Update"]["TableName"], TABLE);
        assert_eq!(
            items[0]["Update"]["ConditionExpression"],
            "#st = :queued AND attribute_not_exists(#admitted) AND attribute_not_exists(#wait)"
        );
        assert_eq!(items[1]["Update"]["Key"], usage_key());
        assert_eq!(
            items[1]["Update"]["UpdateExpression"],
            "ADD #running :one, #queued :minus_one"
        );
        assert_eq!(
            items[1]["Update"]["ConditionExpression"],
            "(attribute_not_exists(#running) OR #running < :max) AND (attribute_not_exists(#waiting) OR #waiting <= :zero)"
        );
        assert_eq!(
            items[1]["Update"]["ExpressionAttributeNames"]["#running"],
            "running_ai_text_embedding"
        );

        let mut in_line = counted_job();
        in_line.limit_wait = true;
        let (adapter, http) = store();
        adapter.admit(&in_line, 3).await.unwrap();
        let (_, body) = sent(http);
        let items = body["TransactItems"].as_array().unwrap();
        assert_eq!(
            items[1]["Update"]["UpdateExpression"],
            "ADD #running :one, #queued :minus_one, #waiting :minus_one"
        );
        assert_eq!(
            items[2]["Delete"]["Key"],
            json!({"pk": {"S": "TENANT#acme"}, "sk": {"S": format!("WAIT#ai_text_embedding#{ID}")}})
        );
        for (codes, expected) in [
            (["None", "ConditionalCheckFailed"], Admission::Full),
            (["ConditionalCheckFailed", "None"], Admission::Changed),
        ] {
            let (adapter, _) = store_answering(400, transaction_cancelled(&codes));
            assert_eq!(adapter.admit(&job, 3).await.unwrap(), expected);
        }
    }

    #[tokio::test]
    async fn an_end_is_taken_off_once_and_the_line_is_read_oldest_first() {
        let mut job = counted_job();
        job.admitted = true;
        let (adapter, http) = store();
        assert!(adapter.release_usage(&job).await.unwrap());
        let (_, body) = sent(http);
        let items = body["TransactItems"].as_array().unwrap();
        assert_eq!(
            items[0]["Update"]["ConditionExpression"],
            "attribute_not_exists(#released)"
        );
        assert_eq!(
            items[1]["Update"]["UpdateExpression"],
            "ADD #running :minus_one"
        );
        let (adapter, _) = store_answering(
            400,
            transaction_cancelled(&["ConditionalCheckFailed", "None"]),
        );
        assert!(!adapter.release_usage(&job).await.unwrap(), "done before");

        let (adapter, http) = store_answering(
            200,
            json!({"Items": [{"pk": {"S": "TENANT#acme"}, "sk": {"S": "WAIT#ai_text_embedding#01A"}, "job_id": {"S": "01A"}}], "Count": 1}),
        );
        assert_eq!(
            adapter
                .first_waiting("acme", JobType::AiTextEmbedding, 3)
                .await
                .unwrap(),
            vec!["01A".to_string()]
        );
        let (operation, body) = sent(http);
        assert_eq!(operation, "Query");
        assert_eq!(body["Limit"], 3);
        assert_eq!(body["ConsistentRead"], true);
        assert_eq!(
            body["ExpressionAttributeValues"][":prefix"],
            json!({"S": "WAIT#ai_text_embedding#"})
        );
    }
}
