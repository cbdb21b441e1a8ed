//! When a `401` from HQ is the clock's fault, not the batch's.
//!
//! HQ refuses a `webhook-timestamp` more than 5 minutes from its own clock
//! (the Standard Webhooks tolerance) with the same `401` as a bad
//! signature. Such a batch must not be parked: nothing is wrong with it,
//! and once the clocks agree the same batch, signed again with a fresh
//! timestamp, is taken, whereas a parked one waits for an operator. A
//! router without a battery-backed clock boots with a wrong clock and
//! keeps it until NTP answers, so this is the common case, not a corner.
//!
//! The rule: a `401` is retried (backoff, in order, re-signed), not
//! parked, when
//! * HQ's answer carries a `Date` (RFC 9110, IMF-fixdate) more than the
//!   tolerance away from the box's clock when the answer came, or
//! * the box's clock reads a time before [`CLOCK_FLOOR`], which no running
//!   build of this code can truly be at: the clock is plainly unset.
//!
//! Otherwise (no `Date`, one that does not parse, or clocks that agree)
//! the `401` is about the batch or the key, and it is parked as before.
//! With clocks that far apart every request would be refused anyway, so
//! a `401` for a wrong key is retried until the clock is right, and
//! parked after that.
//!
//! Pure: callers pass the box's time.

use crate::time::Timestamp;
use crate::uplink::signing::DEFAULT_TOLERANCE_SECS;

/// How far HQ's `Date` may be from the box's clock before a `401` is
/// taken to be about the timestamp: HQ's tolerance for `webhook-timestamp`
/// (docs/hq-integration.md), in seconds.
pub const TOLERANCE_SECS: i64 = DEFAULT_TOLERANCE_SECS;

/// The day this rule was written, 2026-12-01T00:00:00Z: no build of it is
/// older, so a box whose clock reads earlier has not set its clock.
const WRITTEN_SECS: i64 = 1_796_083_200;

/// The earliest time the box's clock can truly read: the build's date when
/// it was built with `SOURCE_DATE_EPOCH` (reproducible and firmware
/// builds), else [`WRITTEN_SECS`].
pub const CLOCK_FLOOR: Timestamp =
    Timestamp(max(WRITTEN_SECS, parse_secs(option_env!("SOURCE_DATE_EPOCH"))).saturating_mul(1000));

const fn max(a: i64, b: i64) -> i64 {
    if a > b { a } else { b }
}

/// Unix seconds as decimal digits; 0 for anything else.
const fn parse_secs(s: Option<&str>) -> i64 {
    let Some(s) = s else { return 0 };
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 12 {
        return 0;
    }
    let mut n: i64 = 0;
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            return 0;
        }
        n = n * 10 + (b[i] - b'0') as i64;
        i += 1;
    }
    n
}

/// HQ's `Date` header (IMF-fixdate, `Tue, 01 Dec 2026 22:24:49 GMT`).
fn parse_date(value: &str) -> Option<Timestamp> {
    static PARSER: jiff::fmt::rfc2822::DateTimeParser = jiff::fmt::rfc2822::DateTimeParser::new();
    PARSER
        .parse_timestamp(value.trim())
        .ok()
        .map(|t| Timestamp(t.as_millisecond()))
}

/// Whole seconds, for messages (`Date` has no finer resolution).
fn secs(t: Timestamp) -> Timestamp {
    Timestamp(t.0.div_euclid(1000) * 1000)
}

/// Whether a `401` from HQ, answered with `date` (its `Date` header, if
/// any) when the box's clock read `now`, is the clock's fault: if so, the
/// reason for the log and `ctl status` (`hq.last_error`), naming both
/// times; `None` if the batch is refused for itself. `floor` is
/// [`CLOCK_FLOOR`] outside tests.
pub fn clock_at_fault(date: Option<&str>, now: Timestamp, floor: Timestamp) -> Option<String> {
    if let Some(hq) = date.and_then(parse_date) {
        let skew = (hq.0 - now.0) / 1000;
        if skew.saturating_abs() > TOLERANCE_SECS {
            let (n, way) = if skew > 0 {
                (skew, "behind")
            } else {
                (skew.saturating_neg(), "ahead of")
            };
            return Some(format!(
                "clock skew: HQ answered 401 Unauthorized with Date {hq} while the box's clock read \
                 {box_now}: the box is {n} s {way} HQ, over the {TOLERANCE_SECS} s tolerance for \
                 webhook-timestamp; set the box's clock (NTP); the batch is re-signed and retried, \
                 not parked",
                hq = secs(hq),
                box_now = secs(now),
            ));
        }
    }
    (now < floor).then(|| {
        format!(
            "clock unset: HQ answered 401 Unauthorized while the box's clock reads {}, before \
             this build ({}), so HQ refuses its webhook-timestamp; set the box's clock (NTP); \
             the batch is re-signed and retried, not parked",
            secs(now),
            secs(floor)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-01T22:24:49Z and its IMF-fixdate.
    const NOW: Timestamp = Timestamp(1_796_163_889_000);
    const NOW_DATE: &str = "Tue, 01 Dec 2026 22:24:49 GMT";
    const HOUR_LATER: &str = "Tue, 01 Dec 2026 23:24:49 GMT";
    const HOUR_EARLIER: &str = "Tue, 01 Dec 2026 21:24:49 GMT";

    fn verdict(date: Option<&str>, now: Timestamp) -> Option<String> {
        clock_at_fault(date, now, CLOCK_FLOOR)
    }

    #[test]
    fn dates_parse_as_imf_fixdate() {
        assert_eq!(parse_date(NOW_DATE), Some(NOW));
        assert_eq!(parse_date("yesterday"), None);
        assert_eq!(parse_date(""), None);
    }

    #[test]
    fn a_date_far_from_the_box_clock_means_retry_with_both_times_named() {
        let behind = verdict(Some(HOUR_LATER), NOW).expect("retried");
        assert!(behind.starts_with("clock skew"), "{behind}");
        assert!(
            behind.contains("2026-12-01T23:24:49Z"),
            "HQ's time: {behind}"
        );
        assert!(
            behind.contains("2026-12-01T22:24:49Z"),
            "the box's: {behind}"
        );
        assert!(behind.contains("3600 s behind"), "{behind}");
        let ahead = verdict(Some(HOUR_EARLIER), NOW).expect("retried");
        assert!(ahead.contains("3600 s ahead of"), "{ahead}");
        // Just past the tolerance, either way.
        assert!(verdict(Some(NOW_DATE), off(NOW, -301)).is_some());
        assert!(verdict(Some(NOW_DATE), off(NOW, 301)).is_some());
    }

    #[test]
    fn a_date_close_to_the_box_clock_means_park() {
        assert_eq!(verdict(Some(NOW_DATE), NOW), None);
        assert_eq!(verdict(Some(NOW_DATE), off(NOW, -299)), None);
        assert_eq!(verdict(Some(NOW_DATE), off(NOW, 299)), None);
    }

    #[test]
    fn no_date_or_an_unreadable_one_means_park() {
        assert_eq!(verdict(None, NOW), None);
        assert_eq!(verdict(Some("Sunday afternoon"), NOW), None);
    }

    #[test]
    fn an_unset_box_clock_means_retry_whatever_hq_says() {
        let boot = Timestamp(12_000); // 1970, seconds after power-on
        let why = verdict(None, boot).expect("retried");
        assert!(why.starts_with("clock unset"), "{why}");
        assert!(why.contains("1970-01-01T00:00:12Z"), "{why}");
        assert!(verdict(Some("not a date"), boot).is_some());
        // With a Date, the message says by how much.
        let skew = verdict(Some(NOW_DATE), boot).expect("retried");
        assert!(skew.starts_with("clock skew"), "{skew}");
        // Just before the floor is unset, at it is not.
        let floor = Timestamp(1_800_000_000_000);
        assert!(clock_at_fault(None, Timestamp(floor.0 - 1), floor).is_some());
        assert_eq!(clock_at_fault(None, floor, floor), None);
    }

    #[test]
    fn a_later_build_date_raises_the_floor_and_junk_is_ignored() {
        assert_eq!(
            max(WRITTEN_SECS, parse_secs(Some("1900000000"))),
            1_900_000_000
        );
        assert_eq!(max(WRITTEN_SECS, parse_secs(Some("18e8"))), WRITTEN_SECS);
        assert_eq!(max(WRITTEN_SECS, parse_secs(Some(""))), WRITTEN_SECS);
        assert_eq!(max(WRITTEN_SECS, parse_secs(None)), WRITTEN_SECS);
    }

    fn off(t: Timestamp, secs: i64) -> Timestamp {
        Timestamp(t.0 + secs * 1000)
    }
}
