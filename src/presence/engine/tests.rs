//! Tests of the `Presence` facade, driven by a fake clock: every call
//! gets its `now`; nothing sleeps.

use std::net::{Ipv4Addr, Ipv6Addr};

use jiff::civil::{Date, date};

use super::*;
use crate::presence::device::DeviceState;
use crate::presence::footfall::{DayView, DwellBuckets};
use crate::presence::sighting::{DhcpInfo, DhcpMessageType, SightingKind};

mod classes;
mod footfall;
mod lifecycle;
mod members;
mod persistence;

const MIN: Duration = Duration::from_secs(60);

/// 2026-11-23T00:00:00+08:00, local midnight in the test store.
const T0: Timestamp = Timestamp(1_795_392_000_000 - 8 * 3_600_000);

/// `T0` plus `m` minutes.
fn at(m: u64) -> Timestamp {
    T0.plus(Duration::from_secs(m * 60))
}

/// `T0` plus `s` seconds.
fn at_s(s: u64) -> Timestamp {
    T0.plus(Duration::from_secs(s))
}

/// Local `day` days after the 23rd, at `h:m`.
fn local(day: u64, h: u64, m: u64) -> Timestamp {
    T0.plus(Duration::from_secs(day * 86_400 + h * 3600 + m * 60))
}

fn today() -> Date {
    date(2026, 11, 23)
}

fn plus8() -> TimeZone {
    TimeZone::fixed(jiff::tz::offset(8))
}

fn cfg() -> PresenceConfig {
    PresenceConfig {
        probe_after: MIN,
        leave_after: 3 * MIN,
        rejoin_gap: 5 * MIN,
        staff: Vec::new(),
        resident_min_daily: Duration::from_secs(6 * 3600),
        resident_min_days: 3,
        max_devices: 100,
        new_devices_per_minute: 600,
        timezone: plus8(),
        fingerprints: Vec::new(),
    }
}

fn presence() -> Presence {
    Presence::new(cfg(), 7)
}

/// A vendor (universally administered) MAC.
fn mac(n: u8) -> MacAddr {
    MacAddr([0x3c, 0x22, 0xfb, 0, 0, n])
}

fn v4(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, n)
}

fn arp(n: u8) -> Sighting {
    Sighting {
        mac: mac(n),
        kind: SightingKind::Arp { ip: Some(v4(n)) },
    }
}

/// A sighting that names no address.
fn bare(n: u8) -> Sighting {
    Sighting {
        mac: mac(n),
        kind: SightingKind::Dhcpv6,
    }
}

fn nd(n: u8) -> Sighting {
    Sighting {
        mac: mac(n),
        kind: SightingKind::Nd {
            ip: Some(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, u16::from(n))),
        },
    }
}

fn release(n: u8) -> Sighting {
    Sighting {
        mac: mac(n),
        kind: SightingKind::DhcpRelease { ip: Some(v4(n)) },
    }
}

fn dhcp(n: u8, t: DhcpMessageType, prl: &[u8], vendor: Option<&str>) -> Sighting {
    Sighting {
        mac: mac(n),
        kind: SightingKind::DhcpClient(DhcpInfo {
            message_type: t,
            requested_ip: Some(v4(n)),
            hostname: Some(format!("host-{n}")),
            client_id: Some(vec![1, 0x3c, 0x22, 0xfb, 0, 0, n]),
            vendor_class: vendor.map(str::to_owned),
            param_request_list: prl.to_vec(),
        }),
    }
}

/// Outputs in a compact form, for asserting their order.
fn tags(out: &[Output]) -> Vec<String> {
    out.iter()
        .map(|o| match o {
            Output::Joined { mac } => format!("joined {}", mac.0[5]),
            Output::Left { mac, reason } => format!("left {} {reason:?}", mac.0[5]),
            Output::Probe { mac, ip } => format!("probe {} {ip}", mac.0[5]),
            Output::VisitStarted(v) => format!("started {}", v.mac.0[5]),
            Output::VisitEnded(v) => format!("ended {}", v.mac.0[5]),
            Output::DeviceChanged(mac) => format!("changed {}", mac.0[5]),
            Output::DeviceForgotten(mac) => format!("forgot {}", mac.0[5]),
        })
        .collect()
}

fn started(out: &[Output]) -> Vec<Visit> {
    out.iter()
        .filter_map(|o| match o {
            Output::VisitStarted(v) => Some(v.clone()),
            _ => None,
        })
        .collect()
}

fn ended(out: &[Output]) -> Vec<Visit> {
    out.iter()
        .filter_map(|o| match o {
            Output::VisitEnded(v) => Some(v.clone()),
            _ => None,
        })
        .collect()
}

/// Keeps device `n` in view from `from` to `to` (a sighting every 30 s,
/// ticking before each as the shell would), returning all outputs.
fn stay(p: &mut Presence, n: u8, from: Timestamp, to: Timestamp) -> Vec<Output> {
    let mut out = Vec::new();
    let mut now = from;
    while now <= to {
        out.extend(p.tick(now));
        out.extend(p.observe(&arp(n), now));
        now = now.plus(Duration::from_secs(30));
    }
    out
}

/// Ticks at every wakeup up to and including `until`.
fn run_until(p: &mut Presence, until: Timestamp) -> Vec<Output> {
    let mut out = Vec::new();
    while let Some(t) = p.next_wakeup().filter(|t| *t <= until) {
        out.extend(p.tick(t));
    }
    out
}
