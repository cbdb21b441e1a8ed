//! One guest opening 2,000 idle connections to the portal must not keep
//! another phone from its sign-in sheet: each client has a connection cap
//! and idle connections are closed.

use std::time::{Duration, Instant};

use crate::check;
use crate::harness::internet::inet_url;
use crate::harness::portal::assert_redirected;
use crate::harness::{self, Client, GW_V4, GateConfig, PORTAL_PORT, gate_lab};

const ATTACKER: Client = Client::C2;
const PHONE: Client = Client::C1;
const CONNECTIONS: usize = 2_000;
/// How long the attacker holds its connections.
const HOLD_S: f64 = 8.0;
/// The portal's connection slots in this lab: fewer than the attack
/// opens, so one client could take them all without a per-client cap.
const SLOTS: u32 = 256;

#[test]
fn two_thousand_idle_connections_from_one_guest_leave_room_for_others() {
    let _cpu = crate::heavy();
    let cfg = GateConfig {
        portal_max_connections: Some(SLOTS),
        ..GateConfig::default()
    };
    let Some((lab, gate)) = gate_lab("conns", cfg) else {
        return;
    };
    let port = PORTAL_PORT.to_string();
    let (held, took) = std::thread::scope(|s| {
        let attack = s.spawn(|| {
            lab.forge(
                ATTACKER,
                "hold",
                &[GW_V4, &port, &CONNECTIONS.to_string(), &HOLD_S.to_string()],
            )
        });
        // While they are held, another phone's captured request.
        std::thread::sleep(Duration::from_secs(2));
        let asked = Instant::now();
        let p = lab.http_timeout(PHONE, &inet_url("/"), 3.0);
        let took = asked.elapsed();
        if p.status() == Some(302) {
            assert_redirected(&lab, PHONE, &inet_url("/"));
        }
        (attack.join().expect("the attack thread"), took)
    });
    check!(
        lab,
        took < Duration::from_secs(1),
        "the other phone's captured request took {took:?} during the flood: {held}"
    );
    check!(
        lab,
        held["opened"].as_u64().unwrap_or(0) >= (CONNECTIONS as u64) / 2,
        "the attack did not open its connections: {held}"
    );
    // Past its first few, every connection of the attacker's was closed
    // as soon as the portal accepted it (the rest once idle).
    let status = gate.ctl_json(&["status"]);
    let over_cap = status["portal"]["connections_over_client_cap"]
        .as_u64()
        .unwrap_or(0);
    check!(
        lab,
        over_cap >= (CONNECTIONS as u64) / 2,
        "only {over_cap} of {CONNECTIONS} connections were refused over the per-client cap: {}; {held}",
        status["portal"]
    );
    harness::say(&format!(
        "portal flood: {held}; the other phone's redirect in {took:?}"
    ));
}
