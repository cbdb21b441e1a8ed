//! One HTTP/1 connection, served the same way by every server: request
//! heads up to [`MAX_HEAD_BYTES`] (hyper answers a larger one with 431),
//! [`HEADER_READ_TIMEOUT`] to send each head, a lifetime the server
//! chooses, and on shutdown or at the end of that lifetime the request in
//! flight finishes within a grace period before the connection closes.
//! So a client can never hold a connection slot for good.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;

use super::BoxError;

/// hyper's read buffer, which bounds a request head.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// How long a client may take to send a request head.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the request in flight may take to finish once the connection
/// is told to close.
pub const GRACE: Duration = Duration::from_secs(5);

/// Who is served, for how long after being told to stop, and what stops
/// them.
pub struct Conn<'a> {
    /// The server, named in log lines.
    pub what: &'static str,
    pub peer: SocketAddr,
    pub shutdown: &'a CancellationToken,
    /// How long the request in flight may take once `shutdown` is
    /// cancelled or the lifetime is over.
    pub grace: Duration,
}

impl Conn<'_> {
    /// Serves HTTP/1 on `io` with `handler` until the client closes,
    /// `shutdown` is cancelled or `lifetime` completes; then lets the
    /// request in flight finish within `grace`.
    pub async fn serve<I, F, Fut, B>(self, io: I, lifetime: impl Future<Output = ()>, handler: F)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        F: Fn(Request<Incoming>) -> Fut,
        Fut: Future<Output = Response<B>>,
        B: hyper::body::Body + 'static,
        B::Error: Into<BoxError>,
    {
        let service = service_fn(move |req| {
            let answer = handler(req);
            async move { Ok::<_, Infallible>(answer.await) }
        });
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .max_buf_size(MAX_HEAD_BYTES)
            .serve_connection(TokioIo::new(io), service);
        tokio::pin!(conn);
        tokio::select! {
            res = conn.as_mut() => {
                if let Err(e) = res {
                    tracing::debug!(peer = %self.peer, "{} connection: {e}", self.what);
                }
                return;
            }
            _ = self.shutdown.cancelled() => {}
            _ = lifetime => {}
        }
        conn.as_mut().graceful_shutdown();
        let _ = tokio::time::timeout(self.grace, conn).await;
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http_body_util::Full;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    async fn exchange(request: &[u8]) -> String {
        let (mut client, server_end) = tokio::io::duplex(64 * 1024);
        let shutdown = CancellationToken::new();
        let served = tokio::spawn(async move {
            let conn = Conn {
                what: "test",
                peer: "192.0.2.1:40000".parse().unwrap(),
                shutdown: &shutdown,
                grace: Duration::from_millis(100),
            };
            conn.serve(
                server_end,
                tokio::time::sleep(Duration::from_secs(5)),
                |_req| async { Response::new(Full::new(Bytes::from_static(b"hi"))) },
            )
            .await;
        });
        client.write_all(request).await.unwrap();
        let mut out = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut out))
            .await
            .expect("an answer")
            .unwrap();
        drop(client);
        let _ = served.await;
        String::from_utf8_lossy(&out[..n]).into_owned()
    }

    #[tokio::test]
    async fn heads_over_the_cap_get_431() {
        let ok = exchange(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        let big = format!(
            "GET / HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
            "a".repeat(MAX_HEAD_BYTES + 1)
        );
        let refused = exchange(big.as_bytes()).await;
        assert!(refused.starts_with("HTTP/1.1 431"), "{refused}");
    }
}
