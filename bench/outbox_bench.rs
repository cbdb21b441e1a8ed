//! Outbox benchmarks, run by bench/outbox.sh.
//!
//! - `ingest N ROUNDS`: durable appends into an outbox on disk, events
//!   per second (median of ROUNDS), three ways: one producer appending one
//!   event at a time (every event fsynced on its own: the baseline); eight
//!   producers appending one event at a time (group commit shares the
//!   fsyncs); one producer appending batches of 100 (how the presence
//!   engine stores a burst).
//! - `drain N GZIP`: queues N events, then delivers them with the real
//!   delivery loop to an in-process HTTP receiver on loopback that reads
//!   each batch and answers 200; prints the time until the outbox is empty
//!   and the peak resident memory.
//! - `fill N MODE`: resident memory (RssAnon) before and after queueing N
//!   events (the daemon's cap is 200,000), then drains them (peek and ack,
//!   as delivery does, without the network) and prints the bytes the log
//!   wrote per event as a ratio of the event's size, next to what the
//!   kernel sent to the disk (`write_bytes` of /proc/self/io, which also
//!   counts each flush rewriting a partly filled page), and how long a
//!   reopen of the full outbox takes. MODE `batch-100`
//!   appends 100 events a call; `single` one at a time.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Response;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use storegate::store::{MemoryStore, Store};
use storegate::time::Timestamp;
use storegate::uplink::Outbox;
use storegate::uplink::delivery::{self, DeliveryConfig, DeliveryStatus};
use storegate::uplink::signing::SigningKey;
use tokio_util::sync::CancellationToken;

const SECRET: &str = "whsec_c3RvcmVnYXRlLW91dGJveC1iZW5jaC1rZXk=";

/// A `visit.started` as the presence engine writes it.
fn visit(i: u64) -> serde_json::Value {
    json!({
        "visit_id": format!("v-{i:016x}"),
        "device_id": format!("dGhpcy1pcy1hLWRldmljZS1pZC0{i:012x}"),
        "member_id": null,
        "returning": i.is_multiple_of(3),
        "mac_randomized": i.is_multiple_of(2),
        "os_family": "ios",
    })
}

/// An outbox whose log is in `dir`. The store only holds dead letters and
/// counters, which these runs never touch, so it stays in memory.
fn fresh_outbox(dir: &std::path::Path, cap: usize) -> Arc<Outbox> {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    Arc::new(Outbox::open_with(Some(&dir.join("outbox")), store, "bench", cap).expect("outbox"))
}

/// A field of /proc/self/status, in KiB.
fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// Bytes this process has caused to be sent to storage.
fn disk_write_bytes() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn fill(n: u64, mode: &str) {
    let dir = tempfile::tempdir_in(".").expect("tempdir");
    let rss_before = status_kb("RssAnon:");
    let disk0 = disk_write_bytes();
    let outbox = fresh_outbox(dir.path(), 200_000.max(n as usize));
    let now = Timestamp::now();
    let t = Instant::now();
    let mut i = 0;
    while i < n {
        let step = if mode == "single" { 1 } else { 100 };
        let batch: Vec<_> = (i..(i + step).min(n))
            .map(|j| ("com.storegate.visit.started", visit(j)))
            .collect();
        i += batch.len() as u64;
        outbox.append_all(batch, now).unwrap();
    }
    let fill_s = t.elapsed().as_secs_f64();
    let rss_full = status_kb("RssAnon:");
    let on_disk = dir_bytes(&dir.path().join("outbox"));
    let io_full = outbox.io();
    // A restart with the outbox full: the open scans every segment.
    drop(outbox);
    let t = Instant::now();
    let outbox = fresh_outbox(dir.path(), 200_000.max(n as usize));
    let reopen_ms = t.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(outbox.len() as u64, n);
    let rss_reopened = status_kb("RssAnon:");
    let (mut event_bytes, mut delivered) = (0u64, 0u64);
    loop {
        let batch = outbox.peek(500, 512 * 1024).unwrap();
        if batch.is_empty() {
            break;
        }
        let seqs: Vec<u64> = batch.iter().map(|(s, _)| *s).collect();
        event_bytes += batch.iter().map(|(_, v)| v.len() as u64).sum::<u64>();
        delivered += seqs.len() as u64;
        outbox.ack(&seqs).unwrap();
    }
    assert_eq!(delivered, n);
    // Counted since the reopen: the drain's writes.
    let io = outbox.io();
    let disk = disk_write_bytes() - disk0;
    let rss_empty = status_kb("RssAnon:");
    let per = |b: u64| b as f64 / n as f64;
    let size = event_bytes as f64 / n as f64;
    println!(
        "fill {mode:9} n={n}: RssAnon {:.1} MB before, {:.1} MB full (+{:.1} MB), {:.1} MB after the drain; \
         queued in {fill_s:.1} s; {:.1} MB of segments at full, {} segment(s) left",
        rss_before as f64 / 1024.0,
        rss_full as f64 / 1024.0,
        (rss_full as f64 - rss_before as f64) / 1024.0,
        rss_empty as f64 / 1024.0,
        on_disk as f64 / 1e6,
        io.segments,
    );
    println!(
        "fill {mode:9} n={n}: reopened full in {reopen_ms:.0} ms, RssAnon {:.1} MB after",
        rss_reopened as f64 / 1024.0
    );
    println!(
        "fill {mode:9} n={n}: event {size:.0} B; log wrote {:.1} B/event queued + {:.1} B/event delivered = {:.3}x the event size; \
         kernel write_bytes {:.1} B/event = {:.2}x; {} log flushes",
        per(io_full.bytes_written),
        per(io.bytes_written),
        (io_full.bytes_written + io.bytes_written) as f64 / event_bytes as f64,
        per(disk),
        disk as f64 / event_bytes as f64,
        io_full.syncs + io.syncs,
    );
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn ingest_once(mode: &str, n: u64) -> f64 {
    let dir = tempfile::tempdir_in(".").expect("tempdir");
    let outbox = fresh_outbox(dir.path(), 10_000_000);
    let now = Timestamp::now();
    let t = Instant::now();
    match mode {
        "single" => {
            for i in 0..n {
                outbox
                    .append("com.storegate.visit.started", visit(i), now)
                    .unwrap();
            }
        }
        "8-producers" => {
            let threads: Vec<_> = (0..8)
                .map(|p| {
                    let o = outbox.clone();
                    std::thread::spawn(move || {
                        for i in (p..n).step_by(8) {
                            o.append("com.storegate.visit.started", visit(i), now)
                                .unwrap();
                        }
                    })
                })
                .collect();
            threads.into_iter().for_each(|h| h.join().unwrap());
        }
        "batch-100" => {
            let mut i = 0;
            while i < n {
                let batch: Vec<_> = (i..(i + 100).min(n))
                    .map(|j| ("com.storegate.visit.started", visit(j)))
                    .collect();
                i += batch.len() as u64;
                outbox.append_all(batch, now).unwrap();
            }
        }
        _ => unreachable!(),
    }
    let rate = n as f64 / t.elapsed().as_secs_f64();
    assert_eq!(outbox.len() as u64, n);
    rate
}

fn ingest(n: u64, rounds: usize) {
    let mut baseline = 0.0;
    for (mode, count) in [("single", n / 10), ("8-producers", n), ("batch-100", n)] {
        let rates: Vec<f64> = (0..rounds).map(|_| ingest_once(mode, count)).collect();
        let m = median(rates.clone());
        if mode == "single" {
            baseline = m;
        }
        println!(
            "ingest {mode:12} n={count:7} median {m:9.0} events/s ({:.1}x the one-at-a-time baseline)  rounds: {}",
            m / baseline,
            rates
                .iter()
                .map(|r| format!("{r:.0}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
}

async fn drain(n: u64, gzip: bool) {
    let dir = tempfile::tempdir_in(".").expect("tempdir");
    let outbox = fresh_outbox(dir.path(), 10_000_000);
    let now = Timestamp::now();
    let t = Instant::now();
    let mut i = 0;
    while i < n {
        let batch: Vec<_> = (i..(i + 1000).min(n))
            .map(|j| ("com.storegate.visit.started", visit(j)))
            .collect();
        i += batch.len() as u64;
        outbox.append_all(batch, now).unwrap();
    }
    println!(
        "queued {n} events in {:.1} s ({:.0} events/s in batches of 1000)",
        t.elapsed().as_secs_f64(),
        n as f64 / t.elapsed().as_secs_f64()
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(AtomicU64::new(0));
    let bytes_in = Arc::new(AtomicU64::new(0));
    {
        let (received, bytes_in) = (received.clone(), bytes_in.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (received, bytes_in) = (received.clone(), bytes_in.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req: hyper::Request<Incoming>| {
                        let (received, bytes_in) = (received.clone(), bytes_in.clone());
                        async move {
                            let body = req.into_body().collect().await.map(|b| b.to_bytes());
                            if let Ok(b) = body {
                                bytes_in.fetch_add(b.len() as u64, Ordering::Relaxed);
                                received.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
    }
    let config = DeliveryConfig {
        gzip,
        ..DeliveryConfig::new(&format!("http://{addr}/hq"))
    };
    let key = SigningKey::from_secret(SECRET).unwrap();
    let client = delivery::client(None, None, Duration::from_secs(5)).unwrap();
    let status = Arc::new(std::sync::Mutex::new(DeliveryStatus::default()));
    let shutdown = CancellationToken::new();
    let t = Instant::now();
    let task = tokio::spawn(delivery::run(
        outbox.clone(),
        config,
        key,
        client,
        status.clone(),
        shutdown.clone(),
    ));
    while !outbox.is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = t.elapsed().as_secs_f64();
    shutdown.cancel();
    let _ = task.await;
    let st = status.lock().unwrap().clone();
    println!(
        "drained {n} events (gzip {gzip}) in {took:.1} s: {:.0} events/s, {} batches, {:.0} MB on the wire, {} retries; peak RSS {:.0} MB",
        n as f64 / took,
        received.load(Ordering::Relaxed),
        bytes_in.load(Ordering::Relaxed) as f64 / 1e6,
        st.retries,
        peak_rss_mb()
    );
    assert_eq!(st.delivered, n);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, d: u64| args.get(i).and_then(|v| v.parse().ok()).unwrap_or(d);
    match args.get(1).map(String::as_str) {
        Some("ingest") => ingest(arg(2, 100_000), arg(3, 3) as usize),
        Some("drain") => {
            let gzip = args.get(3).map(|v| v != "plain").unwrap_or(true);
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap()
                .block_on(drain(arg(2, 1_000_000), gzip));
        }
        Some("fill") => fill(
            arg(2, 200_000),
            args.get(3).map_or("batch-100", String::as_str),
        ),
        _ => eprintln!(
            "usage: outbox_bench ingest N ROUNDS | outbox_bench drain N gzip|plain | outbox_bench fill N batch-100|single"
        ),
    }
}
