//! Wiring: the runtime and logs, NATS, the gateway's listener (with the
//! limits of `storegate::http`, as for the box's own servers) and the
//! messenger, all under one shutdown token. SIGTERM or SIGINT: stop
//! accepting, let requests in flight finish (5 s at most), exit 0.
//!
//! Logs (stderr) are `key=value` lines; they name stores, webhook ids,
//! calling codes and member ids, never a phone number or a code.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::HqConfig;
use crate::metrics::Metrics;
use crate::registry::Directory;
use crate::targeting::Messenger;
use crate::{Gateway, jet, provider, routes};
use storegate::http::{Acceptor, Conn, conn::GRACE};

/// Longest a connection is served (then closed after its request).
const CONNECTION_LIFETIME: Duration = Duration::from_secs(600);
/// A keep-alive connection idle this long is closed.
const IDLE: Duration = Duration::from_secs(120);

/// Runs the service until SIGTERM/SIGINT. Exit 1 if it cannot start.
pub fn main(config: HqConfig) -> ExitCode {
    storegate::runtime::init_logging("info");
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("storegate-hq: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("storegate-hq: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(config: HqConfig) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: stopping"),
            _ = int.recv() => tracing::info!("SIGINT: stopping"),
        }
        stop.cancel();
    });
    let (listener, _tracker, tasks) = start(config, shutdown.clone()).await?;
    if let Some(local) = listener {
        tracing::info!(%local, "serving");
    }
    shutdown.cancelled().await;
    for t in tasks {
        let _ = tokio::time::timeout(GRACE + Duration::from_secs(1), t).await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Starts the roles `config` asks for; returns the bound address (when
/// serving) and the tasks to await after `shutdown`. Used by `main` and
/// by tests and benchmarks that run a gateway in process.
pub async fn start(
    config: HqConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<(
    Option<SocketAddr>,
    TaskTracker,
    Vec<tokio::task::JoinHandle<()>>,
)> {
    let jet = jet::connect(&config).await?;
    let metrics = Arc::new(Metrics::default());
    let provider = provider::from_config(&config.provider).map_err(anyhow::Error::msg)?;
    let stores = Arc::new(Directory::new(
        config.registry.clone(),
        Some(jet.stores.clone()),
    ));
    let tracker = TaskTracker::new();
    let mut tasks = Vec::new();
    let mut local = None;
    if config.role.gateway() {
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        // A fixed line (not a log record), so scripts can find the port
        // when listening on port 0.
        eprintln!("storegate-hq: listening on http://{addr}");
        local = Some(addr);
        let gw = Arc::new(Gateway {
            jet: jet.clone(),
            stores: stores.clone(),
            metrics: metrics.clone(),
            provider: provider.clone(),
            quotas: config.quotas.clone(),
            tolerance_secs: config.tolerance_secs,
            sync_requires_signature: config.sync_requires_signature,
            inflight: tokio::sync::Semaphore::new(crate::ingest::INFLIGHT),
        });
        let (sd, tr) = (shutdown.clone(), tracker.clone());
        let max = config.max_connections;
        tasks.push(tokio::spawn(async move {
            Acceptor::new("storegate-hq", max)
                .run(&listener, &sd, &tr, gw, connection)
                .await;
            tr.close();
            let _ = tokio::time::timeout(GRACE, tr.wait()).await;
        }));
    }
    if config.role.messenger() {
        let messenger = Messenger::new(
            jet,
            config.jetstream.stream.clone(),
            config.targeting.consumer.clone(),
            config.targeting.refresh,
            stores,
            provider,
            metrics,
        );
        let sd = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = messenger.run(sd.clone()).await {
                tracing::error!("messenger stopped: {e:#}");
                sd.cancel();
            }
        }));
        eprintln!("storegate-hq: messenger running");
    }
    Ok((local, tracker, tasks))
}

async fn connection(
    gw: Arc<Gateway>,
    stream: TcpStream,
    peer: SocketAddr,
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let conn = Conn {
        what: "storegate-hq",
        peer,
        shutdown: &shutdown,
        grace: GRACE,
        idle: Some(IDLE),
    };
    conn.serve(stream, tokio::time::sleep(CONNECTION_LIFETIME), |req| {
        let gw = gw.clone();
        async move { routes::route(&gw, req, jiff::Timestamp::now().as_second()).await }
    })
    .await;
}
