//! What the box tells HQ: the typed events every producer builds
//! ([`Event`]: gate, members, presence, erasure), their CloudEvents
//! `type` and `data`, and the CloudEvents 1.0 envelope they travel in
//! (DESIGN.md, "HQ").
//!
//! An [`Event`] names devices by MAC; only [`Event::data`], given the
//! box's [`DeviceKey`], turns a MAC into the keyed `device_id` HQ sees, so
//! no producer can put a raw MAC on the wire by mistake.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::mac::MacAddr;
use crate::privacy::DeviceKey;
use crate::time::Timestamp;

pub const VISIT_STARTED: &str = "com.storegate.visit.started";
pub const VISIT_ENDED: &str = "com.storegate.visit.ended";
pub const SESSION_AUTHORIZED: &str = "com.storegate.session.authorized";
pub const SESSION_ENDED: &str = "com.storegate.session.ended";
pub const FOOTFALL_SUMMARY: &str = "com.storegate.footfall.summary";
pub const OUTBOX_GAP: &str = "com.storegate.outbox.gap";
pub const MEMBER_LINKED: &str = "com.storegate.member.linked";
pub const MEMBER_ERASED: &str = "com.storegate.member.erased";

/// How a member was recognised without signing in (`recognised_by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecognisedBy {
    /// The device's MAC is bound to the member (a remembered device).
    Mac,
    /// The device joined the members' Wi-Fi with the member's own key.
    WifiKey,
}

/// One thing that happened, as the box's modules report it. Enum values
/// that HQ reads as strings (`method`, `reason`, `classification`) are
/// carried as the producer's own wire names.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    VisitStarted {
        visit_id: String,
        mac: MacAddr,
        member_id: Option<String>,
        recognised_by: Option<RecognisedBy>,
        returning: bool,
        mac_randomized: bool,
        os_family: String,
    },
    VisitEnded {
        visit_id: String,
        mac: MacAddr,
        member_id: Option<String>,
        dwell_seconds: u64,
        classification: &'static str,
    },
    SessionAuthorized {
        mac: MacAddr,
        method: &'static str,
        member_id: Option<String>,
        recognised_by: Option<RecognisedBy>,
    },
    SessionEnded {
        mac: MacAddr,
        reason: &'static str,
    },
    MemberLinked {
        member_id: String,
        mac: MacAddr,
        staff_code: Option<String>,
        remember_device: bool,
        marketing: bool,
    },
    MemberErased {
        member_id: String,
    },
    /// Counts only, no device: built by presence.
    FootfallSummary(serde_json::Value),
}

impl Event {
    /// The CloudEvents `type`.
    pub fn ty(&self) -> &'static str {
        match self {
            Event::VisitStarted { .. } => VISIT_STARTED,
            Event::VisitEnded { .. } => VISIT_ENDED,
            Event::SessionAuthorized { .. } => SESSION_AUTHORIZED,
            Event::SessionEnded { .. } => SESSION_ENDED,
            Event::MemberLinked { .. } => MEMBER_LINKED,
            Event::MemberErased { .. } => MEMBER_ERASED,
            Event::FootfallSummary(_) => FOOTFALL_SUMMARY,
        }
    }

    /// The CloudEvents `data`: every MAC replaced by its keyed
    /// `device_id`.
    pub fn data(&self, key: &DeviceKey) -> serde_json::Value {
        match self {
            Event::VisitStarted {
                visit_id,
                mac,
                member_id,
                recognised_by,
                returning,
                mac_randomized,
                os_family,
            } => json!({
                "visit_id": visit_id,
                "device_id": key.device_id(*mac),
                "member_id": member_id,
                "recognised_by": recognised_by,
                "returning": returning,
                "mac_randomized": mac_randomized,
                "os_family": os_family,
            }),
            Event::VisitEnded {
                visit_id,
                mac,
                member_id,
                dwell_seconds,
                classification,
            } => json!({
                "visit_id": visit_id,
                "device_id": key.device_id(*mac),
                "member_id": member_id,
                "dwell_seconds": dwell_seconds,
                "classification": classification,
            }),
            Event::SessionAuthorized {
                mac,
                method,
                member_id,
                recognised_by,
            } => json!({
                "device_id": key.device_id(*mac),
                "method": method,
                "member_id": member_id,
                "recognised_by": recognised_by,
            }),
            Event::SessionEnded { mac, reason } => json!({
                "device_id": key.device_id(*mac),
                "reason": reason,
            }),
            Event::MemberLinked {
                member_id,
                mac,
                staff_code,
                remember_device,
                marketing,
            } => json!({
                "member_id": member_id,
                "device_id": key.device_id(*mac),
                "staff_code": staff_code,
                "remember_device": remember_device,
                "marketing": marketing,
            }),
            Event::MemberErased { member_id } => json!({ "member_id": member_id }),
            Event::FootfallSummary(data) => data.clone(),
        }
    }
}

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
    fn data_names_devices_by_keyed_hash_only() {
        let key = DeviceKey::from_bytes([3; 32]);
        let mac = MacAddr([0x3c, 0x22, 0xfb, 0xaa, 0xbb, 0xcc]);
        let events = [
            Event::VisitStarted {
                visit_id: "v".into(),
                mac,
                member_id: Some("m".into()),
                recognised_by: Some(RecognisedBy::Mac),
                returning: true,
                mac_randomized: false,
                os_family: "ios".into(),
            },
            Event::VisitEnded {
                visit_id: "v".into(),
                mac,
                member_id: None,
                dwell_seconds: 7,
                classification: "visitor",
            },
            Event::SessionAuthorized {
                mac,
                method: "otp",
                member_id: None,
                recognised_by: None,
            },
            Event::SessionEnded {
                mac,
                reason: "logout",
            },
            Event::MemberLinked {
                member_id: "m".into(),
                mac,
                staff_code: None,
                remember_device: true,
                marketing: false,
            },
        ];
        for e in &events {
            let data = e.data(&key);
            assert_eq!(data["device_id"], key.device_id(mac), "{}", e.ty());
            let text = data.to_string();
            assert!(
                !text.contains("3c:22:fb") && !text.contains("aa:bb:cc"),
                "{text}"
            );
        }
        assert_eq!(events[0].data(&key)["recognised_by"], "mac");
        assert!(events[2].data(&key)["recognised_by"].is_null());
        assert_eq!(events[1].data(&key)["classification"], "visitor");
    }

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
