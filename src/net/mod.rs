//! LAN-side identities and lookups: MAC addresses and the kernel's
//! neighbour table (which MAC is behind which IP).

pub mod capture;
pub mod mac;
pub mod neigh;
pub mod nlwire;
pub mod wire;

pub use mac::MacAddr;
