//! Snapshots, restarts, and the JSON the shell prints.

use super::*;

/// Through JSON, as the shell stores it.
fn reload(saved: &Saved) -> Saved {
    serde_json::from_str(&serde_json::to_string(saved).unwrap()).unwrap()
}

#[test]
fn restore_of_a_snapshot_continues_open_visits() {
    let mut p = presence();
    let first = p.observe(&arp(1), T0);
    stay(&mut p, 1, at_s(30), at(2));
    p.observe(&arp(2), T0);
    p.observe(&release(2), at(1)); // pending: its visit may still go on
    let saved = reload(&p.snapshot());
    assert_eq!(saved, p.snapshot());

    let mut q = Presence::new(cfg(), 99);
    q.restore(saved, at_s(150));
    assert!(q.tick(at_s(150)).is_empty());
    assert_eq!(q.next_wakeup(), p.next_wakeup());
    assert_eq!(q.device(mac(1)), p.device(mac(1)));
    assert_eq!(q.footfall(at(2)), p.footfall(at(2)));
    // Both visits go on: no join news for 1, no new visit for 2.
    assert!(q.observe(&arp(1), at_s(170)).is_empty());
    assert_eq!(tags(&q.observe(&arp(2), at(4))), ["joined 2", "changed 2"]);
    let out = run_until(&mut q, at(60));
    let ends = ended(&out);
    assert_eq!(ends.len(), 2);
    let one = ends.iter().find(|v| v.mac == mac(1)).unwrap();
    assert_eq!(one.visit_id, started(&first)[0].visit_id);
    assert_eq!((one.started_at, one.ended_at), (T0, Some(at_s(170))));
    assert!(started(&out).is_empty());
}

#[test]
fn downtime_of_the_box_is_not_a_departure() {
    let mut p = presence();
    p.observe(&arp(1), T0);
    p.observe(&arp(1), at(2));
    let saved = reload(&p.snapshot());

    // Back after 28 minutes: one probe, and a full answer window.
    let mut q = Presence::new(cfg(), 1);
    q.restore(saved.clone(), at(30));
    assert_eq!(q.next_wakeup(), Some(at(3)), "the overdue probe");
    assert_eq!(tags(&q.tick(at(30))), ["probe 1 192.0.2.1"]);
    assert_eq!(q.next_wakeup(), Some(at(32)));
    assert!(
        q.observe(&arp(1), at_s(30 * 60 + 5)).is_empty(),
        "still the same visit"
    );

    // Unanswered, it left as of its last sighting before the restart.
    let mut q = Presence::new(cfg(), 1);
    q.restore(saved, at(30));
    q.tick(at(30));
    let out = q.tick(at(32));
    assert_eq!(tags(&out), ["left 1 Silent", "changed 1", "ended 1"]);
    assert_eq!(ended(&out)[0].ended_at, Some(at(2)));
    assert_eq!(ended(&out)[0].dwell_seconds, 120);
}

#[test]
fn a_saved_state_from_separate_parts_is_reconciled() {
    let mut p = presence();
    p.observe(&arp(1), T0);
    p.observe(&arp(2), T0);
    let core = p.snapshot_core();
    assert!(core.devices.is_empty());
    // Device 2 was persisted after it left; the core before.
    p.observe(&release(2), at(1));
    p.observe(&arp(3), at(1)); // persisted as a device, its visit lost
    let devices = p.snapshot().devices;
    let mut q = presence();
    q.restore(Saved { devices, ..core }, at_s(90));
    // Device 2's visit ends after the gap from its departure.
    let out = run_until(&mut q, at(6));
    let two = ended(&out).into_iter().find(|v| v.mac == mac(2)).unwrap();
    assert_eq!(two.ended_at, Some(at(1)));
    // Device 3 starts a visit at its next sighting.
    assert_eq!(
        tags(&q.observe(&arp(3), at(7))),
        ["joined 3", "started 3", "changed 3"]
    );
}

#[test]
fn devices_and_visits_print_the_documented_fields() {
    let mut p = presence();
    p.observe(&arp(1), T0);
    let d = serde_json::to_value(p.device(mac(1)).unwrap()).unwrap();
    for key in [
        "mac",
        "ip",
        "hostname",
        "os_family",
        "mac_randomized",
        "present",
        "first_seen",
        "last_seen",
        "member_id",
    ] {
        assert!(d.get(key).is_some(), "devices --json lacks {key}");
    }
    assert_eq!(d["mac"], "3c:22:fb:00:00:01");
    assert_eq!(d["ip"], "192.0.2.1");
    assert_eq!(d["present"], true);
    assert_eq!(d["member_id"], serde_json::Value::Null);
    assert_eq!(d["state"], "present");

    let v = serde_json::to_value(p.visits().next().unwrap()).unwrap();
    for key in [
        "visit_id",
        "mac",
        "started_at",
        "ended_at",
        "dwell_seconds",
        "classification",
        "returning",
        "mac_randomized",
        "os_family",
    ] {
        assert!(v.get(key).is_some(), "visits --json lacks {key}");
    }
    assert_eq!(v["ended_at"], serde_json::Value::Null);
    assert_eq!(v["classification"], "visitor");
    assert_eq!(v["started_at"], T0.millis(), "persisted as unix ms");

    // What ctl prints: the same fields, times in RFC 3339.
    let d = p.device(mac(1)).unwrap().to_ctl_json();
    assert_eq!(d["first_seen"], "2026-11-22T16:00:00Z");
    assert_eq!(d["vendor_class"], serde_json::Value::Null);
    assert!(d.get("param_request_list").is_some() && d.get("grace_until").is_none());
    let v = p.visits().next().unwrap().to_ctl_json();
    assert_eq!(v["started_at"], "2026-11-22T16:00:00Z");
    assert_eq!(v["ended_at"], serde_json::Value::Null);
    p.observe(&release(1), at(1));
    run_until(&mut p, at(10));
    let v = p.visits().next().unwrap().to_ctl_json();
    assert_eq!(v["ended_at"], "2026-11-22T16:01:00Z");
    assert_eq!(v["dwell_seconds"], 60);
}

#[test]
fn visits_list_open_ones_first_and_keep_a_bounded_history() {
    let mut p = presence();
    for i in 0..1_005u64 {
        let t = at(i * 10);
        run_until(&mut p, t);
        p.observe(&arp(1), t);
    }
    p.observe(&arp(2), at(10_050));
    let all: Vec<&Visit> = p.visits().collect();
    assert_eq!(all.len(), 2 + crate::presence::visit::MAX_RECENT_VISITS);
    assert!(all[0].ended_at.is_none() && all[1].ended_at.is_none());
    assert_eq!(all[0].mac, mac(2), "newest open first");
    assert!(
        all[2].started_at > all[3].started_at,
        "then ended, newest first"
    );
}
