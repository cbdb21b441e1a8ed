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
//! request heads up to 16 KiB (431 beyond) sent within 10 s, 60 s to
//! send a body, 10 min per connection (`crate::http`, as for the box's
//! own servers). SIGTERM or SIGINT: stop accepting, let requests in
//! flight finish (5 s at most), exit 0. Logs go to stderr.
//!
//! An embedding program (the demo's in-process HQ) may set an
//! [`Observer`] with [`Receiver::with_observer`]: it sees each accepted
//! event once, after the signature check and de-duplication and once it
//! is written out; nothing of a rejected request or a duplicate.
//!
//! `dedupe`: the bounded memory of event ids; `routes`: the answers;
//! `server`: connections, TLS and the command line.

use std::collections::HashSet;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::uplink::signing::SigningKey;

mod dedupe;
mod routes;
mod server;

pub use dedupe::Dedupe;
pub use routes::{GunzipError, gunzip, read_body, route};
pub use server::{ReceiverArgs, cli_main, serve, serve_with};

/// Largest body accepted, compressed or not.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// How many event ids are remembered for de-duplication.
pub const DEDUPE_CAPACITY: usize = 1_000_000;
pub const MAX_CONNECTIONS: usize = 64;
/// The environment variable read when `--secret` is not given (keeps the
/// secret out of `ps`).
pub const SECRET_ENV: &str = "STOREGATE_HQ_SECRET";

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

/// Sees each newly accepted event (see the module docs). Called in the
/// order events are accepted, on the thread that writes them out and
/// under the receiver's lock: it must be quick and must not call the
/// receiver.
pub type Observer = Arc<dyn Fn(&Value) + Send + Sync>;

/// The receiver's state: key, seen ids and where accepted events go.
pub struct Receiver {
    key: SigningKey,
    tolerance_secs: i64,
    /// Seen ids and the output, under one lock so batches print whole and
    /// in the order they were recorded.
    inner: Mutex<(Dedupe, Box<dyn Write + Send>)>,
    /// The document `GET …/sync` serves; `None`: an empty one.
    sync_file: Option<std::path::PathBuf>,
    observer: Option<Observer>,
    batches: AtomicU64,
    accepted: AtomicU64,
    duplicates: AtomicU64,
    rejected: AtomicU64,
}

impl Receiver {
    /// Serves `path` at `GET …/sync`.
    pub fn with_sync_file(mut self, path: std::path::PathBuf) -> Self {
        self.sync_file = Some(path);
        self
    }

    /// Hands each newly accepted event to `observer`.
    pub fn with_observer(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
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
            observer: None,
            batches: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
        }
    }

    /// Writes the events not seen before (one JSON line each, then a
    /// flush), and only then records their ids and shows them to the
    /// observer. Duplicates within the batch count as duplicates too.
    pub fn accept_batch(&self, events: Vec<(String, Value)>) -> std::io::Result<BatchCounts> {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (seen, out) = &mut *guard;
        let mut in_batch = HashSet::new();
        let mut fresh = Vec::new();
        let mut observed = Vec::new();
        let mut counts = BatchCounts::default();
        let mut text = Vec::new();
        for (id, event) in events {
            let key = Dedupe::key(&id);
            if seen.contains_key(key) || !in_batch.insert(key) {
                counts.duplicates += 1;
                continue;
            }
            serde_json::to_writer(&mut text, &event)?;
            text.push(b'\n');
            fresh.push(key);
            if self.observer.is_some() {
                observed.push(event);
            }
        }
        out.write_all(&text)?;
        out.flush()?;
        counts.accepted = fresh.len();
        for key in fresh {
            seen.insert_key(key);
        }
        if let Some(observer) = &self.observer {
            for event in &observed {
                observer(event);
            }
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

#[cfg(test)]
mod tests;
