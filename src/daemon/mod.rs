//! `storegate run`: wires the parts together and owns their lifetimes.
//!
//! Start order matters: the store is opened, saved sessions are restored
//! into the firewall, the portal starts listening, and only then is the
//! control socket created, which is the signal that the daemon is ready.
//! One `CancellationToken` stops every task; SIGTERM or SIGINT cancels it,
//! and tasks get a grace period to finish what they are doing.
//!
//! On a clean stop the nftables table is left in place on purpose:
//! authorised clients keep their access until their session's own
//! timeout (the kernel ends it), and everyone else stays captured, so a
//! restart or upgrade is invisible to shoppers and never opens the LAN.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod presence;

pub use presence::{FrameStats, PresenceShell};

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::access::blocked::BlockedMacs;
use crate::access::nft::{NftFirewall, RulesetParams};
use crate::access::session::SessionPolicy;
use crate::access::{Firewall, Gate, MemoryFirewall};
use crate::config::{Config, FirewallBackend, HqConfig};
use crate::control::server::{self as control_server, Control, StatusFn};
use crate::dashboard::Dashboard;
use crate::members::Members;
use crate::net::capture::{Capture, Filter};
use crate::net::neigh::NeighbourCache;
use crate::portal::{self, ClientResolver, NeighbourResolver, Portal, Site, SyntheticResolver};
use crate::presence::{Presence, PresenceConfig};
use crate::privacy::DeviceKey;
use crate::store::{SledStore, Store};
use crate::time::{ClockWatch, Timestamp};
use crate::uplink::Outbox;
use crate::uplink::delivery::{self, DeliveryConfig, DeliveryStatus};
use crate::uplink::messages::{MessageSender, MessagesConfig};
use crate::uplink::signing::SigningKey;
use crate::uplink::sink::OutboxSink;
use crate::uplink::sync::{SyncConfig, SyncState, Syncer};

/// Unauthorised clients remembered at once.
const MAX_PREAUTH: usize = 8192;
const TICK: Duration = Duration::from_secs(1);
const GRACE: Duration = Duration::from_secs(5);

/// How long one forwarded packet counts as activity (whole seconds, as
/// nftables keeps set timeouts): fine enough for the idle timeout, cheap at
/// scale. The daemon reads the set twice per window, so a late read (a
/// loaded box) still sees a packet before its entry expires.
fn activity_window(idle: Duration) -> Duration {
    let half = idle.as_secs().div_ceil(2);
    Duration::from_secs(half.clamp(2, 60))
}

/// The signing key and HTTPS client for `[hq]`; errors name the key. The
/// secret was read and checked at load; the certificate files are read
/// here, as `storegate run` already did once before start (`cli`).
fn hq_link(hq: &HqConfig) -> anyhow::Result<(SigningKey, delivery::HttpsClient)> {
    let key = SigningKey::from_secret(hq.secret.expose())
        .map_err(|e| anyhow::anyhow!("hq.secret: {e}"))?;
    let client = delivery::client_for(hq).map_err(|e| anyhow::anyhow!(e))?;
    Ok((key, client))
}

/// What a caller may add to the daemon without changing what it is:
/// `storegate demo` runs this same code with a simulator in place of the
/// LAN capture. `Hooks::default()` is the box.
#[derive(Default)]
pub struct Hooks {
    /// Finds clients' MACs for the portal instead of the firewall
    /// backend's resolver (the demo maps loopback to a simulated phone).
    pub resolver: Option<Arc<dyn ClientResolver>>,
    /// Started once the daemon is ready (the control socket exists), as
    /// one more task; it must end when `Handles::shutdown` is cancelled,
    /// and may cancel it to stop the daemon.
    pub on_ready: Option<OnReady>,
}

/// See [`Hooks::on_ready`].
pub type OnReady = Box<
    dyn FnOnce(Handles) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send,
>;

/// The running daemon's parts, for [`Hooks::on_ready`].
#[derive(Clone)]
pub struct Handles {
    /// Feed sightings here (`PresenceShell::observe`, then `store_events`).
    pub presence: Arc<PresenceShell>,
    pub members: Arc<Members>,
    pub gate: Arc<Gate>,
    /// The portal's sign-in URL.
    pub portal_url: String,
    /// Cancelled on SIGTERM/SIGINT; cancelling it stops the daemon.
    pub shutdown: CancellationToken,
}

/// Asks glibc to return freed heap to the kernel (a no-op elsewhere:
/// musl returns large frees by itself). Start-up allocates and frees a lot
/// at once; without this the process keeps that peak as its resident size.
#[allow(unsafe_code)]
pub fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it
    // takes the allocator's locks and is safe to call from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn run(config: Config) -> anyhow::Result<()> {
    run_with(config, Hooks::default()).await
}

/// Runs the daemon with `hooks` until SIGTERM or SIGINT (or until a hook
/// cancels the shutdown token).
pub async fn run_with(config: Config, hooks: Hooks) -> anyhow::Result<()> {
    let started = Instant::now();
    let started_at = Timestamp::now();
    let store: Arc<dyn Store> =
        Arc::new(SledStore::open(&config.storage.path).context("opening the state database")?);
    // HQ's key and HTTPS client first: a bad secret or certificate file
    // stops the daemon before it touches the firewall.
    let hq_link = config.hq.as_ref().map(hq_link).transpose()?;
    let window = activity_window(config.portal.idle_timeout);
    let (firewall, resolver): (Arc<dyn Firewall>, Arc<dyn ClientResolver>) = match config.firewall {
        FirewallBackend::Nftables => (
            Arc::new(
                NftFirewall::new(RulesetParams {
                    lan_interface: config.lan.interface.clone(),
                    portal_port: config.portal.listen.port(),
                    dashboard_port: config.dashboard.listen.port(),
                    walled_garden: config.portal.walled_garden.clone(),
                    active_window: window,
                })
                .context("setting up nftables")?,
            ),
            Arc::new(NeighbourResolver(NeighbourCache::new(
                Duration::from_secs(30),
                Duration::from_millis(100),
            ))),
        ),
        FirewallBackend::None => {
            tracing::warn!("firewall.backend = \"none\": nothing is enforced");
            (Arc::new(MemoryFirewall::new()), Arc::new(SyntheticResolver))
        }
    };
    let resolver = hooks.resolver.unwrap_or(resolver);
    let policy = SessionPolicy {
        session_timeout: config.portal.session_timeout,
        idle_timeout: config.portal.idle_timeout,
        max_preauth: MAX_PREAUTH,
    };
    let key = DeviceKey::load(config.privacy.device_key_file.as_deref(), store.as_ref())?;
    let outbox = Arc::new(
        Outbox::open_with(
            store.clone(),
            &config.store.id,
            config.storage.outbox_max_events,
        )
        .context("opening the outbox")?,
    );
    let sink = Arc::new(OutboxSink {
        outbox: outbox.clone(),
        key: key.clone(),
    });
    let (gate, restored) = Gate::open(policy, firewall, store.clone(), sink)
        .context("restoring sessions into the firewall")?;
    let gate = Arc::new(gate);
    tracing::info!(
        authorized = restored.authorized,
        expired = restored.expired,
        corrupt = restored.corrupt,
        ms = started.elapsed().as_millis() as u64,
        "firewall installed, sessions restored"
    );

    let (lan_v4, lan_v6) = lan_addresses(&config.lan.interface);
    let capture = match config.firewall {
        FirewallBackend::Nftables => match Capture::open(&config.lan.interface, Filter::Presence) {
            Ok(c) => Some(Arc::new(c)),
            Err(e) => {
                tracing::error!(
                    "presence is off: cannot capture on {}: {e} (needs CAP_NET_RAW)",
                    config.lan.interface
                );
                None
            }
        },
        FirewallBackend::None => None,
    };
    let own_mac = capture
        .as_ref()
        .map(|c| c.interface_mac())
        .unwrap_or(crate::net::MacAddr([0; 6]));

    let site = Site::new(
        config.portal.url.as_deref(),
        config.portal.listen,
        lan_v4.map(IpAddr::V4),
        &config.store.name,
        config.portal.default_language,
    );
    // HQ's last good sync document (staff, blocked devices, campaigns).
    let sync_state = Arc::new(match &config.hq {
        Some(_) => SyncState::load(store.as_ref()),
        None => SyncState::empty(),
    });
    // Member sign-in; phone sign-in only when HQ can send the texts.
    let members = Arc::new(
        Members::open(
            store.clone(),
            key.clone(),
            config.members.clone(),
            outbox.clone(),
        )
        .context("opening the member records")?,
    );
    let messages = match (&config.hq, &hq_link) {
        (Some(hq), Some((hq_key, client))) => Some(MessageSender::new(
            MessagesConfig::new(&hq.url, &config.store.id),
            hq_key.clone(),
            client.clone(),
        )),
        _ => None,
    };
    // Returning members are recognised (and signed in) from the capture.
    // Devices the manager blocked: neither the portal nor the returning-
    // member path lets them in.
    let blocked_macs = Arc::new(BlockedMacs::load(store.clone()));
    let presence_shell = Arc::new(
        presence::PresenceShell::new(
            Presence::new(presence_config(&config), rand::random()),
            store.clone(),
            outbox.clone(),
            key.clone(),
            (own_mac, lan_v4, lan_v6),
        )
        .with_members(members.clone(), gate.clone())
        .with_sync(sync_state.clone())
        .with_blocked(blocked_macs.clone())
        .with_forget_unbound_after(Duration::from_secs(
            u64::from(config.privacy.forget_unbound_after_days) * 86_400,
        )),
    );
    let portal = Arc::new(Portal {
        members: Some(members.clone()),
        messages,
        sync: sync_state.clone(),
        blocked_macs,
        ..Portal::new(site, gate.clone(), resolver, key.clone())
    });
    let listener = portal::server::bind(config.portal.listen)
        .await
        .with_context(|| format!("portal.listen: cannot listen on {}", config.portal.listen))?;

    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let delivery_status = Arc::new(std::sync::Mutex::new(DeliveryStatus::default()));
    match (&config.hq, hq_link) {
        (Some(hq), Some((key, client))) => {
            tracker.spawn(delivery::run(
                outbox.clone(),
                DeliveryConfig::for_hq(hq),
                key.clone(),
                client.clone(),
                delivery_status.clone(),
                shutdown.clone(),
            ));
            let syncer = Syncer {
                state: sync_state.clone(),
                store: store.clone(),
                config: SyncConfig::new(&hq.url, hq.sync_interval),
                key,
                client,
            };
            tracker.spawn(syncer.run(shutdown.clone()));
        }
        _ => tracing::info!("no [hq] configured: events stay in the outbox"),
    }
    tracker.spawn(portal::server::serve(
        listener,
        portal.clone(),
        config.portal.max_connections,
        shutdown.clone(),
        tracker.clone(),
    ));
    let dashboard = Arc::new(Dashboard {
        members: Some(members.clone()),
        delivery: delivery_status.clone(),
        metrics_public: config.dashboard.metrics_public,
        shutdown: shutdown.clone(),
        ..Dashboard::new(
            store.clone(),
            gate.clone(),
            presence_shell.clone(),
            outbox.clone(),
            portal.clone(),
        )
    });
    start_dashboard(&config, dashboard.clone(), &shutdown, &tracker).await?;
    tracker.spawn(session_timers(gate.clone(), window, shutdown.clone()));
    if let Some(c) = &capture {
        tracker.spawn(presence::capture_loop(
            c.clone(),
            presence_shell.clone(),
            shutdown.clone(),
        ));
    }
    tracker.spawn(presence::timer_loop(
        capture.clone(),
        presence_shell.clone(),
        config.presence.summary_interval,
        shutdown.clone(),
    ));

    let status: StatusFn = {
        let (gate, portal, config, outbox) =
            (gate.clone(), portal.clone(), config.clone(), outbox.clone());
        let (shell, capturing) = (presence_shell.clone(), capture.is_some());
        let members = members.clone();
        let delivery = delivery_status.clone();
        let sync = sync_state.clone();
        Arc::new(move || {
            let (authorized, preauth) = gate.counts();
            let (devices_known, present_now) = {
                let m = shell.machine();
                (
                    m.devices().count(),
                    m.footfall(Timestamp::now()).present_now,
                )
            };
            serde_json::json!({
                "version": env!("CARGO_PKG_VERSION"),
                "store_id": config.store.id,
                "store_name": config.store.name,
                "started_at": started_at.rfc3339(),
                "uptime_seconds": started.elapsed().as_secs(),
                "portal_url": portal.site.url,
                "lan_interface": config.lan.interface,
                "firewall": gate.firewall_name(),
                "clients": {"authorized": authorized, "preauth": preauth},
                "restored": {"authorized": restored.authorized, "expired": restored.expired, "corrupt": restored.corrupt},
                "portal": portal.stats.snapshot(),
                "hq": match &config.hq {
                    Some(hq) => {
                        let mut v = serde_json::to_value(&*delivery.lock().unwrap_or_else(|e| e.into_inner())).unwrap_or_default();
                        v["url"] = serde_json::json!(hq.url);
                        v["sync"] = serde_json::to_value(sync.status()).unwrap_or_default();
                        v
                    }
                    None => serde_json::json!({"state": "not configured"}),
                },
                "outbox": outbox.stats(Timestamp::now()),
                "presence": {
                    "capturing": capturing,
                    "frames": shell.stats(),
                    "devices_known": devices_known,
                    "present_now": present_now,
                },
                "members": {"bound_devices": members.bound_devices()},
            })
        })
    };
    let control_path = config.control.socket.clone();
    let control_listener = control_server::bind(&control_path)
        .await
        .with_context(|| format!("control.socket: cannot create {}", control_path.display()))?;
    tracker.spawn(control_server::serve(
        control_listener,
        control_path,
        Arc::new(Control {
            gate: gate.clone(),
            outbox: outbox.clone(),
            presence: presence_shell.clone(),
            members: Some(members.clone()),
            status,
            dashboard: Some(dashboard.clone()),
        }),
        shutdown.clone(),
        tracker.clone(),
    ));
    tracing::info!(
        portal = %portal.site.url,
        ms = started.elapsed().as_millis() as u64,
        "storegate ready"
    );
    // The start-up (restoring sessions, building the ruleset, scanning the
    // outbox) leaves freed memory the allocator keeps; give it back.
    return_freed_memory();
    if let Some(on_ready) = hooks.on_ready {
        tracker.spawn(on_ready(Handles {
            presence: presence_shell.clone(),
            members: members.clone(),
            gate: gate.clone(),
            portal_url: portal.site.url.clone(),
            shutdown: shutdown.clone(),
        }));
    }

    tokio::select! {
        signal = wait_for_signal() => signal?,
        _ = shutdown.cancelled() => {}
    }
    tracing::info!("stopping");
    shutdown.cancel();
    tracker.close();
    if tokio::time::timeout(GRACE, tracker.wait()).await.is_err() {
        tracing::warn!("some tasks did not finish within {GRACE:?}");
    }
    store.flush().context("flushing the state database")?;
    tracing::info!("stopped; authorised clients keep access until their sessions end");
    Ok(())
}

/// The manager's dashboard: the first password, the certificate, the
/// listener. A bad password file or certificate stops the daemon; a port
/// that cannot be bound only turns the dashboard off (logged), since the
/// portal must not go down for it.
async fn start_dashboard(
    config: &Config,
    dashboard: Arc<Dashboard>,
    shutdown: &CancellationToken,
    tracker: &TaskTracker,
) -> anyhow::Result<()> {
    let cfg = &config.dashboard;
    if let Some(made) = crate::dashboard::auth::ensure_password(
        dashboard.store.as_ref(),
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

/// Ends sessions on time and feeds traffic activity to the idle timers.
async fn session_timers(gate: Arc<Gate>, window: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Read the activity set every `polls_per` ticks: twice per window. A
    // tick counter, not elapsed time, so timer jitter cannot skip a read.
    let polls_per = ((window / 2).as_millis() / TICK.as_millis()).max(1);
    let mut ticks: u128 = 0;
    let mut clock = ClockWatch::new(Timestamp::now(), Instant::now());
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let g = gate.clone();
        let poll = ticks % polls_per == 0;
        ticks += 1;
        let step = clock.check(Timestamp::now(), Instant::now());
        let result = tokio::task::spawn_blocking(move || {
            // Before the tick: sessions granted under the old clock must
            // not end early (or late) because the clock stepped.
            if let Some(st) = step {
                let moved = g.clock_stepped(st.from, st.to, st.delta_ms)?;
                tracing::warn!(
                    delta_ms = st.delta_ms,
                    sessions_moved = moved,
                    "the wall clock stepped; sessions granted before the step keep their time"
                );
            }
            if poll {
                g.refresh_activity()?;
            }
            g.tick()
        })
        .await;
        match result {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!("session timers: {e}"),
            Err(e) => tracing::error!("session timers task: {e}"),
        }
    }
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

/// The presence machine's settings from the config (whose time zone and
/// fingerprint rules were resolved at load).
fn presence_config(config: &Config) -> PresenceConfig {
    PresenceConfig {
        probe_after: config.presence.probe_after,
        leave_after: config.presence.leave_after,
        rejoin_gap: config.presence.rejoin_gap,
        staff: config.presence.staff_devices.clone(),
        resident_min_daily: config.presence.resident_min_daily,
        resident_min_days: config.presence.resident_min_days,
        timezone: config.store.timezone.clone(),
        fingerprints: config.presence.fingerprints.clone(),
        ..PresenceConfig::default()
    }
}

/// The LAN interface's first IPv4 address (the portal's default URL and
/// the source of ARP probes) and its IPv6 link-local address (the source
/// of neighbour solicitations).
fn lan_addresses(interface: &str) -> (Option<Ipv4Addr>, Option<Ipv6Addr>) {
    let (mut v4, mut v6) = (None, None);
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for a in addrs.filter(|a| a.interface_name == interface) {
            let Some(addr) = a.address.as_ref() else {
                continue;
            };
            if let Some(sin) = addr.as_sockaddr_in() {
                v4 = v4.or(Some(sin.ip()));
            } else if let Some(sin6) = addr.as_sockaddr_in6()
                && sin6.ip().is_unicast_link_local()
            {
                v6 = v6.or(Some(sin6.ip()));
            }
        }
    }
    if v4.is_none() {
        tracing::warn!(
            interface,
            "no IPv4 address on the LAN interface; set portal.url"
        );
    }
    (v4, v6)
}
