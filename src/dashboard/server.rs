//! Dashboard connections: TLS (rustls), limits, shutdown.
//!
//! Limits: at most `max_connections` at once (a semaphore taken before
//! `accept`); 10 s for the TLS handshake and for each request head; heads
//! up to 16 KiB (the portal's cap); form bodies up to 4 KiB; at most
//! [`super::live::MAX_SSE_CLIENTS`] event streams; 10 s for a form body
//! (408, in `form::read_body`); 120 s for a whole connection, except one
//! that has started an event stream (`GET /api/events`, long-lived by
//! design), which gets an hour (the page's `EventSource` then reconnects).
//! On shutdown each connection finishes its current request and event
//! streams end.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::listen::Acceptor;
use tokio_util::task::TaskTracker;

use super::{Dashboard, routes};
use crate::portal::server::MAX_HEAD_BYTES;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
const GRACE: Duration = Duration::from_secs(5);
/// Longest a connection is served (then closed after its current
/// request), so a client cannot hold one of the few slots for good.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(120);
/// Longest a connection that carries an event stream is served.
const EVENT_STREAM_LIFETIME: Duration = Duration::from_secs(60 * 60);

pub use crate::portal::server::bind;

/// Serves HTTPS until `shutdown`; also runs the live-view publisher.
pub async fn serve(
    listener: TcpListener,
    tls: TlsAcceptor,
    dashboard: Arc<Dashboard>,
    max_connections: usize,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    tracker.spawn(super::live::run(dashboard.clone(), shutdown.clone()));
    let mut acceptor = Acceptor::new("dashboard", max_connections);
    while let Some(c) = acceptor.next(&listener, &shutdown, || {}).await {
        let (tls, dashboard, shutdown) = (tls.clone(), dashboard.clone(), shutdown.clone());
        tracker.spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(c.stream)).await {
                Ok(Ok(io)) => serve_io(io, c.peer, dashboard, shutdown).await,
                Ok(Err(e)) => tracing::debug!(peer = %c.peer, "dashboard TLS handshake: {e}"),
                Err(_) => tracing::debug!(peer = %c.peer, "dashboard TLS handshake timed out"),
            }
            drop(c.slot);
        });
    }
}

/// Serves one (decrypted) connection; tests use an in-memory pipe.
pub async fn serve_io<I>(
    io: I,
    peer: SocketAddr,
    dashboard: Arc<Dashboard>,
    shutdown: CancellationToken,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    serve_io_for(io, peer, dashboard, shutdown, Lifetimes::DEFAULT).await;
}

/// How long connections are served.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lifetimes {
    pub connection: Duration,
    pub event_stream: Duration,
    /// How long the request in progress may take to finish after that.
    pub grace: Duration,
}

impl Lifetimes {
    const DEFAULT: Lifetimes = Lifetimes {
        connection: CONNECTION_LIFETIME,
        event_stream: EVENT_STREAM_LIFETIME,
        grace: GRACE,
    };
}

/// [`serve_io`] with other lifetimes (tests).
pub(crate) async fn serve_io_for<I>(
    io: I,
    peer: SocketAddr,
    dashboard: Arc<Dashboard>,
    shutdown: CancellationToken,
    lifetimes: Lifetimes,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let peer_ip = peer.ip();
    // Set once this connection answers with an event stream (only a
    // signed-in manager gets one).
    let streaming = Arc::new(AtomicBool::new(false));
    let seen = streaming.clone();
    let service = service_fn(move |req| {
        let (dashboard, seen) = (dashboard.clone(), seen.clone());
        async move {
            let resp = routes::handle(&dashboard, peer_ip, req).await;
            if resp
                .headers()
                .get(hyper::header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"))
            {
                seen.store(true, Ordering::Relaxed);
            }
            Ok::<_, Infallible>(resp)
        }
    });
    let lifetime = async {
        tokio::time::sleep(lifetimes.connection).await;
        if streaming.load(Ordering::Relaxed) {
            let rest = lifetimes.event_stream.saturating_sub(lifetimes.connection);
            tokio::time::sleep(rest).await;
        }
    };
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES)
        .serve_connection(TokioIo::new(io), service);
    crate::listen::drive(
        conn,
        lifetime,
        &shutdown,
        lifetimes.grace,
        "dashboard",
        peer,
    )
    .await;
}
