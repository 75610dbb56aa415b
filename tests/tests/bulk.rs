//! `POST /jobs/bulk` through the deployed stack: cancel, then hide, 300 jobs by filter
//! (following `next_cursor` when a call's time runs out), each outcome reported, the other
//! tenant untouched; cancel by ids with mixed outcomes.

use std::collections::BTreeSet;

use e2e::{Stack, embedding_job, fresh_tenant, json};
use serde_json::Value;

async fn create_many(stack: &Stack, token: &str, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for batch in 0..count.div_ceil(20) {
        let creates = (0..20.min(count - batch * 20)).map(|i| {
            let body = embedding_job(&format!("bulk {batch}-{i}"));
            async move { stack.create(token, &body).await }
        });
        ids.extend(
            futures::future::join_all(creates)
                .await
                .into_iter()
                .map(|j| j["id"].as_str().unwrap().to_string()),
        );
    }
    ids
}

fn outcomes(answer: &Value) -> Vec<(String, String)> {
    answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Every outcome of `action` over the jobs matching `filter`, following `next_cursor`;
/// every call answers 200.
async fn bulk_by_filter(
    stack: &Stack,
    token: &str,
    action: &str,
    filter: Value,
) -> Vec<(String, String)> {
    let mut results = Vec::new();
    let mut cursor = Value::Null;
    for _ in 0..100 {
        let mut body = json!({"action": action, "filter": filter});
        if !cursor.is_null() {
            body["cursor"] = cursor;
        }
        let answer = stack
            .send("POST", "/jobs/bulk", Some(token), Some(&body))
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        results.extend(outcomes(&answer.body));
        cursor = answer.body["next_cursor"].clone();
        if cursor.is_null() {
            return results;
        }
    }
    panic!("{action} over {filter} still had a next_cursor after 100 calls");
}

fn each_once(results: &[(String, String)], ids: &[String]) {
    let reached: Vec<&String> = results.iter().map(|(id, _)| id).collect();
    assert_eq!(reached.len(), ids.len(), "one outcome per job");
    assert_eq!(
        reached.into_iter().cloned().collect::<BTreeSet<_>>(),
        ids.iter().cloned().collect::<BTreeSet<_>>(),
        "each job once"
    );
}

#[tokio::test]
async fn cancelling_then_hiding_300_jobs_by_filter_reports_each_and_reaches_no_other_tenant() {
    let stack = Stack::load().await;
    let tenant = fresh_tenant("bulk");
    let token = stack.token(&tenant, "alice", false);
    let other = stack.token(&fresh_tenant("bulkother"), "bob", false);
    let ids = create_many(&stack, &token, 300).await;
    let theirs = create_many(&stack, &other, 3).await;

    let filter = json!({"type": "ai_text_embedding"});
    let cancelled = bulk_by_filter(&stack, &token, "cancel", filter.clone()).await;
    each_once(&cancelled, &ids);
    assert!(
        cancelled
            .iter()
            .all(|(_, o)| o == "done" || o == "already_ended"),
        "{:?}",
        cancelled
            .iter()
            .find(|(_, o)| o != "done" && o != "already_ended")
    );
    let hidden = bulk_by_filter(&stack, &token, "hide", filter).await;
    each_once(&hidden, &ids);
    assert!(
        hidden.iter().all(|(_, o)| o == "done"),
        "{:?}",
        hidden.iter().find(|(_, o)| o != "done")
    );
    assert!(
        stack.list_all(&token, "").await.concat().is_empty(),
        "all hidden"
    );
    assert_eq!(
        stack.list_all(&token, "hidden=true").await.concat().len(),
        300
    );
    assert_eq!(
        stack.list_all(&other, "").await.concat().len(),
        3,
        "the other tenant's jobs stay listed"
    );

    // A member naming another tenant's jobs acts on nothing.
    let answer = stack
        .send(
            "POST",
            "/jobs/bulk",
            Some(&token),
            Some(&json!({"action": "cancel", "ids": theirs})),
        )
        .await;
    assert!(
        outcomes(&answer.body).iter().all(|(_, o)| o == "not_found"),
        "{}",
        answer.body
    );
    let foreign = stack
        .send(
            "POST",
            "/jobs/bulk",
            Some(&token),
            Some(&json!({"action": "hide", "filter": {"tenant": "someone-else"}})),
        )
        .await;
    assert_eq!(
        (foreign.status, foreign.error_field()),
        (403, Some("filter.tenant"))
    );
}

#[tokio::test]
async fn cancel_by_ids_reports_done_already_ended_and_not_found() {
    let stack = Stack::load().await;
    let tenant = fresh_tenant("bulkcancel");
    let token = stack.token(&tenant, "alice", false);
    let ended = create_many(&stack, &token, 1).await.remove(0);
    stack
        .wait_until_done(&token, &ended, std::time::Duration::from_secs(120))
        .await;
    let big = stack.create(&token, &json!({"type": "ai_text_embedding", "params": {"documents": (0..3000).map(|i| json!({"id": format!("d{i}"), "text": "some words to embed"})).collect::<Vec<_>>()}})).await;
    let big = big["id"].as_str().unwrap().to_string();
    let unknown = ulid::Ulid::new().to_string();
    let answer = stack
        .send(
            "POST",
            "/jobs/bulk",
            Some(&token),
            Some(&json!({"action": "cancel", "ids": [big, ended, unknown]})),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        outcomes(&answer.body),
        vec![
            (big.clone(), "done".into()),
            (ended, "already_ended".into()),
            (unknown, "not_found".into())
        ]
    );
    let done = stack
        .wait_until_done(&token, &big, std::time::Duration::from_secs(120))
        .await;
    assert_eq!(done["status"], "cancelled", "{done}");
}
