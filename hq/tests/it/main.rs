//! HQ's integration tests, in one binary: real `nats-server` processes
//! on loopback, `storegate-hq` processes, and the box's own daemon.

mod harness;

mod auth;
mod box_to_stream;
mod cluster;
mod quotas;
mod sync;
mod targeting;
