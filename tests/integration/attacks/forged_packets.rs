//! One guest's raw frames naming other devices: a DHCP `chaddr` or an ARP
//! sender address that is not the frame's Ethernet source. Before the
//! fix, 25,000 forged DISCOVERs made 20,000 "present" devices and a forged
//! `chaddr` equal to a remembered member's MAC let that MAC in and
//! reported the member's arrival.

use std::time::Duration;

use serde_json::Value;

use crate::harness::{self, Client, GateConfig, PORTAL, gate_lab};
use crate::{check, check_eq};

const ATTACKER: Client = Client::C2;
const PHONE: Client = Client::C1;
/// Forged DHCP DISCOVERs, and as many forged ARP requests and DHCPACKs.
const FLOOD: usize = 25_000;
/// The devices the box may know after the flood: the phone, the attacker
/// (its own frames are genuine) and room for the box's own neighbours.
const MAX_DEVICES: usize = 4;

fn devices(gate: &harness::Storegate) -> Vec<Value> {
    match gate.ctl_json(&["devices"]) {
        Value::Array(a) => a,
        other => panic!("ctl devices: {other}"),
    }
}

/// The daemon still answers: the sign-in page loads.
fn still_serving(lab: &harness::Lab) {
    let login = lab.http(PHONE, &format!("{PORTAL}/login"));
    check_eq!(
        lab,
        login.status(),
        Some(200),
        "the portal after the flood: {login}"
    );
}

/// Frames the capture has read, plus those the kernel dropped for it.
fn frames_seen(gate: &harness::Storegate) -> u64 {
    let status = gate.ctl_json(&["status"]);
    let frames = &status["presence"]["frames"];
    frames["frames"].as_u64().unwrap_or(0) + frames["kernel_drops"].as_u64().unwrap_or(0)
}

fn spoofed(gate: &harness::Storegate) -> u64 {
    let status = gate.ctl_json(&["status"]);
    status["presence"]["frames"]["malformed"]["spoofed"]
        .as_u64()
        .unwrap_or(0)
}

#[test]
fn a_flood_of_invented_phones_is_not_believed_and_a_real_one_is_tracked() {
    let _cpu = crate::heavy();
    let Some((lab, gate)) = gate_lab("forge", GateConfig::default()) else {
        return;
    };
    let phone_mac = lab.client_mac(PHONE);
    let before = frames_seen(&gate);
    let sent = std::thread::scope(|s| {
        let flood = s.spawn(|| lab.forge(ATTACKER, "flood", &[&FLOOD.to_string()]));
        // A real phone joins while the flood is on.
        std::thread::sleep(Duration::from_millis(200));
        lab.dhcp(PHONE);
        flood.join().expect("the flood thread")
    });
    check_eq!(
        lab,
        sent["sent"].as_u64(),
        Some(3 * FLOOD as u64),
        "forge.py: {sent}"
    );
    // Let the capture drain what the kernel queued.
    let flood = 3 * FLOOD as u64;
    harness::wait_for(
        &lab,
        Duration::from_secs(20),
        "the capture to read the flood",
        || (frames_seen(&gate) >= before + flood).then_some(()),
    );
    let known = devices(&gate);
    let status = gate.ctl_json(&["status"]);
    check!(
        lab,
        known.len() <= MAX_DEVICES,
        "{} devices after {FLOOD} forged DISCOVERs, ARPs and ACKs (at most {MAX_DEVICES}): {}",
        known.len(),
        status["presence"]
    );
    let foreign = status["presence"]["frames"]["malformed"]["foreign_dhcp_server"]
        .as_u64()
        .unwrap_or(0);
    check!(
        lab,
        spoofed(&gate) + foreign >= flood / 2,
        "the forged frames were not counted as spoofed or foreign: {}",
        status["presence"]
    );
    let phone = known.iter().find(|d| d["mac"] == phone_mac.as_str());
    check!(
        lab,
        phone.is_some_and(|d| d["present"] == true),
        "the phone that joined during the flood is not tracked: {known:?}"
    );
    let visits = gate.ctl_json(&["visits"]);
    check!(
        lab,
        visits
            .as_array()
            .is_some_and(|v| v.iter().any(|v| v["mac"] == phone_mac.as_str())),
        "no visit for the phone: {visits}"
    );
    // The daemon still serves.
    still_serving(&lab);
    harness::say(&format!(
        "forged flood: {} frames in {} ms, {} devices known, {} counted as spoofed",
        sent["sent"],
        sent["elapsed_ms"],
        known.len(),
        spoofed(&gate)
    ));
}

#[test]
fn a_forged_chaddr_of_a_remembered_member_lets_nobody_in() {
    // Member numbers remember a device only where the operator trusts
    // them; this store does, so the member's phone is bound.
    let cfg = GateConfig {
        extra: "[members]\nmember_number_trusted = true\n".into(),
        ..GateConfig::default()
    };
    let Some((lab, gate)) = gate_lab("forgem", cfg) else {
        return;
    };
    let member_mac = lab.client_mac(PHONE);
    // The member signs in with "remember this device", then leaves.
    let p = lab.portal_post(
        PHONE,
        &format!("{PORTAL}/signin/member"),
        "member_number=8800123456&remember_device=yes",
    );
    check_eq!(lab, p.status(), Some(303), "member sign-in: {p}");
    let members = gate.ctl_json(&["members"]);
    check!(
        lab,
        members
            .as_array()
            .is_some_and(|a| a.iter().any(|m| m["devices"]
                .as_array()
                .is_some_and(|d| d.iter().any(|d| d == member_mac.as_str())))),
        "the member's phone is not remembered: {members}"
    );
    gate.ctl_ok(&["deauth", &member_mac]);
    lab.dhcp_release(PHONE);
    lab.link_down(PHONE);
    let authorised_before = session_events(&gate);
    let before = frames_seen(&gate);

    // The attacker sends DHCP and ARP naming the member's phone.
    let sent = lab.forge(ATTACKER, "as", &[&member_mac]);
    check_eq!(lab, sent["sent"].as_u64(), Some(3), "forge.py: {sent}");
    harness::wait_for(
        &lab,
        Duration::from_secs(3),
        "the capture to read the frames",
        || (frames_seen(&gate) >= before + 3).then_some(()),
    );
    // Give a (wrong) sign-in the time it would take.
    std::thread::sleep(Duration::from_millis(300));
    let clients = gate.ctl_json(&["clients"]);
    let member = clients
        .as_array()
        .and_then(|a| a.iter().find(|c| c["mac"] == member_mac.as_str()));
    check!(
        lab,
        member.is_none_or(|c| c["state"] != "authorized"),
        "a forged chaddr let the member's MAC in: {clients}"
    );
    check_eq!(
        lab,
        session_events(&gate),
        authorised_before,
        "a forged chaddr produced a returning-member sign-in"
    );
    check!(
        lab,
        spoofed(&gate) >= 3,
        "the forged frames were not refused"
    );
}

/// `session.authorized` events with method `returning_device` in the
/// outbox.
fn session_events(gate: &harness::Storegate) -> usize {
    let events = gate.ctl_json(&["events", "--limit", "10000"]);
    events.as_array().map_or(0, |a| {
        a.iter()
            .filter(|e| {
                e["type"] == "com.storegate.session.authorized"
                    && e["data"]["method"] == "returning_device"
            })
            .count()
    })
}

#[test]
fn invented_phones_that_speak_for_themselves_are_taken_in_at_a_shoppers_pace() {
    let _cpu = crate::heavy();
    let Some((lab, gate)) = gate_lab("forges", GateConfig::default()) else {
        return;
    };
    const INVENTED: u64 = 5_000;
    let sightings = |gate: &harness::Storegate| {
        gate.ctl_json(&["status"])["presence"]["frames"]["sightings"]
            .as_u64()
            .unwrap_or(0)
    };
    let before = sightings(&gate);
    let before_frames = frames_seen(&gate);
    let sent = lab.forge(ATTACKER, "flood-src", &[&INVENTED.to_string()]);
    check_eq!(
        lab,
        sent["sent"].as_u64(),
        Some(INVENTED),
        "forge.py: {sent}"
    );
    // Let the capture drain: every frame read or dropped by the kernel
    // (a loaded machine drops some), then no more coming.
    let frames_before = before_frames;
    harness::wait_for(
        &lab,
        Duration::from_secs(20),
        "the capture to read the flood",
        || (frames_seen(&gate) >= frames_before + INVENTED).then_some(()),
    );
    let mut last = frames_seen(&gate);
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = frames_seen(&gate);
        if now == last {
            break;
        }
        last = now;
    }
    let status = gate.ctl_json(&["status"]);
    let known = status["presence"]["devices_known"].as_u64().unwrap_or(0);
    let limited = status["presence"]["untracked"]["rate_limited"]
        .as_u64()
        .unwrap_or(0);
    // Each invented phone sent one DISCOVER: each sighting read is one
    // new device asking in.
    let asked = sightings(&gate) - before;
    check!(
        lab,
        asked >= INVENTED / 2,
        "only {asked} of {INVENTED} invented phones were read: {}",
        status["presence"]
    );
    // The default budget: 600 a minute, refilled evenly (10 a second).
    check!(
        lab,
        known <= 700,
        "{known} devices after {asked} invented phones (budget 600 a minute): {}",
        status["presence"]
    );
    check!(
        lab,
        limited + 700 >= asked,
        "only {limited} of {asked} counted over the budget: {}",
        status["presence"]
    );
    still_serving(&lab);
    harness::say(&format!(
        "invented phones: {INVENTED} sent, {asked} read, {known} taken in, {limited} over the budget"
    ));
}
