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
    /// Wakes the delivery task when events are appended.
    appended: tokio::sync::Notify,
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
            appended: tokio::sync::Notify::new(),
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
        let first = state.next;
        let mut seq = first;
        let mut out = Vec::with_capacity(items.len());
        let written = (|| {
            for (ty, data) in items {
                let event = CloudEvent::new(&self.store_id, ty, seq, now, data);
                let bytes =
                    serde_json::to_vec(&event).map_err(|e| StoreError::Backend(e.to_string()))?;
                // Past this point the number may be on disk: never reuse it.
                seq += 1;
                self.store
                    .put(Tree::Outbox, &(seq - 1).to_be_bytes(), &bytes)?;
                out.push(event);
            }
            self.store.put(Tree::Meta, NEXT_SEQ, &seq.to_be_bytes())?;
            self.store.flush()
        })();
        // Whatever happened, numbers that may have reached the disk are used
        // up. Events of a failed call may still surface after a crash; they
        // carry their own ids, and HQ de-duplicates by id.
        state.next = seq;
        state.queued += usize::try_from(seq - first).unwrap_or(0);
        drop(state);
        self.appended.notify_one();
        written.map(|()| out)
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

    /// The oldest queued events, at most `max_count` of them and, past the
    /// first, at most `max_bytes` in all: (sequence, the event's JSON).
    pub fn peek(
        &self,
        max_count: usize,
        max_bytes: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        let mut bytes = 0;
        for (k, v) in self.store.first(Tree::Outbox, max_count)? {
            let Ok(k) = <[u8; 8]>::try_from(k.as_slice()) else {
                continue;
            };
            if !out.is_empty() && bytes + v.len() > max_bytes {
                break;
            }
            bytes += v.len();
            out.push((u64::from_be_bytes(k), v));
        }
        Ok(out)
    }

    /// Removes delivered events. Not flushed: should the box die before
    /// sled writes it back, the events are delivered again, which the
    /// at-least-once contract allows (HQ de-duplicates by id).
    pub fn ack(&self, seqs: &[u64]) -> Result<(), StoreError> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        for seq in seqs {
            self.store.remove(Tree::Outbox, &seq.to_be_bytes())?;
            state.queued = state.queued.saturating_sub(1);
        }
        Ok(())
    }

    /// Moves events HQ refused to the dead-letter tree.
    pub fn park(&self, batch: &[(u64, Vec<u8>)]) -> Result<(), StoreError> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        for (seq, bytes) in batch {
            self.store
                .put(Tree::DeadLetter, &seq.to_be_bytes(), bytes)?;
            self.store.remove(Tree::Outbox, &seq.to_be_bytes())?;
            state.queued = state.queued.saturating_sub(1);
        }
        self.store.flush()
    }

    /// Parked events, oldest first (at most `n`).
    pub fn dead_letters(&self, n: usize) -> Result<Vec<CloudEvent>, StoreError> {
        Ok(self
            .store
            .first(Tree::DeadLetter, n)?
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_slice(&v).ok())
            .collect())
    }

    /// Puts every parked event back in the queue, under its own sequence
    /// number (so it goes out before anything newer). Returns how many.
    pub fn retry_dead_letters(&self) -> Result<usize, StoreError> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let parked = self.store.scan(Tree::DeadLetter)?;
        for (k, v) in &parked {
            self.store.put(Tree::Outbox, k, v)?;
            self.store.remove(Tree::DeadLetter, k)?;
        }
        self.store.flush()?;
        state.queued += parked.len();
        drop(state);
        self.appended.notify_one();
        Ok(parked.len())
    }

    /// Waits until something is appended (or returns at once if it was
    /// since the last wait).
    pub async fn wait_for_events(&self) {
        self.appended.notified().await;
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

    /// Fails every put after the first `ok` ones.
    struct FailingAfter {
        inner: MemoryStore,
        ok: std::sync::atomic::AtomicUsize,
    }

    impl Store for FailingAfter {
        fn get(&self, t: Tree, k: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
            self.inner.get(t, k)
        }
        fn put(&self, t: Tree, k: &[u8], v: &[u8]) -> Result<(), StoreError> {
            let left = self.ok.load(std::sync::atomic::Ordering::SeqCst);
            if left == 0 {
                return Err(StoreError::Backend("disk full for the test".into()));
            }
            self.ok.store(left - 1, std::sync::atomic::Ordering::SeqCst);
            self.inner.put(t, k, v)
        }
        fn remove(&self, t: Tree, k: &[u8]) -> Result<(), StoreError> {
            self.inner.remove(t, k)
        }
        fn scan(&self, t: Tree) -> Result<crate::store::Entries, StoreError> {
            self.inner.scan(t)
        }
        fn last(&self, t: Tree, n: usize) -> Result<crate::store::Entries, StoreError> {
            self.inner.last(t, n)
        }
        fn first(&self, t: Tree, n: usize) -> Result<crate::store::Entries, StoreError> {
            self.inner.first(t, n)
        }
        fn count(&self, t: Tree) -> Result<usize, StoreError> {
            self.inner.count(t)
        }
        fn flush(&self) -> Result<(), StoreError> {
            Ok(())
        }
    }

    #[test]
    fn a_failed_append_never_lets_a_number_be_reused() {
        let store = Arc::new(FailingAfter {
            inner: MemoryStore::new(),
            ok: 1.into(),
        });
        let outbox = Outbox::open(store.clone(), "s").unwrap();
        let t = Timestamp(1_800_000_000_000);
        // The first event is written, the second fails.
        assert!(
            outbox
                .append_all(vec![("a", json!(1)), ("b", json!(2))], t)
                .is_err()
        );
        store.ok.store(100, std::sync::atomic::Ordering::SeqCst);
        let c = outbox.append("c", json!(3), t).unwrap();
        assert_eq!(
            c.sequence, "3",
            "1 is on disk and 2 may be: neither is reused"
        );
    }

    #[test]
    fn peek_is_oldest_first_and_bounded_and_ack_removes() {
        let outbox = Outbox::open(Arc::new(MemoryStore::new()), "s").unwrap();
        let t = Timestamp(1_800_000_000_000);
        outbox
            .append_all((0..5).map(|i| ("t", json!({"i": i}))).collect(), t)
            .unwrap();
        let two = outbox.peek(2, 1 << 20).unwrap();
        assert_eq!(two.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [1, 2]);
        let one = outbox.peek(5, 1).unwrap();
        assert_eq!(
            one.len(),
            1,
            "the first event always goes, even over the byte cap"
        );
        outbox.ack(&[1, 2]).unwrap();
        assert_eq!(outbox.len(), 3);
        assert_eq!(outbox.peek(10, 1 << 20).unwrap()[0].0, 3);
    }

    #[test]
    fn refused_events_are_parked_and_can_be_retried() {
        let outbox = Outbox::open(Arc::new(MemoryStore::new()), "s").unwrap();
        let t = Timestamp(1_800_000_000_000);
        outbox
            .append_all((0..3).map(|i| ("t", json!({"i": i}))).collect(), t)
            .unwrap();
        let batch = outbox.peek(2, 1 << 20).unwrap();
        outbox.park(&batch).unwrap();
        assert_eq!(outbox.len(), 1);
        assert_eq!(outbox.peek(10, 1 << 20).unwrap()[0].0, 3);
        assert_eq!(outbox.dead_letters(10).unwrap().len(), 2);
        assert_eq!(outbox.retry_dead_letters().unwrap(), 2);
        assert_eq!(outbox.len(), 3);
        assert!(outbox.dead_letters(10).unwrap().is_empty());
        let seqs: Vec<u64> = outbox
            .peek(10, 1 << 20)
            .unwrap()
            .iter()
            .map(|(s, _)| *s)
            .collect();
        assert_eq!(seqs, [1, 2, 3], "retried events go out first, in order");
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
