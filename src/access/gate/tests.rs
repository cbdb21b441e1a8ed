use std::time::Duration;

use super::*;
use crate::access::MemoryFirewall;
use crate::store::MemoryStore;
use crate::uplink::sink::LogSink;

fn policy() -> SessionPolicy {
    SessionPolicy {
        session_timeout: Duration::from_secs(3600),
        idle_timeout: Duration::from_secs(600),
        max_preauth: 100,
    }
}

fn mac(n: u8) -> MacAddr {
    MacAddr([0x02, 0, 0, 0, 0, n])
}

type Recorder = crate::uplink::sink::MemorySink;

/// A firewall that refuses every grant.
struct Refusing;

impl Firewall for Refusing {
    fn install(&self, _: &[Grant]) -> Result<(), FirewallError> {
        Ok(())
    }
    fn allow(&self, _: Grant) -> Result<(), FirewallError> {
        Err(FirewallError::Netlink("refused for the test".into()))
    }
    fn revoke(&self, _: MacAddr) -> Result<(), FirewallError> {
        Ok(())
    }
    fn recently_active(&self) -> Result<Option<Vec<MacAddr>>, FirewallError> {
        Ok(None)
    }
    fn name(&self) -> &'static str {
        "refusing"
    }
}

#[test]
fn authorise_persists_allows_and_survives_a_reopen() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let fw = Arc::new(MemoryFirewall::new());
    let events = Arc::new(Recorder::default());
    let (gate, restored) = Gate::open(policy(), fw.clone(), store.clone(), events.clone()).unwrap();
    assert_eq!(restored, Restored::default());
    let ip: IpAddr = "192.0.2.10".parse().unwrap();
    let c = gate
        .authorize(mac(1), Some(ip), AuthMethod::ClickThrough, None)
        .unwrap();
    assert!(c.is_authorized());
    assert!(fw.is_allowed(mac(1)));
    assert_eq!(gate.client_by_ip(ip).unwrap().mac, mac(1));
    assert_eq!(events.0.lock().unwrap().len(), 1);
    drop(gate);

    // A new daemon on the same state: the client passes before anything else runs.
    let fw2 = Arc::new(MemoryFirewall::new());
    let (gate, restored) = Gate::open(policy(), fw2.clone(), store, events).unwrap();
    assert_eq!(restored.authorized, 1);
    assert!(fw2.is_allowed(mac(1)));
    assert_eq!(gate.client(mac(1)).unwrap().authorized_at, c.authorized_at);
}

#[test]
fn end_revokes_and_forgets() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let fw = Arc::new(MemoryFirewall::new());
    let (gate, _) = Gate::open(policy(), fw.clone(), store.clone(), Arc::new(LogSink)).unwrap();
    gate.authorize(mac(1), None, AuthMethod::Operator, None)
        .unwrap();
    assert!(gate.end(mac(1), EndReason::Operator).unwrap());
    assert!(!gate.end(mac(1), EndReason::Operator).unwrap());
    assert!(!fw.is_allowed(mac(1)));
    assert!(store.scan(Tree::Clients).unwrap().is_empty());
    assert_eq!(gate.counts(), (0, 1));
}

#[test]
fn a_refused_grant_undoes_the_sign_in() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (gate, _) = Gate::open(
        policy(),
        Arc::new(Refusing),
        store.clone(),
        Arc::new(LogSink),
    )
    .unwrap();
    let err = gate.authorize(mac(1), None, AuthMethod::ClickThrough, None);
    assert!(matches!(err, Err(GateError::Firewall(_))));
    assert!(!gate.client(mac(1)).unwrap().is_authorized());
    assert!(
        store.scan(Tree::Clients).unwrap().is_empty(),
        "nothing left on disk"
    );
}

#[test]
fn corrupt_records_are_skipped_and_counted() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    store.put(Tree::Clients, b"junk", b"not json").unwrap();
    let (_, restored) = Gate::open(
        policy(),
        Arc::new(MemoryFirewall::new()),
        store,
        Arc::new(LogSink),
    )
    .unwrap();
    assert_eq!(restored.corrupt, 1);
}

/// Refuses revokes while `broken` is set; otherwise a MemoryFirewall.
struct FlakyRevokes {
    inner: MemoryFirewall,
    broken: std::sync::atomic::AtomicBool,
}

impl Firewall for FlakyRevokes {
    fn install(&self, g: &[Grant]) -> Result<(), FirewallError> {
        self.inner.install(g)
    }
    fn allow(&self, g: Grant) -> Result<(), FirewallError> {
        self.inner.allow(g)
    }
    fn revoke(&self, mac: MacAddr) -> Result<(), FirewallError> {
        if self.broken.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(FirewallError::Netlink("ENOBUFS for the test".into()));
        }
        self.inner.revoke(mac)
    }
    fn recently_active(&self) -> Result<Option<Vec<MacAddr>>, FirewallError> {
        Ok(None)
    }
    fn name(&self) -> &'static str {
        "flaky"
    }
}

#[test]
fn a_failed_revoke_is_retried_and_does_not_stop_the_others() {
    let fw = Arc::new(FlakyRevokes {
        inner: MemoryFirewall::new(),
        broken: true.into(),
    });
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let events = Arc::new(Recorder::default());
    let (gate, _) = Gate::open(policy(), fw.clone(), store.clone(), events.clone()).unwrap();
    gate.authorize(mac(1), None, AuthMethod::Operator, None)
        .unwrap();
    gate.authorize(mac(2), None, AuthMethod::Operator, None)
        .unwrap();
    assert!(
        gate.end(mac(1), EndReason::Operator).is_err(),
        "the revoke failure is reported"
    );
    // mac(1) is forgotten on disk and in memory, and its end was reported,
    // even though the firewall still lets it through for now.
    assert!(!gate.client(mac(1)).unwrap().is_authorized());
    assert_eq!(store.scan(Tree::Clients).unwrap().len(), 1);
    assert!(fw.inner.is_allowed(mac(1)));
    let ended = |evs: &[Event]| {
        evs.iter()
            .filter(|e| matches!(e, Event::SessionEnded { .. }))
            .count()
    };
    assert_eq!(ended(&events.0.lock().unwrap()), 1);
    // Once the firewall works again, the next tick revokes it.
    fw.broken.store(false, std::sync::atomic::Ordering::SeqCst);
    gate.tick().unwrap();
    assert!(!fw.inner.is_allowed(mac(1)));
    assert!(fw.inner.is_allowed(mac(2)), "the other client is untouched");
}

#[test]
fn forgetting_a_member_ends_its_sessions() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let fw = Arc::new(MemoryFirewall::new());
    let events = Arc::new(Recorder::default());
    let (gate, _) = Gate::open(policy(), fw.clone(), store.clone(), events.clone()).unwrap();
    let member = Some("m_AAAAAAAAAAAAAAAAAAAAAA".to_string());
    gate.authorize(mac(1), None, AuthMethod::Otp, member.clone())
        .unwrap();
    gate.authorize(mac(2), None, AuthMethod::ReturningDevice, member.clone())
        .unwrap();
    gate.authorize(mac(3), None, AuthMethod::Otp, Some("m_other".into()))
        .unwrap();
    let ended = gate.forget_member("m_AAAAAAAAAAAAAAAAAAAAAA").unwrap();
    assert_eq!(ended, vec![mac(1), mac(2)]);
    for m in [mac(1), mac(2)] {
        assert!(!gate.client(m).unwrap().is_authorized());
        assert!(!fw.is_allowed(m));
    }
    assert!(gate.clients().iter().all(|c| c.member_id != member));
    assert!(fw.is_allowed(mac(3)), "another member is untouched");
    let on_disk = format!("{:?}", store.scan(Tree::Clients).unwrap());
    assert!(!on_disk.contains("m_AAAA"));
    assert_eq!(
        events
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| matches!(e, Event::SessionEnded { .. }))
            .count(),
        2
    );
    assert_eq!(
        gate.forget_member("m_AAAAAAAAAAAAAAAAAAAAAA").unwrap(),
        vec![]
    );
}
