//! `storegate hq-receiver`, the reference HQ endpoint, as an integrator
//! uses it (no root needed): batches signed by an independent
//! implementation (Python's `hmac`, not the crate's signer) are printed as
//! JSON lines once each; duplicates are counted, not printed; tampered,
//! unsigned and stale requests get 401 and print nothing; gzip bodies and
//! OTP messages are accepted; SIGTERM exits 0. The Python verifier in
//! `docs/hq-integration.md` is run against the crate's signer.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use storegate::uplink::signing::SigningKey;

use crate::harness::loopback::status_code;
use crate::harness::process::{Proc, bin, stop_with};

const SECRET: &str = "whsec_c3RvcmVnYXRlIHJlY2VpdmVyIHRlc3Qga2V5IDAx";
const OTHER_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The receiver process; killed when dropped. Its stdout lines and stderr
/// are collected by threads.
struct HqReceiver {
    child: Proc,
    addr: String,
    lines: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
}

impl HqReceiver {
    fn start(secret: &str) -> Self {
        let mut child = Command::new(bin())
            .args(["hq-receiver", "--listen", "127.0.0.1:0", "--secret", secret])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start storegate hq-receiver");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let out = child.stdout.take().unwrap();
        let l = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                l.lock().unwrap().push(line);
            }
        });
        let err = child.stderr.take().unwrap();
        let e = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut e = e.lock().unwrap();
                e.push_str(&line);
                e.push('\n');
            }
        });
        let mut r = HqReceiver {
            child: Proc(child),
            addr: String::new(),
            lines,
            stderr,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = r.stderr.lock().unwrap().clone();
            if let Some(rest) = text.split("listening on http://").nth(1) {
                r.addr = rest.lines().next().unwrap().trim().to_string();
                break;
            }
            if let Ok(Some(status)) = r.child.0.try_wait() {
                panic!("hq-receiver exited ({status}):\n{text}");
            }
            assert!(
                Instant::now() < deadline,
                "hq-receiver did not start:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        r
    }

    fn lines(&self) -> Vec<Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
            .collect()
    }

    /// Waits until at least `n` lines were printed.
    fn wait_lines(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.lines.lock().unwrap().len() < n {
            assert!(
                Instant::now() < deadline,
                "expected {n} lines, got {:?}\nstderr:\n{}",
                self.lines.lock().unwrap(),
                self.stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        self.lines()
    }

    fn post(&self, path: &str, headers: &[(&str, String)], body: &[u8]) -> (u16, String) {
        http(&self.addr, "POST", path, headers, body)
    }
}

/// One HTTP/1.1 request on a fresh connection; (status, body).
fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let resp = String::from_utf8_lossy(&resp).into_owned();
    let status = status_code(&resp).unwrap_or_else(|| panic!("no status in {resp:?}"));
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// `v1,<signature>` computed by Python's standard library: independent of
/// the crate's signer.
fn python_sign(secret: &str, id: &str, ts: i64, body: &[u8]) -> String {
    let script = "import sys,hmac,hashlib,base64\n\
        key = base64.b64decode(sys.argv[1][len('whsec_'):])\n\
        msg = sys.argv[2].encode() + b'.' + sys.argv[3].encode() + b'.' + sys.stdin.buffer.read()\n\
        print('v1,' + base64.b64encode(hmac.new(key, msg, hashlib.sha256).digest()).decode())";
    let mut child = Command::new("python3")
        .args(["-c", script, secret, id, &ts.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 is needed to sign independently");
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn signed(
    secret: &str,
    id: &str,
    ts: i64,
    body: &[u8],
    content_type: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("Content-Type", content_type.to_string()),
        ("webhook-id", id.to_string()),
        ("webhook-timestamp", ts.to_string()),
        ("webhook-signature", python_sign(secret, id, ts, body)),
    ]
}

/// (what, headers, body, expected reason).
type RejectCase<'a> = (&'a str, Vec<(&'a str, String)>, &'a [u8], &'a str);

const BATCH: &str = "application/cloudevents-batch+json";

fn event(id: &str, seq: u64) -> Value {
    json!({
        "specversion": "1.0", "id": id, "source": "/stores/wulin-01",
        "type": "com.storegate.visit.started", "time": "2026-11-18T09:00:00Z",
        "sequence": seq.to_string(), "datacontenttype": "application/json",
        "data": {"visit_id": format!("visit-{seq}"), "device_id": "dev-1", "member_id": null,
                 "returning": false, "mac_randomized": true, "os_family": "ios"}
    })
}

fn batch(events: &[Value]) -> Vec<u8> {
    serde_json::to_vec(events).unwrap()
}

fn counts(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{body:?}: {e}"))
}

#[test]
fn hq_receiver_verifies_dedupes_and_prints() {
    let r = HqReceiver::start(SECRET);
    let (s, _) = http(&r.addr, "GET", "/healthz", &[], b"");
    assert_eq!(s, 200);

    // A signed batch: every event printed once, in order.
    let first = [event("e-1", 1), event("e-2", 2), event("e-3", 3)];
    let body = batch(&first);
    // Signed afresh at each send, as a retry is.
    let send = || {
        r.post(
            "/events",
            &signed(SECRET, "batch_1_3", now(), &body, BATCH),
            &body,
        )
    };
    let (s, resp) = send();
    assert_eq!(s, 200, "{resp}");
    assert_eq!(counts(&resp), json!({"accepted": 3, "duplicates": 0}));
    assert_eq!(r.wait_lines(3), first.to_vec());

    // The same batch again (a retry): all duplicates, nothing printed.
    let (s, resp) = send();
    assert_eq!(s, 200, "{resp}");
    assert_eq!(counts(&resp), json!({"accepted": 0, "duplicates": 3}));

    // Rejections: each 401 with a one-line reason, nothing printed.
    let fresh = batch(&[event("e-9", 9)]);
    let mut tampered = fresh.clone();
    let at = tampered.len() - 3;
    tampered[at] = b'X';
    let unsigned = vec![("Content-Type", BATCH.to_string())];
    let cases: Vec<RejectCase> = vec![
        (
            "tampered body",
            signed(SECRET, "b9", now(), &fresh, BATCH),
            &tampered,
            "no signature",
        ),
        (
            "wrong secret",
            signed(OTHER_SECRET, "b9", now(), &fresh, BATCH),
            &fresh,
            "no signature",
        ),
        ("missing signature", unsigned, &fresh, "webhook-id"),
        (
            "stale",
            signed(SECRET, "b9", now() - 600, &fresh, BATCH),
            &fresh,
            "in the past",
        ),
        (
            "future",
            signed(SECRET, "b9", now() + 600, &fresh, BATCH),
            &fresh,
            "in the future",
        ),
    ];
    for (what, headers, body, reason) in cases {
        let (s, resp) = r.post("/events", &headers, body);
        assert_eq!(s, 401, "{what}: {resp}");
        assert!(resp.contains(reason), "{what}: {resp:?}");
        assert_eq!(resp.trim_end().lines().count(), 1, "{what}: {resp:?}");
    }
    // Signed but not a batch of CloudEvents: 400.
    let junk = b"{\"not\": \"an array\"}";
    let (s, resp) = r.post("/events", &signed(SECRET, "bj", now(), junk, BATCH), junk);
    assert_eq!(s, 400, "{resp}");

    // Gzip: the signature is over the uncompressed body. One new event,
    // one already seen; under a path prefix, as `hq.url` may have one.
    let second = [event("e-3", 3), event("e-4", 4)];
    let plain = batch(&second);
    let mut headers = signed(SECRET, "batch_3_4", now(), &plain, BATCH);
    headers.push(("Content-Encoding", "gzip".into()));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&plain).unwrap();
    let gz = gz.finish().unwrap();
    let (s, resp) = r.post("/storegate/events", &headers, &gz);
    assert_eq!(s, 200, "{resp}");
    assert_eq!(counts(&resp), json!({"accepted": 1, "duplicates": 1}));

    // An OTP message.
    let msg = json!({"kind": "otp", "phone": "+8613800000000", "code": "123456",
                     "store_id": "wulin-01", "locale": "zh-CN"});
    let mbody = serde_json::to_vec(&msg).unwrap();
    let (s, resp) = r.post(
        "/messages",
        &signed(SECRET, "msg_1", now(), &mbody, "application/json"),
        &mbody,
    );
    assert_eq!(s, 200, "{resp}");

    // Everything printed, exactly once, in order, and nothing else.
    let mut expected = first.to_vec();
    expected.push(event("e-4", 4));
    expected.push(json!({ "message": msg }));
    assert_eq!(r.wait_lines(5), expected);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(r.lines(), expected);

    // SIGTERM: a clean exit 0.
    let mut r = r;
    let status = stop_with(
        &mut r.child.0,
        "-TERM",
        Duration::from_secs(10),
        Duration::from_millis(20),
    )
    .unwrap_or_else(|| panic!("no exit after SIGTERM"));
    assert_eq!(status.code(), Some(0), "{}", r.stderr.lock().unwrap());
}

#[test]
fn hq_receiver_names_bad_arguments() {
    let run = |args: &[&str]| {
        let out = Command::new(bin())
            .arg("hq-receiver")
            .args(args)
            .env_remove("STOREGATE_HQ_SECRET")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["--secret", SECRET]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--listen"), "{err}");
    let (code, err) = run(&["--listen", "127.0.0.1:0"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--secret"), "{err}");
    let (code, err) = run(&["--listen", "127.0.0.1:0", "--secret", "hunter2"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("whsec_"), "{err}");
    let (code, err) = run(&["--listen", "localhost", "--secret", SECRET]);
    assert_eq!(code, Some(2));
    assert!(err.contains("localhost"), "{err}");
}

/// The Python example verifier in docs/hq-integration.md accepts what the
/// crate's signer signs (plain and gzip), de-duplicates, and rejects
/// tampering, a wrong key and a stale timestamp.
#[test]
fn the_documented_python_verifier_agrees_with_the_signer() {
    let doc = include_str!("../../docs/hq-integration.md");
    let code = doc
        .split("```python\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("a ```python block in docs/hq-integration.md");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hq_verify.py"), code).unwrap();

    let key = SigningKey::from_secret(SECRET).unwrap();
    let ts = 1_795_000_000;
    let body = batch(&[event("p-1", 1), event("p-2", 2), event("p-1", 1)]);
    let signature = key.sign("batch_1_2", ts, &body);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&body).unwrap();
    let gz = gz.finish().unwrap();
    let script = r#"
import json, sys, base64
from hq_verify import *
secret, sig, ts, body, gz = sys.argv[1], sys.argv[2], sys.argv[3], base64.b64decode(sys.argv[4]), base64.b64decode(sys.argv[5])
key = hmac_key(secret)
h = {"webhook-id": "batch_1_2", "webhook-timestamp": ts, "webhook-signature": "v1a,xyz v1,AAAA " + sig}
d = Deduper()
fresh, dup = receive_batch(key, d, h, body, now=int(ts) + 10)
print(json.dumps([[e["id"] for e in fresh], dup]))
fresh, dup = receive_batch(key, d, dict(h, **{"content-encoding": "gzip"}), gz, now=int(ts))
print(json.dumps([[e["id"] for e in fresh], dup]))
def rejected(**kw):
    try:
        args = dict(key=key, deduper=Deduper(), headers=h, raw_body=body, now=int(ts))
        args.update(kw)
        receive_batch(**args)
        return "accepted"
    except Rejected as e:
        return "rejected"
print(rejected(raw_body=body.replace(b"p-2", b"p-3")))
print(rejected(key=b"another key entirely"))
print(rejected(now=int(ts) + 301))
print(rejected(headers={k: v for k, v in h.items() if k != "webhook-signature"}))
"#;
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let out = Command::new("python3")
        .current_dir(dir.path())
        .args([
            "-c",
            script,
            SECRET,
            &signature,
            &ts.to_string(),
            &b64.encode(&body),
            &b64.encode(&gz),
        ])
        .output()
        .expect("python3 is needed to run the documented verifier");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            r#"[["p-1", "p-2"], 1]"#,
            r#"[[], 3]"#,
            "rejected",
            "rejected",
            "rejected",
            "rejected"
        ]
    );
}
