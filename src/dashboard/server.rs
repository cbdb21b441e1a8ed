//! Dashboard connections: TLS (rustls), limits, shutdown, with what every
//! server shares (`crate::http`).
//!
//! Limits: at most `max_connections` at once (a slot taken before
//! `accept`); 10 s for the TLS handshake and for each request head; heads
//! up to 16 KiB (as for every server); form bodies up to 4 KiB, sent
//! within 10 s (408, `http::form::read_body`); at most
//! [`super::live::MAX_SSE_CLIENTS`] event streams; 120 s for a whole
//! connection, except one that has started an event stream
//! (`GET /api/events`, long-lived by design), which gets an hour (the
//! page's `EventSource` then reconnects). On shutdown each connection
//! finishes its current request and event streams end.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Dashboard, routes};
use crate::http::{self, Acceptor, Conn};

/// Longest a connection is served (then closed after its current
/// request), so a client cannot hold one of the few slots for good.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(120);
/// Longest a connection that carries an event stream is served.
const EVENT_STREAM_LIFETIME: Duration = Duration::from_secs(60 * 60);

/// Binds the dashboard listener (a wildcard IPv4 address: dual stack).
pub async fn bind(listen: SocketAddr) -> std::io::Result<TcpListener> {
    http::bind("dashboard", listen).await
}

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
    let state = (tls, dashboard);
    Acceptor::new("dashboard", max_connections)
        .run(&listener, &shutdown, &tracker, state, connection)
        .await;
}

/// One connection: the TLS handshake, then HTTP.
async fn connection(
    (tls, dashboard): (TlsAcceptor, Arc<Dashboard>),
    stream: TcpStream,
    peer: SocketAddr,
    shutdown: CancellationToken,
) {
    match http::tls::handshake(&tls, stream, &shutdown).await {
        Ok(io) => serve_io(io, peer, dashboard, shutdown).await,
        Err(e) => tracing::debug!(%peer, "dashboard {e}"),
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
        grace: http::conn::GRACE,
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
    // Set once this connection answers with an event stream (only a
    // signed-in manager gets one).
    let streaming = Arc::new(AtomicBool::new(false));
    let seen = streaming.clone();
    let lifetime = async {
        tokio::time::sleep(lifetimes.connection).await;
        if streaming.load(Ordering::Relaxed) {
            let rest = lifetimes.event_stream.saturating_sub(lifetimes.connection);
            tokio::time::sleep(rest).await;
        }
    };
    let conn = Conn {
        what: "dashboard",
        peer,
        shutdown: &shutdown,
        grace: lifetimes.grace,
        idle: None,
    };
    conn.serve(io, lifetime, |req| {
        let (dashboard, seen) = (dashboard.clone(), seen.clone());
        async move {
            let resp = routes::route(&dashboard, peer.ip(), req).await;
            if resp
                .headers()
                .get(hyper::header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"))
            {
                seen.store(true, Ordering::Relaxed);
            }
            resp
        }
    })
    .await;
}
