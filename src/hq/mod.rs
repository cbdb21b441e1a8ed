//! HQ's side of the uplink, not the box's: the reference HQ endpoint
//! `storegate hq-receiver` (`receiver`), which integrators run to see and
//! test what the boxes send, and targeted messages (`targeting`): the
//! campaign rules and the decision one member's arrival comes to, shared
//! by `storegate-hq`'s messenger and the demo's in-process HQ. It shares
//! the signing and event formats with `crate::uplink`, and the HTTP
//! plumbing with `crate::http`.

pub mod receiver;
pub mod targeting;
