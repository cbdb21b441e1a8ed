//! A member's Wi-Fi passphrase and the PSK hostapd derives from it.
//!
//! The passphrase is read off a screen and typed on a phone, so it uses
//! 32 symbols that cannot be mistaken for one another (no `0`/`O`,
//! `1`/`l`/`I`, no capitals at all): 16 of them carry 80 random bits, far
//! beyond any offline guessing of a captured WPA2 handshake. It is
//! written in four groups joined by `-`, and those hyphens are part of it:
//! what the member types is exactly what the PSK is derived from.
//!
//! The PSK is WPA2-Personal's, PBKDF2-HMAC-SHA1(passphrase, SSID, 4096
//! rounds, 32 bytes) (IEEE 802.11i, annex H.4), the same 64 hex digits
//! hostapd would compute: the box stores only those, never the
//! passphrase.

use std::fmt;

use rand::RngCore;
use rand::rngs::OsRng;

/// The symbols of a passphrase: digits 2-9 and a-z without `l` and `o`.
pub const ALPHABET: &[u8; 32] = b"23456789abcdefghijkmnpqrstuvwxyz";
/// Random symbols in a passphrase: 16 × 5 bits = 80 bits.
pub const SYMBOLS: usize = 16;
/// Symbols per group.
const GROUP: usize = 4;
/// WPA2 PBKDF2 rounds.
const ROUNDS: u32 = 4096;

/// A freshly made passphrase. `Debug` and `Display` hide it so it cannot
/// end up in a log by accident; `expose` is for the page that shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Passphrase(String);

impl Passphrase {
    /// A new random passphrase, e.g. `k7m2-x9qa-3hfp-tw8e`.
    pub fn generate() -> Passphrase {
        let mut bytes = [0u8; SYMBOLS];
        OsRng.fill_bytes(&mut bytes);
        let mut s = String::with_capacity(SYMBOLS + SYMBOLS / GROUP);
        for (i, b) in bytes.iter().enumerate() {
            if i > 0 && i % GROUP == 0 {
                s.push('-');
            }
            // 256 is a multiple of 32: the low five bits are uniform.
            s.push(char::from(ALPHABET[usize::from(b & 31)]));
        }
        Passphrase(s)
    }

    /// The passphrase itself, for the member's eyes only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The PSK for `ssid`, as hostapd's PSK file writes it.
    pub fn psk_hex(&self, ssid: &str) -> String {
        psk_hex(&self.0, ssid)
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(***)")
    }
}

impl fmt::Display for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// WPA2-Personal's PSK: PBKDF2-HMAC-SHA1(passphrase, ssid, 4096, 32 bytes).
pub fn psk(passphrase: &str, ssid: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha1::Sha1>(passphrase.as_bytes(), ssid.as_bytes(), ROUNDS, &mut out);
    out
}

/// [`psk`] as 64 lower-case hex digits.
pub fn psk_hex(passphrase: &str, ssid: &str) -> String {
    psk(passphrase, ssid)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `s` is 64 hex digits (a PSK as stored).
pub fn is_psk_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psk_matches_the_ieee_802_11i_test_vectors() {
        // IEEE 802.11i-2004, annex H.4.
        assert_eq!(
            psk_hex("password", "IEEE"),
            "f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e"
        );
        assert_eq!(
            psk_hex("ThisIsAPassword", "ThisIsASSID"),
            "0dc0d6eb90555ed6419756b9a15ec3e3209b63df707dd508d14581f8982721af"
        );
    }

    #[test]
    fn passphrases_use_the_unambiguous_alphabet_and_carry_80_bits() {
        // 32 distinct symbols: 5 bits each.
        let mut symbols = ALPHABET.to_vec();
        symbols.sort_unstable();
        symbols.dedup();
        assert_eq!(symbols.len(), 32);
        for bad in b"01OlI" {
            assert!(!ALPHABET.contains(bad), "{}", char::from(*bad));
        }
        const { assert!(SYMBOLS * 5 >= 64, "at least 64 bits") };
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let p = Passphrase::generate();
            let s = p.expose();
            assert_eq!(s.len(), 19, "{s}");
            let groups: Vec<&str> = s.split('-').collect();
            assert_eq!(groups.len(), 4);
            assert!(groups.iter().all(|g| g.len() == 4));
            assert!(
                s.bytes()
                    .filter(|b| *b != b'-')
                    .all(|b| ALPHABET.contains(&b))
            );
            // WPA2 passphrases are 8 to 63 printable ASCII characters.
            assert!((8..=63).contains(&s.len()));
            assert!(seen.insert(s.to_string()), "repeated: {s}");
        }
    }

    #[test]
    fn the_passphrase_never_prints() {
        let p = Passphrase::generate();
        assert!(!format!("{p:?} {p}").contains(p.expose()));
    }

    #[test]
    fn the_psk_is_derived_from_the_passphrase_as_typed() {
        let p = Passphrase::generate();
        assert_eq!(p.psk_hex("S"), psk_hex(p.expose(), "S"));
        assert_ne!(p.psk_hex("S"), psk_hex(&p.expose().replace('-', ""), "S"));
        assert!(is_psk_hex(&p.psk_hex("S")));
        assert!(!is_psk_hex("xyz"));
    }
}
