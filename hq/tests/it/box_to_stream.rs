//! The real box daemon → `storegate-hq` → JetStream: every event is in
//! the stream exactly once after an HQ outage, a box SIGKILL and a batch
//! sent again, and the box's sequence numbers are complete.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::*;

/// Waits until the box's outbox is empty.
fn drained(b: &BoxDaemon) {
    wait_until("the box's outbox to drain", Duration::from_secs(90), || {
        b.queued() == Some(0)
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn every_box_event_is_in_the_stream_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::single(dir.path());
    let s = secret(7);
    let port = free_port();
    let toml = hq_toml(port, &[nats.url()], 1, &[("box-01", &s)], "");
    let mut hq = Hq::start(dir.path(), "hq", port, &toml, "gateway");
    let hq_url = format!("http://127.0.0.1:{port}/stores/box-01");
    let mut b = BoxDaemon::start(&dir.path().join("box"), "box-01", &hq_url, &s);

    b.make_events(1, 0, 10);
    drained(&b);

    // HQ away while the box makes events: they wait in the outbox.
    hq.proc.kill();
    b.make_events(1, 10, 10);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        b.queued().unwrap_or(0) > 0,
        "events should wait while HQ is away"
    );
    hq.restart();
    drained(&b);

    // The box killed while it delivers, then restarted.
    b.make_events(1, 20, 10);
    b.proc.kill();
    b.restart();
    b.make_events(1, 30, 5);
    drained(&b);

    let events = stream_events(&nats.url(), "storegate.box-01.>").await;
    // A batch the box sends again (its answer lost) changes nothing.
    let again: Vec<Value> = events.iter().take(20).cloned().collect();
    let r = post_batch(port, "/stores/box-01/events", &s, &again).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let counts: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(counts, json!({"stored": 0, "duplicates": 20}));

    let events = stream_events(&nats.url(), "storegate.box-01.>").await;
    let ids: HashSet<&str> = events.iter().filter_map(|e| e["id"].as_str()).collect();
    assert_eq!(ids.len(), events.len(), "an event is in the stream twice");
    let seqs: BTreeSet<u64> = events
        .iter()
        .filter_map(|e| e["sequence"].as_str()?.parse().ok())
        .collect();
    assert_eq!(seqs.len(), events.len(), "two events share a sequence");
    let max = *seqs.last().unwrap();
    assert_eq!(seqs, (1..=max).collect(), "the box's sequences have a gap");
    let devices: HashSet<&str> = events
        .iter()
        .filter(|e| e["type"] == "com.storegate.session.authorized")
        .filter_map(|e| e["data"]["device_id"].as_str())
        .collect();
    assert_eq!(
        devices.len(),
        35,
        "one session.authorized per client authorised"
    );

    // Structured mode, with the event id as the message id.
    let client = async_nats::connect(nats.url()).await.unwrap();
    let stream = async_nats::jetstream::new(client)
        .get_stream("STOREGATE")
        .await
        .unwrap();
    let m = stream.get_raw_message(1).await.unwrap();
    let first: Value = serde_json::from_slice(&m.payload).unwrap();
    assert_eq!(
        m.headers.get("Nats-Msg-Id").map(|v| v.as_str()),
        first["id"].as_str()
    );
    assert_eq!(
        m.headers.get("content-type").map(|v| v.as_str()),
        Some("application/cloudevents+json")
    );
    let ty = first["type"]
        .as_str()
        .unwrap()
        .trim_start_matches("com.storegate.");
    assert_eq!(m.subject.as_str(), format!("storegate.box-01.{ty}"));
}
