//! `[lan]`: the guest LAN interface the box guards.

use super::ConfigError;
use super::raw::RawLan;

#[derive(Debug, Clone)]
pub struct LanConfig {
    /// The guest LAN interface (a bridge on most routers).
    pub interface: String,
}

pub(super) fn validate(raw: RawLan) -> Result<LanConfig, ConfigError> {
    Ok(LanConfig {
        interface: interface_name("lan.interface", &raw.interface)?,
    })
}

/// A Linux interface name: at most 15 bytes (IFNAMSIZ less the NUL), and
/// none of the characters the kernel refuses. Whether it exists is only
/// known at run time (a bridge may come up after storegate).
fn interface_name(key: &str, name: &str) -> Result<String, ConfigError> {
    let ok = (1..=15).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b':');
    if ok {
        Ok(name.to_string())
    } else {
        Err(ConfigError::new(
            key,
            format!(
                "{name:?} is not a network interface name (1 to 15 characters, no '/', ':' or spaces)"
            ),
        ))
    }
}
