//! `GET /jobs/{id}/events` (a job's timeline) and `GET /audit` (a tenant's entries, or
//! every tenant's for platform admins, by time range), both read from the audit trail
//! ([`jobs_core::domain::audit`]) by key.

use std::collections::BTreeMap;

use serde::Serialize;
use time::OffsetDateTime;

use super::JobsApi;
use crate::cursor::Position;
use jobs_core::clock::{self, DayEnd};
use jobs_core::concurrency::in_order;
use jobs_core::domain::audit::{AuditEvent, day_of, day_partitions, started_event};
use jobs_core::domain::auth::{Caller, is_tenant};
use jobs_core::error::ApiError;
use jobs_core::ports::AuditLog;
use jobs_core::ports::ServicePorts;

/// Default and largest page of events.
pub const DEFAULT_EVENTS: u32 = 50;
pub const MAX_EVENTS: u32 = 100;
/// Days one `GET /audit` call reads at most; past them the answer's cursor continues.
pub const MAX_DAYS_PER_CALL: u32 = 31;
/// Default range of `GET /audit` without `from`: the last day.
const DEFAULT_RANGE: time::Duration = time::Duration::days(1);

#[derive(Debug, Serialize)]
pub struct EventsPage {
    pub items: Vec<AuditEvent>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// `GET /audit`'s parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditQuery {
    /// Inclusive bounds, fixed-width UTC.
    pub from: String,
    pub to: String,
    pub tenant: Option<String>,
    pub limit: u32,
    pub cursor: Option<String>,
    /// Binds cursors to the parameters as given (a default `to` is "now" on every call).
    scope: String,
}

impl AuditQuery {
    /// `from` and `to` (RFC 3339 or `YYYY-MM-DD`; default: the day up to now), `tenant`,
    /// `limit` (1–100, default 50), `cursor`; each problem is a 400 naming the parameter.
    pub fn parse(params: &[(String, String)], now: OffsetDateTime) -> Result<AuditQuery, ApiError> {
        let mut from = None;
        let mut to = None;
        let mut query = AuditQuery {
            from: String::new(),
            to: String::new(),
            tenant: None,
            limit: DEFAULT_EVENTS,
            cursor: None,
            scope: String::new(),
        };
        for (name, value) in
            crate::query::checked(params, &["from", "to", "tenant", "limit", "cursor"])?
        {
            let bad = |msg: &str| ApiError::bad_param(name, msg);
            let bound = |end| {
                clock::parse_bound(value, end)
                    .ok_or_else(|| bad("must be a date (YYYY-MM-DD) or an RFC 3339 time"))
            };
            match name {
                "from" => from = Some(bound(DayEnd::Start)?),
                "to" => to = Some(bound(DayEnd::End)?),
                "tenant" if is_tenant(value) => query.tenant = Some(value.to_string()),
                "tenant" => {
                    return Err(bad(
                        "must be a tenant id (lower-case letters, digits, - and _)",
                    ));
                }
                "limit" => {
                    query.limit =
                        parse_limit(value).ok_or_else(|| bad("must be an integer from 1 to 100"))?
                }
                "cursor" => query.cursor = Some(value.to_string()),
                _ => {} // refused by query::checked
            }
        }
        let given = |name: &str| {
            params
                .iter()
                .find(|(n, _)| n == name)
                .map_or("", |(_, v)| v.as_str())
        };
        query.scope = format!(
            "audit|{}|{}|{}",
            given("from"),
            given("to"),
            given("tenant")
        );
        let to = to.unwrap_or(now);
        let from = from.unwrap_or(to - DEFAULT_RANGE);
        if from > to {
            return Err(ApiError::bad_param("from", "must not be after to"));
        }
        query.from = clock::format(from);
        query.to = clock::format(to);
        Ok(query)
    }
}

fn parse_limit(value: &str) -> Option<u32> {
    value
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=MAX_EVENTS).contains(n))
}

/// The day before `yyyy-mm-dd`.
fn previous_day(day: &str) -> Option<String> {
    let date = time::Date::parse(
        day,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()?;
    let before = date.previous_day()?;
    Some(format!(
        "{:04}-{:02}-{:02}",
        before.year(),
        u8::from(before.month()),
        before.day()
    ))
}

impl<P: ServicePorts> JobsApi<P> {
    /// A job's events, oldest first: its audit entries and its `started` time. Hidden jobs
    /// included; another tenant's job is a 404.
    pub async fn job_events(
        &self,
        caller: &Caller,
        id: &str,
        params: &[(String, String)],
    ) -> Result<EventsPage, ApiError> {
        let mut limit = DEFAULT_EVENTS;
        let mut cursor = None;
        for (name, value) in crate::query::checked(params, &["limit", "cursor"])? {
            match name {
                "limit" => {
                    limit = parse_limit(value).ok_or_else(|| {
                        ApiError::bad_param("limit", "must be an integer from 1 to 100")
                    })?
                }
                "cursor" => cursor = Some(value),
                _ => {} // refused by query::checked
            }
        }
        let job = self.own_job(caller, id).await?;
        let scope = format!("events|{id}");
        let after = match cursor {
            Some(cursor) => self
                .cursors
                .decode(cursor, &scope)?
                .start_key
                .and_then(|k| k.get("sk").cloned()),
            None => None,
        };
        let (entries, more) = self
            .observers
            .audit()
            .log()
            .job_entries(id, after.as_deref(), limit)
            .await?;
        let mut rows: Vec<(String, AuditEvent)> =
            entries.into_iter().map(|r| (r.sk, r.event)).collect();
        // `started` sits among the stored entries by its time, on the page that covers it.
        if let Some((sk, started)) = started_event(&job)
            && after.as_ref().is_none_or(|a| sk > *a)
            && (!more || rows.last().is_some_and(|(last, _)| sk < *last))
        {
            rows.push((sk, started));
            rows.sort_by(|a, b| a.0.cmp(&b.0));
        }
        let next_cursor = match (more, rows.last()) {
            (true, Some((last, _))) => {
                let position = Position {
                    month: None,
                    start_key: Some(BTreeMap::from([("sk".to_string(), last.clone())])),
                };
                Some(self.cursors.encode(&position, &scope))
            }
            _ => None,
        };
        Ok(EventsPage {
            items: rows.into_iter().map(|(_, e)| e).collect(),
            next_cursor,
        })
    }

    /// Audit entries in `[from, to]`, newest first: the caller's tenant's (a tenant admin;
    /// naming another tenant is a `403`), or a platform admin's choice of one tenant or
    /// every tenant. Reads the `by_tenant_day` or the `by_day` index: each day's shards,
    /// merged.
    pub async fn audit_events(
        &self,
        caller: &Caller,
        query: &AuditQuery,
    ) -> Result<EventsPage, ApiError> {
        let tenant = caller.tenant_scope(query.tenant.as_deref(), "tenant")?;
        let scope = query.scope.clone();
        let upper_bound = format!("{}~", query.to);
        let (mut day, mut before) = match &query.cursor {
            Some(cursor) => {
                let position = self.cursors.decode(cursor, &scope)?;
                let day = position.month.ok_or_else(|| {
                    ApiError::bad_param("cursor", "invalid cursor; start again without one")
                })?;
                (day, position.start_key.and_then(|k| k.get("sk").cloned()))
            }
            None => (day_of(&query.to).to_string(), None),
        };
        let first_day = day_of(&query.from).to_string();
        let mut items: Vec<(String, AuditEvent)> = Vec::new();
        let want = query.limit as usize;
        for _ in 0..MAX_DAYS_PER_CALL {
            let upper = before.clone().unwrap_or_else(|| upper_bound.clone());
            let (found, complete_from) = self
                .day_page(
                    &day,
                    &query.from,
                    &upper,
                    before.as_deref(),
                    query.limit + 1,
                    tenant.as_deref(),
                )
                .await?;
            for entry in found {
                if items.len() == want {
                    let last = items.last().map(|(sk, _)| sk.clone());
                    return Ok(self.page(items, Some((day, last)), &scope));
                }
                items.push(entry);
            }
            match complete_from {
                // Entries at or after this key are all read; the rest of the day follows.
                Some(sk) => {
                    if items.len() == want {
                        return Ok(self.page(items, Some((day, Some(sk))), &scope));
                    }
                    before = Some(sk);
                }
                None => {
                    if day <= first_day {
                        return Ok(self.page(items, None, &scope));
                    }
                    day = previous_day(&day).unwrap_or_default();
                    before = None;
                    if items.len() == want {
                        return Ok(self.page(items, Some((day, None)), &scope));
                    }
                }
            }
        }
        Ok(self.page(items, Some((day, before)), &scope))
    }

    /// One day's entries with `from <= sk <= upper` (and `sk < before`), newest first,
    /// merged over its shards, and, when a shard had more than `per_shard`, the key down
    /// to which every shard is read (entries below it are not in this answer).
    async fn day_page(
        &self,
        day: &str,
        from: &str,
        upper: &str,
        before: Option<&str>,
        per_shard: u32,
        tenant: Option<&str>,
    ) -> Result<(Vec<(String, AuditEvent)>, Option<String>), ApiError> {
        let partitions = day_partitions(day, tenant);
        let reads = in_order(
            partitions
                .iter()
                .map(|p| {
                    self.observers
                        .audit()
                        .log()
                        .day_entries(tenant, p, from, upper, per_shard)
                })
                .collect(),
            partitions.len(),
        )
        .await;
        let mut complete_from: Option<String> = None;
        let mut merged = Vec::new();
        for read in reads {
            let entries = read?;
            if entries.len() == per_shard as usize
                && let Some(last) = entries.last()
                && complete_from.as_ref().is_none_or(|c| last.sk > *c)
            {
                complete_from = Some(last.sk.clone());
            }
            merged.extend(
                entries
                    .into_iter()
                    .filter(|r| before.is_none_or(|b| r.sk.as_str() < b))
                    .map(|r| (r.sk, r.event)),
            );
        }
        merged.retain(|(sk, _)| complete_from.as_ref().is_none_or(|c| sk >= c));
        merged.sort_by(|a, b| b.0.cmp(&a.0));
        Ok((merged, complete_from))
    }

    fn page(
        &self,
        items: Vec<(String, AuditEvent)>,
        next: Option<(String, Option<String>)>,
        scope: &str,
    ) -> EventsPage {
        let next_cursor = next.map(|(day, before)| {
            let position = Position {
                month: Some(day),
                start_key: before.map(|sk| BTreeMap::from([("sk".to_string(), sk)])),
            };
            self.cursors.encode(&position, scope)
        });
        EventsPage {
            items: items.into_iter().map(|(_, e)| e).collect(),
            next_cursor,
        }
    }
}
