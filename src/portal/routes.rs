//! What the portal answers (the routes are listed in `portal`'s module
//! docs). [`route`] never fails: every bad input gets a 4xx page that says
//! what was wrong.
//!
//! `route` matches the method and path and hands a [`Cx`] to one small
//! handler each. Here: sign-in by terms, status, sign-out and the pages
//! they share; `captive`: captured traffic, probes and the RFC 8908 API;
//! `guard`: what every POST goes through (origin, bounded form, form
//! token); `members`: member sign-in; `wifi`: the members' Wi-Fi key on
//! the welcome page, its Apple profile and renewal.

use std::net::IpAddr;

use http::header::{self, HeaderValue};
use http::{Method, Request, StatusCode};

use super::pages::{self, render};
use super::{Portal, PortalStats, campaign};
use crate::access::gate::GateError;
use crate::access::session::Client;
use crate::access::{AuthMethod, EndReason};
use crate::config::Language;
use crate::http::form;
use crate::http::reply::{self, Reply};
use crate::mac::MacAddr;
use crate::members::{Consent, MemberError};
use crate::time::Timestamp;
use crate::web::{escape, t, url_encode};

/// Largest form body the portal reads.
pub const MAX_BODY_BYTES: usize = 8 * 1024;
/// Longest `dst` (the page the shopper first asked for) that is kept.
const MAX_DST_LEN: usize = 1024;
/// Longest phone number or member number passed on (characters).
const MAX_NUMBER_LEN: usize = 40;
/// Longest staff code (`?staff=`, from a QR poster).
const MAX_STAFF_LEN: usize = 32;

mod captive;
mod guard;
mod members;
pub(crate) mod wifi;
/// Tests (here and the dashboard's) post with a device's form token.
#[cfg(test)]
pub(crate) use guard::{csrf_token, utc_day};
use guard::{current_csrf, posted_form};
use members::*;

const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; \
                   form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

type Resp = Reply;

/// Who is asking.
struct Asker {
    ip: IpAddr,
    mac: Option<MacAddr>,
    client: Option<Client>,
    /// When the request came, on the gate's (session) clock.
    now: Timestamp,
}

impl Asker {
    /// Signed in, with time left now (not just until the next tick).
    fn authorized(&self) -> bool {
        self.client
            .as_ref()
            .is_some_and(|c| c.remaining(self.now).is_some())
    }
}

/// One request, as every handler sees it.
struct Cx<'a> {
    portal: &'a Portal,
    asker: Asker,
    /// Accept-Language, else the configured default. Pages let `?lang=`
    /// win ([`Cx::page_lang`]), forms their `lang` field (`guard`).
    lang: Language,
    /// The query string's fields; none when it does not parse.
    query: Vec<(String, String)>,
}

impl Cx<'_> {
    /// `?lang=`, then Accept-Language, then the configured default.
    fn page_lang(&self) -> Language {
        form::get(&self.query, "lang")
            .and_then(Language::from_tag)
            .unwrap_or(self.lang)
    }

    /// `?dst=`, when it is a plain http(s) URL.
    fn dst(&self) -> Option<String> {
        valid_dst(form::get(&self.query, "dst"))
    }
}

pub(crate) async fn route<B: crate::http::Body>(
    portal: &Portal,
    peer: IpAddr,
    req: Request<B>,
) -> Resp {
    PortalStats::bump(&portal.stats.requests);
    let ip = peer.to_canonical();
    let mac = portal.resolver.mac_of(ip);
    if let Some(m) = mac {
        portal.gate.seen(m, Some(ip));
    } else {
        PortalStats::bump(&portal.stats.unknown_clients);
    }
    let asker = Asker {
        ip,
        mac,
        client: mac.and_then(|m| portal.gate.client(m)),
        now: portal.gate.clock().now(),
    };
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or("")
        .to_string();
    if !host.is_empty() && !portal.site.is_own_host(&host) {
        return captive::captured(portal, &asker, &host, &req);
    }
    let cx = Cx {
        portal,
        asker,
        lang: crate::web::accept_language(req.headers()).unwrap_or(portal.site.default_language),
        query: req
            .uri()
            .query()
            .and_then(|q| form::parse(q.as_bytes()).ok())
            .unwrap_or_default(),
    };
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    match (&method, path.as_str()) {
        (&Method::GET | &Method::HEAD, "/") => home(&cx),
        (&Method::GET | &Method::HEAD, "/login") => login(&cx),
        (&Method::POST, "/login") => accept_terms(&cx, req).await,
        (&Method::POST, "/signin/code") => request_code(&cx, req).await,
        (&Method::POST, "/signin/verify") => verify_code(&cx, req).await,
        (&Method::POST, "/signin/member") => member_number(&cx, req).await,
        (&Method::GET | &Method::HEAD, "/welcome") => welcome(&cx, method == Method::GET).await,
        (&Method::GET | &Method::HEAD, "/wifi/profile.mobileconfig") => wifi::profile(&cx),
        (&Method::POST, "/wifi/renew") => wifi::renew(&cx, req).await,
        (&Method::GET | &Method::HEAD, "/status") => status(&cx),
        (&Method::POST, "/logout") => sign_out(&cx, req).await,
        (&Method::GET | &Method::HEAD, "/api/captive") => captive::api(&cx),
        (
            _,
            "/"
            | "/login"
            | "/status"
            | "/logout"
            | "/api/captive"
            | "/signin/code"
            | "/signin/verify"
            | "/signin/member"
            | "/welcome"
            | "/wifi/profile.mobileconfig"
            | "/wifi/renew",
        ) => bad(
            portal,
            StatusCode::METHOD_NOT_ALLOWED,
            cx.lang,
            "error_form",
        ),
        _ => message(
            portal,
            StatusCode::NOT_FOUND,
            cx.lang,
            "error_title",
            "not_found",
        ),
    }
}

/// `GET /`: the sign-in page, or for a signed-in device (not come by a
/// staff poster) its status.
fn home(cx: &Cx) -> Resp {
    let staff = valid_staff(form::get(&cx.query, "staff"));
    if cx.asker.authorized() && staff.is_none() {
        let member = cx
            .asker
            .client
            .as_ref()
            .is_some_and(|c| c.member_id.is_some());
        return see_other(if member { "/welcome" } else { "/status" });
    }
    login(cx)
}

/// `GET /login`: the sign-in page.
fn login(cx: &Cx) -> Resp {
    let (portal, lang) = (cx.portal, cx.page_lang());
    if cx.asker.mac.is_some_and(|m| portal.is_blocked(m)) {
        return blocked(portal, lang);
    }
    let input = MemberInput {
        dst: cx.dst(),
        staff: valid_staff(form::get(&cx.query, "staff")),
        csrf: current_csrf(portal, cx.asker.mac),
        ..MemberInput::default()
    };
    form_page(portal, Form::Login, lang, StatusCode::OK, &input, None)
}

/// `GET /status`.
fn status(cx: &Cx) -> Resp {
    status_page(cx.portal, &cx.asker, cx.page_lang(), cx.dst().as_deref())
}

/// `POST /login`: the terms accepted, the device authorised.
async fn accept_terms<B: crate::http::Body>(cx: &Cx<'_>, req: Request<B>) -> Resp {
    let portal = cx.portal;
    let (lang, fields, mac, input) = match sign_in_form(cx, req).await {
        Ok(posted) => posted,
        Err(page) => return page,
    };
    let dst = input.dst.clone();
    if !ticked(&fields, "accept_terms") {
        PortalStats::bump(&portal.stats.bad_requests);
        let error = crate::web::error_box(lang, "error_terms");
        let status = StatusCode::BAD_REQUEST;
        return form_page(portal, Form::Login, lang, status, &input, Some(&error));
    }
    let (gate, ip) = (portal.gate.clone(), cx.asker.ip);
    match blocking(move || gate.authorize(mac, Some(ip), AuthMethod::ClickThrough, None)).await {
        Ok(_) => {
            PortalStats::bump(&portal.stats.sign_ins);
            let mut location = "/status".to_string();
            if let Some(d) = dst {
                location.push_str("?dst=");
                location.push_str(&url_encode(&d));
            }
            see_other(&location)
        }
        Err(e) => {
            tracing::error!(mac = %mac.redacted(), "sign-in failed: {e}");
            busy(portal, lang)
        }
    }
}

/// `POST /logout`.
async fn sign_out<B: crate::http::Body>(cx: &Cx<'_>, req: Request<B>) -> Resp {
    let (lang, _) = match posted_form(cx, req).await {
        Ok(posted) => posted,
        Err(page) => return page,
    };
    let gate = cx.portal.gate.clone();
    if let Some(mac) = cx.asker.mac
        && let Err(e) = blocking(move || gate.end(mac, EndReason::Logout)).await
    {
        tracing::error!(mac = %mac.redacted(), "sign-out failed: {e}");
        return busy(cx.portal, lang);
    }
    see_other(&format!("/login?lang={}", lang.tag()))
}

/// A sign-in form with what was typed into it, and perhaps an error.
fn form_page(
    portal: &Portal,
    which: Form,
    lang: Language,
    status: StatusCode,
    input: &MemberInput,
    error: Option<&str>,
) -> Resp {
    let html = match which {
        Form::Login => login_html(portal, lang, input, error),
        Form::Code => code_html(portal, lang, input, error),
    };
    plain(status, "text/html; charset=utf-8", &html)
}

fn login_html(portal: &Portal, lang: Language, input: &MemberInput, error: Option<&str>) -> String {
    let other = match lang {
        Language::ZhCn => Language::En,
        Language::En => Language::ZhCn,
    };
    let dst = input.dst.as_deref().unwrap_or("");
    let member = member_section(portal, lang, input);
    render(
        pages::LOGIN,
        lang,
        &[
            ("store", &portal.site.store_name),
            ("dst", dst),
            ("dst_q", &url_encode(dst)),
            ("staff_q", &input.staff_q()),
            ("other_lang", other.tag()),
            ("csrf", &input.csrf),
        ],
        &[("error", error.unwrap_or("")), ("member", &member)],
    )
}

fn continue_link(lang: Language, dst: Option<&str>) -> String {
    dst.map(|d| {
        format!(
            "<a class=\"continue\" href=\"{}\">{} {}</a>",
            escape(d),
            escape(&t(lang, "continue")),
            escape(d)
        )
    })
    .unwrap_or_default()
}

fn status_page(portal: &Portal, asker: &Asker, lang: Language, dst: Option<&str>) -> Resp {
    let Some(left) = asker.client.as_ref().and_then(|c| c.remaining(asker.now)) else {
        return see_other(&format!("/login?lang={}", lang.tag()));
    };
    let html = render(
        pages::STATUS,
        lang,
        &[
            ("store", &portal.site.store_name),
            ("remaining", &crate::web::remaining_text(lang, left)),
            ("csrf", &current_csrf(portal, asker.mac)),
        ],
        &[("continue", &continue_link(lang, dst))],
    );
    plain(StatusCode::OK, "text/html; charset=utf-8", &html)
}

fn message(
    portal: &Portal,
    status: StatusCode,
    lang: Language,
    title_key: &str,
    message_key: &str,
) -> Resp {
    let html = render(
        pages::MESSAGE,
        lang,
        &[
            ("store", &portal.site.store_name),
            ("title", &t(lang, title_key)),
            ("message", &t(lang, message_key)),
        ],
        &[],
    );
    plain(status, "text/html; charset=utf-8", &html)
}

fn bad(portal: &Portal, status: StatusCode, lang: Language, key: &str) -> Resp {
    PortalStats::bump(&portal.stats.bad_requests);
    message(portal, status, lang, "error_title", key)
}

/// `503`: a store write or the firewall failed; the shopper may retry.
fn busy(portal: &Portal, lang: Language) -> Resp {
    message(
        portal,
        StatusCode::SERVICE_UNAVAILABLE,
        lang,
        "error_title",
        "error_busy",
    )
}

/// Runs a sign-in's or sign-out's work (store writes, an fsync, a netlink
/// batch) off the async workers, so it never stalls other shoppers'
/// redirects.
async fn blocking<T: Send + 'static, E: From<GateError> + Send + 'static>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, E> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(E::from(GateError::Store(
            crate::store::StoreError::Backend(format!("sign-in task: {e}")),
        )))
    })
}

/// A staff code from a QR poster: `[A-Za-z0-9_-]{1,32}`; anything else
/// is dropped without a word.
fn valid_staff(code: Option<&str>) -> Option<String> {
    let c = code?;
    let ok = (1..=MAX_STAFF_LEN).contains(&c.len())
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| c.to_string())
}

/// A ticked checkbox.
fn ticked(fields: &[(String, String)], key: &str) -> bool {
    matches!(form::get(fields, key), Some("yes" | "on" | "1" | "true"))
}

/// The last four digits of a phone number as typed.
fn last4_digits(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    digits[digits.len().saturating_sub(4)..].iter().collect()
}

/// Keeps only plain http(s) URLs of sane length.
fn valid_dst(dst: Option<&str>) -> Option<String> {
    let d = dst?;
    let ok = d.len() <= MAX_DST_LEN
        && (d.starts_with("http://") || d.starts_with("https://"))
        && !d.chars().any(|c| c.is_control() || c.is_whitespace());
    ok.then(|| d.to_string())
}

/// A page of the portal: its headers and content security policy.
fn plain(status: StatusCode, content_type: &'static str, body: &str) -> Resp {
    let mut resp = reply::answer(status, content_type, body.to_string());
    reply::guard(resp.headers_mut(), CSP);
    resp
}

fn redirect(status: StatusCode, location: &str) -> Resp {
    let body = format!("<a href=\"{}\">{}</a>", escape(location), escape(location));
    let mut resp = plain(status, "text/html; charset=utf-8", &body);
    reply::set_location(&mut resp, location);
    resp
}

fn see_other(location: &str) -> Resp {
    redirect(StatusCode::SEE_OTHER, location)
}

/// Asks the client to close the connection after this answer.
fn closing(mut resp: Resp) -> Resp {
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}
