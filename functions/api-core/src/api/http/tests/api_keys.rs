//! API keys through the HTTP API: a tenant admin creates one (shown once), a machine calls
//! with it as its tenant and role, a revocation holds from the next request, and every
//! malformed, unknown, wrong, expired or revoked key is the same `401`.

use super::*;
use jobs_core::domain::audit::EventKind;
use jobs_core::ports::ApiKeyStore;

fn tenant_admin() -> String {
    token("acme", "tara", Role::TenantAdmin)
}

async fn create_key(api: &Api, auth: &str, body: Value) -> (u16, Value) {
    let mut req = request("POST", "/api-keys", Some(auth));
    req.body = serde_json::to_vec(&body).unwrap();
    call(api, req).await
}

fn bearer(key: &Value) -> String {
    format!("Bearer {}", key["key"].as_str().unwrap())
}

#[tokio::test]
async fn a_key_is_shown_once_stored_as_a_hash_and_acts_as_its_tenant_and_role() {
    let api = api();
    let (status, created) = create_key(
        &api,
        &tenant_admin(),
        json!({"name": "billing backend", "role": "operator"}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let key = created["key"].as_str().unwrap().to_string();
    let id = created["id"].as_str().unwrap().to_string();
    assert!(key.starts_with(&format!("jobs_{id}_")) && key.len() == 5 + 12 + 1 + 43);
    assert_eq!(
        (
            created["tenant"].as_str(),
            created["role"].as_str(),
            created["created_by"].as_str()
        ),
        (Some("acme"), Some("operator"), Some("tara"))
    );
    let stored = api.store.get_api_key(&id).await.unwrap().unwrap();
    assert!(!serde_json::to_string(&stored).unwrap().contains(&key[18..]));
    assert_eq!(stored.hash.len(), 64);

    let (status, job) = post(&api, &bearer(&created), embedding_job()).await;
    assert_eq!(status, 202, "{job}");
    let actor = format!("api_key:{id}");
    assert_eq!(
        (job["tenant"].as_str(), job["user"].as_str()),
        (Some("acme"), Some(actor.as_str()))
    );
    let (status, me) = call(&api, request("GET", "/me", Some(&bearer(&created)))).await;
    assert_eq!((status, me["role"].as_str()), (200, Some("operator")));
    // An operator key may not manage keys.
    let (status, _) = create_key(
        &api,
        &bearer(&created),
        json!({"name": "x", "role": "viewer"}),
    )
    .await;
    assert_eq!(status, 403);

    let (status, listed) = call(&api, request("GET", "/api-keys", Some(&tenant_admin()))).await;
    assert_eq!(status, 200);
    assert_eq!(listed["items"][0]["id"].as_str(), Some(id.as_str()));
    assert!(listed["items"][0].get("key").is_none() && listed["items"][0].get("hash").is_none());
    assert!(listed["items"][0]["last_used_at"].is_string(), "{listed}");
    // Another tenant's admin neither lists nor revokes it.
    let globex = token("globex", "gwen", Role::TenantAdmin);
    let (_, theirs) = call(&api, request("GET", "/api-keys", Some(&globex))).await;
    assert_eq!(theirs["items"], json!([]));
    let path = format!("/api-keys/{id}");
    assert_eq!(
        call(&api, request("DELETE", &path, Some(&globex))).await.0,
        404
    );

    assert_eq!(
        call(&api, request("DELETE", &path, Some(&tenant_admin())))
            .await
            .0,
        204
    );
    let (status, err) = call(&api, request("GET", "/me", Some(&bearer(&created)))).await;
    assert_eq!(
        (status, err["error"]["message"].as_str()),
        (401, Some("invalid API key"))
    );
    assert_eq!(
        call(&api, request("DELETE", &path, Some(&tenant_admin())))
            .await
            .0,
        404
    );

    let kinds: Vec<EventKind> = api
        .observers
        .audit()
        .log()
        .entries()
        .into_iter()
        .filter(|r| r.event.api_key_id.as_deref() == Some(id.as_str()))
        .map(|r| r.event.kind)
        .collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == EventKind::ApiKeyUsed)
            .count(),
        1,
        "one first use in the day, however many requests: {kinds:?}"
    );
    assert!(kinds.contains(&EventKind::ApiKeyCreated) && kinds.contains(&EventKind::ApiKeyRevoked));
}

#[tokio::test]
async fn every_key_that_does_not_work_is_the_same_401() {
    let api = api();
    let (_, created) = create_key(
        &api,
        &tenant_admin(),
        json!({"name": "k", "role": "viewer"}),
    )
    .await;
    let key = created["key"].as_str().unwrap().to_string();
    let mut wrong_secret = key.clone();
    let last = wrong_secret.pop().unwrap();
    wrong_secret.push(if last == 'A' { 'B' } else { 'A' });
    let unknown = format!("jobs_zzzzzzzzzzzz_{}", &key[18..]);
    for bad in [
        wrong_secret,
        unknown,
        "jobs_short".into(),
        format!("{key}x"),
    ] {
        let (status, err) = call(
            &api,
            request("GET", "/jobs", Some(&format!("Bearer {bad}"))),
        )
        .await;
        assert_eq!(
            (status, err["error"]["message"].as_str()),
            (401, Some("invalid API key")),
            "{bad}"
        );
    }
    // An expired key: its expiry passed since it was made.
    let id = created["id"].as_str().unwrap();
    let mut stored = api.store.get_api_key(id).await.unwrap().unwrap();
    stored.key_expires_at = Some("2020-01-01T00:00:00.000Z".into());
    stored.id = "expiredkey00".into();
    let expired = format!("jobs_expiredkey00_{}", &key[18..]);
    stored.hash = crate::api::api_keys::hash_of(&expired);
    api.store.create_api_key(&stored).await.unwrap();
    assert_eq!(
        call(
            &api,
            request("GET", "/jobs", Some(&format!("Bearer {expired}")))
        )
        .await
        .0,
        401
    );
    // A viewer key reads and may not create.
    let (status, _) = post(&api, &bearer(&created), embedding_job()).await;
    assert_eq!(status, 403);
    assert_eq!(
        call(&api, request("GET", "/jobs", Some(&bearer(&created))))
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn bad_requests_name_the_field_and_platform_admin_keys_do_not_exist() {
    let api = api();
    for (body, field) in [
        (json!({"name": "", "role": "viewer"}), "name"),
        (json!({"name": "x".repeat(101), "role": "viewer"}), "name"),
        (json!({"name": "a\u{7}b", "role": "viewer"}), "name"),
        (json!({"name": "k", "role": "platform_admin"}), "role"),
        (json!({"name": "k", "role": "tenant_admin"}), "role"),
        (json!({"name": "k", "role": "root"}), "role"),
        (
            json!({"name": "k", "role": "viewer", "expires_at": "tomorrow"}),
            "expires_at",
        ),
        (
            json!({"name": "k", "role": "viewer", "expires_at": "2020-01-01T00:00:00Z"}),
            "expires_at",
        ),
        (json!({"name": "k", "role": "viewer", "extra": 1}), "body"),
    ] {
        let (status, err) = create_key(&api, &tenant_admin(), body.clone()).await;
        assert_eq!(status, 422, "{body}: {err}");
        if field != "body" {
            assert_eq!(err["error"]["field"].as_str(), Some(field), "{body}: {err}");
        }
    }
    let (status, err) = create_key(
        &api,
        &tenant_admin(),
        json!({"name": "k", "role": "viewer", "tenant": "globex"}),
    )
    .await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (403, Some("tenant"))
    );
    for role in [Role::Viewer, Role::Operator] {
        let (status, _) = create_key(
            &api,
            &token("acme", "o", role),
            json!({"name": "k", "role": "viewer"}),
        )
        .await;
        assert_eq!(status, 403, "{role:?}");
    }
    let admin = token("ops", "pat", Role::PlatformAdmin);
    let (status, created) = create_key(
        &api,
        &admin,
        json!({"name": "k", "role": "viewer", "tenant": "globex"}),
    )
    .await;
    assert_eq!((status, created["tenant"].as_str()), (201, Some("globex")));
}
