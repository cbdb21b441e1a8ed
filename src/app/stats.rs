//! The portal's counters: written by the portal, read by `status` and
//! the dashboard's `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters for `ctl status` and `/metrics`.
#[derive(Debug, Default)]
pub struct PortalStats {
    pub requests: AtomicU64,
    pub redirects: AtomicU64,
    pub sign_ins: AtomicU64,
    pub bad_requests: AtomicU64,
    pub unknown_clients: AtomicU64,
    pub connections_refused: AtomicU64,
    /// Connections closed because their client already had
    /// `portal.max_connections_per_client` open.
    pub connections_over_client_cap: AtomicU64,
}

impl PortalStats {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> serde_json::Value {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        serde_json::json!({
            "requests": g(&self.requests),
            "redirects": g(&self.redirects),
            "sign_ins": g(&self.sign_ins),
            "bad_requests": g(&self.bad_requests),
            "unknown_clients": g(&self.unknown_clients),
            "connections_refused": g(&self.connections_refused),
            "connections_over_client_cap": g(&self.connections_over_client_cap),
        })
    }
}
