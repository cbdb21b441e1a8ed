//! LAN packet I/O and lookups: the capture (`capture`) and its parsers
//! (`wire`), and the kernel's neighbour table (`neigh`: which MAC is
//! behind which IP). MAC addresses themselves are in [`crate::mac`].

pub mod capture;
pub mod feed;
pub mod hostapd;
pub mod iface;
pub mod neigh;
pub mod wire;

// Kept while callers move to `crate::mac`.
pub use crate::mac::MacAddr;
