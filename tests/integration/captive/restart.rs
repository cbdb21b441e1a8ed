//! Authorised sessions outlive the daemon: after a graceful restart
//! (SIGTERM) or a SIGKILL, during which the kernel keeps letting the phone
//! through, the new process enforces them again within 1 s of starting,
//! with their original sign-in time.

use std::thread;
use std::time::Duration;

use serde_json::Value;

use crate::harness::ctl::authorized_entry;
use crate::harness::internet::inet_url;
use crate::harness::portal::{assert_online, assert_redirected, sign_in};
use crate::harness::{self, Client, GateConfig, Lab, Storegate, gate_lab};
use crate::{check, check_eq};

const C1: Client = Client::C1;
const C2: Client = Client::C2;

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
    harness::say(&format!(
        "restart: ready after {ready:?}, c1 online by {online_by:?} (from process start)"
    ));
    new
}

/// A lab with storegate where c1 has signed in and is online; with c1's
/// `ctl clients` entry.
fn signed_in_lab(tag: &str) -> Option<(Lab, Storegate, Value)> {
    let (lab, gate) = gate_lab(tag, GateConfig::default())?;
    sign_in(&lab, C1);
    assert_online(&lab, C1);
    let entry = authorized_entry(&gate, &lab.client_mac(C1));
    Some((lab, gate, entry))
}

#[test]
fn sessions_survive_sigterm_restart() {
    let _cpu = crate::timed();
    let Some((lab, mut gate, before)) = signed_in_lab("term") else {
        return;
    };

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
    let Some((lab, mut gate, before)) = signed_in_lab("kill") else {
        return;
    };

    gate.sigkill();
    // The kernel keeps enforcing the rules with no daemon.
    assert_online(&lab, C1);
    let _gate = restart_keeps_sessions(&lab, &before["authorized_at"]);
}
