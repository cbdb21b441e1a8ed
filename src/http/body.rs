//! Request bodies, read whole within a size and a time limit: a declared
//! `Content-Length` over the size is refused before a byte is read, a
//! body that grows past it is cut off, and one that is not all there in
//! time is given up on (a head that promises a body and never sends it
//! would otherwise hold the connection, and its slot, for good).

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};

/// Why a body was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the body took more than {0:?} to arrive")]
    TooSlow(Duration),
    #[error("reading the body failed: {0}")]
    Unreadable(String),
}

impl BodyError {
    /// The status to answer with: 413, 408 or 400.
    pub fn status(&self) -> StatusCode {
        match self {
            BodyError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::TooSlow(_) => StatusCode::REQUEST_TIMEOUT,
            BodyError::Unreadable(_) => StatusCode::BAD_REQUEST,
        }
    }
}

/// Reads `body` (sent with `headers`): at most `max` bytes, all of them
/// within `limit`.
pub async fn read<B: super::Body>(
    headers: &HeaderMap,
    body: B,
    max: usize,
    limit: Duration,
) -> Result<Bytes, BodyError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(BodyError::TooLarge(max));
    }
    let collected = tokio::time::timeout(limit, Limited::new(body, max).collect())
        .await
        .map_err(|_| BodyError::TooSlow(limit))?;
    match collected {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(BodyError::TooLarge(max)),
        Err(e) => Err(BodyError::Unreadable(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::Full;

    use super::*;

    #[tokio::test]
    async fn bodies_are_bounded_in_size() {
        let small = Full::new(Bytes::from_static(b"abc"));
        let got = read(&HeaderMap::new(), small, 3, Duration::from_secs(1)).await;
        assert_eq!(got.unwrap(), "abc");
        let big = Full::new(Bytes::from_static(b"abcd"));
        let got = read(&HeaderMap::new(), big, 3, Duration::from_secs(1)).await;
        assert_eq!(got, Err(BodyError::TooLarge(3)));
        assert_eq!(got.unwrap_err().status(), StatusCode::PAYLOAD_TOO_LARGE);
        let mut promised = HeaderMap::new();
        promised.insert(header::CONTENT_LENGTH, "4".parse().unwrap());
        let got = read(
            &promised,
            Full::new(Bytes::new()),
            3,
            Duration::from_secs(1),
        )
        .await;
        assert_eq!(got, Err(BodyError::TooLarge(3)));
    }
}
