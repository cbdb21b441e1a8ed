//! Who is in the store: pure state machines that take sightings from the
//! LAN and `now`, and return what happened (joins, leaves, probes to send,
//! visits started and ended). No I/O, no clock. Next to them, `shell`:
//! the one piece here that does I/O, feeding the machines and carrying
//! out what they return.
//!
//! - `tracker`: per device, present → silent/probed → left;
//! - `visit`: joins and departures → visits, with the rejoin gap;
//! - `engine`: the `Presence` facade, classification (staff, residents),
//!   persistence;
//! - `footfall`: per-day aggregates of visitors;
//! - `local`: the store's local days and hours;
//! - `shell`: the I/O shell (events, probes, persistence, returning
//!   members) and its timer task.
//!
//! OS fingerprints (`crate::fingerprint`) and MAC addresses
//! (`crate::mac`) are leaves this module shares with `net` and `config`.

pub mod device;
pub mod engine;
pub mod footfall;
pub mod local;
pub mod shell;
pub mod sighting;
mod tracker;
pub mod visit;

pub use crate::fingerprint::{FingerprintRule, parse_fingerprint_file};
pub use crate::time::timezone_by_name;
pub use device::{DayPresence, Device, DeviceState};
pub use engine::{Counters, Output, Presence, PresenceConfig, Saved, StaffOverride};
pub use footfall::{DayView, DwellBuckets, Footfall, FootfallView, VisitFrequency};
pub use shell::{FrameStats, PresenceShell, Prober};
pub use sighting::{DhcpInfo, DhcpMessageType, Sighting, SightingKind};
pub use tracker::LeaveReason;
pub use visit::{Classification, OpenVisit, Visit};
