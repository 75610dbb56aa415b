//! The workers' side of the Jobs table ([`ProgressStore`]): begin a job, commit a chunk
//! exactly once (ledger item + counters in one transaction), complete a job exactly once.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};

use super::{DynamoJobStore, condition_failed_at, conditional, job_key, n, s};
use crate::error::StoreError;
use crate::job::{ItemError, JobStatus};
use crate::ports::{ProgressStore, Tally};
use crate::record::{JobRecord, MAX_ERROR_SAMPLE, chunk_sk, job_pk};

impl ProgressStore for DynamoJobStore {
    async fn load(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        self.job(id, true).await
    }

    async fn begin(&self, id: &str, total: u64, chunks_total: u64, at: &str) -> Result<bool, StoreError> {
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(job_key(id)))
            .update_expression("SET #st = :running, #total = :total, #chunks = :chunks, #started = if_not_exists(#started, :at)")
            .condition_expression("#st IN (:queued, :running)")
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#total", "total")
            .expression_attribute_names("#chunks", "chunks_total")
            .expression_attribute_names("#started", "started_at")
            .expression_attribute_values(":running", s(JobStatus::Running.key()))
            .expression_attribute_values(":queued", s(JobStatus::Queued.key()))
            .expression_attribute_values(":total", AttributeValue::N(total.to_string()))
            .expression_attribute_values(":chunks", AttributeValue::N(chunks_total.to_string()))
            .expression_attribute_values(":at", s(at));
        conditional(request.send().await.map(|_| ()), "dynamodb:UpdateItem")
    }

    async fn chunk_committed(&self, id: &str, chunk: u64) -> Result<bool, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(job_pk(id)))
            .key("sk", s(chunk_sk(chunk)))
            .projection_expression("pk")
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::aws("dynamodb:GetItem", e))?;
        Ok(out.item.is_some())
    }

    async fn commit_chunk(&self, id: &str, chunk: u64, tally: &Tally, errors: &[ItemError], expires_at: i64) -> Result<bool, StoreError> {
        let ledger = Put::builder()
            .table_name(&self.table)
            .item("pk", s(job_pk(id)))
            .item("sk", s(chunk_sk(chunk)))
            .item("succeeded", n(tally.succeeded))
            .item("failed", n(tally.failed))
            .item("cancelled", n(tally.cancelled))
            .item("expires_at", AttributeValue::N(expires_at.to_string()))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| StoreError::encode("a Put", e))?;
        // Every attribute goes through a name placeholder: several (`total`, ...) are
        // DynamoDB reserved words.
        let mut expression = "ADD #succeeded :s, #failed :f, #cancelled :c, #done :one".to_string();
        let mut update = aws_sdk_dynamodb::types::Update::builder()
            .table_name(&self.table)
            .set_key(Some(job_key(id)))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#succeeded", "succeeded")
            .expression_attribute_names("#failed", "failed")
            .expression_attribute_names("#cancelled", "cancelled")
            .expression_attribute_names("#done", "chunks_done")
            .expression_attribute_values(":s", n(tally.succeeded))
            .expression_attribute_values(":f", n(tally.failed))
            .expression_attribute_values(":c", n(tally.cancelled))
            .expression_attribute_values(":one", n(1));
        if !errors.is_empty() {
            let sample: Vec<AttributeValue> = errors
                .iter()
                .take(MAX_ERROR_SAMPLE)
                .map(|e| AttributeValue::M(HashMap::from([("item".to_string(), s(&e.item)), ("reason".to_string(), s(&e.reason))])))
                .collect();
            expression.push_str(" SET #errors = list_append(if_not_exists(#errors, :none), :errors)");
            update = update
                .expression_attribute_names("#errors", "errors")
                .expression_attribute_values(":none", AttributeValue::L(Vec::new()))
                .expression_attribute_values(":errors", AttributeValue::L(sample));
        }
        let update = update.update_expression(expression).build().map_err(|e| StoreError::encode("an Update", e))?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(ledger).build())
            .transact_items(TransactWriteItem::builder().update(update).build())
            .send()
            .await;
        match result.map_err(|e| e.into_service_error()) {
            Ok(_) => Ok(true),
            // The first item is the ledger entry: the chunk was committed before.
            Err(error) if condition_failed_at(&error, 0) => Ok(false),
            Err(error) => Err(StoreError::aws("dynamodb:TransactWriteItems", error)),
        }
    }

    async fn complete(&self, id: &str, status: JobStatus, at: &str) -> Result<bool, StoreError> {
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(job_key(id)))
            .update_expression("SET #st = :final, #completed = :at")
            .condition_expression("#st = :running AND #done = #chunks")
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#completed", "completed_at")
            .expression_attribute_names("#done", "chunks_done")
            .expression_attribute_names("#chunks", "chunks_total")
            .expression_attribute_values(":final", s(status.key()))
            .expression_attribute_values(":running", s(JobStatus::Running.key()))
            .expression_attribute_values(":at", s(at));
        conditional(request.send().await.map(|_| ()), "dynamodb:UpdateItem")
    }
}

#[cfg(test)]
mod tests;
