//! The usual object graph, built once for unit tests (as quinn's `Pair`):
//! a memory store, the in-memory firewall, an outbox behind the box's
//! event sink, the gate, members, the presence shell and the `App` over
//! them. Tests take the pieces they need from [`Rig`].

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{App, AppInfo, ManagerSessions, PortalStats};
use crate::access::blocked::{BlockedMacs, Blocklist};
use crate::access::session::SessionPolicy;
use crate::access::{Gate, MemoryFirewall};
use crate::config::MembersConfig;
use crate::members::Members;
use crate::presence::{Presence, PresenceConfig, PresenceShell};
use crate::privacy::DeviceKey;
use crate::store::{MemoryStore, Store};
use crate::time::Timestamp;
use crate::uplink::Outbox;
use crate::uplink::delivery::DeliveryStatus;
use crate::uplink::sink::{EventSink, OutboxSink};
use crate::uplink::sync::SyncState;

/// The device key every rig uses.
pub const KEY: [u8; 32] = [3; 32];

pub struct Rig {
    pub app: Arc<App>,
    pub store: Arc<dyn Store>,
    pub firewall: Arc<MemoryFirewall>,
    pub outbox: Arc<Outbox>,
}

/// A rig with the default presence settings and member sign-in on.
pub fn rig() -> Rig {
    rig_with(PresenceConfig::default())
}

pub fn rig_with(presence: PresenceConfig) -> Rig {
    build(presence, MembersConfig::default())
}

/// Members with the members' Wi-Fi on `ssid`, the PSK file (and
/// hostapd's control socket) in `dir`; member numbers trusted, and given
/// a key when `allow_member_number`.
pub fn wifi_members(dir: &std::path::Path, ssid: &str, allow_member_number: bool) -> MembersConfig {
    MembersConfig {
        member_number_trusted: true,
        wifi: Some(crate::config::WifiConfig {
            ssid: ssid.into(),
            psk_file: dir.join("members.psk"),
            hostapd_ctrl: vec![dir.join("hostapd.ctrl")],
            allow_member_number,
        }),
        ..MembersConfig::default()
    }
}

/// A rig with the members' Wi-Fi configured, its PSK file in `dir`.
pub fn rig_with_wifi(dir: &std::path::Path) -> Rig {
    rig_with_members(wifi_members(dir, "Store Members", false))
}

/// A rig whose members run on `members`.
pub fn rig_with_members(members: MembersConfig) -> Rig {
    build(PresenceConfig::default(), members)
}

fn build(presence: PresenceConfig, members_config: MembersConfig) -> Rig {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let key = DeviceKey::from_bytes(KEY);
    let outbox = Arc::new(Outbox::open(None, store.clone(), "wulin-01").unwrap());
    let firewall = Arc::new(MemoryFirewall::new());
    let events: Arc<dyn EventSink> = Arc::new(OutboxSink {
        outbox: outbox.clone(),
        key: key.clone(),
    });
    let policy = SessionPolicy {
        session_timeout: Duration::from_secs(8 * 3600),
        idle_timeout: Duration::from_secs(1800),
        max_preauth: 100,
    };
    let (gate, restored) =
        Gate::open(policy, firewall.clone(), store.clone(), events.clone()).unwrap();
    let gate = Arc::new(gate);
    let members = Arc::new(
        Members::open(store.clone(), key.clone(), members_config, events.clone()).unwrap(),
    );
    let sync = Arc::new(SyncState::empty());
    let blocklist = Arc::new(Blocklist::new(
        BlockedMacs::load(store.clone()),
        sync.clone(),
        key.clone(),
    ));
    let presence = Arc::new(
        PresenceShell::new(
            Presence::new(presence, 1),
            store.clone(),
            events.clone(),
            key.clone(),
        )
        .with_members(members.clone(), gate.clone())
        .with_sync(sync.clone())
        .with_blocklist(blocklist.clone()),
    );
    let app = Arc::new(App {
        info: AppInfo {
            store_id: "wulin-01".into(),
            store_name: "Wulin <Store>".into(),
            lan_interface: "br-lan".into(),
            portal_url: "http://192.0.2.1:2050/".into(),
            hq_url: None,
            started_at: Timestamp::now(),
            started: Instant::now(),
            restored,
            capturing: false,
        },
        store: store.clone(),
        gate,
        members: Some(members),
        presence,
        outbox: outbox.clone(),
        events,
        blocklist,
        sync,
        portal_stats: Arc::new(PortalStats::default()),
        delivery: Arc::new(Mutex::new(DeliveryStatus::default())),
        manager_sessions: Arc::new(ManagerSessions::default()),
        clock: crate::clock::Clock::wall(),
    });
    Rig {
        app,
        store,
        firewall,
        outbox,
    }
}
