//! `[presence]`: when a silent device is probed and declared gone, staff
//! and resident exclusion, footfall summaries, and the operator's extra OS
//! fingerprint rules (read and parsed here, at load).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::ConfigError;
use super::check::{duration, optional_path, positive, read_text};
use super::raw::RawPresence;
use crate::fingerprint::{FingerprintRule, parse_fingerprint_file};
use crate::mac::MacAddr;

/// Far more than any rule set needs (rules are a few lines each).
const MAX_FINGERPRINT_FILE_BYTES: u64 = 1 << 20;

#[derive(Debug, Clone)]
pub struct PresenceConfig {
    pub probe_after: Duration,
    pub leave_after: Duration,
    pub rejoin_gap: Duration,
    pub staff_devices: Vec<MacAddr>,
    /// Where `fingerprints` came from, if set.
    pub fingerprint_file: Option<PathBuf>,
    /// The rules of `fingerprint_file`, read and parsed at load, checked
    /// before the built-in ones; empty without the file.
    pub fingerprints: Vec<FingerprintRule>,
    /// A device present this long on a day counts that day as "resident".
    pub resident_min_daily: Duration,
    /// ... and on this many of the last 7 days is a resident.
    pub resident_min_days: u32,
    /// How often a `footfall.summary` event goes to HQ.
    pub summary_interval: Duration,
    /// New devices taken in per minute (a burst of this many, refilled
    /// evenly): more is a flood of invented MACs, not shoppers.
    pub new_devices_per_minute: u32,
}

/// `presence.new_devices_per_minute` by default: far above any store's
/// arrivals (a busy entrance sees a few a second at most), far below a
/// flood.
pub const DEFAULT_NEW_DEVICES_PER_MINUTE: u32 = 600;

pub(super) fn validate(raw: RawPresence) -> Result<PresenceConfig, ConfigError> {
    let probe_after = positive("presence.probe_after", &raw.probe_after)?;
    let leave_after = positive("presence.leave_after", &raw.leave_after)?;
    let rejoin_gap = duration("presence.rejoin_gap", &raw.rejoin_gap)?;
    let staff_devices = raw
        .staff_devices
        .iter()
        .enumerate()
        .map(|(i, s)| {
            s.parse::<MacAddr>().map_err(|e| {
                ConfigError::new(format!("presence.staff_devices[{i}]"), e.to_string())
            })
        })
        .collect::<Result<_, _>>()?;
    let fingerprint_file = optional_path("presence.fingerprint_file", raw.fingerprint_file)?;
    let resident_min_daily = positive("presence.resident_min_daily", &raw.resident_min_daily)?;
    let summary_interval = positive("presence.summary_interval", &raw.summary_interval)?;
    if !(1..=7).contains(&raw.resident_min_days) {
        return Err(ConfigError::new(
            "presence.resident_min_days",
            "must be between 1 and 7 (days of the last week)",
        ));
    }
    if raw.new_devices_per_minute == 0 {
        return Err(ConfigError::new(
            "presence.new_devices_per_minute",
            "must be at least 1 (no new device would ever be tracked)",
        ));
    }
    if leave_after < probe_after {
        return Err(ConfigError::new(
            "presence.leave_after",
            "must not be shorter than presence.probe_after (a silent device is probed before it is declared gone)",
        ));
    }
    let fingerprints = match &fingerprint_file {
        Some(path) => fingerprint_rules(path)?,
        None => Vec::new(),
    };
    Ok(PresenceConfig {
        probe_after,
        leave_after,
        rejoin_gap,
        staff_devices,
        fingerprint_file,
        fingerprints,
        resident_min_daily,
        resident_min_days: raw.resident_min_days,
        summary_interval,
        new_devices_per_minute: raw.new_devices_per_minute,
    })
}

/// The rules in `path`, with the presence module's own parser; errors
/// name the key and the file (and the rule at fault).
fn fingerprint_rules(path: &Path) -> Result<Vec<FingerprintRule>, ConfigError> {
    const KEY: &str = "presence.fingerprint_file";
    let text = read_text(KEY, path, MAX_FINGERPRINT_FILE_BYTES)?;
    parse_fingerprint_file(&text)
        .map_err(|e| ConfigError::new(KEY, format!("{}: {e}", path.display())))
}
