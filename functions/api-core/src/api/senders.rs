//! `POST /senders`, `GET /senders`, `DELETE /senders/{sender}` (tenant admins; domains by
//! platform admins), and the check that a bulk job's `from` is its tenant's
//! ([`Jobs::may_send_from`]). Senders and their storage: [`jobs_core::domain::sender`].

use serde::{Deserialize, Serialize};

use super::{Jobs, JobsApi};
use jobs_core::clock;
use jobs_core::domain::audit::{EventKind, Subject};
use jobs_core::domain::auth::Caller;
use jobs_core::domain::params::is_email;
use jobs_core::domain::record::owned_by;
use jobs_core::domain::sender::{
    MAX_SENDERS, REMOVED_KEPT_DAYS, SENDER_SK, SenderKind, SenderRecord, SenderView,
    deciding_identities, domain_of, is_domain, owner_of, sender_pk,
};
use jobs_core::error::{ApiError, ErrorCode};
use jobs_core::ports::{SenderIdentities, SenderStore, ServicePorts};

/// `POST /senders`: an address (tenant admins) or a domain (platform admins).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SenderRequest {
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub domain: Option<String>,
    /// A platform admin's choice; anyone else's is its own tenant.
    #[serde(default)]
    pub tenant: Option<String>,
}

/// `GET /senders`'s answer: the tenant's senders, by identity.
#[derive(Debug, Serialize)]
pub struct SendersPage {
    pub items: Vec<SenderView>,
}

impl<P: ServicePorts> Jobs<P> {
    /// Whether a job of `tenant` may send from `address`: the address is one of the
    /// tenant's senders, or (with no owner of the address itself) its exact domain is.
    pub(crate) async fn may_send_from(
        &self,
        tenant: &str,
        address: &str,
    ) -> Result<bool, ApiError> {
        let records = self
            .store
            .get_senders(&deciding_identities(address))
            .await?;
        Ok(owner_of(address, &records) == Some(tenant))
    }
}

impl<P: ServicePorts> JobsApi<P> {
    /// Registers an address (a tenant admin, in its tenant) or a domain (a platform admin
    /// only, for the tenant it names) that SES has verified. `422` naming the field for a
    /// bad or unverified one; `403` on `domain` for anyone but a platform admin; `409` when
    /// it (or, for an address, its domain) belongs to another tenant or is already there.
    pub async fn create_sender(
        &self,
        caller: &Caller,
        request: SenderRequest,
    ) -> Result<SenderView, ApiError> {
        let tenant = super::requested_tenant(caller, request.tenant.as_deref())?;
        let (identity, kind) = match (request.address, request.domain) {
            (Some(address), None) => {
                let address = address.trim().to_ascii_lowercase();
                if !is_email(&address) {
                    return Err(ApiError::invalid(
                        "address",
                        "must be a valid email address",
                    ));
                }
                (address, SenderKind::Address)
            }
            (None, Some(domain)) => {
                if !caller.is_platform_admin() {
                    return Err(ApiError::field(
                        ErrorCode::Forbidden,
                        "domain",
                        "only a platform admin assigns a domain to a tenant",
                    ));
                }
                let domain = domain.trim().to_ascii_lowercase();
                if !is_domain(&domain) {
                    return Err(ApiError::invalid("domain", "must be a domain name"));
                }
                (domain, SenderKind::Domain)
            }
            _ => {
                return Err(ApiError::invalid(
                    "body",
                    "give exactly one of address and domain",
                ));
            }
        };
        let field = match kind {
            SenderKind::Address => "address",
            SenderKind::Domain => "domain",
        };
        // SES must be able to send as it: an address at a domain it verified is checked
        // as any address there.
        let probe = match kind {
            SenderKind::Address => identity.clone(),
            SenderKind::Domain => format!("postmaster@{identity}"),
        };
        if !self.senders.is_verified(&probe).await? {
            return Err(ApiError::invalid(
                field,
                "is not a verified SES identity: verify it or its domain first",
            ));
        }
        let taken = || {
            ApiError::field(
                ErrorCode::Conflict,
                field,
                "is already a sender of a tenant: a tenant admin of it removes it first",
            )
        };
        if kind == SenderKind::Address
            && let Some(domain) = domain_of(&identity)
        {
            let records = self.store.get_senders(&[domain]).await?;
            if records
                .iter()
                .any(|r| r.is_registered() && r.tenant != tenant)
            {
                return Err(taken());
            }
        }
        if self.store.list_senders(&tenant).await?.len() >= MAX_SENDERS {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!("the tenant holds {MAX_SENDERS} senders: remove one first"),
            ));
        }
        let at = clock::format(clock::now());
        let record = SenderRecord {
            pk: sender_pk(&identity),
            sk: SENDER_SK.into(),
            owned_by: Some(owned_by(&tenant, "sender")),
            identity: identity.clone(),
            kind,
            tenant: tenant.clone(),
            created_by: caller.actor(),
            created_at: at.clone(),
            removed_at: None,
            expires_at: None,
        };
        if !self.store.add_sender(&record).await? {
            return Err(taken());
        }
        tracing::info!(sender = %identity, tenant = %tenant, "sender added");
        self.observers
            .audit()
            .tenant_action(
                &tenant,
                Subject::Sender(&identity),
                EventKind::SenderAdded,
                caller,
                &at,
                "ok",
            )
            .await?;
        Ok(record.view())
    }

    /// The senders of the caller's tenant (or the one a platform admin names).
    pub async fn list_senders(
        &self,
        caller: &Caller,
        params: &[(String, String)],
    ) -> Result<SendersPage, ApiError> {
        let tenant = super::api_keys::named_tenant(caller, params)?;
        let items = self
            .store
            .list_senders(&tenant)
            .await?
            .iter()
            .map(SenderRecord::view)
            .collect();
        Ok(SendersPage { items })
    }

    /// Removes a sender: the tenant's jobs may no longer send from it (jobs already
    /// created keep their sender). A domain is a platform admin's to remove; another
    /// tenant's or an unknown sender is a `404`. Audited.
    pub async fn remove_sender(&self, caller: &Caller, sender: &str) -> Result<(), ApiError> {
        let missing = || ApiError::new(ErrorCode::NotFound, "no such sender");
        let identity = percent_encoding::percent_decode_str(sender)
            .decode_utf8()
            .map_err(|_| missing())?
            .to_ascii_lowercase();
        if !is_email(&identity) && !is_domain(&identity) {
            return Err(missing());
        }
        let record = self
            .store
            .get_senders(std::slice::from_ref(&identity))
            .await?
            .into_iter()
            .find(|r| r.is_registered() && caller.can_access(&r.tenant))
            .ok_or_else(missing)?;
        if record.kind == SenderKind::Domain && !caller.is_platform_admin() {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "only a platform admin removes a domain from a tenant",
            ));
        }
        let now = clock::now();
        let at = clock::format(now);
        let ttl = now.unix_timestamp() + REMOVED_KEPT_DAYS * 86_400;
        if !self
            .store
            .remove_sender(&identity, &record.tenant, &at, ttl)
            .await?
        {
            return Err(missing());
        }
        tracing::info!(sender = %identity, tenant = %record.tenant, "sender removed");
        self.observers
            .audit()
            .tenant_action(
                &record.tenant,
                Subject::Sender(&identity),
                EventKind::SenderRemoved,
                caller,
                &at,
                "ok",
            )
            .await?;
        Ok(())
    }
}
