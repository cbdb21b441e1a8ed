//! `MacAddr`: a 48-bit Ethernet address, parsed strictly.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A 48-bit IEEE 802 MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

/// Why a string is not a MAC address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a MAC address (expected six hex pairs such as 02:00:5e:10:00:01)")]
pub struct MacParseError {
    input: String,
}

impl MacAddr {
    /// Locally administered addresses (bit 1 of the first octet) are what
    /// phones use for their private, randomised addresses.
    pub fn is_locally_administered(&self) -> bool {
        self.0[0] & 0x02 != 0
    }

    /// Group (multicast/broadcast) addresses never identify a client.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// A client can only be a unicast, non-zero address.
    pub fn is_unicast_client(&self) -> bool {
        !self.is_multicast() && self.0 != [0; 6]
    }

    pub fn octets(&self) -> [u8; 6] {
        self.0
    }
}

impl FromStr for MacAddr {
    type Err = MacParseError;

    /// Accepts `aa:bb:cc:dd:ee:ff` and `aa-bb-cc-dd-ee-ff`, any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || MacParseError {
            input: s.chars().take(40).collect(),
        };
        let bytes = s.as_bytes();
        if bytes.len() != 17 {
            return Err(err());
        }
        let sep = bytes[2];
        if sep != b':' && sep != b'-' {
            return Err(err());
        }
        let mut out = [0u8; 6];
        for (i, octet) in out.iter_mut().enumerate() {
            let at = i * 3;
            if i < 5 && bytes[at + 2] != sep {
                return Err(err());
            }
            let pair = &s[at..at + 2];
            *octet = u8::from_str_radix(pair, 16).map_err(|_| err())?;
            if !pair.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(err());
            }
        }
        Ok(MacAddr(out))
    }
}

/// A MAC for the log: only its last two octets (`**:**:**:**:bb:cc`).
/// Enough to tell devices apart and find one in `ctl clients`; not enough
/// to follow a shopper's phone from logs that leave the box (syslog
/// forwarding, support bundles). Debug-level lines may show whole MACs.
#[derive(Clone, Copy)]
pub struct Redacted(MacAddr);

impl fmt::Display for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = self.0.0;
        write!(f, "**:**:**:**:{:02x}:{:02x}", o[4], o[5])
    }
}

impl MacAddr {
    /// This MAC as info-level log lines show it (see [`Redacted`]).
    pub fn redacted(self) -> Redacted {
        Redacted(self)
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            o[0], o[1], o[2], o[3], o[4], o[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for MacAddr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_show_only_the_last_two_octets() {
        let mac = MacAddr([0x3c, 0x22, 0xfb, 0x12, 0xab, 0x0c]);
        assert_eq!(mac.redacted().to_string(), "**:**:**:**:ab:0c");
    }

    #[test]
    fn parses_and_prints_round_trip() {
        let mac: MacAddr = "02:AB:cd:00:11:ff".parse().unwrap();
        assert_eq!(mac.0, [0x02, 0xab, 0xcd, 0x00, 0x11, 0xff]);
        assert_eq!(mac.to_string(), "02:ab:cd:00:11:ff");
        assert_eq!("02-ab-cd-00-11-ff".parse::<MacAddr>().unwrap(), mac);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "02:ab:cd:00:11",
            "02:ab:cd:00:11:ff:00",
            "02:ab-cd:00:11:ff",
            "0g:ab:cd:00:11:ff",
            "+2:ab:cd:00:11:ff",
            "02:ab:cd:00:11:f ",
            "02;ab;cd;00;11;ff",
            "ü2:ab:cd:00:11:f",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn classifies_addresses() {
        let random: MacAddr = "da:a1:19:00:00:01".parse().unwrap();
        let vendor: MacAddr = "3c:22:fb:00:00:01".parse().unwrap();
        let bcast: MacAddr = "ff:ff:ff:ff:ff:ff".parse().unwrap();
        assert!(random.is_locally_administered());
        assert!(!vendor.is_locally_administered());
        assert!(vendor.is_unicast_client());
        assert!(!bcast.is_unicast_client());
        assert!(!MacAddr([0; 6]).is_unicast_client());
    }
}
