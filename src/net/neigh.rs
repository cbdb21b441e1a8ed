//! The kernel's neighbour table (ARP and IPv6 ND): which MAC is behind an
//! IP on the LAN.
//!
//! The portal sees a shopper's IP on its TCP connection; the firewall
//! gates by MAC. `dump` reads the whole table over `NETLINK_ROUTE` (no
//! privileges needed), `parse_dump` is the pure parser behind it, and
//! `NeighbourCache` answers per-request lookups from memory, refreshing
//! with a full dump when an IP is unknown or the copy is old, but never
//! more often than a minimum interval, so a flood of unknown IPs cannot
//! turn into a flood of dumps.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

use crate::mac::MacAddr;

/// Constants from the kernel's uapi headers.
mod consts {
    pub use crate::nlwire::*;

    // <linux/rtnetlink.h>
    pub const RTM_NEWNEIGH: u16 = 28;
    pub const RTM_GETNEIGH: u16 = 30;

    // <linux/neighbour.h>
    /// `sizeof(struct ndmsg)`: family u8, pad u8, pad u16, ifindex s32,
    /// state u16, flags u8, type u8.
    pub const NDMSG_LEN: usize = 12;
    pub const NDM_IFINDEX: usize = 4;
    pub const NDM_STATE: usize = 8;
    pub const NDA_DST: u16 = 1;
    pub const NDA_LLADDR: u16 = 2;
    pub const NUD_INCOMPLETE: u16 = 0x01;
    pub const NUD_REACHABLE: u16 = 0x02;
    pub const NUD_STALE: u16 = 0x04;
    pub const NUD_FAILED: u16 = 0x20;
    pub const NUD_NOARP: u16 = 0x40;
    pub const NUD_PERMANENT: u16 = 0x80;

    // <linux/socket.h>
    pub const AF_UNSPEC: u8 = 0;
    pub const AF_INET: u8 = 2;
    pub const AF_INET6: u8 = 10;

    // <bits/socket.h> (`recv` flag): report the real length of a datagram
    // that did not fit, so truncation is detected instead of parsed.
    pub const MSG_TRUNC: i32 = 0x20;
}

use consts::*;

/// Bytes for one receive; netlink caps a dump part at 32 KiB.
const RECV_BUF_LEN: usize = 64 * 1024;

/// How often a dump the kernel marks inconsistent is restarted before its
/// result is taken as it is.
const DUMP_ATTEMPTS: usize = 3;

/// One usable neighbour entry: an IP with a resolved Ethernet address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Neighbour {
    pub ip: IpAddr,
    pub mac: MacAddr,
    pub ifindex: u32,
    /// `NUD_*` bits from <linux/neighbour.h> (e.g. 0x02 reachable, 0x04 stale).
    pub state: u16,
}

/// Dumps the IPv4 and IPv6 neighbour tables (RTM_GETNEIGH, AF_UNSPEC,
/// NLM_F_DUMP). Skips entries without a (6-byte, non-zero) link-layer
/// address or in NUD_FAILED / NUD_INCOMPLETE / NUD_NOARP state.
pub fn dump() -> io::Result<Vec<Neighbour>> {
    let mut sock = Socket::new(NETLINK_ROUTE)?;
    sock.bind_auto()?;
    sock.connect(&SocketAddr::new(0, 0))?;
    let mut rx = Vec::with_capacity(RECV_BUF_LEN);
    let mut out = Vec::new();
    for attempt in 1..=DUMP_ATTEMPTS {
        out.clear();
        let seq = attempt as u32;
        let sent = sock.send(&dump_request(seq), 0)?;
        if sent != NLMSG_HDRLEN + NDMSG_LEN {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "short netlink send",
            ));
        }
        let mut interrupted = false;
        loop {
            rx.clear();
            let len = loop {
                match sock.recv(&mut rx, MSG_TRUNC) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    other => break other?,
                }
            };
            if len > rx.capacity() {
                return Err(malformed(format!(
                    "a {len}-byte datagram does not fit the receive buffer"
                )));
            }
            let step = parse(&rx, &mut out)?;
            interrupted |= step.interrupted;
            if step.done {
                break;
            }
        }
        if !interrupted {
            break;
        }
    }
    Ok(out)
}

/// Pure: parses a buffer of netlink messages from a neighbour dump (for
/// tests and fuzzing), appending usable entries to `out`. Returns whether
/// NLMSG_DONE was seen. A kernel error in the stream becomes that
/// `io::Error`; bad lengths are `ErrorKind::InvalidData`.
pub fn parse_dump(buf: &[u8], out: &mut Vec<Neighbour>) -> Result<bool, io::Error> {
    parse(buf, out).map(|step| step.done)
}

/// The RTM_GETNEIGH dump request: header plus a zeroed ndmsg (AF_UNSPEC:
/// both tables; flags 0: not the proxy entries).
fn dump_request(seq: u32) -> Vec<u8> {
    let len = NLMSG_HDRLEN + NDMSG_LEN;
    let mut buf = Vec::with_capacity(len);
    buf.extend_from_slice(&(len as u32).to_ne_bytes());
    buf.extend_from_slice(&RTM_GETNEIGH.to_ne_bytes());
    buf.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes());
    buf.push(AF_UNSPEC);
    buf.resize(len, 0);
    buf
}

fn malformed(msg: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("malformed neighbour dump: {msg}"),
    )
}

struct Step {
    done: bool,
    interrupted: bool,
}

fn parse(buf: &[u8], out: &mut Vec<Neighbour>) -> io::Result<Step> {
    let mut step = Step {
        done: false,
        interrupted: false,
    };
    let mut rest = buf;
    while !rest.is_empty() {
        if rest.len() < NLMSG_HDRLEN {
            return Err(malformed(format!("{} trailing bytes", rest.len())));
        }
        let len = u32_at(rest, 0).unwrap_or(0) as usize;
        if len < NLMSG_HDRLEN || len > rest.len() {
            return Err(malformed(format!(
                "message length {len} with {} bytes left",
                rest.len()
            )));
        }
        let ty = u16_at(rest, 4).unwrap_or(0);
        let flags = u16_at(rest, 6).unwrap_or(0);
        let payload = &rest[NLMSG_HDRLEN..len];
        rest = &rest[align(len).min(rest.len())..];
        step.interrupted |= flags & NLM_F_DUMP_INTR != 0;
        match ty {
            NLMSG_DONE | NLMSG_ERROR => {
                // Both may carry a status: 0 or a negative errno.
                if let Some(raw) = u32_at(payload, 0).map(|v| v as i32) {
                    if raw < 0 && raw != i32::MIN {
                        return Err(io::Error::from_raw_os_error(-raw));
                    }
                } else if ty == NLMSG_ERROR {
                    return Err(malformed("short error message".into()));
                }
                if ty == NLMSG_DONE {
                    step.done = true;
                    return Ok(step);
                }
            }
            RTM_NEWNEIGH => {
                if let Some(n) = parse_neigh(payload)? {
                    out.push(n);
                }
            }
            _ => {}
        }
    }
    Ok(step)
}

/// One RTM_NEWNEIGH payload; `None` for entries we do not report.
fn parse_neigh(payload: &[u8]) -> io::Result<Option<Neighbour>> {
    if payload.len() < NDMSG_LEN {
        return Err(malformed(format!("{}-byte ndmsg", payload.len())));
    }
    let family = payload[0];
    let ifindex = u32_at(payload, NDM_IFINDEX).unwrap_or(0);
    let state = u16_at(payload, NDM_STATE).unwrap_or(0);
    let mut dst = None;
    let mut lladdr = None;
    let mut rest = &payload[NDMSG_LEN..];
    while !rest.is_empty() {
        if rest.len() < NLA_HDRLEN {
            return Err(malformed(format!(
                "{} trailing attribute bytes",
                rest.len()
            )));
        }
        let len = usize::from(u16_at(rest, 0).unwrap_or(0));
        if len < NLA_HDRLEN || len > rest.len() {
            return Err(malformed(format!(
                "attribute length {len} with {} bytes left",
                rest.len()
            )));
        }
        let value = &rest[NLA_HDRLEN..len];
        match u16_at(rest, 2).unwrap_or(0) & NLA_TYPE_MASK {
            NDA_DST => dst = Some(value),
            NDA_LLADDR => lladdr = Some(value),
            _ => {}
        }
        rest = &rest[align(len).min(rest.len())..];
    }
    if state & (NUD_FAILED | NUD_INCOMPLETE | NUD_NOARP) != 0 {
        return Ok(None);
    }
    let ip = match (family, dst) {
        (AF_INET, Some(d)) => match <[u8; 4]>::try_from(d) {
            Ok(o) => IpAddr::V4(Ipv4Addr::from(o)),
            Err(_) => return Ok(None),
        },
        (AF_INET6, Some(d)) => match <[u8; 16]>::try_from(d) {
            Ok(o) => IpAddr::V6(Ipv6Addr::from(o)),
            Err(_) => return Ok(None),
        },
        _ => return Ok(None),
    };
    let Some(Ok(mac)) = lladdr.map(<[u8; 6]>::try_from) else {
        return Ok(None);
    };
    if mac == [0; 6] {
        return Ok(None);
    }
    Ok(Some(Neighbour {
        ip,
        mac: MacAddr(mac),
        ifindex,
        state,
    }))
}

/// A source of neighbour tables: `dump` in production, a fake in tests.
type RefreshFn = dyn Fn() -> io::Result<Vec<Neighbour>> + Send + Sync;

/// IP → MAC answers from an in-memory copy of the neighbour table.
///
/// A lookup refreshes the copy with one full dump when the IP is missing
/// or the copy is older than `max_age`, unless a refresh was attempted
/// less than `min_interval` ago (then it answers from what it has: a stale
/// entry, or `None`). Concurrent lookups that all need a refresh share one
/// dump.
pub struct NeighbourCache {
    refresh: Box<RefreshFn>,
    max_age: Duration,
    min_interval: Duration,
    state: Mutex<CacheState>,
    /// Held while dumping, so concurrent misses wait for one dump instead
    /// of each starting their own; `state` is never held across a dump.
    refreshing: Mutex<()>,
}

#[derive(Default)]
struct CacheState {
    map: HashMap<IpAddr, MacAddr>,
    /// When the map last came from a successful refresh.
    refreshed_at: Option<Instant>,
    /// When a refresh was last attempted (successful or not).
    attempted_at: Option<Instant>,
    /// Counts attempts, so a waiter can tell that one happened meanwhile.
    attempts: u64,
}

impl std::fmt::Debug for NeighbourCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock_state();
        f.debug_struct("NeighbourCache")
            .field("max_age", &self.max_age)
            .field("min_interval", &self.min_interval)
            .field("entries", &state.map.len())
            .field("refreshed_at", &state.refreshed_at)
            .finish()
    }
}

impl NeighbourCache {
    /// A cache over the kernel's table (`dump`).
    pub fn new(max_age: Duration, min_interval: Duration) -> Self {
        Self::with_refresh(max_age, min_interval, dump)
    }

    /// A cache over any table source; tests inject fakes here.
    pub fn with_refresh<F>(max_age: Duration, min_interval: Duration, refresh: F) -> Self
    where
        F: Fn() -> io::Result<Vec<Neighbour>> + Send + Sync + 'static,
    {
        Self {
            refresh: Box::new(refresh),
            max_age,
            min_interval,
            state: Mutex::new(CacheState::default()),
            refreshing: Mutex::new(()),
        }
    }

    /// The MAC behind `ip` (an IPv4-mapped IPv6 address is looked up as
    /// the IPv4 address).
    pub fn lookup(&self, ip: IpAddr) -> Option<MacAddr> {
        self.lookup_at(ip, Instant::now())
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, CacheState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lookup_at(&self, ip: IpAddr, now: Instant) -> Option<MacAddr> {
        let ip = ip.to_canonical();
        let seen_attempts = {
            let state = self.lock_state();
            let cached = state.map.get(&ip).copied();
            let fresh = state
                .refreshed_at
                .is_some_and(|t| now.saturating_duration_since(t) <= self.max_age);
            if fresh && cached.is_some() {
                return cached;
            }
            let too_soon = state
                .attempted_at
                .is_some_and(|t| now.saturating_duration_since(t) < self.min_interval);
            if too_soon {
                return cached;
            }
            state.attempts
        };
        let _one_dump = self.refreshing.lock().unwrap_or_else(|e| e.into_inner());
        {
            let state = self.lock_state();
            if state.attempts != seen_attempts {
                // Someone else refreshed while we waited: use their result.
                return state.map.get(&ip).copied();
            }
        }
        let result = (self.refresh)();
        let mut state = self.lock_state();
        state.attempts += 1;
        state.attempted_at = Some(now);
        match result {
            Ok(table) => {
                state.map = build_map(table);
                state.refreshed_at = Some(now);
            }
            Err(e) => {
                tracing::warn!(error = %e, "neighbour table refresh failed; answering from the old copy")
            }
        }
        state.map.get(&ip).copied()
    }
}

/// IP → MAC; when an IP appears twice (on two interfaces), the entry in
/// the more trustworthy state wins.
fn build_map(table: Vec<Neighbour>) -> HashMap<IpAddr, MacAddr> {
    fn rank(state: u16) -> u8 {
        if state & (NUD_REACHABLE | NUD_PERMANENT) != 0 {
            2
        } else if state & NUD_STALE != 0 {
            0
        } else {
            1
        }
    }
    let mut best: HashMap<IpAddr, (u8, MacAddr)> = HashMap::with_capacity(table.len());
    for n in table {
        let r = rank(n.state);
        let ip = n.ip.to_canonical();
        match best.get(&ip) {
            Some(&(have, _)) if have >= r => {}
            _ => {
                best.insert(ip, (r, n.mac));
            }
        }
    }
    best.into_iter().map(|(ip, (_, mac))| (ip, mac)).collect()
}

#[cfg(test)]
mod tests;
