//! HQ's side of the uplink, not the box's: the reference HQ endpoint
//! `storegate hq-receiver` (`receiver`), which integrators run to see and
//! test what the boxes send. It shares the signing and event formats
//! with `crate::uplink`, and the HTTP plumbing with `crate::http`.

pub mod receiver;
