//! The durable outbox: every event gets the store's next sequence number
//! and is on disk before `append` returns, so a producer that was told
//! "stored" can never lose the event to a crash.
//!
//! Flush policy (for now): one fsync per `append_all` call. Callers that
//! produce several events at once pass them together and pay one flush.
//! The sequence counter is kept in `Meta` and written in the same flush;
//! on open it is also checked against the last key, so a crash between
//! the two can never reuse a number.

use std::sync::{Arc, Mutex};

use crate::store::{Store, StoreError, Tree};
use crate::time::Timestamp;

use super::CloudEvent;

const NEXT_SEQ: &[u8] = b"outbox.next_seq";

pub struct Outbox {
    store: Arc<dyn Store>,
    store_id: String,
    /// The next sequence number and how many events are queued; the lock
    /// also orders appends.
    state: Mutex<State>,
}

struct State {
    next: u64,
    queued: usize,
}

impl Outbox {
    pub fn open(store: Arc<dyn Store>, store_id: &str) -> Result<Self, StoreError> {
        let saved = store
            .get(Tree::Meta, NEXT_SEQ)?
            .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(1);
        let after_last = store
            .last(Tree::Outbox, 1)?
            .last()
            .and_then(|(k, _)| <[u8; 8]>::try_from(k.as_slice()).ok())
            .map(|k| u64::from_be_bytes(k) + 1)
            .unwrap_or(1);
        let queued = store.count(Tree::Outbox)?;
        Ok(Outbox {
            store,
            store_id: store_id.to_string(),
            state: Mutex::new(State {
                next: saved.max(after_last),
                queued,
            }),
        })
    }

    /// Stores events durably, in order; returns them with their numbers.
    pub fn append_all(
        &self,
        items: Vec<(&str, serde_json::Value)>,
        now: Timestamp,
    ) -> Result<Vec<CloudEvent>, StoreError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut seq = state.next;
        let mut out = Vec::with_capacity(items.len());
        for (ty, data) in items {
            let event = CloudEvent::new(&self.store_id, ty, seq, now, data);
            let bytes =
                serde_json::to_vec(&event).map_err(|e| StoreError::Backend(e.to_string()))?;
            self.store.put(Tree::Outbox, &seq.to_be_bytes(), &bytes)?;
            out.push(event);
            seq += 1;
        }
        self.store.put(Tree::Meta, NEXT_SEQ, &seq.to_be_bytes())?;
        self.store.flush()?;
        state.queued += out.len();
        state.next = seq;
        Ok(out)
    }

    pub fn append(
        &self,
        ty: &str,
        data: serde_json::Value,
        now: Timestamp,
    ) -> Result<CloudEvent, StoreError> {
        let mut v = self.append_all(vec![(ty, data)], now)?;
        v.pop()
            .ok_or_else(|| StoreError::Backend("no event appended".into()))
    }

    /// The newest `n` events, oldest first.
    pub fn recent(&self, n: usize) -> Result<Vec<CloudEvent>, StoreError> {
        Ok(self
            .store
            .last(Tree::Outbox, n)?
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_slice(&v).ok())
            .collect())
    }

    /// Events waiting (kept in memory: no scan).
    pub fn len(&self) -> usize {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).queued
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MemoryStore, SledStore};
    use serde_json::json;

    #[test]
    fn sequence_numbers_are_consecutive_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let t = Timestamp(1_800_000_000_000);
        {
            let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
            let outbox = Outbox::open(store, "s-1").unwrap();
            let a = outbox.append("t.a", json!({"n": 1}), t).unwrap();
            let bc = outbox
                .append_all(vec![("t.b", json!({})), ("t.c", json!({}))], t)
                .unwrap();
            assert_eq!(a.sequence, "1");
            assert_eq!(
                bc.iter().map(|e| e.sequence.as_str()).collect::<Vec<_>>(),
                ["2", "3"]
            );
        }
        let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
        let outbox = Outbox::open(store, "s-1").unwrap();
        assert_eq!(outbox.append("t.d", json!({}), t).unwrap().sequence, "4");
        let recent = outbox.recent(2).unwrap();
        assert_eq!(
            recent.iter().map(|e| e.ty.as_str()).collect::<Vec<_>>(),
            ["t.c", "t.d"]
        );
        assert_eq!(recent[0].data, json!({}));
        assert_eq!(outbox.len(), 4);
    }

    #[test]
    fn a_lost_counter_never_reuses_a_number() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let t = Timestamp(1_800_000_000_000);
        Outbox::open(store.clone(), "s")
            .unwrap()
            .append_all(vec![("a", json!(1)), ("b", json!(2))], t)
            .unwrap();
        // As if the box died after the events were written but before the counter was.
        store
            .put(Tree::Meta, NEXT_SEQ, &1u64.to_be_bytes())
            .unwrap();
        let outbox = Outbox::open(store, "s").unwrap();
        assert_eq!(outbox.append("c", json!(3), t).unwrap().sequence, "3");
    }
}
