//! The device tracker: per MAC, present → (silent | probed) → left.
//!
//! Any sighting makes a device present (from left, or unknown, that is a
//! join). A device silent for `probe_after` is probed once at its last
//! known address; any sighting after that means it is still here. Silent
//! for `leave_after` since its last sighting and it has left, as of that
//! last sighting. A DHCPRELEASE or DHCPDECLINE means it left at once.
//!
//! Timers are kept in an ordered index keyed by deadline, so finding the
//! next wakeup and firing due timers cost O(log n), not a scan of 20,000
//! devices. Each device's deadline is a pure function of its state, so
//! every change goes through [`Tracker::update`], which re-keys it.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use super::device::{Device, DeviceState};
use super::sighting::{DhcpMessageType, Sighting, SightingKind};
use crate::fingerprint::{self, FingerprintRule};
use crate::mac::MacAddr;
use crate::time::Timestamp;

/// Why a device left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    /// It gave its lease back (DHCPRELEASE) or declined it (DHCPDECLINE).
    Released,
    /// Silent past `leave_after`, probe unanswered.
    Silent,
}

/// How long a device the access point says is associated may stay quiet
/// before it is probed all the same: its disassociation normally ends it
/// at once; this catches one whose disassociation was lost (a hostapd
/// restart while it left).
pub(crate) const ASSOCIATED_HOLD: Duration = Duration::from_secs(30 * 60);

#[derive(Debug, Clone, Copy)]
pub(crate) struct TrackerConfig {
    pub probe_after: Duration,
    pub leave_after: Duration,
    pub max_devices: usize,
    /// New devices per minute (see `Presence::observe`).
    pub new_per_minute: u32,
}

/// What one sighting did to the device tracker.
#[derive(Debug, Default)]
pub(crate) struct Observed {
    /// A device that left long ago, forgotten to make room.
    pub forgotten: Option<MacAddr>,
    pub joined: bool,
    /// It left, at this time.
    pub left: Option<Timestamp>,
    /// Something worth persisting changed (addresses, traits, state).
    pub changed: bool,
    /// The device is tracked and present after this sighting.
    pub present: bool,
}

/// What one due timer did.
#[derive(Debug)]
pub(crate) enum Fired {
    Probe(IpAddr),
    /// Silent, nothing to probe: waiting out `leave_after`.
    Silent,
    /// Left, as of its last sighting.
    Left(Timestamp),
}

#[derive(Debug)]
pub(crate) struct Tracker {
    cfg: TrackerConfig,
    tz: TimeZone,
    user_rules: Vec<FingerprintRule>,
    builtin_rules: Vec<FingerprintRule>,
    /// Boxed: the table keeps 16 bytes a slot, not a whole record, so its
    /// unused slots (a hash table is up to half empty) cost little.
    devices: HashMap<MacAddr, Box<Device>>,
    /// (deadline, mac) of every device that has one.
    timers: BTreeSet<(Timestamp, MacAddr)>,
    /// (departure, mac) of every device that left: eviction order.
    gone: BTreeSet<(Timestamp, MacAddr)>,
    pub untracked_sightings: u64,
    pub evicted_devices: u64,
    pub rate_limited: u64,
    /// New devices that may still be taken in, and as of when (a token
    /// bucket: `new_per_minute` at most, refilled evenly).
    new_budget: f64,
    new_budget_at: Option<Timestamp>,
}

fn is_leaving(kind: &SightingKind) -> bool {
    match kind {
        SightingKind::DhcpRelease { .. } | SightingKind::Disassociated => true,
        SightingKind::DhcpClient(d) => matches!(
            d.message_type,
            DhcpMessageType::Release | DhcpMessageType::Decline
        ),
        _ => false,
    }
}

impl Tracker {
    pub fn new(cfg: TrackerConfig, tz: TimeZone, user_rules: Vec<FingerprintRule>) -> Self {
        Tracker {
            cfg,
            tz,
            user_rules,
            builtin_rules: fingerprint::builtin_rules(),
            devices: HashMap::new(),
            timers: BTreeSet::new(),
            gone: BTreeSet::new(),
            untracked_sightings: 0,
            evicted_devices: 0,
            rate_limited: 0,
            new_budget: f64::from(cfg.new_per_minute),
            new_budget_at: None,
        }
    }

    /// Takes one new device from the budget, if there is one left.
    fn take_new_budget(&mut self, now: Timestamp) -> bool {
        let cap = f64::from(self.cfg.new_per_minute);
        if let Some(at) = self.new_budget_at {
            // A clock that steps back refills nothing.
            let elapsed = at.until(now).as_secs_f64();
            self.new_budget = (self.new_budget + elapsed * cap / 60.0).min(cap);
        }
        self.new_budget_at = Some(now);
        if self.new_budget >= 1.0 {
            self.new_budget -= 1.0;
            true
        } else {
            false
        }
    }

    /// When a quiet device is probed: after `probe_after`, or, while the
    /// access point holds it, after [`ASSOCIATED_HOLD`] (its leave comes
    /// from the access point; the probe only catches a lost one).
    fn probe_due(&self, d: &Device) -> Timestamp {
        if d.associated {
            d.last_seen.plus(ASSOCIATED_HOLD)
        } else {
            d.last_seen.plus(self.cfg.probe_after)
        }
    }

    fn leave_due(&self, d: &Device) -> Timestamp {
        let window = self.cfg.leave_after.saturating_sub(self.cfg.probe_after);
        let due = self.probe_due(d).plus(window);
        d.grace_until.map_or(due, |g| due.max(g))
    }

    fn deadline(&self, d: &Device) -> Option<Timestamp> {
        match d.state {
            DeviceState::Present => Some(self.probe_due(d).min(self.leave_due(d))),
            DeviceState::Silent | DeviceState::Probed => Some(self.leave_due(d)),
            DeviceState::Left => None,
        }
    }

    fn unindex(&mut self, mac: MacAddr) {
        if let Some(d) = self.devices.get(&mac) {
            if let Some(t) = self.deadline(d) {
                self.timers.remove(&(t, mac));
            }
            if d.state == DeviceState::Left {
                self.gone.remove(&(d.last_seen, mac));
            }
        }
    }

    fn index(&mut self, mac: MacAddr) {
        if let Some(d) = self.devices.get(&mac) {
            if let Some(t) = self.deadline(d) {
                self.timers.insert((t, mac));
            }
            if d.state == DeviceState::Left {
                self.gone.insert((d.last_seen, mac));
            }
        }
    }

    /// Changes a device, keeping the indexes right.
    fn update<R>(&mut self, mac: MacAddr, f: impl FnOnce(&mut Device, &Self) -> R) -> Option<R> {
        self.unindex(mac);
        let mut d = self.devices.remove(&mac)?;
        let r = f(&mut d, self);
        self.devices.insert(mac, d);
        self.index(mac);
        Some(r)
    }

    /// Makes room for one more device: forgets the one that left longest
    /// ago. When every known device is still present, nothing is
    /// forgotten and the newcomer is not tracked (see `Presence`).
    fn make_room(&mut self) -> Result<Option<MacAddr>, ()> {
        if self.devices.len() < self.cfg.max_devices {
            return Ok(None);
        }
        let (_, mac) = self.gone.pop_first().ok_or(())?;
        self.devices.remove(&mac);
        self.evicted_devices += 1;
        Ok(Some(mac))
    }

    pub fn observe(&mut self, s: &Sighting, now: Timestamp) -> Observed {
        let mut seen = Observed::default();
        if !s.mac.is_unicast_client() {
            return seen;
        }
        let leaving = is_leaving(&s.kind);
        if !self.devices.contains_key(&s.mac) {
            if leaving {
                return seen;
            }
            if !self.take_new_budget(now) {
                self.untracked_sightings += 1;
                self.rate_limited += 1;
                return seen;
            }
            match self.make_room() {
                Ok(forgotten) => seen.forgotten = forgotten,
                Err(()) => {
                    self.untracked_sightings += 1;
                    return seen;
                }
            }
            self.devices
                .insert(s.mac, Box::new(Device::new(s.mac, now)));
            self.index(s.mac);
        }
        self.update(s.mac, |d, t| {
            let now = now.max(d.last_seen);
            seen.changed = d.learn(&s.kind, &t.user_rules, &t.builtin_rules);
            let was_present = d.is_present();
            if was_present {
                d.add_presence(d.last_seen, now, &t.tz);
            }
            if leaving {
                if was_present {
                    d.last_seen = now;
                    d.grace_until = None;
                    d.set_state(DeviceState::Left);
                    seen.left = Some(now);
                    seen.changed = true;
                }
            } else {
                d.last_seen = now;
                d.grace_until = None;
                d.set_state(DeviceState::Present);
                if !was_present {
                    seen.joined = true;
                    seen.changed = true;
                }
            }
            seen.present = d.is_present();
        });
        seen
    }

    /// When the earliest device timer is due.
    pub fn next_due(&self) -> Option<Timestamp> {
        self.timers.first().map(|(t, _)| *t)
    }

    /// Fires the earliest device timer if it is due at `now`.
    pub fn fire(&mut self, now: Timestamp) -> Option<(MacAddr, Fired)> {
        let &(due, mac) = self.timers.first()?;
        if due > now {
            return None;
        }
        let fired = self.update(mac, |d, t| {
            if t.leave_due(d) <= now {
                d.grace_until = None;
                d.set_state(DeviceState::Left);
                return Fired::Left(d.last_seen);
            }
            match (d.state, d.probe_address()) {
                (DeviceState::Present, Some(ip)) => {
                    d.set_state(DeviceState::Probed);
                    Fired::Probe(ip)
                }
                _ => {
                    d.set_state(DeviceState::Silent);
                    Fired::Silent
                }
            }
        })?;
        Some((mac, fired))
    }

    /// Takes back saved devices: still-present ones whose probe time has
    /// passed are given one probe and a fresh answer window, because the
    /// box being down says nothing about whether they left. When more
    /// than `max_devices` come back, those that left longest ago go.
    pub fn restore(&mut self, saved: Vec<Device>, now: Timestamp) {
        self.devices.clear();
        self.timers.clear();
        self.gone.clear();
        let window = self.cfg.leave_after.saturating_sub(self.cfg.probe_after);
        for mut d in saved {
            if !d.mac.is_unicast_client() {
                continue;
            }
            d.set_state(d.state);
            d.mac_randomized = d.mac.is_locally_administered();
            if d.is_present() && d.last_seen.plus(self.cfg.probe_after) <= now {
                d.set_state(DeviceState::Present);
                d.grace_until = Some(now.plus(window));
            }
            let mac = d.mac;
            self.unindex(mac);
            self.devices.insert(mac, Box::new(d));
            self.index(mac);
        }
        while self.devices.len() > self.cfg.max_devices {
            let Some((_, mac)) = self.gone.pop_first() else {
                break;
            };
            self.devices.remove(&mac);
        }
    }

    /// Notes that a visit of `mac` started at `at` (no effect on timers).
    pub fn note_visit_start(&mut self, mac: MacAddr, at: Timestamp) {
        if let Some(d) = self.devices.get_mut(&mac) {
            d.visit_started(at);
        }
    }

    /// Forgets that `mac` was ever seen joining (for a saved device whose
    /// visit was lost): it is `Left` as of its last sighting, so its next
    /// sighting is a join.
    pub fn mark_left(&mut self, mac: MacAddr) {
        self.update(mac, |d, _| {
            d.grace_until = None;
            d.set_state(DeviceState::Left);
        });
    }

    /// Sets the member `mac` is bound to; whether that changed anything.
    pub fn set_member(&mut self, mac: MacAddr, member: Option<&str>) -> bool {
        match self.devices.get_mut(&mac) {
            Some(d) if d.member_id.as_deref() != member => {
                d.member_id = member.map(str::to_owned);
                true
            }
            _ => false,
        }
    }

    /// Clears `member_id` from every device bound to it; their MACs.
    pub fn forget_member(&mut self, member_id: &str) -> Vec<MacAddr> {
        let mut macs = Vec::new();
        for d in self.devices.values_mut() {
            if d.member_id.as_deref() == Some(member_id) {
                d.member_id = None;
                macs.push(d.mac);
            }
        }
        macs.sort();
        macs
    }

    /// Forgets devices that left at or before `cutoff` and belong to no
    /// member, unless `keep` says otherwise. Returns their MACs, those
    /// that left longest ago first.
    pub fn forget_unbound(
        &mut self,
        cutoff: Timestamp,
        keep: impl Fn(MacAddr) -> bool,
    ) -> Vec<MacAddr> {
        let old: Vec<(Timestamp, MacAddr)> = self
            .gone
            .iter()
            .take_while(|(t, _)| *t <= cutoff)
            .filter(|(_, mac)| {
                self.devices.get(mac).is_some_and(|d| d.member_id.is_none()) && !keep(*mac)
            })
            .copied()
            .collect();
        for key in &old {
            self.gone.remove(key);
            self.devices.remove(&key.1);
        }
        old.into_iter().map(|(_, mac)| mac).collect()
    }

    pub fn get(&self, mac: MacAddr) -> Option<&Device> {
        self.devices.get(&mac).map(|d| &**d)
    }

    pub fn devices(&self) -> impl Iterator<Item = &Device> {
        self.devices.values().map(|d| &**d)
    }
}
