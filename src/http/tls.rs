//! TLS for the servers that speak HTTPS (the dashboard, the HQ receiver
//! with `--tls-cert`): the server configuration from PEM files, and a
//! handshake bounded in time and cut short by shutdown. Reading PEM
//! certificates is shared with the uplink's HTTPS client.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

/// How long a client may take to finish the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a connection ended before its first request.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("TLS handshake failed: {0}")]
    Failed(std::io::Error),
    #[error("TLS handshake not finished within {HANDSHAKE_TIMEOUT:?}")]
    TimedOut,
    #[error("shutting down")]
    Shutdown,
}

/// The TLS handshake on `stream`, within [`HANDSHAKE_TIMEOUT`], given up
/// at `shutdown`.
pub async fn handshake<IO>(
    acceptor: &TlsAcceptor,
    stream: IO,
    shutdown: &CancellationToken,
) -> Result<TlsStream<IO>, HandshakeError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    tokio::select! {
        _ = shutdown.cancelled() => Err(HandshakeError::Shutdown),
        h = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)) => match h {
            Ok(Ok(tls)) => Ok(tls),
            Ok(Err(e)) => Err(HandshakeError::Failed(e)),
            Err(_) => Err(HandshakeError::TimedOut),
        },
    }
}

/// Builds the TLS acceptor from PEM files: `cert` holds the certificate
/// chain (leaf first), `key` the private key (PKCS#8, PKCS#1 or SEC1).
/// With `client_ca` (one or more CA certificates), every client must
/// present a certificate that chains to one of them, or the handshake
/// fails. Errors are one line naming the file, after the receiver's flag
/// (`--tls-cert`, `--tls-key`, `--client-ca`).
pub fn acceptor(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Result<TlsAcceptor, String> {
    use rustls_pki_types::PrivateKeyDer;
    use rustls_pki_types::pem::PemObject;
    let chain = read_certs("--tls-cert", cert)?;
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("--tls-key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let flag = |e: &dyn std::fmt::Display| format!("--client-ca {}: {e}", path.display());
            let cas = read_certs("--client-ca", path)?;
            let mut roots = rustls::RootCertStore::empty();
            for ca in cas {
                roots.add(ca).map_err(|e| flag(&e))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| flag(&e))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain, private).map_err(|e| {
        format!(
            "--tls-cert {} with --tls-key {}: {e}",
            cert.display(),
            key.display()
        )
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The PEM certificates in `path`, at least one; errors name `key` (a
/// flag or a config key) and the file. For the servers' chains and CAs,
/// and the uplink's (`hq.ca_file`, `hq.client_cert`).
pub fn read_certs(key: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    use rustls_pki_types::pem::PemObject;
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{key} {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{key} {}: no PEM certificate in the file",
            path.display()
        ));
    }
    Ok(certs)
}
