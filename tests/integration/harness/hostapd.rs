//! The hostapd stand-in (`tests/lab/hostapd_standin.py`) driven from a
//! test: it speaks hostapd's control protocol on a Unix datagram socket
//! and plays the radio when told (`join MAC PASSPHRASE`, `leave MAC`,
//! `state`): a phone joins only if PBKDF2 of its passphrase over the SSID
//! equals a PSK line of the file, with that line's `keyid`.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::process::python;

/// The stand-in, killed when dropped.
pub struct Standin {
    child: Child,
    stdin: ChildStdin,
    lines: std_mpsc::Receiver<String>,
}

impl Standin {
    pub fn start(ssid: &str, ctrl: &Path, psk_file: &Path) -> Standin {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab/hostapd_standin.py");
        let mut child = Command::new(python())
            .arg(script)
            .arg("--ctrl")
            .arg(ctrl)
            .args(["--ssid", ssid, "--psk-file"])
            .arg(psk_file)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the hostapd stand-in");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std_mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut standin = Standin {
            child,
            stdin,
            lines,
        };
        assert_eq!(standin.line(), "ready");
        standin
    }

    fn line(&mut self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(10))
            .expect("the stand-in answers")
    }

    pub fn say(&mut self, command: &str) -> String {
        writeln!(self.stdin, "{command}").unwrap();
        self.line()
    }

    pub fn state(&mut self) -> Value {
        serde_json::from_str(&self.say("state")).unwrap()
    }

    /// Polls `state` until `check` holds or `within` passes.
    pub fn wait_state(&mut self, within: Duration, check: impl Fn(&Value) -> bool) -> Value {
        let end = Instant::now() + within;
        loop {
            let state = self.state();
            if check(&state) || Instant::now() > end {
                return state;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Standin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
