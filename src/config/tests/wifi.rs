//! `[members.wifi]`: read, defaulted and checked, errors naming the key.

use std::path::PathBuf;

use super::*;

const WIFI: &str = "[members.wifi]\nssid = \"Store Members\"\n\
                    psk_file = \"/var/run/storegate/members.psk\"\n\
                    hostapd_ctrl = [\"/var/run/hostapd/wlan0-1\"]\n";

#[test]
fn members_wifi_is_optional_and_read() {
    assert_eq!(Config::parse(MINIMAL).unwrap().members.wifi, None);
    let c = Config::parse(&format!("{MINIMAL}\n{WIFI}")).unwrap();
    let w = c.members.wifi.unwrap();
    assert_eq!(w.ssid, "Store Members");
    assert_eq!(w.psk_file, PathBuf::from("/var/run/storegate/members.psk"));
    assert_eq!(
        w.hostapd_ctrl,
        vec![PathBuf::from("/var/run/hostapd/wlan0-1")]
    );
    assert!(
        !w.allow_member_number,
        "member numbers get no key by default"
    );
    let c = Config::parse(&format!("{MINIMAL}\n{WIFI}allow_member_number = true\n")).unwrap();
    assert!(c.members.wifi.unwrap().allow_member_number);
}

#[test]
fn members_wifi_bad_values_name_their_key() {
    let with = |extra: &str| format!("{MINIMAL}\n[members.wifi]\n{extra}\n");
    let ctrl = "hostapd_ctrl = [\"/var/run/hostapd/wlan0\"]";
    let file = "psk_file = \"/var/run/members.psk\"";
    for (text, key) in [
        (
            with(&format!("ssid = \"\"\n{file}\n{ctrl}")),
            "members.wifi.ssid",
        ),
        (
            with(&format!("ssid = \"{}\"\n{file}\n{ctrl}", "x".repeat(33))),
            "members.wifi.ssid",
        ),
        (
            // 11 three-byte characters: 33 bytes.
            with(&format!("ssid = \"{}\"\n{file}\n{ctrl}", "店".repeat(11))),
            "members.wifi.ssid",
        ),
        (
            with(&format!("ssid = \"a\\nb\"\n{file}\n{ctrl}")),
            "members.wifi.ssid",
        ),
        (
            with(&format!("ssid = \"S\"\npsk_file = \"members.psk\"\n{ctrl}")),
            "members.wifi.psk_file",
        ),
        (
            with(&format!("ssid = \"S\"\npsk_file = \"/var/run/\"\n{ctrl}")),
            "members.wifi.psk_file",
        ),
        (
            with(&format!("ssid = \"S\"\n{file}\nhostapd_ctrl = []")),
            "members.wifi.hostapd_ctrl",
        ),
        (
            with(&format!("ssid = \"S\"\n{file}\nhostapd_ctrl = [\"wlan0\"]")),
            "members.wifi.hostapd_ctrl",
        ),
        (
            with(&format!(
                "ssid = \"S\"\n{file}\nhostapd_ctrl = [\"/a/b\", \"/a/b\"]"
            )),
            "members.wifi.hostapd_ctrl",
        ),
        (
            with(&format!("ssid = \"S\"\n{file}\n{ctrl}\npassphrase = \"x\"")),
            "members.wifi.passphrase",
        ),
    ] {
        let e = err(&text);
        assert_eq!(e.key, key, "{text}: {e}");
    }
    // A missing key is named too.
    let e = err(&with(&format!("{file}\n{ctrl}")));
    assert!(e.to_string().contains("ssid"), "{e}");
}
