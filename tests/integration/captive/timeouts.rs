//! Sessions end on their own: a session timeout cuts the phone off (and the
//! portal captures it again at once), and an idle timeout signs out a
//! silent phone but not one that keeps sending traffic.

use std::sync::RwLockReadGuard;
use std::time::{Duration, Instant};

use crate::harness::ctl::{authorized_entry, client_entry};
use crate::harness::internet::inet_url;
use crate::harness::portal::{
    assert_captive, assert_online, assert_redirected, is_capture, sign_in,
};
use crate::harness::{self, Client, GateConfig, Lab, Storegate, gate_lab};
use crate::{check, check_eq};

const C1: Client = Client::C1;

type TimedGuard = RwLockReadGuard<'static, ()>;

/// A lab with storegate on `cfg`, holding [`crate::timed`] (these tests
/// check deadlines) until the lab is gone.
fn timed_lab(tag: &str, cfg: GateConfig) -> Option<(TimedGuard, Lab, Storegate)> {
    let cpu = crate::timed();
    let (lab, gate) = gate_lab(tag, cfg)?;
    Some((cpu, lab, gate))
}

#[test]
fn session_timeout_cuts_off() {
    let Some((_cpu, lab, gate)) = timed_lab("expiry", GateConfig::session("3s")) else {
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
    assert_captive(&lab, C1, true, "after expiry");
    harness::say(&format!(
        "3 s session: firewall cut off after {after:?}, portal redirects again after {captured:?}"
    ));
}

/// Idle timeout: a client that keeps sending traffic stays signed in well
/// past the idle timeout (traffic is seen through the `active` set), and a
/// silent one is signed out soon after it.
#[test]
fn idle_timeout_follows_traffic() {
    let Some((_cpu, lab, gate)) = timed_lab("idle", GateConfig::idle("3s")) else {
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
    harness::say(&format!(
        "idle timeout 3 s: silent client signed out after {signed_out:?}"
    ));
}
