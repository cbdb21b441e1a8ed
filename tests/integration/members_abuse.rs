//! Member sign-in against a hostile guest, in the lab (root): a real
//! storegate with nftables and dnsmasq, and a phone that posts the
//! portal's forms in a loop and changes its MAC address at will.
//!
//! - 500 member-number sign-ins from one device, then 500 more from 50
//!   MACs: the device's and the box's hourly caps hold, stored members
//!   stay under `members.max_members`, none of them carries a consent or
//!   a remembered device, `member.linked` events stay under the box's
//!   cap, and the portal keeps answering.
//! - A phone number of another country is refused with a clear page and
//!   nothing reaches HQ's messages endpoint; a code request without the
//!   sign-in page's ticket sends nothing either; the box's hourly cap on
//!   texts still holds after the daemon restarts.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::process::python;
use crate::harness::{self, Client, GW_V4, GateConfig, Lab, PORTAL, PORTAL_PORT, Storegate};
use crate::members::{hq_lines, member_config, member_lab_with};
use crate::{check, check_eq, fail};

const C1: Client = Client::C1;
const C2: Client = Client::C2;
/// The box's member-number attempts an hour, and stored members, in (a).
const NUMBERS_PER_HOUR: u64 = 60;
const MAX_MEMBERS: usize = 40;
/// Attempts per device an hour (not configurable).
const PER_DEVICE: u64 = 10;

/// GETs the sign-in page and posts a member-number sign-in with every
/// box ticked, `n` times with numbers from `start` on, over one
/// keep-alive connection; prints the count of each status and a body of
/// each. A device that has just changed its MAC is not known to the
/// portal until the gateway has resolved it: the page then has no form
/// token, and the script asks again (up to 5 s) before it posts.
const SIGN_INS: &str = r#"
import http.client, json, re, sys, time
host, port, start, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
conn = None
def ask(method, path, body=None):
    global conn
    for _ in range(2):
        try:
            if conn is None:
                conn = http.client.HTTPConnection(host, port, timeout=5)
            headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
            conn.request(method, path, body=body, headers=headers)
            r = conn.getresponse()
            data = r.read().decode("utf-8", "replace")
            if (r.getheader("connection") or "").lower() == "close":
                conn.close()
                conn = None
            return r.status, data
        except (OSError, http.client.HTTPException):
            conn = None
    return 0, ""
counts, bodies = {}, {}
def token():
    for _ in range(50):
        _, page = ask("GET", "/login?lang=en")
        m = re.search(r'name="csrf" value="([^"]+)"', page)
        if m:
            return m.group(1)
        time.sleep(0.1)
    return ""
for i in range(n):
    form = "member_number=%d&remember_device=yes&marketing=yes&lang=en&csrf=%s" % (
        start + i, token())
    status, body = ask("POST", "/signin/member", form)
    counts[str(status)] = counts.get(str(status), 0) + 1
    bodies.setdefault(str(status), body[:3000])
print(json.dumps({"counts": counts, "bodies": bodies}))
"#;

/// `n` member-number sign-ins from `c` as it is now; (status → count,
/// status → a body).
fn sign_ins(lab: &Lab, c: Client, start: u64, n: u64) -> (BTreeMap<String, u64>, Value) {
    let out = lab.exec(
        lab.ns(c),
        python(),
        &[
            "-c",
            SIGN_INS,
            GW_V4,
            &PORTAL_PORT.to_string(),
            &start.to_string(),
            &n.to_string(),
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let Ok(v) = serde_json::from_str::<Value>(text.trim()) else {
        fail!(
            lab,
            "the sign-in loop in {} failed: {text}{}",
            c.name(),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let counts = v["counts"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, n)| (k.clone(), n.as_u64().unwrap_or(0)))
        .collect();
    (counts, v["bodies"].clone())
}

fn count(counts: &BTreeMap<String, u64>, status: &str) -> u64 {
    counts.get(status).copied().unwrap_or(0)
}

/// `member.linked` events in the outbox (there is no HQ in this lab).
fn linked_events(gate: &Storegate) -> Vec<Value> {
    let events = gate.ctl_json(&["events", "--limit", "100000"]);
    events
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["type"] == "com.storegate.member.linked")
        .cloned()
        .collect()
}

#[test]
fn member_number_sign_ins_stay_under_the_caps_from_one_device_and_fifty_macs() {
    let cfg = GateConfig {
        extra: format!(
            "[members]\nmember_number_per_hour = {NUMBERS_PER_HOUR}\nmax_members = {MAX_MEMBERS}\n"
        ),
        ..GateConfig::default()
    };
    let Some((lab, gate)) = harness::gate_lab("mabn", cfg) else {
        return;
    };
    let _load = crate::timed();

    // One device, 500 numbers: ten an hour.
    let (counts, bodies) = sign_ins(&lab, C1, 30_000_000, 500);
    check_eq!(lab, count(&counts, "303"), PER_DEVICE, "{counts:?}");
    check_eq!(lab, count(&counts, "429"), 500 - PER_DEVICE, "{counts:?}");
    let refusal = bodies["429"].as_str().unwrap_or("");
    check!(
        lab,
        refusal.contains("Too many member-number sign-ins"),
        "the refusal says why: {refusal}"
    );

    // Fifty MACs, ten numbers each: the box's cap holds whatever the MAC.
    let mut signed_in = count(&counts, "303");
    let mut refused = 0;
    for k in 0..50u64 {
        lab.set_mac(C2, &format!("02:00:5e:10:00:{k:02x}"));
        lab.dhcp(C2);
        let (counts, _) = sign_ins(&lab, C2, 31_000_000 + k * 100, 10);
        check_eq!(
            lab,
            count(&counts, "303") + count(&counts, "429"),
            10,
            "MAC {k}: {counts:?}"
        );
        signed_in += count(&counts, "303");
        refused += count(&counts, "429");
    }
    check_eq!(lab, signed_in, NUMBERS_PER_HOUR, "sign-ins in the hour");
    check_eq!(lab, refused, 500 - (NUMBERS_PER_HOUR - PER_DEVICE));

    // What is stored: under the cap, no consent, no remembered device.
    let members = gate.ctl_json(&["members"]);
    let list = members.as_array().cloned().unwrap_or_default();
    check!(
        lab,
        !list.is_empty() && list.len() <= MAX_MEMBERS,
        "{} members stored (cap {MAX_MEMBERS})",
        list.len()
    );
    for m in &list {
        check!(
            lab,
            m["devices"].as_array().is_some_and(Vec::is_empty)
                && m["consents"]["remember_device"].is_null()
                && m["consents"]["marketing"].is_null(),
            "a member number stored consent or a device: {m}"
        );
    }
    let linked = linked_events(&gate);
    check!(
        lab,
        linked.len() as u64 <= NUMBERS_PER_HOUR,
        "{} member.linked events",
        linked.len()
    );
    check!(
        lab,
        linked
            .iter()
            .all(|e| e["data"]["marketing"] == false && e["data"]["remember_device"] == false),
        "member.linked reports a consent: {linked:?}"
    );
    check_eq!(
        lab,
        gate.ctl_json(&["status"])["members"]["bound_devices"].as_u64(),
        Some(0)
    );

    // The portal keeps answering, and a guest still gets online.
    let started = Instant::now();
    let page = lab.http(C1, &format!("{PORTAL}/login"));
    check_eq!(lab, page.status(), Some(200), "{page}");
    check!(
        lab,
        started.elapsed() < Duration::from_secs(2),
        "the sign-in page took {:?}",
        started.elapsed()
    );
    harness::portal::sign_in(&lab, C2);
    harness::portal::assert_online(&lab, C2);
    harness::say(&format!(
        "member numbers: {signed_in} of 1000 signed in, {} stored, {} member.linked",
        list.len(),
        linked.len()
    ));
}

/// OTP texts HQ was asked to send.
fn texts(lab: &Lab) -> usize {
    hq_lines(lab)
        .iter()
        .filter(|v| v["message"]["kind"] == "otp")
        .count()
}

/// Waits until HQ has logged `n` texts.
fn wait_texts(lab: &Lab, n: usize) {
    harness::wait_for(lab, Duration::from_secs(10), "the texts at HQ", || {
        (texts(lab) >= n).then_some(())
    });
}

#[test]
fn codes_go_only_to_the_store_country_and_the_box_cap_survives_a_restart() {
    let extra = "[members]\notp_per_hour = 2\n";
    let Some((lab, mut gate)) = member_lab_with("mabc", extra) else {
        return;
    };
    let code = format!("{PORTAL}/signin/code");

    // Another country: a clear page, in either language, and no text.
    let p = lab.portal_post(C1, &code, "phone=%2B14155550100&lang=en");
    check_eq!(lab, p.status(), Some(403), "{p}");
    check!(
        lab,
        p.body()
            .contains("only be texted to mobile numbers from +86"),
        "{p}"
    );
    let p = lab.portal_post(C1, &code, "phone=004477009001234");
    check_eq!(lab, p.status(), Some(403), "{p}");
    check!(lab, p.body().contains("+86 的手机号码"), "{p}");
    // The day's form token without the page's ticket: nothing is sent.
    let token = lab.portal_token(C1);
    let p = lab.post(
        C1,
        &code,
        &format!("phone=13800138000&lang=en&csrf={token}"),
    );
    check_eq!(lab, p.status(), Some(403), "{p}");
    check!(lab, p.body().contains("has expired"), "{p}");
    std::thread::sleep(Duration::from_millis(300));
    check_eq!(
        lab,
        texts(&lab),
        0,
        "HQ was asked to text: {:?}",
        hq_lines(&lab)
    );

    // Two texts in the hour, then the box's cap.
    for phone in ["13800138011", "13900139022"] {
        let p = lab.portal_post(C1, &code, &format!("phone={phone}&lang=en"));
        check_eq!(lab, p.status(), Some(200), "{p}");
    }
    wait_texts(&lab, 2);
    let p = lab.portal_post(C1, &code, "phone=13700137033&lang=en");
    check_eq!(lab, p.status(), Some(429), "{p}");
    check!(lab, p.body().contains("Too many codes"), "{p}");

    // A restart is no fresh hour.
    let status = gate.sigterm_and_wait();
    check!(
        lab,
        status.success(),
        "storegate exit after SIGTERM: {status}"
    );
    let gate = lab.start_storegate_ready(&member_config(extra));
    let p = lab.portal_post(C2, &code, "phone=13600136044&lang=en");
    check_eq!(lab, p.status(), Some(429), "after the restart: {p}");
    check!(lab, p.body().contains("Too many codes"), "{p}");
    std::thread::sleep(Duration::from_millis(300));
    check_eq!(lab, texts(&lab), 2, "texts at HQ: {:?}", hq_lines(&lab));
    drop(gate);
    harness::say(
        "codes: another country refused, no ticket no text, box cap kept across a restart",
    );
}
