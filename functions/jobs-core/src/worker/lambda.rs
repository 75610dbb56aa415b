//! The Lambda entry point shared by every worker: clients built once from the
//! environment (S3 on the first job input read, SQS on the first plan), then one
//! `handle_batch` per SQS event.

use std::collections::HashMap;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};

use super::{Processor, Worker, WorkerSettings};
use crate::aws::{DynamoJobStore, LazyClient, S3InputStore, SqsWorkQueue, s3_client};

fn required(name: &str) -> Result<String, lambda_runtime::Error> {
    std::env::var(name).map_err(|_| format!("{name} is not set").into())
}

/// Serves `processor` for the type's queue (`QUEUE_URL`), with the Jobs table
/// (`TABLE_NAME`) and job inputs (`INPUT_BUCKET`).
pub async fn serve<P: Processor>(processor: P, config: &aws_config::SdkConfig) -> Result<(), lambda_runtime::Error> {
    let worker = Worker::new(
        processor,
        DynamoJobStore::new(aws_sdk_dynamodb::Client::new(config), required("TABLE_NAME")?),
        S3InputStore::new(LazyClient::new(config, s3_client), required("INPUT_BUCKET")?),
        SqsWorkQueue::new(LazyClient::new(config, aws_sdk_sqs::Client::new), HashMap::from([(P::JOB_TYPE, required("QUEUE_URL")?)])),
        WorkerSettings::from_env()?,
    );
    let worker: &'static _ = Box::leak(Box::new(worker));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<SqsBatchResponse, lambda_runtime::Error>(worker.handle_batch(event.payload).await)
    }))
    .await
}
