//! `GET /tenants/{tenant}/limits` (every role of the tenant) and `PUT` (platform admins,
//! audited), and the create counter every new job passes ([`Jobs::count_create`]). The
//! limits and their storage: [`jobs_core::domain::limits`].

use serde::{Deserialize, Serialize};

use super::{Jobs, JobsApi};
use jobs_core::clock;
use jobs_core::domain::audit::{EventKind, LimitsChange, Subject};
use jobs_core::domain::auth::{Caller, is_tenant};
use std::collections::BTreeMap;

use jobs_core::domain::job::JobType;
use jobs_core::domain::limits::{
    COUNTER_KEPT_SECONDS, LIMITS_SK, LimitsRecord, MAX_CREATES_PER_MINUTE, MAX_MAX_QUEUED_JOBS,
    MAX_MAX_RUNNING_JOBS, TenantLimits, minute_of, seconds_to_next_minute, tenant_pk, wake_first,
};
use jobs_core::error::{ApiError, ErrorCode};
use jobs_core::ports::{LimitsStore, ServicePorts, UsageStore};

/// `PUT /tenants/{tenant}/limits`: the limits to change; those left out keep their value
/// (a `null` is a value, and a bad one).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsPatch {
    #[serde(default, deserialize_with = "given")]
    pub creates_per_minute: Option<serde_json::Value>,
    #[serde(default, deserialize_with = "given")]
    pub max_running_jobs: Option<serde_json::Value>,
    #[serde(default, deserialize_with = "given")]
    pub max_queued_jobs: Option<serde_json::Value>,
}

/// A field that is present, whatever its value (`null` included).
fn given<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(deserializer).map(Some)
}

/// `value` as an integer from 1 to `max`, else a `422` naming `field`.
fn bounded(field: &str, value: &serde_json::Value, max: u32) -> Result<u32, ApiError> {
    value
        .as_u64()
        .filter(|n| (1..=u64::from(max)).contains(n))
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| ApiError::invalid(field, format!("must be an integer from 1 to {max}")))
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
    /// Jobs created and not yet started (those waiting for `max_running_jobs` included).
    pub queued_jobs: u64,
    /// Running jobs by type key, every type (against `max_running_jobs`, per type).
    pub running_jobs: BTreeMap<String, u64>,
    /// Jobs waiting for `max_running_jobs`, by type key, every type.
    pub waiting_jobs: BTreeMap<String, u64>,
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
    /// Returns the tenant's limits, for the rest of the create.
    pub(crate) async fn count_create(
        &self,
        tenant: &str,
        now: time::OffsetDateTime,
    ) -> Result<TenantLimits, ApiError> {
        let (limits, _) = self.limits_of(tenant).await?;
        let at = clock::format(now);
        let ttl = now.unix_timestamp() + COUNTER_KEPT_SECONDS;
        if self
            .store
            .count_create(tenant, minute_of(&at), limits.creates_per_minute, ttl)
            .await?
        {
            return Ok(limits);
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
        let counts = self.store.usage(&tenant).await?;
        // Every type, zeros included: the same shape for every tenant.
        let by_type = |counts: BTreeMap<String, u64>| -> BTreeMap<String, u64> {
            JobType::ALL
                .iter()
                .map(|t| {
                    (
                        t.key().to_string(),
                        counts.get(t.key()).copied().unwrap_or(0),
                    )
                })
                .collect()
        };
        Ok(LimitsView {
            tenant,
            limits,
            source,
            usage: Usage {
                creates_this_minute,
                queued_jobs: counts.queued,
                running_jobs: by_type(counts.running),
                waiting_jobs: by_type(counts.waiting),
            },
        })
    }

    /// Changes a tenant's limits (platform admins, by the role table); they hold from the
    /// next create or plan, no deploy, and a raised `max_running_jobs` starts waiting jobs.
    /// `422` naming the field for a value that is not an integer from 1 to its maximum
    /// (`MAX_` constants of [`jobs_core::domain::limits`]), or for a body that changes
    /// nothing. Audited.
    pub async fn set_tenant_limits(
        &self,
        caller: &Caller,
        tenant: &str,
        patch: LimitsPatch,
    ) -> Result<LimitsView, ApiError> {
        let tenant = named(caller, tenant)?;
        if patch.creates_per_minute.is_none()
            && patch.max_running_jobs.is_none()
            && patch.max_queued_jobs.is_none()
        {
            return Err(ApiError::invalid(
                "body",
                "give creates_per_minute, max_running_jobs or max_queued_jobs",
            ));
        }
        let (before, _) = self.limits_of(&tenant).await?;
        let mut limits = before;
        if let Some(value) = &patch.creates_per_minute {
            limits.creates_per_minute =
                bounded("creates_per_minute", value, MAX_CREATES_PER_MINUTE)?;
        }
        if let Some(value) = &patch.max_running_jobs {
            limits.max_running_jobs = bounded("max_running_jobs", value, MAX_MAX_RUNNING_JOBS)?;
        }
        if let Some(value) = &patch.max_queued_jobs {
            limits.max_queued_jobs = bounded("max_queued_jobs", value, MAX_MAX_QUEUED_JOBS)?;
        }
        let at = clock::format(clock::now());
        let record = LimitsRecord {
            pk: tenant_pk(&tenant),
            sk: LIMITS_SK.into(),
            tenant: tenant.clone(),
            limits,
            updated_by: caller.actor(),
            updated_at: at.clone(),
        };
        self.store.put_limits(&record).await?;
        tracing::info!(tenant = %tenant, creates_per_minute = limits.creates_per_minute, max_running_jobs = limits.max_running_jobs, max_queued_jobs = limits.max_queued_jobs, "tenant limits set");
        // A raised limit frees running slots: as many jobs of each type's line as it frees
        // are woken, and each admission wakes more while there is room.
        let counts = self.store.usage(&tenant).await?;
        for job_type in JobType::ALL {
            let room = u64::from(limits.max_running_jobs).saturating_sub(counts.running(job_type));
            if counts.waiting(job_type) > 0 && room > 0 {
                wake_first(&self.store, &self.queue, &tenant, job_type, room).await?;
            }
        }
        self.observers
            .audit()
            .tenant_action(
                &tenant,
                Subject::Limits(LimitsChange {
                    before,
                    after: limits,
                }),
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
