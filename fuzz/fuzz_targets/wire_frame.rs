//! Ethernet frames from the LAN (every byte hostile): `parse_frame` must
//! never panic, and what it hands on must respect the documented bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use storegate::net::wire::{self, dhcp};
use storegate::presence::SightingKind;

fuzz_target!(|data: &[u8]| {
    match wire::parse_frame(data) {
        Ok(Some(s)) => {
            assert!(s.mac.is_unicast_client());
            if let SightingKind::DhcpClient(info) = &s.kind {
                let chars = |t: &Option<String>| t.as_ref().map_or(0, |t| t.chars().count());
                assert!(chars(&info.hostname) <= dhcp::MAX_HOSTNAME_CHARS);
                assert!(chars(&info.vendor_class) <= dhcp::MAX_VENDOR_CLASS_CHARS);
                assert!(info.client_id.as_ref().map_or(0, Vec::len) <= dhcp::MAX_CLIENT_ID_BYTES);
                assert!(info.param_request_list.len() <= dhcp::MAX_PRL_ENTRIES);
                for text in [&info.hostname, &info.vendor_class].into_iter().flatten() {
                    assert!(!text.chars().any(char::is_control));
                }
            }
        }
        Ok(None) => {}
        Err(e) => assert!(!e.kind().is_empty()),
    }
});
