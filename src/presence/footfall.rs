//! Footfall: how many visitors came, when, for how long, how often.
//!
//! Only visitors count: staff and residents are kept out (their visits
//! are still tracked, see `visit`). Aggregates are per local day of the
//! store, kept for [`FOOTFALL_DAYS`] days, and are plain serde types so
//! the shell can persist them and load them back after a restart.
//!
//! Each visit is counted on the local day it started: its arrival (in
//! the local hour it started), whether its device was new or returning
//! (once per device and day), and, once it has ended, its dwell.

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use super::local;

/// Local days of footfall kept.
pub const FOOTFALL_DAYS: u32 = 14;

/// Visits by how long they lasted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DwellBuckets {
    /// Under 5 minutes: passers-by.
    #[serde(rename = "under_5m")]
    pub under_5m: u32,
    /// 5 to 20 minutes.
    #[serde(rename = "5m_20m")]
    pub from_5m_to_20m: u32,
    /// 20 to 60 minutes.
    #[serde(rename = "20m_60m")]
    pub from_20m_to_60m: u32,
    /// 1 to 6 hours.
    #[serde(rename = "1h_6h")]
    pub from_1h_to_6h: u32,
    /// 6 hours or more.
    #[serde(rename = "6h_plus")]
    pub over_6h: u32,
}

impl DwellBuckets {
    pub fn add(&mut self, dwell_seconds: u64) {
        let slot = match dwell_seconds {
            0..300 => &mut self.under_5m,
            300..1_200 => &mut self.from_5m_to_20m,
            1_200..3_600 => &mut self.from_20m_to_60m,
            3_600..21_600 => &mut self.from_1h_to_6h,
            _ => &mut self.over_6h,
        };
        *slot = slot.saturating_add(1);
    }
}

/// One local day of footfall.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayFootfall {
    pub date: Date,
    /// Visits that started in each local hour (index 0 = 00:00–00:59).
    pub arrivals_by_hour: [u32; 24],
    /// Devices whose first visit ever was on this day.
    pub new_devices: u32,
    /// Devices that came on this day and on an earlier day.
    pub returning_devices: u32,
    /// Ended visits that started on this day, by dwell.
    pub dwell: DwellBuckets,
}

impl DayFootfall {
    fn empty(date: Date) -> Self {
        DayFootfall {
            date,
            arrivals_by_hour: [0; 24],
            new_devices: 0,
            returning_devices: 0,
            dwell: DwellBuckets::default(),
        }
    }

    pub fn arrivals(&self) -> u32 {
        self.arrivals_by_hour
            .iter()
            .fold(0u32, |a, n| a.saturating_add(*n))
    }
}

/// The restorable aggregates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Footfall {
    /// Oldest first, at most [`FOOTFALL_DAYS`] days.
    pub days: Vec<DayFootfall>,
}

/// How many visitors came how often in the last 30 days.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitFrequency {
    #[serde(rename = "1")]
    pub once: u32,
    #[serde(rename = "2")]
    pub twice: u32,
    #[serde(rename = "3_5")]
    pub three_to_five: u32,
    #[serde(rename = "6_plus")]
    pub six_or_more: u32,
}

impl VisitFrequency {
    pub fn add(&mut self, visits: usize) {
        let slot = match visits {
            0 => return,
            1 => &mut self.once,
            2 => &mut self.twice,
            3..=5 => &mut self.three_to_five,
            _ => &mut self.six_or_more,
        };
        *slot = slot.saturating_add(1);
    }
}

/// One day as `ctl` and the dashboard show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayView {
    pub date: Date,
    pub arrivals: u32,
    pub arrivals_by_hour: [u32; 24],
    pub new_devices: u32,
    pub returning_devices: u32,
    pub dwell: DwellBuckets,
}

/// Footfall as `ctl` and the dashboard show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FootfallView {
    /// The store's local date now.
    pub today: Date,
    /// Visitors in the store now.
    pub present_now: u32,
    /// The last [`FOOTFALL_DAYS`] local days, oldest first, today last
    /// (days without visitors are there, with zeros).
    pub days: Vec<DayView>,
    pub visit_frequency: VisitFrequency,
}

impl Footfall {
    fn day_mut(&mut self, date: Date) -> &mut DayFootfall {
        let i = match self.days.binary_search_by_key(&date, |d| d.date) {
            Ok(i) => i,
            Err(i) => {
                self.days.insert(i, DayFootfall::empty(date));
                i
            }
        };
        &mut self.days[i]
    }

    pub fn day(&self, date: Date) -> Option<&DayFootfall> {
        self.days
            .binary_search_by_key(&date, |d| d.date)
            .ok()
            .map(|i| &self.days[i])
    }

    /// A visitor's visit started on local `date` in local `hour`.
    /// `first_today`: its device's first visit of that day;
    /// `returning`: the device had a visit on an earlier day.
    pub fn record_arrival(&mut self, date: Date, hour: usize, first_today: bool, returning: bool) {
        let day = self.day_mut(date);
        if let Some(n) = day.arrivals_by_hour.get_mut(hour) {
            *n = n.saturating_add(1);
        }
        if first_today {
            let slot = if returning {
                &mut day.returning_devices
            } else {
                &mut day.new_devices
            };
            *slot = slot.saturating_add(1);
        }
    }

    /// A visitor's visit that started on local `date` ended.
    pub fn record_dwell(&mut self, date: Date, dwell_seconds: u64) {
        self.day_mut(date).dwell.add(dwell_seconds);
    }

    /// Drops days older than the window ending `today`, and any day after
    /// it (a clock that jumped back must not leave "future" days forever).
    pub fn prune(&mut self, today: Date) {
        let oldest = local::days_before(today, i64::from(FOOTFALL_DAYS) - 1);
        self.days.retain(|d| d.date >= oldest && d.date <= today);
    }

    pub fn view(&self, today: Date, present_now: u32, frequency: VisitFrequency) -> FootfallView {
        let days = (0..FOOTFALL_DAYS)
            .rev()
            .map(|back| {
                let date = local::days_before(today, i64::from(back));
                let d = self.day(date).cloned().unwrap_or(DayFootfall::empty(date));
                DayView {
                    date,
                    arrivals: d.arrivals(),
                    arrivals_by_hour: d.arrivals_by_hour,
                    new_devices: d.new_devices,
                    returning_devices: d.returning_devices,
                    dwell: d.dwell,
                }
            })
            .collect();
        FootfallView {
            today,
            present_now,
            days,
            visit_frequency: frequency,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn dwell_bucket_edges() {
        let mut b = DwellBuckets::default();
        for secs in [
            0, 299, 300, 1_199, 1_200, 3_599, 3_600, 21_599, 21_600, 90_000,
        ] {
            b.add(secs);
        }
        assert_eq!(
            b,
            DwellBuckets {
                under_5m: 2,
                from_5m_to_20m: 2,
                from_20m_to_60m: 2,
                from_1h_to_6h: 2,
                over_6h: 2
            }
        );
    }

    #[test]
    fn frequency_buckets() {
        let mut f = VisitFrequency::default();
        for n in [0, 1, 2, 3, 5, 6, 40] {
            f.add(n);
        }
        assert_eq!(
            (f.once, f.twice, f.three_to_five, f.six_or_more),
            (1, 1, 2, 2)
        );
    }

    #[test]
    fn keeps_fourteen_days_and_views_them_all() {
        let mut f = Footfall::default();
        let today = date(2026, 11, 23);
        for back in 0..20 {
            f.record_arrival(local::days_before(today, back), 10, true, false);
        }
        f.record_arrival(date(2026, 11, 24), 10, true, false);
        f.prune(today);
        assert_eq!(f.days.len(), 14);
        assert_eq!(f.days[0].date, date(2026, 11, 10));
        let v = f.view(today, 3, VisitFrequency::default());
        assert_eq!(v.days.len(), 14);
        assert_eq!(v.days[13].date, today);
        assert_eq!(v.days[13].arrivals, 1);
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["days"][13]["date"], "2026-11-23");
        assert_eq!(json["days"][13]["dwell"]["under_5m"], 0);
        assert_eq!(json["visit_frequency"]["6_plus"], 0);
        let back: Footfall = serde_json::from_str(&serde_json::to_string(&f).unwrap()).unwrap();
        assert_eq!(back, f);
    }
}
