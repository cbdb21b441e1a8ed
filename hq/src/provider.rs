//! Where texts and targeted messages leave HQ: the [`Provider`] trait,
//! with an HTTP webhook sender (the retailer's SMS gateway or member-app
//! push service) and a file sink (JSON lines; tests and dry runs).
//!
//! An OTP text names a phone number; a targeted message names a member
//! (HQ learns no phone numbers from the boxes: the retailer's member
//! system, behind the webhook, knows how to reach a member). Neither the
//! number nor the code ever goes into a log line or an error: errors
//! carry statuses and reasons only.

use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use storegate::uplink::signing::SigningKey;

/// One message for the provider.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outbound {
    /// A sign-in code, from a box's `POST /messages`.
    Otp {
        phone: String,
        code: String,
        store_id: String,
        locale: String,
        /// The box's `webhook-id`, the same across its retries.
        request_id: String,
    },
    /// A targeted message for a member who just arrived.
    Targeted {
        member_id: String,
        store_id: String,
        campaign_id: String,
        text: String,
        /// The `visit.started` event's id (the idempotency key).
        visit_event_id: String,
    },
}

/// Why the provider did not take a message (never its content).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    #[error("the provider answered {0}")]
    Status(u16),
    #[error("the provider is unreachable: {0}")]
    Unreachable(String),
    #[error("the message sink cannot be written: {0}")]
    Io(String),
    #[error("no provider is configured ([provider] in hq.toml)")]
    NotConfigured,
}

pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), ProviderError>> + Send + 'a>>;

/// Hands messages to whatever delivers them.
pub trait Provider: Send + Sync {
    fn send<'a>(&'a self, message: &'a Outbound) -> SendFuture<'a>;
}

/// Appends each message as one JSON line, flushed.
pub struct FileSink {
    path: PathBuf,
    file: Mutex<Option<std::fs::File>>,
}

impl FileSink {
    pub fn new(path: PathBuf) -> Self {
        FileSink {
            path,
            file: Mutex::new(None),
        }
    }

    fn write(&self, message: &Outbound) -> Result<(), ProviderError> {
        let mut line = serde_json::to_vec(message).map_err(|e| ProviderError::Io(e.to_string()))?;
        line.push(b'\n');
        let mut guard = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(|e| ProviderError::Io(format!("{}: {e}", self.path.display())))?;
            *guard = Some(f);
        }
        let f = guard.as_mut().ok_or(ProviderError::NotConfigured)?;
        f.write_all(&line)
            .and_then(|_| f.flush())
            .map_err(|e| ProviderError::Io(format!("{}: {e}", self.path.display())))
    }
}

impl Provider for FileSink {
    fn send<'a>(&'a self, message: &'a Outbound) -> SendFuture<'a> {
        Box::pin(async move { self.write(message) })
    }
}

/// POSTs each message as JSON, signed Standard-Webhooks style when a
/// secret is given; any 2xx is success.
pub struct Webhook {
    url: String,
    secret: Option<SigningKey>,
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl Webhook {
    pub fn new(url: String, secret: Option<SigningKey>) -> Result<Self, String> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| format!("the system's CA certificates: {e}"))?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Webhook {
            url,
            secret,
            client: Client::builder(TokioExecutor::new()).build(https),
            timeout: Duration::from_secs(5),
        })
    }

    async fn post(&self, message: &Outbound) -> Result<(), ProviderError> {
        let body = serde_json::to_vec(message).map_err(|e| ProviderError::Io(e.to_string()))?;
        let mut req = http::Request::post(&self.url).header("content-type", "application/json");
        if let Some(key) = &self.secret {
            let id = format!("msg_{}", uuid::Uuid::now_v7());
            let now = jiff::Timestamp::now().as_second();
            for (name, value) in key.headers(&id, now, &body) {
                req = req.header(name, value);
            }
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ProviderError::Unreachable(format!("building the request: {e}")))?;
        let resp = tokio::time::timeout(self.timeout, self.client.request(req))
            .await
            .map_err(|_| {
                ProviderError::Unreachable(format!("no answer within {:?}", self.timeout))
            })?
            .map_err(|e| ProviderError::Unreachable(e.to_string()))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(ProviderError::Status(resp.status().as_u16()))
        }
    }
}

impl Provider for Webhook {
    fn send<'a>(&'a self, message: &'a Outbound) -> SendFuture<'a> {
        Box::pin(self.post(message))
    }
}

/// No provider: every send fails (texts are answered 503).
pub struct NoProvider;

impl Provider for NoProvider {
    fn send<'a>(&'a self, _message: &'a Outbound) -> SendFuture<'a> {
        Box::pin(async { Err(ProviderError::NotConfigured) })
    }
}

/// The provider `[provider]` describes.
pub fn from_config(
    config: &crate::config::ProviderConfig,
) -> Result<std::sync::Arc<dyn Provider>, String> {
    use crate::config::ProviderConfig;
    Ok(match config {
        ProviderConfig::Webhook { url, secret } => {
            std::sync::Arc::new(Webhook::new(url.clone(), secret.clone())?)
        }
        ProviderConfig::File(path) => std::sync::Arc::new(FileSink::new(path.clone())),
        ProviderConfig::None => std::sync::Arc::new(NoProvider),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_file_sink_appends_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let sink = FileSink::new(path.clone());
        for i in 0..2 {
            let m = Outbound::Targeted {
                member_id: format!("m{i}"),
                store_id: "s".into(),
                campaign_id: "c".into(),
                text: "hi".into(),
                visit_event_id: "e".into(),
            };
            sink.send(&m).await.unwrap();
        }
        let text = std::fs::read_to_string(path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["kind"], "targeted");
        assert_eq!(lines[1]["member_id"], "m1");
    }

    #[tokio::test]
    async fn the_webhook_posts_signed_json_and_reports_statuses() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for status in ["200 OK", "503 Service Unavailable"] {
                let (mut s, _) = listener.accept().unwrap();
                let mut buf = vec![0u8; 64 * 1024];
                let mut n = 0;
                loop {
                    n += s.read(&mut buf[n..]).unwrap();
                    let text = String::from_utf8_lossy(&buf[..n]).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len: usize = text
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap())
                            })
                            .unwrap_or(0);
                        if n >= end + 4 + len {
                            seen.push(text);
                            break;
                        }
                    }
                }
                let reply =
                    format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                s.write_all(reply.as_bytes()).unwrap();
            }
            seen
        });
        let secret = SigningKey::from_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let hook =
            Webhook::new(format!("http://127.0.0.1:{port}/sms"), Some(secret.clone())).unwrap();
        let m = Outbound::Otp {
            phone: "+8613800000000".into(),
            code: "123456".into(),
            store_id: "s".into(),
            locale: "en".into(),
            request_id: "msg_1".into(),
        };
        hook.send(&m).await.unwrap();
        let err = hook.send(&m).await.unwrap_err();
        assert!(matches!(err, ProviderError::Status(503)));
        assert!(!err.to_string().contains("8613800000000"));
        let seen = server.join().unwrap();
        let first = &seen[0];
        assert!(first.starts_with("POST /sms "), "{first}");
        let (head, body) = first.split_once("\r\n\r\n").unwrap();
        let header = |name: &str| {
            head.lines().find_map(|l| {
                l.split_once(':')
                    .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.trim())
            })
        };
        let signed = storegate::uplink::signing::SignedHeaders {
            id: header("webhook-id"),
            timestamp: header("webhook-timestamp"),
            signature: header("webhook-signature"),
        };
        let now = jiff::Timestamp::now().as_second();
        assert_eq!(secret.verify(signed, body.as_bytes(), now, 300), Ok(()));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["kind"], "otp");
        assert_eq!(v["phone"], "+8613800000000");
    }
}
