//! The captive portal as a shopper's phone sees it, against the real daemon
//! in the lab (storegate + nftables + dnsmasq + real DHCP clients):
//!
//! * before sign-in, only DNS, DHCP and the portal work: port-80 HTTP is
//!   redirected to the sign-in page (`302`, `no-store`), TCP 443 is refused
//!   at once, everything else is dropped, over IPv4 and IPv6;
//! * RFC 8908 `/api/captive` reports the state; click-through sign-in opens
//!   the internet for that phone only, and at once;
//! * `ctl deauth`, `/logout` and the session timeout cut a phone off again;
//! * authorised sessions survive a graceful restart and a SIGKILL (traffic
//!   keeps flowing while the daemon is dead, and is enforced again within
//!   1 s of the new process starting);
//! * garbage, oversized headers and bodies get 4xx answers and the portal
//!   keeps serving; bad MACs and bad config keys are named in the errors.
//!
//! Every lab test builds its own lab, so they run in parallel.

use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::lab::{self, Client, GateConfig, INET_V4, INET_V6, Lab, PORTAL, Probe, Storegate};
use crate::{check, check_eq, fail};

const C1: Client = Client::C1;
const C2: Client = Client::C2;

/// A lab with storegate running and ready.
fn gate_lab(tag: &str, cfg: GateConfig) -> Option<(Lab, Storegate)> {
    let lab = Lab::new(tag)?;
    let mut gate = lab.start_storegate_with(&cfg);
    gate.wait_ready();
    Some((lab, gate))
}

fn inet_url(path: &str) -> String {
    format!("http://{INET_V4}{path}")
}

/// Decodes `%XX` escapes and `+` in a query value.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of a query parameter in a URL.
fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == name).then(|| percent_decode(v))
    })
}

/// The path of a `Location` (an absolute URL's scheme and host, and any
/// query, stripped).
fn location_path(p: &Probe) -> String {
    let loc = p.header("location").unwrap_or("");
    let rest = match loc.split_once("://") {
        Some((_, after)) => after.find('/').map_or("/", |i| &after[i..]),
        None => loc,
    };
    rest.split(['?', '#']).next().unwrap_or("").to_string()
}

/// Is `p` the capture redirect to the sign-in page?
fn is_capture(p: &Probe) -> bool {
    p.status() == Some(302)
        && p.header("location")
            .unwrap_or("")
            .starts_with(&format!("{PORTAL}/login"))
}

/// HTTP to the internet from `c` is captured: a 302 to the portal's sign-in
/// page, not cacheable, carrying the original URL.
fn assert_redirected(lab: &Lab, c: Client, url: &str) -> Probe {
    let p = lab.http_timeout(c, url, 2.0);
    check_eq!(
        lab,
        p.status(),
        Some(302),
        "{} should be captured: {p}",
        c.name()
    );
    let location = p.header("location").unwrap_or("");
    check!(
        lab,
        location.starts_with(&format!("{PORTAL}/login")),
        "Location of {p}"
    );
    let cache = p.header("cache-control").unwrap_or("");
    check!(lab, cache.contains("no-store"), "Cache-Control of {p}");
    check_eq!(
        lab,
        query_param(location, "dst").as_deref(),
        Some(url),
        "dst in Location of {p}"
    );
    p
}

/// `c` reaches the internet server on port 80 (IPv4).
fn assert_online(lab: &Lab, c: Client) {
    let p = lab.http_timeout(c, &inet_url("/"), 2.0);
    check_eq!(
        lab,
        p.status(),
        Some(200),
        "{} should be online: {p}",
        c.name()
    );
    check!(lab, p.body().contains(lab::INET_BODY), "{p}");
}

/// Click-through sign-in from `c`: `303` to `/status`.
fn sign_in(lab: &Lab, c: Client) {
    let p = lab.portal_post(c, &format!("{PORTAL}/login"), "accept_terms=yes");
    check_eq!(lab, p.status(), Some(303), "sign-in from {}: {p}", c.name());
    check_eq!(
        lab,
        location_path(&p),
        "/status",
        "Location after sign-in: {p}"
    );
}

/// RFC 8908 API as `c` sees it.
fn captive_api(lab: &Lab, c: Client) -> Value {
    let p = lab.http(c, &format!("{PORTAL}/api/captive"));
    check_eq!(lab, p.status(), Some(200), "{p}");
    let ct = p.header("content-type").unwrap_or("");
    check!(
        lab,
        ct.starts_with("application/captive+json"),
        "Content-Type of {p}"
    );
    match p.body_json() {
        Some(v) => v,
        None => fail!(lab, "/api/captive body is not JSON: {p}"),
    }
}

/// The `ctl clients --json` entry for a MAC, if any.
fn client_entry(gate: &Storegate, mac: &str) -> Option<Value> {
    let clients = gate.ctl_json(&["clients"]);
    check!(
        gate,
        clients.is_array(),
        "ctl clients --json is not an array: {clients}"
    );
    clients
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| {
            e["mac"]
                .as_str()
                .is_some_and(|m| m.eq_ignore_ascii_case(mac))
        })
        .cloned()
}

fn authorized_entry(gate: &Storegate, mac: &str) -> Value {
    match client_entry(gate, mac) {
        Some(e) => {
            check_eq!(gate, e["state"].as_str(), Some("authorized"), "{e}");
            check!(gate, e["authorized_at"].is_string(), "authorized_at: {e}");
            e
        }
        None => fail!(
            gate,
            "ctl clients does not list {mac}: {}",
            gate.ctl_json(&["clients"])
        ),
    }
}

#[test]
fn before_sign_in_only_dns_and_the_portal() {
    let Some((lab, _gate)) = gate_lab("pre", GateConfig::default()) else {
        return;
    };

    assert_redirected(&lab, C1, &inet_url("/news/today?lang=en&x=1"));
    assert_redirected(&lab, C1, &inet_url("/"));
    let login = lab.http(C1, &format!("{PORTAL}/login"));
    check_eq!(lab, login.status(), Some(200), "{login}");
    check!(lab, login.body().contains("<form"), "{login}");

    let dns = lab.dns(C1, lab::INET_NAME, lab::GW_V4);
    check_eq!(
        lab,
        dns.a_records(),
        vec![INET_V4.to_string()],
        "DNS before sign-in: {dns}"
    );

    // The slow probes (they wait for a timeout) run side by side.
    let (tcp8080, udp, tls, http6, tcp6) = thread::scope(|s| {
        let tcp8080 = s.spawn(|| lab.tcp(C1, INET_V4, 8080, 1.0));
        let udp = s.spawn(|| lab.udp(C1, INET_V4, 9999, 1.0));
        let tls = s.spawn(|| lab.tcp(C1, INET_V4, 443, 2.0));
        let http6 = s.spawn(|| lab.http_timeout(C1, &format!("http://[{INET_V6}]/"), 1.5));
        let tcp6 = s.spawn(|| lab.tcp(C1, INET_V6, 8080, 1.0));
        (
            tcp8080.join().unwrap(),
            udp.join().unwrap(),
            tls.join().unwrap(),
            http6.join().unwrap(),
            tcp6.join().unwrap(),
        )
    });
    check_eq!(
        lab,
        tcp8080.result(),
        "timeout",
        "TCP 8080 before sign-in: {tcp8080}"
    );
    check!(
        lab,
        udp.result() != "reply",
        "UDP echo before sign-in: {udp}"
    );
    check!(
        lab,
        matches!(tls.result(), "refused" | "reset"),
        "TCP 443 before sign-in: {tls}"
    );
    check!(
        lab,
        tls.elapsed_ms() < 500.0,
        "TCP 443 must be refused at once: {tls}"
    );
    check!(
        lab,
        http6.status() != Some(200),
        "IPv6 HTTP before sign-in: {http6}"
    );
    if http6.status() == Some(302) {
        check!(
            lab,
            http6.header("location").unwrap_or("").contains("/login"),
            "{http6}"
        );
    }
    check!(
        lab,
        tcp6.result() != "connected",
        "IPv6 TCP 8080 before sign-in: {tcp6}"
    );
}

#[test]
fn click_through_sign_in_opens_the_internet() {
    let Some((lab, gate)) = gate_lab("signin", GateConfig::default()) else {
        return;
    };
    let mac1 = lab.client_mac(C1);

    let api = captive_api(&lab, C1);
    check_eq!(lab, api["captive"].as_bool(), Some(true), "{api}");
    let portal_url = api["user-portal-url"].as_str().unwrap_or("");
    check!(
        lab,
        portal_url.starts_with(PORTAL),
        "user-portal-url: {api}"
    );

    let no_terms = lab.portal_post(C1, &format!("{PORTAL}/login"), "name=x");
    check_eq!(
        lab,
        no_terms.status(),
        Some(400),
        "sign-in without accept_terms: {no_terms}"
    );
    check!(
        lab,
        !lab.has_internet(C1),
        "c1 online after a refused sign-in"
    );

    let t = Instant::now();
    sign_in(&lab, C1);
    // Authorised when the 303 arrives: no polling.
    assert_online(&lab, C1);
    let first = t.elapsed();

    let api = captive_api(&lab, C1);
    check_eq!(lab, api["captive"].as_bool(), Some(false), "{api}");
    check!(
        lab,
        api["seconds-remaining"].as_f64().is_some_and(|s| s > 0.0),
        "seconds-remaining: {api}"
    );
    let status = lab.http(C1, &format!("{PORTAL}/status"));
    check_eq!(lab, status.status(), Some(200), "{status}");

    let (p8080, udp, http6, udp6, tls, c2_tcp) = thread::scope(|s| {
        let p8080 = s.spawn(|| lab.http_timeout(C1, &format!("http://{INET_V4}:8080/"), 2.0));
        let udp = s.spawn(|| lab.udp(C1, INET_V4, 9999, 1.0));
        let http6 = s.spawn(|| lab.http_timeout(C1, &format!("http://[{INET_V6}]/"), 2.0));
        let udp6 = s.spawn(|| lab.udp(C1, INET_V6, 9999, 1.0));
        let tls = s.spawn(|| lab.tcp(C1, INET_V4, 443, 1.0));
        let c2_tcp = s.spawn(|| lab.tcp(C2, INET_V4, 8080, 1.0));
        (
            p8080.join().unwrap(),
            udp.join().unwrap(),
            http6.join().unwrap(),
            udp6.join().unwrap(),
            tls.join().unwrap(),
            c2_tcp.join().unwrap(),
        )
    });
    check_eq!(
        lab,
        p8080.status(),
        Some(200),
        "c1 HTTP 8080 after sign-in: {p8080}"
    );
    check_eq!(lab, udp.result(), "reply", "c1 UDP after sign-in: {udp}");
    check_eq!(
        lab,
        http6.status(),
        Some(200),
        "c1 IPv6 HTTP after sign-in: {http6}"
    );
    check_eq!(
        lab,
        udp6.result(),
        "reply",
        "c1 IPv6 UDP after sign-in: {udp6}"
    );
    check_eq!(
        lab,
        tls.result(),
        "connected",
        "c1 TCP 443 after sign-in: {tls}"
    );

    // The other phone is still captive.
    assert_redirected(&lab, C2, &inet_url("/"));
    check_eq!(lab, c2_tcp.result(), "timeout", "c2 TCP 8080: {c2_tcp}");
    let api2 = captive_api(&lab, C2);
    check_eq!(lab, api2["captive"].as_bool(), Some(true), "c2: {api2}");

    let e = authorized_entry(&gate, &mac1);
    check_eq!(
        lab,
        e["ip"].as_str(),
        Some(lab.client_ip(C1).as_str()),
        "{e}"
    );
    check!(
        lab,
        e["member_id"].is_null(),
        "click-through has no member: {e}"
    );
    check!(
        lab,
        e.get("expires_at").is_some(),
        "expires_at missing: {e}"
    );
    if let Some(e2) = client_entry(&gate, &lab.client_mac(C2)) {
        check_eq!(lab, e2["state"].as_str(), Some("preauth"), "{e2}");
    }
    let status = gate.ctl_json(&["status"]);
    check!(lab, status.is_object(), "ctl status --json: {status}");
    // The sign-in is an event waiting for HQ, naming the device only by its
    // keyed hash.
    let events = gate.ctl_json(&["events"]);
    let text = events.to_string();
    let authorized: Vec<&Value> = events
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["type"] == "com.storegate.session.authorized")
        .collect();
    check_eq!(lab, authorized.len(), 1, "one session.authorized: {events}");
    check_eq!(
        lab,
        authorized[0]["data"]["method"].as_str(),
        Some("click_through"),
        "{events}"
    );
    check!(
        lab,
        authorized[0]["data"]["device_id"]
            .as_str()
            .is_some_and(|d| d.len() == 43),
        "{events}"
    );
    check!(
        lab,
        !text.contains(&lab.client_mac(C1)),
        "a raw MAC in the events: {events}"
    );
    lab::say(&format!(
        "sign-in → first byte from the internet: {first:?}"
    ));
}

#[test]
fn deauth_and_logout_cut_off() {
    let Some((lab, gate)) = gate_lab("deauth", GateConfig::default()) else {
        return;
    };
    let mac1 = lab.client_mac(C1);

    sign_in(&lab, C1);
    assert_online(&lab, C1);
    let out = gate.ctl(&["deauth", &mac1]);
    check!(
        lab,
        out.status.success(),
        "ctl deauth {mac1}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_redirected(&lab, C1, &inet_url("/"));
    if let Some(e) = client_entry(&gate, &mac1) {
        check!(
            lab,
            e["state"].as_str() != Some("authorized"),
            "after deauth: {e}"
        );
    }

    sign_in(&lab, C1);
    assert_online(&lab, C1);
    let logout = lab.portal_post(C1, &format!("{PORTAL}/logout"), "");
    check_eq!(lab, logout.status(), Some(303), "{logout}");
    check_eq!(
        lab,
        location_path(&logout),
        "/login",
        "Location after logout: {logout}"
    );
    assert_redirected(&lab, C1, &inet_url("/"));

    // The operator can let a phone in, too.
    let mac2 = lab.client_mac(C2);
    let out = gate.ctl(&["auth", &mac2]);
    check!(
        lab,
        out.status.success(),
        "ctl auth {mac2}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_online(&lab, C2);
    authorized_entry(&gate, &mac2);
}

#[test]
fn session_timeout_cuts_off() {
    let _cpu = crate::timed();
    let cfg = GateConfig {
        session_timeout: Some("3s".into()),
        ..GateConfig::default()
    };
    let Some((lab, gate)) = gate_lab("expiry", cfg) else {
        return;
    };

    let t = Instant::now();
    sign_in(&lab, C1);
    assert_online(&lab, C1);
    let e = authorized_entry(&gate, &lab.client_mac(C1));
    check!(
        lab,
        e["expires_at"].is_string(),
        "a 3 s session has an expiry: {e}"
    );

    let deadline = Duration::from_secs(6);
    let cut = lab.wait_internet(C1, false, deadline.saturating_sub(t.elapsed()));
    check!(
        lab,
        cut.is_some(),
        "c1 still online {:?} after sign-in with a 3 s session",
        t.elapsed()
    );
    let after = t.elapsed();
    check!(
        lab,
        after >= Duration::from_millis(2500),
        "cut off too early: {after:?}"
    );
    // The portal agrees at once: the first captured request after the cut
    // goes to the sign-in page (not, say, back to itself).
    let first = lab.http_timeout(C1, &inet_url("/"), 1.0);
    check!(
        lab,
        is_capture(&first),
        "c1 cut off after {after:?} but not sent to the portal: {first}"
    );
    let captured = t.elapsed();
    assert_redirected(&lab, C1, &inet_url("/"));
    let api = captive_api(&lab, C1);
    check_eq!(
        lab,
        api["captive"].as_bool(),
        Some(true),
        "after expiry: {api}"
    );
    lab::say(&format!(
        "3 s session: firewall cut off after {after:?}, portal redirects again after {captured:?}"
    ));
}

/// Idle timeout: a client that keeps sending traffic stays signed in well
/// past the idle timeout (traffic is seen through the `active` set), and a
/// silent one is signed out soon after it.
#[test]
fn idle_timeout_follows_traffic() {
    let _cpu = crate::timed();
    let cfg = GateConfig {
        idle_timeout: Some("3s".into()),
        ..GateConfig::default()
    };
    let Some((lab, gate)) = gate_lab("idle", cfg) else {
        return;
    };
    sign_in(&lab, C1);
    let mac = lab.client_mac(C1);
    // Busy for twice the idle timeout: a request every 300 ms.
    let busy = Instant::now();
    let quiet = loop {
        assert_online(&lab, C1);
        // The client's last packet went out before this.
        let last = Instant::now();
        if busy.elapsed() >= Duration::from_secs(6) {
            break last;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    let e = authorized_entry(&gate, &mac);
    check_eq!(
        lab,
        e["state"].as_str(),
        Some("authorized"),
        "busy client after 6 s: {e}"
    );

    // Silent: no traffic through the gateway; watch only the daemon.
    let signed_out = loop {
        let state = client_entry(&gate, &mac).and_then(|e| e["state"].as_str().map(String::from));
        if state.as_deref() == Some("preauth") {
            break quiet.elapsed();
        }
        // Nominally 3-6 s (idle timeout plus up to one activity window and
        // a tick); generous because parallel labs on a loaded 2-core machine
        // slow the daemon's fsyncs and timers.
        check!(
            lab,
            quiet.elapsed() < Duration::from_secs(15),
            "silent client still {state:?} {:?} after its last packet (idle timeout 3 s)",
            quiet.elapsed()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    check!(
        lab,
        signed_out >= Duration::from_millis(2500),
        "signed out too early: {signed_out:?}"
    );
    assert_redirected(&lab, C1, &inet_url("/"));
    lab::say(&format!(
        "idle timeout 3 s: silent client signed out after {signed_out:?}"
    ));
}

/// Starts a new daemon in a lab where c1 signed in, and checks the session
/// is enforced again within 1 s of the new process starting: a probe sent
/// by then gets through, and `authorized_at` is the original one.
fn restart_keeps_sessions(lab: &Lab, authorized_at: &Value) -> Storegate {
    let mut new = lab.start_storegate_with(&GateConfig::default());
    let ready = new.wait_ready();
    // The gate is enforcing again: c2 is captured.
    assert_redirected(lab, C2, &inet_url("/"));
    let started = new.started();
    let online_by = loop {
        let sent = started.elapsed();
        check!(
            new,
            sent <= Duration::from_secs(1),
            "c1 not back online within 1 s of the restart (ready after {ready:?}); last probe: {}",
            lab.http_timeout(C1, &inet_url("/"), 1.0)
        );
        if lab.has_internet(C1) {
            break sent;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let e = authorized_entry(&new, &lab.client_mac(C1));
    check_eq!(
        new,
        &e["authorized_at"],
        authorized_at,
        "authorized_at changed over the restart: {e}"
    );
    lab::say(&format!(
        "restart: ready after {ready:?}, c1 online by {online_by:?} (from process start)"
    ));
    new
}

#[test]
fn sessions_survive_sigterm_restart() {
    let _cpu = crate::timed();
    let Some((lab, mut gate)) = gate_lab("term", GateConfig::default()) else {
        return;
    };
    sign_in(&lab, C1);
    assert_online(&lab, C1);
    let before = authorized_entry(&gate, &lab.client_mac(C1));

    let status = gate.sigterm_and_wait();
    check!(
        gate,
        status.success(),
        "storegate exit after SIGTERM: {status}"
    );
    let _gate = restart_keeps_sessions(&lab, &before["authorized_at"]);
}

#[test]
fn sessions_survive_sigkill() {
    let _cpu = crate::timed();
    let Some((lab, mut gate)) = gate_lab("kill", GateConfig::default()) else {
        return;
    };
    sign_in(&lab, C1);
    assert_online(&lab, C1);
    let before = authorized_entry(&gate, &lab.client_mac(C1));

    gate.sigkill();
    // The kernel keeps enforcing the rules with no daemon.
    assert_online(&lab, C1);
    let _gate = restart_keeps_sessions(&lab, &before["authorized_at"]);
}

#[test]
fn portal_survives_bad_input() {
    let Some((lab, gate)) = gate_lab("bad", GateConfig::default()) else {
        return;
    };
    let host = lab::GW_V4;
    let port = lab::PORTAL_PORT;
    let still_serving = |after: &str| {
        let p = lab.http(C1, &format!("{PORTAL}/login"));
        check_eq!(lab, p.status(), Some(200), "portal after {after}: {p}");
    };

    let garbage = lab.raw(C1, host, port, 3.0, b"GARBAGE\r\n\r\n");
    match garbage.status() {
        Some(s) => check!(lab, (400..500).contains(&s), "garbage got {garbage}"),
        None => check!(
            lab,
            matches!(garbage.result(), "closed" | "reset"),
            "garbage got {garbage}"
        ),
    }
    still_serving("garbage");

    let mut big = format!("GET /login HTTP/1.1\r\nHost: {host}:{port}\r\nX-Big: ").into_bytes();
    big.extend(std::iter::repeat_n(b'a', 64 * 1024));
    big.extend_from_slice(b"\r\n\r\n");
    let p = lab.raw(C1, host, port, 3.0, &big);
    check!(
        lab,
        matches!(p.status(), Some(431) | Some(400)),
        "64 KiB header got {p}"
    );
    still_serving("a 64 KiB header");

    let body_len = 1024 * 1024;
    let mut post = format!(
        "POST /login HTTP/1.1\r\nHost: {host}:{port}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {body_len}\r\n\r\n"
    )
    .into_bytes();
    let mut body = b"accept_terms=yes&pad=".to_vec();
    body.resize(body_len, b'x');
    post.extend(body);
    let p = lab.raw(C1, host, port, 5.0, &post);
    check_eq!(lab, p.status(), Some(413), "1 MiB body got {p}");
    still_serving("a 1 MiB body");
    let api = captive_api(&lab, C1);
    check_eq!(
        lab,
        api["captive"].as_bool(),
        Some(true),
        "an oversized sign-in must not authorise: {api}"
    );
    check!(
        lab,
        !lab.has_internet(C1),
        "an oversized sign-in must not authorise"
    );

    // Captured (port 80) garbage is handled by the same listener.
    let p = lab.raw(
        C1,
        INET_V4,
        80,
        3.0,
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n",
    );
    check!(
        lab,
        p.result() != "timeout",
        "binary junk on port 80 hung: {p}"
    );
    still_serving("binary junk on port 80");

    for cmd in ["auth", "deauth"] {
        let out = gate.ctl(&[cmd, "not-a-mac"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        check!(lab, !out.status.success(), "ctl {cmd} not-a-mac succeeded");
        check!(
            lab,
            stderr.contains("not-a-mac"),
            "ctl {cmd} not-a-mac: stderr does not name the input: {stderr}"
        );
    }
    still_serving("bad ctl commands");
}

/// A minimal valid config, harmless even if a bug let the daemon run: no
/// firewall, a LAN interface that does not exist, everything in `dir`.
fn base_config(dir: &Path) -> String {
    format!(
        "[store]\nid = \"lab-cfg\"\nname = \"Lab\"\ntimezone = \"Asia/Shanghai\"\n\n\
         [lan]\ninterface = \"sg-nonexist0\"\n\n\
         [firewall]\nbackend = \"none\"\n\n\
         [storage]\npath = \"{0}/state\"\n\n\
         [control]\nsocket = \"{0}/control.sock\"\n",
        dir.display()
    )
}

/// Runs storegate with a deadline; a run that does not exit is killed.
fn storegate_output(args: &[&str], deadline: Duration) -> (Option<i32>, String, String) {
    let mut child = Command::new(lab::storegate_bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run storegate");
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let out = child.wait_with_output().expect("storegate output");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Needs no root: config errors are reported before anything is touched.
#[test]
fn bad_config_is_rejected() {
    let dir = tempfile::tempdir().expect("temp dir");
    let good = dir.path().join("good.toml");
    std::fs::write(&good, base_config(dir.path())).unwrap();
    let good = good.display().to_string();
    let (code, out, err) = storegate_output(&["check-config", &good], Duration::from_secs(10));
    assert_eq!(code, Some(0), "check-config of a valid config: {out}{err}");

    let bogus = dir.path().join("bogus.toml");
    std::fs::write(
        &bogus,
        format!("{}\n[portal]\nbogus = 1\n", base_config(dir.path())),
    )
    .unwrap();
    let bogus = bogus.display().to_string();
    let (code, out, err) = storegate_output(&["check-config", &bogus], Duration::from_secs(10));
    assert_eq!(
        code,
        Some(1),
        "check-config with an unknown key: {out}{err}"
    );
    assert!(
        err.contains("portal.bogus") || err.contains("bogus"),
        "stderr must name the key: {err}"
    );

    let (code, out, err) = storegate_output(&["run", "-c", &bogus], Duration::from_secs(10));
    assert_eq!(code, Some(2), "run with an unknown key: {out}{err}");
    let reason: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        !reason.is_empty() && err.contains("bogus"),
        "run must say why: {err}"
    );

    let bad_duration = dir.path().join("duration.toml");
    std::fs::write(
        &bad_duration,
        format!(
            "{}\n[portal]\nsession_timeout = \"banana\"\n",
            base_config(dir.path())
        ),
    )
    .unwrap();
    let bad_duration = bad_duration.display().to_string();
    let (code, out, err) =
        storegate_output(&["check-config", &bad_duration], Duration::from_secs(10));
    assert_eq!(
        code,
        Some(1),
        "check-config with a bad duration: {out}{err}"
    );
    assert!(
        err.contains("session_timeout"),
        "stderr must name the key: {err}"
    );
}
