//! The one rule for "is this device blocked": by the store manager on
//! the dashboard (a MAC set kept in the store's `Meta` tree) or by HQ (by
//! `device_id`, in the sync document). [`Blocklist`] answers it for the
//! portal (every sign-in) and for presence (returning members are not let
//! in automatically).

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

use crate::mac::MacAddr;
use crate::privacy::DeviceKey;
use crate::store::{Store, StoreError, Tree};
use crate::uplink::sync::SyncState;

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

/// Blocked by the manager or by HQ.
pub struct Blocklist {
    manager: BlockedMacs,
    hq: Arc<SyncState>,
    /// HQ blocks by `device_id`: the keyed hash of the MAC.
    key: DeviceKey,
}

impl Blocklist {
    pub fn new(manager: BlockedMacs, hq: Arc<SyncState>, key: DeviceKey) -> Self {
        Blocklist { manager, hq, key }
    }

    /// Has the store manager or HQ blocked this device?
    pub fn is_blocked(&self, mac: MacAddr) -> bool {
        self.manager.contains(mac) || self.hq.is_blocked(&self.key.device_id(mac))
    }

    /// The manager's own list (what the dashboard shows and changes).
    pub fn manager(&self) -> &BlockedMacs {
        &self.manager
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

    #[test]
    fn the_blocklist_joins_the_manager_and_hq() {
        let key = DeviceKey::from_bytes([1; 32]);
        let list = Blocklist::new(BlockedMacs::empty(), Arc::new(SyncState::empty()), key);
        let mac = MacAddr([2, 0, 0, 0, 0, 9]);
        assert!(!list.is_blocked(mac));
        list.manager().set(mac, true).unwrap();
        assert!(list.is_blocked(mac));
        assert!(!list.is_blocked(MacAddr([2, 0, 0, 0, 0, 8])));
    }
}
