//! Tokens of the identity provider that `make up` runs (localstack/oidc, oidc-provider),
//! verified by the deployed API through discovery and the key set: each demo user's role
//! and tenant, a viewer refused a write, expiry, and a rotated signing key that verifies
//! without restarting the API. One test, in steps: the rotation restarts the provider.

use std::time::{Duration, Instant};

use e2e::{Stack, embedding_job, idp_token};

#[tokio::test]
async fn the_identity_providers_tokens_name_role_and_tenant_expire_and_survive_a_key_rotation() {
    let stack = Stack::load().await;

    // Each demo user is who the provider says, with the role and tenant it says.
    for (login, user, tenant, role) in [
        ("vera@acme", "vera", "acme", "viewer"),
        ("otto@globex", "otto", "globex", "operator"),
        ("tara@acme", "tara", "acme", "tenant_admin"),
        ("pat", "pat", "acme", "platform_admin"),
    ] {
        let password = format!("{user}-demo");
        let token = idp_token(login, &password, "jobs-page");
        let me = stack.send("GET", "/me", Some(&token), None).await;
        assert_eq!(me.status, 200, "{login}: {}", me.body);
        assert_eq!(
            (&me.body["user"], &me.body["tenant"], &me.body["role"]),
            (
                &serde_json::json!(user),
                &serde_json::json!(tenant),
                &serde_json::json!(role)
            ),
            "{login}"
        );
    }
    let viewer = idp_token("vera@acme", "vera-demo", "jobs-page");
    let refused = stack
        .send("POST", "/jobs", Some(&viewer), Some(&embedding_job("x")))
        .await;
    assert_eq!(
        (refused.status, refused.error_code()),
        (403, Some("forbidden"))
    );
    let operator = idp_token("otto@globex", "otto-demo", "jobs-page");
    let job = stack.create(&operator, &embedding_job("globex's")).await;
    let foreign = stack
        .send(
            "GET",
            &format!("/jobs/{}", job["id"].as_str().unwrap()),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(
        foreign.status, 404,
        "acme's viewer does not see globex's job"
    );

    // A 5-second token works, then is a 401 with an RFC 6750 challenge (leeway 1 s here).
    let short = idp_token("oscar@acme", "oscar-demo", "jobs-short");
    assert_eq!(
        stack.send("GET", "/me", Some(&short), None).await.status,
        200
    );
    tokio::time::sleep(Duration::from_secs(7)).await;
    let expired = stack.send("GET", "/me", Some(&short), None).await;
    assert_eq!(expired.status, 401, "{}", expired.body);
    let challenge = expired.headers["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.starts_with("Bearer error=\"invalid_token\"") && challenge.contains("expired"),
        "{challenge}"
    );

    // The provider rotates its signing key: new tokens verify without restarting the API,
    // once its container may refetch the key set (10 s after its last fetch).
    let before = idp_token("tara@acme", "tara-demo", "jobs-page");
    assert_eq!(
        stack.send("GET", "/me", Some(&before), None).await.status,
        200
    );
    let oidc = infra::repo_root().join("localstack/oidc");
    let rotated = std::process::Command::new("node")
        .arg(oidc.join("rotate.mjs"))
        .status()
        .expect("rotate.mjs");
    assert!(rotated.success());
    let restarted = std::process::Command::new("bash")
        .arg(oidc.join("oidc.sh"))
        .arg("restart")
        .status()
        .expect("oidc.sh restart");
    assert!(restarted.success());
    let after = idp_token("tara@acme", "tara-demo", "jobs-page");
    assert_ne!(
        kid(&before),
        kid(&after),
        "the new token is signed with the new key"
    );
    let deadline = Instant::now() + Duration::from_secs(25);
    loop {
        let reply = stack.send("GET", "/me", Some(&after), None).await;
        if reply.status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a token of the rotated key is still refused: {}",
            reply.body
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn kid(token: &str) -> String {
    jsonwebtoken::decode_header(token)
        .ok()
        .and_then(|h| h.kid)
        .unwrap_or_default()
}

/// An API key's life against the deployed stack: created by a tenant admin (shown once),
/// used by a machine as its tenant and role, its first use of the day and its creation in
/// the tenant's own audit trail (not another tenant's), revoked at once.
#[tokio::test]
async fn an_api_key_acts_as_its_tenant_and_role_is_audited_and_revoked_at_once() {
    use jobs_core::domain::auth::Role;
    use serde_json::json;

    let stack = Stack::load().await;
    let tenant = e2e::fresh_tenant("keys");
    let admin = stack.token_as(&tenant, "tara", Role::TenantAdmin);
    let created = stack
        .send(
            "POST",
            "/api-keys",
            Some(&admin),
            Some(&json!({"name": "importer", "role": "operator"})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let key = created.body["key"].as_str().unwrap().to_string();
    let id = created.body["id"].as_str().unwrap().to_string();

    let job = stack.create(&key, &embedding_job("by key")).await;
    assert_eq!(
        (&job["tenant"], &job["user"]),
        (&json!(tenant), &json!(format!("api_key:{id}")))
    );
    let listed = stack.send("GET", "/api-keys", Some(&admin), None).await;
    assert_eq!(listed.body["items"][0]["id"], json!(id));
    assert!(listed.body["items"][0]["last_used_at"].is_string());
    assert!(listed.body["items"][0].get("key").is_none());

    let trail = stack.send("GET", "/audit", Some(&admin), None).await;
    assert_eq!(trail.status, 200, "{}", trail.body);
    let kinds: Vec<&str> = trail.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["api_key_id"] == json!(id))
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["api_key_used", "api_key_created"], "newest first");
    assert!(
        trail.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["tenant"] == json!(tenant)),
        "only its own tenant's entries"
    );
    let other = stack.token_as(&e2e::fresh_tenant("keys-other"), "tom", Role::TenantAdmin);
    let theirs = stack.send("GET", "/audit", Some(&other), None).await;
    assert!(
        !theirs.body.to_string().contains(&id),
        "another tenant's admin does not see it"
    );

    let revoked = stack
        .send("DELETE", &format!("/api-keys/{id}"), Some(&admin), None)
        .await;
    assert_eq!(revoked.status, 204);
    let refused = stack.send("GET", "/me", Some(&key), None).await;
    assert_eq!(
        (refused.status, refused.body["error"]["message"].as_str()),
        (401, Some("invalid API key"))
    );
}
