//! `GET /queues` through the deployed stack: a running job shows in its type's row with
//! chunks left; a message on a dead-letter queue shows in its count; members get 403.

use std::time::Duration;

use e2e::{Stack, fresh_tenant, json};
use serde_json::Value;

async fn health(stack: &Stack, token: &str, job_type: &str) -> Value {
    let reply = stack.send("GET", "/queues", Some(token), None).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["types"].as_array().map(Vec::len), Some(4));
    reply.body["types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["type"] == job_type)
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn a_running_job_and_a_dead_letter_show_in_their_type_s_row() {
    let stack = Stack::load().await;
    let admin = stack.token("ops", "root", true);
    let tenant = fresh_tenant("queues");
    let token = stack.token(&tenant, "alice", false);
    let big = stack.create(&token, &json!({"type": "ai_text_embedding", "params": {"documents": (0..3000).map(|i| json!({"id": format!("d{i}"), "text": "words"})).collect::<Vec<_>>()}})).await;
    let id = big["id"].as_str().unwrap().to_string();
    // While it runs: at least one active job with chunks left.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let row = health(&stack, &admin, "ai_text_embedding").await;
        let active = row["queued"].as_u64().unwrap_or(0) + row["running"].as_u64().unwrap_or(0);
        if row["running"].as_u64().unwrap_or(0) >= 1
            && row["chunks_remaining"].as_u64().unwrap_or(0) > 0
        {
            assert!(active >= 1);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the job never showed as running with chunks left: {row}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        stack
            .send("POST", &format!("/jobs/{id}/cancel"), Some(&token), None)
            .await
            .status,
        202
    );
    stack
        .wait_until_done(&token, &id, Duration::from_secs(120))
        .await;

    let name = format!(
        "{}-dlq-session_termination",
        std::env::var("JOBS_STACK").unwrap_or_else(|_| infra::DEFAULT_STACK.to_string())
    );
    let dlq = stack
        .sqs
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .expect("the DLQ")
        .queue_url
        .unwrap_or_default();
    stack
        .sqs
        .send_message()
        .queue_url(&dlq)
        .message_body(r#"{"kind":"plan","job_id":"x","tenant":"x"}"#)
        .send()
        .await
        .expect("SendMessage");
    let row = health(&stack, &admin, "session_termination").await;
    assert!(row["dlq_messages"].as_u64().unwrap_or(0) >= 1, "{row}");
    stack
        .sqs
        .purge_queue()
        .queue_url(&dlq)
        .send()
        .await
        .expect("PurgeQueue");

    let member = stack.send("GET", "/queues", Some(&token), None).await;
    assert_eq!(
        (member.status, member.error_code()),
        (403, Some("forbidden"))
    );
}
