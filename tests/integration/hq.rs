//! Shared harness for the HQ tests that need no root: the reference
//! receiver (`storegate hq-receiver`, plain or TLS) and a daemon with no
//! enforcement on loopback whose `[hq]` points at it (its stderr in
//! `storegate.log` in its directory). Processes are killed when dropped.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_storegate")
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A process killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until `ready()`, failing if the process exits first.
fn wait_until(proc: &mut Proc, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready() {
        if let Ok(Some(status)) = proc.0.try_wait() {
            panic!("{what} exited: {status}");
        }
        assert!(Instant::now() < deadline, "{what} did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

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
    wait_until(&mut proc, "hq-receiver", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    (proc, rx)
}

pub struct Daemon {
    pub proc: Proc,
    pub socket: PathBuf,
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
    let socket = dir.join("control.sock");
    let cfg = dir.join("storegate.toml");
    std::fs::write(
        &cfg,
        format!(
            "[store]\nid = \"{store_id}\"\n[lan]\ninterface = \"lo\"\n[portal]\nlisten = \"127.0.0.1:{}\"\n\
             [firewall]\nbackend = \"none\"\n[storage]\npath = \"{}\"\n[control]\nsocket = \"{}\"\n\
             [hq]\nurl = \"{hq_url}\"\nsecret = \"{secret}\"\n{hq_extra}",
            free_port(),
            dir.join("state").display(),
            socket.display()
        ),
    )
    .unwrap();
    cfg
}

/// The daemon's log (its stderr, appended across restarts).
pub fn log_path(dir: &Path) -> PathBuf {
    dir.join("storegate.log")
}

/// A daemon whose `[hq]` has `hq_extra` as well (see [`write_config`]);
/// its stderr goes to [`log_path`].
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

/// Starts a daemon on a config written by [`write_config`] (perhaps
/// edited since) and waits until it answers `ctl status`.
pub fn start(dir: &Path, cfg: &Path) -> Daemon {
    let socket = dir.join("control.sock");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path(dir))
        .unwrap();
    let child = Command::new(bin())
        .args(["run", "-c"])
        .arg(cfg)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start storegate");
    let mut proc = Proc(child);
    wait_until(&mut proc, "storegate", || {
        ctl_at(&socket, &["status"]).is_some()
    });
    Daemon { proc, socket }
}

/// `storegate ctl -s SOCKET ARGS --json`, parsed; `None` if it failed.
pub fn ctl_at(socket: &Path, args: &[&str]) -> Option<Value> {
    let out = Command::new(bin())
        .arg("ctl")
        .arg("-s")
        .arg(socket)
        .args(args)
        .arg("--json")
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).ok())
        .flatten()
}

pub fn ctl(d: &Daemon, args: &[&str]) -> Option<Value> {
    ctl_at(&d.socket, args)
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
