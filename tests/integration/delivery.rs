//! HQ delivery end to end, without root: a daemon (no enforcement, on
//! loopback) signs and posts its outbox to the reference receiver
//! (`storegate hq-receiver`). Events arrive in sequence order; while the
//! receiver is down, or refuses the signature, they wait in the outbox and
//! all arrive once it answers.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::Value;

const SECRET: &str = "whsec_c3RvcmVnYXRlLWRlbGl2ZXJ5LXRlc3Qta2V5";
const WRONG: &str = "whsec_bm90LXRoZS1yaWdodC1rZXktYXQtYWxsLTEyMw==";

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_storegate")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The reference receiver; its stdout lines arrive on the channel.
fn receiver(port: u16, secret: &str) -> (Proc, Receiver<Value>) {
    let mut child = Command::new(bin())
        .args([
            "hq-receiver",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--secret",
            secret,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start hq-receiver");
    let out = child.stdout.take().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                let _ = tx.send(v);
            }
        }
    });
    // Ready when it accepts connections.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "hq-receiver did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    (Proc(child), rx)
}

struct Daemon {
    _proc: Proc,
    socket: PathBuf,
}

fn daemon(dir: &Path, hq_port: u16) -> Daemon {
    let socket = dir.join("control.sock");
    let cfg = dir.join("storegate.toml");
    std::fs::write(
        &cfg,
        format!(
            "[store]\nid = \"hq-test\"\n[lan]\ninterface = \"lo\"\n[portal]\nlisten = \"127.0.0.1:{}\"\n\
             [firewall]\nbackend = \"none\"\n[storage]\npath = \"{}\"\n[control]\nsocket = \"{}\"\n\
             [hq]\nurl = \"http://127.0.0.1:{hq_port}/storegate\"\nsecret = \"{SECRET}\"\n",
            free_port(),
            dir.join("state").display(),
            socket.display()
        ),
    )
    .unwrap();
    let child = Command::new(bin())
        .args(["run", "-c"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start storegate");
    let d = Daemon {
        _proc: Proc(child),
        socket,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while ctl(&d, &["status"]).is_none() {
        assert!(Instant::now() < deadline, "storegate did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    d
}

fn ctl(d: &Daemon, args: &[&str]) -> Option<Value> {
    let out = Command::new(bin())
        .arg("ctl")
        .arg("-s")
        .arg(&d.socket)
        .args(args)
        .arg("--json")
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).ok())
        .flatten()
}

/// Authorises `n` made-up clients: each a `session.authorized` event.
fn make_events(d: &Daemon, from: u8, n: u8) {
    for i in from..from + n {
        let mac = format!("02:00:00:00:00:{i:02x}");
        assert!(ctl(d, &["auth", &mac]).is_some(), "ctl auth {mac}");
    }
}

/// Collects events printed by the receiver until `n` have come.
fn collect(rx: &Receiver<Value>, n: usize, within: Duration) -> Vec<Value> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    while got.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(v) => got.push(v),
            Err(_) => break,
        }
    }
    got
}

fn sequences(events: &[Value]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| e["sequence"].as_str()?.parse().ok())
        .collect()
}

#[test]
fn events_reach_hq_signed_and_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (_r, rx) = receiver(port, SECRET);
    let d = daemon(dir.path(), port);
    let t = Instant::now();
    make_events(&d, 1, 3);
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
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let queued = ctl(&d, &["status"]).and_then(|s| s["outbox"]["queued"].as_u64());
        if queued == Some(0) {
            break;
        }
        assert!(Instant::now() < deadline, "outbox not drained: {queued:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn events_wait_while_hq_is_down_and_refused_ones_are_parked() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let d = daemon(dir.path(), port);
    // HQ down: events queue.
    make_events(&d, 1, 3);
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
    make_events(&d, 4, 2);
    let deadline = Instant::now() + Duration::from_secs(15);
    let parked = loop {
        let parked = ctl(&d, &["dead-letters"])
            .and_then(|v| v.as_array().map(Vec::len))
            .unwrap_or(0);
        if parked == 5 {
            break parked;
        }
        assert!(
            Instant::now() < deadline,
            "refused events not parked: {parked} of 5"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
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
    make_events(&d, 1, 5);
    // SIGKILL: no shutdown, no final flush.
    d._proc.0.kill().unwrap();
    let _ = d._proc.0.wait();
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
