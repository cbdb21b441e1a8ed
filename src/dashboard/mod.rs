//! The store manager's dashboard: an HTTPS server (rustls) with sign-in,
//! live footfall pushed by server-sent events, device admin and metrics.
//!
//! Routes:
//! - `GET /login`, `POST /login` — sign-in (password, argon2id); attempts
//!   are limited per client (5 a minute per IPv4 address or IPv6 /64) and
//!   in all (30 a minute), then `429` with `Retry-After`; at most
//!   [`auth::MAX_VERIFYING`] passwords are checked at once, a sign-in that
//!   finds them busy gets `429` with `Retry-After: 1`;
//! - `POST /logout` — ends the session;
//! - `GET /` — live view: present now, members present, member arrivals,
//!   arrivals per hour today vs the same weekday last week, dwell, new vs
//!   returning, visit frequency;
//! - `GET /api/live` — the same as JSON; `GET /api/events` — a
//!   `text/event-stream` sending it again on every change (at most
//!   [`live::MAX_SSE_CLIENTS`] streams);
//! - `GET /devices`, `GET /api/devices` — devices seen on the LAN;
//! - `POST /api/devices/{mac}/{action}` — `sign-out`, `block`, `unblock`,
//!   `staff`, `not-staff`; effective at once;
//! - `GET /api/visits.csv?from=YYYY-MM-DD&to=YYYY-MM-DD` — visits by local
//!   start date, from what the presence machine keeps: open visits and
//!   the last [`MAX_RECENT_VISITS`](crate::presence::visit::MAX_RECENT_VISITS)
//!   ended ones. Once older ones have been dropped, a `from` before the
//!   first date the box has every visit for gets `409` naming that date,
//!   never a silently shortened file;
//! - `GET /metrics` — Prometheus text; needs a session unless
//!   `dashboard.metrics_public = true`;
//! - `GET /static/live.js` — the one script (SSE updates).
//!
//! Without a session every `/api/` route answers `401` and pages redirect
//! to `/login`. Every POST but the sign-in needs the session's CSRF token
//! (`X-CSRF-Token` header or `csrf` form field), else `403`.
//!
//! The firewall drops guest-LAN traffic to the dashboard's port (see
//! [`crate::access::nft::ruleset`]): it is for the management side.
//!
//! `auth`: passwords, sessions, CSRF, the rate limit; `tls`: the
//! certificate; `server`: connections and limits (with `crate::http`);
//! `routes`: the answers; `live`: the snapshot and its publisher; `views`:
//! HTML (with `crate::web`); `metrics`.

pub mod auth;
pub mod live;
pub mod metrics;
mod routes;
pub mod server;
pub mod tls;
mod views;

use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use crate::access::Gate;
use crate::access::blocked::BlockedMacs;
use crate::config::Language;
use crate::daemon::PresenceShell;
use crate::members::Members;
use crate::portal::Portal;
use crate::store::Store;
use crate::uplink::Outbox;
use crate::uplink::delivery::DeliveryStatus;

pub use auth::{AuthError, set_password};

/// Everything the dashboard's handlers need.
pub struct Dashboard {
    pub store: Arc<dyn Store>,
    pub gate: Arc<Gate>,
    pub presence: Arc<PresenceShell>,
    pub outbox: Arc<Outbox>,
    /// The portal's counters, and its blocked-MAC set (shared, so a block
    /// here refuses the next sign-in there).
    pub portal: Arc<Portal>,
    pub members: Option<Arc<Members>>,
    pub delivery: Arc<Mutex<DeliveryStatus>>,
    pub store_name: String,
    pub default_language: Language,
    /// `/metrics` without a session (off by default).
    pub metrics_public: bool,
    pub auth: Arc<auth::Auth>,
    pub live: live::Live,
    /// Ends open event streams at shutdown.
    pub shutdown: CancellationToken,
}

impl Dashboard {
    pub fn new(
        store: Arc<dyn Store>,
        gate: Arc<Gate>,
        presence: Arc<PresenceShell>,
        outbox: Arc<Outbox>,
        portal: Arc<Portal>,
    ) -> Dashboard {
        Dashboard {
            store,
            gate,
            presence,
            outbox,
            store_name: portal.site.store_name.clone(),
            default_language: portal.site.default_language,
            portal,
            members: None,
            delivery: Arc::new(Mutex::new(DeliveryStatus::default())),
            metrics_public: false,
            auth: Arc::new(auth::Auth::default()),
            live: live::Live::default(),
            shutdown: CancellationToken::new(),
        }
    }

    /// Is this session still signed in? (For event streams, which
    /// outlive the request that opened them.)
    pub(crate) fn session_checker(&self) -> impl Fn(&str) -> bool + Send + 'static {
        let auth = self.auth.clone();
        move |id| {
            auth.sessions
                .get(id, crate::time::Timestamp::now())
                .is_some()
        }
    }

    pub fn blocked(&self) -> &BlockedMacs {
        &self.portal.blocked_macs
    }

    /// Sets the manager password (hashed, stored) and signs every session
    /// out. For `ctl dashboard-password` and the demo.
    pub fn set_password(&self, password: &str) -> Result<(), AuthError> {
        set_password(self.store.as_ref(), password)?;
        self.auth.sessions.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests;
