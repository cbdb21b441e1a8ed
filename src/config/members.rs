//! `[members]`: how long a member's device stays remembered, phone sign-in
//! (country code, one-time codes and their lockout), member numbers, and
//! the version of the consent texts; and the limits that keep a hostile
//! guest from using the box to text the world or to fill it with members
//! (the countries codes are texted to, the hourly caps, the number of
//! stored members, whether a bare member number is trusted with consent).
//! `[members.wifi]` (per-member Wi-Fi keys) is checked in `super::wifi`.

use std::time::Duration;

use super::ConfigError;
use super::check::positive;
use super::raw::RawMembers;
use super::wifi::{self, WifiConfig};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembersConfig {
    /// A device binding not seen for this many days expires.
    pub remember_days: u32,
    /// Devices remembered per member; a new one replaces the oldest.
    pub max_devices: u32,
    /// Digits put in front of a national phone number (no `+`), e.g. "86".
    pub default_country_code: String,
    /// How long a texted code stays valid.
    pub otp_ttl: Duration,
    /// Wrong codes accepted per code before the phone is locked out.
    pub otp_max_attempts: u32,
    /// How long a phone stays locked out after too many wrong codes.
    pub otp_lockout: Duration,
    /// Allowed member number lengths, inclusive (`"8-12"`, or `"10"`).
    pub member_number_digits: (u32, u32),
    pub member_number_check: MemberNumberCheck,
    /// Version of the consent texts, recorded with every consent.
    pub consent_version: String,
    /// Calling codes (no `+`) whose numbers may be texted a code; always
    /// holds `default_country_code`.
    pub otp_countries: Vec<String>,
    /// Codes the whole box may have HQ text per hour (counted on disk).
    pub otp_per_hour: u32,
    /// Codes per hour to numbers that share their first 7 digits after
    /// the calling code (a block of numbers a pumping scheme walks).
    pub otp_per_prefix_per_hour: u32,
    /// Whether a member number alone (which HQ never confirms) may carry
    /// consent and bind a device. Off: such a sign-in is for this session
    /// only.
    pub member_number_trusted: bool,
    /// Member-number sign-in attempts the whole box takes per hour
    /// (counted on disk), successes and failures alike.
    pub member_number_per_hour: u32,
    /// Member records kept; past it a new member signs in for the session
    /// only and nothing is stored for them.
    pub max_members: u32,
    /// `[members.wifi]`: per-member Wi-Fi keys, when configured.
    pub wifi: Option<WifiConfig>,
}

impl Default for MembersConfig {
    /// The documented defaults.
    fn default() -> Self {
        MembersConfig {
            remember_days: 180,
            max_devices: 1,
            default_country_code: "86".into(),
            otp_ttl: Duration::from_secs(300),
            otp_max_attempts: 5,
            otp_lockout: Duration::from_secs(900),
            member_number_digits: (6, 16),
            member_number_check: MemberNumberCheck::None,
            consent_version: "1".into(),
            otp_countries: vec!["86".into()],
            otp_per_hour: 200,
            otp_per_prefix_per_hour: 10,
            member_number_trusted: false,
            member_number_per_hour: 100,
            max_members: 20_000,
            wifi: None,
        }
    }
}

/// How a member number is checked beyond its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberNumberCheck {
    None,
    /// The last digit is a Luhn (mod 10) check digit.
    Luhn,
}

pub(super) fn validate(raw: RawMembers) -> Result<MembersConfig, ConfigError> {
    if !(1..=3650).contains(&raw.remember_days) {
        return Err(ConfigError::new(
            "members.remember_days",
            "must be between 1 and 3650",
        ));
    }
    if !(1..=16).contains(&raw.max_devices) {
        return Err(ConfigError::new(
            "members.max_devices",
            "must be between 1 and 16",
        ));
    }
    calling_code("members.default_country_code", &raw.default_country_code)?;
    let countries = raw
        .otp_countries
        .clone()
        .unwrap_or_else(|| vec![raw.default_country_code.clone()]);
    if !(1..=16).contains(&countries.len()) {
        return Err(ConfigError::new(
            "members.otp_countries",
            "must list 1 to 16 calling codes, such as [\"86\"]",
        ));
    }
    for cc in &countries {
        calling_code("members.otp_countries", cc)?;
    }
    if !countries.contains(&raw.default_country_code) {
        return Err(ConfigError::new(
            "members.otp_countries",
            format!(
                "must include members.default_country_code ({:?}): numbers typed without a \
                 country code are taken as from there",
                raw.default_country_code
            ),
        ));
    }
    for (key, value, max) in [
        ("members.otp_per_hour", raw.otp_per_hour, 1000),
        (
            "members.otp_per_prefix_per_hour",
            raw.otp_per_prefix_per_hour,
            1000,
        ),
        (
            "members.member_number_per_hour",
            raw.member_number_per_hour,
            10_000,
        ),
        ("members.max_members", raw.max_members, 1_000_000),
    ] {
        if !(1..=max).contains(&value) {
            return Err(ConfigError::new(
                key,
                format!("must be between 1 and {max}"),
            ));
        }
    }
    let otp_ttl = positive("members.otp_ttl", &raw.otp_ttl)?;
    if !(Duration::from_secs(30)..=Duration::from_secs(3600)).contains(&otp_ttl) {
        return Err(ConfigError::new(
            "members.otp_ttl",
            "must be between 30s and 1h",
        ));
    }
    if !(1..=20).contains(&raw.otp_max_attempts) {
        return Err(ConfigError::new(
            "members.otp_max_attempts",
            "must be between 1 and 20",
        ));
    }
    let otp_lockout = positive("members.otp_lockout", &raw.otp_lockout)?;
    if otp_lockout > Duration::from_secs(86_400) {
        return Err(ConfigError::new(
            "members.otp_lockout",
            "must be at most 24h",
        ));
    }
    let digits = member_number_digits(&raw.member_number_digits).ok_or_else(|| {
        ConfigError::new(
            "members.member_number_digits",
            format!(
                "{:?} must be a length such as \"10\" or a range such as \"8-12\", within 1-32",
                raw.member_number_digits
            ),
        )
    })?;
    let check = match raw.member_number_check.as_str() {
        "none" => MemberNumberCheck::None,
        "luhn" => MemberNumberCheck::Luhn,
        other => {
            return Err(ConfigError::new(
                "members.member_number_check",
                format!("{other:?} is not a check; use \"none\" or \"luhn\""),
            ));
        }
    };
    if check == MemberNumberCheck::Luhn && digits.0 < 2 {
        return Err(ConfigError::new(
            "members.member_number_digits",
            "must allow at least 2 digits with the luhn check",
        ));
    }
    let version = &raw.consent_version;
    if !(1..=32).contains(&version.len())
        || !version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err(ConfigError::new(
            "members.consent_version",
            format!("{version:?} must be 1 to 32 characters of a-z, A-Z, 0-9, '.', '_' and '-'"),
        ));
    }
    let wifi = raw.wifi.map(wifi::validate).transpose()?;
    Ok(MembersConfig {
        remember_days: raw.remember_days,
        max_devices: raw.max_devices,
        default_country_code: raw.default_country_code,
        otp_ttl,
        otp_max_attempts: raw.otp_max_attempts,
        otp_lockout,
        member_number_digits: digits,
        member_number_check: check,
        consent_version: raw.consent_version,
        otp_countries: countries,
        otp_per_hour: raw.otp_per_hour,
        otp_per_prefix_per_hour: raw.otp_per_prefix_per_hour,
        member_number_trusted: raw.member_number_trusted,
        member_number_per_hour: raw.member_number_per_hour,
        max_members: raw.max_members,
        wifi,
    })
}

/// A calling code as the config writes it: 1 to 3 digits, no `+`, not
/// starting with 0.
fn calling_code(key: &str, cc: &str) -> Result<(), ConfigError> {
    if !(1..=3).contains(&cc.len())
        || !cc.bytes().all(|b| b.is_ascii_digit())
        || cc.starts_with('0')
    {
        return Err(ConfigError::new(
            key,
            format!("{cc:?} must be a calling code of 1 to 3 digits without '+', such as \"86\""),
        ));
    }
    Ok(())
}

/// `"10"` or `"8-12"` → (min, max), within 1..=32.
fn member_number_digits(s: &str) -> Option<(u32, u32)> {
    let (lo, hi) = match s.split_once('-') {
        Some((lo, hi)) => (lo.trim().parse().ok()?, hi.trim().parse().ok()?),
        None => {
            let n = s.trim().parse().ok()?;
            (n, n)
        }
    };
    (1 <= lo && lo <= hi && hi <= 32).then_some((lo, hi))
}
