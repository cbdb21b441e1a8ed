//! The durable outbox: every event gets the store's next sequence number
//! and is on disk before `append` returns, so a producer that was told
//! "stored" can never lose the event to a crash.
//!
//! Storage: an append-only segment log of its own (`log`), in the
//! directory the daemon names (`<storage.path>/outbox`), or in memory
//! for tests and rigs. Memory holds no per-event state: per segment its
//! file and the numbers of its queued events as ranges, plus the numbers
//! of queued footfall summaries; event bodies are read back from the
//! files when they are delivered. Dead letters (rare) stay in the
//! store's `DeadLetter` tree, the drop total in `Meta`. Numbers that are
//! not consecutive cost one range each (about 40 bytes): summaries come
//! minutes apart, so a full outbox holds thousands of ranges, not one
//! per event; only a queue that alternates summaries and other events
//! throughout would come near one range per event.
//!
//! Flush policy: group commit. An append writes its events under the
//! outbox lock, lets go of it, and then makes sure a flush (fdatasync of
//! the segment being appended to) that started after its write has
//! finished. Appenders that arrive while a flush is running share the
//! next one, so many producers pay for one fsync between them instead of
//! one each. Delivery only sees events that are on disk, so HQ never gets
//! a number that a power cut could hand out again.
//!
//! Guarantees across a crash (process killed or power cut):
//!
//! - An event whose append returned is there after the restart, unless
//!   it was delivered or a gap event that is also there names it
//!   (dropped for room).
//! - A number that may have been seen outside the outbox (returned by an
//!   append, or delivered) is never handed out again: the next number
//!   comes from the highest one in the log, and from the header each
//!   segment starts with (the lowest number not yet written then), and
//!   the newest segment is never deleted. Numbers whose events never
//!   reached the file (the process died before the write, or the power
//!   went before the flush) are handed out again, so a crash leaves no
//!   hole; an append that failed with an error uses its numbers up (HQ
//!   sees a hole with no gap event; the event was never reported
//!   stored).
//! - Events dropped for room and the gap event that names them are one
//!   frame of the log: after a crash both are there or neither is.
//! - Acks are written but not flushed: events delivered just before a
//!   crash may be delivered again, which the at-least-once contract
//!   allows (HQ de-duplicates by id). Never the other way round.
//! - Parking writes its intent to the log and flushes it, then the dead
//!   letters (flushed), then takes the events out of the queue; retrying
//!   writes the events back to the log (flushed) before the dead letters
//!   go. On open, the intent and retry records settle a crash in between,
//!   so an event is never both queued and parked, nor neither.
//! - A dead letter dropped for room is named in the gap event's frame
//!   (flushed) before it leaves the store; on open, any such dead letter
//!   still in the store is removed.
//! - A torn tail (a frame cut off at the end of the newest segment) is
//!   truncated on open, with a warning. A damaged frame inside the
//!   newest segment cannot be told from one, so it and what follows go
//!   the same way; damage in an older segment stops the open (and a read
//!   of it stops delivery) with an error naming the file.
//!
//! Bounded: the cap, `max_events`, counts queued events and dead letters
//! (events HQ refused, parked for an operator) together, so neither a long
//! outage nor an HQ that refuses everything can fill the flash. Past it,
//! events go in this order, oldest first within each:
//!
//! 1. footfall summaries: counts HQ can also draw from the visit events,
//!    so dropping one loses least;
//! 2. dead letters: HQ has already refused them once, and they go out
//!    again only if an operator asks (`ctl dead-letters --retry`), so they
//!    are less likely to reach HQ than anything still queued;
//! 3. the rest of the queue, which delivery is still working through.
//!
//! One `outbox.gap` event, which is never dropped before anything else,
//! tells HQ which sequence numbers it will not see (dead letters dropped
//! are named there too). Events are dropped in chunks (a hundredth of the
//! cap, at most [`MAX_DROP_CHUNK`]), so a full outbox costs one gap event
//! per chunk, not one per event. A gap event still waiting is folded into
//! the next one (in memory only: after a restart the next drop starts a
//! new one).
//!
//! Upgrading: events queued by the previous version in the store's
//! `Outbox`/`OutboxDroppable` trees are moved into the log on open, under
//! their own numbers (see `recover`).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::store::{MAX_VALUE_BYTES, Store, StoreError, Tree};
use crate::time::Timestamp;

use super::CloudEvent;
use super::event::FOOTFALL_SUMMARY;
#[cfg(test)]
use super::event::OUTBOX_GAP;

mod log;
mod ranges;
mod recover;
mod room;

use log::{Kind, Log};
use ranges::runs;
use room::Gap;

const NEXT_SEQ: &[u8] = b"outbox.next_seq";
const DROPPED: &[u8] = b"outbox.dropped";

/// The default cap on queued events: the config's default for
/// `storage.outbox_max_events` (the config owns it, and needs nothing
/// from here).
pub const DEFAULT_MAX_EVENTS: usize = crate::config::DEFAULT_OUTBOX_MAX_EVENTS;
/// The most events dropped at once.
pub const MAX_DROP_CHUNK: usize = 1_000;
/// The size at which the log starts a new segment file.
pub const SEGMENT_BYTES: u64 = log::SEGMENT_BYTES;
/// A gap event with this many ranges is not folded into the next one
/// (it stays well under the store's value cap).
const MAX_GAP_RANGES: usize = 1_000;

pub struct Outbox {
    store: Arc<dyn Store>,
    store_id: String,
    /// The log, the next sequence number and the counts; the lock also
    /// orders appends.
    state: Mutex<State>,
    /// Held by the one flush running (group commit).
    flushing: Mutex<()>,
    /// The log position known to be on disk.
    durable: AtomicU64,
    /// Flushes of the log, ever (for tests and the benchmark).
    syncs: AtomicU64,
    /// Wakes the delivery task when events are appended.
    appended: tokio::sync::Notify,
    /// Makes each flush take longer (tests of group commit).
    #[cfg(test)]
    sync_delay: Mutex<std::time::Duration>,
}

struct State {
    log: Log,
    next: u64,
    /// Events parked in the dead-letter tree (they count toward the cap).
    dead: usize,
    max_events: usize,
    /// Events dropped for room, ever (kept in `Meta`).
    dropped: u64,
    /// The last gap event, while it may still be waiting (in memory only:
    /// after a restart the next drop starts a new one).
    gap: Option<Gap>,
}

/// What the log has written, for the benchmark.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct OutboxIo {
    /// Bytes written to segment files since open (frames, headers,
    /// removal records: everything).
    pub bytes_written: u64,
    /// fdatasync/fsync calls on the log since open.
    pub syncs: u64,
    /// Segment files now.
    pub segments: usize,
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

fn seq_of(key: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(key).ok().map(u64::from_be_bytes)
}

fn read_u64(store: &dyn Store, key: &[u8]) -> Result<Option<u64>, StoreError> {
    Ok(store
        .get(Tree::Meta, key)?
        .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
        .map(u64::from_be_bytes))
}

fn to_json(event: &CloudEvent) -> Result<Vec<u8>, StoreError> {
    let bytes = serde_json::to_vec(event).map_err(|e| StoreError::Backend(e.to_string()))?;
    if bytes.len() > MAX_VALUE_BYTES {
        return Err(StoreError::TooLarge {
            tree: "outbox",
            size: bytes.len(),
            max: MAX_VALUE_BYTES,
        });
    }
    Ok(bytes)
}

impl Outbox {
    /// Opens the outbox with the default cap; `dir` None keeps the log in
    /// memory (tests and rigs).
    pub fn open(
        dir: Option<&Path>,
        store: Arc<dyn Store>,
        store_id: &str,
    ) -> Result<Self, StoreError> {
        Self::open_with(dir, store, store_id, DEFAULT_MAX_EVENTS)
    }

    pub fn open_with(
        dir: Option<&Path>,
        store: Arc<dyn Store>,
        store_id: &str,
        max_events: usize,
    ) -> Result<Self, StoreError> {
        Self::open_sized(dir, store, store_id, max_events, SEGMENT_BYTES)
    }

    /// As `open_with`, with segment files of `segment_bytes` (for tests
    /// and measurements).
    pub fn open_sized(
        dir: Option<&Path>,
        store: Arc<dyn Store>,
        store_id: &str,
        max_events: usize,
        segment_bytes: u64,
    ) -> Result<Self, StoreError> {
        let (mut log, replay) = Log::open(dir, segment_bytes.max(4096))?;
        if let Some((file, bytes)) = &replay.torn {
            tracing::warn!(
                "outbox: cut {bytes} bytes of an unfinished write off the end of {file}"
            );
        }
        // The next number: past everything the log, the old trees and the
        // old counter know of.
        let mut next = replay.next.max(read_u64(&*store, NEXT_SEQ)?.unwrap_or(1));
        for tree in [Tree::Outbox, Tree::OutboxDroppable, Tree::DeadLetter] {
            if let Some(seq) = store.last(tree, 1)?.last().and_then(|(k, _)| seq_of(k)) {
                next = next.max(seq + 1);
            }
        }
        log.ensure_active(next)?;
        recover::settle(&mut log, &*store, &replay, next)?;
        recover::migrate(&mut log, &*store, replay.migrated, next)?;
        log.collect()?;
        let outbox = Outbox {
            store: store.clone(),
            store_id: store_id.to_string(),
            durable: AtomicU64::new(log.end()),
            state: Mutex::new(State {
                log,
                next,
                dead: store.count(Tree::DeadLetter)?,
                max_events: max_events.max(1),
                dropped: read_u64(&*store, DROPPED)?.unwrap_or(0),
                gap: None,
            }),
            flushing: Mutex::new(()),
            syncs: AtomicU64::new(0),
            appended: tokio::sync::Notify::new(),
            #[cfg(test)]
            sync_delay: Mutex::new(std::time::Duration::ZERO),
        };
        Ok(outbox)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What the log has written and flushed since open.
    pub fn io(&self) -> OutboxIo {
        let s = self.lock();
        OutboxIo {
            bytes_written: s.log.bytes_written,
            syncs: self.syncs.load(Ordering::Relaxed) + s.log.syncs,
            segments: s.log.segment_count(),
        }
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
        let mut out = Vec::with_capacity(items.len());
        let mut encoded = Ok(());
        for (ty, data) in items {
            let event = CloudEvent::new(&self.store_id, ty, state.next, now, data);
            let bytes = match to_json(&event) {
                Ok(b) => b,
                Err(e) => {
                    encoded = Err(e);
                    break;
                }
            };
            let seq = state.next;
            // Past this point the number may be on disk: never reuse it.
            state.next += 1;
            state
                .log
                .push_event(seq, ty == FOOTFALL_SUMMARY, false, &bytes);
            if state.log.open_frame_len() >= log::FRAME_TARGET {
                state.log.seal();
            }
            out.push(event);
        }
        // Whatever happened, numbers that may have reached the disk are
        // used up. Events of a failed call may still surface after a
        // crash; they carry their own ids, and HQ de-duplicates by id.
        let next = state.next;
        let written = state.log.commit(next);
        let room = match (&encoded, &written) {
            (Ok(()), Ok(())) => self.make_room(&mut state, now),
            _ => Ok(()),
        };
        let upto = state.log.end();
        drop(state);
        encoded?;
        written?;
        room?;
        let synced = self.sync(upto);
        self.appended.notify_one();
        synced?;
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

    /// Returns once the log is on disk up to position `upto`: at once if
    /// a flush that began after it was written has finished, else after a
    /// flush of everything written so far (which it shares with every
    /// appender that wrote before it began).
    fn sync(&self, upto: u64) -> Result<(), StoreError> {
        if self.durable.load(Ordering::Acquire) >= upto {
            return Ok(());
        }
        let _turn = self.flushing.lock().unwrap_or_else(|e| e.into_inner());
        if self.durable.load(Ordering::Acquire) >= upto {
            return Ok(());
        }
        let (handle, target) = {
            let s = self.lock();
            (s.log.sync_handle(), s.log.end())
        };
        self.flush_log(&handle)?;
        self.durable.fetch_max(target, Ordering::AcqRel);
        Ok(())
    }

    /// Flushes the log now, with the outbox lock held (parking, retries,
    /// dropped dead letters: rare).
    fn sync_now(&self, state: &State) -> Result<(), StoreError> {
        self.flush_log(&state.log.sync_handle())?;
        self.durable.fetch_max(state.log.end(), Ordering::AcqRel);
        Ok(())
    }

    fn flush_log(&self, handle: &log::SyncHandle) -> Result<(), StoreError> {
        log::sync_handle(handle)?;
        self.syncs.fetch_add(1, Ordering::Relaxed);
        #[cfg(test)]
        std::thread::sleep(*self.sync_delay.lock().unwrap_or_else(|e| e.into_inner()));
        Ok(())
    }

    /// The oldest queued events, at most `max_count` of them and, past the
    /// first, at most `max_bytes` in all: (sequence, the event's JSON).
    /// Only events already on disk.
    pub fn peek(
        &self,
        max_count: usize,
        max_bytes: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let mut state = self.lock();
        let seqs = state.log.first_live(max_count);
        let limit = self.durable.load(Ordering::Acquire);
        let mut out = Vec::new();
        let mut bytes = 0;
        for (seq, _, v) in state.log.read(&seqs, Some(limit))? {
            if !out.is_empty() && bytes + v.len() > max_bytes {
                break;
            }
            bytes += v.len();
            out.push((seq, v));
        }
        Ok(out)
    }

    /// Removes delivered events. Not flushed: should the box die before
    /// the next flush, the events are delivered again, which the
    /// at-least-once contract allows (HQ de-duplicates by id).
    pub fn ack(&self, seqs: &[u64]) -> Result<(), StoreError> {
        let mut state = self.lock();
        for seq in seqs {
            state.log.remove(*seq);
        }
        let next = state.next;
        state.log.commit(next)?;
        state.log.collect()
    }

    /// Moves events HQ refused to the dead-letter tree. An event dropped
    /// for room while HQ was answering stays dropped: a gap event already
    /// names it. The total against the cap does not change.
    pub fn park(&self, batch: &[(u64, Vec<u8>)]) -> Result<(), StoreError> {
        let mut state = self.lock();
        let mut parked: Vec<&(u64, Vec<u8>)> = batch
            .iter()
            .filter(|(s, _)| state.log.is_live(*s))
            .collect();
        parked.sort_unstable_by_key(|(s, _)| *s);
        parked.dedup_by_key(|(s, _)| *s);
        if parked.is_empty() {
            return Ok(());
        }
        // The intent first (flushed), then the dead letters (flushed),
        // then out of the queue: see the module header.
        let seqs: Vec<u64> = parked.iter().map(|(s, _)| *s).collect();
        state.log.push_ranges(Kind::Parking, &runs(&seqs));
        let next = state.next;
        state.log.commit(next)?;
        self.sync_now(&state)?;
        for (seq, bytes) in &parked {
            self.store
                .put(Tree::DeadLetter, &seq.to_be_bytes(), bytes)?;
        }
        self.store.flush()?;
        for seq in &seqs {
            state.log.remove(*seq);
            state.dead += 1;
        }
        state.log.commit(next)?;
        state.log.collect()
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
    /// number (so it goes out before anything newer), droppable again if
    /// its type is. Returns how many.
    pub fn retry_dead_letters(&self) -> Result<usize, StoreError> {
        let mut state = self.lock();
        let parked = self.store.scan(Tree::DeadLetter)?;
        let mut back = Vec::new();
        for (k, v) in &parked {
            let Some(seq) = seq_of(k) else { continue };
            let droppable =
                serde_json::from_slice::<Head>(v).is_ok_and(|h| h.ty == FOOTFALL_SUMMARY);
            state.log.push_event(seq, droppable, true, v);
            if state.log.open_frame_len() >= log::FRAME_TARGET {
                state.log.seal();
            }
            back.push(k);
        }
        let next = state.next;
        state.log.commit(next)?;
        self.sync_now(&state)?;
        for k in &back {
            self.store.remove(Tree::DeadLetter, k)?;
        }
        self.store.flush()?;
        state.dead = state.dead.saturating_sub(back.len());
        drop(state);
        self.appended.notify_one();
        Ok(back.len())
    }

    /// Waits until something is appended (or returns at once if it was
    /// since the last wait).
    pub async fn wait_for_events(&self) {
        self.appended.notified().await;
    }

    /// The newest `n` events, oldest first.
    pub fn recent(&self, n: usize) -> Result<Vec<CloudEvent>, StoreError> {
        let mut state = self.lock();
        let seqs = state.log.last_live(n);
        Ok(state
            .log
            .read(&seqs, None)?
            .into_iter()
            .filter_map(|(_, _, v)| serde_json::from_slice(&v).ok())
            .collect())
    }

    /// Events waiting (kept in memory: no scan).
    pub fn len(&self) -> usize {
        self.lock().log.live_count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counts, and the age of the oldest waiting event.
    pub fn stats(&self, now: Timestamp) -> OutboxStats {
        let mut s = self.lock();
        let first = s.log.first_live(1);
        let oldest = s
            .log
            .read(&first, None)
            .ok()
            .and_then(|v| v.into_iter().next())
            .and_then(|(_, _, v)| serde_json::from_slice::<Head>(&v).ok())
            .map(|h| h.time);
        let oldest_age_seconds = oldest
            .as_deref()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .map(|t| u64::try_from((now.millis() - t.as_millisecond()).max(0) / 1000).unwrap_or(0));
        OutboxStats {
            queued: s.log.live_count(),
            droppable: s.log.droppable.len() as usize,
            dead_letters: s.dead,
            max_events: s.max_events,
            dropped: s.dropped,
            oldest,
            oldest_age_seconds,
        }
    }
}

#[cfg(test)]
mod log_tests;
#[cfg(test)]
mod tests;
