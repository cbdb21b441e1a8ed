//! A storegate daemon with no enforcement (firewall backend `none`, LAN
//! `lo`, portal on a free loopback port), for the tests that need no root:
//! its config, its process (killed when dropped) and its control socket.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use super::ctl::ctl_at;
use super::loopback::free_port;
use super::process::{Proc, bin};
use super::wait::wait_started;

/// A daemon started by [`start`]; killed when dropped.
pub struct Daemon {
    pub proc: Proc,
    pub socket: PathBuf,
}

/// A loopback daemon's config with its state and control socket in `dir`:
/// `[store]` with `store` (whole lines), then the fixed sections, then
/// `rest` (whole sections).
pub fn loopback_config(dir: &Path, store: &str, rest: &str) -> String {
    format!(
        "[store]\n{store}[lan]\ninterface = \"lo\"\n[portal]\nlisten = \"127.0.0.1:{}\"\n\
         [firewall]\nbackend = \"none\"\n[storage]\npath = \"{}\"\n[control]\nsocket = \"{}\"\n{rest}",
        free_port(),
        dir.join("state").display(),
        dir.join("control.sock").display()
    )
}

/// The daemon's log (its stderr, appended across restarts).
pub fn log_path(dir: &Path) -> PathBuf {
    dir.join("storegate.log")
}

/// Starts a daemon on a config in `dir` (see [`loopback_config`]) and
/// waits until it answers `ctl status`; its stderr goes to [`log_path`].
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
    wait_started(&mut proc, "storegate", || {
        ctl_at(&socket, &["status"]).is_some()
    });
    Daemon { proc, socket }
}

/// `storegate ctl ARGS --json` on the daemon, parsed; `None` if it failed.
pub fn ctl(d: &Daemon, args: &[&str]) -> Option<Value> {
    ctl_at(&d.socket, args)
}
