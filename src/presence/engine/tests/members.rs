//! Members on devices and visits, erasure, and forgetting devices that
//! belong to no member.

use super::*;

const DAY: Duration = Duration::from_secs(86_400);

#[test]
fn a_recognised_member_is_on_the_visit_from_its_start() {
    let mut p = presence();
    let out = p.observe_member(
        &dhcp(1, DhcpMessageType::Discover, &[1, 3, 6], None),
        Some("m_one"),
        T0,
    );
    assert_eq!(tags(&out), ["joined 1", "started 1", "changed 1"]);
    assert_eq!(started(&out)[0].member_id.as_deref(), Some("m_one"));
    assert_eq!(
        p.device(mac(1)).unwrap().member_id.as_deref(),
        Some("m_one")
    );
    // Plain sightings leave it alone; `None` from `members` clears the
    // device (its binding went) but not the visit it was on.
    let again = dhcp(1, DhcpMessageType::Discover, &[1, 3, 6], None);
    assert!(p.observe(&again, at_s(10)).is_empty());
    assert_eq!(
        tags(&p.observe_member(&arp(1), None, at_s(20))),
        ["changed 1"]
    );
    assert_eq!(p.device(mac(1)).unwrap().member_id, None);
    assert_eq!(
        p.visits().next().unwrap().member_id.as_deref(),
        Some("m_one")
    );
}

#[test]
fn a_lasting_visit_learns_its_member() {
    let mut p = presence();
    assert_eq!(started(&p.observe(&arp(2), T0))[0].member_id, None);
    assert_eq!(
        tags(&p.observe_member(&arp(2), Some("m_two"), at_s(30))),
        ["changed 2"]
    );
    assert_eq!(
        p.visits().next().unwrap().member_id.as_deref(),
        Some("m_two")
    );
    assert!(
        p.observe_member(&arp(2), Some("m_two"), at_s(40))
            .is_empty()
    );
    // Told directly (a sign-in or an expiry), the same holds.
    assert!(p.set_member(mac(2), Some("m_two")).is_empty());
    assert_eq!(tags(&p.set_member(mac(2), None)), ["changed 2"]);
    assert!(
        p.set_member(mac(9), Some("m_x")).is_empty(),
        "unknown device"
    );
}

#[test]
fn erasure_clears_the_member_from_devices_and_visits() {
    let mut p = presence();
    p.observe_member(&arp(1), Some("m_gone"), T0);
    p.observe_member(&arp(2), Some("m_stays"), T0);
    // Device 1 leaves and its visit ends; it comes back for a new one.
    run_until(&mut p, at(20));
    p.observe_member(&arp(1), Some("m_gone"), at(30));
    assert_eq!(
        p.visits()
            .filter(|v| v.member_id.as_deref() == Some("m_gone"))
            .count(),
        2
    );
    assert_eq!(tags(&p.forget_member("m_gone")), ["changed 1"]);
    assert!(p.visits().all(|v| v.member_id.as_deref() != Some("m_gone")));
    assert!(
        p.devices()
            .all(|d| d.member_id.as_deref() != Some("m_gone"))
    );
    assert_eq!(
        p.device(mac(2)).unwrap().member_id.as_deref(),
        Some("m_stays")
    );
    let saved = serde_json::to_string(&p.snapshot()).unwrap();
    assert!(!saved.contains("m_gone"));
    assert!(p.forget_member("m_gone").is_empty());
}

#[test]
fn devices_of_no_member_are_forgotten_after_the_privacy_period() {
    let mut p = presence();
    p.observe(&arp(1), T0);
    p.observe_member(&arp(2), Some("m_two"), T0);
    p.observe(&arp(3), T0);
    // All leave at T0 (the last sighting); the visits end after the gap.
    run_until(&mut p, at(20));
    assert!(p.devices().all(|d| !d.present));
    // Device 3 comes back on day 20 and leaves again.
    p.observe(&arp(3), T0.plus(DAY * 20));
    run_until(&mut p, T0.plus(DAY * 20).plus(20 * MIN));

    assert!(
        p.forget_unbound(Timestamp(T0.plus(DAY * 30).millis() - 1), DAY * 30)
            .is_empty()
    );
    assert_eq!(
        tags(&p.forget_unbound(T0.plus(DAY * 30), DAY * 30)),
        ["forgot 1"]
    );
    assert!(p.device(mac(1)).is_none());
    assert!(p.device(mac(2)).is_some(), "a member's device is kept");
    assert!(p.device(mac(3)).is_some(), "seen 10 days ago");
    assert_eq!(
        tags(&p.forget_unbound(T0.plus(DAY * 50), DAY * 30)),
        ["forgot 3"]
    );
}

#[test]
fn present_devices_and_pending_visits_are_never_forgotten() {
    let mut p = presence();
    p.observe(&arp(1), T0);
    p.observe(&arp(2), T0);
    // Device 1 keeps answering; device 2 leaves at T0 and its visit is
    // pending for the 5-minute gap.
    let out = stay(&mut p, 1, at_s(30), at(4));
    assert!(tags(&out).contains(&"left 2 Silent".to_string()));
    assert!(p.forget_unbound(at(4), MIN).is_empty());
    let out = stay(&mut p, 1, at_s(270), at(9));
    assert!(tags(&out).contains(&"ended 2".to_string()));
    assert_eq!(tags(&p.forget_unbound(at(9), MIN)), ["forgot 2"]);
    assert!(p.device(mac(1)).is_some());
}
