//! `[hq]`: the URL, the secret (inline or from a file), client
//! certificates, time limits.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

#[test]
fn secrets_are_masked_in_debug() {
    let c = Config::parse(&format!(
        "{MINIMAL}\n[hq]\nurl = \"https://hq.example.com/sg/\"\nsecret = \"whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=\"\n"
    ))
    .unwrap();
    let hq = c.hq.unwrap();
    assert_eq!(hq.url, "https://hq.example.com/sg");
    let shown = format!("{hq:?}");
    assert!(!shown.contains("c2VjcmV0"), "{shown}");
}

const HQ: &str =
    "[hq]\nurl = \"https://hq.example.com/sg\"\nsecret = \"whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=\"\n";

#[test]
fn hq_defaults_have_no_client_certificate_and_5s_10s_timeouts() {
    let hq = Config::parse(&format!("{MINIMAL}\n{HQ}"))
        .unwrap()
        .hq
        .unwrap();
    assert!(hq.client_cert.is_none());
    assert_eq!(hq.connect_timeout, Duration::from_secs(5));
    assert_eq!(hq.timeout, Duration::from_secs(10));
}

#[test]
fn hq_client_cert_and_key_go_together() {
    let hq = Config::parse(&format!(
        "{MINIMAL}\n{HQ}client_cert = \"/etc/sg/client.pem\"\nclient_key = \"/etc/sg/client-key.pem\"\n"
    ))
    .unwrap()
    .hq
    .unwrap();
    let cc = hq.client_cert.as_ref().expect("client_cert set");
    assert_eq!(cc.cert, PathBuf::from("/etc/sg/client.pem"));
    assert_eq!(cc.key, PathBuf::from("/etc/sg/client-key.pem"));
    let shown = format!("{hq:?}");
    assert!(shown.contains("client.pem"), "{shown}");

    // One without the other names the missing key and mentions both.
    let e = err(&format!(
        "{MINIMAL}\n{HQ}client_cert = \"/etc/sg/client.pem\"\n"
    ));
    assert_eq!(e.key, "hq.client_key", "{e}");
    assert!(e.problem.contains("hq.client_cert"), "{e}");
    let e = err(&format!(
        "{MINIMAL}\n{HQ}client_key = \"/etc/sg/client-key.pem\"\n"
    ));
    assert_eq!(e.key, "hq.client_cert", "{e}");
    assert!(e.problem.contains("hq.client_key"), "{e}");

    // Empty paths are refused, naming the key.
    let e = err(&format!(
        "{MINIMAL}\n{HQ}client_cert = \" \"\nclient_key = \"/k.pem\"\n"
    ));
    assert_eq!(e.key, "hq.client_cert", "{e}");
    let e = err(&format!(
        "{MINIMAL}\n{HQ}client_cert = \"/c.pem\"\nclient_key = \"\"\n"
    ));
    assert_eq!(e.key, "hq.client_key", "{e}");
}

#[test]
fn hq_timeouts_are_durations_within_bounds() {
    let hq = Config::parse(&format!(
        "{MINIMAL}\n{HQ}connect_timeout = \"250ms\"\ntimeout = \"1m30s\"\n"
    ))
    .unwrap()
    .hq
    .unwrap();
    assert_eq!(hq.connect_timeout, Duration::from_millis(250));
    assert_eq!(hq.timeout, Duration::from_secs(90));

    for (key, value) in [
        ("connect_timeout", "5"),
        ("connect_timeout", "0s"),
        ("connect_timeout", "50ms"),
        ("timeout", "soon"),
        ("timeout", "0ms"),
        ("timeout", "11m"),
    ] {
        let e = err(&format!("{MINIMAL}\n{HQ}{key} = \"{value}\"\n"));
        assert_eq!(e.key, format!("hq.{key}"), "{key} = {value:?}: {e}");
    }
    // The whole-request limit covers connecting, so it cannot be shorter.
    let e = err(&format!(
        "{MINIMAL}\n{HQ}connect_timeout = \"20s\"\ntimeout = \"10s\"\n"
    ));
    assert_eq!(e.key, "hq.connect_timeout", "{e}");
    assert!(e.problem.contains("hq.timeout"), "{e}");
    // A number is not a duration string.
    let e = err(&format!("{MINIMAL}\n{HQ}timeout = 10\n"));
    assert_eq!(e.key, "hq.timeout", "{e}");
}

#[test]
fn hq_sync_interval_defaults_to_5m_and_is_bounded() {
    let hq = Config::parse(&format!("{MINIMAL}\n{HQ}"))
        .unwrap()
        .hq
        .unwrap();
    assert_eq!(hq.sync_interval, Duration::from_secs(300));
    let hq = Config::parse(&format!("{MINIMAL}\n{HQ}sync_interval = \"90s\"\n"))
        .unwrap()
        .hq
        .unwrap();
    assert_eq!(hq.sync_interval, Duration::from_secs(90));
    assert!(format!("{hq:?}").contains("sync_interval"));
    for value in ["\"5s\"", "\"2d\"", "\"often\"", "300"] {
        let e = err(&format!("{MINIMAL}\n{HQ}sync_interval = {value}\n"));
        assert_eq!(e.key, "hq.sync_interval", "{value}: {e}");
    }
}

/// `[hq]` with its secret in `path`.
fn with_secret_file(path: &Path) -> String {
    format!(
        "{MINIMAL}\n[hq]\nurl = \"https://hq.example.com/sg\"\nsecret_file = '{}'\n",
        path.display()
    )
}

#[test]
fn the_secret_file_is_read_and_checked_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hq.secret");
    // As `echo whsec_... > FILE` writes it: the newline is not the secret's.
    std::fs::write(&path, "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=\n").unwrap();
    let hq = Config::parse(&with_secret_file(&path)).unwrap().hq.unwrap();
    assert_eq!(hq.secret.expose(), "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=");
    assert_eq!(hq.secret.file(), Some(path.as_path()));
    let shown = format!("{hq:?}");
    assert!(!shown.contains("c2VjcmV0"), "{shown}");
    assert!(shown.contains("hq.secret"), "the file is shown: {shown}");

    let inline = Config::parse(&format!("{MINIMAL}\n{HQ}"))
        .unwrap()
        .hq
        .unwrap();
    assert_eq!(inline.secret.expose(), "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=");
    assert_eq!(inline.secret.file(), None);
}

#[test]
fn a_missing_or_unreadable_secret_file_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such.secret");
    let e = err(&with_secret_file(&missing));
    assert_eq!(e.key, "hq.secret_file", "{e}");
    assert!(e.problem.contains("no-such.secret"), "{e}");
    // A directory cannot be read as a file (root reads any file, so a
    // mode-000 file would not do here).
    let e = err(&with_secret_file(dir.path()));
    assert_eq!(e.key, "hq.secret_file", "{e}");
    assert!(e.problem.contains("cannot read"), "{e}");
    let binary = dir.path().join("binary.secret");
    std::fs::write(&binary, [b'w', 0xff, 0xfe]).unwrap();
    let e = err(&with_secret_file(&binary));
    assert_eq!(e.key, "hq.secret_file", "{e}");
    let huge = dir.path().join("huge.secret");
    std::fs::write(&huge, "A".repeat(64 * 1024)).unwrap();
    let e = err(&with_secret_file(&huge));
    assert_eq!(e.key, "hq.secret_file", "{e}");
    assert!(e.problem.contains("larger"), "{e}");
}

#[test]
fn an_ill_formed_secret_file_is_refused_without_showing_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hq.secret");
    for content in [
        "",
        "\n",
        "c2VjcmV0LXNlY3JldC1zZWNyZXQ=\n",        // no whsec_ prefix
        "whsec_c2VjcmV0 LXNlY3JldC1zZWNyZXQ=\n", // a space inside
        "whsec_c2VjcmV0LXNlY3JldC1zZWNy!!!\n",   // not base64
        "whsec_MTIzNDU2Nzg5MDEy\n",              // a 12-byte key: too short
        "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=\nextra\n", // two lines
    ] {
        std::fs::write(&path, content).unwrap();
        let e = err(&with_secret_file(&path));
        assert_eq!(e.key, "hq.secret_file", "{content:?}: {e}");
        assert!(e.problem.contains("hq.secret"), "names the file: {e}");
        let body = content.trim();
        if body.len() > 6 {
            assert!(!e.problem.contains(&body[6..]), "shows the secret: {e}");
        }
    }
    // Both ways at once is ambiguous.
    std::fs::write(&path, "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=\n").unwrap();
    let e = err(&format!(
        "{}secret = \"whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=\"\n",
        with_secret_file(&path)
    ));
    assert_eq!(e.key, "hq.secret", "{e}");
}

#[test]
fn secrets_are_checked_as_the_signer_reads_them() {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    // The bounds are the signer's; this is what keeps them the same.
    assert_eq!(
        SECRET_KEY_BYTES,
        crate::uplink::signing::MIN_KEY_BYTES..=crate::uplink::signing::MAX_KEY_BYTES
    );
    let secret = |n: usize| format!("whsec_{}", STANDARD.encode(vec![7u8; n]));
    let mut cases: Vec<String> = [15, 16, 17, 1024, 1025].map(secret).into();
    cases.extend(
        [
            "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ",   // padding left out
            "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=",  // padded
            "whsec_AAAAAAAAAAAAAAA=AAAAAAAAAAAA",  // padding inside
            "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=x", // after the padding
            "whsec_",
            "whsec",
            "",
        ]
        .map(String::from),
    );
    for s in &cases {
        let signer = crate::uplink::signing::SigningKey::from_secret(s).is_ok();
        assert_eq!(check_secret(s).is_ok(), signer, "{s:.40}");
        if let Err(e) = check_secret(s) {
            assert_eq!(e.key, "hq.secret");
        }
    }
    // A 12-byte key passes a look at its characters, not the signer.
    let e = check_secret("whsec_MTIzNDU2Nzg5MDEy").unwrap_err();
    assert!(e.problem.contains("12 bytes"), "{e}");
}

#[test]
fn the_hq_url_must_be_usable_for_requests() {
    let ok = |url: &str| {
        Config::parse(&format!(
            "{MINIMAL}\n[hq]\nurl = \"{url}\"\nsecret = \"whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=\"\n"
        ))
        .map(|c| c.hq.unwrap().url)
    };
    assert_eq!(
        ok("https://hq.example.com/sg/").unwrap(),
        "https://hq.example.com/sg"
    );
    assert_eq!(
        ok("https://hq.example.com").unwrap(),
        "https://hq.example.com"
    );
    for loopback in [
        "http://127.0.0.1:8080/sg",
        "http://localhost:9000",
        "http://[::1]:9000/x",
    ] {
        assert!(ok(loopback).is_ok(), "{loopback}");
    }
    for bad in [
        "hq.example.com/sg",
        "ftp://hq.example.com",
        "https://hq example.com/sg",
        "https:///sg",
        "https://hq.example.com/sg?store=1",
        "https://hq.example.com/sg#events",
        // Plain http only to this machine, not to names that look like it.
        "http://localhost.example.com/sg",
        "http://127.example.com/sg",
        "http://127.0.0.1@evil.example/sg",
        "http://localhost@evil.example/sg",
        "https://user:secret@hq.example.com/sg",
        "http://localhost.evil.example/sg",
        "http://192.0.2.1/sg",
    ] {
        let e = ok(bad).expect_err(bad);
        assert_eq!(e.key, "hq.url", "{bad}: {e}");
    }
}
