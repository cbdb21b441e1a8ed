//! The daemon's end of the control socket: reads a request, calls the
//! hub ([`App`]), writes the answer.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{MAX_REQUEST_BYTES, Reply, Request, client_json};
use crate::app::{App, EraseError};
use crate::mac::MacAddr;

const MAX_CONNECTIONS: usize = 16;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Binds the socket, replacing a stale socket left by a crash (but not a
/// socket another daemon still answers on, nor anything that is not a
/// socket).
pub async fn bind(path: &Path) -> std::io::Result<UnixListener> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        // Only a socket left by a crash is ours to replace: a mistyped
        // `control.socket` must never delete someone's file.
        use std::os::unix::fs::FileTypeExt;
        if !meta.file_type().is_socket() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!(
                    "{} exists and is not a socket; not replacing it",
                    path.display()
                ),
            ));
        }
        if UnixStream::connect(path).await.is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("{} is in use by a running storegate", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    // Created 0600 from the start (the umask, for the moment of the bind),
    // so no one else can connect between the bind and a chmod. The umask
    // is process-wide: anything another thread creates meanwhile is only
    // more private than it would be.
    use nix::sys::stat::{Mode, umask};
    let old = umask(Mode::from_bits_truncate(0o177));
    let bound = UnixListener::bind(path);
    umask(old);
    let listener = bound?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

pub async fn serve(
    listener: UnixListener,
    path: PathBuf,
    app: Arc<App>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            continue; // dropping the stream closes it
        };
        let app = app.clone();
        tracker.spawn(async move {
            if tokio::time::timeout(REQUEST_TIMEOUT, answer(stream, app))
                .await
                .is_err()
            {
                tracing::debug!("control request timed out");
            }
            drop(permit);
        });
    }
    let _ = std::fs::remove_file(&path);
}

async fn answer(stream: UnixStream, app: Arc<App>) {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read.take(MAX_REQUEST_BYTES as u64 + 1));
    let reply = match reader.read_line(&mut line).await {
        Ok(_) if line.len() > MAX_REQUEST_BYTES => {
            Reply::err(format!("request longer than {MAX_REQUEST_BYTES} bytes"))
        }
        Ok(_) => match serde_json::from_str::<Request>(line.trim()) {
            Ok(req) => {
                // Gate calls may touch netlink and fsync: keep them off the
                // async workers.
                tokio::task::spawn_blocking(move || execute(&app, req))
                    .await
                    .unwrap_or_else(|e| Reply::err(format!("internal error: {e}")))
            }
            Err(e) => Reply::err(format!("unreadable request: {e}")),
        },
        Err(e) => Reply::err(format!("cannot read request: {e}")),
    };
    let mut out = serde_json::to_vec(&reply).unwrap_or_default();
    out.push(b'\n');
    let _ = write.write_all(&out).await;
}

/// Carries out one request.
pub fn execute(app: &App, req: Request) -> Reply {
    let parse_mac = |s: &str| -> Result<MacAddr, Reply> {
        let mac: MacAddr = s
            .parse()
            .map_err(|e: crate::mac::MacParseError| Reply::err(e.to_string()))?;
        if !mac.is_unicast_client() {
            return Err(Reply::err(format!(
                "{mac} is a group or zero address, not a client"
            )));
        }
        Ok(mac)
    };
    match req {
        Request::Status => Reply::ok(app.status()),
        Request::DeadLetters { retry: true } => match app.outbox.retry_dead_letters() {
            Ok(n) => Reply::ok(serde_json::json!({"requeued": n})),
            Err(e) => Reply::err(format!("cannot requeue: {e}")),
        },
        Request::DeadLetters { retry: false } => match app.outbox.dead_letters(10_000) {
            Ok(events) => Reply::ok(serde_json::to_value(events).unwrap_or_default()),
            Err(e) => Reply::err(format!("cannot read the dead letters: {e}")),
        },
        Request::Events { limit } => match app.outbox.recent(limit.unwrap_or(100).min(10_000)) {
            Ok(events) => Reply::ok(serde_json::to_value(events).unwrap_or_default()),
            Err(e) => Reply::err(format!("cannot read the outbox: {e}")),
        },
        Request::Clients => Reply::ok(app.gate.clients().iter().map(client_json).collect()),
        Request::Auth { mac } => match parse_mac(&mac) {
            Ok(mac) => match app.authorize(mac) {
                Ok(c) => Reply::ok(client_json(&c)),
                Err(e) => Reply::err(format!("could not authorise {mac}: {e}")),
            },
            Err(r) => r,
        },
        Request::Deauth { mac } => match parse_mac(&mac) {
            Ok(mac) => match app.sign_out(mac) {
                Ok(was) => Reply::ok(serde_json::json!({"mac": mac, "was_authorized": was})),
                Err(e) => Reply::err(format!("could not deauthorise {mac}: {e}")),
            },
            Err(r) => r,
        },
        Request::Devices => {
            let m = app.presence.machine();
            let mut devices: Vec<_> = m.devices().collect();
            devices.sort_by_key(|d| (!d.present, std::cmp::Reverse(d.last_seen)));
            Reply::ok(devices.iter().map(|d| d.to_ctl_json()).collect())
        }
        Request::Visits => {
            let m = app.presence.machine();
            Reply::ok(m.visits().map(|v| v.to_ctl_json()).collect())
        }
        Request::Footfall => Reply::ok(
            serde_json::to_value(app.presence.machine().footfall(app.clock.now()))
                .unwrap_or_default(),
        ),
        Request::Members => match &app.members {
            None => Reply::err(EraseError::MembersOff.to_string()),
            Some(m) => Reply::ok(serde_json::to_value(m.list()).unwrap_or_default()),
        },
        Request::MemberErase { member_id } => match app.erase_member(&member_id) {
            Ok(erased) => Reply::ok(serde_json::to_value(erased).unwrap_or_default()),
            Err(e) => Reply::err(e.to_string()),
        },
        Request::Observe { mac, ip, hostname } => {
            let mac = match parse_mac(&mac) {
                Ok(mac) => mac,
                Err(r) => return r,
            };
            let Ok(ip) = ip.as_deref().map(str::parse).transpose() else {
                return Reply::err("ip: not an IPv4 address");
            };
            match app.observe(mac, ip, hostname) {
                Ok(device) => Reply::ok(device),
                Err(e) => Reply::err(e.to_string()),
            }
        }
        Request::DashboardPassword { password } => match app.set_dashboard_password(&password) {
            Ok(()) => Reply::ok(serde_json::json!({"changed": true, "sessions_ended": true})),
            Err(e) => Reply::err(e.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_socket_is_private_and_a_live_one_is_not_stolen() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run").join("control.sock");
        let listener = bind(&path).await.unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "socket mode {mode:o}");
        let e = bind(&path).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse, "{e}");
        drop(listener);
        // A stale socket file (no daemon behind it) is replaced.
        bind(&path).await.unwrap();
    }

    #[tokio::test]
    async fn a_file_that_is_not_a_socket_is_never_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.sock");
        std::fs::write(&path, "the operator's notes").unwrap();
        let e = bind(&path).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists, "{e}");
        assert!(e.to_string().contains("not a socket"), "{e}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "the operator's notes"
        );
        let link = dir.path().join("link.sock");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(bind(&link).await.is_err());
        assert!(path.exists());
    }
}
