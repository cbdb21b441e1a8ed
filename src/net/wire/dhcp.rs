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

use crate::mac::MacAddr;
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

/// Invisible Unicode format characters: bidirectional controls (which
/// can make `gnp.exe` read as `exe.png`, or a hostname pose as another),
/// zero-width characters, soft hyphens, tags. Nothing a device name needs.
fn is_hidden_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{206F}'
        | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}'
        | '\u{E0000}'..='\u{E007F}')
}

/// LAN text made safe to keep: invalid UTF-8 replaced, control and
/// invisible format characters (bidi overrides, zero-width) dropped,
/// surrounding white space trimmed, at most `max` characters. `None` when
/// nothing is left.
pub fn clean_text(data: &[u8], max: usize) -> Option<String> {
    let text = String::from_utf8_lossy(data);
    let kept: String = text
        .chars()
        .filter(|c| !c.is_control() && !is_hidden_format(*c))
        .collect();
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
mod tests;
