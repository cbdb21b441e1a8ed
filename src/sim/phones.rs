//! The simulated phones: the OS families and what their DHCP clients
//! send (parameter request list, vendor class, host names), how many use
//! randomised MACs, and how a new device gets its MAC and address. What
//! the daemon's fingerprinting sees of a shopper comes from here.

use std::net::Ipv4Addr;

use rand::Rng;
use rand::seq::SliceRandom;

use super::Sim;
use crate::mac::MacAddr;
use crate::presence::{DhcpInfo, DhcpMessageType, Sighting, SightingKind};

/// Where simulated phones get their addresses (a /16 of test-ish space).
const LAN_BASE: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 0);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Os {
    Ios,
    Android,
    Windows,
    Macos,
}

impl Os {
    /// What the daemon's fingerprinting should call it.
    pub fn family(self) -> &'static str {
        match self {
            Os::Ios => "ios",
            Os::Android => "android",
            Os::Windows => "windows",
            Os::Macos => "macos",
        }
    }

    /// Option 55, as the OS's DHCP client sends it.
    fn param_request_list(self) -> &'static [u8] {
        match self {
            Os::Ios => &[1, 121, 3, 6, 15, 108, 114, 119, 252, 95, 44, 46],
            Os::Android => &[1, 3, 6, 15, 26, 28, 51, 58, 59, 43, 114, 108],
            Os::Windows => &[1, 3, 6, 15, 31, 33, 43, 44, 46, 47, 119, 121, 249, 252],
            Os::Macos => &[1, 121, 3, 6, 15, 119, 252, 95, 44, 46],
        }
    }

    /// Share of devices of this OS that use a randomised MAC.
    fn randomized_share(self) -> f64 {
        match self {
            Os::Ios => 0.92,
            Os::Android => 0.85,
            Os::Windows => 0.3,
            Os::Macos => 0.5,
        }
    }

    /// Vendor OUIs for devices that show their burnt-in address.
    fn ouis(self) -> &'static [[u8; 3]] {
        match self {
            Os::Ios | Os::Macos => &[[0xf0, 0x18, 0x98], [0x3c, 0x22, 0xfb], [0xa4, 0x83, 0xe7]],
            Os::Android => &[[0x8c, 0xf5, 0xa3], [0x64, 0x09, 0x80], [0x48, 0x2c, 0xa0]],
            Os::Windows => &[[0x3c, 0xa9, 0xf4], [0x00, 0x21, 0x6a]],
        }
    }
}

/// A simulated device: a phone (or laptop) and what its DHCP client says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimDevice {
    pub mac: MacAddr,
    pub ip: Ipv4Addr,
    pub os: Os,
    pub hostname: Option<String>,
    pub vendor_class: Option<String>,
    pub randomized: bool,
    /// Index into [`Sim::members`].
    pub member: Option<usize>,
    pub staff: bool,
    /// Visits begun so far.
    pub visits: u32,
}

impl SimDevice {
    pub(super) fn dhcp(
        &self,
        message_type: DhcpMessageType,
        requested_ip: Option<Ipv4Addr>,
    ) -> Sighting {
        Sighting {
            mac: self.mac,
            kind: SightingKind::DhcpClient(DhcpInfo {
                message_type,
                requested_ip,
                hostname: self.hostname.clone(),
                client_id: Some([&[1u8][..], &self.mac.0[..]].concat()),
                vendor_class: self.vendor_class.clone(),
                param_request_list: self.os.param_request_list().to_vec(),
            }),
        }
    }
}

impl Sim {
    pub(super) fn random_os(&mut self) -> Os {
        // A mall in China: more Android than iOS, few laptops.
        match self.rng.gen_range(0..100) {
            0..50 => Os::Android,
            50..92 => Os::Ios,
            92..97 => Os::Windows,
            _ => Os::Macos,
        }
    }

    /// A new device of `os`; `randomized`: force the MAC kind.
    pub(super) fn new_device(&mut self, os: Os, randomized: Option<bool>) -> usize {
        let randomized = randomized.unwrap_or_else(|| self.rng.gen_bool(os.randomized_share()));
        let mac = loop {
            let mut b: [u8; 6] = self.rng.r#gen();
            if randomized {
                b[0] = (b[0] & 0xfc) | 0x02;
            } else {
                let oui = os
                    .ouis()
                    .choose(&mut self.rng)
                    .copied()
                    .unwrap_or([0, 0x1b, 0x63]);
                b[..3].copy_from_slice(&oui);
            }
            let mac = MacAddr(b);
            if self.macs.insert(mac) {
                break mac;
            }
        };
        let n = self.devices.len() as u32;
        let ip = Ipv4Addr::from(u32::from(LAN_BASE) + 10 + n % 65_000);
        let (hostname, vendor_class) = self.dhcp_identity(os);
        self.devices.push(SimDevice {
            mac,
            ip,
            os,
            hostname,
            vendor_class,
            randomized,
            member: None,
            staff: false,
            visits: 0,
        });
        self.devices.len() - 1
    }

    /// Host name (option 12) and vendor class (option 60) as the OS sends
    /// them.
    fn dhcp_identity(&mut self, os: Os) -> (Option<String>, Option<String>) {
        const ANDROID: &[&str] = &[
            "Galaxy-S24",
            "Galaxy-A54",
            "HUAWEI-P60",
            "HONOR-90",
            "Xiaomi-14",
            "Redmi-Note-13",
            "OPPO-Reno11",
            "vivo-X100",
            "OnePlus-12",
        ];
        const NAMES: &[&str] = &["Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Anna", "Tom"];
        match os {
            Os::Ios => {
                let host = if self.rng.gen_bool(0.6) {
                    "iPhone".to_string()
                } else {
                    format!("{}s-iPhone", NAMES.choose(&mut self.rng).unwrap_or(&"My"))
                };
                (Some(host), None)
            }
            Os::Android => {
                let release = self.rng.gen_range(12..=15);
                let host = ANDROID.choose(&mut self.rng).map(|s| s.to_string());
                (host, Some(format!("android-dhcp-{release}")))
            }
            Os::Windows => {
                const ALNUM: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ0123456789";
                let tail: String = (0..7)
                    .map(|_| char::from(ALNUM[self.rng.gen_range(0..ALNUM.len())]))
                    .collect();
                let prefix = if self.rng.gen_bool(0.5) {
                    "DESKTOP"
                } else {
                    "LAPTOP"
                };
                (Some(format!("{prefix}-{tail}")), Some("MSFT 5.0".into()))
            }
            Os::Macos => {
                let host = if self.rng.gen_bool(0.5) {
                    "MacBook-Air"
                } else {
                    "MacBook-Pro"
                };
                (Some(host.into()), None)
            }
        }
    }
}
