//! The four job types doing their real work in LocalStack, driven through the API only;
//! their effects are read back from SES and DynamoDB.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use e2e::{Stack, fresh_tenant, json, verify_domain};
use infra::seed::{profile, put_items, session, verify_sender};
use serde_json::Value;

const DONE_WITHIN: Duration = Duration::from_secs(180);

fn progress(job: &Value) -> (u64, u64, u64) {
    let p = &job["progress"];
    (
        p["total"].as_u64().unwrap_or(0),
        p["succeeded"].as_u64().unwrap_or(0),
        p["failed"].as_u64().unwrap_or(0),
    )
}

#[tokio::test]
async fn bulk_messages_are_sent_through_ses_with_exact_counts() {
    let stack = Stack::load().await;
    let tenant = fresh_tenant("mail");
    let token = stack.token(&tenant, "alice", false);
    let from = format!("news@{tenant}.example.com");
    verify_sender(&stack.ses, &from)
        .await
        .expect("verify sender");
    stack.register_sender(&tenant, &from).await;
    let recipients: Vec<String> = (0..120).map(|i| format!("reader{i}@example.org")).collect();
    let job = stack
        .create(&token, &json!({"type": "bulk_message_sending", "params": {"channel": "email", "from": from, "subject": "Launch", "body": "We launched.", "recipients": recipients}}))
        .await;
    let done = stack
        .wait_until_done(&token, job["id"].as_str().unwrap(), DONE_WITHIN)
        .await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(progress(&done), (120, 120, 0));
    assert_eq!(done["progress"]["percent"], 100);
    assert!(done["started_at"].is_string() && done["completed_at"].is_string());
    let sent = stack.sent_mail(&from).await;
    assert_eq!(sent.len(), 120, "one email per recipient");
    let mut to: Vec<String> = sent
        .iter()
        .filter_map(|m| {
            m["Destination"]["ToAddresses"][0]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    to.sort();
    let mut expected = recipients.clone();
    expected.sort();
    assert_eq!(to, expected);
    assert!(sent.iter().all(|m| m["Subject"] == "Launch"));
}

#[tokio::test]
async fn a_sender_ses_has_not_verified_is_refused_at_create() {
    let stack = Stack::load().await;
    let tenant = fresh_tenant("mailfail");
    let token = stack.token(&tenant, "alice", false);
    let body = json!({"type": "bulk_message_sending", "params": {"channel": "email", "from": format!("nobody@{tenant}.example.net"), "subject": "s", "body": "b", "recipients": ["a@example.org", "b@example.org"]}});
    let reply = stack.send("POST", "/jobs", Some(&token), Some(&body)).await;
    assert_eq!(
        (reply.status, reply.error_field()),
        (422, Some("params.from")),
        "{}",
        reply.body
    );
    // Verifying the sender's parent domain is enough (a verified domain covers its subdomains).
    verify_domain(&stack.ses, &format!("{tenant}.example.net"))
        .await
        .expect("verify domain");
    stack
        .register_sender(&tenant, &format!("nobody@{tenant}.example.net"))
        .await;
    let job = stack.create(&token, &body).await;
    let done = stack
        .wait_until_done(&token, job["id"].as_str().unwrap(), DONE_WITHIN)
        .await;
    assert_eq!(
        (done["status"].as_str(), progress(&done)),
        (Some("completed"), (2, 2, 0)),
        "{done}"
    );
}

#[tokio::test]
async fn session_termination_by_users_idle_time_and_all_users() {
    let stack = Stack::load().await;
    let tenant = fresh_tenant("sessions");
    let token = stack.token(&tenant, "admin-user", false);
    let now = jobs_core::clock::now().unix_timestamp();
    let mut rows = Vec::new();
    for user in ["u1", "u2", "u3", "u4"] {
        rows.push(session(&tenant, &format!("{user}-fresh"), user, now - 30));
        rows.push(session(&tenant, &format!("{user}-idle"), user, now - 7200));
    }
    put_items(&stack.dynamo, &stack.outputs["SessionsTableName"], rows)
        .await
        .expect("seed sessions");

    let by_users = stack
        .create(
            &token,
            &json!({"type": "session_termination", "params": {"user_ids": ["u1", "u2", "nobody"]}}),
        )
        .await;
    let done = stack
        .wait_until_done(&token, by_users["id"].as_str().unwrap(), DONE_WITHIN)
        .await;
    assert_eq!(
        (done["status"].as_str(), progress(&done)),
        (Some("completed"), (3, 3, 0)),
        "a user without sessions counts as done"
    );
    assert_eq!(
        stack.sessions(&tenant).await,
        vec!["u3-fresh", "u3-idle", "u4-fresh", "u4-idle"]
    );

    let idle = stack
        .create(
            &token,
            &json!({"type": "session_termination", "params": {"idle_for_seconds": 3600}}),
        )
        .await;
    let done = stack
        .wait_until_done(&token, idle["id"].as_str().unwrap(), DONE_WITHIN)
        .await;
    assert_eq!(
        (done["status"].as_str(), progress(&done)),
        (Some("completed"), (2, 2, 0))
    );
    assert_eq!(stack.sessions(&tenant).await, vec!["u3-fresh", "u4-fresh"]);

    let all = stack
        .create(
            &token,
            &json!({"type": "session_termination", "params": {"all_users": true}}),
        )
        .await;
    let done = stack
        .wait_until_done(&token, all["id"].as_str().unwrap(), DONE_WITHIN)
        .await;
    assert_eq!(
        (done["status"].as_str(), progress(&done)),
        (Some("completed"), (2, 2, 0))
    );
    assert!(stack.sessions(&tenant).await.is_empty());

    // Nothing left to match: the job completes with 0 items, and a completed job is 100 %.
    let none = stack
        .create(
            &token,
            &json!({"type": "session_termination", "params": {"all_users": true}}),
        )
        .await;
    let done = stack
        .wait_until_done(&token, none["id"].as_str().unwrap(), DONE_WITHIN)
        .await;
    assert_eq!(
        (done["status"].as_str(), progress(&done)),
        (Some("completed"), (0, 0, 0))
    );
    assert_eq!(done["progress"]["percent"], 100);
}

async fn embedding(stack: &Stack, tenant: &str, document: &str) -> Option<(u64, Vec<f32>)> {
    let out = stack
        .dynamo
        .get_item()
        .table_name(&stack.outputs["EmbeddingsTableName"])
        .key("tenant", AttributeValue::S(tenant.into()))
        .key("document_id", AttributeValue::S(document.into()))
        .send()
        .await
        .expect("GetItem embedding");
    let item = out.item?;
    let dims = item.get("dimensions")?.as_n().ok()?.parse().ok()?;
    let bytes = item.get("vector")?.as_b().ok()?.as_ref().to_vec();
    Some((
        dims,
        bytes
            .chunks(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    ))
}

#[tokio::test]
async fn embeddings_are_stored_with_unit_norm_and_wordless_documents_fail() {
    let stack = Stack::load().await;
    let tenant = fresh_tenant("embed");
    let token = stack.token(&tenant, "alice", false);
    let mut documents: Vec<Value> = (0..20).map(|i| json!({"id": format!("doc-{i}"), "text": format!("Document number {i} about invoices and refunds")})).collect();
    documents.push(json!({"id": "wordless", "text": "?!... --"}));
    let job = stack
        .create(
            &token,
            &json!({"type": "ai_text_embedding", "params": {"documents": documents}}),
        )
        .await;
    let done = stack
        .wait_until_done(&token, job["id"].as_str().unwrap(), DONE_WITHIN)
        .await;
    assert_eq!(done["status"], "completed_with_errors", "{done}");
    assert_eq!(progress(&done), (21, 20, 1));
    assert_eq!(
        done["errors"],
        json!([{"item": "wordless", "reason": "text has no words to embed"}])
    );
    let (dims, vector) = embedding(&stack, &tenant, "doc-7")
        .await
        .expect("vector stored");
    assert_eq!((dims, vector.len()), (384, 384));
    let norm: f32 = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4, "unit norm, got {norm}");
    assert!(embedding(&stack, &tenant, "wordless").await.is_none());
}

#[tokio::test]
async fn profile_fields_are_set_and_removed_and_missing_users_fail() {
    let stack = Stack::load().await;
    let tenant = fresh_tenant("profiles");
    let token = stack.token(&tenant, "alice", false);
    let table = stack.outputs["ProfilesTableName"].clone();
    put_items(
        &stack.dynamo,
        &table,
        vec![profile(&tenant, "u1", "Ann"), profile(&tenant, "u2", "Ben")],
    )
    .await
    .expect("seed profiles");
    let get = |user: &'static str| {
        let (stack, table, tenant) = (&stack, table.clone(), tenant.clone());
        async move {
            let out = stack
                .dynamo
                .get_item()
                .table_name(table)
                .key("tenant", AttributeValue::S(tenant))
                .key("user_id", AttributeValue::S(user.into()))
                .consistent_read(true)
                .send()
                .await
                .expect("GetItem");
            out.item
        }
    };

    let set = stack.create(&token, &json!({"type": "profile_field_update", "params": {"field": "locale", "value": "de-DE", "user_ids": ["u1", "u2", "ghost"]}})).await;
    let done = stack
        .wait_until_done(&token, set["id"].as_str().unwrap(), DONE_WITHIN)
        .await;
    assert_eq!(
        (done["status"].as_str(), progress(&done)),
        (Some("completed_with_errors"), (3, 2, 1)),
        "{done}"
    );
    assert_eq!(
        done["errors"],
        json!([{"item": "ghost", "reason": "no profile for this user"}])
    );
    assert_eq!(
        get("u1").await.unwrap()["locale"],
        AttributeValue::S("de-DE".into())
    );
    assert!(get("ghost").await.is_none(), "no profile is created");

    let remove = stack.create(&token, &json!({"type": "profile_field_update", "params": {"field": "locale", "value": null, "user_ids": ["u1"]}})).await;
    let done = stack
        .wait_until_done(&token, remove["id"].as_str().unwrap(), DONE_WITHIN)
        .await;
    assert_eq!(done["status"], "completed");
    let u1 = get("u1").await.unwrap();
    assert!(!u1.contains_key("locale") && u1.contains_key("name"));
}

#[tokio::test]
async fn a_five_thousand_item_job_fans_out_and_completes_exactly() {
    let stack = Stack::load().await;
    let tenant = fresh_tenant("fanout");
    let token = stack.token(&tenant, "alice", false);
    let documents: Vec<Value> = (0..5000)
        .map(|i| json!({"id": format!("d{i}"), "text": format!("item {i}")}))
        .collect();
    let job = stack
        .create(
            &token,
            &json!({"type": "ai_text_embedding", "params": {"documents": documents}}),
        )
        .await;
    let id = job["id"].as_str().unwrap();
    let done = stack.wait_until_done(&token, id, DONE_WITHIN).await;
    assert_eq!(
        (done["status"].as_str(), progress(&done)),
        (Some("completed"), (5000, 5000, 0)),
        "{done}"
    );
    let item = stack.job_item(id).await.unwrap();
    assert_eq!(
        (item["chunks_total"].as_u64(), item["chunks_done"].as_u64()),
        (Some(313), Some(313)),
        "16 documents per chunk"
    );
}

/// Fairness between tenants: tenant A starts 40 jobs of 80 documents (200 chunks); a job of
/// tenant B of 32 documents (two chunks, so they go on the work queue, not run in the plan's
/// delivery) created then waits behind A's release window (`ReleaseWindow` chunks, 5 in
/// LocalStack), not behind A's jobs, and A settles under a quarter of its items while B's
/// job runs (3–7 % in five runs here). With one window per job (`RELEASE_WINDOW_SCOPE=job`)
/// all of A's released chunks are on the queue ahead of B's, and A settles most of its
/// items meanwhile (84 % and 88 % in two runs).
#[tokio::test]
async fn a_small_job_is_not_held_up_by_many_jobs_of_another_tenant() {
    const JOBS: usize = 40;
    const DOCUMENTS: u64 = 80;
    let stack = Stack::load().await;
    let a_token = stack.token(&fresh_tenant("many"), "alice", false);
    let b_token = stack.token(&fresh_tenant("small"), "bob", false);
    let documents: Vec<Value> = (0..DOCUMENTS)
        .map(|i| json!({"id": format!("d{i}"), "text": format!("item {i}")}))
        .collect();
    let body = json!({"type": "ai_text_embedding", "params": {"documents": documents}});
    let mut a_jobs = Vec::new();
    for _ in 0..JOBS {
        let job = stack.create(&a_token, &body).await;
        a_jobs.push(job["id"].as_str().unwrap().to_string());
    }
    stack.wait_until_started(&a_token, &a_jobs[0]).await;
    let before = a_settled(&stack, &a_token, JOBS).await;
    let small: Vec<Value> = (0..32)
        .map(|i| json!({"id": format!("b{i}"), "text": format!("small {i}")}))
        .collect();
    let small = stack
        .create(
            &b_token,
            &json!({"type": "ai_text_embedding", "params": {"documents": small}}),
        )
        .await;
    let small_path = format!("/jobs/{}", small["id"].as_str().unwrap());
    let watch = std::time::Instant::now();
    let small = loop {
        let job = stack
            .send("GET", &small_path, Some(&b_token), None)
            .await
            .body;
        if !matches!(job["status"].as_str(), Some("queued" | "running")) {
            break job;
        }
        assert!(watch.elapsed() < DONE_WITHIN, "B's job not done: {job}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(small["status"], "completed", "{small}");
    let settled = a_settled(&stack, &a_token, JOBS)
        .await
        .saturating_sub(before);
    let all = JOBS as u64 * DOCUMENTS;
    eprintln!(
        "A settled {settled} of {all} items while B's job ran ({} → {})",
        small["created_at"], small["completed_at"]
    );
    // Done with A: cancelling settles every released and unreleased chunk, through A's window.
    for id in &a_jobs {
        let cancel = stack
            .send("POST", &format!("/jobs/{id}/cancel"), Some(&a_token), None)
            .await;
        assert!(
            cancel.status == 202 || cancel.status == 409,
            "{}",
            cancel.body
        );
    }
    for id in &a_jobs {
        let done = stack.wait_until_done(&a_token, id, DONE_WITHIN).await;
        let item = stack.job_item(id).await.unwrap();
        let (total, succeeded, failed) = progress(&done);
        assert_eq!(
            (
                total,
                failed,
                succeeded + item["cancelled"].as_u64().unwrap_or(0)
            ),
            (DOCUMENTS, 0, DOCUMENTS),
            "every item settled once: {item}"
        );
    }
    // Asserted last, so that A's jobs never outlive a failure and load the tests after it.
    assert!(
        settled * 4 < all,
        "A settled {settled} of {all} items while B's job ran: it waited behind A's jobs"
    );
}

/// The items settled (succeeded or failed) of the tenant's `jobs` jobs, in one listing
/// request.
async fn a_settled(stack: &Stack, token: &str, jobs: usize) -> u64 {
    let page = stack
        .send("GET", "/jobs?limit=100", Some(token), None)
        .await
        .body;
    let listed = page["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(listed.len(), jobs, "{page}");
    listed
        .iter()
        .map(|job| {
            let (_, succeeded, failed) = progress(job);
            succeeded + failed
        })
        .sum()
}

#[tokio::test]
async fn cancelling_mid_run_stops_further_effects() {
    let stack = Stack::load().await;
    let tenant = fresh_tenant("cancel");
    let token = stack.token(&tenant, "alice", false);
    let from = format!("ops@{tenant}.example.com");
    verify_sender(&stack.ses, &from)
        .await
        .expect("verify sender");
    stack.register_sender(&tenant, &from).await;
    let recipients: Vec<String> = (0..4000).map(|i| format!("r{i}@example.org")).collect();
    let job = stack.create(&token, &json!({"type": "bulk_message_sending", "params": {"channel": "email", "from": from, "subject": "s", "body": "b", "recipients": recipients}})).await;
    let id = job["id"].as_str().unwrap();
    let path = format!("/jobs/{id}");
    stack.wait_until_started(&token, id).await;
    let cancel = stack
        .send("POST", &format!("{path}/cancel"), Some(&token), None)
        .await;
    assert_eq!(cancel.status, 202, "{}", cancel.body);
    assert!(cancel.body["cancel_requested_at"].is_string());
    let done = stack.wait_until_done(&token, id, DONE_WITHIN).await;
    assert_eq!(done["status"], "cancelled", "{done}");
    let (total, succeeded, _) = progress(&done);
    assert!(
        succeeded < total,
        "work stopped early: {succeeded} of {total}"
    );
    let sent = stack.sent_mail(&from).await.len() as u64;
    assert_eq!(
        sent, succeeded,
        "every sent email is counted, nothing more was sent"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        stack.sent_mail(&from).await.len() as u64,
        sent,
        "no further effects after the job ended"
    );
    let again = stack
        .send("POST", &format!("{path}/cancel"), Some(&token), None)
        .await;
    assert_eq!((again.status, again.error_code()), (409, Some("conflict")));
}

#[tokio::test]
async fn a_hidden_job_completes_and_stays_hidden() {
    let stack = Stack::load().await;
    let tenant = fresh_tenant("hidden");
    let token = stack.token(&tenant, "alice", false);
    let job = stack
        .create(&token, &e2e::embedding_job("hide me while I run"))
        .await;
    let id = job["id"].as_str().unwrap();
    assert_eq!(
        stack
            .send("DELETE", &format!("/jobs/{id}"), Some(&token), None)
            .await
            .status,
        204
    );
    let deadline = std::time::Instant::now() + DONE_WITHIN;
    let item = loop {
        let item = stack.job_item(id).await.unwrap();
        if item["status"] == "completed" {
            break item;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "hidden job did not complete: {item}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(item["succeeded"], 1);
    assert!(
        item.get("list_tenant").is_none(),
        "progress writes did not restore list keys"
    );
    assert!(stack.list_all(&token, "").await.concat().is_empty());
    assert_eq!(
        stack
            .send("GET", &format!("/jobs/{id}"), Some(&token), None)
            .await
            .status,
        404
    );
}
