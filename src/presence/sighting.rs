//! `Sighting`: one thing the LAN told us about a device. The packet
//! parsers in `net::wire` produce them; the presence machines consume them.
//! Every string in here came from the LAN and is already bounded and
//! stripped of control characters by the parser, but is still untrusted
//! (escape it before showing it in HTML).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::mac::MacAddr;

/// One observation of a device, without a time: the caller adds `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sighting {
    /// The device (the client's hardware address, e.g. DHCP `chaddr` or
    /// the Ethernet source).
    pub mac: MacAddr,
    pub kind: SightingKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SightingKind {
    /// A DHCPv4 message from the client (DISCOVER, REQUEST, INFORM).
    DhcpClient(DhcpInfo),
    /// The client gave its lease back: it is leaving.
    DhcpRelease { ip: Option<Ipv4Addr> },
    /// The server acknowledged a lease for the client (DHCPACK).
    DhcpAck { ip: Ipv4Addr },
    /// ARP from the device (request, reply or gratuitous); `ip` is its
    /// sender protocol address when not 0.0.0.0.
    Arp { ip: Option<Ipv4Addr> },
    /// IPv6 neighbour discovery from the device (RS, NS, NA); `ip` is the
    /// address it speaks for when known (NA target, NS/RS source).
    Nd { ip: Option<Ipv6Addr> },
    /// A DHCPv6 message from the client.
    Dhcpv6,
    /// The access point says the device joined (hostapd's
    /// `AP-STA-CONNECTED`): present from its association, before it asks
    /// for an address.
    Associated,
    /// The access point says the device left (`AP-STA-DISCONNECTED`): it
    /// is gone now, not after a probe goes unanswered.
    Disassociated,
}

/// What a DHCPv4 client message says about the device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DhcpInfo {
    pub message_type: DhcpMessageType,
    /// Option 50, else `ciaddr` when not 0.0.0.0.
    pub requested_ip: Option<Ipv4Addr>,
    /// Option 12.
    pub hostname: Option<String>,
    /// Option 61, raw.
    pub client_id: Option<Vec<u8>>,
    /// Option 60.
    pub vendor_class: Option<String>,
    /// Option 55, in the client's order (the heart of the fingerprint).
    pub param_request_list: Vec<u8>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DhcpMessageType {
    Discover,
    Request,
    Decline,
    Release,
    Inform,
    /// Any other or missing type (servers' messages are not `DhcpInfo`).
    #[default]
    Other,
}

impl SightingKind {
    /// An address the device is using, if this sighting names one.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            SightingKind::DhcpClient(d) => d.requested_ip.map(IpAddr::V4),
            SightingKind::DhcpRelease { ip } | SightingKind::Arp { ip } => ip.map(IpAddr::V4),
            SightingKind::DhcpAck { ip } => Some(IpAddr::V4(*ip)),
            SightingKind::Nd { ip } => ip.map(IpAddr::V6),
            SightingKind::Dhcpv6 | SightingKind::Associated | SightingKind::Disassociated => None,
        }
    }
}
