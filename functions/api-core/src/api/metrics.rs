//! `GET /metrics`: time series of job metrics from the hourly aggregates
//! ([`jobs_core::domain::metrics`]): one `Query` per shard of the scope, whatever the number of jobs.

use std::collections::BTreeMap;

use serde::Serialize;
use time::{Duration, OffsetDateTime};

use super::JobsApi;
use jobs_core::clock::{self, DayEnd};
use jobs_core::concurrency::in_order;
use jobs_core::domain::auth::{Caller, is_tenant};
use jobs_core::domain::job::JobType;
use jobs_core::domain::metrics::{
    ALL_TENANTS, Bucket, BucketSize, METRIC_SHARDS, Sum, bucket_start, hour_of, partition,
};
use jobs_core::error::ApiError;
use jobs_core::ports::{MetricsStore, ServicePorts};

/// Longest range per bucket size, as the contract states it (openapi.json, `GET /metrics`):
/// 168 hours of hourly buckets, 31 days of daily ones, whether or not the bounds fall on a
/// bucket's start. An unaligned range touches one bucket more (at most 32 days: 768 hourly
/// items per shard).
const MAX_HOURS: i64 = 7 * 24;
const MAX_DAYS: i64 = 31;
/// The range without `from`: the last 24 hours, or the last 30 days with `bucket=day`.
const DEFAULT_HOURS: i64 = 24;
const DEFAULT_DAYS: i64 = 30;

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
    pub fn parse(
        params: &[(String, String)],
        now: OffsetDateTime,
    ) -> Result<MetricsQuery, ApiError> {
        let (mut from, mut to, mut bucket, mut tenant, mut job_type) =
            (None, None, BucketSize::Hour, None, None);
        for (name, value) in
            crate::query::checked(params, &["from", "to", "bucket", "tenant", "type"])?
        {
            let bad = |msg: &str| ApiError::bad_param(name, msg);
            let bound = |end| {
                clock::parse_bound(value, end)
                    .ok_or_else(|| bad("must be a date (YYYY-MM-DD) or an RFC 3339 time"))
            };
            match name {
                "from" => from = Some(bound(DayEnd::Start)?),
                "to" => to = Some(bound(DayEnd::End)?),
                "bucket" => {
                    bucket = match value {
                        "hour" => BucketSize::Hour,
                        "day" => BucketSize::Day,
                        _ => return Err(bad("must be hour or day")),
                    }
                }
                "tenant" if is_tenant(value) => tenant = Some(value.to_string()),
                "tenant" => {
                    return Err(bad(
                        "must be a tenant id (lower-case letters, digits, - and _)",
                    ));
                }
                "type" => {
                    job_type = Some(JobType::parse(value).ok_or_else(|| bad("unknown job type"))?)
                }
                _ => {} // refused by query::checked
            }
        }
        let to = to.unwrap_or(now);
        let from = from.unwrap_or(match bucket {
            BucketSize::Hour => to - Duration::hours(DEFAULT_HOURS),
            BucketSize::Day => to - Duration::days(DEFAULT_DAYS),
        });
        if from > to {
            return Err(ApiError::bad_param("from", "must not be after to"));
        }
        let (longest, most) = match bucket {
            BucketSize::Hour => (Duration::hours(MAX_HOURS), format!("{MAX_HOURS} hours")),
            BucketSize::Day => (Duration::days(MAX_DAYS), format!("{MAX_DAYS} days")),
        };
        if to - from > longest {
            return Err(ApiError::bad_param(
                "from",
                format!("the range may span at most {most} with this bucket size"),
            ));
        }
        Ok(MetricsQuery {
            from,
            to,
            bucket,
            tenant,
            job_type,
        })
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
    format!(
        "{:04}-{:02}-{:02}T{:02}:00:00Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour()
    )
}

impl<P: ServicePorts> JobsApi<P> {
    /// Members get their tenant's series (another tenant is a 404, as everywhere); admins
    /// every tenant's, or one's.
    pub async fn metrics(
        &self,
        caller: &Caller,
        query: &MetricsQuery,
    ) -> Result<MetricsAnswer, ApiError> {
        let tenant = caller.tenant_scope(query.tenant.as_deref(), "tenant")?;
        let scope = tenant.as_deref().unwrap_or(ALL_TENANTS);
        let (first, last) = (
            bucket_start(query.from, query.bucket),
            bucket_start(query.to, query.bucket),
        );
        let first_hour = clock::format(first);
        let last_hour = clock::format(bucket_start(query.to, BucketSize::Hour));
        let (from_sk, to_sk) = (hour_of(&first_hour), hour_of(&last_hour));
        let partitions: Vec<String> = (0..METRIC_SHARDS)
            .map(|shard| partition(scope, shard))
            .collect();
        let reads = in_order(
            partitions
                .iter()
                .map(|pk| self.store.read_metrics(pk, from_sk, to_sk))
                .collect(),
            partitions.len(),
        )
        .await;
        let mut sums: BTreeMap<String, Sum> = BTreeMap::new();
        for read in reads {
            for (hour, counters) in read? {
                let Some(at) = clock::parse(&format!("{hour}:00:00Z")) else {
                    continue;
                };
                sums.entry(format_start(bucket_start(at, query.bucket)))
                    .or_default()
                    .add(&counters, query.job_type);
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

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn parse(pairs: &[(&str, String)], now: OffsetDateTime) -> Result<MetricsQuery, ApiError> {
        MetricsQuery::parse(
            &pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect::<Vec<_>>(),
            now,
        )
    }

    fn range(
        from: OffsetDateTime,
        to: OffsetDateTime,
        bucket: &str,
    ) -> Result<MetricsQuery, ApiError> {
        parse(
            &[
                ("from", clock::format(from)),
                ("to", clock::format(to)),
                ("bucket", bucket.to_string()),
            ],
            to,
        )
    }

    #[test]
    fn the_longest_range_is_accepted_aligned_or_not_and_a_millisecond_more_is_refused() {
        let aligned = datetime!(2026-12-04 21:00 UTC);
        let unaligned = datetime!(2026-12-04 21:17:42.123 UTC);
        for to in [aligned, unaligned] {
            let week = Duration::hours(168);
            assert!(range(to - week, to, "hour").is_ok(), "168 hours to {to}");
            let refused = range(to - week - Duration::milliseconds(1), to, "hour").unwrap_err();
            assert_eq!(
                (refused.status(), refused.field.as_deref()),
                (400, Some("from")),
                "168 h + 1 ms to {to}"
            );
            let month = Duration::days(31);
            assert!(range(to - month, to, "day").is_ok(), "31 days to {to}");
            let refused = range(to - month - Duration::milliseconds(1), to, "day").unwrap_err();
            assert_eq!(
                refused.field.as_deref(),
                Some("from"),
                "31 d + 1 ms to {to}"
            );
        }
    }

    #[test]
    fn the_default_range_is_the_last_24_hours_or_30_days() {
        let now = datetime!(2026-12-04 21:17:42 UTC);
        let hours = parse(&[], now).unwrap();
        assert_eq!((hours.from, hours.to), (now - Duration::hours(24), now));
        let days = parse(&[("bucket", "day".to_string())], now).unwrap();
        assert_eq!(days.from, now - Duration::days(30));
    }
}
