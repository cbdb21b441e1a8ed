//! `[dashboard]`: the store manager's HTTPS listener, its certificate and
//! first password, and whether `/metrics` needs a session.
//!
//! The certificate and password files are read by the dashboard itself:
//! the pair is parsed where it is used (`crate::dashboard::tls`, which the
//! command line also calls before the daemon starts), and the password
//! file only while no password is stored yet. This section checks that the
//! keys make sense together.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::ConfigError;
use super::check::{optional_path, socket_addr};
use super::raw::RawDashboard;

#[derive(Debug, Clone)]
pub struct DashboardConfig {
    pub listen: SocketAddr,
    /// Both or neither; neither: a self-signed certificate generated once
    /// and kept in `storage.path`.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub password_file: Option<PathBuf>,
    pub metrics_public: bool,
    pub max_connections: usize,
}

pub(super) fn validate(raw: RawDashboard) -> Result<DashboardConfig, ConfigError> {
    let cert = optional_path("dashboard.cert_file", raw.cert_file)?;
    let key = optional_path("dashboard.key_file", raw.key_file)?;
    let tls = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        (Some(_), None) => {
            return Err(ConfigError::new(
                "dashboard.key_file",
                "is needed with dashboard.cert_file (both or neither)",
            ));
        }
        (None, Some(_)) => {
            return Err(ConfigError::new(
                "dashboard.cert_file",
                "is needed with dashboard.key_file (both or neither)",
            ));
        }
    };
    if !(1..=1024).contains(&raw.max_connections) {
        return Err(ConfigError::new(
            "dashboard.max_connections",
            "must be between 1 and 1024",
        ));
    }
    Ok(DashboardConfig {
        listen: socket_addr("dashboard.listen", &raw.listen)?,
        tls,
        password_file: optional_path("dashboard.password_file", raw.password_file)?,
        metrics_public: raw.metrics_public,
        max_connections: raw.max_connections as usize,
    })
}

/// The firewall keeps guests off the dashboard's port, which it can only
/// do if the portal (open to guests) listens on another.
pub(super) fn check_port(
    dashboard: &DashboardConfig,
    portal: &super::PortalConfig,
) -> Result<(), ConfigError> {
    if dashboard.listen.port() == portal.listen.port() {
        return Err(ConfigError::new(
            "dashboard.listen",
            format!(
                "port {} is the portal's (portal.listen); the dashboard needs its own",
                portal.listen.port()
            ),
        ));
    }
    Ok(())
}
