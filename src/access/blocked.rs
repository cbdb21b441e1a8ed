//! Devices the store manager blocked on the dashboard: a MAC set kept in
//! the store's `Meta` tree, read by the portal before every sign-in.
//! (HQ's own block list is by `device_id`, in the sync document.)

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

use crate::net::MacAddr;
use crate::store::{Store, StoreError, Tree};

/// Where the set is kept (`Meta` tree).
const KEY: &[u8] = b"dashboard.blocked_macs";
/// Most MACs kept: ~20 bytes of JSON each, well inside the store's
/// per-value cap.
pub const MAX_BLOCKED: usize = 2000;

#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    #[error("at most {MAX_BLOCKED} devices can be blocked; unblock some first")]
    Full,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The blocked-MAC set; without a store (tests, the portal's default) it
/// lives in memory only.
#[derive(Default)]
pub struct BlockedMacs {
    set: RwLock<BTreeSet<MacAddr>>,
    store: Option<Arc<dyn Store>>,
}

impl BlockedMacs {
    pub fn empty() -> Self {
        Self::default()
    }

    /// The saved set; an unreadable record is logged and taken as empty.
    pub fn load(store: Arc<dyn Store>) -> Self {
        let set = match store.get(Tree::Meta, KEY) {
            Ok(Some(bytes)) => serde_json::from_slice::<Vec<MacAddr>>(&bytes)
                .map_err(|e| tracing::warn!("blocked devices unreadable, none blocked: {e}"))
                .unwrap_or_default(),
            Ok(None) => Vec::new(),
            Err(e) => {
                tracing::warn!("blocked devices unreadable, none blocked: {e}");
                Vec::new()
            }
        };
        BlockedMacs {
            set: RwLock::new(set.into_iter().take(MAX_BLOCKED).collect()),
            store: Some(store),
        }
    }

    pub fn contains(&self, mac: MacAddr) -> bool {
        self.set
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&mac)
    }

    pub fn list(&self) -> Vec<MacAddr> {
        let set = self.set.read().unwrap_or_else(|e| e.into_inner());
        set.iter().copied().collect()
    }

    /// Blocks or unblocks `mac`, durably (flushed) before it returns.
    /// Returns whether anything changed.
    pub fn set(&self, mac: MacAddr, blocked: bool) -> Result<bool, BlockError> {
        let mut set = self.set.write().unwrap_or_else(|e| e.into_inner());
        if set.contains(&mac) == blocked {
            return Ok(false);
        }
        if blocked && set.len() >= MAX_BLOCKED {
            return Err(BlockError::Full);
        }
        let mut next = set.clone();
        if blocked {
            next.insert(mac);
        } else {
            next.remove(&mac);
        }
        if let Some(store) = &self.store {
            let list: Vec<MacAddr> = next.iter().copied().collect();
            let bytes =
                serde_json::to_vec(&list).map_err(|e| StoreError::Backend(e.to_string()))?;
            store.put(Tree::Meta, KEY, &bytes)?;
            store.flush()?;
        }
        *set = next;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[test]
    fn blocks_persist_across_loads() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let mac = MacAddr([2, 0, 0, 0, 0, 9]);
        let b = BlockedMacs::load(store.clone());
        assert!(b.set(mac, true).unwrap());
        assert!(!b.set(mac, true).unwrap());
        assert!(BlockedMacs::load(store.clone()).contains(mac));
        assert!(b.set(mac, false).unwrap());
        assert!(!BlockedMacs::load(store).contains(mac));
    }
}
