//! HQ that misbehaves, without root: a fake HQ (a `TcpListener` thread in
//! the test) that reads each request and then never answers, or closes
//! the connection without answering. The daemon (short `hq.timeout` and
//! `hq.connect_timeout` from its config) must give up on the request,
//! retry the same batch, keep the events queued, and once the reference
//! receiver takes over the port deliver every event, in sequence order,
//! each once.

use std::io::ErrorKind;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::daemon::{Daemon, ctl};
use crate::harness::hq::{self, collect, make_events, sequences};
use crate::harness::loopback::free_port;

const SECRET: &str = "whsec_c3RvcmVnYXRlLWZhdWx0cy10ZXN0LWtleS0x";
/// The made-up clients' MACs, less the last octet.
const MACS: &str = "02:00:00:00:02";

/// What the fake HQ does once it has read a request.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Keeps the connection open and says nothing.
    Hang,
    /// Closes the connection.
    Close,
}

/// A fake HQ on a port; stopped (listener and connections closed) when
/// dropped.
struct FakeHq {
    stop: Arc<AtomicBool>,
    /// The `webhook-id` of each complete event batch read, in order
    /// (the box's signed `GET /sync` requests are left out).
    requests: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeHq {
    fn start(port: u16, fault: Fault) -> FakeHq {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the fake HQ");
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let stop = stop.clone();
            let requests = requests.clone();
            std::thread::spawn(move || {
                let mut held = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            let _ = stream.set_nonblocking(false);
                            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                            if let Some(id) = read_request(&mut stream) {
                                requests.lock().unwrap().push(id);
                            }
                            match fault {
                                Fault::Hang => held.push(stream),
                                Fault::Close => drop(stream),
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(10));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
                drop(held);
            })
        };
        FakeHq {
            stop,
            requests,
            thread: Some(thread),
        }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for FakeHq {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one HTTP/1.1 request; returns its `webhook-id`, or `None` if it
/// was not complete.
fn read_request(stream: &mut TcpStream) -> Option<String> {
    let req = crate::harness::loopback::read_request(stream)?;
    if req.line.starts_with("GET ") {
        return None;
    }
    req.header("webhook-id").map(str::to_string)
}

/// A daemon with short HQ timeouts, delivering to port `hq_port`.
fn daemon(dir: &std::path::Path, hq_port: u16) -> Daemon {
    hq::daemon_with(
        dir,
        "hq-faults-test",
        &format!("http://127.0.0.1:{hq_port}/storegate"),
        SECRET,
        "connect_timeout = \"500ms\"\ntimeout = \"1s\"\n",
    )
}

/// Waits until the ids of the requests the fake HQ has read satisfy
/// `done`; returns them.
fn wait_for_requests(
    fake: &FakeHq,
    within: Duration,
    done: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let deadline = Instant::now() + within;
    loop {
        let got = fake.requests();
        if done(&got) {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "the fake HQ did not see the expected requests: {got:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The whole story for one fault: three events meet the fault and are
/// retried (the same batch, the same `webhook-id`) while they stay
/// queued; then the reference receiver takes the port and every event,
/// old and new, arrives in order, once. Last, `hq.last_error` as it was
/// during the fault must contain `reason` (`what` says what that is).
fn events_survive(fault: Fault, reason: &str, what: &str) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let fake = FakeHq::start(port, fault);
    let d = daemon(dir.path(), port);
    make_events(&d, MACS, 1, 3);

    // The first attempt may carry only the first event; once all three
    // are queued, each retry is the same batch with the same webhook-id.
    let ids = wait_for_requests(&fake, Duration::from_secs(20), |ids| {
        ids.len() >= 3 && ids[ids.len() - 2..] == ["batch_1_3", "batch_1_3"]
    });
    assert!(
        ids.iter().all(|id| id.starts_with("batch_1_")),
        "{fault:?}: oldest first: {ids:?}"
    );
    let status: Value = ctl(&d, &["status"]).expect("ctl status");
    assert_eq!(
        status["outbox"]["queued"], 3,
        "{fault:?}: events stay queued: {status}"
    );
    assert_eq!(status["hq"]["delivered"], 0, "{fault:?}: {status}");
    assert!(
        status["hq"]["retries"].as_u64().unwrap_or(0) >= 2,
        "{fault:?}: retried: {status}"
    );
    let error = status["hq"]["last_error"]
        .as_str()
        .unwrap_or_else(|| panic!("{fault:?}: the failure is visible: {status}"))
        .to_string();
    eprintln!("{fault:?}: hq.last_error = {error}");

    // The real HQ takes over the port.
    drop(fake);
    let (_r, rx) = hq::receiver(port, SECRET, None);
    let got = collect(&rx, 3, Duration::from_secs(20));
    assert_eq!(
        sequences(&got),
        [1, 2, 3],
        "{fault:?}: every queued event arrives, in order: {got:?}"
    );
    make_events(&d, MACS, 4, 2);
    let got = collect(&rx, 2, Duration::from_secs(10));
    assert_eq!(sequences(&got), [4, 5], "{fault:?}: {got:?}");
    assert!(
        collect(&rx, 1, Duration::from_millis(500)).is_empty(),
        "{fault:?}: an event arrived twice"
    );
    hq::wait_drained(&d, Duration::from_secs(5));
    let status = ctl(&d, &["status"]).expect("ctl status");
    assert_eq!(status["hq"]["delivered"], 5, "{status}");
    assert!(status["hq"]["last_error"].is_null(), "{status}");
    assert!(error.contains(reason), "{what} in hq.last_error: {error:?}");
}

#[test]
fn an_hq_that_never_answers_is_timed_out_and_retried_without_loss() {
    events_survive(Fault::Hang, "no answer within 1s", "the timeout");
}

#[test]
fn an_hq_that_closes_without_answering_is_retried_without_loss() {
    events_survive(Fault::Close, "closed", "the closed connection");
}
