//! Running things: commands to completion, the storegate binary under test,
//! processes killed when dropped or when they overrun, signals, and whether
//! we are root.

use std::fs;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::Duration;

use super::wait::poll_until;

/// Is the effective uid 0? Read from /proc/self/status (no libc needed).
pub fn is_root() -> bool {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().nth(1).map(|euid| euid == "0"))
        .unwrap_or(false)
}

/// The Python the lab runs its scripts with.
pub fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// This build's storegate binary.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_storegate")
}

/// The storegate binary the lab tests: this build's, or `SG_LAB_STOREGATE`
/// (e.g. a release build or an installed package).
pub fn storegate_bin() -> String {
    std::env::var("SG_LAB_STOREGATE").unwrap_or_else(|_| bin().to_string())
}

fn cmd_line(program: &str, args: &[&str]) -> String {
    let mut s = program.to_string();
    for a in args {
        s.push(' ');
        s.push_str(a);
    }
    s
}

/// Runs a command to completion, capturing its output.
pub fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{}`: {e}", cmd_line(program, args)))
}

/// Runs a command that must succeed.
pub fn must(program: &str, args: &[&str]) -> Output {
    let out = run(program, args);
    if !out.status.success() {
        panic!(
            "`{}` failed ({}): {}{}",
            cmd_line(program, args),
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    out
}

/// `kill SIG PIDS...` through the shell's builtin (no procps needed).
pub fn send_signal(sig: &str, pids: &[&str]) {
    let mut args = vec!["-c", "kill \"$@\" 2>/dev/null", "sh", sig];
    args.extend_from_slice(pids);
    let _ = run("sh", &args);
}

/// Waits up to `within` for `child` to exit, and kills it if it has not;
/// returns its output and whether it exited by itself.
pub fn output_within(mut child: Child, within: Duration) -> (Output, bool) {
    let exited = poll_until(within, Duration::from_millis(20), || {
        child.try_wait().ok().flatten()
    })
    .is_some();
    if !exited {
        let _ = child.kill();
    }
    let out = child.wait_with_output().expect("wait for the process");
    (out, exited)
}

/// A process killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    /// SIGKILL, and reaps the process: it gets no chance to shut down.
    pub fn kill(&mut self) {
        self.0.kill().unwrap();
        let _ = self.0.wait();
    }
}

/// Sends `sig` (`-INT`, `-TERM`…) with kill(1), which must succeed, then
/// polls every `every` for the exit; `None` if there was none within
/// `within`.
pub fn stop_with(
    child: &mut Child,
    sig: &str,
    within: Duration,
    every: Duration,
) -> Option<ExitStatus> {
    let pid = child.id().to_string();
    let killed = Command::new("kill").args([sig, &pid]).status().unwrap();
    assert!(killed.success(), "kill {sig} {pid}");
    poll_until(within, every, || child.try_wait().unwrap())
}

/// Whether headless Chromium can run the browser tests. Without it a
/// browser test is skipped, but only when not root: as root (CI)
/// `scripts/test.sh` installs it, so its absence fails the test.
pub fn chromium_or_skip() -> bool {
    let found = ["chromium", "chromium-browser"].iter().any(|b| {
        Command::new("sh")
            .args(["-c", &format!("command -v {b}")])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !found {
        assert!(
            !super::is_root(),
            "chromium is missing: scripts/test.sh installs it (apt package chromium)"
        );
        eprintln!("skipping: chromium is not installed and we are not root");
    }
    found
}
