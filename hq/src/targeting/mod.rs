//! Targeted messages: the messenger role. Two durable pull consumers on
//! the stream:
//!
//! - `<name>-members` on `storegate.*.member.>`: `member.linked` records
//!   the member's marketing consent (its `marketing` field) in the
//!   members bucket, the latest event deciding; `member.erased` forgets
//!   the member;
//! - `<name>-visits` on `storegate.*.visit.started`: an arrival is
//!   decided by `storegate::hq::targeting` (member, age, consent,
//!   campaigns, caps: the demo's in-process HQ makes the same decision in
//!   memory); the best match not capped today is handed to the provider,
//!   and an event is published on `storegate.messages.<store>`. An
//!   arrival more than `MAX_AGE` (15 min) old, such as a backlog a box
//!   delivers after an outage, is not messaged.
//!
//! Never twice for one arrival: before anything is sent, a create-only
//! key `v.<event id>` is written in the `sent` bucket; a redelivered or
//! replayed event finds it and is only acknowledged. The frequency cap is
//! create-only keys too, `c.<campaign>.<member>.<local date>.<n>` for
//! `n` below `daily_cap`, so two messengers racing on one member cannot
//! both send. The price is at most once: if the process dies between the
//! marker and the provider, that arrival's message is not sent. A
//! provider that refuses (an error status, not a timeout) releases the
//! markers and the event is redelivered later.
//!
//! Every event is acknowledged after it is handled, so a restart resumes
//! where the consumer stood.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::kv;
use async_nats::jetstream::{AckKind, Message};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::jet::{Jet, key_part};
use crate::metrics::Metrics;
use crate::provider::{Outbound, Provider, ProviderError};
use crate::registry::Directory;
use storegate::hq::targeting::rules::Campaign;
use storegate::hq::targeting::{self as decision, Arrival};
use storegate::time::Timestamp;

pub use storegate::hq::targeting::Outcome;

/// The messenger's state, shared by its two consumers.
pub struct Messenger {
    pub jet: Jet,
    pub stream: String,
    pub consumer: String,
    pub refresh: Duration,
    pub stores: Arc<Directory>,
    pub provider: Arc<dyn Provider>,
    pub metrics: Arc<Metrics>,
    campaigns: RwLock<Arc<Vec<Campaign>>>,
}

impl Messenger {
    pub fn new(
        jet: Jet,
        stream: String,
        consumer: String,
        refresh: Duration,
        stores: Arc<Directory>,
        provider: Arc<dyn Provider>,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        Arc::new(Messenger {
            jet,
            stream,
            consumer,
            refresh,
            stores,
            provider,
            metrics,
            campaigns: RwLock::new(Arc::new(Vec::new())),
        })
    }

    /// Runs both consumers and the campaign refresh until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) -> anyhow::Result<()> {
        self.load_campaigns().await;
        let visits = self
            .clone()
            .consume("visits", "storegate.*.visit.started", shutdown.clone());
        let members = self
            .clone()
            .consume("members", "storegate.*.member.>", shutdown.clone());
        let refresh = async {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok::<(), anyhow::Error>(()),
                    _ = tokio::time::sleep(self.refresh) => self.load_campaigns().await,
                }
            }
        };
        tokio::try_join!(visits, members, refresh)?;
        Ok(())
    }

    /// Re-reads every campaign; one that does not parse is skipped with a
    /// log line, the rest stay in force.
    pub async fn load_campaigns(&self) {
        let kv = &self.jet.campaigns;
        let keys = match kv.keys().await {
            Ok(k) => {
                k.filter_map(|k| async move { k.ok() })
                    .collect::<Vec<_>>()
                    .await
            }
            Err(e) => {
                tracing::warn!("reading campaigns: {e}");
                return;
            }
        };
        let mut campaigns = Vec::with_capacity(keys.len());
        for key in keys {
            match kv.get(&key).await {
                Ok(Some(v)) => match Campaign::parse(&v) {
                    Ok(c) => campaigns.push(c),
                    Err(e) => tracing::warn!(campaign = %key, "campaign skipped: {e}"),
                },
                Ok(None) => {}
                Err(e) => tracing::warn!(campaign = %key, "reading campaign: {e}"),
            }
        }
        *self.campaigns.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(campaigns);
    }

    async fn consume(
        self: Arc<Self>,
        what: &'static str,
        filter: &str,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        use anyhow::Context;
        let name = format!("{}-{what}", self.consumer);
        let stream = self
            .jet
            .js
            .get_stream(&self.stream)
            .await
            .context("opening the stream")?;
        let consumer: async_nats::jetstream::consumer::PullConsumer = stream
            .get_or_create_consumer(
                &name,
                pull::Config {
                    durable_name: Some(name.clone()),
                    filter_subject: filter.to_string(),
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: Duration::from_secs(30),
                    deliver_policy: DeliverPolicy::All,
                    max_ack_pending: 1024,
                    ..Default::default()
                },
            )
            .await
            .with_context(|| format!("consumer {name}"))?;
        loop {
            let mut messages = match consumer.messages().await {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(consumer = %name, "pulling: {e}; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            };
            loop {
                let next = tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    n = messages.next() => n,
                };
                match next {
                    // One at a time per consumer: per-subject order holds
                    // and a member's events do not race each other.
                    Some(Ok(msg)) => self.handle(what, msg).await,
                    Some(Err(e)) => {
                        tracing::debug!(consumer = %name, "pull: {e}");
                    }
                    None => break,
                }
            }
        }
    }

    async fn handle(&self, what: &str, msg: Message) {
        let result = if what == "visits" {
            self.arrival(&msg.subject, &msg.payload).await.map(|o| {
                tracing::debug!(subject = %msg.subject, "arrival: {o:?}");
            })
        } else {
            self.member_event(&msg.payload).await
        };
        let ack = match result {
            Ok(()) => msg.ack().await,
            Err(Retry(e)) => {
                tracing::warn!(subject = %msg.subject, "will retry: {e}");
                msg.ack_with(AckKind::Nak(Some(Duration::from_secs(2))))
                    .await
            }
        };
        if let Err(e) = ack {
            tracing::warn!(subject = %msg.subject, "ack: {e}");
        }
    }

    /// `member.linked` / `member.erased`: consent into KV.
    async fn member_event(&self, payload: &[u8]) -> Result<(), Retry> {
        let Ok(event) = serde_json::from_slice::<Value>(payload) else {
            return Ok(()); // not ours to fix; the gateway checked it
        };
        let Some(member) = event["data"]["member_id"].as_str() else {
            return Ok(());
        };
        let key = key_part(member);
        let kv_err = |e: String| {
            self.metrics.jetstream_error();
            Retry(e)
        };
        match event["type"].as_str() {
            Some(storegate::uplink::event::MEMBER_LINKED) => {
                let record = json!({
                    "marketing": event["data"]["marketing"].as_bool().unwrap_or(false),
                    "store": event["source"],
                    "time": event["time"],
                });
                self.jet
                    .members
                    .put(&key, Bytes::from(record.to_string()))
                    .await
                    .map_err(|e| kv_err(e.to_string()))?;
            }
            Some(storegate::uplink::event::MEMBER_ERASED) => {
                self.jet
                    .members
                    .purge(&key)
                    .await
                    .map_err(|e| kv_err(e.to_string()))?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Whether the member consented to marketing.
    async fn consented(&self, member: &str) -> Result<bool, Retry> {
        let v = self.jet.members.get(key_part(member)).await.map_err(|e| {
            self.metrics.jetstream_error();
            Retry(e.to_string())
        })?;
        Ok(v.and_then(|v| serde_json::from_slice::<Value>(&v).ok())
            .and_then(|v| v["marketing"].as_bool())
            .unwrap_or(false))
    }

    /// Creates `key` if absent: `Ok(true)` if this call created it.
    async fn claim(&self, key: &str) -> Result<bool, Retry> {
        match self.jet.sent.create(key, Bytes::from_static(b"1")).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(false),
            Err(e) => {
                self.metrics.jetstream_error();
                Err(Retry(e.to_string()))
            }
        }
    }

    /// One `visit.started`.
    pub async fn arrival(&self, subject: &str, payload: &[u8]) -> Result<Outcome, Retry> {
        let now = Timestamp::now();
        let arrival = match screen(subject, payload, now) {
            Ok(a) => a,
            Err(o) => {
                if o == Outcome::Stale {
                    self.metrics.suppressed_stale.fetch_add(1, Relaxed);
                }
                return Ok(o);
            }
        };
        let (event_id, store_id) = (arrival.event_id.as_str(), arrival.store_id.as_str());
        let member = arrival.member_id.as_deref().unwrap_or_default();
        let consented = self.consented(member).await?;
        let tz = if consented {
            self.stores
                .get(store_id)
                .await
                .map_err(Retry)?
                .map(|s| s.timezone.clone())
                .unwrap_or(jiff::tz::TimeZone::UTC)
        } else {
            jiff::tz::TimeZone::UTC
        };
        let campaigns = self
            .campaigns
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let found = match decision::candidates(&campaigns, &arrival, member, consented, &tz, now) {
            Ok(found) => found,
            Err(o) => {
                if o == Outcome::NoConsent {
                    self.metrics.suppressed_consent.fetch_add(1, Relaxed);
                }
                return Ok(o);
            }
        };
        let visit_key = format!("v.{}", key_part(event_id));
        if !self.claim(&visit_key).await? {
            self.metrics.suppressed_redelivery.fetch_add(1, Relaxed);
            return Ok(Outcome::AlreadyHandled);
        }
        let day = found.day().strftime("%Y%m%d").to_string();
        for c in found.campaigns {
            // The shared cap, claimed one create-only key per message so
            // two messengers racing cannot both send.
            let mut cap_key = None;
            for n in (0..).take_while(|n| decision::cap_allows(c, *n)) {
                let k = format!("c.{}.{}.{day}.{n}", key_part(&c.id), key_part(member));
                if self.claim(&k).await? {
                    cap_key = Some(k);
                    break;
                }
            }
            let Some(cap_key) = cap_key else { continue };
            let message = Outbound::Targeted {
                member_id: member.to_string(),
                store_id: store_id.to_string(),
                campaign_id: c.id.clone(),
                text: c.text.clone(),
                visit_event_id: event_id.to_string(),
            };
            if let Err(e) = self.provider.send(&message).await {
                self.metrics.provider_errors.fetch_add(1, Relaxed);
                if !matches!(e, ProviderError::Unreachable(_)) {
                    // Refused for sure: nothing was sent, so release both
                    // markers and let the event come again.
                    let _ = self.jet.sent.purge(&cap_key).await;
                    let _ = self.jet.sent.purge(&visit_key).await;
                    return Err(Retry(format!("provider: {e}")));
                }
                tracing::warn!(campaign = %c.id, "targeted message may not have been sent: {e}");
                return Ok(Outcome::Sent {
                    campaign: c.id.clone(),
                });
            }
            self.metrics.messages_sent.fetch_add(1, Relaxed);
            self.announce(store_id, member, &c.id, event_id).await;
            return Ok(Outcome::Sent {
                campaign: c.id.clone(),
            });
        }
        self.metrics.suppressed_cap.fetch_add(1, Relaxed);
        Ok(Outcome::Capped)
    }

    /// The `storegate.messages.<store>` event of a message sent.
    async fn announce(&self, store_id: &str, member: &str, campaign: &str, event_id: &str) {
        let id = format!("msg-{event_id}-{}", key_part(campaign));
        let event = json!({
            "specversion": "1.0", "id": id, "source": "/hq/messenger",
            "type": "com.storegate.message.sent", "time": jiff::Timestamp::now().to_string(),
            "datacontenttype": "application/json",
            "data": {"member_id": member, "store_id": store_id, "campaign_id": campaign,
                     "visit_event_id": event_id},
        });
        let publish = async_nats::jetstream::message::PublishMessage::build()
            .payload(Bytes::from(event.to_string()))
            .message_id(&id)
            .header("content-type", "application/cloudevents+json");
        let subject = format!("storegate.messages.{store_id}");
        let acked = match self.jet.js.send_publish(subject, publish).await {
            Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = acked {
            self.metrics.jetstream_error();
            tracing::warn!(campaign, "message event not published: {e}");
        }
    }
}

/// A failure worth another delivery (KV or the provider unavailable).
#[derive(Debug)]
pub struct Retry(pub String);

/// The arrival in a `visit.started` on `subject` (`storegate.<store>.…`,
/// which names the store), if it is a member's and not older than
/// `MAX_AGE` at `now` (`decision::screen`).
pub fn screen(subject: &str, payload: &[u8], now: Timestamp) -> Result<Arrival, Outcome> {
    let event = serde_json::from_slice::<Value>(payload).map_err(|_| Outcome::NoMember)?;
    let mut arrival = Arrival::from_event(&event).ok_or(Outcome::NoMember)?;
    arrival.store_id = subject.split('.').nth(1).unwrap_or_default().to_string();
    decision::screen(&arrival, now)?;
    Ok(arrival)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visit(member: Option<&str>, time: &str) -> Vec<u8> {
        serde_json::to_vec(
            &json!({"specversion": "1.0", "id": "e1", "source": "/stores/x",
            "type": "com.storegate.visit.started", "time": time,
            "data": {"visit_id": "v", "member_id": member}}),
        )
        .unwrap()
    }

    #[test]
    fn an_arrival_older_than_max_age_is_stale() {
        let subject = "storegate.mall-01.visit.started";
        let now = Timestamp::parse_rfc3339("2026-12-01T10:00:00Z").unwrap();
        let fresh = screen(subject, &visit(Some("m1"), "2026-12-01T09:50:00Z"), now).unwrap();
        assert_eq!(fresh.store_id, "mall-01", "the store is the subject's");
        assert_eq!(fresh.member_id.as_deref(), Some("m1"));
        for old in ["2026-12-01T09:44:59Z", "2026-10-27T10:00:00Z"] {
            assert_eq!(
                screen(subject, &visit(Some("m1"), old), now).err(),
                Some(Outcome::Stale),
                "{old}"
            );
        }
        assert_eq!(
            screen(subject, &visit(None, "2026-12-01T10:00:00Z"), now).err(),
            Some(Outcome::NoMember)
        );
        assert_eq!(
            screen(subject, b"not json", now).err(),
            Some(Outcome::NoMember)
        );
    }
}
