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
    series["buckets"].as_array().unwrap().iter().find(|b| b["start"] == start.as_str()).unwrap_or_else(|| panic!("no bucket {start} in {series}"))
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
        let id = stack.create(&token, &body).await["id"].as_str().unwrap().to_string();
        jobs.push(id);
    }
    let mut ended = Vec::new();
    for id in &jobs {
        ended.push(stack.wait_until_done(&token, id, Duration::from_secs(120)).await);
    }
    let statuses: Vec<&str> = ended.iter().map(|j| j["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["completed", "completed", "failed"]);

    let reply = stack.send("GET", "/metrics", Some(&token), None).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let series = &reply.body;
    assert_eq!((series["tenant"].as_str(), series["buckets"].as_array().unwrap().len()), (Some(tenant.as_str()), 24));
    let total = &series["total"];
    assert_eq!(total["created"], 3);
    assert_eq!(total["ended"], json!({"completed": 2, "completed_with_errors": 0, "failed": 1, "cancelled": 0}));
    assert_eq!(total["items"], json!({"succeeded": 2, "failed": 2}));
    assert!(total["wait_ms"]["p95"].is_u64() && total["duration_ms"]["p50"].is_u64(), "{total}");
    // Each job in the hour it was created, and in the hour it ended.
    for job in &ended {
        assert!(bucket(series, job["created_at"].as_str().unwrap())["created"].as_u64().unwrap() >= 1);
        let end = bucket(series, job["completed_at"].as_str().unwrap());
        assert!(end["ended"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum::<u64>() >= 1);
    }
    let by_type = stack.send("GET", "/metrics?type=profile_field_update", Some(&token), None).await;
    assert_eq!((by_type.body["total"]["created"].as_u64(), by_type.body["total"]["items"]["failed"].as_u64()), (Some(1), Some(2)));

    let admin = stack.token("ops", "root", true);
    let theirs = stack.send("GET", &format!("/metrics?tenant={tenant}"), Some(&admin), None).await;
    assert_eq!(theirs.body["total"], *total, "an admin reads the same series");
    let other = stack.token(&fresh_tenant("metricsother"), "bob", false);
    assert_eq!(stack.send("GET", &format!("/metrics?tenant={tenant}"), Some(&other), None).await.status, 404);
    let own = stack.send("GET", "/metrics", Some(&other), None).await;
    assert_eq!(own.body["total"]["created"], 0, "a new tenant has nothing of another's");
}
