//! `Presence`: the one facade the shell drives. It owns the device
//! tracker, the visit sessionizer, classification (staff, residents) and
//! footfall, and turns sightings and ticks into ordered [`Output`]s.
//!
//! The shell's loop: feed every sighting to [`Presence::observe`], call
//! [`Presence::tick`] at [`Presence::next_wakeup`] (and after `restore`),
//! and carry out the outputs in order: send probes, turn `VisitStarted` /
//! `VisitEnded` into events, persist.
//!
//! Persistence is by snapshot: [`Presence::snapshot`] returns the whole
//! state as one serde value, [`Presence::restore`] takes it back. Presence
//! data is not safety-critical (a crash loses at most what changed since
//! the last snapshot: some dwell, some counts; no one is locked out or let
//! in), so it does not need the write-ahead `Save` discipline of
//! `access::session`, and one value keeps devices, visits and footfall
//! consistent with each other. `DeviceChanged` / `DeviceForgotten` say
//! when a snapshot has something worth writing (debounce them), and let a
//! shell that keeps devices in their own store tree write just those;
//! [`Presence::snapshot_core`] is then the rest.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::time::Duration;

use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use super::device::Device;
use super::footfall::{Footfall, FootfallView, VisitFrequency};
use super::local::{local_date, local_hour};
use super::sighting::Sighting;
use super::tracker::{Fired, LeaveReason, Tracker, TrackerConfig};
use super::visit::{Classification, NewVisit, OpenVisit, Sessionizer, Visit};
use crate::fingerprint::FingerprintRule;
use crate::mac::MacAddr;
use crate::time::Timestamp;

/// Resident detection looks at this many local days, today included.
pub const RESIDENT_WINDOW_DAYS: u32 = 7;
/// Most staff marks (set on the dashboard) kept.
pub const MAX_STAFF_OVERRIDES: usize = 20_000;

#[derive(Debug, Clone)]
pub struct PresenceConfig {
    /// A device silent this long is probed (once).
    pub probe_after: Duration,
    /// Silent this long since its last sighting, unanswered: it left.
    pub leave_after: Duration,
    /// Back within this after leaving: the same visit goes on.
    pub rejoin_gap: Duration,
    /// Always staff (`presence.staff_devices`).
    pub staff: Vec<MacAddr>,
    /// A day counts toward residency when the device was in the store
    /// longer than this...
    pub resident_min_daily: Duration,
    /// ...on at least this many of the last 7 local days (0: no device
    /// is ever a resident).
    pub resident_min_days: u32,
    /// Cap on known devices (see [`Presence::observe`]).
    pub max_devices: usize,
    /// New devices taken in per minute: a burst of this many, refilled
    /// evenly (see [`Presence::observe`]).
    pub new_devices_per_minute: u32,
    /// The store's zone (`store.timezone`), for local days and hours.
    pub timezone: TimeZone,
    /// The store's own fingerprint rules, checked before the built-in ones.
    pub fingerprints: Vec<FingerprintRule>,
}

impl Default for PresenceConfig {
    /// The documented defaults, in UTC.
    fn default() -> Self {
        PresenceConfig {
            probe_after: Duration::from_secs(60),
            leave_after: Duration::from_secs(180),
            rejoin_gap: Duration::from_secs(300),
            staff: Vec::new(),
            resident_min_daily: Duration::from_secs(6 * 3600),
            resident_min_days: 3,
            max_devices: 20_000,
            new_devices_per_minute: 600,
            timezone: TimeZone::UTC,
            fingerprints: Vec::new(),
        }
    }
}

/// What the shell must do or know, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// The device arrived (from gone or never seen).
    Joined { mac: MacAddr },
    /// The device left.
    Left { mac: MacAddr, reason: LeaveReason },
    /// Ask whether the device is still here (ARP for IPv4, neighbour
    /// solicitation for IPv6); any answer is a sighting.
    Probe { mac: MacAddr, ip: IpAddr },
    /// Emit `visit.started`.
    VisitStarted(Visit),
    /// Emit `visit.ended`.
    VisitEnded(Visit),
    /// The device's record changed in a way worth persisting.
    DeviceChanged(MacAddr),
    /// The device was forgotten to make room; drop its persisted record.
    DeviceForgotten(MacAddr),
}

/// A staff mark set on the dashboard (overrides the config either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffOverride {
    pub mac: MacAddr,
    pub staff: bool,
}

/// What the presence machines could not do, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Sightings of new devices ignored because the device table was
    /// full of present devices.
    pub untracked_sightings: u64,
    /// Departed devices forgotten to make room for new ones.
    pub evicted_devices: u64,
    /// Of `untracked_sightings`, those of new devices past the per-minute
    /// budget (`new_devices_per_minute`): a MAC flood, not shoppers.
    #[serde(default)]
    pub rate_limited: u64,
}

/// Everything `Presence` knows, for persistence.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Saved {
    /// Format version (1).
    pub version: u32,
    pub devices: Vec<Device>,
    /// Visits not yet ended: lasting, or pending after a departure.
    pub open_visits: Vec<OpenVisit>,
    /// Ended visits, newest first.
    pub recent_visits: Vec<Visit>,
    pub footfall: Footfall,
    pub staff_overrides: Vec<StaffOverride>,
    pub counters: Counters,
}

#[derive(Debug)]
pub struct Presence {
    cfg: PresenceConfig,
    staff: HashSet<MacAddr>,
    /// Devices HQ's sync document names as staff (the shell maps its
    /// device ids to MACs); not saved: it comes back with the document.
    hq_staff: HashSet<MacAddr>,
    staff_overrides: BTreeMap<MacAddr, bool>,
    tracker: Tracker,
    sessions: Sessionizer,
    footfall: Footfall,
}

impl Presence {
    /// `seed` feeds visit ids: the shell passes a fresh random value at
    /// each start (ids embed the time too), tests a constant.
    pub fn new(cfg: PresenceConfig, seed: u64) -> Self {
        let tracker = Tracker::new(
            TrackerConfig {
                probe_after: cfg.probe_after,
                leave_after: cfg.leave_after.max(cfg.probe_after),
                max_devices: cfg.max_devices.max(1),
                new_per_minute: cfg.new_devices_per_minute.max(1),
            },
            cfg.timezone.clone(),
            cfg.fingerprints.clone(),
        );
        Presence {
            staff: cfg.staff.iter().copied().collect(),
            hq_staff: HashSet::new(),
            staff_overrides: BTreeMap::new(),
            sessions: Sessionizer::new(cfg.rejoin_gap, seed),
            footfall: Footfall::default(),
            tracker,
            cfg,
        }
    }

    /// Takes back a snapshot, replacing all state; call `tick(now)` next.
    /// Devices still present at the snapshot get one probe and a fresh
    /// answer window (the box's downtime is not their departure); visits
    /// are reconciled with their devices, so a `Saved` assembled from
    /// separately persisted parts is fine: a present device's visit goes
    /// on, a gone device's visit ends after the gap, and a present device
    /// whose visit was lost starts a new one at its next sighting.
    pub fn restore(&mut self, saved: Saved, now: Timestamp) {
        self.tracker.restore(saved.devices, now);
        self.tracker.untracked_sightings = saved.counters.untracked_sightings;
        self.tracker.evicted_devices = saved.counters.evicted_devices;
        self.tracker.rate_limited = saved.counters.rate_limited;
        self.staff_overrides = saved
            .staff_overrides
            .iter()
            .take(MAX_STAFF_OVERRIDES)
            .map(|o| (o.mac, o.staff))
            .collect();
        let mut open = Vec::with_capacity(saved.open_visits.len());
        let mut with_visit = HashSet::new();
        for mut v in saved.open_visits {
            match self.tracker.get(v.visit.mac) {
                Some(d) if d.is_present() => v.departed_at = None,
                Some(d) if v.departed_at.is_none() => v.departed_at = Some(d.last_seen),
                None if v.departed_at.is_none() => v.departed_at = Some(v.last_seen),
                _ => {}
            }
            if let Some(at) = v.departed_at {
                v.departed_at = Some(at.max(v.visit.started_at));
            }
            with_visit.insert(v.visit.mac);
            open.push(v);
        }
        let orphans: Vec<MacAddr> = self
            .tracker
            .devices()
            .filter(|d| d.is_present() && !with_visit.contains(&d.mac))
            .map(|d| d.mac)
            .collect();
        for mac in orphans {
            self.tracker.mark_left(mac);
        }
        self.sessions.restore(open, saved.recent_visits);
        self.footfall = saved.footfall;
        self.footfall.prune(local_date(now, &self.cfg.timezone));
    }

    /// The whole state, to persist.
    pub fn snapshot(&self) -> Saved {
        let mut devices: Vec<Device> = self.tracker.devices().cloned().collect();
        devices.sort_by_key(|d| d.mac);
        Saved {
            devices,
            ..self.snapshot_core()
        }
    }

    /// The state without devices (for a shell that persists devices one
    /// by one on `DeviceChanged`).
    pub fn snapshot_core(&self) -> Saved {
        let (open_visits, recent_visits) = self.sessions.snapshot();
        Saved {
            version: 1,
            devices: Vec::new(),
            open_visits,
            recent_visits,
            footfall: self.footfall.clone(),
            staff_overrides: self
                .staff_overrides
                .iter()
                .map(|(mac, staff)| StaffOverride {
                    mac: *mac,
                    staff: *staff,
                })
                .collect(),
            counters: self.counters(),
        }
    }

    /// Takes in one sighting. A new device when `max_devices` are known
    /// forgets the one that left longest ago (`DeviceForgotten`); if every
    /// known device is present (a MAC flood, or a store far fuller than
    /// configured), the newcomer is not tracked at all: no join, no visit,
    /// counted in `Counters::untracked_sightings`, until a known device
    /// leaves and frees a place. Devices in the store are never dropped.
    /// New devices past `new_devices_per_minute` are untracked too
    /// (`Counters::rate_limited`): a MAC flood gets no visit each.
    pub fn observe(&mut self, s: &Sighting, now: Timestamp) -> Vec<Output> {
        self.observe_inner(s, None, now)
    }

    /// As [`Self::observe`], told who the device belongs to now (`members`
    /// recognised it, or `None`: nobody). That is recorded on the device
    /// before anything else, so a visit that starts with this sighting
    /// carries the member in `visit.started`; a lasting visit learns it.
    pub fn observe_member(
        &mut self,
        s: &Sighting,
        member: Option<&str>,
        now: Timestamp,
    ) -> Vec<Output> {
        self.observe_inner(s, Some(member), now)
    }

    fn observe_inner(
        &mut self,
        s: &Sighting,
        member: Option<Option<&str>>,
        now: Timestamp,
    ) -> Vec<Output> {
        let mac = s.mac;
        let mut seen = self.tracker.observe(s, now);
        if let Some(member) = member {
            seen.changed |= self.tracker.set_member(mac, member);
        }
        let mut out = Vec::new();
        if let Some(gone) = seen.forgotten {
            out.push(Output::DeviceForgotten(gone));
        }
        if seen.joined {
            out.push(Output::Joined { mac });
            self.on_join(mac, now, &mut out);
        }
        if let Some(at) = seen.left {
            out.push(Output::Left {
                mac,
                reason: LeaveReason::Released,
            });
            self.sessions.depart(mac, at);
        }
        if seen.present {
            self.sessions.seen(mac, now);
            self.refresh_visit(mac, now);
        }
        if seen.changed {
            out.push(Output::DeviceChanged(mac));
        }
        out
    }

    /// Fires every timer due at `now`, in deadline order: probes, leaves
    /// (as of the last sighting) and visit ends.
    pub fn tick(&mut self, now: Timestamp) -> Vec<Output> {
        let mut out = Vec::new();
        loop {
            let device = self.tracker.next_due().filter(|t| *t <= now);
            let visit = self.sessions.next_due().filter(|t| *t <= now);
            match (device, visit) {
                (None, None) => break,
                (Some(d), v) if v.is_none_or(|v| d <= v) => {
                    let Some((mac, fired)) = self.tracker.fire(now) else {
                        break;
                    };
                    match fired {
                        Fired::Probe(ip) => out.push(Output::Probe { mac, ip }),
                        Fired::Silent => {}
                        Fired::Left(at) => {
                            out.push(Output::Left {
                                mac,
                                reason: LeaveReason::Silent,
                            });
                            self.sessions.depart(mac, at);
                            out.push(Output::DeviceChanged(mac));
                        }
                    }
                }
                _ => {
                    let Some(mac) = self.sessions.due(now) else {
                        break;
                    };
                    self.end_visit(mac, now, &mut out);
                }
            }
        }
        out
    }

    /// The earliest probe, leave or visit-end deadline; `None` when
    /// nothing is pending. Ticking earlier does nothing.
    pub fn next_wakeup(&self) -> Option<Timestamp> {
        match (self.tracker.next_due(), self.sessions.next_due()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn devices(&self) -> impl Iterator<Item = &Device> {
        self.tracker.devices()
    }

    /// Records that `mac` belongs to `member` now (`None`: to nobody, e.g.
    /// its binding expired). A lasting visit learns a new member; one it
    /// already carries is kept (only erasure removes it).
    pub fn set_member(&mut self, mac: MacAddr, member: Option<&str>) -> Vec<Output> {
        if !self.tracker.set_member(mac, member) {
            return Vec::new();
        }
        if let (Some(m), Some(v)) = (member, self.sessions.visit_mut(mac)) {
            v.member_id = Some(m.to_owned());
        }
        vec![Output::DeviceChanged(mac)]
    }

    /// Erasure: removes `member_id` from every device and every visit,
    /// open or ended. Returns `DeviceChanged` for each device it touched
    /// (persist the core snapshot too: visits changed).
    pub fn forget_member(&mut self, member_id: &str) -> Vec<Output> {
        self.sessions.forget_member(member_id);
        self.tracker
            .forget_member(member_id)
            .into_iter()
            .map(Output::DeviceChanged)
            .collect()
    }

    /// Privacy: forgets devices that belong to no member and have not been
    /// seen for `after` (they left at least that long ago and have no
    /// visit pending). Returns `DeviceForgotten` for each.
    pub fn forget_unbound(&mut self, now: Timestamp, after: Duration) -> Vec<Output> {
        let after = i64::try_from(after.as_millis()).unwrap_or(i64::MAX);
        let cutoff = Timestamp(now.0.saturating_sub(after));
        let sessions = &self.sessions;
        self.tracker
            .forget_unbound(cutoff, |mac| sessions.has_open(mac))
            .into_iter()
            .map(Output::DeviceForgotten)
            .collect()
    }

    pub fn device(&self, mac: MacAddr) -> Option<&Device> {
        self.tracker.get(mac)
    }

    /// Recent visits: those not ended (newest first), then the last
    /// [`super::visit::MAX_RECENT_VISITS`] ended ones (newest first).
    pub fn visits(&self) -> impl Iterator<Item = &Visit> {
        self.sessions.visits()
    }

    pub fn counters(&self) -> Counters {
        Counters {
            untracked_sightings: self.tracker.untracked_sightings,
            evicted_devices: self.tracker.evicted_devices,
            rate_limited: self.tracker.rate_limited,
        }
    }

    /// Footfall as of `now`: visitors present, the last 14 local days,
    /// and visit frequency over the last 30 days (of devices that are
    /// visitors now).
    pub fn footfall(&self, now: Timestamp) -> FootfallView {
        let present = self
            .sessions
            .in_store()
            .filter(|v| v.classification == Classification::Visitor)
            .count();
        let mut frequency = VisitFrequency::default();
        for d in self.tracker.devices() {
            if self.classify(d.mac, now) == Classification::Visitor {
                frequency.add(d.visits_in_window(now));
            }
        }
        self.footfall.view(
            local_date(now, &self.cfg.timezone),
            u32::try_from(present).unwrap_or(u32::MAX),
            frequency,
        )
    }

    /// Marks `mac` as staff or not (overriding the config and HQ's list),
    /// from now on: a lasting visit is reclassified, counts already made
    /// stay. The mark is kept in the snapshot. Beyond
    /// [`MAX_STAFF_OVERRIDES`] marks new ones are refused (nothing changes).
    pub fn set_staff(&mut self, mac: MacAddr, staff: bool, now: Timestamp) -> Vec<Output> {
        if staff == (self.staff.contains(&mac) || self.hq_staff.contains(&mac)) {
            self.staff_overrides.remove(&mac);
        } else if self.staff_overrides.len() < MAX_STAFF_OVERRIDES
            || self.staff_overrides.contains_key(&mac)
        {
            self.staff_overrides.insert(mac, staff);
        } else {
            return Vec::new();
        }
        let class = self.classify(mac, now);
        if let Some(v) = self.sessions.visit_mut(mac) {
            v.classification = class;
        }
        match self.tracker.get(mac) {
            Some(_) => vec![Output::DeviceChanged(mac)],
            None => Vec::new(),
        }
    }

    /// The store's zone (local days and hours).
    pub fn timezone(&self) -> &TimeZone {
        &self.cfg.timezone
    }

    /// Whether `mac` is staff (a dashboard mark first, else the config or
    /// HQ's list).
    pub fn is_staff(&self, mac: MacAddr) -> bool {
        self.staff_overrides
            .get(&mac)
            .copied()
            .unwrap_or_else(|| self.staff.contains(&mac) || self.hq_staff.contains(&mac))
    }

    /// Replaces the devices HQ lists as staff, from now on: lasting visits
    /// of devices that joined or left the list are reclassified.
    pub fn set_hq_staff(&mut self, macs: HashSet<MacAddr>, now: Timestamp) -> Vec<Output> {
        if macs == self.hq_staff {
            return Vec::new();
        }
        let mut changed: Vec<MacAddr> =
            self.hq_staff.symmetric_difference(&macs).copied().collect();
        changed.sort();
        self.hq_staff = macs;
        let mut out = Vec::new();
        for mac in changed {
            let class = self.classify(mac, now);
            if let Some(v) = self.sessions.visit_mut(mac) {
                v.classification = class;
            }
            if self.tracker.get(mac).is_some() {
                out.push(Output::DeviceChanged(mac));
            }
        }
        out
    }

    /// Staff first, then residents; everyone else is a visitor.
    pub fn classify(&self, mac: MacAddr, now: Timestamp) -> Classification {
        if self.is_staff(mac) {
            return Classification::Staff;
        }
        let today = local_date(now, &self.cfg.timezone);
        let resident = self.cfg.resident_min_days > 0
            && self.tracker.get(mac).is_some_and(|d| {
                d.long_days(today, RESIDENT_WINDOW_DAYS, self.cfg.resident_min_daily)
                    >= self.cfg.resident_min_days
            });
        if resident {
            Classification::Resident
        } else {
            Classification::Visitor
        }
    }

    fn on_join(&mut self, mac: MacAddr, now: Timestamp, out: &mut Vec<Output>) {
        if self.sessions.is_overdue(mac, now) {
            self.end_visit(mac, now, out);
        }
        if self.sessions.resume(mac, now) {
            return;
        }
        let Some(d) = self.tracker.get(mac) else {
            return;
        };
        let tz = &self.cfg.timezone;
        let today = local_date(now, tz);
        let returning = d.first_visit.is_some_and(|t| local_date(t, tz) < today);
        let first_today = d
            .visit_starts
            .first()
            .is_none_or(|t| local_date(*t, tz) != today);
        let info = NewVisit {
            classification: self.classify(mac, now),
            returning,
            mac_randomized: d.mac_randomized,
            os_family: d.os_family.clone(),
            member_id: d.member_id.clone(),
        };
        let visitor = info.classification == Classification::Visitor;
        let visit = self.sessions.start(mac, now, info);
        self.tracker.note_visit_start(mac, now);
        if visitor {
            let hour = local_hour(now, &self.cfg.timezone);
            self.footfall
                .record_arrival(today, hour, first_today, returning);
            self.footfall.prune(today);
        }
        out.push(Output::VisitStarted(visit));
    }

    fn end_visit(&mut self, mac: MacAddr, now: Timestamp, out: &mut Vec<Output>) {
        let class = self.classify(mac, now);
        let Some(visit) = self.sessions.end(mac, class) else {
            return;
        };
        if class == Classification::Visitor {
            let tz = &self.cfg.timezone;
            self.footfall
                .record_dwell(local_date(visit.started_at, tz), visit.dwell_seconds);
            self.footfall.prune(local_date(now, tz));
        }
        out.push(Output::VisitEnded(visit));
    }

    /// Keeps a lasting visit's picture of its device current.
    fn refresh_visit(&mut self, mac: MacAddr, now: Timestamp) {
        let class = self.classify(mac, now);
        let Some(d) = self.tracker.get(mac) else {
            return;
        };
        if let Some(v) = self.sessions.visit_mut(mac) {
            v.classification = class;
            if v.os_family != d.os_family {
                v.os_family.clone_from(&d.os_family);
            }
            if d.member_id.is_some() && v.member_id != d.member_id {
                v.member_id.clone_from(&d.member_id);
            }
        }
    }
}

#[cfg(test)]
mod tests;
