//! The nftables backend.
//!
//! The table `inet storegate` is created (or atomically replaced) at start
//! from one JSON document fed to `nft -j -f -` (`ruleset`). Authorising and
//! revoking a client afterwards touch only set elements, through netlink
//! (`netlink`), so the hot path spawns no process and does not grow with the
//! number of clients.

pub mod netlink;
pub mod ruleset;
