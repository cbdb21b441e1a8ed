//! Members in the lab: a real storegate with nftables and dnsmasq, HQ's
//! messages endpoint played by `storegate hq-receiver` on the gateway's
//! loopback (it prints each OTP text, which is how the test reads the
//! code), and shoppers' phones that sign in through the portal and come
//! back with a fresh DHCP lease.
//!
//! - A member who signed in with phone + code and "remember this device"
//!   comes back: the phone is let in on its DHCP request, so its very
//!   first HTTP request after getting an address reaches the internet.
//! - Too many wrong codes lock the phone number out, with a clear page.
//! - `ctl member-erase` forgets the member: the phone is a stranger again
//!   and nothing about the member is left in `ctl` output.
//! - The same member on a new MAC moves the binding; the old MAC is no
//!   longer recognised. A member who did not tick "remember this device"
//!   is not recognised on return. (Member numbers, which prove nothing,
//!   remember a device only where the operator trusts them: that test's
//!   config does.)

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::ctl::client_entry;
use crate::harness::internet::inet_url;
use crate::harness::{self, Client, GateConfig, Lab, PORTAL, Storegate};
use crate::{check, check_eq};

const C1: Client = Client::C1;
const C2: Client = Client::C2;
const SECRET: &str = "whsec_c3RvcmVnYXRlLW1lbWJlcnMtbGFiLXRlc3Qta2V5";
const HQ_PORT: u16 = 18080;
/// Opts a lab's storegate into trusting member numbers.
const TRUST_NUMBERS: &str = "[members]\nmember_number_trusted = true\n";

/// A lab with HQ (the reference receiver) on the gateway's loopback and
/// storegate delivering to it.
fn member_lab(tag: &str) -> Option<(Lab, Storegate)> {
    member_lab_with(tag, "")
}

/// [`member_lab`] with more config (new sections only, such as
/// `[members]`).
pub(crate) fn member_lab_with(tag: &str, extra: &str) -> Option<(Lab, Storegate)> {
    let lab = Lab::new(tag)?;
    lab.start_in(
        lab.gw_ns(),
        &harness::storegate_bin(),
        &[
            "hq-receiver",
            "--listen",
            &format!("127.0.0.1:{HQ_PORT}"),
            "--secret",
            SECRET,
        ],
        "hq.log",
    );
    let started = Instant::now();
    while !std::fs::read_to_string(lab.file("hq.log"))
        .unwrap_or_default()
        .contains("listening on")
    {
        check!(
            lab,
            started.elapsed() < Duration::from_secs(10),
            "hq-receiver did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let gate = lab.start_storegate_ready(&member_config(extra));
    Some((lab, gate))
}

/// The config of a [`member_lab_with`]: HQ, and `extra`.
pub(crate) fn member_config(extra: &str) -> GateConfig {
    GateConfig {
        extra: format!(
            "[hq]\nurl = \"http://127.0.0.1:{HQ_PORT}/hq\"\nsecret = \"{SECRET}\"\n\n{extra}"
        ),
        ..GateConfig::default()
    }
}

fn inet() -> String {
    inet_url("/")
}

/// What HQ printed: one JSON value a line of `hq.log`.
pub(crate) fn hq_lines(lab: &Lab) -> Vec<Value> {
    let log = std::fs::read_to_string(lab.file("hq.log")).unwrap_or_default();
    log.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

/// The newest OTP text HQ got for a phone ending in `last_digits`.
fn otp_sent(lab: &Lab, last_digits: &str, after: usize) -> (String, usize) {
    let started = Instant::now();
    loop {
        let codes: Vec<String> = hq_lines(lab)
            .into_iter()
            .filter(|v| {
                v["message"]["kind"] == "otp"
                    && v["message"]["phone"]
                        .as_str()
                        .is_some_and(|p| p.ends_with(last_digits))
            })
            .filter_map(|v| v["message"]["code"].as_str().map(String::from))
            .collect();
        if codes.len() > after {
            return (codes[codes.len() - 1].clone(), codes.len());
        }
        check!(
            lab,
            started.elapsed() < Duration::from_secs(10),
            "no OTP text for …{last_digits} reached HQ"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn form(consent: bool) -> &'static str {
    if consent {
        "&remember_device=yes&marketing=yes"
    } else {
        ""
    }
}

/// Phone + code sign-in; returns the member id `ctl clients` shows.
pub(crate) fn phone_sign_in(
    lab: &Lab,
    gate: &Storegate,
    c: Client,
    phone: &str,
    remember: bool,
) -> String {
    let last4 = &phone[phone.len() - 4..];
    let before = otp_count(lab, last4);
    let p = lab.portal_post(
        c,
        &format!("{PORTAL}/signin/code"),
        &format!("phone={phone}{}&staff=poster-7", form(remember)),
    );
    check_eq!(lab, p.status(), Some(200), "code requested: {p}");
    let (code, _) = otp_sent(lab, last4, before);
    let p = lab.portal_post(
        c,
        &format!("{PORTAL}/signin/verify"),
        &format!("phone={phone}&code={code}{}&staff=poster-7", form(remember)),
    );
    check_eq!(lab, p.status(), Some(303), "code verified: {p}");
    member_of(lab, gate, c)
}

fn otp_count(lab: &Lab, last4: &str) -> usize {
    hq_lines(lab)
        .iter()
        .filter(|v| {
            v["message"]["phone"]
                .as_str()
                .is_some_and(|p| p.ends_with(last4))
        })
        .count()
}

fn number_sign_in(lab: &Lab, gate: &Storegate, c: Client, number: &str, remember: bool) -> String {
    let p = lab.portal_post(
        c,
        &format!("{PORTAL}/signin/member"),
        &format!("member_number={number}{}", form(remember)),
    );
    check_eq!(lab, p.status(), Some(303), "member-number sign-in: {p}");
    member_of(lab, gate, c)
}

/// The client's `ctl clients` entry: authorised, with a member id.
fn member_of(lab: &Lab, gate: &Storegate, c: Client) -> String {
    let e = entry(gate, &lab.client_mac(c));
    check_eq!(lab, e["state"].as_str(), Some("authorized"), "{e}");
    match e["member_id"].as_str() {
        Some(m) if m.starts_with("m_") => m.to_string(),
        _ => crate::fail!(lab, "no member id for {}: {e}", c.name()),
    }
}

/// The client's `ctl clients` entry, or `null`.
fn entry(gate: &Storegate, mac: &str) -> Value {
    client_entry(gate, mac).unwrap_or(Value::Null)
}

/// The phone leaves (its session is over: a day later, say) and comes
/// back with a new lease; returns the status of its very first HTTP
/// request once it has an address.
fn leave_and_rejoin(lab: &Lab, gate: &Storegate, c: Client) -> Option<u16> {
    let mac = lab.client_mac(c);
    gate.ctl_ok(&["deauth", &mac]);
    lab.dhcp_release(c);
    join(lab, c)
}

/// The phone gets a lease; returns the status of its very first HTTP
/// request once it has an address.
fn join(lab: &Lab, c: Client) -> Option<u16> {
    lab.dhcp(c);
    lab.http_timeout(c, &inet(), 2.0).status()
}

#[test]
fn a_remembered_member_comes_back_without_the_portal_until_erased() {
    let Some((lab, gate)) = member_lab("memb") else {
        return;
    };
    let member = phone_sign_in(&lab, &gate, C1, "13800138001", true);
    check_eq!(lab, lab.http_timeout(C1, &inet(), 2.0).status(), Some(200));
    let members = gate.ctl_json(&["members"]);
    let listed = members
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["member_id"] == member.as_str())
        .cloned()
        .unwrap_or(Value::Null);
    check_eq!(
        lab,
        listed["phone_last4"].as_str(),
        Some("8001"),
        "{members}"
    );
    check_eq!(
        lab,
        listed["staff_code"].as_str(),
        Some("poster-7"),
        "{members}"
    );
    check!(
        lab,
        !members.to_string().contains("13800138001"),
        "the full phone number is kept: {members}"
    );

    // Back the next day: let in on its DHCP request.
    let first = leave_and_rejoin(&lab, &gate, C1);
    check_eq!(
        lab,
        first,
        Some(200),
        "a remembered member's first request after rejoining"
    );
    let e = entry(&gate, &lab.client_mac(C1));
    check_eq!(lab, e["member_id"].as_str(), Some(member.as_str()), "{e}");
    // HQ heard of both: the link (with the staff code) and the return.
    let started = Instant::now();
    loop {
        let events: Vec<Value> = hq_lines(&lab)
            .into_iter()
            .filter(|v| v["data"]["member_id"] == member.as_str())
            .collect();
        let linked = events.iter().any(|e| {
            e["type"] == "com.storegate.member.linked" && e["data"]["staff_code"] == "poster-7"
        });
        let returned = events.iter().any(|e| {
            e["type"] == "com.storegate.session.authorized"
                && e["data"]["method"] == "returning_device"
        });
        if linked && returned {
            break;
        }
        check!(
            lab,
            started.elapsed() < Duration::from_secs(10),
            "HQ got member.linked {linked}, returning_device {returned}: {events:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Wrong codes on c2: locked out with a clear page.
    let p = lab.portal_post(C2, &format!("{PORTAL}/signin/code"), "phone=13800138002");
    check_eq!(lab, p.status(), Some(200), "code requested: {p}");
    let mut last = None;
    for _ in 0..6 {
        let p = lab.portal_post(
            C2,
            &format!("{PORTAL}/signin/verify"),
            "phone=13800138002&code=000000",
        );
        last = p.status();
        if last == Some(429) {
            check!(
                lab,
                p.body().contains("15"),
                "the lockout page says for how long: {p}"
            );
            break;
        }
        check_eq!(lab, last, Some(400), "a wrong code: {p}");
    }
    check_eq!(
        lab,
        last,
        Some(429),
        "too many wrong codes lock the phone out"
    );
    check_eq!(
        lab,
        entry(&gate, &lab.client_mac(C2))["state"].as_str(),
        Some("preauth")
    );

    // Erased: a stranger again, and gone from every listing.
    gate.ctl_ok(&["member-erase", &member]);
    for what in ["members", "clients", "devices", "visits"] {
        let listing = gate.ctl_json(&[what]).to_string();
        check!(
            lab,
            !listing.contains(&member),
            "ctl {what} still names the erased member: {listing}"
        );
    }
    let first = leave_and_rejoin(&lab, &gate, C1);
    check_eq!(lab, first, Some(302), "an erased member is captured again");
    harness::say("members: remembered phone let in on rejoin; lockout; erasure");
}

#[test]
fn the_binding_moves_with_a_new_mac_and_needs_consent() {
    let Some((lab, gate)) = member_lab_with("memm", TRUST_NUMBERS) else {
        return;
    };
    let old_mac = lab.client_mac(C1);
    let member = number_sign_in(&lab, &gate, C1, "20261130", true);

    // The phone rotated its private address: a stranger, until the member
    // signs in again.
    let new_mac = "02:00:5e:00:53:77";
    lab.set_mac(C1, new_mac);
    let first = join(&lab, C1);
    check_eq!(
        lab,
        first,
        Some(302),
        "a new private address is not recognised"
    );
    let again = number_sign_in(&lab, &gate, C1, "20261130", true);
    check_eq!(lab, again, member, "the same member");
    let first = leave_and_rejoin(&lab, &gate, C1);
    check_eq!(lab, first, Some(200), "the new address is recognised");

    // The old address no longer is (its first session long over).
    gate.ctl(&["deauth", new_mac]);
    gate.ctl(&["deauth", &old_mac]);
    lab.set_mac(C1, &old_mac);
    let first = join(&lab, C1);
    check_eq!(
        lab,
        first,
        Some(302),
        "the binding moved away from the old address"
    );

    // No "remember this device": signed in now, a stranger next time.
    let other = number_sign_in(&lab, &gate, C2, "20261131", false);
    check!(lab, other != member);
    let first = leave_and_rejoin(&lab, &gate, C2);
    check_eq!(lab, first, Some(302), "no consent, no remembering");
    harness::say("members: binding moved to the new MAC; no consent, not remembered");
}
