//! The store manager's dashboard: an HTTPS server (rustls) with sign-in,
//! live footfall pushed by server-sent events, device admin and metrics.
//!
//! Routes:
//! - `GET /login`, `POST /login` — sign-in (password, argon2id); attempts
//!   are limited per client (5 a minute per IPv4 address or IPv6 /64) and
//!   in all (30 a minute; a client's first attempt in its minute is never
//!   refused for the total), then `429` with `Retry-After`; at most
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
pub mod start;
pub mod tls;
mod views;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::config::Language;

/// Everything the dashboard's handlers need: the hub, and the dashboard's
/// own sign-in and live-view state.
pub struct Dashboard {
    pub app: Arc<App>,
    pub store_name: String,
    pub default_language: Language,
    /// `/metrics` without a session (off by default).
    pub metrics_public: bool,
    /// Sign-in limits; its session table is the hub's.
    pub auth: Arc<auth::Auth>,
    pub live: live::Live,
    /// Ends open event streams at shutdown.
    pub shutdown: CancellationToken,
}

impl Dashboard {
    pub fn new(app: Arc<App>, default_language: Language) -> Dashboard {
        let auth = auth::Auth {
            sessions: app.manager_sessions.clone(),
            ..auth::Auth::default()
        };
        Dashboard {
            store_name: app.info.store_name.clone(),
            default_language,
            app,
            metrics_public: false,
            auth: Arc::new(auth),
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
}

#[cfg(test)]
mod tests;
