//! The shopper-facing HTTP server.
//!
//! Routes, for a request whose Host is the portal's own:
//! - `GET /`, `GET /login` — the sign-in page: member sign-in (phone and a
//!   texted code, when HQ can send texts; or a member number) with two
//!   consents, and click-through with terms. `?staff=CODE` (a staff QR
//!   poster) is carried through every step to `Members::link`;
//! - `POST /login` — accept the terms: the client is authorised before the
//!   `303` to `/status` is sent;
//! - `POST /signin/code` — phone sign-in, step 1: a code is made and sent
//!   through HQ; the answer is the page to enter it;
//! - `POST /signin/verify` — step 2: the code is checked, the device linked
//!   to the member and authorised, then `303` to `/welcome`;
//! - `POST /signin/member` — member-number sign-in, then `303` to `/welcome`;
//! - `GET /welcome` — a signed-in member's greeting, the campaign HQ
//!   targets at them (`campaign`), the members' Wi-Fi key when the
//!   sign-in earned one (shown once), time left and sign-out;
//! - `GET /wifi/profile.mobileconfig` — the Apple Wi-Fi profile of the
//!   key just shown to this device; `POST /wifi/renew` — "Get a new key";
//! - `GET /status` — time left and a sign-out button; `POST /logout`;
//! - `GET /api/captive` — RFC 8908 captive-portal API.
//!
//! A device HQ has blocked (the sync document's `blocked_devices`), or the
//! store manager blocked on the dashboard, gets a `403` for every sign-in
//! method.
//!
//! Any other Host is captured traffic: a `302` to the sign-in page with
//! `Cache-Control: no-store` before sign-in; after sign-in the OS probe's
//! expected answer (see `probes`).
//!
//! `server` owns connections and their limits (with `crate::http`);
//! `routes` the answers; `pages` the templates (filled by `crate::web`).

pub mod campaign;
pub mod pages;
pub mod probes;
pub(crate) mod routes;
pub mod server;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use crate::access::Gate;
use crate::access::blocked::{BlockedMacs, Blocklist};
pub use crate::app::PortalStats;
use crate::config::Language;
use crate::mac::MacAddr;
use crate::members::Members;
use crate::net::neigh::NeighbourCache;
use crate::privacy::DeviceKey;
use crate::uplink::messages::MessageSender;
use crate::uplink::sync::SyncState;

/// Finds the MAC behind a client's IP.
pub trait ClientResolver: Send + Sync {
    fn mac_of(&self, ip: IpAddr) -> Option<MacAddr>;
}

/// The kernel's neighbour table: the real thing on a LAN.
pub struct NeighbourResolver(pub NeighbourCache);

impl ClientResolver for NeighbourResolver {
    fn mac_of(&self, ip: IpAddr) -> Option<MacAddr> {
        self.0.lookup(ip)
    }
}

/// Without enforcement (the `none` backend) there may be no LAN at all;
/// each IP then stands for a made-up, locally administered MAC.
pub struct SyntheticResolver;

impl ClientResolver for SyntheticResolver {
    fn mac_of(&self, ip: IpAddr) -> Option<MacAddr> {
        let tail = match ip.to_canonical() {
            IpAddr::V4(v4) => v4.octets(),
            IpAddr::V6(v6) => {
                let o = v6.octets();
                [o[12], o[13], o[14], o[15]]
            }
        };
        Some(MacAddr([0x02, 0x5e, tail[0], tail[1], tail[2], tail[3]]))
    }
}

/// What the portal needs to know about itself.
#[derive(Debug, Clone)]
pub struct Site {
    /// The sign-in base URL, ending in `/`, e.g. `http://192.0.2.1:2050/`.
    pub url: String,
    /// `host:port` of `url`, lower case, for recognising our own Host.
    pub authority: String,
    pub port: u16,
    pub store_name: String,
    pub default_language: Language,
}

impl Site {
    /// Derives the site from the listen address and, when that is a
    /// wildcard, the LAN interface's address.
    pub fn new(
        configured_url: Option<&str>,
        listen: SocketAddr,
        lan_addr: Option<IpAddr>,
        store_name: &str,
        default_language: Language,
    ) -> Site {
        let url = match configured_url {
            Some(u) if u.ends_with('/') => u.to_string(),
            Some(u) => format!("{u}/"),
            None => {
                let ip = if listen.ip().is_unspecified() {
                    lan_addr.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
                } else {
                    listen.ip()
                };
                format!("http://{}/", SocketAddr::new(ip, listen.port()))
            }
        };
        let authority = url
            .split("://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .unwrap_or("")
            .to_ascii_lowercase();
        Site {
            url,
            authority,
            port: listen.port(),
            store_name: store_name.to_string(),
            default_language,
        }
    }

    /// Is this Host header addressed to the portal itself: the portal
    /// URL's own authority, or an IP address literal with the portal's
    /// port (the box on any of its addresses)? Any other name is not, even
    /// with the portal's port: a page on `evil.example:2050` whose name
    /// the attacker re-points at the box (DNS rebinding) would otherwise
    /// read a signed-in shopper's pages. Such a request is treated as
    /// captured traffic (a redirect to the sign-in page, nothing else).
    pub fn is_own_host(&self, host: &str) -> bool {
        let host = host.trim().to_ascii_lowercase();
        if host == self.authority {
            return true;
        }
        let Some((name, port)) = host.rsplit_once(':') else {
            return false;
        };
        if port.parse::<u16>().ok() != Some(self.port) {
            return false;
        }
        match name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
            Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
            None => name.parse::<Ipv4Addr>().is_ok(),
        }
    }
}

/// Everything a request handler needs.
pub struct Portal {
    pub site: Site,
    pub gate: Arc<Gate>,
    pub resolver: Arc<dyn ClientResolver>,
    /// Shared with the hub, which reports them (`ctl status`, `/metrics`).
    pub stats: Arc<PortalStats>,
    /// Member sign-in; `None` only where it is not needed (some tests,
    /// fuzzing): the member forms are then not offered.
    pub members: Option<Arc<Members>>,
    /// OTP texts through HQ; `None` without `[hq]`: phone sign-in is then
    /// not offered.
    pub messages: Option<MessageSender>,
    /// HQ's sync document: blocked devices and campaigns.
    pub sync: Arc<SyncState>,
    /// Turns a MAC into the `device_id` HQ knows (campaign audiences).
    pub device_key: DeviceKey,
    /// Devices blocked by the manager or HQ (`sync`'s block list).
    pub blocklist: Arc<Blocklist>,
}

impl Portal {
    /// A portal with click-through only: no members, no texts, no sync
    /// document. Set the other fields with struct update syntax.
    pub fn new(
        site: Site,
        gate: Arc<Gate>,
        resolver: Arc<dyn ClientResolver>,
        device_key: DeviceKey,
    ) -> Portal {
        let sync = Arc::new(SyncState::empty());
        let blocklist = Blocklist::new(BlockedMacs::empty(), sync.clone(), device_key.clone());
        Portal {
            site,
            gate,
            resolver,
            stats: Arc::new(PortalStats::default()),
            members: None,
            messages: None,
            sync,
            device_key,
            blocklist: Arc::new(blocklist),
        }
    }

    /// Has the store manager or HQ blocked this device?
    pub fn is_blocked(&self, mac: MacAddr) -> bool {
        self.blocklist.is_blocked(mac)
    }

    /// Can shoppers sign in with a phone number here?
    pub fn phone_sign_in(&self) -> bool {
        self.members.is_some() && self.messages.is_some()
    }
}

#[cfg(test)]
mod tests;
