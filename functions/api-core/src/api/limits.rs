//! `GET /tenants/{tenant}/limits` (every role of the tenant) and `PUT` (platform admins,
//! audited), and the create counter every new job passes ([`Jobs::count_create`]). The
//! limits and their storage: [`jobs_core::domain::limits`].

use serde::{Deserialize, Serialize};

use super::{Jobs, JobsApi};
use jobs_core::clock;
use jobs_core::domain::audit::{EventKind, Subject};
use jobs_core::domain::auth::{Caller, is_tenant};
use jobs_core::domain::limits::{
    COUNTER_KEPT_SECONDS, LIMITS_SK, LimitsRecord, MAX_CREATES_PER_MINUTE, TenantLimits, minute_of,
    seconds_to_next_minute, tenant_pk,
};
use jobs_core::error::{ApiError, ErrorCode};
use jobs_core::ports::{LimitsStore, ServicePorts};

/// `PUT /tenants/{tenant}/limits`: the limits to set.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsPatch {
    pub creates_per_minute: serde_json::Value,
}

/// A tenant's limits and what it uses of them now.
#[derive(Debug, Serialize)]
pub struct LimitsView {
    pub tenant: String,
    #[serde(flatten)]
    pub limits: TenantLimits,
    /// `tenant` (a platform admin set them) or `default` (the stack's parameters).
    pub source: &'static str,
    pub usage: Usage,
}

#[derive(Debug, Serialize)]
pub struct Usage {
    /// Jobs created in the current UTC minute.
    pub creates_this_minute: u64,
}

impl<P: ServicePorts> Jobs<P> {
    /// `tenant`'s limits: its own, else the stack's defaults.
    async fn limits_of(&self, tenant: &str) -> Result<(TenantLimits, &'static str), ApiError> {
        Ok(match self.store.get_limits(tenant).await? {
            Some(record) => (record.limits, "tenant"),
            None => (self.default_limits, "default"),
        })
    }

    /// Counts a create of `tenant` at `now` against its `creates_per_minute`: a `429` with
    /// `Retry-After` (seconds to the next minute) once the minute's count is at the limit.
    /// Concurrent creates at the limit: exactly the limit is counted (a conditional add).
    pub(crate) async fn count_create(
        &self,
        tenant: &str,
        now: time::OffsetDateTime,
    ) -> Result<(), ApiError> {
        let (limits, _) = self.limits_of(tenant).await?;
        let at = clock::format(now);
        let ttl = now.unix_timestamp() + COUNTER_KEPT_SECONDS;
        if self
            .store
            .count_create(tenant, minute_of(&at), limits.creates_per_minute, ttl)
            .await?
        {
            return Ok(());
        }
        let wait = seconds_to_next_minute(now);
        tracing::info!(
            tenant,
            limit = limits.creates_per_minute,
            "create refused: tenant limit"
        );
        Err(ApiError::too_many(
            format!(
                "tenant {tenant} created {} jobs this minute, its limit; retry in {wait} s",
                limits.creates_per_minute
            ),
            wait,
        ))
    }
}

impl<P: ServicePorts> JobsApi<P> {
    /// A tenant's limits and usage: any role of that tenant, or a platform admin. Another
    /// tenant is a `403`.
    pub async fn tenant_limits(
        &self,
        caller: &Caller,
        tenant: &str,
    ) -> Result<LimitsView, ApiError> {
        let tenant = named(caller, tenant)?;
        let (limits, source) = self.limits_of(&tenant).await?;
        let now = clock::format(clock::now());
        let creates_this_minute = self.store.creates_in(&tenant, minute_of(&now)).await?;
        Ok(LimitsView {
            tenant,
            limits,
            source,
            usage: Usage {
                creates_this_minute,
            },
        })
    }

    /// Sets a tenant's limits (platform admins, by the role table); they hold from the
    /// next create, no deploy. `422` naming the field for a value that is not an integer
    /// from 1 to [`MAX_CREATES_PER_MINUTE`]. Audited.
    pub async fn set_tenant_limits(
        &self,
        caller: &Caller,
        tenant: &str,
        patch: LimitsPatch,
    ) -> Result<LimitsView, ApiError> {
        let tenant = named(caller, tenant)?;
        let creates_per_minute = patch
            .creates_per_minute
            .as_u64()
            .filter(|n| (1..=u64::from(MAX_CREATES_PER_MINUTE)).contains(n))
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| {
                ApiError::invalid(
                    "creates_per_minute",
                    format!("must be an integer from 1 to {MAX_CREATES_PER_MINUTE}"),
                )
            })?;
        let at = clock::format(clock::now());
        let record = LimitsRecord {
            pk: tenant_pk(&tenant),
            sk: LIMITS_SK.into(),
            tenant: tenant.clone(),
            limits: TenantLimits { creates_per_minute },
            updated_by: caller.actor(),
            updated_at: at.clone(),
        };
        self.store.put_limits(&record).await?;
        tracing::info!(tenant = %tenant, creates_per_minute, "tenant limits set");
        self.observers
            .audit()
            .tenant_action(
                &tenant,
                Subject::Limits,
                EventKind::LimitsChanged,
                caller,
                &at,
                "ok",
            )
            .await?;
        self.tenant_limits(caller, &tenant).await
    }
}

/// The tenant a path names, as the caller may use it: a malformed one is a `404`, another
/// tenant a `403` (a platform admin's excepted).
fn named(caller: &Caller, tenant: &str) -> Result<String, ApiError> {
    if !is_tenant(tenant) {
        return Err(ApiError::new(ErrorCode::NotFound, "no such tenant"));
    }
    Ok(caller
        .tenant_scope(Some(tenant), "tenant")?
        .unwrap_or_else(|| tenant.to_string()))
}
