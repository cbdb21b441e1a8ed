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

    /// A state holding `doc`, as if just fetched (tests of its users).
    #[cfg(test)]
    pub(crate) fn with_document(doc: SyncDocument) -> Self {
        let state = Self::empty();
        state.install(Current::new(doc, None, [0; 32], Timestamp::now()));
        state
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
pub(crate) mod test_hq {
    use std::collections::VecDeque;
    use std::convert::Infallible;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use bytes::Bytes;
    use http::{HeaderMap, Request, Response, StatusCode};
    use http_body_util::{BodyExt, Full};
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use tokio::net::TcpListener;
    use tokio_util::sync::CancellationToken;

    /// The daemon's client; the tests speak plain http on loopback.
    pub fn client() -> super::HttpsClient {
        crate::uplink::delivery::client(None, None, Duration::from_secs(5))
            .expect("a client with the system roots")
    }

    #[derive(Debug, Clone)]
    pub struct Reply {
        pub status: u16,
        pub headers: Vec<(String, String)>,
        pub body: Vec<u8>,
        /// Wait this long before answering.
        pub delay: Duration,
    }

    impl Reply {
        pub fn status(status: u16) -> Self {
            Reply {
                status,
                headers: Vec::new(),
                body: Vec::new(),
                delay: Duration::ZERO,
            }
        }

        pub fn header(mut self, name: &str, value: &str) -> Self {
            self.headers.push((name.into(), value.into()));
            self
        }

        pub fn body(mut self, body: &[u8]) -> Self {
            self.body = body.to_vec();
            self
        }
    }

    #[derive(Debug, Clone)]
    pub struct Seen {
        pub method: String,
        pub path: String,
        pub headers: HeaderMap,
        pub body: Vec<u8>,
    }

    pub struct TestHq {
        pub url: String,
        replies: Arc<Mutex<VecDeque<Reply>>>,
        seen: Arc<Mutex<Vec<Seen>>>,
        stop: CancellationToken,
    }

    impl Drop for TestHq {
        fn drop(&mut self) {
            self.stop.cancel();
        }
    }

    impl TestHq {
        pub async fn start() -> TestHq {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let replies: Arc<Mutex<VecDeque<Reply>>> = Arc::default();
            let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
            let stop = CancellationToken::new();
            let (r, s, st) = (replies.clone(), seen.clone(), stop.clone());
            tokio::spawn(async move {
                loop {
                    let stream = tokio::select! {
                        _ = st.cancelled() => return,
                        a = listener.accept() => match a {
                            Ok((stream, _)) => stream,
                            Err(_) => continue,
                        },
                    };
                    let (r, s) = (r.clone(), s.clone());
                    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let (r, s) = (r.clone(), s.clone());
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body.collect().await.unwrap().to_bytes().to_vec();
                            s.lock().unwrap().push(Seen {
                                method: parts.method.to_string(),
                                path: parts.uri.path().to_string(),
                                headers: parts.headers,
                                body,
                            });
                            let reply = {
                                let mut q = r.lock().unwrap();
                                if q.len() > 1 {
                                    q.pop_front()
                                } else {
                                    q.front().cloned()
                                }
                            }
                            .unwrap_or_else(|| Reply::status(599));
                            tokio::time::sleep(reply.delay).await;
                            let mut resp = Response::new(Full::new(Bytes::from(reply.body)));
                            *resp.status_mut() = StatusCode::from_u16(reply.status).unwrap();
                            for (k, v) in reply.headers {
                                resp.headers_mut().insert(
                                    http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                                    v.parse().unwrap(),
                                );
                            }
                            Ok::<_, Infallible>(resp)
                        }
                    });
                    tokio::spawn(async move {
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
            TestHq {
                url: format!("http://{addr}/storegate"),
                replies,
                seen,
                stop,
            }
        }

        /// Replaces the script: these replies, in order, the last repeating.
        pub fn script(&self, replies: Vec<Reply>) {
            *self.replies.lock().unwrap() = replies.into();
        }

        pub fn seen(&self) -> Vec<Seen> {
            self.seen.lock().unwrap().clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_hq::{Reply, TestHq};
    use super::*;
    use crate::store::{MemoryStore, SledStore};

    const SECRET: &str = "whsec_c3RvcmVnYXRlIHNpZ25pbmcgdGVzdCBrZXkgMzJieQ==";
    const OTHER_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn key() -> SigningKey {
        SigningKey::from_secret(SECRET).unwrap()
    }

    fn now_secs() -> i64 {
        Timestamp::now().millis() / 1000
    }

    /// A device id as `DeviceKey::device_id` makes them: 43 base64url chars.
    fn dev(n: usize) -> String {
        format!("{n:0>43}")
    }

    fn doc(version: &str, staff: &[String], blocked: &[String]) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "version": version,
            "campaigns": [
                {"id": "cafe-20", "name": "Café 20% off", "audience": {"tier": ["gold"], "returning": true}, "priority": 3},
                {"id": "shoes", "name": "Shoes", "audience": {}}
            ],
            "staff_devices": staff,
            "blocked_devices": blocked,
            "generated_by": "hq 4.2"
        }))
        .unwrap()
    }

    fn signed(body: &[u8], etag: &str, key: &SigningKey, ts: i64) -> Reply {
        let mut r = Reply::status(200)
            .header("content-type", "application/json")
            .header("etag", etag)
            .body(body);
        for (name, value) in key.headers("sync_1", ts, body) {
            r = r.header(name, &value);
        }
        r
    }

    fn syncer(hq: &TestHq, state: Arc<SyncState>, store: Arc<dyn Store>) -> Syncer {
        Syncer {
            state,
            store,
            config: SyncConfig {
                timeout: Duration::from_secs(5),
                backoff_min: Duration::from_millis(20),
                ..SyncConfig::new(&hq.url, Duration::from_secs(60))
            },
            key: key(),
            client: super::test_hq::client(),
        }
    }

    fn chunk_keys(store: &dyn Store) -> Vec<String> {
        store
            .scan(Tree::Meta)
            .unwrap()
            .into_iter()
            .map(|(k, _)| String::from_utf8(k).unwrap())
            .filter(|k| k.starts_with(CHUNK_PREFIX))
            .collect()
    }

    #[test]
    fn parse_accepts_the_format_and_ignores_unknown_fields() {
        let d = SyncDocument::parse(&doc("v1", &[dev(1)], &[dev(2), dev(3)])).unwrap();
        assert_eq!(d.version, "v1");
        assert_eq!(d.campaigns.len(), 2);
        assert_eq!(d.campaigns[0].id, "cafe-20");
        assert_eq!(d.campaigns[0].audience["tier"], serde_json::json!(["gold"]));
        assert_eq!(d.staff_devices, vec![dev(1)]);
        assert_eq!(d.blocked_devices.len(), 2);
    }

    #[test]
    fn parse_refuses_what_is_not_a_good_document() {
        let err = |v: serde_json::Value| SyncDocument::parse(&serde_json::to_vec(&v).unwrap());
        let base = || serde_json::from_slice::<serde_json::Value>(&doc("v1", &[], &[])).unwrap();
        let e = SyncDocument::parse(b"{\"version\": \"v1\", \"campaigns\": [").unwrap_err();
        assert!(e.contains("not valid"), "{e}");
        let e = SyncDocument::parse(b"[]").unwrap_err();
        assert!(e.contains("not valid"), "{e}");
        let mut v = base();
        v.as_object_mut().unwrap().remove("staff_devices");
        let e = err(v).unwrap_err();
        assert!(e.contains("staff_devices"), "{e}");
        let mut v = base();
        v["blocked_devices"] = serde_json::json!([dev(1), "3c:22:fb:12:34:56"]);
        let e = err(v).unwrap_err();
        assert!(e.contains("blocked_devices[1] is not a device_id"), "{e}");
        let mut v = base();
        v["campaigns"][1]["id"] = serde_json::json!("cafe-20");
        let e = err(v).unwrap_err();
        assert!(e.contains("more than once"), "{e}");
        let mut v = base();
        v["campaigns"][0]["audience"] = serde_json::json!("everyone");
        let e = err(v).unwrap_err();
        assert!(e.contains("campaigns[0].audience"), "{e}");
        let mut v = base();
        v["version"] = serde_json::json!(" ");
        assert!(err(v).unwrap_err().contains("version"));
        let mut body = doc("v1", &[], &[]);
        body.extend_from_slice(b" {}");
        assert!(SyncDocument::parse(&body).unwrap_err().contains("trailing"));
    }

    #[test]
    fn device_ids_are_recognised() {
        let key = crate::privacy::DeviceKey::from_bytes([7; 32]);
        let id = key.device_id(crate::net::MacAddr([0x3c, 0x22, 0xfb, 1, 2, 3]));
        assert!(is_device_id(&id), "{id}");
        assert!(!is_device_id("3c:22:fb:01:02:03"));
        assert!(!is_device_id("3c22fb010203"));
        assert!(!is_device_id(&format!("{}=", &id[..42])));
    }

    #[tokio::test]
    async fn a_signed_document_is_accepted_stored_and_served_after_reload() {
        let dir = tempfile::tempdir().unwrap();
        let hq = TestHq::start().await;
        // Large enough to need several chunks of the store's 64 KiB values.
        let staff: Vec<String> = (0..5000).map(dev).collect();
        let body = doc("v1", &staff, &[dev(90_001)]);
        assert!(body.len() > 3 * CHUNK_BYTES);
        hq.script(vec![signed(&body, "\"etag-1\"", &key(), now_secs())]);
        {
            let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
            let state = Arc::new(SyncState::load(store.as_ref()));
            assert!(!state.is_staff(&dev(1)));
            let s = syncer(&hq, state.clone(), store.clone());
            assert_eq!(
                s.fetch_once().await,
                Ok(Fetched::Updated {
                    version: "v1".into()
                })
            );
            assert!(state.is_staff(&dev(1)) && state.is_staff(&dev(3999)));
            assert!(!state.is_staff(&dev(90_001)));
            assert!(state.is_blocked(&dev(90_001)) && !state.is_blocked(&dev(1)));
            assert_eq!(state.campaigns()[1].name, "Shoes");
            let st = state.status();
            assert_eq!(st.version.as_deref(), Some("v1"));
            assert_eq!(st.etag.as_deref(), Some("\"etag-1\""));
            assert_eq!((st.fetched, st.updated, st.refused), (1, 1, 0));
            assert_eq!(st.staff_devices, 5000);
            assert!(st.last_fetch.is_some() && st.last_error.is_none());
            let seen = hq.seen();
            assert_eq!(seen[0].method, "GET");
            assert_eq!(seen[0].path, "/storegate/sync");
            assert!(seen[0].headers.get("if-none-match").is_none());
        }
        // Reopened: the document is back, with its ETag.
        let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
        let state = SyncState::load(store.as_ref());
        assert_eq!(state.version().as_deref(), Some("v1"));
        assert_eq!(state.etag().as_deref(), Some("\"etag-1\""));
        assert!(state.is_staff(&dev(2500)) && state.is_blocked(&dev(90_001)));
        assert_eq!(state.campaigns().len(), 2);
        let chunks = chunk_keys(store.as_ref()).len();
        assert_eq!(chunks, body.len().div_ceil(CHUNK_BYTES));

        // A smaller replacement leaves no chunk of the old one behind.
        let state = Arc::new(state);
        let body2 = doc("v2", &[dev(5)], &[]);
        hq.script(vec![signed(&body2, "\"etag-2\"", &key(), now_secs())]);
        let s = syncer(&hq, state.clone(), store.clone());
        assert!(matches!(s.fetch_once().await, Ok(Fetched::Updated { .. })));
        assert_eq!(
            hq.seen()[1].headers["if-none-match"],
            "\"etag-1\"",
            "the stored ETag is sent"
        );
        assert!(!state.is_staff(&dev(1)) && state.is_staff(&dev(5)));
        assert_eq!(
            chunk_keys(store.as_ref()),
            vec!["sync.chunk.2.0".to_string()]
        );
        let again = SyncState::load(store.as_ref());
        assert_eq!(again.version().as_deref(), Some("v2"));
    }

    #[tokio::test]
    async fn not_modified_keeps_the_document() {
        let hq = TestHq::start().await;
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let state = Arc::new(SyncState::empty());
        let s = syncer(&hq, state.clone(), store.clone());
        let body = doc("v1", &[dev(1)], &[]);
        hq.script(vec![signed(&body, "W/\"abc\"", &key(), now_secs())]);
        s.fetch_once().await.unwrap();
        hq.script(vec![Reply::status(304)]);
        assert_eq!(s.fetch_once().await, Ok(Fetched::NotModified));
        let seen = hq.seen();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[1].headers["if-none-match"], "W/\"abc\"");
        assert_eq!(state.version().as_deref(), Some("v1"));
        assert!(state.is_staff(&dev(1)));
        let st = state.status();
        assert_eq!((st.fetched, st.updated, st.errors), (2, 1, 0));
        assert_eq!(
            SyncState::load(store.as_ref()).etag().as_deref(),
            Some("W/\"abc\"")
        );
    }

    #[tokio::test]
    async fn bad_documents_are_refused_and_the_last_good_one_kept() {
        let hq = TestHq::start().await;
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let state = Arc::new(SyncState::empty());
        let s = syncer(&hq, state.clone(), store.clone());
        hq.script(vec![signed(
            &doc("good", &[dev(1)], &[dev(2)]),
            "\"good\"",
            &key(),
            now_secs(),
        )]);
        s.fetch_once().await.unwrap();

        let evil = doc("evil", &[dev(66)], &[dev(1)]);
        let other = SigningKey::from_secret(OTHER_SECRET).unwrap();
        let unsigned = Reply::status(200).header("etag", "\"evil\"").body(&evil);
        let mut tampered = signed(&doc("evil", &[], &[]), "\"evil\"", &key(), now_secs());
        tampered.body = evil.clone();
        let malformed = b"{\"version\": \"evil\", \"campaigns\": [";
        let not_a_device = doc("evil", &["3c:22:fb:12:34:56".to_string()], &[]);
        let cases = [
            (
                "wrong key",
                signed(&evil, "\"e\"", &other, now_secs()),
                "no signature",
            ),
            ("tampered body", tampered, "no signature"),
            ("unsigned", unsigned, "webhook-id header is missing"),
            (
                "stale",
                signed(&evil, "\"e\"", &key(), now_secs() - 600),
                "in the past",
            ),
            (
                "from the future",
                signed(&evil, "\"e\"", &key(), now_secs() + 600),
                "in the future",
            ),
            (
                "malformed JSON",
                signed(malformed, "\"e\"", &key(), now_secs()),
                "not valid",
            ),
            (
                "a MAC",
                signed(&not_a_device, "\"e\"", &key(), now_secs()),
                "not a device_id",
            ),
        ];
        for (i, (what, reply, expect)) in cases.into_iter().enumerate() {
            hq.script(vec![reply]);
            let err = s.fetch_once().await.unwrap_err();
            assert!(
                matches!(&err, SyncError::Refused(r) if r.contains(expect)),
                "{what}: {err}"
            );
            assert_eq!(state.version().as_deref(), Some("good"), "{what}");
            assert!(
                state.is_staff(&dev(1)) && !state.is_staff(&dev(66)),
                "{what}"
            );
            assert!(!state.is_blocked(&dev(1)), "{what}");
            assert_eq!(state.etag().as_deref(), Some("\"good\""), "{what}");
            let st = state.status();
            assert_eq!(st.refused, i as u64 + 1, "{what}");
            assert!(
                st.last_error.as_deref().unwrap_or("").contains(expect),
                "{what}"
            );
            let stored = SyncState::load(store.as_ref());
            assert_eq!(stored.version().as_deref(), Some("good"), "{what}");
        }
        // HQ keeps being asked for changes since the good one.
        assert!(
            hq.seen()[1..]
                .iter()
                .all(|r| r.headers["if-none-match"] == "\"good\"")
        );
        // And a good one afterwards is taken again, clearing the error.
        hq.script(vec![signed(
            &doc("next", &[], &[]),
            "\"n\"",
            &key(),
            now_secs(),
        )]);
        s.fetch_once().await.unwrap();
        assert_eq!(state.version().as_deref(), Some("next"));
        assert!(state.status().last_error.is_none());
    }

    #[tokio::test]
    async fn oversized_bodies_and_other_statuses_are_refused() {
        let hq = TestHq::start().await;
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let state = Arc::new(SyncState::empty());
        let mut s = syncer(&hq, state.clone(), store.clone());
        s.config.max_bytes = 1000;
        let body = doc("big", &(0..100).map(dev).collect::<Vec<_>>(), &[]);
        hq.script(vec![signed(&body, "\"b\"", &key(), now_secs())]);
        let err = s.fetch_once().await.unwrap_err();
        assert!(
            matches!(&err, SyncError::Refused(r) if r.contains("larger than 1000")),
            "{err}"
        );
        hq.script(vec![Reply::status(503)]);
        assert_eq!(
            s.fetch_once().await,
            Err(SyncError::Status(StatusCode::SERVICE_UNAVAILABLE))
        );
        assert_eq!(state.version(), None);
        assert_eq!(store.get(Tree::Meta, META_DOCUMENT).unwrap(), None);
        assert_eq!(state.status().errors, 2);
    }

    #[test]
    fn a_corrupt_stored_document_is_ignored() {
        let store = MemoryStore::new();
        save(
            &store,
            &doc("v1", &[dev(1)], &[]),
            Some("\"x\""),
            Timestamp(0),
            false,
        )
        .unwrap();
        assert_eq!(SyncState::load(&store).version().as_deref(), Some("v1"));
        store
            .put(Tree::Meta, &chunk_key(1, 0), b"{\"version\": \"v9\"}")
            .unwrap();
        let state = SyncState::load(&store);
        assert_eq!(state.version(), None);
        assert!(!state.is_staff(&dev(1)));
        assert!(
            state
                .status()
                .last_error
                .unwrap()
                .contains("does not match")
        );
    }

    #[tokio::test]
    async fn run_retries_until_a_good_answer_and_stops_on_shutdown() {
        let hq = TestHq::start().await;
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let state = Arc::new(SyncState::empty());
        let s = syncer(&hq, state.clone(), store);
        hq.script(vec![
            Reply::status(500),
            Reply::status(502),
            signed(&doc("v1", &[], &[]), "\"1\"", &key(), now_secs()),
        ]);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(s.run(shutdown.clone()));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while state.status().fetched == 0 {
            assert!(tokio::time::Instant::now() < deadline, "never synced");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(hq.seen().len(), 3);
        let st = state.status();
        assert_eq!((st.errors, st.fetched, st.state), (2, 1, "waiting"));
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(1), task)
            .await
            .expect("run stops on shutdown")
            .unwrap();
    }
}
