//! Making room when the outbox is full: what is dropped, in which order,
//! and the `outbox.gap` event that tells HQ (see the module header).

use std::collections::BTreeMap;

use crate::store::{StoreError, Tree};
use crate::time::Timestamp;

use super::super::CloudEvent;
use super::super::event::{FOOTFALL_SUMMARY, OUTBOX_GAP};
use super::log::Kind;
use super::ranges::runs;
use super::{DROPPED, Head, MAX_DROP_CHUNK, MAX_GAP_RANGES, Outbox, State, seq_of, to_json};

/// What one `outbox.gap` event says.
#[derive(Debug, Default)]
pub(super) struct Gap {
    /// The gap event's own number.
    pub(super) seq: u64,
    /// Sequence numbers HQ will not see, as sorted `[first, last]` ranges.
    pub(super) ranges: Vec<[u64; 2]>,
    pub(super) count: u64,
    /// Of `count`, how many were dead letters (refused by HQ earlier).
    pub(super) dead_letters: u64,
    pub(super) types: BTreeMap<String, u64>,
}

impl Gap {
    pub(super) fn add(&mut self, seq: u64, ty: &str) {
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

impl Outbox {
    /// Over the cap (queued events and dead letters together): drops the
    /// oldest droppable events, then the oldest dead letters, then the
    /// oldest of the rest, a chunk at a time, and queues an `outbox.gap`
    /// event that names them, in one frame with the record of the drop. A
    /// gap event still waiting from an earlier drop is folded into the
    /// new one, so a long outage leaves one gap event, not a pile of them
    /// crowding out real events. Called with the lock held, before the
    /// flush.
    pub(super) fn make_room(&self, state: &mut State, now: Timestamp) -> Result<(), StoreError> {
        if state.log.live_count() + state.dead <= state.max_events {
            return Ok(());
        }
        // Everything from here to the gap event is one frame.
        state.log.seal();
        let mut gap = Gap::default();
        if let Some(prev) = state.gap.take()
            && prev.ranges.len() < MAX_GAP_RANGES
            && state.log.remove(prev.seq).is_some()
        {
            gap = prev;
            // HQ will not see the replaced gap event's number either.
            let seq = gap.seq;
            gap.add(seq, OUTBOX_GAP);
        }
        let chunk = (state.max_events / 100).clamp(1, MAX_DROP_CHUNK);
        // Room for the new gap event too.
        let want = (state.log.live_count() + state.dead + 1)
            .saturating_sub(state.max_events)
            .max(chunk);
        // 1. Footfall summaries.
        let summaries = state.log.droppable.first_n(want);
        for seq in &summaries {
            state.log.remove(*seq);
            gap.add(*seq, FOOTFALL_SUMMARY);
        }
        // 2. Dead letters.
        let mut dead = Vec::new();
        if summaries.len() < want && state.dead > 0 {
            for (k, v) in self.store.first(Tree::DeadLetter, want - summaries.len())? {
                let Some(seq) = seq_of(&k) else { continue };
                let ty = serde_json::from_slice::<Head>(&v)
                    .map(|h| h.ty)
                    .unwrap_or_else(|_| "unreadable".into());
                gap.add(seq, &ty);
                gap.dead_letters += 1;
                dead.push(seq);
            }
        }
        // 3. The oldest of the rest.
        let mut live = 0;
        let left = want.saturating_sub(summaries.len() + dead.len());
        if left > 0 {
            let seqs = state.log.first_live(left);
            for (seq, _, json) in state.log.read(&seqs, None)? {
                let ty = serde_json::from_slice::<Head>(&json)
                    .map(|h| h.ty)
                    .unwrap_or_else(|_| "unreadable".into());
                state.log.remove(seq);
                gap.add(seq, &ty);
                live += 1;
            }
        }
        let dropped = summaries.len() + dead.len() + live;
        state.dropped += dropped as u64;
        if dropped > 0 {
            tracing::warn!(
                "outbox full ({} events, dead letters included): dropped the oldest {dropped} \
                 ({} footfall summaries, {} dead letters, {live} queued events); \
                 an outbox.gap event tells HQ",
                state.max_events,
                summaries.len(),
                dead.len()
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
        let bytes = to_json(&event)?;
        state.next += 1;
        state.log.flush_removed();
        state.log.push_ranges(Kind::DeadDropped, &runs(&dead));
        state.log.push_event(gap.seq, false, false, &bytes);
        state.log.seal();
        let next = state.next;
        state.log.commit(next)?;
        state.gap = Some(gap);
        if !dead.is_empty() {
            // The gap event names them before they leave the store.
            self.sync_now(state)?;
            for seq in &dead {
                self.store.remove(Tree::DeadLetter, &seq.to_be_bytes())?;
            }
            self.store.flush()?;
            state.dead = state.dead.saturating_sub(dead.len());
        }
        state.log.collect()?;
        self.store
            .put(Tree::Meta, DROPPED, &state.dropped.to_be_bytes())
    }
}
