//! An HQ whose clock is an hour from the box's, without root. A scripted
//! HQ (a `TcpListener` thread in the test) verifies each batch the way a
//! Standard Webhooks receiver does, against its own clock: while that
//! clock is an hour ahead (to the box, the same as its own clock being an
//! hour behind, as on a router before NTP) it answers `401` with its time
//! in `Date`; once the clocks agree it takes the batch. The box must see
//! the skew in the `Date`, neither park nor lose anything, say so in
//! `ctl status` and its log, re-sign each retry with a fresh timestamp,
//! and then deliver every event once, in order.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use storegate::uplink::signing::{SignedHeaders, SigningKey};

use crate::harness::daemon::{ctl, log_path};
use crate::harness::hq::{self, make_events};
use crate::harness::loopback::free_port;

const SECRET: &str = "whsec_c3RvcmVnYXRlLWNsb2NrLXNrZXctdGVzdC1rZXk=";
/// The made-up clients' MACs, less the last octet.
const MACS: &str = "02:00:00:00:03";
/// HQ's tolerance for `webhook-timestamp`, as in the Standard Webhooks
/// libraries.
const TOLERANCE_SECS: i64 = 300;
/// Refusals the box must have met before the clocks are put right.
const REFUSALS: usize = 4;

/// One `POST …/events` as the scripted HQ judged it.
#[derive(Clone, Debug)]
struct Seen {
    id: String,
    timestamp: i64,
    /// `None`: accepted (200); else why it was refused (401).
    refused: Option<String>,
}

#[derive(Default)]
struct Shared {
    seen: Mutex<Vec<Seen>>,
    /// The events of accepted batches, in the order they came.
    events: Mutex<Vec<Value>>,
}

/// The scripted HQ; stopped when dropped.
struct ClockHq {
    stop: Arc<AtomicBool>,
    /// HQ's clock minus the real one, in seconds.
    offset: Arc<AtomicI64>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

fn unix_now() -> i64 {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(d.as_secs()).unwrap()
}

impl ClockHq {
    fn start(port: u16, offset_secs: i64) -> ClockHq {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the scripted HQ");
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let offset = Arc::new(AtomicI64::new(offset_secs));
        let shared = Arc::new(Shared::default());
        let key = SigningKey::from_secret(SECRET).unwrap();
        let thread = {
            let (stop, offset, shared) = (stop.clone(), offset.clone(), shared.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            let _ = stream.set_nonblocking(false);
                            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                            let hq_now = unix_now() + offset.load(Ordering::SeqCst);
                            answer(&mut stream, &key, hq_now, &shared);
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(10));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
        };
        ClockHq {
            stop,
            offset,
            shared,
            thread: Some(thread),
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    fn events(&self) -> Vec<Value> {
        self.shared.events.lock().unwrap().clone()
    }
}

impl Drop for ClockHq {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Judges one request by HQ's clock `hq_now` and answers it, with `Date`.
fn answer(stream: &mut TcpStream, key: &SigningKey, hq_now: i64, shared: &Shared) {
    let Some(req) = crate::harness::loopback::read_request(stream) else {
        return;
    };
    let date = jiff::fmt::rfc2822::DateTimePrinter::new()
        .timestamp_to_rfc9110_string(&jiff::Timestamp::from_second(hq_now).unwrap())
        .unwrap();
    let reply = |stream: &mut TcpStream, status: &str, body: &str| {
        let _ = write!(
            stream,
            "HTTP/1.1 {status}\r\nDate: {date}\r\nContent-Type: text/plain\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    };
    // Sync and anything else: not this HQ's business.
    if !(req.line.starts_with("POST ") && req.line.contains("/events ")) {
        return reply(stream, "503 Service Unavailable", "not here");
    }
    let body = if req.header("content-encoding") == Some("gzip") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&req.body[..])
            .read_to_end(&mut out)
            .unwrap();
        out
    } else {
        req.body.clone()
    };
    let headers = SignedHeaders {
        id: req.header("webhook-id"),
        timestamp: req.header("webhook-timestamp"),
        signature: req.header("webhook-signature"),
    };
    let verdict = key.verify(headers, &body, hq_now, TOLERANCE_SECS);
    shared.seen.lock().unwrap().push(Seen {
        id: headers.id.unwrap_or_default().to_string(),
        timestamp: headers
            .timestamp
            .and_then(|t| t.parse().ok())
            .unwrap_or_default(),
        refused: verdict.as_ref().err().map(ToString::to_string),
    });
    match verdict {
        Ok(()) => {
            let batch: Vec<Value> = serde_json::from_slice(&body).expect("a JSON array");
            shared.events.lock().unwrap().extend(batch);
            reply(stream, "200 OK", "{}");
        }
        Err(e) => reply(stream, "401 Unauthorized", &e.to_string()),
    }
}

/// The `sequence` of each event, as numbers.
fn sequences(events: &[Value]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| e["sequence"].as_str()?.parse().ok())
        .collect()
}

/// The RFC 3339 times a message names, in order.
fn times_in(text: &str) -> Vec<jiff::Timestamp> {
    text.split_whitespace()
        .filter_map(|w| w.trim_end_matches([',', ';', ':', ')']).parse().ok())
        .collect()
}

fn wait<T>(within: Duration, what: &str, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + within;
    loop {
        match f() {
            Ok(v) => return v,
            Err(seen) if Instant::now() >= deadline => panic!("{what}: {seen}"),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

#[test]
fn a_401_for_clock_skew_is_retried_not_parked_and_every_event_arrives_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let hq_server = ClockHq::start(port, 3600);
    let url = format!("http://127.0.0.1:{port}/storegate");
    let d = hq::daemon(dir.path(), "hq-clock-test", &url, SECRET, None);
    make_events(&d, MACS, 1, 3);

    // HQ refuses the stale timestamps, a few times over; the first attempt
    // may carry only the first event, later ones all three.
    let refused = wait(Duration::from_secs(30), "refusals", || {
        let seen = hq_server.seen();
        let n = seen.len();
        if n >= REFUSALS && seen[n - 2..].iter().all(|s| s.id == "batch_1_3") {
            Ok(seen)
        } else {
            Err(format!("{seen:?}"))
        }
    });
    for s in &refused {
        let why = s.refused.as_deref().unwrap_or("accepted");
        assert!(
            why.contains("tolerance"),
            "refused for the timestamp only: {s:?}"
        );
    }

    // Meanwhile: nothing parked, everything queued, the skew in plain words.
    let status = ctl(&d, &["status"]).expect("ctl status");
    let error = status["hq"]["last_error"].as_str().unwrap_or_default();
    assert!(error.starts_with("clock skew"), "hq.last_error: {status}");
    assert!(error.contains("behind HQ"), "{error}");
    let times = times_in(error);
    assert_eq!(times.len(), 2, "HQ's time and the box's: {error}");
    let apart = times[0].as_second() - times[1].as_second();
    assert!((3598..=3601).contains(&apart), "an hour apart: {error}");
    assert_eq!(status["hq"]["dead_lettered"], 0, "{status}");
    assert_eq!(status["outbox"]["dead_letters"], 0, "{status}");
    assert_eq!(status["outbox"]["queued"], 3, "{status}");
    assert!(status["hq"]["retries"].as_u64().unwrap() >= REFUSALS as u64 - 1);
    assert_eq!(ctl(&d, &["dead-letters"]), Some(Value::Array(Vec::new())));
    let log = std::fs::read_to_string(log_path(dir.path())).unwrap();
    assert!(
        log.contains("the box's clock is off: clock skew"),
        "said loudly in the log: {log}"
    );

    // The clocks agree again (NTP answered): the same batch, signed anew.
    hq_server.offset.store(0, Ordering::SeqCst);
    let first = wait(Duration::from_secs(70), "the queued events", || {
        let got = hq_server.events();
        if got.len() >= 3 {
            Ok(got)
        } else {
            Err(format!("{:?}", hq_server.seen()))
        }
    });
    assert_eq!(sequences(&first), [1, 2, 3], "{first:?}");
    make_events(&d, MACS, 4, 2);
    wait(Duration::from_secs(10), "the new events", || {
        let n = hq_server.events().len();
        if n >= 5 { Ok(()) } else { Err(n.to_string()) }
    });
    hq::wait_drained(&d, Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        sequences(&hq_server.events()),
        [1, 2, 3, 4, 5],
        "every event once, in order"
    );

    // Each retry carried a fresh timestamp, signed: the one accepted is
    // later than the first refused attempt of the same batch.
    let seen = hq_server.seen();
    let tried = |accepted: bool| {
        seen.iter()
            .filter(|s| s.id == "batch_1_3" && s.refused.is_none() == accepted)
            .map(|s| s.timestamp)
            .collect::<Vec<i64>>()
    };
    let (refused, accepted) = (tried(false), tried(true));
    assert_eq!(accepted.len(), 1, "{seen:?}");
    assert!(
        accepted[0] > refused[0],
        "re-signed with a fresh timestamp: {seen:?}"
    );

    let status = ctl(&d, &["status"]).expect("ctl status");
    assert!(status["hq"]["last_error"].is_null(), "{status}");
    assert_eq!(status["hq"]["delivered"], 5, "{status}");
    assert_eq!(status["hq"]["dead_lettered"], 0, "{status}");
    assert_eq!(status["outbox"]["dead_letters"], 0, "{status}");
    assert_eq!(ctl(&d, &["dead-letters"]), Some(Value::Array(Vec::new())));
}
