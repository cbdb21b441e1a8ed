//! Staff and residents: tracked, but kept out of footfall.

use super::*;

#[test]
fn configured_staff_are_tracked_but_not_counted() {
    let mut p = Presence::new(
        PresenceConfig {
            staff: vec![mac(9)],
            ..cfg()
        },
        1,
    );
    let out = p.observe(&arp(9), local(0, 9, 0));
    assert_eq!(started(&out)[0].classification, Classification::Staff);
    p.observe(&arp(1), local(0, 9, 0));
    let f = p.footfall(local(0, 9, 1));
    assert_eq!(f.present_now, 1);
    assert_eq!(f.days[13].arrivals, 1);
    assert_eq!(f.days[13].arrivals_by_hour[9], 1);
    assert_eq!(f.days[13].new_devices, 1);
    let out = run_until(&mut p, local(0, 10, 0));
    let ends = ended(&out);
    assert_eq!(ends.len(), 2);
    let staff = ends.iter().find(|v| v.mac == mac(9)).unwrap();
    assert_eq!(staff.classification, Classification::Staff);
    let f = p.footfall(local(0, 10, 0));
    assert_eq!(f.days[13].dwell.under_5m, 1, "only the visitor's dwell");
    assert_eq!(f.visit_frequency.once, 1);
}

#[test]
fn set_staff_moves_a_device_in_and_out_of_footfall() {
    let mut p = Presence::new(
        PresenceConfig {
            staff: vec![mac(9)],
            ..cfg()
        },
        1,
    );
    p.observe(&arp(1), T0);
    p.observe(&arp(2), T0);
    assert_eq!(p.footfall(T0).present_now, 2);
    assert_eq!(tags(&p.set_staff(mac(1), true, T0)), ["changed 1"]);
    assert!(p.is_staff(mac(1)));
    assert_eq!(p.footfall(T0).present_now, 1, "reclassified at once");
    let lasting = p.visits().find(|v| v.mac == mac(1)).unwrap();
    assert_eq!(lasting.classification, Classification::Staff);
    // Counts already made stay.
    assert_eq!(p.footfall(T0).days[13].arrivals, 2);
    let out = run_until(&mut p, at(10));
    let one = ended(&out).into_iter().find(|v| v.mac == mac(1)).unwrap();
    assert_eq!(one.classification, Classification::Staff);
    assert_eq!(p.footfall(at(10)).days[13].dwell.under_5m, 1);

    // A configured staff device can be unmarked from the dashboard.
    assert!(
        p.set_staff(mac(9), false, at(10)).is_empty(),
        "unknown device"
    );
    let out = p.observe(&arp(9), at(11));
    assert_eq!(started(&out)[0].classification, Classification::Visitor);
    // And marking it back restores the config's view (no override kept).
    p.set_staff(mac(9), true, at(11));
    assert_eq!(p.snapshot().staff_overrides.len(), 1, "only mac 1's mark");
    // A mark survives a snapshot.
    let mut q = Presence::new(cfg(), 2);
    q.restore(p.snapshot(), at(11));
    assert!(q.is_staff(mac(1)));
    assert!(!q.is_staff(mac(9)), "q's config has no staff");
}

#[test]
fn hq_staff_devices_leave_footfall_and_a_dashboard_mark_wins() {
    let mut p = presence();
    p.observe(&arp(1), T0);
    p.observe(&arp(2), T0);
    assert_eq!(p.footfall(T0).present_now, 2);
    let hq: std::collections::HashSet<MacAddr> = [mac(1), mac(7)].into();
    assert_eq!(tags(&p.set_hq_staff(hq.clone(), T0)), ["changed 1"]);
    assert!(p.set_hq_staff(hq, T0).is_empty(), "the same list again");
    assert_eq!(p.footfall(T0).present_now, 1);
    // A new device on HQ's list is staff from its first visit.
    let out = p.observe(&arp(7), at(1));
    assert_eq!(started(&out)[0].classification, Classification::Staff);
    // The manager knows better.
    p.set_staff(mac(1), false, at(1));
    assert_eq!(p.footfall(at(1)).present_now, 2);
    // HQ drops mac 7 from its list.
    p.set_hq_staff([mac(1)].into(), at(2));
    assert_eq!(p.footfall(at(2)).present_now, 3);
}

#[test]
fn a_device_in_the_store_long_hours_on_three_days_of_seven_is_a_resident() {
    let mut p = presence();
    let mut out = Vec::new();
    // The café till next door: 09:00 to 16:00, local, four days running.
    for day in 0..4 {
        out.extend(stay(&mut p, 1, local(day, 9, 0), local(day, 16, 0)));
        out.extend(run_until(&mut p, local(day, 17, 0)));
        let d = p.device(mac(1)).unwrap();
        let ms = d
            .daily
            .iter()
            .find(|x| x.date == local_date(local(day, 9, 0), &plus8()));
        assert_eq!(ms.unwrap().ms, 7 * 3_600_000, "day {day}");
    }
    let s = started(&out);
    let e = ended(&out);
    assert_eq!((s.len(), e.len()), (4, 4));
    assert_eq!(s[0].classification, Classification::Visitor);
    assert!(!s[0].returning);
    assert!(s[1].returning, "seen on an earlier local day");
    assert_eq!(
        e[1].classification,
        Classification::Visitor,
        "two long days"
    );
    assert_eq!(s[2].classification, Classification::Visitor);
    assert_eq!(e[2].classification, Classification::Resident, "the third");
    assert_eq!(s[3].classification, Classification::Resident);
    // Kept out of footfall from the day it was known to be a resident.
    let f = p.footfall(local(3, 17, 0));
    let arrivals: Vec<u32> = f.days[10..].iter().map(|d| d.arrivals).collect();
    assert_eq!(arrivals, [1, 1, 1, 0]);
    assert_eq!(f.days[12].dwell, DwellBuckets::default());
    assert_eq!(f.days[11].dwell.from_1h_to_6h + f.days[11].dwell.over_6h, 1);
    assert_eq!(f.visit_frequency, VisitFrequency::default());

    // A week later its long days have left the 7-day window.
    let out = p.observe(&arp(1), local(10, 9, 0));
    assert_eq!(started(&out)[0].classification, Classification::Visitor);

    // Mid-stay: on the third long day it turns resident once past 6 h.
    let mut p = presence();
    for day in 0..2 {
        stay(&mut p, 2, local(day, 9, 0), local(day, 16, 0));
        run_until(&mut p, local(day, 17, 0));
    }
    stay(&mut p, 2, local(2, 9, 0), local(2, 15, 0));
    assert_eq!(p.footfall(local(2, 15, 0)).present_now, 1);
    stay(&mut p, 2, local(2, 15, 0), local(2, 15, 30));
    assert_eq!(p.footfall(local(2, 15, 30)).present_now, 0);
    let v = p.visits().next().unwrap();
    assert_eq!(v.classification, Classification::Resident);
}

#[test]
fn residents_can_be_switched_off() {
    let mut p = Presence::new(
        PresenceConfig {
            resident_min_days: 0,
            ..cfg()
        },
        1,
    );
    for day in 0..4 {
        stay(&mut p, 1, local(day, 9, 0), local(day, 16, 0));
        run_until(&mut p, local(day, 17, 0));
    }
    assert_eq!(p.classify(mac(1), local(3, 17, 0)), Classification::Visitor);
}
