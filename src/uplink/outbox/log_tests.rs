//! The segment log against damage, an upgrade from the key-value outbox,
//! and power cuts (a child process killed mid-stream, again and again).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use super::*;
use crate::store::MemoryStore;
use serde_json::json;

const T: Timestamp = Timestamp(1_800_000_000_000);

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    v.sort();
    v
}

fn all_seqs(outbox: &Outbox) -> Vec<u64> {
    outbox
        .peek(100_000, usize::MAX)
        .unwrap()
        .iter()
        .map(|(s, _)| *s)
        .collect()
}

#[test]
fn a_torn_tail_is_cut_off_and_the_events_before_it_stay() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    {
        let outbox = Outbox::open(Some(dir.path()), store.clone(), "s").unwrap();
        outbox
            .append_all((1..=4).map(|i| ("v", json!({"i": i}))).collect(), T)
            .unwrap();
        outbox.append(FOOTFALL_SUMMARY, json!({"i": 5}), T).unwrap();
    }
    let last = segments(dir.path()).pop().unwrap();
    let whole = std::fs::metadata(&last).unwrap().len();
    // Half a frame: a length that promises more than is there.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&last)
        .unwrap();
    f.write_all(&[200, 0, 0, 0, 1, 2, 3, 4, 1, 9, 9]).unwrap();
    drop(f);
    let outbox = Outbox::open(Some(dir.path()), store.clone(), "s").unwrap();
    assert_eq!(std::fs::metadata(&last).unwrap().len(), whole, "tail cut");
    assert_eq!(all_seqs(&outbox), [1, 2, 3, 4, 5]);
    let st = outbox.stats(T);
    assert_eq!((st.queued, st.droppable), (5, 1));
    assert_eq!(outbox.recent(1).unwrap()[0].data, json!({"i": 5}));
    assert_eq!(outbox.append("v", json!({}), T).unwrap().sequence, "6");
    drop(outbox);

    // A whole frame whose checksum does not match goes the same way.
    let whole = std::fs::metadata(&last).unwrap().len();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&last)
        .unwrap();
    let body = [1u8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    f.write_all(&(body.len() as u32).to_le_bytes()).unwrap();
    f.write_all(&0xdead_beef_u32.to_le_bytes()).unwrap();
    f.write_all(&body).unwrap();
    drop(f);
    let outbox = Outbox::open(Some(dir.path()), store, "s").unwrap();
    assert_eq!(std::fs::metadata(&last).unwrap().len(), whole);
    assert_eq!(all_seqs(&outbox), [1, 2, 3, 4, 5, 6]);
}

#[test]
fn damage_before_the_newest_segment_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    {
        let outbox = Outbox::open_sized(Some(dir.path()), store.clone(), "s", 1000, 4096).unwrap();
        for i in 0..100 {
            outbox
                .append("v", json!({"i": i, "pad": "x".repeat(100)}), T)
                .unwrap();
        }
    }
    let segs = segments(dir.path());
    assert!(segs.len() > 2, "{segs:?}");
    // Flip a byte in the middle of the first segment.
    let mut bytes = std::fs::read(&segs[0]).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&segs[0], bytes).unwrap();
    let err = match Outbox::open_sized(Some(dir.path()), store, "s", 1000, 4096) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a damaged segment was accepted"),
    };
    let name = segs[0].file_name().unwrap().to_string_lossy().to_string();
    assert!(err.contains(&name), "{err}");
}

#[test]
fn segments_are_deleted_once_everything_in_them_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let outbox = Outbox::open_sized(Some(dir.path()), store.clone(), "s", 10_000, 4096).unwrap();
    for i in 0..200 {
        outbox
            .append("v", json!({"i": i, "pad": "x".repeat(100)}), T)
            .unwrap();
    }
    assert!(segments(dir.path()).len() > 5);
    while !outbox.is_empty() {
        let seqs: Vec<u64> = outbox
            .peek(37, usize::MAX)
            .unwrap()
            .iter()
            .map(|(s, _)| *s)
            .collect();
        outbox.ack(&seqs).unwrap();
    }
    assert_eq!(
        segments(dir.path()).len(),
        1,
        "only the one being appended to"
    );
    drop(outbox);
    // Nothing comes back, and no number is reused.
    let outbox = Outbox::open_sized(Some(dir.path()), store, "s", 10_000, 4096).unwrap();
    assert!(outbox.is_empty());
    assert_eq!(outbox.append("v", json!({}), T).unwrap().sequence, "201");
}

/// An event as the previous version stored it.
fn old_event(seq: u64, ty: &str) -> Vec<u8> {
    serde_json::to_vec(&CloudEvent::new("s", ty, seq, T, json!({"old": seq}))).unwrap()
}

#[test]
fn events_queued_by_the_previous_version_move_into_the_log_once() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    // 1..=2500 queued the old way, every tenth a summary in its own tree;
    // 2501 refused by HQ, a dead letter, stays where it is.
    let put_old = |store: &dyn Store| {
        for seq in 1..=2500u64 {
            let (tree, ty) = if seq % 10 == 0 {
                (Tree::OutboxDroppable, FOOTFALL_SUMMARY)
            } else {
                (Tree::Outbox, "v")
            };
            store
                .put(tree, &seq.to_be_bytes(), &old_event(seq, ty))
                .unwrap();
        }
    };
    put_old(&*store);
    store
        .put(Tree::Meta, NEXT_SEQ, &2502u64.to_be_bytes())
        .unwrap();
    store
        .put(
            Tree::DeadLetter,
            &2501u64.to_be_bytes(),
            &old_event(2501, "v"),
        )
        .unwrap();

    let outbox = Outbox::open(Some(dir.path()), store.clone(), "s").unwrap();
    assert_eq!(store.count(Tree::Outbox).unwrap(), 0);
    assert_eq!(store.count(Tree::OutboxDroppable).unwrap(), 0);
    let st = outbox.stats(T);
    assert_eq!((st.queued, st.droppable, st.dead_letters), (2500, 250, 1));
    let got = outbox.peek(100_000, usize::MAX).unwrap();
    assert_eq!(
        got.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        (1..=2500).collect::<Vec<_>>()
    );
    for (seq, json) in &got {
        let ty = if seq % 10 == 0 { FOOTFALL_SUMMARY } else { "v" };
        let e: CloudEvent = serde_json::from_slice(json).unwrap();
        assert_eq!((e.ty.as_str(), e.sequence_number()), (ty, Some(*seq)));
        assert_eq!(e.data, json!({"old": seq}), "event {seq} moved as it was");
    }
    assert_eq!(outbox.append("v", json!({}), T).unwrap().sequence, "2502");
    drop(outbox);

    // As if the box died after the log was flushed but before the old
    // entries were removed: they are in the trees again.
    put_old(&*store);
    let outbox = Outbox::open(Some(dir.path()), store.clone(), "s").unwrap();
    assert_eq!(store.count(Tree::Outbox).unwrap(), 0);
    let seqs = all_seqs(&outbox);
    assert_eq!(seqs.len(), 2501, "nothing moved twice");
    assert_eq!(seqs.last(), Some(&2502));
    assert_eq!(outbox.stats(T).droppable, 250);
}

#[test]
fn a_crash_between_the_log_and_the_dead_letters_is_settled_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    {
        let outbox = Outbox::open(Some(dir.path()), store.clone(), "s").unwrap();
        outbox
            .append_all((1..=3).map(|i| ("v", json!({"i": i}))).collect(), T)
            .unwrap();
        // Parking of 1 and 2 announced and the dead letters written, then
        // the box died before they left the queue.
        let mut s = outbox.lock();
        s.log.push_ranges(Kind::Parking, &[(1, 2)]);
        s.log.commit(4).unwrap();
        for seq in [1u64, 2] {
            store
                .put(Tree::DeadLetter, &seq.to_be_bytes(), &old_event(seq, "v"))
                .unwrap();
        }
    }
    let outbox = Outbox::open(Some(dir.path()), store.clone(), "s").unwrap();
    assert_eq!(all_seqs(&outbox), [3], "parked, not queued too");
    assert_eq!(outbox.stats(T).dead_letters, 2);
    // A retry that died after the log but before the dead letters went.
    {
        let mut s = outbox.lock();
        for seq in [1u64, 2] {
            s.log.push_event(seq, false, true, &old_event(seq, "v"));
        }
        s.log.commit(4).unwrap();
    }
    drop(outbox);
    let outbox = Outbox::open(Some(dir.path()), store, "s").unwrap();
    assert_eq!(all_seqs(&outbox), [1, 2, 3]);
    assert_eq!(outbox.stats(T).dead_letters, 0, "queued, not parked too");
}

const CHILD_DIR: &str = "STOREGATE_OUTBOX_POWER_CUT_DIR";
/// Appends stop once a number this high is handed out.
const TOTAL: u64 = 10_000;
/// Small enough that summaries are dropped for room, big enough that
/// nothing else is.
const CAP: usize = 3_000;
const SEGMENT: u64 = 64 << 10;

fn open_for_power_cut(dir: &Path) -> Outbox {
    // The store only holds counters here; a fresh one each time is fine.
    Outbox::open_sized(Some(dir), Arc::new(MemoryStore::new()), "s", CAP, SEGMENT).unwrap()
}

/// The child: appends from four threads until number `TOTAL`, printing
/// each number once `append` has returned (stored).
fn power_cut_child(dir: &Path) {
    let outbox = Arc::new(open_for_power_cut(dir));
    println!("ready");
    let n = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (outbox, n) = (outbox.clone(), n.clone());
            std::thread::spawn(move || {
                loop {
                    let i = n.fetch_add(1, Ordering::Relaxed);
                    let (ty, tag) = if i % 5 == 0 {
                        ("v", "v")
                    } else {
                        (FOOTFALL_SUMMARY, "s")
                    };
                    let e = outbox.append(ty, json!({"i": i}), T).unwrap();
                    let seq = e.sequence_number().unwrap();
                    println!("acked {seq} {tag}");
                    if seq >= TOTAL {
                        return;
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn power_cuts_lose_no_stored_event_and_leave_no_unnamed_hole() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        power_cut_child(Path::new(&dir));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let name = format!(
        "{}::power_cuts_lose_no_stored_event_and_leave_no_unnamed_hole",
        module_path!().split_once("::").unwrap().1
    );
    use rand::Rng;
    let mut rng = rand::thread_rng();
    // Sequence number → what was stored under it ("v" or "s").
    let mut stored: BTreeMap<u64, String> = BTreeMap::new();
    let kills = 100;
    // Runs killed after some appends returned and before the last number.
    let mut mid_stream = 0;
    for round in 0..=kills {
        let mut child = std::process::Command::new(&exe)
            .args([name.as_str(), "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR, dir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let mut lines = Vec::new();
        if round < kills {
            // Now and then while it opens the log, mostly mid-stream.
            if round % 10 != 3 {
                let ready = std::time::Instant::now() + Duration::from_secs(20);
                while let Ok(l) = rx.recv_timeout(ready - std::time::Instant::now()) {
                    // libtest may have started the line with the test name.
                    let is_ready = l.ends_with("ready");
                    lines.push(l);
                    if is_ready {
                        break;
                    }
                }
            }
            std::thread::sleep(Duration::from_micros(rng.gen_range(0..8_000)));
            let _ = child.kill(); // SIGKILL
            child.wait().unwrap();
        } else {
            assert!(child.wait().unwrap().success(), "the last run finishes");
        }
        reader.join().unwrap();
        lines.extend(rx.try_iter());
        let acked: Vec<u64> = lines
            .iter()
            .filter_map(|l| l.strip_prefix("acked ")?.split(' ').next()?.parse().ok())
            .collect();
        if round < kills && !acked.is_empty() && acked.iter().all(|s| *s < TOTAL) {
            mid_stream += 1;
        }
        for l in lines {
            let mut w = l.split(' ');
            if let (Some("acked"), Some(seq), Some(tag)) = (w.next(), w.next(), w.next()) {
                let seq: u64 = seq.parse().unwrap();
                let old = stored.insert(seq, tag.to_string());
                assert!(old.is_none(), "number {seq} handed out twice");
            }
        }
    }
    assert!(
        stored.len() as u64 >= TOTAL / 2,
        "only {} appends returned",
        stored.len()
    );
    eprintln!(
        "power cuts: {kills} kills, {mid_stream} of them mid-stream; {} appends returned",
        stored.len()
    );
    assert!(
        mid_stream >= kills / 3,
        "only {mid_stream} kills landed mid-stream"
    );

    // Deliver everything.
    let outbox = open_for_power_cut(dir.path());
    let mut delivered: BTreeMap<u64, CloudEvent> = BTreeMap::new();
    loop {
        let batch = outbox.peek(500, 1 << 20).unwrap();
        if batch.is_empty() {
            break;
        }
        let seqs: Vec<u64> = batch.iter().map(|(s, _)| *s).collect();
        for (seq, json) in batch {
            let e: CloudEvent = serde_json::from_slice(&json).unwrap();
            assert_eq!(e.sequence_number(), Some(seq));
            assert!(delivered.insert(seq, e).is_none(), "{seq} delivered twice");
        }
        outbox.ack(&seqs).unwrap();
    }
    assert!(outbox.is_empty());
    let mut named = BTreeSet::new();
    for e in delivered.values().filter(|e| e.ty == OUTBOX_GAP) {
        for r in e.data["ranges"].as_array().unwrap() {
            named.extend(r[0].as_u64().unwrap()..=r[1].as_u64().unwrap());
        }
    }
    for seq in &named {
        assert!(
            !delivered.contains_key(seq),
            "{seq} is named in a gap event and delivered"
        );
    }
    for (seq, tag) in &stored {
        match delivered.get(seq) {
            Some(e) => assert_eq!(e.ty == FOOTFALL_SUMMARY, tag == "s", "event {seq}"),
            None => assert!(
                tag == "s" && named.contains(seq),
                "stored event {seq} ({tag}) neither delivered nor named in a gap event"
            ),
        }
    }
    let last = *delivered.keys().chain(named.iter()).max().unwrap();
    let holes: Vec<u64> = (1..=last)
        .filter(|s| !delivered.contains_key(s) && !named.contains(s))
        .collect();
    assert!(
        holes.is_empty(),
        "numbers neither delivered nor named: {holes:?}"
    );
    assert!(
        !named.is_empty(),
        "the cap was never reached: nothing tested the gap"
    );
    assert!(last >= TOTAL);
}

#[test]
fn parked_and_retried_events_keep_their_place_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let open = || Outbox::open_sized(Some(dir.path()), store.clone(), "s", 1000, 4096).unwrap();
    let outbox = open();
    for i in 1..=60 {
        outbox
            .append("v", json!({"i": i, "pad": "x".repeat(100)}), T)
            .unwrap();
    }
    // HQ refuses 1..=20 and takes 21..=40.
    let refused = outbox.peek(20, usize::MAX).unwrap();
    outbox.park(&refused).unwrap();
    let taken: Vec<u64> = outbox
        .peek(20, usize::MAX)
        .unwrap()
        .iter()
        .map(|(s, _)| *s)
        .collect();
    assert_eq!(taken, (21..=40).collect::<Vec<_>>());
    outbox.ack(&taken).unwrap();
    drop(outbox);

    let outbox = open();
    let st = outbox.stats(T);
    assert_eq!((st.queued, st.dead_letters), (20, 20));
    assert_eq!(all_seqs(&outbox), (41..=60).collect::<Vec<_>>());
    assert_eq!(outbox.retry_dead_letters().unwrap(), 20);
    drop(outbox);

    // The retried ones go first, under their own numbers, after a restart
    // too; delivered, every segment but the newest goes.
    let outbox = open();
    let expect: Vec<u64> = (1..=20).chain(41..=60).collect();
    assert_eq!(all_seqs(&outbox), expect);
    assert_eq!(outbox.stats(T).dead_letters, 0);
    assert_eq!(outbox.append("v", json!({}), T).unwrap().sequence, "61");
    while !outbox.is_empty() {
        let seqs: Vec<u64> = outbox
            .peek(7, usize::MAX)
            .unwrap()
            .iter()
            .map(|(s, _)| *s)
            .collect();
        outbox.ack(&seqs).unwrap();
    }
    assert_eq!(segments(dir.path()).len(), 1);
    drop(outbox);
    let outbox = open();
    assert!(outbox.is_empty());
    assert_eq!(outbox.append("v", json!({}), T).unwrap().sequence, "62");
}
