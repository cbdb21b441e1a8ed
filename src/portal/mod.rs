//! The shopper-facing HTTP server.
//!
//! Routes, for a request whose Host is the portal's own:
//! - `GET /`, `GET /login` — the sign-in page (click-through with terms);
//! - `POST /login` — accept the terms: the client is authorised before the
//!   `303` to `/status` is sent;
//! - `GET /status` — time left and a sign-out button; `POST /logout`;
//! - `GET /api/captive` — RFC 8908 captive-portal API.
//!
//! Any other Host is captured traffic: a `302` to the sign-in page with
//! `Cache-Control: no-store` before sign-in; after sign-in the OS probe's
//! expected answer (see `probes`).
//!
//! `server` owns connections and their limits; `routes` the answers.

pub mod form;
pub mod pages;
pub mod probes;
mod routes;
pub mod server;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::access::Gate;
use crate::config::Language;
use crate::net::MacAddr;
use crate::net::neigh::NeighbourCache;

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

    /// Is this Host header addressed to the portal itself? Captured
    /// requests keep their original Host (port 80 or none), so any Host
    /// that names the portal port came here on purpose.
    pub fn is_own_host(&self, host: &str) -> bool {
        let host = host.trim().to_ascii_lowercase();
        if host == self.authority {
            return true;
        }
        host.rsplit_once(':')
            .filter(|(h, _)| !h.is_empty() && (!h.contains(':') || h.ends_with(']')))
            .and_then(|(_, p)| p.parse::<u16>().ok())
            == Some(self.port)
    }
}

/// Counters for `ctl status` and `/metrics`.
#[derive(Debug, Default)]
pub struct PortalStats {
    pub requests: AtomicU64,
    pub redirects: AtomicU64,
    pub sign_ins: AtomicU64,
    pub bad_requests: AtomicU64,
    pub unknown_clients: AtomicU64,
    pub connections_refused: AtomicU64,
}

impl PortalStats {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> serde_json::Value {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        serde_json::json!({
            "requests": g(&self.requests),
            "redirects": g(&self.redirects),
            "sign_ins": g(&self.sign_ins),
            "bad_requests": g(&self.bad_requests),
            "unknown_clients": g(&self.unknown_clients),
            "connections_refused": g(&self.connections_refused),
        })
    }
}

/// Everything a request handler needs.
pub struct Portal {
    pub site: Site,
    pub gate: Arc<Gate>,
    pub resolver: Arc<dyn ClientResolver>,
    pub stats: PortalStats,
}

#[cfg(test)]
mod tests;
