//! Benchmarks 1 and 4: a 10,000-recipient bulk job through LocalStack's SQS and DynamoDB,
//! our design (plan → 50-item chunk messages → one ledger+counter transaction per chunk)
//! against the naive one (one SQS message and one progress `UpdateItem` per item).
//!
//! Both run in this process with the same consumer (4 pollers, batches of 10, like the
//! Lambda event source) and the same per-item work, a no-op sender: what differs is only the
//! queue and store traffic the design causes. The deployed path, with LocalStack's SES as
//! the sender, is measured by tests/measure/bulk_throughput.py.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_dynamodb::types::AttributeValue;
use jobs_core::aws::{
    DynamoAuditLog, DynamoJobStore, LazyClient, S3InputStore, SqsWorkQueue, s3_client,
};
use jobs_core::domain::audit::Audit;
use jobs_core::domain::ended::Observers;
use jobs_core::domain::job::JobType;
use jobs_core::domain::params::{BulkMessageParams, is_email};
use jobs_core::domain::record::{JobRecord, NewJob};
use jobs_core::ports::{InputStore, JobStore, ProgressStore, WorkMessage};
use jobs_core::worker::{ItemOutcome, ItemResult, Processor, WorkError, Worker, WorkerSettings};

use crate::counting::Counter;

/// The stack's adapters, but job ends announced to memory (the bench does not measure
/// EventBridge).
struct PipelinePorts;

impl jobs_core::ports::WorkerPorts for PipelinePorts {
    type Store = DynamoJobStore;
    type Inputs = S3InputStore;
    type Queue = SqsWorkQueue;
    type Audit = DynamoAuditLog;
    type Bus = jobs_core::memory::MemoryBus;
}
use crate::{Env, Goal, Row};

const POLLERS: usize = 4;

/// The bulk worker's processor with the SES call left out.
struct NoopSend;

impl Processor for NoopSend {
    const JOB_TYPE: JobType = JobType::BulkMessageSending;
    type Params = BulkMessageParams;
    type Item = String;

    async fn items(
        &self,
        _job: &JobRecord,
        params: &BulkMessageParams,
    ) -> Result<Vec<String>, WorkError> {
        Ok(params.recipients.clone())
    }

    fn label(item: &String) -> String {
        item.clone()
    }

    async fn process(
        &self,
        _job: &JobRecord,
        _params: &BulkMessageParams,
        items: &[String],
    ) -> Vec<ItemResult> {
        items
            .iter()
            .map(|r| {
                Ok(if is_email(r) {
                    ItemOutcome::Succeeded
                } else {
                    ItemOutcome::Rejected("invalid".into())
                })
            })
            .collect()
    }
}

pub struct Outcome {
    pub writes: u64,
    /// Write requests by operation, e.g. "200 TransactWriteItems + 2 UpdateItem".
    pub detail: String,
    pub seconds: f64,
    pub items: u64,
}

pub async fn run(env: &Env, items: usize) -> Result<Vec<Row>> {
    let ours = ours(env, items).await?;
    let naive = naive(env, items).await?;
    let per_item = |o: &Outcome| o.writes as f64 / o.items as f64;
    let rate = |o: &Outcome| o.items as f64 / o.seconds;
    Ok(vec![
        Row::new(
            "1. DynamoDB writes per item",
            per_item(&ours),
            per_item(&naive),
            Some(Goal::AtMost(0.05)),
            format!(
                "{} vs {}; goal also ≤ 0.05 per item",
                ours.detail, naive.detail
            ),
        ),
        Row::new(
            "4. items/s through SQS + DynamoDB",
            rate(&ours),
            rate(&naive),
            Some(Goal::AtLeast(10.0)),
            format!(
                "{:.1} s vs {:.1} s for {items} items",
                ours.seconds, naive.seconds
            ),
        ),
    ])
}

async fn bench_job(
    env: &Env,
    store: &DynamoJobStore,
    items: usize,
) -> Result<(JobRecord, BulkMessageParams)> {
    let params = BulkMessageParams {
        channel: "email".into(),
        from: "bench@example.com".into(),
        subject: "Benchmark".into(),
        body: "Hello".into(),
        recipients: (0..items).map(|i| format!("user{i}@example.com")).collect(),
    };
    let id = ulid::Ulid::new().to_string();
    let input_key = format!("inputs/bench/{id}.json");
    let inputs = S3InputStore::new(
        LazyClient::new(&env.config, s3_client),
        env.outputs["InputBucketName"].clone(),
    );
    inputs.put(&input_key, serde_json::to_vec(&params)?).await?;
    let now = jobs_core::clock::now();
    let record = JobRecord::new(NewJob {
        id,
        job_type: JobType::BulkMessageSending,
        tenant: "bench".into(),
        user: "bench".into(),
        created_at: jobs_core::clock::format(now),
        month: jobs_core::clock::month_of(now),
        total: items as u64,
        summary: serde_json::json!({"recipients": items}),
        input_key,
        expires_at: now.unix_timestamp() + 86_400,
    });
    store.create(&record, None).await?;
    Ok((record, params))
}

/// A fresh queue named `jobs-bench-<ulid>-<name>`.
async fn queue(env: &Env, name: &str) -> Result<String> {
    let created = env
        .sqs
        .create_queue()
        .queue_name(format!("jobs-bench-{}-{name}", ulid::Ulid::new()))
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            "60",
        )
        .send()
        .await?;
    created.queue_url.context("queue url")
}

/// Receives batches of up to 10 with `POLLERS` pollers and hands each to `handle`, which
/// returns the receipt handles to delete; stops when `done` says so.
async fn consume<H, F, D, G>(env: &Env, url: &str, handle: H, done: D) -> Result<()>
where
    H: Fn(Vec<aws_sdk_sqs::types::Message>) -> F + Send + Sync,
    F: Future<Output = Result<Vec<String>>> + Send,
    D: Fn() -> G + Send + Sync,
    G: Future<Output = Result<bool>> + Send,
{
    let poll = || async {
        loop {
            let received = env
                .sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .message_system_attribute_names(
                    aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount,
                )
                .send()
                .await?;
            let messages = received.messages.unwrap_or_default();
            if messages.is_empty() {
                if done().await? {
                    return Ok::<(), anyhow::Error>(());
                }
                continue;
            }
            let receipts = handle(messages).await?;
            for (n, batch) in receipts.chunks(10).enumerate() {
                let entries = batch.iter().enumerate().map(|(i, r)| {
                    aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                        .id(format!("{n}-{i}"))
                        .receipt_handle(r)
                        .build()
                });
                env.sqs
                    .delete_message_batch()
                    .queue_url(url)
                    .set_entries(Some(entries.collect::<Result<Vec<_>, _>>()?))
                    .send()
                    .await?;
            }
        }
    };
    let pollers: Vec<_> = (0..POLLERS).map(|_| poll()).collect();
    for result in futures::future::join_all(pollers).await {
        result?;
    }
    Ok(())
}

async fn ours(env: &Env, items: usize) -> Result<Outcome> {
    let counter = Counter::default();
    let store = DynamoJobStore::new(counter.client(&env.config), env.table());
    let (job, _) = bench_job(env, &store, items).await?;
    // Named like a type's work queue, so the worker's queue adapter finds it by its key.
    let key = JobType::BulkMessageSending.key();
    let url = queue(env, key).await?;
    let url_prefix = url
        .strip_suffix(key)
        .context("queue URL ends with its name")?
        .to_string();
    let worker = Arc::new(Worker::<_, PipelinePorts>::new(
        NoopSend,
        DynamoJobStore::new(counter.client(&env.config), env.table()),
        S3InputStore::new(
            LazyClient::new(&env.config, s3_client),
            env.outputs["InputBucketName"].clone(),
        ),
        SqsWorkQueue::new(
            LazyClient::new(&env.config, aws_sdk_sqs::Client::new),
            url_prefix,
        ),
        // The audit entry is a DynamoDB write and counts; the end event goes to EventBridge.
        Observers::new(
            Audit::new(
                DynamoAuditLog::new(
                    counter.client(&env.config),
                    env.outputs["AuditTableName"].clone(),
                ),
                400,
            ),
            jobs_core::memory::MemoryBus::default(),
        ),
        // A window that keeps every poller's batch of 10 full, as MaximumConcurrency x
        // BatchSize does on AWS.
        WorkerSettings {
            max_receive_count: 5,
            chunk_size: JobType::BulkMessageSending.spec().chunk_size,
            release: jobs_core::domain::window::ReleaseSettings {
                limit: POLLERS as u64 * 10,
                scope: jobs_core::domain::window::WindowScope::Tenant,
            },
            checkpoint_interval: std::time::Duration::from_secs(2),
            retry_budget: std::time::Duration::from_secs(600),
            default_limits: jobs_core::domain::limits::TenantLimits::default(),
            segment_bytes: jobs_core::domain::file::SEGMENT_BYTES,
        },
    ));
    counter.take();
    let started = Instant::now();
    let plan = serde_json::to_string(&WorkMessage::Plan {
        job_id: job.id.clone(),
        tenant: job.tenant.clone(),
        woken: false,
    })?;
    env.sqs
        .send_message()
        .queue_url(&url)
        .message_body(plan)
        .send()
        .await?;
    let handle = |messages: Vec<aws_sdk_sqs::types::Message>| {
        let worker = worker.clone();
        async move {
            let receipts: HashMap<String, String> = messages
                .iter()
                .filter_map(|m| Some((m.message_id.clone()?, m.receipt_handle.clone()?)))
                .collect();
            let mut event = SqsEvent::default();
            event.records = messages.into_iter().map(lambda_message).collect();
            let failed: Vec<String> = worker
                .handle_batch(event)
                .await
                .batch_item_failures
                .into_iter()
                .map(|f| f.item_identifier)
                .collect();
            Ok(receipts
                .into_iter()
                .filter(|(id, _)| !failed.contains(id))
                .map(|(_, r)| r)
                .collect())
        }
    };
    let (w, id) = (&worker, &job.id);
    let done = move || async move {
        Ok(w.store()
            .load(id)
            .await?
            .is_some_and(|j| j.status.is_terminal()))
    };
    consume(env, &url, handle, done).await?;
    let seconds = started.elapsed().as_secs_f64();
    let counts = counter.take();
    let finished = store.load(&job.id).await?.context("job vanished")?;
    anyhow::ensure!(
        finished.succeeded == items as u64,
        "ours: {} of {items} succeeded",
        finished.succeeded
    );
    env.sqs.delete_queue().queue_url(&url).send().await?;
    Ok(Outcome {
        writes: counts.writes(),
        detail: counts.write_detail(),
        seconds,
        items: items as u64,
    })
}

/// One message per item; each processed item adds 1 to the job's counter, and the item
/// that brings it to the total completes the job.
async fn naive(env: &Env, items: usize) -> Result<Outcome> {
    let counter = Counter::default();
    let dynamo = counter.client(&env.config);
    let store = DynamoJobStore::new(dynamo.clone(), env.table());
    let (job, params) = bench_job(env, &store, items).await?;
    let url = queue(env, "items").await?;
    counter.take();
    let started = Instant::now();
    // The API's fan-out: the whole job as 10-message batches.
    for (n, batch) in params.recipients.chunks(10).enumerate() {
        let entries = batch.iter().enumerate().map(|(i, r)| {
            aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                .id(format!("{n}-{i}"))
                .message_body(r)
                .build()
        });
        env.sqs
            .send_message_batch()
            .queue_url(&url)
            .set_entries(Some(entries.collect::<Result<Vec<_>, _>>()?))
            .send()
            .await?;
    }
    let key = HashMap::from([
        (
            "pk".to_string(),
            AttributeValue::S(format!("JOB#{}", job.id)),
        ),
        ("sk".to_string(), AttributeValue::S("JOB".into())),
    ]);
    let handle = |messages: Vec<aws_sdk_sqs::types::Message>| {
        let (dynamo, key) = (dynamo.clone(), key.clone());
        async move {
            let mut receipts = Vec::new();
            for m in messages {
                let ok = is_email(m.body.as_deref().unwrap_or(""));
                let updated = dynamo
                    .update_item()
                    .table_name(env.table())
                    .set_key(Some(key.clone()))
                    .update_expression("ADD #c :one")
                    .expression_attribute_names("#c", if ok { "succeeded" } else { "failed" })
                    .expression_attribute_values(":one", AttributeValue::N("1".into()))
                    .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
                    .send()
                    .await?;
                let settled = ["succeeded", "failed"]
                    .iter()
                    .filter_map(|n| {
                        updated
                            .attributes
                            .as_ref()?
                            .get(*n)?
                            .as_n()
                            .ok()?
                            .parse::<usize>()
                            .ok()
                    })
                    .sum::<usize>();
                if settled == items {
                    dynamo
                        .update_item()
                        .table_name(env.table())
                        .set_key(Some(key.clone()))
                        .update_expression("SET #s = :done")
                        .expression_attribute_names("#s", "status")
                        .expression_attribute_values(":done", AttributeValue::S("completed".into()))
                        .send()
                        .await?;
                }
                receipts.extend(m.receipt_handle);
            }
            Ok(receipts)
        }
    };
    let (s, id) = (&store, &job.id);
    let done = move || async move { Ok(s.load(id).await?.is_some_and(|j| j.status.is_terminal())) };
    consume(env, &url, handle, done).await?;
    let seconds = started.elapsed().as_secs_f64();
    let counts = counter.take();
    env.sqs.delete_queue().queue_url(&url).send().await?;
    Ok(Outcome {
        writes: counts.writes(),
        detail: counts.write_detail(),
        seconds,
        items: items as u64,
    })
}

fn lambda_message(m: aws_sdk_sqs::types::Message) -> SqsMessage {
    let mut out = SqsMessage::default();
    out.message_id = m.message_id;
    out.receipt_handle = m.receipt_handle;
    out.body = m.body;
    out.attributes = m
        .attributes
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.as_str().to_string(), v))
        .collect();
    out
}
