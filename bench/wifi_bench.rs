//! The members' Wi-Fi on the box's side, in-process (no root):
//! - the PSK file written with 10,000 member keys (atomic write, fsync,
//!   rename, directory fsync), ROUNDS times: median and max;
//! - a hostapd join with a member's key → the station signed in, and →
//!   its `visit.started` durable in the outbox (sled, fsync), TRIALS
//!   times: p50 and p99. The firewall here is the in-memory one: the
//!   nftables netlink call is measured by `bench/firewall.sh` (authorise
//!   with 10,000 authorised) and adds to the first figure.
//!
//! cargo run --release --example wifi_bench -- [ROUNDS] [TRIALS]

use std::sync::Arc;
use std::time::{Duration, Instant};

use storegate::access::session::SessionPolicy;
use storegate::access::{Gate, MemoryFirewall};
use storegate::config::{MembersConfig, WifiConfig};
use storegate::mac::MacAddr;
use storegate::members::Members;
use storegate::members::record::{MemberRecord, Method, WifiKeyRecord};
use storegate::presence::{Presence, PresenceConfig, PresenceShell};
use storegate::privacy::DeviceKey;
use storegate::store::{RedbStore, Store, Tree};
use storegate::time::Timestamp;
use storegate::uplink::Outbox;
use storegate::uplink::sink::{EventSink, OutboxSink};

const KEYS: usize = 10_000;

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let rounds = args.first().copied().unwrap_or(20);
    let trials = args.get(1).copied().unwrap_or(1000);
    let dir = tempfile::tempdir().expect("a temp dir");
    let store: Arc<dyn Store> =
        Arc::new(RedbStore::open(&dir.path().join("state")).expect("state database"));
    let ssid = "Store Members";
    let now = Timestamp::now();
    // 10,000 members, each with a key (the PSK as the box stores it).
    for i in 0..KEYS {
        let id = format!("m_{i:022}");
        let rec = MemberRecord {
            member_id: id.clone(),
            phone_last4: None,
            method: Method::Otp,
            consents: Default::default(),
            bindings: Vec::new(),
            staff_code: None,
            created_at: now,
            wifi_key: Some(WifiKeyRecord {
                psk: format!("{:064x}", i as u128 * 0x9e37_79b9_7f4a_7c15),
                ssid: ssid.into(),
                issued_at: now,
            }),
        };
        let bytes = serde_json::to_vec(&rec).unwrap();
        store.put(Tree::Members, id.as_bytes(), &bytes).unwrap();
    }
    store.flush().unwrap();
    let key = DeviceKey::from_bytes([9; 32]);
    let outbox = Arc::new(
        Outbox::open(
            Some(&dir.path().join("state/outbox")),
            store.clone(),
            "bench",
        )
        .unwrap(),
    );
    let sink: Arc<dyn EventSink> = Arc::new(OutboxSink {
        outbox: outbox.clone(),
        key: key.clone(),
    });
    let config = MembersConfig {
        wifi: Some(WifiConfig {
            ssid: ssid.into(),
            psk_file: dir.path().join("run").join("members.psk"),
            hostapd_ctrl: vec![dir.path().join("hostapd.ctrl")],
            allow_member_number: false,
        }),
        ..MembersConfig::default()
    };
    let members =
        Arc::new(Members::open(store.clone(), key.clone(), config, sink.clone()).unwrap());
    let wifi = members.wifi().expect("the members' Wi-Fi");
    assert_eq!(wifi.len(), KEYS);

    let mut writes: Vec<Duration> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            wifi.write_psk_file().expect("write the PSK file");
            t.elapsed()
        })
        .collect();
    let size = std::fs::metadata(&wifi.config().psk_file)
        .map(|m| m.len())
        .unwrap_or(0);
    let max = *writes.iter().max().unwrap();
    println!(
        "PSK file, {KEYS} keys ({size} bytes): median {:.2} ms, max {:.2} ms over {rounds} writes (target < 200 ms)",
        median(&mut writes).as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3
    );

    let policy = SessionPolicy {
        session_timeout: Duration::from_secs(8 * 3600),
        idle_timeout: Duration::from_secs(1800),
        max_preauth: 100_000,
    };
    let (gate, _) = Gate::open(
        policy,
        Arc::new(MemoryFirewall::new()),
        store.clone(),
        sink.clone(),
    )
    .unwrap();
    let gate = Arc::new(gate);
    let shell = PresenceShell::new(
        Presence::new(
            PresenceConfig {
                new_devices_per_minute: u32::MAX,
                ..PresenceConfig::default()
            },
            1,
        ),
        store.clone(),
        sink,
        key,
    )
    .with_members(members.clone(), gate.clone());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (mut signed_in, mut durable) = (Vec::new(), Vec::new());
    runtime.block_on(async {
        for i in 0..trials {
            let mac = MacAddr([0x02, 0x77, (i >> 16) as u8, (i >> 8) as u8, i as u8, 1]);
            let member = wifi.member_for_keyid(&format!("m_{:022}", i % KEYS));
            let mut events = Vec::new();
            let t = Instant::now();
            shell.station_joined(mac, member, &mut events);
            let authorised = t.elapsed();
            shell.store_events(&mut events);
            let stored = t.elapsed();
            assert!(gate.client(mac).is_some_and(|c| c.is_authorized()));
            assert!(events.is_empty(), "events not stored");
            signed_in.push(authorised);
            durable.push(stored);
            let mut gone = Vec::new();
            shell.station_left(mac, &mut gone);
            shell.store_events(&mut gone);
        }
    });
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "hostapd join → signed in (in-memory firewall): p50 {:.3} ms, p99 {:.3} ms over {trials}",
        ms(pct(&mut signed_in, 0.5)),
        ms(pct(&mut signed_in, 0.99))
    );
    println!(
        "hostapd join → visit.started durable:          p50 {:.3} ms, p99 {:.3} ms (target p99 < 5 ms)",
        ms(pct(&mut durable, 0.5)),
        ms(pct(&mut durable, 0.99))
    );
}
