//! A state directory written by version 0.1 (sled) is migrated on the
//! first start of this version and nothing is lost: sessions, devices,
//! members, the device key, and the events still waiting for HQ, which
//! HQ then receives in order with no hole in their sequence numbers.
//!
//! The fixture (`tests/fixtures/sled-state-v0.1.tar.gz`) is the state of
//! a `storegate demo --seed 7` run of version 0.1, then a `storegate run`
//! on it with HQ unreachable (so events were queued), with the dashboard's
//! certificate, key and password left out; the `.expected.json`
//! beside it is what version 0.1's `ctl` printed of it.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::harness::daemon::{ctl, loopback_config, start};
use crate::harness::hq;
use crate::harness::loopback::free_port;

const SECRET: &str = "whsec_bWlncmF0aW9uLXRlc3Qta2V5LWZvci1zdG9yZWdhdGU=";

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn strings(v: &Value, field: &str) -> BTreeSet<String> {
    v.as_array()
        .unwrap()
        .iter()
        .filter_map(|x| x[field].as_str().map(str::to_string))
        .collect()
}

#[test]
fn a_version_0_1_state_is_migrated_and_loses_nothing() {
    let expected: Value =
        serde_json::from_slice(&std::fs::read(fixture("sled-state-v0.1.expected.json")).unwrap())
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let unpacked = dir.path().join("unpacked");
    std::fs::create_dir_all(&unpacked).unwrap();
    let ok = Command::new("tar")
        .arg("xzf")
        .arg(fixture("sled-state-v0.1.tar.gz"))
        .arg("-C")
        .arg(&unpacked)
        .status()
        .unwrap()
        .success();
    assert!(ok, "unpacking the fixture");
    // Version 0.1's storage directory (sled inside, in `db/`).
    let state = dir.path().join("state");
    std::fs::rename(unpacked.join("db"), &state).unwrap();
    assert!(state.join("db/conf").is_file());

    let port = free_port();
    let (_hq, rx) = hq::receiver(port, SECRET, None);
    let cfg = dir.path().join("storegate.toml");
    // The fixture ages: keep its devices and bindings whatever the date.
    let rest = format!(
        "[hq]\nurl = \"http://127.0.0.1:{port}/storegate\"\nsecret = \"{SECRET}\"\n\
         [privacy]\nforget_unbound_after_days = 3650\n[members]\nremember_days = 3650\n"
    );
    std::fs::write(&cfg, loopback_config(dir.path(), "id = \"demo\"\n", &rest)).unwrap();

    for round in 0..2 {
        let d = start(dir.path(), &cfg);
        assert!(!state.join("db").exists(), "sled's directory is removed");
        assert!(state.join("state.redb").is_file());

        let status = ctl(&d, &["status"]).unwrap();
        let restored = &status["restored"];
        let sessions =
            restored["authorized"].as_u64().unwrap() + restored["expired"].as_u64().unwrap();
        if round == 0 {
            let n = expected["clients"].as_array().unwrap().len() as u64;
            assert_eq!(sessions, n, "every saved session is restored: {restored}");
            assert_eq!(restored["corrupt"], 0);
        }
        let members = strings(&ctl(&d, &["members"]).unwrap(), "member_id");
        assert_eq!(members, strings(&expected["members"], "member_id"));
        let devices = strings(&ctl(&d, &["devices"]).unwrap(), "mac");
        let want: BTreeSet<String> = expected["devices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap().to_string())
            .collect();
        assert!(devices.is_superset(&want), "devices lost in the migration");
        drop(d);
    }

    // Every event that was waiting reached HQ, with its id and number.
    let waiting = expected["events"].as_array().unwrap();
    let ids: BTreeSet<&str> = waiting.iter().map(|e| e["id"].as_str().unwrap()).collect();
    let first: u64 = waiting[0]["sequence"].as_str().unwrap().parse().unwrap();
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        got.extend(hq::collect(&rx, 1, Duration::from_millis(200)));
        let have: BTreeSet<&str> = got.iter().filter_map(|e| e["id"].as_str()).collect();
        if ids.is_subset(&have) {
            break;
        }
    }
    let have: BTreeSet<&str> = got.iter().filter_map(|e| e["id"].as_str()).collect();
    let missing: Vec<&&str> = ids.difference(&have).collect();
    assert!(
        missing.is_empty(),
        "waiting events HQ never got: {missing:?}"
    );
    assert!(got.iter().all(|e| e["source"] == "/stores/demo"));
    // No hole and no number used twice from the first waiting event on.
    let seqs: BTreeSet<u64> = hq::sequences(&got)
        .into_iter()
        .filter(|s| *s >= first)
        .collect();
    let last = *seqs.iter().max().unwrap();
    let holes: Vec<u64> = (first..=last).filter(|s| !seqs.contains(s)).collect();
    assert!(
        holes.is_empty(),
        "sequence numbers missing at HQ: {holes:?}"
    );
}
