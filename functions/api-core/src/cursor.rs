//! Opaque, tamper-evident list cursors.
//!
//! A cursor is `base64url(json position) . base64url(hmac)`. The MAC covers the position and
//! the listing's scope (who asks, and with which filters), which is never written into the
//! cursor: a forged cursor, or one replayed by another tenant or with other filters, fails
//! the check and is a 400 — it can never steer a query into data the caller may not see.

use std::collections::BTreeMap;

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use jobs_core::error::ApiError;

/// Where the next page starts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The month bucket being read, for cross-tenant listings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub month: Option<String>,
    /// DynamoDB's exclusive start key (all key attributes of the index are strings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_key: Option<BTreeMap<String, String>>,
}

pub struct CursorCodec {
    key: hmac::Key,
}

/// Real cursors are ~200 characters; the cap keeps URLs far below API Gateway's 8,192.
const MAX_CURSOR_LEN: usize = 512;

impl CursorCodec {
    /// Derives the cursor key from the service secret so tokens and cursors never share a key.
    pub fn new(secret: &[u8]) -> CursorCodec {
        let root = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let derived = hmac::sign(&root, b"jobs/list-cursor/v1");
        CursorCodec {
            key: hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()),
        }
    }

    pub fn encode(&self, position: &Position, scope: &str) -> String {
        // Serialising a struct of strings into JSON cannot fail.
        let body = serde_json::to_vec(position).unwrap_or_default();
        let tag = hmac::sign(&self.key, &Self::signed(&body, scope));
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&body),
            URL_SAFE_NO_PAD.encode(tag.as_ref())
        )
    }

    pub fn decode(&self, cursor: &str, scope: &str) -> Result<Position, ApiError> {
        let invalid = || ApiError::bad_param("cursor", "invalid cursor; start again without one");
        if cursor.len() > MAX_CURSOR_LEN {
            return Err(invalid());
        }
        let (body, tag) = cursor.split_once('.').ok_or_else(invalid)?;
        let body = URL_SAFE_NO_PAD.decode(body).map_err(|_| invalid())?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| invalid())?;
        hmac::verify(&self.key, &Self::signed(&body, scope), &tag).map_err(|_| invalid())?;
        serde_json::from_slice(&body).map_err(|_| invalid())
    }

    fn signed(body: &[u8], scope: &str) -> Vec<u8> {
        let mut message = Vec::with_capacity(scope.len() + 1 + body.len());
        message.extend_from_slice(scope.as_bytes());
        message.push(0);
        message.extend_from_slice(body);
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position() -> Position {
        let key = BTreeMap::from([("pk".to_string(), "JOB#01J".to_string())]);
        Position {
            month: Some("2026-11".into()),
            start_key: Some(key),
        }
    }

    #[test]
    fn round_trips_within_the_same_scope() {
        let codec = CursorCodec::new(b"secret-secret-secret-secret-1234");
        let cursor = codec.encode(&position(), "member:acme|status=running");
        assert_eq!(
            codec.decode(&cursor, "member:acme|status=running").unwrap(),
            position()
        );
    }

    #[test]
    fn other_scope_forged_or_garbage_cursors_are_400() {
        let codec = CursorCodec::new(b"secret-secret-secret-secret-1234");
        let cursor = codec.encode(&position(), "member:acme|");
        let (body, tag) = cursor.split_once('.').unwrap();
        let forged_body = URL_SAFE_NO_PAD.encode(br#"{"start_key":{"pk":"JOB#other"}}"#);
        let other_key = CursorCodec::new(b"another-secret-another-secret-12")
            .encode(&position(), "member:acme|");
        for (bad, scope) in [
            (cursor.as_str(), "member:globex|"),
            (cursor.as_str(), "member:acme|status=failed"),
            (&format!("{forged_body}.{tag}"), "member:acme|"),
            (&format!("{body}.AAAA"), "member:acme|"),
            (other_key.as_str(), "member:acme|"),
            ("", "member:acme|"),
            ("%%%.!!!", "member:acme|"),
            (&"A".repeat(5000), "member:acme|"),
        ] {
            let err = codec.decode(bad, scope).unwrap_err();
            assert_eq!(
                (err.status(), err.field.as_deref()),
                (400, Some("cursor")),
                "{bad}"
            );
        }
    }
}
