//! Who is in the store: pure state machines that take sightings from the
//! LAN and `now`, and return what happened (joins, leaves, probes to send,
//! visits started and ended). No I/O, no clock.

pub mod sighting;

pub use sighting::{DhcpInfo, DhcpMessageType, Sighting, SightingKind};
