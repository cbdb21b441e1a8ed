//! Waiting for something to happen: polling with a deadline, failing with
//! the lab's logs or when the process that should make it happen exits.

use std::thread;
use std::time::{Duration, Instant};

use super::diag::Diag;
use super::process::Proc;
use crate::fail;

/// Polls `f` every `every` until it returns `Some` or `timeout` passes.
pub fn poll_until<T>(
    timeout: Duration,
    every: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(every);
    }
}

/// Polls `f` every `every` until it returns `Ok` or `timeout` passes; then
/// the last `Err` (what it saw, for the failure message).
pub fn poll<T, E>(
    timeout: Duration,
    every: Duration,
    mut f: impl FnMut() -> Result<T, E>,
) -> Result<T, E> {
    let deadline = Instant::now() + timeout;
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => thread::sleep(every),
        }
    }
}

/// Waits until `f` gives a value (polling every 100 ms), or fails with
/// `what` and the lab's logs.
pub fn wait_for<T>(
    ctx: &impl Diag,
    within: Duration,
    what: &str,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    match poll_until(within, Duration::from_millis(100), &mut f) {
        Some(v) => v,
        None => fail!(ctx, "{what} did not happen within {within:?}"),
    }
}

/// Waits (up to 10 s) until `ready()`, failing if the process exits first.
pub fn wait_started(proc: &mut Proc, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready() {
        if let Ok(Some(status)) = proc.0.try_wait() {
            panic!("{what} exited: {status}");
        }
        assert!(Instant::now() < deadline, "{what} did not start");
        thread::sleep(Duration::from_millis(20));
    }
}
