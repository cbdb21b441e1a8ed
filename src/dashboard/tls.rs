//! The dashboard's certificate: `dashboard.cert_file`/`key_file` when
//! configured, else a self-signed one made at first start and kept in the
//! state directory, so browsers see the same certificate across restarts.

use std::path::{Path, PathBuf};

use tokio_rustls::TlsAcceptor;

mod selfsigned;

/// File names in the state directory.
pub const CERT_NAME: &str = "dashboard-cert.pem";
pub const KEY_NAME: &str = "dashboard-key.pem";

/// The acceptor for the configured files, or for the generated pair in
/// `state_dir`. Errors are one line naming the file.
pub fn acceptor(
    configured: Option<&(PathBuf, PathBuf)>,
    state_dir: &Path,
) -> Result<TlsAcceptor, String> {
    let (cert, key) = match configured {
        Some((c, k)) => (c.clone(), k.clone()),
        None => self_signed(state_dir)?,
    };
    crate::http::tls::acceptor(&cert, &key, None).map_err(|e| format!("dashboard certificate: {e}"))
}

/// The generated pair's paths, made now if missing (the key mode 0600).
pub fn self_signed(state_dir: &Path) -> Result<(PathBuf, PathBuf), String> {
    let (cert, key) = (state_dir.join(CERT_NAME), state_dir.join(KEY_NAME));
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    let made = selfsigned::generate()
        .map_err(|e| format!("cannot make the dashboard certificate: {e}"))?;
    std::fs::create_dir_all(state_dir)
        .map_err(|e| format!("cannot create {}: {e}", state_dir.display()))?;
    write_private(&key, made.key_pem.as_bytes())?;
    std::fs::write(&cert, &made.cert_pem)
        .map_err(|e| format!("cannot write {}: {e}", cert.display()))?;
    tracing::info!(cert = %cert.display(), "made a self-signed dashboard certificate");
    Ok((cert, key))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_certificate_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, _) = self_signed(dir.path()).unwrap();
        let first = std::fs::read(&cert).unwrap();
        assert!(acceptor(None, dir.path()).is_ok());
        self_signed(dir.path()).unwrap();
        assert_eq!(std::fs::read(&cert).unwrap(), first);
    }

    #[test]
    fn the_generated_key_is_private_and_pkcs8() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed(dir.path()).unwrap();
        assert_eq!(cert, dir.path().join(CERT_NAME));
        assert_eq!(key, dir.path().join(KEY_NAME));
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let pem = std::fs::read_to_string(&key).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{pem}");
    }

    /// A handshake with the dashboard's acceptor for the pair in `dir`,
    /// from a client trusting exactly the certificate in `trusted` as its
    /// root, for `name`; then one echo over it.
    async fn handshake_as(
        dir: &Path,
        trusted: &Path,
        name: rustls_pki_types::ServerName<'static>,
    ) -> Result<(), String> {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let server = acceptor(None, dir)?;
        let cert = CertificateDer::from_pem_file(trusted).map_err(|e| e.to_string())?;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).map_err(|e| e.to_string())?;
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let client = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
        let (a, b) = tokio::io::duplex(64 * 1024);
        let serve = async move {
            let mut tls = server.accept(b).await.map_err(|e| format!("server: {e}"))?;
            let mut buf = [0u8; 5];
            tls.read_exact(&mut buf)
                .await
                .map_err(|e| format!("server read: {e}"))?;
            tls.write_all(&buf)
                .await
                .map_err(|e| format!("server write: {e}"))?;
            tls.flush().await.map_err(|e| format!("server flush: {e}"))
        };
        let call = async move {
            let mut tls = client
                .connect(name, a)
                .await
                .map_err(|e| format!("client: {e}"))?;
            tls.write_all(b"hello")
                .await
                .map_err(|e| format!("client write: {e}"))?;
            let mut buf = [0u8; 5];
            tls.read_exact(&mut buf)
                .await
                .map_err(|e| format!("client read: {e}"))?;
            (&buf == b"hello")
                .then_some(())
                .ok_or("echo differs".to_string())
        };
        let (served, called) = tokio::join!(serve, call);
        called?;
        served
    }

    #[tokio::test]
    async fn the_generated_certificate_verifies_for_localhost_and_127_0_0_1() {
        use rustls_pki_types::ServerName;
        let dir = tempfile::tempdir().unwrap();
        let (cert, _) = self_signed(dir.path()).unwrap();
        let name = |s: &str| ServerName::try_from(s.to_string()).unwrap();
        assert!(matches!(name("127.0.0.1"), ServerName::IpAddress(_)));
        assert!(matches!(name("localhost"), ServerName::DnsName(_)));
        for ok in ["localhost", "storegate", "127.0.0.1"] {
            if let Err(e) = handshake_as(dir.path(), &cert, name(ok)).await {
                panic!("{ok}: {e}");
            }
        }
        // Names the certificate does not carry are refused.
        for wrong in ["storegate.example", "127.0.0.2", "::1"] {
            let err = handshake_as(dir.path(), &cert, name(wrong))
                .await
                .unwrap_err();
            assert!(
                err.contains("client: invalid peer certificate"),
                "{wrong}: {err}"
            );
        }
        // A client trusting another generated certificate refuses this one.
        let other = tempfile::tempdir().unwrap();
        let (other_cert, _) = self_signed(other.path()).unwrap();
        let err = handshake_as(dir.path(), &other_cert, name("localhost"))
            .await
            .unwrap_err();
        assert!(err.contains("client: invalid peer certificate"), "{err}");
    }

    #[test]
    fn openssl_shows_the_generated_names_and_validity() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, _) = self_signed(dir.path()).unwrap();
        let pem = std::fs::read_to_string(cert).unwrap();
        let Some(text) = selfsigned::tests::openssl_text(&pem) else {
            return;
        };
        assert!(
            text.contains("DNS:storegate, DNS:localhost, IP Address:127.0.0.1"),
            "{text}"
        );
        let line = |label: &str| {
            let value = text
                .lines()
                .find_map(|l| l.trim().strip_prefix(label))
                .unwrap_or_else(|| panic!("no {label:?} in:\n{text}"));
            // "Dec  2 00:20:32 2026 GMT": one space between fields.
            let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
            jiff::civil::DateTime::strptime("%b %d %H:%M:%S %Y GMT", &value)
                .unwrap_or_else(|e| panic!("{value:?}: {e}"))
        };
        let (before, after) = (line("Not Before:"), line("Not After :"));
        // From a day before it was made to 20 years after.
        let made = before + jiff::Span::new().days(1);
        let lag = jiff::Timestamp::now()
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .datetime()
            .duration_since(made);
        assert!(lag >= jiff::SignedDuration::ZERO, "{before}");
        assert!(lag < jiff::SignedDuration::from_secs(60), "{before}");
        assert_eq!(after, made + jiff::Span::new().years(20), "{after}");
    }
}
