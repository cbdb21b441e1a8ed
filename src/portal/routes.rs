//! What the portal answers. `handle` never fails: every bad input gets a
//! 4xx page that says what was wrong.

use std::net::IpAddr;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use serde_json::json;

use super::pages::{self, escape, render, t, url_encode};
use super::probes::{self, ProbeAnswer};
use super::{Portal, PortalStats, campaign, form};
use crate::access::gate::GateError;
use crate::access::session::Client;
use crate::access::{AuthMethod, EndReason};
use crate::config::Language;
use crate::mac::MacAddr;
use crate::members::{Consent, MemberError};
use crate::privacy::DeviceKey;
use crate::time::Timestamp;

/// Largest form body the portal reads.
pub const MAX_BODY_BYTES: usize = 8 * 1024;
/// Longest `dst` (the page the shopper first asked for) that is kept.
const MAX_DST_LEN: usize = 1024;
/// Longest phone number or member number passed on (characters).
const MAX_NUMBER_LEN: usize = 40;
/// Longest staff code (`?staff=`, from a QR poster).
const MAX_STAFF_LEN: usize = 32;
/// Domain of the form token's keyed hash (see [`csrf_token`]).
const CSRF_DOMAIN: &[u8] = b"storegate-portal-csrf-v1";
/// Characters of the form token (132 bits).
const CSRF_LEN: usize = 22;
const DAY_MILLIS: i64 = 24 * 60 * 60 * 1000;

mod members;
use members::*;

const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; \
                   form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

type Resp = Response<Full<Bytes>>;

/// Who is asking.
struct Asker {
    ip: IpAddr,
    mac: Option<MacAddr>,
    client: Option<Client>,
}

impl Asker {
    /// Signed in, with time left now (not just until the next tick).
    fn authorized(&self) -> bool {
        self.client
            .as_ref()
            .is_some_and(|c| c.remaining(Timestamp::now()).is_some())
    }
}

pub(crate) async fn handle<B>(portal: &Portal, peer: IpAddr, req: Request<B>) -> Resp
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
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
    };
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or("")
        .to_string();
    if !host.is_empty() && !portal.site.is_own_host(&host) {
        return captured(portal, &asker, &host, &req);
    }
    let lang = language(portal, &req, None);
    let path = req.uri().path().to_string();
    match (req.method().clone(), path.as_str()) {
        (Method::GET | Method::HEAD, "/" | "/login") => {
            let query = query_fields(&req);
            let lang = language(portal, &req, query.as_deref());
            let dst = query
                .as_deref()
                .and_then(|q| valid_dst(form::get(q, "dst")));
            let staff = query
                .as_deref()
                .and_then(|q| valid_staff(form::get(q, "staff")));
            if asker.authorized() && path == "/" && staff.is_none() {
                let member = asker.client.as_ref().is_some_and(|c| c.member_id.is_some());
                return see_other(if member { "/welcome" } else { "/status" });
            }
            if asker.mac.is_some_and(|m| portal.is_blocked(m)) {
                return blocked(portal, lang);
            }
            let input = MemberInput {
                dst,
                staff,
                csrf: current_csrf(portal, asker.mac),
                ..MemberInput::default()
            };
            login_page(portal, lang, StatusCode::OK, &input, None)
        }
        (Method::POST, "/login") => sign_in(portal, &asker, req).await,
        (Method::POST, "/signin/code") => request_code(portal, &asker, req).await,
        (Method::POST, "/signin/verify") => verify_code(portal, &asker, req).await,
        (Method::POST, "/signin/member") => {
            let (lang, _, mac, input) = match sign_in_form(portal, &asker, req).await {
                Ok(posted) => posted,
                Err(page) => return page,
            };
            member_sign_in(portal, &asker, lang, mac, input).await
        }
        (Method::GET | Method::HEAD, "/welcome") => {
            let query = query_fields(&req);
            let lang = language(portal, &req, query.as_deref());
            let dst = query
                .as_deref()
                .and_then(|q| valid_dst(form::get(q, "dst")));
            welcome_page(portal, &asker, lang, dst.as_deref())
        }
        (Method::GET | Method::HEAD, "/status") => {
            let query = query_fields(&req);
            let lang = language(portal, &req, query.as_deref());
            let dst = query
                .as_deref()
                .and_then(|q| valid_dst(form::get(q, "dst")));
            status_page(portal, &asker, lang, dst.as_deref())
        }
        (Method::POST, "/logout") => sign_out(portal, &asker, req).await,
        (Method::GET | Method::HEAD, "/api/captive") => captive_api(portal, &asker),
        (
            _,
            "/" | "/login" | "/status" | "/logout" | "/api/captive" | "/signin/code"
            | "/signin/verify" | "/signin/member" | "/welcome",
        ) => bad(portal, StatusCode::METHOD_NOT_ALLOWED, lang, "error_form"),
        _ => message(
            portal,
            StatusCode::NOT_FOUND,
            lang,
            "error_title",
            "not_found",
        ),
    }
}

/// Traffic that was redirected here from elsewhere.
fn captured<B>(portal: &Portal, asker: &Asker, host: &str, req: &Request<B>) -> Resp {
    let bare_host = host_without_port(host).to_ascii_lowercase();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    if asker.authorized() {
        // A connection redirected before sign-in is still pointed at us.
        // Answer probes as their servers would; send anything else back to
        // where it was going on a new connection, which is no longer captured.
        let mut resp = match probes::recognise(&bare_host, req.uri().path()) {
            Some(ProbeAnswer::Body(body)) => plain(StatusCode::OK, "text/html", body),
            Some(ProbeAnswer::NoContent) => plain(StatusCode::NO_CONTENT, "text/plain", ""),
            None => redirect(StatusCode::FOUND, &format!("http://{host}{path}")),
        };
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return resp;
    }
    PortalStats::bump(&portal.stats.redirects);
    let original = format!("http://{host}{path}");
    let mut location = format!("{}login", portal.site.url);
    if original.len() <= MAX_DST_LEN {
        location.push_str("?dst=");
        location.push_str(&url_encode(&original));
    }
    redirect(StatusCode::FOUND, &location)
}

async fn sign_in<B>(portal: &Portal, asker: &Asker, req: Request<B>) -> Resp
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (lang, fields, mac, input) = match sign_in_form(portal, asker, req).await {
        Ok(posted) => posted,
        Err(page) => return page,
    };
    let dst = input.dst.clone();
    if !ticked(&fields, "accept_terms") {
        PortalStats::bump(&portal.stats.bad_requests);
        let error = pages::error_box(lang, "error_terms");
        return login_page(portal, lang, StatusCode::BAD_REQUEST, &input, Some(&error));
    }
    let (gate, ip) = (portal.gate.clone(), asker.ip);
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
            tracing::error!(%mac, "sign-in failed: {e}");
            message(
                portal,
                StatusCode::SERVICE_UNAVAILABLE,
                lang,
                "error_title",
                "error_busy",
            )
        }
    }
}

async fn sign_out<B>(portal: &Portal, asker: &Asker, req: Request<B>) -> Resp
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (lang, _) = match posted_form(portal, asker, req).await {
        Ok(posted) => posted,
        Err(page) => return page,
    };
    let gate = portal.gate.clone();
    if let Some(mac) = asker.mac
        && let Err(e) = blocking(move || gate.end(mac, EndReason::Logout)).await
    {
        tracing::error!(%mac, "sign-out failed: {e}");
        return message(
            portal,
            StatusCode::SERVICE_UNAVAILABLE,
            lang,
            "error_title",
            "error_busy",
        );
    }
    see_other(&format!("/login?lang={}", lang.tag()))
}

fn captive_api(portal: &Portal, asker: &Asker) -> Resp {
    let portal_url = format!("{}login", portal.site.url);
    let body = match asker
        .client
        .as_ref()
        .and_then(|c| c.remaining(Timestamp::now()))
    {
        Some(left) => json!({
            "captive": false,
            "user-portal-url": portal_url,
            "seconds-remaining": left.as_secs(),
            "can-extend-session": false,
        }),
        None => json!({"captive": true, "user-portal-url": portal_url}),
    };
    let mut resp = plain(
        StatusCode::OK,
        "application/captive+json",
        &body.to_string(),
    );
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    resp
}

fn login_page(
    portal: &Portal,
    lang: Language,
    status: StatusCode,
    input: &MemberInput,
    error: Option<&str>,
) -> Resp {
    let other = match lang {
        Language::ZhCn => Language::En,
        Language::En => Language::ZhCn,
    };
    let dst = input.dst.as_deref().unwrap_or("");
    let member = member_section(portal, lang, input);
    let html = render(
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
    );
    plain(status, "text/html; charset=utf-8", &html)
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
    let Some(left) = asker
        .client
        .as_ref()
        .and_then(|c| c.remaining(Timestamp::now()))
    else {
        return see_other(&format!("/login?lang={}", lang.tag()));
    };
    let html = render(
        pages::STATUS,
        lang,
        &[
            ("store", &portal.site.store_name),
            ("remaining", &pages::remaining_text(lang, left)),
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

/// Runs a gate change (an fsync and a netlink batch) off the async
/// workers, so a sign-in never stalls other shoppers' redirects.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, GateError> + Send + 'static,
) -> Result<T, GateError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(GateError::Store(crate::store::StoreError::Backend(
            format!("sign-in task: {e}"),
        )))
    })
}

/// Runs a member sign-in (store writes, an fsync and a netlink batch) off
/// the async workers.
async fn sign_in_blocking(
    f: impl FnOnce() -> Result<(), SignInError> + Send + 'static,
) -> Result<(), SignInError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(SignInError::Gate(GateError::Store(
            crate::store::StoreError::Backend(format!("sign-in task: {e}")),
        )))
    })
}

/// What every POST from our pages goes through: the Origin check, the
/// bounded body, the form token, and the page language (the form's
/// `lang` wins). The error is the page to answer with.
///
/// The token is what stops other sites: the Origin check only refuses an
/// explicit foreign origin, because our pages send `Referrer-Policy:
/// no-referrer` and browsers then send `Origin: null` on our own POSTs.
/// A device we cannot see has no token to check; every handler refuses
/// it (or, for sign-out, does nothing) on its own.
async fn posted_form<B>(
    portal: &Portal,
    asker: &Asker,
    req: Request<B>,
) -> Result<(Language, Vec<(String, String)>), Resp>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let lang = language(portal, &req, None);
    if !same_origin(portal, &req) {
        return Err(bad(portal, StatusCode::FORBIDDEN, lang, "error_origin"));
    }
    let fields = read_form(req).await.map_err(|status| {
        let key = match status {
            StatusCode::PAYLOAD_TOO_LARGE => "error_too_large",
            StatusCode::REQUEST_TIMEOUT => "error_timeout",
            _ => "error_form",
        };
        bad(portal, status, lang, key)
    })?;
    let lang = form::get(&fields, "lang")
        .and_then(Language::from_tag)
        .unwrap_or(lang);
    if let Some(mac) = asker.mac {
        let given = form::get(&fields, "csrf").unwrap_or("");
        if !csrf_valid(&portal.device_key, mac, given, utc_day(Timestamp::now())) {
            return Err(bad(portal, StatusCode::FORBIDDEN, lang, "error_expired"));
        }
    }
    Ok((lang, fields))
}

/// The UTC day number of `at` (days since the Unix epoch).
pub(crate) fn utc_day(at: Timestamp) -> i64 {
    at.millis().div_euclid(DAY_MILLIS)
}

/// The form token of `mac` on UTC day `day`:
/// `base64url(HMAC(device key, domain ‖ mac ‖ day))[..22]`. Another
/// device, another day or another box gives another token; without the
/// device key nobody can make one.
pub(crate) fn csrf_token(key: &DeviceKey, mac: MacAddr, day: i64) -> String {
    use base64::Engine;
    let mut data = [0u8; 14];
    data[..6].copy_from_slice(&mac.octets());
    data[6..].copy_from_slice(&day.to_be_bytes());
    let hash = key.keyed_hash(CSRF_DOMAIN, &data);
    let mut token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hash);
    token.truncate(CSRF_LEN);
    token
}

/// Today's token for the asking device; empty when we cannot see it.
fn current_csrf(portal: &Portal, mac: Option<MacAddr>) -> String {
    mac.map(|m| csrf_token(&portal.device_key, m, utc_day(Timestamp::now())))
        .unwrap_or_default()
}

/// Is `given` the token of `mac` for `today` or yesterday (a page left
/// open over midnight)? Compared in constant time.
fn csrf_valid(key: &DeviceKey, mac: MacAddr, given: &str, today: i64) -> bool {
    let mut ok = false;
    for day in [today, today - 1] {
        ok |= same_bytes(csrf_token(key, mac, day).as_bytes(), given.as_bytes());
    }
    ok
}

/// Equal, without a timing that tells how much of `a` matched.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Reads a bounded form body; the error is the status to answer with.
async fn read_form<B>(req: Request<B>) -> Result<Vec<(String, String)>, StatusCode>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    form::read_body(req, MAX_BODY_BYTES).await
}

/// Refuses an explicit foreign Origin. `null` and a missing Origin pass
/// (our own pages send `null`, see [`posted_form`]); the form token is
/// what refuses other sites then.
fn same_origin<B>(portal: &Portal, req: &Request<B>) -> bool {
    match req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    {
        None | Some("null") => true,
        Some(origin) => origin
            .split("://")
            .nth(1)
            .is_some_and(|authority| portal.site.is_own_host(authority)),
    }
}

fn query_fields<B>(req: &Request<B>) -> Option<Vec<(String, String)>> {
    req.uri()
        .query()
        .and_then(|q| form::parse(q.as_bytes()).ok())
}

/// `?lang=`, then Accept-Language, then the configured default.
fn language<B>(portal: &Portal, req: &Request<B>, query: Option<&[(String, String)]>) -> Language {
    if let Some(l) = query
        .and_then(|q| form::get(q, "lang"))
        .and_then(Language::from_tag)
    {
        return l;
    }
    pages::accept_language(req.headers()).unwrap_or(portal.site.default_language)
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

fn host_without_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split(']').next().map(|h| &h[1..]).unwrap_or(host);
    }
    host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host)
}

fn plain(status: StatusCode, content_type: &'static str, body: &str) -> Resp {
    let mut resp = Response::new(Full::new(Bytes::copy_from_slice(body.as_bytes())));
    *resp.status_mut() = status;
    guarded_headers(resp.headers_mut(), content_type, CSP);
    resp
}

/// The headers every page of the box's web servers carries: its type, no
/// caching, no sniffing, no referrer, and its content security policy.
pub(crate) fn guarded_headers(
    h: &mut http::HeaderMap,
    content_type: &'static str,
    csp: &'static str,
) {
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
}

fn redirect(status: StatusCode, location: &str) -> Resp {
    let body = format!("<a href=\"{}\">{}</a>", escape(location), escape(location));
    let mut resp = plain(status, "text/html; charset=utf-8", &body);
    match HeaderValue::from_str(location) {
        Ok(v) => {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        Err(_) => *resp.status_mut() = StatusCode::BAD_REQUEST,
    }
    resp
}

fn see_other(location: &str) -> Resp {
    redirect(StatusCode::SEE_OTHER, location)
}
