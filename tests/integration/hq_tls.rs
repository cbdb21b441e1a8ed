//! HQ delivery over HTTPS, without root: the reference receiver
//! (`storegate hq-receiver --tls-cert --tls-key`) with a certificate for
//! 127.0.0.1 from a test CA made here, and a daemon (no enforcement, on
//! loopback) whose `[hq] ca_file` pins that CA, or an unrelated one.
//! With `--client-ca` the receiver requires client certificates (mutual
//! TLS): the daemon's `hq.client_cert`/`hq.client_key` from that CA get
//! through; none, or one from another CA, leave the events queued.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use serde_json::Value;

use crate::harness::daemon::{self, Daemon, ctl};
use crate::harness::hq::{self, collect, make_events, sequences};
use crate::harness::loopback::free_port;
use crate::harness::process::{Proc, bin, output_within};

const SECRET: &str = "whsec_c3RvcmVnYXRlLXRscy10ZXN0LWtleS0xMjM0NTY=";
/// The made-up clients' MACs, less the last octet.
const MACS: &str = "02:00:00:00:01";

struct Pki {
    /// The CA that signed the server certificate.
    ca: PathBuf,
    /// A CA that has nothing to do with the server certificate.
    other_ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    /// The CA HQ trusts for client certificates.
    client_ca: PathBuf,
    /// A box's certificate and key from `client_ca`.
    client_cert: PathBuf,
    client_key: PathBuf,
    /// A box's certificate and key from `other_ca`, which HQ does not trust
    /// for clients.
    rogue_cert: PathBuf,
    rogue_key: PathBuf,
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

/// A client certificate for a box, signed by `issuer`: (cert, key) PEM.
fn client_cert(issuer: &CertifiedIssuer<'static, KeyPair>) -> (String, String) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "storegate box hq-tls-test");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// A test CA, a server certificate for 127.0.0.1 (IP SAN) signed by it,
/// an unrelated CA, a client CA and box certificates from the client CA
/// and from the unrelated one, written as PEM files in `dir`.
fn pki(dir: &Path) -> Pki {
    let ca_issuer = ca("storegate test CA");
    let other = ca("storegate unrelated CA");
    let client_ca = ca("storegate test client CA");
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
        client_ca: dir.join("client-ca.pem"),
        client_cert: dir.join("client.pem"),
        client_key: dir.join("client-key.pem"),
        rogue_cert: dir.join("rogue.pem"),
        rogue_key: dir.join("rogue-key.pem"),
    };
    let (cert, key) = client_cert(&client_ca);
    std::fs::write(&pki.client_ca, client_ca.pem()).unwrap();
    std::fs::write(&pki.client_cert, cert).unwrap();
    std::fs::write(&pki.client_key, key).unwrap();
    let (cert, key) = client_cert(&other);
    std::fs::write(&pki.rogue_cert, cert).unwrap();
    std::fs::write(&pki.rogue_key, key).unwrap();
    std::fs::write(&pki.ca, ca_issuer.pem()).unwrap();
    std::fs::write(&pki.other_ca, other.pem()).unwrap();
    std::fs::write(&pki.cert, server.pem()).unwrap();
    std::fs::write(&pki.key, server_key.serialize_pem()).unwrap();
    pki
}

impl Pki {
    /// A box's certificate and key from the CA HQ trusts for clients.
    fn trusted_client(&self) -> (&Path, &Path) {
        (&self.client_cert, &self.client_key)
    }

    /// The receiver's arguments for TLS with the server certificate,
    /// requiring client certificates from `client_ca`.
    fn mtls_args<'a>(&'a self, client_ca: &'a Path) -> [&'a OsStr; 6] {
        [
            OsStr::new("--tls-cert"),
            self.cert.as_os_str(),
            OsStr::new("--tls-key"),
            self.key.as_os_str(),
            OsStr::new("--client-ca"),
            client_ca.as_os_str(),
        ]
    }

    /// A box's certificate and key from a CA HQ does not trust for clients.
    fn rogue_client(&self) -> (&Path, &Path) {
        (&self.rogue_cert, &self.rogue_key)
    }
}

/// A temp dir with the test PKI in it, and a free port for HQ.
fn setup() -> (tempfile::TempDir, Pki, u16) {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let port = free_port();
    (dir, pki, port)
}

fn receiver(port: u16, pki: &Pki) -> (Proc, Receiver<Value>) {
    hq::receiver(port, SECRET, Some((&pki.cert, &pki.key)))
}

fn daemon(dir: &Path, hq_port: u16, ca_file: &Path) -> Daemon {
    let url = format!("https://127.0.0.1:{hq_port}/storegate");
    hq::daemon(dir, "hq-tls-test", &url, SECRET, Some(ca_file))
}

/// The receiver over TLS, requiring client certificates from the client CA.
fn mtls_receiver(port: u16, pki: &Pki) -> (Proc, Receiver<Value>) {
    hq::receiver_with(port, SECRET, &pki.mtls_args(&pki.client_ca))
}

/// The `[hq]` lines pinning HQ's CA, with a client certificate if given.
fn mtls_lines(pki: &Pki, client: Option<(&Path, &Path)>) -> String {
    let mut lines = format!("ca_file = \"{}\"\n", pki.ca.display());
    if let Some((cert, key)) = client {
        lines += &format!(
            "client_cert = \"{}\"\nclient_key = \"{}\"\n",
            cert.display(),
            key.display()
        );
    }
    lines
}

/// A daemon presenting `client` (cert, key) to HQ, or no certificate.
fn mtls_daemon(dir: &Path, hq_port: u16, pki: &Pki, client: Option<(&Path, &Path)>) -> Daemon {
    let url = format!("https://127.0.0.1:{hq_port}/storegate");
    hq::daemon_with(dir, "hq-tls-test", &url, SECRET, &mtls_lines(pki, client))
}

/// Waits until `ctl status` shows an `hq.last_error` with all of `words`
/// (an attempt that loses the race with the peer's close may show a
/// plainer error first); returns the status.
fn wait_for_error(d: &Daemon, within: Duration, words: &[&str]) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let status = ctl(d, &["status"]).expect("ctl status");
        if let Some(error) = status["hq"]["last_error"].as_str()
            && words.iter().all(|w| error.contains(w))
        {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "no hq.last_error with {words:?}: {status}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

const MAC: &str = "02:00:00:00:00:01";

/// HQ over TLS, a daemon whose `ca_file` is the one `ca` picks from the
/// test PKI, and one event made (`ctl auth MAC`). Dropped in field order:
/// the daemon first, HQ, then the directory.
struct Pinned {
    d: Daemon,
    rx: Receiver<Value>,
    _hq: Proc,
    _dir: tempfile::TempDir,
}

fn one_event_pinning(ca: fn(&Pki) -> &Path) -> Pinned {
    let (dir, pki, port) = setup();
    let (hq_proc, rx) = receiver(port, &pki);
    let d = daemon(dir.path(), port, ca(&pki));
    assert!(ctl(&d, &["auth", MAC]).is_some(), "ctl auth {MAC}");
    Pinned {
        d,
        rx,
        _hq: hq_proc,
        _dir: dir,
    }
}

#[test]
fn events_reach_hq_over_https_with_the_pinned_ca() {
    let Pinned { d, rx, .. } = &one_event_pinning(|pki| &pki.ca);
    let event = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("the event reaches HQ over HTTPS within 5 s");
    assert_eq!(event["type"], "com.storegate.session.authorized", "{event}");
    assert_eq!(event["source"], "/stores/hq-tls-test", "{event}");
    // Delivered events leave the outbox.
    hq::wait_drained(d, Duration::from_secs(3));
}

#[test]
fn events_wait_when_hq_presents_a_certificate_from_another_ca() {
    let Pinned { d, rx, .. } = &one_event_pinning(|pki| &pki.other_ca);
    assert!(
        rx.recv_timeout(Duration::from_secs(3)).is_err(),
        "an event reached an HQ whose certificate the box does not trust"
    );
    // Any error: the failure is visible.
    let status = wait_for_error(d, Duration::from_secs(5), &[]);
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

/// Runs the receiver on port 0 with `extra` arguments, to see it refuse
/// them: its exit code and stderr.
fn receiver_usage(extra: &[&OsStr]) -> (Option<i32>, String) {
    let out = Command::new(bin())
        .args(["hq-receiver", "--listen", "127.0.0.1:0", "--secret", SECRET])
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn one_tls_file_without_the_other_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    for (flag, file) in [("--tls-cert", &pki.cert), ("--tls-key", &pki.key)] {
        let (code, stderr) = receiver_usage(&[OsStr::new(flag), file.as_os_str()]);
        assert_eq!(code, Some(2), "{flag} alone");
        assert!(
            stderr.contains("--tls-cert") && stderr.contains("--tls-key"),
            "{flag} alone: {stderr}"
        );
    }
}

#[test]
fn client_ca_without_the_tls_files_or_unreadable_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let (code, stderr) = receiver_usage(&[OsStr::new("--client-ca"), pki.client_ca.as_os_str()]);
    assert_eq!(code, Some(2), "--client-ca alone: {stderr}");
    assert!(
        stderr.contains("--client-ca") && stderr.contains("--tls-cert"),
        "--client-ca alone: {stderr}"
    );
    let missing = dir.path().join("no-such-ca.pem");
    let (code, stderr) = receiver_usage(&pki.mtls_args(&missing));
    assert_eq!(code, Some(2), "unreadable --client-ca: {stderr}");
    assert!(
        stderr.contains("--client-ca") && stderr.contains("no-such-ca.pem"),
        "unreadable --client-ca: {stderr}"
    );
    // A key is not a CA certificate.
    let (code, stderr) = receiver_usage(&pki.mtls_args(&pki.client_key));
    assert_eq!(code, Some(2), "a key as --client-ca: {stderr}");
    assert!(
        stderr.contains("--client-ca"),
        "a key as --client-ca: {stderr}"
    );
}

#[test]
fn events_reach_an_hq_that_requires_client_certificates() {
    let (dir, pki, port) = setup();
    let (_r, rx) = mtls_receiver(port, &pki);
    let d = mtls_daemon(dir.path(), port, &pki, Some(pki.trusted_client()));
    make_events(&d, MACS, 1, 3);
    let got = collect(&rx, 3, Duration::from_secs(10));
    assert_eq!(
        sequences(&got),
        [1, 2, 3],
        "events reach HQ over mutual TLS, in order: {got:?}"
    );
    for e in &got {
        assert_eq!(e["source"], "/stores/hq-tls-test", "{e}");
    }
    hq::wait_drained(&d, Duration::from_secs(3));
    let status = ctl(&d, &["status"]).unwrap();
    assert!(status["hq"]["last_error"].is_null(), "{status}");
}

#[test]
fn without_a_client_certificate_events_wait_until_one_is_configured() {
    let (dir, pki, port) = setup();
    let (_r, rx) = mtls_receiver(port, &pki);
    let mut d = mtls_daemon(dir.path(), port, &pki, None);
    // The TLS alert, and what to do about it.
    refused_and_queued(
        &d,
        &rx,
        &["alert: CertificateRequired", "hq.client_cert"],
        "without a client certificate",
    );
    let log = std::fs::read_to_string(daemon::log_path(dir.path())).unwrap();
    assert!(
        log.contains("delivery to HQ failed") && log.contains("CertificateRequired"),
        "the TLS failure in the log: {log}"
    );
    // Stopped at once (SIGKILL, no flush): the next daemon in the same
    // directory must find the queued events on disk.
    d.proc.kill();

    // The operator adds the certificate and restarts: the queued events,
    // and new ones, arrive in order, once.
    let d = mtls_daemon(dir.path(), port, &pki, Some(pki.trusted_client()));
    make_events(&d, MACS, 3, 1);
    let got = collect(&rx, 3, Duration::from_secs(10));
    assert_eq!(sequences(&got), [1, 2, 3], "{got:?}");
    assert!(
        collect(&rx, 1, Duration::from_millis(500)).is_empty(),
        "an event arrived twice"
    );
    hq::wait_drained(&d, Duration::from_secs(3));
}

#[test]
fn a_client_certificate_from_another_ca_is_refused_and_events_stay_queued() {
    let (dir, pki, port) = setup();
    let (_r, rx) = mtls_receiver(port, &pki);
    let d = mtls_daemon(dir.path(), port, &pki, Some(pki.rogue_client()));
    let status = refused_and_queued(
        &d,
        &rx,
        &["alert: UnknownCA", "client certificate"],
        "with another CA's client certificate",
    );
    assert!(
        status["hq"]["retries"].as_u64().unwrap_or(0) >= 1,
        "retried: {status}"
    );
}

/// Makes two events, checks none reaches HQ, waits for `ctl status` to
/// show an error with every part of `expect`, and checks both events are
/// still queued. Returns that status.
fn refused_and_queued(d: &Daemon, rx: &Receiver<Value>, expect: &[&str], case: &str) -> Value {
    make_events(d, MACS, 1, 2);
    assert!(
        rx.recv_timeout(Duration::from_secs(2)).is_err(),
        "an event reached HQ {case}"
    );
    let status = wait_for_error(d, Duration::from_secs(10), expect);
    assert_eq!(
        status["outbox"]["queued"], 2,
        "the events stay queued: {status}"
    );
    eprintln!("hq.last_error {case}: {}", status["hq"]["last_error"]);
    status
}

#[test]
fn unusable_client_certificate_files_stop_the_daemon_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let missing = dir.path().join("missing.pem");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not PEM at all\n").unwrap();
    let url = format!("https://127.0.0.1:{}/storegate", free_port());
    // (cert, key, what the error must name)
    let cases: [(&Path, &Path, &[&str]); 5] = [
        (
            &missing,
            &pki.client_key,
            &["hq.client_cert", "missing.pem"],
        ),
        (
            &pki.client_cert,
            &missing,
            &["hq.client_key", "missing.pem"],
        ),
        (
            &garbage,
            &pki.client_key,
            &["hq.client_cert", "garbage.pem"],
        ),
        (
            &pki.client_cert,
            &garbage,
            &["hq.client_key", "garbage.pem"],
        ),
        // A valid key that belongs to another certificate.
        (
            &pki.client_cert,
            &pki.rogue_key,
            &["hq.client_cert", "hq.client_key"],
        ),
    ];
    for (cert, key, names) in cases {
        let cfg = hq::write_config(
            dir.path(),
            "hq-tls-test",
            &url,
            SECRET,
            &mtls_lines(&pki, Some((cert, key))),
        );
        let child = Command::new(bin())
            .args(["run", "-c"])
            .arg(&cfg)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let (out, exited) = output_within(child, Duration::from_secs(10));
        assert!(
            exited,
            "storegate kept running with cert {cert:?} and key {key:?}"
        );
        let code = out.status.code();
        let stderr = String::from_utf8_lossy(&out.stderr);
        // A bad config: refused before anything starts, with exit code 2.
        assert_eq!(code, Some(2), "cert {cert:?}, key {key:?}: {stderr}");
        // ... and check-config refuses it the same way.
        let check = Command::new(bin())
            .arg("check-config")
            .arg(&cfg)
            .output()
            .unwrap();
        let check_err = String::from_utf8_lossy(&check.stderr);
        assert_eq!(
            check.status.code(),
            Some(1),
            "check-config, cert {cert:?}, key {key:?}: {check_err}"
        );
        for name in names {
            assert!(
                stderr.contains(name),
                "cert {cert:?}, key {key:?}: {name} not in {stderr}"
            );
            assert!(
                check_err.contains(name),
                "check-config, cert {cert:?}, key {key:?}: {name} not in {check_err}"
            );
        }
    }
}
