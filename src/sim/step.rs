//! Running the simulation: real time to the simulated clock, and `step`,
//! which turns the plan into what the LAN would show (DHCP on arrival,
//! ARP while present, a release or silence on leaving) plus the portal
//! sign-ins, in order.

use std::net::IpAddr;
use std::time::Duration;

use rand::Rng;

use super::{DAY_SECS, OPEN_HOUR, SignIn, Sim, SimDevice};
use crate::mac::MacAddr;
use crate::presence::{DhcpMessageType, Sighting, SightingKind};

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

/// A device in the store now, and when it next speaks or leaves.
#[derive(Debug, Clone)]
pub(super) struct Present {
    device: usize,
    /// Absolute simulated seconds; `None`: stays all along.
    leave_at: Option<u64>,
    release: bool,
    next_arp: Duration,
}

impl Sim {
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
}
