//! `[members.wifi]`: the members' SSID, where storegate writes hostapd's
//! per-member PSK file, hostapd's control sockets, and whether a
//! member-number sign-in may get a key. Optional: without it no key is
//! ever issued and the welcome page offers none.
//!
//! Checked at load so a typo shows up before the first member is given a
//! key that hostapd cannot read.

use std::path::PathBuf;

use super::ConfigError;
use super::raw::RawMembersWifi;

/// Control sockets accepted (one per radio).
const MAX_CTRL: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WifiConfig {
    /// The members' SSID (1-32 bytes): the PBKDF2 salt of every key.
    pub ssid: String,
    /// hostapd's `wpa_psk_file`, written by storegate.
    pub psk_file: PathBuf,
    /// hostapd control sockets, told to reload the file after a change.
    pub hostapd_ctrl: Vec<PathBuf>,
    /// Whether a member-number sign-in (which proves nothing) may get a
    /// key. Off by default.
    pub allow_member_number: bool,
}

pub(super) fn validate(raw: RawMembersWifi) -> Result<WifiConfig, ConfigError> {
    if !(1..=32).contains(&raw.ssid.len()) {
        return Err(ConfigError::new(
            "members.wifi.ssid",
            format!("{:?} must be 1 to 32 bytes", raw.ssid),
        ));
    }
    if raw.ssid.chars().any(char::is_control) {
        return Err(ConfigError::new(
            "members.wifi.ssid",
            "must not contain control characters",
        ));
    }
    let psk_file = absolute_file("members.wifi.psk_file", &raw.psk_file)?;
    if !(1..=MAX_CTRL).contains(&raw.hostapd_ctrl.len()) {
        return Err(ConfigError::new(
            "members.wifi.hostapd_ctrl",
            format!(
                "must list 1 to {MAX_CTRL} hostapd control sockets, such as \
                 [\"/var/run/hostapd/wlan0-1\"]"
            ),
        ));
    }
    let mut ctrl = Vec::with_capacity(raw.hostapd_ctrl.len());
    for c in &raw.hostapd_ctrl {
        let path = absolute_file("members.wifi.hostapd_ctrl", c)?;
        if ctrl.contains(&path) {
            return Err(ConfigError::new(
                "members.wifi.hostapd_ctrl",
                format!("{c:?} is listed twice"),
            ));
        }
        ctrl.push(path);
    }
    Ok(WifiConfig {
        ssid: raw.ssid,
        psk_file,
        hostapd_ctrl: ctrl,
        allow_member_number: raw.allow_member_number,
    })
}

/// An absolute path naming a file (not a directory).
fn absolute_file(key: &str, s: &str) -> Result<PathBuf, ConfigError> {
    let path = PathBuf::from(s);
    if !path.is_absolute() || s.ends_with('/') || path.file_name().is_none() {
        return Err(ConfigError::new(
            key,
            format!("{s:?} must be the absolute path of a file"),
        ));
    }
    Ok(path)
}
