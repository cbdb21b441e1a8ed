//! The demo's in-process HQ, beyond the reference receiver: targeted
//! messages. The receiver's observer hands each accepted event to an
//! in-memory messenger (`hq::targeting::local`, the same decision as
//! `storegate-hq`'s) running the demo's campaigns ([`CAMPAIGNS`]); each
//! message it "sends" is printed as one line on the terminal and kept
//! (the latest [`KEPT`]) for a small page on the HQ's own port:
//!
//! * `GET /` — the messages, newest first, as HTML that reloads itself
//!   every 2 s (no script, no external assets);
//! * `GET /messages.json` — the same, as a JSON array (newest first).
//!
//! Every other request is the receiver's (`…/events`, `…/sync`, …).
//! Arrivals are aged against the demo's business clock, so a backlog or
//! the replayed history is not messaged.

use std::collections::VecDeque;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Method, Request, StatusCode};
use jiff::tz::TimeZone;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::hq::receiver::{self, Observer, Receiver};
use crate::hq::targeting::local::{LocalMessenger, TargetedMessage};
use crate::hq::targeting::rules::Campaign;
use crate::http::reply::{self, Reply};
use crate::http::{Acceptor, Conn, conn::GRACE};
use crate::time::Timestamp;
use crate::web::escape;

/// The demo's campaigns, as HQ would store them: a lunchtime offer on
/// weekdays (preferred when it applies), and a welcome back for every
/// member who consented, each at most once a member a day.
pub const CAMPAIGNS: [&str; 2] = [
    r#"{"id": "lunch-20", "text": "Lunchtime: 20% off sandwiches and salads until 2 pm",
        "audience": {"all_members": true},
        "windows": [{"days": ["mon", "tue", "wed", "thu", "fri"], "from": "11:30", "to": "14:00"}],
        "daily_cap": 1, "priority": 10}"#,
    r#"{"id": "welcome-back", "text": "Welcome back! Show this message at the till for a free coffee today",
        "audience": {"all_members": true}, "daily_cap": 1}"#,
];
/// How many messages the page keeps.
pub const KEPT: usize = 200;
const CONNECTIONS: usize = 64;
const CONNECTION_LIFETIME: Duration = Duration::from_secs(600);
const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'";

/// The demo's campaigns, parsed.
pub fn campaigns() -> Vec<Campaign> {
    CAMPAIGNS
        .iter()
        .filter_map(|c| match Campaign::parse(c.as_bytes()) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!("demo campaign skipped: {e}");
                None
            }
        })
        .collect()
}

/// What "now" is for the in-process HQ.
pub type Now = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// The in-process HQ's targeting: the messenger and what it sent.
pub struct DemoHq {
    messenger: Mutex<LocalMessenger>,
    /// Newest last, at most [`KEPT`].
    sent: Mutex<VecDeque<TargetedMessage>>,
    tz: TimeZone,
    now: Now,
}

impl DemoHq {
    /// `tz`: the store's time zone; `now`: the business clock arrivals
    /// are aged against.
    pub fn new(campaigns: Vec<Campaign>, tz: TimeZone, now: Now) -> Arc<DemoHq> {
        Arc::new(DemoHq {
            messenger: Mutex::new(LocalMessenger::new(campaigns)),
            sent: Mutex::new(VecDeque::new()),
            tz,
            now,
        })
    }

    /// One accepted event: the message it produced, if any (kept).
    pub fn observe(&self, event: &Value) -> Option<TargetedMessage> {
        let now = (self.now)();
        let message = self
            .messenger
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .handle(event, &self.tz, now)?;
        let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        if sent.len() >= KEPT {
            sent.pop_front();
        }
        sent.push_back(message.clone());
        Some(message)
    }

    /// The receiver's observer: [`DemoHq::observe`], and each message
    /// printed as one line.
    pub fn observer(self: &Arc<Self>) -> Observer {
        let hq = self.clone();
        Arc::new(move |event: &Value| {
            if let Some(m) = hq.observe(event) {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{}", line(&m));
                let _ = out.flush();
            }
        })
    }

    /// The messages kept, newest first.
    pub fn messages(&self) -> Vec<TargetedMessage> {
        let sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        sent.iter().rev().cloned().collect()
    }

    /// The page's answer for `GET /` and `GET /messages.json`; `None`
    /// for any other request (the receiver's).
    pub fn page(&self, method: &Method, path: &str) -> Option<Reply> {
        if method != Method::GET && method != Method::HEAD {
            return None;
        }
        let mut r = match path {
            "/" => reply::answer(StatusCode::OK, "text/html; charset=utf-8", self.html()),
            "/messages.json" => {
                let list: Vec<Value> = self.messages().iter().map(|m| m.to_json()).collect();
                reply::json(StatusCode::OK, &Value::Array(list))
            }
            _ => return None,
        };
        reply::guard(r.headers_mut(), PAGE_CSP);
        Some(r)
    }

    fn html(&self) -> String {
        let campaigns: String = {
            let m = self.messenger.lock().unwrap_or_else(|e| e.into_inner());
            m.campaigns()
                .iter()
                .map(|c| {
                    format!(
                        "<li><b>{}</b>: “{}” (at most {} a member a day{})</li>\n",
                        escape(&c.id),
                        escape(&c.text),
                        c.daily_cap,
                        if c.windows.is_empty() {
                            ""
                        } else {
                            ", in its hours"
                        },
                    )
                })
                .collect()
        };
        let messages = self.messages();
        let rows: String = messages
            .iter()
            .map(|m| {
                format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                    escape(&m.arrival_local.strftime("%a %Y-%m-%d %H:%M").to_string()),
                    escape(&m.member_id),
                    escape(&m.campaign_id),
                    escape(&m.text),
                    escape(&m.store_id),
                )
            })
            .collect();
        let body = if messages.is_empty() {
            "<p>No message yet: one appears when a member who agreed to marketing arrives.</p>"
                .to_string()
        } else {
            format!(
                "<table><tr><th>Arrival (store time)</th><th>Member</th><th>Campaign</th>\
                 <th>Message</th><th>Store</th></tr>\n{rows}</table>"
            )
        };
        format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta http-equiv=\"refresh\" content=\"2\">\
             <title>storegate demo: HQ's targeted messages</title>\
             <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}\
             td,th{{border-bottom:1px solid #ccc;padding:.3em .6em;text-align:left}}</style>\
             </head><body>\n<h1>HQ: targeted messages</h1>\n\
             <p>When a member arrives, HQ applies its campaigns and sends a message \
             (here it is only shown). Newest first; this page reloads every 2 s; \
             also as <a href=\"/messages.json\">JSON</a>.</p>\n\
             <h2>Campaigns</h2>\n<ul>\n{campaigns}</ul>\n<h2>Messages</h2>\n{body}\n</body></html>\n"
        )
    }
}

/// The terminal's line for a message.
pub fn line(m: &TargetedMessage) -> String {
    format!(
        "[hq] message to member {}: {:?} (campaign {}, arrival {})",
        m.member_id,
        m.text,
        m.campaign_id,
        m.arrival_local.strftime("%H:%M"),
    )
}

/// Answers one request: the page's, else the receiver's.
pub async fn answer<B: crate::http::Body>(
    receiver: &Arc<Receiver>,
    hq: &DemoHq,
    req: Request<B>,
) -> Reply {
    if let Some(page) = hq.page(req.method(), req.uri().path()) {
        return page;
    }
    // Signatures are checked against the wall clock, as the box signs.
    let now_secs = Timestamp::now().millis() / 1000;
    receiver::route(receiver, req, now_secs).await
}

/// Serves the receiver and the page (plain HTTP) until `shutdown`;
/// connections are tracked by `tracker`.
pub async fn serve(
    listener: TcpListener,
    receiver: Arc<Receiver>,
    hq: Arc<DemoHq>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    Acceptor::new("demo hq", CONNECTIONS)
        .run(&listener, &shutdown, &tracker, (receiver, hq), connection)
        .await;
}

async fn connection(
    (receiver, hq): (Arc<Receiver>, Arc<DemoHq>),
    stream: TcpStream,
    peer: SocketAddr,
    shutdown: CancellationToken,
) {
    let conn = Conn {
        what: "demo hq",
        peer,
        shutdown: &shutdown,
        grace: GRACE,
        idle: None,
    };
    conn.serve(stream, tokio::time::sleep(CONNECTION_LIFETIME), |req| {
        let (receiver, hq) = (receiver.clone(), hq.clone());
        async move { answer(&receiver, &hq, req).await }
    })
    .await;
}

#[cfg(test)]
mod tests;
