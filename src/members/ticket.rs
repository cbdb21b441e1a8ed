//! Code tickets: proof that a request for a texted code comes from a
//! sign-in page the box served to that device.
//!
//! Why: the portal's form token is the same all day for a device, so a
//! script that fetched one page could post code requests at will. A
//! ticket is handed out only with the phone form of the sign-in page (a
//! `GET`), names the device it was handed to, lasts [`TICKET_TTL`], and
//! is spent by the code it paid for: every text costs a page load.
//!
//! A ticket is `base64url(issued ‖ nonce ‖ tag)`: the issue time in
//! seconds (8 bytes), 8 random bytes, and 16 bytes of a keyed hash (the
//! box's device key, its own domain) over the holder, the time and the
//! nonce. Checking one needs no state; only spent nonces are remembered,
//! in memory and until the ticket would have expired anyway (a restart
//! forgets them, so a ticket spent just before one could pay for one more
//! code; the hourly caps on disk still hold).

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;

use super::otp::constant_time_eq;
use crate::privacy::DeviceKey;
use crate::time::Timestamp;

/// How long a sign-in page's ticket stays good.
pub const TICKET_TTL: Duration = Duration::from_secs(30 * 60);
/// Spent tickets remembered at once. Only a sent code spends one, and the
/// box sends at most 1,000 an hour, so honest use never comes near.
pub const MAX_SPENT: usize = 20_000;
const DOMAIN: &[u8] = b"storegate-code-ticket-v1";
const TAG_BYTES: usize = 16;
const RAW_BYTES: usize = 8 + 8 + TAG_BYTES;
/// Characters of a ticket: 32 bytes in unpadded base64url.
const TICKET_CHARS: usize = 43;
/// A ticket issued this far "ahead" of now is still taken (clock steps).
const SKEW: Duration = Duration::from_secs(60);

pub type Nonce = [u8; 8];

fn tag(key: &DeviceKey, holder: &str, secs: i64, nonce: &Nonce) -> [u8; TAG_BYTES] {
    let mut data = Vec::with_capacity(holder.len() + 17);
    data.extend_from_slice(holder.as_bytes());
    data.push(0);
    data.extend_from_slice(&secs.to_be_bytes());
    data.extend_from_slice(nonce);
    let hash = key.keyed_hash(DOMAIN, &data);
    let mut out = [0u8; TAG_BYTES];
    out.copy_from_slice(&hash[..TAG_BYTES]);
    out
}

/// A ticket for `holder` (whatever names the device to the caller),
/// issued at `now`.
pub fn mint(key: &DeviceKey, holder: &str, now: Timestamp, nonce: Nonce) -> String {
    let secs = now.millis().div_euclid(1000);
    let mut raw = Vec::with_capacity(RAW_BYTES);
    raw.extend_from_slice(&secs.to_be_bytes());
    raw.extend_from_slice(&nonce);
    raw.extend_from_slice(&tag(key, holder, secs, &nonce));
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// The nonce of `ticket` if it is one this box minted for `holder` and it
/// is still good at `now`. Anything else (junk included) is `None`.
pub fn check(key: &DeviceKey, holder: &str, ticket: &str, now: Timestamp) -> Option<Nonce> {
    if ticket.len() != TICKET_CHARS {
        return None;
    }
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(ticket)
        .ok()?;
    if raw.len() != RAW_BYTES {
        return None;
    }
    let secs = i64::from_be_bytes(raw[..8].try_into().ok()?);
    let nonce: Nonce = raw[8..16].try_into().ok()?;
    if !constant_time_eq(&raw[16..], &tag(key, holder, secs, &nonce)) {
        return None;
    }
    let issued = Timestamp(secs.checked_mul(1000)?);
    let fresh = issued <= now.plus(SKEW) && now < issued.plus(TICKET_TTL);
    fresh.then_some(nonce)
}

/// Nonces of spent tickets, each until its ticket would have expired.
#[derive(Debug, Default)]
pub struct Spent(HashMap<Nonce, Timestamp>);

impl Spent {
    pub fn contains(&self, nonce: &Nonce) -> bool {
        self.0.contains_key(nonce)
    }

    /// Marks `nonce` spent at `now`; `false` when there is no room left
    /// (the ticket is then not taken).
    pub fn spend(&mut self, nonce: Nonce, now: Timestamp) -> bool {
        if self.0.len() >= MAX_SPENT {
            self.gc(now);
            if self.0.len() >= MAX_SPENT {
                return false;
            }
        }
        self.0.insert(nonce, now.plus(TICKET_TTL + SKEW));
        true
    }

    /// Makes a spent ticket good again (its code was never sent).
    pub fn unspend(&mut self, nonce: &Nonce) {
        self.0.remove(nonce);
    }

    /// Forgets nonces whose tickets have expired.
    pub fn gc(&mut self, now: Timestamp) {
        self.0.retain(|_, until| *until > now);
    }

    /// Spent tickets remembered.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp(1_795_000_000_000);

    fn key() -> DeviceKey {
        DeviceKey::from_bytes([7; 32])
    }

    #[test]
    fn a_ticket_is_good_for_its_holder_for_half_an_hour() {
        let t = mint(&key(), "tokenA", T0, [1; 8]);
        assert_eq!(t.len(), TICKET_CHARS);
        assert_eq!(check(&key(), "tokenA", &t, T0), Some([1; 8]));
        let late = T0.plus(TICKET_TTL - Duration::from_secs(1));
        assert_eq!(check(&key(), "tokenA", &t, late), Some([1; 8]));
        assert_eq!(check(&key(), "tokenA", &t, T0.plus(TICKET_TTL)), None);
        assert_eq!(check(&key(), "tokenB", &t, T0), None, "another device");
        let other_box = DeviceKey::from_bytes([8; 32]);
        assert_eq!(check(&other_box, "tokenA", &t, T0), None);
        // Issued "later" than now, beyond a clock step: not taken.
        let ahead = mint(&key(), "tokenA", T0.plus(Duration::from_secs(120)), [2; 8]);
        assert_eq!(check(&key(), "tokenA", &ahead, T0), None);
    }

    #[test]
    fn forged_or_junk_tickets_are_refused_without_a_panic() {
        let t = mint(&key(), "tokenA", T0, [1; 8]);
        let mut flipped = t.clone().into_bytes();
        flipped[20] = if flipped[20] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        for junk in [
            "",
            "x",
            &t[..42],
            &format!("{t}A"),
            &flipped,
            &"=".repeat(43),
            &"é".repeat(21),
            &"A".repeat(43),
            &"_".repeat(10_000),
        ] {
            assert_eq!(check(&key(), "tokenA", junk, T0), None, "{junk:?}");
        }
    }

    #[test]
    fn a_spent_ticket_stays_spent_until_it_expires() {
        let mut s = Spent::default();
        assert!(!s.contains(&[1; 8]));
        assert!(s.spend([1; 8], T0));
        assert!(s.contains(&[1; 8]));
        s.gc(T0.plus(TICKET_TTL));
        assert!(s.contains(&[1; 8]), "still within its life");
        s.gc(T0.plus(TICKET_TTL + SKEW));
        assert_eq!(s.len(), 0);
        s.spend([2; 8], T0);
        s.unspend(&[2; 8]);
        assert!(!s.contains(&[2; 8]));
    }

    #[test]
    fn the_spent_set_is_bounded() {
        let mut s = Spent::default();
        for i in 0..MAX_SPENT as u64 {
            assert!(s.spend(i.to_be_bytes(), T0));
        }
        assert!(!s.spend(u64::MAX.to_be_bytes(), T0), "full");
        let later = T0.plus(TICKET_TTL + SKEW);
        assert!(
            s.spend(u64::MAX.to_be_bytes(), later),
            "room once they expire"
        );
        assert_eq!(s.len(), 1);
    }
}
