//! [`parse_frame`]: from an Ethernet II frame (at most one 802.1Q tag) down
//! through IPv4/IPv6 and UDP to the protocol parsers, with every length
//! field checked against the bytes that are really there before a
//! `pnet_packet` view is asked for a payload (pnet's views clamp a payload
//! silently to the buffer, which would hide truncation).

use pnet_packet::Packet;
use pnet_packet::ethernet::{EtherType, EtherTypes, EthernetPacket};
use pnet_packet::ip::IpNextHeaderProtocols;
use pnet_packet::ipv4::Ipv4Packet;
use pnet_packet::ipv6::Ipv6Packet;
use pnet_packet::udp::UdpPacket;
use pnet_packet::vlan::VlanPacket;

use crate::mac::MacAddr;
use crate::presence::{DhcpMessageType, Sighting, SightingKind};

use super::dhcp::{self, DhcpPacket};
use super::{WireError, arp, dhcpv6, nd, sighting};

const DHCP_SERVER_PORT: u16 = 67;
const DHCP_CLIENT_PORT: u16 = 68;
const DHCPV6_CLIENT_PORT: u16 = 546;
const DHCPV6_SERVER_PORT: u16 = 547;

/// IPv4 flags and fragment offset: more-fragments bit and offset bits.
const IPV4_MF_OR_OFFSET: u16 = 0x3fff;

/// Parses one captured Ethernet frame (no FCS; padding allowed).
///
/// `Ok(Some(_))` for a frame that tells us about a device (see the table
/// in the module doc), `Ok(None)` for a well-formed frame of no interest
/// (other protocols, server messages other than DHCPACK, IPv4 fragments,
/// IPv6 with extension headers, a second VLAN tag), `Err(_)` for a
/// malformed one. Never panics, whatever the bytes.
pub fn parse_frame(frame: &[u8]) -> Result<Option<Sighting>, WireError> {
    let eth = EthernetPacket::new(frame).ok_or(WireError::truncated("Ethernet header"))?;
    let src = MacAddr(eth.get_source().into());
    if eth.get_ethertype() == EtherTypes::Vlan {
        let tag = VlanPacket::new(eth.payload()).ok_or(WireError::truncated("802.1Q tag"))?;
        // A second tag (QinQ) lands in `network`'s "no interest" arm.
        return network(tag.get_ethertype(), src, tag.payload());
    }
    network(eth.get_ethertype(), src, eth.payload())
}

fn network(
    ethertype: EtherType,
    src: MacAddr,
    payload: &[u8],
) -> Result<Option<Sighting>, WireError> {
    match ethertype {
        EtherTypes::Ipv4 => ipv4(src, payload),
        EtherTypes::Ipv6 => ipv6(src, payload),
        EtherTypes::Arp => arp::sighting(src, payload),
        _ => Ok(None),
    }
}

/// RFC 1071: the one's complement sum of 16-bit big-endian words (an odd
/// last byte is padded with zero), folded to 16 bits.
pub(crate) fn ones_complement_sum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The one's complement sum of a valid header is 0xffff.
fn ipv4_header_checksum_ok(header: &[u8]) -> bool {
    ones_complement_sum(header) == 0xffff
}

fn ipv4(src: MacAddr, data: &[u8]) -> Result<Option<Sighting>, WireError> {
    const LAYER: &str = "IPv4";
    let ip = Ipv4Packet::new(data).ok_or(WireError::truncated(LAYER))?;
    let header_len = usize::from(ip.get_header_length()) * 4;
    let total_len = usize::from(ip.get_total_length());
    if ip.get_version() != 4 || header_len < 20 || total_len < header_len {
        return Err(WireError::BadIpHeader { layer: LAYER });
    }
    // Ethernet padding may follow the packet; missing bytes may not.
    let packet = data.get(..total_len).ok_or(WireError::truncated(LAYER))?;
    let header = &packet[..header_len];
    if !ipv4_header_checksum_ok(header) {
        return Err(WireError::BadChecksum);
    }
    let frag = u16::from(ip.get_flags()) << 13 | ip.get_fragment_offset();
    if frag & IPV4_MF_OR_OFFSET != 0 || ip.get_next_level_protocol() != IpNextHeaderProtocols::Udp {
        return Ok(None);
    }
    let (sport, dport, payload) = udp(&packet[header_len..])?;
    match (sport, dport) {
        (DHCP_CLIENT_PORT, DHCP_SERVER_PORT) => dhcp_from_client(src, payload),
        (DHCP_SERVER_PORT, DHCP_CLIENT_PORT) => dhcp_from_server(payload),
        _ => Ok(None),
    }
}

/// Source port, destination port and the payload the UDP length covers.
/// The checksum is not verified: on captured outgoing frames (and on veth)
/// it is left for the NIC to fill in.
fn udp(segment: &[u8]) -> Result<(u16, u16, &[u8]), WireError> {
    let udp = UdpPacket::new(segment).ok_or(WireError::truncated("UDP header"))?;
    let len = usize::from(udp.get_length());
    let payload = segment.get(8..len).ok_or(WireError::BadUdpLength)?;
    Ok((udp.get_source(), udp.get_destination(), payload))
}

fn dhcp_from_client(src: MacAddr, payload: &[u8]) -> Result<Option<Sighting>, WireError> {
    let msg = DhcpPacket::new_checked(payload)?;
    if msg.op() != dhcp::BOOTREQUEST {
        return Err(WireError::BadDhcpHeader);
    }
    // A client speaks for itself: `chaddr` is its own Ethernet address.
    // (Relayed messages come from port 67 and are not parsed here.)
    let mac = msg.client_mac().unwrap_or(src);
    if mac != src {
        return Err(WireError::Spoofed);
    }
    let info = dhcp::client_info(&msg)?;
    let kind = if info.message_type == DhcpMessageType::Release {
        let ciaddr = msg.ciaddr();
        SightingKind::DhcpRelease {
            ip: (!ciaddr.is_unspecified()).then_some(ciaddr),
        }
    } else {
        SightingKind::DhcpClient(info)
    };
    sighting(mac, kind)
}

fn dhcp_from_server(payload: &[u8]) -> Result<Option<Sighting>, WireError> {
    let msg = DhcpPacket::new_checked(payload)?;
    if msg.op() != dhcp::BOOTREPLY {
        return Err(WireError::BadDhcpHeader);
    }
    let yiaddr = msg.yiaddr();
    // A DHCPACK to an INFORM carries no address: nothing to learn.
    if msg.message_type()? != Some(dhcp::message_type::ACK) || yiaddr.is_unspecified() {
        return Ok(None);
    }
    match msg.client_mac() {
        Some(mac) => sighting(mac, SightingKind::DhcpAck { ip: yiaddr }),
        None => Ok(None),
    }
}

fn ipv6(src: MacAddr, data: &[u8]) -> Result<Option<Sighting>, WireError> {
    const LAYER: &str = "IPv6";
    let ip = Ipv6Packet::new(data).ok_or(WireError::truncated(LAYER))?;
    if ip.get_version() != 6 {
        return Err(WireError::BadIpHeader { layer: LAYER });
    }
    let end = 40 + usize::from(ip.get_payload_length());
    let payload = data.get(40..end).ok_or(WireError::truncated(LAYER))?;
    match ip.get_next_header() {
        IpNextHeaderProtocols::Icmpv6 => nd::sighting(src, &ip, payload),
        IpNextHeaderProtocols::Udp => {
            let (sport, dport, payload) = udp(payload)?;
            if (sport, dport) == (DHCPV6_CLIENT_PORT, DHCPV6_SERVER_PORT) {
                dhcpv6::sighting(src, payload)
            } else {
                Ok(None)
            }
        }
        // Extension headers (hop-by-hop for MLD, fragments) are not
        // followed: neither ND nor DHCPv6 from a device uses them.
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::super::samples::{self, *};
    use super::*;
    use crate::presence::DhcpInfo;

    const DEVICE: MacAddr = MacAddr([0x3c, 0x22, 0xfb, 0x12, 0x34, 0x56]);
    const LINK_LOCAL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x3e22, 0xfbff, 0xfe12, 0x3456);
    const LEASE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 101);

    fn kind(frame: &[u8]) -> SightingKind {
        let s = parse_frame(frame).unwrap().expect("a sighting");
        assert_eq!(s.mac, DEVICE);
        s.kind
    }

    #[test]
    fn dhcp_client_messages() {
        let SightingKind::DhcpClient(info) = kind(DHCP_DISCOVER_DHCLIENT) else {
            panic!("not a client message")
        };
        assert_eq!(info.message_type, DhcpMessageType::Discover);
        assert_eq!(info.hostname.as_deref(), Some("Annas-iPhone"));
        assert_eq!(info.vendor_class.as_deref(), Some("MSFT 5.0"));
        assert_eq!(
            info.client_id.as_deref(),
            Some(&[1, 0x3c, 0x22, 0xfb, 0x12, 0x34, 0x56][..])
        );
        assert_eq!(info.param_request_list, [1, 28, 2, 3, 15, 6, 12, 26, 42]);

        assert_eq!(
            kind(DHCP_REQUEST_DHCLIENT),
            SightingKind::DhcpClient(DhcpInfo {
                message_type: DhcpMessageType::Request,
                requested_ip: Some(LEASE),
                ..info
            })
        );
        let SightingKind::DhcpClient(info) = kind(DHCP_DISCOVER_UDHCPC) else {
            panic!("not a client message")
        };
        assert_eq!(info.hostname.as_deref(), Some("Galaxy-S23"));
    }

    #[test]
    fn dhcp_ack_names_chaddr_and_yiaddr() {
        // Sent by the server: the Ethernet source is the gateway's.
        assert_eq!(kind(DHCP_ACK), SightingKind::DhcpAck { ip: LEASE });
        assert_eq!(parse_frame(DHCP_OFFER), Ok(None));
    }

    #[test]
    fn dhcp_release_carries_ciaddr() {
        assert_eq!(
            kind(DHCP_RELEASE),
            SightingKind::DhcpRelease { ip: Some(LEASE) }
        );
    }

    #[test]
    fn a_dhcp_client_speaks_only_for_itself() {
        assert_eq!(
            parse_frame(DHCP_DISCOVER_DHCLIENT).unwrap().unwrap().mac,
            DEVICE
        );
        // Another station sends a DISCOVER naming the device in chaddr:
        // refused, so one guest cannot invent devices or pass itself off
        // as a remembered member's phone.
        let mut forged = DHCP_DISCOVER_DHCLIENT.to_vec();
        forged[6..12].copy_from_slice(&[0x02, 0, 0x5e, 0, 0x53, 0x99]);
        assert_eq!(parse_frame(&forged), Err(WireError::Spoofed));
        // htype 6 (IEEE 802): chaddr is not a MAC; the Ethernet source is
        // the device.
        forged[43] = 6;
        assert_eq!(
            parse_frame(&forged).unwrap().unwrap().mac,
            MacAddr([0x02, 0, 0x5e, 0, 0x53, 0x99])
        );
        let mut zero = DHCP_DISCOVER_DHCLIENT.to_vec();
        zero[70..76].fill(0);
        assert_eq!(parse_frame(&zero), Err(WireError::Spoofed));
    }

    #[test]
    fn dhcp_in_the_wrong_direction_is_malformed() {
        let mut reply = DHCP_DISCOVER_DHCLIENT.to_vec();
        reply[42] = dhcp::BOOTREPLY;
        assert_eq!(parse_frame(&reply), Err(WireError::BadDhcpHeader));
        let mut request = DHCP_ACK.to_vec();
        request[42] = dhcp::BOOTREQUEST;
        assert_eq!(parse_frame(&request), Err(WireError::BadDhcpHeader));
    }

    #[test]
    fn arp_and_nd() {
        assert_eq!(kind(ARP_REQUEST), SightingKind::Arp { ip: Some(LEASE) });
        assert_eq!(kind(ARP_REPLY), SightingKind::Arp { ip: Some(LEASE) });
        assert_eq!(
            kind(ND_RS),
            SightingKind::Nd {
                ip: Some(LINK_LOCAL)
            }
        );
        assert_eq!(kind(ND_NS_DAD), SightingKind::Nd { ip: None });
        assert_eq!(
            kind(ND_NS),
            SightingKind::Nd {
                ip: Some(LINK_LOCAL)
            }
        );
        assert_eq!(
            kind(ND_NA),
            SightingKind::Nd {
                ip: Some(LINK_LOCAL)
            }
        );
        assert_eq!(parse_frame(ND_RA), Ok(None));
    }

    #[test]
    fn dhcpv6_client_messages_only() {
        assert_eq!(kind(DHCPV6_SOLICIT), SightingKind::Dhcpv6);
        assert_eq!(parse_frame(DHCPV6_ADVERTISE), Ok(None));
    }

    #[test]
    fn other_traffic_is_of_no_interest() {
        for (name, frame) in samples::OTHER_TRAFFIC
            .iter()
            .chain(samples::FILTERED_BUT_IGNORED)
        {
            assert_eq!(parse_frame(frame), Ok(None), "{name}");
        }
    }

    #[test]
    fn one_vlan_tag_is_looked_through_two_are_not() {
        for (name, frame) in samples::SIGHTINGS {
            let tagged = vlan_tagged(frame);
            assert_eq!(parse_frame(&tagged), parse_frame(frame), "{name}");
            assert_eq!(parse_frame(&vlan_tagged(&tagged)), Ok(None), "{name}");
        }
        assert_eq!(
            parse_frame(&DHCP_DISCOVER_DHCLIENT[..16]),
            Err(WireError::truncated("IPv4"))
        );
        assert_eq!(
            parse_frame(&vlan_tagged(DHCP_DISCOVER_DHCLIENT)[..17]),
            Err(WireError::truncated("802.1Q tag"))
        );
    }

    #[test]
    fn ipv4_options_are_skipped() {
        // Router alert (RFC 2113), then a no-op and end of options list.
        let framed = with_ipv4_options(DHCP_REQUEST_DHCLIENT, &[0x94, 0x04, 0, 0, 1, 1, 1, 0]);
        assert_eq!(framed.len(), DHCP_REQUEST_DHCLIENT.len() + 8);
        assert_eq!(parse_frame(&framed), parse_frame(DHCP_REQUEST_DHCLIENT));
        assert!(parse_frame(&framed).unwrap().is_some());
    }

    #[test]
    fn ipv4_fragments_are_dropped() {
        assert_eq!(
            parse_frame(&first_fragment(DHCP_DISCOVER_DHCLIENT)),
            Ok(None)
        );
        assert_eq!(parse_frame(IPV4_FRAGMENT), Ok(None));
    }

    #[test]
    fn ipv4_header_checks() {
        let mut bad_sum = DHCP_DISCOVER_DHCLIENT.to_vec();
        bad_sum[25] ^= 1;
        assert_eq!(parse_frame(&bad_sum), Err(WireError::BadChecksum));

        let ip_err = Err(WireError::BadIpHeader { layer: "IPv4" });
        let cases: [&[(usize, u8)]; 4] = [
            &[(14, 0x65)],        // version 6
            &[(14, 0x44)],        // IHL 4
            &[(16, 0), (17, 0)],  // total length 0
            &[(16, 0), (17, 19)], // total length below the header
        ];
        for case in cases {
            let mut f = DHCP_DISCOVER_DHCLIENT.to_vec();
            for &(at, value) in case {
                f[at] = value;
            }
            fix_ipv4_checksum(&mut f);
            assert_eq!(parse_frame(&f), ip_err, "{case:?}");
        }
        // Total length past the end of the frame.
        let mut long = DHCP_DISCOVER_DHCLIENT.to_vec();
        long[16..18].copy_from_slice(&400u16.to_be_bytes());
        fix_ipv4_checksum(&mut long);
        assert_eq!(parse_frame(&long), Err(WireError::truncated("IPv4")));
        // IHL past the end of the frame.
        let mut ihl = DHCP_DISCOVER_DHCLIENT[..14 + 24].to_vec();
        ihl[14] = 0x4f;
        ihl[16..18].copy_from_slice(&60u16.to_be_bytes());
        assert_eq!(parse_frame(&ihl), Err(WireError::truncated("IPv4")));
    }

    #[test]
    fn udp_length_is_checked() {
        for len in [0u16, 7, 309, 0xffff] {
            let mut f = DHCP_DISCOVER_DHCLIENT.to_vec();
            f[38..40].copy_from_slice(&len.to_be_bytes());
            assert_eq!(parse_frame(&f), Err(WireError::BadUdpLength), "{len}");
        }
        // A UDP length shorter than the IP payload cuts the DHCP message.
        let mut f = DHCP_DISCOVER_DHCLIENT.to_vec();
        f[38..40].copy_from_slice(&(8u16 + 200).to_be_bytes());
        assert_eq!(parse_frame(&f), Err(WireError::truncated("DHCP header")));
    }

    #[test]
    fn ipv6_payload_length_is_checked() {
        let mut f = ND_NS.to_vec();
        f[18..20].copy_from_slice(&33u16.to_be_bytes());
        assert_eq!(parse_frame(&f), Err(WireError::truncated("IPv6")));
        f[14] = 0x45;
        assert_eq!(
            parse_frame(&f),
            Err(WireError::BadIpHeader { layer: "IPv6" })
        );
        // Trailing padding after the payload is fine.
        let mut padded = ND_RS.to_vec();
        padded.extend_from_slice(&[0; 8]);
        assert_eq!(parse_frame(&padded), parse_frame(ND_RS));
    }

    #[test]
    fn multicast_ethernet_source_is_not_a_device() {
        let mut f = ND_RS.to_vec();
        f[6] |= 1;
        assert_eq!(parse_frame(&f), Err(WireError::BadAddress));
    }

    #[test]
    fn runts_and_odd_ethertypes() {
        assert_eq!(
            parse_frame(&[]),
            Err(WireError::truncated("Ethernet header"))
        );
        assert_eq!(
            parse_frame(&ARP_REQUEST[..13]),
            Err(WireError::truncated("Ethernet header"))
        );
        let mut lldp = ARP_REQUEST.to_vec();
        lldp[12..14].copy_from_slice(&[0x88, 0xcc]);
        assert_eq!(parse_frame(&lldp), Ok(None));
        // An Ethernet header alone, of each type we look into.
        for ethertype in [[0x08, 0x00], [0x08, 0x06], [0x86, 0xdd], [0x81, 0x00]] {
            let mut f = ARP_REQUEST[..12].to_vec();
            f.extend_from_slice(&ethertype);
            assert_eq!(parse_frame(&f).unwrap_err().kind(), "truncated");
        }
    }

    /// Every prefix of every sample frame, tagged or not, parses to a
    /// result without panicking; prefixes that cut into the part a
    /// sighting depends on are errors, never sightings.
    #[test]
    fn every_prefix_of_every_sample_is_safe() {
        let all = samples::SIGHTINGS
            .iter()
            .chain(samples::FILTERED_BUT_IGNORED)
            .chain(samples::OTHER_TRAFFIC);
        for (name, frame) in all {
            let full = parse_frame(frame);
            for framed in [frame.to_vec(), vlan_tagged(frame)] {
                for end in 0..framed.len() {
                    let r = parse_frame(&framed[..end]);
                    if let Ok(Some(s)) = &r {
                        // Only cutting trailing padding may keep a sighting.
                        assert_eq!(Ok(Some(s.clone())), full, "{name} cut at {end}");
                    }
                }
            }
        }
    }

    /// Flipping any single byte of a sample never panics.
    #[test]
    fn every_byte_flip_is_safe() {
        for (_, frame) in samples::SIGHTINGS {
            let mut f = frame.to_vec();
            for i in 0..f.len() {
                for v in [0x00, 0x01, 0x80, 0xff] {
                    let old = f[i];
                    f[i] = v;
                    let _ = parse_frame(&f);
                    f[i] = old;
                }
            }
        }
    }
}
