//! The TOML config file: `raw` mirrors the file (unknown keys rejected),
//! this module turns it into checked runtime types. Every error names the
//! key it is about, as `section.key: what is wrong`.

mod duration;
mod raw;
pub mod uci;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;

pub use duration::parse_duration;
pub use raw::RawConfig;

use crate::net::MacAddr;

/// A config problem, naming the key (`portal.session_timeout`) and what is
/// wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {problem}")]
pub struct ConfigError {
    pub key: String,
    pub problem: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, problem: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            problem: problem.into(),
        }
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub store: StoreConfig,
    pub lan: LanConfig,
    pub portal: PortalConfig,
    pub firewall: FirewallBackend,
    pub presence: PresenceConfig,
    pub members: MembersConfig,
    pub privacy: PrivacyConfig,
    pub storage: StorageConfig,
    pub hq: Option<HqConfig>,
    pub dashboard: DashboardConfig,
    pub control: ControlConfig,
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `[a-z0-9-]{1,64}`; appears in every event as `/stores/{id}`.
    pub id: String,
    pub name: String,
    pub timezone: String,
}

#[derive(Debug, Clone)]
pub struct LanConfig {
    /// The guest LAN interface (a bridge on most routers).
    pub interface: String,
}

#[derive(Debug, Clone)]
pub struct PortalConfig {
    pub listen: SocketAddr,
    /// Set when the operator fixed the URL; otherwise it is derived from
    /// the LAN address at start.
    pub url: Option<String>,
    pub session_timeout: Duration,
    pub idle_timeout: Duration,
    pub walled_garden: Vec<IpNet>,
    /// Concurrent connections served; more wait in the kernel's backlog.
    pub max_connections: usize,
    pub default_language: Language,
}

/// Languages the portal speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    ZhCn,
    En,
}

impl Language {
    pub fn tag(self) -> &'static str {
        match self {
            Language::ZhCn => "zh-CN",
            Language::En => "en",
        }
    }

    pub fn from_tag(tag: &str) -> Option<Self> {
        let tag = tag.trim().to_ascii_lowercase();
        if tag == "zh" || tag.starts_with("zh-") || tag.starts_with("zh_") {
            Some(Language::ZhCn)
        } else if tag == "en" || tag.starts_with("en-") || tag.starts_with("en_") {
            Some(Language::En)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirewallBackend {
    Nftables,
    /// No enforcement: the demo and tests without root.
    None,
}

#[derive(Debug, Clone)]
pub struct PresenceConfig {
    pub probe_after: Duration,
    pub leave_after: Duration,
    pub rejoin_gap: Duration,
    pub staff_devices: Vec<MacAddr>,
    pub fingerprint_file: Option<PathBuf>,
    /// A device present this long on a day counts that day as "resident".
    pub resident_min_daily: Duration,
    /// ... and on this many of the last 7 days is a resident.
    pub resident_min_days: u32,
    /// How often a `footfall.summary` event goes to HQ.
    pub summary_interval: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembersConfig {
    /// A device binding not seen for this many days expires.
    pub remember_days: u32,
    /// Devices remembered per member; a new one replaces the oldest.
    pub max_devices: u32,
    /// Digits put in front of a national phone number (no `+`), e.g. "86".
    pub default_country_code: String,
    /// How long a texted code stays valid.
    pub otp_ttl: Duration,
    /// Wrong codes accepted per code before the phone is locked out.
    pub otp_max_attempts: u32,
    /// How long a phone stays locked out after too many wrong codes.
    pub otp_lockout: Duration,
    /// Allowed member number lengths, inclusive (`"8-12"`, or `"10"`).
    pub member_number_digits: (u32, u32),
    pub member_number_check: MemberNumberCheck,
    /// Version of the consent texts, recorded with every consent.
    pub consent_version: String,
}

impl Default for MembersConfig {
    /// The documented defaults.
    fn default() -> Self {
        MembersConfig {
            remember_days: 180,
            max_devices: 1,
            default_country_code: "86".into(),
            otp_ttl: Duration::from_secs(300),
            otp_max_attempts: 5,
            otp_lockout: Duration::from_secs(900),
            member_number_digits: (6, 16),
            member_number_check: MemberNumberCheck::None,
            consent_version: "1".into(),
        }
    }
}

/// How a member number is checked beyond its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberNumberCheck {
    None,
    /// The last digit is a Luhn (mod 10) check digit.
    Luhn,
}

#[derive(Debug, Clone)]
pub struct PrivacyConfig {
    pub device_key_file: Option<PathBuf>,
    /// Device records with no member are forgotten after this many days
    /// without a sighting.
    pub forget_unbound_after_days: u32,
}

/// The default cap on queued events (`storage.outbox_max_events`): days
/// of a busy store's events with HQ away, and a few hundred MB of flash at
/// most. Defined here, with the key, so the config needs nothing from the
/// outbox; the outbox uses it for its own default.
pub const DEFAULT_OUTBOX_MAX_EVENTS: usize = 200_000;

#[derive(Debug, Clone)]
pub struct StorageConfig {
    pub path: PathBuf,
    /// Queued events past which the oldest are dropped (summaries first).
    pub outbox_max_events: usize,
}

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

/// Where the HQ signing secret comes from. `Debug` never shows it.
#[derive(Clone)]
pub enum Secret {
    Inline(String),
    File(PathBuf),
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

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Inline(_) => f.write_str("Inline(\"whsec_***\")"),
            Secret::File(p) => f.debug_tuple("File").field(p).finish(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct DashboardConfig {
    pub listen: SocketAddr,
    /// Both or neither; neither: a self-signed certificate generated once
    /// and kept in `storage.path`.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub password_file: Option<PathBuf>,
    pub metrics_public: bool,
    pub max_connections: usize,
}

#[derive(Debug, Clone)]
pub struct ControlConfig {
    pub socket: PathBuf,
}

/// Why a config file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(#[from] ConfigError),
}

impl Config {
    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Config, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Ok(Config::parse(&text)?)
    }

    /// Parses and validates config text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let de = toml::Deserializer::new(text);
        let raw: RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let message = inner.message().to_string();
            // The path already ends with an unknown key's name; at the top
            // level it is "." and the name is only in the message.
            let key = match (path.as_str(), unknown_field(&message)) {
                (".", Some(field)) => field.to_string(),
                (".", None) => "(file)".to_string(),
                _ => path,
            };
            let line = inner
                .span()
                .map(|s| format!(" (line {})", line_of(text, s.start)))
                .unwrap_or_default();
            let problem = if message.starts_with("unknown field") {
                format!("unknown key{line}; {}", expected_part(&message))
            } else {
                format!("{}{line}", message.trim())
            };
            ConfigError::new(key, problem)
        })?;
        Config::try_from(raw)
    }
}

fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

fn expected_part(message: &str) -> String {
    match message.find("expected") {
        Some(at) => message[at..].trim().to_string(),
        None => "remove it".to_string(),
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map(|t| t.bytes().filter(|&b| b == b'\n').count() + 1)
        .unwrap_or(0)
}

impl TryFrom<RawConfig> for Config {
    type Error = ConfigError;

    fn try_from(raw: RawConfig) -> Result<Self, ConfigError> {
        let store = validate_store(raw.store)?;
        let lan = LanConfig {
            interface: validate_interface("lan.interface", &raw.lan.interface)?,
        };
        let portal = validate_portal(raw.portal)?;
        let dashboard = validate_dashboard(raw.dashboard)?;
        // The firewall keeps guests off the dashboard's port.
        if dashboard.listen.port() == portal.listen.port() {
            return Err(ConfigError::new(
                "dashboard.listen",
                format!(
                    "port {} is the portal's (portal.listen); the dashboard needs its own",
                    portal.listen.port()
                ),
            ));
        }
        let firewall = match raw.firewall.backend.as_str() {
            "nftables" => FirewallBackend::Nftables,
            "none" => FirewallBackend::None,
            other => {
                return Err(ConfigError::new(
                    "firewall.backend",
                    format!("{other:?} is not a backend; use \"nftables\" or \"none\""),
                ));
            }
        };
        let presence = PresenceConfig {
            probe_after: positive("presence.probe_after", &raw.presence.probe_after)?,
            leave_after: positive("presence.leave_after", &raw.presence.leave_after)?,
            rejoin_gap: duration("presence.rejoin_gap", &raw.presence.rejoin_gap)?,
            staff_devices: raw
                .presence
                .staff_devices
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    s.parse::<MacAddr>().map_err(|e| {
                        ConfigError::new(format!("presence.staff_devices[{i}]"), e.to_string())
                    })
                })
                .collect::<Result<_, _>>()?,
            fingerprint_file: raw
                .presence
                .fingerprint_file
                .map(|p| non_empty_path("presence.fingerprint_file", &p))
                .transpose()?,
            resident_min_daily: positive(
                "presence.resident_min_daily",
                &raw.presence.resident_min_daily,
            )?,
            resident_min_days: raw.presence.resident_min_days,
            summary_interval: positive(
                "presence.summary_interval",
                &raw.presence.summary_interval,
            )?,
        };
        if !(1..=7).contains(&presence.resident_min_days) {
            return Err(ConfigError::new(
                "presence.resident_min_days",
                "must be between 1 and 7 (days of the last week)",
            ));
        }
        if presence.leave_after < presence.probe_after {
            return Err(ConfigError::new(
                "presence.leave_after",
                "must not be shorter than presence.probe_after (a silent device is probed before it is declared gone)",
            ));
        }
        let members = validate_members(raw.members)?;
        if !(1..=3650).contains(&raw.privacy.forget_unbound_after_days) {
            return Err(ConfigError::new(
                "privacy.forget_unbound_after_days",
                "must be between 1 and 3650",
            ));
        }
        if !(10..=10_000_000).contains(&raw.storage.outbox_max_events) {
            return Err(ConfigError::new(
                "storage.outbox_max_events",
                "must be between 10 and 10000000",
            ));
        }
        let storage = StorageConfig {
            path: non_empty_path("storage.path", &raw.storage.path)?,
            outbox_max_events: raw.storage.outbox_max_events as usize,
        };
        let hq = raw.hq.map(validate_hq).transpose()?;
        Ok(Config {
            store,
            lan,
            portal,
            firewall,
            presence,
            members,
            privacy: PrivacyConfig {
                forget_unbound_after_days: raw.privacy.forget_unbound_after_days,
                device_key_file: raw
                    .privacy
                    .device_key_file
                    .map(|p| non_empty_path("privacy.device_key_file", &p))
                    .transpose()?,
            },
            storage,
            hq,
            dashboard,
            control: ControlConfig {
                socket: non_empty_path("control.socket", &raw.control.socket)?,
            },
        })
    }
}

fn validate_dashboard(raw: raw::RawDashboard) -> Result<DashboardConfig, ConfigError> {
    let path = |key: &str, p: Option<String>| p.map(|p| non_empty_path(key, &p)).transpose();
    let cert = path("dashboard.cert_file", raw.cert_file)?;
    let key = path("dashboard.key_file", raw.key_file)?;
    let tls = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        (Some(_), None) => {
            return Err(ConfigError::new(
                "dashboard.key_file",
                "is needed with dashboard.cert_file (both or neither)",
            ));
        }
        (None, Some(_)) => {
            return Err(ConfigError::new(
                "dashboard.cert_file",
                "is needed with dashboard.key_file (both or neither)",
            ));
        }
    };
    if !(1..=1024).contains(&raw.max_connections) {
        return Err(ConfigError::new(
            "dashboard.max_connections",
            "must be between 1 and 1024",
        ));
    }
    Ok(DashboardConfig {
        listen: socket_addr("dashboard.listen", &raw.listen)?,
        tls,
        password_file: path("dashboard.password_file", raw.password_file)?,
        metrics_public: raw.metrics_public,
        max_connections: raw.max_connections as usize,
    })
}

fn validate_members(raw: raw::RawMembers) -> Result<MembersConfig, ConfigError> {
    if !(1..=3650).contains(&raw.remember_days) {
        return Err(ConfigError::new(
            "members.remember_days",
            "must be between 1 and 3650",
        ));
    }
    if !(1..=16).contains(&raw.max_devices) {
        return Err(ConfigError::new(
            "members.max_devices",
            "must be between 1 and 16",
        ));
    }
    let cc = &raw.default_country_code;
    if !(1..=3).contains(&cc.len())
        || !cc.bytes().all(|b| b.is_ascii_digit())
        || cc.starts_with('0')
    {
        return Err(ConfigError::new(
            "members.default_country_code",
            format!("{cc:?} must be a calling code of 1 to 3 digits without '+', such as \"86\""),
        ));
    }
    let otp_ttl = positive("members.otp_ttl", &raw.otp_ttl)?;
    if !(Duration::from_secs(30)..=Duration::from_secs(3600)).contains(&otp_ttl) {
        return Err(ConfigError::new(
            "members.otp_ttl",
            "must be between 30s and 1h",
        ));
    }
    if !(1..=20).contains(&raw.otp_max_attempts) {
        return Err(ConfigError::new(
            "members.otp_max_attempts",
            "must be between 1 and 20",
        ));
    }
    let otp_lockout = positive("members.otp_lockout", &raw.otp_lockout)?;
    if otp_lockout > Duration::from_secs(86_400) {
        return Err(ConfigError::new(
            "members.otp_lockout",
            "must be at most 24h",
        ));
    }
    let digits = member_number_digits(&raw.member_number_digits).ok_or_else(|| {
        ConfigError::new(
            "members.member_number_digits",
            format!(
                "{:?} must be a length such as \"10\" or a range such as \"8-12\", within 1-32",
                raw.member_number_digits
            ),
        )
    })?;
    let check = match raw.member_number_check.as_str() {
        "none" => MemberNumberCheck::None,
        "luhn" => MemberNumberCheck::Luhn,
        other => {
            return Err(ConfigError::new(
                "members.member_number_check",
                format!("{other:?} is not a check; use \"none\" or \"luhn\""),
            ));
        }
    };
    if check == MemberNumberCheck::Luhn && digits.0 < 2 {
        return Err(ConfigError::new(
            "members.member_number_digits",
            "must allow at least 2 digits with the luhn check",
        ));
    }
    let version = &raw.consent_version;
    if !(1..=32).contains(&version.len())
        || !version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err(ConfigError::new(
            "members.consent_version",
            format!("{version:?} must be 1 to 32 characters of a-z, A-Z, 0-9, '.', '_' and '-'"),
        ));
    }
    Ok(MembersConfig {
        remember_days: raw.remember_days,
        max_devices: raw.max_devices,
        default_country_code: raw.default_country_code,
        otp_ttl,
        otp_max_attempts: raw.otp_max_attempts,
        otp_lockout,
        member_number_digits: digits,
        member_number_check: check,
        consent_version: raw.consent_version,
    })
}

/// `"10"` or `"8-12"` → (min, max), within 1..=32.
fn member_number_digits(s: &str) -> Option<(u32, u32)> {
    let (lo, hi) = match s.split_once('-') {
        Some((lo, hi)) => (lo.trim().parse().ok()?, hi.trim().parse().ok()?),
        None => {
            let n = s.trim().parse().ok()?;
            (n, n)
        }
    };
    (1 <= lo && lo <= hi && hi <= 32).then_some((lo, hi))
}

fn validate_store(raw: raw::RawStore) -> Result<StoreConfig, ConfigError> {
    let id_ok = (1..=64).contains(&raw.id.len())
        && raw
            .id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !id_ok {
        return Err(ConfigError::new(
            "store.id",
            format!(
                "{:?} must be 1 to 64 characters of a-z, 0-9 and '-'",
                raw.id
            ),
        ));
    }
    let tz_ok = (1..=64).contains(&raw.timezone.len())
        && raw
            .timezone
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_+-".contains(&b));
    if !tz_ok {
        return Err(ConfigError::new(
            "store.timezone",
            format!(
                "{:?} is not an IANA time zone name such as \"Asia/Shanghai\"",
                raw.timezone
            ),
        ));
    }
    if let Err(e) = crate::presence::timezone_by_name(&raw.timezone) {
        return Err(ConfigError::new("store.timezone", e));
    }
    let name = raw.name.unwrap_or_else(|| raw.id.clone());
    if name.chars().count() > 128 || name.chars().any(char::is_control) {
        return Err(ConfigError::new(
            "store.name",
            "must be at most 128 characters, without control characters",
        ));
    }
    Ok(StoreConfig {
        id: raw.id,
        name,
        timezone: raw.timezone,
    })
}

fn validate_portal(raw: raw::RawPortal) -> Result<PortalConfig, ConfigError> {
    let listen = socket_addr("portal.listen", &raw.listen)?;
    if let Some(url) = &raw.url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return Err(ConfigError::new(
            "portal.url",
            format!("{url:?} must start with http:// or https://"),
        ));
    }
    let walled_garden = raw
        .walled_garden
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let key = format!("portal.walled_garden[{i}]");
            if let Ok(net) = s.parse::<IpNet>() {
                Ok(net.trunc())
            } else if let Ok(ip) = s.parse::<IpAddr>() {
                Ok(IpNet::from(ip))
            } else {
                Err(ConfigError::new(
                    key,
                    format!("{s:?} is not an IP address or CIDR such as \"203.0.113.0/24\""),
                ))
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    if !(1..=65_535).contains(&raw.max_connections) {
        return Err(ConfigError::new(
            "portal.max_connections",
            "must be between 1 and 65535",
        ));
    }
    let default_language = match raw.default_language.as_str() {
        "zh-CN" => Language::ZhCn,
        "en" => Language::En,
        other => {
            return Err(ConfigError::new(
                "portal.default_language",
                format!("{other:?} is not offered; use \"zh-CN\" or \"en\""),
            ));
        }
    };
    Ok(PortalConfig {
        listen,
        url: raw.url,
        session_timeout: positive("portal.session_timeout", &raw.session_timeout)?,
        idle_timeout: positive("portal.idle_timeout", &raw.idle_timeout)?,
        walled_garden,
        max_connections: raw.max_connections as usize,
        default_language,
    })
}

fn validate_hq(raw: raw::RawHq) -> Result<HqConfig, ConfigError> {
    let url = raw.url.trim_end_matches('/').to_string();
    let loopback_http = url.strip_prefix("http://").is_some_and(|rest| {
        rest.starts_with("127.") || rest.starts_with("localhost") || rest.starts_with("[::1]")
    });
    if !url.starts_with("https://") && !loopback_http {
        return Err(ConfigError::new(
            "hq.url",
            format!("{url:?} must be an https:// URL (plain http is allowed only to loopback)"),
        ));
    }
    let secret = match (raw.secret, raw.secret_file) {
        (Some(s), None) => {
            check_secret(&s)?;
            Secret::Inline(s)
        }
        (None, Some(p)) => Secret::File(non_empty_path("hq.secret_file", &p)?),
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
        ca_file: raw
            .ca_file
            .map(|p| non_empty_path("hq.ca_file", &p))
            .transpose()?,
        client_cert,
        gzip: raw.gzip,
        connect_timeout,
        timeout,
        sync_interval: sync_interval(&raw.sync_interval)?,
    })
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

/// A Standard Webhooks secret: `whsec_` and base64.
pub fn check_secret(s: &str) -> Result<(), ConfigError> {
    let body = s.strip_prefix("whsec_").unwrap_or("");
    let ok = body.len() >= 16
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(
            "hq.secret",
            "must be \"whsec_\" followed by the base64 key (at least 16 characters)",
        ))
    }
}

fn validate_interface(key: &str, name: &str) -> Result<String, ConfigError> {
    let ok = (1..=15).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b':');
    if ok {
        Ok(name.to_string())
    } else {
        Err(ConfigError::new(
            key,
            format!(
                "{name:?} is not a network interface name (1 to 15 characters, no '/', ':' or spaces)"
            ),
        ))
    }
}

fn socket_addr(key: &str, s: &str) -> Result<SocketAddr, ConfigError> {
    s.parse().map_err(|_| {
        ConfigError::new(
            key,
            format!("{s:?} is not an address and port such as \"0.0.0.0:2050\""),
        )
    })
}

fn duration(key: &str, s: &str) -> Result<Duration, ConfigError> {
    parse_duration(s).map_err(|p| ConfigError::new(key, p))
}

fn positive(key: &str, s: &str) -> Result<Duration, ConfigError> {
    let d = duration(key, s)?;
    if d < Duration::from_secs(1) {
        return Err(ConfigError::new(key, "must be at least 1s"));
    }
    Ok(d)
}

fn non_empty_path(key: &str, s: &str) -> Result<PathBuf, ConfigError> {
    if s.trim().is_empty() || s.contains('\0') {
        return Err(ConfigError::new(key, "must be a file system path"));
    }
    Ok(PathBuf::from(s))
}

#[cfg(test)]
mod tests;
