//! HQ delivery over HTTPS, without root: the reference receiver
//! (`storegate hq-receiver --tls-cert --tls-key`) with a certificate for
//! 127.0.0.1 from a test CA made here, and a daemon (no enforcement, on
//! loopback) whose `[hq] ca_file` pins that CA, or an unrelated one.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use serde_json::Value;

const SECRET: &str = "whsec_c3RvcmVnYXRlLXRscy10ZXN0LWtleS0xMjM0NTY=";

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_storegate")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The PEM files of a test PKI.
struct Pki {
    /// The CA that signed the server certificate.
    ca: PathBuf,
    /// A CA that has nothing to do with the server certificate.
    other_ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A test CA, a server certificate for 127.0.0.1 (IP SAN) signed by it,
/// and an unrelated CA, written as PEM files in `dir`.
fn pki(dir: &Path) -> Pki {
    let ca_issuer = ca("storegate test CA");
    let other = ca("storegate unrelated CA");
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "storegate test HQ");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_key = KeyPair::generate().unwrap();
    let server = params.signed_by(&server_key, &ca_issuer).unwrap();
    let pki = Pki {
        ca: dir.join("ca.pem"),
        other_ca: dir.join("other-ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server-key.pem"),
    };
    std::fs::write(&pki.ca, ca_issuer.pem()).unwrap();
    std::fs::write(&pki.other_ca, other.pem()).unwrap();
    std::fs::write(&pki.cert, server.pem()).unwrap();
    std::fs::write(&pki.key, server_key.serialize_pem()).unwrap();
    pki
}

/// The reference receiver over HTTPS; its stdout lines arrive on the
/// channel.
fn receiver(port: u16, pki: &Pki) -> (Proc, Receiver<Value>) {
    let mut child = Command::new(bin())
        .args([
            "hq-receiver",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--secret",
            SECRET,
            "--tls-cert",
        ])
        .arg(&pki.cert)
        .arg("--tls-key")
        .arg(&pki.key)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start hq-receiver");
    let out = child.stdout.take().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                let _ = tx.send(v);
            }
        }
    });
    let mut proc = Proc(child);
    // Ready when it accepts connections.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = proc.0.try_wait() {
            panic!("hq-receiver exited: {status}");
        }
        assert!(Instant::now() < deadline, "hq-receiver did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    (proc, rx)
}

struct Daemon {
    _proc: Proc,
    socket: PathBuf,
}

fn daemon(dir: &Path, hq_port: u16, ca_file: &Path) -> Daemon {
    let socket = dir.join("control.sock");
    let cfg = dir.join("storegate.toml");
    std::fs::write(
        &cfg,
        format!(
            "[store]\nid = \"hq-tls-test\"\n[lan]\ninterface = \"lo\"\n[portal]\nlisten = \"127.0.0.1:{}\"\n\
             [firewall]\nbackend = \"none\"\n[storage]\npath = \"{}\"\n[control]\nsocket = \"{}\"\n\
             [hq]\nurl = \"https://127.0.0.1:{hq_port}/storegate\"\nsecret = \"{SECRET}\"\nca_file = \"{}\"\n",
            free_port(),
            dir.join("state").display(),
            socket.display(),
            ca_file.display(),
        ),
    )
    .unwrap();
    let child = Command::new(bin())
        .args(["run", "-c"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start storegate");
    let mut proc = Proc(child);
    let socket_ready = |socket: &Path| ctl_at(socket, &["status"]).is_some();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket_ready(&socket) {
        if let Ok(Some(status)) = proc.0.try_wait() {
            panic!("storegate exited: {status}");
        }
        assert!(Instant::now() < deadline, "storegate did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Daemon {
        _proc: proc,
        socket,
    }
}

fn ctl_at(socket: &Path, args: &[&str]) -> Option<Value> {
    let out = Command::new(bin())
        .arg("ctl")
        .arg("-s")
        .arg(socket)
        .args(args)
        .arg("--json")
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).ok())
        .flatten()
}

fn ctl(d: &Daemon, args: &[&str]) -> Option<Value> {
    ctl_at(&d.socket, args)
}

const MAC: &str = "02:00:00:00:00:01";

#[test]
fn events_reach_hq_over_https_with_the_pinned_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let port = free_port();
    let (_r, rx) = receiver(port, &pki);
    let d = daemon(dir.path(), port, &pki.ca);
    assert!(ctl(&d, &["auth", MAC]).is_some(), "ctl auth {MAC}");
    let event = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("the event reaches HQ over HTTPS within 5 s");
    assert_eq!(event["type"], "com.storegate.session.authorized", "{event}");
    assert_eq!(event["source"], "/stores/hq-tls-test", "{event}");
    // Delivered events leave the outbox.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let status = ctl(&d, &["status"]);
        let queued = status.as_ref().and_then(|s| s["outbox"]["queued"].as_u64());
        if queued == Some(0) {
            break;
        }
        assert!(Instant::now() < deadline, "outbox not drained: {status:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn events_wait_when_hq_presents_a_certificate_from_another_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let port = free_port();
    let (_r, rx) = receiver(port, &pki);
    let d = daemon(dir.path(), port, &pki.other_ca);
    assert!(ctl(&d, &["auth", MAC]).is_some(), "ctl auth {MAC}");
    assert!(
        rx.recv_timeout(Duration::from_secs(3)).is_err(),
        "an event reached an HQ whose certificate the box does not trust"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        let status = ctl(&d, &["status"]).expect("ctl status");
        if status["hq"]["last_error"].is_string() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the failure is not visible: {status}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status["outbox"]["queued"].as_u64().unwrap_or(0) >= 1,
        "the event stays queued: {status}"
    );
    let error = status["hq"]["last_error"].as_str().unwrap();
    eprintln!("hq.last_error with the wrong CA: {error}");
    assert!(
        error.contains("certificate") && error.contains("UnknownIssuer"),
        "a certificate reason in hq.last_error: {error:?}"
    );
}

#[test]
fn one_tls_file_without_the_other_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    for (flag, file) in [("--tls-cert", &pki.cert), ("--tls-key", &pki.key)] {
        let out = Command::new(bin())
            .args([
                "hq-receiver",
                "--listen",
                "127.0.0.1:0",
                "--secret",
                SECRET,
                flag,
            ])
            .arg(file)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{flag} alone");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("--tls-cert") && stderr.contains("--tls-key"),
            "{flag} alone: {stderr}"
        );
    }
}
