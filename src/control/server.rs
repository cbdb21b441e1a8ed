//! The daemon's end of the control socket.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{MAX_REQUEST_BYTES, Reply, Request, client_json};
use crate::access::{AuthMethod, EndReason, Gate};
use crate::daemon::PresenceShell;
use crate::members::{MemberError, Members};
use crate::net::MacAddr;
use crate::time::Timestamp;
use crate::uplink::Outbox;
use crate::uplink::event::MEMBER_ERASED;

const MAX_CONNECTIONS: usize = 16;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Answers `status`; built by the daemon, which knows the whole picture.
pub type StatusFn = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

pub struct Control {
    pub gate: Arc<Gate>,
    pub outbox: Arc<Outbox>,
    pub presence: Arc<PresenceShell>,
    /// `None`: `members` and `member-erase` are not available.
    pub members: Option<Arc<Members>>,
    pub status: StatusFn,
    /// `None`: `dashboard-password` is not available.
    pub dashboard: Option<Arc<crate::dashboard::Dashboard>>,
}

/// Binds the socket, replacing a stale file left by a crash (but not a
/// socket another daemon still answers on).
pub async fn bind(path: &Path) -> std::io::Result<UnixListener> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    if path.exists() {
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
    control: Arc<Control>,
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
        let control = control.clone();
        tracker.spawn(async move {
            if tokio::time::timeout(REQUEST_TIMEOUT, answer(stream, control))
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

async fn answer(stream: UnixStream, control: Arc<Control>) {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read.take(MAX_REQUEST_BYTES as u64 + 1));
    let reply = match reader.read_line(&mut line).await {
        Ok(_) if line.len() > MAX_REQUEST_BYTES => {
            Reply::err(format!("request longer than {MAX_REQUEST_BYTES} bytes"))
        }
        Ok(_) => match serde_json::from_str::<Request>(line.trim()) {
            Ok(req) => {
                let control = control.clone();
                // Gate calls may touch netlink and fsync: keep them off the
                // async workers.
                tokio::task::spawn_blocking(move || execute(&control, req))
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
pub fn execute(control: &Control, req: Request) -> Reply {
    let gate = &control.gate;
    let parse_mac = |s: &str| -> Result<MacAddr, Reply> {
        let mac: MacAddr = s
            .parse()
            .map_err(|e: crate::net::mac::MacParseError| Reply::err(e.to_string()))?;
        if !mac.is_unicast_client() {
            return Err(Reply::err(format!(
                "{mac} is a group or zero address, not a client"
            )));
        }
        Ok(mac)
    };
    match req {
        Request::Status => Reply::ok((control.status)()),
        Request::DeadLetters { retry: true } => match control.outbox.retry_dead_letters() {
            Ok(n) => Reply::ok(serde_json::json!({"requeued": n})),
            Err(e) => Reply::err(format!("cannot requeue: {e}")),
        },
        Request::DeadLetters { retry: false } => match control.outbox.dead_letters(10_000) {
            Ok(events) => Reply::ok(serde_json::to_value(events).unwrap_or_default()),
            Err(e) => Reply::err(format!("cannot read the dead letters: {e}")),
        },
        Request::Events { limit } => {
            match control.outbox.recent(limit.unwrap_or(100).min(10_000)) {
                Ok(events) => Reply::ok(serde_json::to_value(events).unwrap_or_default()),
                Err(e) => Reply::err(format!("cannot read the outbox: {e}")),
            }
        }
        Request::Clients => Reply::ok(gate.clients().iter().map(client_json).collect()),
        Request::Auth { mac } => match parse_mac(&mac) {
            Ok(mac) => {
                let ip = gate.client(mac).and_then(|c| c.ip);
                match gate.authorize(mac, ip, AuthMethod::Operator, None) {
                    Ok(c) => Reply::ok(client_json(&c)),
                    Err(e) => Reply::err(format!("could not authorise {mac}: {e}")),
                }
            }
            Err(r) => r,
        },
        Request::Deauth { mac } => match parse_mac(&mac) {
            Ok(mac) => match gate.end(mac, EndReason::Operator) {
                Ok(was) => Reply::ok(serde_json::json!({"mac": mac, "was_authorized": was})),
                Err(e) => Reply::err(format!("could not deauthorise {mac}: {e}")),
            },
            Err(r) => r,
        },
        Request::Devices => {
            let m = control.presence.machine();
            let mut devices: Vec<_> = m.devices().collect();
            devices.sort_by_key(|d| (!d.present, std::cmp::Reverse(d.last_seen)));
            Reply::ok(devices.iter().map(|d| d.to_ctl_json()).collect())
        }
        Request::Visits => {
            let m = control.presence.machine();
            Reply::ok(m.visits().map(|v| v.to_ctl_json()).collect())
        }
        Request::Footfall => Reply::ok(
            serde_json::to_value(control.presence.machine().footfall(Timestamp::now()))
                .unwrap_or_default(),
        ),
        Request::Members | Request::MemberErase { .. } if control.members.is_none() => {
            Reply::err("not available: member sign-in is off")
        }
        Request::Members => Reply::ok(
            control
                .members
                .as_ref()
                .map(|m| serde_json::to_value(m.list()).unwrap_or_default())
                .unwrap_or_default(),
        ),
        Request::MemberErase { member_id } => erase_member(control, &member_id),
        Request::Observe { mac, ip, hostname } => match parse_mac(&mac) {
            Ok(mac) => observe(control, mac, ip.as_deref(), hostname),
            Err(r) => r,
        },
        Request::DashboardPassword { password } => match &control.dashboard {
            None => Reply::err("not available: the dashboard is off"),
            Some(d) => match d.set_password(&password) {
                Ok(()) => Reply::ok(serde_json::json!({"changed": true, "sessions_ended": true})),
                Err(e) => Reply::err(e.to_string()),
            },
        },
    }
}

/// Erases a member from the box: the record and bindings (`Members::erase`,
/// which tells HQ), then the member's sessions (ended: the phone is a
/// stranger again) and the member id on devices and visits.
/// The scrub runs even for an id the member records no longer hold, so a
/// repeated erase finishes what a failed one left.
fn erase_member(control: &Control, member_id: &str) -> Reply {
    let Some(members) = &control.members else {
        return Reply::err("not available: member sign-in is off");
    };
    let now = Timestamp::now();
    let (known, devices) = match members.erase(member_id, now) {
        Ok(e) => (true, e.devices.len()),
        Err(MemberError::UnknownMember) => (false, 0),
        Err(e) => return Reply::err(format!("could not erase the member: {e}")),
    };
    let sessions = match control.gate.forget_member(member_id) {
        Ok(macs) => macs.len(),
        Err(e) => return Reply::err(format!("could not end the member's sessions: {e}")),
    };
    let presence = control.presence.forget_member(member_id);
    if !known && sessions == 0 && presence == 0 {
        return Reply::err(format!("unknown member {:?}", truncate(member_id)));
    }
    if !known {
        // Only sessions or presence knew it: HQ must still hear.
        let data = serde_json::json!({ "member_id": member_id });
        if let Err(e) = control.outbox.append(MEMBER_ERASED, data, now) {
            return Reply::err(format!("could not queue member.erased for HQ: {e}"));
        }
    }
    Reply::ok(serde_json::json!({
        "member_id": member_id,
        "erased": true,
        "devices_unbound": devices,
        "sessions_ended": sessions,
        "presence_devices_scrubbed": presence,
    }))
}

/// Feeds a hand-made DHCP request to presence, as the capture would.
fn observe(control: &Control, mac: MacAddr, ip: Option<&str>, hostname: Option<String>) -> Reply {
    use crate::presence::{DhcpInfo, DhcpMessageType, Sighting, SightingKind};
    let requested_ip = match ip.map(str::parse::<std::net::Ipv4Addr>).transpose() {
        Ok(ip) => ip,
        Err(_) => return Reply::err("ip: not an IPv4 address"),
    };
    // As the DHCP parser bounds them.
    let hostname = hostname.map(|h| h.chars().filter(|c| !c.is_control()).take(64).collect());
    let sighting = Sighting {
        mac,
        kind: SightingKind::DhcpClient(DhcpInfo {
            message_type: DhcpMessageType::Request,
            requested_ip,
            hostname,
            ..DhcpInfo::default()
        }),
    };
    let mut events = Vec::new();
    control.presence.observe(&sighting, None, &mut events);
    control.presence.store_events(&mut events);
    let device = control
        .presence
        .machine()
        .device(mac)
        .map(|d| d.to_ctl_json());
    Reply::ok(device.unwrap_or_default())
}

/// At most 64 characters of operator input, for an error message.
fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
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
}
