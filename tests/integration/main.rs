//! storegate's integration tests: one test binary (so the crate links once),
//! with a module per area.
//!
//! * [`harness`]: what the tests share: the network-namespace lab (root;
//!   skipped otherwise, always run in CI), the daemon in it and on
//!   loopback, the reference HQ receiver, and helpers to drive and wait on
//!   them.
//!
//! In the lab (need root):
//!
//! * [`smoke`]: proves the lab itself (DHCP, DNS, HTTP, UDP) without storegate.
//! * [`captive`]: the captive portal as a shopper's phone sees it, against a
//!   real storegate daemon, dnsmasq and nftables: capture before sign-in,
//!   sign-in and out, session and idle timeouts, sessions across restarts,
//!   bad input (and, without root, bad config).
//! * [`presence`]: real DHCP clients join, stay and leave; devices, visits
//!   and their events, a rejoin within the gap, presence across a restart.
//! * [`attacks`]: the hostile guest LAN: a signed-in guest reaches none
//!   of the box's own services; forged DHCP and ARP frames naming other
//!   devices (a flood of invented phones, a remembered member's MAC) are
//!   not believed.
//! * [`wifi`]: the members' Wi-Fi with the hostapd stand-in: a member's
//!   personal key lets the phone in at association whatever its MAC,
//!   20 rejoins with new MACs, leaves ended at once.
//! * [`members`]: phone + code and member-number sign-in with HQ's messages
//!   endpoint; remembered devices let in on their DHCP request, lockout,
//!   erasure, the binding moving to a new MAC, consent.
//! * [`members_abuse`]: a guest posting the member forms in a loop from
//!   one MAC and from fifty: member-number sign-ins stay under the device's
//!   and the box's caps and store no consent; codes go only to the store's
//!   country, only for a page's ticket, and the box's cap on texts survives
//!   a restart.
//!
//! On loopback (no root):
//!
//! * [`delivery`]: events reach HQ signed and in order; they wait while HQ
//!   is down, are parked when HQ refuses them, and survive a SIGKILL.
//! * [`hq_faults`]: an HQ that never answers or closes without answering is
//!   timed out and retried without loss.
//! * [`hq_clock`]: a `401` for a stale `webhook-timestamp` (HQ's `Date` an
//!   hour from the box's clock) is retried, re-signed, never parked.
//! * [`hq_tls`]: delivery over HTTPS with a pinned CA, mutual TLS with
//!   client certificates, and the usage errors of the TLS options.
//! * [`outbox`]: the outbox cap drops footfall summaries first and HQ hears
//!   of the gap; the sync document is fetched and kept while HQ is away.
//! * [`receiver`]: `storegate hq-receiver` as an integrator uses it, and the
//!   documented Python verifier against the crate's signer.
//! * [`dashboard`]: the manager's dashboard in headless Chromium.
//! * [`demo`]: `storegate demo`, the simulated store, end to end.
//! * [`demo_story`]: the demo with its history in headless Chromium, the
//!   simulated clock kept apart from the wall clock, members' arrivals
//!   turned into targeted messages.
//! * [`hostapd`]: the hostapd control-interface client against a stand-in
//!   hostapd (`tests/lab/hostapd_standin.py`): members' keys, the station
//!   listing, commands, and a hostapd restart.
//!
//! On the source:
//!
//! * [`layering`]: no import cycle between `src/`'s top-level modules, no
//!   file over 600 lines, `daemon` imported only by `cli` and `sim`.

mod harness;

mod attacks;
mod captive;
mod dashboard;
mod delivery;
mod demo;
mod demo_story;
mod hostapd;
mod hq_clock;
mod hq_faults;
mod hq_tls;
mod layering;
mod members;
mod members_abuse;
mod migration;
mod outbox;
mod presence;
mod receiver;
mod smoke;
mod wifi;

/// Tests that keep both cores busy for seconds (a headless browser, the
/// demo's simulated store) take this exclusively; tests that check a
/// deadline (a restart within 1 s) share it, so the two never overlap.
/// Everything else runs in parallel as before.
static CPU: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// For a test that loads the machine.
pub fn heavy() -> std::sync::RwLockWriteGuard<'static, ()> {
    CPU.write().unwrap_or_else(|e| e.into_inner())
}

/// For a test that checks a deadline.
pub fn timed() -> std::sync::RwLockReadGuard<'static, ()> {
    CPU.read().unwrap_or_else(|e| e.into_inner())
}
