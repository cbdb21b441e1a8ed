//! storegate: the software on an in-store router box.
//!
//! It guards the guest Wi-Fi with a captive portal (`portal`, `access`),
//! keeps its state in an embedded database (`store`), and is driven by the
//! daemon in `daemon` and the command line in `cli`. Pure state machines
//! (`access::session`) take `now` as an argument and do no I/O; the tasks in
//! `daemon` feed them. The box's HTTP servers (the portal, the manager's
//! `dashboard`) and HQ's reference receiver (`hq`) share `http` for
//! listening, connections and answers, and `web` for pages and texts.
#![deny(unsafe_code)]

pub mod access;
pub mod cli;
pub mod config;
pub mod control;
pub mod daemon;
pub mod dashboard;
pub mod hq;
pub mod http;
pub mod members;
pub mod net;
pub mod portal;
pub mod presence;
pub mod privacy;
pub mod sim;
pub mod store;
pub mod time;
pub mod uplink;
pub mod web;
