//! Building answers: a body with its type, JSON, the security headers of
//! a page, `Location` and `Retry-After`. Each server adds what is its
//! own (the portal's and the dashboard's content security policies, the
//! dashboard's HSTS, the receiver's signatures).

use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{HeaderMap, Response, StatusCode};
use http_body_util::Full;

/// An answer with its whole body in memory.
pub type Reply = Response<Full<Bytes>>;

/// `status` with `body` of `content_type`, and no other header.
pub fn answer(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// `value` as `application/json`.
pub fn json(status: StatusCode, value: &serde_json::Value) -> Reply {
    answer(status, "application/json", value.to_string())
}

/// `{"error": message}`.
pub fn json_error(status: StatusCode, message: &str) -> Reply {
    json(status, &serde_json::json!({ "error": message }))
}

/// The headers every page of the box's web servers carries besides its
/// type: no caching, no sniffing, no referrer, and its content security
/// policy.
pub fn guard(h: &mut HeaderMap, csp: &'static str) {
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

/// Points the answer at `location`; one that cannot be a header value
/// makes it a 400 instead.
pub fn set_location<B>(resp: &mut Response<B>, location: &str) {
    match HeaderValue::from_str(location) {
        Ok(v) => {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        Err(_) => *resp.status_mut() = StatusCode::BAD_REQUEST,
    }
}

/// `Retry-After: wait`, in whole seconds rounded up, at least 1.
pub fn retry_after<B>(resp: &mut Response<B>, wait: Duration) {
    let secs = wait.as_nanos().div_ceil(1_000_000_000).max(1);
    let secs = u64::try_from(secs).unwrap_or(u64::MAX);
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_round_up_to_whole_seconds() {
        let secs = |wait| {
            let mut r = answer(StatusCode::TOO_MANY_REQUESTS, "text/plain", "");
            retry_after(&mut r, wait);
            r.headers()[header::RETRY_AFTER]
                .to_str()
                .unwrap()
                .to_string()
        };
        assert_eq!(secs(Duration::ZERO), "1");
        assert_eq!(secs(Duration::from_millis(1)), "1");
        assert_eq!(secs(Duration::from_secs(40)), "40");
        assert_eq!(secs(Duration::from_millis(40_001)), "41");
    }

    #[test]
    fn a_location_that_is_no_header_value_is_a_400() {
        let mut r = answer(StatusCode::SEE_OTHER, "text/plain", "");
        set_location(&mut r, "/status");
        assert_eq!(r.headers()[header::LOCATION], "/status");
        set_location(&mut r, "/a\nb");
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }
}
