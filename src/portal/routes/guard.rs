//! What every POST from the portal's pages goes through: the Origin
//! check, the bounded form body, and the form token (a keyed hash of the
//! device and the day, so no other site can post for a shopper).

use super::*;
use crate::privacy::DeviceKey;

/// Domain of the form token's keyed hash (see [`csrf_token`]).
const CSRF_DOMAIN: &[u8] = b"storegate-portal-csrf-v1";
/// Characters of the form token (132 bits).
const CSRF_LEN: usize = 22;
const DAY_MILLIS: i64 = 24 * 60 * 60 * 1000;

/// The Origin check, the bounded body, the form token, and the page
/// language (the form's `lang` wins). The error is the page to answer
/// with.
///
/// The token is what stops other sites: the Origin check only refuses an
/// explicit foreign origin, because our pages send `Referrer-Policy:
/// no-referrer` and browsers then send `Origin: null` on our own POSTs.
/// A device we cannot see has no token to check; every handler refuses
/// it (or, for sign-out, does nothing) on its own.
pub(super) async fn posted_form<B: crate::http::Body>(
    cx: &Cx<'_>,
    req: Request<B>,
) -> Result<(Language, Vec<(String, String)>), Resp> {
    let (portal, lang) = (cx.portal, cx.lang);
    if !same_origin(portal, &req) {
        return Err(bad(portal, StatusCode::FORBIDDEN, lang, "error_origin"));
    }
    let fields = form::read_body(req, MAX_BODY_BYTES)
        .await
        .map_err(|status| {
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
    if let Some(mac) = cx.asker.mac {
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
pub(super) fn current_csrf(portal: &Portal, mac: Option<MacAddr>) -> String {
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
