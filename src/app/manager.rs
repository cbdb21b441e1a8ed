//! The store manager's credential: the dashboard password (argon2id, its
//! PHC string in the store's `Meta` tree) and the table of signed-in
//! sessions with their CSRF tokens. The dashboard signs managers in with
//! it; `ctl dashboard-password` replaces the password and signs every
//! session out, which is why it lives in the hub and not the dashboard.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;

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
}
