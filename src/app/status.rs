//! `ctl status`: the whole picture in one JSON document.

use std::time::Instant;

use super::App;
use crate::access::gate::Restored;
use crate::time::Timestamp;

/// What the box is, fixed at start.
#[derive(Debug, Clone)]
pub struct AppInfo {
    pub store_id: String,
    pub store_name: String,
    pub lan_interface: String,
    /// The portal's sign-in URL.
    pub portal_url: String,
    /// `{hq.url}`, or `None` without `[hq]`.
    pub hq_url: Option<String>,
    pub started_at: Timestamp,
    pub started: Instant,
    /// What the start restored into the firewall.
    pub restored: Restored,
    /// Whether the LAN capture runs (presence from packets).
    pub capturing: bool,
}

impl App {
    pub fn status(&self) -> serde_json::Value {
        let info = &self.info;
        let (authorized, preauth) = self.gate.counts();
        let (devices_known, present_now, counters) = {
            let m = self.presence.machine();
            (
                m.devices().count(),
                m.footfall(self.clock.now()).present_now,
                m.counters(),
            )
        };
        let hq = match &info.hq_url {
            Some(url) => {
                let delivery = self.delivery.lock().unwrap_or_else(|e| e.into_inner());
                let mut v = serde_json::to_value(&*delivery).unwrap_or_default();
                v["url"] = serde_json::json!(url);
                v["sync"] = serde_json::to_value(self.sync.status()).unwrap_or_default();
                v
            }
            None => serde_json::json!({"state": "not configured"}),
        };
        let r = info.restored;
        serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "store_id": info.store_id,
            "store_name": info.store_name,
            "started_at": info.started_at.rfc3339(),
            // The business clock: the wall clock but in the demo.
            "clock": {"now": self.clock.now().rfc3339(), "simulated": self.clock.is_simulated()},
            "uptime_seconds": info.started.elapsed().as_secs(),
            "portal_url": info.portal_url,
            "lan_interface": info.lan_interface,
            "firewall": self.gate.firewall_name(),
            "clients": {"authorized": authorized, "preauth": preauth},
            "restored": {"authorized": r.authorized, "expired": r.expired, "corrupt": r.corrupt},
            "portal": self.portal_stats.snapshot(),
            "hq": hq,
            "outbox": self.outbox.stats(self.clock.now()),
            "presence": {
                "capturing": info.capturing,
                "frames": self.presence.stats(),
                "devices_known": devices_known,
                "present_now": present_now,
                "untracked": counters,
                "saved_bytes": self.presence.persisted_bytes(),
            },
            "members": {"bound_devices": self.members.as_ref().map_or(0, |m| m.bound_devices())},
        })
    }
}
