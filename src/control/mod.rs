//! The control socket: one JSON request per line from `storegate ctl`,
//! one JSON answer per line back. The socket file is mode 0600, so only
//! root (or the daemon's user) can drive the daemon.
//!
//! Request: `{"cmd": "clients"}`, `{"cmd": "auth", "mac": "02:…"}`.
//! Answer: `{"ok": true, "data": …}` or `{"ok": false, "error": "…"}`.

pub mod client;
pub mod server;

use serde::{Deserialize, Serialize};

use crate::access::session::Client;

/// Longest request line the daemon reads.
pub const MAX_REQUEST_BYTES: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
pub enum Request {
    Status,
    Clients,
    Auth {
        mac: String,
    },
    Deauth {
        mac: String,
    },
    Devices,
    Visits,
    /// Today's and recent footfall.
    Footfall,
    Members,
    MemberErase {
        member_id: String,
    },
    /// Events HQ refused; `retry` queues them again.
    DeadLetters {
        #[serde(default)]
        retry: bool,
    },
    /// The newest events in the outbox (default 100).
    Events {
        #[serde(default)]
        limit: Option<usize>,
    },
    /// A DHCP request from `mac`, recorded by hand as if captured (tests,
    /// and boxes without capture).
    Observe {
        mac: String,
        #[serde(default)]
        ip: Option<String>,
        #[serde(default)]
        hostname: Option<String>,
    },
    /// Sets the dashboard's manager password (hashed by the daemon) and
    /// signs every dashboard session out.
    DashboardPassword {
        password: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Reply {
    pub fn ok(data: serde_json::Value) -> Self {
        Reply {
            ok: true,
            data: Some(data),
            error: None,
        }
    }

    pub fn err(message: impl Into<String>) -> Self {
        Reply {
            ok: false,
            data: None,
            error: Some(message.into()),
        }
    }
}

/// A client as `ctl clients --json` shows it (the contract in DESIGN.md).
pub fn client_json(c: &Client) -> serde_json::Value {
    serde_json::json!({
        "mac": c.mac,
        "ip": c.ip,
        "state": if c.is_authorized() { "authorized" } else { "preauth" },
        "authorized_at": c.authorized_at.map(|t| t.rfc3339()),
        "expires_at": c.expires_at.map(|t| t.rfc3339()),
        "member_id": c.member_id,
        "method": c.method,
        "first_seen": c.first_seen.rfc3339(),
        "last_seen": c.last_seen.rfc3339(),
    })
}
