//! Saving presence to the store: only what changed, so an idle store
//! writes next to nothing (flash wears with every write).
//!
//! Layout in `Tree::Presence` (format 2):
//! - `core`: footfall, staff marks and counters (small);
//! - `open/<MAC>`: one open visit;
//! - `recent/<ended_at><MAC>`: one ended visit (the newest
//!   `MAX_RECENT_VISITS` are kept by the machine; older keys are removed).
//!
//! Device records live in `Tree::Devices`, one per MAC, written when the
//! machine says they changed. Each save compares every entry with what it
//! last wrote (a hash per key) and writes only the differences, in one
//! batch. An open visit's `last_seen` moves with every frame of its
//! device, so for that comparison it counts only to [`LAST_SEEN_STEP`]:
//! a present device's visit is written at most that often while nothing
//! else about it changes. A clean stop writes everything exactly
//! (`exact`); after a crash an open visit's last sighting may be up to
//! that much older than it was, which can end it early.
//!
//! Format 1 (one `saved` document with everything, every 30 s) is read
//! once and replaced by format 2 on the first save.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::presence::engine::{Counters, StaffOverride};
use crate::presence::footfall::Footfall;
use crate::presence::visit::{OpenVisit, Visit};
use crate::presence::{Device, Saved};
use crate::store::{self, Change, Store, StoreError, Tree};

/// Format 1's single document.
const LEGACY_KEY: &[u8] = b"saved";
const CORE_KEY: &[u8] = b"core";
const OPEN_PREFIX: &[u8] = b"open/";
const RECENT_PREFIX: &[u8] = b"recent/";
/// An open visit whose only change is its last sighting is written again
/// once that has moved on by this much.
pub const LAST_SEEN_STEP: Duration = Duration::from_secs(600);

#[derive(Serialize, Deserialize, Default)]
#[serde(default)]
struct Core {
    version: u32,
    footfall: Footfall,
    staff_overrides: Vec<StaffOverride>,
    counters: Counters,
}

/// What was last written under each key of `Tree::Presence`.
#[derive(Debug, Default)]
pub(crate) struct Written {
    hashes: HashMap<Vec<u8>, u64>,
    /// Format 1's document is still in the store.
    legacy: bool,
    /// Bytes handed to the store, over the process's life (tests, stats).
    pub bytes: u64,
}

fn hash_of(bytes: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

fn key(prefix: &[u8], rest: &[&[u8]]) -> Vec<u8> {
    let mut k = prefix.to_vec();
    for r in rest {
        k.extend_from_slice(r);
    }
    k
}

fn open_key(v: &OpenVisit) -> Vec<u8> {
    key(OPEN_PREFIX, &[&v.visit.mac.octets()])
}

fn recent_key(v: &Visit) -> Vec<u8> {
    let ended = v.ended_at.map_or(0, |t| t.millis());
    key(RECENT_PREFIX, &[&ended.to_be_bytes(), &v.mac.octets()])
}

/// The hash an open visit is compared by: its last sighting rounded down
/// to `LAST_SEEN_STEP`, and its dwell, which follows it, left out.
fn open_hash(v: &OpenVisit) -> u64 {
    let step = LAST_SEEN_STEP.as_millis() as i64;
    let mut coarse = v.clone();
    coarse.last_seen = crate::time::Timestamp(v.last_seen.millis() / step * step);
    // Dwell follows the last sighting (it is `last_seen - started_at`
    // while the visit lasts): it counts only through `last_seen`.
    coarse.visit.dwell_seconds = 0;
    serde_json::to_vec(&coarse).map_or(0, |b| hash_of(&b))
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(|e| StoreError::Backend(e.to_string()))
}

/// Everything saved, and what was written (for the next save's
/// comparison). `None` if nothing was ever saved.
pub(crate) fn load(store: &dyn Store) -> (Option<Saved>, Written) {
    let mut written = Written::default();
    let legacy = match store.get(Tree::Presence, LEGACY_KEY) {
        Ok(Some(bytes)) => {
            written.legacy = true;
            serde_json::from_slice::<Saved>(&bytes)
                .map_err(|e| tracing::warn!("presence state unreadable, starting afresh: {e}"))
                .ok()
        }
        Ok(None) => None,
        Err(e) => {
            tracing::warn!("presence state unreadable, starting afresh: {e}");
            None
        }
    };
    let saved = match legacy {
        Some(s) => Some(s),
        None => load_entries(store, &mut written),
    };
    let Some(mut saved) = saved else {
        return (None, written);
    };
    match store::scan_json::<Device>(store, Tree::Devices) {
        Ok(records) => {
            saved.devices = records
                .into_iter()
                .filter_map(|r| {
                    r.map_err(|e| tracing::warn!("skipping a saved device: {e}"))
                        .ok()
                })
                .collect();
        }
        Err(e) => tracing::warn!("saved devices unreadable: {e}"),
    }
    (Some(saved), written)
}

/// Format 2: the core, open and recent visits, each under its own key.
fn load_entries(store: &dyn Store, written: &mut Written) -> Option<Saved> {
    let entries = match store.scan(Tree::Presence) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!("presence state unreadable, starting afresh: {e}");
            return None;
        }
    };
    if entries.is_empty() {
        return None;
    }
    let mut saved = Saved {
        version: 2,
        ..Saved::default()
    };
    for (k, v) in entries {
        let h = if k == CORE_KEY {
            match serde_json::from_slice::<Core>(&v) {
                Ok(core) => {
                    saved.footfall = core.footfall;
                    saved.staff_overrides = core.staff_overrides;
                    saved.counters = core.counters;
                }
                Err(e) => tracing::warn!("presence counts unreadable, starting afresh: {e}"),
            }
            hash_of(&v)
        } else if k.starts_with(OPEN_PREFIX) {
            match serde_json::from_slice::<OpenVisit>(&v) {
                Ok(o) => {
                    let h = open_hash(&o);
                    saved.open_visits.push(o);
                    h
                }
                Err(e) => {
                    tracing::warn!("skipping a saved visit: {e}");
                    0
                }
            }
        } else if k.starts_with(RECENT_PREFIX) {
            match serde_json::from_slice::<Visit>(&v) {
                Ok(r) => saved.recent_visits.push(r),
                Err(e) => tracing::warn!("skipping a saved visit: {e}"),
            }
            hash_of(&v)
        } else {
            0
        };
        // Unreadable or unknown entries get hash 0: the next save
        // replaces or removes them.
        written.hashes.insert(k, h);
    }
    // Keys sort oldest first; the machine keeps the newest first.
    saved.recent_visits.reverse();
    Some(saved)
}

/// Writes the entries of `snapshot` (its devices are not looked at) that
/// differ from what `written` says was last written, removes the entries
/// that are gone, all in one batch. Does not flush. Only the changed
/// entries' bytes are kept at once, so a save of 10,000 open visits that
/// changed nothing allocates next to nothing.
pub(crate) fn save(
    store: &dyn Store,
    snapshot: &Saved,
    written: &mut Written,
    exact: bool,
) -> Result<usize, StoreError> {
    let mut seen: HashMap<Vec<u8>, u64> = HashMap::with_capacity(written.hashes.len());
    let mut changes: Vec<Change> = Vec::new();
    let mut consider =
        |k: Vec<u8>, h: u64, force: bool, bytes: &dyn Fn() -> Result<Vec<u8>, StoreError>| {
            if force || written.hashes.get(&k) != Some(&h) {
                changes.push((Tree::Presence, k.clone(), Some(bytes()?)));
            }
            seen.insert(k, h);
            Ok::<(), StoreError>(())
        };
    let core = encode(&Core {
        version: 2,
        footfall: snapshot.footfall.clone(),
        staff_overrides: snapshot.staff_overrides.clone(),
        counters: snapshot.counters,
    })?;
    consider(CORE_KEY.to_vec(), hash_of(&core), false, &|| {
        Ok(core.clone())
    })?;
    let mut buf = Vec::new();
    for o in &snapshot.open_visits {
        buf.clear();
        serde_json::to_writer(&mut buf, o).map_err(|e| StoreError::Backend(e.to_string()))?;
        // A clean stop writes every open visit as it is now.
        consider(open_key(o), open_hash(o), exact, &|| Ok(buf.clone()))?;
    }
    for r in &snapshot.recent_visits {
        buf.clear();
        serde_json::to_writer(&mut buf, r).map_err(|e| StoreError::Backend(e.to_string()))?;
        consider(recent_key(r), hash_of(&buf), false, &|| Ok(buf.clone()))?;
    }
    for k in written.hashes.keys() {
        if !seen.contains_key(k) {
            changes.push((Tree::Presence, k.clone(), None));
        }
    }
    if written.legacy {
        changes.push((Tree::Presence, LEGACY_KEY.to_vec(), None));
    }
    if changes.is_empty() {
        written.hashes = seen;
        return Ok(0);
    }
    let n = changes.len();
    let bytes: usize = changes
        .iter()
        .map(|(_, k, v)| k.len() + v.as_ref().map_or(0, Vec::len))
        .sum();
    // On failure nothing was written: the next save compares with what
    // was written before.
    store.write_batch(changes)?;
    written.hashes = seen;
    written.bytes += bytes as u64;
    written.legacy = false;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::presence::visit::Classification;
    use crate::store::MemoryStore;
    use crate::time::Timestamp;

    const T0: i64 = 1_780_000_200_000;

    fn visit(mac: &str, started: i64, ended: Option<i64>) -> Visit {
        Visit {
            visit_id: format!("v-{mac}-{started}"),
            mac: mac.parse().unwrap(),
            started_at: Timestamp(started),
            ended_at: ended.map(Timestamp),
            dwell_seconds: 0,
            classification: Classification::Visitor,
            returning: false,
            mac_randomized: true,
            os_family: "ios".into(),
            member_id: None,
        }
    }

    fn open(mac: &str, last_seen: i64) -> OpenVisit {
        let mut v = visit(mac, T0, None);
        // As the machine keeps it: dwell up to the last sighting.
        v.dwell_seconds = u64::try_from((last_seen - T0) / 1000).unwrap_or(0);
        OpenVisit {
            visit: v,
            last_seen: Timestamp(last_seen),
            departed_at: None,
        }
    }

    fn snapshot(opens: Vec<OpenVisit>, recent: Vec<Visit>) -> Saved {
        Saved {
            version: 2,
            open_visits: opens,
            recent_visits: recent,
            ..Saved::default()
        }
    }

    #[test]
    fn only_changes_are_written_and_a_quiet_visit_rarely() {
        let store = MemoryStore::new();
        let mut w = Written::default();
        let opens = |seen| {
            (0..200)
                .map(|i| {
                    open(
                        &format!("02:00:00:00:{:02x}:{:02x}", i / 256, i % 256),
                        seen,
                    )
                })
                .collect::<Vec<_>>()
        };
        // First save: the core and 200 open visits.
        assert_eq!(
            save(&store, &snapshot(opens(T0), vec![]), &mut w, false).unwrap(),
            201
        );
        let after_first = w.bytes;
        // Nothing changed: nothing written.
        assert_eq!(
            save(&store, &snapshot(opens(T0), vec![]), &mut w, false).unwrap(),
            0
        );
        // Every device seen again a minute later: still nothing.
        assert_eq!(
            save(&store, &snapshot(opens(T0 + 60_000), vec![]), &mut w, false).unwrap(),
            0
        );
        assert_eq!(w.bytes, after_first);
        // Past the step, each quiet visit is written once.
        let later = T0 + LAST_SEEN_STEP.as_millis() as i64;
        assert_eq!(
            save(&store, &snapshot(opens(later), vec![]), &mut w, false).unwrap(),
            200
        );
        // One visit ends: its open entry goes, a recent one comes.
        let mut o = opens(later);
        let ended = o.pop().unwrap();
        let mut done = ended.visit.clone();
        done.ended_at = Some(Timestamp(later));
        assert_eq!(
            save(
                &store,
                &snapshot(o.clone(), vec![done.clone()]),
                &mut w,
                false
            )
            .unwrap(),
            2
        );
        assert!(
            store
                .get(Tree::Presence, &open_key(&ended))
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .get(Tree::Presence, &recent_key(&done))
                .unwrap()
                .is_some()
        );
        // A clean stop writes the exact sightings.
        let n = save(
            &store,
            &snapshot(opens(later + 1).into_iter().take(199).collect(), vec![done]),
            &mut w,
            true,
        )
        .unwrap();
        assert_eq!(n, 199);
    }

    #[test]
    fn what_was_saved_comes_back_and_the_next_save_writes_nothing() {
        let store = MemoryStore::new();
        let mut w = Written::default();
        let snap = snapshot(
            vec![open("02:00:00:00:00:01", T0 + 5)],
            vec![
                visit("02:00:00:00:00:03", T0 - 50, Some(T0 - 10)),
                visit("02:00:00:00:00:02", T0 - 90, Some(T0 - 20)),
            ],
        );
        save(&store, &snap, &mut w, true).unwrap();
        let (back, mut w2) = load(&store);
        let back = back.unwrap();
        assert_eq!(back.open_visits, snap.open_visits);
        // Newest first, as the machine keeps them.
        assert_eq!(back.recent_visits, snap.recent_visits);
        assert_eq!(save(&store, &snap, &mut w2, false).unwrap(), 0);
    }

    #[test]
    fn format_1_is_read_and_replaced() {
        let store = MemoryStore::new();
        let snap = snapshot(
            vec![open("02:00:00:00:00:01", T0)],
            vec![visit("02:00:00:00:00:02", T0 - 90, Some(T0 - 20))],
        );
        store
            .put(
                Tree::Presence,
                LEGACY_KEY,
                &serde_json::to_vec(&snap).unwrap(),
            )
            .unwrap();
        let (back, mut w) = load(&store);
        let back = back.unwrap();
        assert_eq!(back.open_visits, snap.open_visits);
        assert_eq!(back.recent_visits, snap.recent_visits);
        assert_eq!(save(&store, &back, &mut w, false).unwrap(), 4);
        assert!(store.get(Tree::Presence, LEGACY_KEY).unwrap().is_none());
        let (again, _) = load(&store);
        assert_eq!(again.unwrap().recent_visits, snap.recent_visits);
    }
}
