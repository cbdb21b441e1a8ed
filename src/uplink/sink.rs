//! The one path from the box's modules to HQ: producers (the gate,
//! members, presence, erasure) hand typed [`Event`]s to an [`EventSink`];
//! the [`OutboxSink`] stores them durably in the outbox, where the MAC of
//! each becomes its keyed `device_id` ([`Event::data`]).

use std::sync::{Arc, Mutex};

use super::Outbox;
use super::event::Event;
use crate::privacy::DeviceKey;
use crate::store::StoreError;
use crate::time::Timestamp;

/// Where events go. Implementations store them durably before they
/// return `Ok` (group commit: one flush for the whole slice).
pub trait EventSink: Send + Sync {
    fn emit_all(&self, events: &[Event], at: Timestamp) -> Result<(), StoreError>;

    fn emit(&self, event: Event, at: Timestamp) -> Result<(), StoreError> {
        self.emit_all(std::slice::from_ref(&event), at)
    }
}

/// The box's sink: the outbox, and the key that turns MACs into
/// `device_id`s.
pub struct OutboxSink {
    pub outbox: Arc<Outbox>,
    pub key: DeviceKey,
}

impl EventSink for OutboxSink {
    fn emit_all(&self, events: &[Event], at: Timestamp) -> Result<(), StoreError> {
        let items = events.iter().map(|e| (e.ty(), e.data(&self.key))).collect();
        self.outbox.append_all(items, at).map(|_| ())
    }
}

/// Drops events (logged at debug): for tools and tests that run a gate
/// without an outbox.
pub struct LogSink;

impl EventSink for LogSink {
    fn emit_all(&self, events: &[Event], _: Timestamp) -> Result<(), StoreError> {
        for e in events {
            tracing::debug!(ty = e.ty(), "event not kept (no outbox)");
        }
        Ok(())
    }
}

/// Keeps events in memory, for tests that look at what was emitted.
#[derive(Default)]
pub struct MemorySink(pub Mutex<Vec<Event>>);

impl MemorySink {
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl EventSink for MemorySink {
    fn emit_all(&self, events: &[Event], _: Timestamp) -> Result<(), StoreError> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(events);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mac::MacAddr;
    use crate::store::MemoryStore;
    use crate::uplink::event::{SESSION_AUTHORIZED, SESSION_ENDED};

    #[test]
    fn session_events_carry_a_device_id_and_never_the_mac() {
        let outbox = Arc::new(Outbox::open(None, Arc::new(MemoryStore::new()), "s").unwrap());
        let key = DeviceKey::from_bytes([7; 32]);
        let sink = OutboxSink {
            outbox: outbox.clone(),
            key: key.clone(),
        };
        let mac = MacAddr([0x3c, 0x22, 0xfb, 0xaa, 0xbb, 0xcc]);
        let at = Timestamp(1_800_000_000_000);
        sink.emit(
            Event::SessionAuthorized {
                mac,
                method: "click_through",
                member_id: None,
                recognised_by: None,
            },
            at,
        )
        .unwrap();
        sink.emit(
            Event::SessionEnded {
                mac,
                reason: "idle_timeout",
            },
            at,
        )
        .unwrap();
        let events = outbox.recent(10).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].ty, SESSION_AUTHORIZED);
        assert_eq!(events[0].data["method"], "click_through");
        assert_eq!(events[0].data["device_id"], key.device_id(mac));
        assert_eq!(events[1].ty, SESSION_ENDED);
        assert_eq!(events[1].data["reason"], "idle_timeout");
        let text = serde_json::to_string(&events).unwrap();
        assert!(
            !text.contains("3c:22:fb") && !text.contains("aa:bb:cc"),
            "{text}"
        );
    }
}
