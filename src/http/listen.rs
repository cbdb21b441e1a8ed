//! Listening: binding an address, and accepting at most N connections
//! at once, each holding a slot until it is done, with a backoff on
//! accept errors (out of file descriptors and the like) instead of a
//! busy loop. What a connection then gets is `conn`'s.

use std::future::Future;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const BACKOFF_MIN: Duration = Duration::from_millis(5);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Binds `listen` for the server named `what`. A wildcard IPv4 address
/// binds the IPv6 wildcard instead (dual stack), so IPv6 clients are
/// served too; where IPv6 is not available, IPv4 only.
pub async fn bind(what: &str, listen: SocketAddr) -> std::io::Result<TcpListener> {
    if listen.ip() == IpAddr::from([0, 0, 0, 0]) {
        let v6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), listen.port());
        match TcpListener::bind(v6).await {
            Ok(l) => return Ok(l),
            Err(e) => tracing::warn!("IPv6 unavailable for the {what} ({e}); serving IPv4 only"),
        }
    }
    TcpListener::bind(listen).await
}

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
    /// Runs for each failed accept, before the backoff (a counter).
    on_error: Option<Box<dyn Fn() + Send + Sync>>,
}

impl Acceptor {
    pub fn new(what: &'static str, max_connections: usize) -> Self {
        Acceptor {
            slots: Arc::new(Semaphore::new(max_connections.max(1))),
            backoff: BACKOFF_MIN,
            what,
            on_error: None,
        }
    }

    /// Runs `f` for each failed accept, before the backoff.
    pub fn on_error(mut self, f: impl Fn() + Send + Sync + 'static) -> Self {
        self.on_error = Some(Box::new(f));
        self
    }

    /// The next connection once a slot is free (with Nagle off), or `None`
    /// at shutdown.
    pub async fn next(
        &mut self,
        listener: &TcpListener,
        shutdown: &CancellationToken,
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
                    if let Some(counted) = &self.on_error {
                        counted();
                    }
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

    /// Accepts until `shutdown`, and serves each connection on its own
    /// task in `tracker` with `serve(state, stream, peer, shutdown)` (a
    /// clone of `state` and of the token each), which keeps the
    /// connection's slot until it returns.
    pub async fn run<S, F, Fut>(
        mut self,
        listener: &TcpListener,
        shutdown: &CancellationToken,
        tracker: &TaskTracker,
        state: S,
        serve: F,
    ) where
        S: Clone,
        F: Fn(S, TcpStream, SocketAddr, CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        while let Some(c) = self.next(listener, shutdown).await {
            let served = serve(state.clone(), c.stream, c.peer, shutdown.clone());
            let slot = c.slot;
            tracker.spawn(async move {
                served.await;
                drop(slot);
            });
        }
    }
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
        let first = acceptor.next(&listener, &shutdown).await.unwrap();
        // The one slot is taken: the second connection waits.
        let waiting = tokio::time::timeout(
            Duration::from_millis(100),
            acceptor.next(&listener, &shutdown),
        )
        .await;
        assert!(waiting.is_err(), "accepted past the cap");
        drop(first);
        let second =
            tokio::time::timeout(Duration::from_secs(5), acceptor.next(&listener, &shutdown))
                .await
                .unwrap();
        assert!(second.is_some());
        drop(second);
        shutdown.cancel();
        assert!(acceptor.next(&listener, &shutdown).await.is_none());
    }
}
