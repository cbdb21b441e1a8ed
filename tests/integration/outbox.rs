//! The outbox cap and HQ sync end to end, without root. With HQ away the
//! outbox fills up, footfall summaries are dropped before anything else,
//! and once HQ answers it gets every other event plus one `outbox.gap`
//! event that names exactly the sequence numbers it will never see. The
//! sync document comes from the reference receiver and outlives a restart
//! while HQ is away.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::daemon::{self, Daemon, ctl};
use crate::harness::hq::{self, make_events};
use crate::harness::loopback::free_port;

const SECRET: &str = "whsec_c3RvcmVnYXRlLW91dGJveC1jYXAtdGVzdC1rZXk=";
const SUMMARY: &str = "com.storegate.footfall.summary";
const GAP: &str = "com.storegate.outbox.gap";
const AUTHORIZED: &str = "com.storegate.session.authorized";

#[test]
fn a_full_outbox_drops_summaries_first_and_hq_hears_of_the_gap() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/storegate");
    let cfg = hq::write_config(dir.path(), "cap-test", &url, SECRET, "");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let text = text.replace("[storage]\n", "[storage]\noutbox_max_events = 10\n")
        + "[presence]\nsummary_interval = \"1s\"\n";
    std::fs::write(&cfg, text).unwrap();
    let d = daemon::start(dir.path(), &cfg);

    // HQ away: summaries pile up.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let st = ctl(&d, &["status"]).unwrap();
        if st["outbox"]["droppable"].as_u64().unwrap_or(0) >= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "no summaries queued: {st}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Eight sign-ins: more than the cap holds with the summaries.
    make_events(&d, "02:00:00:00:0c", 1, 8);
    // A few more summaries while HQ is still away: each pushes out an
    // older summary, never a sign-in.
    std::thread::sleep(Duration::from_millis(2500));
    let st = ctl(&d, &["status"]).unwrap();
    assert!(st["outbox"]["queued"].as_u64().unwrap() <= 10, "{st}");
    assert!(st["outbox"]["dropped"].as_u64().unwrap() >= 2, "{st}");

    // HQ back: collect until the outbox is empty.
    let (_r, rx) = hq::receiver(port, SECRET, None);
    let mut got: Vec<Value> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        while let Ok(v) = rx.recv_timeout(Duration::from_millis(100)) {
            got.push(v);
        }
        let queued = ctl(&d, &["status"]).and_then(|s| s["outbox"]["queued"].as_u64());
        let has_gap = got.iter().any(|e| e["type"] == GAP);
        if queued == Some(0) && has_gap {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not drained: queued {queued:?}, got {}",
            got.len()
        );
    }
    // A last look for events printed just before the outbox emptied.
    while let Ok(v) = rx.recv_timeout(Duration::from_millis(300)) {
        got.push(v);
    }

    let of = |ty: &str| got.iter().filter(|e| e["type"] == ty).count();
    assert_eq!(of(AUTHORIZED), 8, "every sign-in arrives: {got:?}");
    let seqs: BTreeSet<u64> = got
        .iter()
        .filter_map(|e| e["sequence"].as_str()?.parse().ok())
        .collect();
    // The last gap event accounts for every number HQ did not get before it.
    let gap = got
        .iter()
        .filter(|e| e["type"] == GAP)
        .max_by_key(|e| e["sequence"].as_str().and_then(|s| s.parse::<u64>().ok()))
        .unwrap();
    let gap_seq: u64 = gap["sequence"].as_str().unwrap().parse().unwrap();
    let mut listed = BTreeSet::new();
    for r in gap["data"]["ranges"].as_array().unwrap() {
        listed.extend(r[0].as_u64().unwrap()..=r[1].as_u64().unwrap());
    }
    for s in 1..gap_seq {
        assert!(
            seqs.contains(&s) || listed.contains(&s),
            "sequence {s} neither arrived nor is in the gap event {gap}"
        );
    }
    assert!(
        gap["data"]["types"][SUMMARY].as_u64().unwrap_or(0) >= 2,
        "summaries were the ones dropped: {gap}"
    );
    assert!(
        gap["data"]["types"].get(AUTHORIZED).is_none(),
        "a sign-in was dropped while summaries were queued: {gap}"
    );
    assert_eq!(gap["data"]["reason"], "outbox_full");
}

/// The box fetches HQ's sync document from the reference receiver, and
/// keeps the last good one across a restart while HQ is away.
#[test]
fn the_sync_document_is_fetched_and_kept_while_hq_is_away() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let doc = dir.path().join("sync.json");
    std::fs::write(
        &doc,
        serde_json::json!({
            "version": "2026-11-30.1",
            "campaigns": [{"id": "c1", "name": "Welcome back", "audience": {"returning": true}}],
            "staff_devices": ["A".repeat(43)],
            "blocked_devices": [],
        })
        .to_string(),
    )
    .unwrap();
    let (r, _rx) = hq::receiver_with(
        port,
        SECRET,
        &[std::ffi::OsStr::new("--sync-file"), doc.as_os_str()],
    );
    let url = format!("http://127.0.0.1:{port}/storegate");
    let d = hq::daemon(dir.path(), "sync-test", &url, SECRET, None);
    let synced = |d: &Daemon| ctl(d, &["status"]).map(|s| s["hq"]["sync"].clone());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let sync = synced(&d);
        if sync
            .as_ref()
            .is_some_and(|s| s["version"] == "2026-11-30.1")
        {
            let s = sync.unwrap();
            assert_eq!(s["campaigns"], 1, "{s}");
            assert_eq!(s["staff_devices"], 1, "{s}");
            break;
        }
        assert!(Instant::now() < deadline, "not synced: {sync:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(d);
    drop(r);
    // HQ away, the box restarts: the stored document is in force.
    let d = hq::daemon(dir.path(), "sync-test", &url, SECRET, None);
    let s = synced(&d).unwrap();
    assert_eq!(s["version"], "2026-11-30.1", "{s}");
}
