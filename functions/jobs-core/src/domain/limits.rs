//! Per-tenant limits (docs/design.md, Tenant limits): how many jobs a tenant may create per
//! minute. A platform admin sets a tenant's limits; a tenant without its own takes the
//! stack's defaults (template parameters). Jobs-table items:
//!
//! | item | pk | sk | attributes |
//! |------|----|----|------------|
//! | a tenant's limits | `TENANT#<tenant>` | `LIMITS` | `creates_per_minute`, `updated_by`, `updated_at` |
//! | creates in a minute | `TENANT#<tenant>` | `CREATES#<yyyy-mm-ddThh:mm>` | `count`, `expires_at` (TTL, 2 minutes on) |
//!
//! Each accepted create adds one to its minute's counter with a condition that it is below
//! the limit, so concurrent creates at the limit accept exactly the limit. The counter is
//! one write per created job on a per-tenant item: at the largest allowed limit
//! ([`MAX_CREATES_PER_MINUTE`] = 100,000/min, 1,667/s) a tenant could pass DynamoDB's
//! 1,000 writes/s per partition and be throttled (a `503`), its own tenant only; the
//! default (1,000/min, 17/s) is 60× below it.

use serde::{Deserialize, Serialize};

use crate::env::{self, SettingError};

pub const LIMITS_SK: &str = "LIMITS";
/// Jobs a tenant may create per minute when `TENANT_CREATES_PER_MINUTE` is not set.
pub const DEFAULT_CREATES_PER_MINUTE: u32 = 1_000;
/// The largest `creates_per_minute` a platform admin may set.
pub const MAX_CREATES_PER_MINUTE: u32 = 100_000;
/// Seconds a minute's counter is kept after its minute (DynamoDB TTL).
pub const COUNTER_KEPT_SECONDS: i64 = 120;

pub fn tenant_pk(tenant: &str) -> String {
    format!("TENANT#{tenant}")
}

/// The counter item's sort key of the minute `minute` (`yyyy-mm-ddThh:mm`).
pub fn creates_sk(minute: &str) -> String {
    format!("CREATES#{minute}")
}

/// What a tenant may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantLimits {
    /// Jobs created per UTC minute (`POST /jobs`, schedules' runs, retries); beyond it a
    /// create is `429` with `Retry-After`.
    pub creates_per_minute: u32,
}

impl Default for TenantLimits {
    fn default() -> Self {
        TenantLimits {
            creates_per_minute: DEFAULT_CREATES_PER_MINUTE,
        }
    }
}

impl TenantLimits {
    /// The stack's defaults: `TENANT_CREATES_PER_MINUTE` (default
    /// [`DEFAULT_CREATES_PER_MINUTE`]); the error names the variable.
    pub fn from_env() -> Result<TenantLimits, SettingError> {
        Ok(TenantLimits {
            creates_per_minute: env::parsed_or(
                "TENANT_CREATES_PER_MINUTE",
                DEFAULT_CREATES_PER_MINUTE,
            )?,
        })
    }
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
        let record = LimitsRecord {
            pk: tenant_pk("acme"),
            sk: LIMITS_SK.into(),
            tenant: "acme".into(),
            limits: TenantLimits {
                creates_per_minute: 3,
            },
            updated_by: "pat".into(),
            updated_at: "2026-12-05T10:42:07.123Z".into(),
        };
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["creates_per_minute"], 3, "flat in the item");
    }
}
