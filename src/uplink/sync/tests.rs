//! Tests of sync against the scripted HQ: the document's checks, a
//! signed document accepted, stored in chunks and loaded again, 304,
//! refusals that keep the last good document, a corrupt store, and the
//! retry loop.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use tokio_util::sync::CancellationToken;

use super::storage::{CHUNK_BYTES, CHUNK_PREFIX, chunk_key, save};
use super::test_hq::{Reply, TestHq};
use super::*;
use crate::store::{MemoryStore, RedbStore, Store, Tree};
use crate::time::Timestamp;
use crate::uplink::signing::SigningKey;

const SECRET: &str = "whsec_c3RvcmVnYXRlIHNpZ25pbmcgdGVzdCBrZXkgMzJieQ==";
const OTHER_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn key() -> SigningKey {
    SigningKey::from_secret(SECRET).unwrap()
}

fn now_secs() -> i64 {
    Timestamp::now().millis() / 1000
}

/// A device id as `DeviceKey::device_id` makes them: 43 base64url chars.
fn dev(n: usize) -> String {
    format!("{n:0>43}")
}

fn doc(version: &str, staff: &[String], blocked: &[String]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "version": version,
        "campaigns": [
            {"id": "cafe-20", "name": "Café 20% off", "audience": {"tier": ["gold"], "returning": true}, "priority": 3},
            {"id": "shoes", "name": "Shoes", "audience": {}}
        ],
        "staff_devices": staff,
        "blocked_devices": blocked,
        "generated_by": "hq 4.2"
    }))
    .unwrap()
}

fn signed(body: &[u8], etag: &str, key: &SigningKey, ts: i64) -> Reply {
    let mut r = Reply::status(200)
        .header("content-type", "application/json")
        .header("etag", etag)
        .body(body);
    for (name, value) in key.headers("sync_1", ts, body) {
        r = r.header(name, &value);
    }
    r
}

fn syncer(hq: &TestHq, state: Arc<SyncState>, store: Arc<dyn Store>) -> Syncer {
    Syncer {
        state,
        store,
        config: SyncConfig {
            timeout: Duration::from_secs(5),
            backoff_min: Duration::from_millis(20),
            ..SyncConfig::new(&hq.url, Duration::from_secs(60))
        },
        key: key(),
        client: super::test_hq::client(),
    }
}

fn chunk_keys(store: &dyn Store) -> Vec<String> {
    store
        .scan(Tree::Meta)
        .unwrap()
        .into_iter()
        .map(|(k, _)| String::from_utf8(k).unwrap())
        .filter(|k| k.starts_with(CHUNK_PREFIX))
        .collect()
}

#[test]
fn parse_accepts_the_format_and_ignores_unknown_fields() {
    let d = SyncDocument::parse(&doc("v1", &[dev(1)], &[dev(2), dev(3)])).unwrap();
    assert_eq!(d.version, "v1");
    assert_eq!(d.campaigns.len(), 2);
    assert_eq!(d.campaigns[0].id, "cafe-20");
    assert_eq!(d.campaigns[0].audience["tier"], serde_json::json!(["gold"]));
    assert_eq!(d.staff_devices, vec![dev(1)]);
    assert_eq!(d.blocked_devices.len(), 2);
}

#[test]
fn parse_refuses_what_is_not_a_good_document() {
    let err = |v: serde_json::Value| SyncDocument::parse(&serde_json::to_vec(&v).unwrap());
    let base = || serde_json::from_slice::<serde_json::Value>(&doc("v1", &[], &[])).unwrap();
    let e = SyncDocument::parse(b"{\"version\": \"v1\", \"campaigns\": [").unwrap_err();
    assert!(e.contains("not valid"), "{e}");
    let e = SyncDocument::parse(b"[]").unwrap_err();
    assert!(e.contains("not valid"), "{e}");
    let mut v = base();
    v.as_object_mut().unwrap().remove("staff_devices");
    let e = err(v).unwrap_err();
    assert!(e.contains("staff_devices"), "{e}");
    let mut v = base();
    v["blocked_devices"] = serde_json::json!([dev(1), "3c:22:fb:12:34:56"]);
    let e = err(v).unwrap_err();
    assert!(e.contains("blocked_devices[1] is not a device_id"), "{e}");
    let mut v = base();
    v["campaigns"][1]["id"] = serde_json::json!("cafe-20");
    let e = err(v).unwrap_err();
    assert!(e.contains("more than once"), "{e}");
    let mut v = base();
    v["campaigns"][0]["audience"] = serde_json::json!("everyone");
    let e = err(v).unwrap_err();
    assert!(e.contains("campaigns[0].audience"), "{e}");
    let mut v = base();
    v["version"] = serde_json::json!(" ");
    assert!(err(v).unwrap_err().contains("version"));
    let mut body = doc("v1", &[], &[]);
    body.extend_from_slice(b" {}");
    assert!(SyncDocument::parse(&body).unwrap_err().contains("trailing"));
}

#[test]
fn device_ids_are_recognised() {
    let key = crate::privacy::DeviceKey::from_bytes([7; 32]);
    let id = key.device_id(crate::mac::MacAddr([0x3c, 0x22, 0xfb, 1, 2, 3]));
    assert!(is_device_id(&id), "{id}");
    assert!(!is_device_id("3c:22:fb:01:02:03"));
    assert!(!is_device_id("3c22fb010203"));
    assert!(!is_device_id(&format!("{}=", &id[..42])));
}

#[tokio::test]
async fn a_signed_document_is_accepted_stored_and_served_after_reload() {
    let dir = tempfile::tempdir().unwrap();
    let hq = TestHq::start().await;
    // Large enough to need several chunks of the store's 64 KiB values.
    let staff: Vec<String> = (0..5000).map(dev).collect();
    let body = doc("v1", &staff, &[dev(90_001)]);
    assert!(body.len() > 3 * CHUNK_BYTES);
    hq.script(vec![signed(&body, "\"etag-1\"", &key(), now_secs())]);
    {
        let store: Arc<dyn Store> = Arc::new(RedbStore::open(dir.path()).unwrap());
        let state = Arc::new(SyncState::load(store.as_ref()));
        assert!(!state.is_staff(&dev(1)));
        let s = syncer(&hq, state.clone(), store.clone());
        assert_eq!(
            s.fetch_once().await,
            Ok(Fetched::Updated {
                version: "v1".into()
            })
        );
        assert!(state.is_staff(&dev(1)) && state.is_staff(&dev(3999)));
        assert!(!state.is_staff(&dev(90_001)));
        assert!(state.is_blocked(&dev(90_001)) && !state.is_blocked(&dev(1)));
        assert_eq!(state.campaigns()[1].name, "Shoes");
        let st = state.status();
        assert_eq!(st.version.as_deref(), Some("v1"));
        assert_eq!(st.etag.as_deref(), Some("\"etag-1\""));
        assert_eq!((st.fetched, st.updated, st.refused), (1, 1, 0));
        assert_eq!(st.staff_devices, 5000);
        assert!(st.last_fetch.is_some() && st.last_error.is_none());
        let seen = hq.seen();
        assert_eq!(seen[0].method, "GET");
        assert_eq!(seen[0].path, "/storegate/sync");
        assert!(seen[0].headers.get("if-none-match").is_none());
        // The request is signed with the box's key, over an empty body.
        let signed = crate::uplink::signing::SignedHeaders::from_header_map(&seen[0].headers);
        let now = crate::time::Timestamp::now().millis() / 1000;
        assert_eq!(key().verify(signed, b"", now, 300), Ok(()));
    }
    // Reopened: the document is back, with its ETag.
    let store: Arc<dyn Store> = Arc::new(RedbStore::open(dir.path()).unwrap());
    let state = SyncState::load(store.as_ref());
    assert_eq!(state.version().as_deref(), Some("v1"));
    assert_eq!(state.etag().as_deref(), Some("\"etag-1\""));
    assert!(state.is_staff(&dev(2500)) && state.is_blocked(&dev(90_001)));
    assert_eq!(state.campaigns().len(), 2);
    let chunks = chunk_keys(store.as_ref()).len();
    assert_eq!(chunks, body.len().div_ceil(CHUNK_BYTES));

    // A smaller replacement leaves no chunk of the old one behind.
    let state = Arc::new(state);
    let body2 = doc("v2", &[dev(5)], &[]);
    hq.script(vec![signed(&body2, "\"etag-2\"", &key(), now_secs())]);
    let s = syncer(&hq, state.clone(), store.clone());
    assert!(matches!(s.fetch_once().await, Ok(Fetched::Updated { .. })));
    assert_eq!(
        hq.seen()[1].headers["if-none-match"],
        "\"etag-1\"",
        "the stored ETag is sent"
    );
    assert!(!state.is_staff(&dev(1)) && state.is_staff(&dev(5)));
    assert_eq!(
        chunk_keys(store.as_ref()),
        vec!["sync.chunk.2.0".to_string()]
    );
    let again = SyncState::load(store.as_ref());
    assert_eq!(again.version().as_deref(), Some("v2"));
}

#[tokio::test]
async fn not_modified_keeps_the_document() {
    let hq = TestHq::start().await;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let state = Arc::new(SyncState::empty());
    let s = syncer(&hq, state.clone(), store.clone());
    let body = doc("v1", &[dev(1)], &[]);
    hq.script(vec![signed(&body, "W/\"abc\"", &key(), now_secs())]);
    s.fetch_once().await.unwrap();
    hq.script(vec![Reply::status(304)]);
    assert_eq!(s.fetch_once().await, Ok(Fetched::NotModified));
    let seen = hq.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].headers["if-none-match"], "W/\"abc\"");
    assert_eq!(state.version().as_deref(), Some("v1"));
    assert!(state.is_staff(&dev(1)));
    let st = state.status();
    assert_eq!((st.fetched, st.updated, st.errors), (2, 1, 0));
    assert_eq!(
        SyncState::load(store.as_ref()).etag().as_deref(),
        Some("W/\"abc\"")
    );
}

#[tokio::test]
async fn bad_documents_are_refused_and_the_last_good_one_kept() {
    let hq = TestHq::start().await;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let state = Arc::new(SyncState::empty());
    let s = syncer(&hq, state.clone(), store.clone());
    hq.script(vec![signed(
        &doc("good", &[dev(1)], &[dev(2)]),
        "\"good\"",
        &key(),
        now_secs(),
    )]);
    s.fetch_once().await.unwrap();

    let evil = doc("evil", &[dev(66)], &[dev(1)]);
    let other = SigningKey::from_secret(OTHER_SECRET).unwrap();
    let unsigned = Reply::status(200).header("etag", "\"evil\"").body(&evil);
    let mut tampered = signed(&doc("evil", &[], &[]), "\"evil\"", &key(), now_secs());
    tampered.body = evil.clone();
    let malformed = b"{\"version\": \"evil\", \"campaigns\": [";
    let not_a_device = doc("evil", &["3c:22:fb:12:34:56".to_string()], &[]);
    let cases = [
        (
            "wrong key",
            signed(&evil, "\"e\"", &other, now_secs()),
            "no signature",
        ),
        ("tampered body", tampered, "no signature"),
        ("unsigned", unsigned, "webhook-id header is missing"),
        (
            "stale",
            signed(&evil, "\"e\"", &key(), now_secs() - 600),
            "in the past",
        ),
        (
            "from the future",
            signed(&evil, "\"e\"", &key(), now_secs() + 600),
            "in the future",
        ),
        (
            "malformed JSON",
            signed(malformed, "\"e\"", &key(), now_secs()),
            "not valid",
        ),
        (
            "a MAC",
            signed(&not_a_device, "\"e\"", &key(), now_secs()),
            "not a device_id",
        ),
    ];
    for (i, (what, reply, expect)) in cases.into_iter().enumerate() {
        hq.script(vec![reply]);
        let err = s.fetch_once().await.unwrap_err();
        assert!(
            matches!(&err, SyncError::Refused(r) if r.contains(expect)),
            "{what}: {err}"
        );
        assert_eq!(state.version().as_deref(), Some("good"), "{what}");
        assert!(
            state.is_staff(&dev(1)) && !state.is_staff(&dev(66)),
            "{what}"
        );
        assert!(!state.is_blocked(&dev(1)), "{what}");
        assert_eq!(state.etag().as_deref(), Some("\"good\""), "{what}");
        let st = state.status();
        assert_eq!(st.refused, i as u64 + 1, "{what}");
        assert!(
            st.last_error.as_deref().unwrap_or("").contains(expect),
            "{what}"
        );
        let stored = SyncState::load(store.as_ref());
        assert_eq!(stored.version().as_deref(), Some("good"), "{what}");
    }
    // HQ keeps being asked for changes since the good one.
    assert!(
        hq.seen()[1..]
            .iter()
            .all(|r| r.headers["if-none-match"] == "\"good\"")
    );
    // And a good one afterwards is taken again, clearing the error.
    hq.script(vec![signed(
        &doc("next", &[], &[]),
        "\"n\"",
        &key(),
        now_secs(),
    )]);
    s.fetch_once().await.unwrap();
    assert_eq!(state.version().as_deref(), Some("next"));
    assert!(state.status().last_error.is_none());
}

#[tokio::test]
async fn oversized_bodies_and_other_statuses_are_refused() {
    let hq = TestHq::start().await;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let state = Arc::new(SyncState::empty());
    let mut s = syncer(&hq, state.clone(), store.clone());
    s.config.max_bytes = 1000;
    let body = doc("big", &(0..100).map(dev).collect::<Vec<_>>(), &[]);
    hq.script(vec![signed(&body, "\"b\"", &key(), now_secs())]);
    let err = s.fetch_once().await.unwrap_err();
    assert!(
        matches!(&err, SyncError::Refused(r) if r.contains("larger than 1000")),
        "{err}"
    );
    hq.script(vec![Reply::status(503)]);
    assert_eq!(
        s.fetch_once().await,
        Err(SyncError::Status(StatusCode::SERVICE_UNAVAILABLE))
    );
    assert_eq!(state.version(), None);
    assert_eq!(store.get(Tree::Meta, META_DOCUMENT).unwrap(), None);
    assert_eq!(state.status().errors, 2);
}

#[test]
fn a_corrupt_stored_document_is_ignored() {
    let store = MemoryStore::new();
    save(
        &store,
        &doc("v1", &[dev(1)], &[]),
        Some("\"x\""),
        Timestamp(0),
        false,
    )
    .unwrap();
    assert_eq!(SyncState::load(&store).version().as_deref(), Some("v1"));
    store
        .put(Tree::Meta, &chunk_key(1, 0), b"{\"version\": \"v9\"}")
        .unwrap();
    let state = SyncState::load(&store);
    assert_eq!(state.version(), None);
    assert!(!state.is_staff(&dev(1)));
    assert!(
        state
            .status()
            .last_error
            .unwrap()
            .contains("does not match")
    );
}

#[tokio::test]
async fn run_retries_until_a_good_answer_and_stops_on_shutdown() {
    let hq = TestHq::start().await;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let state = Arc::new(SyncState::empty());
    let s = syncer(&hq, state.clone(), store);
    hq.script(vec![
        Reply::status(500),
        Reply::status(502),
        signed(&doc("v1", &[], &[]), "\"1\"", &key(), now_secs()),
    ]);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(s.run(shutdown.clone()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while state.status().fetched == 0 {
        assert!(tokio::time::Instant::now() < deadline, "never synced");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(hq.seen().len(), 3);
    let st = state.status();
    assert_eq!((st.errors, st.fetched, st.state), (2, 1, "waiting"));
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(1), task)
        .await
        .expect("run stops on shutdown")
        .unwrap();
}
