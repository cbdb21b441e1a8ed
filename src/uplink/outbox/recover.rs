//! What the outbox does on open besides reading its log: settles a crash
//! that fell between the log and the dead-letter tree, and moves events
//! queued by the previous version (in the store's `Outbox` and
//! `OutboxDroppable` trees, keyed by sequence number) into the log.
//!
//! The move is crash-safe: each frame of moved events ends with a
//! `Migrated` record naming the highest number in it, and the frame is
//! flushed before those entries leave the trees. After a crash in
//! between, entries at or below that number are already in the log and
//! are only removed from the trees, so nothing is moved twice or lost.

use crate::store::{Store, StoreError, Tree};

use super::log::{self, Log, Replay};
use super::seq_of;

/// Old entries read from each tree at a time.
const CHUNK: usize = 1_000;

/// An old entry: its number, whether it is droppable, its JSON, and where
/// it is kept.
struct Old<'a> {
    seq: u64,
    droppable: bool,
    json: &'a [u8],
    tree: Tree,
    key: &'a [u8],
}

/// Finishes what a crash interrupted between the log and the dead-letter
/// tree (see the module header of the outbox for the order of writes).
pub(super) fn settle(
    log: &mut Log,
    store: &dyn Store,
    replay: &Replay,
    next: u64,
) -> Result<(), StoreError> {
    let mut changed = false;
    // Parking announced and the dead letter written, but still queued:
    // finish the park.
    for (f, l) in replay.parking.ranges() {
        for seq in f..=l {
            if log.is_live(seq) && store.get(Tree::DeadLetter, &seq.to_be_bytes())?.is_some() {
                log.remove(seq);
                changed = true;
            }
        }
    }
    // Retried (back in the queue) but still parked: finish the retry.
    for (f, l) in replay.retried.ranges() {
        for seq in f..=l {
            if log.is_live(seq) && store.get(Tree::DeadLetter, &seq.to_be_bytes())?.is_some() {
                store.remove(Tree::DeadLetter, &seq.to_be_bytes())?;
                changed = true;
            }
        }
    }
    // Dropped for room (a gap event names them) but still parked.
    for (f, l) in replay.dead_dropped.ranges() {
        for seq in f..=l {
            if store.get(Tree::DeadLetter, &seq.to_be_bytes())?.is_some() {
                store.remove(Tree::DeadLetter, &seq.to_be_bytes())?;
                changed = true;
            }
        }
    }
    if changed {
        log.commit(next)?;
        log::sync_handle(&log.sync_handle())?;
        store.flush()?;
    }
    Ok(())
}

/// Moves the previous version's queued events into the log under their
/// own numbers; returns how many were moved.
pub(super) fn migrate(
    log: &mut Log,
    store: &dyn Store,
    migrated: u64,
    next: u64,
) -> Result<usize, StoreError> {
    let mut moved = 0;
    loop {
        let plain = store.first(Tree::Outbox, CHUNK)?;
        let droppable = store.first(Tree::OutboxDroppable, CHUNK)?;
        if plain.is_empty() && droppable.is_empty() {
            break;
        }
        // Take only what is certainly in order across the two trees: up
        // to the end of a tree that may hold more.
        let mut upto = u64::MAX;
        for part in [&plain, &droppable] {
            if part.len() == CHUNK
                && let Some(seq) = part.last().and_then(|(k, _)| seq_of(k))
            {
                upto = upto.min(seq);
            }
        }
        let mut batch: Vec<Old<'_>> = Vec::new();
        let mut odd: Vec<(Tree, &[u8])> = Vec::new();
        for (tree, part) in [(Tree::Outbox, &plain), (Tree::OutboxDroppable, &droppable)] {
            for (k, v) in part.iter() {
                match seq_of(k) {
                    Some(seq) if seq <= upto => batch.push(Old {
                        seq,
                        droppable: tree == Tree::OutboxDroppable,
                        json: v,
                        tree,
                        key: k,
                    }),
                    Some(_) => {}
                    None => odd.push((tree, k)),
                }
            }
        }
        batch.sort_unstable_by_key(|e| e.seq);
        let mut last = 0;
        for old in &batch {
            if old.seq <= migrated {
                continue; // moved before a crash; only the tree entry is left
            }
            log.push_event(old.seq, old.droppable, false, old.json);
            last = old.seq;
            if log.open_frame_len() >= log::FRAME_TARGET {
                log.push_migrated(last);
                log.seal();
            }
        }
        if last > 0 {
            log.push_migrated(last);
            log.seal();
            log.commit(next)?;
            log::sync_handle(&log.sync_handle())?;
        }
        for old in &batch {
            store.remove(old.tree, old.key)?;
        }
        for (tree, key) in &odd {
            tracing::warn!(
                "outbox: dropped an old entry with a malformed key from {}",
                tree.name()
            );
            store.remove(*tree, key)?;
        }
        moved += batch.len();
    }
    if moved > 0 {
        store.flush()?;
        tracing::info!("outbox: moved {moved} queued events from the old store trees into the log");
    }
    Ok(moved)
}
