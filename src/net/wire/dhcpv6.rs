//! DHCPv6 (RFC 8415) client messages: only that the device is there. The
//! message is checked (type, then options as code-length-value pairs that
//! must end exactly at the end of the message) but not read further: the
//! DUID does not reliably name the device's current MAC.

use crate::mac::MacAddr;
use crate::presence::{Sighting, SightingKind};

use super::{WireError, sighting as device};

/// Message type and transaction id.
const HEADER_LEN: usize = 4;
/// Option code and option length, two bytes each.
const OPTION_HEADER_LEN: usize = 4;

/// Message types a client sends to servers (RFC 8415 §7.3).
const CLIENT_MESSAGES: [u8; 8] = [
    1,  // SOLICIT
    3,  // REQUEST
    4,  // CONFIRM
    5,  // RENEW
    6,  // REBIND
    8,  // RELEASE
    9,  // DECLINE
    11, // INFORMATION-REQUEST
];

/// A sighting of `src` (the Ethernet source) for a client message; other
/// message types (relay, server) on the client port are of no interest.
pub(super) fn sighting(src: MacAddr, msg: &[u8]) -> Result<Option<Sighting>, WireError> {
    let (&msg_type, _) = msg
        .split_first()
        .filter(|_| msg.len() >= HEADER_LEN)
        .ok_or(WireError::truncated("DHCPv6 header"))?;
    if !CLIENT_MESSAGES.contains(&msg_type) {
        return Ok(None);
    }
    check_options(&msg[HEADER_LEN..])?;
    device(src, SightingKind::Dhcpv6)
}

fn check_options(mut options: &[u8]) -> Result<(), WireError> {
    while !options.is_empty() {
        let header = options
            .get(..OPTION_HEADER_LEN)
            .ok_or(WireError::BadDhcpv6)?;
        let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
        options = options
            .get(OPTION_HEADER_LEN + len..)
            .ok_or(WireError::BadDhcpv6)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::samples::{DHCPV6_ADVERTISE, DHCPV6_SOLICIT};
    use super::*;

    const PHONE: MacAddr = MacAddr([0x3c, 0x22, 0xfb, 0x12, 0x34, 0x56]);

    /// The DHCPv6 message inside a sample frame (Ethernet, IPv6, UDP).
    fn message(frame: &[u8]) -> &[u8] {
        &frame[14 + 40 + 8..]
    }

    #[test]
    fn solicit_is_a_sighting_advertise_is_not() {
        assert_eq!(
            sighting(PHONE, message(DHCPV6_SOLICIT)),
            Ok(Some(Sighting {
                mac: PHONE,
                kind: SightingKind::Dhcpv6
            }))
        );
        // ADVERTISE is well-formed but from a server.
        assert_eq!(sighting(PHONE, message(DHCPV6_ADVERTISE)), Ok(None));
        // Every client message type counts.
        for t in CLIENT_MESSAGES {
            let mut m = message(DHCPV6_SOLICIT).to_vec();
            m[0] = t;
            assert!(sighting(PHONE, &m).unwrap().is_some(), "type {t}");
        }
    }

    #[test]
    fn options_must_fit_exactly() {
        let m = message(DHCPV6_SOLICIT);
        for end in 0..HEADER_LEN {
            assert_eq!(
                sighting(PHONE, &m[..end]),
                Err(WireError::truncated("DHCPv6 header"))
            );
        }
        // A header alone is a (useless) valid message.
        assert!(sighting(PHONE, &m[..HEADER_LEN]).unwrap().is_some());
        // Cutting anywhere inside the options is an error, between options
        // is not.
        let boundaries = [4, 22, 34, 40, 56];
        for end in HEADER_LEN + 1..m.len() {
            let r = sighting(PHONE, &m[..end]);
            assert_eq!(r.is_ok(), boundaries.contains(&end), "cut at {end}");
        }
        let mut long = m.to_vec();
        long[7] = 200; // the client id's length
        assert_eq!(sighting(PHONE, &long), Err(WireError::BadDhcpv6));
    }
}
