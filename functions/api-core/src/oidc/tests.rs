//! The forgery suite: each way a token can be forged or be wrong, its own test, against a
//! fake provider that serves the fixtures' key set (tests/fixtures/oidc).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::json;

use super::*;

const ISSUER: &str = "https://idp.example.test";
const AUDIENCE: &str = "jobs-api";
const RSA_1: &[u8] = include_bytes!("../../tests/fixtures/oidc/rsa-1.pem");
const RSA_2: &[u8] = include_bytes!("../../tests/fixtures/oidc/rsa-2.pem");
const EC_1: &[u8] = include_bytes!("../../tests/fixtures/oidc/ec-1.pem");
const JWKS: &str = include_str!("../../tests/fixtures/oidc/jwks.json");

/// A provider whose key set the test changes; it counts what it was asked for.
struct FakeIdp {
    keys: Mutex<Value>,
    down: AtomicBool,
    asked: Mutex<Vec<String>>,
}

impl FakeIdp {
    fn with_kids(kids: &[&str]) -> Arc<FakeIdp> {
        let idp = Arc::new(FakeIdp {
            keys: Mutex::new(json!({})),
            down: AtomicBool::new(false),
            asked: Mutex::new(Vec::new()),
        });
        idp.serve(kids);
        idp
    }

    /// Serves the fixture keys named `kids`.
    fn serve(&self, kids: &[&str]) {
        let all: Value = serde_json::from_str(JWKS).unwrap();
        let keys: Vec<Value> = all["keys"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| kids.contains(&k["kid"].as_str().unwrap()))
            .cloned()
            .collect();
        *lock(&self.keys) = json!({ "keys": keys });
    }

    fn asked(&self) -> Vec<String> {
        lock(&self.asked).clone()
    }
}

struct Shared(Arc<FakeIdp>);

impl Fetch for Shared {
    fn get<'a>(&'a self, url: &'a str) -> Fetching<'a> {
        Box::pin(async move {
            let idp = &self.0;
            lock(&idp.asked).push(url.to_string());
            if idp.down.load(Ordering::Relaxed) {
                return Err("connection refused".into());
            }
            match url {
                "https://idp.example.test/.well-known/openid-configuration" => Ok(json!({
                    "issuer": ISSUER, "jwks_uri": "https://idp.example.test/jwks"
                })
                .to_string()
                .into_bytes()),
                "https://idp.example.test/jwks" => Ok(lock(&idp.keys).to_string().into_bytes()),
                other => Err(format!("{other}: 404")),
            }
        })
    }
}

fn settings() -> OidcSettings {
    OidcSettings {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        algorithms: vec![Algorithm::RS256, Algorithm::ES256],
        tenant_claim: "tenant".into(),
        role_claim: "role".into(),
        role_map: Vec::new(),
        leeway_seconds: 30,
    }
}

fn verifier(idp: &Arc<FakeIdp>) -> OidcVerifier {
    OidcVerifier::new(settings(), Box::new(Shared(idp.clone())))
}

fn now() -> i64 {
    jobs_core::clock::now().unix_timestamp()
}

fn claims() -> Value {
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "tara", "tenant": "acme", "role": "tenant_admin", "exp": now() + 600, "iat": now()})
}

fn signed(alg: Algorithm, kid: &str, pem: &[u8], claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.into());
    let key = match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(pem).unwrap(),
        _ => EncodingKey::from_rsa_pem(pem).unwrap(),
    };
    encode(&header, claims, &key).unwrap()
}

fn rs256(claims: &Value) -> String {
    signed(Algorithm::RS256, "rsa-1", RSA_1, claims)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A token with `header` and `claims`, signed over its input with `sign`.
fn forged(header: Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes()),
        b64(signature)
    )
}

async fn refusal(verifier: &OidcVerifier, token: &str) -> Refusal {
    verifier.verify(token).await.expect_err("refused")
}

fn invalid(refusal: Refusal) -> String {
    match refusal {
        Refusal::Invalid(reason) => reason,
        other => panic!("expected a 401, got {other:?}"),
    }
}

#[tokio::test]
async fn a_good_rs256_or_es256_token_names_its_user_tenant_and_role() {
    let idp = FakeIdp::with_kids(&["rsa-1", "ec-1"]);
    let v = verifier(&idp);
    let caller = v.verify(&rs256(&claims())).await.unwrap();
    assert_eq!(
        (caller.user.as_str(), caller.tenant.as_str(), caller.role),
        ("tara", "acme", Role::TenantAdmin)
    );
    let es = signed(Algorithm::ES256, "ec-1", EC_1, &claims());
    assert_eq!(v.verify(&es).await.unwrap().role, Role::TenantAdmin);
    assert_eq!(v.fetches(), (1, 1), "one discovery, one key set");
}

#[tokio::test]
async fn alg_none_is_refused() {
    let v = verifier(&FakeIdp::with_kids(&["rsa-1"]));
    let token = forged(json!({"alg": "none", "kid": "rsa-1"}), &claims(), b"");
    invalid(refusal(&v, &token).await);
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_as_secret_is_refused() {
    let v = verifier(&FakeIdp::with_kids(&["rsa-1"]));
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("rsa-1".into());
    let public: Value = serde_json::from_str(JWKS).unwrap();
    let token = encode(
        &header,
        &claims(),
        &EncodingKey::from_secret(public["keys"][0].to_string().as_bytes()),
    )
    .unwrap();
    assert_eq!(
        invalid(refusal(&v, &token).await),
        "the token's algorithm is not accepted"
    );
}

#[tokio::test]
async fn an_algorithm_that_does_not_fit_the_key_is_refused() {
    let v = verifier(&FakeIdp::with_kids(&["rsa-1", "ec-1"]));
    // ES256, signed with the EC key, but naming the RSA key.
    let token = signed(Algorithm::ES256, "rsa-1", EC_1, &claims());
    assert_eq!(
        invalid(refusal(&v, &token).await),
        "the token's algorithm does not fit its key"
    );
}

#[tokio::test]
async fn keys_embedded_or_referenced_in_the_header_are_never_used_nor_fetched() {
    let idp = FakeIdp::with_kids(&["rsa-1"]);
    let v = verifier(&idp);
    // Signed by the attacker's key (rsa-2), which the header embeds and points to.
    let keys: Value = serde_json::from_str(JWKS).unwrap();
    let attacker_jwk = keys["keys"][1].clone();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("rsa-2".into());
    header.jku = Some("https://attacker.example/jwks".into());
    header.x5u = Some("https://attacker.example/cert".into());
    header.jwk = Some(serde_json::from_value(attacker_jwk).unwrap());
    let token = encode(
        &header,
        &claims(),
        &EncodingKey::from_rsa_pem(RSA_2).unwrap(),
    )
    .unwrap();
    assert_eq!(
        invalid(refusal(&v, &token).await),
        "the token's kid is not a key of the issuer"
    );
    assert!(
        idp.asked().iter().all(|url| url.starts_with(ISSUER)),
        "{:?}",
        idp.asked()
    );
}

#[tokio::test]
async fn an_encrypted_five_part_token_is_refused() {
    let v = verifier(&FakeIdp::with_kids(&["rsa-1"]));
    assert_eq!(
        invalid(refusal(&v, "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d").await),
        "an encrypted (JWE) token is not accepted"
    );
}

#[tokio::test]
async fn a_token_without_kid_is_refused() {
    let v = verifier(&FakeIdp::with_kids(&["rsa-1"]));
    let token = encode(
        &Header::new(Algorithm::RS256),
        &claims(),
        &EncodingKey::from_rsa_pem(RSA_1).unwrap(),
    )
    .unwrap();
    assert_eq!(
        invalid(refusal(&v, &token).await),
        "the token's header has no kid"
    );
}

#[tokio::test]
async fn a_wrong_issuer_is_refused() {
    let v = verifier(&FakeIdp::with_kids(&["rsa-1"]));
    let mut c = claims();
    c["iss"] = json!("https://evil.example");
    assert_eq!(
        invalid(refusal(&v, &rs256(&c)).await),
        "the token's issuer is not accepted"
    );
}

#[tokio::test]
async fn a_wrong_audience_is_refused() {
    let v = verifier(&FakeIdp::with_kids(&["rsa-1"]));
    let mut c = claims();
    c["aud"] = json!("another-api");
    assert_eq!(
        invalid(refusal(&v, &rs256(&c)).await),
        "the token's audience is not this API"
    );
}

#[tokio::test]
async fn an_expired_token_is_refused_past_the_leeway_only() {
    let v = verifier(&FakeIdp::with_kids(&["rsa-1"]));
    let mut c = claims();
    c["exp"] = json!(now() - 10);
    assert!(v.verify(&rs256(&c)).await.is_ok(), "within the 30 s leeway");
    c["exp"] = json!(now() - 60);
    assert_eq!(invalid(refusal(&v, &rs256(&c)).await), "the token expired");
}

#[tokio::test]
async fn a_string_exp_or_nbf_is_invalid_not_absent() {
    let v = verifier(&FakeIdp::with_kids(&["rsa-1"]));
    for name in ["exp", "nbf"] {
        let mut c = claims();
        c[name] = json!((now() + 600).to_string());
        assert_eq!(
            invalid(refusal(&v, &rs256(&c)).await),
            format!("the token's {name} is not a number")
        );
    }
}

#[tokio::test]
async fn a_token_not_valid_yet_is_refused() {
    let v = verifier(&FakeIdp::with_kids(&["rsa-1"]));
    let mut c = claims();
    c["nbf"] = json!(now() + 300);
    assert_eq!(
        invalid(refusal(&v, &rs256(&c)).await),
        "the token is not valid yet (nbf)"
    );
}

#[tokio::test]
async fn missing_required_claims_are_refused() {
    let v = verifier(&FakeIdp::with_kids(&["rsa-1"]));
    for name in ["exp", "iss", "aud", "sub"] {
        let mut c = claims();
        c.as_object_mut().unwrap().remove(name);
        invalid(refusal(&v, &rs256(&c)).await);
    }
}

#[tokio::test]
async fn a_missing_or_malformed_tenant_claim_is_refused_saying_so() {
    let v = verifier(&FakeIdp::with_kids(&["rsa-1"]));
    for tenant in [None, Some(json!("Acme Corp")), Some(json!(7))] {
        let mut c = claims();
        match tenant {
            Some(t) => c["tenant"] = t,
            None => drop(c.as_object_mut().unwrap().remove("tenant")),
        }
        let reason = invalid(refusal(&v, &rs256(&c)).await);
        assert!(
            reason.contains("tenant claim") && reason.contains("slug"),
            "{reason}"
        );
    }
}

#[tokio::test]
async fn a_malformed_role_claim_is_401_and_no_role_of_ours_is_403_naming_the_claim() {
    let v = verifier(&FakeIdp::with_kids(&["rsa-1"]));
    let mut c = claims();
    c["role"] = json!({"admin": true});
    invalid(refusal(&v, &rs256(&c)).await);
    c["role"] = json!("owner");
    assert_eq!(
        refusal(&v, &rs256(&c)).await,
        Refusal::NoRole("role".into())
    );
    c.as_object_mut().unwrap().remove("role");
    let err = ApiError::from(refusal(&v, &rs256(&c)).await);
    assert_eq!((err.status(), err.field.as_deref()), (403, Some("role")));
}

#[tokio::test]
async fn mapped_groups_give_the_highest_matching_role_from_configured_claims() {
    let idp = FakeIdp::with_kids(&["rsa-1"]);
    let v = OidcVerifier::new(
        OidcSettings {
            tenant_claim: "custom:tenant".into(),
            role_claim: "groups".into(),
            role_map: parse_role_map("jobs-readers=viewer, jobs-ops=operator").unwrap(),
            ..settings()
        },
        Box::new(Shared(idp)),
    );
    let c = json!({"iss": ISSUER, "aud": [AUDIENCE, "other"], "sub": "oscar", "custom:tenant": "globex", "groups": ["everyone", "jobs-readers", "jobs-ops"], "exp": now() + 600});
    let caller = v.verify(&rs256(&c)).await.unwrap();
    assert_eq!(
        (caller.tenant.as_str(), caller.role),
        ("globex", Role::Operator)
    );
    // A role name of ours is no match when a map is configured.
    let c = json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "mallory", "custom:tenant": "globex", "groups": ["platform_admin"], "exp": now() + 600});
    assert_eq!(
        refusal(&v, &rs256(&c)).await,
        Refusal::NoRole("groups".into())
    );
}

#[tokio::test]
async fn a_rotated_key_verifies_without_a_restart_and_a_removed_one_stops_after_the_refetch() {
    let idp = FakeIdp::with_kids(&["rsa-1"]);
    let v = verifier(&idp);
    assert!(v.verify(&rs256(&claims())).await.is_ok());
    // The provider adds rsa-2 and signs with it: its first token refetches the set (the
    // last fetch is older than the refetch interval).
    idp.serve(&["rsa-1", "rsa-2"]);
    lock(&v.cache).tried_at = Some(Instant::now() - REFETCH_INTERVAL);
    let new = signed(Algorithm::RS256, "rsa-2", RSA_2, &claims());
    assert!(v.verify(&new).await.is_ok());
    assert_eq!(v.fetches(), (1, 2));
    // The provider removes rsa-1: cached, it verifies until the set is older than its
    // maximum age; then the refetch drops it.
    idp.serve(&["rsa-2"]);
    assert!(v.verify(&rs256(&claims())).await.is_ok(), "still cached");
    {
        let mut cache = lock(&v.cache);
        let old = Instant::now() - MAX_KEYS_AGE;
        cache.fetched_at = Some(old);
        cache.tried_at = Some(old);
    }
    assert_eq!(
        invalid(refusal(&v, &rs256(&claims())).await),
        "the token's kid is not a key of the issuer"
    );
    assert!(v.verify(&new).await.is_ok());
    assert_eq!(v.fetches(), (1, 3));
}

#[tokio::test]
async fn unknown_kids_refetch_at_most_once_per_interval_and_concurrent_ones_share_one_fetch() {
    let idp = FakeIdp::with_kids(&["rsa-1"]);
    let v = Arc::new(verifier(&idp));
    let unknown = signed(Algorithm::RS256, "rsa-2", RSA_2, &claims());
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (v, token) = (v.clone(), unknown.clone());
            tokio::spawn(async move { v.verify(&token).await })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap().is_err());
    }
    for _ in 0..100 {
        assert!(v.verify(&unknown).await.is_err());
        assert!(v.verify(&rs256(&claims())).await.is_ok());
    }
    assert_eq!(
        v.fetches(),
        (1, 1),
        "1 discovery and 1 key set for 250 requests"
    );
}

#[tokio::test]
async fn a_key_set_that_cannot_be_fetched_is_a_503_not_a_401() {
    let idp = FakeIdp::with_kids(&["rsa-1"]);
    idp.down.store(true, Ordering::Relaxed);
    let v = verifier(&idp);
    let refused = refusal(&v, &rs256(&claims())).await;
    assert_eq!(refused, Refusal::KeysUnavailable);
    assert_eq!(ApiError::from(refused).status(), 503);
    // Back up: the next attempt after the interval works.
    idp.down.store(false, Ordering::Relaxed);
    assert_eq!(
        refusal(&v, &rs256(&claims())).await,
        Refusal::KeysUnavailable,
        "within the interval"
    );
    lock(&v.cache).tried_at = Some(Instant::now() - REFETCH_INTERVAL);
    assert!(v.verify(&rs256(&claims())).await.is_ok());
}

#[test]
fn settings_refuse_symmetric_algorithms_and_unknown_roles() {
    assert_eq!(
        parse_algorithms("RS256, ES256").unwrap(),
        [Algorithm::RS256, Algorithm::ES256]
    );
    assert!(parse_algorithms("HS256").is_err() && parse_algorithms("none").is_err());
    assert!(parse_algorithms("").is_err());
    assert!(parse_role_map("Admins=owner").is_err() && parse_role_map("Admins").is_err());
    assert_eq!(
        parse_role_map("a=b=platform_admin").unwrap(),
        [("a=b".to_string(), Role::PlatformAdmin)]
    );
}
