//! A job's item report and the retry of its failed items, through the deployed stack.

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use e2e::{Stack, fresh_tenant, json};
use infra::seed::{profile, put_items};
use serde_json::Value;

const DONE_WITHIN: Duration = Duration::from_secs(180);

async fn locale(stack: &Stack, tenant: &str, user: &str) -> Option<String> {
    let table = stack.outputs["ProfilesTableName"].clone();
    let out = stack
        .dynamo
        .get_item()
        .table_name(table)
        .key("tenant", AttributeValue::S(tenant.into()))
        .key("user_id", AttributeValue::S(user.into()))
        .consistent_read(true)
        .send()
        .await
        .expect("GetItem");
    out.item
        .and_then(|i| i.get("locale").and_then(|v| v.as_s().ok()).cloned())
}

/// Every row of `/jobs/{id}/items?outcome=…`, page by page.
async fn all_items(stack: &Stack, token: &str, id: &str, outcome: &str) -> Vec<Value> {
    let mut rows = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/jobs/{id}/items?outcome={outcome}&limit=1000");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = stack.send("GET", &path, Some(token), None).await;
        assert_eq!(page.status, 200, "{}", page.body);
        rows.extend(page.body["items"].as_array().cloned().unwrap_or_default());
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return rows,
        }
    }
}

#[tokio::test]
async fn a_retry_runs_only_the_failed_items_and_the_two_jobs_are_linked() {
    let stack = Stack::load().await;
    let tenant = fresh_tenant("retry");
    let token = stack.token(&tenant, "alice", false);
    let table = stack.outputs["ProfilesTableName"].clone();
    put_items(
        &stack.dynamo,
        &table,
        vec![profile(&tenant, "u1", "Ann"), profile(&tenant, "u2", "Ben")],
    )
    .await
    .expect("seed profiles");

    let job = stack.create(&token, &json!({"type": "profile_field_update", "params": {"field": "locale", "value": "de-DE", "user_ids": ["u1", "ghost", "u2", "late"]}})).await;
    let id = job["id"].as_str().unwrap();
    let done = stack.wait_until_done(&token, id, DONE_WITHIN).await;
    assert_eq!(done["status"], "completed_with_errors", "{done}");
    let failed: Vec<(u64, String)> = all_items(&stack, &token, id, "failed")
        .await
        .iter()
        .map(|r| {
            (
                r["position"].as_u64().unwrap(),
                r["item"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        failed,
        vec![(1, "ghost".to_string()), (3, "late".to_string())]
    );

    // The missing profiles appear; u1 changes meanwhile, so a retry that touched it would show.
    put_items(
        &stack.dynamo,
        &table,
        vec![
            profile(&tenant, "ghost", "Gus"),
            profile(&tenant, "late", "Lea"),
        ],
    )
    .await
    .expect("seed profiles");
    let update = stack.create(&token, &json!({"type": "profile_field_update", "params": {"field": "locale", "value": "fr-FR", "user_ids": ["u1"]}})).await;
    stack
        .wait_until_done(&token, update["id"].as_str().unwrap(), DONE_WITHIN)
        .await;

    let retry = stack
        .send("POST", &format!("/jobs/{id}/retry"), Some(&token), None)
        .await;
    assert_eq!(retry.status, 202, "{}", retry.body);
    let retry_id = retry.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        (
            retry.body["retry_of"].as_str(),
            retry.body["progress"]["total"].as_u64()
        ),
        (Some(id), Some(2))
    );
    let retried = stack.wait_until_done(&token, &retry_id, DONE_WITHIN).await;
    assert_eq!(
        (
            retried["status"].as_str(),
            retried["progress"]["succeeded"].as_u64()
        ),
        (Some("completed"), Some(2)),
        "{retried}"
    );
    assert_eq!(
        locale(&stack, &tenant, "ghost").await.as_deref(),
        Some("de-DE")
    );
    assert_eq!(
        locale(&stack, &tenant, "late").await.as_deref(),
        Some("de-DE")
    );
    assert_eq!(
        locale(&stack, &tenant, "u1").await.as_deref(),
        Some("fr-FR"),
        "the retry did not run the items that had succeeded"
    );
    let original = stack
        .send("GET", &format!("/jobs/{id}"), Some(&token), None)
        .await
        .body;
    assert_eq!(original["retries"], json!([retry_id]));

    let again = stack
        .send(
            "POST",
            &format!("/jobs/{retry_id}/retry"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(again.status, 409, "nothing left to retry: {}", again.body);
    let mallory = stack.token(&fresh_tenant("mallory"), "mallory", false);
    assert_eq!(
        stack
            .send("POST", &format!("/jobs/{id}/retry"), Some(&mallory), None)
            .await
            .status,
        404
    );
    assert_eq!(
        stack
            .send("GET", &format!("/jobs/{id}/items"), Some(&mallory), None)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn the_report_of_a_5000_item_job_lists_each_failed_item_once_in_pages_and_in_csv() {
    let stack = Stack::load().await;
    let tenant = fresh_tenant("report");
    let token = stack.token(&tenant, "alice", false);
    let table = stack.outputs["ProfilesTableName"].clone();
    let users: Vec<String> = (0..5_000).map(|i| format!("user-{i:04}")).collect();
    // Every 7th user has no profile: 715 failures.
    let missing: BTreeSet<String> = users.iter().step_by(7).cloned().collect();
    let profiles = users
        .iter()
        .filter(|u| !missing.contains(*u))
        .map(|u| profile(&tenant, u, "P"))
        .collect();
    put_items(&stack.dynamo, &table, profiles)
        .await
        .expect("seed profiles");
    let job = stack.create(&token, &json!({"type": "profile_field_update", "params": {"field": "plan", "value": "pro", "user_ids": users}})).await;
    let id = job["id"].as_str().unwrap();
    let done = stack.wait_until_done(&token, id, DONE_WITHIN).await;
    assert_eq!(
        (
            done["progress"]["succeeded"].as_u64(),
            done["progress"]["failed"].as_u64()
        ),
        (Some(5_000 - 715), Some(715)),
        "{done}"
    );

    let failed = all_items(&stack, &token, id, "failed").await;
    let named: Vec<String> = failed
        .iter()
        .map(|r| r["item"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(named.len(), 715);
    assert_eq!(
        named.iter().cloned().collect::<BTreeSet<_>>(),
        missing,
        "each failed item exactly once"
    );
    assert!(
        failed
            .iter()
            .all(|r| r["reason"] == "no profile for this user")
    );
    assert_eq!(
        all_items(&stack, &token, id, "succeeded").await.len(),
        5_000 - 715
    );

    let csv = stack
        .http
        .get(format!("{}/jobs/{id}/items?outcome=failed", stack.api))
        .bearer_auth(&token)
        .header("accept", "text/csv")
        .send()
        .await
        .expect("CSV");
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let text = csv.text().await.expect("CSV body");
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines[0], "position,item,outcome,reason");
    let in_csv: BTreeSet<String> = lines[1..]
        .iter()
        .map(|l| l.split(',').nth(1).unwrap_or_default().to_string())
        .collect();
    assert_eq!((lines.len() - 1, in_csv), (715, missing));
}
