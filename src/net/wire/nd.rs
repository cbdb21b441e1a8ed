//! IPv6 neighbour discovery (RFC 4861): sightings of devices in router
//! solicitations, neighbour solicitations and advertisements, and the
//! unicast neighbour solicitation the box sends to check that a silent
//! device is still there.
//!
//! Messages that RFC 4861 (§6.1.1, §7.1.1, §7.1.2) tells a node to discard
//! are errors here: a hop limit other than 255 (the message crossed a
//! router), a code other than 0, a multicast target, an option of length
//! zero or one that runs past the end. The ICMPv6 checksum is not
//! verified, for the same reason UDP checksums are not (offload).

use std::net::Ipv6Addr;

use pnet_packet::MutablePacket;
use pnet_packet::ethernet::{EtherTypes, MutableEthernetPacket};
use pnet_packet::icmpv6::ndp::{
    MutableNeighborSolicitPacket, NeighborAdvertPacket, NeighborSolicitPacket,
};
use pnet_packet::icmpv6::{self, Icmpv6Code, Icmpv6Packet, Icmpv6Types};
use pnet_packet::ip::IpNextHeaderProtocols;
use pnet_packet::ipv6::{Ipv6Packet, MutableIpv6Packet};

use crate::mac::MacAddr;
use crate::presence::{Sighting, SightingKind};

use super::{WireError, sighting as device};

const ETHERNET_HEADER_LEN: usize = 14;
const IPV6_HEADER_LEN: usize = 40;
/// Type, code, checksum, reserved.
const RS_LEN: usize = 8;
/// Type, code, checksum, flags/reserved, target address.
const NS_NA_LEN: usize = 24;
/// The source link-layer address option for Ethernet: 8 bytes.
const SLLA_LEN: usize = 8;
const OPTION_SOURCE_LINK_LAYER_ADDRESS: u8 = 1;
/// ND messages are only valid when sent on the link itself.
const ND_HOP_LIMIT: u8 = 255;

/// The device behind an RS, NS or NA (its Ethernet source), and the
/// address it speaks for: the IPv6 source of an RS or NS (none when
/// unspecified, as in duplicate address detection), the target of an NA.
/// Other ICMPv6 messages are of no interest.
pub(super) fn sighting(
    src: MacAddr,
    ip: &Ipv6Packet,
    icmp: &[u8],
) -> Result<Option<Sighting>, WireError> {
    let msg = Icmpv6Packet::new(icmp).ok_or(WireError::truncated("ICMPv6"))?;
    let msg_type = msg.get_icmpv6_type();
    let header_len = match msg_type {
        Icmpv6Types::RouterSolicit => RS_LEN,
        Icmpv6Types::NeighborSolicit | Icmpv6Types::NeighborAdvert => NS_NA_LEN,
        _ => return Ok(None),
    };
    let options = icmp
        .get(header_len..)
        .ok_or(WireError::truncated("neighbour discovery message"))?;
    if ip.get_hop_limit() != ND_HOP_LIMIT || msg.get_icmpv6_code() != Icmpv6Code(0) {
        return Err(WireError::BadNd);
    }
    check_options(options)?;
    let source = ip.get_source();
    if source.is_multicast() {
        return Err(WireError::BadNd);
    }
    let from_source = (!source.is_unspecified()).then_some(source);
    let addr = match msg_type {
        Icmpv6Types::NeighborSolicit => {
            let ns = NeighborSolicitPacket::new(icmp).ok_or(WireError::BadNd)?;
            check_target(ns.get_target_addr())?;
            from_source
        }
        Icmpv6Types::NeighborAdvert => {
            let na = NeighborAdvertPacket::new(icmp).ok_or(WireError::BadNd)?;
            Some(check_target(na.get_target_addr())?)
        }
        _ => from_source,
    };
    device(src, SightingKind::Nd { ip: addr })
}

fn check_target(target: Ipv6Addr) -> Result<Ipv6Addr, WireError> {
    if target.is_multicast() {
        return Err(WireError::BadNd);
    }
    Ok(target)
}

/// Options are type, length in units of 8 bytes, value; a zero length or
/// one past the end makes the message invalid (RFC 4861 §4.6). pnet's own
/// option iterator is not used: its length arithmetic overflows on
/// lengths of 32 units and more.
fn check_options(mut options: &[u8]) -> Result<(), WireError> {
    while !options.is_empty() {
        let units = *options.get(1).ok_or(WireError::BadNd)?;
        let len = usize::from(units) * 8;
        if len == 0 {
            return Err(WireError::BadNd);
        }
        options = options.get(len..).ok_or(WireError::BadNd)?;
    }
    Ok(())
}

/// A unicast neighbour solicitation from the box (`src_mac`, `src_ip`,
/// normally its link-local address) to a device (`target_mac`,
/// `target_ip`): the reachability probe of RFC 4861 §7.3.3, as Linux sends
/// it in neighbour state PROBE. Hop limit 255, the ICMPv6 checksum
/// computed, and a source link-layer address option, left out only when
/// `src_ip` is unspecified (which RFC 4861 §4.3 requires).
pub fn nd_solicit(
    src_mac: MacAddr,
    src_ip: Ipv6Addr,
    target_mac: MacAddr,
    target_ip: Ipv6Addr,
) -> Vec<u8> {
    let slla = !src_ip.is_unspecified();
    let icmp_len = NS_NA_LEN + if slla { SLLA_LEN } else { 0 };
    let mut frame = vec![0u8; ETHERNET_HEADER_LEN + IPV6_HEADER_LEN + icmp_len];

    let mut eth = MutableEthernetPacket::new(&mut frame).expect("frame holds an Ethernet header");
    eth.set_destination(target_mac.0.into());
    eth.set_source(src_mac.0.into());
    eth.set_ethertype(EtherTypes::Ipv6);

    let mut ip = MutableIpv6Packet::new(eth.payload_mut()).expect("frame holds an IPv6 header");
    ip.set_version(6);
    ip.set_payload_length(icmp_len as u16);
    ip.set_next_header(IpNextHeaderProtocols::Icmpv6);
    ip.set_hop_limit(ND_HOP_LIMIT);
    ip.set_source(src_ip);
    ip.set_destination(target_ip);

    let icmp = ip.payload_mut();
    let mut ns = MutableNeighborSolicitPacket::new(icmp).expect("frame holds an NS");
    ns.set_icmpv6_type(Icmpv6Types::NeighborSolicit);
    ns.set_icmpv6_code(Icmpv6Code(0));
    ns.set_target_addr(target_ip);
    if slla {
        let opt = &mut icmp[NS_NA_LEN..];
        opt[0] = OPTION_SOURCE_LINK_LAYER_ADDRESS;
        opt[1] = 1;
        opt[2..8].copy_from_slice(&src_mac.0);
    }
    let checksum = icmpv6::checksum(
        &Icmpv6Packet::new(icmp).expect("frame holds ICMPv6"),
        &src_ip,
        &target_ip,
    );
    icmp[2..4].copy_from_slice(&checksum.to_be_bytes());
    frame
}

#[cfg(test)]
mod tests {
    use super::super::parse_frame;
    use super::super::samples::{KERNEL_NS_PROBE, ND_NA, ND_NS, ND_NS_DAD, ND_RA, ND_RS};
    use super::*;

    const BOX_MAC: MacAddr = MacAddr([0x02, 0x00, 0x5e, 0x10, 0x00, 0x01]);
    /// fe80::5eff:fe10:1, the gateway's EUI-64 link-local address.
    const BOX_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0x5eff, 0xfe10, 0x0001);
    const PHONE_MAC: MacAddr = MacAddr([0x3c, 0x22, 0xfb, 0x12, 0x34, 0x56]);
    const PHONE_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x3e22, 0xfbff, 0xfe12, 0x3456);

    /// RFC 1071 over the pseudo-header and the message: 0xffff when valid.
    fn icmpv6_sum_ok(frame: &[u8]) -> bool {
        let payload = &frame[54..];
        let mut data = frame[22..54].to_vec();
        data.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        data.extend_from_slice(&[0, 0, 0, 58]);
        data.extend_from_slice(payload);
        crate::net::wire::frame::ones_complement_sum(&data) == 0xffff
    }

    #[test]
    fn solicit_is_byte_for_byte_what_linux_sends() {
        let frame = nd_solicit(BOX_MAC, BOX_LL, PHONE_MAC, PHONE_LL);
        assert_eq!(frame, KERNEL_NS_PROBE);
        assert!(icmpv6_sum_ok(&frame));
    }

    #[test]
    fn solicit_round_trips_through_the_parser() {
        let global: Ipv6Addr = "2001:db8:1::1".parse().unwrap();
        let frame = nd_solicit(BOX_MAC, global, PHONE_MAC, PHONE_LL);
        assert!(icmpv6_sum_ok(&frame));
        assert_eq!(
            parse_frame(&frame),
            Ok(Some(Sighting {
                mac: BOX_MAC,
                kind: SightingKind::Nd { ip: Some(global) }
            }))
        );
        // Without a source address there is no link-layer address option.
        let frame = nd_solicit(BOX_MAC, Ipv6Addr::UNSPECIFIED, PHONE_MAC, PHONE_LL);
        assert_eq!(frame.len(), 14 + 40 + 24);
        assert!(icmpv6_sum_ok(&frame));
        assert_eq!(
            parse_frame(&frame).unwrap().unwrap().kind,
            SightingKind::Nd { ip: None }
        );
    }

    #[test]
    fn real_messages_have_valid_checksums() {
        // The kernel computes ICMPv6 checksums itself; a sanity check of
        // the test's own arithmetic, which the builder test relies on.
        for frame in [ND_RS, ND_NS, ND_NS_DAD, ND_NA, ND_RA, KERNEL_NS_PROBE] {
            assert!(icmpv6_sum_ok(frame));
        }
    }

    fn nd(frame: &[u8]) -> Result<Option<Sighting>, WireError> {
        let ip = Ipv6Packet::new(&frame[14..]).unwrap();
        sighting(MacAddr(frame[6..12].try_into().unwrap()), &ip, &frame[54..])
    }

    #[test]
    fn rfc4861_validity_checks() {
        let set = |frame: &[u8], at: usize, bytes: &[u8]| {
            let mut f = frame.to_vec();
            f[at..at + bytes.len()].copy_from_slice(bytes);
            nd(&f)
        };
        assert!(nd(ND_NS).unwrap().is_some());
        assert_eq!(set(ND_NS, 21, &[64]), Err(WireError::BadNd)); // hop limit
        assert_eq!(set(ND_NS, 55, &[1]), Err(WireError::BadNd)); // code
        assert_eq!(set(ND_NS, 62, &[0xff, 0x02]), Err(WireError::BadNd)); // target
        assert_eq!(set(ND_NA, 62, &[0xff, 0x02]), Err(WireError::BadNd));
        assert_eq!(set(ND_RS, 22, &[0xff, 0x02]), Err(WireError::BadNd)); // source
        assert_eq!(set(ND_NS, 79, &[0]), Err(WireError::BadNd)); // option length 0
        assert_eq!(set(ND_NS, 79, &[2]), Err(WireError::BadNd)); // past the end
        assert_eq!(set(ND_RS, 63, &[32]), Err(WireError::BadNd));
        assert_eq!(set(ND_RS, 63, &[255]), Err(WireError::BadNd));
        // One byte of an option.
        assert_eq!(nd(&ND_RS[..63]), Err(WireError::BadNd));
        // Cut into the fixed part.
        assert_eq!(
            nd(&ND_NA[..54 + 23]),
            Err(WireError::truncated("neighbour discovery message"))
        );
        assert_eq!(nd(&ND_NA[..54 + 3]), Err(WireError::truncated("ICMPv6")));
        // No options at all is fine.
        assert!(nd(&ND_NS[..54 + 24]).unwrap().is_some());
    }

    #[test]
    fn other_icmpv6_is_of_no_interest() {
        // Type 137 (redirect) and 128 (echo request), even with a bad hop
        // limit: not ours to judge.
        for t in [128, 134, 137, 1] {
            let mut f = ND_NS.to_vec();
            f[54] = t;
            f[21] = 1;
            assert_eq!(nd(&f), Ok(None), "type {t}");
        }
    }
}
