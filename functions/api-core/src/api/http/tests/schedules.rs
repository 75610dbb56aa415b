//! Schedules through the HTTP API and the scheduler's tick, over the in-memory adapters:
//! definitions and their validation, one job per due time (also for a repeated or
//! concurrent tick), catch-up, skip while the previous job runs, disabled and deleted
//! schedules, run now, refusals recorded, tenancy.

use time::Duration;

use super::*;
use jobs_core::domain::job::JobStatus;
use jobs_core::ports::ScheduleStore;

async fn send(
    api: &Api,
    auth: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = request(method, path, Some(auth));
    if let Some(body) = body {
        req.body = serde_json::to_vec(&body).unwrap();
    }
    call(api, req).await
}

fn idle_sessions() -> Value {
    json!({"name": "idle sessions", "type": "session_termination", "params": {"user_ids": ["u1", "u2"]}, "cron": "0 * * * *"})
}

async fn create(api: &Api, auth: &str, body: Value) -> Value {
    let (status, schedule) = send(api, auth, "POST", "/schedules", Some(body)).await;
    assert_eq!(status, 201, "{schedule}");
    schedule
}

/// Moves schedule `id`'s due time to `at`, as if the stack had been down since then.
async fn due_at(api: &Api, id: &str, at: OffsetDateTime) {
    let mut schedule = api.store.get_schedule(id).await.unwrap().unwrap();
    let expected = schedule.version;
    schedule.next_run_at = Some(clock::format(at));
    schedule.version += 1;
    schedule.index();
    assert!(
        api.store
            .save_schedule(&schedule, Some(expected))
            .await
            .unwrap()
    );
}

fn jobs_of(api: &Api, schedule: &str) -> Vec<JobRecord> {
    api.store
        .job_ids()
        .iter()
        .filter_map(|id| api.store.job(id))
        .filter(|j| j.schedule_id.as_deref() == Some(schedule))
        .collect()
}

use time::OffsetDateTime;

#[tokio::test]
async fn a_schedule_is_created_with_its_next_run_read_back_listed_and_previewed() {
    let api = api();
    let schedule = create(&api, &member(), idle_sessions()).await;
    let id = schedule["id"].as_str().unwrap();
    assert_eq!(
        (
            schedule["tenant"].as_str(),
            schedule["owner"].as_str(),
            schedule["enabled"].as_bool(),
            schedule["timezone"].as_str()
        ),
        (Some("acme"), Some("alice"), Some(true), Some("UTC"))
    );
    let next = clock::parse(schedule["next_run_at"].as_str().unwrap()).unwrap();
    let now = clock::now();
    assert!(
        next > now && next - now <= Duration::hours(1) && next.minute() == 0 && next.second() == 0,
        "the next full hour: {next}"
    );

    let (status, read) = send(&api, &member(), "GET", &format!("/schedules/{id}"), None).await;
    assert_eq!(
        (status, read["params"].clone(), read["runs"].clone()),
        (200, json!({"user_ids": ["u1", "u2"]}), json!([]))
    );
    for _ in 0..2 {
        create(&api, &member(), idle_sessions()).await;
    }
    let mut req = request("GET", "/schedules", Some(&member()));
    req.query = vec![("limit".into(), "2".into())];
    let (_, first) = call(&api, req.clone()).await;
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    assert_eq!(first["items"][0]["id"].as_str(), Some(id), "oldest first");
    req.query.push((
        "cursor".into(),
        first["next_cursor"].as_str().unwrap().into(),
    ));
    let (_, second) = call(&api, req).await;
    assert_eq!(second["items"].as_array().unwrap().len(), 1);

    let mut preview = request("GET", "/schedules/preview", Some(&member()));
    preview.query = vec![
        ("cron".into(), "0 2 * * *".into()),
        ("timezone".into(), "Europe/Berlin".into()),
    ];
    let (status, runs) = call(&api, preview.clone()).await;
    assert_eq!(status, 200, "{runs}");
    let runs: Vec<OffsetDateTime> = runs["next_runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| clock::parse(r.as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(runs.len(), 5);
    assert!(
        runs.windows(2)
            .all(|w| (w[1] - w[0]).whole_hours() >= 23 && (w[1] - w[0]).whole_hours() <= 25),
        "daily: {runs:?}"
    );
    preview.query = vec![("cron".into(), "* * * * *".into())];
    let (status, err) = call(&api, preview).await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (400, Some("cron"))
    );
}

#[tokio::test]
async fn bad_definitions_are_refused_naming_the_field() {
    let api = api();
    let with = |patch: Value| {
        let mut body = idle_sessions();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        body
    };
    for (body, field) in [
        (with(json!({"cron": "* * * * *"})), "cron"),
        (with(json!({"cron": "0 2 * *"})), "cron"),
        (
            with(json!({"cron": null, "rate": "rate(1 minute)"})),
            "rate",
        ),
        (with(json!({"rate": "rate(1 hour)"})), "cron"),
        (with(json!({"cron": null})), "cron"),
        (with(json!({"timezone": "Mars/Olympus"})), "timezone"),
        (with(json!({"name": " "})), "name"),
        (with(json!({"type": "mining"})), "type"),
        (with(json!({"params": {"user_ids": []}})), "params.user_ids"),
        (
            with(
                json!({"params": {"user_ids": (0..3000).map(|i| format!("user-{i}")).collect::<Vec<_>>()}}),
            ),
            "params",
        ),
        (
            with(
                json!({"type": "bulk_message_sending", "params": {"channel": "email", "from": "spam@unverified.example", "subject": "s", "body": "b", "recipients": ["a@example.com"]}}),
            ),
            "params.from",
        ),
        (with(json!({"every": "hour"})), "every"),
    ] {
        let (status, err) = send(&api, &member(), "POST", "/schedules", Some(body.clone())).await;
        assert_eq!(
            (status, err["error"]["field"].as_str()),
            (422, Some(field)),
            "{body}: {err}"
        );
    }
    let (status, err) = send(
        &api,
        &member(),
        "POST",
        "/schedules",
        Some(with(json!({"tenant": "globex"}))),
    )
    .await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (403, Some("tenant"))
    );
    let schedule = create(&api, &member(), idle_sessions()).await;
    let path = format!("/schedules/{}", schedule["id"].as_str().unwrap());
    for (patch, field) in [
        (json!({"cron": "0 * * * *", "rate": "rate(1 hour)"}), "cron"),
        (json!({"rate": "rate(2 minutes)"}), "rate"),
        (json!({"type": "ai_text_embedding"}), "type"),
    ] {
        let (status, err) = send(&api, &member(), "PATCH", &path, Some(patch.clone())).await;
        assert_eq!(
            (status, err["error"]["field"].as_str()),
            (422, Some(field)),
            "{patch}: {err}"
        );
    }
}

#[tokio::test]
async fn a_due_time_starts_one_job_as_the_owner_with_the_schedule_as_actor_however_often_the_tick_fires()
 {
    let api = api();
    let schedule = create(&api, &member(), idle_sessions()).await;
    let id = schedule["id"].as_str().unwrap().to_string();
    let now = clock::now();
    // Three hours missed: one run, for the earliest, then the next hour after now.
    due_at(&api, &id, now - Duration::hours(3)).await;
    let (a, b) = tokio::join!(api.run_due_schedules(now), api.run_due_schedules(now));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.started + b.started, 1, "{a:?} {b:?}");
    let again = api.run_due_schedules(now).await.unwrap();
    assert_eq!(
        again,
        crate::scheduler::TickReport::default(),
        "nothing is due any more"
    );

    let jobs = jobs_of(&api, &id);
    assert_eq!(jobs.len(), 1, "one job per due time");
    let job = &jobs[0];
    assert_eq!(
        (job.user.as_str(), job.tenant.as_str(), job.job_type),
        ("alice", "acme", JobType::SessionTermination)
    );
    let created = api
        .observers
        .audit()
        .log()
        .entries()
        .into_iter()
        .find(|r| r.event.job_id.as_ref() == Some(&job.id))
        .unwrap();
    assert_eq!(
        created.event.actor.as_ref().map(|a| a.sub.as_str()),
        Some(format!("schedule:{id}").as_str())
    );
    assert_eq!(
        created.event.origin.schedule_id.as_deref(),
        Some(id.as_str())
    );

    let (_, read) = send(&api, &member(), "GET", &format!("/schedules/{id}"), None).await;
    assert_eq!(read["runs"].as_array().unwrap().len(), 1);
    assert_eq!(
        (
            read["runs"][0]["outcome"].as_str(),
            read["runs"][0]["trigger"].as_str(),
            read["runs"][0]["job_id"].as_str()
        ),
        (Some("started"), Some("schedule"), Some(job.id.as_str()))
    );
    assert_eq!(
        read["runs"][0]["due_at"].as_str(),
        Some(clock::format(now - Duration::hours(3)).as_str())
    );
    let next = clock::parse(read["next_run_at"].as_str().unwrap()).unwrap();
    assert!(
        next > now && next - now <= Duration::hours(1),
        "continues after now: {next}"
    );
    let (_, view) = send(&api, &member(), "GET", &format!("/jobs/{}", job.id), None).await;
    assert_eq!(view["schedule_id"].as_str(), Some(id.as_str()));
}

#[tokio::test]
async fn a_due_time_is_skipped_while_the_previous_job_runs_and_a_refusal_is_the_runs_outcome() {
    let api = api();
    let schedule = create(&api, &member(), idle_sessions()).await;
    let id = schedule["id"].as_str().unwrap().to_string();
    let now = clock::now();
    due_at(&api, &id, now - Duration::minutes(1)).await;
    assert_eq!(api.run_due_schedules(now).await.unwrap().started, 1);
    // The job is still queued an hour later.
    let later = now + Duration::hours(1);
    let report = api.run_due_schedules(later).await.unwrap();
    assert_eq!((report.started, report.skipped), (0, 1));
    assert_eq!(jobs_of(&api, &id).len(), 1);
    let stored = api.store.get_schedule(&id).await.unwrap().unwrap();
    assert_eq!(
        stored.runs[0].outcome,
        jobs_core::domain::record::RunOutcome::Skipped
    );
    assert_eq!(stored.runs[0].job_id, stored.last_job_id);

    // A sender no longer verified: the run is refused, recorded, and the schedule moves on.
    let bulk = json!({"name": "digest", "type": "bulk_message_sending", "params": {"channel": "email", "from": "ops@example.com", "subject": "s", "body": "b", "recipients": ["a@example.com"]}, "rate": "rate(1 day)"});
    let digest = create(&api, &member(), bulk).await;
    let digest_id = digest["id"].as_str().unwrap().to_string();
    // SES no longer verifies the domain the example params send from.
    api.senders.identities.lock().unwrap().clear();
    due_at(&api, &digest_id, now - Duration::minutes(1)).await;
    let report = api.run_due_schedules(now).await.unwrap();
    assert_eq!(report.refused, 1, "{report:?}");
    let (_, read) = send(
        &api,
        &member(),
        "GET",
        &format!("/schedules/{digest_id}"),
        None,
    )
    .await;
    assert_eq!(
        (
            read["runs"][0]["outcome"].as_str(),
            read["runs"][0]["error"]["field"].as_str()
        ),
        (Some("refused"), Some("params.from"))
    );
    assert!(
        read["next_run_at"]
            .as_str()
            .is_some_and(|n| n > clock::format(now).as_str())
    );
    assert!(jobs_of(&api, &digest_id).is_empty());
}

#[tokio::test]
async fn disabled_and_deleted_schedules_start_nothing_and_run_now_starts_one() {
    let api = api();
    let schedule = create(&api, &member(), idle_sessions()).await;
    let id = schedule["id"].as_str().unwrap().to_string();
    let path = format!("/schedules/{id}");
    let (status, disabled) = send(
        &api,
        &member(),
        "PATCH",
        &path,
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!(
        (
            status,
            disabled["enabled"].as_bool(),
            disabled["next_run_at"].clone()
        ),
        (200, Some(false), Value::Null)
    );
    assert!(
        api.store
            .get_schedule(&id)
            .await
            .unwrap()
            .unwrap()
            .sched_due
            .is_none(),
        "out of the due index"
    );
    let far = clock::now() + Duration::days(3);
    assert_eq!(api.run_due_schedules(far).await.unwrap().due, 0);

    let (status, run) = send(&api, &member(), "POST", &format!("{path}/run"), None).await;
    assert_eq!(
        (status, run["schedule_id"].as_str(), run["user"].as_str()),
        (202, Some(id.as_str()), Some("alice"))
    );
    let (_, read) = send(&api, &member(), "GET", &path, None).await;
    assert_eq!(
        (
            read["runs"][0]["trigger"].as_str(),
            read["runs"][0]["job_id"].as_str()
        ),
        (Some("manual"), run["id"].as_str())
    );

    let (status, enabled) = send(
        &api,
        &member(),
        "PATCH",
        &path,
        Some(json!({"enabled": true, "cron": "30 2 * * *", "timezone": "Europe/Berlin"})),
    )
    .await;
    assert_eq!(status, 200, "{enabled}");
    assert!(enabled["next_run_at"].as_str().is_some());
    assert_eq!(send(&api, &member(), "DELETE", &path, None).await.0, 204);
    assert_eq!(send(&api, &member(), "GET", &path, None).await.0, 404);
    assert_eq!(
        send(&api, &member(), "POST", &format!("{path}/run"), None)
            .await
            .0,
        404
    );
    assert_eq!(
        api.run_due_schedules(far).await.unwrap().due,
        0,
        "out of the due index"
    );
    let (_, listed) = send(&api, &member(), "GET", "/schedules", None).await;
    assert_eq!(listed["items"], json!([]));
    assert_eq!(jobs_of(&api, &id).len(), 1, "only the manual run");
}

#[tokio::test]
async fn another_tenants_schedules_are_invisible_to_every_operation() {
    let api = api();
    let schedule = create(&api, &member(), idle_sessions()).await;
    let path = format!("/schedules/{}", schedule["id"].as_str().unwrap());
    let bob = token("globex", "bob", Role::Operator);
    assert_eq!(send(&api, &bob, "GET", &path, None).await.0, 404);
    assert_eq!(
        send(&api, &bob, "PATCH", &path, Some(json!({"enabled": false})))
            .await
            .0,
        404
    );
    assert_eq!(
        send(&api, &bob, "POST", &format!("{path}/run"), None)
            .await
            .0,
        404
    );
    assert_eq!(send(&api, &bob, "DELETE", &path, None).await.0, 404);
    let (_, listed) = send(&api, &bob, "GET", "/schedules", None).await;
    assert_eq!(listed["items"], json!([]));
    let mut req = request("GET", "/schedules", Some(&bob));
    req.query = vec![("tenant".into(), "acme".into())];
    assert_eq!(call(&api, req.clone()).await.0, 403);
    req.headers.retain(|(n, _)| n != "authorization");
    req.headers.push((
        "authorization".into(),
        token("ops", "root", Role::PlatformAdmin),
    ));
    let (status, listed) = call(&api, req).await;
    assert_eq!(
        (status, listed["items"].as_array().map(Vec::len)),
        (200, Some(1)),
        "admins list any tenant"
    );
    assert_eq!(
        api.store
            .get_schedule(schedule["id"].as_str().unwrap())
            .await
            .unwrap()
            .unwrap()
            .version,
        1,
        "nothing changed"
    );
    assert!(
        jobs_of(&api, schedule["id"].as_str().unwrap())
            .iter()
            .all(|j| j.status == JobStatus::Queued)
    );
}

#[tokio::test]
async fn the_tick_finishes_a_job_end_whose_hook_failed_with_no_message_left() {
    let api = api();
    // The creation cannot be recorded: the API fails the job, and its hook fails too.
    api.observers
        .audit()
        .log()
        .broken
        .store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(post(&api, &member(), embedding_job()).await.0, 503);
    api.observers
        .audit()
        .log()
        .broken
        .store(false, std::sync::atomic::Ordering::Relaxed);
    let id = api.store.job_ids().pop().unwrap();
    assert!(api.store.job(&id).unwrap().end_pending.is_some());
    let now = clock::now();
    assert_eq!(
        api.tick(now).await.unwrap().ends_handled,
        0,
        "a fresh end is left to its writer"
    );
    let later = now + Duration::seconds(jobs_core::domain::ended::SWEEP_AFTER_SECONDS + 1);
    assert_eq!(api.tick(later).await.unwrap().ends_handled, 1);
    let job = api.store.job(&id).unwrap();
    assert_eq!((job.end_pending.clone(), job.ending.clone()), (None, None));
    let ended = api
        .observers
        .audit()
        .log()
        .entries()
        .into_iter()
        .filter(|r| {
            r.event.job_id.as_ref() == Some(&id)
                && r.event.kind == jobs_core::domain::audit::EventKind::Ended
        })
        .count();
    assert_eq!(ended, 1);
    assert_eq!(
        api.observers
            .bus()
            .events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.id == id)
            .count(),
        1,
        "one event on the bus"
    );
    assert_eq!(
        api.tick(later).await.unwrap().ends_handled,
        0,
        "handled once"
    );
}

#[tokio::test]
async fn entries_that_start_nothing_never_hide_a_due_schedule_behind_them_and_leave_the_index() {
    let api = api();
    let now = clock::now();
    let mut ids = Vec::new();
    for _ in 0..30 {
        ids.push(
            create(&api, &member(), idle_sessions()).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    // 29 stopped schedules still in shard 0 of the due index (as a hand-written record
    // would be), due before the one live schedule: more than a page of them.
    for (i, id) in ids.iter().enumerate() {
        let mut schedule = api.store.get_schedule(id).await.unwrap().unwrap();
        let expected = schedule.version;
        schedule.enabled = i == 29;
        schedule.next_run_at = Some(clock::format(now - Duration::minutes(60 - i as i64)));
        schedule.sched_due = Some("0".into());
        schedule.version += 1;
        assert!(
            api.store
                .save_schedule(&schedule, Some(expected))
                .await
                .unwrap()
        );
    }
    let report = api.run_due_schedules(now).await.unwrap();
    assert_eq!((report.due, report.started), (30, 1), "{report:?}");
    assert_eq!(jobs_of(&api, &ids[29]).len(), 1);
    for id in &ids[..29] {
        assert_eq!(
            api.store.get_schedule(id).await.unwrap().unwrap().sched_due,
            None,
            "a stopped schedule left the index"
        );
    }
    assert_eq!(api.run_due_schedules(now).await.unwrap().due, 0);
}
