//! An in-process HQ for the uplink tests: plain HTTP on 127.0.0.1, replies
//! scripted in order (the last one repeats), every request recorded.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The daemon's client; the tests speak plain http on loopback.
pub fn client() -> super::HttpsClient {
    crate::uplink::delivery::client(None, None, Duration::from_secs(5))
        .expect("a client with the system roots")
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Wait this long before answering.
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn body(mut self, body: &[u8]) -> Self {
        self.body = body.to_vec();
        self
    }
}

#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

pub struct TestHq {
    pub url: String,
    replies: Arc<Mutex<VecDeque<Reply>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: CancellationToken,
}

impl Drop for TestHq {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl TestHq {
    pub async fn start() -> TestHq {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let replies: Arc<Mutex<VecDeque<Reply>>> = Arc::default();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let stop = CancellationToken::new();
        let (r, s, st) = (replies.clone(), seen.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let stream = tokio::select! {
                    _ = st.cancelled() => return,
                    a = listener.accept() => match a {
                        Ok((stream, _)) => stream,
                        Err(_) => continue,
                    },
                };
                let (r, s) = (r.clone(), s.clone());
                let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let (r, s) = (r.clone(), s.clone());
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body.collect().await.unwrap().to_bytes().to_vec();
                        s.lock().unwrap().push(Seen {
                            method: parts.method.to_string(),
                            path: parts.uri.path().to_string(),
                            headers: parts.headers,
                            body,
                        });
                        let reply = {
                            let mut q = r.lock().unwrap();
                            if q.len() > 1 {
                                q.pop_front()
                            } else {
                                q.front().cloned()
                            }
                        }
                        .unwrap_or_else(|| Reply::status(599));
                        tokio::time::sleep(reply.delay).await;
                        let mut resp = Response::new(Full::new(Bytes::from(reply.body)));
                        *resp.status_mut() = StatusCode::from_u16(reply.status).unwrap();
                        for (k, v) in reply.headers {
                            resp.headers_mut().insert(
                                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                                v.parse().unwrap(),
                            );
                        }
                        Ok::<_, Infallible>(resp)
                    }
                });
                tokio::spawn(async move {
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        TestHq {
            url: format!("http://{addr}/storegate"),
            replies,
            seen,
            stop,
        }
    }

    /// Replaces the script: these replies, in order, the last repeating.
    pub fn script(&self, replies: Vec<Reply>) {
        *self.replies.lock().unwrap() = replies.into();
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}
