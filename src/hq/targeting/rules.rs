//! Campaign rules, as `storegate-hq` stores them in its campaigns KV
//! bucket (one key per campaign, the value JSON) and the demo writes
//! them, and the pure test whether an arrival matches one. No clock and
//! no I/O: the caller passes the arrival's local time in the store's
//! zone.
//!
//! ```json
//! {"id": "cafe-20", "text": "Welcome back: 20% off at the café today",
//!  "audience": {"all_members": true},          // or {"member_ids": ["m1", ...]}
//!  "stores": ["wulin-01"],                      // absent or empty: every store
//!  "windows": [{"days": ["mon", "tue"], "from": "10:00", "to": "14:00"}],
//!  "daily_cap": 1,                              // per member, per local day
//!  "priority": 0, "active": true}
//! ```

use std::collections::HashSet;

use jiff::civil::{DateTime, Time, Weekday};
use serde::Deserialize;

/// Who a campaign is for.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Audience {
    #[serde(default)]
    pub all_members: bool,
    #[serde(default)]
    pub member_ids: HashSet<String>,
}

/// A time window on some days of the week, in the store's time zone;
/// `to` before `from` runs past midnight.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// `mon` … `sun`; absent or empty: every day.
    #[serde(default)]
    pub days: Vec<String>,
    pub from: String,
    pub to: String,
}

/// One campaign.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Campaign {
    pub id: String,
    pub text: String,
    pub audience: Audience,
    #[serde(default)]
    pub stores: Vec<String>,
    #[serde(default)]
    pub windows: Vec<Window>,
    #[serde(default = "one")]
    pub daily_cap: u32,
    #[serde(default)]
    pub priority: i32,
    #[serde(default = "yes")]
    pub active: bool,
}

fn one() -> u32 {
    1
}
fn yes() -> bool {
    true
}

fn weekday(s: &str) -> Option<Weekday> {
    Some(match s {
        "mon" => Weekday::Monday,
        "tue" => Weekday::Tuesday,
        "wed" => Weekday::Wednesday,
        "thu" => Weekday::Thursday,
        "fri" => Weekday::Friday,
        "sat" => Weekday::Saturday,
        "sun" => Weekday::Sunday,
        _ => return None,
    })
}

impl Campaign {
    /// Parses and checks a campaign; the error is one line.
    pub fn parse(bytes: &[u8]) -> Result<Campaign, String> {
        let c: Campaign = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if c.id.is_empty() || c.text.is_empty() {
            return Err("id and text must not be empty".into());
        }
        for (i, w) in c.windows.iter().enumerate() {
            for t in [&w.from, &w.to] {
                t.parse::<Time>().map_err(|e| {
                    format!("windows[{i}]: {t:?} is not a time such as \"10:00\": {e}")
                })?;
            }
            if let Some(d) = w.days.iter().find(|d| weekday(d).is_none()) {
                return Err(format!("windows[{i}].days: {d:?} is not mon, tue, … sun"));
            }
        }
        if c.daily_cap == 0 {
            return Err("daily_cap must be at least 1".into());
        }
        Ok(c)
    }

    fn in_window(&self, local: DateTime) -> bool {
        if self.windows.is_empty() {
            return true;
        }
        let (day, time) = (local.weekday(), local.time());
        self.windows.iter().any(|w| {
            let (Ok(from), Ok(to)) = (w.from.parse::<Time>(), w.to.parse::<Time>()) else {
                return false;
            };
            let on = |d: Weekday| w.days.is_empty() || w.days.iter().any(|x| weekday(x) == Some(d));
            if from <= to {
                on(day) && time >= from && time < to
            } else {
                // Past midnight: the evening part on the listed day, the
                // morning part on the day after it.
                (on(day) && time >= from) || (on(day.previous()) && time < to)
            }
        })
    }

    /// Whether an arrival of `member_id` at `store_id`, at `local` time in
    /// the store's zone, is for this campaign (caps aside).
    pub fn matches(&self, store_id: &str, member_id: &str, local: DateTime) -> bool {
        self.active
            && (self.stores.is_empty() || self.stores.iter().any(|s| s == store_id))
            && (self.audience.all_members || self.audience.member_ids.contains(member_id))
            && self.in_window(local)
    }
}

/// The campaigns an arrival matches, best first (higher priority, then
/// id).
pub fn matching<'a>(
    campaigns: &'a [Campaign],
    store_id: &str,
    member_id: &str,
    local: DateTime,
) -> Vec<&'a Campaign> {
    let mut out: Vec<&Campaign> = campaigns
        .iter()
        .filter(|c| c.matches(store_id, member_id, local))
        .collect();
    out.sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| a.id.cmp(&b.id)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn campaign(json: &str) -> Campaign {
        Campaign::parse(json.as_bytes()).unwrap()
    }

    #[test]
    fn audience_and_stores() {
        let c =
            campaign(r#"{"id":"c","text":"t","audience":{"member_ids":["m1"]},"stores":["s1"]}"#);
        let t = date(2026, 12, 1).at(10, 0, 0, 0);
        assert!(c.matches("s1", "m1", t));
        assert!(!c.matches("s2", "m1", t));
        assert!(!c.matches("s1", "m2", t));
        let all = campaign(r#"{"id":"c","text":"t","audience":{"all_members":true}}"#);
        assert!(all.matches("any", "anyone", t));
        let off =
            campaign(r#"{"id":"c","text":"t","audience":{"all_members":true},"active":false}"#);
        assert!(!off.matches("any", "anyone", t));
    }

    #[test]
    fn windows_in_local_time() {
        // 2026-12-01 is a Tuesday.
        let c = campaign(
            r#"{"id":"c","text":"t","audience":{"all_members":true},
                "windows":[{"days":["tue"],"from":"10:00","to":"14:00"},
                           {"days":["fri"],"from":"22:00","to":"02:00"}]}"#,
        );
        let tue = date(2026, 12, 1);
        assert!(c.matches("s", "m", tue.at(10, 0, 0, 0)));
        assert!(!c.matches("s", "m", tue.at(14, 0, 0, 0)));
        assert!(!c.matches("s", "m", date(2026, 12, 2).at(11, 0, 0, 0)));
        assert!(c.matches("s", "m", date(2026, 12, 4).at(23, 0, 0, 0)));
        assert!(c.matches("s", "m", date(2026, 12, 5).at(1, 0, 0, 0)));
        assert!(!c.matches("s", "m", date(2026, 12, 5).at(3, 0, 0, 0)));
    }

    #[test]
    fn bad_campaigns_are_refused() {
        for bad in [
            r#"{"id":"c","text":"t","audience":{}, "colour": 1}"#,
            r#"{"id":"c","text":"t","audience":{},"windows":[{"from":"25:00","to":"10:00"}]}"#,
            r#"{"id":"c","text":"t","audience":{},"windows":[{"days":["mo"],"from":"1:00","to":"2:00"}]}"#,
            r#"{"id":"","text":"t","audience":{}}"#,
            r#"{"id":"c","text":"t","audience":{},"daily_cap":0}"#,
        ] {
            assert!(Campaign::parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn best_first() {
        let cs = vec![
            campaign(r#"{"id":"b","text":"t","audience":{"all_members":true}}"#),
            campaign(r#"{"id":"a","text":"t","audience":{"all_members":true}}"#),
            campaign(r#"{"id":"z","text":"t","audience":{"all_members":true},"priority":5}"#),
        ];
        let ids: Vec<&str> = matching(&cs, "s", "m", date(2026, 1, 1).at(0, 0, 0, 0))
            .iter()
            .map(|c| c.id.as_str())
            .collect();
        assert_eq!(ids, ["z", "a", "b"]);
    }
}
