//! Timestamps: stored and returned as RFC 3339 UTC with millisecond precision and a fixed
//! width, so that their string order is their time order (list sort keys rely on it).

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, Time};

const FIXED: &[time::format_description::BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// Formats a UTC instant in the fixed-width form used everywhere in the service.
pub fn format(at: OffsetDateTime) -> String {
    let utc = at.to_offset(time::UtcOffset::UTC);
    // Formatting a valid OffsetDateTime with this description cannot fail for years 0..=9999.
    utc.format(FIXED)
        .unwrap_or_else(|_| utc.unix_timestamp().to_string())
}

/// `yyyy-mm` of an instant: the bucket of the cross-tenant list index.
pub fn month_of(at: OffsetDateTime) -> String {
    format!("{:04}-{:02}", at.year(), u8::from(at.month()))
}

/// The month before `yyyy-mm`, or None if the input is not a month.
pub fn previous_month(month: &str) -> Option<String> {
    let (y, m) = month.split_once('-')?;
    let (y, m): (i32, u8) = (y.parse().ok()?, m.parse().ok()?);
    match m {
        2..=12 => Some(format!("{y:04}-{:02}", m - 1)),
        1 => Some(format!("{:04}-12", y - 1)),
        _ => None,
    }
}

/// Which end of a day a bare date stands for when used as a range bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DayEnd {
    Start,
    End,
}

/// The range of bounds: keys sort as text only for years 0000-9999, and a bound beyond
/// them is before or after every job anyway, so it is clamped rather than refused.
const FIRST_BOUND: OffsetDateTime = time::macros::datetime!(0000-01-01 0:00 UTC);
const LAST_BOUND: OffsetDateTime = time::macros::datetime!(9999-12-31 23:59:59.999 UTC);

/// Parses an RFC 3339 timestamp.
pub fn parse(value: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(value, &Rfc3339).ok()
}

/// Parses a range bound: an RFC 3339 timestamp or a `YYYY-MM-DD` date, as a UTC instant
/// within years 0000-9999.
pub fn parse_bound(value: &str, end: DayEnd) -> Option<OffsetDateTime> {
    let at = match OffsetDateTime::parse(value, &Rfc3339) {
        // 9999-12-31T23:59:59-12:00 is valid RFC 3339 but past the last UTC instant `time`
        // holds (and the symmetric case before the first).
        Ok(at) => {
            at.checked_to_offset(time::UtcOffset::UTC)
                .unwrap_or(if at.offset().is_negative() {
                    LAST_BOUND
                } else {
                    FIRST_BOUND
                })
        }
        Err(_) => {
            let date = Date::parse(value, format_description!("[year]-[month]-[day]")).ok()?;
            let time = match end {
                DayEnd::Start => Time::MIDNIGHT,
                DayEnd::End => Time::from_hms_milli(23, 59, 59, 999).ok()?,
            };
            date.with_time(time).assume_utc()
        }
    };
    Some(at.clamp(FIRST_BOUND, LAST_BOUND))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn format_is_fixed_width_and_sorts_by_time() {
        let a = format(datetime!(2026-01-02 03:04:05.006 UTC));
        let b = format(datetime!(2026-01-02 03:04:05.1 UTC));
        assert_eq!(a, "2026-01-02T03:04:05.006Z");
        assert_eq!(b, "2026-01-02T03:04:05.100Z");
        assert!(a < b);
    }

    #[test]
    fn bounds_accept_dates_and_timestamps() {
        assert_eq!(
            parse_bound("2026-11-28", DayEnd::End).map(format),
            Some("2026-11-28T23:59:59.999Z".to_string())
        );
        assert_eq!(
            parse_bound("2026-11-28T10:00:00+02:00", DayEnd::Start).map(format),
            Some("2026-11-28T08:00:00.000Z".to_string())
        );
        assert_eq!(parse_bound("yesterday", DayEnd::Start), None);
        assert_eq!(parse_bound("2026-13-01", DayEnd::Start), None);
    }

    #[test]
    fn months_step_back_across_years() {
        assert_eq!(previous_month("2026-01").as_deref(), Some("2025-12"));
        assert_eq!(previous_month("2026-11").as_deref(), Some("2026-10"));
        assert_eq!(previous_month("2026-13"), None);
        assert_eq!(month_of(datetime!(2026-03-31 23:59 UTC)), "2026-03");
    }

    #[test]
    fn every_rfc3339_spelling_is_a_bound() {
        for value in [
            "2026-11-28t10:00:00z",
            "2026-11-28T10:00:00.123456789123Z",
            "2026-06-30T23:59:60Z",
            "0001-01-01",
            "2026-11-28T10:00:00+14:00",
            "2026-11-28T10:00:00-00:00",
        ] {
            assert!(parse_bound(value, DayEnd::Start).is_some(), "{value}");
        }
    }
}
