//! `[hq]`: where events, texts and sync go, how requests to HQ are
//! secured (the signing secret, a pinned CA, a client certificate) and
//! their time limits.
//!
//! The signing secret is resolved here: `hq.secret_file` is read at load
//! and checked like an inline `hq.secret`, so a bad secret stops
//! `check-config` as it would stop `run`. The CA and client certificate
//! files are parsed where the HTTPS client is built
//! (`crate::uplink::delivery::client_for`), which the command line also
//! calls before the daemon starts.

use std::fmt;
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;

use super::ConfigError;
use super::check::{base_url, duration, non_empty_path, optional_path, read_text};
use super::raw::RawHq;

/// The key lengths, in bytes, the signer takes from a `whsec_` secret (a
/// test keeps this equal to `uplink::signing`'s bounds).
pub const SECRET_KEY_BYTES: RangeInclusive<usize> = 16..=1024;

/// A secret file holds one line of at most ~1.4 kB; more is not a secret.
const MAX_SECRET_FILE_BYTES: u64 = 16 * 1024;

#[derive(Clone)]
pub struct HqConfig {
    pub url: String,
    pub secret: Secret,
    pub ca_file: Option<PathBuf>,
    /// The box's own certificate for mutual TLS, when HQ asks for one.
    pub client_cert: Option<ClientCert>,
    pub gzip: bool,
    /// Time to set up the TCP connection.
    pub connect_timeout: Duration,
    /// Time for a whole request: connect, TLS handshake, send, answer.
    pub timeout: Duration,
    /// How often `{url}/sync` is fetched.
    pub sync_interval: Duration,
}

/// `hq.client_cert` and `hq.client_key`: PEM files, read at startup.
#[derive(Debug, Clone)]
pub struct ClientCert {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// The HQ signing secret (`whsec_` and a base64 key), checked at load:
/// `hq.secret` as written, or the trimmed content of `hq.secret_file`.
/// `Debug` never shows it.
#[derive(Clone)]
pub struct Secret {
    value: String,
    file: Option<PathBuf>,
}

impl Secret {
    /// The `whsec_...` text, for the signing key.
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// The file it was read from (`hq.secret_file`); `None` when inline.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Secret");
        if let Some(file) = &self.file {
            s.field("file", file);
        }
        s.field("value", &"whsec_***").finish()
    }
}

impl fmt::Debug for HqConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HqConfig")
            .field("url", &self.url)
            .field("secret", &self.secret)
            .field("ca_file", &self.ca_file)
            .field("client_cert", &self.client_cert)
            .field("gzip", &self.gzip)
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("sync_interval", &self.sync_interval)
            .finish()
    }
}

pub(super) fn validate(raw: RawHq) -> Result<HqConfig, ConfigError> {
    let url = raw.url.trim_end_matches('/').to_string();
    hq_url(&url)?;
    let secret = match (raw.secret, raw.secret_file) {
        (Some(value), None) => {
            check_secret(&value)?;
            Secret { value, file: None }
        }
        (None, Some(p)) => secret_from_file(non_empty_path("hq.secret_file", &p)?)?,
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                "hq.secret",
                "set either hq.secret or hq.secret_file, not both",
            ));
        }
        (None, None) => {
            return Err(ConfigError::new(
                "hq.secret",
                "is required with [hq] (or hq.secret_file)",
            ));
        }
    };
    let client_cert = match (raw.client_cert, raw.client_key) {
        (None, None) => None,
        (Some(_), None) => {
            return Err(ConfigError::new(
                "hq.client_key",
                "is required with hq.client_cert (the private key of the certificate); set both for mutual TLS, or neither",
            ));
        }
        (None, Some(_)) => {
            return Err(ConfigError::new(
                "hq.client_cert",
                "is required with hq.client_key (the certificate chain, leaf first); set both for mutual TLS, or neither",
            ));
        }
        (Some(cert), Some(key)) => Some(ClientCert {
            cert: non_empty_path("hq.client_cert", &cert)?,
            key: non_empty_path("hq.client_key", &key)?,
        }),
    };
    let connect_timeout = hq_timeout("hq.connect_timeout", &raw.connect_timeout)?;
    let timeout = hq_timeout("hq.timeout", &raw.timeout)?;
    if connect_timeout > timeout {
        return Err(ConfigError::new(
            "hq.connect_timeout",
            "must not be longer than hq.timeout (which covers the whole request, connecting included)",
        ));
    }
    Ok(HqConfig {
        url,
        secret,
        ca_file: optional_path("hq.ca_file", raw.ca_file)?,
        client_cert,
        gzip: raw.gzip,
        connect_timeout,
        timeout,
        sync_interval: sync_interval(&raw.sync_interval)?,
    })
}

/// HTTPS, or plain http to this machine only (a local relay or a test):
/// events and member phone numbers must not cross a network in clear.
fn hq_url(url: &str) -> Result<(), ConfigError> {
    const KEY: &str = "hq.url";
    let refused = || {
        ConfigError::new(
            KEY,
            format!("{url:?} must be an https:// URL (plain http is allowed only to loopback)"),
        )
    };
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(refused());
    }
    let uri = base_url(KEY, url)?;
    if uri.scheme_str() == Some("http") {
        let host = uri.host().unwrap_or("");
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if !loopback {
            return Err(refused());
        }
    }
    Ok(())
}

/// `hq.secret_file`: one line, surrounding whitespace (a trailing newline)
/// ignored, checked like `hq.secret`. Errors name the file, never its content.
fn secret_from_file(path: PathBuf) -> Result<Secret, ConfigError> {
    const KEY: &str = "hq.secret_file";
    let text = read_text(KEY, &path, MAX_SECRET_FILE_BYTES)?;
    let value = text.trim().to_string();
    if let Some(problem) = secret_problem(&value) {
        return Err(ConfigError::new(
            KEY,
            format!("{}: {problem}", path.display()),
        ));
    }
    Ok(Secret {
        value,
        file: Some(path),
    })
}

/// A Standard Webhooks secret: `whsec_` and the base64 (padding optional)
/// of a key the signer takes. Errors name `hq.secret`.
pub fn check_secret(s: &str) -> Result<(), ConfigError> {
    match secret_problem(s) {
        Some(problem) => Err(ConfigError::new("hq.secret", problem)),
        None => Ok(()),
    }
}

/// What is wrong with `s` as a secret, without quoting it.
fn secret_problem(s: &str) -> Option<String> {
    let key = s
        .strip_prefix("whsec_")
        .and_then(|b64| {
            base64::engine::general_purpose::STANDARD_PAD_INDIFFERENT
                .decode(b64)
                .ok()
        })
        .map(|key| key.len());
    match key {
        Some(n) if SECRET_KEY_BYTES.contains(&n) => None,
        Some(n) => Some(format!(
            "the key is {n} bytes; it must be {} to {} bytes (24 to 64 recommended)",
            SECRET_KEY_BYTES.start(),
            SECRET_KEY_BYTES.end()
        )),
        None => Some(format!(
            "must be \"whsec_\" followed by the base64 key ({} to {} bytes)",
            SECRET_KEY_BYTES.start(),
            SECRET_KEY_BYTES.end()
        )),
    }
}

/// `hq.sync_interval`: from 10s (HQ serves every store) to 1d.
fn sync_interval(s: &str) -> Result<Duration, ConfigError> {
    let d = duration("hq.sync_interval", s)?;
    if d < Duration::from_secs(10) || d > Duration::from_secs(86_400) {
        return Err(ConfigError::new(
            "hq.sync_interval",
            format!("{s:?} must be between 10s and 1d"),
        ));
    }
    Ok(d)
}

/// An HQ timeout: from 100ms to 10m.
fn hq_timeout(key: &str, s: &str) -> Result<Duration, ConfigError> {
    let d = duration(key, s)?;
    if d < Duration::from_millis(100) || d > Duration::from_secs(600) {
        return Err(ConfigError::new(
            key,
            format!("{s:?} must be between 100ms and 10m"),
        ));
    }
    Ok(d)
}
