use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use serde_json::json;

use super::*;
use crate::domain::job::JobType;
use crate::domain::record::NewJob;
use crate::domain::window::WindowScope;
use crate::memory::{MemoryInputs, MemoryPorts, MemoryQueue, MemoryStore};
use crate::ports::WindowStore;
use crate::worker::scripted::Scripted;

pub(super) type TestWorker = Worker<Scripted, MemoryPorts>;

pub(super) fn worker() -> TestWorker {
    worker_with_window(2)
}

fn settings(release_window: u64) -> WorkerSettings {
    WorkerSettings {
        max_receive_count: 3,
        chunk_size: 2,
        release: crate::domain::window::ReleaseSettings {
            limit: release_window,
            scope: crate::domain::window::WindowScope::Tenant,
        },
        checkpoint_interval: Duration::from_secs(60),
        retry_budget: Duration::from_millis(300),
        default_limits: crate::domain::limits::TenantLimits::default(),
        segment_bytes: crate::domain::file::SEGMENT_BYTES,
    }
}

pub(super) fn worker_with_window(release_window: u64) -> TestWorker {
    Worker::new(
        Scripted,
        MemoryStore::default(),
        MemoryInputs::default(),
        MemoryQueue::default(),
        crate::memory::observers(),
        settings(release_window),
    )
}

/// The scripted processor, one item per `process` call, each taking `delay`, remembering
/// the items it was given and the most calls that ran at once.
struct OneByOne {
    delay: Duration,
    seen: Mutex<Vec<Value>>,
    running: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
}

impl Processor for OneByOne {
    const JOB_TYPE: JobType = Scripted::JOB_TYPE;
    const STEP: usize = 1;
    type Params = <Scripted as Processor>::Params;
    type Item = Value;

    async fn items(&self, job: &JobRecord, params: &Self::Params) -> Result<Vec<Value>, WorkError> {
        Scripted.items(job, params).await
    }

    fn label(item: &Value) -> String {
        Scripted::label(item)
    }

    async fn process(
        &self,
        job: &JobRecord,
        params: &Self::Params,
        items: &[Value],
    ) -> Vec<super::super::ItemResult> {
        use std::sync::atomic::Ordering::SeqCst;
        self.seen.lock().unwrap().extend(items.iter().cloned());
        let now = self.running.fetch_add(1, SeqCst) + 1;
        self.most.fetch_max(now, SeqCst);
        tokio::time::sleep(self.delay).await;
        self.running.fetch_sub(1, SeqCst);
        Scripted.process(job, params, items).await
    }
}

type SlowWorker = Worker<OneByOne, MemoryPorts>;

fn one_by_one(delay: Duration, checkpoint_interval: Duration) -> SlowWorker {
    let settings = WorkerSettings {
        chunk_size: 10,
        checkpoint_interval,
        ..settings(10)
    };
    Worker::new(
        OneByOne {
            delay,
            seen: Mutex::new(Vec::new()),
            running: Default::default(),
            most: Default::default(),
        },
        MemoryStore::default(),
        MemoryInputs::default(),
        MemoryQueue::default(),
        crate::memory::observers(),
        settings,
    )
}

/// The chunk numbers of the queued messages of job `id`.
pub(super) fn queued_chunks(w: &TestWorker, id: &str) -> Vec<u64> {
    w.queue
        .sent
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(_, m)| match m {
            WorkMessage::Chunk { job_id, chunk, .. } if job_id == id => Some(*chunk),
            _ => None,
        })
        .collect()
}

pub(super) fn job<P: Processor>(w: &Worker<P, MemoryPorts>, items: &[&str]) -> String {
    job_of(w, "acme", items)
}

/// Job ids in the order of creation, as the API's are across milliseconds.
static IDS: Mutex<Option<ulid::Generator>> = Mutex::new(None);

/// A queued job of `tenant` over `items`.
fn job_of<P: Processor>(w: &Worker<P, MemoryPorts>, tenant: &str, items: &[&str]) -> String {
    let id = IDS
        .lock()
        .unwrap()
        .get_or_insert_with(ulid::Generator::new)
        .generate()
        .unwrap()
        .to_string();
    let input_key = format!("inputs/{tenant}/{id}.json");
    w.inputs.objects.lock().unwrap().insert(
        input_key.clone(),
        serde_json::to_vec(&json!({"items": items})).unwrap(),
    );
    w.store.insert(JobRecord::new(NewJob {
        id: id.clone(),
        job_type: JobType::ProfileFieldUpdate,
        tenant: tenant.into(),
        user: "alice".into(),
        created_at: "2026-11-28T10:00:00.000Z".into(),
        month: "2026-11".into(),
        total: items.len() as u64,
        summary: json!({}),
        input_key,
        expires_at: 0,
    }));
    id
}

pub(super) fn message(id: &str, body: &WorkMessage, attempt: u32) -> SqsMessage {
    let mut m = SqsMessage::default();
    m.message_id = Some(id.to_string());
    m.body = Some(serde_json::to_string(body).unwrap());
    m.attributes = HashMap::from([("ApproximateReceiveCount".to_string(), attempt.to_string())]);
    m
}

pub(super) fn plan(id: &str) -> WorkMessage {
    WorkMessage::Plan {
        job_id: id.into(),
        tenant: "acme".into(),
        woken: false,
    }
}

pub(super) async fn deliver<P: Processor>(
    w: &Worker<P, MemoryPorts>,
    body: &WorkMessage,
    attempt: u32,
) -> Disposition {
    w.handle_message(&message("m", body, attempt)).await
}

/// Plans job `id` as its plan message does, and returns the chunk messages the plan
/// releases without running any: a job of one chunk runs it in its plan's delivery, so the
/// tests of a chunk's own deliveries start here.
pub(super) async fn planned<P: Processor>(
    w: &Worker<P, MemoryPorts>,
    id: &str,
) -> Vec<WorkMessage> {
    let job = w.store.job(id).unwrap();
    assert!(w.admitted(&job).await.unwrap(), "the job may start");
    let params = w.params(&job).await.unwrap();
    let chunks = w.chunks(&job, &params).await.unwrap();
    let total = chunks.iter().map(|c| c.len() as u64).sum();
    let now = clock::format(clock::now());
    assert!(
        w.store
            .begin(id, total, chunks.len() as u64, &now)
            .await
            .unwrap()
    );
    let job = w.store.job(id).unwrap();
    w.release_first(&job)
        .await
        .unwrap()
        .into_iter()
        .map(|n| WorkMessage::Chunk {
            job_id: id.into(),
            tenant: job.tenant.clone(),
            chunk: n,
            items: chunks[n as usize].clone(),
            retry_since: None,
        })
        .collect()
}

/// Delivers every queued message once (or `times` times), until the queue is empty.
pub(super) async fn run_queue(w: &TestWorker, times: usize) {
    loop {
        let pending = w.queue.drain();
        if pending.is_empty() {
            return;
        }
        for m in pending {
            for _ in 0..times {
                assert_eq!(deliver(w, &m, 1).await, Disposition::Ack);
            }
        }
    }
}

#[tokio::test]
async fn a_job_never_has_more_than_its_window_of_chunks_released() {
    let w = worker_with_window(2);
    let items: Vec<String> = (0..9).map(|i| format!("item-{i}")).collect();
    let id = job(&w, &items.iter().map(String::as_str).collect::<Vec<_>>());
    deliver(&w, &plan(&id), 1).await;
    assert_eq!(
        queued_chunks(&w, &id),
        vec![0, 1],
        "the plan releases the first window"
    );
    let mut released = 2;
    loop {
        let pending = w.queue.drain();
        if pending.is_empty() {
            break;
        }
        assert!(
            pending.len() <= 2,
            "at most the window in flight: {pending:?}"
        );
        for m in pending {
            assert_eq!(deliver(&w, &m, 1).await, Disposition::Ack);
        }
        released += queued_chunks(&w, &id).len();
    }
    let done = w.store.job(&id).unwrap();
    assert_eq!(
        (done.status, done.succeeded, done.chunks_done, released),
        (JobStatus::Completed, 9, 5, 5)
    );
}

#[tokio::test]
async fn a_release_lost_after_the_commit_is_sent_again_by_the_redelivery() {
    let w = worker_with_window(1);
    let id = job(&w, &["a", "b", "c"]);
    deliver(&w, &plan(&id), 1).await;
    let first = w.queue.drain();
    assert_eq!(deliver(&w, &first[0], 1).await, Disposition::Ack);
    // The process died after the commit and the release: the release is lost with it, and
    // the chunk's message, never acknowledged, comes back.
    assert_eq!(w.queue.drain().len(), 1);
    assert_eq!(deliver(&w, &first[0], 2).await, Disposition::Ack);
    assert_eq!(
        queued_chunks(&w, &id),
        vec![1],
        "the duplicate releases the next chunk again"
    );
    run_queue(&w, 1).await;
    let done = w.store.job(&id).unwrap();
    assert_eq!(
        (done.status, done.succeeded, done.chunks_done),
        (JobStatus::Completed, 3, 2)
    );
}

#[tokio::test]
async fn another_tenants_job_waits_behind_a_window_not_behind_a_whole_job() {
    let w = worker_with_window(1);
    let big: Vec<String> = (0..40).map(|i| format!("big-{i}")).collect();
    let big = job_of(
        &w,
        "acme",
        &big.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let small = job_of(&w, "globex", &["small"]);
    deliver(&w, &plan(&big), 1).await;
    deliver(
        &w,
        &WorkMessage::Plan {
            job_id: small.clone(),
            tenant: "globex".into(),
            woken: false,
        },
        1,
    )
    .await;
    assert_eq!(
        (queued_chunks(&w, &big), w.store.job(&small).unwrap().status),
        (vec![0], JobStatus::Completed),
        "one chunk of acme queued; globex's job of one chunk ran in its plan's delivery"
    );
}

/// Every slot of acme's window freed once and every deferred plan run, whatever the
/// duplicates (`job`: any of its jobs).
async fn assert_window_empty(w: &TestWorker, job: &str) {
    let key = WindowScope::Tenant.key("acme", JobType::ProfileFieldUpdate, job);
    let window = w.store.window(&key).await.unwrap();
    assert_eq!(
        (
            window.in_flight,
            window.waiting.len(),
            window.deferred.len(),
            window.woken.len()
        ),
        (0, 0, 0, 0),
        "{window:?}"
    );
}

/// Delivers the queue's messages one at a time, oldest first, each `times` times, and
/// returns the chunks released as `<job letter><chunk>` in the order they were sent.
async fn run_in_order(w: &TestWorker, names: &[(&str, &str)], times: u32) -> Vec<String> {
    let name = |id: &str| names.iter().find(|(i, _)| *i == id).map_or("?", |(_, n)| n);
    let mut released = Vec::new();
    let mut queue: std::collections::VecDeque<WorkMessage> = w.queue.drain().into();
    while let Some(m) = queue.pop_front() {
        if let WorkMessage::Chunk { job_id, chunk, .. } = &m {
            released.push(format!("{}{chunk}", name(job_id)));
        }
        for attempt in 1..=times {
            assert_eq!(deliver(w, &m, attempt).await, Disposition::Ack);
        }
        queue.extend(w.queue.drain());
    }
    released
}

#[tokio::test]
async fn a_tenants_jobs_share_its_window_deferred_plans_wake_in_order_and_take_turns() {
    for times in [1, 2] {
        let w = worker_with_window(2);
        let items: Vec<String> = (0..8).map(|i| format!("item-{i}")).collect();
        let items: Vec<&str> = items.iter().map(String::as_str).collect();
        let (a, b, c) = (job(&w, &items), job(&w, &items), job(&w, &items[..2]));
        for id in [&a, &b, &c] {
            deliver(&w, &plan(id), 1).await;
        }
        let key = WindowScope::Tenant.key("acme", JobType::ProfileFieldUpdate, &a);
        let window = w.store.window(&key).await.unwrap();
        assert_eq!(
            (
                window.in_flight,
                window.waiting.len(),
                window.deferred.iter().collect::<Vec<_>>()
            ),
            (2, 0, vec![&b, &c]),
            "a took the tenant's two slots; b's and c's plans are put off"
        );
        for id in [&b, &c] {
            let job = w.store.job(id).unwrap();
            assert_eq!((job.status, job.chunks_total), (JobStatus::Queued, None));
        }
        let mut order = run_in_order(&w, &[(&a, "a"), (&b, "b"), (&c, "c")], times).await;
        // A duplicate of a settled chunk sends the chunk it released again while that one
        // has not run: the ledger absorbs it. The first sends are the order of turns.
        let mut seen = std::collections::HashSet::new();
        order.retain(|chunk| seen.insert(chunk.clone()));
        assert_eq!(
            order,
            ["a0", "a1", "a2", "a3", "b0", "b1", "b2", "b3", "c0"],
            "a's first settle wakes b, which waits its turn in line; c is woken once nobody \
             else waits (times {times})"
        );
        for id in [&a, &b, &c] {
            let done = w.store.job(id).unwrap();
            assert_eq!(
                (done.status, done.succeeded, done.held_heads()),
                (JobStatus::Completed, done.total, vec![])
            );
        }
        assert_window_empty(&w, &a).await;
    }
}

#[tokio::test]
async fn a_tenants_jobs_take_turns_of_four_chunks_of_a_chain() {
    // Each message once: delivered twice in this order, every chunk not yet run is sent again
    // by each duplicate of its predecessor, and a chain of ten doubles ten times. The turn
    // rule writes nothing a duplicate could repeat differently (it is the chunk number's).
    let w = worker_with_window(1);
    let items: Vec<String> = (0..20).map(|i| format!("item-{i}")).collect();
    let items: Vec<&str> = items.iter().map(String::as_str).collect();
    let (a, b) = (job(&w, &items), job(&w, &items));
    for id in [&a, &b] {
        deliver(&w, &plan(id), 1).await;
    }
    let order = run_in_order(&w, &[(&a, "a"), (&b, "b")], 1).await;
    assert_eq!(
        order.join(" "),
        "a0 a1 a2 a3 b0 b1 b2 b3 a4 a5 a6 a7 b4 b5 b6 b7 a8 a9 b8 b9",
        "b, woken by a's first settle, waits for the end of a's turn; a's last chunk \
         passes at once"
    );
    for id in [&a, &b] {
        let done = w.store.job(id).unwrap();
        assert_eq!((done.status, done.succeeded), (JobStatus::Completed, 20));
    }
    assert_window_empty(&w, &a).await;
}

#[test]
fn in_a_batch_tenants_take_turns_the_smaller_first_each_in_the_order_received() {
    let records: Vec<SqsMessage> = [
        ("a", "1"),
        ("a", "2"),
        ("a", "3"),
        ("b", "4"),
        ("a", "5"),
        ("c", "6"),
        ("c", "7"),
    ]
    .iter()
    .map(|(tenant, id)| {
        let body = WorkMessage::Plan {
            job_id: (*id).into(),
            tenant: (*tenant).into(),
            woken: false,
        };
        message(id, &body, 1)
    })
    .collect();
    let read = records.iter().map(|r| (r, super::read(r))).collect();
    let order: Vec<&str> = super::in_turns(read)
        .iter()
        .filter_map(|(m, _)| m.message_id.as_deref())
        .collect();
    assert_eq!(order, ["4", "6", "1", "7", "2", "3", "5"]);
}

#[tokio::test]
async fn with_the_job_scope_each_job_has_its_own_window() {
    let w = Worker::new(
        Scripted,
        MemoryStore::default(),
        MemoryInputs::default(),
        MemoryQueue::default(),
        crate::memory::observers(),
        WorkerSettings {
            release: crate::domain::window::ReleaseSettings {
                limit: 1,
                scope: WindowScope::Job,
            },
            ..settings(1)
        },
    );
    let big: Vec<String> = (0..40).map(|i| format!("big-{i}")).collect();
    let big = job(&w, &big.iter().map(String::as_str).collect::<Vec<_>>());
    let small = job(&w, &["small"]);
    deliver(&w, &plan(&big), 1).await;
    deliver(&w, &plan(&small), 1).await;
    assert_eq!(
        (queued_chunks(&w, &big), w.store.job(&small).unwrap().status),
        (vec![0], JobStatus::Completed),
        "one chunk of the big job queued; the small job's one chunk ran in its plan's delivery"
    );
}

#[tokio::test]
async fn a_pass_or_wake_lost_after_its_write_is_sent_again_and_a_chunk_that_ran_is_not() {
    let w = worker_with_window(1);
    let (a, b) = (job(&w, &["a1", "a2", "a3"]), job(&w, &["b1"]));
    deliver(&w, &plan(&a), 1).await;
    deliver(&w, &plan(&b), 1).await;
    assert_eq!(
        w.store.job(&b).unwrap().chunks_total,
        None,
        "b's plan is deferred: the window is full"
    );
    let first = w.queue.drain();
    assert_eq!(deliver(&w, &first[0], 1).await, Disposition::Ack);
    // The process died after the pass that woke b was written: b's plan is lost with it.
    let lost = w.queue.drain();
    let woken = WorkMessage::Plan {
        job_id: b.clone(),
        tenant: "acme".into(),
        woken: true,
    };
    assert!(lost.contains(&woken), "{lost:?}");
    assert_eq!(deliver(&w, &first[0], 2).await, Disposition::Ack);
    assert!(
        w.queue.drain().contains(&woken),
        "the redelivery sends the woken plan again"
    );
    assert_eq!(deliver(&w, &woken, 1).await, Disposition::Ack);
    assert_eq!(deliver(&w, &woken, 2).await, Disposition::Ack);
    assert!(
        w.queue.drain().is_empty(),
        "b waits in line: nothing to send"
    );
    let a0 = [WorkMessage::Chunk {
        job_id: a.clone(),
        tenant: "acme".into(),
        chunk: 1,
        items: vec![json!("a3")],
        retry_since: None,
    }];
    assert_eq!(deliver(&w, &a0[0], 1).await, Disposition::Ack);
    // The process died after the pass to b was written: the message to b is lost with it.
    let lost = w.queue.drain();
    assert_eq!(queued_chunks_of(&lost, &b), vec![0]);
    assert_eq!(deliver(&w, &a0[0], 2).await, Disposition::Ack);
    let again = w.queue.drain();
    assert_eq!(
        queued_chunks_of(&again, &b),
        vec![0],
        "the redelivery sends the released chunk again"
    );
    assert_eq!(deliver(&w, &again[0], 1).await, Disposition::Ack);
    w.queue.drain();
    assert_eq!(deliver(&w, &a0[0], 3).await, Disposition::Ack);
    assert!(
        w.queue.drain().is_empty(),
        "once the released chunk has run, a late duplicate sends nothing"
    );
}

fn queued_chunks_of(messages: &[WorkMessage], id: &str) -> Vec<u64> {
    messages
        .iter()
        .filter_map(|m| match m {
            WorkMessage::Chunk { job_id, chunk, .. } if job_id == id => Some(*chunk),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_job_runs_to_completed_with_exact_counts() {
    let w = worker();
    let id = job(&w, &["a", "b", "c", "d", "e"]);
    assert_eq!(deliver(&w, &plan(&id), 1).await, Disposition::Ack);
    let planned = w.store.job(&id).unwrap();
    assert_eq!(
        (planned.status, planned.total, planned.chunks_total),
        (JobStatus::Running, 5, Some(3))
    );
    run_queue(&w, 1).await;
    let done = w.store.job(&id).unwrap();
    assert_eq!(
        (done.status, done.succeeded, done.failed),
        (JobStatus::Completed, 5, 0)
    );
    assert!(done.completed_at.is_some() && done.started_at.is_some());
}

#[tokio::test]
async fn a_job_of_one_chunk_runs_it_in_its_plan_s_delivery_and_a_crash_there_repeats_only_the_unsettled()
 {
    let w = worker();
    let id = job(&w, &["a", "b"]);
    assert_eq!(deliver(&w, &plan(&id), 1).await, Disposition::Ack);
    let done = w.store.job(&id).unwrap();
    assert_eq!(
        (done.status, done.succeeded, done.chunks_done),
        (JobStatus::Completed, 2, 1)
    );
    assert!(w.queue.drain().is_empty(), "no chunk message sent");
    assert_window_empty(&w, &id).await;

    // The process dies while the chunk runs in the plan's delivery: the plan message,
    // never acknowledged, comes back and runs only what was not committed.
    let w = one_by_one(Duration::from_millis(30), Duration::from_millis(100));
    let items: Vec<String> = (0..10).map(|i| format!("item-{i}")).collect();
    let id = job(&w, &items.iter().map(String::as_str).collect::<Vec<_>>());
    let _ = tokio::time::timeout(Duration::from_millis(200), deliver(&w, &plan(&id), 1)).await;
    let committed = w.store.job(&id).unwrap().succeeded;
    assert!(
        (1..10).contains(&committed),
        "a partial commit: {committed}"
    );
    w.processor.seen.lock().unwrap().clear();
    assert_eq!(deliver(&w, &plan(&id), 2).await, Disposition::Ack);
    assert_eq!(
        w.processor.seen.lock().unwrap().len() as u64,
        10 - committed,
        "the redelivered plan runs only the unsettled items"
    );
    let done = w.store.job(&id).unwrap();
    assert_eq!((done.status, done.succeeded), (JobStatus::Completed, 10));
    assert!(w.queue.drain().is_empty(), "no chunk message sent");
}

/// The job's `ended` audit entries.
pub(super) fn ended_entries(w: &TestWorker, id: &str) -> Vec<crate::domain::audit::AuditRecord> {
    w.audit()
        .entries()
        .into_iter()
        .filter(|r| {
            r.event.job_id.as_deref() == Some(id)
                && r.event.kind == crate::domain::audit::EventKind::Ended
        })
        .collect()
}

#[tokio::test]
async fn every_item_failing_ends_failed_and_an_empty_job_completes() {
    let w = worker();
    let id = job(&w, &["fail-1", "fail-2", "fail-3"]);
    deliver(&w, &plan(&id), 1).await;
    run_queue(&w, 1).await;
    assert_eq!(w.store.job(&id).unwrap().status, JobStatus::Failed);

    let empty = job(&w, &[]);
    deliver(&w, &plan(&empty), 1).await;
    let done = w.store.job(&empty).unwrap();
    assert_eq!((done.status, done.total), (JobStatus::Completed, 0));
}

#[tokio::test]
async fn a_failing_item_is_retried_within_the_delivery_and_fails_once_the_retry_budget_is_spent() {
    let w = one_by_one(Duration::ZERO, Duration::from_secs(60));
    let id = job(&w, &["a", "transient", "fail-b", "c"]);
    let chunk = planned(&w, &id).await;
    let started = Instant::now();
    assert_eq!(
        deliver(&w, &chunk[0], 1).await,
        Disposition::Ack,
        "settled in the delivery, not left to the queue"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "retried for the whole budget: {:?}",
        started.elapsed()
    );
    let seen = w.processor.seen.lock().unwrap().clone();
    assert_eq!(
        seen.iter().filter(|i| *i == "a").count() + seen.iter().filter(|i| *i == "c").count(),
        2,
        "settled items never run again"
    );
    assert!(
        seen.iter().filter(|i| *i == "transient").count() >= 3,
        "the failing item was retried: {seen:?}"
    );
    let done = w.store.job(&id).unwrap();
    assert_eq!(
        (done.status, done.succeeded, done.failed),
        (JobStatus::CompletedWithErrors, 2, 2)
    );
    assert!(
        done.errors.iter().any(|e| e.item == "transient"
            && e.reason
                .starts_with("gave up after no progress for 0 s: ServiceUnavailable")),
        "{:?}",
        done.errors
    );
}

#[tokio::test]
async fn on_the_last_delivery_a_server_error_fails_at_once_but_throttling_is_still_retried() {
    let w = worker();
    let id = job(&w, &["transient", "a"]);
    let chunk = planned(&w, &id).await;
    let started = Instant::now();
    assert_eq!(deliver(&w, &chunk[0], 3).await, Disposition::Ack);
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "no retry on the last delivery"
    );
    let done = w.store.job(&id).unwrap();
    assert_eq!((done.succeeded, done.failed), (1, 1));
    assert!(
        done.errors[0]
            .reason
            .starts_with("gave up after delivery 3: ServiceUnavailable"),
        "{:?}",
        done.errors
    );

    let id = job(&w, &["throttled", "a"]);
    let chunk = planned(&w, &id).await;
    let started = Instant::now();
    deliver(&w, &chunk[0], 3).await;
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "throttling retried for the budget, whatever the receive count"
    );
    assert!(
        w.store.job(&id).unwrap().paced_at.is_some(),
        "the job shows it met a rate limit"
    );
}

#[tokio::test]
async fn near_the_deadline_a_chunk_commits_what_settled_and_hands_the_rest_on() {
    let w = one_by_one(Duration::from_millis(50), Duration::from_secs(60));
    let id = job(&w, &["a", "b", "c", "d", "e", "f", "g", "h"]);
    let chunk = planned(&w, &id).await;
    let mut event = SqsEvent::default();
    event.records = vec![message("m", &chunk[0], 1)];
    // 3 s is kept back: about 200 ms to work.
    let deadline = SystemTime::now() + DEADLINE_MARGIN + Duration::from_millis(200);
    assert!(
        w.handle_batch_until(event, Some(deadline))
            .await
            .batch_item_failures
            .is_empty(),
        "acknowledged: its continuation is queued"
    );
    let running = w.store.job(&id).unwrap();
    assert!(
        running.succeeded > 0 && running.succeeded < 8,
        "a partial commit: {}",
        running.succeeded
    );
    let continuation = w.queue.drain();
    assert!(
        matches!(
            &continuation[..],
            [WorkMessage::Chunk {
                chunk: 0,
                retry_since: None,
                ..
            }]
        ),
        "{continuation:?}"
    );
    w.processor.seen.lock().unwrap().clear();
    assert_eq!(deliver(&w, &continuation[0], 1).await, Disposition::Ack);
    assert_eq!(
        w.processor.seen.lock().unwrap().len() as u64,
        8 - running.succeeded,
        "only the unsettled items run"
    );
    let done = w.store.job(&id).unwrap();
    assert_eq!((done.status, done.succeeded), (JobStatus::Completed, 8));
}

#[tokio::test]
async fn a_continuation_carries_its_retry_budget() {
    let w = worker();
    let id = job(&w, &["throttled", "throttled"]);
    let Some(WorkMessage::Chunk {
        job_id,
        tenant,
        chunk,
        items,
        ..
    }) = planned(&w, &id).await.pop()
    else {
        panic!("no chunk")
    };
    let since = clock::format(clock::now() - time::Duration::hours(1));
    let continuation = WorkMessage::Chunk {
        job_id,
        tenant,
        chunk,
        items,
        retry_since: Some(since),
    };
    let started = Instant::now();
    assert_eq!(deliver(&w, &continuation, 1).await, Disposition::Ack);
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "the budget was spent before this delivery"
    );
    let done = w.store.job(&id).unwrap();
    assert_eq!(
        (done.status, done.succeeded, done.failed),
        (JobStatus::Failed, 0, 2)
    );
    assert!(
        done.errors[0]
            .reason
            .starts_with("gave up after no progress for 3600 s: Throttling"),
        "{:?}",
        done.errors
    );
}

#[tokio::test]
async fn a_long_chunk_commits_at_its_checkpoint_interval_so_a_crash_repeats_little() {
    let w = one_by_one(Duration::from_millis(30), Duration::from_millis(100));
    let items: Vec<String> = (0..10).map(|i| format!("item-{i}")).collect();
    let id = job(&w, &items.iter().map(String::as_str).collect::<Vec<_>>());
    let chunk = planned(&w, &id).await;
    // The process dies mid-chunk: the delivery is abandoned after about 200 ms.
    let _ = tokio::time::timeout(Duration::from_millis(200), deliver(&w, &chunk[0], 1)).await;
    let committed = w.store.job(&id).unwrap().succeeded;
    let ran = w.processor.seen.lock().unwrap().len() as u64;
    assert!(committed >= 3, "committed at the checkpoint: {committed}");
    assert!(
        ran - committed <= 4,
        "at most an interval's items were not committed: ran {ran}, committed {committed}"
    );
    w.processor.seen.lock().unwrap().clear();
    assert_eq!(deliver(&w, &chunk[0], 2).await, Disposition::Ack);
    assert_eq!(
        w.processor.seen.lock().unwrap().len() as u64,
        10 - committed,
        "the redelivery runs only what was not committed"
    );
    assert_eq!(w.store.job(&id).unwrap().succeeded, 10);
}

#[tokio::test]
async fn a_batch_s_plans_run_five_at_once_and_its_chunks_one_after_another() {
    use std::sync::atomic::Ordering::SeqCst;
    let w = one_by_one(Duration::from_millis(20), Duration::from_secs(60));
    // Seven one-item jobs: each plan runs its job's one chunk.
    let small: Vec<String> = (0..7).map(|_| job(&w, &["x"])).collect();
    let mut event = SqsEvent::default();
    event.records = small.iter().map(|id| message(id, &plan(id), 1)).collect();
    assert!(w.handle_batch(event).await.batch_item_failures.is_empty());
    assert_eq!(
        w.processor.most.load(SeqCst),
        PLANS_AT_ONCE,
        "five plans ran at once, then two"
    );
    for id in &small {
        assert_eq!(w.store.job(id).unwrap().status, JobStatus::Completed);
    }
    // A job of three chunks: its chunk messages in one batch run one by one.
    w.processor.most.store(0, SeqCst);
    let big = job(
        &w,
        &(0..30)
            .map(|i| format!("i{i}"))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let chunks = planned(&w, &big).await;
    assert_eq!(chunks.len(), 3);
    let mut event = SqsEvent::default();
    event.records = chunks
        .iter()
        .enumerate()
        .map(|(n, m)| message(&format!("c{n}"), m, 1))
        .collect();
    assert!(w.handle_batch(event).await.batch_item_failures.is_empty());
    assert_eq!(
        w.processor.most.load(SeqCst),
        1,
        "chunks ran one after another"
    );
    assert_eq!(w.store.job(&big).unwrap().status, JobStatus::Completed);
}

#[tokio::test]
async fn only_messages_that_meet_a_store_failure_are_reported_as_batch_failures() {
    let w = worker();
    let id = job(&w, &["a", "b", "c", "d", "e"]);
    deliver(&w, &plan(&id), 1).await;
    let chunks = w.queue.drain();
    // Chunk 0 must release chunk 2, and the queue is down; chunk 1 releases nothing.
    w.queue
        .broken
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let mut garbage = message("garbage", &chunks[0], 1);
    garbage.body = Some("{not json".into());
    let mut event = SqsEvent::default();
    event.records = vec![
        message("retry", &chunks[0], 1),
        message("ok", &chunks[1], 1),
        garbage,
    ];
    let response = w.handle_batch(event).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, vec!["retry"]);
}

#[tokio::test]
async fn messages_for_other_tenants_unknown_jobs_or_chunks_change_nothing() {
    let w = worker();
    let id = job(&w, &["a", "b"]);
    deliver(&w, &plan(&id), 1).await;
    let before = w.store.job(&id).unwrap();
    for body in [
        WorkMessage::Chunk {
            job_id: id.clone(),
            tenant: "globex".into(),
            chunk: 0,
            items: vec![json!("a")],
            retry_since: None,
        },
        WorkMessage::Chunk {
            job_id: id.clone(),
            tenant: "acme".into(),
            chunk: 7,
            items: vec![json!("a")],
            retry_since: None,
        },
        WorkMessage::Chunk {
            job_id: "01JUNKNOWN0000000000000000".into(),
            tenant: "acme".into(),
            chunk: 0,
            items: vec![],
            retry_since: None,
        },
        WorkMessage::Plan {
            job_id: String::new(),
            tenant: "acme".into(),
            woken: false,
        },
        WorkMessage::Plan {
            job_id: id.clone(),
            tenant: "globex".into(),
            woken: false,
        },
    ] {
        assert_eq!(deliver(&w, &body, 1).await, Disposition::Ack);
    }
    assert_eq!(w.store.job(&id).unwrap(), before);
}

#[tokio::test]
async fn cancelling_a_running_job_cancels_the_chunks_not_yet_processed() {
    let w = worker_with_window(1);
    let id = job(&w, &["a", "b", "c", "d", "e", "f"]);
    deliver(&w, &plan(&id), 1).await;
    let first = w.queue.drain();
    deliver(&w, &first[0], 1).await;
    assert!(
        crate::ports::JobStore::cancel(
            &w.store,
            &id,
            JobStatus::Running,
            "2026-11-28T10:00:01.000Z"
        )
        .await
        .unwrap()
    );
    // Chunk 2 was not released yet when the cancel came: it is released and settled too.
    run_queue(&w, 1).await;
    let done = w.store.job(&id).unwrap();
    assert_eq!(
        (done.status, done.succeeded, done.cancelled),
        (JobStatus::Cancelled, 2, 4)
    );
}

/// Cancels running job `id` of `w`, delivers `held_back` (chunk messages taken off the
/// queue) and then whatever is queued, each message twice; the chunk messages run.
async fn cancel_and_drain(w: &TestWorker, id: &str, held_back: &[WorkMessage]) -> usize {
    assert!(
        crate::ports::JobStore::cancel(
            &w.store,
            id,
            JobStatus::Running,
            "2026-12-06T10:00:01.000Z"
        )
        .await
        .unwrap()
    );
    let mut runs = 0;
    let mut pending = held_back.to_vec();
    while !pending.is_empty() {
        for m in &pending {
            runs += 1;
            deliver(w, m, 1).await;
            deliver(w, m, 1).await;
        }
        pending = w.queue.drain();
    }
    runs
}

#[tokio::test]
async fn a_cancelled_job_ends_each_chain_in_one_commit_whatever_its_length() {
    // 39 items in chunks of 2 (the last of 1): 20 chunks in 3 chains.
    let w = worker_with_window(3);
    let items: Vec<String> = (0..39).map(|i| format!("item-{i}")).collect();
    let id = job(&w, &items.iter().map(String::as_str).collect::<Vec<_>>());
    deliver(&w, &plan(&id), 1).await;
    let first = w.queue.drain();
    assert_eq!(first.len(), 3);
    // Chunk 0 runs and releases chunk 3 (its chain's next); then the cancel.
    deliver(&w, &first[0], 1).await;
    let runs = cancel_and_drain(&w, &id, &first[1..]).await;
    assert_eq!(
        runs, 3,
        "chunks 1, 2 and 3, one per chain; the 16 after them never run"
    );
    let done = w.store.job(&id).unwrap();
    assert_eq!(
        (
            done.status,
            done.succeeded,
            done.cancelled,
            done.chunks_done
        ),
        (JobStatus::Cancelled, 2, 37, 20)
    );
    let (ledgers, _) = w.store.chunk_outcomes(&id, 0, 100).await.unwrap();
    assert_eq!(
        ledgers.iter().map(|l| l.chunk).collect::<Vec<_>>(),
        vec![0, 1, 2, 3],
        "the chunks that never ran have no ledger item (the report shows them cancelled)"
    );
}

#[tokio::test]
async fn a_cancelled_file_job_counts_its_chains_rest_from_the_chunk_index() {
    // 21 rows in chunks of 2 (the last of 1): 11 chunks in 2 chains, over several segments.
    let w = small_segments();
    let rows: Vec<String> = (0..21).map(|i| format!("u{i}")).collect();
    let id = file_job(&w, &format!("user_id\n{}\n", rows.join("\n")));
    deliver(&w, &plan(&id), 1).await;
    let first = w.queue.drain();
    deliver(&w, &first[0], 1).await;
    let runs = cancel_and_drain(&w, &id, &first[1..]).await;
    assert_eq!(runs, 2, "chunks 1 and 2, one per chain");
    let done = w.store.job(&id).unwrap();
    assert_eq!(
        (
            done.status,
            done.succeeded,
            done.cancelled,
            done.chunks_done
        ),
        (JobStatus::Cancelled, 2, 19, 11)
    );
}

#[tokio::test]
async fn a_job_whose_input_is_gone_fails_instead_of_hanging() {
    let w = worker();
    let id = job(&w, &["a"]);
    w.inputs.objects.lock().unwrap().clear();
    assert_eq!(deliver(&w, &plan(&id), 1).await, Disposition::Ack);
    let done = w.store.job(&id).unwrap();
    assert_eq!(done.status, JobStatus::Failed);
    assert!(done.errors[0].reason.contains("input is missing"));
}

/// 5,000 mutations of real plan and chunk messages: no panic, nothing retried (the memory
/// store never fails), and a job's settled items never exceed its total.
#[tokio::test]
async fn mutated_messages_never_panic_or_overcount() {
    let w = worker();
    let id = job(&w, &["a", "b", "c", "d", "e"]);
    deliver(&w, &plan(&id), 1).await;
    let seeds: Vec<Vec<u8>> = std::iter::once(plan(&id))
        .chain(w.queue.drain())
        .map(|m| serde_json::to_vec(&m).unwrap())
        .collect();
    let mut m = crate::mutate::Mutator::new(0xC0FFEE);
    for i in 0..5_000 {
        let body = m.mutate(&seeds[i % seeds.len()]);
        let mut record = message("fuzz", &plan(&id), 1);
        record.body = Some(String::from_utf8_lossy(&body).into_owned());
        assert_eq!(
            w.handle_message(&record).await,
            Disposition::Ack,
            "#{i}: {:?}",
            record.body
        );
        let job = w.store.job(&id).unwrap();
        assert!(
            job.succeeded + job.failed + job.cancelled <= job.total,
            "#{i}: overcounted by {:?}",
            record.body
        );
        w.queue.drain();
    }
}

/// The jobs of tenant `acme` that ended `cancelled`, as the hourly metrics count them.
pub(super) async fn cancelled_ends_counted(w: &TestWorker) -> u64 {
    use crate::domain::metrics::{METRIC_SHARDS, partition};
    use crate::ports::MetricsStore;
    let mut counted = 0;
    for shard in 0..METRIC_SHARDS {
        for (_, counters) in w
            .store
            .read_metrics(&partition("acme", shard), "0000", "9999")
            .await
            .unwrap()
        {
            counted += counters
                .get("ended_cancelled:profile_field_update")
                .copied()
                .unwrap_or(0);
        }
    }
    counted
}

/// A worker with a window of 2 whose file plans write segments of 30 bytes.
fn small_segments() -> TestWorker {
    Worker::new(
        Scripted,
        MemoryStore::default(),
        MemoryInputs::default(),
        MemoryQueue::default(),
        crate::memory::observers(),
        WorkerSettings {
            segment_bytes: 30,
            ..settings(2)
        },
    )
}

/// A queued job of tenant `acme` whose items come from `body`, uploaded as a CSV.
fn file_job(w: &TestWorker, body: &str) -> String {
    let id = job(w, &[]);
    let key = format!("uploads/acme/{id}");
    w.inputs
        .objects
        .lock()
        .unwrap()
        .insert(key.clone(), body.as_bytes().to_vec());
    let mut record = w.store.job(&id).unwrap();
    record.file = Some(crate::domain::file::JobFile {
        key,
        content_type: "text/csv".into(),
        content_encoding: None,
        bytes: body.len() as u64,
        limits: Default::default(),
        retry: None,
    });
    w.store.insert(record);
    id
}

#[tokio::test]
async fn a_file_job_runs_its_rows_in_chunks_read_by_range_and_bad_rows_fail_with_their_line() {
    // 30-byte segments: the list spans several, and no chunk is split between two.
    let w = small_segments();
    let id = file_job(&w, "user_id\nu1\nu2\n\nfail-u3\n\"\"\nu5\nu6\nu7\n");
    deliver(&w, &plan(&id), 1).await;
    // Delivered again before any chunk ran: the list is read back, not written again.
    let index = crate::domain::file::index_key(&w.store.job(&id).unwrap().input_key);
    let written = w.inputs.objects.lock().unwrap().get(&index).cloned();
    deliver(&w, &plan(&id), 1).await;
    assert_eq!(
        w.inputs.objects.lock().unwrap().get(&index).cloned(),
        written
    );
    let segments = w
        .inputs
        .objects
        .lock()
        .unwrap()
        .keys()
        .filter(|k| k.ends_with(".ndjson"))
        .count();
    assert!(segments >= 2, "{segments} segments");
    run_queue(&w, 2).await;
    let done = w.store.job(&id).unwrap();
    assert_eq!(
        (
            done.status,
            done.total,
            done.succeeded,
            done.failed,
            done.chunks_total
        ),
        (JobStatus::CompletedWithErrors, 7, 5, 2, Some(4))
    );
    let mut sample: Vec<(String, String)> = done
        .errors
        .iter()
        .map(|e| (e.item.clone(), e.reason.clone()))
        .collect();
    sample.sort();
    assert_eq!(
        sample,
        vec![
            ("fail-u3".into(), "fail-u3 is broken".into()),
            ("line 6".into(), "line 6: no user_id".into())
        ],
        "an invalid row is named by its line"
    );
}

/// A queued retry of `original`, an ended file job of `w`, as `POST /jobs/{id}/retry`
/// creates it.
fn file_retry(w: &TestWorker, original: &str) -> String {
    let old = w.store.job(original).unwrap();
    let id = job(w, &[]);
    let mut record = w.store.job(&id).unwrap();
    record.file = Some(crate::domain::file::JobFile {
        retry: Some(crate::domain::file::RetriedItems {
            job_id: old.id.clone(),
            input_key: old.input_key.clone(),
            chunks: old.chunks_total.unwrap(),
            cancelled: old.status == JobStatus::Cancelled,
        }),
        ..old.file.clone().unwrap()
    });
    record.retry_of = Some(old.id.clone());
    w.store.insert(record);
    id
}

/// Every item of file job `job`, chunk by chunk, as its worker reads them.
async fn file_items(w: &TestWorker, job: &str) -> Vec<serde_json::Value> {
    let record = w.store.job(job).unwrap();
    let mut items = Vec::new();
    for n in 0..record.chunks_total.unwrap() {
        items.extend(w.file_chunk(&record, n).await.unwrap().unwrap());
    }
    items
}

#[tokio::test]
async fn a_file_jobs_retry_runs_exactly_its_failed_rows_read_back_from_its_item_list() {
    let w = small_segments();
    // 12 rows over several segments: three fail when run, the empty one is invalid.
    let rows = [
        "u0", "fail-u1", "u2", "u3", "\"\"", "fail-u5", "u6", "u7", "u8", "fail-u9", "u10", "u11",
    ];
    let id = file_job(&w, &format!("user_id\n{}\n", rows.join("\n")));
    deliver(&w, &plan(&id), 1).await;
    run_queue(&w, 2).await;
    let original = w.store.job(&id).unwrap();
    assert_eq!((original.succeeded, original.failed), (8, 4));
    let failed: Vec<serde_json::Value> = file_items(&w, &id)
        .await
        .into_iter()
        .filter(|item| item.to_string().contains("fail-") || item.get("invalid").is_some())
        .collect();
    assert_eq!(failed.len(), 4);

    // The retry's plan with 8 s left at each run: it pauses after its first chunk and the
    // next run continues from the retried job's next item.
    let retry = file_retry(&w, &id);
    let mut runs = 0;
    while w.store.job(&retry).unwrap().chunks_total.is_none() {
        let mut event = SqsEvent::default();
        event.records = vec![message("p", &plan(&retry), 1)];
        let deadline = SystemTime::now() + Duration::from_secs(8);
        w.handle_batch_until(event, Some(deadline)).await;
        runs += 1;
        assert!(runs < 10, "the plan moves on at every run");
    }
    assert_eq!(runs, 2, "4 items in chunks of 2: one chunk a run");
    assert_eq!(
        file_items(&w, &retry).await,
        failed,
        "the failed items, in order"
    );
    deliver(&w, &plan(&retry), 1).await;
    run_queue(&w, 2).await;
    let done = w.store.job(&retry).unwrap();
    assert_eq!(
        (done.status, done.total, done.succeeded, done.failed),
        (JobStatus::Failed, 4, 0, 4)
    );
    assert!(
        done.errors.iter().any(|e| e.reason == "line 6: no user_id"),
        "the bad row fails again by its line: {:?}",
        done.errors
    );
    // The original is unchanged.
    assert_eq!(w.store.job(&id).unwrap().failed, 4);
}

#[tokio::test]
async fn a_refused_file_fails_its_job_with_one_error_and_runs_nothing() {
    let w = worker();
    let id = file_job(&w, "user_id,colour\nu1,red\n");
    deliver(&w, &plan(&id), 1).await;
    run_queue(&w, 1).await;
    let done = w.store.job(&id).unwrap();
    assert_eq!((done.status, done.succeeded), (JobStatus::Failed, 0));
    assert_eq!(
        done.errors[0].reason,
        "line 1: unknown column \"colour\": the columns are user_id (and optionally value)"
    );
    assert!(queued_chunks(&w, &id).is_empty());
}

#[tokio::test]
async fn a_plan_out_of_time_pauses_at_a_chunk_boundary_and_the_next_run_continues_it_exactly() {
    let csv: String = std::iter::once("user_id\n".to_string())
        .chain((0..9).map(|i| {
            if i == 4 {
                "\"\"\n".to_string()
            } else {
                format!("u{i}\n")
            }
        }))
        .collect();
    // One run, no deadline.
    let whole = small_segments();
    let whole_id = file_job(&whole, &csv);
    deliver(&whole, &plan(&whole_id), 1).await;
    // Runs with 8 s left: each stops at the first chunk boundary after its first chunk.
    let paused = small_segments();
    let id = file_job(&paused, &csv);
    let mut runs = 0;
    let mut rows_read = Vec::new();
    while paused.store.job(&id).unwrap().chunks_total.is_none() {
        let mut event = SqsEvent::default();
        event.records = vec![message("p", &plan(&id), 1)];
        let deadline = SystemTime::now() + Duration::from_secs(8);
        paused.handle_batch_until(event, Some(deadline)).await;
        rows_read.extend(paused.store.job(&id).unwrap().planned_rows);
        runs += 1;
        assert!(runs < 20, "the plan moves on at every run");
    }
    assert_eq!(runs, 5, "9 rows in chunks of 2: one chunk a run");
    assert_eq!(rows_read, vec![2, 4, 6, 8, 8], "rows read, at each pause");
    let (a, b) = (
        whole.store.job(&whole_id).unwrap(),
        paused.store.job(&id).unwrap(),
    );
    assert_eq!((a.total, a.chunks_total), (b.total, b.chunks_total));
    for n in 0..5 {
        assert_eq!(
            whole.file_chunk(&a, n).await.unwrap(),
            paused.file_chunk(&b, n).await.unwrap(),
            "chunk {n}"
        );
    }
    paused.queue.drain();
    deliver(&paused, &plan(&id), 1).await;
    run_queue(&paused, 1).await;
    let done = paused.store.job(&id).unwrap();
    assert_eq!(
        (done.status, done.succeeded, done.failed),
        (JobStatus::CompletedWithErrors, 8, 1)
    );
}

#[tokio::test]
async fn a_tenants_many_jobs_are_planned_a_few_at_a_time_and_another_tenant_is_not_held_up() {
    for times in [1, 2] {
        let w = worker_with_window(2);
        let items: Vec<String> = (0..8).map(|i| format!("item-{i}")).collect();
        let items: Vec<&str> = items.iter().map(String::as_str).collect();
        let many: Vec<String> = (0..12).map(|_| job(&w, &items)).collect();
        let small = job_of(&w, "globex", &["small"]);
        let mut queue: std::collections::VecDeque<WorkMessage> =
            many.iter().map(|id| plan(id)).collect();
        // The other tenant's job comes while the first tenant's plans are still queued.
        let first = queue.pop_front().unwrap();
        assert_eq!(deliver(&w, &first, 1).await, Disposition::Ack);
        queue.extend(w.queue.drain());
        queue.push_back(WorkMessage::Plan {
            job_id: small.clone(),
            tenant: "globex".into(),
            woken: false,
        });
        let planned = |w: &TestWorker| {
            many.iter()
                .filter(|id| w.store.job(id).unwrap().chunks_total.is_some())
                .count()
        };
        let mut planned_when_small_ended = None;
        // Every message delivered `times` times in a row; a message sent again after that
        // (a duplicate's resend) is not delivered more.
        let mut delivered: std::collections::HashSet<String> = std::collections::HashSet::new();
        while let Some(m) = queue.pop_front() {
            if !delivered.insert(format!("{m:?}")) {
                continue;
            }
            for attempt in 1..=times {
                assert_eq!(deliver(&w, &m, attempt as u32).await, Disposition::Ack);
            }
            queue.extend(w.queue.drain());
            if planned_when_small_ended.is_none()
                && w.store.job(&small).unwrap().status.is_terminal()
            {
                planned_when_small_ended = Some(planned(&w));
            }
            if planned(&w) > 1 {
                // Past the first plans, the tenant's messages still to run: its window of
                // chunks (2) and a woken plan or two, not one per job.
                let queued: std::collections::BTreeSet<String> = queue
                    .iter()
                    .filter(|m| m.tenant() == "acme" && !delivered.contains(&format!("{m:?}")))
                    .map(|m| match m {
                        WorkMessage::Chunk { job_id, chunk, .. } => format!("{job_id}#{chunk}"),
                        WorkMessage::Plan { job_id, .. } => format!("{job_id} plan"),
                    })
                    .collect();
                assert!(queued.len() <= 4, "times {times}: {queued:?}");
            }
        }
        assert!(
            planned_when_small_ended.is_some_and(|n| n <= 2),
            "{planned_when_small_ended:?} of the 12 jobs planned when the other tenant's job \
             ended: the first and the one woken next (times {times})"
        );
        for id in many.iter().chain([&small]) {
            let done = w.store.job(id).unwrap();
            assert_eq!(
                (done.status, done.succeeded, done.chunks_done),
                (JobStatus::Completed, done.total, done.chunks_total.unwrap())
            );
        }
        assert_window_empty(&w, &many[0]).await;
    }
}

#[tokio::test]
async fn deferred_plans_of_small_jobs_are_woken_as_slots_free_so_the_window_stays_full() {
    let w = worker_with_window(3);
    // Two chunks each (a job of one chunk runs it in its plan's delivery).
    let jobs: Vec<String> = (0..12)
        .map(|i| {
            job(
                &w,
                &[1, 2, 3]
                    .map(|n| format!("item-{i}-{n}"))
                    .each_ref()
                    .map(String::as_str),
            )
        })
        .collect();
    for id in &jobs {
        deliver(&w, &plan(id), 1).await;
    }
    let mut rounds = 0;
    let mut chunks_per_round = Vec::new();
    loop {
        let pending = w.queue.drain();
        if pending.is_empty() {
            break;
        }
        rounds += 1;
        chunks_per_round.push(
            pending
                .iter()
                .filter(|m| matches!(m, WorkMessage::Chunk { .. }))
                .count(),
        );
        for m in pending {
            assert_eq!(deliver(&w, &m, 1).await, Disposition::Ack);
        }
    }
    for id in &jobs {
        assert_eq!(w.store.job(id).unwrap().status, JobStatus::Completed);
    }
    // One by one would take 36 rounds (a plan, then each chunk); 24 chunks three at a
    // time take at least 8.
    assert!(
        rounds <= 12 && chunks_per_round.iter().max() == Some(&3),
        "the 12 two-chunk jobs run up to three chunks at a time: {rounds} rounds, chunks per round \
         {chunks_per_round:?}"
    );
}

#[tokio::test]
async fn a_deferred_job_cancelled_before_its_turn_ends_and_its_woken_plan_wakes_the_next() {
    use crate::ports::JobStore;
    let w = worker_with_window(1);
    let a = job(&w, &["a1", "a2", "a3"]);
    let (b, c) = (job(&w, &["b1"]), job(&w, &["c1"]));
    for id in [&a, &b, &c] {
        deliver(&w, &plan(id), 1).await;
    }
    // What the API does for a queued job: it ends cancelled at once.
    assert!(
        w.store
            .cancel(&b, JobStatus::Queued, &clock::format(clock::now()))
            .await
            .unwrap()
    );
    run_queue(&w, 1).await;
    let (a, b, c) = (
        w.store.job(&a).unwrap(),
        w.store.job(&b).unwrap(),
        w.store.job(&c).unwrap(),
    );
    assert_eq!(
        (
            (a.status, a.succeeded),
            (b.status, b.cancelled),
            (c.status, c.succeeded)
        ),
        (
            (JobStatus::Completed, 3),
            (JobStatus::Cancelled, 1),
            (JobStatus::Completed, 1)
        ),
        "b's woken plan found it ended and woke c"
    );
    assert_window_empty(&w, &a.id).await;
}
