//! hostapd's control interface: members' Wi-Fi keys tell the box who joined.
//!
//! hostapd serves its control interface on a Unix datagram socket per
//! wireless interface. A client binds a socket of its own, sends `ATTACH`,
//! and from then on receives unsolicited events, each a datagram starting
//! with a `<N>` level prefix: `<3>AP-STA-CONNECTED <mac> keyid=<id>` when a
//! station completes the handshake with the per-member key of that line of
//! the `wpa_psk_file`, `<3>AP-STA-DISCONNECTED <mac>` when it leaves.
//! Answers to commands (`PING`, `RELOAD_WPA_PSK`, `STA-FIRST`, ...) come back
//! on the same socket and never start with `<`.
//!
//! This module is the pure part: the parsers for those events and for the
//! station listing (`STA-FIRST` / `STA-NEXT`). Their input comes from hostapd
//! but the MACs and key ids in it are the radio's world, so they never panic,
//! bound what they accept and are fuzzed. A key id is accepted only as
//! 1 to [`MAX_KEYID_LEN`] characters of `[A-Za-z0-9_-]` (a member id is
//! `m_` and 22 base64url characters); any other key id is refused and the
//! station counts as one without a key id: present, not recognised.
//!
//! The I/O side (a client per socket, and [`run`], the task that keeps one
//! attached to every hostapd across restarts) is in [`client`].

mod client;

pub use client::{Commands, Hostapd, HostapdError, HostapdSet, run};

use crate::mac::MacAddr;

/// The longest key id accepted from hostapd.
pub const MAX_KEYID_LEN: usize = 64;

/// A station (a phone) joining or leaving one hostapd's network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StationEvent {
    /// Authorised: the 4-way handshake completed. `keyid` is the `keyid=`
    /// of the `wpa_psk_file` line whose key it used, if that line had one.
    Connected { mac: MacAddr, keyid: Option<String> },
    /// Gone: disassociated, deauthenticated or timed out.
    Disconnected { mac: MacAddr },
}

impl StationEvent {
    /// The station's MAC.
    pub fn mac(&self) -> MacAddr {
        match self {
            StationEvent::Connected { mac, .. } | StationEvent::Disconnected { mac } => *mac,
        }
    }
}

/// One station of a `STA-FIRST` / `STA-NEXT` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Station {
    pub mac: MacAddr,
    pub keyid: Option<String>,
}

/// Whether `datagram` is unsolicited (an event), not a command's answer:
/// hostapd starts every event with its `<N>` level prefix.
pub fn is_unsolicited(datagram: &[u8]) -> bool {
    datagram.first() == Some(&b'<')
}

/// An unsolicited datagram as a station event: `<N>AP-STA-CONNECTED <mac>
/// [keyid=<id>] ...` or `<N>AP-STA-DISCONNECTED <mac> ...`. Anything else
/// (other events, no `<N>` prefix, a bad or group MAC) is `None`.
pub fn parse_event(datagram: &[u8]) -> Option<StationEvent> {
    let body = strip_level(trim_end(datagram))?;
    let mut words = body.split(|&b| b == b' ').filter(|w| !w.is_empty());
    let name = words.next()?;
    let mac = parse_mac(words.next()?)?;
    match name {
        b"AP-STA-CONNECTED" => {
            let keyid = words
                .find_map(|w| w.strip_prefix(b"keyid="))
                .and_then(valid_keyid);
            Some(StationEvent::Connected { mac, keyid })
        }
        b"AP-STA-DISCONNECTED" => Some(StationEvent::Disconnected { mac }),
        _ => None,
    }
}

/// A `STA-FIRST` / `STA-NEXT <mac>` answer: the station's MAC on the first
/// line, then `key=value` lines, `keyid=` among them when the station used
/// a key with one. `FAIL`, an empty answer or one whose first line is not
/// a station's MAC is `None`: no more stations.
pub fn parse_station(answer: &[u8]) -> Option<Station> {
    let mut lines = answer.split(|&b| b == b'\n').map(trim_end);
    let mac = parse_mac(lines.next()?)?;
    let keyid = lines
        .find_map(|l| l.strip_prefix(b"keyid="))
        .and_then(valid_keyid);
    Some(Station { mac, keyid })
}

/// Whether `answer` is exactly `expected` (hostapd ends answers with a
/// newline; `OK`, `PONG`, `FAIL`).
pub fn answer_is(answer: &[u8], expected: &str) -> bool {
    trim_end(answer) == expected.as_bytes()
}

/// A key id as accepted from hostapd, see the module's documentation.
pub fn valid_keyid(raw: &[u8]) -> Option<String> {
    let ok = !raw.is_empty()
        && raw.len() <= MAX_KEYID_LEN
        && raw
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    // Only ASCII passed, so the conversion cannot fail.
    ok.then(|| String::from_utf8_lossy(raw).into_owned())
}

/// `<N>` (one to three digits) removed; `None` without it.
fn strip_level(line: &[u8]) -> Option<&[u8]> {
    let rest = line.strip_prefix(b"<")?;
    let close = rest.iter().take(4).position(|&b| b == b'>')?;
    if close == 0 || !rest[..close].iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(&rest[close + 1..])
}

/// A station's MAC: six hex pairs, unicast and not all zero.
fn parse_mac(word: &[u8]) -> Option<MacAddr> {
    let text = std::str::from_utf8(word).ok()?;
    let mac: MacAddr = text.parse().ok()?;
    mac.is_unicast_client().then_some(mac)
}

/// Trailing newlines, carriage returns, NULs and spaces removed.
fn trim_end(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .rposition(|&b| !matches!(b, b'\n' | b'\r' | b'\0' | b' '))
        .map_or(0, |i| i + 1);
    &bytes[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEMBER: &str = "m_AbCdEfGhIjKlMnOpQrStUv";

    fn mac(s: &str) -> MacAddr {
        s.parse().unwrap()
    }

    #[test]
    fn connected_with_a_member_key() {
        let line = format!("<3>AP-STA-CONNECTED 02:11:22:33:44:55 keyid={MEMBER}");
        assert_eq!(
            parse_event(line.as_bytes()),
            Some(StationEvent::Connected {
                mac: mac("02:11:22:33:44:55"),
                keyid: Some(MEMBER.into())
            })
        );
    }

    #[test]
    fn connected_as_newer_hostapds_write_it() {
        // Other fields before and after the key id, a trailing newline.
        let line = format!(
            "<3>AP-STA-CONNECTED 02:11:22:33:44:55 ip_addr=10.0.0.2 \
             auth_alg=open keyid={MEMBER} vlan_id=3 dpp_pkhash=00ff\n"
        );
        assert_eq!(
            parse_event(line.as_bytes()),
            Some(StationEvent::Connected {
                mac: mac("02:11:22:33:44:55"),
                keyid: Some(MEMBER.into())
            })
        );
    }

    #[test]
    fn connected_without_a_key_id() {
        for line in [
            "<3>AP-STA-CONNECTED 02:11:22:33:44:55",
            "<3>AP-STA-CONNECTED 02:11:22:33:44:55 auth_alg=sae",
            "<3>AP-STA-CONNECTED 02:11:22:33:44:55 keyid=",
        ] {
            assert_eq!(
                parse_event(line.as_bytes()),
                Some(StationEvent::Connected {
                    mac: mac("02:11:22:33:44:55"),
                    keyid: None
                }),
                "{line}"
            );
        }
    }

    #[test]
    fn disconnected() {
        assert_eq!(
            parse_event(b"<3>AP-STA-DISCONNECTED 02:11:22:33:44:55"),
            Some(StationEvent::Disconnected {
                mac: mac("02:11:22:33:44:55")
            })
        );
        assert_eq!(
            parse_event(b"<2>AP-STA-DISCONNECTED 02:11:22:33:44:55 extra=1\n").map(|e| e.mac()),
            Some(mac("02:11:22:33:44:55"))
        );
    }

    #[test]
    fn a_key_id_out_of_bounds_is_refused_not_the_station() {
        let long = "a".repeat(MAX_KEYID_LEN + 1);
        let max = "a".repeat(MAX_KEYID_LEN);
        for (keyid, kept) in [
            (long.as_str(), false),
            (max.as_str(), true),
            ("m_ab/cd", false),
            ("m_ab+cd", false),
            ("m_ab%0acd", false),
            ("m_\u{e9}t\u{e9}", false),
            ("-_09azAZ", true),
        ] {
            let line = format!("<3>AP-STA-CONNECTED 02:11:22:33:44:55 keyid={keyid}");
            let want = StationEvent::Connected {
                mac: mac("02:11:22:33:44:55"),
                keyid: kept.then(|| keyid.to_string()),
            };
            assert_eq!(parse_event(line.as_bytes()), Some(want), "{keyid}");
        }
        // Not UTF-8 at all.
        let mut raw = b"<3>AP-STA-CONNECTED 02:11:22:33:44:55 keyid=m_".to_vec();
        raw.extend_from_slice(&[0xff, 0xfe]);
        assert_eq!(
            parse_event(&raw),
            Some(StationEvent::Connected {
                mac: mac("02:11:22:33:44:55"),
                keyid: None
            })
        );
    }

    #[test]
    fn hostile_and_other_lines_are_not_events() {
        for line in [
            "",
            "<",
            "<3>",
            "<>AP-STA-CONNECTED 02:11:22:33:44:55",
            "<x>AP-STA-CONNECTED 02:11:22:33:44:55",
            "<12345>AP-STA-CONNECTED 02:11:22:33:44:55",
            "AP-STA-CONNECTED 02:11:22:33:44:55 keyid=m_x",
            "3>AP-STA-CONNECTED 02:11:22:33:44:55",
            "<3>AP-STA-CONNECTED",
            "<3>AP-STA-CONNECTED ",
            "<3>AP-STA-CONNECTED keyid=m_x",
            "<3>AP-STA-CONNECTED 02:11:22:33:44",
            "<3>AP-STA-CONNECTED 02:11:22:33:44:5g",
            "<3>AP-STA-CONNECTED 02:11:22:33:44:55:66",
            "<3>AP-STA-CONNECTED 00:00:00:00:00:00",
            "<3>AP-STA-CONNECTED ff:ff:ff:ff:ff:ff",
            "<3>AP-STA-CONNECTED 01:00:5e:00:00:01",
            "<3>AP-STA-CONNECTEDX 02:11:22:33:44:55",
            "<3>AP-STA-DISCONNECTED",
            "<3>AP-STA-POLL-OK 02:11:22:33:44:55",
            "<3>CTRL-EVENT-EAP-STARTED 02:11:22:33:44:55",
            "<3>AP-ENABLED",
            "OK",
            "PONG",
            "02:11:22:33:44:55\nflags=[AUTH]\nkeyid=m_x",
        ] {
            assert_eq!(parse_event(line.as_bytes()), None, "{line:?}");
        }
        assert!(is_unsolicited(b"<3>AP-ENABLED"));
        assert!(!is_unsolicited(b"PONG\n"));
        assert!(!is_unsolicited(b""));
    }

    #[test]
    fn station_listing_answers() {
        let answer = format!(
            "02:11:22:33:44:55\nflags=[AUTH][ASSOC][AUTHORIZED]\naid=1\n\
             capability=0x431\nlisten_interval=10\nsupported_rates=82 84\n\
             timeout_next=NULLFUNC POLL\nrx_packets=12\nconnected_time=30\n\
             keyid={MEMBER}\n"
        );
        assert_eq!(
            parse_station(answer.as_bytes()),
            Some(Station {
                mac: mac("02:11:22:33:44:55"),
                keyid: Some(MEMBER.into())
            })
        );
        assert_eq!(
            parse_station(b"02:11:22:33:44:56\nflags=[AUTH][ASSOC]\naid=2\n"),
            Some(Station {
                mac: mac("02:11:22:33:44:56"),
                keyid: None
            })
        );
        // The key id is taken only from its own line.
        assert_eq!(
            parse_station(b"02:11:22:33:44:56\nx=keyid=m_a\n")
                .unwrap()
                .keyid,
            None
        );
        let long = format!("02:11:22:33:44:57\nkeyid={}\n", "b".repeat(65));
        assert_eq!(parse_station(long.as_bytes()).unwrap().keyid, None);
    }

    #[test]
    fn the_end_of_the_listing() {
        for answer in [
            "FAIL\n",
            "FAIL",
            "",
            "\n",
            "UNKNOWN COMMAND\n",
            "<3>AP-STA-CONNECTED 02:11:22:33:44:55",
            "keyid=m_a\n02:11:22:33:44:55\n",
            "00:00:00:00:00:00\nkeyid=m_a\n",
        ] {
            assert_eq!(parse_station(answer.as_bytes()), None, "{answer:?}");
        }
    }

    #[test]
    fn answers() {
        assert!(answer_is(b"OK\n", "OK"));
        assert!(answer_is(b"PONG", "PONG"));
        assert!(!answer_is(b"FAIL\n", "OK"));
        assert!(!answer_is(b"OKAY\n", "OK"));
    }

    /// Real lines with bytes flipped, cut and repeated: never a panic, and
    /// what is accepted is well formed.
    #[test]
    fn mangled_lines_never_panic() {
        let seeds: [&[u8]; 3] = [
            b"<3>AP-STA-CONNECTED 02:11:22:33:44:55 keyid=m_AbCdEfGhIjKlMnOpQrStUv",
            b"<3>AP-STA-DISCONNECTED 02:11:22:33:44:55",
            b"02:11:22:33:44:55\nflags=[AUTH]\nkeyid=m_AbCdEfGhIjKlMnOpQrStUv\n",
        ];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut rand = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..20_000 {
            let mut line = seeds[round % seeds.len()].to_vec();
            for _ in 0..(rand() % 4 + 1) {
                let at = (rand() as usize) % (line.len() + 1);
                match rand() % 4 {
                    0 if at < line.len() => line[at] = rand() as u8,
                    1 => line.truncate(at),
                    2 => line.insert(at, [b' ', b'=', b'<', b'\n', 0xff][(rand() % 5) as usize]),
                    _ => line.extend_from_within(..at),
                }
            }
            let keyid_ok = |k: &Option<String>| {
                k.as_ref()
                    .is_none_or(|k| valid_keyid(k.as_bytes()).as_ref() == Some(k))
            };
            if let Some(event) = parse_event(&line) {
                assert!(event.mac().is_unicast_client());
                if let StationEvent::Connected { keyid, .. } = &event {
                    assert!(keyid_ok(keyid), "{line:?}");
                }
            }
            if let Some(station) = parse_station(&line) {
                assert!(station.mac.is_unicast_client());
                assert!(keyid_ok(&station.keyid), "{line:?}");
            }
        }
    }
}
