//! The members' Wi-Fi in the lab: a real storegate with nftables, dnsmasq
//! and HQ's messages endpoint (as in `members`), and the hostapd stand-in
//! (`harness::hostapd`) reading the PSK file storegate writes.
//!
//! A member signs in with phone + code and "remember this device"; the
//! welcome page shows a personal passphrase; the phone joins the members'
//! SSID with it — the stand-in accepts it only if PBKDF2 of it over the
//! SSID is the file's PSK for that member's `keyid` — each time with a new
//! (rotated) MAC, and is let in at association: its first HTTP request
//! after DHCP reaches the internet, and `visit.started` says
//! `recognised_by: "wifi_key"`. A leave by disassociation ends presence at
//! once. A station with the member's old MAC but no key is not recognised.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::ctl::client_entry;
use crate::harness::hostapd::Standin;
use crate::harness::internet::inet_url;
use crate::harness::{self, Client, PORTAL};
use crate::members::{hq_lines, member_lab_with, phone_sign_in};
use crate::{check, check_eq, fail};

const PHONE: Client = Client::C1;
const SSID: &str = "Store Members";
/// Rejoins, each with a new private MAC.
const REJOINS: u8 = 20;

/// The passphrase the welcome page shows.
fn passphrase(page: &str) -> Option<String> {
    let marker = "<code class=\"wifi-passphrase\">";
    let start = page.find(marker)? + marker.len();
    let end = page[start..].find("</code>")?;
    Some(page[start..start + end].to_string())
}

/// The text of the page's QR code: the inline SVG rasterised
/// (`rsvg-convert`) and decoded (`zbarimg`), as a phone's camera would.
fn qr_text(lab: &harness::Lab, page: &str) -> String {
    let (Some(start), Some(end)) = (page.find("<svg"), page.find("</svg>")) else {
        fail!(lab, "no inline SVG QR code on the page");
    };
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("qr.svg");
    let png = dir.path().join("qr.png");
    std::fs::write(&svg, &page[start..end + "</svg>".len()]).unwrap();
    let raster = std::process::Command::new("rsvg-convert")
        .args(["--width", "600", "--background-color", "white", "-o"])
        .arg(&png)
        .arg(&svg)
        .output()
        .expect("run rsvg-convert (librsvg2-bin)");
    check!(lab, raster.status.success(), "rsvg-convert: {raster:?}");
    let decoded = std::process::Command::new("zbarimg")
        .args(["--raw", "-q"])
        .arg(&png)
        .output()
        .expect("run zbarimg (zbar-tools)");
    check!(
        lab,
        decoded.status.success(),
        "zbarimg found no code: {decoded:?}"
    );
    String::from_utf8_lossy(&decoded.stdout)
        .trim_end()
        .to_string()
}

/// A members' lab (HQ, nftables, dnsmasq) with the members' Wi-Fi
/// configured: the PSK file and hostapd's control socket in `dir`, side
/// by side.
struct WifiLab {
    lab: harness::Lab,
    gate: harness::Storegate,
    dir: tempfile::TempDir,
    psk_file: std::path::PathBuf,
}

fn wifi_lab(tag: &str) -> Option<WifiLab> {
    let dir = tempfile::tempdir().unwrap();
    let psk_file = dir.path().join("members.psk");
    let ctrl = psk_file.with_file_name("hostapd.ctrl");
    let extra = format!(
        "[members.wifi]\nssid = \"{SSID}\"\npsk_file = \"{}\"\nhostapd_ctrl = [\"{}\"]\n",
        psk_file.display(),
        ctrl.display()
    );
    let (lab, gate) = member_lab_with(tag, &extra)?;
    Some(WifiLab {
        lab,
        gate,
        dir,
        psk_file,
    })
}

/// A member signed in with a key, and hostapd up.
struct Keyed {
    hostapd: Standin,
    member: String,
    welcome: crate::harness::probe::Probe,
    pass: String,
}

/// hostapd comes up (storegate wrote the empty file at start); the
/// phone signs in with `phone` + code and reads its passphrase.
fn keyed(
    lab: &harness::Lab,
    gate: &harness::Storegate,
    psk_file: &std::path::Path,
    phone: &str,
) -> Keyed {
    let ctrl = psk_file.with_file_name("hostapd.ctrl");
    let hostapd = Standin::start(SSID, &ctrl, psk_file);
    let member = phone_sign_in(lab, gate, PHONE, phone, true);
    let welcome = lab.http(PHONE, &format!("{PORTAL}/welcome"));
    let Some(pass) = passphrase(welcome.body()) else {
        fail!(lab, "no passphrase on the welcome page: {welcome}");
    };
    Keyed {
        hostapd,
        member,
        welcome,
        pass,
    }
}

/// `visit.started` events HQ got for `member`, recognised by key.
fn started_by_key(lab: &harness::Lab, member: &str) -> usize {
    hq_lines(lab)
        .iter()
        .filter(|e| {
            e["type"] == "com.storegate.visit.started"
                && e["data"]["member_id"] == member
                && e["data"]["recognised_by"] == "wifi_key"
        })
        .count()
}

#[test]
fn a_member_with_a_personal_key_is_let_in_at_association_whatever_the_mac() {
    let _cpu = crate::timed();
    let Some(WifiLab {
        lab,
        gate,
        dir: _dir,
        psk_file,
        ..
    }) = wifi_lab("wifi")
    else {
        return;
    };
    let Keyed {
        mut hostapd,
        member,
        welcome,
        pass,
    } = keyed(&lab, &gate, &psk_file, "13812345678");
    check!(
        lab,
        welcome.body().contains("mobileconfig"),
        "no profile link: {welcome}"
    );
    // The QR code a phone scans says the same, in the WIFI: format.
    let qr = qr_text(&lab, welcome.body());
    check_eq!(
        lab,
        qr,
        format!("WIFI:T:WPA;S:{SSID};P:{pass};;"),
        "the QR code's text"
    );
    // The key reached hostapd: the file was rewritten and reloaded.
    let state = hostapd.wait_state(Duration::from_secs(3), |s| {
        s["reload_wpa_psk"].as_u64().unwrap_or(0) >= 1
    });
    check!(
        lab,
        state["reload_wpa_psk"].as_u64().unwrap_or(0) >= 1,
        "no RELOAD_WPA_PSK: {state}"
    );
    let old_mac = lab.client_mac(PHONE);

    // The phone leaves the open SSID.
    lab.link_down(PHONE);
    // A stranger with the member's old MAC but no key: not the member.
    gate.ctl_ok(&["deauth", &old_mac]);
    let wrong = hostapd.say(&format!("join {old_mac} not-the-key-1234"));
    check_eq!(lab, wrong, "refused", "a wrong passphrase joined");

    let mut recognised = 0;
    for n in 0..REJOINS {
        let mac = format!("02:5a:00:00:{:02x}:{:02x}", n, n.wrapping_mul(7));
        // A new private address; the phone associates (hostapd reports it)
        // before it can send a frame on the LAN.
        lab.set_mac(PHONE, &mac);
        let joined = hostapd.say(&format!("join {mac} {pass}"));
        check_eq!(
            lab,
            joined,
            format!("joined {member}"),
            "the stand-in did not take the passphrase for the member's keyid"
        );
        // Signed in at association, before any DHCP.
        let started = Instant::now();
        let entry = loop {
            let e = client_entry(&gate, &mac);
            if e.as_ref().is_some_and(|e| e["state"] == "authorized")
                || started.elapsed() > Duration::from_secs(3)
            {
                break e;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let entry = entry.unwrap_or(Value::Null);
        check_eq!(
            lab,
            entry["state"].as_str(),
            Some("authorized"),
            "rejoin {n}: {entry}"
        );
        check_eq!(
            lab,
            entry["member_id"].as_str(),
            Some(member.as_str()),
            "rejoin {n}"
        );
        lab.link_up(PHONE);
        lab.dhcp(PHONE);
        let first = lab.http_timeout(PHONE, &inet_url("/"), 2.0);
        if first.status() == Some(200) {
            recognised += 1;
        }
        // The phone walks out of range: its radio is gone, then the
        // access point says so.
        lab.link_down(PHONE);
        let left = hostapd.say(&format!("leave {mac}"));
        check_eq!(lab, left, "left", "the stand-in");
        // Gone at once: no probe to wait out.
        let gone = harness::wait_for(&lab, Duration::from_secs(2), "the leave", || {
            let devices = gate.ctl_json(&["devices"]);
            devices
                .as_array()
                .and_then(|a| a.iter().find(|d| d["mac"] == mac.as_str()))
                .filter(|d| d["present"] == false)
                .cloned()
        });
        check_eq!(lab, gone["present"], false, "rejoin {n}");
    }
    check_eq!(
        lab,
        recognised,
        REJOINS,
        "rejoins whose first request reached the internet"
    );

    // HQ hears of every visit, each recognised by the key.
    let delivered = Instant::now();
    while started_by_key(&lab, &member) < REJOINS as usize {
        if delivered.elapsed() > Duration::from_secs(20) {
            let all: Vec<Value> = hq_lines(&lab)
                .into_iter()
                .filter(|e| e["type"] == "com.storegate.visit.started")
                .map(|e| e["data"].clone())
                .collect();
            fail!(
                lab,
                "visit.started by key at HQ: {} of {REJOINS}; all: {all:?}; outbox: {}",
                started_by_key(&lab, &member),
                gate.ctl_json(&["status"])["outbox"]
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    harness::say(&format!(
        "wifi: {recognised} of {REJOINS} rejoins with a new MAC let in by key"
    ));
}

/// The stand-in's counters and stations.
fn count(state: &Value, key: &str) -> u64 {
    state[key].as_u64().unwrap_or(0)
}

/// Since `before`, hostapd was asked to reload its PSK file and to end a
/// station; else `failure`.
fn reloaded_and_ended(lab: &harness::Lab, hostapd: &mut Standin, before: &Value, failure: &str) {
    let done = |s: &Value| {
        count(s, "reload_wpa_psk") > count(before, "reload_wpa_psk")
            && count(s, "deauthenticate") > count(before, "deauthenticate")
    };
    let state = hostapd.wait_state(Duration::from_secs(3), done);
    check!(lab, done(&state), "{failure}: {state}");
}

#[test]
fn renewal_and_erasure_take_the_key_out_and_end_its_stations() {
    let Some(WifiLab {
        lab,
        gate,
        dir: _dir,
        psk_file,
        ..
    }) = wifi_lab("wifik")
    else {
        return;
    };
    let Keyed {
        mut hostapd,
        member,
        pass: old,
        ..
    } = keyed(&lab, &gate, &psk_file, "13812345679");
    // Another of the member's devices (a tablet) joins with the key.
    let tablet = "02:5a:7a:b1:e7:01";
    let joined = hostapd.say(&format!("join {tablet} {old}"));
    check_eq!(lab, joined, format!("joined {member}"), "the stand-in");
    let signed_in = harness::wait_for(&lab, Duration::from_secs(3), "the tablet signed in", || {
        client_entry(&gate, tablet).filter(|e| e["state"] == "authorized")
    });
    check_eq!(
        lab,
        signed_in["member_id"].as_str(),
        Some(member.as_str()),
        "{signed_in}"
    );
    let before = hostapd.state();

    // "Get a new key" on the phone that signed in: the old key stops at once.
    let renewed = lab.portal_post(PHONE, &format!("{PORTAL}/wifi/renew"), "lang=en");
    check!(
        lab,
        matches!(renewed.status(), Some(200 | 303)),
        "renewal: {renewed}"
    );
    let page = if renewed.status() == Some(303) {
        lab.http(PHONE, &format!("{PORTAL}/welcome"))
    } else {
        renewed
    };
    let Some(new) = passphrase(page.body()) else {
        fail!(lab, "no new passphrase after renewal: {page}");
    };
    check!(lab, new != old, "the renewed passphrase is the old one");
    reloaded_and_ended(
        &lab,
        &mut hostapd,
        &before,
        "renewal did not reload hostapd and end the tablet's association",
    );
    check_eq!(
        lab,
        hostapd.say(&format!("join {tablet} {old}")),
        "refused",
        "the old passphrase still joins"
    );
    check_eq!(
        lab,
        hostapd.say(&format!("join {tablet} {new}")),
        format!("joined {member}"),
        "the new passphrase"
    );

    // Erasure: the line goes, hostapd reloads, the station is ended.
    let before = hostapd.state();
    gate.ctl_ok(&["member-erase", &member]);
    reloaded_and_ended(
        &lab,
        &mut hostapd,
        &before,
        "erasure did not reload hostapd and end the station",
    );
    let file = std::fs::read_to_string(&psk_file).unwrap_or_default();
    check!(
        lab,
        !file.contains(&member),
        "the erased member's line is still there: {file}"
    );
    check_eq!(
        lab,
        hostapd.say(&format!("join {tablet} {new}")),
        "refused",
        "an erased member's key still joins"
    );
}

#[test]
fn a_restarted_hostapd_is_attached_again_and_no_join_is_missed() {
    let _cpu = crate::timed();
    let Some(WifiLab {
        lab,
        gate,
        dir: _dir,
        psk_file,
        ..
    }) = wifi_lab("wifir")
    else {
        return;
    };
    let Keyed {
        hostapd,
        member,
        pass,
        ..
    } = keyed(&lab, &gate, &psk_file, "13812345670");
    // hostapd restarts (its socket gone, then back on the same path) and
    // a phone joins the moment it is up.
    drop(hostapd);
    std::thread::sleep(Duration::from_millis(500));
    let ctrl = psk_file.with_file_name("hostapd.ctrl");
    let mut hostapd = Standin::start(SSID, &ctrl, &psk_file);
    let restarted = Instant::now();
    let station = "02:5a:7a:b1:e7:02";
    check_eq!(
        lab,
        hostapd.say(&format!("join {station} {pass}")),
        format!("joined {member}"),
        "the restarted stand-in"
    );
    harness::wait_for(
        &lab,
        Duration::from_secs(2),
        "the join after the restart",
        || client_entry(&gate, station).filter(|e| e["state"] == "authorized"),
    );
    let attached = hostapd.state();
    check!(
        lab,
        count(&attached, "attach") >= 1,
        "not attached again: {attached}"
    );
    harness::say(&format!(
        "wifi: hostapd restarted; the join that followed at once signed in within {:?}",
        restarted.elapsed()
    ));
}
