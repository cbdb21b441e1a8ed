//! The client side of hostapd's control interface, and [`run`], the task
//! that stays attached to every hostapd of the box.
//!
//! A [`Hostapd`] is one attached client: its own datagram socket (a unique
//! path in a directory of the box's, mode 0600, removed when dropped),
//! connected to hostapd's socket. Commands and events share that socket, so
//! while a command waits for its answer the events that arrive meanwhile
//! are kept for [`Hostapd::next_event`].
//!
//! hostapd restarts (a reconfiguration, a crash, a radio reset) and forgets
//! its attached clients, so [`run`] keeps checking: the socket path is
//! looked at four times a second (a restarted hostapd binds a new socket
//! there) and a `PING` must be answered every few seconds. When hostapd is
//! gone the link reconnects as soon as it is back, attaches again and lists
//! the stations that joined meanwhile, so no join is missed. A leave while
//! it was gone is not reported: presence probes a station that has been
//! quiet for half an hour all the same, which ends such a one.

use std::collections::VecDeque;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::net::UnixDatagram;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::{Station, StationEvent, answer_is, is_unsolicited, parse_event, parse_station};
use crate::mac::MacAddr;

/// How long a command waits for its answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);
/// How often an attached link checks hostapd's socket path.
const CHECK_EVERY: Duration = Duration::from_millis(250);
/// How often an attached link sends `PING`.
const PING_EVERY: Duration = Duration::from_secs(2);
/// How often a link tries to reach a hostapd that is away.
const RETRY_EVERY: Duration = Duration::from_millis(200);
/// hostapd's answers fit in 4 KiB; room to spare.
const DATAGRAM_MAX: usize = 8192;
/// Events kept while a command waits (hostapd's default station limit is
/// 2007); more are dropped, and the next listing finds their stations.
const PENDING_MAX: usize = 2048;
/// The longest station listing walked.
const STATIONS_MAX: usize = 4096;

/// Why a command to hostapd failed.
#[derive(Debug, thiserror::Error)]
pub enum HostapdError {
    #[error("hostapd control socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("hostapd did not answer {0} in time")]
    Timeout(String),
    #[error("hostapd answered {command} with {answer:?}")]
    Unexpected { command: String, answer: String },
    #[error("not attached to this hostapd at the moment")]
    NotAttached,
    #[error("the hostapd link is not running")]
    NotRunning,
}

/// One client attached to one hostapd control socket.
pub struct Hostapd {
    sock: UnixDatagram,
    local: PathBuf,
    pending: VecDeque<StationEvent>,
}

impl Hostapd {
    /// Binds a socket of its own in `local_dir`, connects it to hostapd's
    /// `ctrl_path` and sends `ATTACH` (answer `OK`).
    pub async fn connect(ctrl_path: &Path, local_dir: &Path) -> Result<Hostapd, HostapdError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let local = local_dir.join(format!("storegate-hostapd-{}-{n}", std::process::id()));
        // A leftover of an earlier process with the same id.
        let _ = std::fs::remove_file(&local);
        let sock = UnixDatagram::bind(&local)?;
        let mut hostapd = Hostapd {
            sock,
            local,
            pending: VecDeque::new(),
        };
        std::fs::set_permissions(&hostapd.local, std::fs::Permissions::from_mode(0o600))?;
        hostapd.sock.connect(ctrl_path)?;
        hostapd.expect("ATTACH", "OK").await?;
        Ok(hostapd)
    }

    /// Sends `cmd` and returns hostapd's answer (events that arrive
    /// meanwhile are kept for [`Hostapd::next_event`]).
    pub async fn request(&mut self, cmd: &str) -> Result<String, HostapdError> {
        // Answers that came after their command timed out are stale.
        let mut buf = vec![0u8; DATAGRAM_MAX];
        while let Ok(n) = self.sock.try_recv(&mut buf) {
            self.keep_if_event(&buf[..n]);
        }
        let verb = || cmd.split(' ').next().unwrap_or_default().to_string();
        let exchange = async {
            self.sock.send(cmd.as_bytes()).await?;
            loop {
                let n = self.sock.recv(&mut buf).await?;
                if is_unsolicited(&buf[..n]) {
                    self.keep_if_event(&buf[..n]);
                } else {
                    return Ok::<_, HostapdError>(String::from_utf8_lossy(&buf[..n]).into_owned());
                }
            }
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| HostapdError::Timeout(verb()))?
    }

    /// The next station event; other events and stray answers are skipped.
    /// Cancel-safe: nothing is lost when the future is dropped.
    pub async fn next_event(&mut self) -> Result<StationEvent, HostapdError> {
        if let Some(event) = self.pending.pop_front() {
            return Ok(event);
        }
        let mut buf = vec![0u8; DATAGRAM_MAX];
        loop {
            let n = self.sock.recv(&mut buf).await?;
            if let Some(event) = parse_event(&buf[..n]) {
                return Ok(event);
            }
        }
    }

    /// `PING`, answer `PONG`.
    pub async fn ping(&mut self) -> Result<(), HostapdError> {
        self.expect("PING", "PONG").await
    }

    /// `RELOAD_WPA_PSK`: hostapd reads its `wpa_psk_file` again.
    pub async fn reload_wpa_psk(&mut self) -> Result<(), HostapdError> {
        self.expect("RELOAD_WPA_PSK", "OK").await
    }

    /// `DEAUTHENTICATE <mac>`: the station is sent away (it may rejoin if
    /// its key is still in the file).
    pub async fn deauthenticate(&mut self, mac: MacAddr) -> Result<(), HostapdError> {
        self.expect(&format!("DEAUTHENTICATE {mac}"), "OK").await
    }

    /// Every station hostapd has now, walking `STA-FIRST` / `STA-NEXT`.
    pub async fn stations(&mut self) -> Result<Vec<Station>, HostapdError> {
        let mut out: Vec<Station> = Vec::new();
        let mut answer = self.request("STA-FIRST").await?;
        while let Some(station) = parse_station(answer.as_bytes()) {
            // A hostapd that answers the same station again would loop.
            if out.len() >= STATIONS_MAX || out.last().is_some_and(|s| s.mac == station.mac) {
                break;
            }
            let mac = station.mac;
            out.push(station);
            answer = self.request(&format!("STA-NEXT {mac}")).await?;
        }
        Ok(out)
    }

    async fn expect(&mut self, cmd: &str, want: &str) -> Result<(), HostapdError> {
        let answer = self.request(cmd).await?;
        if answer_is(answer.as_bytes(), want) {
            return Ok(());
        }
        Err(HostapdError::Unexpected {
            command: cmd.split(' ').next().unwrap_or_default().to_string(),
            answer: answer.chars().take(64).collect(),
        })
    }

    fn keep_if_event(&mut self, datagram: &[u8]) {
        if self.pending.len() < PENDING_MAX {
            self.pending.extend(parse_event(datagram));
        }
    }
}

impl Drop for Hostapd {
    fn drop(&mut self) {
        // Best effort: hostapd also forgets clients it cannot reach.
        let _ = self.sock.try_send(b"DETACH");
        let _ = std::fs::remove_file(&self.local);
    }
}

/// A command for one link, answered through `reply`.
enum Command {
    Reload(oneshot::Sender<Result<(), HostapdError>>),
    Deauthenticate(MacAddr, oneshot::Sender<Result<(), HostapdError>>),
}

/// Sends commands to every hostapd that [`run`] is attached to.
#[derive(Clone)]
pub struct HostapdSet {
    links: Vec<mpsc::Sender<Command>>,
}

/// The receiving ends of a [`HostapdSet`]'s commands, for [`run`].
pub struct Commands {
    links: Vec<mpsc::Receiver<Command>>,
}

impl HostapdSet {
    /// A set for `count` control sockets (in [`run`]'s order).
    pub fn new(count: usize) -> (HostapdSet, Commands) {
        let (links, receivers) = (0..count).map(|_| mpsc::channel(8)).unzip();
        (HostapdSet { links }, Commands { links: receivers })
    }

    /// `RELOAD_WPA_PSK` to each hostapd; one result per control socket.
    pub async fn reload_all(&self) -> Vec<Result<(), HostapdError>> {
        self.each(|_| {
            let (tx, rx) = oneshot::channel();
            (Command::Reload(tx), rx)
        })
        .await
    }

    /// `DEAUTHENTICATE <mac>` to each hostapd; one result per control socket.
    pub async fn deauthenticate_all(&self, mac: MacAddr) -> Vec<Result<(), HostapdError>> {
        self.each(|_| {
            let (tx, rx) = oneshot::channel();
            (Command::Deauthenticate(mac, tx), rx)
        })
        .await
    }

    async fn each<F>(&self, make: F) -> Vec<Result<(), HostapdError>>
    where
        F: Fn(usize) -> (Command, oneshot::Receiver<Result<(), HostapdError>>),
    {
        let mut answers = Vec::with_capacity(self.links.len());
        for (i, link) in self.links.iter().enumerate() {
            let (cmd, rx) = make(i);
            answers.push(match link.send(cmd).await {
                Ok(()) => Some(rx),
                Err(_) => None,
            });
        }
        let mut out = Vec::with_capacity(answers.len());
        for rx in answers {
            out.push(match rx {
                Some(rx) => rx.await.unwrap_or(Err(HostapdError::NotRunning)),
                None => Err(HostapdError::NotRunning),
            });
        }
        out
    }
}

/// Stays attached to every control socket in `ctrl_paths` until
/// `shutdown`: station events go to `events` tagged with the socket's
/// index (after each attach, a `Connected` for every station hostapd
/// already has), commands come from the [`HostapdSet`] made with
/// `commands`. Returns when `shutdown` is cancelled or `events` is closed.
pub async fn run(
    ctrl_paths: Vec<PathBuf>,
    local_dir: PathBuf,
    events: mpsc::Sender<(usize, StationEvent)>,
    commands: Commands,
    shutdown: CancellationToken,
) {
    let mut receivers = commands.links.into_iter();
    let mut tasks = tokio::task::JoinSet::new();
    for (index, path) in ctrl_paths.into_iter().enumerate() {
        let link = Link {
            index,
            path,
            local_dir: local_dir.clone(),
            events: events.clone(),
            // Without a sender the link takes no commands.
            commands: receivers.next().unwrap_or_else(|| mpsc::channel(1).1),
        };
        tasks.spawn(link.run(shutdown.clone()));
    }
    drop(events);
    while tasks.join_next().await.is_some() {}
}

struct Link {
    index: usize,
    path: PathBuf,
    local_dir: PathBuf,
    events: mpsc::Sender<(usize, StationEvent)>,
    commands: mpsc::Receiver<Command>,
}

/// Why an attached link stopped.
enum Stop {
    Shutdown,
    Lost,
}

impl Link {
    async fn run(mut self, shutdown: CancellationToken) {
        let mut announced_away = false;
        loop {
            let hostapd = tokio::select! {
                _ = shutdown.cancelled() => return,
                connected = Hostapd::connect(&self.path, &self.local_dir) => connected,
            };
            match hostapd {
                Ok(hostapd) => {
                    tracing::info!(ctrl = %self.path.display(), "attached to hostapd");
                    announced_away = false;
                    if let Stop::Shutdown = self.attached(hostapd, &shutdown).await {
                        return;
                    }
                    tracing::warn!(ctrl = %self.path.display(), "hostapd gone; waiting for it");
                }
                Err(e) if !announced_away => {
                    tracing::warn!(ctrl = %self.path.display(), "hostapd not reachable: {e}");
                    announced_away = true;
                }
                Err(_) => {}
            }
            if !self.wait_away(&shutdown).await {
                return;
            }
        }
    }

    /// One retry interval while hostapd is away, refusing commands; false
    /// on shutdown.
    async fn wait_away(&mut self, shutdown: &CancellationToken) -> bool {
        let until = tokio::time::Instant::now() + RETRY_EVERY;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return false,
                _ = tokio::time::sleep_until(until) => return true,
                Some(cmd) = self.commands.recv() => {
                    let (Command::Reload(reply) | Command::Deauthenticate(_, reply)) = cmd;
                    let _ = reply.send(Err(HostapdError::NotAttached));
                }
            }
        }
    }

    async fn attached(&mut self, mut hostapd: Hostapd, shutdown: &CancellationToken) -> Stop {
        let identity = path_identity(&self.path);
        match hostapd.stations().await {
            Ok(stations) => {
                for Station { mac, keyid } in stations {
                    let event = StationEvent::Connected { mac, keyid };
                    if self.events.send((self.index, event)).await.is_err() {
                        return Stop::Shutdown;
                    }
                }
            }
            Err(e) => {
                tracing::warn!(ctrl = %self.path.display(), "listing stations: {e}");
                return Stop::Lost;
            }
        }
        let mut check = tokio::time::interval(CHECK_EVERY);
        let mut last_ping = Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Stop::Shutdown,
                event = hostapd.next_event() => match event {
                    Ok(event) => {
                        if self.events.send((self.index, event)).await.is_err() {
                            return Stop::Shutdown;
                        }
                    }
                    Err(e) => {
                        tracing::debug!(ctrl = %self.path.display(), "receiving: {e}");
                        return Stop::Lost;
                    }
                },
                Some(cmd) = self.commands.recv() => {
                    let (result, reply) = match cmd {
                        Command::Reload(reply) => (hostapd.reload_wpa_psk().await, reply),
                        Command::Deauthenticate(mac, reply) => {
                            (hostapd.deauthenticate(mac).await, reply)
                        }
                    };
                    let _ = reply.send(result);
                }
                _ = check.tick() => {
                    if path_identity(&self.path) != identity {
                        return Stop::Lost;
                    }
                    if last_ping.elapsed() >= PING_EVERY {
                        last_ping = Instant::now();
                        if let Err(e) = hostapd.ping().await {
                            tracing::debug!(ctrl = %self.path.display(), "PING: {e}");
                            return Stop::Lost;
                        }
                    }
                }
            }
        }
    }
}

/// Which socket is at `path` now (a restarted hostapd binds a new one).
/// The inode alone is not enough: the new socket often gets the number
/// the old one just freed, but not its change time.
fn path_identity(path: &Path) -> Option<(u64, u64, i64, i64)> {
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino(), m.ctime(), m.ctime_nsec()))
}
