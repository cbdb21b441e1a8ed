//! One HTTP/1 connection, served the same way by every server: request
//! heads up to [`MAX_HEAD_BYTES`] (hyper answers a larger one with 431),
//! [`HEADER_READ_TIMEOUT`] to send each head, a lifetime the server
//! chooses, and on shutdown or at the end of that lifetime the request in
//! flight finishes within a grace period before the connection closes.
//! So a client can never hold a connection slot for good. A server may
//! also close connections that sit idle (no bytes either way, no request
//! being answered) for a while: a keep-alive connection a client parks is
//! a slot nobody else can use.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;
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
    /// Close the connection once it has been idle this long: no byte
    /// read or written and no request being answered. `None`: only the
    /// lifetime ends it (event streams, which are quiet on purpose).
    pub idle: Option<Duration>,
}

/// When the connection last moved a byte, and how many requests it is
/// answering.
struct Activity {
    since: Instant,
    last_ms: AtomicU64,
    busy: AtomicUsize,
}

impl Activity {
    fn new() -> Arc<Self> {
        Arc::new(Activity {
            since: Instant::now(),
            last_ms: AtomicU64::new(0),
            busy: AtomicUsize::new(0),
        })
    }

    fn touch(&self) {
        let ms = self.since.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Completes once nothing has happened for `idle`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let last = self.since + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let deadline = last + idle;
            if self.busy.load(Ordering::Relaxed) == 0 && Instant::now() >= deadline {
                return;
            }
            let wake = if self.busy.load(Ordering::Relaxed) > 0 {
                Instant::now() + idle
            } else {
                deadline
            };
            tokio::time::sleep_until(wake).await;
        }
    }
}

/// Answering one request: the connection is busy, not idle.
struct Busy(Arc<Activity>);

impl Busy {
    fn new(a: &Arc<Activity>) -> Self {
        a.busy.fetch_add(1, Ordering::Relaxed);
        Busy(a.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A byte stream that notes every byte moved in `Activity`.
struct Watched<I> {
    io: I,
    activity: Arc<Activity>,
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(res, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        res
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let res = Pin::new(&mut self.io).poll_write(cx, data);
        if matches!(res, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        res
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
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
        let activity = Activity::new();
        let busy = activity.clone();
        let service = service_fn(move |req| {
            let working = Busy::new(&busy);
            let answer = handler(req);
            async move {
                let response = answer.await;
                drop(working);
                Ok::<_, Infallible>(response)
            }
        });
        let io = Watched {
            io,
            activity: activity.clone(),
        };
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .max_buf_size(MAX_HEAD_BYTES)
            .serve_connection(TokioIo::new(io), service);
        let idle = async {
            match self.idle {
                Some(idle) => activity.idle_for(idle).await,
                None => std::future::pending().await,
            }
        };
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
            _ = idle => {}
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

    /// A server on one end of an in-memory pipe, answering "hi" after
    /// `delay`, with `idle` as its idle limit; the client's end.
    fn serve_pipe(
        idle: Option<Duration>,
        delay: Duration,
    ) -> (tokio::io::DuplexStream, tokio::task::JoinHandle<()>) {
        let (client, server_end) = tokio::io::duplex(64 * 1024);
        let served = tokio::spawn(async move {
            let shutdown = CancellationToken::new();
            let conn = Conn {
                what: "test",
                peer: "192.0.2.1:40000".parse().unwrap(),
                shutdown: &shutdown,
                grace: Duration::from_millis(100),
                idle,
            };
            conn.serve(
                server_end,
                tokio::time::sleep(Duration::from_secs(120)),
                move |_req| async move {
                    tokio::time::sleep(delay).await;
                    Response::new(Full::new(Bytes::from_static(b"hi")))
                },
            )
            .await;
        });
        (client, served)
    }

    async fn exchange(request: &[u8]) -> String {
        let (mut client, served) = serve_pipe(None, Duration::ZERO);
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

    #[tokio::test(start_paused = true)]
    async fn an_idle_keep_alive_connection_is_closed_and_a_slow_answer_is_not() {
        // The answer takes longer than the idle limit: it must still come.
        let (mut client, served) = serve_pipe(Some(Duration::from_secs(5)), Duration::from_secs(8));
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .unwrap();
        let mut out = vec![0u8; 4096];
        let n = client.read(&mut out).await.unwrap();
        assert!(out[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &out[..n]);
        let answered = Instant::now();
        // Then the client keeps the connection open and says nothing.
        let closed = client.read(&mut out).await.unwrap();
        assert_eq!(closed, 0, "the idle connection is closed");
        let after = answered.elapsed();
        assert!(
            after >= Duration::from_secs(5) && after < Duration::from_secs(7),
            "closed {after:?} after the answer"
        );
        served.await.unwrap();
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
