//! `MemoryStore`: the `Store` for tests and the demo; nothing survives.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use super::{Entries, Store, StoreError, Tree, check_size};

type Trees = HashMap<Tree, BTreeMap<Vec<u8>, Vec<u8>>>;

#[derive(Default)]
pub struct MemoryStore {
    trees: Mutex<Trees>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut Trees) -> R) -> R {
        f(&mut self.trees.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Store for MemoryStore {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.with(|t| t.get(&tree).and_then(|m| m.get(key).cloned())))
    }

    fn put(&self, tree: Tree, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        check_size(tree, value)?;
        self.with(|t| {
            t.entry(tree)
                .or_default()
                .insert(key.to_vec(), value.to_vec())
        });
        Ok(())
    }

    fn remove(&self, tree: Tree, key: &[u8]) -> Result<(), StoreError> {
        self.with(|t| t.get_mut(&tree).and_then(|m| m.remove(key)));
        Ok(())
    }

    fn scan(&self, tree: Tree) -> Result<Entries, StoreError> {
        Ok(self.with(|t| {
            t.get(&tree)
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default()
        }))
    }

    fn last(&self, tree: Tree, n: usize) -> Result<Entries, StoreError> {
        Ok(self.with(|t| {
            let mut v: Entries = t
                .get(&tree)
                .map(|m| {
                    m.iter()
                        .rev()
                        .take(n)
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .unwrap_or_default();
            v.reverse();
            v
        }))
    }

    fn first(&self, tree: Tree, n: usize) -> Result<Entries, StoreError> {
        Ok(self.with(|t| {
            t.get(&tree)
                .map(|m| {
                    m.iter()
                        .take(n)
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .unwrap_or_default()
        }))
    }

    fn count(&self, tree: Tree) -> Result<usize, StoreError> {
        Ok(self.with(|t| t.get(&tree).map_or(0, |m| m.len())))
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
