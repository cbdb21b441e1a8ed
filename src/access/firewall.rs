//! The enforcement seam: what the session machine asks of a firewall.
//!
//! Every backend keeps authorised clients in a keyed set, so `allow` and
//! `revoke` cost the same with ten clients or ten thousand.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::mac::MacAddr;

/// One authorised client as the firewall sees it: a MAC and how long it
/// may pass without the daemon's help (the rest of its session).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub mac: MacAddr,
    pub ttl: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    #[error(
        "nftables is not usable: {0} (is the nft program installed, and do we have CAP_NET_ADMIN?)"
    )]
    Unavailable(String),
    #[error("nftables refused the ruleset: {0}")]
    Rejected(String),
    #[error("netlink: {0}")]
    Netlink(String),
}

/// A firewall that gates the guest LAN.
pub trait Firewall: Send + Sync {
    /// Creates (or atomically replaces) the gate with exactly `grants`
    /// authorised. Called once at start, before the portal answers.
    fn install(&self, grants: &[Grant]) -> Result<(), FirewallError>;
    /// Lets `grant.mac` through for `grant.ttl`, replacing any earlier grant.
    fn allow(&self, grant: Grant) -> Result<(), FirewallError>;
    /// Stops letting `mac` through. Revoking an unknown MAC is not an error.
    fn revoke(&self, mac: MacAddr) -> Result<(), FirewallError>;
    /// Clients that sent traffic through the gate recently (for idle
    /// timeouts). Backends that cannot tell return `None`.
    fn recently_active(&self) -> Result<Option<Vec<MacAddr>>, FirewallError>;
    /// A short name for logs and `ctl status`.
    fn name(&self) -> &'static str;
}

/// Enforces nothing; remembers grants so that tests and the demo can ask
/// who would pass. Used for `firewall.backend = "none"`.
#[derive(Default)]
pub struct MemoryFirewall {
    grants: Mutex<HashMap<MacAddr, Instant>>,
}

impl MemoryFirewall {
    pub fn new() -> Self {
        Self::default()
    }

    /// Would traffic from `mac` pass right now?
    pub fn is_allowed(&self, mac: MacAddr) -> bool {
        let grants = self.grants.lock().unwrap_or_else(|e| e.into_inner());
        grants
            .get(&mac)
            .is_some_and(|until| *until > Instant::now())
    }

    pub fn len(&self) -> usize {
        self.grants.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Firewall for MemoryFirewall {
    fn install(&self, grants: &[Grant]) -> Result<(), FirewallError> {
        let now = Instant::now();
        let mut map = self.grants.lock().unwrap_or_else(|e| e.into_inner());
        map.clear();
        map.extend(grants.iter().map(|g| (g.mac, now + g.ttl)));
        Ok(())
    }

    fn allow(&self, grant: Grant) -> Result<(), FirewallError> {
        let until = Instant::now() + grant.ttl;
        self.grants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(grant.mac, until);
        Ok(())
    }

    fn revoke(&self, mac: MacAddr) -> Result<(), FirewallError> {
        self.grants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&mac);
        Ok(())
    }

    fn recently_active(&self) -> Result<Option<Vec<MacAddr>>, FirewallError> {
        Ok(None)
    }

    fn name(&self) -> &'static str {
        "none"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_firewall_tracks_grants() {
        let fw = MemoryFirewall::new();
        let a: MacAddr = "02:00:00:00:00:0a".parse().unwrap();
        let b: MacAddr = "02:00:00:00:00:0b".parse().unwrap();
        fw.install(&[Grant {
            mac: a,
            ttl: Duration::from_secs(60),
        }])
        .unwrap();
        assert!(fw.is_allowed(a));
        assert!(!fw.is_allowed(b));
        fw.allow(Grant {
            mac: b,
            ttl: Duration::ZERO,
        })
        .unwrap();
        assert!(!fw.is_allowed(b), "a zero ttl grant has already expired");
        fw.revoke(a).unwrap();
        assert!(!fw.is_allowed(a));
        fw.revoke(a).unwrap();
    }
}
