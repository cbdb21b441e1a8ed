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

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod wifi;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::access::blocked::{BlockedMacs, Blocklist};
use crate::access::nft::{NftFirewall, RulesetParams};
use crate::access::session::SessionPolicy;
use crate::access::{Firewall, Gate, MemoryFirewall};
use crate::app::{App, AppInfo, ManagerSessions, PortalStats};
use crate::clock::Clock;
use crate::config::{Config, FirewallBackend, HqConfig};
use crate::control::server as control_server;
use crate::dashboard::Dashboard;
use crate::members::Members;
use crate::net::capture::{Capture, Filter};
use crate::net::feed::{self, CaptureProber};
use crate::net::neigh::NeighbourCache;
use crate::portal::{self, ClientResolver, NeighbourResolver, Portal, Site, SyntheticResolver};
use crate::presence::shell::timer_loop;
use crate::presence::{Presence, PresenceConfig, PresenceShell};
use crate::privacy::DeviceKey;
use crate::store::{RedbStore, Store};
use crate::time::Timestamp;
use crate::uplink::Outbox;
use crate::uplink::delivery::{self, DeliveryConfig, DeliveryStatus};
use crate::uplink::messages::{MessageSender, MessagesConfig};
use crate::uplink::signing::SigningKey;
use crate::uplink::sink::{EventSink, OutboxSink};
use crate::uplink::sync::{SyncConfig, SyncState, Syncer};

/// Unauthorised clients remembered at once.
const MAX_PREAUTH: usize = 8192;
const GRACE: Duration = Duration::from_secs(5);

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
    /// The business clock (`None`: the wall clock; the demo passes its
    /// simulated one).
    pub clock: Option<Clock>,
}

/// See [`Hooks::on_ready`].
pub type OnReady = Box<
    dyn FnOnce(Handles) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send,
>;

/// The running daemon's parts, for [`Hooks::on_ready`].
#[derive(Clone)]
pub struct Handles {
    /// The hub, with every shared handle.
    pub app: Arc<App>,
    /// Feed sightings here (`PresenceShell::observe`, then `store_events`).
    pub presence: Arc<PresenceShell>,
    pub members: Arc<Members>,
    pub gate: Arc<Gate>,
    /// The portal's sign-in URL.
    pub portal_url: String,
    /// Cancelled on SIGTERM/SIGINT; cancelling it stops the daemon.
    pub shutdown: CancellationToken,
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
    let clock = hooks.clock.clone().unwrap_or_default();
    crate::store::migrate::in_child(&config.storage.path)
        .context("migrating the state database")?;
    let store: Arc<dyn Store> =
        Arc::new(RedbStore::open(&config.storage.path).context("opening the state database")?);
    // HQ's key and HTTPS client first: a bad secret or certificate file
    // stops the daemon before it touches the firewall.
    let hq_link = config.hq.as_ref().map(hq_link).transpose()?;
    let window = crate::access::timers::activity_window(config.portal.idle_timeout);
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
            Some(&config.storage.path.join("outbox")),
            store.clone(),
            &config.store.id,
            config.storage.outbox_max_events,
        )
        .context("opening the outbox")?,
    );
    let sink: Arc<dyn EventSink> = Arc::new(OutboxSink {
        outbox: outbox.clone(),
        key: key.clone(),
    });
    let (gate, restored) =
        Gate::open_with_clock(policy, firewall, store.clone(), sink.clone(), clock.clone())
            .context("restoring sessions into the firewall")?;
    let gate = Arc::new(gate);
    tracing::info!(
        authorized = restored.authorized,
        expired = restored.expired,
        corrupt = restored.corrupt,
        ms = started.elapsed().as_millis() as u64,
        "firewall installed, sessions restored"
    );

    let (lan_v4, lan_v6) = crate::net::iface::lan_addresses(&config.lan.interface);
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
        Members::open_at(
            store.clone(),
            key.clone(),
            config.members.clone(),
            sink.clone(),
            clock.now(),
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
    let blocklist = Arc::new(Blocklist::new(
        BlockedMacs::load(store.clone()),
        sync_state.clone(),
        key.clone(),
    ));
    let mut shell = PresenceShell::new_with_clock(
        Presence::new(presence_config(&config), rand::random()),
        store.clone(),
        sink.clone(),
        key.clone(),
        clock.clone(),
    )
    .with_members(members.clone(), gate.clone())
    .with_sync(sync_state.clone())
    .with_blocklist(blocklist.clone())
    .with_forget_unbound_after(Duration::from_secs(
        u64::from(config.privacy.forget_unbound_after_days) * 86_400,
    ));
    if let Some(c) = &capture {
        shell = shell.with_prober(Arc::new(CaptureProber {
            capture: c.clone(),
            own_v4: lan_v4,
            own_v6: lan_v6,
        }));
    }
    let presence_shell = Arc::new(shell);
    let portal_stats = Arc::new(PortalStats::default());

    let portal = Arc::new(Portal {
        members: Some(members.clone()),
        messages,
        sync: sync_state.clone(),
        blocklist: blocklist.clone(),
        stats: portal_stats.clone(),
        ..Portal::new(site, gate.clone(), resolver, key.clone())
    });
    let listener = portal::server::bind(config.portal.listen)
        .await
        .with_context(|| format!("portal.listen: cannot listen on {}", config.portal.listen))?;

    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let delivery_status = Arc::new(std::sync::Mutex::new(DeliveryStatus::default()));
    let app = Arc::new(App {
        info: AppInfo {
            store_id: config.store.id.clone(),
            store_name: config.store.name.clone(),
            lan_interface: config.lan.interface.clone(),
            portal_url: portal.site.url.clone(),
            hq_url: config.hq.as_ref().map(|hq| hq.url.clone()),
            started_at,
            started,
            restored,
            capturing: capture.is_some(),
        },
        store: store.clone(),
        gate: gate.clone(),
        members: Some(members.clone()),
        presence: presence_shell.clone(),
        outbox: outbox.clone(),
        events: sink.clone(),
        blocklist,
        sync: sync_state.clone(),
        portal_stats,
        delivery: delivery_status.clone(),
        manager_sessions: Arc::new(ManagerSessions::default()),
        clock: clock.clone(),
    });
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
        config.portal.max_connections_per_client,
        shutdown.clone(),
        tracker.clone(),
    ));
    let dashboard = Arc::new(Dashboard {
        metrics_public: config.dashboard.metrics_public,
        shutdown: shutdown.clone(),
        ..Dashboard::new(app.clone(), config.portal.default_language)
    });
    crate::dashboard::start::start(&config, dashboard.clone(), &shutdown, &tracker).await?;
    tracker.spawn(crate::access::timers::session_timers(
        gate.clone(),
        window,
        shutdown.clone(),
    ));
    if let Some(c) = &capture {
        tracker.spawn(feed::capture_loop(
            c.clone(),
            presence_shell.clone(),
            shutdown.clone(),
        ));
    }
    tracker.spawn(timer_loop(
        presence_shell.clone(),
        config.presence.summary_interval,
        shutdown.clone(),
    ));
    if let Some(wifi_config) = &config.members.wifi {
        // storegate's own hostapd client sockets sit next to its control
        // socket (a runtime directory only root can write).
        let local_dir = config
            .control
            .socket
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_else(|| config.storage.path.clone());
        std::fs::create_dir_all(&local_dir)
            .with_context(|| format!("control.socket: cannot create {}", local_dir.display()))?;
        wifi::start(
            wifi_config,
            members.clone(),
            presence_shell.clone(),
            local_dir,
            &shutdown,
            &tracker,
        );
    }

    let control_path = config.control.socket.clone();
    let control_listener = control_server::bind(&control_path)
        .await
        .with_context(|| format!("control.socket: cannot create {}", control_path.display()))?;
    tracker.spawn(control_server::serve(
        control_listener,
        control_path,
        app.clone(),
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
    crate::memory::return_freed_memory();
    if let Some(on_ready) = hooks.on_ready {
        tracker.spawn(on_ready(Handles {
            app: app.clone(),
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
        new_devices_per_minute: config.presence.new_devices_per_minute,
        ..PresenceConfig::default()
    }
}
