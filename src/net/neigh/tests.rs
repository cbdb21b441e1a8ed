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
