//! `application/x-www-form-urlencoded` and query strings, bounded.

/// Why a form could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("the form has more than {0} fields")]
    TooManyFields(usize),
    #[error("a form value is not valid UTF-8 after decoding")]
    NotUtf8,
    #[error("a %-escape in the form is malformed")]
    BadEscape,
}

/// Most fields any form of ours has; more is an attack or a mistake.
pub const MAX_FIELDS: usize = 32;

/// Parses `a=1&b=x+y&c=%2F` into pairs, in order.
pub fn parse(input: &[u8]) -> Result<Vec<(String, String)>, FormError> {
    let mut out = Vec::new();
    for pair in input.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        if out.len() == MAX_FIELDS {
            return Err(FormError::TooManyFields(MAX_FIELDS));
        }
        let (k, v) = match pair.iter().position(|&b| b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &b""[..]),
        };
        out.push((decode(k)?, decode(v)?));
    }
    Ok(out)
}

fn decode(s: &[u8]) -> Result<String, FormError> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3).ok_or(FormError::BadEscape)?;
                let hex = std::str::from_utf8(hex).map_err(|_| FormError::BadEscape)?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| FormError::BadEscape)?);
                if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(FormError::BadEscape);
                }
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| FormError::NotUtf8)
}

/// The first value of `key`.
pub fn get<'a>(fields: &'a [(String, String)], key: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// How long a client may take to send a form body once its request head
/// has arrived (see `body`).
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Reads a form body of at most `max` bytes (portal and dashboard POSTs)
/// within [`BODY_TIMEOUT`]. The error is the status to answer with: 413
/// when too large, 408 when too slow, 400 when unreadable.
pub async fn read_body<B: super::Body>(
    req: http::Request<B>,
    max: usize,
) -> Result<Vec<(String, String)>, http::StatusCode> {
    read_body_within(req, max, BODY_TIMEOUT).await
}

/// [`read_body`] with another time limit (tests).
pub async fn read_body_within<B: super::Body>(
    req: http::Request<B>,
    max: usize,
    limit: std::time::Duration,
) -> Result<Vec<(String, String)>, http::StatusCode> {
    let (parts, body) = req.into_parts();
    let body = super::body::read(&parts.headers, body, max, limit)
        .await
        .map_err(|e| e.status())?;
    parse(&body).map_err(|_| http::StatusCode::BAD_REQUEST)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_pairs() {
        let f = parse(b"accept_terms=yes&dst=http%3A%2F%2Fa.b%2F&name=a+b&flag&&x=").unwrap();
        assert_eq!(get(&f, "accept_terms"), Some("yes"));
        assert_eq!(get(&f, "dst"), Some("http://a.b/"));
        assert_eq!(get(&f, "name"), Some("a b"));
        assert_eq!(get(&f, "flag"), Some(""));
        assert_eq!(get(&f, "x"), Some(""));
        assert_eq!(get(&f, "none"), None);
        assert_eq!(parse(b"k=%E4%B8%AD").unwrap()[0].1, "中");
    }

    #[test]
    fn refuses_bad_input() {
        assert_eq!(parse(b"a=%2"), Err(FormError::BadEscape));
        assert_eq!(parse(b"a=%zz"), Err(FormError::BadEscape));
        assert_eq!(parse(b"a=%+1"), Err(FormError::BadEscape));
        assert_eq!(parse(b"a=%ff"), Err(FormError::NotUtf8));
        let many = "a=1&".repeat(MAX_FIELDS + 1);
        assert_eq!(
            parse(many.as_bytes()),
            Err(FormError::TooManyFields(MAX_FIELDS))
        );
    }

    /// A body that never sends a byte (a head with `Content-Length: 100`
    /// and then silence).
    struct Stalled;

    impl hyper::body::Body for Stalled {
        type Data = bytes::Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
            std::task::Poll::Pending
        }
    }

    #[tokio::test]
    async fn a_body_that_never_arrives_is_a_408() {
        let req = http::Request::post("/login")
            .header(http::header::CONTENT_LENGTH, "100")
            .body(Stalled)
            .unwrap();
        let started = std::time::Instant::now();
        let got = read_body_within(req, 8 * 1024, std::time::Duration::from_millis(50)).await;
        assert_eq!(got, Err(http::StatusCode::REQUEST_TIMEOUT));
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        // A body that does arrive is read as before.
        let req = http::Request::post("/login")
            .body(http_body_util::Full::new(bytes::Bytes::from_static(b"a=1")))
            .unwrap();
        assert_eq!(read_body(req, 8 * 1024).await.unwrap()[0].1, "1");
    }
}
