//! `Device`: what the box knows about one MAC address, and how a sighting
//! updates it. The state machine that moves devices between states lives
//! in `tracker`; this file holds the record and its bookkeeping.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use super::local;
use super::sighting::{DhcpMessageType, SightingKind};
use crate::fingerprint::{self, DhcpTraits, FingerprintRule};
use crate::mac::MacAddr;
use crate::time::Timestamp;

/// Days of per-day presence kept per device (resident detection looks at
/// 7; the rest is for the dashboard).
pub const PRESENCE_DAYS: u32 = 14;
/// IPv6 addresses kept per device, newest first.
pub const MAX_IPV6: usize = 4;
/// Visit starts kept per device, newest first: enough for the "6+ visits
/// in 30 days" bucket, since the newest are the ones still in the window.
pub const MAX_VISIT_STARTS: usize = 8;
/// How far back visit starts count for visit frequency.
pub const FREQUENCY_WINDOW: Duration = Duration::from_secs(30 * 86_400);

/// Where a device is in its stay. A join is the move from `Left` (or from
/// not being known) to `Present`; it is reported, not kept as a state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceState {
    /// Seen within `probe_after`.
    Present,
    /// Silent past `probe_after` with no address to probe: waiting out
    /// `leave_after`.
    Silent,
    /// Silent past `probe_after`; one probe was sent and is unanswered.
    Probed,
    /// Gone: silent past `leave_after`, or it released its lease.
    Left,
}

/// How long a device was in the store on one local day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayPresence {
    pub date: Date,
    /// Time between sightings within stays, in milliseconds.
    pub ms: u64,
}

/// One device as the box knows it. Serialised for persistence and for
/// `ctl devices --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub mac: MacAddr,
    /// Its last known IPv4 address.
    pub ip: Option<Ipv4Addr>,
    /// Its IPv6 addresses, newest first (at most [`MAX_IPV6`]).
    #[serde(default)]
    pub ipv6: Vec<Ipv6Addr>,
    /// DHCP option 12.
    pub hostname: Option<String>,
    /// DHCP option 61 as colon-separated hex.
    pub client_id: Option<String>,
    /// DHCP option 60.
    pub vendor_class: Option<String>,
    /// DHCP option 55, in the client's order.
    #[serde(default)]
    pub param_request_list: Vec<u8>,
    /// A locally administered (private, randomised) address: it may be a
    /// different MAC next time, so returning-visitor counts undercount.
    pub mac_randomized: bool,
    /// The fingerprint's guess (`ios`, `android`, ... or `unknown`).
    pub os_family: String,
    /// Not `Left`. Kept next to `state` for `ctl devices --json`.
    pub present: bool,
    pub state: DeviceState,
    pub first_seen: Timestamp,
    /// The last sighting; for a device that left, its departure time.
    pub last_seen: Timestamp,
    /// The member the device is bound to, as `members` last said (set
    /// by the shell at each sighting); `None` for most devices. A device
    /// with no member is forgotten after `privacy.forget_unbound_after_days`.
    pub member_id: Option<String>,
    /// Presence per local day, oldest first, last [`PRESENCE_DAYS`] days.
    #[serde(default)]
    pub daily: Vec<DayPresence>,
    /// When its first visit started (decides `returning`).
    #[serde(default)]
    pub first_visit: Option<Timestamp>,
    /// Its latest visit starts, newest first (visit frequency).
    #[serde(default)]
    pub visit_starts: Vec<Timestamp>,
    /// After a restart, a device still present at the snapshot is given
    /// until here to answer a probe before it counts as gone: downtime
    /// of the box is not a departure of the device.
    #[serde(default)]
    pub grace_until: Option<Timestamp>,
    /// The access point says it is associated (hostapd): present until it
    /// disassociates, however quiet. Not saved: after a restart hostapd's
    /// station list says it again.
    #[serde(skip)]
    pub associated: bool,
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}

impl Device {
    pub(crate) fn new(mac: MacAddr, now: Timestamp) -> Self {
        Device {
            mac,
            ip: None,
            ipv6: Vec::new(),
            hostname: None,
            client_id: None,
            vendor_class: None,
            param_request_list: Vec::new(),
            mac_randomized: mac.is_locally_administered(),
            os_family: fingerprint::UNKNOWN.to_owned(),
            present: false,
            state: DeviceState::Left,
            first_seen: now,
            last_seen: now,
            member_id: None,
            daily: Vec::new(),
            first_visit: None,
            visit_starts: Vec::new(),
            grace_until: None,
            associated: false,
        }
    }

    /// The device as `ctl devices --json` prints it: its fields with
    /// timestamps in RFC 3339 (as for clients), without bookkeeping.
    pub fn to_ctl_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("first_seen".into(), self.first_seen.rfc3339().into());
            o.insert("last_seen".into(), self.last_seen.rfc3339().into());
            o.insert(
                "first_visit".into(),
                self.first_visit.map(Timestamp::rfc3339).into(),
            );
            o.remove("visit_starts");
            o.remove("grace_until");
        }
        v
    }

    pub fn is_present(&self) -> bool {
        self.state != DeviceState::Left
    }

    pub(crate) fn set_state(&mut self, state: DeviceState) {
        self.state = state;
        self.present = state != DeviceState::Left;
    }

    /// Where a probe should go: the last IPv4, else the newest IPv6.
    pub fn probe_address(&self) -> Option<IpAddr> {
        self.ip
            .map(IpAddr::V4)
            .or_else(|| self.ipv6.first().copied().map(IpAddr::V6))
    }

    /// Takes in what a sighting says about the device (addresses, DHCP
    /// traits). Returns whether anything worth persisting changed.
    pub(crate) fn learn(
        &mut self,
        kind: &SightingKind,
        user: &[FingerprintRule],
        builtin: &[FingerprintRule],
    ) -> bool {
        let mut changed = false;
        match kind {
            SightingKind::DhcpClient(d) => {
                // A DISCOVER's requested address may be from another
                // network; only a REQUEST or INFORM says what it uses.
                if matches!(
                    d.message_type,
                    DhcpMessageType::Request | DhcpMessageType::Inform
                ) {
                    changed |= self.set_v4(d.requested_ip);
                }
                changed |= replace(&mut self.hostname, d.hostname.clone());
                changed |= replace(&mut self.client_id, d.client_id.as_deref().map(hex));
                changed |= replace(&mut self.vendor_class, d.vendor_class.clone());
                if !d.param_request_list.is_empty()
                    && self.param_request_list != d.param_request_list
                {
                    self.param_request_list.clone_from(&d.param_request_list);
                    changed = true;
                }
                if changed {
                    let family = fingerprint::os_family(
                        user,
                        builtin,
                        &DhcpTraits {
                            prl: &self.param_request_list,
                            vendor_class: self.vendor_class.as_deref(),
                            hostname: self.hostname.as_deref(),
                        },
                    );
                    if self.os_family != family {
                        self.os_family = family.to_owned();
                    }
                }
            }
            SightingKind::DhcpAck { ip } => changed |= self.set_v4(Some(*ip)),
            SightingKind::Arp { ip } => changed |= self.set_v4(*ip),
            SightingKind::Nd { ip: Some(ip) } if !ip.is_unspecified() && !ip.is_multicast() => {
                if self.ipv6.first() != Some(ip) {
                    self.ipv6.retain(|a| a != ip);
                    self.ipv6.insert(0, *ip);
                    self.ipv6.truncate(MAX_IPV6);
                    changed = true;
                }
            }
            SightingKind::Nd { .. } | SightingKind::Dhcpv6 | SightingKind::DhcpRelease { .. } => {}
            SightingKind::Associated => self.associated = true,
            SightingKind::Disassociated => self.associated = false,
        }
        changed
    }

    fn set_v4(&mut self, ip: Option<Ipv4Addr>) -> bool {
        match ip.filter(|ip| !ip.is_unspecified() && !ip.is_broadcast()) {
            Some(ip) if self.ip != Some(ip) => {
                self.ip = Some(ip);
                true
            }
            _ => false,
        }
    }

    /// Counts `[from, to)` as time in the store, on the local days it fell.
    pub(crate) fn add_presence(&mut self, from: Timestamp, to: Timestamp, tz: &TimeZone) {
        for (date, d) in local::split_by_day(from, to, tz, PRESENCE_DAYS) {
            let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
            match self.daily.binary_search_by_key(&date, |p| p.date) {
                Ok(i) => self.daily[i].ms = self.daily[i].ms.saturating_add(ms),
                Err(i) => self.daily.insert(i, DayPresence { date, ms }),
            }
        }
        let today = local::local_date(to, tz);
        let oldest = local::days_before(today, i64::from(PRESENCE_DAYS) - 1);
        self.daily.retain(|p| p.date >= oldest);
    }

    /// On how many of the `days` local days up to `today` (inclusive) it
    /// was in the store for more than `min`.
    pub fn long_days(&self, today: Date, days: u32, min: Duration) -> u32 {
        let oldest = local::days_before(today, i64::from(days) - 1);
        let min = u64::try_from(min.as_millis()).unwrap_or(u64::MAX);
        let n = self
            .daily
            .iter()
            .filter(|p| p.date >= oldest && p.date <= today && p.ms > min)
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// Notes a visit that starts at `at`.
    pub(crate) fn visit_started(&mut self, at: Timestamp) {
        self.first_visit.get_or_insert(at);
        self.visit_starts.insert(0, at);
        self.visit_starts.truncate(MAX_VISIT_STARTS);
    }

    /// How many of its visits started in the 30 days up to `now`.
    pub fn visits_in_window(&self, now: Timestamp) -> usize {
        let window = i64::try_from(FREQUENCY_WINDOW.as_millis()).unwrap_or(i64::MAX);
        let since = Timestamp(now.0.saturating_sub(window));
        self.visit_starts.iter().filter(|t| **t > since).count()
    }
}

/// Sets `slot` to `new` when `new` says something; whether it changed.
fn replace(slot: &mut Option<String>, new: Option<String>) -> bool {
    match new {
        Some(v) if slot.as_deref() != Some(v.as_str()) => {
            *slot = Some(v);
            true
        }
        _ => false,
    }
}
