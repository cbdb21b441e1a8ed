//! storegate's integration tests: one test binary (so the crate links once),
//! with a module per area.
//!
//! * [`lab`]: the network-namespace lab harness (needs root; skipped
//!   otherwise, always run in CI).
//! * [`smoke`]: proves the lab itself (DHCP, DNS, HTTP, UDP) without storegate.
//! * [`captive`]: the captive portal as a shopper's phone sees it, against a
//!   real storegate daemon, dnsmasq and nftables in the lab.

mod lab;

mod captive;
mod dashboard;
mod delivery;
mod demo;
mod hq;
mod hq_faults;
mod hq_tls;
mod members;
mod outbox;
mod presence;
mod receiver;
mod smoke;

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
