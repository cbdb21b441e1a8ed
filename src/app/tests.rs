//! The hub's operations, on the shared test rig.

use super::rig::rig;
use super::*;
use crate::access::Firewall;
use crate::members::Consent;
use crate::time::Timestamp;
use crate::uplink::event::MEMBER_ERASED;

fn mac(n: u8) -> MacAddr {
    MacAddr([0x3c, 0x22, 0xfb, 0, 0, n])
}

#[test]
fn blocking_ends_the_session_and_unblocking_does_not_sign_in() {
    let r = rig();
    r.app.authorize(mac(1)).unwrap();
    assert!(r.app.block(mac(1), true).unwrap(), "it was signed in");
    assert!(r.app.blocklist.is_blocked(mac(1)));
    assert!(!r.app.gate.client(mac(1)).is_some_and(|c| c.is_authorized()));
    assert!(!r.app.block(mac(1), false).unwrap());
    assert!(!r.app.blocklist.is_blocked(mac(1)));
    assert!(!r.app.gate.client(mac(1)).is_some_and(|c| c.is_authorized()));
}

#[test]
fn group_addresses_are_not_clients() {
    let r = rig();
    let group = MacAddr([0x01, 0, 0x5e, 0, 0, 1]);
    assert!(matches!(
        r.app.authorize(group),
        Err(OpError::NotAClient(_))
    ));
    assert!(matches!(r.app.sign_out(group), Err(OpError::NotAClient(_))));
}

#[test]
fn erasure_reaches_sessions_presence_and_hq() {
    let r = rig();
    let members = r.app.members.clone().unwrap();
    let now = Timestamp::now();
    // By phone: a bare member number would bind no device.
    let issued = members.request_code("13812345678", mac(2), now).unwrap();
    let id = members
        .verify_code("13812345678", &issued.code, mac(2), now)
        .unwrap();
    let consent = Consent {
        remember_device: true,
        marketing: false,
    };
    members.link(&id, mac(2), consent, None, now).unwrap();
    r.app
        .gate
        .authorize(mac(2), None, AuthMethod::Otp, Some(id.clone()))
        .unwrap();
    r.app.observe(mac(2), None, None).unwrap();
    let erased = r.app.erase_member(&id).unwrap();
    assert_eq!(erased.devices_unbound, 1);
    assert_eq!(erased.sessions_ended, 1);
    assert_eq!(erased.presence_devices_scrubbed, 1);
    assert!(!r.firewall.is_allowed(mac(2)));
    let queued = r.outbox.recent(100).unwrap();
    assert!(
        queued
            .iter()
            .any(|e| e.ty == MEMBER_ERASED && e.data["member_id"] == id.as_str())
    );
    // Nothing left to erase: a second call says so.
    assert!(matches!(
        r.app.erase_member(&id),
        Err(EraseError::Unknown(_))
    ));
}

#[test]
fn a_new_dashboard_password_signs_every_session_out() {
    let r = rig();
    r.app.manager_sessions.create(Timestamp::now());
    assert_eq!(r.app.manager_sessions.len(), 1);
    assert!(r.app.set_dashboard_password("short").is_err());
    assert_eq!(
        r.app.manager_sessions.len(),
        1,
        "a refused password changes nothing"
    );
    r.app
        .set_dashboard_password("a good long password")
        .unwrap();
    assert!(r.app.manager_sessions.is_empty());
    let stored = manager::stored_hash(r.store.as_ref()).unwrap().unwrap();
    assert!(manager::verify_password(&stored, "a good long password"));
}

#[test]
fn status_reports_every_part() {
    let r = rig();
    r.app.authorize(mac(3)).unwrap();
    let s = r.app.status();
    assert_eq!(s["store_id"], "wulin-01");
    assert_eq!(s["clients"]["authorized"], 1);
    assert_eq!(s["firewall"], r.firewall.name());
    assert_eq!(s["hq"]["state"], "not configured");
    assert!(s["outbox"]["queued"].as_u64().unwrap() >= 1, "{s}");
    assert_eq!(s["presence"]["capturing"], false);
    assert_eq!(s["presence"]["untracked"]["rate_limited"], 0, "{s}");
}
