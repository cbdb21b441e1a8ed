//! `storegate-hq`: HQ's side of the box contract for a whole chain, on
//! NATS JetStream (DESIGN.md, "HQ service"). Stateless gateways take the
//! boxes' signed event batches, texts and sync requests; the messenger
//! role turns member arrivals into targeted messages.
//!
//! - `config`: `hq.toml`, validated once; `registry`: each store's
//!   secrets (rotation with overlap) and time zone;
//! - `jet`: the NATS connection, the stream and KV buckets made at start;
//! - `routes`: the HTTP routes, with `ingest` (`/events` → JetStream),
//!   `messages` (`/messages` → quotas → provider), `sync` (`/sync`);
//! - `quota`: KV counters raised by compare-and-set; `provider`: where
//!   texts and messages go (webhook, file);
//! - `targeting`: the messenger's consumers (its campaign rules and
//!   decision are `storegate::hq::targeting`'s);
//! - `metrics`: `/metrics`; `server`: wiring, listener and shutdown.
//!
//! Shared with the box, never copied: signatures
//! (`storegate::uplink::signing`), event types (`storegate::uplink::event`),
//! the sync document's checks (`storegate::uplink::sync`), campaigns and
//! the targeting decision (`storegate::hq::targeting`) and the HTTP
//! plumbing (`storegate::http`).
#![forbid(unsafe_code)]

use std::sync::Arc;

pub mod config;
pub mod ingest;
pub mod jet;
pub mod messages;
pub mod metrics;
pub mod provider;
pub mod quota;
pub mod registry;
pub mod routes;
pub mod server;
pub mod sync;
pub mod targeting;

/// What every gateway request needs.
pub struct Gateway {
    pub jet: jet::Jet,
    pub stores: Arc<registry::Directory>,
    pub metrics: Arc<metrics::Metrics>,
    pub provider: Arc<dyn provider::Provider>,
    pub quotas: config::Quotas,
    pub tolerance_secs: i64,
    /// `GET /sync` must be signed by the store's box.
    pub sync_requires_signature: bool,
    /// Events published and not yet acknowledged (`ingest::INFLIGHT`).
    pub inflight: tokio::sync::Semaphore,
}
