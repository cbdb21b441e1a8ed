//! `[firewall]`: which backend enforces sign-in.

use super::ConfigError;
use super::raw::RawFirewall;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirewallBackend {
    Nftables,
    /// No enforcement: the demo and tests without root.
    None,
}

pub(super) fn validate(raw: RawFirewall) -> Result<FirewallBackend, ConfigError> {
    match raw.backend.as_str() {
        "nftables" => Ok(FirewallBackend::Nftables),
        "none" => Ok(FirewallBackend::None),
        other => Err(ConfigError::new(
            "firewall.backend",
            format!("{other:?} is not a backend; use \"nftables\" or \"none\""),
        )),
    }
}
