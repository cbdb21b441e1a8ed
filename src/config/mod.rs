//! The TOML config file, from text to the values the daemon runs with.
//!
//! Three steps: `raw` mirrors the file (serde, unknown keys rejected,
//! defaults applied); each section's file checks its keys and turns them
//! into runtime types; and values that live in other files or databases
//! are resolved at load too (the time zone is looked up, the fingerprint
//! rules and the HQ secret are read and parsed), so `check-config` refuses
//! every value `run` would. Every error names the key it is about, as
//! `section.key: what is wrong`.
//!
//! This module owns `Config`, the errors and the top-level conversion;
//! one file per section owns that section's type and checks, and `check`
//! the checks they share.

mod check;
mod control;
mod dashboard;
mod duration;
mod firewall;
mod hq;
mod lan;
mod members;
mod portal;
mod presence;
mod privacy;
mod raw;
mod storage;
mod store;
pub mod uci;
mod wifi;

use std::path::Path;

pub use control::ControlConfig;
pub use dashboard::DashboardConfig;
pub use duration::parse_duration;
pub use firewall::FirewallBackend;
pub use hq::{ClientCert, HqConfig, SECRET_KEY_BYTES, Secret, check_secret};
pub use lan::LanConfig;
pub use members::{MemberNumberCheck, MembersConfig};
pub use portal::{Language, PortalConfig};
pub use presence::{DEFAULT_NEW_DEVICES_PER_MINUTE, PresenceConfig};
pub use privacy::PrivacyConfig;
pub use raw::RawConfig;
pub use storage::{DEFAULT_OUTBOX_MAX_EVENTS, StorageConfig};
pub use store::StoreConfig;
pub use wifi::WifiConfig;

/// A config problem, naming the key (`portal.session_timeout`) and what is
/// wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {problem}")]
pub struct ConfigError {
    pub key: String,
    pub problem: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, problem: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            problem: problem.into(),
        }
    }
}

/// The validated, resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub store: StoreConfig,
    pub lan: LanConfig,
    pub portal: PortalConfig,
    pub firewall: FirewallBackend,
    pub presence: PresenceConfig,
    pub members: MembersConfig,
    pub privacy: PrivacyConfig,
    pub storage: StorageConfig,
    pub hq: Option<HqConfig>,
    pub dashboard: DashboardConfig,
    pub control: ControlConfig,
}

/// Why a config file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(#[from] ConfigError),
}

impl Config {
    /// Reads, parses, validates and resolves a config file.
    pub fn load(path: &Path) -> Result<Config, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Ok(Config::parse(&text)?)
    }

    /// Parses, validates and resolves config text. The files it names
    /// (`presence.fingerprint_file`, `hq.secret_file`) are read now.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        // A file that is not TOML at all fails here, before any key.
        let de = toml::Deserializer::parse(text)
            .map_err(|e| ConfigError::new("(file)", located(text, &e, e.message().trim())))?;
        let raw: RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let message = inner.message().to_string();
            // The path already ends with an unknown key's name; at the top
            // level it is "." and the name is only in the message.
            let key = match (path.as_str(), unknown_field(&message)) {
                (".", Some(field)) => field.to_string(),
                (".", None) => "(file)".to_string(),
                _ => path,
            };
            let problem = if message.starts_with("unknown field") {
                located(text, &inner, "unknown key") + "; " + &expected_part(&message)
            } else {
                located(text, &inner, message.trim())
            };
            ConfigError::new(key, problem)
        })?;
        Config::try_from(raw)
    }
}

/// `problem (line N)`, the line where the error's span starts.
fn located(text: &str, error: &toml::de::Error, problem: &str) -> String {
    match error.span() {
        Some(s) => format!("{problem} (line {})", line_of(text, s.start)),
        None => problem.to_string(),
    }
}

fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

fn expected_part(message: &str) -> String {
    match message.find("expected") {
        Some(at) => message[at..].trim().to_string(),
        None => "remove it".to_string(),
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map(|t| t.bytes().filter(|&b| b == b'\n').count() + 1)
        .unwrap_or(0)
}

impl TryFrom<RawConfig> for Config {
    type Error = ConfigError;

    /// Section by section; the first problem found is the one reported.
    /// The dashboard comes right after the portal for the check that spans
    /// both (their ports).
    fn try_from(raw: RawConfig) -> Result<Self, ConfigError> {
        let store = store::validate(raw.store)?;
        let lan = lan::validate(raw.lan)?;
        let portal = portal::validate(raw.portal)?;
        let dashboard = dashboard::validate(raw.dashboard)?;
        dashboard::check_port(&dashboard, &portal)?;
        let firewall = firewall::validate(raw.firewall)?;
        let presence = presence::validate(raw.presence)?;
        let members = members::validate(raw.members)?;
        let privacy = privacy::validate(raw.privacy)?;
        let storage = storage::validate(raw.storage)?;
        let hq = raw.hq.map(hq::validate).transpose()?;
        let control = control::validate(raw.control)?;
        Ok(Config {
            store,
            lan,
            portal,
            firewall,
            presence,
            members,
            privacy,
            storage,
            hq,
            dashboard,
            control,
        })
    }
}

#[cfg(test)]
mod tests;
