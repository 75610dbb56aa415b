use std::sync::atomic::Ordering;

use serde_json::{Value, json};

use super::*;
use crate::api::{ExportStatus, Settings, export_csv_key};
use crate::tokens::{Claims, mint};
use jobs_core::JobType;
use jobs_core::clock;
use jobs_core::domain::auth::Role;
use jobs_core::domain::record::{JobRecord, NewJob};
use jobs_core::memory::{MemoryInputs, MemoryPorts, MemoryQueue, MemorySenders, MemoryStore};
use jobs_core::ports::InputStore;

const SECRET: &[u8] = b"test-secret-test-secret-test-sec";

type Api = JobsApi<MemoryPorts>;

/// The API over in-memory adapters; tenant `acme` sends from `example.com`.
fn api() -> Api {
    let store = MemoryStore::default();
    store.register_sender("acme", "example.com");
    Api::new(
        store,
        MemoryInputs::default(),
        MemoryQueue::default(),
        MemorySenders::default(),
        jobs_core::memory::observers(),
        Settings::dev_tokens(SECRET, 90),
    )
}

fn token(tenant: &str, user: &str, role: Role) -> String {
    let exp = clock::now().unix_timestamp() as u64 + 600;
    let claims = Claims {
        sub: user.into(),
        tenant: tenant.into(),
        role,
        exp,
        nbf: None,
        iat: None,
    };
    format!("Bearer {}", mint(SECRET, &claims).unwrap())
}

fn member() -> String {
    token("acme", "alice", Role::Operator)
}

fn request(method: &str, path: &str, auth: Option<&str>) -> HttpRequest {
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    if let Some(a) = auth {
        headers.push(("authorization".to_string(), a.to_string()));
    }
    HttpRequest {
        method: method.into(),
        path: path.into(),
        query: vec![],
        headers,
        body: vec![],
        ..HttpRequest::default()
    }
}

async fn call(api: &Api, req: HttpRequest) -> (u16, Value) {
    let resp = api.handle(req).await;
    let body = if resp.body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&resp.body).unwrap()
    };
    (resp.status, body)
}

async fn post(api: &Api, auth: &str, body: Value) -> (u16, Value) {
    let mut req = request("POST", "/jobs", Some(auth));
    req.body = serde_json::to_vec(&body).unwrap();
    call(api, req).await
}

async fn list(api: &Api, auth: &str, query: &[(&str, &str)]) -> (u16, Value) {
    let mut req = request("GET", "/jobs", Some(auth));
    req.query = query
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    call(api, req).await
}

fn embedding_job() -> Value {
    json!({"type": "ai_text_embedding", "params": {"documents": [{"id": "d1", "text": "hello"}]}})
}

fn example_params(t: JobType) -> Value {
    match t {
        JobType::BulkMessageSending => {
            json!({"channel": "email", "from": "ops@example.com", "subject": "Hi", "body": "Hello", "recipients": ["a@example.com", "b@example.com"]})
        }
        JobType::SessionTermination => json!({"user_ids": ["u1", "u2"]}),
        JobType::AiTextEmbedding => {
            json!({"documents": [{"id": "d1", "text": "x"}, {"id": "d2", "text": "y"}]})
        }
        JobType::ProfileFieldUpdate => {
            json!({"field": "locale", "value": "de", "user_ids": ["u1", "u2"]})
        }
    }
}

#[tokio::test]
async fn creating_each_type_stores_input_writes_the_job_and_enqueues_its_plan() {
    let api = api();
    for t in JobType::ALL {
        let (status, job) = post(
            &api,
            &member(),
            json!({"type": t.key(), "params": example_params(t)}),
        )
        .await;
        assert_eq!(status, 202, "{job}");
        assert_eq!(job["type"], t.key());
        assert_eq!(job["type_label"], t.label());
        assert_eq!(job["tenant"], "acme");
        assert_eq!(job["user"], "alice");
        assert_eq!(job["status"], "queued");
        assert_eq!(
            job["progress"],
            json!({"total": 2, "succeeded": 0, "failed": 0, "cancelled": 0, "percent": 0})
        );
        let id = job["id"].as_str().unwrap();
        let stored = api.store.job(id).unwrap();
        assert!(
            api.inputs
                .objects
                .lock()
                .unwrap()
                .contains_key(&stored.input_key)
        );
        let sent = api.queue.sent.lock().unwrap().last().cloned().unwrap();
        assert_eq!(
            sent,
            (
                t,
                jobs_core::ports::WorkMessage::Plan {
                    job_id: id.into(),
                    tenant: "acme".into(),
                    woken: false,
                }
            )
        );
    }
}

#[tokio::test]
async fn a_job_id_carries_its_creation_millisecond() {
    let api = api();
    for _ in 0..20 {
        let (_, job) = post(&api, &member(), embedding_job()).await;
        let id = ulid::Ulid::from_string(job["id"].as_str().unwrap()).unwrap();
        let created = time::OffsetDateTime::parse(
            job["created_at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        assert_eq!(
            u128::from(id.timestamp_ms()),
            (created.unix_timestamp_nanos() / 1_000_000) as u128,
            "{job}"
        );
    }
}

#[tokio::test]
async fn a_bulk_job_from_a_sender_ses_has_not_verified_is_refused_before_anything_is_written() {
    let api = api();
    // SES no longer verifies the domain the example params send from.
    api.senders.identities.lock().unwrap().clear();
    let (status, body) = post(&api, &member(), json!({"type": "bulk_message_sending", "params": example_params(JobType::BulkMessageSending)})).await;
    assert_eq!(
        (
            status,
            body["error"]["code"].as_str(),
            body["error"]["field"].as_str()
        ),
        (422, Some("validation_failed"), Some("params.from")),
        "{body}"
    );
    assert!(
        api.inputs.objects.lock().unwrap().is_empty(),
        "no input stored"
    );
    assert!(
        api.queue.sent.lock().unwrap().is_empty(),
        "nothing enqueued"
    );
}

/// (content type, body, status, error code, field)
type BodyCase = (
    Option<&'static str>,
    Vec<u8>,
    u16,
    &'static str,
    Option<&'static str>,
);

#[tokio::test]
async fn bad_bodies_get_the_documented_error() {
    let api = api();
    let cases: Vec<BodyCase> = vec![
        (
            Some("text/plain"),
            b"{}".to_vec(),
            415,
            "unsupported_media_type",
            None,
        ),
        (None, b"{}".to_vec(), 415, "unsupported_media_type", None),
        (
            Some("application/json"),
            b"{\"type\":".to_vec(),
            400,
            "invalid_json",
            None,
        ),
        (
            Some("application/json"),
            b"[1,2]".to_vec(),
            422,
            "validation_failed",
            Some("body"),
        ),
        (
            Some("application/json"),
            br#"{"params":{}}"#.to_vec(),
            422,
            "validation_failed",
            Some("type"),
        ),
        (
            Some("application/json"),
            br#"{"type":"reboot","params":{}}"#.to_vec(),
            422,
            "validation_failed",
            Some("type"),
        ),
        (
            Some("application/json"),
            br#"{"type":"ai_text_embedding","params":{},"x":1}"#.to_vec(),
            422,
            "validation_failed",
            Some("x"),
        ),
        (
            Some("application/json; charset=utf-8"),
            br#"{"type":"ai_text_embedding","params":{"documents":[]}}"#.to_vec(),
            422,
            "validation_failed",
            Some("params.documents"),
        ),
        (
            Some("application/json"),
            br#"{"type":"ai_text_embedding","tenant":"Not A Slug","params":{}}"#.to_vec(),
            422,
            "validation_failed",
            Some("tenant"),
        ),
        (
            Some("application/json"),
            vec![b' '; MAX_BODY_BYTES + 1],
            413,
            "payload_too_large",
            None,
        ),
    ];
    for (content_type, body, status, code, field) in cases {
        let mut req = request("POST", "/jobs", Some(&member()));
        req.headers.retain(|(n, _)| n != "content-type");
        if let Some(ct) = content_type {
            req.headers.push(("content-type".into(), ct.into()));
        }
        req.body = body;
        let (got, err) = call(&api, req).await;
        assert_eq!(
            (
                got,
                err["error"]["code"].as_str(),
                err["error"]["field"].as_str()
            ),
            (status, Some(code), field),
            "{err}"
        );
    }
    assert!(
        api.store.job("x").is_none() && api.queue.sent.lock().unwrap().is_empty(),
        "nothing stored for bad input"
    );
}

#[tokio::test]
async fn members_cannot_create_for_or_see_other_tenants() {
    let api = api();
    let (status, err) = post(
        &api,
        &member(),
        json!({"type": "ai_text_embedding", "tenant": "globex", "params": {}}),
    )
    .await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (403, Some("tenant"))
    );
    let (status, job) = post(&api, &token("root", "ops", Role::PlatformAdmin), json!({"type": "ai_text_embedding", "tenant": "globex", "params": {"documents": [{"id": "a", "text": "b"}]}})).await;
    assert_eq!((status, job["tenant"].as_str()), (202, Some("globex")));
    let path = format!("/jobs/{}", job["id"].as_str().unwrap());
    assert_eq!(
        call(&api, request("GET", &path, Some(&member()))).await.0,
        404
    );
    assert_eq!(
        call(&api, request("DELETE", &path, Some(&member())))
            .await
            .0,
        404
    );
    assert_eq!(
        call(
            &api,
            request("GET", &path, Some(&token("globex", "bob", Role::Operator)))
        )
        .await
        .0,
        200
    );
    assert_eq!(list(&api, &member(), &[("tenant", "globex")]).await.0, 403);
}

#[tokio::test]
async fn auth_failures_are_401_with_a_body_and_an_rfc_6750_challenge() {
    let api = api();
    for (auth, challenge) in [
        (None, "Bearer"),
        (
            Some("Bearer nope"),
            "Bearer error=\"invalid_token\", error_description=\"invalid token\"",
        ),
        (
            Some("Basic dXNlcjpwYXNz"),
            "Bearer error=\"invalid_token\", error_description=\"Authorization must be `Bearer <token>`\"",
        ),
    ] {
        let response = api.handle(request("GET", "/jobs", auth)).await;
        let err: Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(
            (response.status, err["error"]["code"].as_str()),
            (401, Some("unauthorized"))
        );
        let header = response
            .headers
            .iter()
            .find(|(n, _)| n == "www-authenticate")
            .map(|(_, v)| v.as_str());
        assert_eq!(header, Some(challenge), "{auth:?}");
    }
}

#[tokio::test]
async fn with_dev_tokens_off_an_hs256_token_is_401() {
    let settings = Settings {
        dev_tokens: false,
        ..Settings::dev_tokens(SECRET, 90)
    };
    let api = Api::serving(
        crate::api::Jobs::new(
            MemoryStore::default(),
            MemoryInputs::default(),
            MemoryQueue::default(),
            MemorySenders::default(),
            jobs_core::memory::observers(),
            90,
        ),
        settings,
        None,
    );
    let (status, _) = call(&api, request("GET", "/jobs", Some(&member()))).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn idempotency_key_replays_the_same_job_and_refuses_a_different_body() {
    let api = api();
    let with_key = |body: Value, key: &str| {
        let mut req = request("POST", "/jobs", Some(&member()));
        req.headers.push(("idempotency-key".into(), key.into()));
        req.body = serde_json::to_vec(&body).unwrap();
        req
    };
    let first = api.handle(with_key(embedding_job(), "k-1")).await;
    let second = api.handle(with_key(embedding_job(), "k-1")).await;
    assert_eq!((first.status, second.status), (202, 202));
    let id = |r: &HttpResponse| serde_json::from_slice::<Value>(&r.body).unwrap()["id"].clone();
    assert_eq!(id(&first), id(&second));
    assert!(
        second
            .headers
            .contains(&("idempotent-replayed".into(), "true".into()))
    );
    let mut other = embedding_job();
    other["params"]["documents"][0]["text"] = json!("changed");
    let (status, err) = call(&api, with_key(other, "k-1")).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (409, Some("idempotency_conflict"))
    );
    let (status, err) = call(&api, with_key(embedding_job(), "bad key with spaces")).await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (400, Some("Idempotency-Key"))
    );
}

#[tokio::test]
async fn a_job_that_cannot_be_queued_fails_visibly_with_503() {
    let api = api();
    api.queue.broken.store(true, Ordering::Relaxed);
    let (status, err) = post(&api, &member(), embedding_job()).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (503, Some("service_unavailable"))
    );
    let (_, page) = list(&api, &member(), &[]).await;
    assert_eq!(page["items"][0]["status"], "failed");
}

#[tokio::test]
async fn hiding_removes_from_lists_and_get_but_twice_is_fine() {
    let api = api();
    let (_, job) = post(&api, &member(), embedding_job()).await;
    let path = format!("/jobs/{}", job["id"].as_str().unwrap());
    assert_eq!(
        call(&api, request("GET", &path, Some(&member()))).await.0,
        200
    );
    assert_eq!(
        call(&api, request("DELETE", &path, Some(&member())))
            .await
            .0,
        204
    );
    assert_eq!(
        call(&api, request("DELETE", &path, Some(&member())))
            .await
            .0,
        204
    );
    assert_eq!(
        call(&api, request("GET", &path, Some(&member()))).await.0,
        404
    );
    assert_eq!(list(&api, &member(), &[]).await.1["items"], json!([]));
    assert!(
        api.store.job(job["id"].as_str().unwrap()).is_some(),
        "the record stays"
    );
    assert_eq!(
        call(
            &api,
            request("DELETE", "/jobs/01JDOESNOTEXIST0000000000", Some(&member()))
        )
        .await
        .0,
        404
    );
    assert_eq!(
        call(&api, request("GET", "/jobs/not-an-id", Some(&member())))
            .await
            .0,
        404
    );
}

fn seeded(api: &Api, n: usize, tenant: &str, month: &str, status: jobs_core::JobStatus) {
    for i in 0..n {
        let id = ulid::Ulid::new().to_string();
        let mut r = JobRecord::new(NewJob {
            id,
            job_type: JobType::ALL[i % 4],
            tenant: tenant.into(),
            user: if i % 2 == 0 {
                "alice".into()
            } else {
                "Bob".into()
            },
            created_at: format!("{month}-10T10:00:{:02}.{:03}Z", i / 1000 % 60, i % 1000),
            month: month.into(),
            total: 1,
            summary: json!({}),
            input_key: String::new(),
            expires_at: 0,
        });
        r.status = status;
        api.store.insert(r);
    }
}

async fn all_pages(api: &Api, auth: &str, query: &[(&str, &str)]) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut q: Vec<(&str, &str)> = query.to_vec();
        if let Some(c) = cursor.as_deref() {
            q.push(("cursor", c));
        }
        let (status, page) = list(api, auth, &q).await;
        assert_eq!(status, 200, "{page}");
        pages.push(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|j| j["created_at"].as_str().unwrap().to_string())
                .collect(),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return pages,
        }
        assert!(pages.len() < 100, "pagination does not end");
    }
}

#[tokio::test]
async fn pagination_returns_every_job_once_newest_first() {
    let api = api();
    seeded(&api, 60, "acme", "2026-11", jobs_core::JobStatus::Queued);
    seeded(&api, 5, "globex", "2026-11", jobs_core::JobStatus::Queued);
    let pages = all_pages(&api, &member(), &[("limit", "25")]).await;
    assert_eq!(
        pages.iter().map(Vec::len).take(3).collect::<Vec<_>>(),
        vec![25, 25, 10]
    );
    let all: Vec<String> = pages.concat();
    let mut sorted = all.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    sorted.dedup();
    assert_eq!(all, sorted, "newest first, no duplicates");
    assert_eq!(all.len(), 60);
    // Unfiltered pages read exactly the rows they return.
    let evaluated: u32 = api
        .store
        .queries
        .lock()
        .unwrap()
        .iter()
        .map(|q| q.limit)
        .sum();
    assert!(evaluated <= 60 + 25, "evaluated {evaluated}");
}

#[tokio::test]
async fn filters_and_search_narrow_the_listing() {
    let api = api();
    seeded(&api, 40, "acme", "2026-11", jobs_core::JobStatus::Completed);
    seeded(&api, 3, "acme", "2026-11", jobs_core::JobStatus::Failed);
    let count = |pages: Vec<Vec<String>>| pages.concat().len();
    assert_eq!(
        count(all_pages(&api, &member(), &[("status", "failed"), ("limit", "2")]).await),
        3
    );
    assert_eq!(
        count(all_pages(&api, &member(), &[("type", "session_termination")]).await),
        11
    );
    assert_eq!(
        count(all_pages(&api, &member(), &[("user", "Bob")]).await),
        21
    );
    assert_eq!(count(all_pages(&api, &member(), &[("q", "bo")]).await), 21);
    assert_eq!(
        count(all_pages(&api, &member(), &[("q", "embed")]).await),
        11
    );
    assert_eq!(count(all_pages(&api, &member(), &[("q", "acm")]).await), 43);
    assert_eq!(
        count(all_pages(&api, &member(), &[("created_from", "2026-11-11")]).await),
        0
    );
    assert_eq!(
        count(
            all_pages(
                &api,
                &member(),
                &[("created_to", "2026-11-10T10:00:00.005Z")]
            )
            .await
        ),
        9
    );
}

#[tokio::test]
async fn admins_list_across_tenants_and_months() {
    let api = api();
    let now = clock::now();
    let this_month = clock::month_of(now);
    let two_back = clock::previous_month(&clock::previous_month(&this_month).unwrap()).unwrap();
    seeded(&api, 7, "acme", &this_month, jobs_core::JobStatus::Queued);
    seeded(&api, 6, "globex", &two_back, jobs_core::JobStatus::Queued);
    let admin = token("root", "ops", Role::PlatformAdmin);
    let pages = all_pages(&api, &admin, &[("limit", "5")]).await;
    assert_eq!(pages.concat().len(), 13);
    assert_eq!(
        all_pages(&api, &admin, &[("tenant", "globex")])
            .await
            .concat()
            .len(),
        6
    );
}

#[tokio::test]
async fn cursors_are_bound_to_caller_and_filters() {
    let api = api();
    seeded(&api, 30, "acme", "2026-11", jobs_core::JobStatus::Queued);
    seeded(&api, 30, "globex", "2026-11", jobs_core::JobStatus::Queued);
    let (_, page) = list(&api, &member(), &[("limit", "10")]).await;
    let cursor = page["next_cursor"].as_str().unwrap();
    let other = token("globex", "bob", Role::Operator);
    for (auth, query) in [
        (other.as_str(), vec![("limit", "10"), ("cursor", cursor)]),
        (
            member().as_str(),
            vec![("status", "queued"), ("cursor", cursor)],
        ),
        (member().as_str(), vec![("cursor", "eyJ4Ijoi.forged")]),
    ] {
        let (status, err) = list(&api, auth, &query).await;
        assert_eq!(
            (status, err["error"]["field"].as_str()),
            (400, Some("cursor")),
            "{err}"
        );
    }
}

#[tokio::test]
async fn routes_methods_and_openapi() {
    let api = api();
    assert_eq!(
        call(&api, request("GET", "/nope", Some(&member()))).await.0,
        404
    );
    let allowed = [
        ("PUT", "/jobs", "GET, POST"),
        ("PATCH", "/jobs/01J", "GET, DELETE"),
        ("GET", "/jobs/01J/cancel", "POST"),
        ("GET", "/jobs/01J/retry", "POST"),
        ("POST", "/jobs/01J/items", "GET"),
        ("POST", "/jobs/01J/events", "GET"),
        ("DELETE", "/audit", "GET"),
        ("PUT", "/schedules", "GET, POST"),
        ("POST", "/schedules/01J", "GET, PATCH, DELETE"),
        ("GET", "/schedules/01J/run", "POST"),
        ("POST", "/schedules/preview", "GET"),
        ("PUT", "/api-keys", "GET, POST"),
        ("GET", "/api-keys/0123456789ab", "DELETE"),
        ("PATCH", "/senders", "GET, POST"),
        ("GET", "/senders/a@example.com", "DELETE"),
        ("POST", "/tenants/acme/limits", "GET, PUT"),
        ("GET", "/uploads", "POST"),
        ("POST", "/openapi.json", "GET, HEAD"),
        ("DELETE", "/", "GET, HEAD"),
    ];
    for (method, path, allow) in allowed {
        let response = api.handle(request(method, path, Some(&member()))).await;
        let header = response
            .headers
            .iter()
            .find(|(n, _)| n == "allow")
            .map(|(_, v)| v.as_str());
        assert_eq!(
            (response.status, header),
            (405, Some(allow)),
            "{method} {path}"
        );
    }
    let (status, doc) = call(&api, request("GET", "/openapi.json", None)).await;
    assert_eq!((status, doc["openapi"].as_str()), (200, Some("3.1.0")));
    let mut operations: Vec<String> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "post", "delete", "put", "patch"] {
            if item.get(method).is_some() {
                operations.push(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    operations.sort();
    let mut expected = vec![
        "DELETE /jobs/{id}",
        "GET /audit",
        "GET /jobs",
        "GET /jobs/{id}",
        "GET /jobs/{id}/events",
        "GET /jobs/{id}/items",
        "POST /jobs/{id}/items/export",
        "GET /jobs/{id}/items/export/{export_id}",
        "GET /me",
        "GET /metrics",
        "GET /openapi.json",
        "GET /queues",
        "POST /jobs",
        "POST /jobs/bulk",
        "POST /uploads",
        "POST /jobs/{id}/cancel",
        "POST /jobs/{id}/retry",
        "POST /jobs/{id}/unhide",
        "GET /schedules",
        "POST /schedules",
        "GET /schedules/preview",
        "GET /schedules/{id}",
        "PATCH /schedules/{id}",
        "DELETE /schedules/{id}",
        "POST /schedules/{id}/run",
        "GET /api-keys",
        "POST /api-keys",
        "DELETE /api-keys/{id}",
        "GET /senders",
        "POST /senders",
        "DELETE /senders/{sender}",
        "GET /tenants/{tenant}/limits",
        "PUT /tenants/{tenant}/limits",
    ];
    expected.sort();
    assert_eq!(operations, expected);
    for code in
        doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"]
            .as_array()
            .unwrap()
    {
        let parsed: Result<jobs_core::ErrorCode, _> = serde_json::from_value(code.clone());
        assert!(parsed.is_ok(), "{code} is not an ErrorCode");
    }
}

#[tokio::test]
async fn cancel_ends_a_queued_job_and_refuses_finished_or_foreign_ones() {
    let api = api();
    let (_, job) = post(&api, &member(), embedding_job()).await;
    let path = format!("/jobs/{}/cancel", job["id"].as_str().unwrap());
    assert_eq!(
        call(
            &api,
            request("POST", &path, Some(&token("globex", "bob", Role::Operator)))
        )
        .await
        .0,
        404
    );
    let (status, cancelled) = call(&api, request("POST", &path, Some(&member()))).await;
    assert_eq!(
        (status, cancelled["status"].as_str()),
        (202, Some("cancelled"))
    );
    assert!(cancelled["cancel_requested_at"].is_string() && cancelled["completed_at"].is_string());
    let (status, err) = call(&api, request("POST", &path, Some(&member()))).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (409, Some("conflict"))
    );
    assert_eq!(
        call(&api, request("GET", &path, Some(&member()))).await.0,
        405
    );
}

#[tokio::test]
async fn a_job_cancelled_while_queued_has_every_item_cancelled_listed_and_retried() {
    let api = api();
    let body = json!({"type": "profile_field_update", "params": {"field": "nickname", "value": "z", "user_ids": ["a", "b", "c"]}});
    let (_, job) = post(&api, &member(), body).await;
    let id = job["id"].as_str().unwrap().to_string();
    let items = format!("/jobs/{id}/items");
    let json = |r: HttpResponse| -> Value { serde_json::from_slice(&r.body).unwrap() };
    let queued = json(get_with(&api, &member(), &items, &[]).await);
    let outcomes = |page: &Value| {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["item"].as_str().unwrap().to_string(),
                    i["outcome"].as_str().unwrap().to_string(),
                )
            })
            .collect::<Vec<_>>()
    };
    let pending = ["a", "b", "c"]
        .map(|u| (u.to_string(), "pending".to_string()))
        .to_vec();
    assert_eq!(
        (outcomes(&queued), queued["listed"].as_bool()),
        (pending, Some(true)),
        "a queued job lists its items as pending: {queued}"
    );

    let (status, cancelled) = call(
        &api,
        request("POST", &format!("/jobs/{id}/cancel"), Some(&member())),
    )
    .await;
    assert_eq!(
        (
            status,
            cancelled["progress"]["total"].as_u64(),
            cancelled["progress"]["cancelled"].as_u64()
        ),
        (202, Some(3), Some(3)),
        "{cancelled}"
    );
    let after = json(get_with(&api, &member(), &items, &[]).await);
    assert_eq!(
        outcomes(&after),
        ["a", "b", "c"]
            .map(|u| (u.to_string(), "cancelled".to_string()))
            .to_vec(),
        "{after}"
    );
    let csv = get_with(&api, &member(), &items, &[("format", "csv")]).await;
    assert_eq!(
        String::from_utf8(csv.body).unwrap(),
        "position,item,outcome,reason\r\n0,a,cancelled,\r\n1,b,cancelled,\r\n2,c,cancelled,\r\n"
    );

    let (status, retry) = call(
        &api,
        request("POST", &format!("/jobs/{id}/retry"), Some(&member())),
    )
    .await;
    assert_eq!(
        (status, retry["progress"]["total"].as_u64()),
        (202, Some(3)),
        "{retry}"
    );
    let retry_id = retry["id"].as_str().unwrap();
    let input = api
        .inputs
        .objects
        .lock()
        .unwrap()
        .get(&format!("inputs/acme/{retry_id}.json"))
        .cloned()
        .unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&input).unwrap()["user_ids"],
        json!(["a", "b", "c"])
    );
}

#[tokio::test]
async fn a_job_whose_worker_finds_its_items_says_they_are_not_listed_before_its_plan() {
    let api = api();
    let (_, job) = post(
        &api,
        &member(),
        json!({"type": "session_termination", "params": {"idle_for_seconds": 600}}),
    )
    .await;
    let items = format!("/jobs/{}/items", job["id"].as_str().unwrap());
    let page: Value = serde_json::from_slice(
        &get_with(&api, &member(), &items, &[("cursor", "0")])
            .await
            .body,
    )
    .unwrap();
    assert_eq!(
        page,
        json!({"items": [], "next_cursor": "0", "listed": false}),
        "not the end of the list"
    );
    let csv = get_with(&api, &member(), &items, &[("format", "csv")]).await;
    assert_eq!(csv.status, 409, "a CSV would claim the list is empty");
}

/// 6,000 mutations of valid create bodies and list queries: every answer is one of the
/// documented statuses with an error body, never a 5xx or a panic, and a refused create
/// stores nothing.
#[tokio::test]
async fn mutated_requests_get_documented_answers() {
    let api = api();
    let auth = member();
    let mut m = jobs_core::mutate::Mutator::new(0x5EED);
    let seeds: Vec<Vec<u8>> = JobType::ALL
        .iter()
        .map(|t| {
            serde_json::to_vec(&json!({"type": t.key(), "params": example_params(*t)})).unwrap()
        })
        .collect();
    for i in 0..4_000 {
        let mut req = request("POST", "/jobs", Some(&auth));
        req.body = m.mutate(&seeds[i % seeds.len()]);
        let jobs_before = api.store.job_count();
        let (status, body) = call(&api, req.clone()).await;
        assert!(
            [202, 400, 409, 413, 415, 422].contains(&status),
            "#{i}: {status} for {}",
            String::from_utf8_lossy(&req.body)
        );
        if status != 202 {
            assert!(body["error"]["code"].is_string(), "#{i}: {body}");
            assert_eq!(
                api.store.job_count(),
                jobs_before,
                "#{i}: a refused create stored a job"
            );
        }
    }
    let query = b"type=ai_text_embedding&status=running&user=alice&q=embed&created_from=2026-01-01&created_to=2026-12-31T23:59:59Z&limit=10";
    for i in 0..2_000 {
        let mutated = m.mutate(query);
        let mut req = request("GET", "/jobs", Some(&auth));
        req.query = String::from_utf8_lossy(&mutated)
            .split('&')
            .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let (status, body) = call(&api, req.clone()).await;
        assert!(
            [200, 400].contains(&status),
            "#{i}: {status} for {:?}: {body}",
            req.query
        );
    }
}

/// A profile job of `users`, settled as a worker would: the users at `failed` positions
/// failed (no profile), the rest succeeded.
async fn settled_profile_job(
    api: &Api,
    users: &[&str],
    failed: &[usize],
    status: jobs_core::JobStatus,
) -> String {
    use jobs_core::ports::{ChunkCommit, ItemFailure, ProgressStore, Settled, Tally};
    let (code, job) = post(api, &member(), json!({"type": "profile_field_update", "params": {"field": "locale", "value": "de", "user_ids": users}})).await;
    assert_eq!(code, 202, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    let at = &clock::format(clock::now());
    assert!(
        api.store
            .begin(&id, users.len() as u64, 1, at)
            .await
            .unwrap()
    );
    let mut all = Settled::default();
    (0..users.len()).for_each(|p| all.insert(p));
    let commit = ChunkCommit {
        after: all,
        tally: Tally {
            succeeded: (users.len() - failed.len()) as u64,
            failed: failed.len() as u64,
            cancelled: 0,
        },
        failures: failed
            .iter()
            .map(|p| ItemFailure {
                position: *p as u32,
                reason: "no profile for this user".into(),
            })
            .collect(),
        done: true,
        ..ChunkCommit::default()
    };
    assert!(api.store.commit_chunk(&id, 0, &commit, 0).await.unwrap());
    if status != jobs_core::JobStatus::Running {
        assert!(api.store.complete(&id, status, at).await.unwrap());
    }
    id
}

async fn get_with(api: &Api, auth: &str, path: &str, query: &[(&str, &str)]) -> HttpResponse {
    let mut req = request("GET", path, Some(auth));
    req.query = query
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    api.handle(req).await
}

/// A profile job over u0, =u1, u2, u3 and u4 whose items 1 and 3 failed; its id.
async fn five_users_two_failed(api: &Api) -> String {
    settled_profile_job(
        api,
        &["u0", "=u1", "u2", "u3", "u4"],
        &[1, 3],
        jobs_core::JobStatus::CompletedWithErrors,
    )
    .await
}

#[tokio::test]
async fn a_job_s_items_are_listed_with_their_outcomes_in_pages_and_as_csv() {
    let api = api();
    let id = five_users_two_failed(&api).await;
    let path = format!("/jobs/{id}/items");
    let json = |r: HttpResponse| -> Value { serde_json::from_slice(&r.body).unwrap() };
    let all = json(get_with(&api, &member(), &path, &[]).await);
    let outcomes: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        ["succeeded", "failed", "succeeded", "failed", "succeeded"]
    );
    assert_eq!(all["next_cursor"], Value::Null);

    let failed = json(
        get_with(
            &api,
            &member(),
            &path,
            &[("outcome", "failed"), ("limit", "1")],
        )
        .await,
    );
    assert_eq!(
        failed["items"],
        json!([{"position": 1, "item": "=u1", "outcome": "failed", "reason": "no profile for this user"}])
    );
    let cursor = failed["next_cursor"].as_str().unwrap().to_string();
    let rest = json(
        get_with(
            &api,
            &member(),
            &path,
            &[("outcome", "failed"), ("limit", "1"), ("cursor", &cursor)],
        )
        .await,
    );
    assert_eq!(rest["items"][0]["item"], "u3");
    assert_eq!(rest["next_cursor"], Value::Null);

    let csv = get_with(
        &api,
        &member(),
        &path,
        &[("outcome", "failed"), ("format", "csv")],
    )
    .await;
    assert_eq!(csv.status, 200);
    assert!(
        csv.headers
            .contains(&("content-type".into(), "text/csv; charset=utf-8".into()))
    );
    assert_eq!(
        String::from_utf8(csv.body).unwrap(),
        "position,item,outcome,reason\r\n1,'=u1,failed,no profile for this user\r\n3,u3,failed,no profile for this user\r\n"
    );

    assert_eq!(
        get_with(
            &api,
            &token("globex", "mallory", Role::Operator),
            &path,
            &[]
        )
        .await
        .status,
        404,
        "another tenant's job"
    );
    let bad = get_with(&api, &member(), &path, &[("outcome", "lost")]).await;
    assert_eq!(
        (bad.status, json(bad)["error"]["field"].clone()),
        (400, json!("outcome"))
    );
}

#[tokio::test]
async fn an_item_report_is_exported_to_s3_by_the_exporter_with_the_csv_s_rows() {
    let api = api();
    let id = five_users_two_failed(&api).await;
    let viewer = token("acme", "vera", Role::Viewer);
    let export_path = format!("/jobs/{id}/items/export");
    let ask = |outcome: &str| {
        let mut req = request("POST", &export_path, Some(&viewer));
        req.query = vec![("outcome".into(), outcome.into())];
        req
    };
    let (status, asked) = call(&api, ask("failed")).await;
    assert_eq!(status, 202, "{asked}");
    assert_eq!(
        (&asked["status"], &asked["outcome"], &asked["requested_by"]),
        (&json!("pending"), &json!("failed"), &json!("vera"))
    );
    let export_id = asked["export_id"].as_str().unwrap().to_string();
    let state_path = format!("{export_path}/{export_id}");
    let (_, pending) = call(&api, request("GET", &state_path, Some(&viewer))).await;
    assert_eq!(
        (&pending["status"], &pending["url"]),
        (&json!("pending"), &Value::Null)
    );

    // The exporter's work for the message the API sent.
    let message = api.queue.exports.lock().unwrap()[0].clone();
    assert_eq!(
        (message.job_id.as_str(), message.tenant.as_str()),
        (id.as_str(), "acme")
    );
    let written = api.write_export(&message).await.unwrap().unwrap();
    assert_eq!(
        (written.rows, written.status),
        (Some(2), ExportStatus::Ready)
    );
    let csv = String::from_utf8(
        api.inputs
            .get(&export_csv_key(&id, &export_id))
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    let inline = get_with(
        &api,
        &viewer,
        &format!("/jobs/{id}/items"),
        &[("outcome", "failed"), ("format", "csv")],
    )
    .await;
    assert_eq!(csv.as_bytes(), inline.body, "the same rows as format=csv");
    let (status, ready) = call(&api, request("GET", &state_path, Some(&viewer))).await;
    assert_eq!(
        (status, &ready["status"], &ready["rows"]),
        (200, &json!("ready"), &json!(2))
    );
    assert_eq!(
        ready["url"],
        format!("memory:///exports/{id}/{export_id}.csv?filename=job-{id}-failed.csv&expires=900")
    );
    assert_eq!(
        api.write_export(&message).await.unwrap().unwrap(),
        written,
        "a second delivery changes nothing"
    );

    let (_, all) = call(&api, ask("all")).await;
    let message = api.queue.exports.lock().unwrap()[1].clone();
    assert_eq!(all["export_id"].as_str(), Some(message.export_id.as_str()));
    assert_eq!(
        api.write_export(&message).await.unwrap().unwrap().rows,
        Some(5)
    );

    let (status, bad) = call(&api, ask("lost")).await;
    assert_eq!((status, &bad["error"]["field"]), (400, &json!("outcome")));
    let mallory = token("globex", "mallory", Role::TenantAdmin);
    let (status, _) = call(&api, request("POST", &export_path, Some(&mallory))).await;
    assert_eq!(status, 404, "another tenant's job");
    let (status, _) = call(&api, request("GET", &state_path, Some(&mallory))).await;
    assert_eq!(status, 404, "another tenant's export");
    for unknown in [ulid::Ulid::new().to_string(), "not-an-id".to_string()] {
        let (status, _) = call(
            &api,
            request("GET", &format!("{export_path}/{unknown}"), Some(&viewer)),
        )
        .await;
        assert_eq!(status, 404, "{unknown}");
    }
}

#[tokio::test]
async fn retry_creates_a_linked_job_over_exactly_the_failed_items() {
    let api = api();
    let id = settled_profile_job(
        &api,
        &["u0", "u1", "u2", "u3"],
        &[1, 3],
        jobs_core::JobStatus::CompletedWithErrors,
    )
    .await;
    let mut req = request("POST", &format!("/jobs/{id}/retry"), Some(&member()));
    req.headers
        .push(("idempotency-key".into(), "retry-1".into()));
    let (status, retry) = call(&api, req.clone()).await;
    assert_eq!(status, 202, "{retry}");
    assert_eq!(
        (
            retry["type"].as_str(),
            retry["retry_of"].as_str(),
            retry["progress"]["total"].as_u64()
        ),
        (Some("profile_field_update"), Some(id.as_str()), Some(2))
    );
    let retry_id = retry["id"].as_str().unwrap();
    let input = api
        .inputs
        .objects
        .lock()
        .unwrap()
        .get(&format!("inputs/acme/{retry_id}.json"))
        .cloned()
        .unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&input).unwrap(),
        json!({"field": "locale", "value": "de", "user_ids": ["u1", "u3"]}),
        "the same params over the failed items"
    );
    let (_, original) = call(
        &api,
        request("GET", &format!("/jobs/{id}"), Some(&member())),
    )
    .await;
    assert_eq!(original["retries"], json!([retry_id]));

    let replay = api.handle(req).await;
    assert_eq!(
        (
            replay.status,
            replay
                .headers
                .contains(&("idempotent-replayed".into(), "true".into()))
        ),
        (202, true)
    );
    let (_, original) = call(
        &api,
        request("GET", &format!("/jobs/{id}"), Some(&member())),
    )
    .await;
    assert_eq!(
        original["retries"].as_array().unwrap().len(),
        1,
        "a replay links nothing new"
    );

    let running =
        settled_profile_job(&api, &["u0", "u1"], &[1], jobs_core::JobStatus::Running).await;
    let (status, body) = call(
        &api,
        request("POST", &format!("/jobs/{running}/retry"), Some(&member())),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("conflict")),
        "not ended: {body}"
    );
    let clean = settled_profile_job(&api, &["u0"], &[], jobs_core::JobStatus::Completed).await;
    assert_eq!(
        call(
            &api,
            request("POST", &format!("/jobs/{clean}/retry"), Some(&member()))
        )
        .await
        .0,
        409,
        "nothing failed"
    );
    assert_eq!(
        call(
            &api,
            request(
                "POST",
                &format!("/jobs/{id}/retry"),
                Some(&token("globex", "mallory", Role::Operator))
            )
        )
        .await
        .0,
        404
    );
}

#[tokio::test]
async fn a_hidden_job_is_listed_as_hidden_and_unhide_puts_it_back_in_its_place() {
    let api = api();
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(
            post(&api, &member(), embedding_job()).await.1["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let listed = |body: &Value| -> Vec<String> {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["id"].as_str().unwrap().to_string())
            .collect()
    };
    // Jobs created in one millisecond list in id order: take the order the list gives.
    let before = listed(&list(&api, &member(), &[]).await.1);
    let middle = &before[1].clone();
    assert_eq!(
        call(
            &api,
            request("DELETE", &format!("/jobs/{middle}"), Some(&member()))
        )
        .await
        .0,
        204
    );
    assert_eq!(
        listed(&list(&api, &member(), &[]).await.1),
        vec![before[0].clone(), before[2].clone()]
    );
    let (_, hidden) = list(&api, &member(), &[("hidden", "true")]).await;
    assert_eq!(listed(&hidden), vec![middle.clone()]);
    assert!(hidden["items"][0]["hidden_at"].is_string());

    let path = format!("/jobs/{middle}/unhide");
    assert_eq!(
        call(
            &api,
            request(
                "POST",
                &path,
                Some(&token("globex", "mallory", Role::Operator))
            )
        )
        .await
        .0,
        404,
        "another tenant's job"
    );
    let (status, job) = call(&api, request("POST", &path, Some(&member()))).await;
    assert_eq!((status, &job["hidden_at"]), (200, &Value::Null));
    assert_eq!(
        listed(&list(&api, &member(), &[]).await.1),
        before,
        "in its place"
    );
    assert!(listed(&list(&api, &member(), &[("hidden", "true")]).await.1).is_empty());
    assert_eq!(
        call(
            &api,
            request(
                "POST",
                &path,
                Some(&token("ops", "root", Role::PlatformAdmin))
            )
        )
        .await
        .0,
        200,
        "admins too; not hidden is fine"
    );
}

async fn bulk(api: &Api, auth: &str, body: Value) -> (u16, Value) {
    let mut req = request("POST", "/jobs/bulk", Some(auth));
    req.body = serde_json::to_vec(&body).unwrap();
    call(api, req).await
}

#[tokio::test]
async fn bulk_actions_report_every_job_s_outcome_and_never_reach_another_tenant() {
    let api = api();
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(
            post(&api, &member(), embedding_job()).await.1["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let theirs = post(
        &api,
        &token("globex", "bob", Role::Operator),
        embedding_job(),
    )
    .await
    .1["id"]
        .as_str()
        .unwrap()
        .to_string();
    let ended = settled_profile_job(&api, &["u0"], &[], jobs_core::JobStatus::Completed).await;

    let (status, answer) = bulk(
        &api,
        &member(),
        json!({"action": "cancel", "ids": [ids[0], ended, theirs, "nope", ids[0]]}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["results"],
        json!([
            {"id": ids[0], "outcome": "done"},
            {"id": ended, "outcome": "already_ended"},
            {"id": theirs, "outcome": "not_found"},
            {"id": "nope", "outcome": "not_found"}
        ]),
        "one outcome per job named, repeats once"
    );
    assert_eq!(
        api.store.job(&theirs).unwrap().status,
        jobs_core::JobStatus::Queued,
        "another tenant's job untouched"
    );

    // By filter: every queued embedding job of the caller's tenant, one page of one.
    let (status, answer) = bulk(
        &api,
        &member(),
        json!({"action": "hide", "filter": {"type": "ai_text_embedding", "status": "queued"}}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let hidden: Vec<&str> = answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(hidden.len(), 2, "ids[1] and ids[2]: {answer}");
    assert!(
        answer["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["outcome"] == "done")
    );
    assert_eq!(answer["next_cursor"], Value::Null);
    assert!(
        !api.store.job(&theirs).unwrap().is_hidden(),
        "a filter never reaches another tenant"
    );

    for (body, field) in [
        (json!({"action": "hide"}), "body"),
        (json!({"action": "hide", "ids": []}), "ids"),
        (json!({"action": "hide", "ids": vec!["x"; 1001]}), "ids"),
        (json!({"action": "purge", "ids": ["x"]}), "action"),
        (
            json!({"action": "hide", "filter": {"status": "done"}}),
            "filter.status",
        ),
        (
            json!({"action": "hide", "filter": {}, "cursor": "forged"}),
            "cursor",
        ),
    ] {
        let (status, err) = bulk(&api, &member(), body.clone()).await;
        assert_eq!(
            (status, err["error"]["field"].as_str()),
            (422, Some(field)),
            "{body}: {err}"
        );
    }
    let (status, _) = bulk(
        &api,
        &member(),
        json!({"action": "hide", "filter": {"tenant": "globex"}}),
    )
    .await;
    assert_eq!(status, 403, "naming another tenant");
}

#[tokio::test]
async fn a_bulk_call_out_of_time_starts_no_more_rounds_and_says_what_it_did_not_reach() {
    let api = api();
    let mut ids = Vec::new();
    for _ in 0..25 {
        ids.push(
            post(&api, &member(), embedding_job()).await.1["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let alice = jobs_core::domain::auth::Caller {
        user: "alice".into(),
        tenant: "acme".into(),
        role: Role::Operator,
        origin: Default::default(),
    };
    let outcomes = |answer: &crate::api::BulkAnswer| -> Vec<(String, crate::api::BulkOutcome)> {
        answer
            .results
            .iter()
            .map(|r| (r.id.clone(), r.outcome))
            .collect()
    };
    let request = |body: Value| serde_json::from_value::<crate::api::BulkRequest>(body).unwrap();

    // By ids, with no time at all: the first round of 10 runs, the rest are not attempted.
    let answer = api
        .bulk_within(
            &alice,
            request(json!({"action": "cancel", "ids": ids})),
            std::time::Duration::ZERO,
        )
        .await
        .unwrap();
    let expected: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let outcome = if i < 10 {
                crate::api::BulkOutcome::Done
            } else {
                crate::api::BulkOutcome::NotAttempted
            };
            (id.clone(), outcome)
        })
        .collect();
    assert_eq!(outcomes(&answer), expected);
    let cancelled = ids
        .iter()
        .filter(|id| api.store.job(id).unwrap().status == jobs_core::JobStatus::Cancelled)
        .count();
    assert_eq!(cancelled, 10, "a job not attempted is untouched");

    // By filter: each call works one round and its cursor continues after it, so every
    // matching job is reached once.
    let mut cursor: Option<String> = None;
    let mut reached = Vec::new();
    let mut calls = 0;
    loop {
        let mut body = json!({"action": "hide", "filter": {"type": "ai_text_embedding"}});
        if let Some(c) = &cursor {
            body["cursor"] = json!(c);
        }
        let answer = api
            .bulk_within(&alice, request(body), std::time::Duration::ZERO)
            .await
            .unwrap();
        calls += 1;
        assert!(
            answer.results.len() <= 10,
            "one round per call: {:?}",
            outcomes(&answer)
        );
        reached.extend(outcomes(&answer));
        cursor = answer.next_cursor;
        if cursor.is_none() {
            break;
        }
        assert!(calls < 10, "the cursor moves on");
    }
    assert_eq!(calls, 3);
    let mut reached_ids: Vec<_> = reached.iter().map(|(id, _)| id.clone()).collect();
    reached_ids.sort();
    let mut all = ids.clone();
    all.sort();
    assert_eq!(reached_ids, all, "every job once");
    assert!(
        reached
            .iter()
            .all(|(_, o)| *o == crate::api::BulkOutcome::Done)
    );
}

#[tokio::test]
async fn an_upload_is_a_presigned_put_under_the_caller_s_tenant_for_operators_only() {
    let api = api();
    let mut req = request("POST", "/uploads", Some(&member()));
    req.body = serde_json::to_vec(
        &json!({"content_type": "application/x-ndjson", "content_encoding": "gzip"}),
    )
    .unwrap();
    let (status, upload) = call(&api, req).await;
    assert_eq!(status, 201, "{upload}");
    let id = upload["upload_id"].as_str().unwrap();
    assert_eq!(id.len(), 26, "a ULID: {id}");
    assert_eq!(
        upload["url"],
        format!("memory:///uploads/acme/{id}?expires=900")
    );
    assert_eq!(upload["method"], "PUT");
    assert_eq!(
        upload["headers"],
        json!({"content-type": "application/x-ndjson", "content-encoding": "gzip", "if-none-match": "*"})
    );
    assert_eq!(upload["max_bytes"], jobs_core::domain::file::MAX_FILE_BYTES);
    let expires = clock::parse(upload["expires_at"].as_str().unwrap()).unwrap();
    let left = (expires - clock::now()).whole_seconds();
    assert!((890..=900).contains(&left), "15 minutes: {left} s");

    for (body, field) in [
        (json!({"content_type": "text/plain"}), "content_type"),
        (json!({}), "content_type"),
        (
            json!({"content_type": "text/csv", "content_encoding": "br"}),
            "content_encoding",
        ),
        (json!({"content_type": "text/csv", "size": 1}), "size"),
        (
            json!({"content_type": "text/csv", "content_encoding": null}),
            "content_encoding",
        ),
    ] {
        let mut req = request("POST", "/uploads", Some(&member()));
        req.body = serde_json::to_vec(&body).unwrap();
        let (status, err) = call(&api, req).await;
        assert_eq!(
            (status, err["error"]["field"].as_str()),
            (422, Some(field)),
            "{body}: {err}"
        );
    }
    let mut req = request(
        "POST",
        "/uploads",
        Some(&token("acme", "vera", Role::Viewer)),
    );
    req.body = serde_json::to_vec(&json!({"content_type": "text/csv"})).unwrap();
    assert_eq!(call(&api, req).await.0, 403, "a viewer may not upload");
}

/// The jobs service over empty in-memory ports, records kept 90 days.
fn memory_jobs() -> crate::api::Jobs<MemoryPorts> {
    crate::api::Jobs::new(
        MemoryStore::default(),
        MemoryInputs::default(),
        MemoryQueue::default(),
        MemorySenders::default(),
        jobs_core::memory::observers(),
        90,
    )
}

#[tokio::test]
async fn uploads_past_the_tenant_s_daily_limit_are_429_until_the_next_day() {
    let jobs = memory_jobs().with_uploads_per_day(2);
    let api = Api::serving(jobs, Settings::dev_tokens(SECRET, 90), None);
    let upload = |auth: String| {
        let mut req = request("POST", "/uploads", Some(&auth));
        req.body = serde_json::to_vec(&json!({"content_type": "text/csv"})).unwrap();
        req
    };
    for _ in 0..2 {
        assert_eq!(call(&api, upload(member())).await.0, 201);
    }
    let refused = api.handle(upload(member())).await;
    assert_eq!(refused.status, 429);
    let wait: u64 = refused
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
        .and_then(|(_, v)| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=86_400).contains(&wait), "{wait}");
    let other = token("globex", "gina", Role::Operator);
    assert_eq!(call(&api, upload(other)).await.0, 201, "per tenant");
}

#[tokio::test]
async fn a_job_s_upload_must_be_a_non_empty_file_of_its_own_tenant() {
    let api = api();
    let csv = jobs_core::ports::UploadFormat {
        content_type: "text/csv".into(),
        content_encoding: None,
    };
    let id = ulid::Ulid::new().to_string();
    let key = crate::api::upload_key("acme", &id);
    api.inputs
        .upload(&key, csv.clone(), b"email\na@example.com\n".to_vec());
    assert_eq!(
        api.uploaded_file("acme", &id).await.unwrap(),
        jobs_core::domain::file::JobFile {
            key,
            bytes: 20,
            content_type: "text/csv".into(),
            content_encoding: None,
            limits: Default::default(),
            retry: None,
        }
    );
    let empty = ulid::Ulid::new().to_string();
    api.inputs
        .upload(&crate::api::upload_key("acme", &empty), csv, Vec::new());
    let never = ulid::Ulid::new().to_string();
    for (tenant, upload_id) in [
        ("globex", id.as_str()),
        ("acme", "not-an-upload"),
        ("acme", never.as_str()),
        ("acme", empty.as_str()),
    ] {
        let err = api.uploaded_file(tenant, upload_id).await.unwrap_err();
        assert_eq!(
            (err.code, err.field.as_deref()),
            (
                jobs_core::error::ErrorCode::ValidationFailed,
                Some("input.upload_id")
            ),
            "{tenant} {upload_id}: {err:?}"
        );
    }
}

#[tokio::test]
async fn the_service_s_file_limits_bound_uploads_and_travel_with_the_job() {
    use jobs_core::domain::file::FileLimits;
    let limits = FileLimits {
        max_bytes: 12,
        max_rows: 3,
        ..FileLimits::default()
    };
    let jobs = memory_jobs().with_file_limits(limits);
    let api = Api::serving(jobs, Settings::dev_tokens(SECRET, 90), None);
    let mut req = request("POST", "/uploads", Some(&member()));
    req.body = serde_json::to_vec(&json!({"content_type": "text/csv"})).unwrap();
    assert_eq!(call(&api, req).await.1["max_bytes"], 12);
    let csv = jobs_core::ports::UploadFormat {
        content_type: "text/csv".into(),
        content_encoding: None,
    };
    let (small, big) = (ulid::Ulid::new().to_string(), ulid::Ulid::new().to_string());
    api.inputs.upload(
        &crate::api::upload_key("acme", &small),
        csv.clone(),
        b"user_id\nu1\n".to_vec(),
    );
    api.inputs.upload(
        &crate::api::upload_key("acme", &big),
        csv,
        b"user_id\nu1\nu2\n".to_vec(),
    );
    assert_eq!(
        api.uploaded_file("acme", &small).await.unwrap().limits,
        limits
    );
    let err = api.uploaded_file("acme", &big).await.unwrap_err();
    assert_eq!(err.field.as_deref(), Some("input.upload_id"));
    assert!(
        err.message.contains("holds 14 bytes: it must hold 1 to 12"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn a_job_from_an_upload_is_queued_at_once_and_the_upload_gives_one_job_only() {
    let api = api();
    let id = ulid::Ulid::new().to_string();
    api.inputs.upload(
        &crate::api::upload_key("acme", &id),
        jobs_core::ports::UploadFormat {
            content_type: "text/csv".into(),
            content_encoding: None,
        },
        b"user_id\nu1\n".to_vec(),
    );
    let body = json!({"type": "profile_field_update", "params": {"field": "locale", "value": "de"}, "input": {"upload_id": id}});
    let (status, job) = post(&api, &member(), body.clone()).await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(
        (job["status"].as_str(), job["progress"]["total"].as_u64()),
        (Some("queued"), Some(0))
    );
    let stored = api.store.job(job["id"].as_str().unwrap()).unwrap();
    assert_eq!(
        stored.file.map(|f| (f.key, f.bytes)),
        Some((format!("uploads/acme/{id}"), 11))
    );
    let (status, again) = post(&api, &member(), body).await;
    assert_eq!(status, 409, "{again}");
    assert_eq!(again["error"]["field"], "input.upload_id");
    let both = json!({"type": "profile_field_update", "params": {"field": "locale", "value": "de", "user_ids": ["u1"]}, "input": {"upload_id": id}});
    let (status, refused) = post(&api, &member(), both).await;
    assert_eq!(
        (status, refused["error"]["field"].as_str()),
        (422, Some("params.user_ids"))
    );
    let other = token("globex", "gina", Role::Operator);
    let theirs = json!({"type": "profile_field_update", "params": {"field": "locale", "value": "de"}, "input": {"upload_id": id}});
    let (status, refused) = post(&api, &other, theirs).await;
    assert_eq!(
        (status, refused["error"]["field"].as_str()),
        (422, Some("input.upload_id"))
    );
}

#[tokio::test]
async fn a_file_job_s_retry_is_a_file_job_that_reads_the_failed_items_of_the_original() {
    let api = api();
    let upload = ulid::Ulid::new().to_string();
    api.inputs.upload(
        &crate::api::upload_key("acme", &upload),
        jobs_core::ports::UploadFormat {
            content_type: "text/csv".into(),
            content_encoding: None,
        },
        b"user_id\nu1\nu2\n".to_vec(),
    );
    let body = json!({"type": "profile_field_update", "params": {"field": "locale", "value": "de"}, "input": {"upload_id": upload}});
    let (status, job) = post(&api, &member(), body).await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    // As its worker leaves it: 2 items in one chunk, one failed.
    let mut ended = api.store.job(&id).unwrap();
    (ended.status, ended.total, ended.succeeded, ended.failed) =
        (jobs_core::JobStatus::CompletedWithErrors, 2, 1, 1);
    ended.chunks_total = Some(1);
    ended.chunks_done = 1;
    api.store.insert(ended.clone());
    let retry_path = format!("/jobs/{id}/retry");
    let (status, refused) = call(&api, request("POST", &retry_path, Some(&member()))).await;
    assert_eq!(status, 409, "no item list yet: {refused}");
    api.inputs.objects.lock().unwrap().insert(
        jobs_core::domain::file::index_key(&ended.input_key),
        vec![0; 32],
    );
    let (status, retry) = call(&api, request("POST", &retry_path, Some(&member()))).await;
    assert_eq!(status, 202, "{retry}");
    assert_eq!(
        (retry["retry_of"].as_str(), retry["from_file"].as_bool()),
        (Some(id.as_str()), Some(true))
    );
    let stored = api.store.job(retry["id"].as_str().unwrap()).unwrap();
    let file = stored.file.unwrap();
    assert_eq!(
        file.retry,
        Some(jobs_core::domain::file::RetriedItems {
            job_id: id.clone(),
            input_key: ended.input_key.clone(),
            chunks: 1,
            cancelled: false,
        })
    );
    assert_eq!(file.upload(), None, "the retry uses no upload");
    let (_, original) = call(
        &api,
        request("GET", &format!("/jobs/{id}"), Some(&member())),
    )
    .await;
    assert_eq!(original["retries"], json!([stored.id]));
}

mod api_keys;

mod audit;

mod metrics;

mod queues;

mod schedules;

mod senders;

mod limits;

/// Every operation of the OpenAPI document has a row in the role table, and its route and
/// method reach that row; the table has no operation the document lacks.
#[test]
fn every_documented_operation_has_its_row_in_the_role_table() {
    let doc: Value = serde_json::from_str(OPENAPI_JSON).expect("openapi.json parses");
    let mut documented = Vec::new();
    for (path, operations) in doc["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let Some(id) = operation["operationId"].as_str() else {
                continue; // path-level parameters
            };
            if id == "openApi" {
                continue; // public: the document itself
            }
            let concrete = path.replace("{id}", "01JDEMO00000000000000000000");
            let routed = route(&concrete)
                .and_then(|r| operation_of(&r, &method.to_ascii_uppercase()))
                .map(Operation::operation_id);
            assert_eq!(routed, Some(id), "{method} {path}");
            documented.push(id);
        }
    }
    documented.sort_unstable();
    let mut table: Vec<&str> = Operation::ALL.iter().map(|o| o.operation_id()).collect();
    table.sort_unstable();
    assert_eq!(documented, table);
}

/// Wherever openapi.json names a role, it names the four the server writes.
#[test]
fn openapi_names_the_roles_the_server_writes() {
    let doc: Value = serde_json::from_str(OPENAPI_JSON).expect("openapi.json parses");
    let roles: Vec<Value> = Role::ALL.iter().map(|r| json!(r.key())).collect();
    let schemas = &doc["components"]["schemas"];
    assert_eq!(schemas["Me"]["properties"]["role"]["enum"], json!(roles));
    assert_eq!(
        schemas["AuditEvent"]["properties"]["actor"]["properties"]["role"]["enum"],
        json!(roles)
    );
}

#[tokio::test]
async fn me_names_the_caller_and_the_operations_its_role_may_call() {
    let api = api();
    let (status, me) = call(
        &api,
        request("GET", "/me", Some(&token("acme", "vera", Role::Viewer))),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        (&me["user"], &me["tenant"], &me["role"]),
        (&json!("vera"), &json!("acme"), &json!("viewer"))
    );
    let operations = me["operations"].as_array().unwrap();
    assert!(operations.contains(&json!("listJobs")));
    assert!(!operations.contains(&json!("createJob")));
    assert!(!operations.contains(&json!("getQueueHealth")));
}

#[tokio::test]
async fn a_viewer_is_refused_every_write_before_anything_is_written() {
    let api = api();
    let viewer = token("acme", "vera", Role::Viewer);
    let body =
        json!({"type": "ai_text_embedding", "params": example_params(JobType::AiTextEmbedding)});
    let mut create = request("POST", "/jobs", Some(&viewer));
    create
        .headers
        .push(("content-type".into(), "application/json".into()));
    create.body = serde_json::to_vec(&body).unwrap();
    let (status, err) = call(&api, create).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    assert_eq!(api.store.job_count(), 0, "nothing written");
    assert!(api.queue.sent.lock().unwrap().is_empty(), "nothing sent");
    let (status, _) = call(
        &api,
        request(
            "POST",
            "/jobs/01JDEMO00000000000000000000/cancel",
            Some(&viewer),
        ),
    )
    .await;
    assert_eq!(status, 403, "refused before the job is even looked up");
}

/// The served OpenAPI document lists every registered type, with its label and a params
/// schema, and no other.
#[test]
fn openapi_lists_every_registered_type() {
    let doc: Value = serde_json::from_str(OPENAPI_JSON).expect("openapi.json parses");
    let schemas = &doc["components"]["schemas"];
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let keys: Vec<&str> = jobs_core::domain::registry::REGISTRY
        .iter()
        .map(|s| s.key)
        .collect();
    let labels: Vec<&str> = jobs_core::domain::registry::REGISTRY
        .iter()
        .map(|s| s.label)
        .collect();
    assert_eq!(
        strings(&schemas["JobType"]["enum"]),
        keys,
        "components.schemas.JobType.enum"
    );
    assert_eq!(
        strings(&schemas["Job"]["properties"]["type_label"]["enum"]),
        labels,
        "Job.type_label.enum"
    );
    let variants = schemas["CreateJob"]["oneOf"]
        .as_array()
        .expect("CreateJob.oneOf");
    assert_eq!(
        variants.len(),
        jobs_core::domain::registry::REGISTRY.len(),
        "one CreateJob variant per type"
    );
    for spec in &jobs_core::domain::registry::REGISTRY {
        let variant = variants
            .iter()
            .find(|v| v["properties"]["type"]["const"] == spec.key)
            .unwrap_or_else(|| panic!("CreateJob.oneOf has no variant for {}", spec.key));
        let reference = variant["properties"]["params"]["$ref"]
            .as_str()
            .unwrap_or_default();
        let name = reference.trim_start_matches("#/components/schemas/");
        assert!(
            schemas[name].is_object(),
            "{}: params schema {reference} exists",
            spec.key
        );
    }
}

#[tokio::test]
async fn a_new_job_s_plan_waits_while_its_tenant_s_release_window_is_full() {
    use jobs_core::domain::window::{ReleaseSettings, WindowScope};
    use jobs_core::ports::WindowStore;
    let release = ReleaseSettings {
        limit: 1,
        scope: WindowScope::Tenant,
    };
    let api = Api::serving(
        memory_jobs().with_release(release),
        Settings::dev_tokens(SECRET, 90),
        None,
    );
    let sent = |api: &Api| api.queue.sent_of(JobType::AiTextEmbedding);
    let create = |auth: String, key: &str| {
        let mut req = request("POST", "/jobs", Some(&auth));
        req.headers.push(("idempotency-key".into(), key.into()));
        req.body = serde_json::to_vec(&embedding_job()).unwrap();
        req
    };
    let id_of = |body: &Value| body["id"].as_str().unwrap().to_string();

    let (status, first) = call(&api, create(member(), "k-1")).await;
    assert_eq!(
        (status, sent(&api)),
        (202, 1),
        "an empty window: the plan is sent"
    );
    let window = WindowScope::Tenant.key("acme", JobType::AiTextEmbedding, "");
    api.store.hold_first(&id_of(&first), 1).await.unwrap();
    let taken = api
        .store
        .acquire(&window, 1, &id_of(&first), &[0])
        .await
        .unwrap();
    assert_eq!(
        api.store.window(&window).await.unwrap().in_flight,
        1,
        "{taken:?}"
    );

    let (status, second) = call(&api, create(member(), "k-2")).await;
    assert_eq!((status, second["status"].as_str()), (202, Some("queued")));
    assert_eq!(sent(&api), 1, "a full window: no plan on the queue");
    let deferred = api.store.window(&window).await.unwrap().deferred;
    assert_eq!(
        deferred.into_iter().collect::<Vec<_>>(),
        vec![id_of(&second)]
    );

    let (status, _) = call(&api, create(member(), "k-2")).await;
    assert_eq!((status, sent(&api)), (202, 1), "a replay stays deferred");
    let (status, _) = call(&api, create(token("globex", "gus", Role::Operator), "k-1")).await;
    assert_eq!(
        (status, sent(&api)),
        (202, 2),
        "another tenant's window is its own: its plan is sent"
    );
}
