//! Presence benchmarks, run by bench/presence.sh (as root, in namespaces).
//!
//! - `latency IF_RX IF_TX N`: a frame sent on IF_TX (one end of a veth
//!   pair) → received by a filtered capture on IF_RX → parsed → presence
//!   machine → `visit.started` durable in a sled outbox. Each trial uses a
//!   new MAC, so each is a join. Baseline in the same run: send → receive
//!   only.
//! - `cpu IF SECONDS FILTER`: reads and parses everything its capture
//!   (FILTER = presence | all) lets through on IF for SECONDS; prints the
//!   CPU time it used. Run it while bulk traffic crosses IF.
//! - `parse N`: parser throughput over the seed frames in fuzz/seeds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use storegate::mac::MacAddr;
use storegate::net::capture::{Capture, Filter};
use storegate::net::wire;
use storegate::presence::{Output, Presence, PresenceConfig};
use storegate::store::{RedbStore, Store};
use storegate::time::Timestamp;
use storegate::uplink::Outbox;

/// The defaults, but no per-minute budget for new devices: the benchmark
/// fills the table on purpose.
fn unlimited() -> PresenceConfig {
    PresenceConfig {
        new_devices_per_minute: u32::MAX,
        ..PresenceConfig::default()
    }
}

fn cpu_seconds() -> f64 {
    // utime + stime of this process, from /proc (clock ticks of 10 ms).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn report(name: &str, mut us: Vec<f64>) -> f64 {
    us.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let p50 = pct(&us, 0.5);
    println!(
        "{name:44} n={} p50={p50:.0} us p99={:.0} us max={:.0} us",
        us.len(),
        pct(&us, 0.99),
        us[us.len() - 1]
    );
    p50
}

fn arp_from(i: u32) -> (MacAddr, Vec<u8>) {
    let b = i.to_be_bytes();
    let mac = MacAddr([0x02, 0xbe, b[0], b[1], b[2], b[3]]);
    let ip = std::net::Ipv4Addr::new(192, 0, 2, 100 + (i % 100) as u8);
    // A gratuitous-style ARP request from the "device" (its own probe builder
    // with itself as sender and broadcast-ish target is what phones send).
    let frame = wire::arp_probe(mac, ip, MacAddr([0xff; 6]), ip);
    (mac, frame)
}

async fn latency(rx_if: &str, tx_if: &str, n: u32) {
    let rx = Capture::open(rx_if, Filter::Presence).expect("capture rx");
    let tx = Capture::open(tx_if, Filter::All).expect("capture tx");
    let dir = std::env::temp_dir().join(format!("sg-presence-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store: Arc<dyn Store> = Arc::new(RedbStore::open(&dir).expect("store"));
    let outbox = Outbox::open(Some(&dir.join("outbox")), store, "bench").expect("outbox");
    let mut presence = Presence::new(unlimited(), 1);
    let mut buf = vec![0u8; 2048];
    let (mut full, mut wire_only) = (Vec::new(), Vec::new());
    for i in 0..n * 2 {
        let (mac, frame) = arp_from(i);
        let t0 = Instant::now();
        tx.send(&frame).expect("send");
        loop {
            let f = tokio::time::timeout(Duration::from_secs(2), rx.recv(&mut buf))
                .await
                .expect("frame within 2 s")
                .expect("recv");
            let received = t0.elapsed();
            let Ok(Some(s)) = wire::parse_frame(&buf[..f.len]) else {
                continue;
            };
            if s.mac != mac {
                continue;
            }
            if i % 2 == 1 {
                // Baseline trials: the wire only.
                wire_only.push(received.as_secs_f64() * 1e6);
                break;
            }
            let now = Timestamp::now();
            let events: Vec<_> = presence
                .observe(&s, now)
                .into_iter()
                .filter_map(|o| match o {
                    Output::VisitStarted(v) => Some((
                        "com.storegate.visit.started",
                        serde_json::json!({"visit_id": v.visit_id}),
                    )),
                    _ => None,
                })
                .collect();
            assert_eq!(events.len(), 1, "a new MAC is a join");
            outbox.append_all(events, now).expect("outbox");
            full.push(t0.elapsed().as_secs_f64() * 1e6);
            break;
        }
    }
    let a = report("frame -> visit.started durable in outbox", full);
    let b = report("baseline: frame sent -> received", wire_only);
    println!("ratio p50 full/baseline: {:.1}", a / b);
    let _ = std::fs::remove_dir_all(&dir);
}

async fn cpu(iface: &str, seconds: u64, filter: &str) {
    let f = match filter {
        "all" => Filter::All,
        _ => Filter::Presence,
    };
    let cap = Capture::open(iface, f).expect("capture");
    let mut buf = vec![0u8; 65536];
    let (mut frames, mut sightings) = (0u64, 0u64);
    let c0 = cpu_seconds();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    loop {
        match tokio::time::timeout_at(deadline, cap.recv(&mut buf)).await {
            Err(_) => break,
            Ok(Ok(fr)) => {
                frames += 1;
                if let Ok(Some(_)) = wire::parse_frame(&buf[..fr.len]) {
                    sightings += 1;
                }
            }
            Ok(Err(e)) => panic!("recv: {e}"),
        }
    }
    let used = cpu_seconds() - c0;
    let drops = cap.stats().map(|s| s.drops).unwrap_or(0);
    println!(
        "filter={filter:8} frames={frames} sightings={sightings} kernel_drops={drops} cpu={used:.2}s over {seconds}s = {:.2}% of a core",
        used / seconds as f64 * 100.0
    );
}

fn parse(n: u32) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/wire_frame");
    let frames: Vec<Vec<u8>> = std::fs::read_dir(root)
        .expect("seed frames")
        .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
        .collect();
    let bytes: usize = frames.iter().map(Vec::len).sum();
    let t0 = Instant::now();
    let mut ok = 0u64;
    for _ in 0..n {
        for f in &frames {
            if let Ok(Some(_)) = wire::parse_frame(std::hint::black_box(f)) {
                ok += 1;
            }
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let total = n as f64 * frames.len() as f64;
    // Baseline: reading each frame's EtherType, the least any parser does.
    let t1 = Instant::now();
    let mut x = 0u64;
    for _ in 0..n {
        for f in &frames {
            x += u64::from(std::hint::black_box(f).get(12).copied().unwrap_or(0));
        }
    }
    let base = t1.elapsed().as_secs_f64();
    std::hint::black_box(x);
    println!(
        "parse_frame: {:.2} M frames/s ({:.0} MB/s, {} of {} frames give sightings), {:.0} ns/frame; baseline EtherType read {:.1} ns/frame; ratio {:.0}",
        total / secs / 1e6,
        (n as f64 * bytes as f64) / secs / 1e6,
        ok / n as u64,
        frames.len(),
        secs / total * 1e9,
        base / total * 1e9,
        secs / base.max(1e-12)
    );
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// Resident memory of the presence machine with N devices, and of a sled
/// outbox holding N events, each measured as growth of this process.
fn mem(n: u32) {
    let base = rss_kib();
    let mut presence = Presence::new(unlimited(), 1);
    let now = Timestamp::now();
    for i in 0..n {
        let (_, frame) = arp_from(i);
        let s = wire::parse_frame(&frame).unwrap().unwrap();
        presence.observe(&s, now);
    }
    let with_devices = rss_kib();
    println!(
        "presence machine with {n} devices: +{} KiB",
        with_devices - base
    );
    let dir = std::env::temp_dir().join(format!("sg-mem-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store: Arc<dyn Store> = Arc::new(RedbStore::open(&dir).expect("store"));
    let outbox = Outbox::open(Some(&dir.join("outbox")), store, "bench").expect("outbox");
    let v: Vec<_> = presence.visits().cloned().collect();
    for chunk in v.chunks(256) {
        let events = chunk
            .iter()
            .map(|v| {
                (
                    "com.storegate.visit.started",
                    serde_json::json!({"visit_id": v.visit_id, "device_id": "x".repeat(43)}),
                )
            })
            .collect();
        outbox.append_all(events, now).unwrap();
    }
    println!(
        "sled outbox with {} events: +{} KiB",
        v.len(),
        rss_kib() - with_devices
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("latency") => latency(&args[2], &args[3], args[4].parse().unwrap()).await,
        Some("cpu") => cpu(&args[2], args[3].parse().unwrap(), &args[4]).await,
        Some("mem") => mem(args.get(2).and_then(|v| v.parse().ok()).unwrap_or(10_000)),
        Some("parse") => parse(args.get(2).and_then(|v| v.parse().ok()).unwrap_or(20_000)),
        _ => eprintln!(
            "usage: presence_bench latency IF_RX IF_TX N | cpu IF SECONDS presence|all | parse [N]"
        ),
    }
}
