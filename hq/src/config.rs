//! `hq.toml`: the raw serde structs (unknown keys refused) and the
//! validated [`HqConfig`] the service runs on. Every error names the key
//! (`stores[2].secrets[0].not_after: ...`), so `storegate-hq -c` fails at
//! start with a line an operator can act on, never half way through.
//!
//! ```toml
//! listen = "0.0.0.0:8080"
//! role = "all"                   # gateway | messenger | all
//!
//! [nats]
//! servers = ["nats://10.0.0.1:4222", "nats://10.0.0.2:4222"]
//!
//! [jetstream]
//! stream = "STOREGATE"
//! replicas = 3
//! duplicate_window = "24h"       # at least the boxes' retry horizon
//! max_age = "30d"
//! max_bytes = 0                  # 0: no limit
//!
//! [[stores]]
//! id = "wulin-01"
//! timezone = "Asia/Shanghai"
//! secrets = [{ secret = "whsec_...", not_after = "2026-12-31T00:00:00Z" },
//!            { secret = "whsec_..." }]
//! ```
//!
//! Sections and their defaults are in the raw structs below; `docs/hq-service.md`
//! explains each choice.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use storegate::config::parse_duration;
use storegate::uplink::signing::SigningKey;

use crate::registry::{RawSecret, Registry, StoreEntry};

/// What one process does: serve the boxes, send targeted messages, or
/// both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Gateway,
    Messenger,
    All,
}

impl Role {
    pub fn parse(s: &str) -> Result<Role, String> {
        match s {
            "gateway" => Ok(Role::Gateway),
            "messenger" => Ok(Role::Messenger),
            "all" => Ok(Role::All),
            other => Err(format!(
                "{other:?} is not a role; use \"gateway\", \"messenger\" or \"all\""
            )),
        }
    }
    pub fn gateway(self) -> bool {
        matches!(self, Role::Gateway | Role::All)
    }
    pub fn messenger(self) -> bool {
        matches!(self, Role::Messenger | Role::All)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    role: Option<String>,
    max_connections: Option<usize>,
    /// How far a request's `webhook-timestamp` may be from HQ's clock.
    tolerance: Option<String>,
    /// Refuse `GET /sync` without the box's signature (boxes from before
    /// signed sync requests send none).
    sync_requires_signature: Option<bool>,
    nats: Option<RawNats>,
    jetstream: Option<RawJetStream>,
    buckets: Option<RawBuckets>,
    #[serde(default)]
    stores: Vec<RawStore>,
    provider: Option<RawProvider>,
    quotas: Option<RawQuotas>,
    targeting: Option<RawTargeting>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNats {
    servers: Vec<String>,
    /// Name of the connection, shown by `nats server report connections`.
    name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJetStream {
    stream: Option<String>,
    replicas: Option<usize>,
    duplicate_window: Option<String>,
    max_age: Option<String>,
    max_bytes: Option<i64>,
    publish_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBuckets {
    sync: Option<String>,
    campaigns: Option<String>,
    quotas: Option<String>,
    members: Option<String>,
    sent: Option<String>,
    /// The registry beyond `[[stores]]`.
    stores: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    id: String,
    timezone: Option<String>,
    secrets: Vec<RawSecret>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    /// Texts are POSTed to this URL as JSON.
    webhook: Option<String>,
    /// A `whsec_` secret the webhook requests are signed with.
    webhook_secret: Option<String>,
    /// Texts are appended to this file as JSON lines (tests, dry runs).
    file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuotas {
    window: Option<String>,
    per_store: Option<u64>,
    per_country: Option<u64>,
    blocked_prefixes: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTargeting {
    consumer: Option<String>,
    refresh: Option<String>,
}

/// NATS and JetStream settings.
#[derive(Debug, Clone)]
pub struct JetStreamConfig {
    pub servers: Vec<String>,
    pub connection_name: String,
    pub stream: String,
    pub replicas: usize,
    pub duplicate_window: Duration,
    /// `Duration::ZERO`: kept until `max_bytes`.
    pub max_age: Duration,
    /// `-1`: no limit.
    pub max_bytes: i64,
    pub publish_timeout: Duration,
    pub buckets: Buckets,
}

/// KV bucket names.
#[derive(Debug, Clone)]
pub struct Buckets {
    /// Sync documents: a key per store, `_chain` for all.
    pub sync: String,
    /// Campaign rules, a key per campaign.
    pub campaigns: String,
    /// `/messages` counters and retried-request markers.
    pub quotas: String,
    /// Consent learned from `member.linked`.
    pub members: String,
    /// Create-only markers: visits handled, caps used.
    pub sent: String,
    /// Stores beyond `[[stores]]`: a key per store id.
    pub stores: String,
}

/// Where texts and targeted messages go.
#[derive(Debug, Clone)]
pub enum ProviderConfig {
    Webhook {
        url: String,
        secret: Option<SigningKey>,
    },
    File(PathBuf),
    /// None configured: `/messages` answers 503.
    None,
}

/// `/messages` quotas (the SMS-pumping defence).
#[derive(Debug, Clone)]
pub struct Quotas {
    pub window: Duration,
    pub per_store: u64,
    pub per_country: u64,
    /// Phone prefixes (`+881`, satellite) never texted.
    pub blocked_prefixes: Vec<String>,
}

/// The targeted-messages consumer.
#[derive(Debug, Clone)]
pub struct Targeting {
    /// Durable consumer name prefix (`<name>-visits`, `<name>-members`).
    pub consumer: String,
    /// How often campaign rules are re-read from KV.
    pub refresh: Duration,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct HqConfig {
    pub listen: SocketAddr,
    pub role: Role,
    pub max_connections: usize,
    pub tolerance_secs: i64,
    pub sync_requires_signature: bool,
    pub jetstream: JetStreamConfig,
    pub registry: Registry,
    pub provider: ProviderConfig,
    pub quotas: Quotas,
    pub targeting: Targeting,
}

/// The default duplicate window: a day. The box retries a batch until HQ
/// answers 2xx (backoff capped at 60 s), so a batch is re-sent after a
/// lost answer within a minute of HQ being reachable again; a day covers
/// any HQ or network outage short of a full day.
pub const DEFAULT_DUPLICATE_WINDOW: Duration = Duration::from_secs(24 * 3600);

fn duration(key: &str, value: Option<&str>, default: Duration) -> Result<Duration, String> {
    match value {
        None => Ok(default),
        Some(s) => parse_duration(s).map_err(|e| format!("{key}: {e}")),
    }
}

/// A JetStream stream or bucket name: letters, digits, `-` and `_`.
fn check_name(key: &str, name: &str) -> Result<String, String> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(format!(
            "{key}: {name:?} is not a stream or bucket name (1 to 64 letters, digits, - or _)"
        ));
    }
    Ok(name.to_string())
}

impl HqConfig {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<HqConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        HqConfig::parse(&text)
    }

    /// Parses and validates the text of `hq.toml`.
    pub fn parse(text: &str) -> Result<HqConfig, String> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        let listen = raw.listen.as_deref().unwrap_or("0.0.0.0:8080");
        let listen: SocketAddr = listen.parse().map_err(|_| {
            format!("listen: {listen:?} is not an IP address and port (e.g. \"0.0.0.0:8080\")")
        })?;
        let role =
            Role::parse(raw.role.as_deref().unwrap_or("all")).map_err(|e| format!("role: {e}"))?;
        let max_connections = raw.max_connections.unwrap_or(4096);
        if max_connections == 0 {
            return Err("max_connections: must be at least 1".into());
        }
        let tolerance = duration(
            "tolerance",
            raw.tolerance.as_deref(),
            Duration::from_secs(300),
        )?;
        let jetstream = jetstream(raw.nats, raw.jetstream, raw.buckets)?;
        let registry = stores(raw.stores)?;
        let provider = provider(raw.provider)?;
        let q = raw.quotas.unwrap_or_default();
        let quotas = Quotas {
            window: duration(
                "quotas.window",
                q.window.as_deref(),
                Duration::from_secs(3600),
            )?,
            per_store: q.per_store.unwrap_or(200),
            per_country: q.per_country.unwrap_or(2000),
            blocked_prefixes: q.blocked_prefixes.unwrap_or_default(),
        };
        if quotas.window < Duration::from_secs(1) {
            return Err("quotas.window: must be at least 1s".into());
        }
        for (i, p) in quotas.blocked_prefixes.iter().enumerate() {
            if !p.starts_with('+') || p.len() < 2 || !p[1..].bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "quotas.blocked_prefixes[{i}]: {p:?} is not a phone prefix such as \"+881\""
                ));
            }
        }
        let t = raw.targeting.unwrap_or_default();
        let targeting = Targeting {
            consumer: check_name(
                "targeting.consumer",
                t.consumer.as_deref().unwrap_or("targeting"),
            )?,
            refresh: duration(
                "targeting.refresh",
                t.refresh.as_deref(),
                Duration::from_secs(5),
            )?,
        };
        Ok(HqConfig {
            listen,
            role,
            max_connections,
            tolerance_secs: tolerance.as_secs() as i64,
            sync_requires_signature: raw.sync_requires_signature.unwrap_or(false),
            jetstream,
            registry,
            provider,
            quotas,
            targeting,
        })
    }
}

fn jetstream(
    nats: Option<RawNats>,
    js: Option<RawJetStream>,
    buckets: Option<RawBuckets>,
) -> Result<JetStreamConfig, String> {
    let nats = nats.ok_or("[nats] is required: servers = [\"nats://host:4222\", ...]")?;
    if nats.servers.is_empty() {
        return Err("nats.servers: name at least one server (\"nats://host:4222\")".into());
    }
    for (i, s) in nats.servers.iter().enumerate() {
        if s.trim().is_empty() || s.contains(char::is_whitespace) {
            return Err(format!("nats.servers[{i}]: {s:?} is not a server address"));
        }
    }
    let js = js.unwrap_or_default();
    let replicas = js.replicas.unwrap_or(1);
    if !(1..=5).contains(&replicas) {
        return Err(format!(
            "jetstream.replicas: {replicas} is not 1 to 5 (JetStream's limit; 3 for a 3-node cluster)"
        ));
    }
    let duplicate_window = duration(
        "jetstream.duplicate_window",
        js.duplicate_window.as_deref(),
        DEFAULT_DUPLICATE_WINDOW,
    )?;
    if duplicate_window < Duration::from_secs(60) {
        return Err(
            "jetstream.duplicate_window: must be at least 1m (the boxes retry for as long as HQ is away; 24h is the default)"
                .into(),
        );
    }
    let max_age = duration(
        "jetstream.max_age",
        js.max_age.as_deref(),
        Duration::from_secs(30 * 86400),
    )?;
    if !max_age.is_zero() && max_age < duplicate_window {
        return Err(format!(
            "jetstream.max_age: {max_age:?} is shorter than jetstream.duplicate_window ({duplicate_window:?})"
        ));
    }
    let max_bytes = match js.max_bytes.unwrap_or(0) {
        0 => -1,
        n if n < 0 => return Err("jetstream.max_bytes: must be 0 (no limit) or more".into()),
        n => n,
    };
    let b = buckets.unwrap_or_default();
    let name = |key: &str, v: Option<String>, d: &str| check_name(key, v.as_deref().unwrap_or(d));
    Ok(JetStreamConfig {
        servers: nats.servers,
        connection_name: nats.name.unwrap_or_else(|| "storegate-hq".into()),
        stream: name("jetstream.stream", js.stream, "STOREGATE")?,
        replicas,
        duplicate_window,
        max_age,
        max_bytes,
        publish_timeout: duration(
            "jetstream.publish_timeout",
            js.publish_timeout.as_deref(),
            Duration::from_secs(5),
        )?,
        buckets: Buckets {
            sync: name("buckets.sync", b.sync, "STOREGATE_SYNC")?,
            campaigns: name("buckets.campaigns", b.campaigns, "STOREGATE_CAMPAIGNS")?,
            quotas: name("buckets.quotas", b.quotas, "STOREGATE_QUOTAS")?,
            members: name("buckets.members", b.members, "STOREGATE_MEMBERS")?,
            sent: name("buckets.sent", b.sent, "STOREGATE_SENT")?,
            stores: name("buckets.stores", b.stores, "STOREGATE_STORES")?,
        },
    })
}

/// Store ids as the box allows them: `[a-z0-9-]{1,64}`. `messages` is
/// refused: `storegate.messages.*` carries HQ's own targeted messages.
pub fn check_store_id(id: &str) -> Result<(), String> {
    if id.is_empty()
        || id.len() > 64
        || !id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(format!("{id:?} is not a store id ([a-z0-9-]{{1,64}})"));
    }
    if id == "messages" {
        return Err(
            "\"messages\" is reserved (storegate.messages.* carries targeted messages)".into(),
        );
    }
    Ok(())
}

fn stores(raw: Vec<RawStore>) -> Result<Registry, String> {
    let mut entries = Vec::with_capacity(raw.len());
    for (i, s) in raw.into_iter().enumerate() {
        let entry = StoreEntry::build(&s.id, s.timezone.as_deref(), s.secrets)
            .map_err(|e| format!("stores[{i}].{e}"))?;
        entries.push(entry);
    }
    Registry::new(entries).map_err(|e| format!("stores: {e}"))
}

fn provider(raw: Option<RawProvider>) -> Result<ProviderConfig, String> {
    let Some(p) = raw else {
        return Ok(ProviderConfig::None);
    };
    match (p.webhook, p.file) {
        (Some(_), Some(_)) => Err("provider: give webhook or file, not both".into()),
        (Some(url), None) => {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!("provider.webhook: {url:?} is not an http(s) URL"));
            }
            let secret = match p.webhook_secret {
                None => None,
                Some(s) => Some(
                    SigningKey::from_secret(&s)
                        .map_err(|e| format!("provider.webhook_secret: {e}"))?,
                ),
            };
            Ok(ProviderConfig::Webhook { url, secret })
        }
        (None, Some(file)) => Ok(ProviderConfig::File(file)),
        (None, None) => Err("provider: give webhook = \"https://...\" or file = \"...\"".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn minimal() -> String {
        format!(
            "[nats]\nservers = [\"nats://127.0.0.1:4222\"]\n[[stores]]\nid = \"wulin-01\"\nsecrets = [{{ secret = \"{SECRET}\" }}]\n"
        )
    }

    #[test]
    fn defaults() {
        let c = HqConfig::parse(&minimal()).unwrap();
        assert_eq!(c.jetstream.stream, "STOREGATE");
        assert_eq!(c.jetstream.duplicate_window, DEFAULT_DUPLICATE_WINDOW);
        assert_eq!(c.jetstream.replicas, 1);
        assert_eq!(c.role, Role::All);
        assert!(c.registry.get("wulin-01").is_some());
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = HqConfig::parse(&format!("{}\n[jetstream]\nreplica = 3\n", minimal())).unwrap_err();
        assert!(e.contains("replica"), "{e}");
        let e = HqConfig::parse(&format!("colour = 1\n{}", minimal())).unwrap_err();
        assert!(e.contains("colour"), "{e}");
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases = [
            ("[jetstream]\nreplicas = 7\n", "jetstream.replicas"),
            (
                "[jetstream]\nduplicate_window = \"10s\"\n",
                "jetstream.duplicate_window",
            ),
            ("[jetstream]\nstream = \"a.b\"\n", "jetstream.stream"),
            ("[provider]\nwebhook = \"ftp://x\"\n", "provider.webhook"),
            (
                "[quotas]\nblocked_prefixes = [\"881\"]\n",
                "quotas.blocked_prefixes[0]",
            ),
        ];
        for (extra, key) in cases {
            let e = HqConfig::parse(&format!("{}{extra}", minimal())).unwrap_err();
            assert!(e.contains(key), "{extra}: {e}");
        }
        let e = HqConfig::parse(
            "[nats]\nservers = [\"x\"]\n[[stores]]\nid = \"A\"\nsecrets = [{ secret = \"whsec_x\" }]\n",
        )
        .unwrap_err();
        assert!(e.contains("stores[0].id"), "{e}");
        let e = HqConfig::parse(&format!(
            "[nats]\nservers = [\"x\"]\n[[stores]]\nid = \"a\"\nsecrets = [{{ secret = \"{SECRET}\", not_after = \"soon\" }}]\n"
        ))
        .unwrap_err();
        assert!(e.contains("stores[0].secrets[0].not_after"), "{e}");
    }

    #[test]
    fn the_shipped_example_is_valid() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/hq.toml");
        let c = HqConfig::load(Path::new(path)).unwrap();
        assert_eq!(c.registry.get("wulin-01").unwrap().secrets.len(), 2);
        assert!(matches!(c.provider, ProviderConfig::File(_)));
    }

    #[test]
    fn duplicate_store_ids_are_refused() {
        let e = HqConfig::parse(&format!(
            "{}[[stores]]\nid = \"wulin-01\"\nsecrets = [{{ secret = \"{SECRET}\" }}]\n",
            minimal()
        ))
        .unwrap_err();
        assert!(e.contains("wulin-01"), "{e}");
    }
}
