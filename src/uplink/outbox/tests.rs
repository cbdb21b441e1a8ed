use super::*;
use crate::store::MemoryStore;
use serde_json::json;

#[test]
fn sequence_numbers_are_consecutive_and_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let t = Timestamp(1_800_000_000_000);
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    {
        let outbox = Outbox::open(Some(dir.path()), store.clone(), "s-1").unwrap();
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
    let outbox = Outbox::open(Some(dir.path()), store, "s-1").unwrap();
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
fn a_failed_append_never_lets_a_number_be_reused() {
    let outbox = Outbox::open(None, Arc::new(MemoryStore::new()), "s").unwrap();
    let t = Timestamp(1_800_000_000_000);
    // The write of both events fails (the first may be on disk).
    outbox.lock().log.fail_writes = true;
    assert!(
        outbox
            .append_all(vec![("a", json!(1)), ("b", json!(2))], t)
            .is_err()
    );
    outbox.lock().log.fail_writes = false;
    let c = outbox.append("c", json!(3), t).unwrap();
    assert_eq!(
        c.sequence, "3",
        "1 is on disk and 2 may be: neither is reused"
    );
}

#[test]
fn peek_is_oldest_first_and_bounded_and_ack_removes() {
    let outbox = Outbox::open(None, Arc::new(MemoryStore::new()), "s").unwrap();
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
    let outbox = Outbox::open(None, Arc::new(MemoryStore::new()), "s").unwrap();
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
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let t = Timestamp(1_800_000_000_000);
    Outbox::open(Some(dir.path()), store.clone(), "s")
        .unwrap()
        .append_all(vec![("a", json!(1)), ("b", json!(2))], t)
        .unwrap();
    // As if the box died after the events were written but before the counter was.
    store
        .put(Tree::Meta, NEXT_SEQ, &1u64.to_be_bytes())
        .unwrap();
    let outbox = Outbox::open(Some(dir.path()), store, "s").unwrap();
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
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    {
        let outbox = Outbox::open_with(Some(dir.path()), store.clone(), "s", 10).unwrap();
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
    let outbox = Outbox::open_with(Some(dir.path()), store, "s", 10).unwrap();
    let st = outbox.stats(t);
    assert_eq!((st.queued, st.droppable, st.dropped), (10, 3, 2));
    assert_eq!(outbox.append("v", json!({}), t).unwrap().sequence, "13");
}

#[test]
fn with_no_summaries_left_the_oldest_events_go() {
    let outbox = Outbox::open_with(None, Arc::new(MemoryStore::new()), "s", 4).unwrap();
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
    let (outbox, in_flight) = summaries_in_flight_then_dropped();
    let t = Timestamp(1_800_000_000_000);
    outbox.ack(&[in_flight[0].0, in_flight[1].0]).unwrap();
    assert_eq!(outbox.len(), 3);
    assert_eq!(seqs(&outbox), [3, 4, 5]);
    assert_eq!(outbox.stats(t).droppable, 1);
}

#[test]
fn peek_merges_both_trees_in_sequence_order() {
    let outbox = Outbox::open(None, Arc::new(MemoryStore::new()), "s").unwrap();
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
    let outbox = Arc::new(Outbox::open(None, Arc::new(MemoryStore::new()), "s").unwrap());
    // A slow flush (as on router flash), long enough that the other
    // appenders arrive during it even on a loaded machine.
    *outbox.sync_delay.lock().unwrap() = std::time::Duration::from_millis(10);
    let t = Timestamp(1_800_000_000_000);
    let start = Arc::new(std::sync::Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let o = outbox.clone();
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
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
    let flushes = outbox.io().syncs;
    assert!(
        flushes < 150,
        "200 appends from 8 threads took {flushes} flushes: no group commit"
    );
}

#[test]
fn a_waiting_gap_event_is_folded_into_the_next_so_real_events_stay() {
    let outbox = Outbox::open_with(None, Arc::new(MemoryStore::new()), "s", 10).unwrap();
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

/// Parks the queued events numbered `which`, as delivery does when HQ
/// refuses them.
fn park(outbox: &Outbox, which: &[u64]) {
    let batch: Vec<(u64, Vec<u8>)> = outbox
        .peek(1000, 1 << 24)
        .unwrap()
        .into_iter()
        .filter(|(s, _)| which.contains(s))
        .collect();
    assert_eq!(batch.len(), which.len());
    outbox.park(&batch).unwrap();
}

fn dead_seqs(outbox: &Outbox) -> Vec<u64> {
    outbox
        .dead_letters(1000)
        .unwrap()
        .iter()
        .filter_map(CloudEvent::sequence_number)
        .collect()
}

/// The newest gap event's ranges as a set, and every number up to it that
/// is neither queued nor parked: the two must be equal.
fn listed_and_missing(
    outbox: &Outbox,
) -> (
    serde_json::Value,
    std::collections::BTreeSet<u64>,
    std::collections::BTreeSet<u64>,
) {
    let gap = outbox
        .recent(1000)
        .unwrap()
        .into_iter()
        .rfind(|e| e.ty == OUTBOX_GAP)
        .expect("a gap event is queued");
    let mut listed = std::collections::BTreeSet::new();
    for r in gap.data["ranges"].as_array().unwrap() {
        listed.extend(r[0].as_u64().unwrap()..=r[1].as_u64().unwrap());
    }
    let kept: std::collections::BTreeSet<u64> =
        seqs(outbox).into_iter().chain(dead_seqs(outbox)).collect();
    let missing = (1..gap.sequence_number().unwrap())
        .filter(|s| !kept.contains(s))
        .collect();
    (gap.data, listed, missing)
}

#[test]
fn dead_letters_count_toward_the_cap_and_go_after_summaries_before_live_events() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let outbox = Outbox::open_with(Some(dir.path()), store.clone(), "s", 10).unwrap();
    let t = Timestamp(1_800_000_000_000);
    // 1-2 live, 3-6 refused by HQ, 7 a summary, 8-10 live: exactly full.
    outbox
        .append_all((1..=6).map(|i| ("v", json!({"i": i}))).collect(), t)
        .unwrap();
    park(&outbox, &[3, 4, 5, 6]);
    outbox.append(FOOTFALL_SUMMARY, json!({}), t).unwrap();
    outbox
        .append_all((8..=10).map(|i| ("v", json!({"i": i}))).collect(), t)
        .unwrap();
    let st = outbox.stats(t);
    assert_eq!((st.queued, st.dead_letters, st.dropped), (6, 4, 0));

    // One more: the summary goes, then the oldest dead letter (room for
    // the gap event), though live events 1 and 2 are older than both.
    outbox.append("v", json!({"i": 11}), t).unwrap();
    assert_eq!(seqs(&outbox), [1, 2, 8, 9, 10, 11, 12]);
    assert_eq!(dead_seqs(&outbox), [4, 5, 6]);
    let (data, listed, missing) = listed_and_missing(&outbox);
    assert_eq!(data["ranges"], json!([[3, 3], [7, 7]]));
    assert_eq!(
        (data["count"].clone(), data["dead_letters"].clone()),
        (json!(2), json!(1))
    );
    assert_eq!(listed, missing);

    // Every further event pushes out a dead letter, never a live event,
    // while any are parked; the gap event folds them all in.
    // (Each drop also takes a number for its gap event: 14, 16, 18.)
    for i in [13, 15, 17] {
        let e = outbox.append("v", json!({"i": i}), t).unwrap();
        assert_eq!(e.sequence_number(), Some(i));
        let (_, listed, missing) = listed_and_missing(&outbox);
        assert_eq!(listed, missing, "after event {i}");
        assert_eq!(outbox.len() + outbox.stats(t).dead_letters, 10);
    }
    assert!(dead_seqs(&outbox).is_empty());
    let (data, _, _) = listed_and_missing(&outbox);
    assert_eq!(data["dead_letters"], 4, "{data}");
    assert_eq!(data["types"]["v"], 4, "{data}");
    let live: Vec<u64> = seqs(&outbox);
    for s in [1, 2, 8, 9, 10, 11, 13, 15, 17] {
        assert!(live.contains(&s), "live event {s} kept: {live:?}");
    }

    // With no dead letters left, the oldest live event is next.
    outbox.append("v", json!({}), t).unwrap();
    assert!(!seqs(&outbox).contains(&1), "{:?}", seqs(&outbox));
    let (_, listed, missing) = listed_and_missing(&outbox);
    assert_eq!(listed, missing);
    assert_eq!(
        outbox.stats(t).dropped,
        6,
        "a summary, four dead letters, one live"
    );

    // The counts come back from the log and the store after a restart.
    let st = outbox.stats(t);
    drop(outbox);
    let reopened = Outbox::open_with(Some(dir.path()), store, "s", 10)
        .unwrap()
        .stats(t);
    assert_eq!(
        (reopened.queued, reopened.dead_letters, reopened.dropped),
        (st.queued, st.dead_letters, st.dropped)
    );
}

#[test]
fn a_parked_event_that_was_dropped_meanwhile_stays_dropped() {
    let (outbox, in_flight) = summaries_in_flight_then_dropped();
    let t = Timestamp(1_800_000_000_000);
    // HQ refuses the batch it was sending.
    outbox.park(&in_flight).unwrap();
    assert!(dead_seqs(&outbox).is_empty(), "the gap event names them");
    let st = outbox.stats(t);
    assert_eq!((st.queued, st.dead_letters), (3, 0));
}

#[test]
fn retried_dead_letters_return_to_their_own_tree() {
    let outbox = Outbox::open(None, Arc::new(MemoryStore::new()), "s").unwrap();
    let t = Timestamp(1_800_000_000_000);
    outbox.append("v", json!({}), t).unwrap();
    outbox.append(FOOTFALL_SUMMARY, json!({}), t).unwrap();
    park(&outbox, &[1, 2]);
    let st = outbox.stats(t);
    assert_eq!((st.queued, st.droppable, st.dead_letters), (0, 0, 2));
    assert_eq!(outbox.retry_dead_letters().unwrap(), 2);
    let st = outbox.stats(t);
    assert_eq!((st.queued, st.droppable, st.dead_letters), (2, 1, 0));
    assert_eq!(seqs(&outbox), [1, 2]);
}

/// An outbox of 3 full of footfall summaries, two of them taken for
/// delivery, then one more event that drops those two (1 and 2).
fn summaries_in_flight_then_dropped() -> (Outbox, Vec<(u64, Vec<u8>)>) {
    let outbox = Outbox::open_with(None, Arc::new(MemoryStore::new()), "s", 3).unwrap();
    let t = Timestamp(1_800_000_000_000);
    outbox
        .append_all((0..3).map(|_| (FOOTFALL_SUMMARY, json!({}))).collect(), t)
        .unwrap();
    let in_flight = outbox.peek(2, 1 << 20).unwrap();
    outbox.append("v", json!({}), t).unwrap(); // drops 1 and 2
    (outbox, in_flight)
}
