use std::collections::HashMap;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use serde_json::json;

use super::*;
use crate::worker::scripted::Scripted;
use crate::job::JobType;
use crate::memory::{MemoryInputs, MemoryQueue, MemoryStore};
use crate::record::NewJob;

type TestWorker = Worker<Scripted, MemoryStore, MemoryInputs, MemoryQueue>;

fn worker() -> TestWorker {
    worker_with_window(2)
}

fn worker_with_window(release_window: u64) -> TestWorker {
    let settings = WorkerSettings { max_receive_count: 3, chunk_size: 2, release_window };
    Worker::new(Scripted, MemoryStore::default(), MemoryInputs::default(), MemoryQueue::default(), settings)
}

/// The chunk numbers of the queued messages of job `id`.
fn queued_chunks(w: &TestWorker, id: &str) -> Vec<u64> {
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

fn job(w: &TestWorker, items: &[&str]) -> String {
    let id = ulid::Ulid::new().to_string();
    let input_key = format!("inputs/acme/{id}.json");
    w.inputs.objects.lock().unwrap().insert(input_key.clone(), serde_json::to_vec(&json!({"items": items})).unwrap());
    w.store.insert(JobRecord::new(NewJob {
        id: id.clone(),
        job_type: JobType::ProfileFieldUpdate,
        tenant: "acme".into(),
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

fn message(id: &str, body: &WorkMessage, attempt: u32) -> SqsMessage {
    let mut m = SqsMessage::default();
    m.message_id = Some(id.to_string());
    m.body = Some(serde_json::to_string(body).unwrap());
    m.attributes = HashMap::from([("ApproximateReceiveCount".to_string(), attempt.to_string())]);
    m
}

fn plan(id: &str) -> WorkMessage {
    WorkMessage::Plan { job_id: id.into(), tenant: "acme".into() }
}

async fn deliver(w: &TestWorker, body: &WorkMessage, attempt: u32) -> Disposition {
    w.handle_message(&message("m", body, attempt)).await
}

/// Delivers every queued message once (or `times` times), until the queue is empty.
async fn run_queue(w: &TestWorker, times: usize) {
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
    assert_eq!(queued_chunks(&w, &id), vec![0, 1], "the plan releases the first window");
    let mut released = 2;
    loop {
        let pending = w.queue.drain();
        if pending.is_empty() {
            break;
        }
        assert!(pending.len() <= 2, "at most the window in flight: {pending:?}");
        for m in pending {
            assert_eq!(deliver(&w, &m, 1).await, Disposition::Ack);
        }
        released += queued_chunks(&w, &id).len();
    }
    let done = w.store.job(&id).unwrap();
    assert_eq!((done.status, done.succeeded, done.chunks_done, released), (JobStatus::Completed, 9, 5, 5));
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
    assert_eq!(queued_chunks(&w, &id), vec![1], "the duplicate releases the next chunk again");
    run_queue(&w, 1).await;
    let done = w.store.job(&id).unwrap();
    assert_eq!((done.status, done.succeeded, done.chunks_done), (JobStatus::Completed, 3, 2));
}

#[tokio::test]
async fn a_later_job_waits_behind_a_window_not_behind_a_whole_job() {
    let w = worker_with_window(1);
    let big: Vec<String> = (0..40).map(|i| format!("big-{i}")).collect();
    let big = job(&w, &big.iter().map(String::as_str).collect::<Vec<_>>());
    let small = job(&w, &["small"]);
    deliver(&w, &plan(&big), 1).await;
    deliver(&w, &plan(&small), 1).await;
    assert_eq!((queued_chunks(&w, &big), queued_chunks(&w, &small)), (vec![0], vec![0]), "one chunk of each job queued, in order");
}

#[tokio::test]
async fn a_job_runs_to_completed_with_exact_counts() {
    let w = worker();
    let id = job(&w, &["a", "b", "c", "d", "e"]);
    assert_eq!(deliver(&w, &plan(&id), 1).await, Disposition::Ack);
    let planned = w.store.job(&id).unwrap();
    assert_eq!((planned.status, planned.total, planned.chunks_total), (JobStatus::Running, 5, Some(3)));
    run_queue(&w, 1).await;
    let done = w.store.job(&id).unwrap();
    assert_eq!((done.status, done.succeeded, done.failed), (JobStatus::Completed, 5, 0));
    assert!(done.completed_at.is_some() && done.started_at.is_some());
}

#[tokio::test]
async fn duplicate_plans_and_chunks_count_once() {
    let w = worker();
    let id = job(&w, &["a", "b", "c", "d", "fail-e"]);
    deliver(&w, &plan(&id), 1).await;
    deliver(&w, &plan(&id), 1).await; // re-delivered plan: its chunks are duplicates
    run_queue(&w, 2).await; // and every chunk delivered twice
    let done = w.store.job(&id).unwrap();
    assert_eq!((done.status, done.succeeded, done.failed, done.chunks_done), (JobStatus::CompletedWithErrors, 4, 1, 3));
    assert_eq!(done.errors, vec![ItemError { item: "fail-e".into(), reason: "fail-e is broken".into() }]);
    assert_eq!(w.store.completions.lock().unwrap().len(), 1);
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
async fn transient_failures_retry_until_the_last_attempt_then_record_failures() {
    let w = worker();
    let id = job(&w, &["a", "b", "transient", "c"]);
    deliver(&w, &plan(&id), 1).await;
    let chunks = w.queue.drain();
    assert_eq!(deliver(&w, &chunks[0], 1).await, Disposition::Ack);
    assert_eq!(deliver(&w, &chunks[1], 1).await, Disposition::Retry);
    assert_eq!(deliver(&w, &chunks[1], 2).await, Disposition::Retry);
    assert_eq!(w.store.job(&id).unwrap().status, JobStatus::Running);
    assert_eq!(deliver(&w, &chunks[1], 3).await, Disposition::Ack, "last attempt is recorded, not retried");
    let done = w.store.job(&id).unwrap();
    assert_eq!((done.status, done.succeeded, done.failed), (JobStatus::CompletedWithErrors, 2, 2));
    assert!(done.errors[0].reason.contains("gave up after 3 attempts"));
}

#[tokio::test]
async fn only_retryable_messages_are_reported_as_batch_failures() {
    let w = worker();
    let id = job(&w, &["a", "b", "transient", "c"]);
    deliver(&w, &plan(&id), 1).await;
    let chunks = w.queue.drain();
    let mut garbage = message("garbage", &chunks[0], 1);
    garbage.body = Some("{not json".into());
    let mut event = SqsEvent::default();
    event.records = vec![message("ok", &chunks[0], 1), message("retry", &chunks[1], 1), garbage];
    let response = w.handle_batch(event).await;
    let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    assert_eq!(failed, vec!["retry"]);
}

#[tokio::test]
async fn messages_for_other_tenants_unknown_jobs_or_chunks_change_nothing() {
    let w = worker();
    let id = job(&w, &["a", "b"]);
    deliver(&w, &plan(&id), 1).await;
    let before = w.store.job(&id).unwrap();
    for body in [
        WorkMessage::Chunk { job_id: id.clone(), tenant: "globex".into(), chunk: 0, items: vec![json!("a")] },
        WorkMessage::Chunk { job_id: id.clone(), tenant: "acme".into(), chunk: 7, items: vec![json!("a")] },
        WorkMessage::Chunk { job_id: "01JUNKNOWN0000000000000000".into(), tenant: "acme".into(), chunk: 0, items: vec![] },
        WorkMessage::Plan { job_id: String::new(), tenant: "acme".into() },
        WorkMessage::Plan { job_id: id.clone(), tenant: "globex".into() },
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
    assert!(crate::ports::JobStore::cancel(&w.store, &id, JobStatus::Running, "2026-11-28T10:00:01.000Z").await.unwrap());
    // Chunk 2 was not released yet when the cancel came: it is released and settled too.
    run_queue(&w, 1).await;
    let done = w.store.job(&id).unwrap();
    assert_eq!((done.status, done.succeeded, done.cancelled), (JobStatus::Cancelled, 2, 4));
}

#[tokio::test]
async fn concurrent_last_chunks_complete_the_job_exactly_once() {
    let w = worker();
    let id = job(&w, &["a", "b", "c", "d"]);
    deliver(&w, &plan(&id), 1).await;
    let chunks = w.queue.drain();
    let mut event = SqsEvent::default();
    event.records = chunks.iter().enumerate().map(|(i, c)| message(&i.to_string(), c, 1)).collect();
    assert!(w.handle_batch(event).await.batch_item_failures.is_empty());
    assert_eq!(w.store.completions.lock().unwrap().clone(), vec![(id.clone(), JobStatus::Completed)]);
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
    let seeds: Vec<Vec<u8>> = std::iter::once(plan(&id)).chain(w.queue.drain()).map(|m| serde_json::to_vec(&m).unwrap()).collect();
    let mut m = crate::mutate::Mutator::new(0xC0FFEE);
    for i in 0..5_000 {
        let body = m.mutate(&seeds[i % seeds.len()]);
        let mut record = message("fuzz", &plan(&id), 1);
        record.body = Some(String::from_utf8_lossy(&body).into_owned());
        assert_eq!(w.handle_message(&record).await, Disposition::Ack, "#{i}: {:?}", record.body);
        let job = w.store.job(&id).unwrap();
        assert!(job.succeeded + job.failed + job.cancelled <= job.total, "#{i}: overcounted by {:?}", record.body);
        w.queue.drain();
    }
}
