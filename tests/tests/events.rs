//! Completion events through the deployed stack: every job end puts one event on the
//! stack's EventBridge bus (source `jobs`), received here through a rule with an SQS
//! target; a repeat carries the same event id.

use std::collections::BTreeMap;
use std::time::Duration;

use e2e::{Stack, embedding_job, fresh_tenant, json, received_events, subscribe};
use serde_json::Value;

/// event id -> (detail-type, how many times received)
fn by_id(events: &[Value]) -> BTreeMap<String, (String, usize)> {
    let mut ids: BTreeMap<String, (String, usize)> = BTreeMap::new();
    for event in events {
        let id = event["detail"]["event_id"]
            .as_str()
            .unwrap_or("")
            .to_string();
        ids.entry(id)
            .or_insert_with(|| (event["detail-type"].as_str().unwrap_or("").to_string(), 0))
            .1 += 1;
    }
    ids
}

/// How long these jobs may wait to end. They run behind whatever embedding jobs earlier test
/// files left (bulk.rs's 300): with per-job release windows they wait for that backlog
/// (up to 124 s measured in CI), which is what tenant fairness will remove.
const QUEUE_BACKLOG_WAIT: Duration = Duration::from_secs(300);

#[tokio::test]
async fn each_job_end_is_one_event_id_with_its_detail_type_and_counts() {
    let stack = Stack::load().await;
    let tenant = fresh_tenant("events");
    let queue = subscribe(&stack, &tenant).await;
    let token = stack.token(&tenant, "alice", false);

    let completed = stack.create(&token, &embedding_job("an event")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let failed = stack.create(&token, &json!({"type": "profile_field_update", "params": {"field": "locale", "value": "de", "user_ids": ["ghost"]}})).await;
    let failed = failed["id"].as_str().unwrap().to_string();
    // Two chunks (100 documents each), so the end comes from whichever commits last.
    let big = stack.create(&token, &json!({"type": "ai_text_embedding", "params": {"documents": (0..200).map(|i| json!({"id": format!("d{i}"), "text": "words"})).collect::<Vec<_>>()}})).await;
    let big = big["id"].as_str().unwrap().to_string();
    let cancelled = stack.create(&token, &json!({"type": "ai_text_embedding", "params": {"documents": (0..3000).map(|i| json!({"id": format!("d{i}"), "text": "words"})).collect::<Vec<_>>()}})).await;
    let cancelled = cancelled["id"].as_str().unwrap().to_string();
    assert_eq!(
        stack
            .send(
                "POST",
                &format!("/jobs/{cancelled}/cancel"),
                Some(&token),
                None
            )
            .await
            .status,
        202
    );
    let mut ends = BTreeMap::new();
    for id in [&completed, &failed, &big, &cancelled] {
        let job = stack.wait_until_done(&token, id, QUEUE_BACKLOG_WAIT).await;
        ends.insert(format!("{id}:{}", job["status"].as_str().unwrap()), job);
    }

    let events = received_events(
        &stack,
        &queue,
        |e| by_id(e).len() >= 4,
        Duration::from_secs(60),
        Duration::from_secs(5),
    )
    .await;
    let ids = by_id(&events);
    assert_eq!(
        ids.keys().cloned().collect::<Vec<_>>(),
        ends.keys().cloned().collect::<Vec<_>>(),
        "one event id per job end: {events:#?}"
    );
    let types: BTreeMap<&str, &str> = ids
        .iter()
        .map(|(id, (t, _))| (id.split(':').nth(1).unwrap_or(""), t.as_str()))
        .collect();
    assert_eq!(
        types,
        BTreeMap::from([
            ("cancelled", "Job Cancelled"),
            ("completed", "Job Completed"),
            ("failed", "Job Failed")
        ])
    );
    for event in &events {
        let detail = &event["detail"];
        let job = &ends[detail["event_id"].as_str().unwrap()];
        assert_eq!(event["source"], "jobs");
        assert_eq!(
            (
                detail["tenant"].as_str(),
                detail["user"].as_str(),
                detail["type"].as_str()
            ),
            (Some(tenant.as_str()), Some("alice"), job["type"].as_str())
        );
        assert_eq!(
            (
                &detail["succeeded"],
                &detail["failed"],
                &detail["completed_at"]
            ),
            (
                &job["progress"]["succeeded"],
                &job["progress"]["failed"],
                &job["completed_at"]
            )
        );
    }
    assert_eq!(
        ends[&format!("{big}:completed")]["progress"]["succeeded"],
        200
    );
}

/// The workers' embedded-metric-format lines reach the function's CloudWatch log group as
/// whole JSON documents, so CloudWatch turns them into metrics.
#[tokio::test]
async fn a_worker_logs_one_emf_document_per_commit() {
    let stack = Stack::load().await;
    let since = (jobs_core::clock::now().unix_timestamp() - 5) * 1000;
    let token = stack.token(&fresh_tenant("emf"), "alice", false);
    let id = stack.create(&token, &embedding_job("measured")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    stack.wait_until_done(&token, &id, QUEUE_BACKLOG_WAIT).await;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&stack.config);
    let group = format!(
        "/aws/lambda/{}-ai-text-embedding",
        std::env::var("JOBS_STACK").unwrap_or_else(|_| infra::DEFAULT_STACK.to_string())
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let out = logs
            .filter_log_events()
            .log_group_name(&group)
            .start_time(since)
            .send()
            .await
            .expect("FilterLogEvents");
        let documents: Vec<Value> = out
            .events()
            .iter()
            .filter_map(|e| e.message())
            .filter(|m| m.contains("\"_aws\""))
            .filter_map(|m| serde_json::from_str::<Value>(m.trim()).ok())
            .collect();
        if let Some(doc) = documents.iter().find(|d| d.get("ChunkDuration").is_some()) {
            let definition = &doc["_aws"]["CloudWatchMetrics"][0];
            assert_eq!(
                (definition["Namespace"].as_str(), &definition["Dimensions"]),
                (Some("jobs"), &json!([["JobType"]]))
            );
            assert_eq!(doc["JobType"], "ai_text_embedding");
            assert!(
                doc["ItemsSucceeded"].is_u64() && doc["_aws"]["Timestamp"].is_i64(),
                "{doc}"
            );
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no EMF document in {group} since the job started"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
