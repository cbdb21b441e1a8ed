//! NATS and JetStream: the connection, and the stream and KV buckets
//! created (or brought to the configured settings) at start. Creating is
//! idempotent, so any number of gateways may start at once: an existing
//! stream is updated in place (`create_or_update`), never recreated.
//!
//! - stream `STOREGATE` on `storegate.>`: every accepted event, and
//!   HQ's targeted messages (`storegate.messages.<store_id>`); replicas,
//!   duplicate window, max age and max bytes from `[jetstream]`;
//! - KV `sync` (documents), `campaigns` (rules), `members` (consent),
//!   `stores` (the registry beyond `hq.toml`), history 1; `quotas` (counters, expiring after two quota windows);
//!   `sent` (create-only markers of visits handled and caps used,
//!   expiring after 3 days: a redelivery comes within the consumer's
//!   ack wait, and a cap counts for one day).

use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};

use crate::config::{HqConfig, JetStreamConfig};

/// How long the `sent` markers live.
pub const SENT_MAX_AGE: Duration = Duration::from_secs(3 * 86400);

/// The JetStream handles every part of the service uses.
#[derive(Clone)]
pub struct Jet {
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub sync: kv::Store,
    pub campaigns: kv::Store,
    pub quotas: kv::Store,
    pub members: kv::Store,
    pub sent: kv::Store,
    pub stores: kv::Store,
}

/// Connects to the configured servers (retrying until one answers, so a
/// gateway may start before the cluster), then sets up the stream and
/// buckets.
pub async fn connect(config: &HqConfig) -> anyhow::Result<Jet> {
    use anyhow::Context;
    let c = &config.jetstream;
    let client = async_nats::ConnectOptions::new()
        .name(&c.connection_name)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .reconnect_delay_callback(|attempt| {
            Duration::from_millis((100u64 << attempt.min(5)).min(2_000))
        })
        .event_callback(|event| async move {
            match event {
                async_nats::Event::Connected => tracing::info!("NATS connected"),
                async_nats::Event::Disconnected => tracing::warn!("NATS disconnected"),
                other => tracing::info!("NATS: {other}"),
            }
        })
        .connect(c.servers.clone())
        .await
        .with_context(|| format!("connecting to NATS at {}", c.servers.join(", ")))?;
    // The client's own bound on unacknowledged publishes is raised out of
    // the way: a batch holding part of it while waiting for the rest could
    // wait forever behind other batches doing the same. The gateway
    // bounds publishes in flight itself, a whole batch at a time
    // (`ingest::INFLIGHT`).
    let js = jetstream::ContextBuilder::new()
        .timeout(c.publish_timeout)
        .max_ack_inflight(crate::ingest::INFLIGHT * 4)
        .build(client.clone());
    setup(&js, c, config.quotas.window).await?;
    let bucket = |name: &str| {
        let js = js.clone();
        let name = name.to_string();
        async move {
            js.get_key_value(&name)
                .await
                .with_context(|| format!("opening KV bucket {name}"))
        }
    };
    let b = &c.buckets;
    Ok(Jet {
        sync: bucket(&b.sync).await?,
        campaigns: bucket(&b.campaigns).await?,
        quotas: bucket(&b.quotas).await?,
        members: bucket(&b.members).await?,
        sent: bucket(&b.sent).await?,
        stores: bucket(&b.stores).await?,
        client,
        js,
    })
}

/// The stream's configuration from `[jetstream]`.
pub fn stream_config(c: &JetStreamConfig) -> stream::Config {
    stream::Config {
        name: c.stream.clone(),
        subjects: vec!["storegate.>".into()],
        num_replicas: c.replicas,
        duplicate_window: c.duplicate_window,
        max_age: c.max_age,
        max_bytes: c.max_bytes,
        storage: stream::StorageType::File,
        discard: stream::DiscardPolicy::Old,
        ..Default::default()
    }
}

/// Creates or updates the stream and the buckets. Retries a few times:
/// right after a cluster starts, JetStream may not have a leader yet.
pub async fn setup(
    js: &jetstream::Context,
    c: &JetStreamConfig,
    quota_window: Duration,
) -> anyhow::Result<()> {
    let mut attempt = 0;
    loop {
        match setup_once(js, c, quota_window).await {
            Ok(()) => return Ok(()),
            Err(e) if attempt < 30 => {
                attempt += 1;
                tracing::warn!("setting up JetStream (attempt {attempt}): {e:#}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn setup_once(
    js: &jetstream::Context,
    c: &JetStreamConfig,
    quota_window: Duration,
) -> anyhow::Result<()> {
    use anyhow::Context;
    js.create_or_update_stream(stream_config(c))
        .await
        .with_context(|| format!("stream {}", c.stream))?;
    let b = &c.buckets;
    let buckets = [
        (
            &b.sync,
            Duration::ZERO,
            "sync documents: a key per store, _chain for all",
        ),
        (
            &b.campaigns,
            Duration::ZERO,
            "campaign rules, a key per campaign",
        ),
        (
            &b.members,
            Duration::ZERO,
            "marketing consent learned from member.linked",
        ),
        (
            &b.stores,
            Duration::ZERO,
            "stores beyond hq.toml: time zone and secrets",
        ),
        (&b.quotas, quota_window * 2, "counters of /messages quotas"),
        (
            &b.sent,
            SENT_MAX_AGE,
            "visits handled and frequency caps used",
        ),
    ];
    for (name, max_age, description) in buckets {
        js.create_or_update_stream(kv_stream_config(name, description, max_age, c.replicas))
            .await
            .with_context(|| format!("KV bucket {name}"))?;
    }
    Ok(())
}

/// The stream behind a KV bucket, as the KV clients lay it out (ADR-8:
/// `KV_<bucket>` on `$KV.<bucket>.>`, roll-ups allowed, deletes by
/// marker, direct gets). Made directly rather than through the client's
/// bucket helper, which first asks for account details that servers
/// before 2.10 describe differently.
fn kv_stream_config(
    bucket: &str,
    description: &str,
    max_age: Duration,
    replicas: usize,
) -> stream::Config {
    stream::Config {
        name: format!("KV_{bucket}"),
        description: Some(description.into()),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 1,
        max_age,
        storage: stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        num_replicas: replicas,
        discard: stream::DiscardPolicy::New,
        ..Default::default()
    }
}

/// A KV key for any text: kept as it is when it is made of the characters
/// keys allow (letters, digits, `-`, `_`, `=`), else hex of its bytes
/// prefixed `x`, so two texts never share a key; text over 64 bytes
/// (a header can be 16 KiB) becomes `h` and the hex of its SHA-256.
pub fn key_part(s: &str) -> String {
    if s.len() > 64 {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(s.as_bytes());
        let mut out = String::with_capacity(65);
        out.push('h');
        for b in digest {
            out.push_str(&format!("{b:02x}"));
        }
        return out;
    }
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'=')
        && !s.starts_with('x')
    {
        s.to_string()
    } else {
        let mut out = String::with_capacity(1 + s.len() * 2);
        out.push('x');
        for b in s.bytes() {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::key_part;

    #[test]
    fn key_parts_never_collide() {
        assert_eq!(key_part("m_123"), "m_123");
        assert_eq!(key_part("a.b"), "x612e62");
        assert_eq!(key_part("x1"), "x7831");
        assert_ne!(key_part("x7831"), key_part("x1"));
        assert_eq!(key_part(""), "x");
        let long = "a".repeat(100);
        assert_eq!(key_part(&long).len(), 65);
        assert!(key_part(&long).starts_with('h'));
        assert_ne!(key_part(&long), key_part(&"a".repeat(101)));
    }
}
