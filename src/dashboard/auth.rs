//! Manager sign-in: the password (argon2id, its PHC string in the store's
//! `Meta` tree), the server-side session table with CSRF tokens, and the
//! limits on sign-in attempts (per client and in all) and on password
//! checks running at once. Pure bookkeeping that takes `now`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;
use tokio::sync::Semaphore;

use crate::store::{Store, StoreError, Tree};
use crate::time::Timestamp;

/// Where the password hash is kept (`Meta` tree).
const PASSWORD_KEY: &[u8] = b"dashboard.password";
pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// How long a session lasts after sign-in.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
/// Sessions kept at once; the oldest goes first.
pub const MAX_SESSIONS: usize = 64;
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

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(
        "the password must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_BYTES} bytes, without control characters"
    )]
    BadPassword,
    #[error("cannot hash the password: {0}")]
    Hash(String),
    #[error("dashboard.password_file: cannot read {path}: {reason}")]
    File { path: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn check(password: &str) -> Result<(), AuthError> {
    let ok = password.chars().count() >= MIN_PASSWORD_CHARS
        && password.len() <= MAX_PASSWORD_BYTES
        && !password.chars().any(char::is_control);
    ok.then_some(()).ok_or(AuthError::BadPassword)
}

/// argon2id with OWASP's low-memory setting (7 MiB, 5 passes, 1 lane)
/// rather than the crate's 19 MiB: a small router has little RAM to spare
/// for one sign-in. Verifying reads the parameters from the stored hash.
fn hasher() -> Argon2<'static> {
    let params = argon2::Params::new(7 * 1024, 5, 1, None).unwrap_or_default();
    Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

/// An argon2id PHC string.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    check(password)?;
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Does `password` match the PHC string? A malformed hash matches nothing.
pub fn verify_password(phc: &str, password: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// Hashes and stores the manager password (flushed before it returns).
pub fn set_password(store: &dyn Store, password: &str) -> Result<(), AuthError> {
    let phc = hash_password(password)?;
    store.put(Tree::Meta, PASSWORD_KEY, phc.as_bytes())?;
    store.flush()?;
    Ok(())
}

/// The stored PHC string, if any.
pub fn stored_hash(store: &dyn Store) -> Result<Option<String>, StoreError> {
    Ok(store
        .get(Tree::Meta, PASSWORD_KEY)?
        .and_then(|v| String::from_utf8(v).ok()))
}

/// At start: with no stored password, the first one comes from
/// `password_file`, or is made up. Returns the made-up password (to be
/// shown once), if one was made.
pub fn ensure_password(
    store: &dyn Store,
    password_file: Option<&Path>,
) -> Result<Option<String>, AuthError> {
    if stored_hash(store)?.is_some() {
        return Ok(None);
    }
    if let Some(path) = password_file {
        let text = std::fs::read_to_string(path).map_err(|e| AuthError::File {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        set_password(store, text.trim_end_matches(['\r', '\n']))?;
        return Ok(None);
    }
    let password = random_password();
    set_password(store, &password)?;
    Ok(Some(password))
}

/// Where a made-up first password is written, in the state directory.
pub const GENERATED_PASSWORD_FILE: &str = "dashboard-password";

/// Writes a made-up password to [`GENERATED_PASSWORD_FILE`] in `dir`,
/// readable by its owner only: created with mode 0600 (never readable by
/// others, not even for a moment), replacing any older file. Returns its
/// path. The password stays out of the logs (syslog, journald).
pub fn write_generated_password(dir: &Path, password: &str) -> std::io::Result<std::path::PathBuf> {
    use std::io::Write;
    let path = dir.join(GENERATED_PASSWORD_FILE);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path)?;
    writeln!(file, "{password}")?;
    file.sync_all()?;
    Ok(path)
}

/// 16 characters from an alphabet without look-alikes (~90 bits).
pub fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzACDEFGHJKLMNPQRTUVWXY34679";
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

fn random_hex32() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One signed-in manager.
#[derive(Debug, Clone)]
pub struct Session {
    pub csrf: String,
    pub created: Timestamp,
    pub expires: Timestamp,
}

/// Sessions by id (32 random bytes, hex).
#[derive(Default)]
pub struct Sessions(Mutex<HashMap<String, Session>>);

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new session; returns its id and CSRF token.
    pub fn create(&self, now: Timestamp) -> (String, Session) {
        let mut map = self.lock();
        map.retain(|_, s| s.expires > now);
        while map.len() >= MAX_SESSIONS {
            let oldest = map
                .iter()
                .min_by_key(|(_, s)| s.created)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => map.remove(&k),
                None => break,
            };
        }
        let session = Session {
            csrf: random_hex32(),
            created: now,
            expires: now.plus(SESSION_TTL),
        };
        let id = random_hex32();
        map.insert(id.clone(), session.clone());
        (id, session)
    }

    /// The live session with this id.
    pub fn get(&self, id: &str, now: Timestamp) -> Option<Session> {
        let mut map = self.lock();
        match map.get(id) {
            Some(s) if s.expires > now => Some(s.clone()),
            Some(_) => {
                map.remove(id);
                None
            }
            None => None,
        }
    }

    pub fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

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

/// One fixed window: when it started and the attempts in it.
type Window = (Timestamp, u32);

/// Sign-in attempts in fixed windows: per client (see [`attempt_key`])
/// and, so that rotating addresses buys no more guesses, for all clients
/// together ([`MAX_ATTEMPTS_TOTAL`]).
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
        if let Some(w) = a.total.as_ref()
            && live(w)
            && w.1 >= self.max_total
        {
            return Err(wait(w));
        }
        if a.per_key.len() >= self.max_tracked && !a.per_key.contains_key(&key) {
            a.per_key.retain(|_, w| live(w));
            // Still full: forget the oldest window rather than refuse a
            // newcomer, who may be the manager. The total budget still
            // bounds the guesses that buys.
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
    pub sessions: Sessions,
    pub attempts: AttemptLimiter,
    /// Password checks running at once: each takes argon2's 7 MiB.
    pub verifying: Arc<Semaphore>,
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            sessions: Sessions::default(),
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
    use crate::store::MemoryStore;

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{h}");
        assert!(verify_password(&h, "correct horse"));
        assert!(!verify_password(&h, "wrong horse"));
        assert!(!verify_password("garbage", "correct horse"));
        assert!(matches!(
            hash_password("short"),
            Err(AuthError::BadPassword)
        ));
    }

    #[test]
    fn first_password_is_generated_once_or_read_from_the_file() {
        let store = MemoryStore::new();
        let made = ensure_password(&store, None).unwrap().unwrap();
        assert_eq!(made.len(), 16);
        assert!(verify_password(
            &stored_hash(&store).unwrap().unwrap(),
            &made
        ));
        assert_eq!(ensure_password(&store, None).unwrap(), None);

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "from the file\n").unwrap();
        let store = MemoryStore::new();
        assert_eq!(ensure_password(&store, Some(&file)).unwrap(), None);
        assert!(verify_password(
            &stored_hash(&store).unwrap().unwrap(),
            "from the file"
        ));
    }

    #[test]
    fn a_made_up_password_goes_to_an_owner_only_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(GENERATED_PASSWORD_FILE), "old\n").unwrap();
        let path = write_generated_password(dir.path(), "abcdefgh12345678").unwrap();
        assert_eq!(path, dir.path().join(GENERATED_PASSWORD_FILE));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "abcdefgh12345678\n"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        }
    }

    #[test]
    fn sessions_expire_and_are_bounded() {
        let s = Sessions::default();
        let t0 = Timestamp::from_secs(1_000_000);
        let (id, session) = s.create(t0);
        assert_eq!(id.len(), 64);
        assert_eq!(s.get(&id, t0).unwrap().csrf, session.csrf);
        assert!(s.get(&id, t0.plus(SESSION_TTL)).is_none());
        for i in 0..(MAX_SESSIONS as i64 + 10) {
            s.create(t0.plus(Duration::from_secs(i as u64)));
        }
        assert_eq!(s.len(), MAX_SESSIONS);
    }

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
        for i in 0..MAX_ATTEMPTS_TOTAL {
            assert!(l.attempt(ip(i), t0).is_ok(), "attempt {i}");
        }
        let wait = l.attempt(ip(1000), t0).unwrap_err();
        assert_eq!(wait, ATTEMPT_WINDOW);
        let later = t0.plus(Duration::from_secs(20));
        assert_eq!(l.attempt(ip(1001), later), Err(Duration::from_secs(40)));
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
