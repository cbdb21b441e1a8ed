//! Checks shared by the sections: durations, addresses, URLs, paths and
//! the reading of files the config names, each failing with a
//! [`ConfigError`] that names the key.

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::ConfigError;
use super::duration::parse_duration;

/// `"0.0.0.0:2050"` or `"[::]:8443"`.
pub(super) fn socket_addr(key: &str, s: &str) -> Result<SocketAddr, ConfigError> {
    s.parse().map_err(|_| {
        ConfigError::new(
            key,
            format!("{s:?} is not an address and port such as \"0.0.0.0:2050\""),
        )
    })
}

/// Any duration, zero included.
pub(super) fn duration(key: &str, s: &str) -> Result<Duration, ConfigError> {
    parse_duration(s).map_err(|p| ConfigError::new(key, p))
}

/// A duration of at least one second.
pub(super) fn positive(key: &str, s: &str) -> Result<Duration, ConfigError> {
    let d = duration(key, s)?;
    if d < Duration::from_secs(1) {
        return Err(ConfigError::new(key, "must be at least 1s"));
    }
    Ok(d)
}

/// A path that is not blank; whether it exists is the caller's concern.
pub(super) fn non_empty_path(key: &str, s: &str) -> Result<PathBuf, ConfigError> {
    if s.trim().is_empty() || s.contains('\0') {
        return Err(ConfigError::new(key, "must be a file system path"));
    }
    Ok(PathBuf::from(s))
}

/// An optional path key: absent stays absent, present must not be blank.
pub(super) fn optional_path(key: &str, s: Option<String>) -> Result<Option<PathBuf>, ConfigError> {
    s.map(|p| non_empty_path(key, &p)).transpose()
}

/// The text of a file the config names, read at load so that a missing,
/// unreadable or oversized file is refused like any other bad value (and
/// `check-config` sees it). Such files are small; the cap keeps a wrong
/// path (a log, a device) from stalling the load. The error never quotes
/// the file's content: it may be a secret.
pub(super) fn read_text(key: &str, path: &Path, max_bytes: u64) -> Result<String, ConfigError> {
    let shown = path.display();
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(max_bytes + 1).read_to_end(&mut bytes))
        .map_err(|e| ConfigError::new(key, format!("cannot read {shown}: {e}")))?;
    if bytes.len() as u64 > max_bytes {
        return Err(ConfigError::new(
            key,
            format!("{shown} is larger than {max_bytes} bytes"),
        ));
    }
    String::from_utf8(bytes)
        .map_err(|_| ConfigError::new(key, format!("{shown} is not UTF-8 text")))
}

/// An absolute URL with a host, checked by the `http` crate that later
/// sends or serves requests with it, so a URL the daemon could not use is
/// refused at load rather than on every request. Paths are appended to it
/// (`{url}/events`, `{url}login`), which a query or fragment would break.
pub(super) fn base_url(key: &str, s: &str) -> Result<http::Uri, ConfigError> {
    let bad = |why: String| ConfigError::new(key, format!("{s:?} is not a usable URL: {why}"));
    let uri: http::Uri = s
        .parse()
        .map_err(|e: http::uri::InvalidUri| bad(e.to_string()))?;
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad("it has no host".into()));
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        // `http://127.0.0.1@evil.example/` goes to evil.example: a user
        // name in front of the host only disguises where it points.
        return Err(bad("it must not carry a user name or password".into()));
    }
    if uri.query().is_some() || s.contains('#') {
        return Err(bad(
            "it must not have a query or fragment (paths are appended to it)".into(),
        ));
    }
    Ok(uri)
}
