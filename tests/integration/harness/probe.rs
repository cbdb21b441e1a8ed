//! Traffic from a phone: `tests/lab/probe.py` run in the phone's namespace
//! (HTTP without following redirects, TCP connects, UDP echo, DNS queries,
//! raw bytes over TCP), and its answer as a [`Probe`].

use std::fmt;
use std::io::Write;
use std::process::{Command, Stdio};
use std::thread;

use serde_json::Value;

use super::lab::{Client, Lab};
use super::process::python;
use crate::{check, fail};

/// `p` (a TCP connect) was refused at once: a reset, not a wait for a
/// timeout, so nothing hangs on the phone.
pub fn assert_refused_at_once(lab: &Lab, p: &Probe, what: &str) {
    check!(
        lab,
        matches!(p.result(), "refused" | "reset"),
        "{what}: {p}"
    );
    check!(
        lab,
        p.elapsed_ms() < 500.0,
        "{what} must be refused at once, not left to time out: {p}"
    );
}

impl Lab {
    /// Runs `tests/lab/probe.py ARGS` in the client's namespace.
    pub fn probe(&self, c: Client, args: &[&str]) -> Probe {
        self.probe_stdin(c, args, None)
    }

    fn probe_stdin(&self, c: Client, args: &[&str], stdin: Option<&[u8]>) -> Probe {
        let script = self.lab_scripts.join("probe.py").display().to_string();
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", self.ns(c), python(), &script])
            .args(args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = cmd.spawn().expect("start probe.py");
        let writer = stdin.map(|data| {
            let mut pipe = child.stdin.take().expect("probe stdin");
            let data = data.to_vec();
            thread::spawn(move || {
                let _ = pipe.write_all(&data);
            })
        });
        let out = child.wait_with_output().expect("wait for probe.py");
        if let Some(w) = writer {
            let _ = w.join();
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout.lines().last().unwrap_or("");
        match serde_json::from_str::<Value>(line) {
            Ok(json) if out.status.success() => Probe {
                what: format!("{} probe {}", c.name(), args.join(" ")),
                json,
            },
            _ => fail!(
                self,
                "probe.py {} in {} failed ({}): {}{}",
                args.join(" "),
                c.name(),
                out.status,
                stdout,
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }

    /// `GET url` without following redirects (3 s timeout).
    pub fn http(&self, c: Client, url: &str) -> Probe {
        self.probe(c, &["http", url])
    }

    pub fn http_timeout(&self, c: Client, url: &str, timeout_s: f64) -> Probe {
        self.probe(c, &["http", url, "--timeout", &timeout_s.to_string()])
    }

    /// `POST url` with a form body such as `accept_terms=yes`.
    pub fn post(&self, c: Client, url: &str, form: &str) -> Probe {
        self.probe(c, &["http", url, "--data", form])
    }

    pub fn tcp(&self, c: Client, host: &str, port: u16, timeout_s: f64) -> Probe {
        self.probe(c, &["tcp", host, &port.to_string(), &timeout_s.to_string()])
    }

    pub fn udp(&self, c: Client, host: &str, port: u16, timeout_s: f64) -> Probe {
        self.probe(c, &["udp", host, &port.to_string(), &timeout_s.to_string()])
    }

    /// An A query for `name` sent to `server`.
    pub fn dns(&self, c: Client, name: &str, server: &str) -> Probe {
        self.probe(c, &["dns", name, server])
    }

    /// Sends `data` over a raw TCP connection and reads the answer.
    pub fn raw(&self, c: Client, host: &str, port: u16, timeout_s: f64, data: &[u8]) -> Probe {
        self.probe_stdin(
            c,
            &["raw", host, &port.to_string(), &timeout_s.to_string()],
            Some(data),
        )
    }
}

/// The result of one `probe.py` run: the JSON object it printed.
#[derive(Clone)]
pub struct Probe {
    pub what: String,
    pub json: Value,
}

impl Probe {
    /// `response`, `connected`, `reply`, `answer`, or a failure kind
    /// (`refused`, `timeout`, `reset`, `closed`, `unreachable`, `other`).
    pub fn result(&self) -> &str {
        self.json["result"].as_str().unwrap_or("")
    }

    pub fn status(&self) -> Option<u16> {
        self.json["status"].as_u64().map(|s| s as u16)
    }

    /// A response header (name in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.json["headers"][name.to_ascii_lowercase()].as_str()
    }

    pub fn body(&self) -> &str {
        self.json["body"].as_str().unwrap_or("")
    }

    /// Raw bytes received by a `raw` probe (latin-1).
    pub fn data(&self) -> &str {
        self.json["data"].as_str().unwrap_or("")
    }

    pub fn elapsed_ms(&self) -> f64 {
        self.json["elapsed_ms"].as_f64().unwrap_or(f64::NAN)
    }

    /// The A records of a `dns` probe.
    pub fn a_records(&self) -> Vec<String> {
        self.json["a"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The body parsed as JSON.
    pub fn body_json(&self) -> Option<Value> {
        serde_json::from_str(self.body()).ok()
    }
}

impl fmt::Debug for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} => {}", self.what, self.json)
    }
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Runs `probes` side by side (the slow ones each wait for a timeout);
/// their results in the same order.
pub fn side_by_side<const N: usize>(probes: [&(dyn Fn() -> Probe + Sync); N]) -> [Probe; N] {
    thread::scope(|s| {
        let running = probes.map(|p| s.spawn(p));
        running.map(|h| h.join().unwrap())
    })
}
