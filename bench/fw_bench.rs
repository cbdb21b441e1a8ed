//! Firewall benchmark (run by bench/firewall.sh inside a throwaway network
//! namespace, as root): authorise/revoke latency with few and with many
//! authorised clients, and the time to restore many sessions at start.
//!
//! Prints one JSON object per measurement on stdout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use storegate::access::nft::netlink::NftSocket;
use storegate::access::nft::{NftFirewall, RulesetParams, ruleset};
use storegate::access::session::SessionPolicy;
use storegate::access::{AuthMethod, Firewall, Gate, Grant};
use storegate::mac::MacAddr;
use storegate::store::{RedbStore, Store};
use storegate::uplink::sink::LogSink;

fn mac(i: u32) -> MacAddr {
    let b = i.to_be_bytes();
    MacAddr([0x02, 0xbe, b[0], b[1], b[2], b[3]])
}

fn params() -> RulesetParams {
    RulesetParams {
        lan_interface: "br-lan".into(),
        portal_port: 2050,
        dashboard_port: 8443,
        walled_garden: vec![],
        active_window: Duration::from_secs(30),
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn summary(name: &str, authorised: u32, mut us: Vec<f64>) -> (f64, String) {
    us.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let p50 = percentile(&us, 0.5);
    let line = format!(
        "{{\"bench\":\"{name}\",\"authorised\":{authorised},\"n\":{},\"p50_us\":{:.1},\"p99_us\":{:.1},\"max_us\":{:.1}}}",
        us.len(),
        p50,
        percentile(&us, 0.99),
        us[us.len() - 1]
    );
    (p50, line)
}

/// Authorise then revoke a fresh MAC `trials` times with `base` already in the set.
fn allow_revoke(fw: &NftFirewall, base: u32, trials: u32) -> (Vec<f64>, Vec<f64>) {
    let grants: Vec<Grant> = (0..base)
        .map(|i| Grant {
            mac: mac(i),
            ttl: Duration::from_secs(3600),
        })
        .collect();
    fw.install(&grants).expect("install");
    let (mut allow, mut revoke) = (Vec::new(), Vec::new());
    for t in 0..trials {
        let m = mac(1_000_000 + t);
        let t0 = Instant::now();
        fw.allow(Grant {
            mac: m,
            ttl: Duration::from_secs(3600),
        })
        .expect("allow");
        allow.push(t0.elapsed().as_secs_f64() * 1e6);
        let t0 = Instant::now();
        fw.revoke(m).expect("revoke");
        revoke.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    // The timings mean nothing unless the kernel really took the change.
    let probe = mac(2_000_000);
    fw.allow(Grant {
        mac: probe,
        ttl: Duration::from_secs(60),
    })
    .expect("allow");
    let mut sock = NftSocket::open().expect("netlink");
    let present = |sock: &mut NftSocket| {
        sock.list_elements(ruleset::TABLE, ruleset::SET_ALLOWED)
            .expect("list")
            .iter()
            .any(|k| k.as_slice() == probe.octets())
    };
    assert!(
        present(&mut sock),
        "allowed MAC missing from the kernel set"
    );
    fw.revoke(probe).expect("revoke");
    assert!(!present(&mut sock), "revoked MAC still in the kernel set");
    let n = sock
        .list_elements(ruleset::TABLE, ruleset::SET_ALLOWED)
        .expect("list")
        .len();
    assert_eq!(
        n, base as usize,
        "set holds exactly the base clients after the trials"
    );
    (allow, revoke)
}

fn restore(n: u32, dir: &std::path::Path) -> f64 {
    let policy = SessionPolicy {
        session_timeout: Duration::from_secs(8 * 3600),
        idle_timeout: Duration::from_secs(1800),
        max_preauth: 8192,
    };
    {
        let store: Arc<dyn Store> = Arc::new(RedbStore::open(dir).expect("store"));
        let fw: Arc<dyn Firewall> = Arc::new(NftFirewall::new(params()).expect("nft"));
        let (gate, _) = Gate::open(policy, fw, store, Arc::new(LogSink)).expect("open");
        for i in 0..n {
            gate.authorize(mac(i), None, AuthMethod::Operator, None)
                .expect("authorize");
        }
    }
    let t0 = Instant::now();
    let store: Arc<dyn Store> = Arc::new(RedbStore::open(dir).expect("store"));
    let fw: Arc<dyn Firewall> = Arc::new(NftFirewall::new(params()).expect("nft"));
    let (_, restored) = Gate::open(policy, fw, store, Arc::new(LogSink)).expect("open");
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    assert_eq!(restored.authorized, n as usize);
    ms
}

fn main() {
    let trials: u32 = std::env::var("TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let fw = NftFirewall::new(params()).expect("netlink to nf_tables (root, in a namespace)");
    let mut p50s = Vec::new();
    for base in [10, 10_000] {
        let (allow, revoke) = allow_revoke(&fw, base, trials);
        let (a, line) = summary("allow", base, allow);
        println!("{line}");
        let (r, line) = summary("revoke", base, revoke);
        println!("{line}");
        p50s.push((a, r));
    }
    println!(
        "{{\"bench\":\"flatness\",\"allow_p50_ratio_10000_vs_10\":{:.2},\"revoke_p50_ratio_10000_vs_10\":{:.2}}}",
        p50s[1].0 / p50s[0].0,
        p50s[1].1 / p50s[0].1
    );
    let tmp = std::env::temp_dir().join(format!("sg-fw-bench-{}", std::process::id()));
    let mut restores = Vec::new();
    for n in [10u32, 10_000] {
        let dir = tmp.join(n.to_string());
        let _ = std::fs::remove_dir_all(&dir);
        let ms = restore(n, &dir);
        println!("{{\"bench\":\"restore\",\"sessions\":{n},\"ms\":{ms:.1}}}");
        restores.push(ms);
    }
    println!(
        "{{\"bench\":\"restore_ratio_10000_vs_10\",\"ratio\":{:.2}}}",
        restores[1] / restores[0]
    );
    let _ = std::fs::remove_dir_all(&tmp);
}
