//! Raw bytes from a LAN client to the portal: hyper's parser and every
//! route behind it, over an in-memory connection. Must never panic.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use storegate::uplink::sink::LogSink;
use storegate::access::session::SessionPolicy;
use storegate::access::{Gate, MemoryFirewall};
use storegate::config::Language;
use storegate::portal::{Portal, Site, SyntheticResolver, server};
use storegate::privacy::DeviceKey;
use storegate::store::MemoryStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

fn portal() -> Arc<Portal> {
    static PORTAL: OnceLock<Arc<Portal>> = OnceLock::new();
    PORTAL
        .get_or_init(|| {
            let policy = SessionPolicy {
                session_timeout: Duration::from_secs(3600),
                idle_timeout: Duration::from_secs(600),
                max_preauth: 64,
            };
            let (gate, _) = Gate::open(
                policy,
                Arc::new(MemoryFirewall::new()),
                Arc::new(MemoryStore::new()),
                Arc::new(LogSink),
            )
            .expect("gate");
            let listen = "0.0.0.0:2050".parse().unwrap();
            // No members, no texts: click-through and every refusal path.
            Arc::new(Portal::new(
                Site::new(
                    None,
                    listen,
                    Some("192.0.2.1".parse().unwrap()),
                    "Fuzz",
                    Language::En,
                ),
                Arc::new(gate),
                Arc::new(SyntheticResolver),
                DeviceKey::from_bytes([0; 32]),
            ))
        })
        .clone()
}

fuzz_target!(|data: &[u8]| {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let (mut client, server_end) = tokio::io::duplex(64 * 1024);
        let peer = "192.0.2.77:40000".parse().unwrap();
        let task = tokio::spawn(server::serve_io(
            server_end,
            peer,
            portal(),
            CancellationToken::new(),
        ));
        let _ = client.write_all(data).await;
        let _ = client.shutdown().await;
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(30), client.read_to_end(&mut out)).await;
        drop(client);
        let _ = task.await;
    });
});
