//! `storegate hq-receiver`: a reference HQ endpoint for integrators
//! (DESIGN.md, "HQ"), in plain HTTP, or in HTTPS with `--tls-cert` and
//! `--tls-key` (PEM files: the certificate chain, leaf first, and its
//! private key; rustls with the ring provider, TLS 1.2 and 1.3). With
//! `--client-ca` as well it asks for and requires client certificates
//! issued by that CA (mutual TLS, as `hq.client_cert` on the box); a
//! client without one, or with another CA's, fails the handshake.
//!
//! * `POST …/events` — a CloudEvents batch (`application/cloudevents-batch+json`,
//!   optionally `Content-Encoding: gzip`), signed Standard-Webhooks style over
//!   the uncompressed body. Each accepted event not seen before is printed
//!   as one JSON line on stdout (flushed per batch); the answer is
//!   `200 {"accepted": n, "duplicates": m}`.
//! * `POST …/messages` — a signed JSON document (OTP texts): printed as
//!   `{"message": <json>}`, answered 200.
//! * `GET …/sync` — the sync document for the boxes (`--sync-file`, read
//!   afresh on every request so it can be edited while the receiver runs;
//!   without it an empty document), signed like the events, with an
//!   `ETag` and `304 Not Modified` for a matching `If-None-Match`. A file
//!   that is not a valid document is answered 500 with the reason, so a
//!   mistake shows here rather than on the boxes.
//! * `GET …/healthz` — 200.
//!
//! Paths match on their last segment, so any `hq.url` prefix works
//! (`http://127.0.0.1:8080/storegate` → `/storegate/events`).
//!
//! Errors: 401 for a missing, malformed, stale or wrong signature; 400 for
//! a body that is not the expected JSON; 413 for bodies over 16 MiB (before
//! or after decompression); 415 for another content type or encoding; each
//! with a one-line reason as the body. Nothing of a rejected request is
//! printed.
//!
//! De-duplication is by event `id` and bounded: the last 1,000,000 ids are
//! remembered (a FIFO plus a hash set of 128-bit SHA-256 prefixes of the
//! ids, about 50 MB when full); an id older than that is accepted again.
//! Ids are recorded only once their events are written to stdout, so a
//! failed write is answered 500 and the retried batch prints them then.
//!
//! Limits: 64 connections at once, 10 s to finish the TLS handshake,
//! 10 s to send a request head, 60 s to
//! send a body, 10 min per connection. SIGTERM or SIGINT: stop accepting,
//! let requests in flight finish (5 s at most), exit 0. Logs go to stderr.

use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::listen::Acceptor;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::uplink::signing::{self, SignedHeaders, SigningKey, VerifyError};

/// Largest body accepted, compressed or not.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// How many event ids are remembered for de-duplication.
pub const DEDUPE_CAPACITY: usize = 1_000_000;
pub const MAX_CONNECTIONS: usize = 64;
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECTION_LIFETIME: Duration = Duration::from_secs(600);
const GRACE: Duration = Duration::from_secs(5);
/// The environment variable read when `--secret` is not given (keeps the
/// secret out of `ps`).
pub const SECRET_ENV: &str = "STOREGATE_HQ_SECRET";

const BATCH_CONTENT_TYPE: &str = "application/cloudevents-batch+json";

/// The ids seen lately: a FIFO and a set over the same keys, so memory is
/// bounded by `capacity` and lookups are O(1). Keys are the first 128 bits
/// of SHA-256(id): fixed size whatever the id's length, and a collision
/// among a million ids has a probability around 2^-89.
#[derive(Debug)]
pub struct Dedupe {
    capacity: usize,
    order: VecDeque<u128>,
    set: HashSet<u128>,
}

impl Dedupe {
    pub fn new(capacity: usize) -> Self {
        assert!(capacity > 0);
        Dedupe {
            capacity,
            order: VecDeque::new(),
            set: HashSet::new(),
        }
    }

    pub fn key(id: &str) -> u128 {
        let digest = Sha256::digest(id.as_bytes());
        let mut first = [0u8; 16];
        first.copy_from_slice(&digest[..16]);
        u128::from_be_bytes(first)
    }

    pub fn contains(&self, id: &str) -> bool {
        self.set.contains(&Self::key(id))
    }

    /// Records `id`; false if it was already remembered. The oldest id is
    /// forgotten when full.
    pub fn insert(&mut self, id: &str) -> bool {
        self.insert_key(Self::key(id))
    }

    fn insert_key(&mut self, key: u128) -> bool {
        if !self.set.insert(key) {
            return false;
        }
        self.order.push_back(key);
        if self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

/// Parses a batch body: a JSON array of objects, each with the CloudEvents
/// required attributes (`specversion` "1.0", non-empty string `id`,
/// `source`, `type`). Returns the events and their ids, or a one-line
/// reason.
pub fn parse_batch(body: &[u8]) -> Result<Vec<(String, Value)>, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let Value::Array(items) = value else {
        return Err("the body is not a JSON array of CloudEvents".into());
    };
    let mut events = Vec::with_capacity(items.len());
    for (i, event) in items.into_iter().enumerate() {
        let Value::Object(obj) = &event else {
            return Err(format!("event {i} is not a JSON object"));
        };
        for attr in ["id", "source", "type", "specversion"] {
            match obj.get(attr) {
                Some(Value::String(s)) if !s.is_empty() => {}
                _ => {
                    return Err(format!(
                        "event {i} has no \"{attr}\" (a non-empty string is required)"
                    ));
                }
            }
        }
        if obj["specversion"] != "1.0" {
            return Err(format!(
                "event {i} has specversion {}, not \"1.0\"",
                obj["specversion"]
            ));
        }
        let id = obj["id"].as_str().unwrap_or_default().to_string();
        events.push((id, event));
    }
    Ok(events)
}

/// What a batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BatchCounts {
    pub accepted: usize,
    pub duplicates: usize,
}

/// The receiver's state: key, seen ids and where accepted events go.
pub struct Receiver {
    key: SigningKey,
    tolerance_secs: i64,
    /// Seen ids and the output, under one lock so batches print whole and
    /// in the order they were recorded.
    inner: Mutex<(Dedupe, Box<dyn Write + Send>)>,
    /// The document `GET …/sync` serves; `None`: an empty one.
    sync_file: Option<std::path::PathBuf>,
    batches: AtomicU64,
    accepted: AtomicU64,
    duplicates: AtomicU64,
    rejected: AtomicU64,
}

/// What `GET …/sync` serves without `--sync-file`.
const EMPTY_SYNC_DOCUMENT: &str =
    r#"{"version":"empty","campaigns":[],"staff_devices":[],"blocked_devices":[]}"#;

impl Receiver {
    /// Serves `path` at `GET …/sync`.
    pub fn with_sync_file(mut self, path: std::path::PathBuf) -> Self {
        self.sync_file = Some(path);
        self
    }

    pub fn new(
        key: SigningKey,
        tolerance_secs: i64,
        dedupe_capacity: usize,
        out: Box<dyn Write + Send>,
    ) -> Self {
        Receiver {
            key,
            tolerance_secs,
            inner: Mutex::new((Dedupe::new(dedupe_capacity), out)),
            sync_file: None,
            batches: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
        }
    }

    /// Writes the events not seen before (one JSON line each, then a
    /// flush), and only then records their ids. Duplicates within the
    /// batch count as duplicates too.
    pub fn accept_batch(&self, events: Vec<(String, Value)>) -> std::io::Result<BatchCounts> {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (seen, out) = &mut *guard;
        let mut in_batch = HashSet::new();
        let mut fresh = Vec::new();
        let mut counts = BatchCounts::default();
        let mut text = Vec::new();
        for (id, event) in events {
            let key = Dedupe::key(&id);
            if seen.set.contains(&key) || !in_batch.insert(key) {
                counts.duplicates += 1;
                continue;
            }
            serde_json::to_writer(&mut text, &event)?;
            text.push(b'\n');
            fresh.push(key);
        }
        out.write_all(&text)?;
        out.flush()?;
        counts.accepted = fresh.len();
        for key in fresh {
            seen.insert_key(key);
        }
        drop(guard);
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.accepted
            .fetch_add(counts.accepted as u64, Ordering::Relaxed);
        self.duplicates
            .fetch_add(counts.duplicates as u64, Ordering::Relaxed);
        Ok(counts)
    }

    /// Prints `{"message": <json>}` as one line.
    pub fn accept_message(&self, message: Value) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(&serde_json::json!({ "message": message }))?;
        line.push(b'\n');
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        guard.1.write_all(&line)?;
        guard.1.flush()
    }

    fn summary(&self) -> String {
        format!(
            "{} batches, {} events accepted, {} duplicates, {} requests rejected",
            self.batches.load(Ordering::Relaxed),
            self.accepted.load(Ordering::Relaxed),
            self.duplicates.load(Ordering::Relaxed),
            self.rejected.load(Ordering::Relaxed),
        )
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

type Reply = Response<Full<Bytes>>;

fn text(status: StatusCode, body: impl Into<String>) -> Reply {
    let mut body = body.into();
    body.push('\n');
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn json(status: StatusCode, value: &Value) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(value.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}

/// A request rejected: status and one-line reason.
struct Reject(StatusCode, String);

impl From<VerifyError> for Reject {
    fn from(e: VerifyError) -> Self {
        Reject(StatusCode::UNAUTHORIZED, e.to_string())
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    Events,
    Messages,
    Sync,
    Health,
}

fn route(path: &str) -> Option<Route> {
    let last = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    match last {
        "events" => Some(Route::Events),
        "messages" => Some(Route::Messages),
        "sync" => Some(Route::Sync),
        "healthz" => Some(Route::Health),
        _ => None,
    }
}

/// Handles one request. `now_secs` is the clock the signature's
/// timestamp is checked against.
pub async fn handle<B>(receiver: &Arc<Receiver>, req: Request<B>, now_secs: i64) -> Reply
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let Some(route) = route(req.uri().path()) else {
        return text(
            StatusCode::NOT_FOUND,
            "not found: POST …/events, POST …/messages, GET …/sync or GET …/healthz",
        );
    };
    let allowed = match route {
        Route::Health | Route::Sync => req.method() == Method::GET || req.method() == Method::HEAD,
        _ => req.method() == Method::POST,
    };
    if !allowed {
        let allow = if matches!(route, Route::Health | Route::Sync) {
            "GET, HEAD"
        } else {
            "POST"
        };
        let mut r = text(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("method not allowed; use {allow}"),
        );
        r.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static(allow));
        return r;
    }
    if route == Route::Health {
        return text(StatusCode::OK, "ok");
    }
    if route == Route::Sync {
        return sync_document(receiver, req.headers(), now_secs).await;
    }
    let webhook_id = req
        .headers()
        .get(signing::HEADER_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    let result = match route {
        Route::Events => events(receiver, req, now_secs).await,
        _ => message(receiver, req, now_secs).await,
    };
    match result {
        Ok(reply) => reply,
        Err(Reject(status, reason)) => {
            receiver.rejected.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(webhook_id, "rejected with {}: {reason}", status.as_u16());
            text(status, reason)
        }
    }
}

async fn events<B>(receiver: &Arc<Receiver>, req: Request<B>, now: i64) -> Result<Reply, Reject>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    check_content_type(
        req.headers(),
        |m| m == BATCH_CONTENT_TYPE,
        BATCH_CONTENT_TYPE,
    )?;
    let (webhook_id, body) = signed_body(receiver, req, now).await?;
    let events = parse_batch(&body).map_err(|e| Reject(StatusCode::BAD_REQUEST, e))?;
    let total = events.len();
    let r = receiver.clone();
    let counts = write_out("events", move || r.accept_batch(events)).await?;
    tracing::info!(
        webhook_id,
        "batch of {total}: {} accepted, {} duplicates",
        counts.accepted,
        counts.duplicates
    );
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({"accepted": counts.accepted, "duplicates": counts.duplicates}),
    ))
}

/// `GET …/sync`: the document, checked, signed, with its `ETag`.
async fn sync_document(receiver: &Receiver, headers: &http::HeaderMap, now: i64) -> Reply {
    let body = match &receiver.sync_file {
        Some(path) => match tokio::fs::read(path).await {
            Ok(b) => b,
            Err(e) => {
                return text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("cannot read the sync file {}: {e}", path.display()),
                );
            }
        },
        None => EMPTY_SYNC_DOCUMENT.as_bytes().to_vec(),
    };
    if let Err(e) = crate::uplink::sync::SyncDocument::parse(&body) {
        tracing::error!("the sync file is not a valid document: {e}");
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the sync file is not a valid document: {e}"),
        );
    }
    let digest = Sha256::digest(&body);
    let etag = format!("\"{}\"", crate::uplink::sync::hex(&digest[..16]));
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut reply = if matches {
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        let id = format!("sync_{}_{now}", &etag[1..17]);
        let mut r = Response::new(Full::new(Bytes::from(body.clone())));
        for (name, value) in receiver.key.headers(&id, now, &body) {
            if let Ok(v) = header::HeaderValue::from_str(&value) {
                r.headers_mut().insert(name, v);
            }
        }
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
        r
    };
    if let Ok(v) = header::HeaderValue::from_str(&etag) {
        reply.headers_mut().insert(header::ETAG, v);
    }
    reply
}

async fn message<B>(receiver: &Arc<Receiver>, req: Request<B>, now: i64) -> Result<Reply, Reject>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    check_content_type(
        req.headers(),
        |m| m == "application/json" || m.ends_with("+json"),
        "application/json",
    )?;
    let (webhook_id, body) = signed_body(receiver, req, now).await?;
    let message: Value = serde_json::from_slice(&body).map_err(|e| {
        Reject(
            StatusCode::BAD_REQUEST,
            format!("the body is not JSON: {e}"),
        )
    })?;
    if !message.is_object() {
        return Err(Reject(
            StatusCode::BAD_REQUEST,
            "the body is not a JSON object".into(),
        ));
    }
    let kind = message["kind"].as_str().unwrap_or("?").to_string();
    let r = receiver.clone();
    write_out("the message", move || r.accept_message(message)).await?;
    tracing::info!(webhook_id, "message of kind {kind} accepted");
    Ok(json(StatusCode::OK, &serde_json::json!({"accepted": 1})))
}

/// Runs a write to stdout on the blocking pool; a failure is a 500 that
/// names what could not be written (so HQ's sender retries).
async fn write_out<T: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, Reject> {
    let internal = |msg: String| {
        tracing::error!("{msg}");
        Reject(StatusCode::INTERNAL_SERVER_ERROR, msg)
    };
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| internal(format!("internal error: {e}")))?
        .map_err(|e| internal(format!("cannot write {what} to stdout: {e}")))
}

fn check_content_type(
    headers: &HeaderMap,
    ok: impl Fn(&str) -> bool,
    expected: &str,
) -> Result<(), Reject> {
    let value = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if ok(&mime) {
        Ok(())
    } else {
        Err(Reject(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type must be {expected}, not {value:?}"),
        ))
    }
}

/// Checks the signature headers (before reading the body, so a stale or
/// unsigned request costs nothing), reads and decompresses the body within
/// the limits, and verifies the signature over the uncompressed bytes.
async fn signed_body<B>(
    receiver: &Receiver,
    req: Request<B>,
    now: i64,
) -> Result<(String, Vec<u8>), Reject>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let (parts, body) = req.into_parts();
    let signed = SignedHeaders::from_header_map(&parts.headers);
    let (webhook_id, _, _) = signing::check_headers(signed, now, receiver.tolerance_secs)?;
    let gzip = match parts
        .headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("") | Some("identity") => false,
        Some("gzip") | Some("x-gzip") => true,
        Some(other) => {
            return Err(Reject(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("Content-Encoding {other:?} is not supported (use gzip or none)"),
            ));
        }
    };
    let too_large = || {
        Reject(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than {MAX_BODY_BYTES} bytes"),
        )
    };
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let collected = tokio::time::timeout(
        BODY_READ_TIMEOUT,
        Limited::new(body, MAX_BODY_BYTES).collect(),
    )
    .await
    .map_err(|_| {
        Reject(
            StatusCode::REQUEST_TIMEOUT,
            format!("the body took more than {BODY_READ_TIMEOUT:?} to arrive"),
        )
    })?;
    let raw = match collected {
        Ok(c) => c.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return Err(too_large());
        }
        Err(e) => {
            return Err(Reject(
                StatusCode::BAD_REQUEST,
                format!("reading the body failed: {e}"),
            ));
        }
    };
    let body = if gzip {
        gunzip(&raw, MAX_BODY_BYTES).map_err(|e| match e {
            GunzipError::TooLarge => Reject(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is larger than {MAX_BODY_BYTES} bytes once decompressed"),
            ),
            GunzipError::Corrupt(e) => Reject(
                StatusCode::BAD_REQUEST,
                format!("the body is not valid gzip: {e}"),
            ),
        })?
    } else {
        raw.to_vec()
    };
    receiver
        .key
        .verify(signed, &body, now, receiver.tolerance_secs)?;
    Ok((webhook_id.to_string(), body))
}

#[derive(Debug)]
pub enum GunzipError {
    TooLarge,
    Corrupt(std::io::Error),
}

/// Decompresses gzip (one or more members), refusing output over `max`.
pub fn gunzip(data: &[u8], max: usize) -> Result<Vec<u8>, GunzipError> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(data)
        .take(max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(GunzipError::Corrupt)?;
    if out.len() > max {
        return Err(GunzipError::TooLarge);
    }
    Ok(out)
}

mod server;

pub use server::{ReceiverArgs, cli_main, serve, serve_with, tls_acceptor};

#[cfg(test)]
mod tests;
