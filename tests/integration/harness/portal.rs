//! The captive portal as a phone sees it: form tokens, click-through
//! sign-in, the capture redirect and where it points, the RFC 8908
//! `/api/captive` answer, and whether a phone is online.

use serde_json::Value;

use super::internet::inet_url;
use super::lab::{Client, INET_BODY, Lab, PORTAL};
use super::probe::Probe;
use crate::{check, check_eq, fail};

impl Lab {
    /// The portal's form token for `c`: the hidden `csrf` field of the
    /// sign-in page as `c` gets it (every portal form must carry it).
    pub fn portal_token(&self, c: Client) -> String {
        self.portal_fields(c).0
    }

    /// The sign-in page as `c` gets it: its form token, and the code
    /// ticket of its phone form (empty when phone sign-in is not offered).
    pub fn portal_fields(&self, c: Client) -> (String, String) {
        let page = self.http(c, &format!("{PORTAL}/login"));
        match csrf_field(page.body()) {
            Some(token) if !token.is_empty() => (
                token,
                form_field(page.body(), "code_ticket").unwrap_or_default(),
            ),
            _ => fail!(
                self,
                "no csrf field on the sign-in page for {}: {page}",
                c.name()
            ),
        }
    }

    /// `POST url` with `form` from the portal's pages, as a browser sends
    /// it: with `c`'s form token, and the code ticket when the sign-in
    /// page has one (a code request needs it; other forms ignore it).
    pub fn portal_post(&self, c: Client, url: &str, form: &str) -> Probe {
        let (token, ticket) = self.portal_fields(c);
        let sep = if form.is_empty() { "" } else { "&" };
        let mut body = format!("{form}{sep}csrf={token}");
        if !ticket.is_empty() {
            body.push_str(&format!("&code_ticket={ticket}"));
        }
        self.post(c, url, &body)
    }
}

/// The value of the first `name="csrf"` hidden field in a portal page.
pub fn csrf_field(html: &str) -> Option<String> {
    form_field(html, "csrf")
}

/// The value of the first hidden field called `name` in a portal page.
pub fn form_field(html: &str, name: &str) -> Option<String> {
    let field = format!("name=\"{name}\" value=\"");
    let at = html.find(&field)? + field.len();
    let len = html[at..].find('"')?;
    Some(html[at..at + len].to_string())
}

/// Decodes `%XX` escapes and `+` in a query value.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of a query parameter in a URL.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == name).then(|| percent_decode(v))
    })
}

/// The path of a `Location` (an absolute URL's scheme and host, and any
/// query, stripped).
pub fn location_path(p: &Probe) -> String {
    let loc = p.header("location").unwrap_or("");
    let rest = match loc.split_once("://") {
        Some((_, after)) => after.find('/').map_or("/", |i| &after[i..]),
        None => loc,
    };
    rest.split(['?', '#']).next().unwrap_or("").to_string()
}

/// Is `p` the capture redirect to the sign-in page?
pub fn is_capture(p: &Probe) -> bool {
    p.status() == Some(302)
        && p.header("location")
            .unwrap_or("")
            .starts_with(&format!("{PORTAL}/login"))
}

/// HTTP to the internet from `c` is captured: a 302 to the portal's sign-in
/// page, not cacheable, carrying the original URL.
pub fn assert_redirected(lab: &Lab, c: Client, url: &str) -> Probe {
    let p = lab.http_timeout(c, url, 2.0);
    check_eq!(
        lab,
        p.status(),
        Some(302),
        "{} should be captured: {p}",
        c.name()
    );
    let location = p.header("location").unwrap_or("");
    check!(
        lab,
        location.starts_with(&format!("{PORTAL}/login")),
        "Location of {p}"
    );
    let cache = p.header("cache-control").unwrap_or("");
    check!(lab, cache.contains("no-store"), "Cache-Control of {p}");
    check_eq!(
        lab,
        query_param(location, "dst").as_deref(),
        Some(url),
        "dst in Location of {p}"
    );
    p
}

/// `c` reaches the internet server on port 80 (IPv4).
pub fn assert_online(lab: &Lab, c: Client) {
    let p = lab.http_timeout(c, &inet_url("/"), 2.0);
    check_eq!(
        lab,
        p.status(),
        Some(200),
        "{} should be online: {p}",
        c.name()
    );
    check!(lab, p.body().contains(INET_BODY), "{p}");
}

/// Click-through sign-in from `c`: `303` to `/status`.
pub fn sign_in(lab: &Lab, c: Client) {
    let p = lab.portal_post(c, &format!("{PORTAL}/login"), "accept_terms=yes");
    check_eq!(lab, p.status(), Some(303), "sign-in from {}: {p}", c.name());
    check_eq!(
        lab,
        location_path(&p),
        "/status",
        "Location after sign-in: {p}"
    );
}

/// The RFC 8908 API as `c` sees it says `captive` is `want` (`what` names
/// the moment in the failure message); returns its whole answer.
pub fn assert_captive(lab: &Lab, c: Client, want: bool, what: &str) -> Value {
    let api = captive_api(lab, c);
    check_eq!(lab, api["captive"].as_bool(), Some(want), "{what}: {api}");
    api
}

/// RFC 8908 API as `c` sees it.
pub fn captive_api(lab: &Lab, c: Client) -> Value {
    let p = lab.http(c, &format!("{PORTAL}/api/captive"));
    check_eq!(lab, p.status(), Some(200), "{p}");
    let ct = p.header("content-type").unwrap_or("");
    check!(
        lab,
        ct.starts_with("application/captive+json"),
        "Content-Type of {p}"
    );
    match p.body_json() {
        Some(v) => v,
        None => fail!(lab, "/api/captive body is not JSON: {p}"),
    }
}
