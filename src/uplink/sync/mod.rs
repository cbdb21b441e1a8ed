//! Sync from HQ: `GET {hq.url}/sync` (DESIGN.md, "HQ").
//!
//! Every `hq.sync_interval` (default 5 min) the box asks HQ for its
//! targeting document, sending `If-None-Match` with the `ETag` of the last
//! good one. The request is signed like the POSTs (`webhook-id`
//! `sync_<UUIDv7>`, `webhook-timestamp`, `webhook-signature` over an empty
//! body), so HQ can check which store asks; HQs that ignore it lose
//! nothing. `304 Not Modified` changes nothing. A `200` must be signed the
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
//!
//! Files: `document` (the format and its checks), `state` (the document
//! in force and the status), `storage` (chunks and manifest), `fetcher`
//! (`Syncer`); `test_hq` is the scripted HQ the uplink tests talk to.

mod document;
mod fetcher;
mod state;
mod storage;

pub use document::{Campaign, MAX_DOCUMENT_BYTES, SyncDocument, is_device_id};
pub use fetcher::{Fetched, SyncConfig, SyncError, Syncer};
pub use state::{SyncState, SyncStatus};
pub use storage::META_DOCUMENT;
pub(crate) use storage::hex;

/// The client `delivery::client` builds (HTTPS, or plain http to loopback).
pub use super::delivery::HttpsClient;

#[cfg(test)]
pub(crate) mod test_hq;

#[cfg(test)]
mod tests;
