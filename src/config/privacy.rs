//! `[privacy]`: the key behind every `device_id`, and how long devices of
//! no member are kept.
//!
//! The key file is read by `crate::privacy::DeviceKey` (which owns the rule
//! for what makes a usable key), which the command line also calls before
//! the daemon starts; this section only checks the path.

use std::path::PathBuf;

use super::ConfigError;
use super::check::optional_path;
use super::raw::RawPrivacy;

#[derive(Debug, Clone)]
pub struct PrivacyConfig {
    pub device_key_file: Option<PathBuf>,
    /// Device records with no member are forgotten after this many days
    /// without a sighting.
    pub forget_unbound_after_days: u32,
}

pub(super) fn validate(raw: RawPrivacy) -> Result<PrivacyConfig, ConfigError> {
    if !(1..=3650).contains(&raw.forget_unbound_after_days) {
        return Err(ConfigError::new(
            "privacy.forget_unbound_after_days",
            "must be between 1 and 3650",
        ));
    }
    Ok(PrivacyConfig {
        device_key_file: optional_path("privacy.device_key_file", raw.device_key_file)?,
        forget_unbound_after_days: raw.forget_unbound_after_days,
    })
}
