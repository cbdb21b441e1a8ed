//! HQ for the tests that need no root: the reference receiver
//! (`storegate hq-receiver`, plain or TLS) on a loopback port, whose
//! printed events arrive on a channel, and loopback daemons whose `[hq]`
//! points at it; events made by `ctl auth` and watched until delivered.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::daemon::{Daemon, ctl, loopback_config, start};
use super::process::{Proc, bin};
use super::wait::wait_started;

/// The reference receiver, over TLS when `tls` gives (cert, key) PEM files;
/// its stdout lines arrive on the channel as JSON.
pub fn receiver(port: u16, secret: &str, tls: Option<(&Path, &Path)>) -> (Proc, Receiver<Value>) {
    let mut args: Vec<&OsStr> = Vec::new();
    if let Some((cert, key)) = tls {
        args.extend([
            OsStr::new("--tls-cert"),
            cert.as_os_str(),
            OsStr::new("--tls-key"),
            key.as_os_str(),
        ]);
    }
    receiver_with(port, secret, &args)
}

/// The reference receiver with more arguments (`--tls-cert`, `--client-ca`…).
pub fn receiver_with(port: u16, secret: &str, args: &[&OsStr]) -> (Proc, Receiver<Value>) {
    let mut cmd = Command::new(bin());
    cmd.args([
        "hq-receiver",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--secret",
        secret,
    ]);
    cmd.args(args);
    let mut child = cmd
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
    let mut proc = Proc(child);
    wait_started(&mut proc, "hq-receiver", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    (proc, rx)
}

/// A daemon with state in `dir`, delivering to `hq_url`.
pub fn daemon(
    dir: &Path,
    store_id: &str,
    hq_url: &str,
    secret: &str,
    ca_file: Option<&Path>,
) -> Daemon {
    let ca = ca_file
        .map(|p| format!("ca_file = \"{}\"\n", p.display()))
        .unwrap_or_default();
    daemon_with(dir, store_id, hq_url, secret, &ca)
}

/// Writes the daemon's config to `dir/storegate.toml`, with `hq_extra`
/// (whole lines) added to its `[hq]` section.
pub fn write_config(
    dir: &Path,
    store_id: &str,
    hq_url: &str,
    secret: &str,
    hq_extra: &str,
) -> PathBuf {
    let cfg = dir.join("storegate.toml");
    std::fs::write(
        &cfg,
        loopback_config(
            dir,
            &format!("id = \"{store_id}\"\n"),
            &format!("[hq]\nurl = \"{hq_url}\"\nsecret = \"{secret}\"\n{hq_extra}"),
        ),
    )
    .unwrap();
    cfg
}

/// A daemon whose `[hq]` has `hq_extra` as well (see [`write_config`]).
pub fn daemon_with(
    dir: &Path,
    store_id: &str,
    hq_url: &str,
    secret: &str,
    hq_extra: &str,
) -> Daemon {
    let cfg = write_config(dir, store_id, hq_url, secret, hq_extra);
    start(dir, &cfg)
}

/// Authorises the made-up clients `MACS:from` .. `MACS:from + n - 1`
/// (`macs` is the first five octets): one `session.authorized` event each.
pub fn make_events(d: &Daemon, macs: &str, from: u8, n: u8) {
    for i in from..from + n {
        let mac = format!("{macs}:{i:02x}");
        assert!(ctl(d, &["auth", &mac]).is_some(), "ctl auth {mac}");
    }
}

/// Waits until the outbox is empty (everything delivered).
pub fn wait_drained(d: &Daemon, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let status = ctl(d, &["status"]);
        if status.as_ref().and_then(|s| s["outbox"]["queued"].as_u64()) == Some(0) {
            return;
        }
        assert!(Instant::now() < deadline, "outbox not drained: {status:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Collects events printed by the receiver until `n` have come.
pub fn collect(rx: &Receiver<Value>, n: usize, within: Duration) -> Vec<Value> {
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

/// The `sequence` of each event, as numbers.
pub fn sequences(events: &[Value]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| e["sequence"].as_str()?.parse().ok())
        .collect()
}
