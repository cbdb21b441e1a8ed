//! `SledStore`: the `Store` on the box, one sled tree per `Tree`.

use std::path::Path;

use super::{Entries, Store, StoreError, Tree, check_size};

const LOCK_RETRIES: u32 = 40;
const LOCK_RETRY_DELAY: std::time::Duration = std::time::Duration::from_millis(50);

pub struct SledStore {
    db: sled::Db,
}

fn backend(e: sled::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl SledStore {
    /// Opens (or creates) the database in `dir`. sled holds a lock on it,
    /// so a second daemon on the same state fails here with a clear error.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let open_err = |reason: String| StoreError::Open {
            path: dir.display().to_string(),
            reason,
        };
        std::fs::create_dir_all(dir).map_err(|e| open_err(e.to_string()))?;
        // sled locks its files; a process that is just exiting (a restart)
        // or a handle being dropped may still hold the lock for a moment.
        let mut attempts = 0;
        let db = loop {
            let opened = sled::Config::new()
                .path(dir.join("db"))
                // Small routers have little RAM; sled's default cache is 1 GiB.
                // 2 MiB keeps a restore of 10,000 sessions under 18 MB resident
                // (8 MiB gave 29 MB: a restore scans every record once).
                .cache_capacity(2 * 1024 * 1024)
                .open();
            match opened {
                Ok(db) => break db,
                Err(sled::Error::Io(e))
                    if attempts < LOCK_RETRIES && e.to_string().contains("lock") =>
                {
                    attempts += 1;
                    std::thread::sleep(LOCK_RETRY_DELAY);
                }
                Err(e) => return Err(open_err(e.to_string())),
            }
        };
        Ok(SledStore { db })
    }

    fn tree(&self, tree: Tree) -> Result<sled::Tree, StoreError> {
        self.db.open_tree(tree.name()).map_err(backend)
    }
}

impl Store for SledStore {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .tree(tree)?
            .get(key)
            .map_err(backend)?
            .map(|v| v.to_vec()))
    }

    fn put(&self, tree: Tree, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        check_size(tree, value)?;
        self.tree(tree)?.insert(key, value).map_err(backend)?;
        Ok(())
    }

    fn remove(&self, tree: Tree, key: &[u8]) -> Result<(), StoreError> {
        self.tree(tree)?.remove(key).map_err(backend)?;
        Ok(())
    }

    fn scan(&self, tree: Tree) -> Result<Entries, StoreError> {
        self.tree(tree)?
            .iter()
            .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(backend))
            .collect()
    }

    fn last(&self, tree: Tree, n: usize) -> Result<Entries, StoreError> {
        let mut v = self
            .tree(tree)?
            .iter()
            .rev()
            .take(n)
            .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(backend))
            .collect::<Result<Entries, StoreError>>()?;
        v.reverse();
        Ok(v)
    }

    fn first(&self, tree: Tree, n: usize) -> Result<Entries, StoreError> {
        self.tree(tree)?
            .iter()
            .take(n)
            .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(backend))
            .collect()
    }

    fn count(&self, tree: Tree) -> Result<usize, StoreError> {
        // sled keeps no count; this walks keys (not values) once.
        Ok(self.tree(tree)?.iter().keys().count())
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(backend)?;
        Ok(())
    }
}
