//! Listening: binding an address, and accepting at most N connections
//! at once, each holding a slot until it is done, with a backoff on
//! accept errors (out of file descriptors and the like) instead of a
//! busy loop. Optionally at most M at once from one client address, so
//! one client cannot take every slot: a connection past that is closed
//! as soon as it is accepted, holding nothing. What a connection then
//! gets is `conn`'s.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
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

/// Connections open per client address (only addresses with one open).
type PeerCounts = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// One open connection of a client address; counted down when dropped.
pub struct PeerSlot {
    counts: PeerCounts,
    ip: IpAddr,
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// A connection and the slots it holds until dropped.
pub struct Accepted {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    pub slot: OwnedSemaphorePermit,
    /// Its place in the per-client count, with a per-client cap.
    pub peer_slot: Option<PeerSlot>,
}

pub struct Acceptor {
    slots: Arc<Semaphore>,
    backoff: Duration,
    /// Named in the log line of a failed accept.
    what: &'static str,
    /// Runs for each failed accept, before the backoff (a counter).
    on_error: Option<Box<dyn Fn() + Send + Sync>>,
    /// At most this many connections at once from one client address.
    per_client: Option<usize>,
    peers: PeerCounts,
    /// Runs for each connection closed for being over `per_client`.
    on_over_cap: Option<Box<dyn Fn() + Send + Sync>>,
}

impl Acceptor {
    pub fn new(what: &'static str, max_connections: usize) -> Self {
        Acceptor {
            slots: Arc::new(Semaphore::new(max_connections.max(1))),
            backoff: BACKOFF_MIN,
            what,
            on_error: None,
            per_client: None,
            peers: PeerCounts::default(),
            on_over_cap: None,
        }
    }

    /// Runs `f` for each failed accept, before the backoff.
    pub fn on_error(mut self, f: impl Fn() + Send + Sync + 'static) -> Self {
        self.on_error = Some(Box::new(f));
        self
    }

    /// At most `max` connections at once from one client address (an
    /// IPv4-mapped address counts as the IPv4 one); each one past that is
    /// closed at once and `on_over_cap` runs.
    pub fn per_client(
        mut self,
        max: usize,
        on_over_cap: impl Fn() + Send + Sync + 'static,
    ) -> Self {
        self.per_client = Some(max.max(1));
        self.on_over_cap = Some(Box::new(on_over_cap));
        self
    }

    /// Counts a connection from `ip`, unless that client is at its cap.
    fn admit(&self, ip: IpAddr) -> Result<Option<PeerSlot>, ()> {
        let Some(max) = self.per_client else {
            return Ok(None);
        };
        let ip = ip.to_canonical();
        let mut counts = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(ip).or_insert(0);
        if *n >= max {
            return Err(());
        }
        *n += 1;
        Ok(Some(PeerSlot {
            counts: self.peers.clone(),
            ip,
        }))
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
                    let Ok(peer_slot) = self.admit(peer.ip()) else {
                        // Over its cap: closed (dropped) at once; the slot
                        // stays for the next client.
                        if let Some(counted) = &self.on_over_cap {
                            counted();
                        }
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    return Some(Accepted {
                        stream,
                        peer,
                        slot,
                        peer_slot,
                    });
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
            let slots = (c.slot, c.peer_slot);
            tracker.spawn(async move {
                served.await;
                drop(slots);
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// A connection to `addr` from the local address `from`.
    async fn connect_from(from: &str, addr: SocketAddr) -> TcpStream {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
        socket.connect(addr).await.unwrap()
    }

    #[tokio::test]
    async fn one_client_cannot_take_every_slot() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let over = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = over.clone();
        let mut acceptor = Acceptor::new("test", 10).per_client(2, move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        });
        let mut greedy = Vec::new();
        for _ in 0..3 {
            greedy.push(connect_from("127.0.0.1", addr).await);
        }
        let other = connect_from("127.0.0.2", addr).await;
        let a = acceptor.next(&listener, &shutdown).await.unwrap();
        let b = acceptor.next(&listener, &shutdown).await.unwrap();
        // The third from 127.0.0.1 is closed; the next accepted is the
        // other client's.
        let c = acceptor.next(&listener, &shutdown).await.unwrap();
        assert_eq!(a.peer.ip(), b.peer.ip());
        assert_eq!(c.peer.ip(), "127.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!(over.load(std::sync::atomic::Ordering::Relaxed), 1);
        let mut buf = [0u8; 1];
        let closed = tokio::time::timeout(Duration::from_secs(5), greedy[2].read(&mut buf))
            .await
            .expect("the refused connection is closed");
        assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
        // One of its connections ends: the client may open another.
        drop(a);
        let again = connect_from("127.0.0.1", addr).await;
        let d = tokio::time::timeout(Duration::from_secs(5), acceptor.next(&listener, &shutdown))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(d.peer.ip(), "127.0.0.1".parse::<IpAddr>().unwrap());
        drop((b, c, d, other, again));
    }

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
