use super::super::samples;
use super::*;

/// The BOOTP message inside a sample frame (Ethernet + 20-byte IPv4 +
/// UDP headers in front).
fn bootp(frame: &[u8]) -> &[u8] {
    &frame[14 + 20 + 8..]
}

/// A minimal valid BOOTREQUEST with `options` after the cookie.
fn message(options: &[u8]) -> Vec<u8> {
    let mut m = vec![0u8; 240];
    m[0] = BOOTREQUEST;
    m[1] = HTYPE_ETHERNET;
    m[2] = 6;
    m[28..34].copy_from_slice(&[0x02, 0, 0x5e, 0, 0x53, 0x01]);
    m[236..240].copy_from_slice(&MAGIC_COOKIE);
    m.extend_from_slice(options);
    m
}

#[test]
fn reads_the_fixed_header_of_a_real_discover() {
    let p = DhcpPacket::new_checked(bootp(samples::DHCP_DISCOVER_DHCLIENT)).unwrap();
    assert_eq!(p.op(), BOOTREQUEST);
    assert_eq!((p.htype(), p.hlen(), p.hops()), (1, 6, 0));
    assert_eq!(p.xid(), 0xe071_b64b);
    assert_eq!((p.secs(), p.flags()), (0, 0));
    assert_eq!(p.ciaddr(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(p.giaddr(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(
        p.client_mac(),
        Some(MacAddr([0x3c, 0x22, 0xfb, 0x12, 0x34, 0x56]))
    );
    assert_eq!(p.chaddr().len(), 16);
    assert!(p.sname().iter().all(|&b| b == 0));
    assert_eq!(p.file().len(), 128);
    assert_eq!(p.message_type(), Ok(Some(message_type::DISCOVER)));
    let codes: Vec<u8> = p.options().map(|o| o.unwrap().code).collect();
    assert_eq!(codes, [53, 12, 55, 60, 61]);
}

#[test]
fn client_info_of_dhclient_discover_and_request() {
    let p = DhcpPacket::new_checked(bootp(samples::DHCP_DISCOVER_DHCLIENT)).unwrap();
    let info = client_info(&p).unwrap();
    assert_eq!(
        info,
        DhcpInfo {
            message_type: DhcpMessageType::Discover,
            requested_ip: None,
            hostname: Some("Annas-iPhone".into()),
            client_id: Some(vec![1, 0x3c, 0x22, 0xfb, 0x12, 0x34, 0x56]),
            vendor_class: Some("MSFT 5.0".into()),
            param_request_list: vec![1, 28, 2, 3, 15, 6, 12, 26, 42],
        }
    );
    let p = DhcpPacket::new_checked(bootp(samples::DHCP_REQUEST_DHCLIENT)).unwrap();
    let info = client_info(&p).unwrap();
    assert_eq!(info.message_type, DhcpMessageType::Request);
    assert_eq!(info.requested_ip, Some(Ipv4Addr::new(192, 0, 2, 101)));
}

#[test]
fn client_info_of_udhcpc_discover() {
    let p = DhcpPacket::new_checked(bootp(samples::DHCP_DISCOVER_UDHCPC)).unwrap();
    let info = client_info(&p).unwrap();
    assert_eq!(info.hostname.as_deref(), Some("Galaxy-S23"));
    assert_eq!(info.vendor_class.as_deref(), Some("android-dhcp-14"));
    assert_eq!(info.param_request_list, [1, 3, 6, 12, 15, 28, 42, 121]);
}

#[test]
fn server_messages_have_their_type() {
    for (frame, t) in [
        (samples::DHCP_OFFER, message_type::OFFER),
        (samples::DHCP_ACK, message_type::ACK),
    ] {
        let p = DhcpPacket::new_checked(bootp(frame)).unwrap();
        assert_eq!(p.op(), BOOTREPLY);
        assert_eq!(p.message_type(), Ok(Some(t)));
        assert_eq!(p.yiaddr(), Ipv4Addr::new(192, 0, 2, 101));
        assert_eq!(p.siaddr(), Ipv4Addr::new(192, 0, 2, 1));
    }
}

#[test]
fn short_or_cookieless_messages_are_rejected() {
    let m = message(&[]);
    assert_eq!(
        DhcpPacket::new_checked(&m[..239]).unwrap_err(),
        WireError::truncated("DHCP header")
    );
    let mut bootp_only = m.clone();
    bootp_only[236] = 0;
    assert_eq!(
        DhcpPacket::new_checked(&bootp_only).unwrap_err(),
        WireError::BadDhcpHeader
    );
    // No options at all is a valid (if useless) message.
    let p = DhcpPacket::new_checked(&m).unwrap();
    assert_eq!(client_info(&p).unwrap(), DhcpInfo::default());
}

#[test]
fn options_walk_pad_end_and_missing_end() {
    let opts: Vec<_> = DhcpOptions::new(&[0, 0, 53, 1, 3, 0, 12, 0, 255, 12, 9])
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        opts,
        [
            DhcpOption {
                code: 53,
                data: &[3]
            },
            DhcpOption {
                code: 12,
                data: &[]
            }
        ]
    );
    // Without an end option the area's end ends the walk.
    assert_eq!(DhcpOptions::new(&[53, 1, 1]).count(), 1);
    assert_eq!(DhcpOptions::new(&[]).count(), 0);
    assert_eq!(DhcpOptions::new(&[0; 300]).count(), 0);
}

#[test]
fn an_option_running_past_the_end_is_an_error_once() {
    for bad in [&[12u8][..], &[12, 5, b'a'], &[53, 1, 1, 61, 255]] {
        let items: Vec<_> = DhcpOptions::new(bad).collect();
        assert_eq!(
            items.last(),
            Some(&Err(WireError::BadDhcpOption)),
            "{bad:?}"
        );
        assert_eq!(items.iter().filter(|i| i.is_err()).count(), 1);
    }
    let p = DhcpPacket::new_checked(message(&[53, 1, 1, 12, 40, b'x'])).unwrap();
    assert_eq!(client_info(&p), Err(WireError::BadDhcpOption));
    assert_eq!(p.message_type(), Err(WireError::BadDhcpOption));
}

#[test]
fn options_with_impossible_lengths_are_errors() {
    for opts in [
        &[53u8, 2, 1, 1][..],
        &[53, 0],
        &[50, 3, 192, 0, 2],
        &[52, 0],
    ] {
        let p = DhcpPacket::new_checked(message(opts)).unwrap();
        assert_eq!(client_info(&p), Err(WireError::BadDhcpOption), "{opts:?}");
    }
    // A malformed overload option ends the walk: nothing after it.
    let p = DhcpPacket::new_checked(message(&[52, 2, 1, 1, 53, 1, 1])).unwrap();
    let items: Vec<_> = p.options().collect();
    assert_eq!(items, [Err(WireError::BadDhcpOption)]);
}

#[test]
fn overloaded_file_and_sname_are_read_as_options() {
    let mut m = message(&[53, 1, 3, 52, 1, 3, 255]);
    // file: a host name; sname: a requested address.
    m[108..116].copy_from_slice(&[12, 5, b'p', b'h', b'o', b'n', b'e', 255]);
    m[44..50].copy_from_slice(&[50, 4, 192, 0, 2, 9]);
    let p = DhcpPacket::new_checked(&m).unwrap();
    let codes: Vec<u8> = p.options().map(|o| o.unwrap().code).collect();
    assert_eq!(codes, [53, 52, 12, 50]);
    let info = client_info(&p).unwrap();
    assert_eq!(info.hostname.as_deref(), Some("phone"));
    assert_eq!(info.requested_ip, Some(Ipv4Addr::new(192, 0, 2, 9)));

    // Overload only of `file`: `sname` (garbage now) stays unread.
    m[44..47].copy_from_slice(&[12, 200, b'x']);
    let mut only_file = m.clone();
    only_file[245] = 1;
    let p = DhcpPacket::new_checked(&only_file).unwrap();
    let codes: Vec<u8> = p.options().map(|o| o.unwrap().code).collect();
    assert_eq!(codes, [53, 52, 12]);
    // ... but read when overloaded, and then it is an error.
    let p = DhcpPacket::new_checked(&m).unwrap();
    assert_eq!(client_info(&p), Err(WireError::BadDhcpOption));

    // An unknown overload value is ignored.
    let mut odd = m.clone();
    odd[245] = 7;
    let p = DhcpPacket::new_checked(&odd).unwrap();
    assert_eq!(p.options().count(), 2);
    // Option 52 inside an overloaded area does not loop.
    let mut nested = message(&[52, 1, 1, 255]);
    nested[108..112].copy_from_slice(&[52, 1, 3, 255]);
    let p = DhcpPacket::new_checked(&nested).unwrap();
    assert_eq!(p.options().count(), 2);
}

#[test]
fn strings_and_lists_are_bounded_and_cleaned() {
    let mut opts = vec![12, 200];
    opts.extend(std::iter::repeat_n(b'a', 200));
    opts.extend([60, 255]);
    opts.extend(std::iter::repeat_n(b'v', 255));
    opts.extend([61, 255]);
    opts.extend(std::iter::repeat_n(7, 255));
    opts.extend([55, 255]);
    opts.extend(0..=254);
    let p = DhcpPacket::new_checked(message(&opts)).unwrap();
    let info = client_info(&p).unwrap();
    assert_eq!(info.hostname.unwrap().chars().count(), MAX_HOSTNAME_CHARS);
    assert_eq!(
        info.vendor_class.unwrap().chars().count(),
        MAX_VENDOR_CLASS_CHARS
    );
    assert_eq!(info.client_id.unwrap().len(), MAX_CLIENT_ID_BYTES);
    assert_eq!(info.param_request_list.len(), MAX_PRL_ENTRIES);
    assert_eq!(info.param_request_list[63], 63);

    // Control characters go, invalid UTF-8 is replaced, blank is None.
    let host = b"\x1b[31mEvil\x00\nPhone\xff\x07 ";
    let mut opts = vec![12, host.len() as u8];
    opts.extend_from_slice(host);
    opts.extend([60, 3, b' ', b'\t', 0, 61, 0]);
    let p = DhcpPacket::new_checked(message(&opts)).unwrap();
    let info = client_info(&p).unwrap();
    assert_eq!(info.hostname.as_deref(), Some("[31mEvilPhone\u{fffd}"));
    assert_eq!(info.vendor_class, None);
    assert_eq!(info.client_id, None);
}

#[test]
fn requested_ip_falls_back_to_ciaddr() {
    let mut m = message(&[53, 1, message_type::INFORM]);
    m[12..16].copy_from_slice(&[192, 0, 2, 33]);
    let info = client_info(&DhcpPacket::new_checked(&m).unwrap()).unwrap();
    assert_eq!(info.message_type, DhcpMessageType::Inform);
    assert_eq!(info.requested_ip, Some(Ipv4Addr::new(192, 0, 2, 33)));
    let m = message(&[53, 1, 42, 50, 4, 0, 0, 0, 0]);
    let info = client_info(&DhcpPacket::new_checked(&m).unwrap()).unwrap();
    assert_eq!(info.message_type, DhcpMessageType::Other);
    assert_eq!(info.requested_ip, None);
}

#[test]
fn client_mac_needs_ethernet_htype_and_hlen() {
    let mut m = message(&[]);
    m[2] = 16;
    assert_eq!(DhcpPacket::new_checked(&m).unwrap().client_mac(), None);
    m[2] = 6;
    m[1] = 6; // IEEE 802
    assert_eq!(DhcpPacket::new_checked(&m).unwrap().client_mac(), None);
}

#[test]
fn every_prefix_and_every_byte_flip_is_safe() {
    for frame in [
        samples::DHCP_DISCOVER_DHCLIENT,
        samples::DHCP_REQUEST_DHCLIENT,
        samples::DHCP_DISCOVER_UDHCPC,
        samples::DHCP_ACK,
        samples::DHCP_RELEASE,
    ] {
        let m = bootp(frame);
        for end in 0..=m.len() {
            if let Ok(p) = DhcpPacket::new_checked(&m[..end]) {
                let _ = client_info(&p);
                let _ = p.message_type();
            }
        }
        let mut copy = m.to_vec();
        for i in field::OPTIONS..copy.len() {
            for v in [0, 1, 52, 0x7f, 0xff] {
                let old = copy[i];
                copy[i] = v;
                let p = DhcpPacket::new_checked(&copy[..]).unwrap();
                let _ = client_info(&p);
                copy[i] = old;
            }
        }
    }
}

#[test]
fn hostnames_lose_bidi_and_zero_width_characters() {
    // "Manager-iPhone" with a right-to-left override and zero-width joins:
    // shown as is, it could pose as another name on the dashboard.
    let raw = "Ma\u{202E}nager\u{200B}-i\u{2066}Phone\u{2069}\u{FEFF}";
    assert_eq!(
        clean_text(raw.as_bytes(), 64).as_deref(),
        Some("Manager-iPhone")
    );
    assert_eq!(clean_text("\u{200F}\u{202B}".as_bytes(), 64), None);
    // Ordinary non-Latin names stay.
    assert_eq!(
        clean_text("张三的手机".as_bytes(), 64).as_deref(),
        Some("张三的手机")
    );
}
