//! Who is in the store: pure state machines that take sightings from the
//! LAN and `now`, and return what happened (joins, leaves, probes to send,
//! visits started and ended). No I/O, no clock.
//!
//! - `tracker`: per device, present → silent/probed → left;
//! - `visit`: joins and departures → visits, with the rejoin gap;
//! - `engine`: the `Presence` facade, classification (staff, residents),
//!   persistence;
//! - `footfall`: per-day aggregates of visitors;
//! - `fingerprint`: OS family from DHCP options 55 and 60;
//! - `local`: the store's local days and hours.

pub mod device;
pub mod engine;
pub mod fingerprint;
pub mod footfall;
pub mod local;
pub mod sighting;
mod tracker;
pub mod visit;

pub use device::{DayPresence, Device, DeviceState};
pub use engine::{Counters, Output, Presence, PresenceConfig, Saved, StaffOverride};
pub use fingerprint::{FingerprintRule, parse_fingerprint_file};
pub use footfall::{DayView, DwellBuckets, Footfall, FootfallView, VisitFrequency};
pub use local::timezone_by_name;
pub use sighting::{DhcpInfo, DhcpMessageType, Sighting, SightingKind};
pub use tracker::LeaveReason;
pub use visit::{Classification, OpenVisit, Visit};
