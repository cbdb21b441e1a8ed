//! Signing in and out: RFC 8908 `/api/captive` reports the state;
//! click-through sign-in opens the internet for that phone only (IPv4 and
//! IPv6, every port), at once, and is an event for HQ that names the device
//! only by its keyed hash; `ctl deauth` and `/logout` cut the phone off
//! again, and `ctl auth` lets one in.

use std::time::Instant;

use serde_json::Value;

use crate::harness::ctl::{authorized_entry, client_entry};
use crate::harness::internet::inet_url;
use crate::harness::portal::{
    assert_captive, assert_online, assert_redirected, location_path, sign_in,
};
use crate::harness::probe::side_by_side;
use crate::harness::{self, Client, GateConfig, INET_V4, INET_V6, PORTAL, gate_lab};
use crate::{check, check_eq};

const C1: Client = Client::C1;
const C2: Client = Client::C2;

#[test]
fn click_through_sign_in_opens_the_internet() {
    let Some((lab, gate)) = gate_lab("signin", GateConfig::default()) else {
        return;
    };
    let mac1 = lab.client_mac(C1);

    let api = assert_captive(&lab, C1, true, "c1 before sign-in");
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

    let api = assert_captive(&lab, C1, false, "c1 after sign-in");
    check!(
        lab,
        api["seconds-remaining"].as_f64().is_some_and(|s| s > 0.0),
        "seconds-remaining: {api}"
    );
    let status = lab.http(C1, &format!("{PORTAL}/status"));
    check_eq!(lab, status.status(), Some(200), "{status}");

    let [p8080, udp, http6, udp6, tls, c2_tcp] = side_by_side([
        &|| lab.http_timeout(C1, &format!("http://{INET_V4}:8080/"), 2.0),
        &|| lab.udp(C1, INET_V4, 9999, 1.0),
        &|| lab.http_timeout(C1, &format!("http://[{INET_V6}]/"), 2.0),
        &|| lab.udp(C1, INET_V6, 9999, 1.0),
        &|| lab.tcp(C1, INET_V4, 443, 1.0),
        &|| lab.tcp(C2, INET_V4, 8080, 1.0),
    ]);
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
    assert_captive(&lab, C2, true, "c2");

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
    harness::say(&format!(
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
    gate.ctl_ok(&["deauth", &mac1]);
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
    gate.ctl_ok(&["auth", &mac2]);
    assert_online(&lab, C2);
    authorized_entry(&gate, &mac2);
}
