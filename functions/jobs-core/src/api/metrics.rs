//! `GET /metrics`: time series of job metrics from the hourly aggregates
//! ([`crate::metrics`]): one `Query` per shard of the scope, whatever the number of jobs.

use std::collections::BTreeMap;

use serde::Serialize;
use time::{Duration, OffsetDateTime};

use super::JobsApi;
use crate::audit::AuditLog;
use crate::auth::{Caller, is_tenant};
use crate::clock::{self, DayEnd};
use crate::ended::EventBus;
use crate::error::ApiError;
use crate::job::JobType;
use crate::metrics::{ALL_TENANTS, Bucket, BucketSize, METRIC_SHARDS, Sum, bucket_start, hour_of, partition};
use crate::ports::{InputStore, JobStore, SenderIdentities, WorkQueue};
use crate::worker::in_order;

/// Longest range per bucket size: 7 days of hours, 31 days of days (744 hourly items per
/// shard at most).
const MAX_HOURS: i64 = 7 * 24;
const MAX_DAYS: i64 = 31;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricsQuery {
    pub from: OffsetDateTime,
    pub to: OffsetDateTime,
    pub bucket: BucketSize,
    pub tenant: Option<String>,
    pub job_type: Option<JobType>,
}

impl MetricsQuery {
    /// `from`, `to` (RFC 3339 or `YYYY-MM-DD`; default: the last 24 hours, or 30 days with
    /// `bucket=day`), `bucket` (`hour` or `day`), `tenant`, `type`; a 400 names the
    /// parameter.
    pub fn parse(params: &[(String, String)], now: OffsetDateTime) -> Result<MetricsQuery, ApiError> {
        let (mut from, mut to, mut bucket, mut tenant, mut job_type) = (None, None, BucketSize::Hour, None, None);
        let mut seen = std::collections::HashSet::new();
        for (name, value) in params {
            if !seen.insert(name.as_str()) {
                return Err(ApiError::bad_param(name.as_str(), "given more than once"));
            }
            let bad = |msg: &str| ApiError::bad_param(name.as_str(), msg);
            let bound = |end| clock::parse_bound(value, end).ok_or_else(|| bad("must be a date (YYYY-MM-DD) or an RFC 3339 time"));
            match name.as_str() {
                "from" => from = Some(bound(DayEnd::Start)?),
                "to" => to = Some(bound(DayEnd::End)?),
                "bucket" => {
                    bucket = match value.as_str() {
                        "hour" => BucketSize::Hour,
                        "day" => BucketSize::Day,
                        _ => return Err(bad("must be hour or day")),
                    }
                }
                "tenant" if is_tenant(value) => tenant = Some(value.clone()),
                "tenant" => return Err(bad("must be a tenant id (lower-case letters, digits, - and _)")),
                "type" => job_type = Some(JobType::parse(value).ok_or_else(|| bad("unknown job type"))?),
                _ => return Err(ApiError::bad_param(name.chars().take(64).collect::<String>(), "unknown query parameter")),
            }
        }
        let to = to.unwrap_or(now);
        let from = from.unwrap_or(match bucket {
            BucketSize::Hour => to - Duration::hours(23),
            BucketSize::Day => to - Duration::days(29),
        });
        if from > to {
            return Err(ApiError::bad_param("from", "must not be after to"));
        }
        let (span, most) = match bucket {
            BucketSize::Hour => ((bucket_start(to, bucket) - bucket_start(from, bucket)).whole_hours(), MAX_HOURS),
            BucketSize::Day => ((bucket_start(to, bucket) - bucket_start(from, bucket)).whole_days(), MAX_DAYS),
        };
        if span >= most {
            return Err(ApiError::bad_param("from", format!("the range may span at most {most} buckets of this size")));
        }
        Ok(MetricsQuery { from, to, bucket, tenant, job_type })
    }
}

#[derive(Debug, Serialize)]
pub struct MetricsAnswer {
    pub bucket: BucketSize,
    pub from: String,
    pub to: String,
    /// The tenant the series covers; absent for every tenant (admins).
    pub tenant: Option<String>,
    #[serde(rename = "type")]
    pub job_type: Option<JobType>,
    /// Every bucket of the range, oldest first, empty ones included.
    pub buckets: Vec<Bucket>,
    /// The whole range.
    pub total: Bucket,
}

fn format_start(at: OffsetDateTime) -> String {
    format!("{:04}-{:02}-{:02}T{:02}:00:00Z", at.year(), u8::from(at.month()), at.day(), at.hour())
}

impl<S: JobStore, I: InputStore, Q: WorkQueue, V: SenderIdentities, A: AuditLog, B: EventBus> JobsApi<S, I, Q, V, A, B> {
    /// Members get their tenant's series (another tenant is a 404, as everywhere); admins
    /// every tenant's, or one's.
    pub async fn metrics(&self, caller: &Caller, query: &MetricsQuery) -> Result<MetricsAnswer, ApiError> {
        let tenant = match (&query.tenant, caller.is_admin()) {
            (Some(t), false) if *t != caller.tenant => return Err(ApiError::new(crate::error::ErrorCode::NotFound, "no such tenant")),
            (None, false) => Some(caller.tenant.clone()),
            (t, _) => t.clone(),
        };
        let scope = tenant.as_deref().unwrap_or(ALL_TENANTS);
        let (first, last) = (bucket_start(query.from, query.bucket), bucket_start(query.to, query.bucket));
        let first_hour = clock::format(first);
        let last_hour = clock::format(bucket_start(query.to, BucketSize::Hour));
        let (from_sk, to_sk) = (hour_of(&first_hour), hour_of(&last_hour));
        let partitions: Vec<String> = (0..METRIC_SHARDS).map(|shard| partition(scope, shard)).collect();
        let reads = in_order(partitions.iter().map(|pk| self.store.read_metrics(pk, from_sk, to_sk)).collect(), partitions.len()).await;
        let mut sums: BTreeMap<String, Sum> = BTreeMap::new();
        for read in reads {
            for (hour, counters) in read? {
                let Some(at) = clock::parse(&format!("{hour}:00:00Z")) else { continue };
                sums.entry(format_start(bucket_start(at, query.bucket))).or_default().add(&counters, query.job_type);
            }
        }
        let step = match query.bucket {
            BucketSize::Hour => Duration::hours(1),
            BucketSize::Day => Duration::days(1),
        };
        let mut buckets = Vec::new();
        let mut total = Sum::default();
        let mut at = first;
        while at <= last {
            let start = format_start(at);
            let sum = sums.remove(&start).unwrap_or_default();
            total.merge(&sum);
            buckets.push(sum.bucket(start));
            at += step;
        }
        Ok(MetricsAnswer {
            bucket: query.bucket,
            from: clock::format(query.from),
            to: clock::format(query.to),
            tenant,
            job_type: query.job_type,
            total: total.bucket(format_start(first)),
            buckets,
        })
    }
}
