//! The stored document: the body exactly as signed, in chunks under the
//! `Meta` tree, and the manifest that names them, written last so a cut
//! write leaves the previous document in force. Loading checks the body
//! against its manifest and parses it again.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::document::{MAX_DOCUMENT_BYTES, SyncDocument};
use crate::store::{Store, StoreError, Tree, put_json};
use crate::time::Timestamp;

/// The manifest of the stored document (`Tree::Meta`).
pub const META_DOCUMENT: &[u8] = b"sync.document";
/// Chunks of the stored body: `sync.chunk.{generation}.{index}`.
pub(super) const CHUNK_PREFIX: &str = "sync.chunk.";
/// Under the store's 64 KiB value cap.
pub(super) const CHUNK_BYTES: usize = 60 * 1024;

/// The stored document's manifest (`sync.document`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Manifest {
    generation: u64,
    chunks: u32,
    bytes: u64,
    sha256: String,
    pub(super) etag: Option<String>,
    pub(super) fetched_at: Timestamp,
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn chunk_key(generation: u64, index: u32) -> Vec<u8> {
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
pub(super) fn save(
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
pub(super) fn load_stored(
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
