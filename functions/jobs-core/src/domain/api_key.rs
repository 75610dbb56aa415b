//! API keys: how a tenant's machines call the API (docs/identity.md, API keys). A key is
//! `jobs_<id>_<secret>`; the service keeps only its SHA-256, with the key's id (its
//! prefix), tenant, role and times, as one Jobs-table item:
//!
//! | pk            | sk       | `owned_by` (the `owned_by_tenant` index) |
//! |---------------|----------|------------------------------------------|
//! | `APIKEY#<id>` | `APIKEY` | `<tenant>#api_key` while the key is live; removed by a revocation |
//!
//! The secret holds 256 random bits, so a single SHA-256 is enough to store it: there is
//! nothing to guess that a slow hash would protect (OWASP Password Storage Cheat Sheet
//! applies slow hashes to low-entropy passwords; random tokens need none).

use serde::{Deserialize, Serialize};

use crate::domain::auth::Role;
#[cfg(test)]
use crate::domain::record::owned_by;

pub const API_KEY_SK: &str = "APIKEY";
/// Live keys a tenant may hold at once.
pub const MAX_API_KEYS: usize = 50;
/// `last_used_at` is written at most this often per key, not on every request.
pub const LAST_USED_INTERVAL_SECONDS: i64 = 60;
/// A revoked key's item stays this long (DynamoDB TTL) before it is removed.
pub const REVOKED_KEPT_DAYS: i64 = 1;

pub fn api_key_pk(id: &str) -> String {
    format!("APIKEY#{id}")
}

/// An API key as stored: never its secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    pub pk: String,
    pub sk: String,
    /// `<tenant>#api_key` while live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owned_by: Option<String>,
    /// The key's prefix: 12 characters of Crockford base32, lower case.
    pub id: String,
    pub tenant: String,
    pub name: String,
    /// `viewer` or `operator`.
    pub role: Role,
    /// SHA-256 of the whole key (`jobs_<id>_<secret>`), lower-case hex.
    pub hash: String,
    pub created_by: String,
    /// RFC 3339 UTC, milliseconds (as every time here).
    pub created_at: String,
    /// When the key stops working; absent: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_expires_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    /// DynamoDB TTL (epoch seconds): set when the key expires or is revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

/// An API key as `POST /api-keys` and `GET /api-keys` answer it: never its secret nor its
/// hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyView {
    pub id: String,
    pub tenant: String,
    pub name: String,
    pub role: Role,
    pub created_by: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<String>,
}

impl ApiKeyRecord {
    pub fn view(&self) -> ApiKeyView {
        ApiKeyView {
            id: self.id.clone(),
            tenant: self.tenant.clone(),
            name: self.name.clone(),
            role: self.role,
            created_by: self.created_by.clone(),
            created_at: self.created_at.clone(),
            expires_at: self.key_expires_at.clone(),
            last_used_at: self.last_used_at.clone(),
        }
    }

    /// Whether the key works at `now` (fixed-width UTC): not revoked, not expired.
    pub fn is_live(&self, now: &str) -> bool {
        self.revoked_at.is_none() && self.key_expires_at.as_deref().is_none_or(|end| now < end)
    }
}

/// The id and secret of a presented key, when it has the key's form (`jobs_`, 12
/// lower-case base32 characters, `_`, 43 base64url characters); `None` otherwise.
pub fn parse_key(key: &str) -> Option<(&str, &str)> {
    let (id, secret) = key.strip_prefix("jobs_")?.split_once('_')?;
    let id_ok = id.len() == 12
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase());
    let secret_ok = secret.len() == 43
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (id_ok && secret_ok).then_some((id, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_keys_form_parses() {
        let secret = "A".repeat(43);
        let key = format!("jobs_0123456789ab_{secret}");
        assert_eq!(parse_key(&key), Some(("0123456789ab", secret.as_str())));
        let with_underscores = format!("jobs_0123456789ab_{}", "_-".repeat(21) + "x");
        assert!(parse_key(&with_underscores).is_some());
        for bad in [
            String::new(),
            "jobs_".into(),
            format!("jobs_0123456789AB_{secret}"),
            format!("jobs_0123456789a_{secret}"),
            format!("jobs_0123456789ab_{}", "A".repeat(42)),
            format!("jobs_0123456789ab_{}", "A".repeat(44)),
            format!("jobs_0123456789ab_{}=", "A".repeat(42)),
            format!("JOBS_0123456789ab_{secret}"),
            format!("eyJ0123456789ab_{secret}"),
        ] {
            assert_eq!(parse_key(&bad), None, "{bad}");
        }
    }

    #[test]
    fn a_key_is_live_until_revoked_or_expired() {
        let mut key = ApiKeyRecord {
            pk: api_key_pk("0123456789ab"),
            sk: API_KEY_SK.into(),
            owned_by: Some(owned_by("acme", "api_key")),
            id: "0123456789ab".into(),
            tenant: "acme".into(),
            name: "billing".into(),
            role: Role::Operator,
            hash: "00".into(),
            created_by: "tara".into(),
            created_at: "2026-12-01T00:00:00.000Z".into(),
            key_expires_at: Some("2026-12-02T00:00:00.000Z".into()),
            last_used_at: None,
            revoked_at: None,
            expires_at: None,
        };
        assert!(key.is_live("2026-12-01T23:59:59.999Z"));
        assert!(!key.is_live("2026-12-02T00:00:00.000Z"));
        key.key_expires_at = None;
        assert!(key.is_live("2036-12-02T00:00:00.000Z"));
        key.revoked_at = Some("2026-12-01T01:00:00.000Z".into());
        assert!(!key.is_live("2026-12-01T02:00:00.000Z"));
        let view = serde_json::to_value(key.view()).unwrap();
        assert!(view.get("hash").is_none() && view.get("revoked_at").is_none());
    }
}
