//! Sync from HQ: `GET {hq.url}/sync` (DESIGN.md, "HQ").
//!
//! Every `hq.sync_interval` (default 5 min) the box asks HQ for its
//! targeting document, sending `If-None-Match` with the `ETag` of the last
//! good one. `304 Not Modified` changes nothing. A `200` must be signed the
//! Standard Webhooks way with the HQ secret (`webhook-id`,
//! `webhook-timestamp`, `webhook-signature` over the exact body bytes,
//! within the 5-minute tolerance) and be a JSON document:
//!
//! ```json
//! {"version": "2026-11-18.3",
//!  "campaigns": [{"id": "cafe-20", "name": "Café 20% off", "audience": {...}}],
//!  "staff_devices": ["<device_id>", ...],
//!  "blocked_devices": ["<device_id>", ...]}
//! ```
//!
//! All four fields are required, unknown fields are ignored, device ids
//! are the box's keyed hashes (`privacy`, 43 characters of base64url),
//! never MAC addresses, and the body is at most 4 MiB. A good document is
//! stored durably and then replaces the one in memory (`SyncState`); a
//! document that is unsigned, badly signed, stale, too large or not valid
//! is refused with a log line and the last good one stays in force. On
//! start the last good document is loaded from the store.
//!
//! Storage: the body exactly as signed, in chunks under the `Meta` tree
//! (values there are capped at 64 KiB): `sync.chunk.{generation}.{i}`, and
//! a small manifest at `sync.document` (generation, chunk count, length,
//! SHA-256, `ETag`, fetch time). The manifest is written last, so a crash
//! part way through a write leaves the previous document in force; the
//! `ETag` lives in the manifest so it always belongs to the stored body.
//!
//! Errors (HQ unreachable, a status other than 200/304, a refused
//! document) are retried with exponential backoff and jitter, never waiting
//! longer than the normal interval.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::delivery::{describe, jitter};
use super::signing::{DEFAULT_TOLERANCE_SECS, SignedHeaders, SigningKey};
use crate::store::{Store, StoreError, Tree, put_json};
use crate::time::Timestamp;

/// The client `delivery::client` builds (HTTPS, or plain http to loopback).
pub use super::delivery::HttpsClient;

/// Largest sync document accepted.
pub const MAX_DOCUMENT_BYTES: usize = 4 * 1024 * 1024;
/// The manifest of the stored document (`Tree::Meta`).
pub const META_DOCUMENT: &[u8] = b"sync.document";
/// Chunks of the stored body: `sync.chunk.{generation}.{index}`.
const CHUNK_PREFIX: &str = "sync.chunk.";
/// Under the store's 64 KiB value cap.
const CHUNK_BYTES: usize = 60 * 1024;
/// A device id: base64url (no padding) of a 32-byte HMAC.
const DEVICE_ID_LEN: usize = 43;

/// The document HQ serves at `/sync`. Unknown fields are ignored.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct SyncDocument {
    pub version: String,
    pub campaigns: Vec<Campaign>,
    /// `device_id`s always classified as staff.
    pub staff_devices: Vec<String>,
    /// `device_id`s refused at the portal.
    pub blocked_devices: Vec<String>,
}

/// A campaign and its audience. The audience is HQ's to define: any JSON
/// object, kept as received.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Campaign {
    pub id: String,
    pub name: String,
    pub audience: serde_json::Map<String, serde_json::Value>,
}

/// True for what `DeviceKey::device_id` produces: 43 characters of
/// base64url. A MAC address (with `:` or `-`, 12 to 17 characters) never is.
pub fn is_device_id(s: &str) -> bool {
    s.len() == DEVICE_ID_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl SyncDocument {
    /// Parses and checks a document; the error is one line naming where
    /// it is wrong.
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        if body.len() > MAX_DOCUMENT_BYTES {
            return Err(format!(
                "the document is {} bytes, over the {MAX_DOCUMENT_BYTES}-byte limit",
                body.len()
            ));
        }
        let mut de = serde_json::Deserializer::from_slice(body);
        let doc: SyncDocument = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path == "." {
                format!("the document is not valid: {inner}")
            } else {
                format!("the document is not valid at {path}: {inner}")
            }
        })?;
        de.end()
            .map_err(|e| format!("the document has trailing data: {e}"))?;
        doc.check()?;
        Ok(doc)
    }

    fn check(&self) -> Result<(), String> {
        if self.version.trim().is_empty() || self.version.len() > 256 {
            return Err("version must be a non-empty string of at most 256 bytes".into());
        }
        let mut ids = HashSet::new();
        for (i, c) in self.campaigns.iter().enumerate() {
            if c.id.trim().is_empty() {
                return Err(format!("campaigns[{i}].id is empty"));
            }
            if !ids.insert(c.id.as_str()) {
                return Err(format!(
                    "campaigns[{i}].id {:?} appears more than once",
                    c.id
                ));
            }
        }
        for (field, list) in [
            ("staff_devices", &self.staff_devices),
            ("blocked_devices", &self.blocked_devices),
        ] {
            if let Some(i) = list.iter().position(|d| !is_device_id(d)) {
                return Err(format!(
                    "{field}[{i}] is not a device_id (43 characters of base64url, the box's \
                     keyed hash of a MAC; raw MAC addresses are never used)"
                ));
            }
        }
        Ok(())
    }
}

/// The document in force, arranged for cheap lookups.
#[derive(Debug)]
struct Current {
    version: Option<String>,
    etag: Option<String>,
    sha256: Option<[u8; 32]>,
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
    fn new(doc: SyncDocument, etag: Option<String>, sha256: [u8; 32], at: Timestamp) -> Self {
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

    fn current(&self) -> Arc<Current> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn install(&self, current: Current) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(current);
    }

    fn counters(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(|e| e.into_inner())
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

/// Why a fetch did not give a usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    /// No answer: connection, TLS or timeout.
    #[error("HQ unreachable: {0}")]
    Unreachable(String),
    /// An answer other than 200 or 304.
    #[error("HQ answered {0} for /sync")]
    Status(StatusCode),
    /// A 200 whose document was refused; the last good one is kept.
    #[error("HQ's sync document was refused: {0}")]
    Refused(String),
    /// A good document that could not be stored (it is not used until it
    /// is: memory and store stay the same).
    #[error("the sync document could not be stored: {0}")]
    Store(String),
}

/// What a successful fetch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// 304: the document in force is current.
    NotModified,
    /// 200: this version is now in force.
    Updated { version: String },
}

/// Sync settings.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// `{hq.url}/sync`.
    pub sync_url: String,
    pub interval: Duration,
    /// For the whole exchange: connect, answer and body.
    pub timeout: Duration,
    pub backoff_min: Duration,
    pub max_bytes: usize,
    /// How far the signature's timestamp may be from the box's clock.
    pub tolerance_secs: i64,
}

impl SyncConfig {
    pub fn new(hq_url: &str, interval: Duration) -> Self {
        SyncConfig {
            sync_url: format!("{}/sync", hq_url.trim_end_matches('/')),
            interval,
            timeout: Duration::from_secs(30),
            backoff_min: Duration::from_secs(5),
            max_bytes: MAX_DOCUMENT_BYTES,
            tolerance_secs: DEFAULT_TOLERANCE_SECS,
        }
    }
}

/// Fetches the document from HQ into a `SyncState` and the store.
pub struct Syncer {
    pub state: Arc<SyncState>,
    pub store: Arc<dyn Store>,
    pub config: SyncConfig,
    pub key: SigningKey,
    pub client: HttpsClient,
}

impl Syncer {
    /// Fetches now, then every interval, until shutdown; failures are
    /// retried with backoff (capped at the interval).
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = self.config.backoff_min;
        loop {
            let outcome = tokio::select! {
                _ = shutdown.cancelled() => return,
                o = self.fetch_once() => o,
            };
            let wait = match outcome {
                Ok(_) => {
                    backoff = self.config.backoff_min;
                    self.config.interval
                }
                Err(e) => {
                    let wait = jitter(backoff.min(self.config.interval));
                    tracing::warn!("HQ sync: {e}; trying again in {wait:?}");
                    backoff = (backoff * 2).min(self.config.interval);
                    wait
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One `GET /sync`: on a good 200 the document is stored and put in
    /// force; on anything else the document in force stays. The outcome is
    /// also recorded in the state's status.
    pub async fn fetch_once(&self) -> Result<Fetched, SyncError> {
        self.state.counters().state = "fetching";
        let result = self.fetch_inner().await;
        let now = Timestamp::now();
        let mut c = self.state.counters();
        match &result {
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
        result
    }

    async fn fetch_inner(&self) -> Result<Fetched, SyncError> {
        let current = self.state.current();
        let mut req = Request::get(&self.config.sync_url)
            .header(header::ACCEPT, "application/json")
            .header(
                header::USER_AGENT,
                concat!("storegate/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(tag) = current
            .etag
            .as_deref()
            .and_then(|t| header::HeaderValue::from_str(t).ok())
        {
            req = req.header(header::IF_NONE_MATCH, tag);
        }
        let req = req
            .body(Full::new(Bytes::new()))
            .map_err(|e| SyncError::Unreachable(format!("building the request: {e}")))?;
        let timeout = self.config.timeout;
        let max = self.config.max_bytes;
        let exchange = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| SyncError::Unreachable(describe(&e)))?;
            let (parts, body) = resp.into_parts();
            match parts.status {
                StatusCode::NOT_MODIFIED => return Ok((parts, None)),
                StatusCode::OK => {}
                other => return Err(SyncError::Status(other)),
            }
            let declared = parts
                .headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|n| n > max as u64) {
                return Err(SyncError::Refused(format!(
                    "the body is larger than {max} bytes"
                )));
            }
            let body = match Limited::new(body, max).collect().await {
                Ok(c) => c.to_bytes(),
                Err(e)
                    if e.downcast_ref::<http_body_util::LengthLimitError>()
                        .is_some() =>
                {
                    return Err(SyncError::Refused(format!(
                        "the body is larger than {max} bytes"
                    )));
                }
                Err(e) => {
                    return Err(SyncError::Unreachable(format!(
                        "reading the body: {}",
                        describe(e.as_ref())
                    )));
                }
            };
            Ok((parts, Some(body)))
        };
        let (parts, body) = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| {
                SyncError::Unreachable(format!("no complete answer within {timeout:?}"))
            })??;
        let Some(body) = body else {
            tracing::debug!("HQ sync: not modified");
            return Ok(Fetched::NotModified);
        };
        let refuse = |reason: String| {
            tracing::warn!(
                "HQ sync document refused; keeping the last good one ({}): {reason}",
                current.version.as_deref().unwrap_or("none yet")
            );
            SyncError::Refused(reason)
        };
        let now_secs = Timestamp::now().millis().div_euclid(1000);
        self.key
            .verify(
                SignedHeaders::from_header_map(&parts.headers),
                &body,
                now_secs,
                self.config.tolerance_secs,
            )
            .map_err(|e| refuse(format!("signature: {e}")))?;
        let doc = SyncDocument::parse(&body).map_err(refuse)?;
        let etag = parts
            .headers
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= 256)
            .map(str::to_string);
        let sha256: [u8; 32] = Sha256::digest(&body).into();
        let fetched_at = Timestamp::now();
        let store = self.store.clone();
        let (body_v, etag_v) = (body.to_vec(), etag.clone());
        let unchanged = current.sha256 == Some(sha256);
        tokio::task::spawn_blocking(move || {
            save(
                store.as_ref(),
                &body_v,
                etag_v.as_deref(),
                fetched_at,
                unchanged,
            )
        })
        .await
        .map_err(|e| SyncError::Store(e.to_string()))?
        .map_err(|e| {
            tracing::error!("HQ sync document could not be stored (not used until it is): {e}");
            SyncError::Store(e.to_string())
        })?;
        let version = doc.version.clone();
        if !unchanged {
            tracing::info!(
                version = %version,
                campaigns = doc.campaigns.len(),
                staff = doc.staff_devices.len(),
                blocked = doc.blocked_devices.len(),
                "HQ sync document accepted"
            );
        }
        self.state
            .install(Current::new(doc, etag, sha256, fetched_at));
        Ok(Fetched::Updated { version })
    }
}

/// The stored document's manifest (`sync.document`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Manifest {
    generation: u64,
    chunks: u32,
    bytes: u64,
    sha256: String,
    etag: Option<String>,
    fetched_at: Timestamp,
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn chunk_key(generation: u64, index: u32) -> Vec<u8> {
    format!("{CHUNK_PREFIX}{generation}.{index}").into_bytes()
}

fn read_manifest(store: &dyn Store) -> Result<Option<Manifest>, StoreError> {
    let Some(raw) = store.get(Tree::Meta, META_DOCUMENT)? else {
        return Ok(None);
    };
    serde_json::from_slice(&raw)
        .map(Some)
        .map_err(|e| StoreError::Corrupt {
            tree: Tree::Meta.name(),
            reason: format!("sync.document: {e}"),
        })
}

/// Stores a verified body: its chunks (flushed) first, then the manifest
/// (flushed), then removes the chunks no manifest names. The same body
/// again (`unchanged`: the one in force, read back from these chunks or
/// written there; HQ without `ETag` support) rewrites only the manifest,
/// sparing the flash.
fn save(
    store: &dyn Store,
    body: &[u8],
    etag: Option<&str>,
    fetched_at: Timestamp,
    unchanged: bool,
) -> Result<(), StoreError> {
    let sha256 = hex(&Sha256::digest(body));
    let previous = read_manifest(store).unwrap_or(None);
    let manifest = match previous {
        Some(p) if unchanged && p.sha256 == sha256 && p.bytes == body.len() as u64 => Manifest {
            etag: etag.map(str::to_string),
            fetched_at,
            ..p
        },
        p => {
            let generation = p.map_or(1, |p| p.generation.wrapping_add(1));
            let mut chunks = 0u32;
            for (i, chunk) in body.chunks(CHUNK_BYTES).enumerate() {
                let i = u32::try_from(i).map_err(|_| StoreError::TooLarge {
                    tree: Tree::Meta.name(),
                    size: body.len(),
                    max: MAX_DOCUMENT_BYTES,
                })?;
                store.put(Tree::Meta, &chunk_key(generation, i), chunk)?;
                chunks = i + 1;
            }
            store.flush()?;
            Manifest {
                generation,
                chunks,
                bytes: body.len() as u64,
                sha256,
                etag: etag.map(str::to_string),
                fetched_at,
            }
        }
    };
    put_json(store, Tree::Meta, META_DOCUMENT, &manifest)?;
    store.flush()?;
    // Best effort: a leftover chunk costs space, not correctness.
    if let Err(e) = sweep(store, &manifest) {
        tracing::warn!("removing old HQ sync document chunks: {e}");
    }
    Ok(())
}

/// Removes every chunk the manifest does not name (the previous
/// document's, and any left by a write that was cut short).
fn sweep(store: &dyn Store, manifest: &Manifest) -> Result<(), StoreError> {
    let keep: HashSet<Vec<u8>> = (0..manifest.chunks)
        .map(|i| chunk_key(manifest.generation, i))
        .collect();
    for (key, _) in store.scan(Tree::Meta)? {
        if key.starts_with(CHUNK_PREFIX.as_bytes()) && !keep.contains(&key) {
            store.remove(Tree::Meta, &key)?;
        }
    }
    Ok(())
}

/// The stored document, checked against its manifest and parsed again.
fn load_stored(
    store: &dyn Store,
) -> Result<Option<(Manifest, SyncDocument, [u8; 32])>, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        tree: Tree::Meta.name(),
        reason,
    };
    let Some(manifest) = read_manifest(store)? else {
        return Ok(None);
    };
    if manifest.bytes > MAX_DOCUMENT_BYTES as u64 {
        return Err(corrupt(format!(
            "sync.document says {} bytes, over the limit",
            manifest.bytes
        )));
    }
    let mut body = Vec::with_capacity(manifest.bytes as usize);
    for i in 0..manifest.chunks {
        let chunk = store
            .get(Tree::Meta, &chunk_key(manifest.generation, i))?
            .ok_or_else(|| corrupt(format!("sync document chunk {i} is missing")))?;
        body.extend_from_slice(&chunk);
        if body.len() as u64 > manifest.bytes {
            break;
        }
    }
    let sha256: [u8; 32] = Sha256::digest(&body).into();
    if body.len() as u64 != manifest.bytes || hex(&sha256) != manifest.sha256 {
        return Err(corrupt(
            "the sync document does not match its length or SHA-256".into(),
        ));
    }
    let doc = SyncDocument::parse(&body).map_err(corrupt)?;
    Ok(Some((manifest, doc, sha256)))
}

/// An in-process HQ for the uplink tests: plain HTTP on 127.0.0.1, replies
/// scripted in order (the last one repeats), every request recorded.
#[cfg(test)]
pub(crate) mod test_hq;

#[cfg(test)]
mod tests;
