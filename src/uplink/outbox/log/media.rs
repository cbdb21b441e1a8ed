//! Where a segment's bytes live: a file, or memory (tests and rigs).

use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::store::StoreError;

pub(super) fn io_error(path: &Path, what: &str, e: std::io::Error) -> StoreError {
    StoreError::Backend(format!("outbox: {what} {}: {e}", path.display()))
}

/// A segment's bytes: a file, or memory (tests and rigs).
pub(super) enum Media {
    Disk { file: Arc<File>, path: PathBuf },
    Memory(Vec<u8>),
}

impl Media {
    pub(super) fn read_at(&self, buf: &mut [u8], at: u64) -> Result<usize, StoreError> {
        match self {
            Media::Disk { file, path } => {
                let mut done = 0;
                while done < buf.len() {
                    match file.read_at(&mut buf[done..], at + done as u64) {
                        Ok(0) => break,
                        Ok(n) => done += n,
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(e) => return Err(io_error(path, "reading", e)),
                    }
                }
                Ok(done)
            }
            Media::Memory(v) => {
                let start = (at as usize).min(v.len());
                let n = buf.len().min(v.len() - start);
                buf[..n].copy_from_slice(&v[start..start + n]);
                Ok(n)
            }
        }
    }

    pub(super) fn write_at(&mut self, bytes: &[u8], at: u64) -> Result<(), StoreError> {
        match self {
            Media::Disk { file, path } => file
                .write_all_at(bytes, at)
                .map_err(|e| io_error(path, "writing", e)),
            Media::Memory(v) => {
                v.truncate(at as usize);
                v.extend_from_slice(bytes);
                Ok(())
            }
        }
    }

    pub(super) fn truncate(&mut self, len: u64) -> Result<(), StoreError> {
        match self {
            Media::Disk { file, path } => file
                .set_len(len)
                .map_err(|e| io_error(path, "truncating", e)),
            Media::Memory(v) => {
                v.truncate(len as usize);
                Ok(())
            }
        }
    }

    pub(super) fn name(&self) -> String {
        match self {
            Media::Disk { path, .. } => path.display().to_string(),
            Media::Memory(_) => "(memory)".into(),
        }
    }
}

/// What the outbox syncs to make a write durable (None: memory).
pub(in crate::uplink::outbox) type SyncHandle = Option<(Arc<File>, PathBuf)>;

pub(in crate::uplink::outbox) fn sync_handle(h: &SyncHandle) -> Result<(), StoreError> {
    match h {
        Some((file, path)) => file.sync_data().map_err(|e| io_error(path, "syncing", e)),
        None => Ok(()),
    }
}
