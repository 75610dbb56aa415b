//! A table of bad requests, each answered with the documented status, code and field — and
//! never a 5xx.

use e2e::{Stack, fresh_tenant, json};

#[tokio::test]
async fn bad_requests_get_the_documented_error() {
    let stack = Stack::load().await;
    let tenant = fresh_tenant("bad");
    let token = stack.token(&tenant, "alice", false);
    let bulk = |recipients: serde_json::Value| json!({"type": "bulk_message_sending", "params": {"channel": "email", "from": "a@example.com", "subject": "s", "body": "b", "recipients": recipients}});
    let json_cases: Vec<(serde_json::Value, u16, &str, Option<&str>)> = vec![
        (
            json!({"params": {}}),
            422,
            "validation_failed",
            Some("type"),
        ),
        (
            json!({"type": "reboot", "params": {}}),
            422,
            "validation_failed",
            Some("type"),
        ),
        (
            json!({"type": "ai_text_embedding", "params": {}, "extra": 1}),
            422,
            "validation_failed",
            Some("extra"),
        ),
        (
            json!({"type": "ai_text_embedding", "params": "text"}),
            422,
            "validation_failed",
            Some("params"),
        ),
        (
            json!({"type": "ai_text_embedding", "params": {"documents": []}}),
            422,
            "validation_failed",
            Some("params.documents"),
        ),
        (
            json!({"type": "ai_text_embedding", "params": {"documents": [{"id": "d", "text": "x".repeat(8001)}]}}),
            422,
            "validation_failed",
            Some("params.documents[0].text"),
        ),
        (
            json!({"type": "ai_text_embedding", "params": {"documents": [{"id": "d"}]}}),
            422,
            "validation_failed",
            Some("params.documents[0].text"),
        ),
        (
            json!({"type": "ai_text_embedding", "params": {"documents": [{"id": "d", "text": "x"}], "model": "gpt-9"}}),
            422,
            "validation_failed",
            Some("params.model"),
        ),
        (
            bulk(json!([])),
            422,
            "validation_failed",
            Some("params.recipients"),
        ),
        (
            bulk(json!(["ok@example.com", "nope"])),
            422,
            "validation_failed",
            Some("params.recipients[1]"),
        ),
        (
            bulk(json!(
                (0..10_001)
                    .map(|i| format!("u{i}@example.com"))
                    .collect::<Vec<_>>()
            )),
            422,
            "validation_failed",
            Some("params.recipients"),
        ),
        (
            json!({"type": "session_termination", "params": {}}),
            422,
            "validation_failed",
            Some("params"),
        ),
        (
            json!({"type": "session_termination", "params": {"all_users": true, "idle_for_seconds": 600}}),
            422,
            "validation_failed",
            Some("params"),
        ),
        (
            json!({"type": "session_termination", "params": {"idle_for_seconds": 59}}),
            422,
            "validation_failed",
            Some("params.idle_for_seconds"),
        ),
        (
            json!({"type": "profile_field_update", "params": {"field": "role", "value": "admin", "user_ids": ["u"]}}),
            422,
            "validation_failed",
            Some("params.field"),
        ),
        (
            json!({"type": "profile_field_update", "params": {"field": "locale", "value": [1], "user_ids": ["u"]}}),
            422,
            "validation_failed",
            Some("params.value"),
        ),
        (
            json!({"type": "ai_text_embedding", "tenant": "UPPER", "params": {}}),
            422,
            "validation_failed",
            Some("tenant"),
        ),
        (json!([1, 2, 3]), 422, "validation_failed", Some("body")),
    ];
    for (body, status, code, field) in json_cases {
        let reply = stack.send("POST", "/jobs", Some(&token), Some(&body)).await;
        assert_eq!(
            (reply.status, reply.error_code(), reply.error_field()),
            (status, Some(code), field),
            "{}",
            body.to_string().chars().take(200).collect::<String>()
        );
    }

    let raw_cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("application/json", b"{\"type\": ".to_vec(), 400, "invalid_json"),
        ("application/json", b"".to_vec(), 400, "invalid_json"),
        ("text/plain", b"{}".to_vec(), 415, "unsupported_media_type"),
        ("application/json", [b"{\"type\":\"ai_text_embedding\",\"params\":{\"documents\":[{\"id\":\"a\",\"text\":\"".as_slice(), &vec![b'x'; 5_300_000], b"\"}]}}"].concat(), 413, "payload_too_large"),
    ];
    for (content_type, body, status, code) in raw_cases {
        let len = body.len();
        let request = stack
            .http
            .post(format!("{}/jobs", stack.api))
            .bearer_auth(&token)
            .header("content-type", content_type)
            .body(body);
        let reply = stack.reply(request).await;
        assert_eq!(
            (reply.status, reply.error_code()),
            (status, Some(code)),
            "{content_type}, {len} bytes: {}",
            reply.body
        );
    }

    // A header over 8 KiB is refused by the function (413) before it touches AWS.
    let request = stack
        .http
        .get(format!("{}/jobs", stack.api))
        .bearer_auth(&token)
        .header("x-padding", "p".repeat(9_000));
    let reply = stack.reply(request).await;
    assert_eq!(
        (reply.status, reply.error_code()),
        (413, Some("payload_too_large")),
        "{}",
        reply.body
    );

    let query_cases = [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=x", "limit"),
        ("status=done", "status"),
        ("type=reboot", "type"),
        ("created_from=yesterday", "created_from"),
        ("tenant=NOPE", "tenant"),
        ("cursor=forged.cursor", "cursor"),
        ("sort=asc", "sort"),
        ("status=", "status"),
        ("cursor=", "cursor"),
        ("user=", "user"),
        (
            "created_from=2026-02-01&created_to=2026-01-01",
            "created_from",
        ),
    ];
    for (query, field) in query_cases {
        let reply = stack
            .send("GET", &format!("/jobs?{query}"), Some(&token), None)
            .await;
        assert_eq!(
            (reply.status, reply.error_code(), reply.error_field()),
            (400, Some("invalid_parameter"), Some(field)),
            "{query}"
        );
    }

    let other = [
        ("GET", "/nowhere", 404),
        ("PUT", "/jobs", 405),
        ("GET", "/jobs/not-a-ulid", 404),
        ("GET", "/jobs/01JDEMO00000000000000000000", 404),
    ];
    for (method, path, status) in other {
        let reply = stack.send(method, path, Some(&token), None).await;
        assert_eq!(reply.status, status, "{method} {path}: {}", reply.body);
        assert!(
            reply.error_code().is_some(),
            "error body for {method} {path}"
        );
    }
    assert!(
        stack.list_all(&token, "").await.concat().is_empty(),
        "no bad request created a job"
    );
}
