//! The LAN interface's own addresses.

use std::net::{Ipv4Addr, Ipv6Addr};

/// The LAN interface's first IPv4 address (the portal's default URL and
/// the source of ARP probes) and its IPv6 link-local address (the source
/// of neighbour solicitations).
pub fn lan_addresses(interface: &str) -> (Option<Ipv4Addr>, Option<Ipv6Addr>) {
    let (mut v4, mut v6) = (None, None);
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for a in addrs.filter(|a| a.interface_name == interface) {
            let Some(addr) = a.address.as_ref() else {
                continue;
            };
            if let Some(sin) = addr.as_sockaddr_in() {
                v4 = v4.or(Some(sin.ip()));
            } else if let Some(sin6) = addr.as_sockaddr_in6()
                && sin6.ip().is_unicast_link_local()
            {
                v6 = v6.or(Some(sin6.ip()));
            }
        }
    }
    if v4.is_none() {
        tracing::warn!(
            interface,
            "no IPv4 address on the LAN interface; set portal.url"
        );
    }
    (v4, v6)
}
