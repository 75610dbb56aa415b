//! A tenant's create limit through the HTTP API: a platform admin sets it, every create
//! (jobs, retries, schedules' runs) counts against it, the one past it is a `429` with
//! `Retry-After`, and a change holds from the next create.

use super::*;
use jobs_core::domain::audit::EventKind;

async fn put_limits(api: &Api, auth: &str, tenant: &str, body: Value) -> (u16, Value) {
    let mut req = request("PUT", &format!("/tenants/{tenant}/limits"), Some(auth));
    req.body = serde_json::to_vec(&body).unwrap();
    call(api, req).await
}

#[tokio::test]
async fn creates_past_the_tenants_limit_are_429_with_retry_after_until_it_changes() {
    let api = api();
    let platform = token("ops", "pat", Role::PlatformAdmin);
    let viewer = token("acme", "vera", Role::Viewer);
    let (status, limits) = call(&api, request("GET", "/tenants/acme/limits", Some(&viewer))).await;
    assert_eq!(
        (
            status,
            limits["creates_per_minute"].as_u64(),
            limits["source"].as_str()
        ),
        (200, Some(1_000), Some("default"))
    );
    let (status, set) = put_limits(&api, &platform, "acme", json!({"creates_per_minute": 2})).await;
    assert_eq!(
        (status, set["source"].as_str()),
        (200, Some("tenant")),
        "{set}"
    );

    let operator = member();
    for _ in 0..2 {
        assert_eq!(post(&api, &operator, embedding_job()).await.0, 202);
    }
    let mut third = request("POST", "/jobs", Some(&operator));
    third.body = serde_json::to_vec(&embedding_job()).unwrap();
    let response = api.handle(third).await;
    let retry_after: u64 = response
        .headers
        .iter()
        .find(|(n, _)| n == "retry-after")
        .and_then(|(_, v)| v.parse().ok())
        .expect("a Retry-After header");
    let body: Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(
        (response.status, body["error"]["code"].as_str()),
        (429, Some("too_many_requests"))
    );
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // Another tenant has its own count.
    assert_eq!(
        post(
            &api,
            &token("globex", "gwen", Role::Operator),
            embedding_job()
        )
        .await
        .0,
        202
    );
    let (_, usage) = call(&api, request("GET", "/tenants/acme/limits", Some(&viewer))).await;
    assert_eq!(usage["usage"]["creates_this_minute"], 2);

    // A change holds from the next create.
    put_limits(&api, &platform, "acme", json!({"creates_per_minute": 3})).await;
    assert_eq!(post(&api, &operator, embedding_job()).await.0, 202);

    let changes: Vec<_> = api
        .observers
        .audit()
        .log()
        .entries()
        .into_iter()
        .filter(|r| r.event.kind == EventKind::LimitsChanged && r.event.tenant == "acme")
        .filter_map(|r| r.event.limits)
        .map(|c| (c.before.creates_per_minute, c.after.creates_per_minute))
        .collect();
    assert_eq!(changes.len(), 2, "each change audited with its values");
    assert_eq!(
        changes[1].0, changes[0].1,
        "a change's before is the previous one's after"
    );
    assert_eq!(changes[1].1, 3);
}

#[tokio::test]
async fn only_a_platform_admin_sets_limits_and_bad_values_name_the_field() {
    let api = api();
    for role in [Role::Viewer, Role::Operator, Role::TenantAdmin] {
        let (status, _) = put_limits(
            &api,
            &token("acme", "x", role),
            "acme",
            json!({"creates_per_minute": 5}),
        )
        .await;
        assert_eq!(status, 403, "{role:?}");
    }
    let (status, _) = call(
        &api,
        request("GET", "/tenants/globex/limits", Some(&member())),
    )
    .await;
    assert_eq!(status, 403, "another tenant's");
    let platform = token("ops", "pat", Role::PlatformAdmin);
    for value in [
        json!(0),
        json!(-1),
        json!(1.5),
        json!("10"),
        json!(100_001),
        json!(null),
    ] {
        let (status, err) = put_limits(
            &api,
            &platform,
            "acme",
            json!({"creates_per_minute": value}),
        )
        .await;
        assert_eq!(
            (status, err["error"]["field"].as_str()),
            (422, Some("creates_per_minute")),
            "{value}"
        );
    }
    let (status, _) = put_limits(
        &api,
        &platform,
        "acme",
        json!({"creates_per_minute": 5, "x": 1}),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(
        call(
            &api,
            request("GET", "/tenants/Not%20A/limits", Some(&platform))
        )
        .await
        .0,
        404
    );
}

#[tokio::test]
async fn creates_past_max_queued_jobs_are_429_until_a_queued_job_leaves() {
    let api = api();
    let platform = token("ops", "pat", Role::PlatformAdmin);
    let (status, set) = put_limits(
        &api,
        &platform,
        "acme",
        json!({"max_queued_jobs": 2, "max_running_jobs": 7}),
    )
    .await;
    assert_eq!(
        (
            status,
            set["max_queued_jobs"].as_u64(),
            set["max_running_jobs"].as_u64(),
            set["creates_per_minute"].as_u64()
        ),
        (200, Some(2), Some(7), Some(1_000)),
        "the others keep their value: {set}"
    );
    let operator = member();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (status, job) = post(&api, &operator, embedding_job()).await;
        assert_eq!(status, 202);
        ids.push(job["id"].as_str().unwrap().to_string());
    }
    let mut third = request("POST", "/jobs", Some(&operator));
    third.body = serde_json::to_vec(&embedding_job()).unwrap();
    let response = api.handle(third).await;
    let body: Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(
        (response.status, body["error"]["code"].as_str()),
        (429, Some("too_many_requests")),
        "{body}"
    );
    assert!(
        response
            .headers
            .iter()
            .any(|(n, v)| n == "retry-after" && v == "10"),
        "{:?}",
        response.headers
    );
    let viewer = token("acme", "vera", Role::Viewer);
    let (_, limits) = call(&api, request("GET", "/tenants/acme/limits", Some(&viewer))).await;
    assert_eq!(limits["usage"]["queued_jobs"], 2, "{limits}");
    assert_eq!(
        limits["usage"]["running_jobs"],
        json!({"ai_text_embedding": 0, "bulk_message_sending": 0, "profile_field_update": 0, "session_termination": 0}),
        "every type, none running yet: {limits}"
    );

    // A queued job that ends (here: cancelled) leaves its place to the next create.
    let (status, _) = call(
        &api,
        request("POST", &format!("/jobs/{}/cancel", ids[0]), Some(&operator)),
    )
    .await;
    assert_eq!(status, 202);
    let (_, limits) = call(&api, request("GET", "/tenants/acme/limits", Some(&viewer))).await;
    assert_eq!(limits["usage"]["queued_jobs"], 1, "{limits}");
    assert_eq!(post(&api, &operator, embedding_job()).await.0, 202);
}

#[tokio::test]
async fn bad_job_limits_name_their_field_and_an_empty_change_is_refused() {
    let api = api();
    let platform = token("ops", "pat", Role::PlatformAdmin);
    for (field, bad) in [
        ("max_running_jobs", json!(0)),
        ("max_running_jobs", json!(10_001)),
        ("max_running_jobs", json!(null)),
        ("max_queued_jobs", json!(-3)),
        ("max_queued_jobs", json!(1_000_001)),
        ("max_queued_jobs", json!("5")),
    ] {
        let (status, err) = put_limits(&api, &platform, "acme", json!({ field: bad })).await;
        assert_eq!(
            (status, err["error"]["field"].as_str()),
            (422, Some(field)),
            "{field}: {bad}"
        );
    }
    let (status, err) = put_limits(&api, &platform, "acme", json!({})).await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (422, Some("body"))
    );
}
