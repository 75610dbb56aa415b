//! The storage ports' conformance suites (`jobs_core::conformance`) on the AWS adapters,
//! against the deployed stack's table, bucket and audit table in LocalStack: the same
//! suites the in-memory doubles pass in jobs-core's unit tests.

use e2e::Stack;
use jobs_core::aws::{DynamoAuditLog, DynamoJobStore, LazyClient, S3InputStore, s3_client};
use jobs_core::conformance;

fn store(stack: &Stack) -> DynamoJobStore {
    DynamoJobStore::new(stack.dynamo.clone(), stack.table())
}

#[tokio::test]
async fn the_dynamodb_job_store_conforms() {
    conformance::job_store(&store(&Stack::load().await)).await;
}

#[tokio::test]
async fn dynamodb_job_ends_conform() {
    conformance::job_ends(&store(&Stack::load().await)).await;
}

#[tokio::test]
async fn the_dynamodb_progress_store_conforms() {
    conformance::progress_store(&store(&Stack::load().await)).await;
}

#[tokio::test]
async fn the_dynamodb_schedule_store_conforms() {
    conformance::schedule_store(&store(&Stack::load().await)).await;
}

#[tokio::test]
async fn the_dynamodb_metrics_store_conforms() {
    conformance::metrics_store(&store(&Stack::load().await)).await;
}

#[tokio::test]
async fn the_s3_input_store_conforms() {
    let stack = Stack::load().await;
    conformance::input_store(&S3InputStore::new(
        LazyClient::new(&stack.config, s3_client),
        stack.outputs["InputBucketName"].clone(),
    ))
    .await;
}

#[tokio::test]
async fn the_dynamodb_audit_log_conforms() {
    let stack = Stack::load().await;
    conformance::audit_log(DynamoAuditLog::new(
        stack.dynamo.clone(),
        stack.outputs["AuditTableName"].clone(),
    ))
    .await;
}
