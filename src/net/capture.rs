//! `Capture`: the guest LAN's packet socket. It receives the frames
//! presence reads (see `wire::bpf`) and sends the box's ARP and ND probes.
//!
//! An `AF_PACKET`/`SOCK_RAW` socket bound to one interface by index, with a
//! classic BPF program attached in the kernel so that a store's video
//! streams and app updates are never copied to user space. Reads go through
//! Tokio's `AsyncFd`: one task, no thread per packet.
//!
//! # Why this module has unsafe code
//!
//! It is the crate's only unsafe code (`lib.rs` denies it everywhere
//! else). A packet socket needs `sockaddr_ll` (to bind by interface index
//! and to learn whether a frame was outgoing), `SO_ATTACH_FILTER` and
//! `PACKET_STATISTICS`, none of which std covers, and which socket2 and
//! nix cover only in part. Each unsafe block is a single libc call on
//! memory owned by the calling function, and says why it is sound.
//!
//! # Behaviour worth knowing
//!
//! - The socket is created with protocol 0, which receives nothing; the
//!   filter is attached, and only then is it bound to `ETH_P_ALL` on the
//!   interface. So no unfiltered frame can be queued; anything queued
//!   anyway is drained before `open` returns.
//! - Frames the host itself sends on the interface (dnsmasq's DHCPACKs)
//!   are received too, with `Frame::outgoing` set. Their UDP checksums are
//!   usually not filled in yet (checksum offload).
//! - The kernel strips 802.1Q tags before packet sockets see a frame, so
//!   VLAN handling in the filter and parser is for the rare driver that
//!   does not.
//! - A frame longer than the caller's buffer is skipped and counted in
//!   [`CaptureStats::truncated`]; [`Capture::recv`] never reports more
//!   bytes than the buffer holds.
#![allow(unsafe_code)]

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use crate::mac::MacAddr;
use crate::net::wire::bpf;

/// Which frames reach user space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// Only DHCPv4, ARP, ICMPv6 RS/RA/NS/NA/redirect (133..=137) and
    /// DHCPv6 reach user space (`wire::bpf::PRESENCE`).
    Presence,
    /// Everything (the benchmark's baseline, and tests that send).
    All,
}

/// One received frame: its bytes are `buf[..len]` of the buffer passed to
/// [`Capture::recv`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// Bytes received; never more than the buffer's length.
    pub len: usize,
    /// Sent by this host (`PACKET_OUTGOING`), e.g. a DHCPACK from the local
    /// DHCP server, rather than received from the LAN.
    pub outgoing: bool,
}

/// Counters since the socket was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// Frames that passed the filter, including the dropped ones.
    pub packets: u64,
    /// Frames the kernel dropped because the socket's buffer was full.
    pub drops: u64,
    /// Frames skipped because they were longer than the read buffer.
    pub truncated: u64,
}

/// A packet socket on one interface. Must be opened inside a Tokio runtime
/// with I/O enabled.
pub struct Capture {
    fd: AsyncFd<OwnedFd>,
    ifindex: u32,
    mac: MacAddr,
    /// The kernel resets its counters on every read: the running totals.
    stats: Mutex<CaptureStats>,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture")
            .field("fd", &self.fd.get_ref().as_raw_fd())
            .field("ifindex", &self.ifindex)
            .field("mac", &self.mac)
            .finish()
    }
}

/// Frames drained after bind are at most this many (a busy link could
/// otherwise keep `open` draining forever).
const MAX_DRAIN: usize = 4096;
/// Longest interface name, without the NUL (IFNAMSIZ - 1).
const MAX_IFNAME: usize = 15;

fn eth_p_all_be() -> u16 {
    (libc::ETH_P_ALL as u16).to_be()
}

/// The size of `T` as the kernel's `socklen_t`.
fn socklen<T>() -> libc::socklen_t {
    mem::size_of::<T>() as libc::socklen_t
}

/// Turns a libc return value into a `Result`, reading `errno` on -1.
fn check(ret: libc::ssize_t) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

/// Socket receive buffer asked for (the kernel may grant less).
const RECV_BUFFER_BYTES: usize = 4 * 1024 * 1024;

impl Capture {
    /// Opens a packet socket on `interface` (an Ethernet interface such as
    /// `br-lan`) with `filter` attached. Needs `CAP_NET_RAW`.
    pub fn open(interface: &str, filter: Filter) -> io::Result<Capture> {
        if interface.is_empty()
            || interface.len() > MAX_IFNAME
            || interface.bytes().any(|b| b == 0 || b == b'/')
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{interface:?} is not an interface name"),
            ));
        }
        let ifindex = nix::net::if_::if_nametoindex(interface).map_err(|e| {
            io::Error::new(
                io::Error::from(e).kind(),
                format!("no interface {interface:?}: {e}"),
            )
        })?;
        let fd = socket()?;
        if filter == Filter::Presence {
            attach_filter(fd.as_raw_fd(), &bpf::PRESENCE)?;
        }
        bind(fd.as_raw_fd(), ifindex)?;
        // Room for a burst of arrivals (a bus unloading at the door) while
        // the reader is busy with an fsync; the kernel caps it at
        // net.core.rmem_max, which is fine.
        if let Err(e) =
            nix::sys::socket::setsockopt(&fd, nix::sys::socket::sockopt::RcvBuf, &RECV_BUFFER_BYTES)
        {
            tracing::debug!("capture: keeping the default receive buffer ({e})");
        }
        let mac = interface_mac(fd.as_raw_fd(), interface)?;
        drain(fd.as_raw_fd())?;
        // SAFETY: `fd` is a valid, open socket, and the `AsyncFd` owns it
        // from here on: it stays open, and `OwnedFd::as_raw_fd` always
        // returns the same descriptor, until the `AsyncFd` is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE)? };
        Ok(Capture {
            fd,
            ifindex,
            mac,
            stats: Mutex::new(CaptureStats::default()),
        })
    }

    /// Waits for the next frame and copies it into `buf`. A frame longer
    /// than `buf` is skipped (and counted), so `Frame::len <= buf.len()`.
    /// A buffer of 2048 bytes holds any frame of a 1500-byte MTU LAN.
    ///
    /// An error such as `ENETDOWN` (the interface went down) is reported
    /// once; the socket stays bound, and frames flow again when the
    /// interface comes back up. After the interface is deleted nothing
    /// more arrives: open a new `Capture`. Cancel-safe: a frame is either
    /// returned or left queued.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<Frame> {
        loop {
            let mut ready = self.fd.readable().await?;
            match ready.try_io(|fd| recv_frame(fd.as_raw_fd(), buf)) {
                Ok(Ok(Some(frame))) => return Ok(frame),
                Ok(Ok(None)) => self.count_truncated(),
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(Err(e)) => return Err(e),
                // Not ready after all: readiness was cleared, wait again.
                Err(_would_block) => {}
            }
        }
    }

    /// Sends one complete Ethernet frame (as built by `wire::arp_probe` or
    /// `wire::nd_solicit`) on the interface. Does not wait: when the
    /// device's queue is full this fails with `WouldBlock`, and the caller
    /// drops the probe.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        let fd = self.fd.get_ref().as_raw_fd();
        // SAFETY: `frame` is a live slice; the kernel reads at most
        // `frame.len()` bytes from it and keeps no reference.
        let ret = unsafe { libc::send(fd, frame.as_ptr().cast(), frame.len(), 0) };
        let sent = check(ret)?;
        if sent != frame.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("sent {sent} of {} bytes", frame.len()),
            ));
        }
        Ok(())
    }

    /// Counters since `open`. Reading the kernel's counters resets them;
    /// the totals are kept here, so this can be called from anywhere.
    pub fn stats(&self) -> io::Result<CaptureStats> {
        let mut kernel = libc::tpacket_stats {
            tp_packets: 0,
            tp_drops: 0,
        };
        let mut len = socklen::<libc::tpacket_stats>();
        // SAFETY: `kernel` and `len` are live locals; `len` tells the kernel
        // how many bytes of `kernel` it may write.
        let ret = unsafe {
            libc::getsockopt(
                self.fd.get_ref().as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&raw mut kernel).cast(),
                &mut len,
            )
        };
        check(ret as libc::ssize_t)?;
        let mut totals = self.lock_stats();
        totals.packets += u64::from(kernel.tp_packets);
        totals.drops += u64::from(kernel.tp_drops);
        Ok(*totals)
    }

    /// The interface's hardware address: the source of the box's probes,
    /// and the address whose sightings the caller ignores.
    pub fn interface_mac(&self) -> MacAddr {
        self.mac
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    fn lock_stats(&self) -> std::sync::MutexGuard<'_, CaptureStats> {
        // The counters stay consistent even if a holder panicked.
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn count_truncated(&self) {
        self.lock_stats().truncated += 1;
    }
}

/// A nonblocking, close-on-exec packet socket that receives nothing yet
/// (protocol 0) until it is bound.
fn socket() -> io::Result<OwnedFd> {
    // SAFETY: no pointers are passed.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    check(fd as libc::ssize_t)?;
    // SAFETY: `fd` was just returned by socket(2), is valid, and nothing
    // else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn attach_filter(fd: RawFd, program: &[libc::sock_filter]) -> io::Result<()> {
    let prog = libc::sock_fprog {
        len: u16::try_from(program.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "BPF program too long"))?,
        // The kernel only reads the program (it copies it).
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points at `program`, which outlives the call, and its
    // `len` is the program's length; the kernel copies both.
    let ret = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&raw const prog).cast(),
            socklen::<libc::sock_fprog>(),
        )
    };
    check(ret as libc::ssize_t).map(drop)
}

fn bind(fd: RawFd, ifindex: u32) -> io::Result<()> {
    let ifindex = i32::try_from(ifindex)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface index too large"))?;
    // SAFETY: sockaddr_ll is plain data for which all-zero bytes are valid.
    let mut addr: libc::sockaddr_ll = unsafe { mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = eth_p_all_be();
    addr.sll_ifindex = ifindex;
    // SAFETY: `addr` is a live, initialised sockaddr_ll and the length
    // passed is its size.
    let ret = unsafe { libc::bind(fd, (&raw const addr).cast(), socklen::<libc::sockaddr_ll>()) };
    check(ret as libc::ssize_t).map(drop)
}

/// The bound interface's hardware address, from getsockname(2) (the kernel
/// fills in the device's type and address); an error for anything but
/// Ethernet, whose frames the parsers could not read.
fn interface_mac(fd: RawFd, interface: &str) -> io::Result<MacAddr> {
    // SAFETY: sockaddr_ll is plain data for which all-zero bytes are valid.
    let mut addr: libc::sockaddr_ll = unsafe { mem::zeroed() };
    let mut len = socklen::<libc::sockaddr_ll>();
    // SAFETY: `addr` and `len` are live locals and `len` is the size of
    // `addr`, so the kernel writes within it.
    let ret = unsafe { libc::getsockname(fd, (&raw mut addr).cast(), &mut len) };
    check(ret as libc::ssize_t)?;
    if addr.sll_hatype != libc::ARPHRD_ETHER || addr.sll_halen != 6 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{interface:?} is not an Ethernet interface (ARPHRD type {})",
                addr.sll_hatype
            ),
        ));
    }
    let a = addr.sll_addr;
    Ok(MacAddr([a[0], a[1], a[2], a[3], a[4], a[5]]))
}

/// One frame into `buf`: `Ok(None)` if it did not fit (it is consumed
/// anyway), `Err(WouldBlock)` if none is queued.
fn recv_frame(fd: RawFd, buf: &mut [u8]) -> io::Result<Option<Frame>> {
    // SAFETY: sockaddr_ll is plain data for which all-zero bytes are valid.
    let mut addr: libc::sockaddr_ll = unsafe { mem::zeroed() };
    let mut addr_len = socklen::<libc::sockaddr_ll>();
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf` and at
    // most `addr_len` bytes into `addr`, both live for the call. MSG_TRUNC
    // only changes the return value (the frame's real length).
    let ret = unsafe {
        libc::recvfrom(
            fd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_TRUNC,
            (&raw mut addr).cast(),
            &mut addr_len,
        )
    };
    let len = check(ret)?;
    if len > buf.len() {
        return Ok(None);
    }
    Ok(Some(Frame {
        len,
        outgoing: addr.sll_pkttype == libc::PACKET_OUTGOING,
    }))
}

/// Reads and discards whatever is queued, without waiting.
fn drain(fd: RawFd) -> io::Result<()> {
    let mut scratch = [0u8; 64];
    for _ in 0..MAX_DRAIN {
        match recv_frame(fd, &mut scratch) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::process::Command;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::net::wire::{self, samples};
    use crate::presence::SightingKind;

    fn is_root() -> bool {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Uid:"))
                    .map(|ids| ids.split_whitespace().nth(1) == Some("0"))
            })
            .unwrap_or(false)
    }

    fn ip(args: &[&str]) -> bool {
        Command::new("ip")
            .args(args)
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    /// A veth pair in the host namespace with names unique to this process
    /// and test (`sgcap<pid>a<n>`/`b<n>`), deleted in `Drop`, also when the
    /// test panics.
    struct Veth {
        a: String,
        b: String,
    }

    impl Veth {
        fn new() -> Veth {
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let pid = std::process::id();
            let veth = Veth {
                a: format!("sgc{pid}a{n}"),
                b: format!("sgc{pid}b{n}"),
            };
            assert!(veth.a.len() <= MAX_IFNAME);
            // Leftovers of these names (a crashed earlier run with our pid).
            let _ = Command::new("ip")
                .args(["link", "del", &veth.a])
                .stderr(std::process::Stdio::null())
                .status();
            assert!(ip(&[
                "link", "add", &veth.a, "type", "veth", "peer", "name", &veth.b
            ]));
            for name in [&veth.a, &veth.b] {
                // No IPv6 link-local address: keeps the kernel's own ND and
                // MLD chatter off the test link.
                assert!(ip(&["link", "set", name, "addrgenmode", "none"]));
                assert!(ip(&["link", "set", name, "up"]));
            }
            veth
        }
    }

    impl Drop for Veth {
        fn drop(&mut self) {
            // Deleting one end deletes the pair.
            let _ = Command::new("ip").args(["link", "del", &self.a]).status();
        }
    }

    #[test]
    fn open_rejects_bad_names() {
        for name in ["", "a/b", "with\0nul", "sixteen-chars-xx"] {
            let err = Capture::open(name, Filter::All).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{name:?}");
        }
        let err = Capture::open("sgnosuchif0", Filter::All).unwrap_err();
        assert_ne!(err.kind(), io::ErrorKind::InvalidInput);
    }

    /// Needs root: a veth pair, a `Presence` capture on one end, an `All`
    /// capture sending on the other. ARP gets through the kernel filter, a
    /// DNS query does not; the sender's own frames are seen as outgoing by
    /// a third socket.
    #[tokio::test]
    async fn kernel_filter_on_a_veth_pair() {
        if !is_root() {
            println!("skipped: kernel_filter_on_a_veth_pair needs root");
            return;
        }
        let veth = Veth::new();
        let listener = Capture::open(&veth.a, Filter::Presence).expect("open listener");
        let sender = Capture::open(&veth.b, Filter::All).expect("open sender");
        let watcher = Capture::open(&veth.b, Filter::All).expect("open watcher");
        assert_ne!(listener.ifindex(), sender.ifindex());
        assert_eq!(sender.ifindex(), watcher.ifindex());
        assert!(listener.interface_mac().is_unicast_client());

        let dev_mac = sender.interface_mac();
        let dev_ip = Ipv4Addr::new(192, 0, 2, 77);
        let arp = wire::arp_probe(
            dev_mac,
            dev_ip,
            listener.interface_mac(),
            Ipv4Addr::new(192, 0, 2, 1),
        );
        let mut dns = samples::DNS_QUERY.to_vec();
        dns[6..12].copy_from_slice(&dev_mac.0);
        // The DNS query first: if the filter let it through, it would
        // arrive before the ARP.
        sender.send(&dns).expect("send DNS");
        sender.send(&arp).expect("send ARP");

        let mut buf = [0u8; 2048];
        let frame = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let f = listener.recv(&mut buf).await.expect("recv");
                let bytes = &buf[..f.len];
                assert_ne!(bytes, &dns[..], "the DNS query passed the filter");
                if bytes == &arp[..] {
                    return f;
                }
            }
        })
        .await
        .expect("the ARP frame arrives");
        assert!(!frame.outgoing);
        assert_eq!(
            wire::parse_frame(&buf[..frame.len]).unwrap().unwrap().kind,
            SightingKind::Arp { ip: Some(dev_ip) }
        );
        // Nothing else that looks like the DNS query shows up later.
        let late = tokio::time::timeout(Duration::from_millis(300), async {
            loop {
                let f = listener.recv(&mut buf).await.expect("recv");
                if buf[..f.len] == dns[..] {
                    return;
                }
            }
        })
        .await;
        assert!(late.is_err(), "the DNS query passed the filter late");

        // The watcher on the sending end sees both frames as outgoing.
        let mut seen = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while seen.len() < 2 {
                let f = watcher.recv(&mut buf).await.expect("recv");
                if buf[..f.len] == dns[..] || buf[..f.len] == arp[..] {
                    seen.push((buf[..f.len].to_vec(), f.outgoing));
                }
            }
        })
        .await;
        assert_eq!(seen, [(dns.clone(), true), (arp.clone(), true)]);

        // A frame longer than the buffer is skipped and counted.
        let mut small = [0u8; 16];
        sender.send(&arp).expect("send ARP again");
        let skipped = tokio::time::timeout(Duration::from_millis(300), watcher.recv(&mut small));
        assert!(skipped.await.is_err(), "a truncated frame was returned");
        let stats = watcher.stats().expect("stats");
        assert!(stats.truncated >= 1, "{stats:?}");

        let stats = listener.stats().expect("stats");
        assert!(stats.packets >= 1, "{stats:?}");
        assert_eq!(stats.drops, 0);
        // Counters accumulate across reads (the kernel's reset).
        assert!(listener.stats().unwrap().packets >= stats.packets);
    }
}
