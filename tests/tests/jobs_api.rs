//! The Jobs API end to end: API Gateway → API function → DynamoDB, S3 and SQS in LocalStack.

use std::collections::HashSet;

use e2e::{Stack, embedding_job, fresh_tenant, json};
use serde_json::Value;

/// Example params of type `t`; a bulk job sends from `<tenant>@example.com`
/// (`Stack::own_sender`).
fn example(t: &str, tenant: &str) -> Value {
    match t {
        "bulk_message_sending" => {
            json!({"channel": "email", "from": format!("{tenant}@example.com"), "subject": "Hello", "body": "Hi there", "recipients": ["a@example.com", "b@example.com", "c@example.com"]})
        }
        "session_termination" => json!({"user_ids": ["u1", "u2", "u3"]}),
        "ai_text_embedding" => {
            json!({"documents": [{"id": "a", "text": "x"}, {"id": "b", "text": "y"}, {"id": "c", "text": "z"}]})
        }
        _ => json!({"field": "locale", "value": "de", "user_ids": ["u1", "u2", "u3"]}),
    }
}

const TYPES: [(&str, &str); 4] = [
    ("bulk_message_sending", "Bulk Message Sending"),
    ("session_termination", "Session Termination"),
    ("ai_text_embedding", "AI Text Embedding"),
    ("profile_field_update", "Profile Field Update"),
];

/// The plan message itself is consumed by the type's worker at once; its exact shape is
/// checked in `worker_reliability.rs`. Here: the record is right and the type's worker
/// received the plan (the job leaves `queued`).
#[tokio::test]
async fn creating_each_type_writes_the_record_and_its_worker_picks_it_up() {
    let stack = Stack::load().await;
    let tenant = fresh_tenant("create");
    let token = stack.token(&tenant, "alice", false);
    stack.own_sender(&tenant).await;
    for (key, label) in TYPES {
        let job = stack
            .create(
                &token,
                &json!({"type": key, "params": example(key, &tenant)}),
            )
            .await;
        assert_eq!(job["type"], key);
        assert_eq!(job["type_label"], label);
        assert_eq!(job["tenant"], tenant.as_str());
        assert_eq!(job["user"], "alice");
        assert_eq!(job["status"], "queued");
        assert_eq!(
            job["progress"],
            json!({"total": 3, "succeeded": 0, "failed": 0, "cancelled": 0, "percent": 0})
        );
        assert!(job["created_at"].as_str().is_some_and(|t| t.ends_with('Z')));
        assert_eq!(
            (job["started_at"].clone(), job["completed_at"].clone()),
            (Value::Null, Value::Null)
        );
        let id = job["id"].as_str().unwrap();

        let item = stack.job_item(id).await.expect("job record in DynamoDB");
        assert_eq!(item["tenant"], tenant.as_str());
        // Its worker may have picked it up already (the poller waits at most 1 s).
        assert!(
            matches!(
                item["status"].as_str(),
                Some("queued" | "running" | "completed" | "completed_with_errors" | "failed")
            ),
            "{item}"
        );
        assert_eq!(item["total"], 3);
        assert_eq!(item["list_tenant"], tenant.as_str());
        assert_eq!(item["list_tenant_user"], format!("{tenant}#alice"));
        assert!(item["expires_at"].as_i64().unwrap() > 0, "TTL set");
        assert_eq!(item["input_key"], format!("inputs/{tenant}/{id}.json"));

        let fetched = stack
            .send("GET", &format!("/jobs/{id}"), Some(&token), None)
            .await;
        assert_eq!(fetched.status, 200);
        assert_eq!(
            (
                &fetched.body["id"],
                &fetched.body["type"],
                &fetched.body["created_at"]
            ),
            (&job["id"], &job["type"], &job["created_at"])
        );
        let ended = stack
            .wait_until_done(&token, id, std::time::Duration::from_secs(120))
            .await;
        assert_eq!(ended["type"], key, "planned by its own worker: {ended}");
    }
}

#[tokio::test]
async fn deleting_hides_the_entry_but_keeps_the_record() {
    let stack = Stack::load().await;
    let tenant = fresh_tenant("hide");
    let token = stack.token(&tenant, "alice", false);
    let kept = stack.create(&token, &embedding_job("kept")).await;
    let hidden = stack.create(&token, &embedding_job("hidden")).await;
    let before: Vec<String> = stack.list_all(&token, "").await.concat();
    let path = format!("/jobs/{}", hidden["id"].as_str().unwrap());
    assert_eq!(
        stack.send("DELETE", &path, Some(&token), None).await.status,
        204
    );
    assert_eq!(
        stack.send("DELETE", &path, Some(&token), None).await.status,
        204,
        "deleting again is fine"
    );
    assert_eq!(
        stack.send("GET", &path, Some(&token), None).await.status,
        404
    );
    let listed: Vec<String> = stack.list_all(&token, "").await.concat();
    assert_eq!(listed, vec![kept["id"].as_str().unwrap().to_string()]);
    let admin = stack.token("ops", "root", true);
    assert!(
        stack
            .list_all(&admin, &format!("q={tenant}"))
            .await
            .concat()
            .len()
            == 1,
        "hidden from admins too"
    );
    let item = stack
        .job_item(hidden["id"].as_str().unwrap())
        .await
        .expect("record kept");
    assert!(item["hidden_at"].is_string());
    assert!(
        item.get("list_tenant").is_none() && item.get("list_month").is_none(),
        "dropped from list indexes"
    );

    // Listed as hidden, then restored in its place, by its tenant only.
    let hidden_id = hidden["id"].as_str().unwrap().to_string();
    assert_eq!(
        stack.list_all(&token, "hidden=true").await.concat(),
        vec![hidden_id.clone()]
    );
    assert_eq!(
        stack
            .list_all(&admin, &format!("hidden=true&tenant={tenant}"))
            .await
            .concat(),
        vec![hidden_id.clone()]
    );
    let mallory = stack.token(&fresh_tenant("mallory"), "mallory", false);
    assert_eq!(
        stack
            .send("POST", &format!("{path}/unhide"), Some(&mallory), None)
            .await
            .status,
        404
    );
    let restored = stack
        .send("POST", &format!("{path}/unhide"), Some(&token), None)
        .await;
    assert_eq!(
        (restored.status, &restored.body["hidden_at"]),
        (200, &Value::Null),
        "{}",
        restored.body
    );
    assert_eq!(
        stack
            .send("POST", &format!("{path}/unhide"), Some(&token), None)
            .await
            .status,
        200,
        "restoring again is fine"
    );
    assert_eq!(
        stack.list_all(&token, "").await.concat(),
        before,
        "back in its place"
    );
    assert!(
        stack
            .list_all(&token, "hidden=true")
            .await
            .concat()
            .is_empty()
    );
}

#[tokio::test]
async fn pagination_covers_every_job_once_newest_first() {
    let stack = Stack::load().await;
    let tenant = fresh_tenant("pages");
    let token = stack.token(&tenant, "alice", false);
    let mut created = Vec::new();
    for chunk in 0..6 {
        let requests = (0..10).map(|i| {
            let body = embedding_job(&format!("doc {chunk}-{i}"));
            let (stack, token) = (&stack, &token);
            async move { stack.create(token, &body).await }
        });
        for job in futures::future::join_all(requests).await {
            created.push(job["id"].as_str().unwrap().to_string());
        }
    }
    let pages = stack.list_all(&token, "limit=25").await;
    assert!(
        pages.len() >= 3,
        "60 jobs in pages of 25: {:?}",
        pages.iter().map(Vec::len).collect::<Vec<_>>()
    );
    assert!(pages.iter().all(|p| p.len() <= 25));
    let listed: Vec<String> = pages.concat();
    let unique: HashSet<&String> = listed.iter().collect();
    assert_eq!(unique.len(), listed.len(), "no duplicates");
    assert_eq!(unique, created.iter().collect::<HashSet<_>>(), "no gaps");
    let mut newest_first = listed.clone();
    newest_first.sort_by(|a, b| b.cmp(a)); // ULIDs sort by creation time
    assert_eq!(listed, newest_first);
}

async fn set_status(stack: &Stack, id: &str, status: &str) {
    stack
        .dynamo
        .update_item()
        .table_name(stack.table())
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("JOB#{id}")),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("JOB".into()),
        )
        .update_expression("SET #s = :s")
        .expression_attribute_names("#s", "status")
        .expression_attribute_values(
            ":s",
            aws_sdk_dynamodb::types::AttributeValue::S(status.into()),
        )
        .send()
        .await
        .expect("UpdateItem");
}

#[tokio::test]
async fn every_filter_and_search_narrows_the_list() {
    let stack = Stack::load().await;
    let tenant = fresh_tenant("filters");
    let alice = stack.token(&tenant, "alice", false);
    let bob = stack.token(&tenant, "Bob", false);
    stack.own_sender(&tenant).await;
    let a1 = stack
        .create(
            &alice,
            &json!({"type": "ai_text_embedding", "params": example("ai_text_embedding", &tenant)}),
        )
        .await;
    let a2 = stack
        .create(
            &alice,
            &json!({"type": "session_termination", "params": example("session_termination", &tenant)}),
        )
        .await;
    let b1 = stack
        .create(
            &bob,
            &json!({"type": "bulk_message_sending", "params": example("bulk_message_sending", &tenant)}),
        )
        .await;
    let b2 = stack
        .create(
            &bob,
            &json!({"type": "profile_field_update", "params": example("profile_field_update", &tenant)}),
        )
        .await;
    let id = |j: &Value| j["id"].as_str().unwrap().to_string();
    // The workers run these jobs; once they have ended, nothing writes their status again
    // and the test sets the statuses it filters on.
    for job in [&a1, &a2, &b1, &b2] {
        stack
            .wait_until_done(&alice, &id(job), std::time::Duration::from_secs(120))
            .await;
    }
    set_status(&stack, &id(&a1), "running").await;
    set_status(&stack, &id(&a2), "completed").await;
    set_status(&stack, &id(&b1), "running").await;
    set_status(&stack, &id(&b2), "failed").await;

    let cases: Vec<(String, Vec<String>)> = vec![
        ("".into(), vec![id(&b2), id(&b1), id(&a2), id(&a1)]),
        ("type=session_termination".into(), vec![id(&a2)]),
        ("status=failed".into(), vec![id(&b2)]),
        ("status=running".into(), vec![id(&b1), id(&a1)]),
        ("user=Bob".into(), vec![id(&b2), id(&b1)]),
        ("user=Bob&status=running".into(), vec![id(&b1)]),
        ("q=bo".into(), vec![id(&b2), id(&b1)]),
        ("q=ALI".into(), vec![id(&a2), id(&a1)]),
        ("q=embed".into(), vec![id(&a1)]),
        ("q=Profile%20Field".into(), vec![id(&b2)]),
        (
            format!("q={}", &tenant[..10]),
            vec![id(&b2), id(&b1), id(&a2), id(&a1)],
        ),
        (
            format!(
                "created_from={}",
                urlenc(a2["created_at"].as_str().unwrap())
            ),
            vec![id(&b2), id(&b1), id(&a2)],
        ),
        (
            format!("created_to={}", urlenc(a2["created_at"].as_str().unwrap())),
            vec![id(&a2), id(&a1)],
        ),
        ("created_to=2000-01-01".into(), vec![]),
        (
            format!("tenant={tenant}&limit=1"),
            vec![id(&b2), id(&b1), id(&a2), id(&a1)],
        ),
    ];
    for (query, expected) in cases {
        assert_eq!(
            stack.list_all(&alice, &query).await.concat(),
            expected,
            "query {query}"
        );
    }
    // Admins list across tenants (the month index) with the same filters.
    let admin = stack.token("ops", "root", true);
    assert_eq!(
        stack
            .list_all(&admin, &format!("q={tenant}&status=failed"))
            .await
            .concat(),
        vec![id(&b2)]
    );
    assert_eq!(
        stack
            .list_all(&admin, &format!("tenant={tenant}&user=alice"))
            .await
            .concat(),
        vec![id(&a2), id(&a1)]
    );
}

fn urlenc(text: &str) -> String {
    text.replace(':', "%3A").replace('+', "%2B")
}

#[tokio::test]
async fn same_idempotency_key_returns_the_same_job_and_a_different_body_conflicts() {
    let stack = Stack::load().await;
    let tenant = fresh_tenant("idem");
    let token = stack.token(&tenant, "alice", false);
    let key = format!("order-{}", ulid::Ulid::new());
    let post = |body: Value| {
        stack.reply(
            stack
                .http
                .post(format!("{}/jobs", stack.api))
                .bearer_auth(&token)
                .header("Idempotency-Key", &key)
                .json(&body),
        )
    };
    let first = post(embedding_job("same")).await;
    let second = post(embedding_job("same")).await;
    assert_eq!((first.status, second.status), (202, 202));
    assert_eq!(first.body["id"], second.body["id"]);
    assert_eq!(
        second
            .headers
            .get("idempotent-replayed")
            .map(|v| v.to_str().unwrap_or("")),
        Some("true")
    );
    let conflict = post(embedding_job("different")).await;
    assert_eq!(
        (conflict.status, conflict.error_code()),
        (409, Some("idempotency_conflict"))
    );
    assert_eq!(
        stack.list_all(&token, "").await.concat().len(),
        1,
        "one job created"
    );
}

#[tokio::test]
async fn openapi_document_is_served_without_a_token() {
    let stack = Stack::load().await;
    let doc = stack.send("GET", "/openapi.json", None, None).await;
    assert_eq!(doc.status, 200);
    assert_eq!(doc.body["openapi"], "3.1.0");
    assert!(doc.body["paths"]["/jobs/{id}"]["delete"].is_object());
}

#[tokio::test]
async fn the_location_of_a_created_job_resolves_to_it_under_the_stage_path() {
    let stack = Stack::load().await;
    let token = stack.token(&fresh_tenant("location"), "alice", false);
    let created = stack
        .send("POST", "/jobs", Some(&token), Some(&embedding_job("hello")))
        .await;
    assert_eq!(created.status, 202, "{}", created.body);
    let location = created
        .headers
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("a Location header");
    let url = reqwest::Url::parse(&format!("{}/jobs", stack.api))
        .and_then(|base| base.join(location))
        .expect("a URL");
    let got = stack.reply(stack.http.get(url).bearer_auth(&token)).await;
    assert_eq!(
        (got.status, &got.body["id"]),
        (200, &created.body["id"]),
        "{}",
        got.body
    );
}

/// `PUT /tenants/{tenant}/limits` as a platform admin; the answer must be `200`.
async fn set_limits(stack: &Stack, tenant: &str, body: Value) {
    let admin = stack.token("ops", "root", true);
    let path = format!("/tenants/{tenant}/limits");
    let reply = stack.send("PUT", &path, Some(&admin), Some(&body)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

/// A tenant's create limit on the deployed stack: of 5 concurrent creates at a limit of 3,
/// exactly 3 are accepted and 2 are `429` with `Retry-After`; a raised limit holds from the
/// next create, without a deploy.
#[tokio::test]
async fn concurrent_creates_at_the_tenants_limit_accept_exactly_the_limit() {
    let stack = Stack::load().await;
    let tenant = fresh_tenant("limits");
    let path = format!("/tenants/{tenant}/limits");
    set_limits(&stack, &tenant, json!({"creates_per_minute": 3})).await;
    // The count is per UTC minute: start early in one.
    let second = jobs_core::clock::now().second();
    if second >= 45 {
        tokio::time::sleep(std::time::Duration::from_secs(u64::from(61 - second))).await;
    }
    let token = stack.token(&tenant, "alice", false);
    let body = embedding_job("limited");
    let replies = futures::future::join_all(
        (0..5).map(|_| stack.send("POST", "/jobs", Some(&token), Some(&body))),
    )
    .await;
    let mut statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    statuses.sort();
    assert_eq!(statuses, [202, 202, 202, 429, 429]);
    for refused in replies.iter().filter(|r| r.status == 429) {
        let wait: u64 = refused.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&wait), "{wait}");
        assert_eq!(refused.error_code(), Some("too_many_requests"));
    }
    let usage = stack.send("GET", &path, Some(&token), None).await;
    assert_eq!(usage.body["usage"]["creates_this_minute"], 3);
    set_limits(&stack, &tenant, json!({"creates_per_minute": 4})).await;
    assert_eq!(
        stack
            .send("POST", "/jobs", Some(&token), Some(&body))
            .await
            .status,
        202,
        "a raised limit holds at once"
    );
}

/// A tenant's running and queued limits on the deployed stack, on Profile Field Update's
/// queue (bulk.rs leaves hundreds of AI Text Embedding jobs on theirs). With
/// `max_running_jobs` 1 a big job runs; of 5 concurrent creates at `max_queued_jobs` 3 exactly 3 are accepted (the
/// others `429` with `Retry-After`) and wait with `waiting_for: "tenant_limit"`; a raised
/// `max_running_jobs` starts the first in line while the big job still runs (no deploy);
/// cancelling the big job starts the next; all complete, started in creation order.
#[tokio::test]
async fn jobs_past_the_running_limit_wait_in_line_and_start_as_running_ones_end() {
    let stack = Stack::load().await;
    let tenant = fresh_tenant("running");
    let path = format!("/tenants/{tenant}/limits");
    set_limits(
        &stack,
        &tenant,
        json!({"max_running_jobs": 1, "max_queued_jobs": 3}),
    )
    .await;
    let token = stack.token(&tenant, "alice", false);
    // Users that do not exist: each item fails after its write is tried, so the job runs
    // through every item and ends; 10,000 of them (the most a job takes inline) keep it
    // running until the test cancels it (3,000 once ended first in CI).
    let users: Vec<String> = (0..10_000).map(|i| format!("ghost-{i}")).collect();
    let big = stack
        .create(
            &token,
            &json!({"type": "profile_field_update", "params": {"field": "locale", "value": "de-DE", "user_ids": users}}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Running: its plan took the tenant's one running slot.
    loop {
        let job = stack
            .send("GET", &format!("/jobs/{big}"), Some(&token), None)
            .await
            .body;
        if job["status"] == "running" {
            break;
        }
        assert_eq!(job["status"], "queued", "{job}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    let body = json!({"type": "profile_field_update", "params": {"field": "locale", "value": "de-DE", "user_ids": ["ghost"]}});
    let replies = futures::future::join_all(
        (0..5).map(|_| stack.send("POST", "/jobs", Some(&token), Some(&body))),
    )
    .await;
    let mut statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    statuses.sort();
    assert_eq!(statuses, [202, 202, 202, 429, 429]);
    for refused in replies.iter().filter(|r| r.status == 429) {
        assert!(refused.headers.contains_key("retry-after"));
    }
    let mut small: Vec<String> = replies
        .iter()
        .filter(|r| r.status == 202)
        .map(|r| r.body["id"].as_str().unwrap().to_string())
        .collect();
    small.sort();
    for id in &small {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let job = stack
                .send("GET", &format!("/jobs/{id}"), Some(&token), None)
                .await
                .body;
            if job["waiting_for"] == "tenant_limit" {
                assert_eq!(job["status"], "queued");
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{job}");
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
    let usage = stack.send("GET", &path, Some(&token), None).await.body;
    assert_eq!(
        (
            usage["usage"]["queued_jobs"].as_u64(),
            usage["usage"]["running_jobs"]["profile_field_update"].as_u64(),
            usage["usage"]["waiting_jobs"]["profile_field_update"].as_u64()
        ),
        (Some(3), Some(1), Some(3)),
        "{usage}"
    );

    // A raised limit starts the first in line while the big job runs.
    set_limits(&stack, &tenant, json!({"max_running_jobs": 2})).await;
    let first = stack
        .wait_until_done(&token, &small[0], std::time::Duration::from_secs(60))
        .await;
    let running = stack
        .send("GET", &format!("/jobs/{big}"), Some(&token), None)
        .await
        .body;
    assert_eq!(
        (first["status"].as_str(), running["status"].as_str()),
        (Some("failed"), Some("running")),
        "the first in line ran beside the big job: {running}"
    );
    // The big job ends (cancelled): the rest start.
    let cancel = stack
        .send("POST", &format!("/jobs/{big}/cancel"), Some(&token), None)
        .await;
    assert_eq!(cancel.status, 202, "{}", cancel.body);
    let mut started = Vec::new();
    for id in &small {
        let done = stack
            .wait_until_done(&token, id, std::time::Duration::from_secs(60))
            .await;
        // Its one user does not exist: the job ran and ended failed.
        assert_eq!(done["status"], "failed", "{done}");
        started.push(done["started_at"].as_str().unwrap().to_string());
    }
    let mut in_order = started.clone();
    in_order.sort();
    assert_eq!(started, in_order, "started in creation order");
    stack
        .wait_until_done(&token, &big, std::time::Duration::from_secs(60))
        .await;
    let usage = stack.send("GET", &path, Some(&token), None).await.body;
    assert_eq!(
        (
            usage["usage"]["queued_jobs"].as_u64(),
            usage["usage"]["running_jobs"]["profile_field_update"].as_u64(),
            usage["usage"]["waiting_jobs"]["profile_field_update"].as_u64()
        ),
        (Some(0), Some(0), Some(0)),
        "every job taken off once: {usage}"
    );
}

/// The `PUT` an upload's answer describes, to `url` (the answer's own or a changed one).
fn upload_put(
    stack: &Stack,
    url: &str,
    upload: &Value,
    body: &'static str,
) -> reqwest::RequestBuilder {
    let mut put = stack.http.put(url).body(body);
    for (name, value) in upload["headers"].as_object().unwrap() {
        put = put.header(name.as_str(), value.as_str().unwrap());
    }
    put
}

#[tokio::test]
async fn an_upload_url_writes_one_file_of_its_tenant_with_the_declared_type_and_nothing_else() {
    let stack = Stack::load().await;
    let tenant = fresh_tenant("upload");
    let operator = stack.token(&tenant, "alice", false);
    let created = stack
        .send(
            "POST",
            "/uploads",
            Some(&operator),
            Some(&json!({"content_type": "text/csv"})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let upload = created.body;
    let (id, url) = (
        upload["upload_id"].as_str().unwrap(),
        upload["url"].as_str().unwrap(),
    );
    assert_eq!(upload["method"], "PUT");
    assert_eq!(upload["max_bytes"], 5u64 * 1024 * 1024 * 1024);
    assert_eq!(upload["headers"]["if-none-match"], "*");
    assert_eq!(upload["headers"]["content-type"], "text/csv");

    // A tampered URL (another key, here another tenant's) or a changed signed header is
    // refused, and writes nothing.
    let elsewhere = url.replace(&format!("uploads/{tenant}/"), "uploads/someone-else/");
    assert_ne!(elsewhere, url);
    let tampered = stack
        .reply(upload_put(&stack, &elsewhere, &upload, "email\n"))
        .await;
    assert_eq!(tampered.status, 403, "{}", tampered.body);
    let retyped = stack
        .reply(upload_put(&stack, url, &upload, "email\n").header("content-type", "text/plain"))
        .await;
    assert_eq!(retyped.status, 403, "{}", retyped.body);

    // The URL as given writes the file once, under the tenant's prefix, with its type.
    let first = stack
        .reply(upload_put(&stack, url, &upload, "email\na@example.com\n"))
        .await;
    assert_eq!(first.status, 200, "{}", first.body);
    let second = stack
        .reply(upload_put(&stack, url, &upload, "email\nb@example.com\n"))
        .await;
    assert_eq!(second.status, 412, "written once: {}", second.body);
    let s3 = jobs_core::aws::s3_client(&stack.config);
    let object = s3
        .get_object()
        .bucket(&stack.outputs["InputBucketName"])
        .key(format!("uploads/{tenant}/{id}"))
        .send()
        .await
        .expect("the uploaded file");
    assert_eq!(object.content_type(), Some("text/csv"));
    let body = object.body.collect().await.unwrap().into_bytes();
    assert_eq!(&body[..], b"email\na@example.com\n");

    // The page's origin may PUT from a browser; another origin may not.
    for (origin, allowed) in [
        ("http://127.0.0.1:4566", true),
        ("https://evil.example", false),
    ] {
        let preflight = stack
            .http
            .request(reqwest::Method::OPTIONS, url)
            .header("origin", origin)
            .header("access-control-request-method", "PUT")
            .header(
                "access-control-request-headers",
                "content-type,if-none-match",
            )
            .send()
            .await
            .unwrap();
        let allow = preflight
            .headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        assert_eq!(
            allow.as_deref() == Some(origin),
            allowed,
            "{origin}: {} {allow:?}",
            preflight.status()
        );
    }

    // Only what a job reads (the unit tests name every refused field), never by a viewer.
    let refused = stack
        .send(
            "POST",
            "/uploads",
            Some(&operator),
            Some(&json!({"content_type": "text/plain"})),
        )
        .await;
    assert_eq!(
        (refused.status, refused.error_field()),
        (422, Some("content_type"))
    );
    let viewer = stack.token_as(&tenant, "vera", jobs_core::domain::auth::Role::Viewer);
    let refused = stack
        .send(
            "POST",
            "/uploads",
            Some(&viewer),
            Some(&json!({"content_type": "text/csv"})),
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
}

#[tokio::test]
async fn an_expired_presigned_url_is_refused_by_the_bucket() {
    let stack = Stack::load().await;
    let s3 = jobs_core::aws::s3_client(&stack.config);
    let presigned = s3
        .put_object()
        .bucket(&stack.outputs["InputBucketName"])
        .key(format!("uploads/{}/expired", fresh_tenant("expired")))
        .presigned(
            aws_sdk_s3::presigning::PresigningConfig::expires_in(std::time::Duration::from_secs(1))
                .unwrap(),
        )
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let late = stack
        .reply(stack.http.put(presigned.uri()).body("email\n"))
        .await;
    assert_eq!(late.status, 403, "{}", late.body);
}
