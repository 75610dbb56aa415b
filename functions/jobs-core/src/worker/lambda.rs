//! The Lambda entry point shared by every worker: clients built once from the
//! environment (S3 on the first job input read, SQS on the first plan), then one
//! `handle_batch` per SQS event.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};

use super::{Processor, Worker, WorkerSettings};
use crate::aws::{
    AwsPorts, DynamoAuditLog, DynamoJobStore, EventBridgeBus, LazyClient, S3InputStore,
    SqsWorkQueue, s3_client,
};
use crate::domain::ended::Observers;
use crate::env::required;

/// What a type's processor is built from: the SDK config, and the DynamoDB client the
/// worker runtime uses for the Jobs table. A processor that works on DynamoDB too shares
/// that client: one per process, as building one costs start-up time.
pub struct Clients<'a> {
    pub config: &'a aws_config::SdkConfig,
    pub dynamodb: &'a aws_sdk_dynamodb::Client,
}

/// A worker process from start to end: JSON logging, the SDK config and DynamoDB client,
/// the type's processor (built by `processor` from them), then [`serve`]. It runs on a
/// current-thread runtime: Lambda hands a process one event at a time and `handle_batch`
/// is one task, so a worker thread pool would only lengthen the cold start.
pub fn run<P: Processor>(
    processor: impl FnOnce(Clients<'_>) -> Result<P, lambda_runtime::Error>,
) -> Result<(), lambda_runtime::Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async {
            crate::logging::init();
            let config = crate::aws::load_config().await;
            let dynamodb = aws_sdk_dynamodb::Client::new(&config);
            let processor = processor(Clients {
                config: &config,
                dynamodb: &dynamodb,
            })?;
            serve(processor, &config, dynamodb).await
        })
}

/// Serves `processor` for its type's work queue (`WORK_QUEUE_URL_PREFIX` + type key), with
/// the Jobs table (`TABLE_NAME`), job inputs (`INPUT_BUCKET`), the audit trail
/// (`AUDIT_TABLE`, `AUDIT_RETENTION_DAYS`), the event bus (`EVENT_BUS_NAME`) and
/// `MAX_RECEIVE_COUNT`.
async fn serve<P: Processor>(
    processor: P,
    config: &aws_config::SdkConfig,
    dynamodb: aws_sdk_dynamodb::Client,
) -> Result<(), lambda_runtime::Error> {
    let worker = Worker::<P, AwsPorts>::new(
        processor,
        DynamoJobStore::new(dynamodb.clone(), required("TABLE_NAME")?),
        S3InputStore::new(
            LazyClient::new(config, s3_client),
            required("INPUT_BUCKET")?,
        ),
        SqsWorkQueue::new(
            LazyClient::new(config, aws_sdk_sqs::Client::new),
            SqsWorkQueue::url_prefix_from_env()?,
        )
        .with_fair_queues(SqsWorkQueue::fair_queues_from_env()?),
        Observers::new(
            DynamoAuditLog::from_env(dynamodb)?,
            EventBridgeBus::from_env(config)?,
        ),
        WorkerSettings::from_env(P::JOB_TYPE)?,
    );
    let worker: &'static _ = Box::leak(Box::new(worker));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = event.context.deadline();
        Ok::<SqsBatchResponse, lambda_runtime::Error>(
            worker
                .handle_batch_until(event.payload, Some(deadline))
                .await,
        )
    }))
    .await
}
