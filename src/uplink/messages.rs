//! Messages through HQ: `POST {hq.url}/messages` (DESIGN.md, "HQ"), for
//! now the OTP texts of the member sign-in.
//!
//! The body is one JSON object, `{"kind": "otp", "phone", "code",
//! "store_id", "locale"}` (`Content-Type: application/json`), signed the
//! Standard Webhooks way like event batches. A `webhook-id` (`msg_<UUIDv7>`)
//! is made per message and kept across its retries, so HQ can de-duplicate;
//! each attempt has a fresh `webhook-timestamp`. Any 2xx means HQ has
//! taken the message on.
//!
//! A shopper is waiting for the text, so messages do not go through the
//! outbox: a few quick attempts (3, within 5 s in all) on a 5xx, 408, 429,
//! a connection error or a timeout; no retry on any other answer (a 4xx:
//! HQ will not take this message as it is).
//!
//! The phone number and the code leave the box in this request only: they
//! never appear in a log line or an error (not even HQ's answer body, which
//! might echo them).

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use serde::Serialize;
use tokio::time::Instant;

use super::delivery::{HttpsClient, describe};
use super::signing::SigningKey;
use crate::time::Timestamp;

/// Retry settings.
#[derive(Debug, Clone)]
pub struct MessagesConfig {
    /// `{hq.url}/messages`.
    pub messages_url: String,
    /// `store.id`, sent in every message.
    pub store_id: String,
    pub max_attempts: u32,
    /// For one attempt: connect and answer.
    pub attempt_timeout: Duration,
    /// For all attempts and the pauses between them.
    pub total_timeout: Duration,
    /// The pause after the first failed attempt; doubled after each.
    pub retry_delay: Duration,
}

impl MessagesConfig {
    pub fn new(hq_url: &str, store_id: &str) -> Self {
        MessagesConfig {
            messages_url: format!("{}/messages", hq_url.trim_end_matches('/')),
            store_id: store_id.to_string(),
            max_attempts: 3,
            attempt_timeout: Duration::from_secs(2),
            total_timeout: Duration::from_secs(5),
            retry_delay: Duration::from_millis(250),
        }
    }
}

/// Why HQ did not take a message. Never holds the message's content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// A 4xx other than 408/429 (or another non-2xx, non-retryable
    /// answer): not retried.
    #[error("HQ refused the message with status {status}")]
    Refused { status: StatusCode },
    /// 5xx, 408 or 429 to every attempt.
    #[error("HQ could not take the message: it answered {status} (after {attempts} attempts)")]
    Failed { status: StatusCode, attempts: u32 },
    /// No answer: connection or TLS error, or a timeout.
    #[error("HQ unreachable (after {attempts} attempts): {reason}")]
    Unreachable { reason: String, attempts: u32 },
    /// The request could not be built (a bug, or an unusable URL).
    #[error("the message could not be built: {0}")]
    Build(String),
}

/// The OTP request body, in the documented field order.
#[derive(Serialize)]
struct Otp<'a> {
    kind: &'static str,
    phone: &'a str,
    code: &'a str,
    store_id: &'a str,
    locale: &'a str,
}

/// Sends messages to HQ. Cheap to clone (the client pools connections).
#[derive(Clone)]
pub struct MessageSender {
    config: MessagesConfig,
    key: SigningKey,
    client: HttpsClient,
}

impl fmt::Debug for MessageSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageSender")
            .field("config", &self.config)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// One attempt's failure.
enum Attempt {
    /// Not worth retrying.
    Refused(StatusCode),
    RetryStatus(StatusCode),
    RetryUnreachable(String),
}

impl MessageSender {
    /// `client` is `delivery::client(...)`, shared with delivery.
    pub fn new(config: MessagesConfig, key: SigningKey, client: HttpsClient) -> Self {
        MessageSender {
            config,
            key,
            client,
        }
    }

    /// Asks HQ to text `code` to `phone` (as given: E.164 such as
    /// `+8613800000000` is what HQ expects), in `locale` (`zh-CN`, `en`).
    pub async fn send_otp(
        &self,
        phone: &str,
        code: &str,
        locale: &str,
    ) -> Result<(), MessageError> {
        let body = serde_json::to_vec(&Otp {
            kind: "otp",
            phone,
            code,
            store_id: &self.config.store_id,
            locale,
        })
        .map_err(|e| MessageError::Build(e.to_string()))?;
        self.send("otp", body).await
    }

    /// Sends one signed JSON body, retrying briefly.
    async fn send(&self, kind: &'static str, body: Vec<u8>) -> Result<(), MessageError> {
        let c = &self.config;
        let started = Instant::now();
        let deadline = started + c.total_timeout;
        let id = format!("msg_{}", uuid::Uuid::now_v7().simple());
        let body = Bytes::from(body);
        let mut delay = c.retry_delay;
        let mut attempts = 0;
        let mut last = Attempt::RetryUnreachable("no attempt was made".into());
        while attempts < c.max_attempts.max(1) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            attempts += 1;
            last = match self.attempt(&id, &body, c.attempt_timeout.min(left)).await {
                Ok(status) => {
                    tracing::info!(
                        webhook_id = %id,
                        kind,
                        attempts,
                        ms = started.elapsed().as_millis() as u64,
                        "message accepted by HQ ({status})"
                    );
                    return Ok(());
                }
                Err(Attempt::Refused(status)) => {
                    tracing::warn!(webhook_id = %id, kind, "HQ refused the message with {status}");
                    return Err(MessageError::Refused { status });
                }
                Err(retry) => retry,
            };
            let reason = match &last {
                Attempt::RetryStatus(s) => format!("HQ answered {s}"),
                Attempt::RetryUnreachable(r) => r.clone(),
                Attempt::Refused(s) => s.to_string(),
            };
            // Another attempt only if it has time left to get an answer.
            let remaining = deadline.saturating_duration_since(Instant::now());
            if attempts >= c.max_attempts || remaining <= delay + Duration::from_millis(100) {
                tracing::warn!(
                    webhook_id = %id, kind, attempts,
                    "message not taken by HQ ({reason}); giving up"
                );
                break;
            }
            tracing::warn!(
                webhook_id = %id, kind, attempts,
                "message not taken by HQ ({reason}); trying again in {delay:?}"
            );
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
        Err(match last {
            Attempt::Refused(status) => MessageError::Refused { status },
            Attempt::RetryStatus(status) => MessageError::Failed { status, attempts },
            Attempt::RetryUnreachable(reason) => MessageError::Unreachable { reason, attempts },
        })
    }

    async fn attempt(
        &self,
        id: &str,
        body: &Bytes,
        timeout: Duration,
    ) -> Result<StatusCode, Attempt> {
        let ts = Timestamp::now().millis().div_euclid(1000);
        let signature = self.key.sign(id, ts, body);
        let req = Request::post(&self.config.messages_url)
            .header(header::CONTENT_TYPE, "application/json")
            .header(
                header::USER_AGENT,
                concat!("storegate/", env!("CARGO_PKG_VERSION")),
            )
            .header("webhook-id", id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signature)
            .body(Full::new(body.clone()))
            .map_err(|e| Attempt::RetryUnreachable(format!("building the request: {e}")))?;
        let resp = match tokio::time::timeout(timeout, self.client.request(req)).await {
            Err(_) => {
                return Err(Attempt::RetryUnreachable(format!(
                    "no answer within {timeout:?}"
                )));
            }
            Ok(Err(e)) => return Err(Attempt::RetryUnreachable(describe(&e))),
            Ok(Ok(r)) => r,
        };
        let status = resp.status();
        // Drain a little so the connection can be reused; the answer's
        // content is never shown (it might echo the phone number).
        let _ = tokio::time::timeout(
            Duration::from_millis(500),
            Limited::new(resp.into_body(), 16 * 1024).collect(),
        )
        .await;
        match status {
            s if s.is_success() => Ok(s),
            StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS => {
                Err(Attempt::RetryStatus(status))
            }
            s if s.is_server_error() => Err(Attempt::RetryStatus(s)),
            s => Err(Attempt::Refused(s)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::signing::{DEFAULT_TOLERANCE_SECS, SignedHeaders};
    use super::super::sync::test_hq::{Reply, TestHq};
    use super::*;

    const SECRET: &str = "whsec_c3RvcmVnYXRlIHNpZ25pbmcgdGVzdCBrZXkgMzJieQ==";
    const PHONE: &str = "+8613812345678";
    const CODE: &str = "493817";

    fn key() -> SigningKey {
        SigningKey::from_secret(SECRET).unwrap()
    }

    fn sender(url: &str) -> MessageSender {
        MessageSender::new(
            MessagesConfig::new(url, "wulin-01"),
            key(),
            super::super::sync::test_hq::client(),
        )
    }

    fn verify(seen: &super::super::sync::test_hq::Seen) {
        let now = Timestamp::now().millis() / 1000;
        key()
            .verify(
                SignedHeaders::from_header_map(&seen.headers),
                &seen.body,
                now,
                DEFAULT_TOLERANCE_SECS,
            )
            .expect("the message verifies with HQ's secret");
    }

    fn no_secrets(text: &str) {
        assert!(
            !text.contains(PHONE) && !text.contains("13812345678") && !text.contains(CODE),
            "{text}"
        );
    }

    #[tokio::test]
    async fn an_otp_is_posted_signed_with_the_documented_body() {
        let hq = TestHq::start().await;
        hq.script(vec![Reply::status(202)]);
        sender(&hq.url)
            .send_otp(PHONE, CODE, "zh-CN")
            .await
            .unwrap();
        let seen = hq.seen();
        assert_eq!(seen.len(), 1);
        let r = &seen[0];
        assert_eq!(
            (r.method.as_str(), r.path.as_str()),
            ("POST", "/storegate/messages")
        );
        assert_eq!(r.headers["content-type"], "application/json");
        verify(r);
        assert!(
            r.headers["webhook-id"]
                .to_str()
                .unwrap()
                .starts_with("msg_"),
            "{:?}",
            r.headers["webhook-id"]
        );
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"kind": "otp", "phone": PHONE, "code": CODE,
                               "store_id": "wulin-01", "locale": "zh-CN"})
        );
        // A tampered body no longer verifies: the check above means something.
        let mut tampered = r.clone();
        tampered.body = br#"{"kind":"otp","phone":"+1","code":"000000"}"#.to_vec();
        assert!(
            key()
                .verify(
                    SignedHeaders::from_header_map(&tampered.headers),
                    &tampered.body,
                    Timestamp::now().millis() / 1000,
                    DEFAULT_TOLERANCE_SECS
                )
                .is_err()
        );
        no_secrets(&format!("{:?}", sender(&hq.url)));
    }

    #[tokio::test]
    async fn a_server_error_is_retried_with_the_same_webhook_id() {
        let hq = TestHq::start().await;
        hq.script(vec![Reply::status(500), Reply::status(200)]);
        sender(&hq.url).send_otp(PHONE, CODE, "en").await.unwrap();
        let seen = hq.seen();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].headers["webhook-id"], seen[1].headers["webhook-id"]);
        assert_eq!(seen[0].body, seen[1].body);
        verify(&seen[0]);
        verify(&seen[1]);
        // Each message has its own id.
        hq.script(vec![Reply::status(200)]);
        sender(&hq.url).send_otp(PHONE, CODE, "en").await.unwrap();
        assert_ne!(
            hq.seen()[2].headers["webhook-id"],
            seen[0].headers["webhook-id"]
        );
    }

    #[tokio::test]
    async fn retryable_answers_are_retried_up_to_three_times() {
        let hq = TestHq::start().await;
        hq.script(vec![
            Reply::status(429),
            Reply::status(408),
            Reply::status(503),
        ]);
        let err = sender(&hq.url)
            .send_otp(PHONE, CODE, "en")
            .await
            .unwrap_err();
        assert_eq!(
            err,
            MessageError::Failed {
                status: StatusCode::SERVICE_UNAVAILABLE,
                attempts: 3
            }
        );
        assert_eq!(hq.seen().len(), 3);
        assert!(err.to_string().contains("503"), "{err}");
        no_secrets(&err.to_string());
    }

    #[tokio::test]
    async fn a_client_error_fails_at_once() {
        let hq = TestHq::start().await;
        hq.script(vec![
            Reply::status(400).body(format!("bad phone {PHONE}").as_bytes()),
            Reply::status(200),
        ]);
        let started = Instant::now();
        let err = sender(&hq.url)
            .send_otp(PHONE, CODE, "en")
            .await
            .unwrap_err();
        assert_eq!(
            err,
            MessageError::Refused {
                status: StatusCode::BAD_REQUEST
            }
        );
        assert_eq!(hq.seen().len(), 1, "no retry after a 400");
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(
            err.to_string()
                .contains("HQ refused the message with status 400"),
            "{err}"
        );
        no_secrets(&format!("{err} {err:?}"));
    }

    #[tokio::test]
    async fn an_unreachable_hq_fails_within_the_bound() {
        // A port nobody listens on: connection refused.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let started = Instant::now();
        let err = sender(&format!("http://127.0.0.1:{port}"))
            .send_otp(PHONE, CODE, "en")
            .await
            .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        match &err {
            MessageError::Unreachable { attempts, .. } => assert_eq!(*attempts, 3),
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().starts_with("HQ unreachable"), "{err}");
        no_secrets(&err.to_string());
    }

    #[tokio::test]
    async fn a_silent_hq_fails_within_the_total_bound() {
        let hq = TestHq::start().await;
        let mut slow = Reply::status(200);
        slow.delay = Duration::from_secs(30);
        hq.script(vec![slow]);
        let mut s = sender(&hq.url);
        s.config.attempt_timeout = Duration::from_millis(400);
        s.config.total_timeout = Duration::from_millis(1000);
        s.config.retry_delay = Duration::from_millis(50);
        let started = Instant::now();
        let err = s.send_otp(PHONE, CODE, "en").await.unwrap_err();
        let took = started.elapsed();
        assert!(took < Duration::from_millis(1300), "{took:?}");
        assert!(took >= Duration::from_millis(800), "{took:?}");
        match &err {
            MessageError::Unreachable { reason, attempts } => {
                assert!(reason.contains("no answer within"), "{reason}");
                assert!((2..=3).contains(attempts), "{attempts}");
            }
            other => panic!("{other:?}"),
        }
    }
}
