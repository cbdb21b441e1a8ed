//! ARP (RFC 826) for Ethernet and IPv4: the sighting of the sender of a
//! request or reply, and the unicast request the box sends to check that a
//! silent device is still there.

use std::net::Ipv4Addr;

use pnet_packet::MutablePacket;
use pnet_packet::arp::{ArpHardwareTypes, ArpOperations, ArpPacket, MutableArpPacket};
use pnet_packet::ethernet::{EtherTypes, MutableEthernetPacket};

use crate::mac::MacAddr;
use crate::presence::{Sighting, SightingKind};

use super::{WireError, sighting as device};

const ETHERNET_HEADER_LEN: usize = 14;
/// An ARP packet for Ethernet/IPv4: 8 bytes of header, two 6+4 addresses.
const ARP_LEN: usize = 28;

/// The sender of an ARP request or reply: its hardware address is the
/// device, its protocol address the device's IPv4 address (unless 0.0.0.0,
/// as in an RFC 5227 probe). ARP for other hardware or protocol types, and
/// other operations (RARP, InARP), are of no interest. A sender hardware
/// address other than the frame's Ethernet source (`src`) is refused: a
/// station answering for another device.
pub(super) fn sighting(src: MacAddr, data: &[u8]) -> Result<Option<Sighting>, WireError> {
    let arp = ArpPacket::new(data).ok_or(WireError::truncated("ARP"))?;
    if arp.get_hardware_type() != ArpHardwareTypes::Ethernet
        || arp.get_protocol_type() != EtherTypes::Ipv4
    {
        return Ok(None);
    }
    // pnet's view assumes 6- and 4-byte addresses; make sure they are.
    if arp.get_hw_addr_len() != 6 || arp.get_proto_addr_len() != 4 {
        return Err(WireError::BadArp);
    }
    let op = arp.get_operation();
    if op != ArpOperations::Request && op != ArpOperations::Reply {
        return Ok(None);
    }
    let sender = MacAddr(arp.get_sender_hw_addr().into());
    if sender != src {
        return Err(WireError::Spoofed);
    }
    let ip = arp.get_sender_proto_addr();
    device(
        sender,
        SightingKind::Arp {
            ip: (!ip.is_unspecified()).then_some(ip),
        },
    )
}

/// A unicast ARP request from the box (`src_mac`, `src_ip`) to a device
/// (`target_mac`, `target_ip`): the "are you still there" poll of RFC 1122
/// §2.3.2.1. Sent to the device's MAC rather than broadcast, so that only
/// the device is disturbed; the target hardware address is left zero, as
/// in a broadcast request. 42 bytes: the NIC pads it to the minimum
/// Ethernet frame.
pub fn arp_probe(
    src_mac: MacAddr,
    src_ip: Ipv4Addr,
    target_mac: MacAddr,
    target_ip: Ipv4Addr,
) -> Vec<u8> {
    let mut frame = vec![0u8; ETHERNET_HEADER_LEN + ARP_LEN];
    let mut eth = MutableEthernetPacket::new(&mut frame).expect("42 bytes hold an Ethernet header");
    eth.set_destination(target_mac.0.into());
    eth.set_source(src_mac.0.into());
    eth.set_ethertype(EtherTypes::Arp);
    let mut arp = MutableArpPacket::new(eth.payload_mut()).expect("28 bytes hold an ARP packet");
    arp.set_hardware_type(ArpHardwareTypes::Ethernet);
    arp.set_protocol_type(EtherTypes::Ipv4);
    arp.set_hw_addr_len(6);
    arp.set_proto_addr_len(4);
    arp.set_operation(ArpOperations::Request);
    arp.set_sender_hw_addr(src_mac.0.into());
    arp.set_sender_proto_addr(src_ip);
    arp.set_target_hw_addr([0; 6].into());
    arp.set_target_proto_addr(target_ip);
    frame
}

#[cfg(test)]
mod tests {
    use super::super::parse_frame;
    use super::super::samples::{ARP_REPLY, ARP_REQUEST, KERNEL_ARP_PROBE};
    use super::*;

    const BOX_MAC: MacAddr = MacAddr([0x02, 0x00, 0x5e, 0x10, 0x00, 0x01]);
    const BOX_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const PHONE_MAC: MacAddr = MacAddr([0x3c, 0x22, 0xfb, 0x12, 0x34, 0x56]);
    const PHONE_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 101);

    #[test]
    fn probe_has_the_exact_layout() {
        let frame = arp_probe(BOX_MAC, BOX_IP, PHONE_MAC, PHONE_IP);
        #[rustfmt::skip]
        let expected: &[u8] = &[
            // Ethernet: to the phone, from the box, ARP
            0x3c, 0x22, 0xfb, 0x12, 0x34, 0x56, 0x02, 0x00, 0x5e, 0x10, 0x00, 0x01,
            0x08, 0x06,
            // Ethernet/IPv4, 6/4, request
            0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01,
            // sender: the box
            0x02, 0x00, 0x5e, 0x10, 0x00, 0x01, 192, 0, 2, 1,
            // target: unknown hardware address, the phone's IP
            0, 0, 0, 0, 0, 0, 192, 0, 2, 101,
        ];
        assert_eq!(frame, expected);
        // ... which is byte for byte what Linux sends in state PROBE.
        assert_eq!(frame, KERNEL_ARP_PROBE);
    }

    #[test]
    fn probe_round_trips_through_the_parser() {
        let frame = arp_probe(BOX_MAC, BOX_IP, PHONE_MAC, PHONE_IP);
        assert_eq!(
            parse_frame(&frame),
            Ok(Some(Sighting {
                mac: BOX_MAC,
                kind: SightingKind::Arp { ip: Some(BOX_IP) }
            }))
        );
        let arp = ArpPacket::new(&frame[14..]).unwrap();
        assert_eq!(arp.get_target_proto_addr(), PHONE_IP);
    }

    #[test]
    fn request_reply_and_probe_from_a_device() {
        for frame in [ARP_REQUEST, ARP_REPLY] {
            assert_eq!(
                sighting(PHONE_MAC, &frame[14..]),
                Ok(Some(Sighting {
                    mac: PHONE_MAC,
                    kind: SightingKind::Arp { ip: Some(PHONE_IP) }
                }))
            );
        }
        // RFC 5227 probe: sender IP 0.0.0.0.
        let mut probe = ARP_REQUEST[14..].to_vec();
        probe[14..18].fill(0);
        assert_eq!(
            sighting(PHONE_MAC, &probe).unwrap().unwrap().kind,
            SightingKind::Arp { ip: None }
        );
        // Gratuitous ARP: sender IP = target IP, broadcast.
        let mut gratuitous = ARP_REQUEST[14..].to_vec();
        gratuitous[24..28].copy_from_slice(&[192, 0, 2, 101]);
        assert_eq!(
            sighting(PHONE_MAC, &gratuitous).unwrap().unwrap().kind,
            SightingKind::Arp { ip: Some(PHONE_IP) }
        );
    }

    #[test]
    fn a_station_cannot_speak_for_another_device() {
        // Another station sends the phone's ARP reply: the Ethernet
        // source is not the sender hardware address. Not believed.
        let mut f = ARP_REPLY.to_vec();
        assert_eq!(parse_frame(&f).unwrap().unwrap().mac, PHONE_MAC);
        f[6..12].copy_from_slice(&BOX_MAC.0);
        assert_eq!(parse_frame(&f), Err(WireError::Spoofed));
        assert_eq!(WireError::Spoofed.kind(), "spoofed");
        // Sender and source agree but name a group address: no device.
        f[6] = 0xff;
        let group: Vec<u8> = f[6..12].to_vec();
        f[22..28].copy_from_slice(&group);
        assert_eq!(parse_frame(&f), Err(WireError::BadAddress));
    }

    #[test]
    fn other_arp_is_ignored_or_malformed() {
        let arp = &ARP_REQUEST[14..];
        let with = |at: usize, bytes: &[u8]| {
            let mut a = arp.to_vec();
            a[at..at + bytes.len()].copy_from_slice(bytes);
            sighting(PHONE_MAC, &a)
        };
        assert_eq!(with(0, &[0, 6]), Ok(None)); // IEEE 802 hardware
        assert_eq!(with(2, &[0x86, 0xdd]), Ok(None)); // not IPv4
        assert_eq!(with(6, &[0, 3]), Ok(None)); // RARP request
        assert_eq!(with(4, &[8, 4]), Err(WireError::BadArp));
        assert_eq!(with(4, &[6, 16]), Err(WireError::BadArp));
        for end in 0..ARP_LEN {
            assert_eq!(
                sighting(PHONE_MAC, &arp[..end]),
                Err(WireError::truncated("ARP"))
            );
        }
    }
}
