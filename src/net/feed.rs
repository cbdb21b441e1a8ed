//! From the LAN capture to the presence shell: frames are parsed here
//! (`wire`), counted, and handed on as sightings; the shell's probes go
//! out on the same socket ([`CaptureProber`]).
//!
//! The socket's kernel filter lets only DHCP, ARP and neighbour discovery
//! through; a malformed frame is dropped and counted by kind, never fatal.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::capture::Capture;
use super::wire;
use crate::mac::MacAddr;
use crate::presence::{PresenceShell, Prober, SightingKind};
use crate::uplink::event::Event;

/// Most frames handled before their events are flushed together.
const MAX_BATCH: usize = 256;
/// How often the kernel's drop counter is read.
const DROPS_EVERY: Duration = Duration::from_secs(1);

/// Probes through the capture socket, from the box's own LAN addresses.
pub struct CaptureProber {
    pub capture: Arc<Capture>,
    /// The LAN interface's IPv4 address: the sender of ARP probes.
    pub own_v4: Option<Ipv4Addr>,
    /// Its IPv6 link-local address: the source of neighbour solicitations.
    pub own_v6: Option<Ipv6Addr>,
}

impl Prober for CaptureProber {
    fn probe(&self, mac: MacAddr, ip: IpAddr) -> bool {
        let own = self.capture.interface_mac();
        let frame = match (ip, self.own_v4, self.own_v6) {
            (IpAddr::V4(target), Some(src), _) => wire::arp_probe(own, src, mac, target),
            (IpAddr::V6(target), _, Some(src)) => wire::nd_solicit(own, src, mac, target),
            _ => return false,
        };
        match self.capture.send(&frame) {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(%mac, "probe not sent: {e}");
                false
            }
        }
    }
}

/// What a DHCPACK that the box did not send counts as: a guest posing as
/// the DHCP server, naming any device it likes.
pub const FOREIGN_DHCP_SERVER: &str = "foreign_dhcp_server";

/// One frame from the LAN: parsed, counted, and its sighting handed to
/// the shell (the box's own frames and group addresses are not devices).
/// `outgoing`: the box sent it (the capture's `PACKET_OUTGOING`). A DHCP
/// server's answer is believed only then: the box's own DHCP server is
/// the only one on a guest LAN, and anyone else's "ACK" is a forgery.
pub fn frame(
    shell: &PresenceShell,
    own_mac: MacAddr,
    bytes: &[u8],
    outgoing: bool,
    events: &mut Vec<Event>,
) {
    shell.count(|s| s.frames += 1);
    let sighting = match wire::parse_frame(bytes) {
        Ok(Some(s)) if matches!(s.kind, SightingKind::DhcpAck { .. }) && !outgoing => {
            return shell.count(|s| *s.malformed.entry(FOREIGN_DHCP_SERVER).or_default() += 1);
        }
        Ok(Some(s)) if s.mac != own_mac && s.mac.is_unicast_client() => s,
        Ok(_) => return shell.count(|s| s.ignored += 1),
        Err(e) => {
            let kind = e.kind();
            return shell.count(|s| *s.malformed.entry(kind).or_default() += 1);
        }
    };
    shell.count(|s| s.sightings += 1);
    shell.observe(&sighting, events);
}

/// Reads frames until shutdown. Frames already queued are handled
/// together and their events flushed once (group commit): one fsync for a
/// burst of arrivals instead of one each, with no added wait for a lone
/// frame.
pub async fn capture_loop(
    capture: Arc<Capture>,
    shell: Arc<PresenceShell>,
    shutdown: CancellationToken,
) {
    let own_mac = capture.interface_mac();
    let mut buf = vec![0u8; 2048];
    let mut events = Vec::new();
    let mut drops_read = Instant::now();
    // `recv` never reports more than the buffer holds.
    let take = |f: super::capture::Frame, buf: &[u8], events: &mut Vec<Event>| {
        frame(
            &shell,
            own_mac,
            &buf[..f.len.min(buf.len())],
            f.outgoing,
            events,
        )
    };
    loop {
        let first = tokio::select! {
            _ = shutdown.cancelled() => return,
            f = capture.recv(&mut buf) => f,
        };
        match first {
            Ok(f) => take(f, &buf, &mut events),
            Err(e) => {
                tracing::warn!("capture: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        }
        for _ in 1..MAX_BATCH {
            // Take what is already there, without waiting for more.
            let more = tokio::select! {
                biased;
                f = capture.recv(&mut buf) => f,
                _ = std::future::ready(()) => break,
            };
            match more {
                Ok(f) => take(f, &buf, &mut events),
                Err(_) => break,
            }
        }
        shell.store_events(&mut events);
        if drops_read.elapsed() >= DROPS_EVERY {
            drops_read = Instant::now();
            if let Ok(st) = capture.stats() {
                shell.count(|s| s.kernel_drops = st.drops);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::wire::samples::{DHCP_ACK, DHCP_DISCOVER_DHCLIENT};

    #[test]
    fn only_the_box_s_own_dhcp_answers_are_believed() {
        let r = crate::app::rig::rig();
        let shell = &r.app.presence;
        let own = MacAddr([0x02, 0, 0, 0, 0, 0xfe]);
        let mut events = Vec::new();
        // Another station sends a DHCPACK: nothing is learnt from it.
        frame(shell, own, DHCP_ACK, false, &mut events);
        assert_eq!(shell.machine().devices().count(), 0);
        assert_eq!(shell.stats().malformed.get(FOREIGN_DHCP_SERVER), Some(&1));
        // The box's own DHCP server's ACK is a sighting of the client.
        frame(shell, own, DHCP_ACK, true, &mut events);
        assert_eq!(shell.machine().devices().count(), 1);
        // A client's own DISCOVER is a sighting wherever it comes from.
        frame(shell, own, DHCP_DISCOVER_DHCLIENT, false, &mut events);
        assert_eq!(shell.stats().sightings, 2);
    }
}
