//! `storegate demo` end to end, no root: it prints where everything is,
//! the simulated store fills up (devices known, visitors present, members
//! signed in by their DHCP packet), the in-process HQ receiver gets
//! verified events and turns a member's arrival into a targeted message
//! on its page, a browser on loopback can sign in at the portal as the
//! demo's own phone, and Ctrl-C (SIGINT) stops it with exit 0.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::ctl::{ctl_at as ctl, ctl_command};
use crate::harness::demo::port_of;
use crate::harness::loopback::{http, status_code};
use crate::harness::portal::csrf_field;
use crate::harness::process::bin;

/// The demo's own phone (`sim::demo::BROWSER_MAC`).
const BROWSER_MAC: &str = "02:de:40:00:00:01";

/// One request over TLS to 127.0.0.1:`port`, trusting only the
/// certificate in `cert` (PEM); the status and the whole response.
fn https(port: u16, cert: &Path, request: &str) -> (u16, String) {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(cert).expect("the dashboard's certificate") {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect to the dashboard");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(request.as_bytes()).unwrap();
    let mut reply = Vec::new();
    // A server that closes without close_notify ends in an error here,
    // after the whole reply.
    let _ = tls.read_to_end(&mut reply);
    let reply = String::from_utf8_lossy(&reply).into_owned();
    (status_code(&reply).unwrap_or(0), reply)
}

#[test]
fn demo_runs_a_simulated_store_without_root() {
    let _cpu = crate::heavy();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let demo = crate::harness::demo::start(
        &[
            "--fresh",
            "--speed",
            "600",
            "--seed",
            "1",
            "--state",
            state.to_str().unwrap(),
        ],
        Duration::from_secs(20),
    );
    let (mut proc, banner, lines, rx, log) =
        (demo.proc, demo.banner, demo.lines, demo.rest, demo.log);
    let portal = &banner["portal"];
    assert!(portal.starts_with("http://127.0.0.1:"), "{lines:?}");
    assert!(banner["hq"].starts_with("http://127.0.0.1:"), "{lines:?}");
    assert!(banner.contains_key("dashboard"), "{lines:?}");
    assert_eq!(
        Path::new(&banner["state"]),
        state.canonicalize().unwrap(),
        "{lines:?}"
    );
    let socket = state.join("control.sock");
    let portal_port = port_of(portal);

    // The store fills up and HQ gets verified events.
    let events_file = state.join("hq-events.jsonl");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        let status = ctl(&socket, &["status"]).unwrap_or(Value::Null);
        let events = std::fs::read_to_string(&events_file).unwrap_or_default();
        let ok = status["presence"]["devices_known"].as_u64() > Some(10)
            && status["presence"]["present_now"].as_u64() > Some(3)
            && status["presence"]["frames"]["members_authorized"].as_u64() > Some(0)
            && status["hq"]["delivered"].as_u64() > Some(0)
            && events.contains("com.storegate.visit.started")
            && events.contains("com.storegate.member.linked");
        if ok {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the simulated store did not fill up in 20 s: {status}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    // HQ's page of targeted messages, on the HQ's port: a consenting
    // member's arrival becomes a message there.
    let hq_port = port_of(&banner["messages"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let sent = loop {
        let (code, reply) = http(hq_port, "GET", "/messages.json", "");
        assert_eq!(code, 200, "{reply}");
        let body = reply.split("\r\n\r\n").nth(1).unwrap_or("");
        let list: Value = serde_json::from_str(body.trim())
            .unwrap_or_else(|e| panic!("/messages.json is not JSON ({e}): {reply}"));
        if list.as_array().is_some_and(|l| !l.is_empty()) {
            break list;
        }
        assert!(
            Instant::now() < deadline,
            "no targeted message in 30 s: {status}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(sent[0]["kind"], "targeted", "{sent}");
    assert_eq!(sent[0]["store_id"], "demo", "{sent}");
    let (code, page) = http(hq_port, "GET", "/", "");
    assert_eq!(code, 200, "{page}");
    assert!(
        page.contains(sent[0]["campaign_id"].as_str().unwrap()),
        "{page}"
    );
    assert_eq!(status["store_id"], "demo");
    assert_eq!(status["firewall"], "none");
    assert_eq!(status["presence"]["capturing"], false);
    assert!(status["members"]["bound_devices"].as_u64() >= Some(20));
    // The receiver wrote only events it verified: each is a CloudEvent
    // of this store.
    let events = std::fs::read_to_string(&events_file).unwrap();
    for line in events.lines() {
        let e: Value = serde_json::from_str(line).unwrap();
        assert!(
            e["message"].is_object() || e["source"] == "/stores/demo",
            "{e}"
        );
    }

    // Devices look like phones: OS families from their DHCP options,
    // mostly randomised MACs; staff are classified as such.
    let devices = ctl(&socket, &["devices"]).unwrap();
    let devices = devices.as_array().unwrap();
    let families: std::collections::HashSet<&str> = devices
        .iter()
        .filter_map(|d| d["os_family"].as_str())
        .collect();
    assert!(
        families.contains("ios") && families.contains("android"),
        "{families:?}"
    );
    let random = devices
        .iter()
        .filter(|d| d["mac_randomized"] == true)
        .count();
    assert!(random * 2 > devices.len(), "{random} of {}", devices.len());
    let browser = devices
        .iter()
        .find(|d| d["mac"] == BROWSER_MAC)
        .expect("the browser's phone is a device");
    assert_eq!(browser["ip"], "127.0.0.1");
    assert_eq!(browser["present"], true);

    // A browser on loopback signs in at the portal as that phone.
    let (code, page) = http(portal_port, "GET", "/", "");
    assert_eq!(code, 200, "{page}");
    // With the page's form token, as the browser would post it.
    let token = csrf_field(&page).unwrap_or_else(|| panic!("no form token: {page}"));
    let (code, reply) = http(
        portal_port,
        "POST",
        "/login",
        &format!("accept_terms=yes&csrf={token}"),
    );
    assert!(code == 303 || code == 302, "{reply}");
    let clients = ctl(&socket, &["clients"]).unwrap();
    let me = clients
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["mac"] == BROWSER_MAC)
        .unwrap_or_else(|| panic!("not a client: {clients}"));
    assert_eq!(me["state"], "authorized", "{me}");

    // The dashboard, when this build serves it: the printed password
    // signs in, and the live view has the visitors. Its self-signed
    // certificate (in the state directory) is trusted for 127.0.0.1.
    if let Some(url) = banner
        .get("dashboard")
        .filter(|u| u.starts_with("https://"))
    {
        let port = port_of(url);
        let cert = state.join("db").join("dashboard-cert.pem");
        let password = &banner["password"];
        // Sign in with a password; read the live view with a session.
        let login = |pw: &str| {
            https(
                port,
                &cert,
                &format!(
                    "POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
                     Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\npassword={pw}",
                    "password=".len() + pw.len()
                ),
            )
        };
        let live_with = |cookie: &str| {
            https(
                port,
                &cert,
                &format!(
                    "GET /api/live HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nCookie: {cookie}\r\n\r\n"
                ),
            )
        };
        let (code, reply) = login(password);
        assert_eq!(code, 303, "{reply}");
        let cookie = reply
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("set-cookie")
                    .then(|| value.trim().split(';').next().unwrap_or("").to_string())
            })
            .unwrap_or_else(|| panic!("no session cookie: {reply}"));
        let (code, reply) = live_with(&cookie);
        assert_eq!(code, 200, "{reply}");
        let body = reply.split("\r\n\r\n").nth(1).unwrap_or("");
        let live: Value = serde_json::from_str(body.trim())
            .unwrap_or_else(|e| panic!("/api/live is not JSON ({e}): {reply}"));
        assert!(live["live"]["arrivals_today"].as_u64() > Some(0), "{live}");

        // `ctl dashboard-password`: the new password on stdin replaces the
        // old one and signs every session out.
        let mut set = ctl_command(bin(), &socket, &["dashboard-password"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        set.stdin
            .take()
            .unwrap()
            .write_all(b"a-new-manager-pass-2026\n")
            .unwrap();
        let out = set.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "ctl dashboard-password: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(live_with(&cookie).0, 401, "the old session survived");
        assert_ne!(login(password).0, 303, "the old password still works");
        assert_eq!(login("a-new-manager-pass-2026").0, 303);
    }

    // Ctrl-C: a clean stop, exit 0.
    crate::harness::demo::interrupt(&mut proc, log);
    let rest: Vec<String> = rx.try_iter().collect();
    assert!(
        rest.iter().any(|l| l.contains("stopped; HQ received")),
        "{rest:?}"
    );
}
