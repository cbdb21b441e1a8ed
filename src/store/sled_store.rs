//! `SledStore`: the `Store` on the box, one sled tree per `Tree`.

use std::path::Path;

use super::{Entries, Store, StoreError, Tree, check_size};

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
        let db = sled::Config::new()
            .path(dir.join("db"))
            // Small routers have little RAM; sled's default cache is 1 GiB.
            // 2 MiB keeps a restore of 10,000 sessions under 18 MB resident
            // (8 MiB gave 29 MB: a restore scans every record once).
            .cache_capacity(2 * 1024 * 1024)
            .open()
            .map_err(|e| open_err(e.to_string()))?;
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

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(backend)?;
        Ok(())
    }
}
