//! The CloudEvents 1.0 envelope of every event (DESIGN.md, "HQ").

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

pub const VISIT_STARTED: &str = "com.storegate.visit.started";
pub const VISIT_ENDED: &str = "com.storegate.visit.ended";
pub const SESSION_AUTHORIZED: &str = "com.storegate.session.authorized";
pub const SESSION_ENDED: &str = "com.storegate.session.ended";
pub const FOOTFALL_SUMMARY: &str = "com.storegate.footfall.summary";
pub const OUTBOX_GAP: &str = "com.storegate.outbox.gap";
pub const MEMBER_LINKED: &str = "com.storegate.member.linked";
pub const MEMBER_ERASED: &str = "com.storegate.member.erased";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloudEvent {
    pub specversion: String,
    /// UUIDv7: unique, and sortable by creation time.
    pub id: String,
    /// `/stores/{store.id}`.
    pub source: String,
    #[serde(rename = "type")]
    pub ty: String,
    /// RFC 3339, UTC.
    pub time: String,
    /// The store's monotonic counter as a decimal string, so HQ can see gaps.
    pub sequence: String,
    pub datacontenttype: String,
    pub data: serde_json::Value,
}

impl CloudEvent {
    pub fn new(
        store_id: &str,
        ty: &str,
        sequence: u64,
        time: Timestamp,
        data: serde_json::Value,
    ) -> Self {
        CloudEvent {
            specversion: "1.0".into(),
            id: uuid_v7(time),
            source: format!("/stores/{store_id}"),
            ty: ty.into(),
            time: time.rfc3339(),
            sequence: sequence.to_string(),
            datacontenttype: "application/json".into(),
            data,
        }
    }

    pub fn sequence_number(&self) -> Option<u64> {
        self.sequence.parse().ok()
    }
}

/// A UUIDv7 for `time` (its 48-bit millisecond prefix), random below.
fn uuid_v7(time: Timestamp) -> String {
    let ms = u64::try_from(time.millis()).unwrap_or(0);
    let ts =
        uuid::Timestamp::from_unix(uuid::NoContext, ms / 1000, ((ms % 1000) * 1_000_000) as u32);
    uuid::Uuid::new_v7(ts).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_has_every_required_attribute() {
        let t = Timestamp(1_795_000_000_123);
        let e = CloudEvent::new(
            "wulin-01",
            VISIT_STARTED,
            42,
            t,
            serde_json::json!({"visit_id": "v"}),
        );
        let v = serde_json::to_value(&e).unwrap();
        for key in [
            "specversion",
            "id",
            "source",
            "type",
            "time",
            "sequence",
            "datacontenttype",
            "data",
        ] {
            assert!(v.get(key).is_some(), "{key} missing: {v}");
        }
        assert_eq!(v["specversion"], "1.0");
        assert_eq!(v["source"], "/stores/wulin-01");
        assert_eq!(v["type"], VISIT_STARTED);
        assert_eq!(v["sequence"], "42");
        assert_eq!(v["time"], "2026-11-18T11:06:40.123Z");
        let id = uuid::Uuid::parse_str(e.id.as_str()).unwrap();
        assert_eq!(id.get_version_num(), 7);
        let (secs, _) = id.get_timestamp().unwrap().to_unix();
        assert_eq!(secs, 1_795_000_000);
        assert_ne!(
            e.id,
            CloudEvent::new("wulin-01", VISIT_STARTED, 43, t, serde_json::json!({})).id
        );
    }
}
