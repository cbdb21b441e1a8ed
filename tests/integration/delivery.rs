//! HQ delivery end to end, without root: a daemon (no enforcement, on
//! loopback) signs and posts its outbox to the reference receiver
//! (`storegate hq-receiver`). Events arrive in sequence order; while the
//! receiver is down, or refuses the signature, they wait in the outbox and
//! all arrive once it answers.

use std::path::Path;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::daemon::{Daemon, ctl};
use crate::harness::hq::{self, collect, make_events, sequences};
use crate::harness::loopback::free_port;
use crate::harness::process::Proc;
use crate::harness::wait::poll;

const SECRET: &str = "whsec_c3RvcmVnYXRlLWRlbGl2ZXJ5LXRlc3Qta2V5";
const WRONG: &str = "whsec_bm90LXRoZS1yaWdodC1rZXktYXQtYWxsLTEyMw==";
/// The made-up clients' MACs, less the last octet.
const MACS: &str = "02:00:00:00:00";

fn daemon(dir: &Path, hq_port: u16) -> Daemon {
    hq::daemon(
        dir,
        "hq-test",
        &format!("http://127.0.0.1:{hq_port}/storegate"),
        SECRET,
        None,
    )
}

fn receiver(port: u16, secret: &str) -> (Proc, Receiver<Value>) {
    hq::receiver(port, secret, None)
}

#[test]
fn events_reach_hq_signed_and_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (_r, rx) = receiver(port, SECRET);
    let d = daemon(dir.path(), port);
    let t = Instant::now();
    make_events(&d, MACS, 1, 3);
    let got = collect(&rx, 3, Duration::from_secs(5));
    assert_eq!(got.len(), 3, "events at HQ within 5 s: {got:?}");
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(sequences(&got), [1, 2, 3], "in sequence order: {got:?}");
    for e in &got {
        assert_eq!(e["type"], "com.storegate.session.authorized", "{e}");
        assert_eq!(e["source"], "/stores/hq-test");
        assert!(
            !e.to_string().contains("02:00:00:00:00"),
            "a raw MAC reached HQ: {e}"
        );
    }
    // Delivered events leave the outbox.
    hq::wait_drained(&d, Duration::from_secs(3));
}

#[test]
fn events_wait_while_hq_is_down_and_refused_ones_are_parked() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let d = daemon(dir.path(), port);
    // HQ down: events queue.
    make_events(&d, MACS, 1, 3);
    std::thread::sleep(Duration::from_millis(700));
    let status = ctl(&d, &["status"]).unwrap();
    assert_eq!(status["outbox"]["queued"], 3, "{status}");
    assert!(
        status["hq"]["last_error"].is_string(),
        "the failure is visible: {status}"
    );

    // HQ up but with another key: it refuses (401), which retrying cannot
    // fix, so the batches are parked, not lost.
    let (wrong, wrong_rx) = receiver(port, WRONG);
    make_events(&d, MACS, 4, 2);
    let parked = poll(Duration::from_secs(15), Duration::from_millis(100), || {
        let parked = ctl(&d, &["dead-letters"])
            .and_then(|v| v.as_array().map(Vec::len))
            .unwrap_or(0);
        if parked == 5 { Ok(parked) } else { Err(parked) }
    })
    .unwrap_or_else(|parked| panic!("refused events not parked: {parked} of 5"));
    assert!(
        collect(&wrong_rx, 1, Duration::from_millis(200)).is_empty(),
        "a refused batch printed events"
    );
    let status = ctl(&d, &["status"]).unwrap();
    assert_eq!(status["outbox"]["queued"], 0, "{status}");
    assert_eq!(status["hq"]["dead_lettered"], parked, "{status}");
    drop(wrong);

    // HQ fixed, the operator retries: everything arrives, in order, once.
    let (_r, rx) = receiver(port, SECRET);
    assert_eq!(
        ctl(&d, &["dead-letters", "--retry"]).unwrap()["requeued"],
        5
    );
    let got = collect(&rx, 5, Duration::from_secs(70));
    assert_eq!(sequences(&got), [1, 2, 3, 4, 5], "{got:?}");
    assert!(
        collect(&rx, 1, Duration::from_millis(500)).is_empty(),
        "an event arrived twice"
    );
}

#[test]
fn events_stored_before_a_sigkill_all_arrive_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut d = daemon(dir.path(), port);
    // HQ down; each `ctl auth` that returned had its event stored.
    make_events(&d, MACS, 1, 5);
    // SIGKILL: no shutdown, no final flush.
    d.proc.kill();
    let (_r, rx) = receiver(port, SECRET);
    let _d2 = daemon(dir.path(), port);
    let got = collect(&rx, 5, Duration::from_secs(15));
    let mut seqs = sequences(&got);
    seqs.dedup();
    assert_eq!(
        seqs,
        [1, 2, 3, 4, 5],
        "every stored event arrives after the crash: {got:?}"
    );
}
