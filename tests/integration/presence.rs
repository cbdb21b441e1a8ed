//! The presence engine in the lab: real DHCP clients (dhclient, busybox
//! udhcpc, dhcpcd) join the guest LAN, stay and leave — one by
//! DHCPRELEASE, one by going silent (link down) — and storegate sees each
//! join and leave from the LAN traffic alone: devices with their own DHCP
//! fingerprints, visits with a plausible dwell, `visit.started` and
//! `visit.ended` in the outbox, and a rejoin within the gap continuing the
//! same visit.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{self, Client, DhcpClient, DhcpOptions, GateConfig, Lab, Storegate, wait_for};
use crate::{check, check_eq};

const C1: Client = Client::C1;
const C2: Client = Client::C2;

/// Fast presence timers so a leave and a visit end fit in a few seconds.
const FAST: &str = "[presence]\nprobe_after = \"1s\"\nleave_after = \"3s\"\nrejoin_gap = \"4s\"\n";

/// The lab's storegate config with the [`FAST`] presence timers.
fn fast() -> GateConfig {
    GateConfig {
        extra: FAST.into(),
        ..GateConfig::default()
    }
}

/// A lab whose clients have no address yet, and storegate watching it.
fn presence_lab(tag: &str) -> Option<(Lab, Storegate)> {
    let lab = Lab::without_dhcp(tag)?;
    let gate = lab.start_storegate_ready(&fast());
    Some((lab, gate))
}

fn device(gate: &Storegate, mac: &str) -> Option<Value> {
    gate.ctl_json(&["devices"])
        .as_array()?
        .iter()
        .find(|d| d["mac"].as_str() == Some(mac))
        .cloned()
}

/// The device's record if its `present` is `yes`.
fn present(gate: &Storegate, mac: &str, yes: bool) -> Option<Value> {
    device(gate, mac).filter(|d| d["present"] == yes)
}

/// Waits until c1 (`mac`), which sent a DHCPRELEASE, is no longer present.
fn gone_after_release(lab: &Lab, gate: &Storegate, mac: &str) {
    wait_for(
        lab,
        Duration::from_secs(3),
        "c1 gone after its release",
        || present(gate, mac, false),
    );
}

fn visits_of(gate: &Storegate, mac: &str) -> Vec<Value> {
    gate.ctl_json(&["visits"])
        .as_array()
        .map(|v| {
            v.iter()
                .filter(|x| x["mac"].as_str() == Some(mac))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

fn events_of(gate: &Storegate, ty: &str) -> Vec<Value> {
    gate.ctl_json(&["events", "--limit", "1000"])
        .as_array()
        .map(|v| v.iter().filter(|e| e["type"] == ty).cloned().collect())
        .unwrap_or_default()
}

#[test]
fn three_dhcp_clients_join_stay_and_leave() {
    let Some((lab, gate)) = presence_lab("pres") else {
        return;
    };
    let c1_mac = lab.client_mac(C1);
    // c2 plays a phone with a private (locally administered) address.
    let c2_mac = "02:5e:10:00:53:c2".to_string();
    lab.set_mac(C2, &c2_mac);

    let t0 = Instant::now();
    lab.dhcp_with(
        C1,
        DhcpClient::Dhclient,
        &DhcpOptions::with_hostname("pixel-7"),
    );
    lab.dhcp_with(
        C2,
        DhcpClient::Udhcpc,
        &DhcpOptions::with_hostname("iPhone"),
    );

    let d1 = wait_for(&lab, Duration::from_secs(5), "c1 seen as present", || {
        present(&gate, &c1_mac, true)
    });
    let d2 = wait_for(&lab, Duration::from_secs(5), "c2 seen as present", || {
        present(&gate, &c2_mac, true)
    });
    check_eq!(lab, d1["hostname"].as_str(), Some("pixel-7"), "{d1}");
    check_eq!(
        lab,
        d1["ip"].as_str(),
        Some(lab.client_ip(C1).as_str()),
        "{d1}"
    );
    check_eq!(lab, d1["mac_randomized"], false, "{d1}");
    check_eq!(
        lab,
        d1["os_family"].as_str(),
        Some("linux"),
        "dhclient's fingerprint: {d1}"
    );
    check_eq!(lab, d2["hostname"].as_str(), Some("iPhone"), "{d2}");
    check_eq!(
        lab,
        d2["mac_randomized"],
        true,
        "a locally administered MAC: {d2}"
    );
    check_eq!(
        lab,
        d2["os_family"].as_str(),
        Some("linux"),
        "udhcpc's fingerprint: {d2}"
    );
    check!(
        lab,
        d2["vendor_class"]
            .as_str()
            .is_some_and(|v| v.starts_with("udhcp")),
        "udhcpc names itself in option 60: {d2}"
    );
    check!(
        lab,
        d1["param_request_list"] != d2["param_request_list"],
        "each client has its own fingerprint: {d1} vs {d2}"
    );

    // Both visits started, and HQ will hear of them without a MAC. (Other
    // frames, such as c2's neighbour discovery under its old MAC, may start
    // visits of other devices: match events by visit id.)
    let v1 = visits_of(&gate, &c1_mac);
    let v2 = visits_of(&gate, &c2_mac);
    check_eq!(
        lab,
        (v1.len(), v2.len()),
        (1, 1),
        "one visit each: {v1:?} {v2:?}"
    );
    check!(
        lab,
        v1[0]["ended_at"].is_null(),
        "c1's visit is open: {v1:?}"
    );
    let started_for = |v: &Value| {
        events_of(&gate, "com.storegate.visit.started")
            .into_iter()
            .find(|e| e["data"]["visit_id"] == v["visit_id"])
    };
    let s1 = wait_for(&lab, Duration::from_secs(3), "visit.started for c1", || {
        started_for(&v1[0])
    });
    let s2 = wait_for(&lab, Duration::from_secs(3), "visit.started for c2", || {
        started_for(&v2[0])
    });
    check_eq!(lab, s1["data"]["mac_randomized"], false, "{s1}");
    check_eq!(lab, s2["data"]["mac_randomized"], true, "{s2}");
    check_eq!(lab, s1["data"]["os_family"].as_str(), Some("linux"), "{s1}");
    check_eq!(lab, s1["data"]["returning"], false, "{s1}");
    check!(lab, s1["data"]["member_id"].is_null(), "{s1}");
    check!(
        lab,
        s1["data"]["device_id"]
            .as_str()
            .is_some_and(|d| d.len() == 43),
        "{s1}"
    );
    check!(
        lab,
        s1["data"]["device_id"] != s2["data"]["device_id"],
        "{s1} {s2}"
    );
    let text = gate.ctl_json(&["events", "--limit", "1000"]).to_string();
    check!(
        lab,
        !text.contains(&c1_mac) && !text.contains(&c2_mac),
        "a raw MAC in events: {text}"
    );

    // Stay a while: ARP from the clients keeps them present past probe_after.
    std::thread::sleep(Duration::from_secs(2));
    check_eq!(
        lab,
        device(&gate, &c1_mac).map(|d| d["present"].clone()),
        Some(Value::Bool(true)),
        "c1 after 2 s"
    );

    // c1 leaves politely (DHCPRELEASE), c2 by vanishing.
    let left_at = Instant::now();
    lab.dhcp_release(C1);
    lab.link_down(C2);
    gone_after_release(&lab, &gate, &c1_mac);
    let gone = wait_for(
        &lab,
        Duration::from_secs(8),
        "c2 gone after going silent",
        || present(&gate, &c2_mac, false).map(|_| left_at.elapsed()),
    );
    check!(
        lab,
        gone >= Duration::from_millis(2500),
        "c2 declared gone before leave_after: {gone:?}"
    );

    // After the rejoin gap, both visits end, with the dwell of the stay.
    let ids = [v1[0]["visit_id"].clone(), v2[0]["visit_id"].clone()];
    let ended = wait_for(
        &lab,
        Duration::from_secs(10),
        "visit.ended for c1 and c2",
        || {
            let e: Vec<Value> = events_of(&gate, "com.storegate.visit.ended")
                .into_iter()
                .filter(|e| ids.contains(&e["data"]["visit_id"]))
                .collect();
            (e.len() == 2).then_some(e)
        },
    );
    let stayed = left_at.duration_since(t0).as_secs();
    for e in &ended {
        let dwell = e["data"]["dwell_seconds"].as_u64().unwrap_or(u64::MAX);
        check!(
            lab,
            dwell <= stayed + 4,
            "dwell {dwell} s for a stay of about {stayed} s: {e}"
        );
        check!(
            lab,
            dwell + 2 >= stayed.saturating_sub(1),
            "dwell {dwell} s for a stay of about {stayed} s: {e}"
        );
        check_eq!(
            lab,
            e["data"]["classification"].as_str(),
            Some("visitor"),
            "{e}"
        );
    }
    let v1 = visits_of(&gate, &c1_mac);
    check!(
        lab,
        v1[0]["ended_at"].is_string(),
        "c1's visit has ended: {v1:?}"
    );
    harness::say(&format!(
        "presence: c2 declared gone {gone:?} after going silent; dwell {stayed} s"
    ));
}

#[test]
fn a_rejoin_within_the_gap_continues_the_visit() {
    let Some((lab, gate)) = presence_lab("rejoin") else {
        return;
    };
    let mac = lab.client_mac(C1);
    lab.dhcp(C1);
    let first = wait_for(&lab, Duration::from_secs(5), "a visit for c1", || {
        visits_of(&gate, &mac).first().cloned()
    });
    lab.dhcp_release(C1);
    gone_after_release(&lab, &gate, &mac);
    // Back within the 4 s gap.
    lab.dhcp(C1);
    wait_for(&lab, Duration::from_secs(3), "c1 present again", || {
        present(&gate, &mac, true)
    });
    std::thread::sleep(Duration::from_secs(5));
    let visits = visits_of(&gate, &mac);
    check_eq!(lab, visits.len(), 1, "one visit, continued: {visits:?}");
    check_eq!(lab, visits[0]["visit_id"], first["visit_id"], "{visits:?}");
    check!(
        lab,
        visits[0]["ended_at"].is_null(),
        "still open: {visits:?}"
    );
    // Exactly one visit.started for it, and no visit.ended yet (other
    // devices, such as c2's neighbour discovery, may have visits of their own).
    let id = &first["visit_id"];
    let mine = |ty: &str| {
        events_of(&gate, ty)
            .into_iter()
            .filter(|e| &e["data"]["visit_id"] == id)
            .count()
    };
    check_eq!(
        lab,
        mine("com.storegate.visit.started"),
        1,
        "one visit.started for the visit"
    );
    check_eq!(
        lab,
        mine("com.storegate.visit.ended"),
        0,
        "no visit.ended yet"
    );
}

#[test]
fn dhcpcd_is_recognised_by_its_fingerprint() {
    let Some((lab, gate)) = presence_lab("dhcpcd") else {
        return;
    };
    let mac = "02:5e:10:00:53:dd".to_string();
    lab.set_mac(C2, &mac);
    lab.dhcp_with(C2, DhcpClient::Dhcpcd, &DhcpOptions::default());
    let d = wait_for(
        &lab,
        Duration::from_secs(5),
        "the dhcpcd client present",
        || present(&gate, &mac, true),
    );
    check!(
        lab,
        d["vendor_class"]
            .as_str()
            .is_some_and(|v| v.starts_with("dhcpcd")),
        "dhcpcd names itself in option 60: {d}"
    );
    check_eq!(lab, d["os_family"].as_str(), Some("linux"), "{d}");
    check_eq!(lab, d["mac_randomized"], true, "{d}");
    check_eq!(
        lab,
        d["ip"].as_str(),
        Some(lab.client_ip(C2).as_str()),
        "{d}"
    );
}

/// Devices, open visits and footfall survive a restart of the daemon: the
/// visit goes on under the same id and is not started twice.
#[test]
fn presence_survives_a_restart() {
    let Some((lab, mut gate)) = presence_lab("prestart") else {
        return;
    };
    let mac = lab.client_mac(C1);
    lab.dhcp(C1);
    let visit = wait_for(&lab, Duration::from_secs(5), "a visit for c1", || {
        visits_of(&gate, &mac).first().cloned()
    });
    let before = gate.ctl_json(&["footfall"]);
    gate.sigterm_and_wait();

    let gate = lab.start_storegate_ready(&fast());
    let d = device(&gate, &mac);
    check!(
        lab,
        d.as_ref()
            .is_some_and(|d| d["present"] == true && d["ip"].is_string()),
        "device record after restart: {d:?}"
    );
    let visits = visits_of(&gate, &mac);
    check_eq!(lab, visits.len(), 1, "{visits:?}");
    check_eq!(
        lab,
        visits[0]["visit_id"],
        visit["visit_id"],
        "the same visit goes on: {visits:?}"
    );
    check!(lab, visits[0]["ended_at"].is_null(), "{visits:?}");
    // c1 is still here (its dhclient keeps talking, and it answers probes).
    std::thread::sleep(Duration::from_secs(4));
    check_eq!(
        lab,
        visits_of(&gate, &mac)[0]["ended_at"],
        Value::Null,
        "visit still open after the restart"
    );
    let after = gate.ctl_json(&["footfall"]);
    let arrivals = |f: &Value| {
        f["days"]
            .as_array()
            .and_then(|d| d.last())
            .and_then(|d| d["arrivals"].as_u64())
    };
    let (b, a) = (arrivals(&before), arrivals(&after));
    check!(
        lab,
        b.is_some_and(|b| b >= 1),
        "c1 arrived before the restart: {before}"
    );
    // Other lab devices may arrive meanwhile; nothing counted may be lost.
    check!(
        lab,
        a >= b,
        "footfall kept across the restart: {before} vs {after}"
    );
    check!(
        lab,
        after["present_now"].as_u64().is_some_and(|n| n >= 1),
        "{after}"
    );
    let started: Vec<Value> = events_of(&gate, "com.storegate.visit.started")
        .into_iter()
        .filter(|e| e["data"]["visit_id"] == visit["visit_id"])
        .collect();
    check_eq!(
        lab,
        started.len(),
        1,
        "no second visit.started: {started:?}"
    );
}
