//! Portal connections: accept, limit, serve, shut down.
//!
//! Limits: at most `max_connections` served at once (a semaphore taken
//! before `accept`, so the excess waits in the kernel backlog); request
//! heads up to 16 KiB (larger get 431); bodies up to 8 KiB (413), sent
//! within 10 s (408, `form::read_body`); 10 s to send a request head;
//! 120 s for a whole connection. On shutdown each connection finishes its
//! current request and closes.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::listen::Acceptor;
use tokio_util::task::TaskTracker;

use super::{Portal, PortalStats, routes};

const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECTION_LIFETIME: Duration = Duration::from_secs(120);
/// hyper's read buffer, which bounds a request head.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
const GRACE: Duration = Duration::from_secs(5);

/// Binds the portal listener. A wildcard IPv4 address binds the IPv6
/// wildcard instead (dual stack), so captured IPv6 clients are served too.
pub async fn bind(listen: SocketAddr) -> std::io::Result<TcpListener> {
    if listen.ip() == IpAddr::from([0, 0, 0, 0]) {
        let v6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), listen.port());
        match TcpListener::bind(v6).await {
            Ok(l) => return Ok(l),
            Err(e) => tracing::warn!("IPv6 unavailable for the portal ({e}); serving IPv4 only"),
        }
    }
    TcpListener::bind(listen).await
}

/// Serves until `shutdown` is cancelled; connections are tracked by
/// `tracker` so the caller can wait for them to finish.
pub async fn serve(
    listener: TcpListener,
    portal: Arc<Portal>,
    max_connections: usize,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let mut acceptor = Acceptor::new("portal", max_connections);
    while let Some(c) = acceptor
        .next(&listener, &shutdown, || {
            PortalStats::bump(&portal.stats.connections_refused)
        })
        .await
    {
        let portal = portal.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            serve_io(c.stream, c.peer, portal, shutdown).await;
            drop(c.slot);
        });
    }
}

/// Serves one connection over any byte stream (a socket; an in-memory
/// pipe in tests and fuzzing), with the same limits and shutdown.
pub async fn serve_io<I>(io: I, peer: SocketAddr, portal: Arc<Portal>, shutdown: CancellationToken)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let peer_ip = peer.ip();
    let service = service_fn(move |req| {
        let portal = portal.clone();
        async move { Ok::<_, Infallible>(routes::handle(&portal, peer_ip, req).await) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES)
        .serve_connection(TokioIo::new(io), service);
    let lifetime = tokio::time::sleep(CONNECTION_LIFETIME);
    crate::listen::drive(conn, lifetime, &shutdown, GRACE, "portal", peer).await;
}
