//! Every way a caller can fail to authenticate, and tenant isolation, end to end.

use e2e::{Stack, embedding_job, fresh_tenant};
use jobs_api_core::tokens::{Claims, mint};
use jobs_core::domain::auth::Role;

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[tokio::test]
async fn every_authentication_failure_is_401_with_an_error_body() {
    let stack = Stack::load().await;
    let secret = stack.secret().as_bytes().to_vec();
    let claims = |tenant: &str, exp: u64, nbf: Option<u64>| Claims {
        sub: "alice".into(),
        tenant: tenant.into(),
        role: Role::Operator,
        exp,
        nbf,
        iat: None,
    };
    let good = mint(&secret, &claims("acme", now() + 600, None)).unwrap();
    let payload = good.split('.').nth(1).unwrap().to_string();
    let no_tenant = {
        use jsonwebtoken::{EncodingKey, Header, encode};
        encode(
            &Header::default(),
            &serde_json::json!({"sub": "alice", "role": "member", "exp": now() + 600}),
            &EncodingKey::from_secret(&secret),
        )
        .unwrap()
    };
    // RS256 header, HMAC'd with the HS secret as if it were the public key (alg confusion).
    let rs256_with_hs_secret = {
        use base64::Engine;
        let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let input = format!("{}.{payload}", b64(br#"{"alg":"RS256","typ":"JWT"}"#));
        let tag = jsonwebtoken::crypto::sign(
            input.as_bytes(),
            &jsonwebtoken::EncodingKey::from_secret(&secret),
            jsonwebtoken::Algorithm::HS256,
        )
        .unwrap();
        format!("{input}.{tag}")
    };
    let cases: Vec<(&str, Option<String>)> = vec![
        ("missing", None),
        ("not bearer", Some(format!("Basic {good}"))),
        ("malformed", Some("Bearer abc.def".into())),
        (
            "alg none",
            Some(format!(
                "Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}."
            )),
        ),
        (
            "RS256 signed with the HS secret",
            Some(format!("Bearer {rs256_with_hs_secret}")),
        ),
        (
            "wrong secret",
            Some(format!(
                "Bearer {}",
                mint(
                    b"some-other-secret-some-other-secret",
                    &claims("acme", now() + 600, None)
                )
                .unwrap()
            )),
        ),
        (
            "expired",
            Some(format!(
                "Bearer {}",
                mint(&secret, &claims("acme", now() - 120, None)).unwrap()
            )),
        ),
        (
            "not yet valid",
            Some(format!(
                "Bearer {}",
                mint(&secret, &claims("acme", now() + 600, Some(now() + 300))).unwrap()
            )),
        ),
        ("no tenant", Some(format!("Bearer {no_tenant}"))),
    ];
    for (name, header) in cases {
        for (method, path) in [
            ("GET", "/jobs"),
            ("POST", "/jobs"),
            ("GET", "/jobs/01JDEMO00000000000000000000"),
            ("DELETE", "/jobs/01JDEMO00000000000000000000"),
            ("POST", "/jobs/01JDEMO00000000000000000000/cancel"),
        ] {
            let mut request = stack
                .http
                .request(method.parse().unwrap(), format!("{}{path}", stack.api));
            if let Some(h) = &header {
                request = request.header("Authorization", h);
            }
            let reply = stack.reply(request).await;
            assert_eq!(
                (reply.status, reply.error_code()),
                (401, Some("unauthorized")),
                "{name}: {method} {path}"
            );
        }
    }
}

#[tokio::test]
async fn members_never_reach_another_tenants_jobs() {
    let stack = Stack::load().await;
    let (a, b) = (fresh_tenant("tenant-a"), fresh_tenant("tenant-b"));
    let alice = stack.token(&a, "alice", false);
    let mallory = stack.token(&b, "mallory", false);
    let job = stack.create(&alice, &embedding_job("private")).await;
    stack.create(&alice, &embedding_job("second")).await;
    let path = format!("/jobs/{}", job["id"].as_str().unwrap());

    assert_eq!(
        stack.send("GET", &path, Some(&mallory), None).await.status,
        404
    );
    assert_eq!(
        stack
            .send("DELETE", &path, Some(&mallory), None)
            .await
            .status,
        404
    );
    assert_eq!(
        stack
            .send("POST", &format!("{path}/cancel"), Some(&mallory), None)
            .await
            .status,
        404
    );
    assert_eq!(
        stack
            .send("GET", &path.to_string(), Some(&alice), None)
            .await
            .body["cancel_requested_at"],
        serde_json::Value::Null,
        "the foreign cancel changed nothing"
    );
    assert_eq!(
        stack.send("GET", &path, Some(&alice), None).await.status,
        200,
        "still there after the foreign delete"
    );
    assert_eq!(
        stack
            .send("GET", &format!("/jobs?tenant={a}"), Some(&mallory), None)
            .await
            .status,
        403,
        "naming another tenant"
    );
    assert!(stack.list_all(&mallory, "").await.concat().is_empty());
    let mut body = embedding_job("x");
    body["tenant"] = serde_json::json!(a);
    let forbidden = stack
        .send("POST", "/jobs", Some(&mallory), Some(&body))
        .await;
    assert_eq!(
        (forbidden.status, forbidden.error_field()),
        (403, Some("tenant"))
    );

    // A cursor from alice's listing is useless to mallory.
    let page = stack.send("GET", "/jobs?limit=1", Some(&alice), None).await;
    let cursor = page.body["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_string();
    let stolen = stack
        .send(
            "GET",
            &format!("/jobs?limit=1&cursor={cursor}"),
            Some(&mallory),
            None,
        )
        .await;
    assert_eq!((stolen.status, stolen.error_field()), (400, Some("cursor")));

    // Admins see both.
    let admin = stack.token("ops", "root", true);
    assert_eq!(
        stack.send("GET", &path, Some(&admin), None).await.status,
        200
    );
    assert_eq!(
        stack
            .list_all(&admin, &format!("tenant={a}"))
            .await
            .concat()
            .len(),
        2
    );
}
