//! storegate: the software on an in-store router box. It guards the guest
//! Wi-Fi with a captive portal, sees devices join and leave, recognises
//! returning members, shows the store manager a live dashboard and sends
//! signed events to the retailer's HQ.
//!
//! The data path, in the order data flows:
//!
//! ```text
//! LAN frames ─ net (capture, wire parsers, feed) ─▶ presence (pure machines + shell)
//!                                                      │ returning members
//!                                                      ▼
//!                                          members ── access (sessions, gate, nftables)
//!                                                      │ typed events (EventSink)
//!                                                      ▼
//!                                          uplink (outbox → signed batches → HQ; sync; texts)
//!
//! HTTP ─ portal (shoppers), dashboard (manager), control (ctl) ─▶ app (the hub) ─▶ access / members / presence
//! ```
//!
//! - Leaves every module may use: `mac` (MAC addresses), `time`
//!   (timestamps, time zones), `clock` (the business clock: wall, or the
//!   demo's simulated one), `store` (the `Store` trait: redb on the
//!   box, memory in tests), `privacy` (the keyed `device_id`),
//!   `fingerprint` (OS family from DHCP options), `nlwire` (netlink
//!   framing), `memory`, `runtime` (logging and the async runtime of
//!   the commands that serve).
//! - `config`: the TOML file, validated and resolved once, so
//!   `check-config` sees what `run` sees.
//! - `app`: the one hub: shared handles and every operation that spans
//!   modules (erase a member, block, sign out, mark staff, status).
//! - `http`: what every HTTP server shares (the bounded listener, one
//!   connection driver, forms, answers); `web`: templates, translations,
//!   escaping. The box's servers (`portal`, `dashboard`) and HQ's
//!   reference receiver (`hq`) use both.
//! - `daemon` only wires the parts and runs their tasks under one
//!   shutdown token; `cli` is the command line; `sim` the simulated store
//!   behind `storegate demo`.
//!
//! Pure state machines (`access::session`, `presence`) take `now` as an
//! argument and do no I/O; their shells (`access::gate`,
//! `presence::shell`) feed them and carry out what they return.
#![deny(unsafe_code)]

pub mod access;
pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod control;
pub mod daemon;
pub mod dashboard;
pub mod fingerprint;
pub mod hq;
pub mod http;
pub mod mac;
pub mod members;
pub mod memory;
pub mod net;
pub mod nlwire;
pub mod portal;
pub mod presence;
pub mod privacy;
pub mod runtime;
pub mod sim;
pub mod store;
pub mod time;
pub mod uplink;
pub mod web;
