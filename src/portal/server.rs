//! Portal connections: accept, limit, serve, shut down, with what every
//! server shares (`crate::http`).
//!
//! Limits: at most `max_connections` served at once (a slot taken before
//! `accept`, so the excess waits in the kernel backlog); request heads up
//! to 16 KiB (larger get 431) and 10 s to send each; bodies up to 8 KiB
//! (413), sent within 10 s (408, `http::form::read_body`); 120 s for a
//! whole connection, 5 s idle (nothing read or written, no request being
//! answered); at most `portal.max_connections_per_client` (16) at once
//! from one client address (more are closed as soon as they are accepted). On shutdown each
//! connection finishes its current request and closes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Portal, PortalStats, routes};
use crate::http::{self, Acceptor, Conn};

const CONNECTION_LIFETIME: Duration = Duration::from_secs(120);
/// A connection with nothing moving for this long is closed: phones open
/// a new one in milliseconds, and a parked keep-alive connection is a
/// slot another phone's sign-in sheet may need.
const IDLE: Duration = Duration::from_secs(5);

/// Binds the portal listener. A wildcard IPv4 address binds the IPv6
/// wildcard instead (dual stack), so captured IPv6 clients are served too.
pub async fn bind(listen: SocketAddr) -> std::io::Result<TcpListener> {
    http::bind("portal", listen).await
}

/// Serves until `shutdown` is cancelled; connections are tracked by
/// `tracker` so the caller can wait for them to finish.
pub async fn serve(
    listener: TcpListener,
    portal: Arc<Portal>,
    max_connections: usize,
    max_per_client: usize,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let refused = portal.clone();
    let over = portal.clone();
    Acceptor::new("portal", max_connections)
        .on_error(move || PortalStats::bump(&refused.stats.connections_refused))
        .per_client(max_per_client, move || {
            PortalStats::bump(&over.stats.connections_over_client_cap)
        })
        .run(
            &listener,
            &shutdown,
            &tracker,
            portal,
            |portal, stream, peer, shutdown| serve_io(stream, peer, portal, shutdown),
        )
        .await;
}

/// Serves one connection over any byte stream (a socket; an in-memory
/// pipe in tests and fuzzing), with the same limits and shutdown.
pub async fn serve_io<I>(io: I, peer: SocketAddr, portal: Arc<Portal>, shutdown: CancellationToken)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn = Conn {
        what: "portal",
        peer,
        shutdown: &shutdown,
        grace: http::conn::GRACE,
        idle: Some(IDLE),
    };
    let lifetime = tokio::time::sleep(CONNECTION_LIFETIME);
    conn.serve(io, lifetime, |req| {
        let portal = portal.clone();
        async move { routes::route(&portal, peer.ip(), req).await }
    })
    .await;
}
