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
//! Bounded: the cap, `max_events`, counts queued events and dead letters
//! (events HQ refused, parked for an operator) together, so neither a long
//! outage nor an HQ that refuses everything can fill the flash. Past it,
//! events go in this order, oldest first within each:
//!
//! 1. footfall summaries (kept in their own tree): counts HQ can also
//!    draw from the visit events, so dropping one loses least;
//! 2. dead letters: HQ has already refused them once, and they go out
//!    again only if an operator asks (`ctl dead-letters --retry`), so they
//!    are less likely to reach HQ than anything still queued;
//! 3. the rest of the queue, which delivery is still working through.
//!
//! One `outbox.gap` event, which is never dropped before anything else,
//! tells HQ which sequence numbers it will not see (dead letters dropped
//! are named there too). Events are dropped in chunks (a hundredth of the
//! cap, at most [`MAX_DROP_CHUNK`]), so a full outbox costs one gap event
//! per chunk, not one per event.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::store::{Store, StoreError, Tree};
use crate::time::Timestamp;

use super::CloudEvent;
use super::event::{FOOTFALL_SUMMARY, OUTBOX_GAP};

const NEXT_SEQ: &[u8] = b"outbox.next_seq";
const DROPPED: &[u8] = b"outbox.dropped";

/// The default cap on queued events: the config's default for
/// `storage.outbox_max_events` (the config owns it, and needs nothing
/// from here).
pub const DEFAULT_MAX_EVENTS: usize = crate::config::DEFAULT_OUTBOX_MAX_EVENTS;
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
    /// Events waiting, in both queue trees.
    queued: usize,
    /// Of those, how many are droppable.
    droppable: usize,
    /// Events parked in the dead-letter tree (they count toward the cap).
    dead: usize,
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
    /// Of `count`, how many were dead letters (refused by HQ earlier).
    dead_letters: u64,
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
    /// Events waiting for delivery (dead letters not included).
    pub queued: usize,
    pub droppable: usize,
    /// Events HQ refused, parked (`ctl dead-letters`); they count toward
    /// `max_events` with `queued`.
    pub dead_letters: usize,
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

/// Where room is made first when the outbox is full (see the module's
/// header for why in this order).
const DROP_ORDER: [Tree; 3] = [Tree::OutboxDroppable, Tree::DeadLetter, Tree::Outbox];

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
        let dead = store.count(Tree::DeadLetter)?;
        let dropped = read_u64(&*store, DROPPED)?.unwrap_or(0);
        let next = saved.max(after_last);
        Ok(Outbox {
            store,
            store_id: store_id.to_string(),
            state: Mutex::new(State {
                next,
                queued,
                droppable,
                dead,
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

    /// Over the cap (queued events and dead letters together): drops the
    /// oldest droppable events, then the oldest dead letters, then the
    /// oldest of the rest, a chunk at a time, and queues an `outbox.gap`
    /// event that names them. A gap event still waiting from an earlier
    /// drop is folded into the new one, so a long outage leaves one gap
    /// event, not a pile of them crowding out real events. Called with the
    /// lock held, before the flush.
    fn make_room(&self, state: &mut State, now: Timestamp) -> Result<(), StoreError> {
        if state.queued + state.dead <= state.max_events {
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
        let want = (state.queued + state.dead + 1)
            .saturating_sub(state.max_events)
            .max(chunk);
        // How many went from each tree, in the order they go.
        let mut from = [0usize; 3];
        for (i, tree) in DROP_ORDER.into_iter().enumerate() {
            let dropped: usize = from.iter().sum();
            if dropped >= want {
                break;
            }
            for (k, v) in self.store.first(tree, want - dropped)? {
                let Some(seq) = seq_of(&k) else { continue };
                self.store.remove(tree, &k)?;
                match tree {
                    Tree::DeadLetter => state.dead = state.dead.saturating_sub(1),
                    Tree::OutboxDroppable => {
                        state.queued = state.queued.saturating_sub(1);
                        state.droppable = state.droppable.saturating_sub(1);
                    }
                    _ => state.queued = state.queued.saturating_sub(1),
                }
                let ty = serde_json::from_slice::<Head>(&v)
                    .map(|h| h.ty)
                    .unwrap_or_else(|_| "unreadable".into());
                gap.add(seq, &ty);
                if tree == Tree::DeadLetter {
                    gap.dead_letters += 1;
                }
                from[i] += 1;
            }
        }
        let dropped: usize = from.iter().sum();
        state.dropped += dropped as u64;
        if dropped > 0 {
            let [summaries, dead, live] = from;
            tracing::warn!(
                "outbox full ({} events, dead letters included): dropped the oldest {dropped} \
                 ({summaries} footfall summaries, {dead} dead letters, {live} queued events); \
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
            "dead_letters": gap.dead_letters,
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

    /// The queue tree that holds event `seq`, if any (none: it was
    /// delivered, parked, or dropped for room meanwhile).
    fn queued_in(&self, seq: u64) -> Result<Option<Tree>, StoreError> {
        let key = seq.to_be_bytes();
        for tree in [Tree::Outbox, Tree::OutboxDroppable] {
            if self.store.get(tree, &key)?.is_some() {
                return Ok(Some(tree));
            }
        }
        Ok(None)
    }

    /// Takes one queued event out of whichever tree holds it; false if
    /// neither does (it was dropped for room meanwhile).
    fn take(&self, state: &mut State, seq: u64) -> Result<bool, StoreError> {
        let Some(tree) = self.queued_in(seq)? else {
            return Ok(false);
        };
        self.store.remove(tree, &seq.to_be_bytes())?;
        state.queued = state.queued.saturating_sub(1);
        if tree == Tree::OutboxDroppable {
            state.droppable = state.droppable.saturating_sub(1);
        }
        Ok(true)
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

    /// Moves events HQ refused to the dead-letter tree. An event dropped
    /// for room while HQ was answering stays dropped: a gap event already
    /// names it. The total against the cap does not change.
    pub fn park(&self, batch: &[(u64, Vec<u8>)]) -> Result<(), StoreError> {
        let mut state = self.lock();
        for (seq, bytes) in batch {
            if self.queued_in(*seq)?.is_none() {
                continue;
            }
            // Written before it leaves the queue: a crash in between leaves
            // it in both, never in neither.
            self.store
                .put(Tree::DeadLetter, &seq.to_be_bytes(), bytes)?;
            self.take(&mut state, *seq)?;
            state.dead += 1;
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
    /// number (so it goes out before anything newer) and in the tree its
    /// type belongs to. Returns how many.
    pub fn retry_dead_letters(&self) -> Result<usize, StoreError> {
        let mut state = self.lock();
        let parked = self.store.scan(Tree::DeadLetter)?;
        for (k, v) in &parked {
            let tree = serde_json::from_slice::<Head>(v).map_or(Tree::Outbox, |h| tree_for(&h.ty));
            self.store.put(tree, k, v)?;
            self.store.remove(Tree::DeadLetter, k)?;
            state.queued += 1;
            state.dead = state.dead.saturating_sub(1);
            if tree == Tree::OutboxDroppable {
                state.droppable += 1;
            }
        }
        self.store.flush()?;
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
        let (queued, droppable, dead_letters, max_events, dropped) = {
            let s = self.lock();
            (s.queued, s.droppable, s.dead, s.max_events, s.dropped)
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
            dead_letters,
            max_events,
            dropped,
            oldest,
            oldest_age_seconds,
        }
    }
}

#[cfg(test)]
mod tests;
