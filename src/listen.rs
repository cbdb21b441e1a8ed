//! What every TCP server of the box shares (portal, dashboard, the
//! reference HQ receiver): at most N connections at once, each holding a
//! slot until it is done, a backoff on accept errors (out of file
//! descriptors and the like) instead of a busy loop, and a bounded life
//! for each connection ([`drive`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

const BACKOFF_MIN: Duration = Duration::from_millis(5);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// A connection and the slot it holds until dropped.
pub struct Accepted {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    pub slot: OwnedSemaphorePermit,
}

pub struct Acceptor {
    slots: Arc<Semaphore>,
    backoff: Duration,
    /// Named in the log line of a failed accept.
    what: &'static str,
}

impl Acceptor {
    pub fn new(what: &'static str, max_connections: usize) -> Self {
        Acceptor {
            slots: Arc::new(Semaphore::new(max_connections.max(1))),
            backoff: BACKOFF_MIN,
            what,
        }
    }

    /// The next connection once a slot is free (with Nagle off), or `None`
    /// at shutdown. `on_error` runs for each failed accept, before the
    /// backoff.
    pub async fn next(
        &mut self,
        listener: &TcpListener,
        shutdown: &CancellationToken,
        mut on_error: impl FnMut(),
    ) -> Option<Accepted> {
        let slot = tokio::select! {
            _ = shutdown.cancelled() => return None,
            p = self.slots.clone().acquire_owned() => p.ok()?,
        };
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => return None,
                a = listener.accept() => a,
            };
            match accepted {
                Ok((stream, peer)) => {
                    self.backoff = BACKOFF_MIN;
                    let _ = stream.set_nodelay(true);
                    return Some(Accepted { stream, peer, slot });
                }
                Err(e) => {
                    on_error();
                    tracing::warn!(
                        "{} accept failed: {e}; retrying in {:?}",
                        self.what,
                        self.backoff
                    );
                    tokio::select! {
                        _ = shutdown.cancelled() => return None,
                        _ = tokio::time::sleep(self.backoff) => {}
                    }
                    self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }
}

/// Serves one HTTP/1 connection until it ends, `shutdown` is cancelled
/// or `lifetime` completes; then lets the request in flight finish within
/// `grace`. The same for every server, so a client can never hold a slot
/// for good.
pub async fn drive<T, S, B>(
    conn: hyper::server::conn::http1::Connection<T, S>,
    lifetime: impl std::future::Future<Output = ()>,
    shutdown: &CancellationToken,
    grace: Duration,
    what: &str,
    peer: SocketAddr,
) where
    T: hyper::rt::Read + hyper::rt::Write + Unpin,
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    tokio::pin!(conn);
    tokio::select! {
        res = conn.as_mut() => {
            if let Err(e) = res {
                tracing::debug!(%peer, "{what} connection: {e}");
            }
            return;
        }
        _ = shutdown.cancelled() => {}
        _ = lifetime => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(grace, conn).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connections_wait_for_a_free_slot_and_shutdown_ends_the_wait() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let mut acceptor = Acceptor::new("test", 1);
        let _c1 = TcpStream::connect(addr).await.unwrap();
        let _c2 = TcpStream::connect(addr).await.unwrap();
        let first = acceptor.next(&listener, &shutdown, || {}).await.unwrap();
        // The one slot is taken: the second connection waits.
        let waiting = tokio::time::timeout(
            Duration::from_millis(100),
            acceptor.next(&listener, &shutdown, || {}),
        )
        .await;
        assert!(waiting.is_err(), "accepted past the cap");
        drop(first);
        let second = tokio::time::timeout(
            Duration::from_secs(5),
            acceptor.next(&listener, &shutdown, || {}),
        )
        .await
        .unwrap();
        assert!(second.is_some());
        drop(second);
        shutdown.cancel();
        assert!(acceptor.next(&listener, &shutdown, || {}).await.is_none());
    }
}
