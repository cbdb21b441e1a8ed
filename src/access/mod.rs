//! Who may use the guest LAN: client sessions and their enforcement.
//!
//! - `session`: the pure client-session machine (pre-auth → authorised →
//!   ended), driven with `now`.
//! - `firewall`: the `Firewall` trait and the in-memory backend.
//! - `nft`: the nftables backend (JSON ruleset at install, netlink on the
//!   hot path).
//! - `blocked`: devices the manager blocked on the dashboard.
//! - `gate`: the I/O shell that joins the machine, the store and the
//!   firewall, and is what the portal and the hub call;
//! - `timers`: the task that ends sessions on time and feeds idle timers.

pub mod blocked;
pub mod firewall;
pub mod gate;
pub mod nft;
pub mod session;
pub mod timers;

pub use firewall::{Firewall, FirewallError, Grant, MemoryFirewall};
pub use gate::Gate;
pub use session::{AuthMethod, ClientState, EndReason, Sessions};
