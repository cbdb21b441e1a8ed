//! `[portal]`: the shopper-facing listener, its URL, session limits, the
//! walled garden and the language pages default to.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;

use super::ConfigError;
use super::check::{base_url, positive, socket_addr};
use super::raw::RawPortal;

#[derive(Debug, Clone)]
pub struct PortalConfig {
    pub listen: SocketAddr,
    /// Set when the operator fixed the URL; otherwise it is derived from
    /// the LAN address at start.
    pub url: Option<String>,
    pub session_timeout: Duration,
    pub idle_timeout: Duration,
    pub walled_garden: Vec<IpNet>,
    /// Concurrent connections served; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// Concurrent connections from one client address; more are closed
    /// at once, so one guest cannot take every slot.
    pub max_connections_per_client: usize,
    pub default_language: Language,
}

/// Languages the portal speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    ZhCn,
    En,
}

impl Language {
    pub fn tag(self) -> &'static str {
        match self {
            Language::ZhCn => "zh-CN",
            Language::En => "en",
        }
    }

    pub fn from_tag(tag: &str) -> Option<Self> {
        let tag = tag.trim().to_ascii_lowercase();
        if tag == "zh" || tag.starts_with("zh-") || tag.starts_with("zh_") {
            Some(Language::ZhCn)
        } else if tag == "en" || tag.starts_with("en-") || tag.starts_with("en_") {
            Some(Language::En)
        } else {
            None
        }
    }
}

pub(super) fn validate(raw: RawPortal) -> Result<PortalConfig, ConfigError> {
    let listen = socket_addr("portal.listen", &raw.listen)?;
    if let Some(url) = &raw.url {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ConfigError::new(
                "portal.url",
                format!("{url:?} must start with http:// or https://"),
            ));
        }
        // Redirects send shoppers to `{url}login`.
        base_url("portal.url", url)?;
    }
    let walled_garden = raw
        .walled_garden
        .iter()
        .enumerate()
        .map(|(i, s)| walled_garden_entry(i, s))
        .collect::<Result<Vec<_>, _>>()?;
    if !(1..=65_535).contains(&raw.max_connections) {
        return Err(ConfigError::new(
            "portal.max_connections",
            "must be between 1 and 65535",
        ));
    }
    if !(1..=raw.max_connections).contains(&raw.max_connections_per_client) {
        return Err(ConfigError::new(
            "portal.max_connections_per_client",
            "must be between 1 and portal.max_connections",
        ));
    }
    let default_language = match raw.default_language.as_str() {
        "zh-CN" => Language::ZhCn,
        "en" => Language::En,
        other => {
            return Err(ConfigError::new(
                "portal.default_language",
                format!("{other:?} is not offered; use \"zh-CN\" or \"en\""),
            ));
        }
    };
    Ok(PortalConfig {
        listen,
        url: raw.url,
        session_timeout: positive("portal.session_timeout", &raw.session_timeout)?,
        idle_timeout: positive("portal.idle_timeout", &raw.idle_timeout)?,
        walled_garden,
        max_connections: raw.max_connections as usize,
        max_connections_per_client: raw.max_connections_per_client as usize,
        default_language,
    })
}

/// An address (a /32 or /128) or a network, host bits cleared.
fn walled_garden_entry(i: usize, s: &str) -> Result<IpNet, ConfigError> {
    if let Ok(net) = s.parse::<IpNet>() {
        Ok(net.trunc())
    } else if let Ok(ip) = s.parse::<IpAddr>() {
        Ok(IpNet::from(ip))
    } else {
        Err(ConfigError::new(
            format!("portal.walled_garden[{i}]"),
            format!("{s:?} is not an IP address or CIDR such as \"203.0.113.0/24\""),
        ))
    }
}
