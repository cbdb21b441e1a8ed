//! A 3-node JetStream cluster with the stream at R3: the stream's leader
//! is killed during ingest and restarted. No acknowledged event is lost,
//! none is stored twice, and the sender sees only retries (503 or no
//! answer), never a refusal.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_node_killed_during_ingest_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = Nats::cluster(dir.path());
    let urls: Vec<String> = nodes.iter().map(Nats::url).collect();
    let s = secret(11);
    let port = free_port();
    let toml = hq_toml(port, &urls, 3, &[("r3-01", &s)], "");
    let _hq = Hq::start(dir.path(), "hq", port, &toml, "gateway");

    // A box: batches of 20, each sent again until it is acknowledged.
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (stop, s) = (stop.clone(), s.clone());
        std::thread::spawn(move || {
            let mut acked = Vec::new();
            let mut statuses: HashMap<u16, usize> = HashMap::new();
            let mut seq = 0;
            while !stop.load(Ordering::Relaxed) {
                let batch: Vec<_> = (0..20)
                    .map(|_| {
                        seq += 1;
                        event("r3-01", "visit.started", seq, json!({"member_id": null}))
                    })
                    .collect();
                loop {
                    let status = post_batch(port, "/events", &s, &batch).map_or(0, |a| a.status);
                    *statuses.entry(status).or_default() += 1;
                    if status == 200 {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                acked.extend(batch.iter().map(|e| e["id"].as_str().unwrap().to_string()));
            }
            (acked, statuses)
        })
    };

    std::thread::sleep(Duration::from_secs(2));
    let client = async_nats::connect(urls.clone()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream("STOREGATE").await.unwrap();
    let info = stream.info().await.unwrap();
    assert_eq!(info.config.num_replicas, 3);
    let leader = info
        .cluster
        .as_ref()
        .and_then(|c| c.leader.clone())
        .unwrap_or_default();
    let victim: usize = leader.trim_start_matches('n').parse().unwrap_or(1);
    nodes[victim].proc.kill();
    std::thread::sleep(Duration::from_secs(4));
    nodes[victim].start();
    std::thread::sleep(Duration::from_secs(4));
    stop.store(true, Ordering::Relaxed);
    let (acked, statuses) = sender.join().unwrap();
    assert!(
        acked.len() >= 200,
        "too few batches went through: {statuses:?}"
    );
    assert!(
        statuses.keys().all(|s| [0, 200, 503].contains(s)),
        "the sender saw more than retries: {statuses:?}"
    );

    // Read back through a node that never went down.
    let other = (victim + 1) % 3;
    let events = stream_events(&nodes[other].url(), "storegate.r3-01.>").await;
    let mut seen: HashMap<String, usize> = HashMap::new();
    for e in &events {
        *seen
            .entry(e["id"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert!(seen.values().all(|n| *n == 1), "an event is stored twice");
    let lost: Vec<&String> = acked.iter().filter(|id| !seen.contains_key(*id)).collect();
    assert!(lost.is_empty(), "{} acknowledged events lost", lost.len());
    eprintln!(
        "{} events acknowledged, {} stored; answers: {statuses:?}; leader {leader} killed",
        acked.len(),
        events.len()
    );
}
