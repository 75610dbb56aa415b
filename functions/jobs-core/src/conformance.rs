//! One conformance suite per storage port: the behaviour the domain relies on, asserted the
//! same way against every implementation. jobs-core's unit tests run each suite on the
//! in-memory doubles (`memory`); the e2e crate (`tests/tests/conformance.rs`) runs them on
//! the DynamoDB and S3 adapters against the deployed stack in LocalStack, so a double
//! cannot drift from the adapter it stands in for. A store added later runs them too.
//!
//! Each suite writes fresh ids only (the table it runs on may hold other tests' items) and
//! panics with what differs.

use std::collections::BTreeMap;

use serde_json::json;

use crate::clock;
use crate::domain::audit::{Audit, AuditEvent, EventKind};
use crate::domain::chunk::{ChunkCommit, ItemFailure, Settled, Tally};
use crate::domain::ended::JobEndEvent;
use crate::domain::job::{JobStatus, JobType};
use crate::domain::metrics::MetricAdd;
use crate::domain::record::{
    DUE_SHARDS, IdempotencyRecord, JobRecord, NewJob, NewSchedule, ScheduleRecord, end_shard,
    idempotency_pk, shard_of,
};
use crate::domain::window::{Acquired, Passed, ReleaseWindow, SlotPass, WindowChange, WindowScope};
use crate::ports::{
    ApiKeyStore, AuditLog, CreateOutcome, EventBus, InputStore, JobEnds, JobStore, LimitsStore,
    MetricsStore, ProgressStore, ScheduleStore, SenderIdentities, SenderStore, WorkMessage,
    WorkQueue,
};

/// A new ULID, as the API makes job ids.
pub fn fresh_id() -> String {
    ulid::Ulid::new().to_string()
}

/// A queued job of `total` items in tenant `tenant`, as the API writes it.
pub fn queued_job(tenant: &str, total: u64) -> JobRecord {
    let now = clock::now();
    let created_at = clock::format(now);
    JobRecord::new(NewJob {
        id: fresh_id(),
        job_type: JobType::ProfileFieldUpdate,
        tenant: tenant.into(),
        user: "conformance".into(),
        month: created_at[..7].to_string(),
        created_at,
        total,
        summary: json!({}),
        input_key: format!("inputs/{tenant}/conformance.json"),
        expires_at: now.unix_timestamp() + 3_600,
    })
}

/// The commit that settles a two-item chunk, both items succeeded.
fn settles_two() -> ChunkCommit {
    ChunkCommit {
        after: settled(&[0, 1]),
        tally: Tally {
            succeeded: 2,
            ..Tally::default()
        },
        done: true,
        ..ChunkCommit::default()
    }
}

fn settled(positions: &[usize]) -> Settled {
    let mut settled = Settled::default();
    positions.iter().for_each(|p| settled.insert(*p));
    settled
}

/// `JobStore`: a create is atomic with its idempotency record; reads by id; a queued cancel
/// ends the job with every item cancelled; hide and unhide guard the tenant; retries are
/// appended.
pub async fn job_store<S: JobStore>(store: &S) {
    let job = queued_job("conformance", 3);
    let idempotency = IdempotencyRecord {
        pk: idempotency_pk("conformance", "conformance", &job.id),
        sk: "IDEM".into(),
        job_id: job.id.clone(),
        request_hash: "h".into(),
        expires_at: clock::now().unix_timestamp() + 3_600,
    };
    assert_eq!(
        store.create(&job, Some(&idempotency)).await.unwrap(),
        CreateOutcome::Created
    );
    let again = queued_job("conformance", 3);
    assert_eq!(
        store.create(&again, Some(&idempotency)).await.unwrap(),
        CreateOutcome::IdempotencyKeyTaken,
        "an idempotency key is taken once"
    );
    assert!(
        store.get(&again.id).await.unwrap().is_none(),
        "nothing of a refused create is written"
    );
    let now = clock::now().unix_timestamp();
    assert_eq!(
        store
            .get_idempotency(&idempotency.pk, now)
            .await
            .unwrap()
            .map(|r| r.job_id),
        Some(job.id.clone())
    );

    let stored = store.get(&job.id).await.unwrap().expect("the created job");
    assert_eq!(
        (stored.status, stored.total, stored.tenant.as_str()),
        (JobStatus::Queued, 3, "conformance")
    );
    let many = store.get_many(&[job.id.clone(), fresh_id()]).await.unwrap();
    assert_eq!(
        many.iter().map(|j| j.id.clone()).collect::<Vec<_>>(),
        vec![job.id.clone()],
        "missing ids are left out"
    );

    let at = clock::format(clock::now());
    assert!(
        !store
            .hide(&stored, Some("another-tenant"), &at)
            .await
            .unwrap(),
        "another tenant's job is not hidden"
    );
    assert!(store.hide(&stored, Some("conformance"), &at).await.unwrap());
    let hidden = store
        .get(&job.id)
        .await
        .unwrap()
        .expect("a hidden job is still stored");
    assert_eq!(hidden.hidden_at.as_deref(), Some(at.as_str()));
    assert!(store.unhide(&hidden, Some("conformance")).await.unwrap());
    assert_eq!(
        store.get(&job.id).await.unwrap().and_then(|j| j.hidden_at),
        None
    );

    let (first, second) = (fresh_id(), fresh_id());
    store.add_retry(&job.id, &first).await.unwrap();
    store.add_retry(&job.id, &second).await.unwrap();
    assert_eq!(
        store.get(&job.id).await.unwrap().map(|j| j.retries),
        Some(vec![first, second]),
        "retries are appended"
    );

    assert!(store.cancel(&job.id, JobStatus::Queued, &at).await.unwrap());
    let cancelled = store.get(&job.id).await.unwrap().expect("the job");
    assert_eq!(
        (
            cancelled.status,
            cancelled.cancelled,
            cancelled.end_pending.as_deref()
        ),
        (JobStatus::Cancelled, 3, Some(at.as_str())),
        "every item of a queued job is cancelled"
    );
    assert_eq!(cancelled.ending, Some(end_shard(&job.id)));
    assert!(
        !store.cancel(&job.id, JobStatus::Queued, &at).await.unwrap(),
        "no longer queued"
    );
}

/// `JobEnds`: one caller at a time holds a pending end; a given-up claim frees it at once,
/// a stale one after its time; a handled end leaves the `ends_pending` index.
pub async fn job_ends<S: JobStore>(store: &S) {
    let job = queued_job("conformance", 1);
    assert_eq!(
        store.create(&job, None).await.unwrap(),
        CreateOutcome::Created
    );
    let ended_at = clock::format(clock::now() - time::Duration::minutes(10));
    assert!(
        store
            .cancel(&job.id, JobStatus::Queued, &ended_at)
            .await
            .unwrap()
    );
    let now = clock::now();
    let (at, stale_before) = (
        clock::format(now),
        clock::format(now - time::Duration::seconds(60)),
    );
    assert!(
        !store
            .claim_end(&job.id, "1999-01-01T00:00:00.000Z", &at, &stale_before)
            .await
            .unwrap(),
        "not the pending mark"
    );
    assert!(
        store
            .claim_end(&job.id, &ended_at, &at, &stale_before)
            .await
            .unwrap()
    );
    assert!(
        !store
            .claim_end(&job.id, &ended_at, &at, &stale_before)
            .await
            .unwrap(),
        "held by a live claim"
    );
    store
        .release_end(&job.id, "1999-01-01T00:00:00.000Z")
        .await
        .unwrap();
    assert!(
        !store
            .claim_end(&job.id, &ended_at, &at, &stale_before)
            .await
            .unwrap(),
        "another claim's release changes nothing"
    );
    store.release_end(&job.id, &at).await.unwrap();
    let later = clock::format(now + time::Duration::seconds(1));
    assert!(
        store
            .claim_end(&job.id, &ended_at, &later, &stale_before)
            .await
            .unwrap(),
        "a released claim frees the end at once"
    );
    let much_later = now + time::Duration::seconds(120);
    assert!(
        store
            .claim_end(
                &job.id,
                &ended_at,
                &clock::format(much_later),
                &clock::format(much_later - time::Duration::seconds(60))
            )
            .await
            .unwrap(),
        "a stale claim is taken over"
    );

    let shard = shard_of(&job.id, crate::domain::record::ACTIVE_SHARDS);
    let pending = pending_end_ids(store, shard, &clock::format(now)).await;
    assert!(
        pending.contains(&job.id),
        "a pending end is in the ends_pending index"
    );
    store.end_handled(&job.id).await.unwrap();
    let handled = store.get(&job.id).await.unwrap().expect("the job");
    assert_eq!(
        (handled.end_pending, handled.ending, handled.end_claimed_at),
        (None, None, None)
    );
    assert!(
        !store
            .claim_end(&job.id, &ended_at, &at, &stale_before)
            .await
            .unwrap(),
        "a handled end is never claimed again"
    );
    assert!(
        !pending_end_ids(store, shard, &clock::format(now))
            .await
            .contains(&job.id),
        "a handled end leaves the index"
    );
}

async fn pending_end_ids<S: JobEnds>(store: &S, shard: u32, before: &str) -> Vec<String> {
    let (mut ids, mut start) = (Vec::new(), None);
    for _ in 0..200 {
        let (page, last) = store.pending_ends(shard, before, start, 25).await.unwrap();
        ids.extend(page);
        match last {
            Some(key) => start = Some(key),
            None => break,
        }
    }
    ids
}

/// `ProgressStore`: a plan starts a queued job once; a chunk commit applies only on the
/// ledger it read, so a duplicate is refused; counters add up; exactly one completion.
pub async fn progress_store<S: JobStore + ProgressStore>(store: &S) {
    let job = queued_job("conformance", 3);
    assert_eq!(
        store.create(&job, None).await.unwrap(),
        CreateOutcome::Created
    );
    let at = clock::format(clock::now());
    assert!(store.begin(&job.id, 3, 2, &at).await.unwrap());
    let running = store.load(&job.id).await.unwrap().expect("the job");
    let many = store
        .load_many(&[fresh_id(), job.id.clone()])
        .await
        .unwrap();
    assert_eq!(
        many.iter()
            .map(|j| (j.id.as_str(), j.status))
            .collect::<Vec<_>>(),
        vec![(job.id.as_str(), JobStatus::Running)],
        "read as just written; a missing id left out"
    );
    assert_eq!(
        (
            running.status,
            running.chunks_total,
            running.started_at.as_deref()
        ),
        (JobStatus::Running, Some(2), Some(at.as_str()))
    );
    assert_eq!(
        store.chunk_ledger(&job.id, 0).await.unwrap(),
        None,
        "no ledger before the first commit"
    );

    let first = settles_two();
    assert!(
        store
            .commit_chunk(&job.id, 0, &first, job.expires_at)
            .await
            .unwrap()
    );
    assert!(
        !store
            .commit_chunk(&job.id, 0, &first, job.expires_at)
            .await
            .unwrap(),
        "a duplicate of a commit is refused"
    );
    let ledger = store
        .chunk_ledger(&job.id, 0)
        .await
        .unwrap()
        .expect("chunk 0's ledger");
    assert_eq!(
        (ledger.settled.clone(), ledger.done),
        (settled(&[0, 1]), true)
    );
    let (started, started_ledger) = store.chunk_start(&job.id, 0).await.unwrap();
    assert_eq!(
        (started.map(|j| j.chunks_done), started_ledger),
        (Some(1), Some(ledger.clone())),
        "the job and the ledger read together, as read apart"
    );
    let (_, none) = store.chunk_start(&job.id, 1).await.unwrap();
    assert_eq!(none, None, "no ledger before a chunk's first commit");
    assert_eq!(
        store.chunk_start(&fresh_id(), 0).await.unwrap(),
        (None, None)
    );

    let partial = ChunkCommit {
        after: settled(&[0]),
        tally: Tally {
            failed: 1,
            ..Tally::default()
        },
        failures: vec![ItemFailure {
            position: 0,
            reason: "no such user".into(),
        }],
        done: true,
        ..ChunkCommit::default()
    };
    let stale = ChunkCommit {
        before: Some(settled(&[1])),
        ..partial.clone()
    };
    assert!(
        !store
            .commit_chunk(&job.id, 1, &stale, job.expires_at)
            .await
            .unwrap(),
        "a commit on a ledger that changed is refused"
    );
    assert!(
        store
            .commit_chunk(&job.id, 1, &partial, job.expires_at)
            .await
            .unwrap()
    );
    let counted = store.load(&job.id).await.unwrap().expect("the job");
    assert_eq!(
        (
            counted.succeeded,
            counted.failed,
            counted.cancelled,
            counted.chunks_done
        ),
        (2, 1, 0, 2)
    );
    let (outcomes, more) = store.chunk_outcomes(&job.id, 0, 10).await.unwrap();
    assert!(!more);
    assert_eq!(
        outcomes.iter().map(|o| o.chunk).collect::<Vec<_>>(),
        vec![0, 1]
    );
    assert_eq!(
        outcomes[1].failures,
        vec![ItemFailure {
            position: 0,
            reason: "no such user".into()
        }]
    );

    assert!(
        store
            .complete(&job.id, JobStatus::CompletedWithErrors, &at)
            .await
            .unwrap()
    );
    assert!(
        !store
            .complete(&job.id, JobStatus::CompletedWithErrors, &at)
            .await
            .unwrap(),
        "exactly one completion"
    );
    let done = store.load(&job.id).await.unwrap().expect("the job");
    assert_eq!(
        (done.status, done.end_pending.as_deref()),
        (JobStatus::CompletedWithErrors, Some(at.as_str()))
    );
    assert!(
        !store.begin(&job.id, 3, 2, &at).await.unwrap(),
        "an ended job is not started again"
    );

    // One plan at a time reads a queued job's file: a lease until a time, given up at a pause.
    let planned = queued_job("conformance", 5);
    store.create(&planned, None).await.unwrap();
    assert!(store.lease_plan(&planned.id, 2_000, 1_000).await.unwrap());
    assert!(
        !store.lease_plan(&planned.id, 2_500, 1_500).await.unwrap(),
        "held until 2,000"
    );
    store.plan_paused(&planned.id, 1_234).await.unwrap();
    let paused = store.load(&planned.id).await.unwrap().expect("job");
    assert_eq!(
        (paused.planned_rows, paused.plan_lease),
        (Some(1_234), None)
    );
    assert!(store.lease_plan(&planned.id, 3_000, 1_600).await.unwrap());
    assert!(
        store.lease_plan(&planned.id, 9_000, 3_001).await.unwrap(),
        "a lease whose time ran out is taken"
    );
    store
        .begin(&planned.id, 5, 1, "2026-12-05T00:00:00Z")
        .await
        .unwrap();
    assert!(
        !store.lease_plan(&planned.id, 20_000, 10_000).await.unwrap(),
        "only a queued job's plan is leased"
    );
}

/// `WindowStore`: a job's first chain heads are held once; a slot is taken only below the
/// limit and only for a head still held; a job joins the line only while the window is
/// full and keeps its turn; a pass is made once, moves the heads it names, and applies its
/// window change only on the version read (a lone free: only while nobody waits); a
/// settling commit carrying a pass that no longer holds writes nothing.
/// Deferred plans ([`ReleaseWindow::deferred`]): a plan is put off only while its window
/// is full, or behind other deferred or woken plans while a chunk is in flight; a wake moves
/// jobs that are still deferred into `woken` and records them on the waker; a lone free is
/// refused while a plan is deferred that it did not see.
pub async fn deferred_plans<S: JobStore + ProgressStore>(store: &S) {
    let tenant = format!("conformance-{}", fresh_id());
    let (a, c, d) = (
        queued_job(&tenant, 2),
        queued_job(&tenant, 2),
        queued_job(&tenant, 2),
    );
    let at = clock::format(clock::now());
    for job in [&a, &c, &d] {
        assert_eq!(
            store.create(job, None).await.unwrap(),
            CreateOutcome::Created
        );
    }
    let key = WindowScope::Tenant.key(&tenant, a.job_type, &a.id);
    assert!(
        !store.defer(&key, 1, &c.id).await.unwrap(),
        "an empty window has room: plan now"
    );
    assert!(store.begin(&a.id, 2, 1, &at).await.unwrap());
    store.hold_first(&a.id, 1).await.unwrap();
    assert_eq!(
        store.acquire(&key, 1, &a.id, &[0]).await.unwrap(),
        Acquired::Granted
    );
    assert!(!store.defer(&key, 2, &c.id).await.unwrap(), "room at 2");
    for job in [&d, &c, &d] {
        assert!(store.defer(&key, 1, &job.id).await.unwrap());
    }
    let window = store.window(&key).await.unwrap();
    let both: std::collections::BTreeSet<String> = [c.id.clone(), d.id.clone()].into();
    assert_eq!(
        (window.in_flight, &window.deferred, window.woken.len()),
        (1, &both, 0),
        "deferred once each, whatever the repeats"
    );
    let blind_free = WindowChange {
        version: window.next_turn,
        next_turn: window.next_turn,
        free: true,
        none_deferred: true,
        ..WindowChange::default()
    };
    let pass = |change: WindowChange| SlotPass {
        from_job: a.id.clone(),
        from_chunk: 0,
        to: Passed::Freed,
        take: None,
        hold: None,
        window: Some(change),
    };
    let settle = settles_two();
    let commit = |change: WindowChange| ChunkCommit {
        pass: Some((key.clone(), pass(change))),
        ..settle.clone()
    };
    assert!(
        !store
            .commit_chunk(&a.id, 0, &commit(blind_free), 0)
            .await
            .unwrap(),
        "a free that saw no deferred plan is refused once one is deferred"
    );
    assert!(
        store
            .wake(&key, &a.id, std::slice::from_ref(&c.id))
            .await
            .unwrap()
    );
    assert!(
        !store
            .wake(&key, &a.id, std::slice::from_ref(&c.id))
            .await
            .unwrap(),
        "c is no longer deferred"
    );
    assert_eq!(
        store.load(&a.id).await.unwrap().unwrap().woke,
        vec![c.id.clone()]
    );
    let window = store.window(&key).await.unwrap();
    assert_eq!(
        (
            window.deferred.iter().collect::<Vec<_>>(),
            window.woken.iter().collect::<Vec<_>>(),
        ),
        (vec![&d.id], vec![&c.id])
    );
    assert!(
        store.defer(&key, 5, &a.id).await.unwrap(),
        "room at 5, but plans put off earlier go first while a chunk is in flight"
    );
    assert!(
        !store.leave(&key, &a.id, Some((1, 2))).await.unwrap(),
        "woken has one plan, not two: refused"
    );
    assert!(store.leave(&key, &a.id, Some((1, 1))).await.unwrap());
    // The settling commit frees the slot and wakes d, which is recorded in its ledger.
    let free_and_wake = WindowChange {
        version: window.next_turn,
        next_turn: window.next_turn,
        free: true,
        wake: vec![d.id.clone()],
        ..WindowChange::default()
    };
    assert!(
        store
            .commit_chunk(&a.id, 0, &commit(free_and_wake), 0)
            .await
            .unwrap()
    );
    let ledger = store.chunk_ledger(&a.id, 0).await.unwrap().unwrap();
    assert_eq!(
        (ledger.passed, ledger.woke),
        (Some(Passed::Freed), vec![d.id.clone()])
    );
    assert!(
        !store.defer(&key, 5, &a.id).await.unwrap(),
        "nothing in flight: a plan never waits on an idle window"
    );
    for job in [&c, &d, &c] {
        assert!(store.leave(&key, &job.id, None).await.unwrap());
    }
    let window = store.window(&key).await.unwrap();
    assert_eq!(
        (window.in_flight, window.deferred.len(), window.woken.len()),
        (0, 0, 0),
        "emptied sets read as empty"
    );
}

pub async fn window_store<S: JobStore + ProgressStore>(store: &S) {
    let tenant = format!("conformance-{}", fresh_id());
    let (a, b) = (queued_job(&tenant, 4), queued_job(&tenant, 4));
    let at = clock::format(clock::now());
    for job in [&a, &b] {
        assert_eq!(
            store.create(job, None).await.unwrap(),
            CreateOutcome::Created
        );
        assert!(store.begin(&job.id, 4, 2, &at).await.unwrap());
        store.hold_first(&job.id, 2).await.unwrap();
    }
    store.hold_first(&a.id, 1).await.unwrap();
    let held = |id: String| async move {
        store
            .load(&id)
            .await
            .unwrap()
            .map(|j| j.held_heads())
            .unwrap_or_default()
    };
    assert_eq!(held(a.id.clone()).await, vec![0, 1], "held once");
    let key = WindowScope::Tenant.key(&tenant, a.job_type, &a.id);
    assert_eq!(
        store.window(&key).await.unwrap(),
        ReleaseWindow::default(),
        "an unused window is empty"
    );
    assert_eq!(
        store.acquire(&key, 1, &a.id, &[0]).await.unwrap(),
        Acquired::Granted
    );
    assert_eq!(held(a.id.clone()).await, vec![1]);
    assert_eq!(
        store.acquire(&key, 2, &a.id, &[0]).await.unwrap(),
        Acquired::Taken,
        "chunk 0 is released already"
    );
    assert_eq!(
        store.acquire(&key, 1, &b.id, &[0]).await.unwrap(),
        Acquired::Full
    );
    assert!(
        !store.wait(&key, 2, &b.id).await.unwrap(),
        "not full at 2: acquire again"
    );
    assert!(store.wait(&key, 1, &b.id).await.unwrap());
    assert!(
        store.wait(&key, 1, &b.id).await.unwrap(),
        "a second wait keeps the turn"
    );
    let window = store.window(&key).await.unwrap();
    assert_eq!(
        (window.in_flight, window.in_turn(), window.next_turn),
        (1, vec![(b.id.as_str(), 0)], 2)
    );

    // Chunk 0 of a settles and hands its slot to b's head 0.
    let settle = settles_two();
    assert!(
        store
            .commit_chunk(&a.id, 0, &settle, a.expires_at)
            .await
            .unwrap()
    );
    let to_b = SlotPass {
        from_job: a.id.clone(),
        from_chunk: 0,
        to: Passed::To {
            job_id: b.id.clone(),
            chunk: 0,
        },
        take: Some((b.id.clone(), 0)),
        hold: None,
        window: Some(WindowChange {
            version: 2,
            next_turn: 4,
            set: vec![(a.id.clone(), 3)],
            remove: vec![],
            free: false,
            ..WindowChange::default()
        }),
    };
    let stale = SlotPass {
        window: Some(WindowChange {
            version: 1,
            ..to_b.window.clone().unwrap_or_default()
        }),
        ..to_b.clone()
    };
    assert!(
        !store.pass(&key, &stale).await.unwrap(),
        "a pass on a window that changed since it was read is refused"
    );
    assert_eq!(held(b.id.clone()).await, vec![0, 1], "and changes nothing");
    assert!(store.pass(&key, &to_b).await.unwrap());
    assert!(
        !store.pass(&key, &to_b).await.unwrap(),
        "a chunk's slot is passed once"
    );
    assert_eq!(
        store
            .chunk_ledger(&a.id, 0)
            .await
            .unwrap()
            .and_then(|l| l.passed),
        Some(to_b.to.clone())
    );
    assert_eq!(held(b.id.clone()).await, vec![1]);
    let window = store.window(&key).await.unwrap();
    assert_eq!(
        (window.in_flight, window.in_turn(), window.next_turn),
        (1, vec![(b.id.as_str(), 0), (a.id.as_str(), 3)], 4)
    );

    // Chunk 0 of b settles; in this sketch nobody wants the slot: it is freed.
    assert!(
        store
            .commit_chunk(&b.id, 0, &settle, b.expires_at)
            .await
            .unwrap()
    );
    let freed = SlotPass {
        from_job: b.id.clone(),
        from_chunk: 0,
        to: Passed::Freed,
        take: None,
        hold: Some(2),
        window: Some(WindowChange {
            version: 4,
            next_turn: 5,
            remove: vec![a.id.clone(), b.id.clone()],
            free: true,
            ..WindowChange::default()
        }),
    };
    assert!(store.pass(&key, &freed).await.unwrap());
    assert_eq!(
        held(b.id.clone()).await,
        vec![1, 2],
        "the hold joins b's heads"
    );
    let window = store.window(&key).await.unwrap();
    assert_eq!(
        (window.in_flight, window.waiting.len(), window.next_turn),
        (0, 0, 5)
    );
    assert!(
        !store
            .pass(
                &key,
                &SlotPass {
                    from_chunk: 1,
                    ..freed.clone()
                }
            )
            .await
            .unwrap(),
        "a chunk that is not done passes nothing"
    );

    // The commit that settles a chunk passes its slot in the same transaction.
    let c = queued_job(&tenant, 4);
    assert_eq!(
        store.create(&c, None).await.unwrap(),
        CreateOutcome::Created
    );
    assert!(store.begin(&c.id, 4, 2, &at).await.unwrap());
    store.hold_first(&c.id, 2).await.unwrap();
    assert_eq!(
        store.acquire(&key, 1, &c.id, &[0]).await.unwrap(),
        Acquired::Granted
    );
    let passing = |head: u64| ChunkCommit {
        pass: Some((
            key.clone(),
            SlotPass {
                from_job: c.id.clone(),
                from_chunk: 0,
                to: Passed::To {
                    job_id: c.id.clone(),
                    chunk: head,
                },
                take: Some((c.id.clone(), head)),
                hold: None,
                window: None,
            },
        )),
        ..settle.clone()
    };
    assert!(
        !store
            .commit_chunk(&c.id, 0, &passing(5), c.expires_at)
            .await
            .unwrap(),
        "a pass that takes a head the job does not hold refuses the commit"
    );
    let refused = store.load(&c.id).await.unwrap().expect("the job");
    assert_eq!(
        (refused.succeeded, refused.held_heads()),
        (0, vec![1]),
        "and writes nothing"
    );
    assert!(
        store
            .commit_chunk(&c.id, 0, &passing(1), c.expires_at)
            .await
            .unwrap()
    );
    let counted = store.load(&c.id).await.unwrap().expect("the job");
    assert_eq!(
        (counted.succeeded, counted.chunks_done, counted.held_heads()),
        (2, 1, vec![])
    );
    assert_eq!(
        store
            .chunk_ledger(&c.id, 0)
            .await
            .unwrap()
            .and_then(|l| l.passed),
        Some(Passed::To {
            job_id: c.id.clone(),
            chunk: 1
        })
    );

    // Several heads are taken at once only if all fit; a free needs no version (frees
    // commute), but is refused while a job waits.
    let d = queued_job(&tenant, 4);
    assert_eq!(
        store.create(&d, None).await.unwrap(),
        CreateOutcome::Created
    );
    assert!(store.begin(&d.id, 4, 2, &at).await.unwrap());
    store.hold_first(&d.id, 3).await.unwrap();
    assert_eq!(
        store.acquire(&key, 2, &d.id, &[0, 1]).await.unwrap(),
        Acquired::Full,
        "room for one of two heads takes neither"
    );
    assert_eq!(held(d.id.clone()).await, vec![0, 1, 2]);
    assert_eq!(
        store.acquire(&key, 3, &d.id, &[0, 1]).await.unwrap(),
        Acquired::Granted
    );
    assert_eq!(held(d.id.clone()).await, vec![2]);
    for chunk in [0, 1] {
        assert!(
            store
                .commit_chunk(&d.id, chunk, &settle, d.expires_at)
                .await
                .unwrap()
        );
    }
    let free = |chunk: u64| SlotPass {
        from_job: d.id.clone(),
        from_chunk: chunk,
        to: Passed::Freed,
        take: None,
        hold: None,
        window: Some(WindowChange {
            free: true,
            ..WindowChange::default()
        }),
    };
    assert!(
        store.pass(&key, &free(0)).await.unwrap(),
        "a free applies whatever the version read"
    );
    assert!(store.wait(&key, 2, &d.id).await.unwrap());
    assert!(
        !store.pass(&key, &free(1)).await.unwrap(),
        "a free is refused while a job waits"
    );
    let window = store.window(&key).await.unwrap();
    assert_eq!(
        (window.in_flight, window.in_turn().len()),
        (2, 1),
        "and changes nothing"
    );
}

/// `UsageStore`: a counted create beyond `max_queued` writes nothing; a job is admitted
/// once, only below `max_running` and, when not in line, only with nobody of its type in
/// line; it joins the line once; an end is taken off the usage once; the line gives its
/// oldest job.
pub async fn usage_store<S: JobStore + ProgressStore>(store: &S) {
    use crate::domain::limits::Admission;
    let tenant = format!("conformance-{}", fresh_id().to_lowercase());
    let counted = || {
        let mut job = queued_job(&tenant, 2);
        job.counted = true;
        job
    };
    let (a, b, c) = (counted(), counted(), counted());
    let job_type = a.job_type;
    for job in [&a, &b] {
        assert_eq!(
            store.create_counted(job, None, 2).await.unwrap(),
            CreateOutcome::Created
        );
    }
    assert_eq!(
        store.create_counted(&c, None, 2).await.unwrap(),
        CreateOutcome::QueueFull
    );
    assert!(
        store.get(&c.id).await.unwrap().is_none(),
        "a refused create writes nothing"
    );
    assert_eq!(store.usage(&tenant).await.unwrap().queued, 2);

    assert_eq!(store.admit(&a, 1).await.unwrap(), Admission::Admitted);
    assert_eq!(
        store.admit(&a, 1).await.unwrap(),
        Admission::Changed,
        "admitted once"
    );
    assert_eq!(store.admit(&b, 1).await.unwrap(), Admission::Full);
    assert!(store.join_line(&b).await.unwrap());
    assert!(!store.join_line(&b).await.unwrap(), "in line once");
    assert_eq!(
        store.admit(&b, 2).await.unwrap(),
        Admission::Changed,
        "b is not as read: it is in line now"
    );
    let usage = store.usage(&tenant).await.unwrap();
    assert_eq!(
        (
            usage.queued,
            usage.running(job_type),
            usage.waiting(job_type)
        ),
        (1, 1, 1)
    );
    assert_eq!(
        store.first_waiting(&tenant, job_type, 2).await.unwrap(),
        vec![b.id.clone()]
    );

    let d = counted();
    assert_eq!(
        store.create_counted(&d, None, 10).await.unwrap(),
        CreateOutcome::Created
    );
    assert_eq!(
        store.admit(&d, 5).await.unwrap(),
        Admission::Full,
        "a job not in line does not pass one in line"
    );

    let a_now = store.load(&a.id).await.unwrap().expect("a");
    assert!(a_now.admitted);
    assert!(store.release_usage(&a_now).await.unwrap());
    assert!(
        !store.release_usage(&a_now).await.unwrap(),
        "an end is taken off once"
    );
    assert_eq!(store.usage(&tenant).await.unwrap().running(job_type), 0);

    let b_now = store.load(&b.id).await.unwrap().expect("b");
    assert_eq!(store.admit(&b_now, 1).await.unwrap(), Admission::Admitted);
    assert!(
        store
            .first_waiting(&tenant, job_type, 2)
            .await
            .unwrap()
            .is_empty()
    );
    let d_now = store.load(&d.id).await.unwrap().expect("d");
    assert!(store.release_usage(&d_now).await.unwrap());
    let usage = store.usage(&tenant).await.unwrap();
    assert_eq!(
        (
            usage.queued,
            usage.running(job_type),
            usage.waiting(job_type)
        ),
        (0, 1, 0)
    );
    assert!(
        !store.release_usage(&queued_job(&tenant, 1)).await.unwrap(),
        "a job that is not counted is never taken off"
    );

    // An uploaded file gives one job its items: a second job from it writes nothing.
    let file = crate::domain::file::JobFile {
        key: format!("uploads/{tenant}/{}", fresh_id()),
        content_type: "text/csv".into(),
        content_encoding: None,
        bytes: 10,
        limits: Default::default(),
        retry: None,
    };
    let (mut first, mut second) = (counted(), counted());
    first.file = Some(file.clone());
    second.file = Some(file);
    assert_eq!(
        store.create_counted(&first, None, 10).await.unwrap(),
        CreateOutcome::Created
    );
    assert_eq!(
        store.create_counted(&second, None, 10).await.unwrap(),
        CreateOutcome::UploadUsed
    );
    assert!(store.get(&second.id).await.unwrap().is_none());
    assert_eq!(store.usage(&tenant).await.unwrap().queued, 1);
}

/// `ScheduleStore`: a new schedule's id is taken once; every later write is conditional on
/// the version read; listed by tenant and found due by shard.
pub async fn schedule_store<S: ScheduleStore>(store: &S) {
    let tenant = format!("conformance-{}", fresh_id().to_lowercase());
    let created_at = clock::format(clock::now());
    let schedule = ScheduleRecord::new(NewSchedule {
        id: fresh_id(),
        name: "conformance".into(),
        job_type: JobType::SessionTermination,
        tenant: tenant.clone(),
        owner: "conformance".into(),
        params: r#"{"idle_for_seconds":600}"#.into(),
        cron: Some("0 * * * *".into()),
        rate: None,
        timezone: "UTC".into(),
        enabled: true,
        created_at,
        next_run_at: Some("2000-01-01T00:00:00.000Z".into()),
    });
    assert!(store.save_schedule(&schedule, None).await.unwrap());
    assert!(
        !store.save_schedule(&schedule, None).await.unwrap(),
        "an id is taken once"
    );
    assert_eq!(
        store.get_schedule(&schedule.id).await.unwrap().as_ref(),
        Some(&schedule)
    );
    let mut edited = schedule.clone();
    edited.name = "edited".into();
    edited.version = 2;
    assert!(store.save_schedule(&edited, Some(1)).await.unwrap());
    assert!(
        !store.save_schedule(&edited, Some(1)).await.unwrap(),
        "a write on a version that moved on is refused"
    );
    assert_eq!(
        store
            .get_schedule(&schedule.id)
            .await
            .unwrap()
            .map(|s| s.name),
        Some("edited".to_string())
    );

    let (listed, _) = store.list_schedules(&tenant, None, 10).await.unwrap();
    assert_eq!(
        listed.iter().map(|s| s.id.clone()).collect::<Vec<_>>(),
        vec![schedule.id.clone()]
    );
    let shard = shard_of(&schedule.id, DUE_SHARDS);
    let (mut due, mut start) = (Vec::new(), None);
    for _ in 0..200 {
        let (page, last) = store
            .due_schedules(shard, "2000-01-01T00:00:00.000Z", start, 25)
            .await
            .unwrap();
        due.extend(page);
        match last {
            Some(key) => start = Some(key),
            None => break,
        }
    }
    assert!(
        due.contains(&schedule.id),
        "due by its next_run_at in its shard"
    );
}

/// `ApiKeyStore`: an id is taken once; a tenant lists its live keys only; a revocation
/// guards the tenant, happens once and takes the key out of the listing; the last use is
/// written once per interval, and never on a revoked key.
pub async fn api_key_store<S: ApiKeyStore>(store: &S) {
    use crate::domain::api_key::{API_KEY_SK, ApiKeyRecord, api_key_pk};
    use crate::domain::record::owned_by;
    let tenant = format!("t{}", fresh_id().to_lowercase());
    let created_at = clock::format(clock::now());
    let key = |id: &str| ApiKeyRecord {
        pk: api_key_pk(id),
        sk: API_KEY_SK.into(),
        owned_by: Some(owned_by(&tenant, "api_key")),
        id: id.into(),
        tenant: tenant.clone(),
        name: format!("key {id}"),
        role: crate::domain::auth::Role::Viewer,
        hash: "0".repeat(64),
        created_by: "conformance".into(),
        created_at: created_at.clone(),
        key_expires_at: None,
        last_used_at: None,
        revoked_at: None,
        expires_at: None,
    };
    let ids: Vec<String> = (0..2)
        .map(|_| fresh_id().to_lowercase()[14..].to_string())
        .collect();
    for id in &ids {
        assert!(store.create_api_key(&key(id)).await.unwrap());
    }
    assert!(
        !store.create_api_key(&key(&ids[0])).await.unwrap(),
        "an id is taken once"
    );
    assert_eq!(
        store.get_api_key(&ids[0]).await.unwrap(),
        Some(key(&ids[0]))
    );
    let mut listed: Vec<String> = store
        .list_api_keys(&tenant)
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.id)
        .collect();
    listed.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(listed, expected);
    assert!(
        store
            .list_api_keys(&format!("{tenant}x"))
            .await
            .unwrap()
            .is_empty()
    );

    let (t0, t1, t2) = (
        "2026-12-01T00:00:00.000Z",
        "2026-12-01T00:00:30.000Z",
        "2026-12-01T00:01:00.000Z",
    );
    assert!(
        store.touch_api_key(&ids[1], t0, t0).await.unwrap(),
        "never used"
    );
    assert!(
        !store.touch_api_key(&ids[1], t1, t0).await.unwrap(),
        "written at t0, not before t0"
    );
    assert!(store.touch_api_key(&ids[1], t2, t1).await.unwrap());
    assert_eq!(
        store
            .get_api_key(&ids[1])
            .await
            .unwrap()
            .and_then(|k| k.last_used_at),
        Some(t2.to_string())
    );

    assert!(
        !store
            .revoke_api_key(&ids[0], &format!("{tenant}x"), t2, 1)
            .await
            .unwrap(),
        "another tenant's key"
    );
    assert!(store.revoke_api_key(&ids[0], &tenant, t2, 1).await.unwrap());
    assert!(
        !store.revoke_api_key(&ids[0], &tenant, t2, 1).await.unwrap(),
        "once"
    );
    let revoked = store.get_api_key(&ids[0]).await.unwrap().unwrap();
    assert_eq!(
        (
            revoked.revoked_at.as_deref(),
            revoked.owned_by,
            revoked.expires_at
        ),
        (Some(t2), None, Some(1))
    );
    assert!(
        !store
            .touch_api_key(&ids[0], "2026-12-02T00:00:00.000Z", t2)
            .await
            .unwrap(),
        "a revoked key is not touched"
    );
    let listed: Vec<String> = store
        .list_api_keys(&tenant)
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(
        listed,
        vec![ids[1].clone()],
        "a revoked key leaves the listing"
    );
    assert_eq!(store.get_api_key("nosuchkey000").await.unwrap(), None);
}

/// `SenderStore`: an identity is registered to one tenant at a time; a batch read returns
/// what is stored; a removal guards the tenant, happens once, leaves the listing and frees
/// the identity for another tenant.
pub async fn sender_store<S: SenderStore>(store: &S) {
    use crate::domain::record::owned_by;
    use crate::domain::sender::{SENDER_SK, SenderKind, SenderRecord, sender_pk};
    let suffix = fresh_id().to_lowercase();
    let (acme, globex) = (format!("a{suffix}"), format!("g{suffix}"));
    let domain = format!("{suffix}.example.test");
    let address = format!("news@{domain}");
    let sender = |identity: &str, kind, tenant: &str| SenderRecord {
        pk: sender_pk(identity),
        sk: SENDER_SK.into(),
        owned_by: Some(owned_by(tenant, "sender")),
        identity: identity.into(),
        kind,
        tenant: tenant.into(),
        created_by: "conformance".into(),
        created_at: "2026-12-01T00:00:00.000Z".into(),
        removed_at: None,
        expires_at: None,
    };
    let acme_domain = sender(&domain, SenderKind::Domain, &acme);
    assert!(store.add_sender(&acme_domain).await.unwrap());
    assert!(
        !store
            .add_sender(&sender(&domain, SenderKind::Domain, &globex))
            .await
            .unwrap(),
        "one tenant at a time"
    );
    let globex_address = sender(&address, SenderKind::Address, &globex);
    assert!(store.add_sender(&globex_address).await.unwrap());
    let mut read = store
        .get_senders(&[address.clone(), domain.clone(), format!("x{domain}")])
        .await
        .unwrap();
    read.sort_by(|a, b| a.pk.cmp(&b.pk));
    let mut expected = vec![acme_domain.clone(), globex_address.clone()];
    expected.sort_by(|a, b| a.pk.cmp(&b.pk));
    assert_eq!(read, expected);
    assert_eq!(
        store.list_senders(&acme).await.unwrap(),
        vec![acme_domain.clone()]
    );

    let at = "2026-12-02T00:00:00.000Z";
    assert!(
        !store.remove_sender(&domain, &globex, at, 1).await.unwrap(),
        "another tenant's"
    );
    assert!(store.remove_sender(&domain, &acme, at, 1).await.unwrap());
    assert!(
        !store.remove_sender(&domain, &acme, at, 1).await.unwrap(),
        "once"
    );
    assert!(store.list_senders(&acme).await.unwrap().is_empty());
    let removed = store
        .get_senders(std::slice::from_ref(&domain))
        .await
        .unwrap();
    assert_eq!(
        removed
            .first()
            .map(|r| (r.removed_at.as_deref(), r.owned_by.clone())),
        Some((Some(at), None))
    );
    assert!(
        store
            .add_sender(&sender(&domain, SenderKind::Domain, &globex))
            .await
            .unwrap(),
        "a removed identity is free again"
    );
    assert_eq!(store.list_senders(&globex).await.unwrap().len(), 2);
}

/// `LimitsStore`: a tenant's limits read back as put and replaced by the next put; a
/// minute's counter counts up to its limit and no further, each tenant and minute apart.
pub async fn limits_store<S: LimitsStore>(store: &S) {
    use crate::domain::limits::{LIMITS_SK, LimitsRecord, TenantLimits, tenant_pk};
    let tenant = format!("t{}", fresh_id().to_lowercase());
    assert_eq!(store.get_limits(&tenant).await.unwrap(), None);
    let mut record = LimitsRecord {
        pk: tenant_pk(&tenant),
        sk: LIMITS_SK.into(),
        tenant: tenant.clone(),
        limits: TenantLimits {
            creates_per_minute: 3,
            ..TenantLimits::default()
        },
        updated_by: "conformance".into(),
        updated_at: "2026-12-05T10:00:00.000Z".into(),
    };
    store.put_limits(&record).await.unwrap();
    assert_eq!(
        store.get_limits(&tenant).await.unwrap(),
        Some(record.clone())
    );
    record.limits.creates_per_minute = 5;
    store.put_limits(&record).await.unwrap();
    assert_eq!(store.get_limits(&tenant).await.unwrap(), Some(record));

    let ttl = clock::now().unix_timestamp() + 120;
    let minute = "2026-12-05T10:00";
    for n in 0..2 {
        assert!(
            store.count_create(&tenant, minute, 2, ttl).await.unwrap(),
            "create {n}"
        );
    }
    assert!(
        !store.count_create(&tenant, minute, 2, ttl).await.unwrap(),
        "at the limit"
    );
    assert!(
        store.count_create(&tenant, minute, 3, ttl).await.unwrap(),
        "a higher limit"
    );
    assert_eq!(store.creates_in(&tenant, minute).await.unwrap(), 3);
    assert!(
        store
            .count_create(&tenant, "2026-12-05T10:01", 2, ttl)
            .await
            .unwrap(),
        "next minute"
    );
    assert_eq!(
        store
            .creates_in(&format!("{tenant}x"), minute)
            .await
            .unwrap(),
        0
    );

    // A day's uploads have their own counter.
    let day = "2026-12-05";
    for _ in 0..2 {
        assert!(store.count_upload(&tenant, day, 2, ttl).await.unwrap());
    }
    assert!(
        !store.count_upload(&tenant, day, 2, ttl).await.unwrap(),
        "at the limit"
    );
    assert!(
        store
            .count_upload(&tenant, "2026-12-06", 2, ttl)
            .await
            .unwrap()
    );
    assert_eq!(
        store.creates_in(&tenant, minute).await.unwrap(),
        3,
        "uploads are not creates"
    );
}

/// `MetricsStore`: additions to an item add up, and a read returns the items in range.
pub async fn metrics_store<S: MetricsStore>(store: &S) {
    let pk = format!("METRIC#conformance-{}#0", fresh_id());
    let add = |sk: &str, n: u64| MetricAdd {
        pk: pk.clone(),
        sk: sk.into(),
        adds: BTreeMap::from([("created:profile_field_update".to_string(), n)]),
        expires_at: clock::now().unix_timestamp() + 3_600,
    };
    store
        .add_metrics(&[add("2026-11-30T10", 2), add("2026-11-30T11", 5)])
        .await
        .unwrap();
    store.add_metrics(&[add("2026-11-30T10", 3)]).await.unwrap();
    let read = store
        .read_metrics(&pk, "2026-11-30T10", "2026-11-30T10")
        .await
        .unwrap();
    assert_eq!(
        read,
        vec![(
            "2026-11-30T10".to_string(),
            BTreeMap::from([("created:profile_field_update".to_string(), 5)])
        )]
    );
    assert_eq!(
        store
            .read_metrics(&pk, "2026-11-30T00", "2026-11-30T23")
            .await
            .unwrap()
            .len(),
        2
    );
}

/// `InputStore`: what is put is read back; a conditional put writes only the first time.
pub async fn input_store<I: InputStore>(inputs: &I) {
    let key = format!("inputs/conformance/{}.json", fresh_id());
    assert_eq!(inputs.get(&key).await.unwrap(), None);
    inputs.put(&key, b"one".to_vec()).await.unwrap();
    assert_eq!(inputs.get(&key).await.unwrap(), Some(b"one".to_vec()));
    let once = format!("{key}.snapshot");
    assert!(
        inputs
            .put_if_absent(&once, b"first".to_vec())
            .await
            .unwrap()
    );
    assert!(
        !inputs
            .put_if_absent(&once, b"second".to_vec())
            .await
            .unwrap(),
        "written only the first time"
    );
    assert_eq!(inputs.get(&once).await.unwrap(), Some(b"first".to_vec()));
    let head = inputs.head(&once).await.unwrap().expect("stored");
    assert_eq!(head.bytes, 5);
    assert_eq!(head.content_type.as_deref(), Some("application/json"));
    assert_eq!(inputs.head(&format!("{key}.absent")).await.unwrap(), None);

    // Ranges are half-open; past the end holds what there is; a stream reads it all.
    for (start, end, want) in [
        (0, Some(2), &b"fi"[..]),
        (2, None, b"rst"),
        (3, Some(99), b"st"),
        (9, None, b""),
        (4, Some(4), b""),
    ] {
        assert_eq!(
            inputs
                .get_range(&once, start, end)
                .await
                .unwrap()
                .as_deref(),
            Some(want),
            "{start}..{end:?}"
        );
    }
    assert_eq!(
        inputs
            .get_range(&format!("{key}.absent"), 0, None)
            .await
            .unwrap(),
        None
    );
    let mut streamed = Vec::new();
    let mut reader = inputs.open(&once, 0).await.unwrap().expect("stored");
    tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut streamed)
        .await
        .unwrap();
    assert_eq!(streamed, b"first");
    assert!(
        inputs
            .open(&format!("{key}.absent"), 0)
            .await
            .unwrap()
            .is_none()
    );

    // A presigned upload names its key and signs the headers its PUT must send.
    let upload = format!("uploads/conformance/{}", fresh_id());
    let gzip = crate::ports::UploadFormat {
        content_type: "text/csv".into(),
        content_encoding: Some("gzip".into()),
    };
    let put = inputs
        .presign_put(&upload, &gzip, std::time::Duration::from_secs(900))
        .await
        .unwrap();
    assert_eq!(put.method, "PUT");
    assert!(put.url.contains(&upload), "{}", put.url);
    for (header, value) in [
        ("content-type", "text/csv"),
        ("content-encoding", "gzip"),
        ("if-none-match", "*"),
    ] {
        assert_eq!(
            put.headers.get(header).map(String::as_str),
            Some(value),
            "{header} in {:?}",
            put.headers
        );
    }
    let plain = crate::ports::UploadFormat {
        content_type: "application/x-ndjson".into(),
        content_encoding: None,
    };
    let put = inputs
        .presign_put(&upload, &plain, std::time::Duration::from_secs(900))
        .await
        .unwrap();
    assert!(
        !put.headers.contains_key("content-encoding"),
        "{:?}",
        put.headers
    );
}

/// `AuditLog`: an append is idempotent (the same entry twice is one), and a job's entries
/// come back oldest first.
pub async fn audit_log<A: AuditLog>(log: A) {
    let audit = Audit::new(log, 1);
    let job_id = fresh_id();
    let event = |at: &str, kind| AuditEvent {
        at: at.into(),
        kind,
        job_id: Some(job_id.clone()),
        api_key_id: None,
        sender: None,
        tenant: "conformance".into(),
        actor: None,
        origin: Default::default(),
        outcome: "ok".into(),
        status: None,
        related_job: None,
        limits: None,
    };
    let now = clock::now();
    let (started, ended) = (
        clock::format(now - time::Duration::seconds(5)),
        clock::format(now),
    );
    let first = audit.record_of(event(&started, EventKind::Started));
    let last = audit.record_of(event(&ended, EventKind::Ended));
    audit.log().append(&last).await.unwrap();
    audit.log().append(&first).await.unwrap();
    audit.log().append(&first).await.unwrap();
    let (entries, more) = audit.log().job_entries(&job_id, None, 10).await.unwrap();
    assert!(!more);
    assert_eq!(entries, vec![first, last], "each entry once, oldest first");
    // A tenant's day partition holds its job's entries and its own (a key's), newest first.
    let tenant = format!("t{}", fresh_id().to_lowercase());
    let key_entry = audit.record_of(AuditEvent {
        job_id: None,
        api_key_id: Some(fresh_id()),
        tenant: tenant.clone(),
        ..event(&ended, EventKind::ApiKeyCreated)
    });
    let job_entry = audit.record_of(AuditEvent {
        tenant: tenant.clone(),
        ..event(&started, EventKind::Created)
    });
    audit.log().append(&key_entry).await.unwrap();
    audit.log().append(&job_entry).await.unwrap();
    let day = crate::domain::audit::day_of(&ended);
    let mut found = Vec::new();
    for partition in crate::domain::audit::day_partitions(day, Some(&tenant)) {
        found.extend(
            audit
                .log()
                .day_entries(
                    Some(&tenant),
                    &partition,
                    &started,
                    &format!("{ended}~"),
                    10,
                )
                .await
                .unwrap(),
        );
    }
    found.sort_by(|a, b| b.sk.cmp(&a.sk));
    assert_eq!(
        found,
        vec![key_entry.clone(), job_entry],
        "the tenant's entries"
    );
    let everyone = audit
        .log()
        .day_entries(
            None,
            &key_entry.audit_day,
            &ended,
            &format!("{ended}~"),
            100,
        )
        .await
        .unwrap();
    assert!(everyone.contains(&key_entry), "by_day holds it too");
}

/// `WorkQueue`, on empty queues of `job_type`: every message sent, plan or chunk, alone or
/// in a batch, is counted in the type's depths; a batch larger than one `SendMessageBatch`
/// (10 entries, 256 KiB) loses none.
pub async fn work_queue<Q: WorkQueue>(queue: &Q, job_type: JobType) {
    let empty = queue.depths(job_type).await.unwrap();
    assert_eq!(
        (
            empty.messages_visible,
            empty.messages_in_flight,
            empty.dlq_messages
        ),
        (0, 0, 0),
        "the suite starts on an empty queue"
    );
    let job_id = fresh_id();
    let plan = WorkMessage::Plan {
        job_id: job_id.clone(),
        tenant: "conformance".into(),
        woken: false,
    };
    queue.send(job_type, &plan).await.unwrap();
    // 25 chunks, each ~40 KB: three batches by count, more by size.
    let chunks: Vec<WorkMessage> = (0..25)
        .map(|chunk| WorkMessage::Chunk {
            job_id: job_id.clone(),
            tenant: "conformance".into(),
            chunk,
            items: vec![json!("x".repeat(40_000))],
            retry_since: None,
        })
        .collect();
    queue.send_all(job_type, &chunks).await.unwrap();
    let depths = queue.depths(job_type).await.unwrap();
    assert_eq!(
        (depths.messages_visible, depths.dlq_messages),
        (26, 0),
        "every message sent is on the queue"
    );
}

/// A fresh address and a fresh domain for [`sender_identities`], under `.test` (RFC 2606),
/// so no identity the account holds covers them.
pub fn fresh_sender_identities() -> (String, String) {
    let id = fresh_id().to_ascii_lowercase();
    (
        format!("ann@address-{id}.test"),
        format!("domain-{id}.test"),
    )
}

/// `SenderIdentities`, where the identities `address` (an email address) and `domain` are
/// verified and nothing else covers them: an address may send when it, its domain or a
/// parent domain is verified, whatever its case; an address identity covers no other
/// address; a look-alike domain is not covered.
pub async fn sender_identities<S: SenderIdentities>(senders: &S, address: &str, domain: &str) {
    let (user, address_domain) = address.split_once('@').unwrap();
    let cases = [
        (address.to_string(), true),
        (address.to_ascii_uppercase(), true),
        (format!("not-{user}@{address_domain}"), false),
        (format!("news@{domain}"), true),
        (format!("NEWS@{}", domain.to_ascii_uppercase()), true),
        (format!("news@mail.{domain}"), true),
        (format!("news@not{domain}"), false),
        (format!("news@{domain}.evil"), false),
        (format!("news@{}", fresh_sender_identities().1), false),
    ];
    for (candidate, expected) in cases {
        assert_eq!(
            senders.is_verified(&candidate).await.unwrap(),
            expected,
            "is_verified({candidate})"
        );
    }
}

/// `EventBus`: each event put (for jobs of `tenant`) is delivered with its `detail-type` and its detail as the
/// event serialises. `delivered` returns the events received so far (each with
/// `detail-type` and `detail`); delivery may lag, so it is polled for up to 30 s.
pub async fn event_bus<B: EventBus>(
    bus: &B,
    tenant: &str,
    delivered: impl AsyncFn() -> Vec<serde_json::Value>,
) {
    let mut job = queued_job(tenant, 2);
    job.status = JobStatus::Completed;
    job.succeeded = 2;
    let completed = JobEndEvent::of(&job);
    job.id = fresh_id();
    job.status = JobStatus::Cancelled;
    job.succeeded = 0;
    job.cancelled = 2;
    let cancelled = JobEndEvent::of(&job);
    for event in [&completed, &cancelled] {
        bus.put_event(event).await.unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let received = delivered().await;
        let found: Vec<_> = [&completed, &cancelled]
            .iter()
            .map(|event| {
                received
                    .iter()
                    .find(|r| r["detail"]["event_id"] == event.event_id.as_str())
                    .map(|r| (r["detail-type"].clone(), r["detail"].clone()))
            })
            .collect();
        if found.iter().all(Option::is_some) {
            for (event, found) in [&completed, &cancelled].iter().zip(found) {
                assert_eq!(
                    found,
                    Some((
                        json!(event.detail_type()),
                        serde_json::to_value(event).unwrap()
                    )),
                    "the event as put"
                );
            }
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "events put were not delivered in 30 s: {received:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
