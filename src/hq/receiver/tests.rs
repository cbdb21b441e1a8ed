use std::io::Write;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

use super::*;
use crate::uplink::signing::{SignedHeaders, SigningKey};

const SECRET: &str = "whsec_c3RvcmVnYXRlIHNpZ25pbmcgdGVzdCBrZXkgMzJieQ==";
const NOW: i64 = 1_795_000_000;

/// A writer the test can read back; `fail` makes every write fail.
#[derive(Clone, Default)]
struct Buf {
    data: Arc<Mutex<Vec<u8>>>,
    fail: Arc<Mutex<bool>>,
}

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if *self.fail.lock().unwrap() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "closed",
            ));
        }
        self.data.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buf {
    fn lines(&self) -> Vec<Value> {
        String::from_utf8(self.data.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn receiver(capacity: usize) -> (Arc<Receiver>, Buf) {
    let buf = Buf::default();
    let key = SigningKey::from_secret(SECRET).unwrap();
    (
        Arc::new(Receiver::new(key, 300, capacity, Box::new(buf.clone()))),
        buf,
    )
}

fn event(id: &str) -> Value {
    json!({
        "specversion": "1.0", "id": id, "source": "/stores/wulin-01",
        "type": "com.storegate.visit.started", "time": "2026-11-18T09:00:00Z",
        "sequence": "1", "datacontenttype": "application/json",
        "data": {"visit_id": "v1", "device_id": "d1", "member_id": null}
    })
}

fn batch(ids: &[&str]) -> Vec<u8> {
    serde_json::to_vec(&ids.iter().map(|i| event(i)).collect::<Vec<_>>()).unwrap()
}

#[test]
fn dedupe_remembers_a_bounded_window() {
    let mut d = Dedupe::new(3);
    assert!(d.insert("a") && d.insert("b") && d.insert("c"));
    assert!(!d.insert("a"));
    assert!(d.insert("d")); // forgets "a", the oldest
    assert_eq!(d.len(), 3);
    assert!(!d.contains("a") && d.contains("b") && d.contains("d"));
    assert!(d.insert("a"));
    assert!(!d.contains("b"));
}

#[test]
fn parse_batch_requires_cloudevents() {
    let ok = parse_batch(&batch(&["e1", "e2"])).unwrap();
    assert_eq!(ok.len(), 2);
    assert_eq!(ok[1].0, "e2");
    assert!(parse_batch(b"[]").unwrap().is_empty());
    let err = |b: &[u8]| parse_batch(b).unwrap_err();
    assert!(err(b"{not json").contains("not JSON"));
    assert!(err(b"{}").contains("not a JSON array"));
    assert!(err(b"[1]").contains("event 0 is not a JSON object"));
    let mut e = event("x");
    e.as_object_mut().unwrap().remove("id");
    assert!(
        err(&serde_json::to_vec(&json!([event("y"), e])).unwrap())
            .contains("event 1 has no \"id\"")
    );
    let mut e = event("x");
    e["specversion"] = json!("0.3");
    assert!(err(&serde_json::to_vec(&json!([e])).unwrap()).contains("specversion"));
    let mut e = event("x");
    e["id"] = json!(7);
    assert!(err(&serde_json::to_vec(&json!([e])).unwrap()).contains("\"id\""));
}

#[test]
fn accept_batch_prints_each_new_event_once() {
    let (r, buf) = receiver(100);
    let c = r
        .accept_batch(parse_batch(&batch(&["a", "b", "a"])).unwrap())
        .unwrap();
    assert_eq!(
        c,
        BatchCounts {
            accepted: 2,
            duplicates: 1
        }
    );
    let c = r
        .accept_batch(parse_batch(&batch(&["b", "c"])).unwrap())
        .unwrap();
    assert_eq!(
        c,
        BatchCounts {
            accepted: 1,
            duplicates: 1
        }
    );
    let ids: Vec<_> = buf
        .lines()
        .iter()
        .map(|l| l["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["a", "b", "c"]);
    assert_eq!(buf.lines()[0], event("a"));
}

#[test]
fn a_failed_write_records_nothing() {
    let (r, buf) = receiver(100);
    *buf.fail.lock().unwrap() = true;
    assert!(
        r.accept_batch(parse_batch(&batch(&["a"])).unwrap())
            .is_err()
    );
    *buf.fail.lock().unwrap() = false;
    let c = r
        .accept_batch(parse_batch(&batch(&["a"])).unwrap())
        .unwrap();
    assert_eq!(
        c,
        BatchCounts {
            accepted: 1,
            duplicates: 0
        }
    );
    assert_eq!(buf.lines().len(), 1);
}

#[test]
fn gunzip_limits_and_errors() {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&[b'x'; 1000]).unwrap();
    let gz = enc.finish().unwrap();
    assert_eq!(gunzip(&gz, 1000).unwrap().len(), 1000);
    assert!(matches!(gunzip(&gz, 999), Err(GunzipError::TooLarge)));
    assert!(matches!(
        gunzip(b"plain text", 1000),
        Err(GunzipError::Corrupt(_))
    ));
}

struct Req {
    path: &'static str,
    content_type: &'static str,
    body: Vec<u8>,
    signed_body: Option<Vec<u8>>,
    gzip: bool,
    ts: i64,
    sign: bool,
}

impl Req {
    fn events(body: Vec<u8>) -> Self {
        Req {
            path: "/events",
            content_type: "application/cloudevents-batch+json",
            body,
            signed_body: None,
            gzip: false,
            ts: NOW,
            sign: true,
        }
    }

    fn build(self) -> Request<Full<Bytes>> {
        let key = SigningKey::from_secret(SECRET).unwrap();
        let signed = self
            .signed_body
            .clone()
            .unwrap_or_else(|| self.body.clone());
        let mut b = Request::post(self.path).header("content-type", self.content_type);
        if self.sign {
            for (k, v) in key.headers("msg_1", self.ts, &signed) {
                b = b.header(k, v);
            }
        }
        let body = if self.gzip {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(&self.body).unwrap();
            b = b.header("content-encoding", "gzip");
            enc.finish().unwrap()
        } else {
            self.body
        };
        b.body(Full::new(Bytes::from(body))).unwrap()
    }
}

async fn send(r: &Arc<Receiver>, req: Req) -> (StatusCode, String) {
    let resp = route(r, req.build(), NOW).await;
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn handler_accepts_signed_batches_and_counts_duplicates() {
    let (r, buf) = receiver(100);
    let (s, body) = send(&r, Req::events(batch(&["a", "b"]))).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"accepted": 2, "duplicates": 0})
    );
    let (s, body) = send(
        &r,
        Req {
            gzip: true,
            path: "/storegate/events/",
            ..Req::events(batch(&["b", "c"]))
        },
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"accepted": 1, "duplicates": 1})
    );
    assert_eq!(buf.lines().len(), 3);
}

#[tokio::test]
async fn handler_rejects_bad_requests_and_prints_nothing() {
    let (r, buf) = receiver(100);
    let cases = [
        (
            Req {
                sign: false,
                ..Req::events(batch(&["a"]))
            },
            StatusCode::UNAUTHORIZED,
            "webhook-id header is missing",
        ),
        (
            Req {
                ts: NOW - 301,
                ..Req::events(batch(&["a"]))
            },
            StatusCode::UNAUTHORIZED,
            "301 s in the past",
        ),
        (
            Req {
                ts: NOW + 400,
                ..Req::events(batch(&["a"]))
            },
            StatusCode::UNAUTHORIZED,
            "in the future",
        ),
        (
            Req {
                signed_body: Some(batch(&["b"])),
                ..Req::events(batch(&["a"]))
            },
            StatusCode::UNAUTHORIZED,
            "no signature",
        ),
        (
            Req::events(b"[{oops".to_vec()),
            StatusCode::BAD_REQUEST,
            "not JSON",
        ),
        (
            Req {
                content_type: "application/json",
                ..Req::events(batch(&["a"]))
            },
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type",
        ),
        (
            Req {
                path: "/nope",
                ..Req::events(batch(&["a"]))
            },
            StatusCode::NOT_FOUND,
            "not found",
        ),
    ];
    for (req, status, reason) in cases {
        let (s, body) = send(&r, req).await;
        assert_eq!(s, status, "{body}");
        assert!(body.contains(reason), "{body:?} lacks {reason:?}");
        assert_eq!(body.trim_end().lines().count(), 1, "{body:?}");
    }
    assert!(buf.lines().is_empty());
}

#[tokio::test]
async fn handler_prints_signed_messages() {
    let (r, buf) = receiver(100);
    let msg = json!({"kind": "otp", "phone": "+8613800000000", "code": "123456", "store_id": "wulin-01", "locale": "zh-CN"});
    let req = Req {
        path: "/messages",
        content_type: "application/json",
        ..Req::events(serde_json::to_vec(&msg).unwrap())
    };
    let (s, body) = send(&r, req).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(buf.lines(), vec![json!({"message": msg})]);
    let unsigned = Req {
        sign: false,
        path: "/messages",
        content_type: "application/json",
        ..Req::events(b"{}".to_vec())
    };
    assert_eq!(send(&r, unsigned).await.0, StatusCode::UNAUTHORIZED);
    let health = route(
        &r,
        Request::get("/healthz")
            .body(Full::new(Bytes::new()))
            .unwrap(),
        NOW,
    )
    .await;
    assert_eq!(health.status(), StatusCode::OK);
    let wrong = route(
        &r,
        Request::get("/events")
            .body(Full::new(Bytes::new()))
            .unwrap(),
        NOW,
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let (r, _) = receiver(100);
    let big = vec![b' '; MAX_BODY_BYTES + 1];
    let (s, body) = send(&r, Req::events(big)).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    // A small gzip body that inflates past the cap.
    let (s, body) = send(
        &r,
        Req {
            gzip: true,
            ..Req::events(vec![b' '; MAX_BODY_BYTES + 1])
        },
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(body.contains("decompressed"), "{body}");
}

/// `GET …/sync` with perhaps an `If-None-Match`: status, headers, body.
async fn get_sync(r: &Arc<Receiver>, etag: Option<&str>) -> (StatusCode, http::HeaderMap, Bytes) {
    let mut b = Request::builder().method("GET").uri("/storegate/sync");
    if let Some(e) = etag {
        b = b.header("if-none-match", e);
    }
    let resp = route(r, b.body(Full::new(Bytes::new())).unwrap(), NOW).await;
    let (parts, body) = resp.into_parts();
    (
        parts.status,
        parts.headers,
        body.collect().await.unwrap().to_bytes(),
    )
}

#[tokio::test]
async fn sync_serves_a_signed_document_with_an_etag() {
    let key = SigningKey::from_secret(SECRET).unwrap();
    let (r, _) = receiver(10);
    let (status, headers, body) = get_sync(&r, None).await;
    assert_eq!(status, StatusCode::OK);
    let doc = crate::uplink::sync::SyncDocument::parse(&body).unwrap();
    assert!(doc.campaigns.is_empty());
    key.verify(SignedHeaders::from_header_map(&headers), &body, NOW, 300)
        .expect("signed with the HQ secret");
    let etag = headers["etag"].to_str().unwrap().to_string();
    let (status, _, body) = get_sync(&r, Some(&etag)).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());
    let (status, _, _) = get_sync(&r, Some("\"something-else\"")).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn sync_serves_the_file_and_refuses_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sync.json");
    let staff = "A".repeat(43);
    std::fs::write(
        &path,
        json!({"version": "v7", "campaigns": [], "staff_devices": [staff], "blocked_devices": []})
            .to_string(),
    )
    .unwrap();
    let key = SigningKey::from_secret(SECRET).unwrap();
    let r = Arc::new(
        Receiver::new(key, 300, 10, Box::new(Buf::default())).with_sync_file(path.clone()),
    );
    let (status, _, body) = get_sync(&r, None).await;
    assert_eq!(status, StatusCode::OK);
    let doc = crate::uplink::sync::SyncDocument::parse(&body).unwrap();
    assert_eq!(doc.version, "v7");
    // A raw MAC where a device id belongs: refused here, not on the boxes.
    std::fs::write(
        &path,
        r#"{"version": "v8", "campaigns": [], "staff_devices": ["02:00:00:00:00:01"], "blocked_devices": []}"#,
    )
    .unwrap();
    let (status, _, body) = get_sync(&r, None).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        String::from_utf8_lossy(&body).contains("not a valid document"),
        "{body:?}"
    );
}

#[tokio::test]
async fn the_observer_sees_each_accepted_event_once_and_nothing_rejected() {
    let buf = Buf::default();
    let key = SigningKey::from_secret(SECRET).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let r = Arc::new(
        Receiver::new(key, 300, 100, Box::new(buf.clone())).with_observer(Arc::new(
            move |e: &Value| {
                s2.lock()
                    .unwrap()
                    .push(e["id"].as_str().unwrap().to_string())
            },
        )),
    );
    let ids = || seen.lock().unwrap().clone();
    assert_eq!(
        send(&r, Req::events(batch(&["a", "b", "a"]))).await.0,
        StatusCode::OK
    );
    assert_eq!(ids(), ["a", "b"]);
    // A duplicate, an unsigned and a wrongly signed batch: not observed.
    assert_eq!(
        send(&r, Req::events(batch(&["b", "c"]))).await.0,
        StatusCode::OK
    );
    let unsigned = Req {
        sign: false,
        ..Req::events(batch(&["d"]))
    };
    assert_eq!(send(&r, unsigned).await.0, StatusCode::UNAUTHORIZED);
    let forged = Req {
        signed_body: Some(batch(&["x"])),
        ..Req::events(batch(&["e"]))
    };
    assert_eq!(send(&r, forged).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(ids(), ["a", "b", "c"]);
    // A batch that could not be written out is not observed either; its
    // retry is, once.
    *buf.fail.lock().unwrap() = true;
    let failed = send(&r, Req::events(batch(&["f"]))).await.0;
    assert_eq!(failed, StatusCode::INTERNAL_SERVER_ERROR);
    *buf.fail.lock().unwrap() = false;
    assert_eq!(send(&r, Req::events(batch(&["f"]))).await.0, StatusCode::OK);
    assert_eq!(ids(), ["a", "b", "c", "f"]);
    assert_eq!(buf.lines().len(), 4);
}
