//! Bad input is refused by name and breaks nothing: garbage, a 64 KiB
//! header, a 1 MiB body and binary junk on the captured port get 4xx
//! answers (or a closed connection) while the portal keeps serving and
//! nobody is let in; `ctl` names a bad MAC; a config with an unknown key
//! or a bad duration is rejected naming it (this last test needs no root).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::portal::assert_captive;
use crate::harness::process::output_within;
use crate::harness::{self, Client, GateConfig, INET_V4, PORTAL, gate_lab};
use crate::{check, check_eq};

const C1: Client = Client::C1;

#[test]
fn portal_survives_bad_input() {
    let Some((lab, gate)) = gate_lab("bad", GateConfig::default()) else {
        return;
    };
    let host = harness::GW_V4;
    let port = harness::PORTAL_PORT;
    let still_serving = |after: &str| {
        let p = lab.http(C1, &format!("{PORTAL}/login"));
        check_eq!(lab, p.status(), Some(200), "portal after {after}: {p}");
    };

    let garbage = lab.raw(C1, host, port, 3.0, b"GARBAGE\r\n\r\n");
    match garbage.status() {
        Some(s) => check!(lab, (400..500).contains(&s), "garbage got {garbage}"),
        None => check!(
            lab,
            matches!(garbage.result(), "closed" | "reset"),
            "garbage got {garbage}"
        ),
    }
    still_serving("garbage");

    let mut big = format!("GET /login HTTP/1.1\r\nHost: {host}:{port}\r\nX-Big: ").into_bytes();
    big.extend(std::iter::repeat_n(b'a', 64 * 1024));
    big.extend_from_slice(b"\r\n\r\n");
    let p = lab.raw(C1, host, port, 3.0, &big);
    check!(
        lab,
        matches!(p.status(), Some(431) | Some(400)),
        "64 KiB header got {p}"
    );
    still_serving("a 64 KiB header");

    let body_len = 1024 * 1024;
    let mut post = format!(
        "POST /login HTTP/1.1\r\nHost: {host}:{port}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {body_len}\r\n\r\n"
    )
    .into_bytes();
    let mut body = b"accept_terms=yes&pad=".to_vec();
    body.resize(body_len, b'x');
    post.extend(body);
    let p = lab.raw(C1, host, port, 5.0, &post);
    check_eq!(lab, p.status(), Some(413), "1 MiB body got {p}");
    still_serving("a 1 MiB body");
    assert_captive(&lab, C1, true, "an oversized sign-in must not authorise");
    check!(
        lab,
        !lab.has_internet(C1),
        "an oversized sign-in must not authorise"
    );

    // Captured (port 80) garbage is handled by the same listener.
    let p = lab.raw(
        C1,
        INET_V4,
        80,
        3.0,
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n",
    );
    check!(
        lab,
        p.result() != "timeout",
        "binary junk on port 80 hung: {p}"
    );
    still_serving("binary junk on port 80");

    for cmd in ["auth", "deauth"] {
        let out = gate.ctl(&[cmd, "not-a-mac"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        check!(lab, !out.status.success(), "ctl {cmd} not-a-mac succeeded");
        check!(
            lab,
            stderr.contains("not-a-mac"),
            "ctl {cmd} not-a-mac: stderr does not name the input: {stderr}"
        );
    }
    still_serving("bad ctl commands");
}

/// A minimal valid config, harmless even if a bug let the daemon run: no
/// firewall, a LAN interface that does not exist, everything in `dir`.
fn base_config(dir: &Path) -> String {
    format!(
        "[store]\nid = \"lab-cfg\"\nname = \"Lab\"\ntimezone = \"Asia/Shanghai\"\n\n\
         [lan]\ninterface = \"sg-nonexist0\"\n\n\
         [firewall]\nbackend = \"none\"\n\n\
         [storage]\npath = \"{0}/state\"\n\n\
         [control]\nsocket = \"{0}/control.sock\"\n",
        dir.display()
    )
}

/// Runs storegate with a deadline; a run that does not exit is killed.
fn storegate_output(args: &[&str], deadline: Duration) -> (Option<i32>, String, String) {
    let child = Command::new(harness::storegate_bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run storegate");
    let (out, _) = output_within(child, deadline);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Needs no root: config errors are reported before anything is touched.
#[test]
fn bad_config_is_rejected() {
    let dir = tempfile::tempdir().expect("temp dir");
    let good = dir.path().join("good.toml");
    std::fs::write(&good, base_config(dir.path())).unwrap();
    let good = good.display().to_string();
    let (code, out, err) = storegate_output(&["check-config", &good], Duration::from_secs(10));
    assert_eq!(code, Some(0), "check-config of a valid config: {out}{err}");

    let bogus = dir.path().join("bogus.toml");
    std::fs::write(
        &bogus,
        format!("{}\n[portal]\nbogus = 1\n", base_config(dir.path())),
    )
    .unwrap();
    let bogus = bogus.display().to_string();
    let (code, out, err) = storegate_output(&["check-config", &bogus], Duration::from_secs(10));
    assert_eq!(
        code,
        Some(1),
        "check-config with an unknown key: {out}{err}"
    );
    assert!(
        err.contains("portal.bogus") || err.contains("bogus"),
        "stderr must name the key: {err}"
    );

    let (code, out, err) = storegate_output(&["run", "-c", &bogus], Duration::from_secs(10));
    assert_eq!(code, Some(2), "run with an unknown key: {out}{err}");
    let reason: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        !reason.is_empty() && err.contains("bogus"),
        "run must say why: {err}"
    );

    let bad_duration = dir.path().join("duration.toml");
    std::fs::write(
        &bad_duration,
        format!(
            "{}\n[portal]\nsession_timeout = \"banana\"\n",
            base_config(dir.path())
        ),
    )
    .unwrap();
    let bad_duration = bad_duration.display().to_string();
    let (code, out, err) =
        storegate_output(&["check-config", &bad_duration], Duration::from_secs(10));
    assert_eq!(
        code,
        Some(1),
        "check-config with a bad duration: {out}{err}"
    );
    assert!(
        err.contains("session_timeout"),
        "stderr must name the key: {err}"
    );
}
