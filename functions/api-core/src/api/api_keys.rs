//! `POST /api-keys`, `GET /api-keys`, `DELETE /api-keys/{id}` (tenant admins), and how a
//! presented key becomes a caller ([`JobsApi::api_key_caller`]). Keys and their storage:
//! [`jobs_core::domain::api_key`].

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::JobsApi;
use jobs_core::clock;
use jobs_core::domain::api_key::{
    API_KEY_SK, ApiKeyRecord, ApiKeyView, LAST_USED_INTERVAL_SECONDS, MAX_API_KEYS,
    REVOKED_KEPT_DAYS, api_key_pk, parse_key,
};
use jobs_core::domain::audit::{EventKind, Origin, Subject};
use jobs_core::domain::auth::{Caller, Role};
use jobs_core::domain::record::owned_by;
use jobs_core::error::{ApiError, ErrorCode};
use jobs_core::ports::{ApiKeyStore, ServicePorts};

/// Longest key name, in characters.
pub const MAX_KEY_NAME_CHARS: usize = 100;
/// Crockford's base32 alphabet, lower case: a key id's characters.
const ID_ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// `POST /api-keys`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyRequest {
    pub name: String,
    /// `viewer` or `operator`.
    pub role: String,
    /// RFC 3339; absent: the key never expires.
    #[serde(default)]
    pub expires_at: Option<String>,
    /// A platform admin's choice; anyone else's is its own tenant.
    #[serde(default)]
    pub tenant: Option<String>,
}

/// `POST /api-keys`'s answer: the key, this once, and what is kept of it.
#[derive(Debug, Serialize)]
pub struct CreatedApiKey {
    /// `jobs_<id>_<secret>`: shown once, never stored.
    pub key: String,
    #[serde(flatten)]
    pub api_key: ApiKeyView,
}

/// `GET /api-keys`'s answer: the tenant's live keys, by id.
#[derive(Debug, Serialize)]
pub struct ApiKeysPage {
    pub items: Vec<ApiKeyView>,
}

/// A new key's id and the whole key, from the system's random generator (256 bits of
/// secret).
fn new_key() -> Result<(String, String), ApiError> {
    let mut random = [0u8; 12 + 32];
    aws_lc_rs::rand::fill(&mut random)
        .map_err(|_| ApiError::new(ErrorCode::ServiceUnavailable, "no random numbers; retry"))?;
    let (id_bytes, secret) = random.split_at(12);
    let id: String = id_bytes
        .iter()
        .map(|b| ID_ALPHABET[usize::from(b % 32)] as char)
        .collect();
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let key = format!("jobs_{id}_{secret}");
    Ok((id, key))
}

/// SHA-256 of a whole key, lower-case hex: what is stored.
pub(crate) fn hash_of(key: &str) -> String {
    digest(&SHA256, key.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The one refusal for any key that does not work: which check failed is logged only.
fn refused(reason: &str) -> ApiError {
    tracing::info!(reason, "API key refused");
    ApiError::unauthorized("invalid API key")
}

/// The tenant a listing's only parameter, `tenant`, names as the caller may use it: its
/// own by default; another one is a platform admin's only (`403`); a malformed one `400`.
pub(crate) fn named_tenant(
    caller: &Caller,
    params: &[(String, String)],
) -> Result<String, ApiError> {
    let mut named = None;
    for (name, value) in crate::query::checked(params, &["tenant"])? {
        if name == "tenant" {
            if !jobs_core::domain::auth::is_tenant(value) {
                return Err(ApiError::bad_param(
                    "tenant",
                    "must be a tenant id (lower-case letters, digits, - and _)",
                ));
            }
            named = Some(value);
        }
    }
    Ok(caller
        .tenant_scope(named, "tenant")?
        .unwrap_or_else(|| caller.tenant.clone()))
}

impl<P: ServicePorts> JobsApi<P> {
    /// Creates a key of `role` (`viewer` or `operator`) in the caller's tenant (or, for a
    /// platform admin, the one named), at most [`MAX_API_KEYS`] live per tenant; `422`
    /// naming the field for a bad name, role or expiry. Audited.
    pub async fn create_api_key(
        &self,
        caller: &Caller,
        request: ApiKeyRequest,
    ) -> Result<CreatedApiKey, ApiError> {
        let tenant = super::requested_tenant(caller, request.tenant.as_deref())?;
        let name = request.name.trim().to_string();
        if name.is_empty()
            || name.chars().count() > MAX_KEY_NAME_CHARS
            || name.chars().any(char::is_control)
        {
            return Err(ApiError::invalid(
                "name",
                format!("must be 1 to {MAX_KEY_NAME_CHARS} characters, no control characters"),
            ));
        }
        let role = match Role::parse(&request.role) {
            Some(role @ (Role::Viewer | Role::Operator)) => role,
            _ => {
                return Err(ApiError::invalid(
                    "role",
                    "must be viewer or operator: a key never administers",
                ));
            }
        };
        let now = clock::now();
        let key_expires_at = match &request.expires_at {
            None => None,
            Some(value) => {
                let at = time::OffsetDateTime::parse(
                    value,
                    &time::format_description::well_known::Rfc3339,
                )
                .map_err(|_| ApiError::invalid("expires_at", "must be an RFC 3339 time"))?;
                if at <= now {
                    return Err(ApiError::invalid("expires_at", "must be in the future"));
                }
                if at.year() > 9999 {
                    return Err(ApiError::invalid("expires_at", "must be before year 10000"));
                }
                Some(clock::format(at))
            }
        };
        if self.store.list_api_keys(&tenant).await?.len() >= MAX_API_KEYS {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!("the tenant holds {MAX_API_KEYS} live keys: revoke one first"),
            ));
        }
        let at = clock::format(now);
        for _ in 0..3 {
            let (id, key) = new_key()?;
            let record = ApiKeyRecord {
                pk: api_key_pk(&id),
                sk: API_KEY_SK.into(),
                owned_by: Some(owned_by(&tenant, "api_key")),
                id: id.clone(),
                tenant: tenant.clone(),
                name: name.clone(),
                role,
                hash: hash_of(&key),
                created_by: caller.actor(),
                created_at: at.clone(),
                expires_at: key_expires_at
                    .as_deref()
                    .and_then(clock::parse)
                    .map(|end| end.unix_timestamp() + REVOKED_KEPT_DAYS * 86_400),
                key_expires_at: key_expires_at.clone(),
                last_used_at: None,
                revoked_at: None,
            };
            if self.store.create_api_key(&record).await? {
                tracing::info!(api_key_id = %id, tenant = %tenant, "API key created");
                self.observers
                    .audit()
                    .tenant_action(
                        &tenant,
                        Subject::ApiKey(&id),
                        EventKind::ApiKeyCreated,
                        caller,
                        &at,
                        "ok",
                    )
                    .await?;
                return Ok(CreatedApiKey {
                    key,
                    api_key: record.view(),
                });
            }
        }
        Err(ApiError::new(
            ErrorCode::ServiceUnavailable,
            "could not pick a free key id; retry",
        ))
    }

    /// The live keys of the caller's tenant (or the one a platform admin names).
    pub async fn list_api_keys(
        &self,
        caller: &Caller,
        params: &[(String, String)],
    ) -> Result<ApiKeysPage, ApiError> {
        let tenant = named_tenant(caller, params)?;
        let now = clock::format(clock::now());
        let items = self
            .store
            .list_api_keys(&tenant)
            .await?
            .into_iter()
            .filter(|k| k.is_live(&now))
            .map(|k| k.view())
            .collect();
        Ok(ApiKeysPage { items })
    }

    /// Revokes a key at once: its next request is a `401`. Another tenant's key, an
    /// unknown or already revoked one is a `404`. Audited.
    pub async fn revoke_api_key(&self, caller: &Caller, id: &str) -> Result<(), ApiError> {
        let missing = || ApiError::new(ErrorCode::NotFound, "no such API key");
        let valid_id = id.len() == 12 && id.bytes().all(|b| ID_ALPHABET.contains(&b));
        if !valid_id {
            return Err(missing());
        }
        let key = match self.store.get_api_key(id).await? {
            Some(key) if caller.can_access(&key.tenant) && key.revoked_at.is_none() => key,
            _ => return Err(missing()),
        };
        let now = clock::now();
        let at = clock::format(now);
        let ttl = now.unix_timestamp() + REVOKED_KEPT_DAYS * 86_400;
        if !self.store.revoke_api_key(id, &key.tenant, &at, ttl).await? {
            return Err(missing());
        }
        tracing::info!(api_key_id = %id, tenant = %key.tenant, "API key revoked");
        self.observers
            .audit()
            .tenant_action(
                &key.tenant,
                Subject::ApiKey(id),
                EventKind::ApiKeyRevoked,
                caller,
                &at,
                "ok",
            )
            .await?;
        Ok(())
    }

    /// The caller a presented API key stands for: its tenant and role, acting as
    /// `api_key:<id>`. A malformed, unknown, expired or revoked key, or a wrong secret, is
    /// the same `401`. Notes the key's last use at most once a minute; its first use in a
    /// UTC day goes to the audit trail (written before the note, so a lost note repeats
    /// the entry rather than losing it).
    pub(crate) async fn api_key_caller(
        &self,
        presented: &str,
        origin: Origin,
    ) -> Result<Caller, ApiError> {
        let (id, _) = parse_key(presented).ok_or_else(|| refused("not a key's form"))?;
        let key = self
            .store
            .get_api_key(id)
            .await?
            .ok_or_else(|| refused("unknown id"))?;
        let matches = aws_lc_rs::constant_time::verify_slices_are_equal(
            hash_of(presented).as_bytes(),
            key.hash.as_bytes(),
        )
        .is_ok();
        if !matches {
            return Err(refused("wrong secret"));
        }
        let now = clock::now();
        let at = clock::format(now);
        if !key.is_live(&at) {
            return Err(refused("revoked or expired"));
        }
        let caller = Caller {
            user: format!("api_key:{id}"),
            tenant: key.tenant.clone(),
            role: key.role,
            origin,
        };
        let since = clock::format(now - time::Duration::seconds(LAST_USED_INTERVAL_SECONDS));
        if key
            .last_used_at
            .as_deref()
            .is_none_or(|last| last < since.as_str())
        {
            let first_today = key
                .last_used_at
                .as_deref()
                .is_none_or(|last| last.get(..10) != at.get(..10));
            if first_today {
                self.observers
                    .audit()
                    .tenant_action(
                        &key.tenant,
                        Subject::ApiKey(id),
                        EventKind::ApiKeyUsed,
                        &caller,
                        &at,
                        "ok",
                    )
                    .await?;
            }
            self.store.touch_api_key(id, &at, &since).await?;
        }
        Ok(caller)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_key_has_the_keys_form_and_its_id() {
        let (id, key) = new_key().unwrap();
        assert_eq!(parse_key(&key).map(|(i, _)| i), Some(id.as_str()));
        assert_ne!(new_key().unwrap().1, key);
        assert_eq!(hash_of(&key).len(), 64);
        assert_eq!(
            hash_of("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "SHA-256 (FIPS 180-2 test vector)"
        );
    }
}
