//! The visit sessionizer: joins and departures → visits with a dwell.
//!
//! A join starts a visit, unless the device's last visit ended less than
//! `rejoin_gap` before (a phone that dropped off the Wi-Fi for a minute is
//! still on the same visit). So a departure does not end a visit at once:
//! it is *pending* until the gap has passed without a return, and only
//! then ended, with `ended_at` = the departure.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::mac::MacAddr;
use crate::time::Timestamp;

/// Ended visits kept for `ctl visits`.
pub const MAX_RECENT_VISITS: usize = 1_000;

/// Who a device belongs to, for footfall. Only visitors count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Classification {
    Visitor,
    /// Configured, or marked on the dashboard.
    Staff,
    /// In the store for long hours on several recent days (a neighbour's
    /// device, the café's till, a resident's phone).
    Resident,
}

impl Classification {
    /// The wire name (as serde writes it).
    pub fn as_str(self) -> &'static str {
        match self {
            Classification::Visitor => "visitor",
            Classification::Staff => "staff",
            Classification::Resident => "resident",
        }
    }
}

/// One visit. Serialised for persistence, `ctl visits --json` and the
/// `visit.started` / `visit.ended` events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Visit {
    /// A UUIDv7.
    pub visit_id: String,
    pub mac: MacAddr,
    pub started_at: Timestamp,
    /// The departure, once the visit has ended; `None` while it lasts.
    pub ended_at: Option<Timestamp>,
    /// `ended_at − started_at`; while it lasts, up to its last sighting.
    pub dwell_seconds: u64,
    /// As of its start, updated while it lasts and final at its end.
    pub classification: Classification,
    /// The device had a visit on an earlier local day.
    pub returning: bool,
    pub mac_randomized: bool,
    pub os_family: String,
    /// The member the device is bound to (from `members`), when known at
    /// its start or learnt while it lasts; cleared by erasure.
    pub member_id: Option<String>,
}

impl Visit {
    /// The visit as `ctl visits --json` prints it: timestamps in RFC 3339
    /// (as for clients), `ended_at` null while it lasts.
    pub fn to_ctl_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("started_at".into(), self.started_at.rfc3339().into());
            o.insert(
                "ended_at".into(),
                self.ended_at.map(Timestamp::rfc3339).into(),
            );
        }
        v
    }
}

/// A visit that has not ended, with what the sessionizer needs to end it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenVisit {
    pub visit: Visit,
    /// Its device's latest sighting in this visit.
    pub last_seen: Timestamp,
    /// Set when the device left: the visit ends at `departed_at +
    /// rejoin_gap` unless the device comes back first.
    pub departed_at: Option<Timestamp>,
}

/// What a new visit is told about its device.
pub(crate) struct NewVisit {
    pub classification: Classification,
    pub returning: bool,
    pub mac_randomized: bool,
    pub os_family: String,
    pub member_id: Option<String>,
}

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny seeded generator, so visit
/// ids are reproducible in tests and need no global RNG.
#[derive(Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[derive(Debug)]
pub(crate) struct Sessionizer {
    rejoin_gap: Duration,
    /// Boxed, as the tracker's devices are: unused slots stay small.
    open: HashMap<MacAddr, Box<OpenVisit>>,
    /// (departed_at + rejoin_gap, mac) of every pending visit.
    ends: BTreeSet<(Timestamp, MacAddr)>,
    /// Ended visits, newest first.
    recent: VecDeque<Visit>,
    rng: SplitMix64,
}

fn dwell(from: Timestamp, to: Timestamp) -> u64 {
    from.until(to).as_secs()
}

impl Sessionizer {
    pub fn new(rejoin_gap: Duration, seed: u64) -> Self {
        Sessionizer {
            rejoin_gap,
            open: HashMap::new(),
            ends: BTreeSet::new(),
            recent: VecDeque::new(),
            rng: SplitMix64(seed),
        }
    }

    fn end_key(&self, v: &OpenVisit) -> Option<(Timestamp, MacAddr)> {
        v.departed_at
            .map(|d| (d.plus(self.rejoin_gap), v.visit.mac))
    }

    /// A UUIDv7 from `now` and the seeded generator.
    fn new_id(&mut self, now: Timestamp) -> String {
        let (a, b) = (self.rng.next().to_be_bytes(), self.rng.next().to_be_bytes());
        let mut random = [0u8; 10];
        random[..8].copy_from_slice(&a);
        random[8..].copy_from_slice(&b[..2]);
        let ms = u64::try_from(now.millis()).unwrap_or(0);
        uuid::Builder::from_unix_timestamp_millis(ms, &random)
            .into_uuid()
            .hyphenated()
            .to_string()
    }

    /// Whether `mac` has a pending visit whose gap has passed by `now`
    /// (the shell has not ticked yet): it must be ended before a new one.
    pub fn is_overdue(&self, mac: MacAddr, now: Timestamp) -> bool {
        self.open
            .get(&mac)
            .and_then(|v| self.end_key(v))
            .is_some_and(|(due, _)| due <= now)
    }

    /// The device joined at `now`: goes on with its open visit if it has
    /// one (within the gap). Whether it did.
    pub fn resume(&mut self, mac: MacAddr, now: Timestamp) -> bool {
        let Some(v) = self.open.get_mut(&mac) else {
            return false;
        };
        if let Some(departed) = v.departed_at {
            let due = departed.plus(self.rejoin_gap);
            if due <= now {
                return false;
            }
            self.ends.remove(&(due, mac));
        }
        v.departed_at = None;
        v.last_seen = v.last_seen.max(now);
        v.visit.dwell_seconds = dwell(v.visit.started_at, v.last_seen);
        true
    }

    /// Starts a visit for `mac` at `now`.
    pub fn start(&mut self, mac: MacAddr, now: Timestamp, info: NewVisit) -> Visit {
        let visit = Visit {
            visit_id: self.new_id(now),
            mac,
            started_at: now,
            ended_at: None,
            dwell_seconds: 0,
            classification: info.classification,
            returning: info.returning,
            mac_randomized: info.mac_randomized,
            os_family: info.os_family,
            member_id: info.member_id,
        };
        let open = OpenVisit {
            visit: visit.clone(),
            last_seen: now,
            departed_at: None,
        };
        if let Some(old) = self.open.insert(mac, Box::new(open))
            && let Some(key) = self.end_key(&old)
        {
            self.ends.remove(&key);
        }
        visit
    }

    /// The device of an open visit was seen at `now`.
    pub fn seen(&mut self, mac: MacAddr, now: Timestamp) {
        if let Some(v) = self.open.get_mut(&mac)
            && v.departed_at.is_none()
        {
            v.last_seen = v.last_seen.max(now);
            v.visit.dwell_seconds = dwell(v.visit.started_at, v.last_seen);
        }
    }

    /// The device left at `at`: its visit is pending.
    pub fn depart(&mut self, mac: MacAddr, at: Timestamp) {
        let Some(v) = self.open.get_mut(&mac) else {
            return;
        };
        if v.departed_at.is_some() {
            return;
        }
        let at = at.max(v.visit.started_at);
        v.departed_at = Some(at);
        v.last_seen = at;
        v.visit.dwell_seconds = dwell(v.visit.started_at, at);
        let key = (at.plus(self.rejoin_gap), mac);
        self.ends.insert(key);
    }

    /// When the earliest pending visit ends.
    pub fn next_due(&self) -> Option<Timestamp> {
        self.ends.first().map(|(t, _)| *t)
    }

    /// The device whose pending visit is the earliest due at `now`.
    pub fn due(&self, now: Timestamp) -> Option<MacAddr> {
        self.ends
            .first()
            .filter(|(t, _)| *t <= now)
            .map(|(_, mac)| *mac)
    }

    /// Ends the visit of `mac` as `classification`, as of its departure
    /// (or its last sighting, if it never departed).
    pub fn end(&mut self, mac: MacAddr, classification: Classification) -> Option<Visit> {
        let v = self.open.remove(&mac)?;
        if let Some(key) = self.end_key(&v) {
            self.ends.remove(&key);
        }
        let mut visit = v.visit;
        let ended = v.departed_at.unwrap_or(v.last_seen);
        visit.ended_at = Some(ended);
        visit.dwell_seconds = dwell(visit.started_at, ended);
        visit.classification = classification;
        self.recent.push_front(visit.clone());
        self.recent.truncate(MAX_RECENT_VISITS);
        Some(visit)
    }

    /// For updating what a visit says about its device (classification,
    /// OS); timers do not depend on those.
    pub fn visit_mut(&mut self, mac: MacAddr) -> Option<&mut Visit> {
        self.open.get_mut(&mac).map(|v| &mut v.visit)
    }

    /// Whether `mac` has a visit that has not ended.
    pub fn has_open(&self, mac: MacAddr) -> bool {
        self.open.contains_key(&mac)
    }

    /// Clears `member_id` from every visit, open or ended, that carries
    /// it (erasure). Returns how many.
    pub fn forget_member(&mut self, member_id: &str) -> usize {
        let mut n = 0;
        let open = self.open.values_mut().map(|v| &mut v.visit);
        for v in open.chain(self.recent.iter_mut()) {
            if v.member_id.as_deref() == Some(member_id) {
                v.member_id = None;
                n += 1;
            }
        }
        n
    }

    /// Open visits (newest first), then ended ones (newest first).
    pub fn visits(&self) -> impl Iterator<Item = &Visit> {
        let mut open: Vec<&Visit> = self.open.values().map(|v| &v.visit).collect();
        open.sort_by(|a, b| b.started_at.cmp(&a.started_at).then(a.mac.cmp(&b.mac)));
        open.into_iter().chain(self.recent.iter())
    }

    /// Open visits whose device is in the store now.
    pub fn in_store(&self) -> impl Iterator<Item = &Visit> {
        self.open
            .values()
            .filter(|v| v.departed_at.is_none())
            .map(|v| &v.visit)
    }

    pub fn snapshot(&self) -> (Vec<OpenVisit>, Vec<Visit>) {
        let mut open: Vec<OpenVisit> = self.open.values().map(|v| (**v).clone()).collect();
        open.sort_by_key(|v| (v.visit.started_at, v.visit.mac));
        (open, self.recent.iter().cloned().collect())
    }

    pub fn restore(&mut self, open: Vec<OpenVisit>, recent: Vec<Visit>) {
        self.open.clear();
        self.ends.clear();
        for v in open {
            let key = self.end_key(&v);
            if let Some(old) = self.open.insert(v.visit.mac, Box::new(v))
                && let Some(old_key) = self.end_key(&old)
            {
                self.ends.remove(&old_key);
            }
            if let Some(key) = key {
                self.ends.insert(key);
            }
        }
        self.recent = recent.into_iter().take(MAX_RECENT_VISITS).collect();
    }
}
