//! The box's resolver answers every guest before sign-in (phones need it
//! to find the portal); at a tunnel's pace it must not carry traffic to
//! the Internet. Each client has its own budget; signed-in clients none.

use crate::harness::portal::{assert_online, sign_in};
use crate::harness::{self, Client, GW_V4, GateConfig, INET_NAME, INET_V4, gate_lab};
use crate::{check, check_eq};

const TUNNEL: Client = Client::C1;
const OTHER: Client = Client::C2;
/// Queries sent as fast as Python sends them (well under a second); no
/// more than the resolver's socket buffer holds, so unlimited, nearly all
/// are answered.
const QUERIES: u64 = 250;
/// Answers a client may get from that: the burst (50) and a second of the
/// rate (20), with room for the time the burst takes.
const MAX_ANSWERED: u64 = 150;

#[test]
fn dns_before_sign_in_is_rate_limited_per_client() {
    let Some((lab, _gate)) = gate_lab("dns", GateConfig::default()) else {
        return;
    };
    let burst = lab.forge(TUNNEL, "dns", &[GW_V4, INET_NAME, &QUERIES.to_string()]);
    let answered = burst["answered"].as_u64().unwrap_or(0);
    check!(
        lab,
        answered > 0 && answered <= MAX_ANSWERED,
        "a guest before sign-in got {answered} of {QUERIES} DNS answers in a burst (at most {MAX_ANSWERED}): {burst}"
    );
    // Another phone's budget is its own: its lookups still work at once.
    let dns = lab.dns(OTHER, INET_NAME, GW_V4);
    check_eq!(
        lab,
        dns.a_records(),
        vec![INET_V4.to_string()],
        "the other phone's DNS: {dns}"
    );

    // Signed in, the same burst is answered in full: the budget is only
    // for the captive state.
    sign_in(&lab, TUNNEL);
    assert_online(&lab, TUNNEL);
    let after = lab.forge(TUNNEL, "dns", &[GW_V4, INET_NAME, &QUERIES.to_string()]);
    let answered_after = after["answered"].as_u64().unwrap_or(0);
    check!(
        lab,
        answered_after >= QUERIES * 4 / 5,
        "a signed-in guest got only {answered_after} of {QUERIES} DNS answers: {after}"
    );
    harness::say(&format!(
        "dns budget: {answered} of {QUERIES} answered before sign-in, {answered_after} after"
    ));
}
