//! The dashboard's certificate: `dashboard.cert_file`/`key_file` when
//! configured, else a self-signed one made at first start and kept in the
//! state directory, so browsers see the same certificate across restarts.

use std::path::{Path, PathBuf};

use tokio_rustls::TlsAcceptor;

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
    let made = rcgen::generate_simple_self_signed(vec![
        "storegate".to_string(),
        "localhost".to_string(),
        "127.0.0.1".to_string(),
    ])
    .map_err(|e| format!("cannot make the dashboard certificate: {e}"))?;
    std::fs::create_dir_all(state_dir)
        .map_err(|e| format!("cannot create {}: {e}", state_dir.display()))?;
    write_private(&key, made.signing_key.serialize_pem().as_bytes())?;
    std::fs::write(&cert, made.cert.pem())
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
}
