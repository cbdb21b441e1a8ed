//! Dashboard connections: TLS (rustls), limits, shutdown.
//!
//! Limits: at most `max_connections` at once (a semaphore taken before
//! `accept`); 10 s for the TLS handshake and for each request head; heads
//! up to 16 KiB (the portal's cap); form bodies up to 4 KiB; at most
//! [`super::live::MAX_SSE_CLIENTS`] event streams. On shutdown each
//! connection finishes its current request and event streams end.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Dashboard, routes};
use crate::portal::server::MAX_HEAD_BYTES;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
const GRACE: Duration = Duration::from_secs(5);

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
    let slots = Arc::new(Semaphore::new(max_connections.max(1)));
    let mut backoff = Duration::from_millis(5);
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => return,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => {
                backoff = Duration::from_millis(5);
                a
            }
            Err(e) => {
                tracing::warn!("dashboard accept failed: {e}; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let (tls, dashboard, shutdown) = (tls.clone(), dashboard.clone(), shutdown.clone());
        tracker.spawn(async move {
            let _ = stream.set_nodelay(true);
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
                Ok(Ok(io)) => serve_io(io, peer, dashboard, shutdown).await,
                Ok(Err(e)) => tracing::debug!(%peer, "dashboard TLS handshake: {e}"),
                Err(_) => tracing::debug!(%peer, "dashboard TLS handshake timed out"),
            }
            drop(permit);
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
    let peer_ip = peer.ip();
    let service = service_fn(move |req| {
        let dashboard = dashboard.clone();
        async move { Ok::<_, Infallible>(routes::handle(&dashboard, peer_ip, req).await) }
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
                tracing::debug!(%peer, "dashboard connection: {e}");
            }
            return;
        }
        _ = shutdown.cancelled() => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(GRACE, conn).await;
}
