//! The fetcher: `Syncer` asks `{hq.url}/sync` on a schedule, with
//! `If-None-Match`, checks the signature and the document, stores a good
//! one before putting it in force, and backs off on failure.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::HttpsClient;
use super::document::{MAX_DOCUMENT_BYTES, SyncDocument};
use super::state::{Current, SyncState};
use super::storage::save;
use crate::store::Store;
use crate::time::Timestamp;
use crate::uplink::delivery::{describe, jitter};
use crate::uplink::signing::{DEFAULT_TOLERANCE_SECS, SignedHeaders, SigningKey};

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
        self.state.fetching();
        let result = self.fetch_inner().await;
        self.state.fetched(&result, Timestamp::now());
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
        // Signed like a POST, over an empty body, so an HQ serving many
        // stores can tell that this store's box is asking.
        let now_secs = Timestamp::now().millis().div_euclid(1000);
        let webhook_id = format!("sync_{}", uuid::Uuid::now_v7());
        for (name, value) in self.key.headers(&webhook_id, now_secs, b"") {
            req = req.header(name, value);
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
