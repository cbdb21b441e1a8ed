//! What the integration tests share: the network-namespace lab (a store's
//! guest LAN, its gateway and "the internet", built for one test at a time
//! and torn down in `Drop`), the storegate daemon in it and on loopback, the
//! reference HQ receiver, and the helpers to drive and wait on them.
//!
//! * [`lab`]: addresses, the phones, namespaces, links and teardown.
//! * [`gateway`]: dnsmasq and storegate in the gateway namespace, and the
//!   config the lab writes for it.
//! * [`clients`]: the phones' DHCP clients, MACs and addresses.
//! * [`probe`]: HTTP, TCP, UDP and DNS from a phone (`tests/lab/probe.py`).
//! * [`internet`]: the internet namespace's servers (`tests/lab/internet.py`).
//! * [`portal`]: the captive portal as a phone sees it (sign-in, redirects,
//!   RFC 8908 API, form tokens).
//! * [`ctl`]: `storegate ctl` on a control socket.
//! * [`daemon`]: a daemon with no enforcement on loopback (no root needed).
//! * [`demo`]: `storegate demo` started and its banner read.
//! * [`hq`]: the reference HQ receiver, and loopback daemons delivering to it.
//! * [`loopback`]: free ports and raw HTTP/1.1 replies on 127.0.0.1.
//! * [`process`]: running commands, the binary under test, root, signals.
//! * [`wait`]: polling until something happens or a deadline passes.
//! * [`diag`]: failure messages with the lab's logs (`check!`, `check_eq!`,
//!   `fail!`).
//!
//! The lab needs root. [`Lab::new`] returns `None` (and prints
//! "skipped: needs root") otherwise; in CI we are root and the tests run.
//!
//! Set `SG_LAB_STOREGATE=/path/to/storegate` to test another binary than
//! this build's in the lab, and `SG_LAB_RUST_LOG` for the daemon's
//! `RUST_LOG` (default `info,storegate=debug`). Set `SG_LAB_KEEP=1` to keep
//! a lab's temporary directory (logs, leases, configs, state) after the
//! test; its path is printed.
#![allow(dead_code)]

pub mod clients;
pub mod ctl;
pub mod daemon;
pub mod demo;
pub mod diag;
pub mod forge;
pub mod gateway;
pub mod hostapd;
pub mod hq;
pub mod internet;
pub mod lab;
pub mod loopback;
pub mod portal;
pub mod probe;
pub mod process;
pub mod wait;

pub use clients::{DhcpClient, DhcpOptions};
pub use diag::{Diag, say, tail};
pub use gateway::{GateConfig, Storegate, gate_lab};
pub use lab::{
    CAPTIVE_API_URL, Client, GW_V4, GW_V6, INET_BODY, INET_NAME, INET_V4, INET_V6, Lab, PORTAL,
    PORTAL_PORT,
};
pub use process::{is_root, storegate_bin};
pub use wait::wait_for;
