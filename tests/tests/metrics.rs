//! `GET /metrics` through the deployed stack: after jobs of known outcomes end, a fresh
//! tenant's series holds exactly their counts, in the hours they were created and ended;
//! another tenant gets nothing of it.

use std::time::Duration;

use e2e::{Stack, embedding_job, fresh_tenant, json};
use serde_json::Value;

fn hour_start(at: &str) -> String {
    format!("{}:00:00Z", &at[..13])
}

fn bucket<'a>(series: &'a Value, at: &str) -> &'a Value {
    let start = hour_start(at);
    series["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["start"] == start.as_str())
        .unwrap_or_else(|| panic!("no bucket {start} in {series}"))
}

#[tokio::test]
async fn a_tenant_s_series_counts_exactly_its_jobs_in_the_right_hours() {
    let stack = Stack::load().await;
    let tenant = fresh_tenant("metrics");
    let token = stack.token(&tenant, "alice", false);
    let mut jobs = Vec::new();
    for body in [
        embedding_job("one"),
        embedding_job("two"),
        json!({"type": "profile_field_update", "params": {"field": "locale", "value": "de", "user_ids": ["ghost-a", "ghost-b"]}}),
    ] {
        let id = stack.create(&token, &body).await["id"]
            .as_str()
            .unwrap()
            .to_string();
        jobs.push(id);
    }
    let mut ended = Vec::new();
    for id in &jobs {
        ended.push(
            stack
                .wait_until_done(&token, id, Duration::from_secs(120))
                .await,
        );
    }
    let statuses: Vec<&str> = ended
        .iter()
        .map(|j| j["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["completed", "completed", "failed"]);

    let reply = stack.send("GET", "/metrics", Some(&token), None).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let series = &reply.body;
    assert_eq!(
        (
            series["tenant"].as_str(),
            series["buckets"].as_array().unwrap().len()
        ),
        (Some(tenant.as_str()), 25),
        "the last 24 hours: 25 hourly buckets unless now is on the hour"
    );
    let total = &series["total"];
    assert_eq!(total["created"], 3);
    assert_eq!(
        total["ended"],
        json!({"completed": 2, "completed_with_errors": 0, "failed": 1, "cancelled": 0})
    );
    assert_eq!(total["items"], json!({"succeeded": 2, "failed": 2}));
    assert!(
        total["wait_ms"]["p95"].is_u64() && total["duration_ms"]["p50"].is_u64(),
        "{total}"
    );
    // Each job in the hour it was created, and in the hour it ended.
    for job in &ended {
        assert!(
            bucket(series, job["created_at"].as_str().unwrap())["created"]
                .as_u64()
                .unwrap()
                >= 1
        );
        let end = bucket(series, job["completed_at"].as_str().unwrap());
        assert!(
            end["ended"]
                .as_object()
                .unwrap()
                .values()
                .map(|v| v.as_u64().unwrap())
                .sum::<u64>()
                >= 1
        );
    }
    let by_type = stack
        .send(
            "GET",
            "/metrics?type=profile_field_update",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        (
            by_type.body["total"]["created"].as_u64(),
            by_type.body["total"]["items"]["failed"].as_u64()
        ),
        (Some(1), Some(2))
    );

    let admin = stack.token("ops", "root", true);
    let theirs = stack
        .send(
            "GET",
            &format!("/metrics?tenant={tenant}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        theirs.body["total"], *total,
        "an admin reads the same series"
    );
    let other = stack.token(&fresh_tenant("metricsother"), "bob", false);
    assert_eq!(
        stack
            .send(
                "GET",
                &format!("/metrics?tenant={tenant}"),
                Some(&other),
                None
            )
            .await
            .status,
        403,
        "naming another tenant"
    );
    let own = stack.send("GET", "/metrics", Some(&other), None).await;
    assert_eq!(
        own.body["total"]["created"], 0,
        "a new tenant has nothing of another's"
    );
}

/// Jobs cancelled right after their creation race their own plan message: the API's end
/// hook and the worker's handling of the plan both meet the pending end. Each end is
/// counted once, and a job cancelled while queued has all its items cancelled.
#[tokio::test]
async fn jobs_cancelled_while_queued_are_counted_once_with_every_item_cancelled() {
    let stack = Stack::load().await;
    let tenant = fresh_tenant("qcancel");
    let token = stack.token(&tenant, "alice", false);
    let body = json!({"type": "profile_field_update", "params": {"field": "nickname", "value": "z", "user_ids": ["a", "b", "c"]}});
    let mut queued_cancels = Vec::new();
    for _ in 0..12 {
        let id = stack.create(&token, &body).await["id"]
            .as_str()
            .unwrap()
            .to_string();
        let cancel = stack
            .send("POST", &format!("/jobs/{id}/cancel"), Some(&token), None)
            .await;
        assert_eq!(cancel.status, 202, "{}", cancel.body);
        if cancel.body["status"] == "cancelled" {
            assert_eq!(
                cancel.body["progress"]["cancelled"], 3,
                "cancelled while queued: every item, {}",
                cancel.body
            );
            queued_cancels.push(id);
        }
    }
    let mut ended = 0;
    for attempt in 0.. {
        let series = stack.send("GET", "/metrics", Some(&token), None).await.body;
        ended = series["total"]["ended"]["cancelled"].as_u64().unwrap_or(0)
            + series["total"]["ended"]["failed"].as_u64().unwrap_or(0);
        if ended >= 12 || attempt == 60 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The plan messages of the cancelled jobs are handled within a second or two.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let series = stack.send("GET", "/metrics", Some(&token), None).await.body;
    let counted = series["total"]["ended"]["cancelled"].as_u64().unwrap()
        + series["total"]["ended"]["failed"].as_u64().unwrap();
    assert_eq!(
        (ended, counted),
        (12, 12),
        "12 jobs ended, each counted once: {}",
        series["total"]
    );
    for id in &queued_cancels {
        let items = stack
            .send("GET", &format!("/jobs/{id}/items"), Some(&token), None)
            .await
            .body;
        let outcomes: Vec<&str> = items["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["outcome"].as_str().unwrap())
            .collect();
        assert_eq!(outcomes, ["cancelled"; 3], "{items}");
    }
    if let Some(id) = queued_cancels.first() {
        let retry = stack
            .send("POST", &format!("/jobs/{id}/retry"), Some(&token), None)
            .await;
        assert_eq!(
            (retry.status, retry.body["progress"]["total"].as_u64()),
            (202, Some(3)),
            "{}",
            retry.body
        );
    }
}

#[tokio::test]
async fn the_documented_ranges_are_accepted_and_a_millisecond_more_is_refused() {
    let stack = Stack::load().await;
    let token = stack.token(&fresh_tenant("mrange"), "alice", false);
    let now = jobs_core::clock::now();
    let at = |d: Duration| jobs_core::clock::format(now - d);
    let to = jobs_core::clock::format(now);
    let (week, month, ms) = (
        Duration::from_secs(168 * 3600),
        Duration::from_secs(31 * 86_400),
        Duration::from_millis(1),
    );
    for (query, status) in [
        (format!("from={}&to={to}", at(week)), 200),
        (format!("from={}&to={to}", at(week + ms)), 400),
        (format!("bucket=day&from={}&to={to}", at(month)), 200),
        (format!("bucket=day&from={}&to={to}", at(month + ms)), 400),
    ] {
        let reply = stack
            .send("GET", &format!("/metrics?{query}"), Some(&token), None)
            .await;
        assert_eq!(reply.status, status, "{query}: {}", reply.body);
    }
    let default = stack.send("GET", "/metrics", Some(&token), None).await.body;
    let from = jobs_core::clock::parse(default["from"].as_str().unwrap()).unwrap();
    let to = jobs_core::clock::parse(default["to"].as_str().unwrap()).unwrap();
    assert_eq!(
        (to - from).whole_hours(),
        24,
        "the default is the last 24 hours: {default}"
    );
}
