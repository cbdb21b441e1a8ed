//! `GET …/sync`: a store's sync document from the KV bucket (key
//! `<store_id>`, else the chain-wide `_chain`, else an empty document),
//! checked as the box checks it (`storegate::uplink::sync::SyncDocument`),
//! signed with the store's secrets in force, `ETag` = the KV revision, and
//! `304` for a matching `If-None-Match`.
//!
//! The box's `GET` carries no store id; the store is named by the path
//! (`hq.url = "https://hq.example.com/stores/<id>"` → `…/stores/<id>/sync`)
//! or by `?store=<id>`. Only that store's box can verify the answer (it
//! is signed with the store's own secret). Boxes sign the request itself
//! over an empty body; a request with `webhook-*` headers is verified with
//! the store's secrets (401 if wrong), and with `sync_requires_signature
//! = true` one without them is refused (boxes from before signed sync
//! requests send none).

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use storegate::http::reply::{self, Reply};
use storegate::uplink::signing::{self, SignedHeaders};
use storegate::uplink::sync::SyncDocument;

use crate::Gateway;
use crate::routes::{Reject, store_in_path};

/// The key of the document every store without its own gets.
pub const CHAIN_KEY: &str = "_chain";
const EMPTY_DOCUMENT: &str =
    r#"{"version":"empty","campaigns":[],"staff_devices":[],"blocked_devices":[]}"#;

fn store_in_query(query: Option<&str>) -> Option<String> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix("store="))
        .map(str::to_string)
}

pub async fn handle<B>(gw: &Arc<Gateway>, req: Request<B>, now: i64) -> Result<Reply, Reject> {
    let id = store_in_path(req.uri().path())
        .or_else(|| store_in_query(req.uri().query()))
        .ok_or_else(|| {
            Reject(
                StatusCode::BAD_REQUEST,
                "name the store: …/stores/<store id>/sync (set the box's hq.url to …/stores/<store id>) or ?store=<store id>".into(),
            )
        })?;
    let store = gw
        .stores
        .get(&id)
        .await
        .map_err(|e| Reject(StatusCode::SERVICE_UNAVAILABLE, e))?
        .ok_or_else(|| {
            Reject(
                StatusCode::UNAUTHORIZED,
                format!("store {id:?} is not in the store registry"),
            )
        })?;
    if gw.sync_requires_signature || req.headers().contains_key(signing::HEADER_SIGNATURE) {
        store.verify(
            SignedHeaders::from_header_map(req.headers()),
            b"",
            now,
            gw.tolerance_secs,
        )?;
    }
    let unavailable = |e: String| {
        gw.metrics.jetstream_error();
        tracing::warn!(store = %id, "sync document: {e}");
        Reject(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the sync document cannot be read now: {e}"),
        )
    };
    let mut entry = gw
        .jet
        .sync
        .entry(id.as_str())
        .await
        .map_err(|e| unavailable(e.to_string()))?
        .filter(|e| e.operation == async_nats::jetstream::kv::Operation::Put);
    if entry.is_none() {
        entry = gw
            .jet
            .sync
            .entry(CHAIN_KEY)
            .await
            .map_err(|e| unavailable(e.to_string()))?
            .filter(|e| e.operation == async_nats::jetstream::kv::Operation::Put);
    }
    let (body, etag) = match entry {
        Some(e) => (e.value, format!("\"{}\"", e.revision)),
        None => (
            Bytes::from_static(EMPTY_DOCUMENT.as_bytes()),
            "\"0\"".to_string(),
        ),
    };
    if let Err(e) = SyncDocument::parse(&body) {
        tracing::error!(store = %id, "the sync document in KV is not valid: {e}");
        return Err(Reject(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the sync document in KV is not valid: {e}"),
        ));
    }
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut reply = if matches {
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        let webhook_id = format!("sync_{}_{now}", etag.trim_matches('"'));
        let signature = store.sign(&webhook_id, now, &body).ok_or_else(|| {
            Reject(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("store {id:?} has no secret in force"),
            )
        })?;
        let mut r = reply::answer(StatusCode::OK, "application/json", body);
        let h = r.headers_mut();
        for (name, value) in [
            (signing::HEADER_ID, webhook_id),
            (signing::HEADER_TIMESTAMP, now.to_string()),
            (signing::HEADER_SIGNATURE, signature),
        ] {
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.insert(name, v);
            }
        }
        gw.metrics.sync_served.fetch_add(1, Relaxed);
        r
    };
    if let Ok(v) = HeaderValue::from_str(&etag) {
        reply.headers_mut().insert(header::ETAG, v);
    }
    Ok(reply)
}
