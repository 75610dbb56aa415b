//! The storage ports' conformance suites (`jobs_core::conformance`) on the AWS adapters,
//! against the deployed stack's table, bucket, audit table, SES and event bus, and queues
//! of their own, in LocalStack: the same
//! suites the in-memory doubles pass in jobs-core's unit tests.

use std::time::Duration;

use e2e::{Stack, fresh_tenant, received_events, subscribe};
use jobs_core::aws::{
    DynamoAuditLog, DynamoJobStore, EventBridgeBus, LazyClient, S3InputStore, SesSenderIdentities,
    SqsWorkQueue, s3_client,
};
use jobs_core::conformance;
use jobs_core::domain::job::JobType;

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
async fn the_dynamodb_api_key_store_conforms() {
    conformance::api_key_store(&store(&Stack::load().await)).await;
}

#[tokio::test]
async fn the_dynamodb_sender_store_conforms() {
    conformance::sender_store(&store(&Stack::load().await)).await;
}

#[tokio::test]
async fn the_dynamodb_limits_store_conforms() {
    conformance::limits_store(&store(&Stack::load().await)).await;
}

#[tokio::test]
async fn the_dynamodb_usage_store_conforms() {
    conformance::usage_store(&store(&Stack::load().await)).await;
}

#[tokio::test]
async fn the_dynamodb_window_store_conforms() {
    conformance::window_store(&store(&Stack::load().await)).await;
    conformance::deferred_plans(&store(&Stack::load().await)).await;
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

#[tokio::test]
async fn the_sqs_work_queue_conforms() {
    let stack = Stack::load().await;
    let job_type = JobType::AiTextEmbedding;
    let name = format!("conf-{}", conformance::fresh_id().to_lowercase());
    let mut urls = Vec::new();
    let key = job_type.key();
    for queue in [
        format!("{name}-work-{key}"),
        format!("{name}-work-{key}-plans"),
        format!("{name}-dlq-{key}"),
    ] {
        let out = stack
            .sqs
            .create_queue()
            .queue_name(queue)
            .send()
            .await
            .expect("CreateQueue");
        urls.push(out.queue_url.unwrap_or_default());
    }
    let prefix = urls[0].strip_suffix(job_type.key()).unwrap().to_string();
    let queue = SqsWorkQueue::new(
        LazyClient::new(&stack.config, aws_sdk_sqs::Client::new),
        prefix,
    );
    conformance::work_queue(&queue, job_type).await;
    for url in urls {
        stack
            .sqs
            .delete_queue()
            .queue_url(url)
            .send()
            .await
            .expect("DeleteQueue");
    }
}

#[tokio::test]
async fn ses_sender_identities_conform() {
    let stack = Stack::load().await;
    let (address, domain) = conformance::fresh_sender_identities();
    stack
        .ses
        .verify_email_identity()
        .email_address(&address)
        .send()
        .await
        .expect("VerifyEmailIdentity");
    stack
        .ses
        .verify_domain_identity()
        .domain(&domain)
        .send()
        .await
        .expect("VerifyDomainIdentity");
    let senders =
        SesSenderIdentities::new(LazyClient::new(&stack.config, aws_sdk_ses::Client::new));
    conformance::sender_identities(&senders, &address, &domain).await;
}

#[tokio::test]
async fn the_eventbridge_bus_conforms() {
    let stack = Stack::load().await;
    let tenant = fresh_tenant("conf-bus");
    let queue = subscribe(&stack, &tenant).await;
    let bus = EventBridgeBus::new(
        LazyClient::new(&stack.config, aws_sdk_eventbridge::Client::new),
        stack.outputs["EventBusName"].clone(),
    );
    // received_events takes what it reads off the queue: keep every event read so far.
    let seen = std::sync::Mutex::new(Vec::new());
    conformance::event_bus(&bus, &tenant, async || {
        let new = received_events(
            &stack,
            &queue,
            |_| true,
            Duration::from_secs(1),
            Duration::ZERO,
        )
        .await;
        let mut seen = seen.lock().unwrap();
        seen.extend(new);
        seen.clone()
    })
    .await;
}
