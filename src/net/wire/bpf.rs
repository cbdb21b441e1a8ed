//! The kernel-side twin of [`parse_frame`](super::parse_frame): a classic
//! BPF program (the `SO_ATTACH_FILTER` kind) that `net::capture` attaches
//! to its packet socket, so that only the frames presence reads are copied
//! to user space. A store's guest traffic (video, app updates) never
//! leaves the kernel.
//!
//! Accepted: ARP; IPv4 UDP between ports 67/68 (both ports in {67, 68}),
//! not fragmented; IPv6 whose next header is ICMPv6 (58) with type
//! 133..=137 (RS, RA, NS, NA, redirect), or UDP between ports 546/547.
//! The same after one 802.1Q tag. IPv6 extension headers are not followed
//! (MLD reports, behind a hop-by-hop header, stay out).
//!
//! Written by hand, one commented instruction per line, from the
//! instruction set in the Linux documentation
//! (`Documentation/networking/filter.rst`). Jump offsets count
//! instructions from the one after the jump. The tests run the program in
//! a small interpreter over the real frames in `samples`, and check that it
//! never hides a frame `parse_frame` would turn into a sighting.

use libc::sock_filter;

// Instruction classes, sizes, modes and operations (linux/filter.h).
const LD: u16 = 0x00;
const LDX: u16 = 0x01;
const JMP: u16 = 0x05;
const RET: u16 = 0x06;
const H: u16 = 0x08;
const B: u16 = 0x10;
const ABS: u16 = 0x20;
const IND: u16 = 0x40;
const MSH: u16 = 0xa0;
const JEQ: u16 = 0x10;
const JGT: u16 = 0x20;
const JGE: u16 = 0x30;
const JSET: u16 = 0x40;
const K: u16 = 0x00;

/// `ldh [k]`: A = the 16-bit big-endian value at offset k.
const LDH: u16 = LD | H | ABS;
/// `ldb [k]`: A = the byte at offset k.
const LDB: u16 = LD | B | ABS;
/// `ldh [x + k]`.
const LDH_X: u16 = LD | H | IND;
/// `ldxb 4*([k]&0xf)`: X = the IPv4 header length at offset k.
const LDX_MSH: u16 = LDX | B | MSH;
const JEQ_K: u16 = JMP | JEQ | K;
const JGT_K: u16 = JMP | JGT | K;
const JGE_K: u16 = JMP | JGE | K;
const JSET_K: u16 = JMP | JSET | K;
const RET_K: u16 = RET | K;

const fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

const fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// Keep the whole frame (the socket's buffer decides how much is read).
const ACCEPT: u32 = u32::MAX;

/// Only DHCPv4, ARP, ICMPv6 133..=137 and DHCPv6 reach user space.
///
/// Offsets below are from the start of the frame: Ethernet header 0..14
/// (EtherType at 12), IPv4 at 14 (flags/fragment at 20, protocol at 23),
/// IPv6 at 14 (next header at 20, payload at 54); four more behind a tag.
#[rustfmt::skip]
pub const PRESENCE: [sock_filter; 57] = [
    // Untagged frames.
    /*  0 */ stmt(LDH, 12),                     // A = EtherType
    /*  1 */ jump(JEQ_K, 0x8100, 26, 0),        // 802.1Q tag? -> 28
    /*  2 */ jump(JEQ_K, 0x0806, 52, 0),        // ARP -> accept
    /*  3 */ jump(JEQ_K, 0x0800, 1, 0),         // IPv4 -> 5
    /*  4 */ jump(JEQ_K, 0x86dd, 11, 51),       // IPv6 -> 16, else drop
    // IPv4
    /*  5 */ stmt(LDH, 20),                     // A = flags and fragment offset
    /*  6 */ jump(JSET_K, 0x3fff, 49, 0),       // more fragments or offset: drop
    /*  7 */ stmt(LDB, 23),                     // A = protocol
    /*  8 */ jump(JEQ_K, 17, 0, 47),            // UDP, else drop
    /*  9 */ stmt(LDX_MSH, 14),                 // X = IPv4 header length
    /* 10 */ stmt(LDH_X, 14),                   // A = UDP source port
    /* 11 */ jump(JEQ_K, 67, 1, 0),             // 67 -> 13
    /* 12 */ jump(JEQ_K, 68, 0, 43),            // 68 -> 13, else drop
    /* 13 */ stmt(LDH_X, 16),                   // A = UDP destination port
    /* 14 */ jump(JEQ_K, 67, 40, 0),            // 67 -> accept
    /* 15 */ jump(JEQ_K, 68, 39, 40),           // 68 -> accept, else drop
    // IPv6
    /* 16 */ stmt(LDB, 20),                     // A = next header
    /* 17 */ jump(JEQ_K, 58, 0, 3),             // ICMPv6 -> 18, else 21
    /* 18 */ stmt(LDB, 54),                     // A = ICMPv6 type
    /* 19 */ jump(JGE_K, 133, 0, 36),           // below 133: drop
    /* 20 */ jump(JGT_K, 137, 35, 34),          // above 137: drop, else accept
    /* 21 */ jump(JEQ_K, 17, 0, 34),            // UDP, else drop
    /* 22 */ stmt(LDH, 54),                     // A = UDP source port
    /* 23 */ jump(JEQ_K, 546, 1, 0),            // 546 -> 25
    /* 24 */ jump(JEQ_K, 547, 0, 31),           // 547 -> 25, else drop
    /* 25 */ stmt(LDH, 56),                     // A = UDP destination port
    /* 26 */ jump(JEQ_K, 546, 28, 0),           // 546 -> accept
    /* 27 */ jump(JEQ_K, 547, 27, 28),          // 547 -> accept, else drop
    // One 802.1Q tag: the same, four bytes further on.
    /* 28 */ stmt(LDH, 16),                     // A = inner EtherType
    /* 29 */ jump(JEQ_K, 0x0806, 25, 0),        // ARP -> accept
    /* 30 */ jump(JEQ_K, 0x0800, 1, 0),         // IPv4 -> 32
    /* 31 */ jump(JEQ_K, 0x86dd, 11, 24),       // IPv6 -> 43; a second tag: drop
    // IPv4 behind a tag
    /* 32 */ stmt(LDH, 24),                     // A = flags and fragment offset
    /* 33 */ jump(JSET_K, 0x3fff, 22, 0),       // fragment: drop
    /* 34 */ stmt(LDB, 27),                     // A = protocol
    /* 35 */ jump(JEQ_K, 17, 0, 20),            // UDP, else drop
    /* 36 */ stmt(LDX_MSH, 18),                 // X = IPv4 header length
    /* 37 */ stmt(LDH_X, 18),                   // A = UDP source port
    /* 38 */ jump(JEQ_K, 67, 1, 0),             // 67 -> 40
    /* 39 */ jump(JEQ_K, 68, 0, 16),            // 68 -> 40, else drop
    /* 40 */ stmt(LDH_X, 20),                   // A = UDP destination port
    /* 41 */ jump(JEQ_K, 67, 13, 0),            // 67 -> accept
    /* 42 */ jump(JEQ_K, 68, 12, 13),           // 68 -> accept, else drop
    // IPv6 behind a tag
    /* 43 */ stmt(LDB, 24),                     // A = next header
    /* 44 */ jump(JEQ_K, 58, 0, 3),             // ICMPv6 -> 45, else 48
    /* 45 */ stmt(LDB, 58),                     // A = ICMPv6 type
    /* 46 */ jump(JGE_K, 133, 0, 9),            // below 133: drop
    /* 47 */ jump(JGT_K, 137, 8, 7),            // above 137: drop, else accept
    /* 48 */ jump(JEQ_K, 17, 0, 7),             // UDP, else drop
    /* 49 */ stmt(LDH, 58),                     // A = UDP source port
    /* 50 */ jump(JEQ_K, 546, 1, 0),            // 546 -> 52
    /* 51 */ jump(JEQ_K, 547, 0, 4),            // 547 -> 52, else drop
    /* 52 */ stmt(LDH, 60),                     // A = UDP destination port
    /* 53 */ jump(JEQ_K, 546, 1, 0),            // 546 -> accept
    /* 54 */ jump(JEQ_K, 547, 0, 1),            // 547 -> accept, else drop
    /* 55 */ stmt(RET_K, ACCEPT),               // accept: the whole frame
    /* 56 */ stmt(RET_K, 0),                    // drop
];

#[cfg(test)]
mod tests {
    use super::super::samples::{self, *};
    use super::super::{arp_probe, nd_solicit, parse_frame};
    use super::*;
    use crate::mac::MacAddr;

    /// A classic BPF interpreter for the instructions this module uses,
    /// with the kernel's semantics: a load past the end of the packet ends
    /// the program with 0 (drop). Returns the filter's verdict: how many
    /// bytes to keep.
    fn run(program: &[sock_filter], packet: &[u8]) -> u32 {
        let (mut a, mut x) = (0u32, 0u32);
        let mut pc = 0usize;
        let byte = |at: usize| packet.get(at).map(|&b| u32::from(b));
        let half = |at: usize| {
            let b = packet.get(at..at.checked_add(2)?)?;
            Some(u32::from(u16::from_be_bytes([b[0], b[1]])))
        };
        loop {
            let insn = program.get(pc).expect("fell off the end of the program");
            pc += 1;
            let k = insn.k;
            let loaded = match insn.code {
                LDH => half(k as usize),
                LDB => byte(k as usize),
                LDH_X => half(x as usize + k as usize),
                LDX_MSH => match byte(k as usize) {
                    Some(b) => {
                        x = 4 * (b & 0xf);
                        continue;
                    }
                    None => None,
                },
                RET_K => return k,
                code => {
                    let taken = match code {
                        JEQ_K => a == k,
                        JGT_K => a > k,
                        JGE_K => a >= k,
                        JSET_K => a & k != 0,
                        _ => panic!("instruction {code:#x} not supported"),
                    };
                    pc += usize::from(if taken { insn.jt } else { insn.jf });
                    continue;
                }
            };
            match loaded {
                Some(v) => a = v,
                None => return 0,
            }
        }
    }

    fn accepts(frame: &[u8]) -> bool {
        run(&PRESENCE, frame) != 0
    }

    #[test]
    fn program_is_well_formed() {
        // What the kernel's checker insists on, and a little more: every
        // jump lands inside the program, the last instruction returns, and
        // only the instructions the interpreter knows are used.
        let n = PRESENCE.len();
        assert!(n <= 4096);
        for (i, insn) in PRESENCE.iter().enumerate() {
            if insn.code & 0x07 == JMP {
                assert!(i + 1 + usize::from(insn.jt) < n, "jt of {i}");
                assert!(i + 1 + usize::from(insn.jf) < n, "jf of {i}");
            } else {
                assert_eq!((insn.jt, insn.jf), (0, 0), "{i}");
            }
            let known = [LDH, LDB, LDH_X, LDX_MSH, JEQ_K, JGT_K, JGE_K, JSET_K, RET_K];
            assert!(known.contains(&insn.code), "{i}");
        }
        assert_eq!(PRESENCE[n - 1].code, RET_K);
        assert_eq!(PRESENCE[n - 2], stmt(RET_K, ACCEPT));
    }

    #[test]
    fn accepts_what_presence_reads() {
        for (name, frame) in samples::SIGHTINGS
            .iter()
            .chain(samples::FILTERED_BUT_IGNORED)
        {
            assert_eq!(run(&PRESENCE, frame), ACCEPT, "{name}");
            assert!(accepts(&vlan_tagged(frame)), "{name} tagged");
        }
        let options = [0x94, 0x04, 0, 0, 1, 1, 1, 0];
        for frame in [DHCP_DISCOVER_DHCLIENT, DHCP_ACK, DHCP_RELEASE] {
            let with_options = with_ipv4_options(frame, &options);
            assert!(accepts(&with_options));
            assert!(accepts(&vlan_tagged(&with_options)));
        }
        let (a, b) = (MacAddr([2, 0, 0, 0, 0, 1]), MacAddr([2, 0, 0, 0, 0, 2]));
        assert!(accepts(&arp_probe(
            a,
            [192, 0, 2, 1].into(),
            b,
            [192, 0, 2, 2].into()
        )));
        let (ll1, ll2) = ("fe80::1".parse().unwrap(), "fe80::2".parse().unwrap());
        assert!(accepts(&nd_solicit(a, ll1, b, ll2)));
    }

    #[test]
    fn rejects_other_traffic() {
        for (name, frame) in samples::OTHER_TRAFFIC {
            assert!(!accepts(frame), "{name}");
            assert!(!accepts(&vlan_tagged(frame)), "{name} tagged");
        }
        for frame in [DHCP_DISCOVER_DHCLIENT, DHCP_ACK] {
            // A first fragment passes the port test but not the flag test.
            assert!(!accepts(&first_fragment(frame)));
            assert!(!accepts(&vlan_tagged(&first_fragment(frame))));
            // Two tags.
            assert!(!accepts(&vlan_tagged(&vlan_tagged(frame))));
        }
        // DHCP ports on one side only: a DNS query from port 68.
        let mut dns = DNS_QUERY.to_vec();
        dns[34..36].copy_from_slice(&68u16.to_be_bytes());
        assert!(!accepts(&dns));
        // DHCPv6 to a server port from a random one.
        let mut v6 = DHCPV6_SOLICIT.to_vec();
        v6[54..56].copy_from_slice(&50000u16.to_be_bytes());
        assert!(!accepts(&v6));
        // ICMPv6 types just outside 133..=137.
        for t in [132, 138] {
            let mut f = ND_NS.to_vec();
            f[54] = t;
            assert!(!accepts(&f), "type {t}");
        }
        // Ethertypes next to ours, and runts.
        for et in [[0x08, 0x01], [0x86, 0xdc], [0x88, 0xa8], [0x80, 0x35]] {
            let mut f = ARP_REQUEST.to_vec();
            f[12..14].copy_from_slice(&et);
            assert!(!accepts(&f));
        }
        for end in 0..14 {
            assert!(!accepts(&DHCP_ACK[..end]));
        }
    }

    /// The invariant that matters: whatever `parse_frame` would report, the
    /// kernel lets through. Checked over every prefix and many single-byte
    /// changes of every sample, tagged and untagged.
    #[test]
    fn never_hides_a_sighting() {
        let all = samples::SIGHTINGS
            .iter()
            .chain(samples::FILTERED_BUT_IGNORED)
            .chain(samples::OTHER_TRAFFIC);
        let mut sightings = 0;
        for (name, frame) in all {
            for framed in [frame.to_vec(), vlan_tagged(frame)] {
                let mut variants: Vec<Vec<u8>> = (0..framed.len())
                    .map(|end| framed[..end].to_vec())
                    .collect();
                for i in 0..framed.len().min(80) {
                    for v in [0x00, 0x01, 0x06, 0x11, 0x3a, 0x43, 0x44, 0x85, 0xff] {
                        let mut f = framed.clone();
                        f[i] = v;
                        variants.push(f);
                    }
                }
                for f in variants {
                    if let Ok(Some(_)) = parse_frame(&f) {
                        sightings += 1;
                        assert!(accepts(&f), "{name}: {f:02x?}");
                    }
                }
            }
        }
        assert!(sightings > 1000, "the variants exercise the parser");
    }

    #[test]
    fn interpreter_drops_on_loads_past_the_end() {
        // IPv4 UDP with an IHL pointing past the end: the indirect load
        // fails and the kernel (and so the interpreter) drops.
        let mut f = DHCP_DISCOVER_DHCLIENT[..40].to_vec();
        f[14] = 0x4f;
        assert_eq!(run(&PRESENCE, &f), 0);
        assert_eq!(run(&[stmt(LDB, 1000), stmt(RET_K, 1)], &f), 0);
    }
}
