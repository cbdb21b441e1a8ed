//! Manager sign-in over HTTP: the limits on sign-in attempts (per client
//! and in all) and on password checks running at once, the session
//! cookie and CSRF token checks. Pure bookkeeping that takes `now`. The
//! credential itself (the password hash, the session table) is the hub's
//! ([`crate::app::manager`]), since `ctl dashboard-password` changes it
//! too; it is re-exported here.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::time::Timestamp;

pub use crate::app::manager::{
    AuthError, GENERATED_PASSWORD_FILE, MAX_PASSWORD_BYTES, MAX_SESSIONS, MIN_PASSWORD_CHARS,
    SESSION_TTL, Session, Sessions, ensure_password, hash_password, random_password, set_password,
    stored_hash, verify_password, write_generated_password,
};

/// Sign-in attempts per client (IPv4 address, IPv6 /64) per window...
pub const MAX_ATTEMPTS: u32 = 5;
/// ...and from all clients together per window...
pub const MAX_ATTEMPTS_TOTAL: u32 = 30;
pub const ATTEMPT_WINDOW: Duration = Duration::from_secs(60);
/// ...for at most this many clients (more: the oldest windows are dropped).
pub const MAX_TRACKED_IPS: usize = 4096;
/// Password checks (argon2, 7 MiB each) running at once; a sign-in while
/// they are all busy gets `429` at once instead of waiting.
pub const MAX_VERIFYING: usize = 2;
/// The session cookie (`__Host-`: Secure, Path=/, no Domain).
pub const COOKIE: &str = "__Host-sg_session";

/// The budget key of a client address: IPv4 addresses (and IPv4-mapped
/// IPv6 ones) as they are, IPv6 by their /64, which one host can fill
/// with as many addresses as it likes (privacy addresses, `fe80::x`).
pub fn attempt_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(std::net::Ipv6Addr::from(bits))
        }
    }
}

/// First tries are let past a spent total budget until the total reaches
/// this many times the budget.
const FIRST_TRY_CEILING: u32 = 3;

/// One fixed window: when it started and the attempts in it.
type Window = (Timestamp, u32);

/// Sign-in attempts in fixed windows: per client (see [`attempt_key`])
/// first, then, so that rotating addresses buys no more guesses, for all
/// clients together ([`MAX_ATTEMPTS_TOTAL`]). A client's first attempt in
/// its window is never refused for the total: whoever spends the shared
/// budget from other addresses cannot lock the manager out.
pub struct AttemptLimiter {
    state: Mutex<Attempts>,
    max_total: u32,
    max_tracked: usize,
}

impl Default for AttemptLimiter {
    fn default() -> Self {
        AttemptLimiter::with_limits(MAX_ATTEMPTS_TOTAL, MAX_TRACKED_IPS)
    }
}

#[derive(Default)]
struct Attempts {
    per_key: HashMap<IpAddr, Window>,
    total: Option<Window>,
}

impl AttemptLimiter {
    /// A limiter allowing `max_total` attempts a window in all and
    /// tracking at most `max_tracked` clients.
    pub fn with_limits(max_total: u32, max_tracked: usize) -> Self {
        AttemptLimiter {
            state: Mutex::default(),
            max_total,
            max_tracked: max_tracked.max(1),
        }
    }

    /// Counts an attempt from `ip`; `Err(wait)` when over either limit
    /// (then nothing is counted).
    pub fn attempt(&self, ip: IpAddr, now: Timestamp) -> Result<(), Duration> {
        let key = attempt_key(ip);
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let a = &mut *guard;
        let live = |w: &Window| w.0.plus(ATTEMPT_WINDOW) > now;
        let wait = |w: &Window| now.until(w.0.plus(ATTEMPT_WINDOW));
        if let Some(w) = a.per_key.get(&key)
            && live(w)
            && w.1 >= MAX_ATTEMPTS
        {
            return Err(wait(w));
        }
        // A first try passes a spent budget, up to a hard ceiling: new
        // addresses cannot buy unbounded guesses either.
        let first = a.per_key.get(&key).is_none_or(|w| !live(w));
        if let Some(w) = a.total.as_ref()
            && live(w)
            && ((w.1 >= self.max_total && !first)
                || w.1 >= self.max_total.saturating_mul(FIRST_TRY_CEILING))
        {
            return Err(wait(w));
        }
        if a.per_key.len() >= self.max_tracked && !a.per_key.contains_key(&key) {
            a.per_key.retain(|_, w| live(w));
            // Still full: forget the oldest window rather than refuse a
            // newcomer, who may be the manager. The ceiling on the total
            // still bounds the guesses that buys.
            while a.per_key.len() >= self.max_tracked {
                let oldest = a.per_key.iter().min_by_key(|(_, w)| w.0).map(|(k, _)| *k);
                match oldest {
                    Some(k) => a.per_key.remove(&k),
                    None => break,
                };
            }
        }
        for w in [
            a.per_key.entry(key).or_insert((now, 0)),
            a.total.get_or_insert((now, 0)),
        ] {
            if !live(w) {
                *w = (now, 0);
            }
            w.1 += 1;
        }
        Ok(())
    }

    /// Client windows tracked now (live or not yet dropped).
    pub fn tracked(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .per_key
            .len()
    }
}

/// The dashboard's sign-in state.
pub struct Auth {
    /// Shared with the hub (`App::set_dashboard_password` signs all out).
    pub sessions: Arc<Sessions>,
    pub attempts: AttemptLimiter,
    /// Password checks running at once: each takes argon2's 7 MiB.
    pub verifying: Arc<Semaphore>,
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            sessions: Arc::new(Sessions::default()),
            attempts: AttemptLimiter::default(),
            verifying: Arc::new(Semaphore::new(MAX_VERIFYING)),
        }
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// Constant-time comparison of two tokens.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_are_limited_per_ip_and_window() {
        let l = AttemptLimiter::default();
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let t0 = Timestamp::from_secs(1_000_000);
        for _ in 0..MAX_ATTEMPTS {
            assert!(l.attempt(a, t0).is_ok());
        }
        assert!(l.attempt(a, t0).is_err());
        assert!(l.attempt(b, t0).is_ok());
        assert!(l.attempt(a, t0.plus(ATTEMPT_WINDOW)).is_ok());
    }
    #[test]
    fn ipv6_clients_share_the_budget_of_their_64() {
        let l = AttemptLimiter::default();
        let t0 = Timestamp::from_secs(1_000_000);
        for i in 0..MAX_ATTEMPTS {
            let ip: IpAddr = format!("fe80::{:x}", i + 1).parse().unwrap();
            assert!(l.attempt(ip, t0).is_ok());
        }
        // A fresh interface id in the same /64 gets no fresh budget.
        assert!(l.attempt("fe80::dead:beef".parse().unwrap(), t0).is_err());
        assert!(l.attempt("2001:db8:0:0:1::9".parse().unwrap(), t0).is_ok());
        assert!(l.attempt("2001:db8:0:1::9".parse().unwrap(), t0).is_ok());
        assert_eq!(
            attempt_key("2001:db8:1:2:3:4:5:6".parse().unwrap()),
            "2001:db8:1:2::".parse::<IpAddr>().unwrap()
        );
        // IPv4-mapped IPv6 is its IPv4 address, not a /64 of everyone.
        assert_eq!(
            attempt_key("::ffff:192.0.2.1".parse().unwrap()),
            "192.0.2.1".parse::<IpAddr>().unwrap()
        );
    }
    #[test]
    fn attempts_from_all_clients_together_are_limited() {
        let l = AttemptLimiter::default();
        let t0 = Timestamp::from_secs(1_000_000);
        let ip = |i: u32| IpAddr::from(std::net::Ipv4Addr::from(0xc000_0200 + i));
        // Six addresses spend the shared budget, five guesses each.
        for i in 0..MAX_ATTEMPTS_TOTAL {
            assert!(l.attempt(ip(i % 6), t0).is_ok(), "attempt {i}");
        }
        // A newcomer (the manager) still gets a first try...
        assert!(l.attempt(ip(1000), t0).is_ok());
        // ...but no second while the budget is spent.
        let wait = l.attempt(ip(1000), t0).unwrap_err();
        assert_eq!(wait, ATTEMPT_WINDOW);
        let later = t0.plus(Duration::from_secs(20));
        assert!(l.attempt(ip(1001), later).is_ok(), "first try of another");
        assert_eq!(l.attempt(ip(1001), later), Err(Duration::from_secs(40)));
        // New addresses buy first tries only up to a ceiling.
        let mut fresh = 2000;
        while l.attempt(ip(fresh), later).is_ok() {
            fresh += 1;
        }
        assert_eq!(
            fresh - 2000,
            3 * MAX_ATTEMPTS_TOTAL - MAX_ATTEMPTS_TOTAL - 2
        );
        assert!(l.attempt(ip(1002), t0.plus(ATTEMPT_WINDOW)).is_ok());
    }
    #[test]
    fn a_full_table_forgets_the_oldest_rather_than_refusing_newcomers() {
        let l = AttemptLimiter::with_limits(u32::MAX, 3);
        let t0 = Timestamp::from_secs(1_000_000);
        let ip = |i: u32| IpAddr::from(std::net::Ipv4Addr::from(0xc000_0200 + i));
        for i in 0..3 {
            let at = t0.plus(Duration::from_secs(u64::from(i)));
            for _ in 0..MAX_ATTEMPTS {
                assert!(l.attempt(ip(i), at).is_ok());
            }
        }
        assert_eq!(l.tracked(), 3);
        // Every window is live and the table is full: the manager, new
        // here, still gets in; the oldest window (ip 0) is dropped.
        let at = t0.plus(Duration::from_secs(5));
        assert!(l.attempt(ip(99), at).is_ok());
        assert_eq!(l.tracked(), 3);
        assert!(l.attempt(ip(2), at).is_err(), "newer windows are kept");
        assert!(l.attempt(ip(0), at).is_ok(), "the oldest was forgotten");
    }
    #[test]
    fn cookies_and_tokens() {
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::COOKIE,
            "a=1; __Host-sg_session=abc ; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&h, COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abc", "abd"));
        assert!(!same_token("abc", "ab"));
    }
}
