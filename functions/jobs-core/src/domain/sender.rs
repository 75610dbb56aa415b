//! Senders: the addresses and domains a tenant's Bulk Message Sending jobs may send from
//! (docs/identity.md, Senders). Each belongs to at most one tenant, as one Jobs-table item:
//!
//! | pk                    | sk       | `owned_by` (the `owned_by_tenant` index) |
//! |-----------------------|----------|------------------------------------------|
//! | `SENDER#<identity>`   | `SENDER` | `<tenant>#sender` while registered; removed with it |
//!
//! `identity` is the address or the domain, in lower case. A job's `from` may send for a
//! tenant when its address is the tenant's, or, with no owner of the address itself, its
//! exact domain is: a domain does not cover its subdomains.

use serde::{Deserialize, Serialize};

pub const SENDER_SK: &str = "SENDER";
/// Senders a tenant may hold at once.
pub const MAX_SENDERS: usize = 100;
/// A removed sender's item stays this long (DynamoDB TTL) before it is removed.
pub const REMOVED_KEPT_DAYS: i64 = 1;

pub fn sender_pk(identity: &str) -> String {
    format!("SENDER#{identity}")
}

/// An address (`news@acme.example.com`) or a whole domain (`acme.example.com`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SenderKind {
    Address,
    Domain,
}

/// A sender as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SenderRecord {
    pub pk: String,
    pub sk: String,
    /// `<tenant>#sender` while registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owned_by: Option<String>,
    /// The address or domain, lower case.
    pub identity: String,
    pub kind: SenderKind,
    pub tenant: String,
    pub created_by: String,
    /// RFC 3339 UTC, milliseconds.
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_at: Option<String>,
    /// DynamoDB TTL (epoch seconds): set when the sender is removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

/// A sender as `POST /senders` and `GET /senders` answer it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SenderView {
    /// The address or the domain.
    pub sender: String,
    pub kind: SenderKind,
    pub tenant: String,
    pub created_by: String,
    pub created_at: String,
}

impl SenderRecord {
    pub fn view(&self) -> SenderView {
        SenderView {
            sender: self.identity.clone(),
            kind: self.kind,
            tenant: self.tenant.clone(),
            created_by: self.created_by.clone(),
            created_at: self.created_at.clone(),
        }
    }

    pub fn is_registered(&self) -> bool {
        self.removed_at.is_none()
    }
}

/// The domain of an address, lower case (`None` without an `@`).
pub fn domain_of(address: &str) -> Option<String> {
    address
        .rsplit_once('@')
        .map(|(_, domain)| domain.to_ascii_lowercase())
}

/// The identities that decide who may send from `address`: the address itself, then its
/// exact domain, lower case.
pub fn deciding_identities(address: &str) -> Vec<String> {
    let mut identities = vec![address.to_ascii_lowercase()];
    identities.extend(domain_of(address));
    identities
}

/// The tenant that may send from `address`, given the registered records among its
/// [`deciding_identities`]: the address's owner, else its domain's, else none.
pub fn owner_of<'a>(address: &str, records: &'a [SenderRecord]) -> Option<&'a str> {
    let registered = |identity: &str| {
        records
            .iter()
            .find(|r| r.identity == identity && r.is_registered())
            .map(|r| r.tenant.as_str())
    };
    let identities = deciding_identities(address);
    identities.iter().find_map(|identity| registered(identity))
}

/// A domain name as SES takes one: dot-separated labels of letters, digits and hyphens
/// (1–63 characters, no hyphen at either end), at least two, 253 characters at most.
pub fn is_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    domain.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            (1..=63).contains(&l.len())
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(identity: &str, kind: SenderKind, tenant: &str) -> SenderRecord {
        SenderRecord {
            pk: sender_pk(identity),
            sk: SENDER_SK.into(),
            owned_by: Some(format!("{tenant}#sender")),
            identity: identity.into(),
            kind,
            tenant: tenant.into(),
            created_by: "tara".into(),
            created_at: "2026-12-01T00:00:00.000Z".into(),
            removed_at: None,
            expires_at: None,
        }
    }

    #[test]
    fn an_address_is_its_owners_else_its_exact_domains() {
        let domain = record("acme.example.com", SenderKind::Domain, "acme");
        let address = record("news@acme.example.com", SenderKind::Address, "globex");
        assert_eq!(
            owner_of("Ops@ACME.example.com", std::slice::from_ref(&domain)),
            Some("acme")
        );
        assert_eq!(
            owner_of("news@acme.example.com", &[domain.clone(), address]),
            Some("globex"),
            "the address's own owner decides"
        );
        assert_eq!(
            owner_of("ops@eu.acme.example.com", std::slice::from_ref(&domain)),
            None,
            "a domain does not cover its subdomains"
        );
        let mut removed = domain;
        removed.removed_at = Some("2026-12-02T00:00:00.000Z".into());
        assert_eq!(owner_of("ops@acme.example.com", &[removed]), None);
        assert_eq!(
            deciding_identities("News@Acme.Example.com"),
            ["news@acme.example.com", "acme.example.com"]
        );
    }

    #[test]
    fn domains_are_checked_by_label() {
        for good in ["example.com", "acme.example.com", "a-b.c1.io"] {
            assert!(is_domain(good), "{good}");
        }
        for bad in [
            "",
            "com",
            "-a.com",
            "a-.com",
            "a..com",
            "a b.com",
            "a@b.com",
            &format!("{}.com", "a".repeat(64)),
        ] {
            assert!(!is_domain(bad), "{bad}");
        }
    }
}
