//! Starting the dashboard: the first password, the certificate, the
//! listener.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Dashboard;
use crate::config::Config;

/// The manager's dashboard: the first password, the certificate, the
/// listener. A bad password file or certificate stops the daemon; a port
/// that cannot be bound only turns the dashboard off (logged), since the
/// portal must not go down for it.
pub async fn start(
    config: &Config,
    dashboard: Arc<Dashboard>,
    shutdown: &CancellationToken,
    tracker: &TaskTracker,
) -> anyhow::Result<()> {
    let cfg = &config.dashboard;
    if let Some(made) = crate::dashboard::auth::ensure_password(
        dashboard.app.store.as_ref(),
        cfg.password_file.as_deref(),
    )? {
        // Not in the log: that ends up in syslog or journald.
        match crate::dashboard::auth::write_generated_password(&config.storage.path, &made) {
            Ok(path) => tracing::warn!(
                path = %path.display(),
                "dashboard password made up and written to this file (owner only); \
                 change it with `storegate ctl dashboard-password`"
            ),
            // The password is stored already: say how to set a known one.
            Err(e) => tracing::error!(
                "dashboard password made up but not written to {}: {e}; \
                 set one with `storegate ctl dashboard-password`",
                config
                    .storage
                    .path
                    .join(crate::dashboard::auth::GENERATED_PASSWORD_FILE)
                    .display()
            ),
        }
    }
    let tls = crate::dashboard::tls::acceptor(cfg.tls.as_ref(), &config.storage.path)
        .map_err(|e| anyhow::anyhow!(e))?;
    match crate::dashboard::server::bind(cfg.listen).await {
        Ok(listener) => {
            tracing::info!(listen = %cfg.listen, "dashboard listening (https)");
            tracker.spawn(crate::dashboard::server::serve(
                listener,
                tls,
                dashboard,
                cfg.max_connections,
                shutdown.clone(),
                tracker.clone(),
            ));
        }
        Err(e) => tracing::error!("dashboard is off: dashboard.listen {}: {e}", cfg.listen),
    }
    Ok(())
}
