//! Who may put events in the stream: a batch is refused (401/403) and
//! nothing of it is published when it is signed with another store's
//! secret, names another store, mixes stores, or is not valid.

use std::io::Write;

use serde_json::json;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread")]
async fn batches_of_another_store_are_refused_and_nothing_is_published() {
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::single(dir.path());
    let (a, b) = (secret(1), secret(2));
    let port = free_port();
    let toml = hq_toml(
        port,
        &[nats.url()],
        1,
        &[("store-a", &a), ("store-b", &b)],
        "",
    );
    let hq = Hq::start(dir.path(), "hq", port, &toml, "gateway");

    let ev = |store: &str, seq| event(store, "visit.started", seq, json!({"member_id": null}));
    // Signed with store B's secret, naming store A.
    let r = post_batch(port, "/events", &b, &[ev("store-a", 1)]).unwrap();
    assert_eq!(r.status, 401, "{}", r.text());
    // Signed with A's secret, naming B.
    let r = post_batch(port, "/events", &a, &[ev("store-b", 1)]).unwrap();
    assert_eq!(r.status, 401, "{}", r.text());
    // A's own events, but one of B's slipped in.
    let r = post_batch(port, "/events", &a, &[ev("store-a", 1), ev("store-b", 2)]).unwrap();
    assert_eq!(r.status, 403, "{}", r.text());
    // A's events posted to B's path.
    let r = post_batch(port, "/stores/store-b/events", &a, &[ev("store-a", 1)]).unwrap();
    assert_eq!(r.status, 403, "{}", r.text());
    // A store HQ does not know.
    let r = post_batch(port, "/events", &a, &[ev("store-z", 1)]).unwrap();
    assert_eq!(r.status, 401, "{}", r.text());
    // Unsigned, and bad JSON (signed).
    let body = serde_json::to_vec(&[ev("store-a", 1)]).unwrap();
    let ct = (
        "content-type",
        "application/cloudevents-batch+json".to_string(),
    );
    let r = request(port, "POST", "/events", std::slice::from_ref(&ct), &body).unwrap();
    assert_eq!(r.status, 401, "{}", r.text());
    let bad = b"[{\"specversion\": \"1.0\",";
    let mut h = signed(&a, bad);
    h.push(ct.clone());
    let r = request(port, "POST", "/events", &h, bad).unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("not JSON"), "{}", r.text());
    assert!(stream_events(&nats.url(), "storegate.>").await.is_empty());

    // The store's own batch, gzipped, goes in.
    let events = [ev("store-a", 1), ev("store-a", 2)];
    let body = serde_json::to_vec(&events).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&body).unwrap();
    let gz = gz.finish().unwrap();
    let mut h = signed(&a, &body);
    h.push(ct);
    h.push(("content-encoding", "gzip".into()));
    let r = request(port, "POST", "/stores/store-a/events", &h, &gz).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let stored = stream_events(&nats.url(), "storegate.>").await;
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0], events[0]);
    let metrics = request(port, "GET", "/metrics", &[], b"").unwrap().text();
    assert!(
        metrics.contains("storegate_hq_events_total 2\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("storegate_hq_rejected_total 7\n"),
        "{metrics}"
    );
    assert_eq!(
        request(port, "GET", "/healthz", &[], b"").unwrap().status,
        200
    );
    assert_eq!(
        request(port, "GET", "/readyz", &[], b"").unwrap().status,
        200
    );
    assert!(!hq.log_text().contains("panicked"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_from_the_kv_registry_is_accepted_with_either_secret_while_rotating() {
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::single(dir.path());
    let port = free_port();
    let toml = hq_toml(port, &[nats.url()], 1, &[("file-01", &secret(20))], "");
    let _hq = Hq::start(dir.path(), "hq", port, &toml, "gateway");
    let (old, new, other) = (secret(21), secret(22), secret(23));
    let client = async_nats::connect(nats.url()).await.unwrap();
    let stores = async_nats::jetstream::new(client)
        .get_key_value("STOREGATE_STORES")
        .await
        .unwrap();
    let later = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1);
    let entry = json!({"timezone": "Asia/Shanghai", "secrets": [
        {"secret": old, "not_after": later.to_string()}, {"secret": new}]});
    stores.put("kv-01", entry.to_string().into()).await.unwrap();
    let ev = |seq| event("kv-01", "visit.ended", seq, json!({"member_id": null}));
    for (i, s) in [&old, &new].into_iter().enumerate() {
        let r = post_batch(port, "/events", s, &[ev(i as u64 + 1)]).unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let r = post_batch(port, "/events", &other, &[ev(3)]).unwrap();
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(
        stream_events(&nats.url(), "storegate.kv-01.>").await.len(),
        2
    );
}

/// Large batches at once (more events than the NATS client's default
/// bound on unacknowledged publishes) all go in: no batch waits on
/// another's acknowledgements.
#[tokio::test(flavor = "multi_thread")]
async fn many_large_batches_at_once_all_go_in() {
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::single(dir.path());
    let s = secret(30);
    let port = free_port();
    let toml = hq_toml(port, &[nats.url()], 1, &[("big-01", &s)], "");
    let _hq = Hq::start(dir.path(), "hq", port, &toml, "gateway");
    let threads: Vec<_> = (0..12u64)
        .map(|t| {
            let s = s.clone();
            std::thread::spawn(move || {
                let batch: Vec<_> = (0..1000)
                    .map(|i| event("big-01", "footfall.summary", t * 1000 + i + 1, json!({})))
                    .collect();
                post_batch(port, "/events", &s, &batch).map(|a| a.status)
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), Some(200));
    }
    assert_eq!(
        stream_events(&nats.url(), "storegate.big-01.>").await.len(),
        12_000
    );
}
