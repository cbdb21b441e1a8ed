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

use crate::net::MacAddr;

/// Constants from the kernel's uapi headers.
mod consts {
    pub use crate::net::nlwire::*;

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
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn attr(ty: u16, value: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(((4 + value.len()) as u16).to_ne_bytes());
        b.extend(ty.to_ne_bytes());
        b.extend(value);
        b.resize(align(b.len()), 0);
        b
    }

    fn msg(ty: u16, flags: u16, payload: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(((16 + payload.len()) as u32).to_ne_bytes());
        b.extend(ty.to_ne_bytes());
        b.extend(flags.to_ne_bytes());
        b.extend(1u32.to_ne_bytes());
        b.extend(4242u32.to_ne_bytes());
        b.extend(payload);
        b.resize(align(b.len()), 0);
        b
    }

    fn neigh_msg(
        family: u8,
        ifindex: i32,
        state: u16,
        dst: Option<&[u8]>,
        lladdr: Option<&[u8]>,
    ) -> Vec<u8> {
        let mut p = vec![family, 0, 0, 0];
        p.extend(ifindex.to_ne_bytes());
        p.extend(state.to_ne_bytes());
        p.extend([0, 1]); // flags, type
        if let Some(d) = dst {
            p.extend(attr(NDA_DST, d));
        }
        p.extend(attr(8, &7u32.to_ne_bytes())); // NDA_IFINDEX: ignored
        if let Some(l) = lladdr {
            p.extend(attr(NDA_LLADDR, l));
        }
        msg(RTM_NEWNEIGH, 0x2, &p)
    }

    const MAC1: [u8; 6] = [0x02, 0, 0x5e, 0, 0, 1];
    const MAC2: [u8; 6] = [0xda, 0xa1, 0x19, 0, 0, 2];

    fn sample() -> Vec<u8> {
        let v6: Ipv6Addr = "fe80::1c2d:3eff:fe4f:5a6b".parse().unwrap();
        let mut b = neigh_msg(
            AF_INET,
            3,
            NUD_REACHABLE,
            Some(&[192, 168, 7, 20]),
            Some(&MAC1),
        );
        b.extend(neigh_msg(
            AF_INET6,
            3,
            NUD_STALE,
            Some(&v6.octets()),
            Some(&MAC2),
        ));
        // Skipped: no lladdr, failed, incomplete, noarp, odd lladdr length, bridge family.
        b.extend(neigh_msg(
            AF_INET,
            3,
            NUD_STALE,
            Some(&[192, 168, 7, 21]),
            None,
        ));
        b.extend(neigh_msg(
            AF_INET,
            3,
            NUD_FAILED,
            Some(&[192, 168, 7, 22]),
            Some(&MAC1),
        ));
        b.extend(neigh_msg(
            AF_INET,
            3,
            NUD_INCOMPLETE,
            Some(&[192, 168, 7, 23]),
            Some(&MAC1),
        ));
        b.extend(neigh_msg(
            AF_INET,
            1,
            NUD_NOARP,
            Some(&[127, 0, 0, 1]),
            Some(&[0; 6]),
        ));
        b.extend(neigh_msg(
            AF_INET,
            3,
            NUD_STALE,
            Some(&[192, 168, 7, 24]),
            Some(&[1, 2, 3, 4]),
        ));
        b.extend(neigh_msg(7, 3, NUD_REACHABLE, None, Some(&MAC1)));
        b
    }

    #[test]
    fn parses_v4_and_v6_and_skips_unusable_entries() {
        let mut out = Vec::new();
        let mut buf = sample();
        assert!(!parse_dump(&buf, &mut out).unwrap());
        buf.extend(msg(NLMSG_DONE, 0x2, &0i32.to_ne_bytes()));
        out.clear();
        assert!(parse_dump(&buf, &mut out).unwrap());
        assert_eq!(
            out,
            vec![
                Neighbour {
                    ip: "192.168.7.20".parse().unwrap(),
                    mac: MacAddr(MAC1),
                    ifindex: 3,
                    state: NUD_REACHABLE,
                },
                Neighbour {
                    ip: "fe80::1c2d:3eff:fe4f:5a6b".parse().unwrap(),
                    mac: MacAddr(MAC2),
                    ifindex: 3,
                    state: NUD_STALE,
                },
            ]
        );
    }

    #[test]
    fn done_ends_parsing_and_errors_surface() {
        let mut buf = msg(NLMSG_DONE, 0x2, &0i32.to_ne_bytes());
        buf.extend(sample()); // after DONE: not ours to read
        let mut out = Vec::new();
        assert!(parse_dump(&buf, &mut out).unwrap());
        assert!(out.is_empty());
        // A DONE without a status word (older kernels) is fine too.
        assert!(parse_dump(&msg(NLMSG_DONE, 0x2, &[]), &mut out).unwrap());
        let err = parse_dump(&msg(NLMSG_ERROR, 0, &(-1i32).to_ne_bytes()), &mut out).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(1));
        let err = parse_dump(&msg(NLMSG_DONE, 0, &(-16i32).to_ne_bytes()), &mut out).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(16));
        let err = parse_dump(&msg(NLMSG_ERROR, 0, &[1]), &mut out).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn truncated_buffers_fail_without_panicking() {
        let buf = sample();
        for cut in 1..buf.len() {
            let mut out = Vec::new();
            let r = parse_dump(&buf[..cut], &mut out);
            // A cut on a message boundary is a valid (shorter) buffer.
            if let Err(e) = r {
                assert_eq!(e.kind(), io::ErrorKind::InvalidData);
            }
            // Same with an honest header over a cut payload.
            let mut honest = buf[..cut.max(16)].to_vec();
            if honest.len() >= 16 {
                let n = honest.len() as u32;
                honest[..4].copy_from_slice(&n.to_ne_bytes());
                let _ = parse_dump(&honest, &mut out);
            }
        }
        // Lying lengths.
        let mut lying = sample();
        lying[..4].copy_from_slice(&100_000u32.to_ne_bytes());
        assert!(parse_dump(&lying, &mut Vec::new()).is_err());
        let mut zero = sample();
        zero[..4].copy_from_slice(&0u32.to_ne_bytes());
        assert!(parse_dump(&zero, &mut Vec::new()).is_err());
        let mut bad_attr = sample();
        bad_attr[16 + 12..16 + 14].copy_from_slice(&200u16.to_ne_bytes());
        assert!(parse_dump(&bad_attr, &mut Vec::new()).is_err());
        // A short ndmsg.
        assert!(parse_dump(&msg(RTM_NEWNEIGH, 0, &[2, 0, 0]), &mut Vec::new()).is_err());
    }

    #[test]
    fn garbage_never_panics() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let template = sample();
        for _ in 0..20_000 {
            let mut buf = if next() % 2 == 0 {
                template.clone()
            } else {
                (0..(next() % 128) as usize).map(|_| next() as u8).collect()
            };
            for _ in 0..next() % 4 {
                if buf.is_empty() {
                    break;
                }
                let i = (next() as usize) % buf.len();
                buf[i] = next() as u8;
            }
            let _ = parse_dump(&buf, &mut Vec::new());
        }
    }

    #[test]
    fn request_is_a_full_ndmsg_dump() {
        let r = dump_request(7);
        assert_eq!(r.len(), 28);
        assert_eq!(u32_at(&r, 0), Some(28));
        assert_eq!(u16_at(&r, 4), Some(RTM_GETNEIGH));
        assert_eq!(u16_at(&r, 6), Some(NLM_F_REQUEST | NLM_F_DUMP));
        assert_eq!(u32_at(&r, 8), Some(7));
        assert!(r[16..].iter().all(|&b| b == 0));
    }

    /// A fake table whose contents and refresh count the test controls.
    #[derive(Clone, Default)]
    struct Fake {
        table: Arc<Mutex<Vec<Neighbour>>>,
        calls: Arc<AtomicUsize>,
        fail: Arc<std::sync::atomic::AtomicBool>,
    }

    impl Fake {
        fn set(&self, entries: &[(&str, [u8; 6])]) {
            *self.table.lock().unwrap() = entries
                .iter()
                .map(|(ip, mac)| Neighbour {
                    ip: ip.parse().unwrap(),
                    mac: MacAddr(*mac),
                    ifindex: 2,
                    state: NUD_REACHABLE,
                })
                .collect();
        }

        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }

        fn cache(&self, max_age: Duration, min_interval: Duration) -> NeighbourCache {
            let f = self.clone();
            NeighbourCache::with_refresh(max_age, min_interval, move || {
                f.calls.fetch_add(1, Ordering::SeqCst);
                if f.fail.load(Ordering::SeqCst) {
                    return Err(io::Error::other("injected"));
                }
                Ok(f.table.lock().unwrap().clone())
            })
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cache_refreshes_on_miss_and_age_but_rate_limits() {
        let fake = Fake::default();
        fake.set(&[("10.0.0.2", MAC1)]);
        let cache = fake.cache(Duration::from_secs(30), Duration::from_secs(1));
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);

        assert_eq!(cache.lookup_at(ip("10.0.0.2"), at(0)), Some(MacAddr(MAC1)));
        assert_eq!(fake.calls(), 1);
        // A hit on a fresh copy costs nothing.
        assert_eq!(
            cache.lookup_at(ip("10.0.0.2"), at(500)),
            Some(MacAddr(MAC1))
        );
        assert_eq!(fake.calls(), 1);
        // A flood of unknown IPs within the interval: no dump storm.
        fake.set(&[("10.0.0.2", MAC1), ("10.0.0.3", MAC2)]);
        for i in 0..1000u32 {
            let unknown = IpAddr::V4(Ipv4Addr::from(0x0a01_0000 + i));
            assert_eq!(cache.lookup_at(unknown, at(900)), None);
        }
        assert_eq!(cache.lookup_at(ip("10.0.0.3"), at(999)), None);
        assert_eq!(fake.calls(), 1);
        // Once the interval has passed, a miss refreshes and finds it.
        assert_eq!(
            cache.lookup_at(ip("10.0.0.3"), at(1000)),
            Some(MacAddr(MAC2))
        );
        assert_eq!(fake.calls(), 2);
        assert_eq!(cache.lookup_at(ip("10.9.9.9"), at(1500)), None);
        assert_eq!(fake.calls(), 2);
        // A known IP is answered from the copy while it is at most max_age
        // old (29 s here), then refreshed (the MAC behind it may change).
        fake.set(&[("10.0.0.2", MAC2)]);
        assert_eq!(
            cache.lookup_at(ip("10.0.0.2"), at(30_000)),
            Some(MacAddr(MAC1))
        );
        assert_eq!(fake.calls(), 2);
        assert_eq!(
            cache.lookup_at(ip("10.0.0.2"), at(31_001)),
            Some(MacAddr(MAC2))
        );
        assert_eq!(fake.calls(), 3);
        // Entries that left the table are gone after a refresh.
        assert_eq!(cache.lookup_at(ip("10.0.0.3"), at(32_500)), None);
        assert_eq!(fake.calls(), 4);
    }

    #[test]
    fn cache_keeps_old_answers_when_refresh_fails() {
        let fake = Fake::default();
        fake.set(&[("10.0.0.2", MAC1)]);
        let cache = fake.cache(Duration::from_secs(10), Duration::from_secs(1));
        let t0 = Instant::now();
        assert_eq!(cache.lookup_at(ip("10.0.0.2"), t0), Some(MacAddr(MAC1)));
        fake.fail.store(true, Ordering::SeqCst);
        let later = t0 + Duration::from_secs(20);
        assert_eq!(cache.lookup_at(ip("10.0.0.2"), later), Some(MacAddr(MAC1)));
        assert_eq!(fake.calls(), 2);
        // Failed attempts are rate-limited like successful ones.
        assert_eq!(
            cache.lookup_at(ip("10.0.0.2"), later + Duration::from_millis(10)),
            Some(MacAddr(MAC1))
        );
        assert_eq!(fake.calls(), 2);
    }

    #[test]
    fn mapped_v6_is_looked_up_as_v4() {
        let fake = Fake::default();
        fake.set(&[("192.168.7.20", MAC1), ("::ffff:192.168.7.21", MAC2)]);
        let cache = fake.cache(Duration::from_secs(30), Duration::from_secs(1));
        assert_eq!(cache.lookup(ip("::ffff:192.168.7.20")), Some(MacAddr(MAC1)));
        assert_eq!(cache.lookup(ip("192.168.7.21")), Some(MacAddr(MAC2)));
        assert_eq!(fake.calls(), 1);
    }

    #[test]
    fn duplicate_ips_prefer_reachable_entries() {
        let n = |mac, state| Neighbour {
            ip: ip("10.0.0.9"),
            mac: MacAddr(mac),
            ifindex: 1,
            state,
        };
        let map = build_map(vec![
            n(MAC1, NUD_STALE),
            n(MAC2, NUD_REACHABLE),
            n(MAC1, NUD_STALE),
        ]);
        assert_eq!(map[&ip("10.0.0.9")], MacAddr(MAC2));
    }

    #[test]
    fn concurrent_misses_share_one_dump() {
        let fake = Fake::default();
        fake.set(&[("10.0.0.2", MAC1)]);
        let slow = fake.clone();
        let cache = Arc::new(NeighbourCache::with_refresh(
            Duration::from_secs(30),
            Duration::from_secs(3600),
            move || {
                slow.calls.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(50));
                Ok(slow.table.lock().unwrap().clone())
            },
        ));
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let cache = Arc::clone(&cache);
                std::thread::spawn(move || cache.lookup(IpAddr::V4(Ipv4Addr::new(10, 0, 1, i))))
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), None);
        }
        assert_eq!(fake.calls(), 1);
        assert_eq!(cache.lookup(ip("10.0.0.2")), Some(MacAddr(MAC1)));
        assert_eq!(fake.calls(), 1);
    }

    #[test]
    fn live_dump_works_unprivileged() {
        let table = dump().expect("RTM_GETNEIGH dump");
        for n in &table {
            assert_ne!(n.mac.0, [0; 6], "{n:?}");
            assert_eq!(
                n.state & (NUD_FAILED | NUD_INCOMPLETE | NUD_NOARP),
                0,
                "{n:?}"
            );
        }
        eprintln!("live neighbour table: {} usable entries", table.len());
    }
}
