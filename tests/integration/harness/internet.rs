//! "The internet": `tests/lab/internet.py` in the internet namespace
//! (HTTP on ports 80 and 8080, TCP 443, UDP echo on 9999, over IPv4 and
//! IPv6), and whether a phone reaches it.

use std::process::Child;
use std::time::{Duration, Instant};

use super::lab::{Client, INET_BODY, INET_V4, Lab};
use super::process::python;
use super::wait::poll_until;

/// `http://198.51.100.2` and `path`: a page on the internet server.
pub fn inet_url(path: &str) -> String {
    format!("http://{INET_V4}{path}")
}

impl Lab {
    /// Starts `internet.py` in the internet namespace; it creates
    /// `internet.ready` in the lab dir once it serves.
    pub(super) fn spawn_internet(&self) -> Child {
        let ready = self.path.join("internet.ready");
        self.spawn_in(
            &self.inet,
            python(),
            &[
                &self.lab_scripts.join("internet.py").display().to_string(),
                &ready.display().to_string(),
            ],
            "internet.log",
        )
    }

    pub(super) fn internet_ready(&self) -> bool {
        self.path.join("internet.ready").exists()
    }

    /// Can the client fetch the internet server's page on port 80 (v4)?
    pub fn has_internet(&self, c: Client) -> bool {
        let p = self.http_timeout(c, &format!("http://{INET_V4}/"), 1.0);
        p.status() == Some(200) && p.body().contains(INET_BODY)
    }

    /// Polls until `has_internet(c) == want`; returns how long it took.
    pub fn wait_internet(&self, c: Client, want: bool, timeout: Duration) -> Option<Duration> {
        let start = Instant::now();
        poll_until(timeout, Duration::from_millis(50), || {
            (self.has_internet(c) == want).then(|| start.elapsed())
        })
    }
}
