//! DHCPv4 (BOOTP) messages and their options (RFC 2131, RFC 2132), read
//! in place.
//!
//! [`DhcpPacket`] checks its length and magic cookie once, in
//! [`DhcpPacket::new_checked`]; after that no accessor can panic.
//! [`DhcpOptions`] walks one options area and reports an option whose
//! length runs past the end as an error instead of guessing. Option
//! overload (option 52) is followed: the `file` and `sname` fields are
//! read as further option areas when the message says so.
//!
//! [`client_info`] turns a client message into the bounded, cleaned
//! [`DhcpInfo`] presence keeps: the limits are the `MAX_*` constants here.

use std::net::Ipv4Addr;

use crate::net::MacAddr;
use crate::presence::{DhcpInfo, DhcpMessageType};

use super::WireError;

/// At most this many characters of a host name (option 12) are kept,
/// counted after control characters are removed.
pub const MAX_HOSTNAME_CHARS: usize = 64;
/// At most this many characters of a vendor class (option 60) are kept.
pub const MAX_VENDOR_CLASS_CHARS: usize = 128;
/// At most this many bytes of a client identifier (option 61) are kept.
pub const MAX_CLIENT_ID_BYTES: usize = 64;
/// At most this many parameter request list entries (option 55) are kept.
pub const MAX_PRL_ENTRIES: usize = 64;

/// `op` of a message from a client.
pub const BOOTREQUEST: u8 = 1;
/// `op` of a message from a server.
pub const BOOTREPLY: u8 = 2;
/// `htype` of Ethernet (and Wi-Fi, which borrows it).
pub const HTYPE_ETHERNET: u8 = 1;

/// The option codes this module reads.
pub mod option {
    pub const PAD: u8 = 0;
    pub const HOST_NAME: u8 = 12;
    pub const REQUESTED_IP: u8 = 50;
    pub const OVERLOAD: u8 = 52;
    pub const MESSAGE_TYPE: u8 = 53;
    pub const PARAMETER_REQUEST_LIST: u8 = 55;
    pub const VENDOR_CLASS: u8 = 60;
    pub const CLIENT_ID: u8 = 61;
    pub const END: u8 = 255;
}

/// The values of option 53.
pub mod message_type {
    pub const DISCOVER: u8 = 1;
    pub const OFFER: u8 = 2;
    pub const REQUEST: u8 = 3;
    pub const DECLINE: u8 = 4;
    pub const ACK: u8 = 5;
    pub const NAK: u8 = 6;
    pub const RELEASE: u8 = 7;
    pub const INFORM: u8 = 8;
}

/// Byte offsets of the fixed BOOTP header (RFC 2131 §2, figure 1).
mod field {
    use std::ops::Range;

    pub const OP: usize = 0;
    pub const HTYPE: usize = 1;
    pub const HLEN: usize = 2;
    pub const HOPS: usize = 3;
    pub const XID: Range<usize> = 4..8;
    pub const SECS: Range<usize> = 8..10;
    pub const FLAGS: Range<usize> = 10..12;
    pub const CIADDR: Range<usize> = 12..16;
    pub const YIADDR: Range<usize> = 16..20;
    pub const SIADDR: Range<usize> = 20..24;
    pub const GIADDR: Range<usize> = 24..28;
    pub const CHADDR: Range<usize> = 28..44;
    pub const SNAME: Range<usize> = 44..108;
    pub const FILE: Range<usize> = 108..236;
    pub const MAGIC: Range<usize> = 236..240;
    pub const OPTIONS: usize = 240;
}

/// 99.130.83.99: what makes a BOOTP message a DHCP message.
const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];

/// A DHCPv4 message over a buffer that holds at least the fixed header and
/// the magic cookie (checked once, in [`DhcpPacket::new_checked`]).
#[derive(Debug, Clone)]
pub struct DhcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> DhcpPacket<T> {
    /// The only constructor: checks the length and the magic cookie, so
    /// that no accessor can index out of bounds afterwards.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let data = buffer.as_ref();
        if data.len() < field::OPTIONS {
            return Err(WireError::truncated("DHCP header"));
        }
        if data[field::MAGIC] != MAGIC_COOKIE {
            return Err(WireError::BadDhcpHeader);
        }
        Ok(DhcpPacket { buffer })
    }

    fn data(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    fn ipv4(&self, at: std::ops::Range<usize>) -> Ipv4Addr {
        let b = &self.data()[at];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// [`BOOTREQUEST`] from a client, [`BOOTREPLY`] from a server.
    pub fn op(&self) -> u8 {
        self.data()[field::OP]
    }

    pub fn htype(&self) -> u8 {
        self.data()[field::HTYPE]
    }

    pub fn hlen(&self) -> u8 {
        self.data()[field::HLEN]
    }

    pub fn hops(&self) -> u8 {
        self.data()[field::HOPS]
    }

    pub fn xid(&self) -> u32 {
        let b = &self.data()[field::XID];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    pub fn secs(&self) -> u16 {
        let b = &self.data()[field::SECS];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The flags field; bit 15 is the broadcast flag.
    pub fn flags(&self) -> u16 {
        let b = &self.data()[field::FLAGS];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The client's current address (RENEW, RELEASE, INFORM), else 0.0.0.0.
    pub fn ciaddr(&self) -> Ipv4Addr {
        self.ipv4(field::CIADDR)
    }

    /// "Your" address: what the server hands out.
    pub fn yiaddr(&self) -> Ipv4Addr {
        self.ipv4(field::YIADDR)
    }

    pub fn siaddr(&self) -> Ipv4Addr {
        self.ipv4(field::SIADDR)
    }

    /// The relay agent's address, 0.0.0.0 when not relayed.
    pub fn giaddr(&self) -> Ipv4Addr {
        self.ipv4(field::GIADDR)
    }

    /// All 16 bytes of `chaddr`, whatever `htype` and `hlen` say.
    pub fn chaddr(&self) -> &[u8] {
        &self.data()[field::CHADDR]
    }

    /// The client's MAC, when the message says it is an Ethernet address
    /// (`htype` 1, `hlen` 6).
    pub fn client_mac(&self) -> Option<MacAddr> {
        if self.htype() != HTYPE_ETHERNET || self.hlen() != 6 {
            return None;
        }
        let c = self.chaddr();
        Some(MacAddr([c[0], c[1], c[2], c[3], c[4], c[5]]))
    }

    /// The raw `sname` field (64 bytes).
    pub fn sname(&self) -> &[u8] {
        &self.data()[field::SNAME]
    }

    /// The raw `file` field (128 bytes).
    pub fn file(&self) -> &[u8] {
        &self.data()[field::FILE]
    }

    /// Every option of the message, in order: the options field, then
    /// `file` and `sname` when option 52 says they hold options.
    pub fn options(&self) -> MessageOptions<'_> {
        let data = self.data();
        MessageOptions {
            current: DhcpOptions::new(&data[field::OPTIONS..]),
            file: &data[field::FILE],
            sname: &data[field::SNAME],
            overload: 0,
            area: Area::Options,
        }
    }

    /// The first value of option 53, after checking every option of the
    /// message.
    pub fn message_type(&self) -> Result<Option<u8>, WireError> {
        let mut found = None;
        for opt in self.options() {
            let opt = opt?;
            if opt.code == option::MESSAGE_TYPE && found.is_none() {
                found = Some(one_byte(opt.data)?);
            }
        }
        Ok(found)
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }
}

/// One option: its code and its value, borrowed from the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DhcpOption<'a> {
    pub code: u8,
    pub data: &'a [u8],
}

/// The options in one options area (the options field, or an overloaded
/// `file` or `sname`): code-length-value triples, with pad (0) skipped and
/// end (255) or the end of the area ending the walk. An option whose
/// length runs past the end of the area yields `Err(BadDhcpOption)` once,
/// and the walk stops.
#[derive(Debug, Clone)]
pub struct DhcpOptions<'a> {
    area: &'a [u8],
    pos: usize,
}

impl<'a> DhcpOptions<'a> {
    pub fn new(area: &'a [u8]) -> Self {
        DhcpOptions { area, pos: 0 }
    }

    fn stop(&mut self) {
        self.pos = self.area.len();
    }
}

impl<'a> Iterator for DhcpOptions<'a> {
    type Item = Result<DhcpOption<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let code = *self.area.get(self.pos)?;
            match code {
                option::PAD => self.pos += 1,
                option::END => {
                    self.stop();
                    return None;
                }
                _ => {
                    let value = self.area.get(self.pos + 1).and_then(|&len| {
                        let start = self.pos + 2;
                        self.area.get(start..start + usize::from(len))
                    });
                    let Some(data) = value else {
                        self.stop();
                        return Some(Err(WireError::BadDhcpOption));
                    };
                    self.pos += 2 + data.len();
                    return Some(Ok(DhcpOption { code, data }));
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Area {
    Options,
    File,
    Sname,
    /// After the last area, or after an error.
    Done,
}

/// All options of a message, following option overload (RFC 2131 §4.1:
/// the options field first, then `file`, then `sname`). Option 52 is only
/// honoured in the options field; a value other than 1, 2 or 3 is ignored.
#[derive(Debug, Clone)]
pub struct MessageOptions<'a> {
    current: DhcpOptions<'a>,
    file: &'a [u8],
    sname: &'a [u8],
    overload: u8,
    area: Area,
}

impl<'a> Iterator for MessageOptions<'a> {
    type Item = Result<DhcpOption<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.area == Area::Done {
                return None;
            }
            match self.current.next() {
                Some(Ok(opt)) => {
                    if self.area == Area::Options && opt.code == option::OVERLOAD {
                        match one_byte(opt.data) {
                            Ok(v @ 1..=3) => self.overload = v,
                            Ok(_) => {}
                            Err(e) => {
                                self.area = Area::Done;
                                return Some(Err(e));
                            }
                        }
                    }
                    return Some(Ok(opt));
                }
                Some(Err(e)) => {
                    // An error ends the whole message, not just this area.
                    self.area = Area::Done;
                    return Some(Err(e));
                }
                None => {}
            }
            // This area is done: on to the next one the overload names.
            let (area, next) = match self.area {
                Area::Options if self.overload & 1 != 0 => (Area::File, self.file),
                Area::Options | Area::File if self.overload & 2 != 0 => (Area::Sname, self.sname),
                _ => (Area::Done, &[][..]),
            };
            self.area = area;
            self.current = DhcpOptions::new(next);
        }
    }
}

fn one_byte(data: &[u8]) -> Result<u8, WireError> {
    match data {
        [b] => Ok(*b),
        _ => Err(WireError::BadDhcpOption),
    }
}

fn dhcp_message_type(value: Option<u8>) -> DhcpMessageType {
    match value {
        Some(message_type::DISCOVER) => DhcpMessageType::Discover,
        Some(message_type::REQUEST) => DhcpMessageType::Request,
        Some(message_type::DECLINE) => DhcpMessageType::Decline,
        Some(message_type::RELEASE) => DhcpMessageType::Release,
        Some(message_type::INFORM) => DhcpMessageType::Inform,
        _ => DhcpMessageType::Other,
    }
}

/// LAN text made safe to keep: invalid UTF-8 replaced, control characters
/// dropped, surrounding white space trimmed, at most `max` characters.
/// `None` when nothing is left.
fn clean_text(data: &[u8], max: usize) -> Option<String> {
    let text = String::from_utf8_lossy(data);
    let kept: String = text.chars().filter(|c| !c.is_control()).collect();
    let out: String = kept.trim().chars().take(max).collect();
    let out = out.trim_end().to_string();
    (!out.is_empty()).then_some(out)
}

/// What a client message says about the device, bounded and cleaned. Every
/// option is checked, so a message with one bad option is rejected whole.
/// The first instance of a repeated option wins (RFC 3396 concatenation is
/// not needed for the short options read here).
pub fn client_info<T: AsRef<[u8]>>(packet: &DhcpPacket<T>) -> Result<DhcpInfo, WireError> {
    let mut message_type = None;
    let mut requested_ip = None;
    let mut hostname = None;
    let mut client_id = None;
    let mut vendor_class = None;
    let mut prl = None;
    for opt in packet.options() {
        let opt = opt?;
        match opt.code {
            option::MESSAGE_TYPE if message_type.is_none() => {
                message_type = Some(one_byte(opt.data)?);
            }
            option::REQUESTED_IP if requested_ip.is_none() => match opt.data {
                [a, b, c, d] => requested_ip = Some(Ipv4Addr::new(*a, *b, *c, *d)),
                _ => return Err(WireError::BadDhcpOption),
            },
            option::HOST_NAME if hostname.is_none() => {
                hostname = Some(clean_text(opt.data, MAX_HOSTNAME_CHARS));
            }
            option::VENDOR_CLASS if vendor_class.is_none() => {
                vendor_class = Some(clean_text(opt.data, MAX_VENDOR_CLASS_CHARS));
            }
            option::CLIENT_ID if client_id.is_none() => {
                let id = &opt.data[..opt.data.len().min(MAX_CLIENT_ID_BYTES)];
                client_id = Some((!id.is_empty()).then(|| id.to_vec()));
            }
            option::PARAMETER_REQUEST_LIST if prl.is_none() => {
                prl = Some(opt.data[..opt.data.len().min(MAX_PRL_ENTRIES)].to_vec());
            }
            _ => {}
        }
    }
    let ciaddr = packet.ciaddr();
    Ok(DhcpInfo {
        message_type: dhcp_message_type(message_type),
        requested_ip: requested_ip
            .filter(|ip| !ip.is_unspecified())
            .or((!ciaddr.is_unspecified()).then_some(ciaddr)),
        hostname: hostname.flatten(),
        client_id: client_id.flatten(),
        vendor_class: vendor_class.flatten(),
        param_request_list: prl.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
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
}
