//! Job metrics: per-hour aggregates in the Jobs table, for `GET /metrics` and the page's
//! strip. Each job adds to them twice (created; ended), each time to its tenant's item and
//! the all-tenants item: four `UpdateItem ADD` requests per job, none per item, and no scan
//! to read them (docs/design.md "Metrics").
//!
//! | item | pk | sk |
//! |------|----|----|
//! | aggregate | `METRIC#<tenant or *>#<shard 0-3>` | `<yyyy-mm-ddThh>` (UTC hour) |
//!
//! Attributes are counters, one per job type: `created:<type>`, `ended_<status>:<type>`,
//! `succeeded:<type>`, `failed:<type>`, and the two histograms `wait:<type>:<b>` (created →
//! started) and `duration:<type>:<b>` (started → ended), where `b` indexes
//! [`HISTOGRAM_BOUNDS_MS`]. A job's shard is the last byte of its id mod 4, so a tenant that
//! ends many jobs at once writes four partitions, not one.

use std::collections::BTreeMap;

use serde::Serialize;
use time::OffsetDateTime;

use crate::domain::job::{JobStatus, JobType};
use crate::domain::record::JobRecord;

pub const METRIC_SHARDS: u32 = 4;
/// The all-tenants scope.
pub const ALL_TENANTS: &str = "*";
/// Upper bounds (inclusive, milliseconds) of the histogram buckets; one more bucket holds
/// everything longer. A percentile is reported as the upper bound of the bucket it falls
/// in, so it is exact to within one bucket (at most ×2.5 between neighbours).
pub const HISTOGRAM_BOUNDS_MS: [u64; 16] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 120_000, 300_000, 600_000,
    1_800_000, 3_600_000, 10_800_000, 86_400_000,
];
const ENDED: [JobStatus; 4] = [
    JobStatus::Completed,
    JobStatus::CompletedWithErrors,
    JobStatus::Failed,
    JobStatus::Cancelled,
];

/// Additions to one aggregate item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricAdd {
    pub pk: String,
    pub sk: String,
    /// Attribute name → amount to add.
    pub adds: BTreeMap<String, u64>,
    /// Epoch seconds; the item's TTL, pushed out by every write.
    pub expires_at: i64,
}

/// One aggregate item as read: its hour and counters.
pub type MetricItem = (String, BTreeMap<String, u64>);

pub fn partition(scope: &str, shard: u32) -> String {
    format!("METRIC#{scope}#{shard}")
}

/// `yyyy-mm-ddThh` of a fixed-width timestamp.
pub fn hour_of(at: &str) -> &str {
    at.get(..13).unwrap_or(at)
}

fn shard_of(job_id: &str) -> u32 {
    crate::domain::record::shard_of(job_id, METRIC_SHARDS)
}

fn bucket_of(ms: u64) -> usize {
    HISTOGRAM_BOUNDS_MS
        .iter()
        .position(|bound| ms <= *bound)
        .unwrap_or(HISTOGRAM_BOUNDS_MS.len())
}

fn millis_between(from: &str, to: &str) -> Option<u64> {
    let (from, to) = (crate::clock::parse(from)?, crate::clock::parse(to)?);
    u64::try_from((to - from).whole_milliseconds()).ok()
}

/// The same additions to `job`'s tenant item and the all-tenants item of `hour`.
fn both_scopes(
    job: &JobRecord,
    hour: &str,
    adds: BTreeMap<String, u64>,
    retention_days: u32,
) -> Vec<MetricAdd> {
    let expires_at = crate::clock::now().unix_timestamp() + i64::from(retention_days) * 86_400;
    let shard = shard_of(&job.id);
    [job.tenant.as_str(), ALL_TENANTS]
        .iter()
        .map(|scope| MetricAdd {
            pk: partition(scope, shard),
            sk: hour.to_string(),
            adds: adds.clone(),
            expires_at,
        })
        .collect()
}

/// What a new job adds: one `created`, in the hour of its `created_at`.
pub fn on_created(job: &JobRecord, retention_days: u32) -> Vec<MetricAdd> {
    let adds = BTreeMap::from([(format!("created:{}", job.job_type.key()), 1)]);
    both_scopes(job, hour_of(&job.created_at), adds, retention_days)
}

/// What a job that ended adds, in the hour of its `completed_at`: its status, its items,
/// and its wait and duration when it started.
pub fn on_ended(job: &JobRecord, retention_days: u32) -> Vec<MetricAdd> {
    let t = job.job_type.key();
    let mut adds = BTreeMap::from([(format!("ended_{}:{t}", job.status.key()), 1)]);
    if job.succeeded > 0 {
        adds.insert(format!("succeeded:{t}"), job.succeeded);
    }
    if job.failed > 0 {
        adds.insert(format!("failed:{t}"), job.failed);
    }
    if let (Some(started), Some(ended)) = (&job.started_at, &job.completed_at) {
        if let Some(ms) = millis_between(&job.created_at, started) {
            adds.insert(format!("wait:{t}:{}", bucket_of(ms)), 1);
        }
        if let Some(ms) = millis_between(started, ended) {
            adds.insert(format!("duration:{t}:{}", bucket_of(ms)), 1);
        }
    }
    let at = job
        .completed_at
        .clone()
        .unwrap_or_else(|| crate::clock::format(crate::clock::now()));
    both_scopes(job, hour_of(&at), adds, retention_days)
}

/// Bucket size of a series.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BucketSize {
    Hour,
    Day,
}

/// p50 and p95 in milliseconds (upper bounds of their histogram buckets); `None` without
/// data, or when the percentile is beyond the last bound (over a day).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Percentiles {
    pub p50: Option<u64>,
    pub p95: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Ended {
    pub completed: u64,
    pub completed_with_errors: u64,
    pub failed: u64,
    pub cancelled: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Items {
    pub succeeded: u64,
    pub failed: u64,
}

/// One bucket of a series (or the whole range, as `total`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Bucket {
    /// Start of the bucket, RFC 3339 UTC.
    pub start: String,
    pub created: u64,
    pub ended: Ended,
    pub items: Items,
    pub wait_ms: Percentiles,
    pub duration_ms: Percentiles,
}

/// Counters summed over items, for the job types asked for.
#[derive(Clone, Debug, Default)]
pub struct Sum {
    created: u64,
    ended: [u64; 4],
    items: [u64; 2],
    wait: [u64; HISTOGRAM_BOUNDS_MS.len() + 1],
    duration: [u64; HISTOGRAM_BOUNDS_MS.len() + 1],
}

impl Sum {
    /// Adds an item's counters of `job_type` (or of every type).
    pub fn add(&mut self, counters: &BTreeMap<String, u64>, job_type: Option<JobType>) {
        for (name, value) in counters {
            let mut parts = name.split(':');
            let (Some(field), Some(t)) = (parts.next(), parts.next()) else {
                continue;
            };
            if job_type.is_some_and(|wanted| wanted.key() != t) {
                continue;
            }
            let bucket = parts
                .next()
                .and_then(|b| b.parse::<usize>().ok())
                .filter(|b| *b <= HISTOGRAM_BOUNDS_MS.len());
            match (field, bucket) {
                ("created", None) => self.created += value,
                ("succeeded", None) => self.items[0] += value,
                ("failed", None) => self.items[1] += value,
                ("wait", Some(b)) => self.wait[b] += value,
                ("duration", Some(b)) => self.duration[b] += value,
                (ended, None) => {
                    if let Some(i) = ENDED
                        .iter()
                        .position(|s| ended.strip_prefix("ended_") == Some(s.key()))
                    {
                        self.ended[i] += value;
                    }
                }
                _ => {}
            }
        }
    }

    pub fn merge(&mut self, other: &Sum) {
        self.created += other.created;
        for i in 0..4 {
            self.ended[i] += other.ended[i];
        }
        for i in 0..2 {
            self.items[i] += other.items[i];
        }
        for i in 0..self.wait.len() {
            self.wait[i] += other.wait[i];
            self.duration[i] += other.duration[i];
        }
    }

    pub fn bucket(&self, start: String) -> Bucket {
        Bucket {
            start,
            created: self.created,
            ended: Ended {
                completed: self.ended[0],
                completed_with_errors: self.ended[1],
                failed: self.ended[2],
                cancelled: self.ended[3],
            },
            items: Items {
                succeeded: self.items[0],
                failed: self.items[1],
            },
            wait_ms: percentiles(&self.wait),
            duration_ms: percentiles(&self.duration),
        }
    }
}

fn percentiles(histogram: &[u64]) -> Percentiles {
    let total: u64 = histogram.iter().sum();
    let at = |q: f64| -> Option<u64> {
        if total == 0 {
            return None;
        }
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, count) in histogram.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return HISTOGRAM_BOUNDS_MS.get(i).copied();
            }
        }
        None
    };
    Percentiles {
        p50: at(0.50),
        p95: at(0.95),
    }
}

/// The start of the bucket holding `at` (an hour, or a day at 00:00 UTC), RFC 3339.
pub fn bucket_start(at: OffsetDateTime, size: BucketSize) -> OffsetDateTime {
    let at = at.to_offset(time::UtcOffset::UTC);
    let hour = if size == BucketSize::Hour {
        at.hour()
    } else {
        0
    };
    at.date()
        .with_hms(hour, 0, 0)
        .map_or(at, |t| t.assume_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::record::NewJob;

    fn job(status: JobStatus, started: Option<&str>, completed: &str) -> JobRecord {
        let mut job = JobRecord::new(NewJob {
            id: "01JDQ0000000000000000000A3".into(),
            job_type: JobType::ProfileFieldUpdate,
            tenant: "acme".into(),
            user: "alice".into(),
            created_at: "2026-11-30T09:59:59.000Z".into(),
            month: "2026-11".into(),
            total: 10,
            summary: serde_json::json!({}),
            input_key: "k".into(),
            expires_at: 0,
        });
        job.status = status;
        job.started_at = started.map(str::to_string);
        job.completed_at = Some(completed.to_string());
        (job.succeeded, job.failed) = (7, 3);
        job
    }

    #[test]
    fn a_job_adds_to_its_tenant_and_all_tenants_in_the_hours_of_its_creation_and_end() {
        let ended = job(
            JobStatus::CompletedWithErrors,
            Some("2026-11-30T10:00:01.000Z"),
            "2026-11-30T10:00:31.000Z",
        );
        let created = on_created(&ended, 90);
        assert_eq!(
            created
                .iter()
                .map(|a| (a.pk.as_str(), a.sk.as_str()))
                .collect::<Vec<_>>(),
            [
                ("METRIC#acme#3", "2026-11-30T09"),
                ("METRIC#*#3", "2026-11-30T09")
            ]
        );
        assert_eq!(
            created[0].adds,
            BTreeMap::from([("created:profile_field_update".to_string(), 1)])
        );
        let adds = on_ended(&ended, 90);
        assert_eq!(adds.len(), 2, "two writes at the end; four per job in all");
        assert_eq!(adds[0].sk, "2026-11-30T10");
        assert_eq!(
            adds[0].adds,
            BTreeMap::from([
                (
                    "ended_completed_with_errors:profile_field_update".to_string(),
                    1
                ),
                ("succeeded:profile_field_update".to_string(), 7),
                ("failed:profile_field_update".to_string(), 3),
                // waited 2 s (bucket ≤ 2,500 ms), ran 30 s (bucket ≤ 30,000 ms)
                ("wait:profile_field_update:4".to_string(), 1),
                ("duration:profile_field_update:7".to_string(), 1),
            ])
        );
        let never_started = on_ended(
            &job(JobStatus::Cancelled, None, "2026-11-30T10:00:00.000Z"),
            90,
        );
        assert!(
            never_started[0]
                .adds
                .keys()
                .all(|k| !k.starts_with("wait") && !k.starts_with("duration"))
        );
    }

    #[test]
    fn sums_filter_by_type_and_percentiles_come_from_the_histogram() {
        let mut counters = BTreeMap::new();
        counters.insert("created:profile_field_update".to_string(), 4);
        counters.insert("created:ai_text_embedding".to_string(), 9);
        counters.insert("ended_failed:profile_field_update".to_string(), 1);
        counters.insert("succeeded:profile_field_update".to_string(), 30);
        // 19 waits of at most 100 ms, one of at most an hour
        counters.insert("wait:profile_field_update:0".to_string(), 19);
        counters.insert("wait:profile_field_update:13".to_string(), 1);
        let mut sum = Sum::default();
        sum.add(&counters, Some(JobType::ProfileFieldUpdate));
        let bucket = sum.bucket("2026-11-30T10:00:00Z".into());
        assert_eq!(
            (bucket.created, bucket.ended.failed, bucket.items.succeeded),
            (4, 1, 30)
        );
        assert_eq!(
            bucket.wait_ms,
            Percentiles {
                p50: Some(100),
                p95: Some(100)
            }
        );
        counters.insert("wait:profile_field_update:13".to_string(), 2);
        let mut all = Sum::default();
        all.add(&counters, None);
        let bucket = all.bucket(String::new());
        assert_eq!(
            (bucket.created, bucket.wait_ms.p95, bucket.duration_ms.p50),
            (13, Some(3_600_000), None)
        );
        counters.insert("bogus".to_string(), 5);
        counters.insert("wait:profile_field_update:99".to_string(), 5);
        let mut tolerant = Sum::default();
        tolerant.add(&counters, None);
        assert_eq!(
            tolerant.bucket(String::new()).created,
            13,
            "unknown attributes are ignored"
        );
    }
}
