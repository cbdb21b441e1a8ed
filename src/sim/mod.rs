//! A simulated store: synthetic shoppers for `storegate demo` (and
//! benchmarks). Pure: [`Sim::step`] takes the real time elapsed since the
//! simulation started and returns what happened on the "LAN" meanwhile, as
//! the sightings the capture would have produced plus the portal sign-ins
//! shoppers did; it does no I/O and reads no clock. [`demo`] feeds them to
//! a real daemon.
//!
//! The day: the store is open `OPEN_HOUR`–`CLOSE_HOUR`; arrivals follow
//! [`ARRIVAL_CURVE`] (a lunch peak at 12–14, a bigger evening one at
//! 18–20); dwell times are log-normal around a quarter of an hour, between
//! [`MIN_DWELL`] and [`MAX_DWELL`], cut at closing time. Nights are
//! skipped: the next day opens when the last one closes.
//!
//! Who comes: phones with realistic DHCP options per OS family (iOS sends
//! no vendor class but its own parameter request list; Android sends
//! `android-dhcp-<release>`; Windows `MSFT 5.0`), most with randomised
//! (locally administered) MACs; a share of visits by members, most with a
//! remembered device (signed in by their DHCP packet) and the rest signing
//! in with their member number each time; some earlier visitors coming
//! back; a share of the rest clicking through the portal; staff devices
//! present all along; optionally the demo user's own browser as one more
//! device. A present device sends ARP every `arp_every` (of `step`'s
//! time); a leaving one gives its lease back or just goes silent.
//!
//! Time: `step` takes the time elapsed since day 0 opened, nights left
//! out; `speed` is how many simulated seconds one second of it is. The
//! demo runs the daemon on a simulated clock (`crate::clock`) and steps
//! the simulator with that clock's time at speed 1, so what the daemon
//! measures (dwell, arrivals per hour) is in the store's time; benchmarks
//! may step it with real time at a higher speed.
//!
//! Deterministic: the same seed and the same sequence of `step` times give
//! the same shoppers and sightings.
//!
//! Files: `phones` (OS families, their DHCP clients, new devices), `plan`
//! (a day's arrivals, dwell and sign-ins), `step` (the clock and what
//! happens on the LAN); this one holds the settings, the `Sim` itself and
//! the population it starts with.

pub mod demo;
mod phones;
mod plan;
pub mod recognition;
mod step;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::mac::MacAddr;

pub use phones::{Os, SimDevice};
pub use plan::{PlannedVisit, SignIn};
pub use step::Action;

use step::Present;

pub const OPEN_HOUR: u32 = 10;
pub const CLOSE_HOUR: u32 = 22;
/// Simulated seconds from opening to closing.
pub const DAY_SECS: u64 = (CLOSE_HOUR - OPEN_HOUR) as u64 * 3600;
/// Relative arrivals in each opening hour, 10:00 first.
pub const ARRIVAL_CURVE: [u32; (CLOSE_HOUR - OPEN_HOUR) as usize] =
    [3, 5, 9, 8, 5, 4, 5, 7, 10, 9, 6, 3];
/// Shortest and longest simulated visit (a visit may be cut at closing,
/// but arrivals come at least `MIN_DWELL` before it).
pub const MIN_DWELL: u64 = 3 * 60;
pub const MAX_DWELL: u64 = 60 * 60;

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub seed: u64,
    /// Simulated seconds per real second (at least 1).
    pub speed: f64,
    pub visitors_per_day: u32,
    /// Share of visits made by members.
    pub member_share: f64,
    /// How many members shop here.
    pub members: usize,
    /// Share of members whose device is remembered (the rest sign in with
    /// their member number at every visit).
    pub remembered_share: f64,
    /// Share of non-member visits by a device seen on an earlier day.
    pub returning_share: f64,
    /// Share of non-member visitors who click through the portal.
    pub click_through_share: f64,
    /// Share of leavers who give their lease back (the rest go silent).
    pub release_share: f64,
    /// Staff devices, present all along.
    pub staff: usize,
    /// Real time between two ARP packets of a present device (jittered).
    pub arp_every: Duration,
    /// The demo user's own browser: one more device, present all along.
    pub browser: Option<(MacAddr, Ipv4Addr)>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 1,
            speed: 120.0,
            visitors_per_day: 300,
            member_share: 0.12,
            members: 40,
            remembered_share: 0.75,
            returning_share: 0.25,
            click_through_share: 0.35,
            release_share: 0.5,
            staff: 2,
            arp_every: Duration::from_secs(3),
            browser: None,
        }
    }
}

/// A member of the store's programme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimMember {
    /// Their member number (8 digits).
    pub number: String,
    /// Index into [`Sim::devices`]: their phone.
    pub device: usize,
    /// Whether the phone is remembered (bind it before the simulation
    /// starts: see `demo`).
    pub remembered: bool,
}

/// The simulated store (see the module docs).
pub struct Sim {
    cfg: SimConfig,
    rng: StdRng,
    devices: Vec<SimDevice>,
    members: Vec<SimMember>,
    macs: HashSet<MacAddr>,
    /// Non-member devices seen on earlier days.
    seen_before: Vec<usize>,
    day: u64,
    plan: Vec<PlannedVisit>,
    next: usize,
    present: Vec<Present>,
    started: bool,
}

impl Sim {
    pub fn new(mut cfg: SimConfig) -> Sim {
        cfg.speed = if cfg.speed.is_finite() {
            cfg.speed.max(1.0)
        } else {
            1.0
        };
        let mut sim = Sim {
            rng: StdRng::seed_from_u64(cfg.seed),
            cfg,
            devices: Vec::new(),
            members: Vec::new(),
            macs: HashSet::new(),
            seen_before: Vec::new(),
            day: 0,
            plan: Vec::new(),
            next: 0,
            present: Vec::new(),
            started: false,
        };
        if let Some((mac, ip)) = sim.cfg.browser {
            sim.macs.insert(mac);
            sim.devices.push(SimDevice {
                mac,
                ip,
                os: Os::Macos,
                hostname: Some("this-browser".into()),
                vendor_class: None,
                randomized: mac.is_locally_administered(),
                member: None,
                staff: false,
                visits: 0,
            });
        }
        for i in 0..sim.cfg.staff {
            let os = if i % 2 == 0 { Os::Android } else { Os::Ios };
            let d = sim.new_device(os, Some(false));
            sim.devices[d].staff = true;
            sim.devices[d].hostname = Some(format!("staff-{}", i + 1));
        }
        let remembered = (sim.cfg.members as f64 * sim.cfg.remembered_share).round() as usize;
        for i in 0..sim.cfg.members {
            let os = sim.random_os();
            let d = sim.new_device(os, None);
            sim.devices[d].member = Some(i);
            sim.members.push(SimMember {
                number: format!("{}", 61_000_000 + i * 7919),
                device: d,
                remembered: i < remembered,
            });
        }
        sim.plan = sim.plan_day();
        sim
    }

    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// Every device so far (staff, the browser, members' and shoppers').
    pub fn devices(&self) -> &[SimDevice] {
        &self.devices
    }

    pub fn members(&self) -> &[SimMember] {
        &self.members
    }

    /// The staff devices' MACs (for `presence.staff_devices`).
    pub fn staff_macs(&self) -> Vec<MacAddr> {
        self.devices
            .iter()
            .filter(|d| d.staff)
            .map(|d| d.mac)
            .collect()
    }

    /// Today's plan (the current simulated day).
    pub fn plan(&self) -> &[PlannedVisit] {
        &self.plan
    }

    /// The current simulated day, from 0.
    pub fn day(&self) -> u64 {
        self.day
    }
}
