//! Tests of the simulated store: determinism, the shape of a day
//! (arrivals, dwell, members' share), realistic MACs and DHCP options,
//! who stays and who comes and goes, and the clock at speed.

use std::collections::HashSet;

use super::*;
use crate::fingerprint::{DhcpTraits, builtin_rules, os_family};
use crate::presence::{DhcpMessageType, Sighting, SightingKind};

fn sim(seed: u64) -> Sim {
    Sim::new(SimConfig {
        seed,
        speed: 600.0,
        ..SimConfig::default()
    })
}

/// Plans of `days` days (the first one and those after it).
fn plans(s: &mut Sim, days: usize) -> Vec<Vec<PlannedVisit>> {
    let mut out = vec![s.plan.clone()];
    for _ in 1..days {
        s.day += 1;
        let p = s.plan_day();
        // What `step` does at closing: today's new devices may come back.
        for v in &p {
            if s.devices[v.device].member.is_none() && s.devices[v.device].visits == 0 {
                s.devices[v.device].visits = 1;
                s.seen_before.push(v.device);
            }
        }
        s.plan = p.clone();
        out.push(p);
    }
    out
}

/// Steps `s` every 200 ms of real time until `until`.
fn run(s: &mut Sim, until: Duration) -> Vec<(Duration, Action)> {
    let mut out = Vec::new();
    let mut t = Duration::ZERO;
    while t <= until {
        out.extend(s.step(t).into_iter().map(|a| (t, a)));
        t += Duration::from_millis(200);
    }
    out
}

#[test]
fn the_same_seed_gives_the_same_store() {
    let (mut a, mut b, mut c) = (sim(7), sim(7), sim(8));
    assert_eq!(a.plan(), b.plan());
    assert_ne!(a.plan(), c.plan());
    let until = Duration::from_secs(100);
    let (ra, rb, rc) = (run(&mut a, until), run(&mut b, until), run(&mut c, until));
    assert!(ra.len() > 100, "{} actions", ra.len());
    assert_eq!(ra, rb);
    assert_ne!(ra, rc);
}

#[test]
fn arrivals_peak_at_lunch_and_in_the_evening() {
    let mut s = sim(1);
    let mut per_hour = [0u32; ARRIVAL_CURVE.len()];
    let days = plans(&mut s, 30);
    for v in days.iter().flatten() {
        per_hour[(v.arrive / 3600) as usize] += 1;
    }
    let total: u32 = per_hour.iter().sum();
    let daily = f64::from(total) / 30.0;
    assert!((270.0..330.0).contains(&daily), "{daily} visitors a day");
    // The busiest hour is 18:00; 12:00 is a peak of its own.
    let busiest = (0..per_hour.len()).max_by_key(|h| per_hour[*h]).unwrap();
    assert_eq!(busiest as u32 + OPEN_HOUR, 18, "{per_hour:?}");
    let lunch = (12 - OPEN_HOUR) as usize;
    assert!(per_hour[lunch] > per_hour[lunch - 1], "{per_hour:?}");
    assert!(per_hour[lunch] > per_hour[lunch + 2], "{per_hour:?}");
    // Quiet at opening and closing.
    assert!(per_hour[0] * 2 < per_hour[busiest], "{per_hour:?}");
    assert!(
        per_hour[per_hour.len() - 1] * 2 < per_hour[busiest],
        "{per_hour:?}"
    );
    // Every day's plan is in order of arrival.
    for day in &days {
        assert!(day.windows(2).all(|w| w[0].arrive <= w[1].arrive));
    }
}

#[test]
fn dwell_is_minutes_to_an_hour_and_ends_by_closing() {
    let mut s = sim(2);
    let mut dwells: Vec<u64> = Vec::new();
    for v in plans(&mut s, 10).iter().flatten() {
        assert!((MIN_DWELL..=MAX_DWELL).contains(&v.dwell), "{v:?}");
        assert!(v.arrive + v.dwell <= DAY_SECS, "{v:?}");
        dwells.push(v.dwell);
    }
    dwells.sort_unstable();
    let median = dwells[dwells.len() / 2];
    assert!((10 * 60..=20 * 60).contains(&median), "median {median} s");
    // Spread out, not one value.
    assert!(
        dwells[dwells.len() / 10] < 9 * 60,
        "{}",
        dwells[dwells.len() / 10]
    );
    assert!(dwells[dwells.len() * 9 / 10] > 25 * 60);
}

#[test]
fn members_make_their_share_of_visits() {
    let mut s = sim(3);
    let days = plans(&mut s, 20);
    let visits: Vec<&PlannedVisit> = days.iter().flatten().collect();
    let by_members: Vec<&&PlannedVisit> = visits
        .iter()
        .filter(|v| s.devices[v.device].member.is_some())
        .collect();
    let share = by_members.len() as f64 / visits.len() as f64;
    assert!((0.08..0.16).contains(&share), "member share {share}");
    let remembered = s.members().iter().filter(|m| m.remembered).count();
    assert_eq!(remembered, 30);
    for v in by_members {
        let m = &s.members()[s.devices[v.device].member.unwrap()];
        match &v.sign_in {
            None => assert!(m.remembered, "{v:?}"),
            Some(SignIn::MemberNumber { number, remember }) => {
                assert!(!m.remembered && !remember && *number == m.number)
            }
            Some(other) => panic!("a member signs in with {other:?}"),
        }
    }
    // Each member comes at most once a day; numbers are distinct.
    for day in &days {
        let mut seen = HashSet::new();
        assert!(day.iter().all(|v| seen.insert(v.device)));
    }
    let numbers: HashSet<&str> = s.members().iter().map(|m| m.number.as_str()).collect();
    assert_eq!(numbers.len(), s.members().len());
    // Some non-members come back on later days; some click through.
    let later: Vec<&PlannedVisit> = days[1..].iter().flatten().collect();
    let back = later
        .iter()
        .filter(|v| s.devices[v.device].member.is_none() && s.devices[v.device].visits > 0)
        .count();
    assert!(back > later.len() / 10, "{back} of {}", later.len());
    let clicks = visits
        .iter()
        .filter(|v| v.sign_in == Some(SignIn::ClickThrough))
        .count();
    assert!(clicks > visits.len() / 5, "{clicks}");
}

#[test]
fn macs_are_valid_unique_and_mostly_randomised() {
    let mut s = sim(4);
    plans(&mut s, 5);
    let devices = s.devices();
    assert!(devices.len() > 800, "{}", devices.len());
    let macs: HashSet<MacAddr> = devices.iter().map(|d| d.mac).collect();
    assert_eq!(macs.len(), devices.len());
    for d in devices {
        assert!(d.mac.is_unicast_client(), "{}", d.mac);
        assert_eq!(d.mac.is_locally_administered(), d.randomized, "{}", d.mac);
    }
    let shoppers: Vec<&SimDevice> = devices.iter().filter(|d| !d.staff).collect();
    let random = shoppers.iter().filter(|d| d.randomized).count();
    let share = random as f64 / shoppers.len() as f64;
    assert!((0.75..0.95).contains(&share), "randomised share {share}");
    let ips: HashSet<Ipv4Addr> = devices.iter().map(|d| d.ip).collect();
    assert_eq!(ips.len(), devices.len());
}

#[test]
fn dhcp_options_fingerprint_as_the_intended_os() {
    let mut s = sim(5);
    plans(&mut s, 2);
    let builtin = builtin_rules();
    let mut families = HashSet::new();
    for d in s.devices() {
        let Sighting {
            kind: SightingKind::DhcpClient(info),
            ..
        } = d.dhcp(DhcpMessageType::Discover, None)
        else {
            panic!("not DHCP");
        };
        let traits = DhcpTraits {
            prl: &info.param_request_list,
            vendor_class: info.vendor_class.as_deref(),
            hostname: info.hostname.as_deref(),
        };
        assert_eq!(os_family(&[], &builtin, &traits), d.os.family(), "{d:?}");
        match d.os {
            Os::Ios | Os::Macos => assert_eq!(info.vendor_class, None),
            Os::Android => assert!(info.vendor_class.unwrap().starts_with("android-dhcp-")),
            Os::Windows => assert_eq!(info.vendor_class.as_deref(), Some("MSFT 5.0")),
        }
        families.insert(d.os);
    }
    assert_eq!(families.len(), 4, "{families:?}");
}

#[test]
fn staff_and_the_browser_stay_all_day_and_everyone_else_comes_and_goes() {
    let browser = MacAddr([0x02, 0xde, 0x40, 0, 0, 1]);
    let mut s = Sim::new(SimConfig {
        seed: 6,
        speed: 600.0,
        browser: Some((browser, Ipv4Addr::LOCALHOST)),
        ..SimConfig::default()
    });
    let staff: HashSet<MacAddr> = s.staff_macs().into_iter().collect();
    assert_eq!(staff.len(), 2);
    let day = Duration::from_secs_f64(DAY_SECS as f64 / 600.0);
    let mut t = Duration::ZERO;
    let mut last_arp: std::collections::HashMap<MacAddr, Duration> = Default::default();
    let mut arrivals = 0;
    let mut releases = 0;
    let mut sign_ins = 0;
    let mut max_present = 0;
    while t <= day * 2 + Duration::from_secs(1) {
        for a in s.step(t) {
            match a {
                Action::Sight(Sighting {
                    mac,
                    kind: SightingKind::Arp { ip },
                }) => {
                    assert!(ip.is_some());
                    last_arp.insert(mac, t);
                }
                Action::Sight(Sighting {
                    mac,
                    kind: SightingKind::DhcpRelease { .. },
                }) => {
                    assert!(!staff.contains(&mac) && mac != browser);
                    releases += 1;
                }
                Action::Sight(Sighting {
                    mac,
                    kind: SightingKind::DhcpClient(d),
                }) if d.message_type == DhcpMessageType::Request => {
                    if !staff.contains(&mac) && mac != browser {
                        arrivals += 1;
                    }
                }
                Action::SignIn { .. } => sign_ins += 1,
                Action::Sight(_) => {}
            }
        }
        let present: Vec<MacAddr> = s.present().map(|d| d.mac).collect();
        for m in staff.iter().chain([&browser]) {
            assert!(present.contains(m), "{m} gone at {t:?}");
        }
        // Present devices keep talking.
        for m in &present {
            let quiet = t.saturating_sub(*last_arp.get(m).unwrap_or(&t));
            assert!(quiet <= Duration::from_secs(4), "{m} quiet {quiet:?}");
        }
        max_present = max_present.max(present.len());
        t += Duration::from_millis(200);
    }
    assert_eq!(s.day(), 2);
    assert!(
        (500..700).contains(&arrivals),
        "{arrivals} arrivals in two days"
    );
    assert!(
        releases > arrivals / 3 && releases < arrivals * 2 / 3,
        "{releases}"
    );
    assert!(sign_ins > arrivals / 5, "{sign_ins}");
    assert!(max_present > 10, "{max_present}");
    // Browser first: it is at 127.0.0.1.
    assert_eq!(s.devices()[0].ip, Ipv4Addr::LOCALHOST);
}

#[test]
fn the_clock_runs_at_speed() {
    let s = sim(1);
    assert_eq!(s.clock(Duration::ZERO), (0, "10:00".to_string()));
    // 600x: 6 s real is an hour; 72 s a whole day.
    assert_eq!(s.clock(Duration::from_secs(6)), (0, "11:00".to_string()));
    assert_eq!(s.clock(Duration::from_secs(72)), (1, "10:00".to_string()));
    let slow = Sim::new(SimConfig {
        speed: 0.0,
        ..SimConfig::default()
    });
    assert_eq!(slow.config().speed, 1.0);
}
