//! The hostapd control-interface client against `tests/lab/hostapd_standin.py`,
//! a stand-in that speaks hostapd's control protocol on a Unix datagram
//! socket and plays the radio side when the test tells it to (a phone
//! joining with a passphrase is let in only if PBKDF2 of it over the SSID
//! equals a PSK line of the file). No root: sockets in a temp dir.
//!
//! The PSK file holds the IEEE 802.11i test vector (passphrase `password`,
//! SSID `IEEE`) as hex, so the stand-in's key derivation is checked against
//! the standard, and a second member's key computed by Python's hashlib.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use storegate::mac::MacAddr;
use storegate::net::hostapd::{self, Hostapd, HostapdSet, StationEvent};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::harness::hostapd::Standin;
use crate::harness::process::python;

const SSID: &str = "IEEE";
/// IEEE 802.11i-2004, H.4.1: PSK of passphrase "password", SSID "IEEE".
const VECTOR_PSK: &str = "f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e";
const ALICE: &str = "m_AbCdEfGhIjKlMnOpQrStUv";
const ALICE_PASS: &str = "password";
const BOB: &str = "m_Zz-_09yYxXwWvVuUtTsSrR";
const BOB_PASS: &str = "correct horse battery";

fn mac(s: &str) -> MacAddr {
    s.parse().unwrap()
}

/// PBKDF2-HMAC-SHA1(passphrase, ssid, 4096, 32) in hex, by Python's hashlib.
fn psk_hex(passphrase: &str, ssid: &str) -> String {
    let out = Command::new(python())
        .args([
            "-c",
            "import hashlib,sys;print(hashlib.pbkdf2_hmac('sha1',sys.argv[1].encode(),\
             sys.argv[2].encode(),4096,32).hex())",
            passphrase,
            ssid,
        ])
        .output()
        .expect("run python3");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The members' PSK file as the box writes it, with a comment and a blank line.
fn write_psk_file(dir: &Path) -> PathBuf {
    let path = dir.join("hostapd.wpa_psk");
    let text = format!(
        "# storegate members\n\nkeyid={ALICE} 00:00:00:00:00:00 {VECTOR_PSK}\n\
         keyid={BOB} 00:00:00:00:00:00 {}\n",
        psk_hex(BOB_PASS, SSID)
    );
    std::fs::write(&path, text).unwrap();
    path
}

type Events = mpsc::Receiver<(usize, StationEvent)>;

async fn next(events: &mut Events, within: Duration) -> StationEvent {
    match tokio::time::timeout(within, events.recv()).await {
        Ok(Some((0, event))) => event,
        other => panic!("expected a station event within {within:?}, got {other:?}"),
    }
}

fn connected(m: &str, keyid: Option<&str>) -> StationEvent {
    StationEvent::Connected {
        mac: mac(m),
        keyid: keyid.map(str::to_string),
    }
}

/// `run` on one control socket; stopped when the token is cancelled.
fn start_run(ctrl: &Path, local: &Path) -> (HostapdSet, Events, CancellationToken) {
    let (set, commands) = HostapdSet::new(1);
    let (tx, rx) = mpsc::channel(64);
    let stop = CancellationToken::new();
    tokio::spawn(hostapd::run(
        vec![ctrl.to_path_buf()],
        local.to_path_buf(),
        tx,
        commands,
        stop.clone(),
    ));
    (set, rx, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_leaves_and_commands_through_the_control_socket() {
    let dir = tempfile::tempdir().unwrap();
    let psk_file = write_psk_file(dir.path());
    let ctrl = dir.path().join("wlan0");
    let mut standin = Standin::start(SSID, &ctrl, &psk_file);
    // Joined before storegate attaches: found by the listing.
    assert_eq!(
        standin.say(&format!("join 02:00:00:00:00:01 {ALICE_PASS}")),
        format!("joined {ALICE}")
    );

    let (set, mut events, stop) = start_run(&ctrl, dir.path());
    assert_eq!(
        next(&mut events, Duration::from_secs(2)).await,
        connected("02:00:00:00:00:01", Some(ALICE))
    );

    assert_eq!(
        standin.say(&format!("join 02:00:00:00:00:02 {BOB_PASS}")),
        format!("joined {BOB}")
    );
    assert_eq!(
        next(&mut events, Duration::from_secs(2)).await,
        connected("02:00:00:00:00:02", Some(BOB))
    );

    // A wrong passphrase, and Alice's passphrase over another SSID's key:
    // refused, and nothing arrives (the next event is the leave).
    assert_eq!(standin.say("join 02:00:00:00:00:03 passwore"), "refused");
    assert_eq!(standin.say("join 02:00:00:00:00:03 Password"), "refused");
    assert_eq!(standin.say("leave 02:00:00:00:00:01"), "left");
    assert_eq!(
        next(&mut events, Duration::from_secs(2)).await,
        StationEvent::Disconnected {
            mac: mac("02:00:00:00:00:01")
        }
    );

    let reloads = set.reload_all().await;
    assert!(matches!(reloads.as_slice(), [Ok(())]), "{reloads:?}");
    let deauths = set.deauthenticate_all(mac("02:00:00:00:00:02")).await;
    assert!(matches!(deauths.as_slice(), [Ok(())]), "{deauths:?}");
    assert_eq!(
        next(&mut events, Duration::from_secs(2)).await,
        StationEvent::Disconnected {
            mac: mac("02:00:00:00:00:02")
        }
    );
    let state = standin.state();
    assert_eq!(state["reload_wpa_psk"], 1, "{state}");
    assert_eq!(state["deauthenticate"], 1, "{state}");
    assert_eq!(state["deauthenticated"][0], "02:00:00:00:00:02", "{state}");
    assert_eq!(state["stations"].as_array().unwrap().len(), 0, "{state}");
    assert_eq!(state["attached"], 1, "{state}");

    stop.cancel();
    // Commands after the links stopped fail instead of hanging.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let late = set.reload_all().await;
    assert!(
        matches!(late.as_slice(), [Err(hostapd::HostapdError::NotRunning)]),
        "{late:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_by_hand() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let psk_file = write_psk_file(dir.path());
    let ctrl = dir.path().join("wlan0");
    let local_dir = dir.path().join("client");
    std::fs::create_dir(&local_dir).unwrap();
    let mut standin = Standin::start(SSID, &ctrl, &psk_file);
    for (i, pass) in [ALICE_PASS, BOB_PASS, ALICE_PASS].iter().enumerate() {
        assert!(
            standin
                .say(&format!("join 02:00:00:00:01:0{i} {pass}"))
                .starts_with("joined")
        );
    }

    let mut client = Hostapd::connect(&ctrl, &local_dir).await.unwrap();
    let own: Vec<_> = std::fs::read_dir(&local_dir).unwrap().collect();
    assert_eq!(own.len(), 1);
    let own = own[0].as_ref().unwrap().path();
    let mode = std::fs::metadata(&own).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    client.ping().await.unwrap();
    let stations = client.stations().await.unwrap();
    let listed: Vec<_> = stations
        .iter()
        .map(|s| (s.mac.to_string(), s.keyid.clone()))
        .collect();
    assert_eq!(
        listed,
        [
            ("02:00:00:00:01:00".to_string(), Some(ALICE.to_string())),
            ("02:00:00:00:01:01".to_string(), Some(BOB.to_string())),
            ("02:00:00:00:01:02".to_string(), Some(ALICE.to_string())),
        ]
    );
    // The event sent while DEAUTHENTICATE waits for its answer is kept.
    client
        .deauthenticate(mac("02:00:00:00:01:01"))
        .await
        .unwrap();
    assert_eq!(
        client.next_event().await.unwrap(),
        StationEvent::Disconnected {
            mac: mac("02:00:00:00:01:01")
        }
    );
    assert_eq!(
        client.request("NO_SUCH_THING").await.unwrap(),
        "UNKNOWN COMMAND\n"
    );
    assert!(matches!(
        client
            .request("STA-NEXT 02:00:00:00:01:02")
            .await
            .as_deref(),
        Ok("FAIL\n")
    ));

    drop(client);
    assert!(!own.exists(), "the client's socket is removed when dropped");
    let state = standin.wait_state(Duration::from_secs(2), |s| s["attached"] == 0);
    assert_eq!(state["attached"], 0, "DETACH on drop: {state}");

    // No hostapd at the path: connecting fails, without leaving a socket.
    drop(standin);
    assert!(Hostapd::connect(&ctrl, &local_dir).await.is_err());
    assert_eq!(std::fs::read_dir(&local_dir).unwrap().count(), 0);
}

#[test]
fn a_restarted_hostapd_is_reattached_within_2s() {
    // A deadline: not while a heavy test loads both cores.
    let _timed = crate::timed();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(restart());
}

async fn restart() {
    let dir = tempfile::tempdir().unwrap();
    let psk_file = write_psk_file(dir.path());
    let ctrl = dir.path().join("wlan0");
    let mut standin = Standin::start(SSID, &ctrl, &psk_file);
    let (_set, mut events, stop) = start_run(&ctrl, dir.path());
    let state = standin.wait_state(Duration::from_secs(2), |s| s["attached"] == 1);
    assert_eq!(state["attached"], 1, "{state}");

    // Killed right after a PING was answered (the worst moment for a
    // client that only PINGs); its socket file stays behind, as after a
    // crash, and the new one is bound in its place.
    let state = standin.wait_state(Duration::from_secs(5), |s| s["ping"] != 0);
    assert_ne!(state["ping"], 0, "no PING: {state}");
    drop(standin);
    let mut standin = Standin::start(SSID, &ctrl, &psk_file);
    let back = Instant::now();
    // A phone joins at once, before storegate can have re-attached.
    assert_eq!(
        standin.say(&format!("join 02:00:00:00:02:01 {BOB_PASS}")),
        format!("joined {BOB}")
    );
    let state = standin.wait_state(Duration::from_secs(2), |s| s["attached"] == 1);
    let attached_after = back.elapsed();
    assert_eq!(state["attached"], 1, "not re-attached: {state}");
    assert!(
        attached_after < Duration::from_secs(2),
        "{attached_after:?}"
    );
    eprintln!("re-attached {attached_after:?} after the restart");
    let left = Duration::from_secs(2).saturating_sub(back.elapsed());
    assert_eq!(
        next(&mut events, left).await,
        connected("02:00:00:00:02:01", Some(BOB))
    );
    // And later joins arrive as events.
    assert_eq!(
        standin.say(&format!("join 02:00:00:00:02:02 {ALICE_PASS}")),
        format!("joined {ALICE}")
    );
    assert_eq!(
        next(&mut events, Duration::from_secs(2)).await,
        connected("02:00:00:00:02:02", Some(ALICE))
    );
    stop.cancel();
}
