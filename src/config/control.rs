//! `[control]`: the Unix socket `storegate ctl` talks to.

use std::path::PathBuf;

use super::ConfigError;
use super::check::non_empty_path;
use super::raw::RawControl;

#[derive(Debug, Clone)]
pub struct ControlConfig {
    pub socket: PathBuf,
}

pub(super) fn validate(raw: RawControl) -> Result<ControlConfig, ConfigError> {
    Ok(ControlConfig {
        socket: non_empty_path("control.socket", &raw.socket)?,
    })
}
