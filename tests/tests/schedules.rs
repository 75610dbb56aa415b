//! Schedules in LocalStack: the stack's own rule ticks once a minute; a missed schedule
//! runs once and its job really removes idle sessions; a trigger delivered several times at
//! once starts one job; disabled and deleted schedules start nothing; run now; every
//! schedule operation is tenant-scoped; the tick finishes job ends left pending.
//!
//! Direct invocations (`tick`) carry the fixture's event id; the rule's carry their own.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use e2e::{Stack, fresh_tenant, json};
use infra::seed::{put_items, session};
use serde_json::Value;

/// LocalStack's rule fires once a minute, up to a minute early or late.
const TICK_WITHIN: Duration = Duration::from_secs(150);
const DONE_WITHIN: Duration = Duration::from_secs(180);
const SCHEDULED_EVENT: &str =
    include_str!("../../functions/scheduler/tests/fixtures/scheduled-event.json");

fn hourly_idle_sweep(tenant: &str) -> Value {
    json!({"name": "close idle sessions", "type": "session_termination", "tenant": tenant, "params": {"idle_for_seconds": 1800}, "cron": "0 * * * *"})
}

async fn create_schedule(stack: &Stack, token: &str, body: &Value) -> Value {
    let reply = stack
        .send("POST", "/schedules", Some(token), Some(body))
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body
}

/// Writes `set` (`SET a = :a, …`, each value a string) on the item `pk`/`sk`, as a test
/// fixture: what a crash or a stale index would have left.
async fn set_attributes(
    stack: &Stack,
    (pk, sk): (String, &str),
    condition: Option<&str>,
    set: &[(&str, String)],
) {
    let expression = set
        .iter()
        .map(|(name, _)| format!("{name} = :{name}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut request = stack
        .dynamo
        .update_item()
        .table_name(stack.table())
        .key("pk", AttributeValue::S(pk))
        .key("sk", AttributeValue::S(sk.into()))
        .update_expression(format!("SET {expression}"))
        .set_condition_expression(condition.map(str::to_string));
    for (name, value) in set {
        request = request
            .expression_attribute_values(format!(":{name}"), AttributeValue::S(value.clone()));
    }
    request.send().await.expect("UpdateItem fixture");
}

fn ago(duration: Duration) -> String {
    jobs_core::clock::format(jobs_core::clock::now() - duration)
}

/// Moves a schedule's due time into the past, as if the stack had been down since then.
async fn missed_since(stack: &Stack, id: &str, before: Duration) {
    set_attributes(
        stack,
        (format!("SCHED#{id}"), "SCHED"),
        Some("attribute_exists(sched_due)"),
        &[("next_run_at", ago(before))],
    )
    .await;
}

/// Puts a disabled or deleted schedule back in the due index with a past due time, as a
/// stale index entry would be: the tick must still start nothing.
async fn stale_due_entry(stack: &Stack, id: &str) {
    let set = [
        ("next_run_at", ago(Duration::from_secs(120))),
        ("sched_due", "0".to_string()),
    ];
    set_attributes(stack, (format!("SCHED#{id}"), "SCHED"), None, &set).await;
}

/// One tick, invoked directly with the rule's event (as a repeated or concurrent delivery).
async fn tick(stack: &Stack) -> Value {
    let lambda = aws_sdk_lambda::Client::new(&stack.config);
    let out = lambda
        .invoke()
        .function_name(&stack.outputs["SchedulerFunctionName"])
        .payload(aws_sdk_lambda::primitives::Blob::new(SCHEDULED_EVENT))
        .send()
        .await
        .expect("Invoke the scheduler");
    let body: Value = out
        .payload
        .map(|p| serde_json::from_slice(p.as_ref()).unwrap_or(Value::Null))
        .unwrap_or(Value::Null);
    assert_eq!(out.function_error, None, "the tick failed: {body}");
    body
}

async fn schedule(stack: &Stack, token: &str, id: &str) -> Value {
    let reply = stack
        .send("GET", &format!("/schedules/{id}"), Some(token), None)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

async fn tenant_jobs(stack: &Stack, token: &str) -> Vec<String> {
    stack.list_all(token, "").await.concat()
}

#[tokio::test]
async fn the_stacks_rule_invokes_the_scheduler_once_a_minute() {
    let stack = Stack::load().await;
    let since = jobs_core::clock::now().unix_timestamp() * 1000;
    let fixture_id: Value = serde_json::from_str::<Value>(SCHEDULED_EVENT).unwrap()["id"].clone();
    let logs = aws_sdk_cloudwatchlogs::Client::new(&stack.config);
    let group = format!("/aws/lambda/{}", stack.outputs["SchedulerFunctionName"]);
    let deadline = Instant::now() + TICK_WITHIN;
    loop {
        let out = logs
            .filter_log_events()
            .log_group_name(&group)
            .start_time(since)
            .send()
            .await
            .expect("FilterLogEvents");
        let rule_ticks = out
            .events()
            .iter()
            .filter_map(|e| e.message())
            .filter_map(|m| serde_json::from_str::<Value>(m.trim()).ok())
            .filter(|line| line["fields"]["message"] == "tick")
            .filter(|line| {
                !line["fields"]["event_id"]
                    .as_str()
                    .unwrap_or_default()
                    .contains(fixture_id.as_str().unwrap_or("?"))
            })
            .count();
        if rule_ticks > 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no tick from the rule in {group} within {TICK_WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

#[tokio::test]
async fn a_missed_schedule_runs_once_and_its_job_closes_the_idle_sessions() {
    let stack = Stack::load().await;
    let tenant = fresh_tenant("sched");
    let token = stack.token(&tenant, "alice", false);
    let now = jobs_core::clock::now().unix_timestamp();
    put_items(
        &stack.dynamo,
        &stack.outputs["SessionsTableName"],
        vec![
            session(&tenant, "u1-idle", "u1", now - 7200),
            session(&tenant, "u1-fresh", "u1", now - 60),
            session(&tenant, "u2-idle", "u2", now - 3600),
        ],
    )
    .await
    .expect("seed sessions");
    let created = create_schedule(&stack, &token, &hourly_idle_sweep(&tenant)).await;
    let id = created["id"].as_str().unwrap().to_string();
    // Down for three hourly due times: one run, for the earliest.
    missed_since(&stack, &id, Duration::from_secs(3 * 3600 + 60)).await;

    let deadline = Instant::now() + TICK_WITHIN;
    let run = loop {
        let now = schedule(&stack, &token, &id).await;
        if let Some(run) = now["runs"].as_array().and_then(|r| r.first()) {
            break run.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no tick ran the schedule within {TICK_WITHIN:?}: {now}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    assert_eq!(
        (run["trigger"].as_str(), run["outcome"].as_str()),
        (Some("schedule"), Some("started")),
        "{run}"
    );
    let job_id = run["job_id"].as_str().unwrap();
    let done = stack.wait_until_done(&token, job_id, DONE_WITHIN).await;
    assert_eq!(
        (
            done["status"].as_str(),
            done["schedule_id"].as_str(),
            done["user"].as_str()
        ),
        (Some("completed"), Some(id.as_str()), Some("alice")),
        "{done}"
    );
    assert_eq!(
        stack.sessions(&tenant).await,
        ["u1-fresh"],
        "sessions idle for over 30 minutes are gone"
    );

    // More ticks, delivered at once: the due time has moved on, nothing more starts.
    let ticks = futures::future::join_all((0..3).map(|_| tick(&stack))).await;
    assert!(ticks.iter().all(|t| t["started"] == 0), "{ticks:?}");
    assert_eq!(
        tenant_jobs(&stack, &token).await,
        [job_id],
        "one job for the missed window"
    );
    let after = schedule(&stack, &token, &id).await;
    let next = jobs_core::clock::parse(after["next_run_at"].as_str().unwrap()).unwrap();
    assert!(
        next > jobs_core::clock::now(),
        "continues from the next hour: {after}"
    );
    let events = stack
        .send("GET", &format!("/jobs/{job_id}/events"), Some(&token), None)
        .await
        .body;
    let created = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "created")
        .unwrap()
        .clone();
    assert_eq!(
        (
            created["actor"]["sub"].as_str(),
            created["schedule_id"].as_str()
        ),
        (Some(format!("schedule:{id}").as_str()), Some(id.as_str())),
        "{created}"
    );
}

#[tokio::test]
async fn a_due_time_delivered_to_concurrent_ticks_starts_one_job() {
    let stack = Stack::load().await;
    let tenant = fresh_tenant("schedtwice");
    let token = stack.token(&tenant, "alice", false);
    let mut ids = Vec::new();
    for _ in 0..3 {
        let created = create_schedule(&stack, &token, &hourly_idle_sweep(&tenant)).await;
        ids.push(created["id"].as_str().unwrap().to_string());
    }
    for id in &ids {
        missed_since(&stack, id, Duration::from_secs(120)).await;
    }
    // A tick runs every tenant's due schedules, and the stack's own rule may run some of
    // these first: what counts is one job and one run per schedule.
    let ticks = futures::future::join_all((0..4).map(|_| tick(&stack))).await;
    let jobs = tenant_jobs(&stack, &token).await;
    assert_eq!(jobs.len(), 3, "one job per schedule: {jobs:?} {ticks:?}");
    for id in &ids {
        let now = schedule(&stack, &token, id).await;
        assert_eq!(now["runs"].as_array().map(Vec::len), Some(1), "{now}");
    }
}

#[tokio::test]
async fn disabled_and_deleted_schedules_start_nothing_and_run_now_starts_one() {
    let stack = Stack::load().await;
    let tenant = fresh_tenant("schedoff");
    let token = stack.token(&tenant, "alice", false);
    let disabled = create_schedule(&stack, &token, &hourly_idle_sweep(&tenant)).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let deleted = create_schedule(&stack, &token, &hourly_idle_sweep(&tenant)).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let reply = stack
        .send(
            "PATCH",
            &format!("/schedules/{disabled}"),
            Some(&token),
            Some(&json!({"enabled": false})),
        )
        .await;
    assert_eq!(
        (reply.status, reply.body["next_run_at"].clone()),
        (200, Value::Null),
        "{}",
        reply.body
    );
    assert_eq!(
        stack
            .send(
                "DELETE",
                &format!("/schedules/{deleted}"),
                Some(&token),
                None
            )
            .await
            .status,
        204
    );
    for id in [&disabled, &deleted] {
        stale_due_entry(&stack, id).await;
    }
    tick(&stack).await;
    assert!(
        tenant_jobs(&stack, &token).await.is_empty(),
        "nothing started"
    );
    assert_eq!(
        stack
            .send("GET", &format!("/schedules/{deleted}"), Some(&token), None)
            .await
            .status,
        404
    );
    let listed = stack
        .send("GET", "/schedules", Some(&token), None)
        .await
        .body;
    assert_eq!(e2e::ids(&listed["items"]), [disabled.as_str()]);

    let run = stack
        .send(
            "POST",
            &format!("/schedules/{disabled}/run"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        (run.status, run.body["schedule_id"].as_str()),
        (202, Some(disabled.as_str())),
        "{}",
        run.body
    );
    let done = stack
        .wait_until_done(&token, run.body["id"].as_str().unwrap(), DONE_WITHIN)
        .await;
    assert_eq!(done["status"], "completed", "{done}");
    let now = schedule(&stack, &token, &disabled).await;
    assert_eq!(
        (
            now["runs"][0]["trigger"].as_str(),
            now["runs"][0]["job_id"].as_str()
        ),
        (Some("manual"), run.body["id"].as_str())
    );
    assert_eq!(tenant_jobs(&stack, &token).await.len(), 1);
}

#[tokio::test]
async fn every_schedule_operation_is_scoped_to_the_tenant() {
    let stack = Stack::load().await;
    let (acme, globex) = (fresh_tenant("schedacme"), fresh_tenant("schedglobex"));
    let alice = stack.token(&acme, "alice", false);
    let bob = stack.token(&globex, "bob", false);
    let id = create_schedule(&stack, &alice, &hourly_idle_sweep(&acme)).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/schedules/{id}");
    for (method, path, body) in [
        ("GET", path.clone(), None),
        ("PATCH", path.clone(), Some(json!({"enabled": false}))),
        ("POST", format!("{path}/run"), None),
        ("DELETE", path.clone(), None),
    ] {
        let reply = stack.send(method, &path, Some(&bob), body.as_ref()).await;
        assert_eq!(
            (reply.status, reply.error_code()),
            (404, Some("not_found")),
            "{method} {path}: {}",
            reply.body
        );
    }
    assert_eq!(
        stack.send("GET", "/schedules", Some(&bob), None).await.body["items"],
        json!([])
    );
    assert_eq!(
        stack
            .send(
                "GET",
                &format!("/schedules?tenant={acme}"),
                Some(&bob),
                None
            )
            .await
            .status,
        403
    );
    let reply = stack
        .send(
            "POST",
            "/schedules",
            Some(&bob),
            Some(&hourly_idle_sweep(&acme)),
        )
        .await;
    assert_eq!((reply.status, reply.error_field()), (403, Some("tenant")));
    let admin = stack.token("ops", "root", true);
    let listed = stack
        .send(
            "GET",
            &format!("/schedules?tenant={acme}"),
            Some(&admin),
            None,
        )
        .await
        .body;
    assert_eq!(e2e::ids(&listed["items"]), [id.as_str()]);
    let untouched = schedule(&stack, &alice, &id).await;
    assert_eq!(
        (untouched["enabled"].as_bool(), untouched["runs"].clone()),
        (Some(true), json!([]))
    );
}

#[tokio::test]
async fn the_tick_finishes_a_job_end_left_pending() {
    let stack = Stack::load().await;
    let tenant = fresh_tenant("sweep");
    let token = stack.token(&tenant, "alice", false);
    let job = stack.create(&token, &e2e::embedding_job("swept")).await;
    let id = job["id"].as_str().unwrap();
    stack.wait_until_done(&token, id, DONE_WITHIN).await;
    let handled = |item: &Option<Value>| {
        item.as_ref()
            .is_some_and(|i| i.get("end_pending").is_none() && i.get("ending").is_none())
    };
    let deadline = Instant::now() + DONE_WITHIN;
    while !handled(&stack.job_item(id).await) {
        assert!(
            Instant::now() < deadline,
            "the worker never handled the job's end"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // As if its hook had failed three minutes ago, with no message left to run it again.
    let set = [
        ("end_pending", ago(Duration::from_secs(180))),
        ("ending", jobs_core::domain::record::end_shard(id)),
    ];
    set_attributes(&stack, (format!("JOB#{id}"), "JOB"), None, &set).await;
    let report = tick(&stack).await;
    assert!(
        handled(&stack.job_item(id).await),
        "the tick ran the hook to its end: {report}"
    );
    let events = stack
        .send("GET", &format!("/jobs/{id}/events"), Some(&token), None)
        .await
        .body;
    let ended = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "ended")
        .count();
    assert_eq!(ended, 1, "the end is recorded once: {events}");
}
