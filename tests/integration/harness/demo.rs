//! `storegate demo` as a user runs it: started with some arguments, its
//! banner read ("key: value" lines up to "Stop with Ctrl-C."), its later
//! stdout lines and its stderr kept for the test.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::process::{Proc, bin, stop_with};

/// A running demo.
pub struct Demo {
    pub proc: Proc,
    /// The banner's "key: value" lines (the value's first word).
    pub banner: HashMap<String, String>,
    /// Every line before the banner's end, the banner's included.
    pub lines: Vec<String>,
    /// How long from the start to the banner's last line.
    pub ready_after: Duration,
    /// Lines printed after the banner.
    pub rest: Receiver<String>,
    /// Stderr, once the process has ended.
    pub log: JoinHandle<String>,
}

/// Starts `storegate demo ARGS` and waits up to `within` for its banner.
pub fn start(args: &[&str], within: Duration) -> Demo {
    let t0 = Instant::now();
    let child = Command::new(bin())
        .arg("demo")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start storegate demo");
    let mut proc = Proc(child);
    let (tx, rx) = channel();
    let stdout = proc.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let stderr = proc.0.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = BufReader::new(stderr).read_to_string(&mut text);
        text
    });
    let mut banner = HashMap::new();
    let mut lines = Vec::new();
    loop {
        let left = within.saturating_sub(t0.elapsed());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no banner within {within:?}; got {lines:?}"));
        lines.push(line.clone());
        if line.starts_with("Stop with Ctrl-C") {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            let first = v.split_whitespace().next().unwrap_or("");
            banner.insert(k.trim().to_string(), first.to_string());
        }
    }
    Demo {
        proc,
        banner,
        lines,
        ready_after: t0.elapsed(),
        rest: rx,
        log,
    }
}

/// The port of a URL the banner printed (`http://127.0.0.1:PORT/`).
pub fn port_of(url: &str) -> u16 {
    url.trim_end_matches('/')
        .rsplit(':')
        .next()
        .and_then(|p| p.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {url}"))
}

/// Ctrl-C (SIGINT): the demo must stop cleanly, exit 0, with no panic in
/// its stderr; returns that stderr.
pub fn interrupt(proc: &mut Proc, log: JoinHandle<String>) -> String {
    let exit = stop_with(
        &mut proc.0,
        "-INT",
        Duration::from_secs(15),
        Duration::from_millis(50),
    )
    .unwrap_or_else(|| panic!("the demo did not stop on SIGINT"));
    let log = log.join().unwrap_or_default();
    assert_eq!(exit.code(), Some(0), "stderr:\n{log}");
    assert!(!log.contains("panicked"), "{log}");
    log
}
