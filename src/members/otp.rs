//! The one-time-code machine: which code is live for which phone, how
//! often a phone or a device may ask for one, and how many wrong guesses
//! a code takes before the phone is locked out.
//!
//! Pure: it takes `now` and the code to hand out (the shell draws it
//! from the OS's CSPRNG), reads no clock and does no I/O. Phones are
//! keyed by their member id (the keyed hash of the number), so not even
//! this memory holds a phone number. Everything here is in memory only:
//! a restart forgets live codes (shoppers ask for a new one), the
//! per-phone and per-device windows and lockouts. The caps that must
//! survive a restart (the whole box's, a block of numbers') are in
//! `limits`, on disk.
//!
//! Bounded: at most [`MAX_ENTRIES`] phones and as many devices. When full,
//! entries with nothing live are dropped; if none can go, the request is
//! refused as rate-limited rather than growing.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use super::MemberError;
use crate::mac::MacAddr;
use crate::time::Timestamp;

/// Phones (and, separately, devices) tracked at once.
pub const MAX_ENTRIES: usize = 20_000;
/// The window of the hourly limits.
const HOUR: Duration = Duration::from_secs(3600);
/// Longest code input compared at all.
const MAX_CODE_INPUT: usize = 32;

/// The limits; `Default` is what the box uses besides the config.
#[derive(Debug, Clone)]
pub struct OtpPolicy {
    /// How long a code stays valid.
    pub ttl: Duration,
    /// Wrong guesses per code before lockout.
    pub max_attempts: u32,
    /// How long a phone is locked out after too many wrong guesses.
    pub lockout: Duration,
    /// Least time between two codes for one phone.
    pub phone_min_gap: Duration,
    /// Codes per phone per hour.
    pub phone_per_hour: usize,
    /// Code requests and member-number attempts per device per hour.
    pub device_per_hour: usize,
}

impl Default for OtpPolicy {
    fn default() -> Self {
        OtpPolicy {
            ttl: Duration::from_secs(300),
            max_attempts: 5,
            lockout: Duration::from_secs(900),
            phone_min_gap: Duration::from_secs(30),
            phone_per_hour: 5,
            device_per_hour: 10,
        }
    }
}

#[derive(Debug)]
struct Live {
    code: String,
    expires_at: Timestamp,
    attempts: u32,
}

#[derive(Debug, Default)]
struct PhoneState {
    code: Option<Live>,
    /// Request times within the last hour, oldest first.
    requests: VecDeque<Timestamp>,
    locked_until: Option<Timestamp>,
}

impl PhoneState {
    fn idle(&self, now: Timestamp) -> bool {
        self.code.as_ref().is_none_or(|c| c.expires_at <= now)
            && self.locked_until.is_none_or(|t| t <= now)
            && self.requests.is_empty()
    }
}

#[derive(Debug)]
pub struct OtpBook {
    policy: OtpPolicy,
    phones: HashMap<String, PhoneState>,
    /// Per device, request times within the last hour, oldest first.
    devices: HashMap<MacAddr, VecDeque<Timestamp>>,
}

/// Drops times an hour old or more.
fn trim(window: &mut VecDeque<Timestamp>, now: Timestamp) {
    while window.front().is_some_and(|t| t.plus(HOUR) <= now) {
        window.pop_front();
    }
}

/// Time until the oldest entry of a full window leaves it.
fn wait_for(window: &VecDeque<Timestamp>, now: Timestamp) -> Duration {
    window
        .front()
        .map(|t| now.until(t.plus(HOUR)))
        .unwrap_or(Duration::ZERO)
        .max(Duration::from_secs(1))
}

/// Compares without an early exit, so the time taken says nothing about
/// how many leading characters were right.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// What the shopper typed, as the digits of a code: spaces dropped.
fn typed_code(input: &str) -> Option<String> {
    if input.len() > MAX_CODE_INPUT {
        return None;
    }
    Some(input.chars().filter(|c| !c.is_whitespace()).collect())
}

impl OtpBook {
    pub fn new(policy: OtpPolicy) -> Self {
        OtpBook {
            policy,
            phones: HashMap::new(),
            devices: HashMap::new(),
        }
    }

    fn device_window(&mut self, mac: MacAddr, now: Timestamp) -> &VecDeque<Timestamp> {
        let w = self.devices.entry(mac).or_default();
        trim(w, now);
        w
    }

    /// Whether `mac` may make one more counted attempt (a code request or
    /// a member number) now.
    pub fn device_allowed(&mut self, mac: MacAddr, now: Timestamp) -> Result<(), MemberError> {
        if !self.devices.contains_key(&mac) && self.devices.len() >= MAX_ENTRIES {
            self.gc(now);
            if self.devices.len() >= MAX_ENTRIES {
                return Err(MemberError::RateLimited {
                    retry_after: Duration::from_secs(60),
                });
            }
        }
        let limit = self.policy.device_per_hour;
        let w = self.device_window(mac, now);
        if w.len() >= limit {
            return Err(MemberError::RateLimited {
                retry_after: wait_for(w, now),
            });
        }
        Ok(())
    }

    /// Counts an attempt of `mac` (see [`Self::device_allowed`]).
    pub fn count_device(&mut self, mac: MacAddr, now: Timestamp) {
        self.devices.entry(mac).or_default().push_back(now);
    }

    /// Hands out `code` for the phone `key` asked from `mac`, replacing
    /// any earlier code of that phone, if [`Self::may_request`] allows it.
    /// Returns when it expires.
    pub fn request(
        &mut self,
        key: &str,
        mac: MacAddr,
        code: String,
        now: Timestamp,
    ) -> Result<Timestamp, MemberError> {
        self.may_request(key, mac, now)?;
        Ok(self.issue(key, mac, code, now))
    }

    /// Whether the phone `key` may be sent a code asked from `mac` now: not
    /// locked out, not within 30 s of its last code, under its hourly
    /// limit and the device's. Changes nothing that matters.
    pub fn may_request(
        &mut self,
        key: &str,
        mac: MacAddr,
        now: Timestamp,
    ) -> Result<(), MemberError> {
        if let Some(until) = self
            .phones
            .get(key)
            .and_then(|p| p.locked_until)
            .filter(|t| *t > now)
        {
            return Err(MemberError::LockedOut { until });
        }
        if let Some(p) = self.phones.get_mut(key) {
            trim(&mut p.requests, now);
            if let Some(last) = p.requests.back() {
                let next = last.plus(self.policy.phone_min_gap);
                if next > now {
                    return Err(MemberError::RateLimited {
                        retry_after: now.until(next).max(Duration::from_secs(1)),
                    });
                }
            }
            if p.requests.len() >= self.policy.phone_per_hour {
                return Err(MemberError::RateLimited {
                    retry_after: wait_for(&p.requests, now),
                });
            }
        } else if self.phones.len() >= MAX_ENTRIES {
            self.gc(now);
            if self.phones.len() >= MAX_ENTRIES {
                return Err(MemberError::RateLimited {
                    retry_after: Duration::from_secs(60),
                });
            }
        }
        self.device_allowed(mac, now)
    }

    /// Hands out `code` for the phone `key` asked from `mac` (after
    /// [`Self::may_request`]), replacing any earlier code of that phone.
    /// Returns when it expires.
    pub fn issue(&mut self, key: &str, mac: MacAddr, code: String, now: Timestamp) -> Timestamp {
        self.count_device(mac, now);
        let expires_at = now.plus(self.policy.ttl);
        let p = self.phones.entry(key.to_string()).or_default();
        p.requests.push_back(now);
        p.locked_until = None;
        p.code = Some(Live {
            code,
            expires_at,
            attempts: 0,
        });
        expires_at
    }

    /// Checks a typed code for the phone `key`. A right code is used up;
    /// a wrong one counts, and the last allowed wrong one locks the phone.
    pub fn verify(&mut self, key: &str, typed: &str, now: Timestamp) -> Result<(), MemberError> {
        let policy = &self.policy;
        let Some(p) = self.phones.get_mut(key) else {
            return Err(MemberError::NoCode);
        };
        if let Some(until) = p.locked_until.filter(|t| *t > now) {
            return Err(MemberError::LockedOut { until });
        }
        let Some(live) = p.code.as_mut().filter(|c| c.expires_at > now) else {
            p.code = None;
            return Err(MemberError::NoCode);
        };
        live.attempts = live.attempts.saturating_add(1);
        let right =
            typed_code(typed).is_some_and(|t| constant_time_eq(t.as_bytes(), live.code.as_bytes()));
        if right {
            p.code = None;
            return Ok(());
        }
        if live.attempts >= policy.max_attempts {
            let until = now.plus(policy.lockout);
            p.code = None;
            p.locked_until = Some(until);
            return Err(MemberError::LockedOut { until });
        }
        Err(MemberError::WrongCode {
            attempts_left: policy.max_attempts - live.attempts,
        })
    }

    /// Forgets everything about the phone `key` (erasure).
    pub fn forget(&mut self, key: &str) {
        self.phones.remove(key);
    }

    /// Drops what no longer matters: expired codes, ended lockouts, hour-old
    /// request times, and entries left empty.
    pub fn gc(&mut self, now: Timestamp) {
        self.phones.retain(|_, p| {
            trim(&mut p.requests, now);
            if p.code.as_ref().is_some_and(|c| c.expires_at <= now) {
                p.code = None;
            }
            if p.locked_until.is_some_and(|t| t <= now) {
                p.locked_until = None;
            }
            !p.idle(now)
        });
        self.devices.retain(|_, w| {
            trim(w, now);
            !w.is_empty()
        });
    }

    /// (phones, devices) tracked.
    pub fn len(&self) -> (usize, usize) {
        (self.phones.len(), self.devices.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHONE: &str = "m_phoneA";
    const OTHER: &str = "m_phoneB";
    const MAC: MacAddr = MacAddr([0x3c, 0x22, 0xfb, 0, 0, 1]);
    const MAC2: MacAddr = MacAddr([0x3c, 0x22, 0xfb, 0, 0, 2]);
    const T0: Timestamp = Timestamp(1_795_000_000_000);

    fn at(secs: u64) -> Timestamp {
        T0.plus(Duration::from_secs(secs))
    }

    fn book() -> OtpBook {
        OtpBook::new(OtpPolicy::default())
    }

    fn code(s: &str) -> String {
        s.to_string()
    }

    #[test]
    fn a_right_code_works_once() {
        let mut b = book();
        let exp = b.request(PHONE, MAC, code("123456"), T0).unwrap();
        assert_eq!(exp, at(300));
        assert!(b.verify(PHONE, " 123 456 ", at(10)).is_ok());
        assert!(matches!(
            b.verify(PHONE, "123456", at(11)),
            Err(MemberError::NoCode)
        ));
        assert!(matches!(
            b.verify(OTHER, "123456", at(11)),
            Err(MemberError::NoCode)
        ));
    }

    #[test]
    fn codes_expire() {
        let mut b = book();
        b.request(PHONE, MAC, code("123456"), T0).unwrap();
        assert!(matches!(
            b.verify(PHONE, "123456", at(300)),
            Err(MemberError::NoCode)
        ));
    }

    #[test]
    fn a_new_code_replaces_the_old_one() {
        let mut b = book();
        b.request(PHONE, MAC, code("111111"), T0).unwrap();
        b.request(PHONE, MAC, code("222222"), at(30)).unwrap();
        assert!(matches!(
            b.verify(PHONE, "111111", at(31)),
            Err(MemberError::WrongCode { attempts_left: 4 })
        ));
        assert!(b.verify(PHONE, "222222", at(32)).is_ok());
    }

    #[test]
    fn one_code_per_30s_and_five_per_hour_per_phone() {
        let mut b = book();
        b.request(PHONE, MAC, code("1"), T0).unwrap();
        match b.request(PHONE, MAC, code("2"), at(10)) {
            Err(MemberError::RateLimited { retry_after }) => {
                assert_eq!(retry_after, Duration::from_secs(20))
            }
            other => panic!("{other:?}"),
        }
        for i in 1..5 {
            b.request(PHONE, MAC2, code("x"), at(i * 60)).unwrap();
        }
        match b.request(PHONE, MAC2, code("x"), at(5 * 60)) {
            Err(MemberError::RateLimited { retry_after }) => {
                assert_eq!(retry_after, Duration::from_secs(3600 - 300))
            }
            other => panic!("{other:?}"),
        }
        // Another phone is not held up; this one is free an hour after its first.
        b.request(OTHER, MAC2, code("y"), at(5 * 60)).unwrap();
        b.request(PHONE, MAC2, code("z"), at(3600)).unwrap();
    }

    #[test]
    fn ten_requests_per_hour_per_device() {
        let mut b = book();
        for i in 0..10 {
            b.request(&format!("m_{i}"), MAC, code("1"), at(i)).unwrap();
        }
        match b.request("m_10", MAC, code("1"), at(100)) {
            Err(MemberError::RateLimited { retry_after }) => {
                assert_eq!(retry_after, Duration::from_secs(3500))
            }
            other => panic!("{other:?}"),
        }
        // Another device may; this one again once the first request is an hour old.
        b.request("m_10", MAC2, code("1"), at(100)).unwrap();
        b.request("m_11", MAC, code("1"), at(3600)).unwrap();
    }

    #[test]
    fn wrong_codes_are_capped_then_the_phone_is_locked_out() {
        let mut b = book();
        b.request(PHONE, MAC, code("123456"), T0).unwrap();
        for left in (1..5).rev() {
            match b.verify(PHONE, "000000", at(1)) {
                Err(MemberError::WrongCode { attempts_left }) => assert_eq!(attempts_left, left),
                other => panic!("{other:?}"),
            }
        }
        match b.verify(PHONE, "000000", at(2)) {
            Err(MemberError::LockedOut { until }) => assert_eq!(until, at(2 + 900)),
            other => panic!("{other:?}"),
        }
        // The right code no longer helps, and no new code is handed out.
        assert!(matches!(
            b.verify(PHONE, "123456", at(3)),
            Err(MemberError::LockedOut { .. })
        ));
        assert!(matches!(
            b.request(PHONE, MAC, code("654321"), at(60)),
            Err(MemberError::LockedOut { .. })
        ));
        // Junk input counts as a wrong guess and never panics.
        b.request(OTHER, MAC, code("123456"), at(4)).unwrap();
        assert!(matches!(
            b.verify(OTHER, &"9".repeat(10_000), at(5)),
            Err(MemberError::WrongCode { attempts_left: 4 })
        ));
        assert!(matches!(
            b.verify(OTHER, "１２３４５６", at(5)),
            Err(MemberError::WrongCode { attempts_left: 3 })
        ));
    }

    #[test]
    fn the_lockout_ends() {
        let mut b = book();
        b.request(PHONE, MAC, code("123456"), T0).unwrap();
        for _ in 0..5 {
            let _ = b.verify(PHONE, "000000", at(1));
        }
        assert!(matches!(
            b.request(PHONE, MAC, code("1"), at(900)),
            Err(MemberError::LockedOut { .. })
        ));
        b.request(PHONE, MAC, code("777777"), at(901)).unwrap();
        assert!(b.verify(PHONE, "777777", at(902)).is_ok());
    }

    #[test]
    fn gc_keeps_only_what_is_live() {
        let mut b = book();
        b.request(PHONE, MAC, code("1"), T0).unwrap();
        b.request(OTHER, MAC2, code("2"), at(1800)).unwrap();
        b.gc(at(3600));
        assert_eq!(b.len(), (1, 1), "PHONE's hour is over, OTHER's is not");
        b.forget(OTHER);
        b.gc(at(3600));
        assert_eq!(b.len().0, 0);
    }

    #[test]
    fn compare_in_constant_time() {
        assert!(constant_time_eq(b"123456", b"123456"));
        assert!(!constant_time_eq(b"123456", b"123457"));
        assert!(!constant_time_eq(b"123456", b"12345"));
        assert!(constant_time_eq(b"", b""));
    }
}
