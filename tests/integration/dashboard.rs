//! The store manager's dashboard in a real browser: a daemon with no
//! enforcement on loopback, headless Chromium driven over the DevTools
//! protocol by `tests/lab/dashboard_cdp.py` (sign in, a device joins and
//! "present now" changes without a reload, mark it as staff and it leaves
//! the footfall). Screenshots are kept in `target/tmp/dashboard-browser/`.
//!
//! Needs `chromium` (scripts/test.sh installs it as root); skipped only
//! when it is missing and we are not root.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::daemon::{ctl, log_path, loopback_config, start};
use crate::harness::loopback::free_port;
use crate::harness::process::{bin, chromium_or_skip};

#[test]
fn dashboard_in_a_browser() {
    let _cpu = crate::heavy();
    if !chromium_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let password = "browser-test-pass";
    std::fs::write(
        dir.path().join("dashboard.password"),
        format!("{password}\n"),
    )
    .unwrap();
    let cfg = dir.path().join("storegate.toml");
    std::fs::write(
        &cfg,
        loopback_config(
            dir.path(),
            "id = \"dash-01\"\nname = \"Wulin <Store>\"\n",
            &format!(
                "[dashboard]\nlisten = \"127.0.0.1:{port}\"\npassword_file = \"{}\"\n",
                dir.path().join("dashboard.password").display(),
            ),
        ),
    )
    .unwrap();
    let daemon = start(dir.path(), &cfg);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the dashboard did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-browser");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab/dashboard_cdp.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(format!("https://127.0.0.1:{port}"))
        .arg(password)
        .arg(bin())
        .arg(&daemon.socket)
        .arg(&out_dir)
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success() && stdout.contains("DONE"),
        "browser run failed; daemon log: {}",
        std::fs::read_to_string(log_path(dir.path())).unwrap_or_default()
    );
    for step in [
        "REDIRECTED",
        "SIGNED_IN",
        "LIVE present_now=1",
        "MARKED_STAFF",
        "STAFF_LEFT_FOOTFALL",
    ] {
        assert!(stdout.contains(step), "missing step {step}");
    }
    assert!(out_dir.join("dashboard-live.png").exists());
    // The daemon agrees: the device is staff and out of the footfall.
    let status = ctl(&daemon, &["status"]).unwrap();
    assert_eq!(status["presence"]["present_now"], 0);
}
