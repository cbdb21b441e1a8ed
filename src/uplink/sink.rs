//! Turns session events into outbox events: the only place where a MAC
//! becomes a `device_id` on its way to HQ.

use std::sync::Arc;

use serde_json::json;

use crate::access::gate::EventSink;
use crate::access::session::SessionEvent;
use crate::privacy::DeviceKey;

use super::Outbox;
use super::event::{SESSION_AUTHORIZED, SESSION_ENDED};

pub struct OutboxSink {
    pub outbox: Arc<Outbox>,
    pub key: DeviceKey,
}

impl OutboxSink {
    /// The event type and `data` for a session event (no raw MAC in it).
    pub fn describe(&self, event: &SessionEvent) -> (&'static str, serde_json::Value) {
        match event {
            SessionEvent::Authorized {
                mac,
                method,
                member_id,
                ..
            } => (
                SESSION_AUTHORIZED,
                json!({"device_id": self.key.device_id(*mac), "method": method, "member_id": member_id}),
            ),
            SessionEvent::Ended { mac, reason, .. } => (
                SESSION_ENDED,
                json!({"device_id": self.key.device_id(*mac), "reason": reason}),
            ),
        }
    }
}

impl EventSink for OutboxSink {
    fn session_event(&self, event: &SessionEvent) {
        let at = match event {
            SessionEvent::Authorized { at, .. } | SessionEvent::Ended { at, .. } => *at,
        };
        crate::access::gate::LogSink.session_event(event);
        let (ty, data) = self.describe(event);
        if let Err(e) = self.outbox.append(ty, data, at) {
            tracing::error!("could not store a {ty} event: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::{AuthMethod, EndReason};
    use crate::net::MacAddr;
    use crate::store::MemoryStore;
    use crate::time::Timestamp;

    #[test]
    fn session_events_carry_a_device_id_and_never_the_mac() {
        let outbox = Arc::new(Outbox::open(Arc::new(MemoryStore::new()), "s").unwrap());
        let key = DeviceKey::from_bytes([7; 32]);
        let sink = OutboxSink {
            outbox: outbox.clone(),
            key: key.clone(),
        };
        let mac = MacAddr([0x3c, 0x22, 0xfb, 0xaa, 0xbb, 0xcc]);
        let at = Timestamp(1_800_000_000_000);
        sink.session_event(&SessionEvent::Authorized {
            mac,
            method: AuthMethod::ClickThrough,
            member_id: None,
            at,
        });
        sink.session_event(&SessionEvent::Ended {
            mac,
            reason: EndReason::IdleTimeout,
            at,
        });
        let events = outbox.recent(10).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].ty, SESSION_AUTHORIZED);
        assert_eq!(events[0].data["method"], "click_through");
        assert_eq!(events[0].data["device_id"], key.device_id(mac));
        assert_eq!(events[1].data["reason"], "idle_timeout");
        let text = serde_json::to_string(&events).unwrap();
        assert!(
            !text.contains("3c:22:fb") && !text.contains("aa:bb:cc"),
            "{text}"
        );
    }
}
