//! When a schedule runs: a cron expression or a rate, in an IANA time zone, and the rules
//! for daylight-saving changes, the minimum interval and catch-up (docs/design.md
//! "Schedules").
//!
//! - **Cron** is the standard 5-field form (`minute hour day-of-month month day-of-week`,
//!   with lists, ranges, steps and names, as Vixie cron), read as wall-clock time in the
//!   schedule's time zone (default UTC).
//! - **Rate** is EventBridge's form, `rate(<n> minute|minutes|hour|hours|day|days)`, counted
//!   from the schedule's creation.
//! - **Daylight saving** (Vixie cron's rule): a wall time that does not exist (the clocks
//!   jump over it) runs at the first minute after the jump; a wall time that occurs twice
//!   runs once, at its first occurrence. So `0 2 * * *` in Europe/Berlin runs once on every
//!   local day, including the two days the clocks change.
//! - **Minimum interval**: 5 minutes between two runs ([`MIN_INTERVAL_MINUTES`]); an
//!   expression that never matches a date is refused too.
//! - **Catch-up**: a schedule whose due time passed while nothing ran it (the stack was
//!   down) runs once, for its earliest missed due time, and then continues from the next due
//!   time after now: never once per missed tick ([`Timing::catch_up`]).

use std::str::FromStr;

use chrono::{NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use time::OffsetDateTime;

/// Shortest allowed time between two runs of a schedule.
pub const MIN_INTERVAL_MINUTES: i64 = 5;
/// Longest accepted cron expression, rate and time zone name (characters); the IANA
/// database's longest name is 32.
pub const MAX_CRON_CHARS: usize = 200;
pub const MAX_RATE_CHARS: usize = 40;
pub const MAX_TIMEZONE_CHARS: usize = 64;
/// Occurrences checked against the minimum interval when a cron expression is parsed.
const INTERVAL_CHECKS: usize = 600;
/// Longest gap a daylight-saving jump can open (Lord Howe's is 30 minutes, most are an hour).
const MAX_GAP_MINUTES: i64 = 180;

/// Why an expression or time zone was refused, and which field it belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimingError {
    pub field: &'static str,
    pub message: String,
}

fn refuse(field: &'static str, message: impl Into<String>) -> TimingError {
    TimingError {
        field,
        message: message.into(),
    }
}

#[derive(Clone, Debug)]
enum Cadence {
    Cron(Box<croner::Cron>),
    /// Every `minutes`, from the anchor.
    Rate {
        minutes: i64,
    },
}

/// A parsed schedule timing.
#[derive(Clone, Debug)]
pub struct Timing {
    cadence: Cadence,
    zone: Tz,
    /// Where rates count from (the schedule's creation).
    anchor: OffsetDateTime,
}

impl Timing {
    /// Exactly one of `cron` and `rate`; `timezone` an IANA name. Errors name the field.
    pub fn parse(
        cron: Option<&str>,
        rate: Option<&str>,
        timezone: &str,
        anchor: OffsetDateTime,
    ) -> Result<Timing, TimingError> {
        for (field, value, max) in [
            ("cron", cron, MAX_CRON_CHARS),
            ("rate", rate, MAX_RATE_CHARS),
            ("timezone", Some(timezone), MAX_TIMEZONE_CHARS),
        ] {
            if value.is_some_and(|v| v.chars().count() > max) {
                return Err(refuse(field, format!("must be at most {max} characters")));
            }
        }
        let zone = Tz::from_str(timezone).map_err(|_| {
            refuse(
                "timezone",
                "must be an IANA time zone name, e.g. Europe/Berlin or UTC",
            )
        })?;
        let cadence = match (cron, rate) {
            (Some(expr), None) => Cadence::Cron(Box::new(parse_cron(expr)?)),
            (None, Some(expr)) => Cadence::Rate {
                minutes: parse_rate(expr)?,
            },
            _ => return Err(refuse("cron", "give exactly one of cron and rate")),
        };
        let timing = Timing {
            cadence,
            zone,
            anchor,
        };
        if let Cadence::Cron(_) = timing.cadence {
            timing.check_interval()?;
        }
        Ok(timing)
    }

    /// The first run strictly after `after`, or `None` if the expression never matches again.
    pub fn next_after(&self, after: OffsetDateTime) -> Option<OffsetDateTime> {
        match &self.cadence {
            Cadence::Rate { minutes } => {
                let step = time::Duration::minutes(*minutes);
                if after < self.anchor {
                    return Some(self.anchor);
                }
                let elapsed = (after - self.anchor).whole_minutes() / minutes + 1;
                Some(self.anchor + step * (elapsed as i32))
            }
            Cadence::Cron(cron) => {
                let wall = self.wall_time(after)?;
                let next_wall = cron
                    .find_next_occurrence(&Utc.from_utc_datetime(&wall), false)
                    .ok()?
                    .naive_utc();
                self.instant_of(next_wall)
            }
        }
    }

    /// The next `n` runs after `after`.
    pub fn next_runs(&self, after: OffsetDateTime, n: usize) -> Vec<OffsetDateTime> {
        let mut runs = Vec::with_capacity(n);
        let mut at = after;
        while runs.len() < n {
            match self.next_after(at) {
                Some(next) => {
                    runs.push(next);
                    at = next;
                }
                None => break,
            }
        }
        runs
    }

    /// For a schedule due at `next_run_at`, at `now`: the due time to run now and the next
    /// due time, or `None` when it is not due yet. A schedule late by several ticks runs
    /// once, for the earliest, and continues from the first due time after `now`.
    pub fn catch_up(
        &self,
        next_run_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Option<(OffsetDateTime, Option<OffsetDateTime>)> {
        (next_run_at <= now).then(|| (next_run_at, self.next_after(now)))
    }

    /// `at` as wall-clock time in the zone.
    fn wall_time(&self, at: OffsetDateTime) -> Option<NaiveDateTime> {
        let utc = chrono::DateTime::<Utc>::from_timestamp(at.unix_timestamp(), 0)?;
        Some(utc.with_timezone(&self.zone).naive_local())
    }

    /// The instant of a wall time: its first occurrence when it occurs twice, the first
    /// minute after the jump when it does not occur.
    fn instant_of(&self, wall: NaiveDateTime) -> Option<OffsetDateTime> {
        let to_time =
            |at: chrono::DateTime<Tz>| OffsetDateTime::from_unix_timestamp(at.timestamp()).ok();
        for minutes in 0..=MAX_GAP_MINUTES {
            match self
                .zone
                .from_local_datetime(&(wall + chrono::Duration::minutes(minutes)))
            {
                chrono::LocalResult::Single(at) => return to_time(at),
                chrono::LocalResult::Ambiguous(first, _) => return to_time(first),
                chrono::LocalResult::None => {}
            }
        }
        None
    }

    /// Refuses expressions whose runs come closer than [`MIN_INTERVAL_MINUTES`], over the
    /// next occurrences from a fixed start (the check is the same whenever it runs).
    fn check_interval(&self) -> Result<(), TimingError> {
        let Cadence::Cron(cron) = &self.cadence else {
            return Ok(());
        };
        let mut at = Utc.from_utc_datetime(
            &chrono::NaiveDate::from_ymd_opt(2026, 1, 1)
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .unwrap_or_default(),
        );
        let mut previous: Option<chrono::DateTime<Utc>> = None;
        for checked in 0..INTERVAL_CHECKS {
            let Ok(next) = cron.find_next_occurrence(&at, false) else {
                if checked == 0 {
                    return Err(refuse("cron", "never matches a date (e.g. 31 February)"));
                }
                break;
            };
            if let Some(before) = previous
                && (next - before).num_minutes() < MIN_INTERVAL_MINUTES
            {
                return Err(refuse(
                    "cron",
                    format!("runs more often than every {MIN_INTERVAL_MINUTES} minutes"),
                ));
            }
            previous = Some(next);
            at = next;
        }
        Ok(())
    }
}

fn parse_cron(expr: &str) -> Result<croner::Cron, TimingError> {
    let fields = expr.split_whitespace().count();
    if fields != 5 {
        return Err(refuse(
            "cron",
            format!(
                "must have 5 fields (minute hour day-of-month month day-of-week), not {fields}"
            ),
        ));
    }
    croner::Cron::from_str(expr)
        .map_err(|e| refuse("cron", format!("is not a valid cron expression: {e}")))
}

fn parse_rate(expr: &str) -> Result<i64, TimingError> {
    let bad = || {
        refuse(
            "rate",
            "must be rate(<n> minutes|hours|days), e.g. rate(15 minutes)",
        )
    };
    let inner = expr
        .trim()
        .strip_prefix("rate(")
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(bad)?;
    let mut parts = inner.split_whitespace();
    let (Some(n), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    let n: i64 = n.parse().ok().filter(|n| *n > 0).ok_or_else(bad)?;
    // EventBridge's rule: 1 takes the singular unit, more the plural.
    let per = match (unit, n == 1) {
        ("minute", true) | ("minutes", false) => 1,
        ("hour", true) | ("hours", false) => 60,
        ("day", true) | ("days", false) => 1_440,
        _ => return Err(bad()),
    };
    let minutes = n
        .checked_mul(per)
        .filter(|m| *m <= 366 * 1_440)
        .ok_or_else(bad)?;
    if minutes < MIN_INTERVAL_MINUTES {
        return Err(refuse(
            "rate",
            format!("runs more often than every {MIN_INTERVAL_MINUTES} minutes"),
        ));
    }
    Ok(minutes)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn cron(expr: &str, zone: &str) -> Timing {
        Timing::parse(Some(expr), None, zone, datetime!(2026-01-01 0:00 UTC)).unwrap()
    }

    fn utc(runs: Vec<OffsetDateTime>) -> Vec<String> {
        runs.into_iter().map(jobs_core::clock::format).collect()
    }

    #[test]
    fn two_in_the_night_in_berlin_runs_once_on_every_local_day_across_both_clock_changes() {
        let berlin = cron("0 2 * * *", "Europe/Berlin");
        // Spring: on 2026-03-29 02:00 does not exist (01:59 CET → 03:00 CEST).
        assert_eq!(
            utc(berlin.next_runs(datetime!(2026-03-27 12:00 UTC), 4)),
            [
                "2026-03-28T01:00:00.000Z", // 02:00 CET
                "2026-03-29T01:00:00.000Z", // 03:00 CEST: the first minute after the jump
                "2026-03-30T00:00:00.000Z", // 02:00 CEST
                "2026-03-31T00:00:00.000Z",
            ]
        );
        // Autumn: on 2026-10-25 02:00 occurs twice (03:00 CEST → 02:00 CET): once, the first.
        assert_eq!(
            utc(berlin.next_runs(datetime!(2026-10-23 12:00 UTC), 4)),
            [
                "2026-10-24T00:00:00.000Z",
                "2026-10-25T00:00:00.000Z",
                "2026-10-26T01:00:00.000Z",
                "2026-10-27T01:00:00.000Z"
            ]
        );
    }

    #[test]
    fn new_york_keeps_its_wall_times_across_its_own_changes() {
        let ny = cron("30 1 * * *", "America/New_York");
        // 2026-11-01: 01:30 occurs twice (EDT, then EST): once, at the first.
        assert_eq!(
            utc(ny.next_runs(datetime!(2026-10-31 12:00 UTC), 3)),
            [
                "2026-11-01T05:30:00.000Z",
                "2026-11-02T06:30:00.000Z",
                "2026-11-03T06:30:00.000Z"
            ]
        );
        // 2026-03-08: 02:30 does not exist (02:00 EST → 03:00 EDT): at 03:00 EDT.
        let early = cron("30 2 * * *", "America/New_York");
        assert_eq!(
            utc(early.next_runs(datetime!(2026-03-07 12:00 UTC), 2)),
            ["2026-03-08T07:00:00.000Z", "2026-03-09T06:30:00.000Z"]
        );
        // Hourly through the repeated hour: each wall time once.
        let hourly = cron("0 * * * *", "America/New_York");
        assert_eq!(
            utc(hourly.next_runs(datetime!(2026-11-01 04:30 UTC), 3)),
            [
                "2026-11-01T05:00:00.000Z",
                "2026-11-01T07:00:00.000Z",
                "2026-11-01T08:00:00.000Z"
            ],
            "01:00 EDT, then 02:00 EST: 01:00 EST is the same wall time"
        );
    }

    #[test]
    fn the_minimum_interval_and_the_forms_are_enforced_with_the_field_named() {
        assert!(
            Timing::parse(
                Some("*/5 * * * *"),
                None,
                "UTC",
                datetime!(2026-01-01 0:00 UTC)
            )
            .is_ok()
        );
        for (cron, rate, zone, field) in [
            (Some("* * * * *"), None, "UTC", "cron"),
            (Some("0,3 * * * *"), None, "UTC", "cron"),
            (Some("0 2 * *"), None, "UTC", "cron"),
            (Some("0 0 2 * * *"), None, "UTC", "cron"),
            (Some("61 * * * *"), None, "UTC", "cron"),
            (Some("0 0 31 2 *"), None, "UTC", "cron"),
            (Some("0 2 * * *"), None, "Mars/Olympus", "timezone"),
            (None, Some("rate(1 minute)"), "UTC", "rate"),
            (None, Some("rate(4 minutes)"), "UTC", "rate"),
            (None, Some("rate(1 minutes)"), "UTC", "rate"),
            (None, Some("rate(5 fortnights)"), "UTC", "rate"),
            (None, Some("every 5 minutes"), "UTC", "rate"),
            (Some("0 2 * * *"), Some("rate(1 hour)"), "UTC", "cron"),
            (None, None, "UTC", "cron"),
            (
                Some("0 2 * * *"),
                None,
                "Europe/Berlin/////////////////////////////////////////////////////",
                "timezone",
            ),
            (
                None,
                Some("rate(5                                         minutes)"),
                "UTC",
                "rate",
            ),
        ] {
            let err = Timing::parse(cron, rate, zone, datetime!(2026-01-01 0:00 UTC)).unwrap_err();
            assert_eq!(
                err.field, field,
                "{cron:?} {rate:?} {zone}: {}",
                err.message
            );
        }
    }

    #[test]
    fn rates_count_from_the_creation_and_catch_up_runs_once() {
        let every_hour = Timing::parse(
            None,
            Some("rate(1 hour)"),
            "UTC",
            datetime!(2026-11-30 10:17 UTC),
        )
        .unwrap();
        assert_eq!(
            utc(every_hour.next_runs(datetime!(2026-11-30 10:17 UTC), 2)),
            ["2026-11-30T11:17:00.000Z", "2026-11-30T12:17:00.000Z"]
        );
        // Down from 11:00 to 15:40: due at 11:17, run once for it, then from 16:17 on.
        let (due, next) = every_hour
            .catch_up(
                datetime!(2026-11-30 11:17 UTC),
                datetime!(2026-11-30 15:40 UTC),
            )
            .unwrap();
        assert_eq!(
            (due, next),
            (
                datetime!(2026-11-30 11:17 UTC),
                Some(datetime!(2026-11-30 16:17 UTC))
            )
        );
        assert_eq!(
            every_hour.catch_up(
                datetime!(2026-11-30 16:17 UTC),
                datetime!(2026-11-30 15:40 UTC)
            ),
            None,
            "not due yet"
        );
        let daily = cron("0 2 * * *", "Europe/Berlin");
        let (due, next) = daily
            .catch_up(
                datetime!(2026-11-27 01:00 UTC),
                datetime!(2026-11-30 12:00 UTC),
            )
            .unwrap();
        assert_eq!(
            (
                jobs_core::clock::format(due),
                next.map(jobs_core::clock::format)
            ),
            (
                "2026-11-27T01:00:00.000Z".into(),
                Some("2026-12-01T01:00:00.000Z".into())
            )
        );
    }
}
