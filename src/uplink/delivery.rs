//! Delivery of the outbox to HQ: `POST {hq.url}/events`.
//!
//! Oldest events first, in batches bounded by count, bytes and a short
//! wait (so an arrival reaches HQ within a fraction of a second, yet a
//! burst goes as one request). Each batch is signed the Standard Webhooks
//! way, with a fresh `webhook-timestamp` on every attempt; any 2xx
//! acknowledges it and it leaves the outbox. Anything else, or no answer
//! within the timeout, is retried with exponential backoff and jitter, in
//! order, with the same `webhook-id`. A 410 Gone stops delivery (HQ has
//! retired this endpoint): loudly in the log and in `ctl status`, and
//! events keep queueing.
//!
//! Batches are gzipped unless `hq.gzip = false` (the signature is over the
//! uncompressed body). A 4xx other than 408 and 429 means HQ will never
//! take that batch as it is: it is parked in the dead-letter tree (`ctl
//! dead-letters`, `--retry`) and delivery goes on with the next one. The
//! exception is a 401 that the box's clock explains (HQ's `Date` far from
//! it, or the clock plainly unset; the rule is in [`clock`]): the timestamp
//! was refused, not the batch, so it is retried like a 5xx and
//! `hq.last_error` names the skew. Dead letters count toward the outbox
//! cap (see `super::outbox`), so refusals cannot fill the flash.
//!
//! Two limits bound a request: `hq.connect_timeout` (default 5 s) for the
//! TCP connection, and `hq.timeout` (default 10 s) for the whole request,
//! connecting, TLS handshake and the answer's head included. A connection
//! that is refused, reset, closed without an answer or silent past either
//! limit is retried like a 5xx. With `hq.client_cert` and `hq.client_key`
//! the box presents its certificate when HQ asks (mutual TLS).
//!
//! `/sync` and `/messages` are their own clients: `super::sync`,
//! `super::messages`.

pub mod clock;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rand::Rng;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::Outbox;
use super::signing::SigningKey;
use crate::config::{ClientCert, HqConfig};
use crate::http::tls::read_certs;
use crate::time::Timestamp;

/// Batch and retry settings.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// `{hq.url}/events`.
    pub events_url: String,
    pub max_events: usize,
    pub max_bytes: usize,
    /// How long to wait for more events once one is queued.
    pub linger: Duration,
    /// Setting up the TCP connection (the connector's limit; see [`client`]).
    pub connect_timeout: Duration,
    /// The whole request: connect, TLS handshake, send, the answer's head.
    pub timeout: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Send batches with `Content-Encoding: gzip` (signed uncompressed).
    pub gzip: bool,
}

impl DeliveryConfig {
    pub fn new(hq_url: &str) -> Self {
        DeliveryConfig {
            events_url: format!("{}/events", hq_url.trim_end_matches('/')),
            max_events: 500,
            max_bytes: 512 * 1024,
            linger: Duration::from_millis(50),
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            backoff_min: Duration::from_millis(200),
            backoff_max: Duration::from_secs(60),
            gzip: true,
        }
    }

    /// The defaults with the `[hq]` settings applied.
    pub fn for_hq(hq: &HqConfig) -> Self {
        DeliveryConfig {
            gzip: hq.gzip,
            connect_timeout: hq.connect_timeout,
            timeout: hq.timeout,
            ..DeliveryConfig::new(&hq.url)
        }
    }
}

/// What `ctl status` shows of delivery.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeliveryStatus {
    pub state: &'static str,
    pub delivered: u64,
    pub batches: u64,
    pub retries: u64,
    /// Events HQ refused with a 4xx (other than 408/429): parked.
    pub dead_lettered: u64,
    pub last_error: Option<String>,
    pub last_delivery: Option<String>,
}

pub type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Builds the HTTPS client: HQ's CA from `ca_file` (pinned) when given,
/// else the system's roots; the box's own certificate and key when
/// `client_cert` is given (mutual TLS); TCP connections given up after
/// `connect_timeout`. Plain http is accepted for loopback URLs only
/// (config validation enforces that). Errors are one line naming the
/// config key and the file.
pub fn client(
    ca_file: Option<&Path>,
    client_cert: Option<&ClientCert>,
    connect_timeout: Duration,
) -> Result<HttpsClient, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs = read_certs("hq.ca_file", path)?;
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| format!("hq.ca_file {}: {e}", path.display()))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                let _ = roots.add(cert);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let tls = match client_cert {
        None => builder.with_no_client_auth(),
        Some(ClientCert { cert, key }) => {
            use rustls_pki_types::PrivateKeyDer;
            use rustls_pki_types::pem::PemObject;
            let chain = read_certs("hq.client_cert", cert)?;
            let private = PrivateKeyDer::from_pem_file(key).map_err(|e| match e {
                rustls_pki_types::pem::Error::NoItemsFound => format!(
                    "hq.client_key {}: no PEM private key (PKCS#8, PKCS#1 or SEC1) in the file",
                    key.display()
                ),
                e => format!("hq.client_key {}: {e}", key.display()),
            })?;
            builder.with_client_auth_cert(chain, private).map_err(|e| {
                format!(
                    "hq.client_cert {} with hq.client_key {}: {e}",
                    cert.display(),
                    key.display()
                )
            })?
        }
    };
    let mut http = HttpConnector::new();
    // The HTTPS connector checks the scheme; this one must let https pass.
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

/// Builds the client for `[hq]` (see [`client`]).
pub fn client_for(hq: &HqConfig) -> Result<HttpsClient, String> {
    client(
        hq.ca_file.as_deref(),
        hq.client_cert.as_ref(),
        hq.connect_timeout,
    )
}

/// Delivers until shutdown.
pub async fn run(
    outbox: Arc<Outbox>,
    config: DeliveryConfig,
    key: SigningKey,
    client: HttpsClient,
    status: Arc<Mutex<DeliveryStatus>>,
    shutdown: CancellationToken,
) {
    let set =
        |f: &dyn Fn(&mut DeliveryStatus)| f(&mut status.lock().unwrap_or_else(|e| e.into_inner()));
    set(&|s| s.state = "idle");
    let mut backoff = config.backoff_min;
    loop {
        let batch = match outbox.peek(config.max_events, config.max_bytes) {
            Ok(b) => b,
            Err(e) => {
                set(&|s| s.last_error = Some(format!("reading the outbox: {e}")));
                Vec::new()
            }
        };
        if batch.is_empty() {
            set(&|s| s.state = "idle");
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = outbox.wait_for_events() => {}
                // A periodic look as well, in case a wake-up was missed.
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
            // Let a burst gather into one batch.
            tokio::time::sleep(config.linger).await;
            continue;
        }
        set(&|s| s.state = "delivering");
        let seqs: Vec<u64> = batch.iter().map(|(s, _)| *s).collect();
        let outcome = tokio::select! {
            _ = shutdown.cancelled() => return,
            o = send(&client, &config, &key, &batch) => o,
        };
        let (reason, clock) = match outcome {
            Ok(()) => {
                if let Err(e) = outbox.ack(&seqs) {
                    tracing::error!(
                        "delivered events could not be removed (they will be sent again): {e}"
                    );
                }
                backoff = config.backoff_min;
                let n = seqs.len() as u64;
                set(&|s| {
                    s.delivered += n;
                    s.batches += 1;
                    s.last_error = None;
                    s.last_delivery = Some(Timestamp::now().rfc3339());
                });
                continue;
            }
            Err(Failure::Refused(status)) => {
                tracing::error!(
                    "HQ refused a batch of {} events with {status}: parked in the dead-letter tree \
                     (storegate ctl dead-letters; --retry sends them again)",
                    seqs.len()
                );
                if let Err(e) = outbox.park(&batch) {
                    tracing::error!("could not park the refused batch (it will be retried): {e}");
                }
                let n = seqs.len() as u64;
                set(&|s| {
                    s.dead_lettered += n;
                    s.last_error = Some(format!("HQ refused a batch: {status}"));
                });
                continue;
            }
            Err(Failure::Gone) => {
                tracing::error!(
                    "HQ answered 410 Gone for {}: delivery stopped; events keep queueing until the endpoint is fixed and storegate restarted",
                    config.events_url
                );
                set(&|s| {
                    s.state = "stopped: HQ answered 410 Gone";
                    s.last_error = Some("410 Gone".into());
                });
                shutdown.cancelled().await;
                return;
            }
            Err(Failure::Retry(reason)) => (reason, false),
            Err(Failure::Clock(reason)) => (reason, true),
        };
        let wait = jitter(backoff);
        if clock {
            // Every batch fails until the clock is right: say so loudly.
            tracing::error!("the box's clock is off: {reason}; retrying in {wait:?}");
        } else {
            tracing::warn!("delivery to HQ failed ({reason}); retrying in {wait:?}");
        }
        set(&|s| {
            s.state = "backing off";
            s.retries += 1;
            s.last_error = Some(reason.clone());
        });
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        backoff = (backoff * 2).min(config.backoff_max);
    }
}

enum Failure {
    Gone,
    /// A 4xx that retrying cannot fix.
    Refused(StatusCode),
    Retry(String),
    /// A 401 the box's clock explains ([`clock`]): retried, never parked.
    Clock(String),
}

/// Full jitter over the upper half: [d/2, d).
pub(crate) fn jitter(d: Duration) -> Duration {
    let ms = d.as_millis().max(2) as u64;
    Duration::from_millis(rand::thread_rng().gen_range(ms / 2..ms))
}

/// The batch body: a JSON array of the stored events, as stored.
pub fn batch_body(batch: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut body = Vec::with_capacity(batch.iter().map(|(_, v)| v.len() + 1).sum::<usize>() + 2);
    body.push(b'[');
    for (i, (_, v)) in batch.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(v);
    }
    body.push(b']');
    body
}

/// The signed request for a batch, stamped `now`. The `webhook-id` is
/// the batch's own, so a retry of the same events keeps it; the timestamp
/// and signature are made afresh on every call, so a retry after the
/// clock was set carries a timestamp HQ accepts.
fn request(
    config: &DeliveryConfig,
    key: &SigningKey,
    batch: &[(u64, Vec<u8>)],
    now: Timestamp,
) -> Result<Request<Full<Bytes>>, http::Error> {
    let body = batch_body(batch);
    let (first, last) = (batch[0].0, batch[batch.len() - 1].0);
    let id = format!("batch_{first}_{last}");
    let ts = now.millis().div_euclid(1000);
    let signature = key.sign(&id, ts, &body);
    let mut req = Request::post(&config.events_url);
    let body = if config.gzip {
        req = req.header(header::CONTENT_ENCODING, "gzip");
        gzip(&body)
    } else {
        body
    };
    req.header(header::CONTENT_TYPE, "application/cloudevents-batch+json")
        .header(
            header::USER_AGENT,
            concat!("storegate/", env!("CARGO_PKG_VERSION")),
        )
        .header("webhook-id", &id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature)
        .body(Full::new(Bytes::from(body)))
}

async fn send(
    client: &HttpsClient,
    config: &DeliveryConfig,
    key: &SigningKey,
    batch: &[(u64, Vec<u8>)],
) -> Result<(), Failure> {
    let req = request(config, key, batch, Timestamp::now())
        .map_err(|e| Failure::Retry(format!("building the request: {e}")))?;
    let resp = match tokio::time::timeout(config.timeout, client.request(req)).await {
        Err(_) => {
            return Err(Failure::Retry(format!(
                "no answer within {:?}",
                config.timeout
            )));
        }
        Ok(Err(e)) => {
            let reason = describe(&e);
            return Err(Failure::Retry(match tls_hint(&reason) {
                Some(hint) => format!("{reason} ({hint})"),
                None => reason,
            }));
        }
        Ok(Ok(r)) => r,
    };
    let answered = Timestamp::now();
    let status = resp.status();
    let date = resp
        .headers()
        .get(header::DATE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // Drain (bounded) so the connection can be reused.
    let _ = tokio::time::timeout(
        Duration::from_secs(2),
        http_body_util::Limited::new(resp.into_body(), 64 * 1024).collect(),
    )
    .await;
    match status {
        s if s.is_success() => Ok(()),
        StatusCode::GONE => Err(Failure::Gone),
        StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS => {
            Err(Failure::Retry(format!("HQ answered {status}")))
        }
        StatusCode::UNAUTHORIZED => {
            match clock::clock_at_fault(date.as_deref(), answered, clock::CLOCK_FLOOR) {
                Some(reason) => Err(Failure::Clock(reason)),
                None => Err(Failure::Refused(status)),
            }
        }
        s if s.is_client_error() => Err(Failure::Refused(s)),
        s => Err(Failure::Retry(format!("HQ answered {s}"))),
    }
}

fn gzip(body: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::fast(),
    );
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(body);
    enc.finish().unwrap_or_default()
}

/// A client error with its causes (a TLS failure hides two levels down).
pub(crate) fn describe(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// What a TLS alert from HQ says about the box's client certificate.
/// HQ judges no other certificate, so such an alert is about ours.
fn tls_hint(reason: &str) -> Option<&'static str> {
    let alert = reason.split("received fatal alert: ").nth(1)?;
    if alert.starts_with("CertificateRequired") {
        Some("HQ requires a client certificate: set hq.client_cert and hq.client_key")
    } else if [
        "UnknownCA",
        "BadCertificate",
        "UnsupportedCertificate",
        "CertificateRevoked",
        "CertificateExpired",
        "CertificateUnknown",
        "AccessDenied",
    ]
    .iter()
    .any(|a| alert.starts_with(a))
    {
        Some("HQ refused the box's client certificate, hq.client_cert")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_certificate_alerts_get_a_hint() {
        let hint = |s: &str| tls_hint(s).unwrap_or("");
        assert!(
            hint("client error (SendRequest): connection error: received fatal alert: CertificateRequired")
                .contains("hq.client_key")
        );
        assert!(hint("connection error: received fatal alert: UnknownCA").contains("refused"));
        assert_eq!(
            tls_hint("connection error: received fatal alert: DecodeError"),
            None
        );
        assert_eq!(tls_hint("tcp connect error: Connection refused"), None);
    }

    #[test]
    fn batch_body_is_a_json_array_of_the_stored_events() {
        let body = batch_body(&[(1, br#"{"a":1}"#.to_vec()), (2, br#"{"b":2}"#.to_vec())]);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v, serde_json::json!([{"a": 1}, {"b": 2}]));
    }

    #[test]
    fn every_attempt_is_signed_afresh_under_the_same_id() {
        use crate::uplink::signing::SignedHeaders;
        let key = SigningKey::from_secret("whsec_c3RvcmVnYXRlLWRlbGl2ZXJ5LXRlc3Qta2V5").unwrap();
        let config = DeliveryConfig {
            gzip: false,
            ..DeliveryConfig::new("http://127.0.0.1:9/hq")
        };
        let batch = [(7, br#"{"a":1}"#.to_vec()), (9, br#"{"b":2}"#.to_vec())];
        let body = batch_body(&batch);
        // A first attempt with the clock an hour behind, a retry after NTP.
        let (before, after) = (1_796_160_289, 1_796_163_889);
        let mut timestamps = Vec::new();
        for secs in [before, after] {
            let req = request(&config, &key, &batch, Timestamp::from_secs(secs)).unwrap();
            let h = req.headers();
            assert_eq!(h["webhook-id"], "batch_7_9", "the same batch keeps its id");
            assert_eq!(h["webhook-timestamp"], secs.to_string());
            key.verify(SignedHeaders::from_header_map(h), &body, secs, 300)
                .expect("signed for its own timestamp");
            timestamps.push(h["webhook-timestamp"].clone());
        }
        assert_ne!(timestamps[0], timestamps[1]);
        let first = request(&config, &key, &batch, Timestamp::from_secs(before)).unwrap();
        assert!(
            key.verify(
                SignedHeaders::from_header_map(first.headers()),
                &body,
                after,
                300
            )
            .is_err(),
            "the first attempt's timestamp is stale an hour later"
        );
    }

    #[test]
    fn gzip_round_trips() {
        use std::io::Read;
        let body = br#"[{"a":1},{"a":1},{"a":1},{"a":1}]"#.repeat(50);
        let packed = gzip(&body);
        assert!(packed.len() < body.len() / 4);
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&packed[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, body);
    }

    #[test]
    fn jitter_stays_within_the_upper_half() {
        for _ in 0..100 {
            let j = jitter(Duration::from_millis(1000));
            assert!(
                j >= Duration::from_millis(500) && j < Duration::from_millis(1000),
                "{j:?}"
            );
        }
    }
}
