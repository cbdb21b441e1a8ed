//! The DHCPv4 message and option parser on its own: the bytes are taken
//! both as a bare options area and as a whole BOOTP message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use storegate::net::wire::dhcp::{self, DhcpOptions, DhcpPacket};

fuzz_target!(|data: &[u8]| {
    // A bare options area: at most one error, and it ends the walk.
    let mut errors = 0;
    let mut consumed = 0;
    for opt in DhcpOptions::new(data) {
        match opt {
            Ok(o) => consumed += 2 + o.data.len(),
            Err(_) => errors += 1,
        }
        assert!(errors <= 1);
    }
    assert!(consumed <= data.len());

    if let Ok(packet) = DhcpPacket::new_checked(data) {
        let _ = (packet.op(), packet.xid(), packet.ciaddr(), packet.client_mac());
        // Overload may add `file` and `sname` (192 bytes) to the walk.
        assert!(packet.options().count() <= data.len() + 192);
        let _ = packet.message_type();
        if let Ok(info) = dhcp::client_info(&packet) {
            assert!(info.param_request_list.len() <= dhcp::MAX_PRL_ENTRIES);
            assert!(info.client_id.map_or(0, |c| c.len()) <= dhcp::MAX_CLIENT_ID_BYTES);
        }
    }
});
