//! Token verification on a warm container: µs per token for the identity provider's RS256
//! and ES256 tokens with the key set cached, beside the HS256 dev tokens as the baseline;
//! and the key set fetches 1,000 requests cost one verifier (goal: 1 discovery + 1 key set).
//! The provider is a fake serving the OIDC unit tests' fixture keys, so no network is timed.

use std::time::Instant;

use anyhow::{Context, Result};
use jobs_api_core::oidc::{Fetch, Fetching, OidcSettings, OidcVerifier};
use jobs_api_core::tokens::{Claims, TokenVerifier, mint};
use jobs_core::domain::auth::Role;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::json;

use crate::{Goal, Row};

const ISSUER: &str = "https://idp.bench.test";
const RSA: &[u8] = include_bytes!("../../functions/api-core/tests/fixtures/oidc/rsa-1.pem");
const EC: &[u8] = include_bytes!("../../functions/api-core/tests/fixtures/oidc/ec-1.pem");
const JWKS: &str = include_str!("../../functions/api-core/tests/fixtures/oidc/jwks.json");
const TOKENS: usize = 1_000;

struct FixtureIdp;

impl Fetch for FixtureIdp {
    fn get<'a>(&'a self, url: &'a str) -> Fetching<'a> {
        Box::pin(async move {
            if url.ends_with("/.well-known/openid-configuration") {
                Ok(
                    json!({"issuer": ISSUER, "jwks_uri": format!("{ISSUER}/jwks")})
                        .to_string()
                        .into_bytes(),
                )
            } else {
                Ok(JWKS.as_bytes().to_vec())
            }
        })
    }
}

fn signed(alg: Algorithm, kid: &str, key: EncodingKey, n: usize) -> Result<String> {
    let mut header = Header::new(alg);
    header.kid = Some(kid.into());
    let now = jobs_core::clock::now().unix_timestamp();
    let claims = json!({"iss": ISSUER, "aud": "jobs-api", "sub": format!("user-{n}"), "tenant": "acme", "role": "operator", "exp": now + 3_600, "iat": now});
    Ok(encode(&header, &claims, &key)?)
}

pub async fn run() -> Result<Vec<Row>> {
    let secret = b"bench-secret-bench-secret-bench-secret";
    let dev = TokenVerifier::new(secret);
    let now = jobs_core::clock::now().unix_timestamp() as u64;
    let hs: Vec<String> = (0..TOKENS)
        .map(|n| {
            mint(
                secret,
                &Claims {
                    sub: format!("user-{n}"),
                    tenant: "acme".into(),
                    role: Role::Operator,
                    exp: now + 3_600,
                    nbf: None,
                    iat: Some(now),
                },
            )
        })
        .collect::<Result<_, _>>()?;
    let start = Instant::now();
    for token in &hs {
        dev.verify(token)
            .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    }
    let hs_us = start.elapsed().as_secs_f64() * 1e6 / TOKENS as f64;

    let verifier = OidcVerifier::new(
        OidcSettings {
            issuer: ISSUER.into(),
            audience: "jobs-api".into(),
            algorithms: vec![Algorithm::RS256, Algorithm::ES256],
            tenant_claim: "tenant".into(),
            role_claim: "role".into(),
            role_map: Vec::new(),
            leeway_seconds: 30,
        },
        Box::new(FixtureIdp),
    );
    let mut rows = Vec::new();
    for (alg, kid, pem) in [
        (Algorithm::RS256, "rsa-1", RSA),
        (Algorithm::ES256, "ec-1", EC),
    ] {
        let tokens: Vec<String> = (0..TOKENS)
            .map(|n| {
                let key = match alg {
                    Algorithm::ES256 => EncodingKey::from_ec_pem(pem),
                    _ => EncodingKey::from_rsa_pem(pem),
                }?;
                signed(alg, kid, key, n)
            })
            .collect::<Result<_>>()?;
        // Warm: the first verification fetches the key set.
        verifier
            .verify(&tokens[0])
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))
            .context("the fixture token verifies")?;
        let start = Instant::now();
        for token in &tokens {
            verifier
                .verify(token)
                .await
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        }
        let us = start.elapsed().as_secs_f64() * 1e6 / TOKENS as f64;
        rows.push(Row::new(
            &format!(
                "tokens: µs to verify one {alg:?} token, key set cached (baseline: HS256 dev token)"
            ),
            us,
            hs_us,
            None,
            format!("{TOKENS} tokens, one verifier, fixture keys (RSA 2048, P-256)"),
        ));
    }
    let (discoveries, key_sets) = verifier.fetches();
    rows.push(Row::new(
        "tokens: key set fetches for 2,002 verified tokens on one container (discovery + JWKS)",
        (discoveries + key_sets) as f64,
        (2 * TOKENS + 2) as f64,
        Some(Goal::OursAtMost(2.0)),
        format!("{discoveries} discovery, {key_sets} key set; baseline: fetching both per token"),
    ));
    Ok(rows)
}
