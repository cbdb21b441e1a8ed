//! `POST /events` after the HTTP layer: a batch body checked strictly
//! ([`parse_batch`], pure), then each event published to JetStream
//! ([`publish`]) on `storegate.<store_id>.<type without com.storegate.>`,
//! in CloudEvents structured mode, with `Nats-Msg-Id` = the event id, so
//! a batch the box sends again is de-duplicated by the stream.
//!
//! Every publish of a batch is sent first and the acknowledgements are
//! awaited together: one round trip per batch, not per event. The batch
//! counts as stored only if every acknowledgement came back (a duplicate
//! is an acknowledgement too: the event is already in the stream).

use std::time::Instant;

use async_nats::jetstream::{self, message::PublishMessage as Publish};
use bytes::Bytes;
use serde_json::{Map, Value};

use crate::metrics::Metrics;

/// Most events in one batch (the box sends at most 500).
pub const MAX_EVENTS: usize = 10_000;
/// Most events a gateway has published and not yet seen acknowledged.
/// A batch takes its share all at once before its first publish, so
/// batches never hold part of it while waiting for the rest.
pub const INFLIGHT: usize = 50_000;
const TYPE_PREFIX: &str = "com.storegate.";
const SOURCE_PREFIX: &str = "/stores/";

/// One event, ready to publish.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub id: String,
    pub subject: String,
    /// The event as structured-mode JSON.
    pub payload: Bytes,
}

/// A checked batch: every event from `store_id`.
#[derive(Debug, Clone)]
pub struct Batch {
    pub store_id: String,
    pub events: Vec<Outgoing>,
}

/// Why a batch body was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchError {
    /// Not the JSON the contract describes (400).
    Invalid(String),
    /// Events from more than one store (403).
    MixedSources(String),
}

impl std::fmt::Display for BatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchError::Invalid(s) | BatchError::MixedSources(s) => f.write_str(s),
        }
    }
}

fn string<'a>(obj: &'a Map<String, Value>, i: usize, attr: &str) -> Result<&'a str, BatchError> {
    match obj.get(attr) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        _ => Err(BatchError::Invalid(format!(
            "event {i} has no \"{attr}\" (a non-empty string is required)"
        ))),
    }
}

/// A subject token of ours: lower-case letters, digits, `-` and `_`.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Checks one event and returns (store id, subject suffix, id).
fn check_event(i: usize, obj: &Map<String, Value>) -> Result<(String, String, String), BatchError> {
    let bad = |m: String| BatchError::Invalid(format!("event {i} {m}"));
    let specversion = string(obj, i, "specversion")?;
    if specversion != "1.0" {
        return Err(bad(format!("has specversion {specversion:?}, not \"1.0\"")));
    }
    let id = string(obj, i, "id")?;
    if id.len() > 128 || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad(
            "has an id that is not 1 to 128 visible ASCII characters".into(),
        ));
    }
    let source = string(obj, i, "source")?;
    let store = source
        .strip_prefix(SOURCE_PREFIX)
        .filter(|s| crate::config::check_store_id(s).is_ok())
        .ok_or_else(|| bad(format!("has source {source:?}, not \"/stores/<store id>\"")))?;
    let ty = string(obj, i, "type")?;
    let suffix = ty
        .strip_prefix(TYPE_PREFIX)
        .filter(|s| s.split('.').all(is_token))
        .ok_or_else(|| {
            bad(format!(
                "has type {ty:?}, not \"com.storegate.<name>\" (lower-case words joined by dots)"
            ))
        })?;
    let time = string(obj, i, "time")?;
    if time.parse::<jiff::Timestamp>().is_err() {
        return Err(bad(format!("has time {time:?}, not an RFC 3339 time")));
    }
    let sequence = string(obj, i, "sequence")?;
    if sequence.len() > 20 || !sequence.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(format!(
            "has sequence {sequence:?}, not a decimal number in a string"
        )));
    }
    if let Some(ct) = obj.get("datacontenttype")
        && ct != "application/json"
    {
        return Err(bad(format!(
            "has datacontenttype {ct}, not \"application/json\""
        )));
    }
    if !obj.contains_key("data") {
        return Err(bad("has no \"data\"".into()));
    }
    Ok((store.to_string(), suffix.to_string(), id.to_string()))
}

/// Parses and checks a batch body (uncompressed): a non-empty JSON array
/// of CloudEvents from one store. The error is one line naming the event
/// and the attribute.
pub fn parse_batch(body: &[u8]) -> Result<Batch, BatchError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| BatchError::Invalid(format!("the body is not JSON: {e}")))?;
    let Value::Array(items) = value else {
        return Err(BatchError::Invalid(
            "the body is not a JSON array of CloudEvents".into(),
        ));
    };
    if items.is_empty() {
        return Err(BatchError::Invalid("the batch is empty".into()));
    }
    if items.len() > MAX_EVENTS {
        return Err(BatchError::Invalid(format!(
            "the batch has {} events, more than {MAX_EVENTS}",
            items.len()
        )));
    }
    let mut store_id: Option<String> = None;
    let mut events = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Value::Object(obj) = item else {
            return Err(BatchError::Invalid(format!(
                "event {i} is not a JSON object"
            )));
        };
        let (store, suffix, id) = check_event(i, obj)?;
        match &store_id {
            None => store_id = Some(store.clone()),
            Some(first) if *first != store => {
                return Err(BatchError::MixedSources(format!(
                    "event {i} is from store {store:?}, event 0 from {first:?}: a batch is one store's"
                )));
            }
            Some(_) => {}
        }
        let payload =
            serde_json::to_vec(item).map_err(|e| BatchError::Invalid(format!("event {i}: {e}")))?;
        events.push(Outgoing {
            subject: format!("storegate.{store}.{suffix}"),
            id,
            payload: payload.into(),
        });
    }
    Ok(Batch {
        store_id: store_id.unwrap_or_default(),
        events,
    })
}

/// What JetStream did with a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Published {
    /// New to the stream.
    pub stored: usize,
    /// Already in the stream (the same `Nats-Msg-Id` within the window).
    pub duplicates: usize,
}

/// Publishes every event, then waits for all acknowledgements. `Err`
/// (one line) if any publish was not acknowledged: the box will send the
/// batch again, and what was stored is de-duplicated then.
pub async fn publish(
    js: &jetstream::Context,
    inflight: &tokio::sync::Semaphore,
    events: &[Outgoing],
    metrics: &Metrics,
) -> Result<Published, String> {
    let started = Instant::now();
    let n = events.len().min(INFLIGHT) as u32;
    let _permits = inflight
        .acquire_many(n)
        .await
        .map_err(|_| "the gateway is stopping".to_string())?;
    let mut acks = Vec::with_capacity(events.len());
    for e in events {
        let msg = Publish::build()
            .payload(e.payload.clone())
            .message_id(&e.id)
            .header("content-type", "application/cloudevents+json");
        match js.send_publish(e.subject.clone(), msg).await {
            Ok(ack) => acks.push(ack.into_future()),
            Err(err) => {
                metrics.jetstream_error();
                return Err(format!("publishing to {}: {err}", e.subject));
            }
        }
    }
    let results = futures_util::future::join_all(acks).await;
    let mut out = Published::default();
    let mut first_error = None;
    for r in results {
        match r {
            Ok(ack) if ack.duplicate => out.duplicates += 1,
            Ok(_) => out.stored += 1,
            Err(err) => {
                metrics.jetstream_error();
                first_error.get_or_insert_with(|| format!("JetStream did not acknowledge: {err}"));
            }
        }
    }
    metrics.published(out.stored as u64, out.duplicates as u64, started.elapsed());
    match first_error {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(store: &str, seq: u64) -> Value {
        json!({"specversion": "1.0", "id": format!("0190-{store}-{seq}"),
               "source": format!("/stores/{store}"), "type": "com.storegate.visit.started",
               "time": "2026-12-01T10:00:00Z", "sequence": seq.to_string(),
               "datacontenttype": "application/json", "data": {"member_id": null}})
    }

    fn body(events: &[Value]) -> Vec<u8> {
        serde_json::to_vec(events).unwrap()
    }

    #[test]
    fn a_good_batch_gets_subjects_and_ids() {
        let b = parse_batch(&body(&[event("wulin-01", 1), event("wulin-01", 2)])).unwrap();
        assert_eq!(b.store_id, "wulin-01");
        assert_eq!(b.events[0].subject, "storegate.wulin-01.visit.started");
        assert_eq!(b.events[1].id, "0190-wulin-01-2");
        let back: Value = serde_json::from_slice(&b.events[0].payload).unwrap();
        assert_eq!(back, event("wulin-01", 1));
    }

    #[test]
    fn two_stores_in_one_batch_are_refused() {
        let e = parse_batch(&body(&[event("a", 1), event("b", 2)])).unwrap_err();
        assert!(matches!(e, BatchError::MixedSources(_)), "{e}");
    }

    #[test]
    fn bad_events_name_what_is_wrong() {
        type Change = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|e| e["specversion"] = json!("0.3")), "specversion"),
            (Box::new(|e| e["id"] = json!("a b")), "id"),
            (Box::new(|e| e["source"] = json!("/shops/x")), "source"),
            (
                Box::new(|e| e["source"] = json!("/stores/messages")),
                "source",
            ),
            (
                Box::new(|e| e["type"] = json!("com.storegate.a..b")),
                "type",
            ),
            (Box::new(|e| e["type"] = json!("org.x.y")), "type"),
            (Box::new(|e| e["time"] = json!("yesterday")), "time"),
            (Box::new(|e| e["sequence"] = json!(5)), "sequence"),
            (
                Box::new(|e| e["datacontenttype"] = json!("text/plain")),
                "datacontenttype",
            ),
            (
                Box::new(|e| {
                    e.as_object_mut().unwrap().remove("data");
                }),
                "data",
            ),
        ];
        for (change, attr) in cases {
            let mut e = event("s", 1);
            change(&mut e);
            let err = parse_batch(&body(&[e])).unwrap_err();
            assert!(
                matches!(&err, BatchError::Invalid(m) if m.contains(attr)),
                "{attr}: {err}"
            );
        }
        for b in [&b"{}"[..], b"[]", b"[1]", b"not json", b"[{\"id\":"] {
            assert!(matches!(parse_batch(b), Err(BatchError::Invalid(_))));
        }
    }
}
