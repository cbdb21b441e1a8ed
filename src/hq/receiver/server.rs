//! The listener half of `hq-receiver`: accepting plain or TLS
//! connections with their limits (`crate::http`, as for the box's own
//! servers), and the command line entry point.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{DEDUPE_CAPACITY, MAX_CONNECTIONS, Receiver, SECRET_ENV, route};
use crate::http::tls::{self, HandshakeError};
use crate::http::{Acceptor, Conn, conn::GRACE};
use crate::uplink::signing::{self, SigningKey};

/// Longest a connection is served (then closed after its current
/// request).
const CONNECTION_LIFETIME: Duration = Duration::from_secs(600);

/// Serves plain HTTP until `shutdown` is cancelled; connections are
/// tracked by `tracker`.
pub async fn serve(
    listener: TcpListener,
    receiver: Arc<Receiver>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    serve_with(listener, None, receiver, shutdown, tracker).await
}

/// Serves HTTP, or HTTPS when `tls` is given, until `shutdown` is
/// cancelled; connections are tracked by `tracker`.
pub async fn serve_with(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    receiver: Arc<Receiver>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let state = (tls, receiver);
    Acceptor::new("hq-receiver", MAX_CONNECTIONS)
        .run(&listener, &shutdown, &tracker, state, connection)
        .await;
}

/// One connection: the TLS handshake when serving HTTPS, then HTTP.
async fn connection(
    (tls, receiver): (Option<tokio_rustls::TlsAcceptor>, Arc<Receiver>),
    stream: TcpStream,
    peer: SocketAddr,
    shutdown: CancellationToken,
) {
    let Some(acceptor) = tls else {
        return serve_connection(stream, peer, receiver, &shutdown).await;
    };
    match tls::handshake(&acceptor, stream, &shutdown).await {
        Ok(stream) => serve_connection(stream, peer, receiver, &shutdown).await,
        Err(HandshakeError::Shutdown) => {}
        Err(e) => tracing::info!(%peer, "{e}"),
    }
}

async fn serve_connection<S>(
    stream: S,
    peer: SocketAddr,
    receiver: Arc<Receiver>,
    shutdown: &CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn = Conn {
        what: "hq-receiver",
        peer,
        shutdown,
        grace: GRACE,
        idle: None,
    };
    let lifetime = tokio::time::sleep(CONNECTION_LIFETIME);
    conn.serve(stream, lifetime, |req| {
        let receiver = receiver.clone();
        async move { route(&receiver, req, now_secs()).await }
    })
    .await;
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `storegate hq-receiver`'s command line (read by `cli`).
#[derive(Debug)]
pub struct ReceiverArgs {
    pub listen: Option<String>,
    pub secret: Option<String>,
    /// Serve HTTPS: the certificate chain (PEM, leaf first). Needs
    /// `tls_key`.
    pub tls_cert: Option<std::path::PathBuf>,
    /// The private key of `tls_cert` (PEM).
    pub tls_key: Option<std::path::PathBuf>,
    /// Require client certificates issued by this CA (PEM; mutual
    /// TLS). Needs `tls_cert` and `tls_key`.
    pub client_ca: Option<std::path::PathBuf>,
    /// The document to serve at GET …/sync (JSON; read on every
    /// request). Without it: an empty document.
    pub sync_file: Option<std::path::PathBuf>,
}

/// `storegate hq-receiver --listen ADDR --secret SECRET [--tls-cert PEM
/// --tls-key PEM [--client-ca PEM]] [--sync-file JSON]`. The secret may come from
/// `$STOREGATE_HQ_SECRET` instead. With both TLS files it serves HTTPS,
/// else plain HTTP; with `--client-ca` as well it requires client
/// certificates issued by that CA (mutual TLS). Exit 0 after
/// SIGTERM/SIGINT, 2 on bad arguments (including one TLS file without the
/// other, `--client-ca` without them, or files that cannot be read or
/// used), 1 if the address cannot be bound.
pub fn cli_main(args: ReceiverArgs) -> ExitCode {
    let ReceiverArgs {
        listen,
        secret,
        tls_cert,
        tls_key,
        client_ca,
        sync_file,
    } = args;
    let usage = |msg: &str| {
        eprintln!("storegate hq-receiver: {msg}");
        eprintln!(
            "usage: storegate hq-receiver --listen ADDR --secret whsec_... [--tls-cert CHAIN.pem --tls-key KEY.pem [--client-ca CA.pem]] [--sync-file DOC.json]"
        );
        ExitCode::from(2)
    };
    let Some(listen) = listen else {
        return usage("--listen ADDR is required (for example --listen 127.0.0.1:8080)");
    };
    let listen: SocketAddr = match listen.parse() {
        Ok(a) => a,
        Err(_) => {
            return usage(&format!(
                "--listen {listen:?} is not an IP address and port (for example 127.0.0.1:8080)"
            ));
        }
    };
    let secret = match secret {
        Some(s) => s,
        None => match std::env::var(SECRET_ENV) {
            Ok(s) if !s.trim().is_empty() => s,
            _ => {
                return usage(&format!(
                    "--secret whsec_... is required (or set ${SECRET_ENV}); it is the [hq] secret of the boxes"
                ));
            }
        },
    };
    let key = match SigningKey::from_secret(&secret) {
        Ok(k) => k,
        Err(e) => return usage(&format!("bad --secret: {e}")),
    };
    let tls = match (tls_cert, tls_key) {
        (None, None) if client_ca.is_some() => {
            return usage(
                "--client-ca needs --tls-cert and --tls-key (client certificates exist only over HTTPS)",
            );
        }
        (None, None) => None,
        (Some(_), None) => {
            return usage(
                "--tls-cert needs --tls-key (the private key of the certificate); give both for HTTPS, or neither for plain HTTP",
            );
        }
        (None, Some(_)) => {
            return usage(
                "--tls-key needs --tls-cert (the certificate chain, leaf first); give both for HTTPS, or neither for plain HTTP",
            );
        }
        (Some(cert), Some(key)) => match tls::acceptor(&cert, &key, client_ca.as_deref()) {
            Ok(a) => Some(a),
            Err(e) => return usage(&e),
        },
    };
    let runtime = match crate::runtime::start("storegate hq-receiver", "info") {
        Ok(r) => r,
        Err(code) => return code,
    };
    let mut receiver = Receiver::new(
        key,
        signing::DEFAULT_TOLERANCE_SECS,
        DEDUPE_CAPACITY,
        Box::new(std::io::stdout()),
    );
    if let Some(path) = sync_file {
        receiver = receiver.with_sync_file(path);
    }
    let receiver = Arc::new(receiver);
    match runtime.block_on(run(listen, tls, receiver)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("storegate hq-receiver: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(
    listen: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    receiver: Arc<Receiver>,
) -> anyhow::Result<()> {
    use anyhow::Context;
    use tokio::signal::unix::{SignalKind, signal};
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let local = listener.local_addr().context("reading the bound address")?;
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    // A fixed line (not a tracing record), so scripts can find the port
    // when listening on port 0.
    let scheme = if tls.is_some() { "https" } else { "http" };
    eprintln!("storegate hq-receiver: listening on {scheme}://{local}");
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let server = tokio::spawn(serve_with(
        listener,
        tls,
        receiver.clone(),
        shutdown.clone(),
        tracker.clone(),
    ));
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: stopping"),
        _ = int.recv() => tracing::info!("SIGINT: stopping"),
    }
    shutdown.cancel();
    let _ = server.await;
    tracker.close();
    let _ = tokio::time::timeout(GRACE + Duration::from_secs(1), tracker.wait()).await;
    tracing::info!("stopped: {}", receiver.summary());
    Ok(())
}
