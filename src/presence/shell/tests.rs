//! The presence shell with members: a remembered device's DHCP packet
//! signs it in, and erasure leaves nothing of the member behind.

use std::net::Ipv4Addr;

use super::*;
use crate::app::rig::{self, KEY};
use crate::members::Consent;
use crate::uplink::Outbox;
use crate::uplink::event::SESSION_AUTHORIZED;

const PHONE: &str = "13812345678";

/// The shared rig, seen from the shell: its parts by name.
struct Rig {
    shell: Arc<PresenceShell>,
    members: Arc<Members>,
    gate: Arc<Gate>,
    firewall: Arc<crate::access::MemoryFirewall>,
    outbox: Arc<Outbox>,
    app: Arc<crate::app::App>,
}

fn rig() -> Rig {
    from(rig::rig())
}

/// A rig with the members' Wi-Fi configured (its PSK file in `dir`).
fn wifi_rig(dir: &std::path::Path) -> Rig {
    from(rig::rig_with_wifi(dir))
}

fn from(r: rig::Rig) -> Rig {
    Rig {
        shell: r.app.presence.clone(),
        members: r.app.members.clone().unwrap(),
        gate: r.app.gate.clone(),
        firewall: r.firewall,
        outbox: r.outbox,
        app: r.app,
    }
}

fn mac(n: u8) -> MacAddr {
    MacAddr([0x3c, 0x22, 0xfb, 0, 0, n])
}

fn dhcp(n: u8, message_type: DhcpMessageType) -> Sighting {
    Sighting {
        mac: mac(n),
        kind: SightingKind::DhcpClient(DhcpInfo {
            message_type,
            requested_ip: Some(Ipv4Addr::new(192, 0, 2, n)),
            ..DhcpInfo::default()
        }),
    }
}

/// Signs a member in on `device` (phone and code) and remembers it.
fn remembered_member(r: &Rig, device: MacAddr) -> String {
    let now = Timestamp::now();
    let issued = r.members.request_code(PHONE, device, now).unwrap();
    let id = r
        .members
        .verify_code(PHONE, &issued.code, device, now)
        .unwrap();
    let consent = Consent {
        remember_device: true,
        marketing: false,
    };
    r.members.link(&id, device, consent, None, now).unwrap();
    id
}

fn authorized_events(outbox: &Outbox) -> usize {
    outbox
        .recent(100)
        .unwrap()
        .iter()
        .filter(|e| e.ty == SESSION_AUTHORIZED)
        .count()
}

#[test]
fn a_remembered_device_is_signed_in_by_its_dhcp_packet() {
    let r = rig();
    let id = remembered_member(&r, mac(1));
    let mut events = Vec::new();

    r.shell
        .observe(&dhcp(1, DhcpMessageType::Discover), &mut events);
    let client = r.gate.client(mac(1)).expect("the gate knows it");
    assert!(client.is_authorized());
    assert_eq!(client.method, Some(AuthMethod::ReturningDevice));
    assert_eq!(client.member_id.as_deref(), Some(id.as_str()));
    assert!(r.firewall.is_allowed(mac(1)));
    assert_eq!(r.shell.stats().members_authorized, 1);
    // The member is on the device and on the visit.started event.
    assert_eq!(
        r.shell
            .machine()
            .device(mac(1))
            .unwrap()
            .member_id
            .as_deref(),
        Some(id.as_str())
    );
    let started: Vec<serde_json::Value> = events
        .iter()
        .filter(|e| e.ty() == crate::uplink::event::VISIT_STARTED)
        .map(|e| e.data(&DeviceKey::from_bytes(KEY)))
        .collect();
    assert_eq!(started.len(), 1);
    assert_eq!(started[0]["member_id"], id.as_str());
    assert_eq!(started[0]["recognised_by"], "mac");

    // Already signed in: the next packets change nothing.
    r.shell
        .observe(&dhcp(1, DhcpMessageType::Request), &mut events);
    assert_eq!(authorized_events(&r.outbox), 1);
    assert_eq!(r.shell.stats().members_authorized, 1);
}

#[test]
fn only_a_remembered_device_asking_for_a_lease_is_signed_in() {
    let r = rig();
    remembered_member(&r, mac(1));
    let mut events = Vec::new();
    // A stranger's DHCP packet: nothing.
    r.shell
        .observe(&dhcp(2, DhcpMessageType::Discover), &mut events);
    assert!(r.gate.client(mac(2)).is_none());
    // The member's device giving its lease back, or only ARPing: nothing.
    r.shell
        .observe(&dhcp(1, DhcpMessageType::Release), &mut events);
    let arp = Sighting {
        mac: mac(1),
        kind: SightingKind::Arp {
            ip: Some(Ipv4Addr::new(192, 0, 2, 1)),
        },
    };
    r.shell.observe(&arp, &mut events);
    assert!(r.gate.client(mac(1)).is_none());
    assert!(!r.firewall.is_allowed(mac(1)));
    assert_eq!(authorized_events(&r.outbox), 0);
    // The ARP still told presence whose device it is.
    assert!(
        r.shell
            .machine()
            .device(mac(1))
            .unwrap()
            .member_id
            .is_some()
    );
}

#[test]
fn erasure_leaves_nothing_of_the_member_in_sessions_or_presence() {
    let r = rig();
    let id = remembered_member(&r, mac(1));
    let mut events = Vec::new();
    r.shell
        .observe(&dhcp(1, DhcpMessageType::Request), &mut events);
    assert!(r.gate.client(mac(1)).unwrap().is_authorized());

    // What `ctl member-erase` does.
    let erased = r.members.erase(&id, Timestamp::now()).unwrap();
    assert_eq!(erased.devices, vec![mac(1)]);
    assert_eq!(r.gate.forget_member(&id).unwrap(), vec![mac(1)]);
    assert_eq!(r.shell.forget_member(&id), 1);

    let client = r.gate.client(mac(1)).unwrap();
    assert!(!client.is_authorized(), "a stranger again");
    assert_eq!(client.member_id, None);
    assert!(!r.firewall.is_allowed(mac(1)));
    let m = r.shell.machine();
    assert!(m.devices().all(|d| d.member_id.is_none()));
    assert!(m.visits().all(|v| v.member_id.is_none()));
    drop(m);
    assert!(r.members.list().is_empty());
    // The next packet is just a device now: not signed in, no member.
    r.shell
        .observe(&dhcp(1, DhcpMessageType::Request), &mut events);
    assert_eq!(r.shell.machine().device(mac(1)).unwrap().member_id, None);
    assert!(!r.gate.client(mac(1)).unwrap().is_authorized());
}

#[test]
fn devices_hq_lists_as_staff_leave_footfall() {
    let r = rig();
    let key = DeviceKey::from_bytes(KEY);
    let staff_mac = MacAddr([0x02, 0, 0, 0, 0x5a, 1]);
    let doc = crate::uplink::sync::SyncDocument::parse(
        serde_json::json!({
            "version": "1",
            "campaigns": [],
            "staff_devices": [key.device_id(staff_mac)],
            "blocked_devices": [],
        })
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    r.app.sync.put_document(doc);
    let shell = &r.shell;
    let arp = |mac: MacAddr, ip: u8| Sighting {
        mac,
        kind: crate::presence::SightingKind::Arp {
            ip: Some(Ipv4Addr::new(192, 0, 2, ip)),
        },
    };
    let mut events = Vec::new();
    shell.observe(&arp(staff_mac, 10), &mut events);
    shell.observe(&arp(MacAddr([0x02, 0, 0, 0, 0x5a, 2]), 11), &mut events);
    let now = Timestamp::now();
    assert_eq!(shell.machine().footfall(now).present_now, 2);
    shell.refresh_hq_staff();
    assert_eq!(shell.machine().footfall(now).present_now, 1);
    assert!(shell.machine().is_staff(staff_mac));
}

#[test]
fn a_blocked_member_device_is_not_let_back_in() {
    let r = rig();
    remembered_member(&r, mac(1));
    let blocked = r.app.blocklist.manager();
    blocked.set(mac(1), true).unwrap();
    let shell = &r.shell;
    let mut events = Vec::new();
    shell.observe(&dhcp(1, DhcpMessageType::Discover), &mut events);
    assert!(!r.firewall.is_allowed(mac(1)), "blocked, yet let in");
    assert_eq!(shell.stats().members_authorized, 0);
    // Unblocked: the next DHCP packet lets it in.
    blocked.set(mac(1), false).unwrap();
    shell.observe(&dhcp(1, DhcpMessageType::Request), &mut events);
    assert!(r.firewall.is_allowed(mac(1)));
}

/// A station joins with `member`'s key (as the hostapd feed reports it).
fn join_by_key(r: &Rig, n: u8, member: &str) -> Vec<Event> {
    let mut events = Vec::new();
    r.shell
        .station_joined(mac(n), Some(member.to_string()), &mut events);
    events
}

#[tokio::test(flavor = "multi_thread")]
async fn a_station_with_a_members_key_is_signed_in_at_association_whatever_its_mac() {
    let dir = tempfile::tempdir().unwrap();
    let r = wifi_rig(dir.path());
    let id = remembered_member(&r, mac(1));
    r.members.issue_wifi_key(&id, Timestamp::now()).unwrap();
    let key = DeviceKey::from_bytes(KEY);
    // Today the phone shows a MAC the box has never seen (rotated).
    let events = join_by_key(&r, 7, &id);
    let client = r.gate.client(mac(7)).expect("signed in");
    assert!(client.is_authorized());
    assert_eq!(client.method, Some(AuthMethod::WifiKey));
    assert_eq!(client.member_id.as_deref(), Some(id.as_str()));
    let started: Vec<serde_json::Value> = events
        .iter()
        .filter(|e| e.ty() == crate::uplink::event::VISIT_STARTED)
        .map(|e| e.data(&key))
        .collect();
    assert_eq!(started.len(), 1);
    assert_eq!(started[0]["member_id"], id.as_str());
    assert_eq!(started[0]["recognised_by"], "wifi_key");
    let queued = r.outbox.recent(100).unwrap();
    let auth = queued
        .iter()
        .find(|e| e.ty == SESSION_AUTHORIZED && e.data["method"] == "wifi_key")
        .expect("session.authorized by key");
    assert_eq!(auth.data["recognised_by"], "wifi_key");
    // Its DHCP packets later keep the member on the device.
    let mut more = Vec::new();
    r.shell
        .observe(&dhcp(7, DhcpMessageType::Request), &mut more);
    assert_eq!(
        r.shell
            .machine()
            .device(mac(7))
            .unwrap()
            .member_id
            .as_deref(),
        Some(id.as_str())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_disassociation_ends_presence_at_once() {
    let r = rig();
    let mut events = Vec::new();
    r.shell.station_joined(mac(3), None, &mut events);
    assert!(r.shell.machine().device(mac(3)).unwrap().present);
    assert!(r.gate.client(mac(3)).is_none(), "no key, no sign-in");
    r.shell.station_left(mac(3), &mut events);
    assert!(!r.shell.machine().device(mac(3)).unwrap().present);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_blocked_members_station_is_not_let_in_by_key() {
    let r = rig();
    let id = remembered_member(&r, mac(1));
    r.app.blocklist.manager().set(mac(8), true).unwrap();
    join_by_key(&r, 8, &id);
    assert!(!r.firewall.is_allowed(mac(8)));
    assert!(r.gate.client(mac(8)).is_none_or(|c| !c.is_authorized()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_blocked_station_takes_its_members_key_out() {
    let dir = tempfile::tempdir().unwrap();
    let r = rig::rig_with_wifi(dir.path());
    let (shell, members) = (r.app.presence.clone(), r.app.members.clone().unwrap());
    let now = Timestamp::now();
    let issued = members.request_code(PHONE, mac(1), now).unwrap();
    let id = members
        .verify_code(PHONE, &issued.code, mac(1), now)
        .unwrap();
    let consent = Consent {
        remember_device: true,
        marketing: false,
    };
    members.link(&id, mac(1), consent, None, now).unwrap();
    members.issue_wifi_key(&id, now).unwrap();
    let mut events = Vec::new();
    shell.station_joined(mac(9), Some(id.clone()), &mut events);
    assert!(
        shell.revoke_blocked_keys().is_empty(),
        "nothing blocked yet"
    );
    assert!(members.has_wifi_key(&id));
    r.app.blocklist.manager().set(mac(9), true).unwrap();
    assert_eq!(shell.revoke_blocked_keys(), vec![id.clone()]);
    assert!(!members.has_wifi_key(&id));
    let file = std::fs::read_to_string(dir.path().join("members.psk")).unwrap();
    assert!(!file.contains(&id), "{file}");
}

#[test]
fn saves_write_only_what_changed() {
    let r = rig();
    let mut events = Vec::new();
    for n in 1..=20 {
        r.shell
            .observe(&dhcp(n, DhcpMessageType::Request), &mut events);
    }
    r.shell.store_events(&mut events);
    r.shell.persist_all();
    let first = r.shell.persisted_bytes();
    assert!(
        first > 20 * 100,
        "20 devices and their visits saved: {first} bytes"
    );
    // Seen again, nothing new about them: the next saves write nothing.
    for n in 1..=20 {
        r.shell
            .observe(&dhcp(n, DhcpMessageType::Request), &mut events);
    }
    r.shell.persist_devices();
    r.shell.persist_core();
    assert_eq!(r.shell.persisted_bytes(), first);
    // One new device: its record and its visit, not everyone's.
    r.shell
        .observe(&dhcp(21, DhcpMessageType::Request), &mut events);
    r.shell.persist_devices();
    r.shell.persist_core();
    let added = r.shell.persisted_bytes() - first;
    assert!(
        added > 0 && added < first / 5,
        "one device wrote {added} bytes"
    );
}
