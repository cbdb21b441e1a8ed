//! Wall-clock timestamps as the state machines see them.
//!
//! State machines never read a clock: callers pass `Timestamp::now()` in
//! production and arbitrary values in tests. Millisecond resolution is
//! plenty for sessions and visits, and an `i64` survives serialization.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

pub(crate) mod tzdb;

/// Milliseconds since the Unix epoch, UTC.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn now() -> Self {
        let d = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Timestamp(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }

    pub fn from_secs(secs: i64) -> Self {
        Timestamp(secs.saturating_mul(1000))
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    /// `self + d`, saturating.
    pub fn plus(self, d: Duration) -> Self {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_add(ms))
    }

    /// How long from `self` until `later`; zero if `later` is not later.
    pub fn until(self, later: Timestamp) -> Duration {
        Duration::from_millis(u64::try_from(later.0.saturating_sub(self.0)).unwrap_or(0))
    }

    /// RFC 3339 in UTC with a `Z`, the fraction only as long as it needs
    /// to be: `2026-11-23T10:00:00.123Z`, `2026-11-23T10:00:00.25Z`,
    /// `2026-11-23T10:00:00Z`. Outside the years 0000 to 9999 it is the
    /// plain millisecond count, which RFC 3339 cannot say.
    pub fn rfc3339(self) -> String {
        /// 0000-01-01T00:00:00Z; the top end is `jiff`'s own.
        const YEAR_ZERO_MS: i64 = -62_167_219_200_000;
        match jiff::Timestamp::from_millisecond(self.0) {
            Ok(t) if self.0 >= YEAR_ZERO_MS => t.to_string(),
            _ => self.0.to_string(),
        }
    }

    /// An RFC 3339 time with any offset (`Z`, `+08:00`, `-05:00`); digits
    /// below the millisecond are dropped (towards zero).
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        let t: jiff::Timestamp = s.parse().ok()?;
        i64::try_from(t.as_nanosecond() / 1_000_000)
            .ok()
            .map(Timestamp)
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rfc3339())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rfc3339())
    }
}

/// Notices steps of the wall clock (an NTP sync on a box with no
/// real-time clock) by comparing it with the monotonic clock.
#[derive(Debug, Clone, Copy)]
pub struct ClockWatch {
    /// Start of the span stamped by the current wall clock.
    since: Timestamp,
    wall: Timestamp,
    mono: std::time::Instant,
}

/// A step of the wall clock: times stamped in `[from, to]` were off by
/// `delta_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockStep {
    pub from: Timestamp,
    pub to: Timestamp,
    pub delta_ms: i64,
}

impl ClockWatch {
    /// Smaller disagreements are timer jitter or NTP slewing.
    pub const THRESHOLD_MS: i64 = 5_000;

    pub fn new(wall: Timestamp, mono: std::time::Instant) -> Self {
        ClockWatch {
            since: wall,
            wall,
            mono,
        }
    }

    /// Reads both clocks again; a step since the last call is returned.
    pub fn check(&mut self, wall: Timestamp, mono: std::time::Instant) -> Option<ClockStep> {
        let elapsed = i64::try_from(mono.duration_since(self.mono).as_millis()).unwrap_or(i64::MAX);
        let delta_ms = (wall.0 - self.wall.0).saturating_sub(elapsed);
        let step = (delta_ms.abs() > Self::THRESHOLD_MS).then_some(ClockStep {
            from: self.since,
            to: self.wall,
            delta_ms,
        });
        if step.is_some() {
            self.since = wall;
        }
        self.wall = wall;
        self.mono = mono;
        step
    }
}

/// Looks up an IANA time zone such as `"Asia/Shanghai"`: in the system's
/// database first (it may be newer), else in the copy bundled into the
/// binary, so a router without `/usr/share/zoneinfo` (or with a partial
/// one, as on some OpenWrt images) still knows the store's zone.
pub fn timezone_by_name(name: &str) -> Result<jiff::tz::TimeZone, String> {
    jiff::tz::db()
        .get(name)
        .or_else(|e| tzdb::get(name).ok_or_else(|| format!("unknown time zone {name:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_rfc3339() {
        let t = Timestamp(1_795_000_000_250);
        let s = t.rfc3339();
        assert!(s.ends_with('Z'), "{s}");
        assert_eq!(Timestamp::parse_rfc3339(&s), Some(t));
    }

    #[test]
    fn rfc3339_is_utc_with_the_shortest_fraction() {
        assert_eq!(
            Timestamp(1_795_000_000_123).rfc3339(),
            "2026-11-18T11:06:40.123Z"
        );
        assert_eq!(
            Timestamp(1_795_000_000_250).rfc3339(),
            "2026-11-18T11:06:40.25Z"
        );
        assert_eq!(
            Timestamp(1_795_000_000_005).rfc3339(),
            "2026-11-18T11:06:40.005Z"
        );
        assert_eq!(
            Timestamp(1_795_000_000_000).rfc3339(),
            "2026-11-18T11:06:40Z"
        );
        assert_eq!(Timestamp(0).rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(Timestamp(-1).rfc3339(), "1969-12-31T23:59:59.999Z");
        // Beyond what RFC 3339 can write: the millisecond count.
        assert_eq!(Timestamp(i64::MAX).rfc3339(), i64::MAX.to_string());
        assert_eq!(Timestamp(-62_167_219_200_001).rfc3339(), "-62167219200001");
        assert_eq!(
            Timestamp(-62_167_219_200_000).rfc3339(),
            "0000-01-01T00:00:00Z"
        );
    }

    #[test]
    fn parses_rfc3339_with_any_offset() {
        let t = Some(Timestamp(1_795_000_000_250));
        assert_eq!(Timestamp::parse_rfc3339("2026-11-18T11:06:40.25Z"), t);
        assert_eq!(Timestamp::parse_rfc3339("2026-11-18T19:06:40.250+08:00"), t);
        assert_eq!(Timestamp::parse_rfc3339("2026-11-18T06:06:40.250-05:00"), t);
        assert_eq!(Timestamp::parse_rfc3339("2026-11-18t11:06:40.250999z"), t);
        assert_eq!(
            Timestamp::parse_rfc3339("1969-12-31T23:59:59.9995Z"),
            Some(Timestamp(0))
        );
        assert_eq!(Timestamp::parse_rfc3339("2026-11-18T11:06:40"), None);
        assert_eq!(Timestamp::parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn arithmetic_saturates() {
        let t = Timestamp(1_000);
        assert_eq!(t.plus(Duration::from_secs(2)), Timestamp(3_000));
        assert_eq!(t.until(Timestamp(500)), Duration::ZERO);
        assert_eq!(t.until(Timestamp(4_000)), Duration::from_secs(3));
        assert_eq!(
            Timestamp(i64::MAX).plus(Duration::from_secs(1)),
            Timestamp(i64::MAX)
        );
    }

    #[test]
    fn clock_watch_sees_steps_not_jitter() {
        let m0 = std::time::Instant::now();
        let at = |ms: u64| m0 + Duration::from_millis(ms);
        let mut w = ClockWatch::new(Timestamp(1_000_000), m0);
        // A second later by both clocks, then a late tick: no step.
        assert_eq!(w.check(Timestamp(1_001_000), at(1_000)), None);
        assert_eq!(w.check(Timestamp(1_004_500), at(4_400)), None);
        // NTP steps the wall clock 3 hours ahead during one second.
        let step = w.check(Timestamp(1_004_500 + 3_600_000 * 3 + 1_000), at(5_400));
        assert_eq!(
            step,
            Some(ClockStep {
                from: Timestamp(1_000_000),
                to: Timestamp(1_004_500),
                delta_ms: 3_600_000 * 3,
            })
        );
        // The next step covers only what was stamped since the last one.
        let now = 1_004_500 + 3_600_000 * 3 + 1_000;
        let back = w.check(Timestamp(now + 1_000 - 60_000), at(6_400));
        assert_eq!(
            back,
            Some(ClockStep {
                from: Timestamp(now),
                to: Timestamp(now),
                delta_ms: -60_000,
            })
        );
    }
}
