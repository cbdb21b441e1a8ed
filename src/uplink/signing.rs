//! Standard Webhooks signatures (<https://www.standardwebhooks.com/>), as
//! used between the box and HQ (DESIGN.md, "HQ").
//!
//! * The shared secret is `whsec_<base64 key>`; the HMAC key is the decoded
//!   base64 part.
//! * A request carries `webhook-id`, `webhook-timestamp` (unix seconds) and
//!   `webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`,
//!   where body is the exact (uncompressed) bytes sent.
//! * `webhook-signature` may hold several space-separated entries
//!   (`v1,abc v1,def`, e.g. during a key rotation); any `v1` entry that
//!   matches accepts, entries of other versions are ignored.
//! * A receiver rejects timestamps more than a tolerance (default 5 min)
//!   away from its clock, which bounds replays.
//!
//! Pure: no clock (callers pass `now`), no I/O. Comparisons are constant
//! time (`hmac`'s `verify_slice`).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

pub const HEADER_ID: &str = "webhook-id";
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// The tolerance the Standard Webhooks reference libraries use: 5 minutes.
pub const DEFAULT_TOLERANCE_SECS: i64 = 5 * 60;

const SECRET_PREFIX: &str = "whsec_";
/// Keys shorter than this are refused as too weak to guess-proof.
pub const MIN_KEY_BYTES: usize = 16;
/// And longer ones as a likely mistake (a file pasted whole).
pub const MAX_KEY_BYTES: usize = 1024;

type HmacSha256 = Hmac<Sha256>;

/// The HMAC key of a `whsec_...` secret. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey(Vec<u8>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("the secret must start with \"whsec_\" followed by a base64 key")]
    MissingPrefix,
    #[error("the part of the secret after \"whsec_\" is not valid base64")]
    BadBase64,
    #[error(
        "the secret's key is {0} bytes; it must be {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes (24 to 64 recommended)"
    )]
    BadLength(usize),
}

/// The three signature headers of a request, as received (`None` or empty:
/// the header was absent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SignedHeaders<'a> {
    pub id: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
}

impl<'a> SignedHeaders<'a> {
    /// Reads them from an HTTP header map (a header that is not visible
    /// ASCII counts as absent).
    pub fn from_header_map(headers: &'a http::HeaderMap) -> Self {
        let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        SignedHeaders {
            id: get(HEADER_ID),
            timestamp: get(HEADER_TIMESTAMP),
            signature: get(HEADER_SIGNATURE),
        }
    }
}

/// Why a request's signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// The named header is absent or empty.
    Missing(&'static str),
    /// `webhook-timestamp` is not a whole number of unix seconds.
    BadTimestamp,
    /// `webhook-timestamp` is too far from now: `skew_secs` is now minus the
    /// timestamp (positive: in the past, negative: in the future).
    Stale { skew_secs: i64, tolerance_secs: i64 },
    /// `webhook-signature` holds no `v1,<base64>` entry at all.
    NoV1Signature,
    /// No `v1` entry is the signature of this id, timestamp and body under
    /// this key (wrong key, or the body or a header was changed).
    NoMatch,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::Missing(h) => write!(f, "the {h} header is missing or empty"),
            VerifyError::BadTimestamp => write!(
                f,
                "the {HEADER_TIMESTAMP} header is not a whole number of unix seconds"
            ),
            VerifyError::Stale {
                skew_secs,
                tolerance_secs,
            } => {
                let (n, when) = if *skew_secs >= 0 {
                    (*skew_secs, "in the past")
                } else {
                    (skew_secs.unsigned_abs() as i64, "in the future")
                };
                write!(
                    f,
                    "the {HEADER_TIMESTAMP} is {n} s {when}, more than the {tolerance_secs} s tolerance (replay, or a clock is wrong)"
                )
            }
            VerifyError::NoV1Signature => write!(
                f,
                "the {HEADER_SIGNATURE} header holds no \"v1,<base64>\" signature"
            ),
            VerifyError::NoMatch => write!(
                f,
                "no signature in {HEADER_SIGNATURE} matches this body (wrong secret, or the body or headers were altered)"
            ),
        }
    }
}

impl std::error::Error for VerifyError {}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({} bytes, redacted)", self.0.len())
    }
}

impl SigningKey {
    /// Parses `whsec_<base64 key>` (surrounding whitespace, such as a
    /// trailing newline from a secret file, is ignored; base64 padding is
    /// optional).
    pub fn from_secret(secret: &str) -> Result<Self, SignError> {
        let b64 = secret
            .trim()
            .strip_prefix(SECRET_PREFIX)
            .ok_or(SignError::MissingPrefix)?;
        let key = base64::engine::general_purpose::STANDARD_PAD_INDIFFERENT
            .decode(b64)
            .map_err(|_| SignError::BadBase64)?;
        if !(MIN_KEY_BYTES..=MAX_KEY_BYTES).contains(&key.len()) {
            return Err(SignError::BadLength(key.len()));
        }
        Ok(SigningKey(key))
    }

    /// The key as a `whsec_...` secret again.
    pub fn to_secret(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.0))
    }

    fn mac(&self, id: &str, timestamp: &str, body: &[u8]) -> HmacSha256 {
        let mut mac =
            <HmacSha256 as KeyInit>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The `webhook-signature` value (`v1,<base64>`) for a request with
    /// this `webhook-id`, `webhook-timestamp` and (uncompressed) body.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let tag = self
            .mac(id, &timestamp.to_string(), body)
            .finalize()
            .into_bytes();
        format!("v1,{}", STANDARD.encode(tag))
    }

    /// All three headers for a request, ready to send.
    pub fn headers(&self, id: &str, timestamp: i64, body: &[u8]) -> [(&'static str, String); 3] {
        [
            (HEADER_ID, id.to_string()),
            (HEADER_TIMESTAMP, timestamp.to_string()),
            (HEADER_SIGNATURE, self.sign(id, timestamp, body)),
        ]
    }

    /// Checks a received request: headers present, timestamp within
    /// `tolerance_secs` of `now_secs`, and some `v1` signature matching.
    /// The signed string uses the timestamp exactly as received.
    pub fn verify(
        &self,
        headers: SignedHeaders<'_>,
        body: &[u8],
        now_secs: i64,
        tolerance_secs: i64,
    ) -> Result<(), VerifyError> {
        let (id, timestamp, signature) = check_headers(headers, now_secs, tolerance_secs)?;
        let expected = self.mac(id, timestamp, body);
        let mut any_v1 = false;
        for entry in signature.split_ascii_whitespace() {
            let Some(b64) = entry.strip_prefix("v1,") else {
                continue; // another version (e.g. v1a): not ours to check
            };
            any_v1 = true;
            let Ok(tag) = STANDARD.decode(b64) else {
                continue;
            };
            if expected.clone().verify_slice(&tag).is_ok() {
                return Ok(());
            }
        }
        Err(if any_v1 {
            VerifyError::NoMatch
        } else {
            VerifyError::NoV1Signature
        })
    }
}

/// The checks that need no key and no body: every header present, the
/// timestamp well formed and fresh. Returns (id, timestamp, signature).
/// A receiver may run this before reading the body.
pub fn check_headers<'a>(
    headers: SignedHeaders<'a>,
    now_secs: i64,
    tolerance_secs: i64,
) -> Result<(&'a str, &'a str, &'a str), VerifyError> {
    let present = |v: Option<&'a str>, name: &'static str| match v.map(str::trim) {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(VerifyError::Missing(name)),
    };
    let id = present(headers.id, HEADER_ID)?;
    let timestamp = present(headers.timestamp, HEADER_TIMESTAMP)?;
    let signature = present(headers.signature, HEADER_SIGNATURE)?;
    let ts = parse_timestamp(timestamp)?;
    let skew_secs = now_secs.saturating_sub(ts);
    if skew_secs.saturating_abs() > tolerance_secs {
        return Err(VerifyError::Stale {
            skew_secs,
            tolerance_secs,
        });
    }
    Ok((id, timestamp, signature))
}

fn parse_timestamp(s: &str) -> Result<i64, VerifyError> {
    if s.is_empty() || s.len() > 18 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VerifyError::BadTimestamp);
    }
    s.parse().map_err(|_| VerifyError::BadTimestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example of the Standard Webhooks specification and its reference
    // libraries' tests; re-checked with
    //   python3 -c 'import hmac,hashlib,base64; k=base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    //   print(base64.b64encode(hmac.new(k, b"msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{\"test\": 2432232314}",
    //   hashlib.sha256).digest()))'
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TS: i64 = 1614265330;
    const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SPEC_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    // Our own vector, computed with
    //   python3 -c 'import hmac,hashlib,base64; k=b"storegate signing test key 32by";
    //   print("whsec_"+base64.b64encode(k).decode());
    //   print(base64.b64encode(hmac.new(k, b"batch_01J9Z.1795000000."+BODY, hashlib.sha256).digest()))'
    // where BODY is OWN_BODY below.
    const OWN_SECRET: &str = "whsec_c3RvcmVnYXRlIHNpZ25pbmcgdGVzdCBrZXkgMzJieQ==";
    const OWN_ID: &str = "batch_01J9Z";
    const OWN_TS: i64 = 1795000000;
    const OWN_BODY: &[u8] = br#"[{"specversion":"1.0","id":"0190a0b4-0000-7000-8000-000000000001","type":"com.storegate.visit.started"}]"#;
    const OWN_SIG: &str = "v1,XHn7jvlUXxcHJHaV8/Iug+kdFzvhuhIp7GeWy42OzI0=";

    fn hdrs<'a>(id: &'a str, ts: &'a str, sig: &'a str) -> SignedHeaders<'a> {
        SignedHeaders {
            id: Some(id),
            timestamp: Some(ts),
            signature: Some(sig),
        }
    }

    #[test]
    fn signs_the_fixed_vectors() {
        let k = SigningKey::from_secret(SPEC_SECRET).unwrap();
        assert_eq!(k.sign(SPEC_ID, SPEC_TS, SPEC_BODY), SPEC_SIG);
        let k = SigningKey::from_secret(OWN_SECRET).unwrap();
        assert_eq!(k.sign(OWN_ID, OWN_TS, OWN_BODY), OWN_SIG);
        assert_eq!(k.to_secret(), OWN_SECRET);
    }

    #[test]
    fn verifies_the_fixed_vectors() {
        let k = SigningKey::from_secret(SPEC_SECRET).unwrap();
        let ts = SPEC_TS.to_string();
        assert_eq!(
            k.verify(hdrs(SPEC_ID, &ts, SPEC_SIG), SPEC_BODY, SPEC_TS + 10, 300),
            Ok(())
        );
        let k = SigningKey::from_secret(OWN_SECRET).unwrap();
        let ts = OWN_TS.to_string();
        assert_eq!(
            k.verify(hdrs(OWN_ID, &ts, OWN_SIG), OWN_BODY, OWN_TS - 10, 300),
            Ok(())
        );
    }

    #[test]
    fn any_of_several_signatures_accepts() {
        let k = SigningKey::from_secret(OWN_SECRET).unwrap();
        let ts = OWN_TS.to_string();
        let other = SigningKey::from_secret(SPEC_SECRET)
            .unwrap()
            .sign(OWN_ID, OWN_TS, OWN_BODY);
        for header in [
            format!("{other} {OWN_SIG}"),
            format!("{OWN_SIG} {other}"),
            format!("v1a,AAAA  v1,!!notbase64 {OWN_SIG}"),
        ] {
            assert_eq!(
                k.verify(hdrs(OWN_ID, &ts, &header), OWN_BODY, OWN_TS, 300),
                Ok(()),
                "{header}"
            );
        }
    }

    #[test]
    fn wrong_key_and_tampering_are_rejected() {
        let k = SigningKey::from_secret(OWN_SECRET).unwrap();
        let wrong = SigningKey::from_secret(SPEC_SECRET).unwrap();
        let ts = OWN_TS.to_string();
        let h = hdrs(OWN_ID, &ts, OWN_SIG);
        assert_eq!(
            wrong.verify(h, OWN_BODY, OWN_TS, 300),
            Err(VerifyError::NoMatch)
        );
        let mut body = OWN_BODY.to_vec();
        body[5] ^= 1;
        assert_eq!(k.verify(h, &body, OWN_TS, 300), Err(VerifyError::NoMatch));
        assert_eq!(
            k.verify(hdrs("batch_01J9Y", &ts, OWN_SIG), OWN_BODY, OWN_TS, 300),
            Err(VerifyError::NoMatch)
        );
        let ts2 = (OWN_TS + 1).to_string();
        assert_eq!(
            k.verify(hdrs(OWN_ID, &ts2, OWN_SIG), OWN_BODY, OWN_TS, 300),
            Err(VerifyError::NoMatch)
        );
        // A truncated signature never matches.
        let short = &OWN_SIG[..OWN_SIG.len() - 8];
        assert_eq!(
            k.verify(hdrs(OWN_ID, &ts, short), OWN_BODY, OWN_TS, 300),
            Err(VerifyError::NoMatch)
        );
    }

    #[test]
    fn stale_and_future_timestamps_are_rejected() {
        let k = SigningKey::from_secret(OWN_SECRET).unwrap();
        let ts = OWN_TS.to_string();
        let h = hdrs(OWN_ID, &ts, OWN_SIG);
        assert_eq!(k.verify(h, OWN_BODY, OWN_TS + 300, 300), Ok(()));
        assert_eq!(k.verify(h, OWN_BODY, OWN_TS - 300, 300), Ok(()));
        let old = k.verify(h, OWN_BODY, OWN_TS + 301, 300).unwrap_err();
        assert_eq!(
            old,
            VerifyError::Stale {
                skew_secs: 301,
                tolerance_secs: 300
            }
        );
        assert!(old.to_string().contains("301 s in the past"), "{old}");
        let future = k.verify(h, OWN_BODY, OWN_TS - 3600, 300).unwrap_err();
        assert_eq!(
            future,
            VerifyError::Stale {
                skew_secs: -3600,
                tolerance_secs: 300
            }
        );
        assert!(
            future.to_string().contains("3600 s in the future"),
            "{future}"
        );
    }

    #[test]
    fn malformed_headers_are_rejected() {
        let k = SigningKey::from_secret(OWN_SECRET).unwrap();
        let ts = OWN_TS.to_string();
        let check = |h: SignedHeaders<'_>| k.verify(h, OWN_BODY, OWN_TS, 300);
        assert_eq!(
            check(SignedHeaders::default()),
            Err(VerifyError::Missing(HEADER_ID))
        );
        assert_eq!(
            check(SignedHeaders {
                timestamp: None,
                ..hdrs(OWN_ID, &ts, OWN_SIG)
            }),
            Err(VerifyError::Missing(HEADER_TIMESTAMP))
        );
        assert_eq!(
            check(hdrs(OWN_ID, &ts, " ")),
            Err(VerifyError::Missing(HEADER_SIGNATURE))
        );
        for bad in [
            "-1",
            "1.5",
            "+1795000000",
            "0x10",
            "abc",
            "99999999999999999999",
        ] {
            assert_eq!(
                check(hdrs(OWN_ID, bad, OWN_SIG)),
                Err(VerifyError::BadTimestamp),
                "{bad}"
            );
        }
        for bad in ["XHn7jvlUXxcHJHaV8", "v2,XHn7", "v1a,XHn7 v1;XHn7"] {
            assert_eq!(
                check(hdrs(OWN_ID, &ts, bad)),
                Err(VerifyError::NoV1Signature),
                "{bad}"
            );
        }
        assert_eq!(
            check(hdrs(OWN_ID, &ts, "v1,not*base64")),
            Err(VerifyError::NoMatch)
        );
    }

    #[test]
    fn malformed_secrets_are_rejected() {
        assert_eq!(
            SigningKey::from_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            Err(SignError::MissingPrefix)
        );
        assert_eq!(
            SigningKey::from_secret("whsec_not base64!"),
            Err(SignError::BadBase64)
        );
        assert_eq!(
            SigningKey::from_secret("whsec_"),
            Err(SignError::BadLength(0))
        );
        assert_eq!(
            SigningKey::from_secret("whsec_c2hvcnQ="),
            Err(SignError::BadLength(5))
        );
        // Unpadded base64 and a trailing newline are fine.
        let k =
            SigningKey::from_secret("whsec_c3RvcmVnYXRlIHNpZ25pbmcgdGVzdCBrZXkgMzJieQ\n").unwrap();
        assert_eq!(k.to_secret(), OWN_SECRET);
    }

    #[test]
    fn debug_never_shows_the_key() {
        let k = SigningKey::from_secret(OWN_SECRET).unwrap();
        let d = format!("{k:?}");
        assert!(!d.contains("c3RvcmVn") && !d.contains("115"), "{d}");
        assert!(d.contains("redacted"), "{d}");
    }
}
