//! Joins, probes, leaves, rejoins, and the wakeups between them.

use super::*;

#[test]
fn a_first_sighting_is_a_join_that_starts_a_visit() {
    let mut p = presence();
    let out = p.observe(&arp(1), T0);
    assert_eq!(tags(&out), ["joined 1", "started 1", "changed 1"]);
    let v = &started(&out)[0];
    assert_eq!((v.started_at, v.ended_at, v.dwell_seconds), (T0, None, 0));
    assert_eq!(v.classification, Classification::Visitor);
    assert!(!v.returning && !v.mac_randomized);
    let id = uuid::Uuid::parse_str(&v.visit_id).unwrap();
    assert_eq!(id.get_version_num(), 7);
    let (secs, _) = id.get_timestamp().unwrap().to_unix();
    assert_eq!(i64::try_from(secs).unwrap() * 1000, T0.millis());
    // The same seed gives the same ids: tests and replays are exact.
    let again = presence().observe(&arp(1), T0);
    assert_eq!(started(&again)[0].visit_id, v.visit_id);

    let d = p.device(mac(1)).unwrap();
    assert!(d.present);
    assert_eq!(d.state, DeviceState::Present);
    assert_eq!(d.ip, Some(v4(1)));
    assert_eq!((d.first_seen, d.last_seen), (T0, T0));
    // A second sighting is no news.
    assert!(p.observe(&arp(1), at_s(20)).is_empty());
    assert_eq!(p.visits().next().unwrap().dwell_seconds, 20);
}

#[test]
fn silence_gets_exactly_one_probe_and_any_answer_keeps_it_present() {
    let mut p = presence();
    p.observe(&arp(1), T0);
    assert_eq!(p.next_wakeup(), Some(at(1)));
    assert!(p.tick(at_s(59)).is_empty());
    assert_eq!(tags(&p.tick(at(1))), ["probe 1 192.0.2.1"]);
    assert_eq!(p.device(mac(1)).unwrap().state, DeviceState::Probed);
    // No second probe while waiting for the answer.
    assert!(p.tick(at_s(150)).is_empty());
    assert_eq!(p.next_wakeup(), Some(at(3)));
    // Any sighting answers, here neighbour discovery.
    assert!(
        tags(&p.observe(&nd(1), at_s(170)))
            .iter()
            .all(|t| t.starts_with("changed"))
    );
    let d = p.device(mac(1)).unwrap();
    assert_eq!(d.state, DeviceState::Present);
    assert_eq!(p.next_wakeup(), Some(at_s(230)));
    assert!(p.tick(at(3)).is_empty(), "left although it answered");
    assert!(p.device(mac(1)).unwrap().present);
}

#[test]
fn unanswered_probe_leaves_at_leave_after_and_the_visit_ends_after_the_gap() {
    let mut p = presence();
    p.observe(&arp(1), T0);
    p.observe(&arp(1), at(2)); // the last sighting
    assert_eq!(tags(&p.tick(at(3))), ["probe 1 192.0.2.1"]);
    assert!(p.tick(at_s(299)).is_empty());
    assert_eq!(tags(&p.tick(at(5))), ["left 1 Silent", "changed 1"]);
    let d = p.device(mac(1)).unwrap();
    assert!(!d.present);
    assert_eq!(d.last_seen, at(2), "departure is the last sighting");
    // The visit ends once the gap has passed since the departure.
    assert_eq!(p.next_wakeup(), Some(at(7)));
    assert!(p.tick(at_s(419)).is_empty());
    let out = p.tick(at(7));
    let v = &ended(&out)[0];
    assert_eq!(tags(&out), ["ended 1"]);
    assert_eq!((v.started_at, v.ended_at), (T0, Some(at(2))));
    assert_eq!(v.dwell_seconds, 120);
    assert_eq!(p.next_wakeup(), None);
    assert!(p.tick(at(60)).is_empty());
}

#[test]
fn a_late_tick_fires_everything_due_in_deadline_order() {
    let mut p = presence();
    p.observe(&arp(1), T0);
    p.observe(&arp(2), at(1));
    // The shell slept through it all: no probe for the long-gone, just
    // the leaves (as of their last sightings) and the visit ends.
    let out = p.tick(at(30));
    assert_eq!(
        tags(&out),
        [
            "left 1 Silent",
            "changed 1",
            "left 2 Silent",
            "changed 2",
            "ended 1",
            "ended 2"
        ]
    );
    assert_eq!(ended(&out)[1].ended_at, Some(at(1)));
}

#[test]
fn rejoining_within_the_gap_continues_the_visit() {
    let mut p = presence();
    let mut out = p.observe(&arp(1), T0);
    out.extend(stay(&mut p, 1, at_s(30), at(10)));
    out.extend(run_until(&mut p, at(13)));
    assert!(tags(&out).contains(&"left 1 Silent".to_owned()));
    // Back 4 minutes after its departure (at minute 10): same visit.
    let back = p.observe(&arp(1), at(14));
    assert_eq!(tags(&back), ["joined 1", "changed 1"]);
    out.extend(back);
    out.extend(stay(&mut p, 1, at(14), at(30)));
    out.extend(run_until(&mut p, at(60)));
    assert_eq!(started(&out).len(), 1);
    let ends = ended(&out);
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0].visit_id, started(&out)[0].visit_id);
    assert_eq!((ends[0].started_at, ends[0].ended_at), (T0, Some(at(30))));
    assert_eq!(
        ends[0].dwell_seconds,
        30 * 60,
        "the whole dwell, gap included"
    );
}

#[test]
fn rejoining_after_the_gap_is_a_second_visit() {
    let mut p = presence();
    let mut out = p.observe(&arp(1), T0);
    out.extend(run_until(&mut p, at(10)));
    assert_eq!(ended(&out).len(), 1);
    out.extend(p.observe(&arp(1), at(10)));
    let s = started(&out);
    assert_eq!(s.len(), 2);
    assert_ne!(s[0].visit_id, s[1].visit_id);
    assert!(!s[1].returning, "same local day");

    // Back after the gap but before the shell ticked: the old visit ends
    // first, then the new one starts.
    let mut p = presence();
    p.observe(&arp(1), T0);
    p.tick(at(3)); // leaves, as of T0; its visit is due to end at 5
    let out = p.observe(&arp(1), at(6));
    assert_eq!(
        tags(&out),
        ["joined 1", "ended 1", "started 1", "changed 1"]
    );
    assert_eq!(ended(&out)[0].ended_at, Some(T0));
    assert!(p.tick(at(6)).is_empty());
}

#[test]
fn release_or_decline_leaves_at_once() {
    let mut p = presence();
    p.observe(&arp(1), T0);
    let out = p.observe(&release(1), at(2));
    assert_eq!(tags(&out), ["left 1 Released", "changed 1"]);
    assert!(!p.device(mac(1)).unwrap().present);
    assert_eq!(p.next_wakeup(), Some(at(7)));
    let out = p.tick(at(7));
    assert_eq!(ended(&out)[0].ended_at, Some(at(2)));
    // A release from a device that is gone or unknown does nothing.
    assert!(p.observe(&release(1), at(8)).is_empty());
    assert!(p.observe(&release(9), at(8)).is_empty());
    assert!(p.device(mac(9)).is_none());

    let mut p = presence();
    p.observe(&arp(2), T0);
    let out = p.observe(&dhcp(2, DhcpMessageType::Decline, &[], None), at(1));
    assert_eq!(tags(&out)[0], "left 2 Released");
}

#[test]
fn a_device_without_an_address_is_not_probed_but_still_leaves() {
    let mut p = presence();
    p.observe(&bare(1), T0);
    assert_eq!(p.device(mac(1)).unwrap().probe_address(), None);
    assert!(p.tick(at(1)).is_empty(), "nothing to probe");
    assert_eq!(p.device(mac(1)).unwrap().state, DeviceState::Silent);
    assert_eq!(p.next_wakeup(), Some(at(3)));
    assert_eq!(tags(&p.tick(at(3))), ["left 1 Silent", "changed 1"]);

    // With only an IPv6 address, the probe goes there.
    let mut p = presence();
    p.observe(&nd(2), T0);
    assert_eq!(tags(&p.tick(at(1))), ["probe 2 fe80::2"]);
}

#[test]
fn next_wakeup_is_exact() {
    let mut p = presence();
    assert_eq!(p.next_wakeup(), None);
    p.observe(&arp(1), T0);
    p.observe(&arp(2), at_s(10));
    assert_eq!(p.next_wakeup(), Some(at(1)));
    p.tick(at(1));
    assert_eq!(p.next_wakeup(), Some(at_s(70)), "device 2's probe");
    p.tick(at_s(70));
    assert_eq!(p.next_wakeup(), Some(at(3)), "device 1's leave");
    p.observe(&arp(1), at_s(100));
    assert_eq!(
        p.next_wakeup(),
        Some(at_s(160)),
        "device 1's new probe time"
    );
    p.observe(&release(1), at_s(110));
    assert_eq!(p.next_wakeup(), Some(at_s(190)), "device 2's leave");
    assert!(p.tick(at_s(189)).is_empty());
    assert_eq!(tags(&p.tick(at_s(190))), ["left 2 Silent", "changed 2"]);
    assert_eq!(p.next_wakeup(), Some(at_s(310)), "device 2's visit end");
    assert_eq!(tags(&p.tick(at_s(310))), ["ended 2"]);
    assert_eq!(p.next_wakeup(), Some(at_s(410)), "device 1's visit end");
    assert_eq!(tags(&p.tick(at_s(410))), ["ended 1"]);
    assert_eq!(p.next_wakeup(), None);
}

#[test]
fn device_details_and_os_come_from_dhcp() {
    let mut p = presence();
    let ios = [1, 121, 3, 6, 15, 108, 114, 119, 252, 95, 44, 46];
    let out = p.observe(&dhcp(1, DhcpMessageType::Discover, &ios, None), T0);
    assert_eq!(started(&out)[0].os_family, "ios");
    let d = p.device(mac(1)).unwrap();
    assert_eq!(d.ip, None, "a DISCOVER's address is only a wish");
    assert_eq!(d.hostname.as_deref(), Some("host-1"));
    assert_eq!(d.client_id.as_deref(), Some("01:3c:22:fb:00:00:01"));
    assert_eq!(d.param_request_list, ios);
    p.observe(&dhcp(1, DhcpMessageType::Request, &ios, None), at_s(1));
    assert_eq!(p.device(mac(1)).unwrap().ip, Some(v4(1)));

    // A device first seen by ARP learns its OS later; its visit follows.
    let out = p.observe(&arp(2), T0);
    assert_eq!(started(&out)[0].os_family, "unknown");
    let out = p.observe(
        &dhcp(2, DhcpMessageType::Request, &[1, 3, 6], Some("MSFT 5.0")),
        at_s(5),
    );
    assert_eq!(tags(&out), ["changed 2"]);
    assert_eq!(
        p.visits().find(|v| v.mac == mac(2)).unwrap().os_family,
        "windows"
    );

    // IPv6: newest first, at most four.
    for i in 1..=6u16 {
        let s = Sighting {
            mac: mac(3),
            kind: SightingKind::Nd {
                ip: Some(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i)),
            },
        };
        p.observe(&s, at_s(u64::from(i)));
    }
    let d = p.device(mac(3)).unwrap();
    assert_eq!(d.ipv6.len(), 4);
    assert_eq!(d.ipv6[0], Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 6));

    // Randomised MACs are flagged; broadcast and zero MACs are ignored.
    let random = Sighting {
        mac: MacAddr([0xda, 0xa1, 0x19, 0, 0, 1]),
        kind: SightingKind::Arp { ip: None },
    };
    assert!(started(&p.observe(&random, T0))[0].mac_randomized);
    for bad in [
        MacAddr([0xff; 6]),
        MacAddr([0; 6]),
        MacAddr([0x01, 0, 0x5e, 0, 0, 1]),
    ] {
        let s = Sighting {
            mac: bad,
            kind: SightingKind::Arp { ip: None },
        };
        assert!(p.observe(&s, T0).is_empty());
    }
}

#[test]
fn the_cap_forgets_the_longest_gone_and_never_a_present_device() {
    let mut p = Presence::new(
        PresenceConfig {
            max_devices: 3,
            ..cfg()
        },
        1,
    );
    p.observe(&arp(1), T0);
    p.observe(&arp(2), at(1));
    p.observe(&arp(3), at(2));
    p.observe(&release(2), at(3));
    p.observe(&release(1), at(4));
    // Device 1 came first, but device 2 left longest ago.
    let out = p.observe(&arp(4), at(5));
    assert_eq!(tags(&out)[0], "forgot 2");
    assert!(p.device(mac(2)).is_none());
    assert!(p.device(mac(1)).is_some());
    let out = p.observe(&arp(5), at(5));
    assert_eq!(tags(&out)[0], "forgot 1");
    // Now 3, 4 and 5 are all present: a newcomer is not tracked.
    assert!(p.observe(&arp(6), at(5)).is_empty());
    assert!(p.device(mac(6)).is_none());
    assert_eq!(p.devices().count(), 3);
    assert!(p.devices().all(|d| d.present));
    assert_eq!(
        p.counters(),
        Counters {
            untracked_sightings: 1,
            evicted_devices: 2,
            rate_limited: 0,
        }
    );
    // Once one leaves, there is room again.
    p.observe(&release(3), at(6));
    assert_eq!(
        tags(&p.observe(&arp(6), at(7)))[..2],
        ["forgot 3", "joined 6"]
    );
}

#[test]
fn new_devices_past_the_per_minute_budget_are_counted_not_tracked() {
    let mut p = Presence::new(
        PresenceConfig {
            new_devices_per_minute: 60,
            ..cfg()
        },
        1,
    );
    // A burst: the budget's 60 are taken in, the rest only counted.
    for n in 0..100u8 {
        p.observe(&arp(n), T0);
    }
    assert_eq!(p.devices().count(), 60);
    assert_eq!(p.counters().rate_limited, 40);
    assert_eq!(p.counters().untracked_sightings, 40);
    // Known devices are never limited: their sightings go on.
    assert!(!p.observe(&release(0), at(0)).is_empty());
    // The budget refills evenly, one a second here.
    assert!(p.observe(&arp(200), T0).is_empty(), "no budget left");
    let out = p.observe(&arp(201), at_s(1));
    assert!(
        tags(&out).iter().any(|t| t.starts_with("joined")),
        "{out:?}"
    );
    assert!(p.device(mac(201)).is_some());
    // A clock that steps back refills nothing.
    assert!(p.observe(&arp(202), T0).is_empty());
}

#[test]
fn the_access_points_join_and_leave_give_the_exact_dwell() {
    let mut p = presence();
    let station = |n: u8, kind| Sighting { mac: mac(n), kind };
    let out = p.observe(&station(1, SightingKind::Associated), at_s(10));
    assert!(
        tags(&out).iter().any(|t| t.starts_with("joined 1")),
        "{out:?}"
    );
    // Quiet for minutes (a phone asleep in a pocket): no probe, no leave.
    assert!(p.tick(at_s(10 + 600)).is_empty());
    assert!(p.device(mac(1)).unwrap().present);
    assert_eq!(
        p.next_wakeup(),
        Some(at_s(10 + 30 * 60)),
        "probed only after the hold"
    );
    // Then it leaves.
    let out = p.observe(&station(1, SightingKind::Disassociated), at_s(10 + 1234));
    assert_eq!(tags(&out)[0], "left 1 Released");
    assert!(!p.device(mac(1)).unwrap().present);
    // After the rejoin gap the visit ends at the disassociation, to the
    // second: no probe, no leave_after to wait out.
    let ended_visits = ended(&p.tick(at_s(10 + 1234 + 301)));
    assert_eq!(ended_visits.len(), 1);
    assert_eq!(ended_visits[0].ended_at, Some(at_s(10 + 1234)));
    assert_eq!(ended_visits[0].dwell_seconds, 1234);
}

#[test]
fn a_station_whose_disassociation_was_lost_is_probed_after_the_hold() {
    let mut p = presence();
    let station = |kind| Sighting { mac: mac(2), kind };
    p.observe(&station(SightingKind::Associated), T0);
    // Its AP-STA-DISCONNECTED never came: nothing for half an hour...
    assert!(p.tick(at(29)).is_empty());
    assert!(p.device(mac(2)).unwrap().present);
    // ...then it is treated as any quiet device (no address: no probe to
    // send), and leaves as of its last sighting.
    p.tick(at(30));
    assert_eq!(p.device(mac(2)).unwrap().state, DeviceState::Silent);
    let out = p.tick(at(32));
    assert_eq!(tags(&out)[0], "left 2 Silent");
    assert_eq!(p.device(mac(2)).unwrap().last_seen, T0);
}
