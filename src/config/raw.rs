//! The config file as written: serde structs that mirror the TOML, with
//! unknown keys rejected, defaults applied, and nothing validated yet.
//! `super::Config::try_from` hands each section to its own file to be
//! checked and resolved.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub store: RawStore,
    pub lan: RawLan,
    #[serde(default)]
    pub portal: RawPortal,
    #[serde(default)]
    pub firewall: RawFirewall,
    #[serde(default)]
    pub presence: RawPresence,
    #[serde(default)]
    pub members: RawMembers,
    #[serde(default)]
    pub privacy: RawPrivacy,
    pub storage: RawStorage,
    pub hq: Option<RawHq>,
    #[serde(default)]
    pub dashboard: RawDashboard,
    #[serde(default)]
    pub control: RawControl,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    pub id: String,
    pub name: Option<String>,
    #[serde(default = "default_timezone")]
    pub timezone: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLan {
    pub interface: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPortal {
    #[serde(default = "default_portal_listen")]
    pub listen: String,
    /// Overrides `http://<LAN address>:<port>/`, e.g. for a DNS name.
    pub url: Option<String>,
    #[serde(default = "default_session_timeout")]
    pub session_timeout: String,
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: String,
    #[serde(default)]
    pub walled_garden: Vec<String>,
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    #[serde(default = "default_max_connections_per_client")]
    pub max_connections_per_client: u32,
    #[serde(default = "default_language")]
    pub default_language: String,
}

impl Default for RawPortal {
    fn default() -> Self {
        RawPortal {
            listen: default_portal_listen(),
            url: None,
            session_timeout: default_session_timeout(),
            idle_timeout: default_idle_timeout(),
            walled_garden: Vec::new(),
            max_connections: default_max_connections(),
            max_connections_per_client: default_max_connections_per_client(),
            default_language: default_language(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFirewall {
    #[serde(default = "default_backend")]
    pub backend: String,
}

impl Default for RawFirewall {
    fn default() -> Self {
        RawFirewall {
            backend: default_backend(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPresence {
    #[serde(default = "default_probe_after")]
    pub probe_after: String,
    #[serde(default = "default_leave_after")]
    pub leave_after: String,
    #[serde(default = "default_rejoin_gap")]
    pub rejoin_gap: String,
    #[serde(default)]
    pub staff_devices: Vec<String>,
    /// Extra OS fingerprint rules (TOML), checked before the built-in ones.
    pub fingerprint_file: Option<String>,
    #[serde(default = "default_resident_min_daily")]
    pub resident_min_daily: String,
    #[serde(default = "default_resident_min_days")]
    pub resident_min_days: u32,
    #[serde(default = "default_summary_interval")]
    pub summary_interval: String,
    #[serde(default = "default_new_devices_per_minute")]
    pub new_devices_per_minute: u32,
}

impl Default for RawPresence {
    fn default() -> Self {
        RawPresence {
            probe_after: default_probe_after(),
            leave_after: default_leave_after(),
            rejoin_gap: default_rejoin_gap(),
            staff_devices: Vec::new(),
            fingerprint_file: None,
            resident_min_daily: default_resident_min_daily(),
            resident_min_days: default_resident_min_days(),
            summary_interval: default_summary_interval(),
            new_devices_per_minute: default_new_devices_per_minute(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMembers {
    #[serde(default = "default_remember_days")]
    pub remember_days: u32,
    #[serde(default = "default_member_max_devices")]
    pub max_devices: u32,
    #[serde(default = "default_country_code")]
    pub default_country_code: String,
    #[serde(default = "default_otp_ttl")]
    pub otp_ttl: String,
    #[serde(default = "default_otp_max_attempts")]
    pub otp_max_attempts: u32,
    #[serde(default = "default_otp_lockout")]
    pub otp_lockout: String,
    #[serde(default = "default_member_number_digits")]
    pub member_number_digits: String,
    #[serde(default = "default_member_number_check")]
    pub member_number_check: String,
    #[serde(default = "default_consent_version")]
    pub consent_version: String,
    /// `None`: the store's own `default_country_code` only.
    pub otp_countries: Option<Vec<String>>,
    #[serde(default = "default_otp_per_hour")]
    pub otp_per_hour: u32,
    #[serde(default = "default_otp_per_prefix_per_hour")]
    pub otp_per_prefix_per_hour: u32,
    #[serde(default)]
    pub member_number_trusted: bool,
    #[serde(default = "default_member_number_per_hour")]
    pub member_number_per_hour: u32,
    #[serde(default = "default_max_members")]
    pub max_members: u32,
    /// `[members.wifi]`: the members' SSID with per-member keys.
    pub wifi: Option<RawMembersWifi>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMembersWifi {
    pub ssid: String,
    pub psk_file: String,
    pub hostapd_ctrl: Vec<String>,
    #[serde(default)]
    pub allow_member_number: bool,
}

impl Default for RawMembers {
    fn default() -> Self {
        RawMembers {
            remember_days: default_remember_days(),
            max_devices: default_member_max_devices(),
            default_country_code: default_country_code(),
            otp_ttl: default_otp_ttl(),
            otp_max_attempts: default_otp_max_attempts(),
            otp_lockout: default_otp_lockout(),
            member_number_digits: default_member_number_digits(),
            member_number_check: default_member_number_check(),
            consent_version: default_consent_version(),
            otp_countries: None,
            otp_per_hour: default_otp_per_hour(),
            otp_per_prefix_per_hour: default_otp_per_prefix_per_hour(),
            member_number_trusted: false,
            member_number_per_hour: default_member_number_per_hour(),
            max_members: default_max_members(),
            wifi: None,
        }
    }
}

fn default_member_max_devices() -> u32 {
    1
}
fn default_country_code() -> String {
    "86".into()
}
fn default_otp_ttl() -> String {
    "5m".into()
}
fn default_otp_max_attempts() -> u32 {
    5
}
fn default_otp_lockout() -> String {
    "15m".into()
}
fn default_member_number_digits() -> String {
    "6-16".into()
}
fn default_member_number_check() -> String {
    "none".into()
}
fn default_consent_version() -> String {
    "1".into()
}
fn default_otp_per_hour() -> u32 {
    200
}
fn default_otp_per_prefix_per_hour() -> u32 {
    10
}
fn default_member_number_per_hour() -> u32 {
    100
}
fn default_max_members() -> u32 {
    20_000
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrivacy {
    pub device_key_file: Option<String>,
    #[serde(default = "default_forget_unbound_after_days")]
    pub forget_unbound_after_days: u32,
}

impl Default for RawPrivacy {
    fn default() -> Self {
        RawPrivacy {
            device_key_file: None,
            forget_unbound_after_days: default_forget_unbound_after_days(),
        }
    }
}

fn default_forget_unbound_after_days() -> u32 {
    30
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStorage {
    pub path: String,
    #[serde(default = "default_outbox_max_events")]
    pub outbox_max_events: u64,
}

fn default_outbox_max_events() -> u64 {
    super::DEFAULT_OUTBOX_MAX_EVENTS as u64
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHq {
    pub url: String,
    pub secret: Option<String>,
    pub secret_file: Option<String>,
    pub ca_file: Option<String>,
    /// The box's certificate chain for mutual TLS (PEM); needs `client_key`.
    pub client_cert: Option<String>,
    /// The private key of `client_cert` (PEM).
    pub client_key: Option<String>,
    /// Compress event batches (HQ must accept `Content-Encoding: gzip`).
    #[serde(default = "default_gzip")]
    pub gzip: bool,
    /// Time to set up the TCP connection to HQ, such as `"5s"`.
    #[serde(default = "default_hq_connect_timeout")]
    pub connect_timeout: String,
    /// Time for a whole request (connect, TLS, send, answer), such as `"10s"`.
    #[serde(default = "default_hq_timeout")]
    pub timeout: String,
    /// How often to fetch `{url}/sync`, such as `"5m"`.
    #[serde(default = "default_hq_sync_interval")]
    pub sync_interval: String,
}

fn default_hq_sync_interval() -> String {
    "5m".into()
}

fn default_hq_connect_timeout() -> String {
    "5s".into()
}

fn default_hq_timeout() -> String {
    "10s".into()
}

fn default_gzip() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDashboard {
    #[serde(default = "default_dashboard_listen")]
    pub listen: String,
    /// The HTTPS certificate chain (PEM); absent: a self-signed one kept
    /// in the state directory.
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    /// The first manager password (read and hashed at start while no
    /// password is stored).
    pub password_file: Option<String>,
    /// `/metrics` without signing in (for a Prometheus scraper); off by
    /// default.
    #[serde(default)]
    pub metrics_public: bool,
    #[serde(default = "default_dashboard_max_connections")]
    pub max_connections: u32,
}

impl Default for RawDashboard {
    fn default() -> Self {
        RawDashboard {
            listen: default_dashboard_listen(),
            cert_file: None,
            key_file: None,
            password_file: None,
            metrics_public: false,
            max_connections: default_dashboard_max_connections(),
        }
    }
}

fn default_dashboard_max_connections() -> u32 {
    64
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawControl {
    #[serde(default = "default_control_socket")]
    pub socket: String,
}

impl Default for RawControl {
    fn default() -> Self {
        RawControl {
            socket: default_control_socket(),
        }
    }
}

fn default_timezone() -> String {
    "Asia/Shanghai".into()
}
fn default_portal_listen() -> String {
    "0.0.0.0:2050".into()
}
fn default_session_timeout() -> String {
    "8h".into()
}
fn default_idle_timeout() -> String {
    "30m".into()
}
fn default_max_connections() -> u32 {
    1024
}
fn default_max_connections_per_client() -> u32 {
    16
}
fn default_language() -> String {
    "zh-CN".into()
}
fn default_backend() -> String {
    "nftables".into()
}
fn default_probe_after() -> String {
    "60s".into()
}
fn default_leave_after() -> String {
    "3m".into()
}
fn default_rejoin_gap() -> String {
    "5m".into()
}
fn default_resident_min_daily() -> String {
    "6h".into()
}
fn default_summary_interval() -> String {
    "15m".into()
}
fn default_new_devices_per_minute() -> u32 {
    crate::config::DEFAULT_NEW_DEVICES_PER_MINUTE
}
fn default_resident_min_days() -> u32 {
    3
}
fn default_remember_days() -> u32 {
    180
}
fn default_dashboard_listen() -> String {
    "0.0.0.0:8443".into()
}
pub fn default_control_socket() -> String {
    "/run/storegate/control.sock".into()
}
