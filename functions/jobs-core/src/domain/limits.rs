//! Per-tenant limits (docs/design.md, Tenant limits): how many jobs a tenant may create per
//! minute, have queued, and have running per type. A platform admin sets a tenant's limits;
//! a tenant without its own takes the stack's defaults (template parameters). Jobs-table
//! items:
//!
//! | item | pk | sk | attributes |
//! |------|----|----|------------|
//! | a tenant's limits | `TENANT#<tenant>` | `LIMITS` | `creates_per_minute`, `max_running_jobs`, `max_queued_jobs`, `updated_by`, `updated_at` |
//! | creates in a minute | `TENANT#<tenant>` | `CREATES#<yyyy-mm-ddThh:mm>` | `count`, `expires_at` (TTL, 2 minutes on) |
//! | what a tenant uses | `TENANT#<tenant>` | `USAGE` | `queued`, `running_<type key>`, `waiting_<type key>` |
//! | a job waiting for its tenant's limit | `TENANT#<tenant>` | `WAIT#<type key>#<job id>` | `job_id` |
//!
//! A job counts as queued from its create until it starts or ends; a started job counts as
//! running until it ends. Every change to the usage item is in the transaction of the job
//! write that causes it (create, start, join the line, end), conditional on the job's own
//! state, so each job is counted once whatever the retries. A tenant's usage item takes
//! about three writes per job: at the default rate (1,000 creates/min) 50 writes/s, 20x
//! below DynamoDB's 1,000 writes/s per partition.
//!
//! Each accepted create adds one to its minute's counter with a condition that it is below
//! the limit, so concurrent creates at the limit accept exactly the limit. The counter is
//! one write per created job on a per-tenant item: at the largest allowed limit
//! ([`MAX_CREATES_PER_MINUTE`] = 100,000/min, 1,667/s) a tenant could pass DynamoDB's
//! 1,000 writes/s per partition and be throttled (a `503`), its own tenant only; the
//! default (1,000/min, 17/s) is 60× below it.

use serde::{Deserialize, Serialize};

use crate::domain::job::JobType;
use crate::env::{self, SettingError};
use crate::error::StoreError;
use crate::ports::{UsageStore, WorkMessage, WorkQueue};

pub const LIMITS_SK: &str = "LIMITS";
/// Jobs a tenant may create per minute when `TENANT_CREATES_PER_MINUTE` is not set.
pub const DEFAULT_CREATES_PER_MINUTE: u32 = 1_000;
/// The largest `creates_per_minute` a platform admin may set.
pub const MAX_CREATES_PER_MINUTE: u32 = 100_000;
/// Jobs of one type a tenant may run at once when `TENANT_MAX_RUNNING_JOBS` is not set.
pub const DEFAULT_MAX_RUNNING_JOBS: u32 = 100;
/// The largest `max_running_jobs` a platform admin may set.
pub const MAX_MAX_RUNNING_JOBS: u32 = 10_000;
/// Jobs a tenant may have queued (created, not started) when `TENANT_MAX_QUEUED_JOBS` is not
/// set.
pub const DEFAULT_MAX_QUEUED_JOBS: u32 = 1_000;
/// The largest `max_queued_jobs` a platform admin may set.
pub const MAX_MAX_QUEUED_JOBS: u32 = 1_000_000;
/// The sort key of a tenant's usage item.
pub const USAGE_SK: &str = "USAGE";
/// A create refused for `max_queued_jobs` suggests retrying after this many seconds: about
/// the time a small job takes to start and end.
pub const QUEUE_FULL_RETRY_SECONDS: u64 = 10;
/// Seconds a minute's counter is kept after its minute (DynamoDB TTL).
pub const COUNTER_KEPT_SECONDS: i64 = 120;

pub fn tenant_pk(tenant: &str) -> String {
    format!("TENANT#{tenant}")
}

/// The counter item's sort key of the minute `minute` (`yyyy-mm-ddThh:mm`).
pub fn creates_sk(minute: &str) -> String {
    format!("CREATES#{minute}")
}

/// The counter item's sort key of a tenant's uploads on `day` (`yyyy-mm-dd`, UTC).
pub fn uploads_sk(day: &str) -> String {
    format!("UPLOADS#{day}")
}

/// Uploads (`POST /uploads`) a tenant may make per UTC day, unless the stack says otherwise
/// (`TENANT_UPLOADS_PER_DAY`, the template's `TenantUploadsPerDay`).
pub const DEFAULT_UPLOADS_PER_DAY: u32 = 1_000;

/// Seconds from `now` to the next UTC midnight, at least 1: a refused upload's `Retry-After`.
pub fn seconds_to_next_day(now: time::OffsetDateTime) -> u64 {
    let into_day =
        u64::from(now.hour()) * 3_600 + u64::from(now.minute()) * 60 + u64::from(now.second());
    (86_400 - into_day).max(1)
}

/// What a tenant may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantLimits {
    /// Jobs created per UTC minute (`POST /jobs`, schedules' runs, retries); beyond it a
    /// create is `429` with `Retry-After`.
    pub creates_per_minute: u32,
    /// Jobs of one type running at once; the next ones stay `queued` (`waiting_for:
    /// "tenant_limit"`) and start in creation order as running ones end.
    #[serde(default = "default_max_running_jobs")]
    pub max_running_jobs: u32,
    /// Jobs created and not yet started (all types); beyond it a create is `429`.
    #[serde(default = "default_max_queued_jobs")]
    pub max_queued_jobs: u32,
}

fn default_max_running_jobs() -> u32 {
    DEFAULT_MAX_RUNNING_JOBS
}

fn default_max_queued_jobs() -> u32 {
    DEFAULT_MAX_QUEUED_JOBS
}

impl Default for TenantLimits {
    fn default() -> Self {
        TenantLimits {
            creates_per_minute: DEFAULT_CREATES_PER_MINUTE,
            max_running_jobs: DEFAULT_MAX_RUNNING_JOBS,
            max_queued_jobs: DEFAULT_MAX_QUEUED_JOBS,
        }
    }
}

impl TenantLimits {
    /// The stack's defaults: `TENANT_CREATES_PER_MINUTE`, `TENANT_MAX_RUNNING_JOBS` and
    /// `TENANT_MAX_QUEUED_JOBS` (defaults: the `DEFAULT_` constants); the error names the
    /// variable.
    pub fn from_env() -> Result<TenantLimits, SettingError> {
        Ok(TenantLimits {
            creates_per_minute: env::parsed_or(
                "TENANT_CREATES_PER_MINUTE",
                DEFAULT_CREATES_PER_MINUTE,
            )?,
            max_running_jobs: env::parsed_or("TENANT_MAX_RUNNING_JOBS", DEFAULT_MAX_RUNNING_JOBS)?,
            max_queued_jobs: env::parsed_or("TENANT_MAX_QUEUED_JOBS", DEFAULT_MAX_QUEUED_JOBS)?,
        })
    }
}

/// What a tenant uses now: its usage item.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UsageCounts {
    /// Jobs created and not yet started or ended (waiting ones included).
    pub queued: u64,
    /// Running jobs, by type key.
    pub running: std::collections::BTreeMap<String, u64>,
    /// Jobs waiting for `max_running_jobs`, by type key.
    pub waiting: std::collections::BTreeMap<String, u64>,
}

impl UsageCounts {
    pub fn running(&self, job_type: JobType) -> u64 {
        self.running.get(job_type.key()).copied().unwrap_or(0)
    }

    pub fn waiting(&self, job_type: JobType) -> u64 {
        self.waiting.get(job_type.key()).copied().unwrap_or(0)
    }
}

/// The usage item's attribute counting `job_type`'s running jobs.
pub fn running_attribute(job_type: JobType) -> String {
    format!("running_{}", job_type.key())
}

/// The usage item's attribute counting `job_type`'s jobs waiting for the limit.
pub fn waiting_attribute(job_type: JobType) -> String {
    format!("waiting_{}", job_type.key())
}

/// The sort key of job `job_id`'s entry in its tenant's line for `job_type`: job ids are
/// ULIDs, so the line reads in creation order.
pub fn wait_sk(job_type: JobType, job_id: &str) -> String {
    format!("{}{job_id}", wait_prefix(job_type))
}

/// The sort-key prefix of a tenant's line for `job_type`.
pub fn wait_prefix(job_type: JobType) -> String {
    format!("WAIT#{}#", job_type.key())
}

/// Where a job stands against its tenant's `max_running_jobs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// It starts: counted as running, no longer as queued (nor waiting).
    Admitted,
    /// The tenant runs `max_running_jobs` of its type (or, for a job not in line, others
    /// wait before it).
    Full,
    /// The job is not as read (started, ended, or in line since): read it again.
    Changed,
}

/// A tenant's own limits as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitsRecord {
    pub pk: String,
    pub sk: String,
    pub tenant: String,
    #[serde(flatten)]
    pub limits: TenantLimits,
    pub updated_by: String,
    /// RFC 3339 UTC, milliseconds.
    pub updated_at: String,
}

/// The UTC minute of a fixed-width time (`yyyy-mm-ddThh:mm`).
pub fn minute_of(at: &str) -> &str {
    at.get(..16).unwrap_or(at)
}

/// Seconds from `now` to the next UTC minute, at least 1: a refused create's `Retry-After`.
pub fn seconds_to_next_minute(now: time::OffsetDateTime) -> u64 {
    u64::from(60 - now.second()).max(1)
}

/// Most jobs one step wakes at once (one `Query`, one `SendMessageBatch`).
pub const WAKE_AT_MOST: u64 = 10;

/// Sends the plan messages of up to `count` (at most [`WAKE_AT_MOST`]) jobs first in
/// `tenant`'s line for `job_type`: each plan admits its job if a running slot is free and
/// otherwise leaves it in line. Every step that may free slots calls it (a job's end wakes
/// one; the admission of a woken job wakes as many as there are free slots; a raised limit
/// as many as it frees), so the line refills in one trip through the queue however many
/// jobs end together; a lost wake is made by the next one, and a repeated wake is a
/// duplicate plan, which changes nothing. Returns how many jobs were woken.
pub async fn wake_first<S: UsageStore, Q: WorkQueue>(
    store: &S,
    queue: &Q,
    tenant: &str,
    job_type: JobType,
    count: u64,
) -> Result<usize, StoreError> {
    let count = usize::try_from(count.min(WAKE_AT_MOST)).unwrap_or(1);
    let plans: Vec<WorkMessage> = store
        .first_waiting(tenant, job_type, count)
        .await?
        .into_iter()
        .map(|job_id| {
            tracing::info!(job_id = %job_id, tenant, "job in line for its tenant's limit woken");
            WorkMessage::Plan {
                job_id,
                tenant: tenant.to_string(),
                woken: false,
            }
        })
        .collect();
    if !plans.is_empty() {
        queue.send_all(job_type, &plans).await?;
    }
    Ok(plans.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minute_has_its_own_counter_and_retry_after_points_at_the_next() {
        assert_eq!(minute_of("2026-12-05T10:42:07.123Z"), "2026-12-05T10:42");
        assert_eq!(creates_sk("2026-12-05T10:42"), "CREATES#2026-12-05T10:42");
        let now = time::macros::datetime!(2026-12-05 10:42:07 UTC);
        assert_eq!(seconds_to_next_minute(now), 53);
        let late = time::macros::datetime!(2026-12-05 10:42:59.9 UTC);
        assert_eq!(seconds_to_next_minute(late), 1);
        assert_eq!(uploads_sk("2026-12-05"), "UPLOADS#2026-12-05");
        assert_eq!(
            seconds_to_next_day(now),
            86_400 - (10 * 3_600 + 42 * 60 + 7)
        );
        let last = time::macros::datetime!(2026-12-05 23:59:59.5 UTC);
        assert_eq!(seconds_to_next_day(last), 1);
        let record = LimitsRecord {
            pk: tenant_pk("acme"),
            sk: LIMITS_SK.into(),
            tenant: "acme".into(),
            limits: TenantLimits {
                creates_per_minute: 3,
                ..TenantLimits::default()
            },
            updated_by: "pat".into(),
            updated_at: "2026-12-05T10:42:07.123Z".into(),
        };
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["creates_per_minute"], 3, "flat in the item");
    }
}
