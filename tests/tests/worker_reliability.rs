//! The worker runtime against the real Jobs table and input bucket in LocalStack, fed
//! crafted SQS events: duplicate deliveries, a chunk that fails every attempt, a batch with
//! one bad message, and concurrent finishers. A scripted processor stands in for the work.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use e2e::{Stack, fresh_tenant, json, received_events, subscribe};
use jobs_core::JobStatus;
use jobs_core::aws::{
    DynamoAuditLog, DynamoJobStore, EventBridgeBus, LazyClient, S3InputStore, s3_client,
};
use jobs_core::domain::audit::Audit;
use jobs_core::domain::ended::Observers;
use jobs_core::domain::job::JobType;
use jobs_core::domain::limits::{Admission, LimitsRecord, UsageCounts};
use jobs_core::domain::record::IdempotencyRecord;
use jobs_core::domain::record::{JobRecord, NewJob};
use jobs_core::domain::window::{Acquired, ReleaseWindow, SlotPass, WindowKey};
use jobs_core::error::StoreError;
use jobs_core::memory::MemoryQueue;
use jobs_core::ports::{
    ChunkCommit, ChunkLedger, CreateOutcome, InputStore, JobEnds, JobStore, LimitsStore,
    MetricsStore, ProgressStore, UsageStore, WindowStore, WorkMessage,
};
use jobs_core::worker::scripted::Scripted;
use jobs_core::worker::{Disposition, Worker, WorkerSettings};

/// The DynamoDB store, counting successful completions.
struct Counting {
    inner: DynamoJobStore,
    completions: AtomicUsize,
}

impl ProgressStore for Counting {
    async fn load(&self, id: &str) -> Result<Option<JobRecord>, jobs_core::error::StoreError> {
        self.inner.load(id).await
    }
    async fn load_many(
        &self,
        ids: &[String],
    ) -> Result<Vec<JobRecord>, jobs_core::error::StoreError> {
        self.inner.load_many(ids).await
    }
    async fn begin(
        &self,
        id: &str,
        total: u64,
        chunks: u64,
        at: &str,
    ) -> Result<bool, jobs_core::error::StoreError> {
        self.inner.begin(id, total, chunks, at).await
    }
    async fn lease_plan(
        &self,
        id: &str,
        until: i64,
        now: i64,
    ) -> Result<bool, jobs_core::error::StoreError> {
        self.inner.lease_plan(id, until, now).await
    }
    async fn plan_paused(&self, id: &str, rows: u64) -> Result<(), jobs_core::error::StoreError> {
        self.inner.plan_paused(id, rows).await
    }
    async fn chunk_ledger(
        &self,
        id: &str,
        chunk: u64,
    ) -> Result<Option<ChunkLedger>, jobs_core::error::StoreError> {
        self.inner.chunk_ledger(id, chunk).await
    }
    async fn chunk_start(
        &self,
        id: &str,
        chunk: u64,
    ) -> Result<(Option<JobRecord>, Option<ChunkLedger>), jobs_core::error::StoreError> {
        self.inner.chunk_start(id, chunk).await
    }
    async fn chunk_outcomes(
        &self,
        id: &str,
        from: u64,
        limit: u32,
    ) -> Result<(Vec<jobs_core::ports::ChunkOutcomes>, bool), jobs_core::error::StoreError> {
        self.inner.chunk_outcomes(id, from, limit).await
    }
    async fn commit_chunk(
        &self,
        id: &str,
        chunk: u64,
        commit: &ChunkCommit,
        expires: i64,
    ) -> Result<bool, jobs_core::error::StoreError> {
        self.inner.commit_chunk(id, chunk, commit, expires).await
    }
    async fn complete(
        &self,
        id: &str,
        status: JobStatus,
        at: &str,
    ) -> Result<bool, jobs_core::error::StoreError> {
        let done = self.inner.complete(id, status, at).await?;
        if done {
            self.completions.fetch_add(1, Ordering::SeqCst);
        }
        Ok(done)
    }
}

impl WindowStore for Counting {
    async fn window(&self, key: &WindowKey) -> Result<ReleaseWindow, jobs_core::error::StoreError> {
        self.inner.window(key).await
    }
    async fn hold_first(
        &self,
        job_id: &str,
        chains: u64,
    ) -> Result<(), jobs_core::error::StoreError> {
        self.inner.hold_first(job_id, chains).await
    }
    async fn acquire(
        &self,
        key: &WindowKey,
        limit: u64,
        job_id: &str,
        heads: &[u64],
    ) -> Result<Acquired, jobs_core::error::StoreError> {
        self.inner.acquire(key, limit, job_id, heads).await
    }
    async fn wait(
        &self,
        key: &WindowKey,
        limit: u64,
        job_id: &str,
    ) -> Result<bool, jobs_core::error::StoreError> {
        self.inner.wait(key, limit, job_id).await
    }
    async fn defer(
        &self,
        key: &WindowKey,
        limit: u64,
        job_id: &str,
    ) -> Result<bool, jobs_core::error::StoreError> {
        self.inner.defer(key, limit, job_id).await
    }
    async fn wake(
        &self,
        key: &WindowKey,
        by: &str,
        jobs: &[String],
    ) -> Result<bool, jobs_core::error::StoreError> {
        self.inner.wake(key, by, jobs).await
    }
    async fn leave(
        &self,
        key: &WindowKey,
        job_id: &str,
        seen: Option<(u64, u64)>,
    ) -> Result<bool, jobs_core::error::StoreError> {
        self.inner.leave(key, job_id, seen).await
    }
    async fn pass(
        &self,
        key: &WindowKey,
        pass: &SlotPass,
    ) -> Result<bool, jobs_core::error::StoreError> {
        self.inner.pass(key, pass).await
    }
}

impl MetricsStore for Counting {
    async fn add_metrics(
        &self,
        adds: &[jobs_core::domain::metrics::MetricAdd],
    ) -> Result<(), jobs_core::error::StoreError> {
        self.inner.add_metrics(adds).await
    }
    async fn read_metrics(
        &self,
        pk: &str,
        from: &str,
        to: &str,
    ) -> Result<Vec<jobs_core::domain::metrics::MetricItem>, jobs_core::error::StoreError> {
        self.inner.read_metrics(pk, from, to).await
    }
}

impl LimitsStore for Counting {
    async fn get_limits(&self, tenant: &str) -> Result<Option<LimitsRecord>, StoreError> {
        self.inner.get_limits(tenant).await
    }
    async fn put_limits(&self, limits: &LimitsRecord) -> Result<(), StoreError> {
        self.inner.put_limits(limits).await
    }
    async fn count_create(
        &self,
        tenant: &str,
        minute: &str,
        limit: u32,
        ttl: i64,
    ) -> Result<bool, StoreError> {
        self.inner.count_create(tenant, minute, limit, ttl).await
    }
    async fn count_upload(
        &self,
        tenant: &str,
        day: &str,
        limit: u32,
        ttl: i64,
    ) -> Result<bool, StoreError> {
        self.inner.count_upload(tenant, day, limit, ttl).await
    }
    async fn creates_in(&self, tenant: &str, minute: &str) -> Result<u64, StoreError> {
        self.inner.creates_in(tenant, minute).await
    }
}

impl UsageStore for Counting {
    async fn usage(&self, tenant: &str) -> Result<UsageCounts, StoreError> {
        self.inner.usage(tenant).await
    }
    async fn create_counted(
        &self,
        job: &JobRecord,
        idempotency: Option<&IdempotencyRecord>,
        max_queued: u32,
    ) -> Result<CreateOutcome, StoreError> {
        self.inner
            .create_counted(job, idempotency, max_queued)
            .await
    }
    async fn admit(&self, job: &JobRecord, max_running: u32) -> Result<Admission, StoreError> {
        self.inner.admit(job, max_running).await
    }
    async fn join_line(&self, job: &JobRecord) -> Result<bool, StoreError> {
        self.inner.join_line(job).await
    }
    async fn release_usage(&self, job: &JobRecord) -> Result<bool, StoreError> {
        self.inner.release_usage(job).await
    }
    async fn first_waiting(
        &self,
        tenant: &str,
        job_type: JobType,
        count: usize,
    ) -> Result<Vec<String>, StoreError> {
        self.inner.first_waiting(tenant, job_type, count).await
    }
}

impl JobEnds for Counting {
    async fn claim_end(
        &self,
        id: &str,
        mark: &str,
        at: &str,
        stale_before: &str,
    ) -> Result<bool, jobs_core::error::StoreError> {
        self.inner.claim_end(id, mark, at, stale_before).await
    }
    async fn release_end(
        &self,
        id: &str,
        claimed_at: &str,
    ) -> Result<(), jobs_core::error::StoreError> {
        self.inner.release_end(id, claimed_at).await
    }
    async fn end_handled(&self, id: &str) -> Result<(), jobs_core::error::StoreError> {
        self.inner.end_handled(id).await
    }
    async fn pending_ends(
        &self,
        shard: u32,
        before: &str,
        start: Option<jobs_core::ports::IndexKey>,
        limit: u32,
    ) -> Result<jobs_core::ports::IdPage, jobs_core::error::StoreError> {
        self.inner.pending_ends(shard, before, start, limit).await
    }
}

/// The stack's adapters, with completions counted and work messages kept in memory (the
/// tests deliver them).
struct ReliabilityPorts;

impl jobs_core::ports::WorkerPorts for ReliabilityPorts {
    type Store = Counting;
    type Inputs = S3InputStore;
    type Queue = MemoryQueue;
    type Audit = DynamoAuditLog;
    type Bus = EventBridgeBus;
}

type TestWorker = Worker<Scripted, ReliabilityPorts>;

fn worker(stack: &Stack) -> TestWorker {
    let store = Counting {
        inner: DynamoJobStore::new(stack.dynamo.clone(), stack.table()),
        completions: AtomicUsize::new(0),
    };
    let inputs = S3InputStore::new(
        LazyClient::new(&stack.config, s3_client),
        stack.outputs["InputBucketName"].clone(),
    );
    // Every chunk released by the plan: these tests deliver the chunks themselves.
    let settings = WorkerSettings {
        max_receive_count: 5,
        chunk_size: 3,
        release: jobs_core::domain::window::ReleaseSettings {
            limit: u64::MAX,
            scope: jobs_core::domain::window::WindowScope::Tenant,
        },
        checkpoint_interval: Duration::from_secs(60),
        retry_budget: Duration::from_secs(1),
        default_limits: jobs_core::domain::limits::TenantLimits::default(),
        segment_bytes: jobs_core::domain::file::SEGMENT_BYTES,
    };
    // The stack's audit table and event bus: job ends are recorded and announced for real.
    let observers = Observers::new(
        Audit::new(
            DynamoAuditLog::new(
                stack.dynamo.clone(),
                stack.outputs["AuditTableName"].clone(),
            ),
            400,
        ),
        EventBridgeBus::new(
            LazyClient::new(&stack.config, aws_sdk_eventbridge::Client::new),
            stack.outputs["EventBusName"].clone(),
        ),
    );
    Worker::new(
        Scripted,
        store,
        inputs,
        MemoryQueue::default(),
        observers,
        settings,
    )
}

/// A job written straight to the table (no plan message reaches the deployed workers).
async fn job(stack: &Stack, items: &[&str]) -> (String, String) {
    job_of(
        stack,
        JobType::ProfileFieldUpdate,
        &fresh_tenant("reliable"),
        items,
    )
    .await
}

async fn job_of(
    stack: &Stack,
    job_type: JobType,
    tenant: &str,
    items: &[&str],
) -> (String, String) {
    let tenant = tenant.to_string();
    let id = ulid::Ulid::new().to_string();
    let input_key = format!("inputs/{tenant}/{id}.json");
    let inputs = S3InputStore::new(
        LazyClient::new(&stack.config, s3_client),
        stack.outputs["InputBucketName"].clone(),
    );
    inputs
        .put(
            &input_key,
            serde_json::to_vec(&json!({"items": items})).unwrap(),
        )
        .await
        .unwrap();
    let now = jobs_core::clock::now();
    let record = JobRecord::new(NewJob {
        id: id.clone(),
        job_type,
        tenant: tenant.clone(),
        user: "tester".into(),
        created_at: jobs_core::clock::format(now),
        month: jobs_core::clock::month_of(now),
        total: items.len() as u64,
        summary: json!({}),
        input_key,
        expires_at: now.unix_timestamp() + 3600,
    });
    DynamoJobStore::new(stack.dynamo.clone(), stack.table())
        .create(&record, None)
        .await
        .unwrap();
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
    let body = serde_json::to_string(&WorkMessage::Plan {
        job_id: id.into(),
        tenant: tenant.into(),
        woken: false,
    })
    .unwrap();
    assert_eq!(
        body,
        format!(r#"{{"kind":"plan","job_id":"{id}","tenant":"{tenant}"}}"#),
        "the API's plan message shape"
    );
    assert_eq!(
        w.handle_message(&sqs("plan", &body, 1)).await,
        Disposition::Ack
    );
    w.queue_messages()
}

trait Drain {
    fn queue_messages(&self) -> Vec<String>;
}

impl Drain for TestWorker {
    fn queue_messages(&self) -> Vec<String> {
        self.queue()
            .drain()
            .iter()
            .map(|m| serde_json::to_string(m).unwrap())
            .collect()
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
        let twice = event(vec![
            sqs(&format!("{n}-a"), chunk, 1),
            sqs(&format!("{n}-b"), chunk, 2),
        ]);
        assert!(w.handle_batch(twice).await.batch_item_failures.is_empty());
    }
    let job = w.store().load(&id).await.unwrap().unwrap();
    assert_eq!(
        (job.status, job.succeeded, job.failed, job.chunks_done),
        (JobStatus::Completed, 7, 0, 3)
    );
    assert_eq!(w.store().completions.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_item_failing_every_retry_fails_alone_after_the_budget_and_the_others_count_once() {
    let stack = Stack::load().await;
    let w = worker(&stack);
    let (id, tenant) = job(&stack, &["a", "b", "c", "transient", "e"]).await;
    let chunks = plan(&w, &id, &tenant).await;
    assert_eq!(
        w.handle_message(&sqs("0", &chunks[0], 1)).await,
        Disposition::Ack
    );
    assert_eq!(
        w.handle_message(&sqs("1", &chunks[1], 1)).await,
        Disposition::Ack,
        "settled within the delivery"
    );
    assert_eq!(
        w.handle_message(&sqs("1", &chunks[1], 2)).await,
        Disposition::Ack,
        "a duplicate"
    );
    let job = w.store().load(&id).await.unwrap().unwrap();
    assert_eq!(
        (job.status, job.succeeded, job.failed),
        (JobStatus::CompletedWithErrors, 4, 1)
    );
    assert_eq!(job.errors.len(), 1);
    assert_eq!(job.errors[0].item, "transient");
    assert!(
        job.errors[0]
            .reason
            .starts_with("gave up after no progress for 1 s: ServiceUnavailable"),
        "{:?}",
        job.errors
    );
}

#[tokio::test]
async fn a_throttled_chunk_is_settled_in_its_delivery_and_bad_messages_are_acknowledged() {
    let stack = Stack::load().await;
    let w = worker(&stack);
    let (id, tenant) = job(&stack, &["a", "b", "c", "throttled"]).await;
    let chunks = plan(&w, &id, &tenant).await;
    let batch = event(vec![
        sqs("good", &chunks[0], 1),
        sqs("throttled", &chunks[1], 1),
        sqs("garbage", "{\"kind\": \"chunk\", truncated", 1),
        sqs("empty", "", 1),
        sqs("wrong-kind", r#"{"kind":"reboot","job_id":"x"}"#, 1),
    ]);
    assert!(
        w.handle_batch(batch).await.batch_item_failures.is_empty(),
        "nothing left to the queue's receive count"
    );
    let job = w.store().load(&id).await.unwrap().unwrap();
    assert_eq!(
        (job.status, job.succeeded, job.failed, job.chunks_done),
        (JobStatus::CompletedWithErrors, 3, 1, 2)
    );
    assert!(
        job.paced_at.is_some(),
        "the job records that it met a rate limit"
    );
}

#[tokio::test]
async fn concurrent_finishers_complete_the_job_exactly_once() {
    let stack = Stack::load().await;
    let w = worker(&stack);
    let items: Vec<String> = (0..30).map(|i| format!("item-{i}")).collect();
    let (id, tenant) = job(
        &stack,
        &items.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .await;
    let events = subscribe(&stack, &tenant).await;
    let chunks = plan(&w, &id, &tenant).await;
    assert_eq!(chunks.len(), 10);
    // Two workers each get every chunk at the same moment.
    let batch = |prefix: &str| {
        event(
            chunks
                .iter()
                .enumerate()
                .map(|(n, c)| sqs(&format!("{prefix}{n}"), c, 1))
                .collect(),
        )
    };
    let (a, b) = tokio::join!(w.handle_batch(batch("a")), w.handle_batch(batch("b")));
    assert!(a.batch_item_failures.is_empty() && b.batch_item_failures.is_empty());
    let job = w.store().load(&id).await.unwrap().unwrap();
    assert_eq!(
        (job.status, job.succeeded, job.chunks_done),
        (JobStatus::Completed, 30, 10)
    );
    assert_eq!(
        w.store().completions.load(Ordering::SeqCst),
        1,
        "exactly one completion"
    );
    // Both workers' last chunks finish at the same moment: one event id on the bus.
    let received = received_events(
        &stack,
        &events,
        |e| !e.is_empty(),
        Duration::from_secs(30),
        Duration::from_secs(3),
    )
    .await;
    let ids: Vec<&str> = received
        .iter()
        .filter_map(|e| e["detail"]["event_id"].as_str())
        .collect();
    assert!(
        !ids.is_empty() && ids.iter().all(|i| *i == format!("{id}:completed")),
        "{received:#?}"
    );
}

/// Bodies no planner wrote — garbage, wrong shapes, other tenants', other types' and
/// unknown jobs, chunks outside the plan — are acknowledged (never retried into a crash
/// loop) and leave every job as it was.
#[tokio::test]
async fn hostile_messages_are_acknowledged_and_change_nothing() {
    let stack = Stack::load().await;
    let w = worker(&stack);
    let (victim, tenant) = job(&stack, &["a", "b", "c", "d", "e", "f", "g"]).await;
    let chunks = plan(&w, &victim, &tenant).await;
    assert_eq!(
        w.handle_message(&sqs("0", &chunks[0], 1)).await,
        Disposition::Ack
    );
    let (other_type, _) = job_of(&stack, JobType::AiTextEmbedding, &tenant, &["x"]).await;
    let unknown = ulid::Ulid::new().to_string();
    let chunk = |job: &str, tenant: &str, n: i64, items: serde_json::Value| {
        json!({"kind": "chunk", "job_id": job, "tenant": tenant, "chunk": n, "items": items})
            .to_string()
    };
    let plan_of = |job: &str, tenant: &str| {
        json!({"kind": "plan", "job_id": job, "tenant": tenant}).to_string()
    };
    let before = w.store().load(&victim).await.unwrap().unwrap();
    let hostile: Vec<(&str, String)> = vec![
        ("empty", String::new()),
        ("1 MiB of text", "x".repeat(1 << 20)),
        (
            "truncated JSON",
            chunks[1][..chunks[1].len() / 2].to_string(),
        ),
        ("nested 100k deep", "[".repeat(100_000)),
        ("array", "[1,2,3]".into()),
        ("number", "42".into()),
        ("null", "null".into()),
        ("string", "\"plan\"".into()),
        (
            "unknown kind",
            json!({"kind": "reboot", "job_id": victim}).to_string(),
        ),
        (
            "wrong types",
            json!({"kind": "plan", "job_id": 7, "tenant": ["x"]}).to_string(),
        ),
        ("negative chunk", chunk(&victim, &tenant, -1, json!(["a"]))),
        (
            "chunk outside the plan",
            chunk(&victim, &tenant, 99, json!(["a"])),
        ),
        (
            "more items than the job has left",
            chunk(
                &victim,
                &tenant,
                1,
                json!(["a", "b", "c", "d", "e", "f", "g"]),
            ),
        ),
        (
            "other tenant's job, chunk",
            chunk(&victim, "mallory", 1, json!(["a"])),
        ),
        ("other tenant's job, plan", plan_of(&victim, "mallory")),
        ("other type's job, plan", plan_of(&other_type, &tenant)),
        (
            "other type's job, chunk",
            chunk(&other_type, &tenant, 0, json!(["x"])),
        ),
        ("unknown job, plan", plan_of(&unknown, &tenant)),
        (
            "unknown job, chunk",
            chunk(&unknown, &tenant, 0, json!(["a"])),
        ),
        ("10 KB job id", plan_of(&"J".repeat(10_000), &tenant)),
        ("empty job id", plan_of("", &tenant)),
        ("control characters", plan_of("\u{0}\u{1b}[2J", "\u{0}")),
    ];
    let names: Vec<&str> = hostile.iter().map(|(name, _)| *name).collect();
    let batch = event(
        hostile
            .iter()
            .enumerate()
            .map(|(i, (_, body))| sqs(&format!("m{i}"), body, 1))
            .collect(),
    );
    let failures = w.handle_batch(batch).await.batch_item_failures;
    assert!(
        failures.is_empty(),
        "retried: {:?}",
        failures
            .iter()
            .map(|f| names[f.item_identifier[1..].parse::<usize>().unwrap()])
            .collect::<Vec<_>>()
    );
    assert!(
        w.queue_messages().is_empty(),
        "no hostile message fanned out work"
    );
    let after = w.store().load(&victim).await.unwrap().unwrap();
    assert_eq!(
        (
            after.status,
            after.succeeded,
            after.failed,
            after.cancelled,
            after.chunks_done,
            after.errors.len()
        ),
        (
            before.status,
            before.succeeded,
            before.failed,
            before.cancelled,
            before.chunks_done,
            before.errors.len()
        ),
    );
    let untouched = w.store().load(&other_type).await.unwrap().unwrap();
    assert_eq!(
        (untouched.status, untouched.chunks_total),
        (JobStatus::Queued, None),
        "another type's job is not planned"
    );

    // The real chunks still finish the job exactly.
    for (n, body) in chunks.iter().enumerate().skip(1) {
        assert_eq!(
            w.handle_message(&sqs(&n.to_string(), body, 1)).await,
            Disposition::Ack
        );
    }
    let done = w.store().load(&victim).await.unwrap().unwrap();
    assert_eq!(
        (done.status, done.succeeded, done.failed),
        (JobStatus::Completed, 7, 0)
    );
}
