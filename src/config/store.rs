//! `[store]`: who this box is (the id in every event) and the time zone its
//! footfall is counted in.

use jiff::tz::TimeZone;

use super::ConfigError;
use super::raw::RawStore;

#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `[a-z0-9-]{1,64}`; appears in every event as `/stores/{id}`.
    pub id: String,
    pub name: String,
    /// The zone's IANA name as written, such as `"Asia/Shanghai"`.
    pub timezone_name: String,
    /// That zone, looked up once at load, so an unknown name is a config
    /// error and the daemon never looks it up again.
    pub timezone: TimeZone,
}

pub(super) fn validate(raw: RawStore) -> Result<StoreConfig, ConfigError> {
    let id_ok = (1..=64).contains(&raw.id.len())
        && raw
            .id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !id_ok {
        return Err(ConfigError::new(
            "store.id",
            format!(
                "{:?} must be 1 to 64 characters of a-z, 0-9 and '-'",
                raw.id
            ),
        ));
    }
    let tz_ok = (1..=64).contains(&raw.timezone.len())
        && raw
            .timezone
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_+-".contains(&b));
    if !tz_ok {
        return Err(ConfigError::new(
            "store.timezone",
            format!(
                "{:?} is not an IANA time zone name such as \"Asia/Shanghai\"",
                raw.timezone
            ),
        ));
    }
    let timezone = crate::time::timezone_by_name(&raw.timezone)
        .map_err(|e| ConfigError::new("store.timezone", e))?;
    let name = raw.name.unwrap_or_else(|| raw.id.clone());
    if name.chars().count() > 128 || name.chars().any(char::is_control) {
        return Err(ConfigError::new(
            "store.name",
            "must be at most 128 characters, without control characters",
        ));
    }
    Ok(StoreConfig {
        id: raw.id,
        name,
        timezone_name: raw.timezone,
        timezone,
    })
}
