//! The Jobs API function: builds its clients once (S3, SQS and SES on the first create),
//! then serves API Gateway events.

mod gateway;

use jobs_core::api::{JobsApi, Settings};
use jobs_core::ended::Observers;
use jobs_core::aws::{DynamoAuditLog, DynamoJobStore, EventBridgeBus, LazyClient, S3InputStore, SesSenderIdentities, SqsWorkQueue, load_config, s3_client};
use jobs_core::env::required;

// Lambda hands a process one event at a time and the handler runs as one task: a worker
// thread pool would only lengthen the cold start (docs/performance.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    jobs_core::logging::init();
    let config = load_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let api = JobsApi::new(
        DynamoJobStore::new(dynamodb.clone(), required("TABLE_NAME")?),
        S3InputStore::new(LazyClient::new(&config, s3_client), required("INPUT_BUCKET")?),
        SqsWorkQueue::new(LazyClient::new(&config, aws_sdk_sqs::Client::new), SqsWorkQueue::url_prefix_from_env()?),
        SesSenderIdentities::new(LazyClient::new(&config, aws_sdk_ses::Client::new)),
        Observers::new(DynamoAuditLog::from_env(dynamodb)?, EventBridgeBus::from_env(&config)?),
        Settings::from_env()?,
    );
    let api: &'static _ = Box::leak(Box::new(api));
    lambda_http::run(lambda_http::service_fn(move |request| gateway::handle(api, request))).await
}
