//! `RedbStore`: the `Store` on the box, one redb table per `Tree`, in one
//! file (`state.redb` in the storage directory).
//!
//! Writes are cheap until `flush`: each `put`/`remove`/`write_batch` is a
//! redb transaction committed without fsync (`Durability::None`), which
//! keeps its pages in memory; `flush` commits with `Durability::Immediate`,
//! writing every page changed since the last flush once and syncing it.
//! So a presence save that touches 200 records costs one sync and the
//! pages those records live on, not 200 syncs; and nothing is promised
//! durable before `flush` returns, which is the `Store` contract.
//!
//! Memory: redb's page cache is capped at [`CACHE_BYTES`]; it keeps no
//! per-entry state outside the cache and spawns no threads.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
};

use super::{Entries, Store, StoreError, Tree, check_size};

/// redb's page cache. The state is read mostly at start (restores) and
/// written in batches, so a small cache costs little speed and keeps the
/// router's RAM (bench/footprint.sh measures the daemon with it).
pub const CACHE_BYTES: usize = 1024 * 1024;
/// The state file inside the storage directory.
pub const FILE_NAME: &str = "state.redb";

const LOCK_RETRIES: u32 = 40;
const LOCK_RETRY_DELAY: std::time::Duration = std::time::Duration::from_millis(50);

fn table(tree: Tree) -> TableDefinition<'static, &'static [u8], &'static [u8]> {
    TableDefinition::new(tree.name())
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// One change of a batch: a value to store, or `None` to remove the key.
pub type Change = (Tree, Vec<u8>, Option<Vec<u8>>);

pub struct RedbStore {
    db: Database,
    path: PathBuf,
    /// Commits since the last durable one: `flush` with nothing to make
    /// durable writes nothing (a durable commit rewrites redb's header).
    unflushed: AtomicBool,
}

impl RedbStore {
    /// Opens (or creates) the state file in `dir`. redb locks the file, so
    /// a second daemon on the same state fails here with a clear error.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join(FILE_NAME);
        let open_err = |reason: String| StoreError::Open {
            path: path.display().to_string(),
            reason,
        };
        std::fs::create_dir_all(dir).map_err(|e| open_err(e.to_string()))?;
        // A process that is just exiting (a restart) may still hold the
        // lock for a moment.
        let mut attempts = 0;
        let db = loop {
            match Database::builder()
                .set_cache_size(CACHE_BYTES)
                .create(&path)
            {
                Ok(db) => break db,
                Err(redb::DatabaseError::DatabaseAlreadyOpen) if attempts < LOCK_RETRIES => {
                    attempts += 1;
                    std::thread::sleep(LOCK_RETRY_DELAY);
                }
                Err(e) => return Err(open_err(e.to_string())),
            }
        };
        let store = RedbStore {
            db,
            path,
            unflushed: AtomicBool::new(false),
        };
        // Every table exists from the start, so reads never meet a missing one.
        store.write(|txn| {
            for tree in Tree::ALL {
                txn.open_table(table(tree)).map_err(backend)?;
            }
            Ok(())
        })?;
        store.flush()?;
        Ok(store)
    }

    /// The state file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in a write transaction committed without fsync.
    fn write(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut txn = self.db.begin_write().map_err(backend)?;
        txn.set_durability(Durability::None).map_err(backend)?;
        f(&txn)?;
        self.unflushed.store(true, Ordering::SeqCst);
        txn.commit().map_err(backend)
    }

    fn read<T>(
        &self,
        tree: Tree,
        f: impl FnOnce(&redb::ReadOnlyTable<&'static [u8], &'static [u8]>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let txn = self.db.begin_read().map_err(backend)?;
        let t = txn.open_table(table(tree)).map_err(backend)?;
        f(&t)
    }

    fn collect<'a>(
        iter: impl Iterator<
            Item = Result<
                (
                    redb::AccessGuard<'a, &'static [u8]>,
                    redb::AccessGuard<'a, &'static [u8]>,
                ),
                redb::StorageError,
            >,
        >,
        n: usize,
    ) -> Result<Entries, StoreError> {
        iter.take(n)
            .map(|r| {
                r.map(|(k, v)| (k.value().to_vec(), v.value().to_vec()))
                    .map_err(backend)
            })
            .collect()
    }
}

impl Store for RedbStore {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(tree, |t| {
            Ok(t.get(key).map_err(backend)?.map(|v| v.value().to_vec()))
        })
    }

    fn put(&self, tree: Tree, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        check_size(tree, value)?;
        self.write(|txn| {
            let mut t = txn.open_table(table(tree)).map_err(backend)?;
            t.insert(key, value).map_err(backend)?;
            Ok(())
        })
    }

    fn remove(&self, tree: Tree, key: &[u8]) -> Result<(), StoreError> {
        self.write(|txn| {
            let mut t = txn.open_table(table(tree)).map_err(backend)?;
            t.remove(key).map_err(backend)?;
            Ok(())
        })
    }

    fn write_batch(&self, changes: Vec<Change>) -> Result<(), StoreError> {
        for (tree, _, value) in &changes {
            if let Some(v) = value {
                check_size(*tree, v)?;
            }
        }
        self.write(|txn| {
            for (tree, key, value) in &changes {
                let mut t = txn.open_table(table(*tree)).map_err(backend)?;
                match value {
                    Some(v) => t.insert(key.as_slice(), v.as_slice()).map_err(backend)?,
                    None => t.remove(key.as_slice()).map_err(backend)?,
                };
            }
            Ok(())
        })
    }

    fn scan(&self, tree: Tree) -> Result<Entries, StoreError> {
        self.read(tree, |t| {
            Self::collect(t.iter().map_err(backend)?, usize::MAX)
        })
    }

    fn last(&self, tree: Tree, n: usize) -> Result<Entries, StoreError> {
        let mut v = self.read(tree, |t| Self::collect(t.iter().map_err(backend)?.rev(), n))?;
        v.reverse();
        Ok(v)
    }

    fn first(&self, tree: Tree, n: usize) -> Result<Entries, StoreError> {
        self.read(tree, |t| Self::collect(t.iter().map_err(backend)?, n))
    }

    fn count(&self, tree: Tree) -> Result<usize, StoreError> {
        self.read(tree, |t| {
            let n = t.len().map_err(backend)?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }

    fn flush(&self) -> Result<(), StoreError> {
        if !self.unflushed.swap(false, Ordering::SeqCst) {
            return Ok(());
        }
        // An empty durable commit makes every earlier non-durable one durable.
        let result = (|| {
            let mut txn = self.db.begin_write().map_err(backend)?;
            txn.set_durability(Durability::Immediate).map_err(backend)?;
            txn.commit().map_err(backend)
        })();
        if result.is_err() {
            self.unflushed.store(true, Ordering::SeqCst);
        }
        result
    }
}
