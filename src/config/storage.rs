//! `[storage]`: where the state lives and how many events the outbox keeps
//! while HQ is away.

use std::path::PathBuf;

use super::ConfigError;
use super::check::non_empty_path;
use super::raw::RawStorage;

/// The default cap on queued events (`storage.outbox_max_events`): days
/// of a busy store's events with HQ away, and a few hundred MB of flash at
/// most. Defined here, with the key, so the config needs nothing from the
/// outbox; the outbox uses it for its own default.
pub const DEFAULT_OUTBOX_MAX_EVENTS: usize = 200_000;

#[derive(Debug, Clone)]
pub struct StorageConfig {
    pub path: PathBuf,
    /// Queued events past which the oldest are dropped (summaries first).
    pub outbox_max_events: usize,
}

pub(super) fn validate(raw: RawStorage) -> Result<StorageConfig, ConfigError> {
    if !(10..=10_000_000).contains(&raw.outbox_max_events) {
        return Err(ConfigError::new(
            "storage.outbox_max_events",
            "must be between 10 and 10000000",
        ));
    }
    Ok(StorageConfig {
        path: non_empty_path("storage.path", &raw.path)?,
        outbox_max_events: raw.outbox_max_events as usize,
    })
}
