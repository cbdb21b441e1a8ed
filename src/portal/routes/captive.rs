//! How the portal meets the operating systems' captive-portal detection:
//! traffic captured on its way elsewhere, the probes that come after
//! sign-in, and the RFC 8908 API.

use serde_json::json;

use super::*;
use crate::portal::probes::{self, ProbeAnswer};

/// Traffic that was redirected here from elsewhere: before sign-in a
/// `302` to the sign-in page (carrying where it was going); after it the
/// probe's expected answer, or a `302` back to where it was going.
pub(super) fn captured<B>(portal: &Portal, asker: &Asker, host: &str, req: &Request<B>) -> Resp {
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
        return closing(match probes::recognise(&bare_host, req.uri().path()) {
            Some(ProbeAnswer::Body(body)) => plain(StatusCode::OK, "text/html", body),
            Some(ProbeAnswer::NoContent) => plain(StatusCode::NO_CONTENT, "text/plain", ""),
            None => redirect(StatusCode::FOUND, &format!("http://{host}{path}")),
        });
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

/// `GET /api/captive`: RFC 8908.
pub(super) fn api(cx: &Cx) -> Resp {
    let portal_url = format!("{}login", cx.portal.site.url);
    let body = match cx
        .asker
        .client
        .as_ref()
        .and_then(|c| c.remaining(cx.asker.now))
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

fn host_without_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split(']').next().map(|h| &h[1..]).unwrap_or(host);
    }
    host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host)
}
