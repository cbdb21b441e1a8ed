//! What hostapd's control socket hands the box: unsolicited events and
//! station listings, whose MACs and key ids come from the radio side.
//! Whatever is accepted is well formed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use storegate::net::hostapd::{self, MAX_KEYID_LEN, StationEvent};

fn keyid_ok(keyid: &Option<String>) {
    if let Some(k) = keyid {
        assert!(!k.is_empty() && k.len() <= MAX_KEYID_LEN, "{k:?}");
        assert!(k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
    }
}

fuzz_target!(|data: &[u8]| {
    if let Some(event) = hostapd::parse_event(data) {
        assert!(hostapd::is_unsolicited(data));
        assert!(event.mac().is_unicast_client());
        if let StationEvent::Connected { keyid, .. } = &event {
            keyid_ok(keyid);
        }
    }
    if let Some(station) = hostapd::parse_station(data) {
        assert!(station.mac.is_unicast_client());
        keyid_ok(&station.keyid);
    }
    let _ = hostapd::valid_keyid(data).map(|k| keyid_ok(&Some(k)));
});
