//! `GET …/sync`: the store's own document, else the chain's, else an
//! empty one; signed with the store's secret (the box accepts it), `ETag`
//! = the KV revision, `304` for a matching `If-None-Match`.

use std::time::Duration;

use serde_json::{Value, json};
use storegate::uplink::signing::{SignedHeaders, SigningKey};

use crate::harness::*;

fn verify(secret: &str, a: &Answer) {
    let key = SigningKey::from_secret(secret).unwrap();
    let h = SignedHeaders {
        id: a.header("webhook-id"),
        timestamp: a.header("webhook-timestamp"),
        signature: a.header("webhook-signature"),
    };
    key.verify(h, &a.body, jiff::Timestamp::now().as_second(), 300)
        .expect("signed with the store's secret");
}

#[tokio::test(flavor = "multi_thread")]
async fn each_store_gets_its_document_signed_with_its_secret() {
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::single(dir.path());
    let (a, b) = (secret(3), secret(4));
    let port = free_port();
    let toml = hq_toml(
        port,
        &[nats.url()],
        1,
        &[("store-a", &a), ("store-b", &b)],
        "",
    );
    let _hq = Hq::start(dir.path(), "hq", port, &toml, "gateway");

    // Nothing in KV yet: an empty document.
    let r = request(port, "GET", "/stores/store-a/sync", &[], b"").unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    verify(&a, &r);
    let doc: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(doc["campaigns"], json!([]));

    let client = async_nats::connect(nats.url()).await.unwrap();
    let kv = async_nats::jetstream::new(client)
        .get_key_value("STOREGATE_SYNC")
        .await
        .unwrap();
    let chain =
        json!({"version": "chain-1", "campaigns": [], "staff_devices": [], "blocked_devices": []});
    let own = json!({"version": "a-1", "campaigns": [{"id": "c", "name": "C", "audience": {}}],
                     "staff_devices": [], "blocked_devices": []});
    let chain_rev = kv.put("_chain", chain.to_string().into()).await.unwrap();
    let own_rev = kv.put("store-a", own.to_string().into()).await.unwrap();

    let r = request(port, "GET", "/stores/store-a/sync", &[], b"").unwrap();
    assert_eq!(r.status, 200);
    verify(&a, &r);
    assert_eq!(
        serde_json::from_slice::<Value>(&r.body).unwrap()["version"],
        "a-1"
    );
    assert_eq!(r.header("etag"), Some(format!("\"{own_rev}\"").as_str()));
    let r = request(port, "GET", "/sync?store=store-b", &[], b"").unwrap();
    assert_eq!(r.status, 200);
    verify(&b, &r);
    assert_eq!(
        serde_json::from_slice::<Value>(&r.body).unwrap()["version"],
        "chain-1"
    );
    // Not signed with the other store's secret.
    let key_a = SigningKey::from_secret(&a).unwrap();
    let h = SignedHeaders {
        id: r.header("webhook-id"),
        timestamp: r.header("webhook-timestamp"),
        signature: r.header("webhook-signature"),
    };
    assert!(
        key_a
            .verify(h, &r.body, jiff::Timestamp::now().as_second(), 300)
            .is_err()
    );
    let tag = format!("\"{chain_rev}\"");
    let r = request(
        port,
        "GET",
        "/stores/store-b/sync",
        &[("if-none-match", tag.clone())],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 304);
    assert_eq!(r.header("etag"), Some(tag.as_str()));
    // A request signed with another store's secret.
    let forged = signed(&a, b"");
    let r = request(port, "GET", "/stores/store-b/sync", &forged, b"").unwrap();
    assert_eq!(r.status, 401, "{}", r.text());
    // Unknown store, no store named.
    assert_eq!(
        request(port, "GET", "/stores/nobody/sync", &[], b"")
            .unwrap()
            .status,
        401
    );
    assert_eq!(request(port, "GET", "/sync", &[], b"").unwrap().status, 400);

    // The box itself takes the document.
    let hq_url = format!("http://127.0.0.1:{port}/stores/store-a");
    let bx = BoxDaemon::start(&dir.path().join("box"), "store-a", &hq_url, &a);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let status = bx.ctl(&["status"]).unwrap_or_default();
        if status["hq"]["sync"]["version"] == "a-1" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the box's sync: {}",
            status["hq"]["sync"]
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
