//! Moving a state directory written by storegate 0.1 (a sled database in
//! `<storage.path>/db`) into redb, once, on the first start of this version.
//!
//! Crash-safe in this order: every sled tree is copied into redb in one
//! transaction together with a marker, made durable, and only then is the
//! sled directory removed. A crash before the commit leaves redb without
//! the marker (the copy starts again from sled, which is untouched); a
//! crash after it leaves the marker (the sled directory is only removed).
//!
//! sled allocates some 20 MB of zeroed statistics when first used, which
//! musl's allocator really touches; the daemon therefore runs the copy in a
//! child process (`storegate migrate-state`), so that memory goes away with
//! the child.

use std::path::{Path, PathBuf};

use super::{RedbStore, Store, StoreError, Tree};

/// sled's directory inside the storage directory, as version 0.1 made it.
pub const SLED_DIR: &str = "db";
/// Set in `Meta` once the sled data is in redb.
const MIGRATED_KEY: &[u8] = b"store.migrated_from_sled";

fn sled_dir(dir: &Path) -> PathBuf {
    dir.join(SLED_DIR)
}

/// Whether `dir` still holds a sled database to migrate.
pub fn needed(dir: &Path) -> bool {
    sled_dir(dir).join("conf").is_file()
}

/// What a migration did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Migrated {
    /// Entries copied, over all trees (0 when an earlier run had copied
    /// them and only the sled directory was left to remove).
    pub entries: usize,
}

fn failed(dir: &Path, reason: impl std::fmt::Display) -> StoreError {
    StoreError::Open {
        path: sled_dir(dir).display().to_string(),
        reason: format!("migrating the version 0.1 (sled) state: {reason}"),
    }
}

/// Copies the sled database in `dir` into the redb state in `dir`, then
/// removes the sled directory. Nothing to do if there is none.
pub fn from_sled(dir: &Path) -> Result<Migrated, StoreError> {
    if !needed(dir) {
        return Ok(Migrated::default());
    }
    let store = RedbStore::open(dir)?;
    let mut migrated = Migrated::default();
    if store.get(Tree::Meta, MIGRATED_KEY)?.is_none() {
        migrated.entries = copy_sled(dir, &store)?;
    }
    drop(store);
    std::fs::remove_dir_all(sled_dir(dir)).map_err(|e| failed(dir, e))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(migrated)
}

/// Copies every tree, with the marker, in one durable transaction.
#[cfg(feature = "migrate-v0-1")]
fn copy_sled(dir: &Path, store: &RedbStore) -> Result<usize, StoreError> {
    let db = sled::Config::new()
        .path(sled_dir(dir))
        .cache_capacity(1024 * 1024)
        .open()
        .map_err(|e| failed(dir, e))?;
    let mut changes: Vec<super::Change> = Vec::new();
    for tree in Tree::ALL {
        let t = db.open_tree(tree.name()).map_err(|e| failed(dir, e))?;
        for entry in t.iter() {
            let (k, v) = entry.map_err(|e| failed(dir, e))?;
            changes.push((tree, k.to_vec(), Some(v.to_vec())));
        }
    }
    let entries = changes.len();
    changes.push((
        Tree::Meta,
        MIGRATED_KEY.to_vec(),
        Some(b"sled-0.34".to_vec()),
    ));
    store.write_batch(changes)?;
    store.flush()?;
    Ok(entries)
}

#[cfg(not(feature = "migrate-v0-1"))]
fn copy_sled(dir: &Path, _store: &RedbStore) -> Result<usize, StoreError> {
    Err(failed(
        dir,
        "this build leaves out the migration (cargo feature `migrate-v0-1`): run a build \
         with it once on this state, or move the directory away to start afresh",
    ))
}

/// For the daemon: migrates `dir` if it holds version 0.1's state, in a
/// child process (`<this program> migrate-state DIR`) when this program is
/// storegate itself, else in this process.
pub fn in_child(dir: &Path) -> Result<(), StoreError> {
    if !needed(dir) {
        return Ok(());
    }
    let exe = std::env::current_exe().ok().filter(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("storegate"))
    });
    let Some(exe) = exe else {
        return from_sled(dir).map(|_| ());
    };
    let status = std::process::Command::new(exe)
        .arg("migrate-state")
        .arg(dir)
        .status()
        .map_err(|e| failed(dir, e))?;
    if !status.success() {
        return Err(failed(dir, format!("`storegate migrate-state` {status}")));
    }
    Ok(())
}

#[cfg(all(test, feature = "migrate-v0-1"))]
mod tests {
    use super::*;

    /// A sled database laid out as version 0.1 wrote it.
    fn old_state(dir: &Path) {
        let db = sled::Config::new().path(sled_dir(dir)).open().unwrap();
        db.open_tree("clients")
            .unwrap()
            .insert(b"mac1", b"c1")
            .unwrap();
        db.open_tree("outbox")
            .unwrap()
            .insert(7u64.to_be_bytes(), b"e7")
            .unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert(b"device_key", b"k")
            .unwrap();
        for i in 0..500u32 {
            db.open_tree("devices")
                .unwrap()
                .insert(i.to_be_bytes(), vec![1u8; 200])
                .unwrap();
        }
        db.flush().unwrap();
    }

    #[test]
    fn every_tree_is_carried_over_and_sled_goes() {
        let dir = tempfile::tempdir().unwrap();
        old_state(dir.path());
        assert!(needed(dir.path()));
        let m = from_sled(dir.path()).unwrap();
        assert_eq!(m.entries, 503);
        assert!(!needed(dir.path()));
        assert!(!sled_dir(dir.path()).exists());
        let store = RedbStore::open(dir.path()).unwrap();
        assert_eq!(store.get(Tree::Clients, b"mac1").unwrap().unwrap(), b"c1");
        assert_eq!(
            store
                .get(Tree::Outbox, &7u64.to_be_bytes())
                .unwrap()
                .unwrap(),
            b"e7"
        );
        assert_eq!(store.get(Tree::Meta, b"device_key").unwrap().unwrap(), b"k");
        assert_eq!(store.count(Tree::Devices).unwrap(), 500);
        drop(store);
        // Nothing left to do the second time.
        assert_eq!(from_sled(dir.path()).unwrap(), Migrated::default());
    }

    #[test]
    fn a_copy_already_committed_only_removes_sled() {
        let dir = tempfile::tempdir().unwrap();
        old_state(dir.path());
        {
            // As if a first run had committed and died before removing sled,
            // and the box had changed the value since.
            let store = RedbStore::open(dir.path()).unwrap();
            store.put(Tree::Meta, MIGRATED_KEY, b"sled-0.34").unwrap();
            store.put(Tree::Clients, b"mac1", b"newer").unwrap();
            store.flush().unwrap();
        }
        let m = from_sled(dir.path()).unwrap();
        assert_eq!(m.entries, 0);
        assert!(!sled_dir(dir.path()).exists());
        let store = RedbStore::open(dir.path()).unwrap();
        assert_eq!(
            store.get(Tree::Clients, b"mac1").unwrap().unwrap(),
            b"newer"
        );
    }
}
