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
mod delivery;
mod hq;
mod hq_faults;
mod hq_tls;
mod members;
mod outbox;
mod presence;
mod receiver;
mod smoke;
