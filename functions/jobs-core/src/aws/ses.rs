//! Which senders SES lets this account send from: an address is usable when it, its
//! domain or a parent domain is a verified identity (a verified domain covers its
//! subdomains: SES Developer Guide, "Creating and verifying identities").
//!
//! Two calls: `ListIdentities` finds which of those names are identities of the account at
//! all, and `GetIdentityVerificationAttributes` tells whether one has status `Success`.
//! (The second alone would do on AWS; LocalStack answers `Success` for any name.) Answers
//! that an address may send are cached per process for [`CACHE_TTL`], so a burst of creates
//! asks SES once; a refusal is not cached, so a sender verified after a 422 works at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_ses::types::VerificationStatus;

use super::LazyClient;
use crate::error::StoreError;
use crate::ports::SenderIdentities;

/// How long an answer is reused.
pub const CACHE_TTL: Duration = Duration::from_secs(60);
/// Most `ListIdentities` pages read per check (10,000 identities; SES's default quota is
/// 10,000 identities per Region).
const MAX_LISTED_PAGES: usize = 10;
/// Most cached answers; the cache starts over when full (bounded memory).
const CACHE_ENTRIES: usize = 1_000;

pub struct SesSenderIdentities {
    client: LazyClient<aws_sdk_ses::Client>,
    /// Addresses found verified, and when.
    cache: Mutex<HashMap<String, Instant>>,
}

impl SesSenderIdentities {
    pub fn new(client: LazyClient<aws_sdk_ses::Client>) -> SesSenderIdentities {
        SesSenderIdentities {
            client,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn recently_verified(&self, address: &str) -> bool {
        self.cache.lock().is_ok_and(|cache| {
            cache
                .get(address)
                .is_some_and(|at| at.elapsed() < CACHE_TTL)
        })
    }

    fn remember(&self, address: &str) {
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_ENTRIES {
                cache.clear();
            }
            cache.insert(address.to_string(), Instant::now());
        }
    }
}

impl SesSenderIdentities {
    /// The `candidates` that are identities of this account (verified or not), from
    /// `ListIdentities` pages of 1,000, at most [`MAX_LISTED_PAGES`] of them.
    async fn listed(&self, mut candidates: Vec<String>) -> Result<Vec<String>, StoreError> {
        let mut found = Vec::new();
        let mut next_token = None;
        for _ in 0..MAX_LISTED_PAGES {
            let page = self
                .client
                .get()
                .list_identities()
                .max_items(1_000)
                .set_next_token(next_token)
                .send()
                .await
                .map_err(|e| StoreError::aws("ses:ListIdentities", e))?;
            candidates.retain(|c| {
                let listed = page.identities.iter().any(|i| i.eq_ignore_ascii_case(c));
                if listed {
                    found.push(c.clone());
                }
                !listed
            });
            next_token = page.next_token;
            if next_token.is_none() || candidates.is_empty() {
                break;
            }
        }
        Ok(found)
    }
}

impl SenderIdentities for SesSenderIdentities {
    async fn is_verified(&self, address: &str) -> Result<bool, StoreError> {
        let address = address.to_ascii_lowercase();
        if self.recently_verified(&address) {
            return Ok(true);
        }
        let identities = self.listed(identities_of(&address)).await?;
        if identities.is_empty() {
            return Ok(false);
        }
        let out = self
            .client
            .get()
            .get_identity_verification_attributes()
            .set_identities(Some(identities.clone()))
            .send()
            .await
            .map_err(|e| StoreError::aws("ses:GetIdentityVerificationAttributes", e))?;
        let verified = out
            .verification_attributes
            .iter()
            .any(|(identity, attributes)| {
                identities.iter().any(|i| i.eq_ignore_ascii_case(identity))
                    && attributes.verification_status == VerificationStatus::Success
            });
        if verified {
            self.remember(&address);
        }
        Ok(verified)
    }
}

/// The identities that would let `address` send: itself, its domain and each parent domain
/// down to two labels (`a@x.mail.example.com` → the address, `x.mail.example.com`,
/// `mail.example.com`, `example.com`). At most 1 + 126 names (a domain has ≤ 127 labels);
/// SES takes up to 100 per call, and validated addresses have far fewer.
pub(crate) fn identities_of(address: &str) -> Vec<String> {
    let mut identities = vec![address.to_string()];
    if let Some((_, domain)) = address.rsplit_once('@') {
        let labels: Vec<&str> = domain.split('.').collect();
        for start in 0..labels.len().saturating_sub(1) {
            identities.push(labels[start..].join("."));
        }
    }
    identities.truncate(100);
    identities
}

#[cfg(test)]
mod tests {
    use super::identities_of;

    #[test]
    fn an_address_is_covered_by_itself_its_domain_and_parent_domains() {
        assert_eq!(
            identities_of("a@x.mail.example.com"),
            [
                "a@x.mail.example.com",
                "x.mail.example.com",
                "mail.example.com",
                "example.com"
            ]
        );
        assert_eq!(
            identities_of("ops@example.com"),
            ["ops@example.com", "example.com"]
        );
    }
}
