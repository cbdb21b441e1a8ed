//! `storegate ctl` on a daemon's control socket: the command itself, its
//! `--json` answers, and the lookups tests make in them (a client's entry
//! in `ctl clients`).

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use super::gateway::Storegate;
use super::process::{bin, storegate_bin};
use crate::{check, check_eq, fail};

/// `PROGRAM ctl -s SOCKET ARGS...`, ready to run.
pub fn ctl_command(program: impl AsRef<OsStr>, socket: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(program);
    cmd.arg("ctl").arg("-s").arg(socket).args(args);
    cmd
}

/// `storegate ctl -s SOCKET ARGS --json` with this build's binary, parsed;
/// `None` if it failed.
pub fn ctl_at(socket: &Path, args: &[&str]) -> Option<Value> {
    let out = ctl_command(bin(), socket, args)
        .arg("--json")
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).ok())
        .flatten()
}

impl Storegate {
    /// `storegate ctl -s SOCKET ARGS...`
    pub fn ctl(&self, args: &[&str]) -> Output {
        ctl_command(storegate_bin(), &self.socket, args)
            .stdin(Stdio::null())
            .output()
            .expect("run storegate ctl")
    }

    /// `ctl ARGS...`, which must succeed.
    pub fn ctl_ok(&self, args: &[&str]) -> Output {
        let out = self.ctl(args);
        check!(
            self,
            out.status.success(),
            "ctl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// `ctl ARGS... --json`, which must succeed and print one JSON document.
    pub fn ctl_json(&self, args: &[&str]) -> Value {
        let mut full = args.to_vec();
        full.push("--json");
        let out = self.ctl(&full);
        check!(
            self,
            out.status.success(),
            "ctl {} failed ({}): {}",
            full.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        match serde_json::from_slice(&out.stdout) {
            Ok(v) => v,
            Err(e) => fail!(
                self,
                "ctl {}: not JSON ({e}): {}",
                full.join(" "),
                String::from_utf8_lossy(&out.stdout)
            ),
        }
    }
}

/// The `ctl clients --json` entry for a MAC, if any.
pub fn client_entry(gate: &Storegate, mac: &str) -> Option<Value> {
    let clients = gate.ctl_json(&["clients"]);
    check!(
        gate,
        clients.is_array(),
        "ctl clients --json is not an array: {clients}"
    );
    clients
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| {
            e["mac"]
                .as_str()
                .is_some_and(|m| m.eq_ignore_ascii_case(mac))
        })
        .cloned()
}

/// The `ctl clients --json` entry for a MAC, which must be listed as
/// authorised, with the time it was.
pub fn authorized_entry(gate: &Storegate, mac: &str) -> Value {
    match client_entry(gate, mac) {
        Some(e) => {
            check_eq!(gate, e["state"].as_str(), Some("authorized"), "{e}");
            check!(gate, e["authorized_at"].is_string(), "authorized_at: {e}");
            e
        }
        None => fail!(
            gate,
            "ctl clients does not list {mac}: {}",
            gate.ctl_json(&["clients"])
        ),
    }
}
