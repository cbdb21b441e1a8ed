//! The durable outbox: every event gets the store's next sequence number
//! and is on disk before `append` returns, so a producer that was told
//! "stored" can never lose the event to a crash.
//!
//! Flush policy: group commit. An append writes its events under the
//! outbox lock, lets go of it, and then makes sure a flush (fsync) that
//! started after its write has finished. Appenders that arrive while a
//! flush is running share the next one, so many producers pay for one
//! fsync between them instead of one each. The sequence counter is kept
//! in `Meta` and written in the same flush; on open it is also checked
//! against the last key, so a crash between the two can never reuse a
//! number.
//!
//! Bounded: past `max_events` queued events the oldest droppable ones
//! (footfall summaries, kept in their own tree) go first, then the oldest
//! of the rest; one `outbox.gap` event, which is never dropped before
//! anything else, tells HQ which sequence numbers it will not see. Events
//! are dropped in chunks (a hundredth of the cap, at most
//! [`MAX_DROP_CHUNK`]), so a full outbox costs one gap event per chunk,
//! not one per event.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::store::{Store, StoreError, Tree};
use crate::time::Timestamp;

use super::CloudEvent;
use super::event::{FOOTFALL_SUMMARY, OUTBOX_GAP};

const NEXT_SEQ: &[u8] = b"outbox.next_seq";
const DROPPED: &[u8] = b"outbox.dropped";

/// The default cap on queued events: days of a busy store's events with
/// HQ away, and a few hundred MB of flash at most.
pub const DEFAULT_MAX_EVENTS: usize = 200_000;
/// The most events dropped at once.
pub const MAX_DROP_CHUNK: usize = 1_000;
/// A gap event with this many ranges is not folded into the next one
/// (it stays well under the store's value cap).
const MAX_GAP_RANGES: usize = 1_000;

pub struct Outbox {
    store: Arc<dyn Store>,
    store_id: String,
    /// The next sequence number and the counts; the lock also orders
    /// appends.
    state: Mutex<State>,
    /// The highest sequence number known to be on disk (group commit).
    durable: Mutex<u64>,
    /// Wakes the delivery task when events are appended.
    appended: tokio::sync::Notify,
}

struct State {
    next: u64,
    /// Events waiting, in both trees.
    queued: usize,
    /// Of those, how many are droppable.
    droppable: usize,
    max_events: usize,
    /// Events dropped for room, ever (kept in `Meta`).
    dropped: u64,
    /// The last gap event, while it may still be waiting (in memory only:
    /// after a restart the next drop starts a new one).
    gap: Option<Gap>,
}

/// What one `outbox.gap` event says.
#[derive(Debug, Default)]
struct Gap {
    /// The gap event's own number.
    seq: u64,
    /// Sequence numbers HQ will not see, as sorted `[first, last]` ranges.
    ranges: Vec<[u64; 2]>,
    count: u64,
    types: BTreeMap<String, u64>,
}

impl Gap {
    fn add(&mut self, seq: u64, ty: &str) {
        self.count += 1;
        *self.types.entry(ty.to_string()).or_default() += 1;
        let at = self.ranges.partition_point(|r| r[1] < seq);
        if at < self.ranges.len() && self.ranges[at][0] <= seq {
            return; // already listed
        }
        self.ranges.insert(at, [seq, seq]);
        // Merge with the neighbours where they touch.
        if at + 1 < self.ranges.len() && self.ranges[at + 1][0] == seq + 1 {
            self.ranges[at][1] = self.ranges[at + 1][1];
            self.ranges.remove(at + 1);
        }
        if at > 0 && self.ranges[at - 1][1] + 1 == seq {
            self.ranges[at - 1][1] = self.ranges[at][1];
            self.ranges.remove(at);
        }
    }
}

/// What `ctl status` and the metrics show of the outbox.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OutboxStats {
    pub queued: usize,
    pub droppable: usize,
    pub max_events: usize,
    /// Events dropped because the outbox was full, over the box's life.
    pub dropped: u64,
    /// `time` of the oldest waiting event.
    pub oldest: Option<String>,
    pub oldest_age_seconds: Option<u64>,
}

/// Just the parts of a stored event that the outbox reads back.
#[derive(Deserialize)]
struct Head {
    #[serde(rename = "type")]
    ty: String,
    #[serde(default)]
    time: String,
}

fn tree_for(ty: &str) -> Tree {
    if ty == FOOTFALL_SUMMARY {
        Tree::OutboxDroppable
    } else {
        Tree::Outbox
    }
}

fn seq_of(key: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(key).ok().map(u64::from_be_bytes)
}

fn read_u64(store: &dyn Store, key: &[u8]) -> Result<Option<u64>, StoreError> {
    Ok(store
        .get(Tree::Meta, key)?
        .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
        .map(u64::from_be_bytes))
}

impl Outbox {
    /// Opens the outbox with the default cap.
    pub fn open(store: Arc<dyn Store>, store_id: &str) -> Result<Self, StoreError> {
        Self::open_with(store, store_id, DEFAULT_MAX_EVENTS)
    }

    pub fn open_with(
        store: Arc<dyn Store>,
        store_id: &str,
        max_events: usize,
    ) -> Result<Self, StoreError> {
        let saved = read_u64(&*store, NEXT_SEQ)?.unwrap_or(1);
        let mut after_last = 1;
        for tree in [Tree::Outbox, Tree::OutboxDroppable, Tree::DeadLetter] {
            if let Some(seq) = store.last(tree, 1)?.last().and_then(|(k, _)| seq_of(k)) {
                after_last = after_last.max(seq + 1);
            }
        }
        let droppable = store.count(Tree::OutboxDroppable)?;
        let queued = store.count(Tree::Outbox)? + droppable;
        let dropped = read_u64(&*store, DROPPED)?.unwrap_or(0);
        let next = saved.max(after_last);
        Ok(Outbox {
            store,
            store_id: store_id.to_string(),
            state: Mutex::new(State {
                next,
                queued,
                droppable,
                max_events: max_events.max(1),
                dropped,
                gap: None,
            }),
            durable: Mutex::new(next - 1),
            appended: tokio::sync::Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
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
        let mut state = self.lock();
        let first = state.next;
        let mut seq = first;
        let mut droppable = 0;
        let mut out = Vec::with_capacity(items.len());
        let written = (|| {
            for (ty, data) in items {
                let event = CloudEvent::new(&self.store_id, ty, seq, now, data);
                let bytes =
                    serde_json::to_vec(&event).map_err(|e| StoreError::Backend(e.to_string()))?;
                let tree = tree_for(ty);
                // Past this point the number may be on disk: never reuse it.
                seq += 1;
                if tree == Tree::OutboxDroppable {
                    droppable += 1;
                }
                self.store.put(tree, &(seq - 1).to_be_bytes(), &bytes)?;
                out.push(event);
            }
            Ok(())
        })();
        // Whatever happened, numbers that may have reached the disk are used
        // up. Events of a failed call may still surface after a crash; they
        // carry their own ids, and HQ de-duplicates by id.
        state.next = seq;
        state.queued += usize::try_from(seq - first).unwrap_or(0);
        state.droppable += droppable;
        let room = match written {
            Ok(()) => self.make_room(&mut state, now),
            Err(_) => Ok(()),
        };
        let counter = self
            .store
            .put(Tree::Meta, NEXT_SEQ, &state.next.to_be_bytes());
        let upto = state.next - 1;
        drop(state);
        self.appended.notify_one();
        written?;
        room?;
        counter?;
        self.sync(upto)?;
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

    /// Returns once everything up to sequence `upto` is on disk: at once
    /// if a flush that began after it was written has finished, else after
    /// a flush of everything written so far (which it shares with every
    /// appender that wrote before it began).
    fn sync(&self, upto: u64) -> Result<(), StoreError> {
        let mut durable = self.durable.lock().unwrap_or_else(|e| e.into_inner());
        if *durable >= upto {
            return Ok(());
        }
        let target = self.lock().next - 1;
        self.store.flush()?;
        *durable = (*durable).max(target);
        Ok(())
    }

    /// Over the cap: drops the oldest droppable events, then the oldest of
    /// the rest, a chunk at a time, and queues an `outbox.gap` event that
    /// names them. A gap event still waiting from an earlier drop is folded
    /// into the new one, so a long outage leaves one gap event, not a pile
    /// of them crowding out real events. Called with the lock held, before
    /// the flush.
    fn make_room(&self, state: &mut State, now: Timestamp) -> Result<(), StoreError> {
        if state.queued <= state.max_events {
            return Ok(());
        }
        let mut gap = Gap::default();
        if let Some(prev) = state.gap.take() {
            let key = prev.seq.to_be_bytes();
            if prev.ranges.len() < MAX_GAP_RANGES && self.store.get(Tree::Outbox, &key)?.is_some() {
                self.store.remove(Tree::Outbox, &key)?;
                state.queued = state.queued.saturating_sub(1);
                gap = prev;
                // HQ will not see the replaced gap event's number either.
                let seq = gap.seq;
                gap.add(seq, OUTBOX_GAP);
            }
        }
        let chunk = (state.max_events / 100).clamp(1, MAX_DROP_CHUNK);
        // Room for the new gap event too.
        let want = (state.queued + 1)
            .saturating_sub(state.max_events)
            .max(chunk);
        let mut dropped = 0;
        for tree in [Tree::OutboxDroppable, Tree::Outbox] {
            if dropped >= want {
                break;
            }
            for (k, v) in self.store.first(tree, want - dropped)? {
                let Some(seq) = seq_of(&k) else { continue };
                self.store.remove(tree, &k)?;
                state.queued = state.queued.saturating_sub(1);
                if tree == Tree::OutboxDroppable {
                    state.droppable = state.droppable.saturating_sub(1);
                }
                let ty = serde_json::from_slice::<Head>(&v)
                    .map(|h| h.ty)
                    .unwrap_or_else(|_| "unreadable".into());
                gap.add(seq, &ty);
                dropped += 1;
            }
        }
        state.dropped += dropped as u64;
        if dropped > 0 {
            tracing::warn!(
                "outbox full ({} events): dropped the {dropped} oldest (summaries first); \
                 an outbox.gap event tells HQ",
                state.max_events
            );
        }
        if gap.count == 0 {
            return Ok(());
        }
        gap.seq = state.next;
        let data = serde_json::json!({
            "reason": "outbox_full",
            "count": gap.count,
            "ranges": gap.ranges,
            "types": gap.types,
            "max_events": state.max_events,
        });
        let event = CloudEvent::new(&self.store_id, OUTBOX_GAP, gap.seq, now, data);
        let bytes = serde_json::to_vec(&event).map_err(|e| StoreError::Backend(e.to_string()))?;
        state.next += 1;
        self.store
            .put(Tree::Outbox, &gap.seq.to_be_bytes(), &bytes)?;
        state.queued += 1;
        state.gap = Some(gap);
        self.store
            .put(Tree::Meta, DROPPED, &state.dropped.to_be_bytes())
    }

    /// The oldest queued events, at most `max_count` of them and, past the
    /// first, at most `max_bytes` in all: (sequence, the event's JSON).
    pub fn peek(
        &self,
        max_count: usize,
        max_bytes: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let mut merged: Vec<(u64, Vec<u8>)> = Vec::new();
        for tree in [Tree::Outbox, Tree::OutboxDroppable] {
            merged.extend(
                self.store
                    .first(tree, max_count)?
                    .into_iter()
                    .filter_map(|(k, v)| Some((seq_of(&k)?, v))),
            );
        }
        merged.sort_unstable_by_key(|(s, _)| *s);
        let mut out = Vec::new();
        let mut bytes = 0;
        for (seq, v) in merged.into_iter().take(max_count) {
            if !out.is_empty() && bytes + v.len() > max_bytes {
                break;
            }
            bytes += v.len();
            out.push((seq, v));
        }
        Ok(out)
    }

    /// Takes one queued event out of whichever tree holds it; false if
    /// neither does (it was dropped for room meanwhile).
    fn take(&self, state: &mut State, seq: u64) -> Result<bool, StoreError> {
        let key = seq.to_be_bytes();
        for tree in [Tree::Outbox, Tree::OutboxDroppable] {
            if self.store.get(tree, &key)?.is_some() {
                self.store.remove(tree, &key)?;
                state.queued = state.queued.saturating_sub(1);
                if tree == Tree::OutboxDroppable {
                    state.droppable = state.droppable.saturating_sub(1);
                }
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Removes delivered events. Not flushed: should the box die before
    /// sled writes it back, the events are delivered again, which the
    /// at-least-once contract allows (HQ de-duplicates by id).
    pub fn ack(&self, seqs: &[u64]) -> Result<(), StoreError> {
        let mut state = self.lock();
        for seq in seqs {
            self.take(&mut state, *seq)?;
        }
        Ok(())
    }

    /// Moves events HQ refused to the dead-letter tree.
    pub fn park(&self, batch: &[(u64, Vec<u8>)]) -> Result<(), StoreError> {
        let mut state = self.lock();
        for (seq, bytes) in batch {
            self.store
                .put(Tree::DeadLetter, &seq.to_be_bytes(), bytes)?;
            self.take(&mut state, *seq)?;
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
        let mut state = self.lock();
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
        let mut all: Vec<CloudEvent> = Vec::new();
        for tree in [Tree::Outbox, Tree::OutboxDroppable] {
            all.extend(
                self.store
                    .last(tree, n)?
                    .into_iter()
                    .filter_map(|(_, v)| serde_json::from_slice(&v).ok()),
            );
        }
        all.sort_by_key(|e: &CloudEvent| e.sequence_number());
        let skip = all.len().saturating_sub(n);
        Ok(all.split_off(skip))
    }

    /// Events waiting (kept in memory: no scan).
    pub fn len(&self) -> usize {
        self.lock().queued
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counts, and the age of the oldest waiting event.
    pub fn stats(&self, now: Timestamp) -> OutboxStats {
        let (queued, droppable, max_events, dropped) = {
            let s = self.lock();
            (s.queued, s.droppable, s.max_events, s.dropped)
        };
        let oldest = [Tree::Outbox, Tree::OutboxDroppable]
            .into_iter()
            .filter_map(|t| self.store.first(t, 1).ok()?.into_iter().next())
            .filter_map(|(k, v)| Some((seq_of(&k)?, v)))
            .min_by_key(|(s, _)| *s)
            .and_then(|(_, v)| serde_json::from_slice::<Head>(&v).ok())
            .map(|h| h.time);
        let oldest_age_seconds = oldest
            .as_deref()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .map(|t| u64::try_from((now.millis() - t.as_millisecond()).max(0) / 1000).unwrap_or(0));
        OutboxStats {
            queued,
            droppable,
            max_events,
            dropped,
            oldest,
            oldest_age_seconds,
        }
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

    /// Fails every put after the first `ok` ones; counts flushes and makes
    /// each take `flush_takes`, like an fsync.
    struct FailingAfter {
        inner: MemoryStore,
        ok: std::sync::atomic::AtomicUsize,
        flushes: std::sync::atomic::AtomicUsize,
        flush_takes: std::time::Duration,
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
            self.flushes
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            std::thread::sleep(self.flush_takes);
            Ok(())
        }
    }

    #[test]
    fn a_failed_append_never_lets_a_number_be_reused() {
        let store = Arc::new(FailingAfter {
            inner: MemoryStore::new(),
            ok: 1.into(),
            flushes: 0.into(),
            flush_takes: std::time::Duration::ZERO,
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

    fn seqs(outbox: &Outbox) -> Vec<u64> {
        outbox
            .peek(1000, 1 << 24)
            .unwrap()
            .iter()
            .map(|(s, _)| *s)
            .collect()
    }

    #[test]
    fn a_full_outbox_drops_summaries_first_and_says_so_in_a_gap_event() {
        let dir = tempfile::tempdir().unwrap();
        let t = Timestamp(1_800_000_000_000);
        {
            let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
            let outbox = Outbox::open_with(store, "s", 10).unwrap();
            // 1 visit, 2 summary, 3 visit, 4 summary, ... 10 summary.
            for i in 1..=10 {
                let ty = if i % 2 == 0 { FOOTFALL_SUMMARY } else { "v" };
                outbox.append(ty, json!({"i": i}), t).unwrap();
            }
            assert_eq!(outbox.len(), 10);
            assert_eq!(outbox.stats(t).dropped, 0);
            // One over: the two oldest summaries go (one for the event, one
            // for the gap event that names them).
            let e = outbox.append("v", json!({"i": 11}), t).unwrap();
            assert_eq!(e.sequence, "11");
            assert_eq!(outbox.len(), 10);
            assert_eq!(seqs(&outbox), [1, 3, 5, 6, 7, 8, 9, 10, 11, 12]);
            let gap = outbox.recent(1).unwrap().remove(0);
            assert_eq!(gap.ty, OUTBOX_GAP);
            assert_eq!(gap.sequence, "12");
            assert_eq!(gap.data["count"], 2);
            assert_eq!(gap.data["ranges"], json!([[2, 2], [4, 4]]));
            assert_eq!(gap.data["types"][FOOTFALL_SUMMARY], 2);
            let st = outbox.stats(t);
            assert_eq!((st.queued, st.droppable, st.dropped), (10, 3, 2));
        }
        // The counts and the drop total survive a restart.
        let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
        let outbox = Outbox::open_with(store, "s", 10).unwrap();
        let st = outbox.stats(t);
        assert_eq!((st.queued, st.droppable, st.dropped), (10, 3, 2));
        assert_eq!(outbox.append("v", json!({}), t).unwrap().sequence, "13");
    }

    #[test]
    fn with_no_summaries_left_the_oldest_events_go() {
        let outbox = Outbox::open_with(Arc::new(MemoryStore::new()), "s", 4).unwrap();
        let t = Timestamp(1_800_000_000_000);
        outbox
            .append_all((0..4).map(|i| ("v", json!({"i": i}))).collect(), t)
            .unwrap();
        outbox.append("v", json!({}), t).unwrap();
        assert_eq!(seqs(&outbox), [3, 4, 5, 6]);
        let gap = outbox.recent(1).unwrap().remove(0);
        assert_eq!(gap.data["ranges"], json!([[1, 2]]));
        assert_eq!(gap.data["types"]["v"], 2);
    }

    #[test]
    fn acking_an_event_that_was_dropped_meanwhile_keeps_the_count() {
        let outbox = Outbox::open_with(Arc::new(MemoryStore::new()), "s", 3).unwrap();
        let t = Timestamp(1_800_000_000_000);
        outbox
            .append_all((0..3).map(|_| (FOOTFALL_SUMMARY, json!({}))).collect(), t)
            .unwrap();
        let in_flight = outbox.peek(2, 1 << 20).unwrap();
        outbox.append("v", json!({}), t).unwrap(); // drops 1 and 2
        outbox.ack(&[in_flight[0].0, in_flight[1].0]).unwrap();
        assert_eq!(outbox.len(), 3);
        assert_eq!(seqs(&outbox), [3, 4, 5]);
        assert_eq!(outbox.stats(t).droppable, 1);
    }

    #[test]
    fn peek_merges_both_trees_in_sequence_order() {
        let outbox = Outbox::open(Arc::new(MemoryStore::new()), "s").unwrap();
        let t = Timestamp(1_800_000_000_000);
        for ty in ["v", FOOTFALL_SUMMARY, "v", FOOTFALL_SUMMARY, "v"] {
            outbox.append(ty, json!({}), t).unwrap();
        }
        assert_eq!(seqs(&outbox), [1, 2, 3, 4, 5]);
        let three: Vec<u64> = outbox
            .peek(3, 1 << 20)
            .unwrap()
            .iter()
            .map(|(s, _)| *s)
            .collect();
        assert_eq!(three, [1, 2, 3]);
        let later = Timestamp(t.0 + 90_000);
        let st = outbox.stats(later);
        assert_eq!(st.oldest_age_seconds, Some(90));
        outbox.ack(&[1, 2, 3, 4, 5]).unwrap();
        assert!(outbox.is_empty());
        assert_eq!(outbox.stats(later).oldest, None);
    }

    #[test]
    fn concurrent_appenders_share_flushes() {
        let store = Arc::new(FailingAfter {
            inner: MemoryStore::new(),
            ok: usize::MAX.into(),
            flushes: 0.into(),
            flush_takes: std::time::Duration::from_millis(2),
        });
        let outbox = Arc::new(Outbox::open(store.clone(), "s").unwrap());
        let t = Timestamp(1_800_000_000_000);
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let o = outbox.clone();
                std::thread::spawn(move || {
                    (0..25)
                        .map(|_| {
                            o.append("v", json!({}), t)
                                .unwrap()
                                .sequence_number()
                                .unwrap()
                        })
                        .collect::<Vec<u64>>()
                })
            })
            .collect();
        let mut all: Vec<u64> = threads
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        all.sort_unstable();
        assert_eq!(all, (1..=200).collect::<Vec<u64>>());
        let flushes = store.flushes.load(std::sync::atomic::Ordering::SeqCst);
        assert!(
            flushes < 150,
            "200 appends from 8 threads took {flushes} flushes: no group commit"
        );
    }

    #[test]
    fn a_waiting_gap_event_is_folded_into_the_next_so_real_events_stay() {
        let outbox = Outbox::open_with(Arc::new(MemoryStore::new()), "s", 10).unwrap();
        let t = Timestamp(1_800_000_000_000);
        outbox
            .append_all((0..3).map(|_| (FOOTFALL_SUMMARY, json!({}))).collect(), t)
            .unwrap();
        outbox
            .append_all((0..8).map(|i| ("v", json!({"i": i}))).collect(), t)
            .unwrap();
        // HQ away; a summary every so often keeps the outbox full.
        for _ in 0..20 {
            outbox.append(FOOTFALL_SUMMARY, json!({}), t).unwrap();
        }
        let queued = outbox.recent(100).unwrap();
        assert_eq!(queued.len(), 10);
        let kept: Vec<&str> = queued.iter().map(|e| e.ty.as_str()).collect();
        assert_eq!(kept.iter().filter(|t| **t == "v").count(), 8, "{kept:?}");
        assert_eq!(
            kept.iter().filter(|t| **t == OUTBOX_GAP).count(),
            1,
            "{kept:?}"
        );
        let gap = queued.iter().find(|e| e.ty == OUTBOX_GAP).unwrap();
        // Every number HQ will not see is in the one gap event: all 22
        // summaries but the newest, and the gap events it replaced.
        let seen: std::collections::BTreeSet<u64> =
            queued.iter().filter_map(|e| e.sequence_number()).collect();
        let last = gap.sequence_number().unwrap();
        let mut listed = std::collections::BTreeSet::new();
        for r in gap.data["ranges"].as_array().unwrap() {
            for s in r[0].as_u64().unwrap()..=r[1].as_u64().unwrap() {
                listed.insert(s);
            }
        }
        let all: std::collections::BTreeSet<u64> = (1..=last).collect();
        let missing: std::collections::BTreeSet<u64> = all.difference(&seen).copied().collect();
        assert_eq!(listed, missing, "{}", gap.data);
        assert_eq!(gap.data["types"][FOOTFALL_SUMMARY], 22);
        assert_eq!(outbox.stats(t).dropped, 22);
    }

    #[test]
    fn gap_ranges_stay_sorted_merged_and_exact() {
        let mut gap = Gap::default();
        let mut expect = std::collections::BTreeSet::new();
        // A fixed shuffle of 0..200 with repeats.
        let mut x: u64 = 7;
        for _ in 0..400 {
            x = (x * 73 + 19) % 211;
            if x < 200 {
                gap.add(x, "t");
                expect.insert(x);
            }
        }
        let mut got = std::collections::BTreeSet::new();
        for w in gap.ranges.windows(2) {
            assert!(
                w[0][1] + 1 < w[1][0],
                "unmerged or unsorted: {:?}",
                gap.ranges
            );
        }
        for r in &gap.ranges {
            got.extend(r[0]..=r[1]);
        }
        assert_eq!(got, expect);
    }
}
