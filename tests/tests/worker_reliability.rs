//! The worker runtime against the real Jobs table and input bucket in LocalStack, fed
//! crafted SQS events: duplicate deliveries, a chunk that fails every attempt, a batch with
//! one bad message, and concurrent finishers. A scripted processor stands in for the work.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use e2e::{Stack, fresh_tenant, json};
use jobs_core::JobStatus;
use jobs_core::aws::{DynamoJobStore, S3InputStore, s3_client};
use jobs_core::job::{ItemError, JobType};
use jobs_core::memory::MemoryQueue;
use jobs_core::ports::{InputStore, JobStore, ProgressStore, Tally, WorkMessage};
use jobs_core::record::{JobRecord, NewJob};
use jobs_core::worker::{Disposition, ItemOutcome, Processor, WorkError, Worker, WorkerSettings};
use serde::Deserialize;

struct Scripted;

#[derive(Deserialize)]
struct Params {
    items: Vec<String>,
}

impl Processor for Scripted {
    const JOB_TYPE: JobType = JobType::ProfileFieldUpdate;
    const CHUNK_SIZE: usize = 3;
    type Params = Params;
    type Item = String;

    async fn items(&self, _job: &JobRecord, params: &Params) -> Result<Vec<String>, WorkError> {
        Ok(params.items.clone())
    }

    fn label(item: &String) -> String {
        item.clone()
    }

    async fn process(&self, _job: &JobRecord, _params: &Params, items: &[String]) -> Result<Vec<ItemOutcome>, WorkError> {
        if items.iter().any(|i| i == "always-throttled") {
            return Err(WorkError::Transient("ThrottlingException: slow down".into()));
        }
        Ok(items.iter().map(|_| ItemOutcome::Succeeded).collect())
    }
}

/// The DynamoDB store, counting successful completions.
struct Counting {
    inner: DynamoJobStore,
    completions: AtomicUsize,
}

impl ProgressStore for Counting {
    async fn load(&self, id: &str) -> Result<Option<JobRecord>, jobs_core::error::StoreError> {
        self.inner.load(id).await
    }
    async fn begin(&self, id: &str, total: u64, chunks: u64, at: &str) -> Result<bool, jobs_core::error::StoreError> {
        self.inner.begin(id, total, chunks, at).await
    }
    async fn chunk_committed(&self, id: &str, chunk: u64) -> Result<bool, jobs_core::error::StoreError> {
        self.inner.chunk_committed(id, chunk).await
    }
    async fn commit_chunk(&self, id: &str, chunk: u64, tally: &Tally, errors: &[ItemError], expires: i64) -> Result<bool, jobs_core::error::StoreError> {
        self.inner.commit_chunk(id, chunk, tally, errors, expires).await
    }
    async fn complete(&self, id: &str, status: JobStatus, at: &str) -> Result<bool, jobs_core::error::StoreError> {
        let done = self.inner.complete(id, status, at).await?;
        if done {
            self.completions.fetch_add(1, Ordering::SeqCst);
        }
        Ok(done)
    }
}

type TestWorker = Worker<Scripted, Counting, S3InputStore, MemoryQueue>;

fn worker(stack: &Stack) -> TestWorker {
    let store = Counting { inner: DynamoJobStore::new(stack.dynamo.clone(), stack.table()), completions: AtomicUsize::new(0) };
    let inputs = S3InputStore::new(s3_client(&stack.config), stack.outputs["InputBucketName"].clone());
    Worker::new(Scripted, store, inputs, MemoryQueue::default(), WorkerSettings { max_receive_count: 5 })
}

/// A job written straight to the table (no plan message reaches the deployed workers).
async fn job(stack: &Stack, items: &[&str]) -> (String, String) {
    let tenant = fresh_tenant("reliable");
    let id = ulid::Ulid::new().to_string();
    let input_key = format!("inputs/{tenant}/{id}.json");
    let inputs = S3InputStore::new(s3_client(&stack.config), stack.outputs["InputBucketName"].clone());
    inputs.put(&input_key, serde_json::to_vec(&json!({"items": items})).unwrap()).await.unwrap();
    let now = jobs_core::clock::now();
    let record = JobRecord::new(NewJob {
        id: id.clone(),
        job_type: JobType::ProfileFieldUpdate,
        tenant: tenant.clone(),
        user: "tester".into(),
        created_at: jobs_core::clock::format(now),
        month: jobs_core::clock::month_of(now),
        total: items.len() as u64,
        summary: json!({}),
        input_key,
        expires_at: now.unix_timestamp() + 3600,
    });
    DynamoJobStore::new(stack.dynamo.clone(), stack.table()).create(&record, None).await.unwrap();
    (id, tenant)
}

fn sqs(id: &str, body: &str, attempt: u32) -> SqsMessage {
    let mut m = SqsMessage::default();
    m.message_id = Some(id.into());
    m.body = Some(body.into());
    m.attributes = HashMap::from([("ApproximateReceiveCount".to_string(), attempt.to_string())]);
    m
}

fn event(messages: Vec<SqsMessage>) -> SqsEvent {
    let mut e = SqsEvent::default();
    e.records = messages;
    e
}

async fn plan(w: &TestWorker, id: &str, tenant: &str) -> Vec<String> {
    let body = serde_json::to_string(&WorkMessage::Plan { job_id: id.into(), tenant: tenant.into() }).unwrap();
    assert_eq!(body, format!(r#"{{"kind":"plan","job_id":"{id}","tenant":"{tenant}"}}"#), "the API's plan message shape");
    assert_eq!(w.handle_message(&sqs("plan", &body, 1)).await, Disposition::Ack);
    w.queue_messages()
}

trait Drain {
    fn queue_messages(&self) -> Vec<String>;
}

impl Drain for TestWorker {
    fn queue_messages(&self) -> Vec<String> {
        self.queue().drain().iter().map(|m| serde_json::to_string(m).unwrap()).collect()
    }
}

#[tokio::test]
async fn every_chunk_delivered_twice_still_counts_exactly() {
    let stack = Stack::load().await;
    let w = worker(&stack);
    let (id, tenant) = job(&stack, &["a", "b", "c", "d", "e", "f", "g"]).await;
    let chunks = plan(&w, &id, &tenant).await;
    assert_eq!(chunks.len(), 3);
    for (n, chunk) in chunks.iter().enumerate() {
        let twice = event(vec![sqs(&format!("{n}-a"), chunk, 1), sqs(&format!("{n}-b"), chunk, 2)]);
        assert!(w.handle_batch(twice).await.batch_item_failures.is_empty());
    }
    let job = w.store().load(&id).await.unwrap().unwrap();
    assert_eq!((job.status, job.succeeded, job.failed, job.chunks_done), (JobStatus::Completed, 7, 0, 3));
    assert_eq!(w.store().completions.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_chunk_failing_every_attempt_is_recorded_as_failed_on_the_last() {
    let stack = Stack::load().await;
    let w = worker(&stack);
    let (id, tenant) = job(&stack, &["a", "b", "c", "always-throttled", "e"]).await;
    let chunks = plan(&w, &id, &tenant).await;
    assert_eq!(w.handle_message(&sqs("0", &chunks[0], 1)).await, Disposition::Ack);
    for attempt in 1..5 {
        assert_eq!(w.handle_message(&sqs("1", &chunks[1], attempt)).await, Disposition::Retry, "attempt {attempt}");
    }
    assert_eq!(w.store().load(&id).await.unwrap().unwrap().status, JobStatus::Running);
    assert_eq!(w.handle_message(&sqs("1", &chunks[1], 5)).await, Disposition::Ack, "maxReceiveCount reached");
    let job = w.store().load(&id).await.unwrap().unwrap();
    assert_eq!((job.status, job.succeeded, job.failed), (JobStatus::CompletedWithErrors, 3, 2));
    assert!(job.errors[0].reason.contains("gave up after 5 attempts"), "{:?}", job.errors);
}

#[tokio::test]
async fn only_the_failing_message_of_a_batch_is_retried() {
    let stack = Stack::load().await;
    let w = worker(&stack);
    let (id, tenant) = job(&stack, &["a", "b", "c", "always-throttled"]).await;
    let chunks = plan(&w, &id, &tenant).await;
    let batch = event(vec![
        sqs("good", &chunks[0], 1),
        sqs("throttled", &chunks[1], 1),
        sqs("garbage", "{\"kind\": \"chunk\", truncated", 1),
        sqs("empty", "", 1),
        sqs("wrong-kind", r#"{"kind":"reboot","job_id":"x"}"#, 1),
    ]);
    let failures: Vec<String> = w.handle_batch(batch).await.batch_item_failures.into_iter().map(|f| f.item_identifier).collect();
    assert_eq!(failures, vec!["throttled"]);
    let job = w.store().load(&id).await.unwrap().unwrap();
    assert_eq!((job.succeeded, job.chunks_done), (3, 1));
}

#[tokio::test]
async fn concurrent_finishers_complete_the_job_exactly_once() {
    let stack = Stack::load().await;
    let w = worker(&stack);
    let items: Vec<String> = (0..30).map(|i| format!("item-{i}")).collect();
    let (id, tenant) = job(&stack, &items.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let chunks = plan(&w, &id, &tenant).await;
    assert_eq!(chunks.len(), 10);
    // Two workers each get every chunk at the same moment.
    let batch = |prefix: &str| event(chunks.iter().enumerate().map(|(n, c)| sqs(&format!("{prefix}{n}"), c, 1)).collect());
    let (a, b) = tokio::join!(w.handle_batch(batch("a")), w.handle_batch(batch("b")));
    assert!(a.batch_item_failures.is_empty() && b.batch_item_failures.is_empty());
    let job = w.store().load(&id).await.unwrap().unwrap();
    assert_eq!((job.status, job.succeeded, job.chunks_done), (JobStatus::Completed, 30, 10));
    assert_eq!(w.store().completions.load(Ordering::SeqCst), 1, "exactly one completion");
}
