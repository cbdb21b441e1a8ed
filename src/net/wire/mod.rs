//! The LAN frames presence cares about, as zero-copy views: parsers that
//! turn a captured Ethernet frame into a [`Sighting`], builders for the
//! probes the box sends, and the kernel filter (`bpf`) that lets only these
//! frames reach user space. Pure: no I/O, no clock.
//!
//! Every byte here came from the LAN and is hostile. Views check their
//! length once and then cannot panic; every length field is checked
//! against the bytes that are really there; every string and list handed
//! on is bounded (see [`dhcp`] for the limits). [`parse_frame`] is fuzzed
//! (`fuzz/fuzz_targets/wire_frame.rs`, `dhcp_options.rs`).
//!
//! Ethernet, 802.1Q, ARP, IPv4, IPv6, UDP and ICMPv6 are read through
//! `pnet_packet`'s views, after this module has checked every length they
//! would otherwise trust; the DHCP message and its options are parsed in
//! [`dhcp`], smoltcp-style.
//!
//! What [`parse_frame`] reports:
//!
//! | frame | sighting (device MAC) |
//! |---|---|
//! | DHCPv4 client message, UDP 68→67 | `DhcpClient` or `DhcpRelease` (`chaddr`, else Ethernet source) |
//! | DHCPACK, UDP 67→68 | `DhcpAck { ip: yiaddr }` (`chaddr`) |
//! | ARP request or reply | `Arp` (sender hardware address) |
//! | ICMPv6 RS, NS, NA | `Nd` (Ethernet source) |
//! | DHCPv6 client message, UDP 546→547 | `Dhcpv6` (Ethernet source) |
//!
//! The parser does not know the box's own MAC: frames the box sent itself
//! (its ARP requests, its own probes) parse like any other, and the caller
//! drops sightings of its own address.

pub mod bpf;
pub mod dhcp;

mod arp;
mod dhcpv6;
mod frame;
mod nd;
#[cfg(test)]
pub(crate) mod samples;

pub use arp::arp_probe;
pub use frame::parse_frame;
pub use nd::nd_solicit;

use crate::mac::MacAddr;
use crate::presence::{Sighting, SightingKind};

/// Why a frame was rejected. Each variant has a stable [`WireError::kind`]
/// for a metrics label; the `Display` text is for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The bytes end before a header does, or before a length field says
    /// the packet does.
    #[error("truncated {layer}")]
    Truncated { layer: &'static str },
    /// An IP header that cannot be right: wrong version, IHL below 5, a
    /// total length shorter than the header.
    #[error("malformed {layer} header")]
    BadIpHeader { layer: &'static str },
    /// The IPv4 header checksum does not add up.
    #[error("IPv4 header checksum mismatch")]
    BadChecksum,
    /// A UDP length field below 8 or past the end of the IP payload.
    #[error("UDP length field out of range")]
    BadUdpLength,
    /// Not a BOOTP/DHCP message: no magic cookie, or the wrong `op` for
    /// its direction.
    #[error("malformed DHCP header")]
    BadDhcpHeader,
    /// A DHCP option that runs past the end of its area, or has a length
    /// its type does not allow.
    #[error("malformed DHCP option")]
    BadDhcpOption,
    /// ARP for Ethernet/IPv4 with other address lengths than 6 and 4.
    #[error("malformed ARP packet")]
    BadArp,
    /// Neighbour discovery that RFC 4861 says to discard: hop limit not
    /// 255, code not 0, a multicast target, a zero-length option.
    #[error("invalid neighbour discovery message")]
    BadNd,
    /// A DHCPv6 option that runs past the end of the message.
    #[error("malformed DHCPv6 message")]
    BadDhcpv6,
    /// The device address the frame names is a group or all-zero address:
    /// no client can have it.
    #[error("device address is not a unicast MAC")]
    BadAddress,
    /// The device address written inside the packet (DHCP `chaddr`, the
    /// ARP sender) is not the frame's Ethernet source: a station speaking
    /// for another device. Believing it would let one guest invent
    /// devices, or pass itself off as a remembered member's phone.
    #[error("device address in the packet is not the frame's sender")]
    Spoofed,
}

impl WireError {
    /// A short, stable name for metrics (`wire_errors_total{kind=...}`).
    pub fn kind(&self) -> &'static str {
        match self {
            WireError::Truncated { .. } => "truncated",
            WireError::BadIpHeader { .. } => "bad_ip_header",
            WireError::BadChecksum => "bad_checksum",
            WireError::BadUdpLength => "bad_udp_length",
            WireError::BadDhcpHeader => "bad_dhcp_header",
            WireError::BadDhcpOption => "bad_dhcp_option",
            WireError::BadArp => "bad_arp",
            WireError::BadNd => "bad_nd",
            WireError::BadDhcpv6 => "bad_dhcpv6",
            WireError::BadAddress => "bad_address",
            WireError::Spoofed => "spoofed",
        }
    }

    pub(crate) fn truncated(layer: &'static str) -> WireError {
        WireError::Truncated { layer }
    }
}

/// A sighting of `mac`, if `mac` can be a client at all.
fn sighting(mac: MacAddr, kind: SightingKind) -> Result<Option<Sighting>, WireError> {
    if !mac.is_unicast_client() {
        return Err(WireError::BadAddress);
    }
    Ok(Some(Sighting { mac, kind }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_distinct_metric_labels() {
        let all = [
            WireError::truncated("x"),
            WireError::BadIpHeader { layer: "x" },
            WireError::BadChecksum,
            WireError::BadUdpLength,
            WireError::BadDhcpHeader,
            WireError::BadDhcpOption,
            WireError::BadArp,
            WireError::BadNd,
            WireError::BadDhcpv6,
            WireError::BadAddress,
        ];
        let mut kinds: Vec<_> = all.iter().map(WireError::kind).collect();
        assert!(kinds.iter().all(|k| {
            k.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        }));
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds.len(), all.len());
    }
}
