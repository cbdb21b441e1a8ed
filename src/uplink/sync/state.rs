//! The document in force, shared: `SyncState` gives the portal, presence
//! and the dashboard cheap reads, is replaced whole when a new document
//! is accepted, and keeps the counters behind `ctl status` (`SyncStatus`).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock};

use serde::Serialize;

use super::document::{Campaign, SyncDocument};
use super::fetcher::{Fetched, SyncError};
use super::storage::load_stored;
use crate::store::Store;
use crate::time::Timestamp;

/// The document in force, arranged for cheap lookups.
#[derive(Debug)]
pub(super) struct Current {
    pub(super) version: Option<String>,
    pub(super) etag: Option<String>,
    pub(super) sha256: Option<[u8; 32]>,
    fetched_at: Option<Timestamp>,
    campaigns: Arc<[Campaign]>,
    staff: HashSet<String>,
    blocked: HashSet<String>,
}

impl Default for Current {
    fn default() -> Self {
        Current {
            version: None,
            etag: None,
            sha256: None,
            fetched_at: None,
            campaigns: Arc::from(Vec::new()),
            staff: HashSet::new(),
            blocked: HashSet::new(),
        }
    }
}

impl Current {
    pub(super) fn new(
        doc: SyncDocument,
        etag: Option<String>,
        sha256: [u8; 32],
        at: Timestamp,
    ) -> Self {
        Current {
            version: Some(doc.version),
            etag,
            sha256: Some(sha256),
            fetched_at: Some(at),
            campaigns: Arc::from(doc.campaigns),
            staff: doc.staff_devices.into_iter().collect(),
            blocked: doc.blocked_devices.into_iter().collect(),
        }
    }
}

/// What `ctl status` shows of sync (`hq.sync`).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct SyncStatus {
    /// `waiting`, `fetching`, `backing off`, or `not started`.
    pub state: &'static str,
    /// The document in force (null: none yet).
    pub version: Option<String>,
    pub etag: Option<String>,
    /// When the document in force was fetched.
    pub document_fetched_at: Option<String>,
    /// The last successful fetch (200 accepted or 304).
    pub last_fetch: Option<String>,
    /// The last failed fetch's reason, with its time; cleared by a success.
    pub last_error: Option<String>,
    /// Successful fetches (200 accepted or 304).
    pub fetched: u64,
    /// Documents accepted (200).
    pub updated: u64,
    /// Documents refused (unsigned, badly signed, stale, invalid).
    pub refused: u64,
    /// Failed fetches of any kind.
    pub errors: u64,
    pub campaigns: usize,
    pub staff_devices: usize,
    pub blocked_devices: usize,
}

#[derive(Debug, Default)]
struct Counters {
    state: &'static str,
    last_fetch: Option<Timestamp>,
    last_error: Option<String>,
    fetched: u64,
    updated: u64,
    refused: u64,
    errors: u64,
}

/// The synced document, shared: cheap reads for the portal, presence and
/// the dashboard; replaced whole by the sync task.
#[derive(Debug, Default)]
pub struct SyncState {
    current: RwLock<Arc<Current>>,
    counters: Mutex<Counters>,
}

impl SyncState {
    /// No document: nobody is staff or blocked, no campaigns.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Puts `doc` in force, as if just fetched (tests of its users).
    #[cfg(test)]
    pub(crate) fn put_document(&self, doc: SyncDocument) {
        self.install(Current::new(doc, None, [0; 32], Timestamp::now()));
    }

    /// The last good document from the store, or none. A stored document
    /// that cannot be read is logged and ignored (the next fetch replaces
    /// it).
    pub fn load(store: &dyn Store) -> Self {
        let state = Self::empty();
        match load_stored(store) {
            Ok(None) => {}
            Ok(Some((manifest, doc, sha256))) => {
                tracing::info!(
                    version = %doc.version,
                    campaigns = doc.campaigns.len(),
                    staff = doc.staff_devices.len(),
                    blocked = doc.blocked_devices.len(),
                    "HQ sync document loaded from the store"
                );
                state.install(Current::new(
                    doc,
                    manifest.etag,
                    sha256,
                    manifest.fetched_at,
                ));
            }
            Err(e) => {
                tracing::error!(
                    "the stored HQ sync document is unusable ({e}); starting without one"
                );
                state.counters().last_error = Some(format!("the stored document: {e}"));
            }
        }
        state
    }

    pub(super) fn current(&self) -> Arc<Current> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(super) fn install(&self, current: Current) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(current);
    }

    fn counters(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fetch has begun.
    pub(super) fn fetching(&self) {
        self.counters().state = "fetching";
    }

    /// Records how a fetch ended, at `now`.
    pub(super) fn fetched(&self, result: &Result<Fetched, SyncError>, now: Timestamp) {
        let mut c = self.counters();
        match result {
            Ok(_) => {
                c.state = "waiting";
                c.fetched += 1;
                c.last_fetch = Some(now);
                c.last_error = None;
                if matches!(result, Ok(Fetched::Updated { .. })) {
                    c.updated += 1;
                }
            }
            Err(e) => {
                c.state = "backing off";
                c.errors += 1;
                if matches!(e, SyncError::Refused(_)) {
                    c.refused += 1;
                }
                c.last_error = Some(format!("{}: {e}", now.rfc3339()));
            }
        }
    }

    /// Is this `device_id` one of HQ's staff devices?
    pub fn is_staff(&self, device_id: &str) -> bool {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .staff
            .contains(device_id)
    }

    /// Is this `device_id` blocked by HQ?
    pub fn is_blocked(&self, device_id: &str) -> bool {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .blocked
            .contains(device_id)
    }

    /// The campaigns in force (a shared slice: cloning it is cheap).
    pub fn campaigns(&self) -> Arc<[Campaign]> {
        self.current().campaigns.clone()
    }

    /// The version of the document in force.
    pub fn version(&self) -> Option<String> {
        self.current().version.clone()
    }

    /// The `ETag` of the document in force (sent as `If-None-Match`).
    pub fn etag(&self) -> Option<String> {
        self.current().etag.clone()
    }

    pub fn status(&self) -> SyncStatus {
        let cur = self.current();
        let c = self.counters();
        SyncStatus {
            state: if c.state.is_empty() {
                "not started"
            } else {
                c.state
            },
            version: cur.version.clone(),
            etag: cur.etag.clone(),
            document_fetched_at: cur.fetched_at.map(Timestamp::rfc3339),
            last_fetch: c.last_fetch.map(Timestamp::rfc3339),
            last_error: c.last_error.clone(),
            fetched: c.fetched,
            updated: c.updated,
            refused: c.refused,
            errors: c.errors,
            campaigns: cur.campaigns.len(),
            staff_devices: cur.staff.len(),
            blocked_devices: cur.blocked.len(),
        }
    }
}
