//! What the dashboard answers (routes in the module docs). `handle`
//! never fails: bad input gets a 4xx that says what was wrong.

use std::convert::Infallible;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Frame;
use tokio::sync::mpsc;

use super::auth::{self, COOKIE, Session};
use super::live::LiveData;
use super::views::{self, DeviceRow};
use super::{Dashboard, metrics};
use crate::access::EndReason;
use crate::config::Language;
use crate::mac::MacAddr;
use crate::portal::form;
use crate::portal::pages::{self, t};
use crate::presence::local::local_date;
use crate::presence::visit::MAX_RECENT_VISITS;
use crate::presence::{Classification, Visit};
use crate::time::Timestamp;

/// Largest form body read (sign-in, actions).
pub const MAX_BODY_BYTES: usize = 4 * 1024;
/// Longest CSV date range, in days.
const MAX_CSV_DAYS: i64 = 366;
/// An idle event stream gets a comment this often (keeps proxies and the
/// browser from timing it out, and notices a gone client).
const SSE_KEEPALIVE: Duration = Duration::from_secs(15);
const LANG_COOKIE: &str = "sg_lang";

const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; script-src 'self'; \
                   connect-src 'self'; img-src 'self' data:; form-action 'self'; \
                   base-uri 'none'; frame-ancestors 'none'";

pub type Body = BoxBody<Bytes, Infallible>;
pub type Resp = Response<Body>;

pub(crate) async fn handle<B>(d: &Dashboard, peer: IpAddr, req: Request<B>) -> Resp
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let now = Timestamp::now();
    let path = req.uri().path().to_string();
    let query = req
        .uri()
        .query()
        .and_then(|q| form::parse(q.as_bytes()).ok())
        .unwrap_or_default();
    let asked_lang = form::get(&query, "lang").and_then(Language::from_tag);
    let lang = asked_lang
        .or_else(|| auth::cookie(req.headers(), LANG_COOKIE).and_then(Language::from_tag))
        .or_else(|| pages::accept_language(req.headers()))
        .unwrap_or(d.default_language);
    let session = auth::cookie(req.headers(), COOKIE)
        .and_then(|id| d.auth.sessions.get(id, now).map(|s| (id.to_string(), s)));
    let method = req.method().clone();
    let mut resp = match (&method, path.as_str()) {
        (&Method::GET | &Method::HEAD, "/static/live.js") => text(
            StatusCode::OK,
            "text/javascript; charset=utf-8",
            views::LIVE_JS,
        ),
        (&Method::GET | &Method::HEAD, "/login") => match session {
            Some(_) => see_other("/"),
            None => html(StatusCode::OK, views::login(lang, &d.store_name, None)),
        },
        (&Method::POST, "/login") => sign_in(d, peer, lang, req).await,
        (&Method::GET | &Method::HEAD, "/metrics") if d.metrics_public || session.is_some() => {
            text(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                &metrics::render(d),
            )
        }
        _ => match session {
            None if path.starts_with("/api/") || path == "/metrics" => {
                json_error(StatusCode::UNAUTHORIZED, "sign in first: POST /login")
            }
            None => see_other("/login"),
            Some((id, s)) => signed_in(d, &id, &s, lang, method, &path, &query, req).await,
        },
    };
    if let Some(l) = asked_lang {
        let cookie = format!(
            "{LANG_COOKIE}={}; Path=/; Secure; SameSite=Strict; Max-Age=31536000",
            l.tag()
        );
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

#[allow(clippy::too_many_arguments)]
async fn signed_in<B>(
    d: &Dashboard,
    id: &str,
    session: &Session,
    lang: Language,
    method: Method,
    path: &str,
    query: &[(String, String)],
    req: Request<B>,
) -> Resp
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if method == Method::POST {
        let header_token = req
            .headers()
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let wants_html = accepts_html(&req);
        let fields = match form::read_body(req, MAX_BODY_BYTES).await {
            Ok(f) => f,
            Err(status) => return json_error(status, "the form could not be read"),
        };
        let token = header_token.or_else(|| form::get(&fields, "csrf").map(str::to_string));
        if !token.is_some_and(|t| auth::same_token(&t, &session.csrf)) {
            return json_error(
                StatusCode::FORBIDDEN,
                "missing or wrong CSRF token (X-CSRF-Token header or csrf field)",
            );
        }
        if path == "/logout" {
            d.auth.sessions.remove(id);
            let mut resp = see_other("/login");
            let gone = format!("{COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0");
            if let Ok(v) = HeaderValue::from_str(&gone) {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            return resp;
        }
        if let Some(rest) = path.strip_prefix("/api/devices/") {
            return device_action(d, rest, wants_html).await;
        }
        return json_error(StatusCode::NOT_FOUND, "no such action");
    }
    if method != Method::GET && method != Method::HEAD {
        return json_error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    }
    match path {
        "/" => {
            let (p, _) = d.live.fresh(&d.presence, super::live::POLL_EVERY);
            let body = views::live_body(lang, &p.data, p.seq);
            html(
                StatusCode::OK,
                views::page(
                    lang,
                    &d.store_name,
                    &t(lang, "dash_live"),
                    &session.csrf,
                    &body,
                    true,
                ),
            )
        }
        "/devices" => {
            let rows = device_rows(d);
            let today = {
                let m = d.presence.machine();
                local_date(Timestamp::now(), m.timezone()).to_string()
            };
            let body = views::devices_body(lang, &rows, &session.csrf, &today);
            html(
                StatusCode::OK,
                views::page(
                    lang,
                    &d.store_name,
                    &t(lang, "dash_devices"),
                    &session.csrf,
                    &body,
                    false,
                ),
            )
        }
        "/api/live" => {
            d.live.refresh(&d.presence);
            let p = d.live.current();
            json(
                StatusCode::OK,
                &serde_json::json!({"seq": p.seq, "live": p.data}),
            )
        }
        "/api/devices" => json(
            StatusCode::OK,
            &serde_json::to_value(device_rows(d)).unwrap_or_default(),
        ),
        "/api/events" => events(d, id.to_string(), lang),
        "/api/visits.csv" => visits_csv(d, query),
        _ => json_error(StatusCode::NOT_FOUND, "no such page"),
    }
}

async fn sign_in<B>(d: &Dashboard, peer: IpAddr, lang: Language, req: Request<B>) -> Resp
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let now = Timestamp::now();
    if let Err(wait) = d.auth.attempts.attempt(peer, now) {
        return too_many(d, lang, wait);
    }
    let fields = match form::read_body(req, MAX_BODY_BYTES).await {
        Ok(f) => f,
        Err(status) => return json_error(status, "the form could not be read"),
    };
    let lang = form::get(&fields, "lang")
        .and_then(Language::from_tag)
        .unwrap_or(lang);
    let password = form::get(&fields, "password").unwrap_or("").to_string();
    // Each check takes argon2's 7 MiB: only a few at once, and a sign-in
    // that finds them all busy is told to come back rather than queued.
    let Ok(permit) = d.auth.verifying.clone().try_acquire_owned() else {
        return too_many(d, lang, Duration::from_secs(1));
    };
    let store = d.store.clone();
    // argon2 takes tens of milliseconds: off the async workers.
    let ok = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        auth::stored_hash(store.as_ref())
            .ok()
            .flatten()
            .is_some_and(|h| auth::verify_password(&h, &password))
    })
    .await
    .unwrap_or(false);
    if !ok {
        let text = t(lang, "dash_wrong_password");
        return html(
            StatusCode::UNAUTHORIZED,
            views::login(lang, &d.store_name, Some(&text)),
        );
    }
    let (id, _) = d.auth.sessions.create(now);
    let mut resp = see_other("/");
    let cookie = format!(
        "{COOKIE}={id}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age={}",
        auth::SESSION_TTL.as_secs()
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// `429` with the sign-in page and `Retry-After` (whole seconds, at least 1).
fn too_many(d: &Dashboard, lang: Language, wait: Duration) -> Resp {
    let text = t(lang, "dash_rate_limited").replace("{wait}", &pages::wait_text(lang, wait));
    let mut resp = html(
        StatusCode::TOO_MANY_REQUESTS,
        views::login(lang, &d.store_name, Some(&text)),
    );
    let secs = wait.as_millis().div_ceil(1000).max(1);
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// Every known device, present first, newest first.
fn device_rows(d: &Dashboard) -> Vec<DeviceRow> {
    let now = Timestamp::now();
    let clients: std::collections::HashMap<MacAddr, bool> = d
        .gate
        .clients()
        .into_iter()
        .map(|c| (c.mac, c.is_authorized()))
        .collect();
    let m = d.presence.machine();
    let mut devices: Vec<_> = m.devices().collect();
    devices.sort_by_key(|dev| (!dev.is_present(), std::cmp::Reverse(dev.last_seen)));
    devices
        .iter()
        .map(|dev| DeviceRow {
            mac: dev.mac.to_string(),
            ip: dev.ip.map(|ip| ip.to_string()),
            hostname: dev.hostname.clone(),
            os_family: dev.os_family.clone(),
            mac_randomized: dev.mac_randomized,
            present: dev.is_present(),
            member_id: dev.member_id.clone(),
            first_seen: dev.first_seen.rfc3339(),
            last_seen: dev.last_seen.rfc3339(),
            classification: class_name(m.classify(dev.mac, now)).to_string(),
            blocked: d.blocked().contains(dev.mac),
            wifi: clients
                .get(&dev.mac)
                .map(|a| if *a { "authorized" } else { "preauth" }),
        })
        .collect()
}

fn class_name(c: Classification) -> &'static str {
    match c {
        Classification::Visitor => "visitor",
        Classification::Staff => "staff",
        Classification::Resident => "resident",
    }
}

/// `POST /api/devices/{mac}/{action}`.
async fn device_action(d: &Dashboard, rest: &str, wants_html: bool) -> Resp {
    let Some((mac, action)) = rest.split_once('/') else {
        return json_error(StatusCode::NOT_FOUND, "POST /api/devices/{mac}/{action}");
    };
    let mac: MacAddr = match mac.parse() {
        Ok(m) => m,
        Err(_) => return json_error(StatusCode::BAD_REQUEST, "not a MAC address"),
    };
    let (gate, presence, portal) = (d.gate.clone(), d.presence.clone(), d.portal.clone());
    let action = action.to_string();
    let done = tokio::task::spawn_blocking(move || -> Result<serde_json::Value, String> {
        match action.as_str() {
            "sign-out" => gate
                .end(mac, EndReason::Operator)
                .map(|was| serde_json::json!({"mac": mac, "was_authorized": was}))
                .map_err(|e| e.to_string()),
            "block" => {
                portal
                    .blocklist
                    .manager()
                    .set(mac, true)
                    .map_err(|e| e.to_string())?;
                // A blocked device loses its session at once too.
                let was = gate
                    .end(mac, EndReason::Operator)
                    .map_err(|e| e.to_string())?;
                Ok(serde_json::json!({"mac": mac, "blocked": true, "was_authorized": was}))
            }
            "unblock" => portal
                .blocklist
                .manager()
                .set(mac, false)
                .map(|_| serde_json::json!({"mac": mac, "blocked": false}))
                .map_err(|e| e.to_string()),
            "staff" | "not-staff" => {
                let staff = action == "staff";
                presence.set_staff(mac, staff);
                Ok(serde_json::json!({"mac": mac, "staff": staff}))
            }
            _ => Err(format!(
                "unknown action {:?}",
                action.chars().take(32).collect::<String>()
            )),
        }
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    d.live.refresh(&d.presence);
    match done {
        Ok(_) if wants_html => see_other("/devices"),
        Ok(v) => json(StatusCode::OK, &v),
        Err(e) if e.starts_with("unknown action") => json_error(StatusCode::NOT_FOUND, &e),
        Err(e) => json_error(StatusCode::SERVICE_UNAVAILABLE, &e),
    }
}

/// `YYYY-MM-DD` and nothing else.
fn parse_date(s: Option<&str>, key: &str) -> Result<jiff::civil::Date, String> {
    let s = s.ok_or_else(|| format!("{key}: missing (YYYY-MM-DD)"))?;
    let shape = s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if !shape {
        return Err(format!("{key}: not a date of the form YYYY-MM-DD"));
    }
    s.parse().map_err(|_| format!("{key}: not a calendar date"))
}

fn visits_csv(d: &Dashboard, query: &[(String, String)]) -> Resp {
    let range = parse_date(form::get(query, "from"), "from").and_then(|from| {
        let to = parse_date(form::get(query, "to"), "to")?;
        let days = (to - from).get_days();
        if to < from {
            Err("to: before from".to_string())
        } else if i64::from(days) > MAX_CSV_DAYS {
            Err(format!("the range is longer than {MAX_CSV_DAYS} days"))
        } else {
            Ok((from, to))
        }
    });
    let (from, to) = match range {
        Ok(r) => r,
        Err(e) => return text(StatusCode::BAD_REQUEST, "text/plain; charset=utf-8", &e),
    };
    // Under the presence lock only to pick the visits; formatting after.
    let (mut visits, complete) = {
        let m = d.presence.machine();
        let tz = m.timezone();
        let complete = complete_from(m.visits(), tz);
        let visits: Vec<Visit> = m
            .visits()
            .filter(|v| {
                let day = local_date(v.started_at, tz);
                day >= from && day <= to
            })
            .cloned()
            .collect();
        (visits, complete)
    };
    if let Some(first) = complete
        && from < first
    {
        return text(
            StatusCode::CONFLICT,
            "text/plain; charset=utf-8",
            &format!(
                "the box keeps only its last {MAX_RECENT_VISITS} ended visits and has \
                 dropped older ones: it has every visit from {first} on; ask for from={first} or later"
            ),
        );
    }
    visits.sort_by_key(|v| v.started_at);
    let mut out = String::from(
        "visit_id,mac,started_at,ended_at,dwell_seconds,classification,returning,member_id,os_family\r\n",
    );
    for v in visits {
        let row = [
            v.visit_id,
            v.mac.to_string(),
            v.started_at.rfc3339(),
            v.ended_at.map(Timestamp::rfc3339).unwrap_or_default(),
            v.dwell_seconds.to_string(),
            class_name(v.classification).to_string(),
            v.returning.to_string(),
            v.member_id.unwrap_or_default(),
            v.os_family,
        ];
        let cells: Vec<String> = row.iter().map(|c| csv_cell(c)).collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    let mut resp = text(StatusCode::OK, "text/csv; charset=utf-8", &out);
    let name = format!("attachment; filename=\"visits-{from}-{to}.csv\"");
    if let Ok(v) = HeaderValue::from_str(&name) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

/// The first local date from which `visits` (as the presence machine
/// keeps them: open ones, then the last [`MAX_RECENT_VISITS`] ended ones)
/// holds every visit, when older ones may have been dropped: `None` while
/// fewer than that many ended visits are kept (nothing dropped yet).
/// A dropped visit ended no later than the oldest kept one, so it started
/// on that visit's end date or before: from the next day on, nothing is
/// missing.
fn complete_from<'a>(
    visits: impl Iterator<Item = &'a Visit>,
    tz: &jiff::tz::TimeZone,
) -> Option<jiff::civil::Date> {
    let (ended, oldest_end) = visits
        .filter_map(|v| v.ended_at)
        .fold((0usize, None::<Timestamp>), |(n, oldest), t| {
            (n + 1, Some(oldest.map_or(t, |o| o.min(t))))
        });
    if ended < MAX_RECENT_VISITS {
        return None;
    }
    local_date(oldest_end?, tz).tomorrow().ok()
}

/// A CSV cell: quoted when needed; a leading `=`, `+`, `-` or `@` is
/// defused so a spreadsheet does not run it as a formula.
fn csv_cell(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// `GET /api/events`: the live snapshot now and after every change.
fn events(d: &Dashboard, session_id: String, lang: Language) -> Resp {
    let Ok(permit) = d.live.streams.clone().try_acquire_owned() else {
        return json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many live views open; close one",
        );
    };
    // The poller skips its work while no stream is open: the first
    // snapshot may be old.
    d.live.fresh(&d.presence, super::live::POLL_EVERY);
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    let mut updates = d.live.subscribe();
    let shutdown = d.shutdown.clone();
    let auth_check = d.session_checker();
    tokio::spawn(async move {
        let _permit = permit;
        let mut first = true;
        loop {
            if !first {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    changed = tokio::time::timeout(SSE_KEEPALIVE, updates.changed()) => match changed {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => return,
                        Err(_) => {
                            if !auth_check(&session_id) || tx.send(Bytes::from_static(b": keepalive\n\n")).await.is_err() {
                                return;
                            }
                            continue;
                        }
                    },
                }
            }
            first = false;
            if !auth_check(&session_id) {
                return;
            }
            let p = updates.borrow_and_update().clone();
            let msg = sse_message(lang, p.seq, &p.data);
            if tx.send(Bytes::from(msg)).await.is_err() {
                return;
            }
        }
    });
    let mut resp = Response::new(BoxBody::new(EventStream(rx)));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// One `snapshot` event: the numbers and the rendered `#live` section.
pub fn sse_message(lang: Language, seq: u64, data: &LiveData) -> String {
    let payload = serde_json::json!({
        "seq": seq,
        "present_now": data.present_now,
        "html": views::live_section(lang, data),
    });
    format!("id: {seq}\nevent: snapshot\ndata: {payload}\n\n")
}

/// A response body fed from a channel (the event stream).
struct EventStream(mpsc::Receiver<Bytes>);

impl hyper::body::Body for EventStream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

fn accepts_html<B>(req: &Request<B>) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into())
        .map_err(|never| match never {})
        .boxed()
}

fn text(status: StatusCode, content_type: &'static str, body: &str) -> Resp {
    let mut resp = Response::new(full(body.to_string()));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    crate::portal::routes::guarded_headers(h, content_type, CSP);
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    resp
}

fn html(status: StatusCode, body: String) -> Resp {
    text(status, "text/html; charset=utf-8", &body)
}

fn json(status: StatusCode, value: &serde_json::Value) -> Resp {
    text(status, "application/json", &value.to_string())
}

fn json_error(status: StatusCode, message: &str) -> Resp {
    json(status, &serde_json::json!({"error": message}))
}

fn see_other(location: &'static str) -> Resp {
    let mut resp = text(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", location);
    resp.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(location));
    resp
}
