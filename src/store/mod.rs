//! Persistent state behind one `Store` trait: redb on the box, memory in
//! tests. Keys and values are bytes; `put_json`/`get_json` add serde on top.
//! A state directory written by an earlier version (sled) is migrated on
//! first start (`migrate`).
//!
//! Trees are a closed list (`Tree`) so a typo cannot create a new one, and
//! every value has a size cap so one bad record cannot fill the flash.

mod memory;
pub mod migrate;
mod redb_store;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use memory::MemoryStore;
pub use redb_store::{Change, RedbStore};

/// Largest value any tree accepts...
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// ...except `Presence`, whose snapshot holds every open visit.
pub const MAX_PRESENCE_BYTES: usize = 32 * 1024 * 1024;

/// The trees storegate keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tree {
    /// Client sessions, keyed by MAC (6 bytes).
    Clients,
    /// Small facts about the store itself (schema version, keys).
    Meta,
    /// Events waiting for HQ, keyed by sequence number (8 bytes, big endian).
    Outbox,
    /// Waiting events that are dropped first when the outbox is full
    /// (footfall summaries); keyed like `Outbox`.
    OutboxDroppable,
    /// Events HQ refused (a 4xx other than 408/429), parked until an
    /// operator retries them; keyed like `Outbox`.
    DeadLetter,
    /// Devices seen on the LAN, keyed by MAC (6 bytes).
    Devices,
    /// Presence state that is not per device (visits, footfall), by name.
    Presence,
    /// Member records (bindings, consents), keyed by member id. Never a
    /// phone number: only its keyed hash (the id) and its last 4 digits.
    Members,
}

impl Tree {
    /// Every tree.
    pub const ALL: [Tree; 8] = [
        Tree::Clients,
        Tree::Meta,
        Tree::Outbox,
        Tree::OutboxDroppable,
        Tree::DeadLetter,
        Tree::Devices,
        Tree::Presence,
        Tree::Members,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Tree::Clients => "clients",
            Tree::Meta => "meta",
            Tree::Outbox => "outbox",
            Tree::OutboxDroppable => "outbox_droppable",
            Tree::DeadLetter => "dead_letter",
            Tree::Devices => "devices",
            Tree::Presence => "presence",
            Tree::Members => "members",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "cannot open the state database at {path}: {reason} (is another storegate running on it?)"
    )]
    Open { path: String, reason: String },
    #[error("state database: {0}")]
    Backend(String),
    #[error("a value for tree {tree} is {size} bytes, over the {max}-byte cap")]
    TooLarge {
        tree: &'static str,
        size: usize,
        max: usize,
    },
    #[error("a record in tree {tree} is corrupt: {reason}")]
    Corrupt { tree: &'static str, reason: String },
}

/// A tree's entries as (key, value) pairs.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// Durable key-value storage.
pub trait Store: Send + Sync {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    fn put(&self, tree: Tree, key: &[u8], value: &[u8]) -> Result<(), StoreError>;
    fn remove(&self, tree: Tree, key: &[u8]) -> Result<(), StoreError>;
    /// Several puts (`Some`) and removes (`None`) at once: one transaction
    /// where the backend has them, so a save of many records is cheap.
    fn write_batch(&self, changes: Vec<Change>) -> Result<(), StoreError> {
        for (tree, key, value) in changes {
            match value {
                Some(v) => self.put(tree, &key, &v)?,
                None => self.remove(tree, &key)?,
            }
        }
        Ok(())
    }
    /// Every entry of a tree, in key order.
    fn scan(&self, tree: Tree) -> Result<Entries, StoreError>;
    /// The last `n` entries of a tree, in key order.
    fn last(&self, tree: Tree, n: usize) -> Result<Entries, StoreError>;
    /// The first `n` entries of a tree, in key order.
    fn first(&self, tree: Tree, n: usize) -> Result<Entries, StoreError>;
    /// How many entries a tree holds.
    fn count(&self, tree: Tree) -> Result<usize, StoreError>;
    /// Returns once everything written so far is on disk.
    fn flush(&self) -> Result<(), StoreError>;
}

fn check_size(tree: Tree, value: &[u8]) -> Result<(), StoreError> {
    let max = match tree {
        Tree::Presence => MAX_PRESENCE_BYTES,
        _ => MAX_VALUE_BYTES,
    };
    if value.len() > max {
        return Err(StoreError::TooLarge {
            tree: tree.name(),
            size: value.len(),
            max,
        });
    }
    Ok(())
}

/// Stores `value` as JSON.
pub fn put_json<T: Serialize>(
    store: &dyn Store,
    tree: Tree,
    key: &[u8],
    value: &T,
) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(value).map_err(|e| StoreError::Backend(e.to_string()))?;
    store.put(tree, key, &bytes)
}

/// Reads every record of a tree as JSON. Corrupt records are returned as
/// errors beside the good ones, so one bad record loses nothing else.
pub fn scan_json<T: DeserializeOwned>(
    store: &dyn Store,
    tree: Tree,
) -> Result<Vec<Result<T, StoreError>>, StoreError> {
    Ok(store
        .scan(tree)?
        .into_iter()
        .map(|(_, v)| {
            serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt {
                tree: tree.name(),
                reason: e.to_string(),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The behaviour every backend must share.
    pub(crate) fn exercise(store: &dyn Store) {
        assert_eq!(store.get(Tree::Clients, b"k1").unwrap(), None);
        store.put(Tree::Clients, b"k2", b"two").unwrap();
        store.put(Tree::Clients, b"k1", b"one").unwrap();
        store.put(Tree::Meta, b"k1", b"meta").unwrap();
        assert_eq!(
            store.get(Tree::Clients, b"k1").unwrap().as_deref(),
            Some(&b"one"[..])
        );
        let keys: Vec<Vec<u8>> = store
            .scan(Tree::Clients)
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, vec![b"k1".to_vec(), b"k2".to_vec()]);
        store.remove(Tree::Clients, b"k1").unwrap();
        store.remove(Tree::Clients, b"absent").unwrap();
        assert_eq!(store.get(Tree::Clients, b"k1").unwrap(), None);
        assert_eq!(
            store.get(Tree::Meta, b"k1").unwrap().as_deref(),
            Some(&b"meta"[..])
        );
        let big = vec![0u8; MAX_VALUE_BYTES + 1];
        assert!(matches!(
            store.put(Tree::Meta, b"big", &big),
            Err(StoreError::TooLarge { .. })
        ));
        store.flush().unwrap();
    }

    #[test]
    fn memory_store_behaves() {
        exercise(&MemoryStore::new());
    }

    #[test]
    fn redb_store_behaves_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = RedbStore::open(dir.path()).unwrap();
            exercise(&store);
            store
                .write_batch(vec![
                    (Tree::Devices, b"d1".to_vec(), Some(b"one".to_vec())),
                    (Tree::Devices, b"d2".to_vec(), Some(b"two".to_vec())),
                    (Tree::Clients, b"k2".to_vec(), Some(b"two".to_vec())),
                ])
                .unwrap();
            store
                .write_batch(vec![(Tree::Devices, b"d1".to_vec(), None)])
                .unwrap();
            assert_eq!(store.count(Tree::Devices).unwrap(), 1);
            assert_eq!(store.first(Tree::Devices, 5).unwrap().len(), 1);
            assert_eq!(store.last(Tree::Clients, 1).unwrap()[0].0, b"k2".to_vec());
            store.flush().unwrap();
        }
        let store = RedbStore::open(dir.path()).unwrap();
        assert_eq!(
            store.get(Tree::Clients, b"k2").unwrap().as_deref(),
            Some(&b"two"[..])
        );
        assert_eq!(
            store.scan(Tree::Devices).unwrap(),
            vec![(b"d2".to_vec(), b"two".to_vec())]
        );
        // A second store on the same state is refused with a clear error.
        let err = RedbStore::open(dir.path()).err().expect("locked");
        assert!(err.to_string().contains("another storegate"), "{err}");
    }

    #[test]
    fn scan_json_keeps_good_records_beside_corrupt_ones() {
        let store = MemoryStore::new();
        put_json(&store, Tree::Clients, b"a", &42u32).unwrap();
        store.put(Tree::Clients, b"b", b"{not json").unwrap();
        let got = scan_json::<u32>(&store, Tree::Clients).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(*got[0].as_ref().unwrap(), 42);
        assert!(matches!(got[1], Err(StoreError::Corrupt { .. })));
    }
}
