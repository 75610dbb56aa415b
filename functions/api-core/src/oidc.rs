//! Access tokens from the operator's OpenID Connect provider (Okta, Auth0, Entra ID, Cognito,
//! Keycloak…): JWTs signed with a key of the provider's published key set (JWKS).
//!
//! - Keys: `<issuer>/.well-known/openid-configuration` names the `jwks_uri` (OpenID Connect
//!   Discovery 1.0 §4; its `issuer` must be ours exactly, §4.3). The key set is cached per
//!   container for at most [`MAX_KEYS_AGE`]; a token whose `kid` the cached set lacks refetches
//!   it, at most once per [`REFETCH_INTERVAL`], one fetch at a time (the others wait for it).
//!   Fetches time out after [`FETCH_TIMEOUT`] and read at most [`MAX_FETCH_BYTES`]. A key set
//!   that cannot be fetched makes the request a `503`, not a `401`.
//! - Verification (RFC 7519, RFC 8725 "JWT Best Current Practices"): three parts (a five-part
//!   JWE is refused); `alg` must be one of the configured algorithms (never HS*, never `none`:
//!   the header only picks among those); `kid` is required and names a key of the set whose
//!   type fits `alg`; `jwk`, `jku`, `x5u` and `x5c` in the header are never read; `iss`, `aud`
//!   and `exp` are required, `nbf` is honoured, with a leeway; `exp`, `nbf` and `iat` must be
//!   numbers (a string `exp` is invalid, not absent).
//! - Who: `sub` is the user; the tenant claim (configurable, e.g. `custom:tenant`, `org_id`)
//!   must be a tenant slug; the role claim (a string or an array, e.g. groups) is mapped to
//!   our roles, the highest match winning. A token without any mapped role is a `403` naming
//!   the claim.
//!
//! Every refusal but the last is a `401` whose message is the reason; the reason is logged,
//! never the token.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::Value;

use jobs_core::domain::audit::Origin;
use jobs_core::domain::auth::{Caller, Role, is_tenant};
use jobs_core::env::SettingError;
use jobs_core::error::{ApiError, ErrorCode};

/// The longest a cached key set is used without a fetch, so that a key the provider removed
/// stops verifying within this time even in a warm container.
pub const MAX_KEYS_AGE: Duration = Duration::from_secs(600);
/// The least time between two fetches of the key set (a token with an unknown `kid` must not
/// make every request fetch).
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(10);
/// How long one fetch may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(3);
/// The largest discovery document or key set read (real ones are a few KiB).
pub const MAX_FETCH_BYTES: usize = 256 * 1024;

/// How the API reads tokens of the provider (template parameters `Oidc*`).
#[derive(Clone, Debug, PartialEq)]
pub struct OidcSettings {
    /// The `iss` of its tokens, exactly (`OidcIssuer`).
    pub issuer: String,
    /// The `aud` its access tokens carry for this API (`OidcAudience`).
    pub audience: String,
    /// The algorithms accepted (`OidcAlgorithms`, default `RS256,ES256`).
    pub algorithms: Vec<Algorithm>,
    /// The claim holding the tenant slug (`OidcTenantClaim`, default `tenant`).
    pub tenant_claim: String,
    /// The claim holding the role or roles (`OidcRoleClaim`, default `role`).
    pub role_claim: String,
    /// The provider's role or group names → ours (`OidcRoleMap`, `name=role,…`); empty: the
    /// claim holds our role names.
    pub role_map: Vec<(String, Role)>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds (`OidcLeewaySeconds`, default 30).
    pub leeway_seconds: u64,
}

impl OidcSettings {
    /// From `OIDC_ISSUER` (unset or empty: OIDC is off, `None`), `OIDC_AUDIENCE`,
    /// `OIDC_ALGORITHMS`, `OIDC_TENANT_CLAIM`, `OIDC_ROLE_CLAIM`, `OIDC_ROLE_MAP` and
    /// `OIDC_LEEWAY_SECONDS`. The error names the variable.
    pub fn from_env() -> Result<Option<OidcSettings>, SettingError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let Some(issuer) = var("OIDC_ISSUER") else {
            return Ok(None);
        };
        let invalid = |name: &str, reason: String| SettingError::Invalid {
            name: name.to_string(),
            reason,
        };
        Ok(Some(OidcSettings {
            issuer,
            audience: var("OIDC_AUDIENCE")
                .ok_or_else(|| SettingError::Missing("OIDC_AUDIENCE".into()))?,
            algorithms: parse_algorithms(&var("OIDC_ALGORITHMS").unwrap_or("RS256,ES256".into()))
                .map_err(|e| invalid("OIDC_ALGORITHMS", e))?,
            tenant_claim: var("OIDC_TENANT_CLAIM").unwrap_or("tenant".into()),
            role_claim: var("OIDC_ROLE_CLAIM").unwrap_or("role".into()),
            role_map: parse_role_map(&var("OIDC_ROLE_MAP").unwrap_or_default())
                .map_err(|e| invalid("OIDC_ROLE_MAP", e))?,
            leeway_seconds: match var("OIDC_LEEWAY_SECONDS") {
                None => 30,
                Some(text) => text
                    .trim()
                    .parse()
                    .ok()
                    .filter(|s| *s <= 300)
                    .ok_or_else(|| invalid("OIDC_LEEWAY_SECONDS", "0 to 300 seconds".into()))?,
            },
        }))
    }
}

/// `RS256,ES256` → the algorithms; asymmetric ones only (RFC 8725 §3.1: an HMAC "key" would
/// be the provider's public key).
pub fn parse_algorithms(text: &str) -> Result<Vec<Algorithm>, String> {
    let mut algorithms = Vec::new();
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let algorithm = match name {
            "RS256" => Algorithm::RS256,
            "RS384" => Algorithm::RS384,
            "RS512" => Algorithm::RS512,
            "PS256" => Algorithm::PS256,
            "PS384" => Algorithm::PS384,
            "PS512" => Algorithm::PS512,
            "ES256" => Algorithm::ES256,
            "ES384" => Algorithm::ES384,
            "EdDSA" => Algorithm::EdDSA,
            other => return Err(format!("{other} is not an asymmetric JWS algorithm")),
        };
        algorithms.push(algorithm);
    }
    if algorithms.is_empty() {
        return Err("name at least one algorithm".into());
    }
    Ok(algorithms)
}

/// `Admins=platform_admin, jobs-ops=operator` → pairs; each role one of ours.
pub fn parse_role_map(text: &str) -> Result<Vec<(String, Role)>, String> {
    let mut map = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, role) = entry
            .rsplit_once('=')
            .ok_or_else(|| format!("{entry}: write name=role"))?;
        let role = Role::parse(role.trim())
            .ok_or_else(|| format!("{entry}: {} is not a role", role.trim()))?;
        map.push((name.trim().to_string(), role));
    }
    Ok(map)
}

/// A boxed future of a [`Fetch`].
pub type Fetching<'a> = Pin<Box<dyn Future<Output = Result<Vec<u8>, String>> + Send + 'a>>;

/// Where the discovery document and the key set come from: an HTTP GET that answers the
/// body of a `200`, or why not.
pub trait Fetch: Send + Sync {
    fn get<'a>(&'a self, url: &'a str) -> Fetching<'a>;
}

/// [`Fetch`] over HTTPS with the public web PKI roots (the provider is not an AWS
/// endpoint), [`FETCH_TIMEOUT`] and [`MAX_FETCH_BYTES`].
pub struct HttpFetch {
    /// The client, or why it could not be built (each fetch then fails with it: a `503`).
    client: Result<reqwest::Client, String>,
}

impl HttpFetch {
    pub fn new() -> HttpFetch {
        // reqwest is built without a provider of its own: use the one the AWS SDK uses.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("no HTTP client: {e}"));
        HttpFetch { client }
    }
}

impl Default for HttpFetch {
    fn default() -> HttpFetch {
        HttpFetch::new()
    }
}

impl Fetch for HttpFetch {
    fn get<'a>(&'a self, url: &'a str) -> Fetching<'a> {
        Box::pin(async move {
            let client = self.client.as_ref().map_err(Clone::clone)?;
            let mut response = client.get(url).send().await.map_err(|e| e.to_string())?;
            if !response.status().is_success() {
                return Err(format!("{url} answered {}", response.status()));
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
                if body.len() + chunk.len() > MAX_FETCH_BYTES {
                    return Err(format!("{url} is larger than {MAX_FETCH_BYTES} bytes"));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(body)
        })
    }
}

#[derive(Default)]
struct KeyCache {
    jwks_uri: Option<String>,
    keys: HashMap<String, Jwk>,
    /// When `keys` was fetched; `None` before the first fetch.
    fetched_at: Option<Instant>,
    /// When the last fetch was tried, whether it worked or not.
    tried_at: Option<Instant>,
}

/// What the cache says of a `kid` without fetching.
enum Cached {
    Key(Box<Jwk>),
    /// Not in a fresh set fetched less than [`REFETCH_INTERVAL`] ago.
    Unknown,
    /// A fetch is due (no set, an old set, or an unknown `kid` and no recent fetch).
    Fetch,
    /// The last fetch failed less than [`REFETCH_INTERVAL`] ago.
    Unavailable,
}

/// Why a token was refused.
#[derive(Debug, PartialEq)]
pub enum Refusal {
    /// `401`, with the reason.
    Invalid(String),
    /// `403`: the token is good but carries no role of ours.
    NoRole(String),
    /// `503`: the key set cannot be fetched.
    KeysUnavailable,
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> ApiError {
        match refusal {
            Refusal::Invalid(reason) => ApiError::unauthorized(reason),
            Refusal::NoRole(claim) => ApiError::field(
                ErrorCode::Forbidden,
                claim.clone(),
                format!("the token's {claim} claim names no role of this service"),
            ),
            Refusal::KeysUnavailable => ApiError::new(
                ErrorCode::ServiceUnavailable,
                "the identity provider's keys cannot be fetched; retry in a moment",
            ),
        }
    }
}

/// Verifies the provider's tokens; one per container, shared by its requests.
pub struct OidcVerifier {
    settings: OidcSettings,
    fetch: Box<dyn Fetch>,
    cache: Mutex<KeyCache>,
    /// Held while fetching, so that one fetch serves every waiting request.
    fetching: tokio::sync::Mutex<()>,
    /// Fetches made: discovery documents and key sets.
    discoveries: AtomicU64,
    key_set_fetches: AtomicU64,
}

impl OidcVerifier {
    pub fn new(settings: OidcSettings, fetch: Box<dyn Fetch>) -> OidcVerifier {
        OidcVerifier {
            settings,
            fetch,
            cache: Mutex::new(KeyCache::default()),
            fetching: tokio::sync::Mutex::new(()),
            discoveries: AtomicU64::new(0),
            key_set_fetches: AtomicU64::new(0),
        }
    }

    pub fn settings(&self) -> &OidcSettings {
        &self.settings
    }

    /// (discovery documents, key sets) fetched so far.
    pub fn fetches(&self) -> (u64, u64) {
        (
            self.discoveries.load(Ordering::Relaxed),
            self.key_set_fetches.load(Ordering::Relaxed),
        )
    }

    /// The caller a token names, or why it is refused.
    pub async fn verify(&self, token: &str) -> Result<Caller, Refusal> {
        let invalid = |reason: &str| Refusal::Invalid(reason.to_string());
        match token.split('.').count() {
            3 => {}
            5 => return Err(invalid("an encrypted (JWE) token is not accepted")),
            _ => return Err(invalid("not a JWT")),
        }
        let header =
            decode_header(token).map_err(|_| invalid("the token's header is malformed"))?;
        if !self.settings.algorithms.contains(&header.alg) {
            return Err(invalid("the token's algorithm is not accepted"));
        }
        let kid = header
            .kid
            .as_deref()
            .ok_or_else(|| invalid("the token's header has no kid"))?;
        check_time_claims(token)?;
        let jwk = self
            .key(kid)
            .await?
            .ok_or_else(|| invalid("the token's kid is not a key of the issuer"))?;
        if jwk
            .common
            .key_algorithm
            .is_some_and(|a| a.to_string() != format!("{:?}", header.alg))
        {
            return Err(invalid("the token's algorithm does not fit its key"));
        }
        let key =
            DecodingKey::from_jwk(&jwk).map_err(|_| invalid("the issuer's key is unusable"))?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = self.settings.leeway_seconds;
        let claims = decode::<Value>(token, &key, &validation)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                invalid(match e.kind() {
                    ErrorKind::ExpiredSignature => "the token expired",
                    ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)",
                    ErrorKind::InvalidIssuer => "the token's issuer is not accepted",
                    ErrorKind::InvalidAudience => "the token's audience is not this API",
                    ErrorKind::InvalidAlgorithm => "the token's algorithm does not fit its key",
                    ErrorKind::InvalidSignature => "the token's signature is invalid",
                    ErrorKind::MissingRequiredClaim(_) => {
                        "the token lacks a required claim (exp, iss, aud, sub)"
                    }
                    _ => "invalid token",
                })
            })?
            .claims;
        self.caller(&claims)
    }

    fn caller(&self, claims: &Value) -> Result<Caller, Refusal> {
        let user = claims["sub"]
            .as_str()
            .filter(|s| jobs_core::domain::params::is_user_id(s))
            .ok_or_else(|| Refusal::Invalid("the token's sub is not a user id".into()))?;
        let claim = &self.settings.tenant_claim;
        let tenant = claims
            .get(claim)
            .and_then(Value::as_str)
            .filter(|t| is_tenant(t))
            .ok_or_else(|| {
                Refusal::Invalid(format!(
                    "the token's {claim} claim is missing or not a tenant slug (lower-case letters, digits, - and _)"
                ))
            })?;
        let claim = &self.settings.role_claim;
        let names: Vec<&str> = match claims.get(claim) {
            Some(Value::String(name)) => vec![name.as_str()],
            Some(Value::Array(names)) => names.iter().filter_map(Value::as_str).collect(),
            Some(_) => {
                return Err(Refusal::Invalid(format!(
                    "the token's {claim} claim is neither a string nor an array of strings"
                )));
            }
            None => Vec::new(),
        };
        let role = names
            .iter()
            .filter_map(|name| self.role_of(name))
            .max()
            .ok_or_else(|| Refusal::NoRole(claim.clone()))?;
        Ok(Caller {
            user: user.to_string(),
            tenant: tenant.to_string(),
            role,
            origin: Origin::default(),
        })
    }

    fn role_of(&self, name: &str) -> Option<Role> {
        if self.settings.role_map.is_empty() {
            return Role::parse(name);
        }
        self.settings
            .role_map
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, role)| *role)
    }

    /// The key `kid` of the issuer's set, fetching the set when the cache cannot answer.
    async fn key(&self, kid: &str) -> Result<Option<Jwk>, Refusal> {
        match self.cached(kid) {
            Cached::Key(jwk) => return Ok(Some(*jwk)),
            Cached::Unknown => return Ok(None),
            Cached::Unavailable => return Err(Refusal::KeysUnavailable),
            Cached::Fetch => {}
        }
        let _one_fetch = self.fetching.lock().await;
        // Another request may have fetched while this one waited.
        match self.cached(kid) {
            Cached::Key(jwk) => return Ok(Some(*jwk)),
            Cached::Unknown => return Ok(None),
            Cached::Unavailable => return Err(Refusal::KeysUnavailable),
            Cached::Fetch => {}
        }
        match self.fetch_keys().await {
            Ok((jwks_uri, keys)) => {
                let mut cache = lock(&self.cache);
                let now = Instant::now();
                *cache = KeyCache {
                    jwks_uri: Some(jwks_uri),
                    keys,
                    fetched_at: Some(now),
                    tried_at: Some(now),
                };
                Ok(cache.keys.get(kid).cloned())
            }
            Err(reason) => {
                tracing::error!(issuer = %self.settings.issuer, reason = %reason, "the identity provider's key set cannot be fetched");
                let mut cache = lock(&self.cache);
                cache.tried_at = Some(Instant::now());
                // Discover again next time: the provider may have moved its keys.
                cache.jwks_uri = None;
                Err(Refusal::KeysUnavailable)
            }
        }
    }

    fn cached(&self, kid: &str) -> Cached {
        let cache = lock(&self.cache);
        let recently = |at: Option<Instant>| at.is_some_and(|at| at.elapsed() < REFETCH_INTERVAL);
        let fresh = cache
            .fetched_at
            .is_some_and(|at| at.elapsed() < MAX_KEYS_AGE);
        if fresh && let Some(jwk) = cache.keys.get(kid) {
            return Cached::Key(Box::new(jwk.clone()));
        }
        if recently(cache.tried_at) {
            return if cache.fetched_at == cache.tried_at {
                Cached::Unknown
            } else {
                Cached::Unavailable
            };
        }
        Cached::Fetch
    }

    /// Discovery (once per container, unless a fetch failed) and the key set: signing keys
    /// with a `kid`, by `kid`.
    async fn fetch_keys(&self) -> Result<(String, HashMap<String, Jwk>), String> {
        let known = lock(&self.cache).jwks_uri.clone();
        let jwks_uri = match known {
            Some(uri) => uri,
            None => {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    self.settings.issuer.trim_end_matches('/')
                );
                self.discoveries.fetch_add(1, Ordering::Relaxed);
                let body = self.fetch.get(&url).await?;
                let doc: Value =
                    serde_json::from_slice(&body).map_err(|e| format!("{url} is not JSON: {e}"))?;
                if doc["issuer"].as_str() != Some(self.settings.issuer.as_str()) {
                    return Err(format!("{url} names another issuer: {}", doc["issuer"]));
                }
                doc["jwks_uri"]
                    .as_str()
                    .ok_or_else(|| format!("{url} has no jwks_uri"))?
                    .to_string()
            }
        };
        self.key_set_fetches.fetch_add(1, Ordering::Relaxed);
        let body = self.fetch.get(&jwks_uri).await?;
        let set: JwkSet = serde_json::from_slice(&body)
            .map_err(|e| format!("{jwks_uri} is not a JWK set: {e}"))?;
        let keys = set
            .keys
            .into_iter()
            .filter(|k| !matches!(k.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature))
            .filter_map(|k| k.common.key_id.clone().map(|kid| (kid, k)))
            .collect();
        Ok((jwks_uri, keys))
    }
}

/// `exp`, `nbf` and `iat`, when present, are numbers (a string `exp` is invalid, not absent).
fn check_time_claims(token: &str) -> Result<(), Refusal> {
    let payload = token.split('.').nth(1).unwrap_or_default();
    let claims: Value = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .filter(Value::is_object)
        .ok_or_else(|| Refusal::Invalid("the token's claims are not a JSON object".into()))?;
    for name in ["exp", "nbf", "iat"] {
        if claims.get(name).is_some_and(|v| !v.is_number()) {
            return Err(Refusal::Invalid(format!(
                "the token's {name} is not a number"
            )));
        }
    }
    Ok(())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
