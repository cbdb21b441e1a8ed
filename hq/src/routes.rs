//! The gateway's HTTP routes. Paths match on their last segment, so any
//! `hq.url` prefix works (`https://hq.example.com/storegate/events`):
//!
//! - `POST …/events` — a signed CloudEvents batch from one store
//!   (`ingest`); `200 {"stored", "duplicates"}` once JetStream has
//!   acknowledged every event, `503` if it has not;
//! - `POST …/messages` — a signed OTP text (`messages`);
//! - `GET …/sync` — the store's signed sync document (`sync`);
//! - `GET /metrics`, `GET /healthz` (the process answers), `GET /readyz`
//!   (NATS connected).
//!
//! Refusals: `400` bad JSON or events, `401` a missing, stale or wrong
//! signature or an unknown store, `403` a batch naming more than one
//! store or another store than its path, `413` too large, `415` another
//! content type or encoding; each with a one-line reason.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, Request, StatusCode};
use storegate::hq::receiver::read_body;
use storegate::http::reply::{self, Reply};
use storegate::uplink::signing::{self, SignedHeaders, VerifyError};

use crate::ingest::{self, BatchError};
use crate::{Gateway, messages, sync};

/// Largest body, compressed or not.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);
const BATCH_CONTENT_TYPE: &str = "application/cloudevents-batch+json";

/// A refused request: status and one-line reason.
pub struct Reject(pub StatusCode, pub String);

impl From<VerifyError> for Reject {
    fn from(e: VerifyError) -> Self {
        Reject(StatusCode::UNAUTHORIZED, e.to_string())
    }
}

/// Answers one request; `now` is the clock signatures are checked
/// against (Unix seconds).
pub async fn route<B: storegate::http::Body>(
    gw: &Arc<Gateway>,
    req: Request<B>,
    now: i64,
) -> Reply {
    let method = req.method().clone();
    let path = req.uri().path().trim_end_matches('/').to_string();
    let last = path.rsplit('/').next().unwrap_or("");
    let result = match (&method, last) {
        (&Method::POST, "events") => events(gw, req, now).await,
        (&Method::POST, "messages") => messages::handle(gw, req, now).await,
        (&Method::GET | &Method::HEAD, "sync") => sync::handle(gw, req, now).await,
        (&Method::GET, "metrics") => Ok(reply::answer(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            gw.metrics.render(),
        )),
        (&Method::GET | &Method::HEAD, "healthz") => Ok(text(StatusCode::OK, "ok")),
        (&Method::GET | &Method::HEAD, "readyz") => Ok(readyz(gw)),
        (_, "events" | "messages") => Err(Reject(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed; use POST".into(),
        )),
        _ => Err(Reject(
            StatusCode::NOT_FOUND,
            "not found: POST …/events, POST …/messages, GET …/sync, /metrics, /healthz, /readyz"
                .into(),
        )),
    };
    match result {
        Ok(reply) => reply,
        Err(Reject(status, reason)) => {
            if status.is_client_error() {
                gw.metrics.rejected.fetch_add(1, Relaxed);
                tracing::warn!(path = %path, status = status.as_u16(), "refused: {reason}");
            }
            text(status, reason)
        }
    }
}

fn readyz(gw: &Gateway) -> Reply {
    match gw.jet.client.connection_state() {
        async_nats::connection::State::Connected => text(StatusCode::OK, "ready"),
        other => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("NATS is {other:?}"),
        ),
    }
}

/// A one-line plain-text answer.
pub fn text(status: StatusCode, body: impl Into<String>) -> Reply {
    let mut body = body.into();
    body.push('\n');
    reply::answer(status, "text/plain; charset=utf-8", body)
}

/// `POST …/events`.
async fn events<B: storegate::http::Body>(
    gw: &Arc<Gateway>,
    req: Request<B>,
    now: i64,
) -> Result<Reply, Reject> {
    check_content_type(
        req.headers(),
        |m| m == BATCH_CONTENT_TYPE,
        BATCH_CONTENT_TYPE,
    )?;
    let path_store = store_in_path(req.uri().path());
    let (headers, body) = read_signed(gw, req, now).await?;
    let batch = ingest::parse_batch(&body).map_err(|e| match e {
        BatchError::Invalid(m) => Reject(StatusCode::BAD_REQUEST, m),
        BatchError::MixedSources(m) => Reject(StatusCode::FORBIDDEN, m),
    })?;
    if let Some(p) = path_store
        && p != batch.store_id
    {
        return Err(Reject(
            StatusCode::FORBIDDEN,
            format!(
                "the events are from store {:?}, the path names {p:?}",
                batch.store_id
            ),
        ));
    }
    let store = gw
        .stores
        .get(&batch.store_id)
        .await
        .map_err(|e| Reject(StatusCode::SERVICE_UNAVAILABLE, e))?
        .ok_or_else(|| {
            Reject(
                StatusCode::UNAUTHORIZED,
                format!("store {:?} is not in the store registry", batch.store_id),
            )
        })?;
    store.verify(
        SignedHeaders::from_header_map(&headers),
        &body,
        now,
        gw.tolerance_secs,
    )?;
    match ingest::publish(&gw.jet.js, &gw.inflight, &batch.events, &gw.metrics).await {
        Ok(p) => {
            gw.metrics.batches.fetch_add(1, Relaxed);
            tracing::debug!(
                store = %batch.store_id,
                stored = p.stored,
                duplicates = p.duplicates,
                "batch stored"
            );
            Ok(reply::json(
                StatusCode::OK,
                &serde_json::json!({"stored": p.stored, "duplicates": p.duplicates}),
            ))
        }
        Err(e) => {
            gw.metrics.batches_unavailable.fetch_add(1, Relaxed);
            tracing::warn!(store = %batch.store_id, events = batch.events.len(), "batch not stored: {e}");
            let mut r = text(StatusCode::SERVICE_UNAVAILABLE, format!("not stored: {e}"));
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            Ok(r)
        }
    }
}

/// The store a path names as `…/stores/<id>/<route>`, if it does.
pub fn store_in_path(path: &str) -> Option<String> {
    let mut parts = path.trim_end_matches('/').rsplit('/');
    let _route = parts.next()?;
    let id = parts.next()?;
    (parts.next()? == "stores").then(|| id.to_string())
}

pub fn check_content_type(
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

/// Checks the signature headers are present and fresh (before reading
/// the body, so a stale or unsigned request costs nothing), then reads
/// and decompresses the body within the limits. The signature itself is
/// verified by the caller, once it knows the store.
pub async fn read_signed<B: storegate::http::Body>(
    gw: &Gateway,
    req: Request<B>,
    now: i64,
) -> Result<(HeaderMap, Vec<u8>), Reject> {
    let (parts, body) = req.into_parts();
    signing::check_headers(
        SignedHeaders::from_header_map(&parts.headers),
        now,
        gw.tolerance_secs,
    )?;
    let body = read_body(&parts.headers, body, MAX_BODY_BYTES, BODY_READ_TIMEOUT)
        .await
        .map_err(|(status, why)| Reject(status, why))?;
    Ok((parts.headers, body))
}

#[cfg(test)]
mod tests {
    use super::store_in_path;

    #[test]
    fn stores_in_paths() {
        assert_eq!(
            store_in_path("/hq/stores/wulin-01/sync").as_deref(),
            Some("wulin-01")
        );
        assert_eq!(store_in_path("/stores/a/events/").as_deref(), Some("a"));
        assert_eq!(store_in_path("/hq/sync"), None);
        assert_eq!(store_in_path("/sync"), None);
    }
}
