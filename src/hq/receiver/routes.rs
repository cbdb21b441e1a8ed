//! What the receiver answers (the routes are listed in the module docs
//! of `hq::receiver`): [`route`] matches the method and the path's last
//! segment and hands a [`Cx`] to one small handler each. A refused
//! request gets its status and a one-line reason, and prints nothing.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::Full;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{MAX_BODY_BYTES, Receiver, parse_batch};
use crate::http::body;
use crate::http::reply::{self, Reply};
use crate::uplink::signing::{self, SignedHeaders, VerifyError};
use crate::uplink::sync::{self, SyncDocument};

/// How long a client may take to send a body once its head has arrived.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);
const BATCH_CONTENT_TYPE: &str = "application/cloudevents-batch+json";
/// What `GET …/sync` serves without `--sync-file`.
const EMPTY_SYNC_DOCUMENT: &str =
    r#"{"version":"empty","campaigns":[],"staff_devices":[],"blocked_devices":[]}"#;

/// One request, as every handler sees it.
struct Cx<'a> {
    receiver: &'a Arc<Receiver>,
    /// The clock the signature's timestamp is checked against (Unix
    /// seconds).
    now: i64,
}

/// Answers one request. `now_secs` is the clock the signature's
/// timestamp is checked against.
pub async fn route<B: crate::http::Body>(
    receiver: &Arc<Receiver>,
    req: Request<B>,
    now_secs: i64,
) -> Reply {
    let cx = Cx {
        receiver,
        now: now_secs,
    };
    let webhook_id = req
        .headers()
        .get(signing::HEADER_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    // Paths match on their last segment, so any `hq.url` prefix works.
    let method = req.method().clone();
    let path = req.uri().path().trim_end_matches('/').to_string();
    match (&method, path.rsplit('/').next().unwrap_or("")) {
        (&Method::POST, "events") => settle(&cx, &webhook_id, events(&cx, req).await),
        (&Method::POST, "messages") => settle(&cx, &webhook_id, message(&cx, req).await),
        (&Method::GET | &Method::HEAD, "sync") => sync_document(&cx, req.headers()).await,
        (&Method::GET | &Method::HEAD, "healthz") => text(StatusCode::OK, "ok"),
        (_, "events" | "messages") => not_allowed("POST"),
        (_, "sync" | "healthz") => not_allowed("GET, HEAD"),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: POST …/events, POST …/messages, GET …/sync or GET …/healthz",
        ),
    }
}

/// A request rejected: status and one-line reason.
struct Reject(StatusCode, String);

impl From<VerifyError> for Reject {
    fn from(e: VerifyError) -> Self {
        Reject(StatusCode::UNAUTHORIZED, e.to_string())
    }
}

/// The answer to a signed POST; a rejection is counted and logged.
fn settle(cx: &Cx, webhook_id: &str, result: Result<Reply, Reject>) -> Reply {
    match result {
        Ok(reply) => reply,
        Err(Reject(status, reason)) => {
            cx.receiver.rejected.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(webhook_id, "rejected with {}: {reason}", status.as_u16());
            text(status, reason)
        }
    }
}

/// `405` naming the methods the path takes.
fn not_allowed(allow: &'static str) -> Reply {
    let mut r = text(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method not allowed; use {allow}"),
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

/// A one-line plain-text answer.
fn text(status: StatusCode, body: impl Into<String>) -> Reply {
    let mut body = body.into();
    body.push('\n');
    reply::answer(status, "text/plain; charset=utf-8", body)
}

/// `POST …/events`: a signed CloudEvents batch.
async fn events<B: crate::http::Body>(cx: &Cx<'_>, req: Request<B>) -> Result<Reply, Reject> {
    let receiver = cx.receiver;
    check_content_type(
        req.headers(),
        |m| m == BATCH_CONTENT_TYPE,
        BATCH_CONTENT_TYPE,
    )?;
    let (webhook_id, body) = signed_body(cx, req).await?;
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
    Ok(reply::json(
        StatusCode::OK,
        &serde_json::json!({"accepted": counts.accepted, "duplicates": counts.duplicates}),
    ))
}

/// `GET …/sync`: the document, checked, signed, with its `ETag`.
async fn sync_document(cx: &Cx<'_>, headers: &HeaderMap) -> Reply {
    let (receiver, now) = (cx.receiver, cx.now);
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
    if let Err(e) = SyncDocument::parse(&body) {
        tracing::error!("the sync file is not a valid document: {e}");
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the sync file is not a valid document: {e}"),
        );
    }
    let digest = Sha256::digest(&body);
    let etag = format!("\"{}\"", sync::hex(&digest[..16]));
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
        let mut r = reply::answer(StatusCode::OK, "application/json", body.clone());
        for (name, value) in receiver.key.headers(&id, now, &body) {
            if let Ok(v) = HeaderValue::from_str(&value) {
                r.headers_mut().insert(name, v);
            }
        }
        r
    };
    if let Ok(v) = HeaderValue::from_str(&etag) {
        reply.headers_mut().insert(header::ETAG, v);
    }
    reply
}

/// `POST …/messages`: a signed JSON document (OTP texts).
async fn message<B: crate::http::Body>(cx: &Cx<'_>, req: Request<B>) -> Result<Reply, Reject> {
    let receiver = cx.receiver;
    check_content_type(
        req.headers(),
        |m| m == "application/json" || m.ends_with("+json"),
        "application/json",
    )?;
    let (webhook_id, body) = signed_body(cx, req).await?;
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
    Ok(reply::json(
        StatusCode::OK,
        &serde_json::json!({"accepted": 1}),
    ))
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
async fn signed_body<B: crate::http::Body>(
    cx: &Cx<'_>,
    req: Request<B>,
) -> Result<(String, Vec<u8>), Reject> {
    let (receiver, now) = (cx.receiver, cx.now);
    let (parts, body) = req.into_parts();
    let signed = SignedHeaders::from_header_map(&parts.headers);
    let (webhook_id, _, _) = signing::check_headers(signed, now, receiver.tolerance_secs)?;
    let body = read_body(&parts.headers, body, MAX_BODY_BYTES, BODY_READ_TIMEOUT)
        .await
        .map_err(|(status, why)| Reject(status, why))?;
    receiver
        .key
        .verify(signed, &body, now, receiver.tolerance_secs)?;
    Ok((webhook_id.to_string(), body))
}

/// A signed request's body: read within `max` bytes and `timeout`, and
/// gunzipped when `Content-Encoding` says gzip (the signature covers the
/// uncompressed body). On failure, the status and message to answer with.
pub async fn read_body<B: crate::http::Body>(
    headers: &HeaderMap,
    body: B,
    max: usize,
    timeout: Duration,
) -> Result<Vec<u8>, (StatusCode, String)> {
    let gzip = match headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("") | Some("identity") => false,
        Some("gzip") | Some("x-gzip") => true,
        Some(other) => {
            return Err((
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("Content-Encoding {other:?} is not supported (use gzip or none)"),
            ));
        }
    };
    let raw = body::read(headers, body, max, timeout)
        .await
        .map_err(|e| (e.status(), e.to_string()))?;
    if !gzip {
        return Ok(raw.to_vec());
    }
    gunzip(&raw, max).map_err(|e| match e {
        GunzipError::TooLarge => (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than {max} bytes once decompressed"),
        ),
        GunzipError::Corrupt(e) => (
            StatusCode::BAD_REQUEST,
            format!("the body is not valid gzip: {e}"),
        ),
    })
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
