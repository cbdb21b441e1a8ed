//! The store's local calendar: which local day and hour a `Timestamp`
//! falls in, in the store's IANA time zone (`store.timezone`).
//!
//! Footfall is read by people in the store ("how many came in between 10
//! and 11 this morning"), so days and hours are local, never UTC. Days
//! with a DST change have 23 or 25 hours; a repeated hour is counted in
//! the same hour slot.

use std::time::Duration;

use jiff::civil::Date;
use jiff::tz::TimeZone;

use crate::time::Timestamp;
#[cfg(test)]
use crate::time::timezone_by_name;

fn to_jiff(t: Timestamp) -> jiff::Timestamp {
    jiff::Timestamp::from_millisecond(t.millis()).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

/// The local calendar day of `t`.
pub fn local_date(t: Timestamp, tz: &TimeZone) -> Date {
    to_jiff(t).to_zoned_datetime(tz.clone()).date()
}

/// The local hour of `t`, 0..=23.
pub fn local_hour(t: Timestamp, tz: &TimeZone) -> usize {
    usize::try_from(to_jiff(t).to_zoned_datetime(tz.clone()).hour()).unwrap_or(0)
}

/// When local day `d` begins (its first instant, which is not always
/// 00:00 on days whose midnight falls in a DST gap).
pub fn start_of_day(d: Date, tz: &TimeZone) -> Option<Timestamp> {
    let z = d.to_zoned_datetime(tz.clone()).ok()?;
    Some(Timestamp(z.timestamp().as_millisecond()))
}

/// `d` minus `days` days (saturating at the calendar's start).
pub fn days_before(d: Date, days: i64) -> Date {
    d.checked_sub(jiff::Span::new().days(days))
        .unwrap_or(Date::MIN)
}

/// Splits `[from, to)` at local midnights: how much of it fell on each
/// local day, oldest first. Only the last `max_days` days of the span are
/// looked at (older ones would be dropped by the caller anyway), so a
/// long span costs at most `max_days` steps.
pub fn split_by_day(
    from: Timestamp,
    to: Timestamp,
    tz: &TimeZone,
    max_days: u32,
) -> Vec<(Date, Duration)> {
    let mut out = Vec::new();
    let window_start = local_date(to, tz);
    let window_start = days_before(window_start, i64::from(max_days.saturating_sub(1)));
    let mut cur = match start_of_day(window_start, tz) {
        Some(s) => from.max(s),
        None => from,
    };
    while cur < to {
        let day = local_date(cur, tz);
        let next = day
            .tomorrow()
            .ok()
            .and_then(|d| start_of_day(d, tz))
            .filter(|n| *n > cur)
            .unwrap_or(to);
        let end = next.min(to);
        out.push((day, cur.until(end)));
        cur = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn plus8() -> TimeZone {
        TimeZone::fixed(jiff::tz::offset(8))
    }

    // 2026-11-23T00:00:00Z = 08:00 in +08:00.
    const MIDNIGHT_UTC: Timestamp = Timestamp(1_795_392_000_000);

    #[test]
    fn local_day_and_hour_follow_the_zone_not_utc() {
        let tz = plus8();
        // 15:59:59Z on the 22nd is 23:59:59 local on the 22nd; one second
        // later it is local midnight of the 23rd while UTC is still the 22nd.
        let before = Timestamp(MIDNIGHT_UTC.0 - 8 * 3_600_000 - 1_000);
        let after = Timestamp(MIDNIGHT_UTC.0 - 8 * 3_600_000);
        assert_eq!(local_date(before, &tz), date(2026, 11, 22));
        assert_eq!(local_hour(before, &tz), 23);
        assert_eq!(local_date(after, &tz), date(2026, 11, 23));
        assert_eq!(local_hour(after, &tz), 0);
        assert_eq!(local_hour(MIDNIGHT_UTC, &tz), 8);
    }

    #[test]
    fn splits_spans_at_local_midnight() {
        let tz = plus8();
        let local_midnight = Timestamp(MIDNIGHT_UTC.0 - 8 * 3_600_000);
        let from = Timestamp(local_midnight.0 - 30 * 60_000);
        let to = Timestamp(local_midnight.0 + 90 * 60_000);
        assert_eq!(
            split_by_day(from, to, &tz, 14),
            [
                (date(2026, 11, 22), Duration::from_secs(1800)),
                (date(2026, 11, 23), Duration::from_secs(5400)),
            ]
        );
        assert!(split_by_day(to, from, &tz, 14).is_empty());
        // A span of 20 days keeps only its last 3 days when asked for 3.
        let long = split_by_day(Timestamp(to.0 - 20 * 86_400_000), to, &tz, 3);
        assert_eq!(long.len(), 3);
        assert_eq!(long[2].0, date(2026, 11, 23));
    }

    #[test]
    fn bundled_zones_need_no_zoneinfo_on_disk() {
        let tz = crate::time::tzdb::get("Asia/Shanghai").unwrap();
        assert_eq!(local_hour(MIDNIGHT_UTC, &tz), 8);
        assert!(timezone_by_name("Asia/Shanghai").is_ok());
        assert!(timezone_by_name("Mars/Olympus_Mons").is_err());
    }
}
