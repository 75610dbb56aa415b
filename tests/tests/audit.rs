//! The audit trail through the deployed stack: each operator action and each job end is
//! recorded with who, from where and its outcome; a job's timeline and the admins' listing
//! by time range read them back; other tenants see nothing.

use std::time::Duration;

use e2e::{Stack, embedding_job, fresh_tenant, json};
use serde_json::Value;

const AGENT: &str = "audit-e2e/1.0";

/// The job's events (one page of 100), as (kind, outcome) pairs and in full.
async fn timeline(stack: &Stack, token: &str, id: &str) -> (Vec<(String, String)>, Vec<Value>) {
    let reply = stack
        .send(
            "GET",
            &format!("/jobs/{id}/events?limit=100"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let events = reply.body["items"].as_array().cloned().unwrap_or_default();
    let kinds = events
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap_or("").to_string(),
                e["outcome"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    (kinds, events)
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, o)| (k.to_string(), o.to_string()))
        .collect()
}

#[tokio::test]
async fn every_action_and_the_end_are_on_the_job_s_timeline_with_who_and_where() {
    let stack = Stack::load().await;
    let tenant = fresh_tenant("audit");
    let token = stack.token(&tenant, "alice", false);
    let created = stack
        .reply(
            stack
                .http
                .post(format!("{}/jobs", stack.api))
                .bearer_auth(&token)
                .header("user-agent", AGENT)
                .json(&embedding_job("audited")),
        )
        .await;
    assert_eq!(created.status, 202, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    let done = stack
        .wait_until_done(&token, &id, Duration::from_secs(120))
        .await;
    assert_eq!(done["status"], "completed");
    assert_eq!(
        stack
            .send("POST", &format!("/jobs/{id}/cancel"), Some(&token), None)
            .await
            .status,
        409
    );
    assert_eq!(
        stack
            .send("DELETE", &format!("/jobs/{id}"), Some(&token), None)
            .await
            .status,
        204
    );
    assert_eq!(
        stack
            .send("POST", &format!("/jobs/{id}/unhide"), Some(&token), None)
            .await
            .status,
        200
    );

    let (kinds, events) = timeline(&stack, &token, &id).await;
    assert_eq!(
        kinds,
        pairs(&[
            ("created", "ok"),
            ("started", "ok"),
            ("ended", "ok"),
            ("cancel_requested", "conflict"),
            ("hidden", "ok"),
            ("unhidden", "ok")
        ]),
        "{events:#?}"
    );
    let first = &events[0];
    assert_eq!(
        first["actor"],
        json!({"sub": "alice", "role": "operator", "tenant": tenant})
    );
    assert_eq!(first["user_agent"], AGENT);
    assert!(
        first["request_id"].as_str().is_some_and(|r| !r.is_empty()),
        "API Gateway's request id: {first}"
    );
    assert!(
        first["source_ip"].as_str().is_some_and(|ip| !ip.is_empty()),
        "the caller's address: {first}"
    );
    assert_eq!(
        (events[2]["status"].as_str(), events[2].get("actor")),
        (Some("completed"), None),
        "the end is the service's own event"
    );
    assert_eq!(events[2]["at"], done["completed_at"]);
    let request_ids: std::collections::BTreeSet<&str> = events
        .iter()
        .filter_map(|e| e["request_id"].as_str())
        .collect();
    assert_eq!(request_ids.len(), 4, "one request each: {request_ids:?}");

    let other = stack.token(&fresh_tenant("auditother"), "mallory", false);
    assert_eq!(
        stack
            .send("GET", &format!("/jobs/{id}/events"), Some(&other), None)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn a_cancelled_job_a_retry_and_a_bulk_action_are_recorded_and_admins_list_them_by_time() {
    let stack = Stack::load().await;
    let tenant = fresh_tenant("auditops");
    let token = stack.token(&tenant, "alice", false);
    let since = jobs_core::clock::format(jobs_core::clock::now());

    // A job that fails (no such profiles), then its retry.
    let failing = stack.create(&token, &json!({"type": "profile_field_update", "params": {"field": "locale", "value": "de", "user_ids": ["ghost-1", "ghost-2"]}})).await;
    let failing = failing["id"].as_str().unwrap().to_string();
    assert_eq!(
        stack
            .wait_until_done(&token, &failing, Duration::from_secs(120))
            .await["status"],
        "failed"
    );
    let retry = stack
        .send(
            "POST",
            &format!("/jobs/{failing}/retry"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(retry.status, 202, "{}", retry.body);
    let retry_id = retry.body["id"].as_str().unwrap().to_string();
    let (_, events) = timeline(&stack, &token, &failing).await;
    let retried = events
        .iter()
        .find(|e| e["kind"] == "retried")
        .expect("retried on the original");
    assert_eq!(retried["related_job"], retry_id.as_str());
    let (_, events) = timeline(&stack, &token, &retry_id).await;
    assert_eq!(
        events[0]["related_job"],
        failing.as_str(),
        "created as a retry of the original"
    );

    // A running job cancelled: its end comes from the last chunk, as cancelled.
    let big = stack.create(&token, &json!({"type": "ai_text_embedding", "params": {"documents": (0..3000).map(|i| json!({"id": format!("d{i}"), "text": "words"})).collect::<Vec<_>>()}})).await;
    let big = big["id"].as_str().unwrap().to_string();
    assert_eq!(
        stack
            .send("POST", &format!("/jobs/{big}/cancel"), Some(&token), None)
            .await
            .status,
        202
    );
    assert_eq!(
        stack
            .wait_until_done(&token, &big, Duration::from_secs(120))
            .await["status"],
        "cancelled"
    );
    let (kinds, _) = timeline(&stack, &token, &big).await;
    assert!(
        kinds.contains(&("cancel_requested".into(), "ok".into()))
            && kinds.last() == Some(&("ended".into(), "ok".into())),
        "{kinds:?}"
    );

    // A bulk hide: one entry per job, all with the bulk request's id.
    let bulk = stack
        .send(
            "POST",
            "/jobs/bulk",
            Some(&token),
            Some(&json!({"action": "hide", "ids": [failing, big]})),
        )
        .await;
    assert_eq!(bulk.status, 200, "{}", bulk.body);
    let mut bulk_requests = std::collections::BTreeSet::new();
    for id in [&failing, &big] {
        let (_, events) = timeline(&stack, &token, id).await;
        let hidden = events
            .iter()
            .find(|e| e["kind"] == "hidden")
            .expect("hidden by the bulk action");
        bulk_requests.insert(hidden["request_id"].as_str().unwrap_or("").to_string());
    }
    assert_eq!(bulk_requests.len(), 1, "one request: {bulk_requests:?}");

    // Admins list the trail across tenants by time range; this tenant's entries are all there.
    let admin = stack.token("ops", "root", true);
    let mut listed: Vec<Value> = Vec::new();
    let mut cursor = String::new();
    loop {
        let mut request = stack
            .http
            .get(format!("{}/audit", stack.api))
            .bearer_auth(&admin)
            .query(&[
                ("from", since.as_str()),
                ("tenant", tenant.as_str()),
                ("limit", "5"),
            ]);
        if !cursor.is_empty() {
            request = request.query(&[("cursor", cursor.as_str())]);
        }
        let page = stack.reply(request).await;
        assert_eq!(page.status, 200, "{}", page.body);
        listed.extend(page.body["items"].as_array().cloned().unwrap_or_default());
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    let mut expected = 0;
    for id in [&failing, &retry_id, &big] {
        let (_, events) = timeline(&stack, &token, id).await;
        // `started` is the job record's own time, not an audit entry.
        expected += events.iter().filter(|e| e["kind"] != "started").count();
    }
    assert_eq!(listed.len(), expected, "each entry once: {listed:#?}");
    assert!(
        listed
            .windows(2)
            .all(|w| w[0]["at"].as_str() >= w[1]["at"].as_str()),
        "newest first"
    );
    assert!(listed.iter().all(|e| e["tenant"] == tenant.as_str()));

    let member = stack.send("GET", "/audit", Some(&token), None).await;
    assert_eq!(
        (member.status, member.error_code()),
        (403, Some("forbidden"))
    );
}
