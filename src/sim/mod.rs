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
//! device. A present device sends ARP every `arp_every` (real time); a
//! leaving one gives its lease back or just goes silent.
//!
//! Speed: the daemon's timers (leave detection, sessions, HQ retries) run
//! on the real clock, so speed is not a faked clock: the *schedule* is
//! compressed. At speed N one real second is N simulated seconds: a
//! 12-hour day lasts 144 s at N = 300, and a 15-minute visit lasts 3 s.
//! What the daemon measures (dwell, arrivals per hour) is therefore in
//! real time: dwell is the simulated dwell divided by N.
//!
//! Deterministic: the same seed and the same sequence of `step` times give
//! the same shoppers and sightings.

pub mod demo;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::mac::MacAddr;
use crate::presence::{DhcpInfo, DhcpMessageType, Sighting, SightingKind};

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
/// The log-normal dwell: median and sigma of its logarithm.
const MEDIAN_DWELL: f64 = 15.0 * 60.0;
const DWELL_SIGMA: f64 = 0.6;
/// Where simulated phones get their addresses (a /16 of test-ish space).
const LAN_BASE: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 0);

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Os {
    Ios,
    Android,
    Windows,
    Macos,
}

impl Os {
    /// What the daemon's fingerprinting should call it.
    pub fn family(self) -> &'static str {
        match self {
            Os::Ios => "ios",
            Os::Android => "android",
            Os::Windows => "windows",
            Os::Macos => "macos",
        }
    }

    /// Option 55, as the OS's DHCP client sends it.
    fn param_request_list(self) -> &'static [u8] {
        match self {
            Os::Ios => &[1, 121, 3, 6, 15, 108, 114, 119, 252, 95, 44, 46],
            Os::Android => &[1, 3, 6, 15, 26, 28, 51, 58, 59, 43, 114, 108],
            Os::Windows => &[1, 3, 6, 15, 31, 33, 43, 44, 46, 47, 119, 121, 249, 252],
            Os::Macos => &[1, 121, 3, 6, 15, 119, 252, 95, 44, 46],
        }
    }

    /// Share of devices of this OS that use a randomised MAC.
    fn randomized_share(self) -> f64 {
        match self {
            Os::Ios => 0.92,
            Os::Android => 0.85,
            Os::Windows => 0.3,
            Os::Macos => 0.5,
        }
    }

    /// Vendor OUIs for devices that show their burnt-in address.
    fn ouis(self) -> &'static [[u8; 3]] {
        match self {
            Os::Ios | Os::Macos => &[[0xf0, 0x18, 0x98], [0x3c, 0x22, 0xfb], [0xa4, 0x83, 0xe7]],
            Os::Android => &[[0x8c, 0xf5, 0xa3], [0x64, 0x09, 0x80], [0x48, 0x2c, 0xa0]],
            Os::Windows => &[[0x3c, 0xa9, 0xf4], [0x00, 0x21, 0x6a]],
        }
    }
}

/// A simulated device: a phone (or laptop) and what its DHCP client says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimDevice {
    pub mac: MacAddr,
    pub ip: Ipv4Addr,
    pub os: Os,
    pub hostname: Option<String>,
    pub vendor_class: Option<String>,
    pub randomized: bool,
    /// Index into [`Sim::members`].
    pub member: Option<usize>,
    pub staff: bool,
    /// Visits begun so far.
    pub visits: u32,
}

impl SimDevice {
    fn dhcp(&self, message_type: DhcpMessageType, requested_ip: Option<Ipv4Addr>) -> Sighting {
        Sighting {
            mac: self.mac,
            kind: SightingKind::DhcpClient(DhcpInfo {
                message_type,
                requested_ip,
                hostname: self.hostname.clone(),
                client_id: Some([&[1u8][..], &self.mac.0[..]].concat()),
                vendor_class: self.vendor_class.clone(),
                param_request_list: self.os.param_request_list().to_vec(),
            }),
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

/// One visit of a day's plan.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedVisit {
    /// Index into [`Sim::devices`].
    pub device: usize,
    /// Simulated seconds after the day's opening.
    pub arrive: u64,
    /// Simulated seconds.
    pub dwell: u64,
    /// How the shopper signs in on the portal, if they do.
    pub sign_in: Option<SignIn>,
    /// Gives the lease back on leaving (else goes silent).
    pub release: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignIn {
    ClickThrough,
    /// Member-number sign-in; `remember`: the "remember this device"
    /// consent.
    MemberNumber {
        number: String,
        remember: bool,
    },
}

/// What the simulator asks its driver to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The capture saw this.
    Sight(Sighting),
    /// The shopper on `mac` signs in on the portal.
    SignIn {
        mac: MacAddr,
        ip: IpAddr,
        how: SignIn,
    },
}

#[derive(Debug, Clone)]
struct Present {
    device: usize,
    /// Absolute simulated seconds; `None`: stays all along.
    leave_at: Option<u64>,
    release: bool,
    next_arp: Duration,
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

    /// Devices in the store now (staff and the browser included).
    pub fn present(&self) -> impl Iterator<Item = &SimDevice> {
        self.present.iter().map(|p| &self.devices[p.device])
    }

    /// Simulated seconds after day 0's opening at this real time.
    pub fn sim_seconds(&self, elapsed: Duration) -> u64 {
        (elapsed.as_secs_f64() * self.cfg.speed) as u64
    }

    /// The simulated day and local time ("HH:MM") at this real time.
    pub fn clock(&self, elapsed: Duration) -> (u64, String) {
        let t = self.sim_seconds(elapsed);
        let in_day = t % DAY_SECS;
        let minutes = u64::from(OPEN_HOUR) * 60 + in_day / 60;
        (
            t / DAY_SECS,
            format!("{:02}:{:02}", minutes / 60, minutes % 60),
        )
    }

    /// What happened until `elapsed` (real time since the simulation
    /// started), in order. Call it with times that do not go back.
    pub fn step(&mut self, elapsed: Duration) -> Vec<Action> {
        let t = self.sim_seconds(elapsed);
        let mut out = Vec::new();
        if !self.started {
            self.started = true;
            let always: Vec<usize> = self
                .devices
                .iter()
                .enumerate()
                .filter(|(_, d)| d.staff || Some(d.mac) == self.cfg.browser.map(|b| b.0))
                .map(|(i, _)| i)
                .collect();
            for d in always {
                self.arrive(d, None, false, elapsed, &mut out);
            }
        }
        loop {
            while let Some(v) = self.plan.get(self.next) {
                let at = self.day * DAY_SECS + v.arrive;
                if at > t {
                    break;
                }
                let v = v.clone();
                self.next += 1;
                self.depart_until(at, &mut out);
                let leave = (at + v.dwell).min((self.day + 1) * DAY_SECS);
                self.arrive(v.device, Some(leave), v.release, elapsed, &mut out);
                if let Some(how) = v.sign_in {
                    let d = &self.devices[v.device];
                    out.push(Action::SignIn {
                        mac: d.mac,
                        ip: IpAddr::V4(d.ip),
                        how,
                    });
                }
            }
            if t < (self.day + 1) * DAY_SECS {
                break;
            }
            // Closing time: everyone who came today has gone.
            self.depart_until((self.day + 1) * DAY_SECS, &mut out);
            self.day += 1;
            self.plan = self.plan_day();
            self.next = 0;
        }
        self.depart_until(t, &mut out);
        self.chatter(elapsed, &mut out);
        out
    }

    fn arrive(
        &mut self,
        device: usize,
        leave_at: Option<u64>,
        release: bool,
        elapsed: Duration,
        out: &mut Vec<Action>,
    ) {
        let d = &mut self.devices[device];
        // A device back from an earlier visit asks for its old address.
        let again = d.visits > 0 || d.member.is_some();
        d.visits += 1;
        let ip = d.ip;
        let d = &self.devices[device];
        out.push(Action::Sight(
            d.dhcp(DhcpMessageType::Discover, again.then_some(ip)),
        ));
        out.push(Action::Sight(d.dhcp(DhcpMessageType::Request, Some(ip))));
        out.push(Action::Sight(Sighting {
            mac: d.mac,
            kind: SightingKind::DhcpAck { ip },
        }));
        out.push(Action::Sight(Sighting {
            mac: d.mac,
            kind: SightingKind::Arp { ip: Some(ip) },
        }));
        let next_arp = elapsed + self.jitter(0.3, 1.0);
        self.present.push(Present {
            device,
            leave_at,
            release,
            next_arp,
        });
    }

    /// Everyone due to leave by `t` (simulated), in order of leaving.
    fn depart_until(&mut self, t: u64, out: &mut Vec<Action>) {
        let mut leaving: Vec<Present> = Vec::new();
        self.present.retain(|p| match p.leave_at {
            Some(at) if at <= t => {
                leaving.push(p.clone());
                false
            }
            _ => true,
        });
        leaving.sort_by_key(|p| (p.leave_at, p.device));
        for p in leaving {
            let d = &self.devices[p.device];
            if p.release {
                out.push(Action::Sight(Sighting {
                    mac: d.mac,
                    kind: SightingKind::DhcpRelease { ip: Some(d.ip) },
                }));
            }
            if d.member.is_none() && !d.staff && d.visits == 1 {
                self.seen_before.push(p.device);
            }
        }
    }

    /// ARP from present devices that are due.
    fn chatter(&mut self, elapsed: Duration, out: &mut Vec<Action>) {
        for i in 0..self.present.len() {
            if self.present[i].next_arp > elapsed {
                continue;
            }
            let d = &self.devices[self.present[i].device];
            out.push(Action::Sight(Sighting {
                mac: d.mac,
                kind: SightingKind::Arp { ip: Some(d.ip) },
            }));
            let gap = self.jitter(0.8, 1.2);
            self.present[i].next_arp = elapsed + gap;
        }
    }

    /// `arp_every` times a factor in `lo..hi`.
    fn jitter(&mut self, lo: f64, hi: f64) -> Duration {
        self.cfg.arp_every.mul_f64(self.rng.gen_range(lo..hi))
    }

    fn random_os(&mut self) -> Os {
        // A mall in China: more Android than iOS, few laptops.
        match self.rng.gen_range(0..100) {
            0..50 => Os::Android,
            50..92 => Os::Ios,
            92..97 => Os::Windows,
            _ => Os::Macos,
        }
    }

    /// A new device of `os`; `randomized`: force the MAC kind.
    fn new_device(&mut self, os: Os, randomized: Option<bool>) -> usize {
        let randomized = randomized.unwrap_or_else(|| self.rng.gen_bool(os.randomized_share()));
        let mac = loop {
            let mut b: [u8; 6] = self.rng.r#gen();
            if randomized {
                b[0] = (b[0] & 0xfc) | 0x02;
            } else {
                let oui = os
                    .ouis()
                    .choose(&mut self.rng)
                    .copied()
                    .unwrap_or([0, 0x1b, 0x63]);
                b[..3].copy_from_slice(&oui);
            }
            let mac = MacAddr(b);
            if self.macs.insert(mac) {
                break mac;
            }
        };
        let n = self.devices.len() as u32;
        let ip = Ipv4Addr::from(u32::from(LAN_BASE) + 10 + n % 65_000);
        let (hostname, vendor_class) = self.dhcp_identity(os);
        self.devices.push(SimDevice {
            mac,
            ip,
            os,
            hostname,
            vendor_class,
            randomized,
            member: None,
            staff: false,
            visits: 0,
        });
        self.devices.len() - 1
    }

    /// Host name (option 12) and vendor class (option 60) as the OS sends
    /// them.
    fn dhcp_identity(&mut self, os: Os) -> (Option<String>, Option<String>) {
        const ANDROID: &[&str] = &[
            "Galaxy-S24",
            "Galaxy-A54",
            "HUAWEI-P60",
            "HONOR-90",
            "Xiaomi-14",
            "Redmi-Note-13",
            "OPPO-Reno11",
            "vivo-X100",
            "OnePlus-12",
        ];
        const NAMES: &[&str] = &["Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Anna", "Tom"];
        match os {
            Os::Ios => {
                let host = if self.rng.gen_bool(0.6) {
                    "iPhone".to_string()
                } else {
                    format!("{}s-iPhone", NAMES.choose(&mut self.rng).unwrap_or(&"My"))
                };
                (Some(host), None)
            }
            Os::Android => {
                let release = self.rng.gen_range(12..=15);
                let host = ANDROID.choose(&mut self.rng).map(|s| s.to_string());
                (host, Some(format!("android-dhcp-{release}")))
            }
            Os::Windows => {
                const ALNUM: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ0123456789";
                let tail: String = (0..7)
                    .map(|_| char::from(ALNUM[self.rng.gen_range(0..ALNUM.len())]))
                    .collect();
                let prefix = if self.rng.gen_bool(0.5) {
                    "DESKTOP"
                } else {
                    "LAPTOP"
                };
                (Some(format!("{prefix}-{tail}")), Some("MSFT 5.0".into()))
            }
            Os::Macos => {
                let host = if self.rng.gen_bool(0.5) {
                    "MacBook-Air"
                } else {
                    "MacBook-Pro"
                };
                (Some(host.into()), None)
            }
        }
    }

    /// A log-normal dwell in `MIN_DWELL..=MAX_DWELL` (simulated seconds).
    fn dwell(&mut self) -> u64 {
        // Box–Muller: one standard normal from two uniforms.
        let u1: f64 = self.rng.gen_range(f64::EPSILON..1.0);
        let u2: f64 = self.rng.r#gen();
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        let secs = MEDIAN_DWELL * (DWELL_SIGMA * z).exp();
        (secs as u64).clamp(MIN_DWELL, MAX_DWELL)
    }

    /// The current day's visits, in order of arrival.
    fn plan_day(&mut self) -> Vec<PlannedVisit> {
        let total: u32 = ARRIVAL_CURVE.iter().sum();
        let mut arrivals = Vec::new();
        for (hour, weight) in ARRIVAL_CURVE.iter().enumerate() {
            let expected =
                f64::from(self.cfg.visitors_per_day) * f64::from(*weight) / f64::from(total);
            let n = (expected * self.rng.gen_range(0.85..1.15)).round() as u64;
            let start = hour as u64 * 3600;
            // The last hour: no one comes in the closing minutes.
            let end = (start + 3600).min(DAY_SECS - MIN_DWELL);
            for _ in 0..n {
                arrivals.push(self.rng.gen_range(start..end));
            }
        }
        arrivals.sort_unstable();
        let mut members: Vec<usize> = (0..self.members.len()).collect();
        members.shuffle(&mut self.rng);
        let mut returning = self.seen_before.clone();
        returning.shuffle(&mut self.rng);
        let mut plan = Vec::with_capacity(arrivals.len());
        for arrive in arrivals {
            let dwell = self.dwell().min(DAY_SECS - arrive);
            let release = self.rng.gen_bool(self.cfg.release_share.clamp(0.0, 1.0));
            let roll: f64 = self.rng.r#gen();
            let (device, sign_in) = if roll < self.cfg.member_share
                && let Some(m) = members.pop()
            {
                let m = &self.members[m];
                let sign_in = (!m.remembered).then(|| SignIn::MemberNumber {
                    number: m.number.clone(),
                    remember: false,
                });
                (m.device, sign_in)
            } else {
                let back = self.rng.gen_bool(self.cfg.returning_share.clamp(0.0, 1.0));
                let device = match if back { returning.pop() } else { None } {
                    Some(d) => d,
                    None => {
                        let os = self.random_os();
                        self.new_device(os, None)
                    }
                };
                let click = self
                    .rng
                    .gen_bool(self.cfg.click_through_share.clamp(0.0, 1.0));
                (device, click.then_some(SignIn::ClickThrough))
            };
            plan.push(PlannedVisit {
                device,
                arrive,
                dwell,
                sign_in,
                release,
            });
        }
        plan
    }
}
