//! HQ delivery over HTTPS, without root: the reference receiver
//! (`storegate hq-receiver --tls-cert --tls-key`) with a certificate for
//! 127.0.0.1 from a test CA made here, and a daemon (no enforcement, on
//! loopback) whose `[hq] ca_file` pins that CA, or an unrelated one.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use serde_json::Value;

use crate::hq::{self, Daemon, bin, ctl, free_port};

const SECRET: &str = "whsec_c3RvcmVnYXRlLXRscy10ZXN0LWtleS0xMjM0NTY=";

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

fn receiver(port: u16, pki: &Pki) -> (hq::Proc, Receiver<Value>) {
    hq::receiver(port, SECRET, Some((&pki.cert, &pki.key)))
}

fn daemon(dir: &Path, hq_port: u16, ca_file: &Path) -> Daemon {
    let url = format!("https://127.0.0.1:{hq_port}/storegate");
    hq::daemon(dir, "hq-tls-test", &url, SECRET, Some(ca_file))
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
    hq::wait_drained(&d, Duration::from_secs(3));
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
