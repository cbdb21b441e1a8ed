//! What the dashboard answers (the routes are listed in `dashboard`'s
//! module docs). [`route`] never fails: bad input gets a 4xx that says
//! what was wrong.
//!
//! `route` matches the method, the path and whether a manager is signed
//! in, and hands a [`Cx`] to one small handler each: `sign_in` (sign-in,
//! sign-out), `devices` (the list and its actions), `live` (the live
//! view, its JSON and event stream), `export` (the visits CSV). Here: the
//! check every POST goes through, and the headers of every answer.

use std::convert::Infallible;
use std::net::IpAddr;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;

use super::auth::{self, COOKIE, Session};
use super::{Dashboard, metrics, views};
use crate::config::Language;
use crate::http::form;
use crate::http::reply::{self, Reply};
use crate::time::Timestamp;

mod devices;
mod export;
mod live;
mod sign_in;

/// Largest form body read (sign-in, actions).
pub const MAX_BODY_BYTES: usize = 4 * 1024;
const LANG_COOKIE: &str = "sg_lang";
/// Where the device actions are (`POST /api/devices/{mac}/{action}`).
const DEVICES_API: &str = "/api/devices/";

const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; script-src 'self'; \
                   connect-src 'self'; img-src 'self' data:; form-action 'self'; \
                   base-uri 'none'; frame-ancestors 'none'";

pub type Body = BoxBody<Bytes, Infallible>;
pub type Resp = Response<Body>;

/// One request, as every handler sees it.
struct Cx<'a> {
    d: &'a Dashboard,
    peer: IpAddr,
    /// `?lang=`, then the language cookie, then Accept-Language, then the
    /// configured default.
    lang: Language,
    /// The query string's fields; none when it does not parse.
    query: Vec<(String, String)>,
}

/// The signed-in manager making the request.
struct Manager {
    /// The session id (the cookie's value).
    id: String,
    session: Session,
}

pub(crate) async fn route<B: crate::http::Body>(
    d: &Dashboard,
    peer: IpAddr,
    req: Request<B>,
) -> Resp {
    let query = req
        .uri()
        .query()
        .and_then(|q| form::parse(q.as_bytes()).ok())
        .unwrap_or_default();
    let asked_lang = form::get(&query, "lang").and_then(Language::from_tag);
    let lang = asked_lang
        .or_else(|| auth::cookie(req.headers(), LANG_COOKIE).and_then(Language::from_tag))
        .or_else(|| crate::web::accept_language(req.headers()))
        .unwrap_or(d.default_language);
    let manager = auth::cookie(req.headers(), COOKIE).and_then(|id| {
        let session = d.auth.sessions.get(id, Timestamp::now())?;
        Some(Manager {
            id: id.to_string(),
            session,
        })
    });
    let cx = Cx {
        d,
        peer,
        lang,
        query,
    };
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let mut resp = match (&method, path.as_str(), manager.as_ref()) {
        // Open to anyone.
        (&Method::GET | &Method::HEAD, "/static/live.js", _) => text(
            StatusCode::OK,
            "text/javascript; charset=utf-8",
            views::LIVE_JS,
        ),
        (&Method::GET | &Method::HEAD, "/login", m) => sign_in::page(&cx, m),
        (&Method::POST, "/login", _) => sign_in::password(&cx, req).await,
        (&Method::GET | &Method::HEAD, "/metrics", m) if d.metrics_public || m.is_some() => text(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            metrics::render(d),
        ),
        // The rest needs a session.
        (_, _, None) => sign_in::first(&path),
        (&Method::POST, "/logout", Some(m)) => sign_in::sign_out(&cx, m, req).await,
        (&Method::POST, p, Some(m)) if p.starts_with(DEVICES_API) => {
            devices::action(&cx, m, &p[DEVICES_API.len()..], req).await
        }
        (&Method::POST, _, Some(m)) => match posted(m, req).await {
            Ok(_) => json_error(StatusCode::NOT_FOUND, "no such action"),
            Err(refused) => refused,
        },
        (&Method::GET | &Method::HEAD, "/", Some(m)) => live::page(&cx, m),
        (&Method::GET | &Method::HEAD, "/devices", Some(m)) => devices::page(&cx, m),
        (&Method::GET | &Method::HEAD, "/api/live", Some(_)) => live::current(&cx),
        (&Method::GET | &Method::HEAD, "/api/devices", Some(_)) => devices::list(&cx),
        (&Method::GET | &Method::HEAD, "/api/events", Some(m)) => live::events(&cx, m),
        (&Method::GET | &Method::HEAD, "/api/visits.csv", Some(_)) => export::visits_csv(&cx),
        (&Method::GET | &Method::HEAD, _, Some(_)) => {
            json_error(StatusCode::NOT_FOUND, "no such page")
        }
        (_, _, Some(_)) => json_error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
    };
    if let Some(l) = asked_lang {
        add_cookie(
            &mut resp,
            &format!(
                "{LANG_COOKIE}={}; Path=/; Secure; SameSite=Strict; Max-Age=31536000",
                l.tag()
            ),
        );
    }
    resp
}

/// How a posted action wants its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wants {
    /// A form on a page: a redirect back to it.
    Page,
    /// A script: JSON.
    Json,
}

/// What every POST but the sign-in goes through: a bounded form body and
/// the session's CSRF token (`X-CSRF-Token` header or `csrf` field). The
/// error is the answer.
async fn posted<B: crate::http::Body>(m: &Manager, req: Request<B>) -> Result<Wants, Resp> {
    let header_token = req
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let wants = if accepts_html(&req) {
        Wants::Page
    } else {
        Wants::Json
    };
    let fields = form::read_body(req, MAX_BODY_BYTES)
        .await
        .map_err(|status| json_error(status, "the form could not be read"))?;
    let token = header_token.or_else(|| form::get(&fields, "csrf").map(str::to_string));
    if !token.is_some_and(|t| auth::same_token(&t, &m.session.csrf)) {
        return Err(json_error(
            StatusCode::FORBIDDEN,
            "missing or wrong CSRF token (X-CSRF-Token header or csrf field)",
        ));
    }
    Ok(wants)
}

fn accepts_html<B>(req: &Request<B>) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

/// Every answer but the event stream: the page headers, the dashboard's
/// content security policy, and HSTS (it is only ever served over HTTPS).
fn guarded(mut resp: Reply) -> Resp {
    let h = resp.headers_mut();
    reply::guard(h, CSP);
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    resp.map(|body| body.map_err(|never| match never {}).boxed())
}

fn text(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Resp {
    guarded(reply::answer(status, content_type, body))
}

fn html(status: StatusCode, body: String) -> Resp {
    text(status, "text/html; charset=utf-8", body)
}

fn json(status: StatusCode, value: &serde_json::Value) -> Resp {
    guarded(reply::json(status, value))
}

fn json_error(status: StatusCode, message: &str) -> Resp {
    guarded(reply::json_error(status, message))
}

fn see_other(location: &'static str) -> Resp {
    let mut resp = text(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", location);
    reply::set_location(&mut resp, location);
    resp
}

/// Adds a `Set-Cookie`.
fn add_cookie(resp: &mut Resp, cookie: &str) {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}
