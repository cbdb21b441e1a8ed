//! The presence shell: feeds sightings and timer ticks to the pure
//! `Presence` machine and carries out what it asks: events to the
//! [`EventSink`] (at once: that is what makes "a member just walked in"
//! fast), probes through a [`Prober`], device records into the store.
//!
//! Sightings come from the LAN capture (`net::feed`), the access point's
//! stations (`stations`), `ctl observe` and the demo's simulator.
//!
//! Returning members: every sighting asks `members` who the device belongs
//! to (in memory, O(1)). A DHCP client message from a remembered device
//! that is not signed in is authorised through the `Gate` first, before
//! the presence machine sees the frame, so the phone has the Internet
//! before its OS probes for a captive portal; the member then rides on
//! the device and its visit (`visit.started`'s `member_id`).
//!
//! Privacy: devices that belong to no member are forgotten once unseen
//! for `privacy.forget_unbound_after_days` (checked hourly).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::access::blocked::Blocklist;
use crate::access::{AuthMethod, Gate};
use crate::clock::Clock;
use crate::mac::MacAddr;
use crate::members::Members;
use crate::presence::{DhcpInfo, DhcpMessageType, Output, Presence, Sighting, SightingKind, Visit};
use crate::privacy::DeviceKey;
use crate::store::{self, Store, Tree};
use crate::time::Timestamp;
use crate::uplink::event::{Event, RecognisedBy};
use crate::uplink::sink::EventSink;
use crate::uplink::sync::SyncState;

/// The default of `privacy.forget_unbound_after_days`.
const FORGET_UNBOUND_AFTER: Duration = Duration::from_secs(30 * 86_400);

/// Sends the probe asking a silent device whether it is still there (ARP
/// for IPv4, neighbour solicitation for IPv6): the capture socket.
pub trait Prober: Send + Sync {
    /// Returns whether a probe went out.
    fn probe(&self, mac: MacAddr, ip: IpAddr) -> bool;
}

/// Events kept for a retry while the outbox cannot store them.
const MAX_PENDING_EVENTS: usize = 10_000;

/// Frame counters for `ctl status` and `/metrics`.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct FrameStats {
    pub frames: u64,
    pub sightings: u64,
    pub ignored: u64,
    pub malformed: BTreeMap<&'static str, u64>,
    pub probes_sent: u64,
    pub kernel_drops: u64,
    /// Members signed in without the portal (DHCP packet or Wi-Fi key).
    pub members_authorized: u64,
    /// ... and those the gate could not sign in.
    pub member_auth_errors: u64,
}

pub struct PresenceShell {
    machine: Mutex<Presence>,
    dirty: Mutex<HashSet<MacAddr>>,
    /// What the last save wrote (`persist`).
    written: Mutex<persist::Written>,
    stats: Mutex<FrameStats>,
    store: Arc<dyn Store>,
    events: Arc<dyn EventSink>,
    /// Maps MACs to the `device_id`s HQ's sync document names.
    key: DeviceKey,
    /// Probes silent devices; `None` (no capture): they leave unasked.
    prober: Option<Arc<dyn Prober>>,
    /// Who devices belong to, and the gate that signs members in.
    members: Option<(Arc<Members>, Arc<Gate>)>,
    /// `privacy.forget_unbound_after_days`.
    forget_unbound_after: Duration,
    /// HQ's sync document: its staff devices leave footfall, its blocked
    /// ones are not let in as returning members.
    sync: Option<Arc<SyncState>>,
    /// Devices the manager or HQ blocked.
    blocklist: Option<Arc<Blocklist>>,
    /// Stations on the members' Wi-Fi now, with the member whose key
    /// they joined with (see `stations`).
    by_key: Mutex<HashMap<MacAddr, String>>,
    /// Where "now" comes from (the wall clock but in the demo).
    clock: Clock,
}

impl PresenceShell {
    pub fn new(
        machine: Presence,
        store: Arc<dyn Store>,
        events: Arc<dyn EventSink>,
        key: DeviceKey,
    ) -> Self {
        PresenceShell::new_with_clock(machine, store, events, key, Clock::wall())
    }

    /// [`PresenceShell::new`] reading the time from `clock` (the demo's
    /// simulated one).
    pub fn new_with_clock(
        mut machine: Presence,
        store: Arc<dyn Store>,
        events: Arc<dyn EventSink>,
        key: DeviceKey,
        clock: Clock,
    ) -> Self {
        let (saved, written) = persist::load(store.as_ref());
        if let Some(saved) = saved {
            machine.restore(saved, clock.now());
        }
        PresenceShell {
            machine: Mutex::new(machine),
            dirty: Mutex::new(HashSet::new()),
            written: Mutex::new(written),
            stats: Mutex::new(FrameStats::default()),
            store,
            events,
            key,
            prober: None,
            members: None,
            forget_unbound_after: FORGET_UNBOUND_AFTER,
            sync: None,
            blocklist: None,
            by_key: Mutex::new(HashMap::new()),
            clock,
        }
    }

    /// Blocked devices (manager or HQ) are not signed in as returning
    /// members.
    pub fn with_blocklist(mut self, blocklist: Arc<Blocklist>) -> Self {
        self.blocklist = Some(blocklist);
        self
    }

    /// Probes silent devices before declaring them gone.
    pub fn with_prober(mut self, prober: Arc<dyn Prober>) -> Self {
        self.prober = Some(prober);
        self
    }

    /// Blocked by the manager or by HQ: never let in automatically.
    fn is_blocked(&self, mac: MacAddr) -> bool {
        self.blocklist.as_ref().is_some_and(|b| b.is_blocked(mac))
    }

    /// Classifies the devices HQ's sync document lists as staff (checked
    /// every minute, so a device new to the box is found within one).
    pub fn with_sync(mut self, sync: Arc<SyncState>) -> Self {
        self.sync = Some(sync);
        self
    }

    /// Maps HQ's staff device ids to the MACs the box knows (one keyed
    /// hash per known device) and hands the set to the machine.
    pub fn refresh_hq_staff(&self) {
        let Some(sync) = &self.sync else { return };
        let macs: Vec<MacAddr> = self.machine().devices().map(|d| d.mac).collect();
        let staff: HashSet<MacAddr> = macs
            .into_iter()
            .filter(|m| sync.is_staff(&self.key.device_id(*m)))
            .collect();
        let outputs = self.machine().set_hq_staff(staff, self.clock.now());
        if !outputs.is_empty() {
            self.carry_out(outputs, &mut Vec::new());
        }
    }

    /// Recognises members' devices and signs returning ones in through
    /// `gate` (see the module docs).
    pub fn with_members(mut self, members: Arc<Members>, gate: Arc<Gate>) -> Self {
        self.members = Some((members, gate));
        self
    }

    /// Forgets devices of no member unseen this long (default 30 days).
    pub fn with_forget_unbound_after(mut self, after: Duration) -> Self {
        self.forget_unbound_after = after;
        self
    }

    /// The clock presence reads.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn machine(&self) -> MutexGuard<'_, Presence> {
        self.machine.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn stats(&self) -> FrameStats {
        self.stats.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Updates the counters (the capture counts frames here).
    pub fn count(&self, f: impl FnOnce(&mut FrameStats)) {
        f(&mut self.stats.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// One sighting; its events are added to `events` (stored by
    /// [`store_events`](Self::store_events), so a burst shares one flush).
    pub fn observe(&self, sighting: &Sighting, events: &mut Vec<Event>) {
        let now = self.clock.now();
        let Some((members, gate)) = &self.members else {
            let outputs = self.machine().observe(sighting, now);
            return self.carry_out(outputs, events);
        };
        let seen = std::time::Instant::now();
        // A station that joined with a member's Wi-Fi key is that member's
        // (signed in at association); otherwise a remembered MAC may be.
        let by_key = self.member_by_key(sighting.mac);
        let member = by_key
            .clone()
            .or_else(|| members.recognise(sighting.mac, now));
        if let (Some(id), SightingKind::DhcpClient(dhcp)) = (&member, &sighting.kind) {
            // A key holder whose session ran out is signed in again by key.
            let how = by_key.map_or(AuthMethod::ReturningDevice, |_| AuthMethod::WifiKey);
            self.admit(gate, (sighting.mac, how), dhcp, id, seen);
        }
        let outputs = self
            .machine()
            .observe_member(sighting, member.as_deref(), now);
        self.carry_out(outputs, events);
    }

    /// Signs in a returning member's device from its DHCP message, unless
    /// it is signed in already or is giving its lease back. The gate
    /// flushes to disk before it opens the firewall; the runtime is told
    /// this thread blocks meanwhile.
    fn admit(
        &self,
        gate: &Gate,
        (mac, how): (MacAddr, AuthMethod),
        dhcp: &DhcpInfo,
        member_id: &str,
        seen: std::time::Instant,
    ) {
        if !matches!(
            dhcp.message_type,
            DhcpMessageType::Discover | DhcpMessageType::Request | DhcpMessageType::Inform
        ) {
            return;
        }
        let known = gate.client(mac);
        if known.as_ref().is_some_and(|c| c.is_authorized()) {
            return;
        }
        if self.is_blocked(mac) {
            tracing::debug!(member_id, "a blocked device of a member is not let in");
            return;
        }
        // A DISCOVER's requested address may be from another network.
        let ip = match dhcp.message_type {
            DhcpMessageType::Discover => None,
            _ => dhcp.requested_ip.map(IpAddr::V4),
        }
        .or_else(|| known.and_then(|c| c.ip));
        let id = Some(member_id.to_string());
        let result = tokio::task::block_in_place(|| gate.authorize(mac, ip, how, id));
        match result {
            Ok(_) => {
                self.count(|s| s.members_authorized += 1);
                // From the DHCP packet's sighting to the firewall letting
                // the device through (bench/members.sh reads this).
                let us = seen.elapsed().as_micros() as u64;
                tracing::info!(member_id, us, "returning member authorised");
            }
            Err(e) => {
                self.count(|s| s.member_auth_errors += 1);
                tracing::warn!(member_id, "could not sign in a returning member: {e}");
            }
        }
    }

    /// Erasure: removes `member_id` from every device and visit and writes
    /// that at once. Returns how many devices carried it.
    pub fn forget_member(&self, member_id: &str) -> usize {
        self.forget_key_stations(member_id);
        let outputs = self.machine().forget_member(member_id);
        let n = outputs.len();
        self.carry_out(outputs, &mut Vec::new());
        self.persist_all();
        n
    }

    /// Marks a device as staff or not (the dashboard), from now on: it
    /// leaves (or rejoins) footfall at once. The mark is in the core
    /// snapshot, which is written at once.
    pub fn set_staff(&self, mac: MacAddr, staff: bool) {
        let outputs = self.machine().set_staff(mac, staff, self.clock.now());
        self.carry_out(outputs, &mut Vec::new());
        self.persist_core();
    }

    /// Devices whose binding ended (expired): they belong to nobody now.
    pub fn unbind(&self, macs: &[MacAddr]) {
        let outputs: Vec<Output> = {
            let mut m = self.machine();
            macs.iter()
                .flat_map(|mac| m.set_member(*mac, None))
                .collect()
        };
        self.carry_out(outputs, &mut Vec::new());
    }

    /// Forgets devices of no member unseen for the privacy period; their
    /// records go at the next device write.
    pub fn forget_unbound(&self) -> usize {
        let outputs = self
            .machine()
            .forget_unbound(self.clock.now(), self.forget_unbound_after);
        let n = outputs.len();
        if n > 0 {
            tracing::info!(devices = n, "forgot devices unseen for the privacy period");
        }
        self.carry_out(outputs, &mut Vec::new());
        n
    }

    /// Members' housekeeping (see `Members::tick`); devices whose binding
    /// expired are no longer the member's.
    fn members_tick(&self) {
        if let Some((members, _)) = &self.members {
            let expired = members.tick(self.clock.now());
            self.unbind(&expired);
        }
    }

    fn members_persist(&self) {
        if let Some((members, _)) = &self.members {
            members.persist();
        }
    }

    /// Runs the machine's timers; returns its next deadline.
    pub fn tick(&self, events: &mut Vec<Event>) -> Option<Timestamp> {
        let mut m = self.machine();
        let outputs = m.tick(self.clock.now());
        let next = m.next_wakeup();
        drop(m);
        self.carry_out(outputs, events);
        next
    }

    /// The store's counts for HQ: today so far and who is in now. Counts
    /// only, no device ids; droppable first when the outbox is full.
    pub fn footfall_summary(&self, interval: Duration) -> Event {
        let view = self.machine().footfall(self.clock.now());
        let today = view.days.last();
        Event::FootfallSummary(serde_json::json!({
            "date": view.today.to_string(),
            "present_now": view.present_now,
            "interval_seconds": interval.as_secs(),
            "today": today,
        }))
    }

    /// Stores events durably, all in one flush.
    pub fn store_events(&self, events: &mut Vec<Event>) {
        if events.is_empty() {
            return;
        }
        let n = events.len();
        let now = self.clock.now();
        // The fsync blocks; let the runtime move other tasks elsewhere.
        let result = tokio::task::block_in_place(|| self.events.emit_all(events, now));
        match result {
            Ok(_) => events.clear(),
            // Kept for the next call (the next frame or tick): the machine
            // has moved on, so dropping them would lose the visits. Bounded,
            // so a dead disk cannot eat the memory.
            Err(e) if n < MAX_PENDING_EVENTS => {
                tracing::error!("could not store {n} visit events (will retry): {e}")
            }
            Err(e) => {
                tracing::error!("could not store {n} visit events; dropping them: {e}");
                events.clear();
            }
        }
    }

    fn carry_out(&self, outputs: Vec<Output>, events: &mut Vec<Event>) {
        for out in outputs {
            match out {
                Output::VisitStarted(v) => {
                    let by = self.recognised_by(&v);
                    events.push(visit_started(v, by));
                }
                Output::VisitEnded(v) => events.push(visit_ended(v)),
                Output::Probe { mac, ip } => {
                    if let Some(p) = &self.prober
                        && p.probe(mac, ip)
                    {
                        self.count(|s| s.probes_sent += 1);
                    }
                }
                Output::DeviceChanged(mac)
                | Output::DeviceForgotten(mac)
                | Output::Joined { mac }
                | Output::Left { mac, .. } => {
                    self.dirty
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(mac);
                }
            }
        }
    }

    /// Writes changed device records (each in its own store entry), in
    /// one batch.
    pub fn persist_devices(&self) {
        let dirty: Vec<MacAddr> = self
            .dirty
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .collect();
        if dirty.is_empty() {
            return;
        }
        let changes: Vec<store::Change> = {
            let m = self.machine();
            dirty
                .into_iter()
                .map(|mac| {
                    let record = m.device(mac).and_then(|d| serde_json::to_vec(d).ok());
                    (Tree::Devices, mac.octets().to_vec(), record)
                })
                .collect()
        };
        let bytes: usize = changes
            .iter()
            .map(|(_, _, v)| v.as_ref().map_or(6, Vec::len))
            .sum();
        match self.store.write_batch(changes) {
            Ok(()) => self.written().bytes += bytes as u64,
            Err(e) => tracing::warn!("could not save device records: {e}"),
        }
    }

    fn written(&self) -> std::sync::MutexGuard<'_, persist::Written> {
        self.written.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes what changed of visits, footfall and the rest of the
    /// machine's state (`persist`); `exact` also writes open visits whose
    /// only change is their last sighting (a clean stop).
    fn persist_core_with(&self, exact: bool) {
        let core = self.machine().snapshot_core();
        let mut written = self.written();
        if let Err(e) = persist::save(self.store.as_ref(), &core, &mut written, exact) {
            tracing::warn!("could not save presence state: {e}");
        }
    }

    pub fn persist_core(&self) {
        self.persist_core_with(false);
    }

    /// Bytes of presence records handed to the store since start (keys
    /// and values; the storage engine adds its own).
    pub fn persisted_bytes(&self) -> u64 {
        self.written().bytes
    }

    /// Everything, exactly, flushed (a clean stop, erasure).
    pub fn persist_all(&self) {
        self.persist_devices();
        self.persist_core_with(true);
        if let Err(e) = self.store.flush() {
            tracing::warn!("could not flush presence state: {e}");
        }
    }
}

/// `visit.started` for HQ, with how its member (if any) was recognised.
fn visit_started(v: Visit, recognised_by: Option<RecognisedBy>) -> Event {
    Event::VisitStarted {
        recognised_by,
        visit_id: v.visit_id,
        mac: v.mac,
        member_id: v.member_id,
        returning: v.returning,
        mac_randomized: v.mac_randomized,
        os_family: v.os_family,
    }
}

fn visit_ended(v: Visit) -> Event {
    Event::VisitEnded {
        visit_id: v.visit_id,
        mac: v.mac,
        member_id: v.member_id,
        dwell_seconds: v.dwell_seconds,
        classification: v.classification.as_str(),
    }
}

mod persist;
mod stations;
mod timers;

pub use timers::timer_loop;

#[cfg(test)]
mod tests;
