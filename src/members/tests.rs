//! Tests of `Members` through its public methods, on a memory store (or
//! redb, across a reopen): sign-in by code and by member number, ids,
//! linking and the device limit, consent, expiry, erasure and staff
//! credit, with the events HQ is sent.

use super::*;
use crate::config::MemberNumberCheck;
use crate::store::{MemoryStore, RedbStore};
use crate::uplink::sink::{LogSink, OutboxSink};
use crate::uplink::{CloudEvent, Outbox};
use serde_json::json;

const PHONE: &str = "138 1234 5678";
const DAY: Duration = Duration::from_secs(86_400);

fn mac(n: u8) -> MacAddr {
    MacAddr([0x3c, 0x22, 0xfb, 0, 0, n])
}

fn key() -> DeviceKey {
    DeviceKey::from_bytes([7; 32])
}

fn open_with(store: Arc<dyn Store>, config: MembersConfig) -> (Members, Arc<Outbox>) {
    let outbox = Arc::new(Outbox::open(None, store.clone(), "wulin-01").unwrap());
    let sink = Arc::new(OutboxSink {
        outbox: outbox.clone(),
        key: key(),
    });
    let m = Members::open(store, key(), config, sink).unwrap();
    (m, outbox)
}

fn open() -> (Members, Arc<Outbox>) {
    open_with(Arc::new(MemoryStore::new()), MembersConfig::default())
}

/// A member signed in by phone (code requested and verified) at `now`.
fn verified(m: &Members, phone: &str, device: MacAddr, now: Timestamp) -> MemberId {
    let issued = m.request_code(phone, device, now).unwrap();
    m.verify_code(phone, &issued.code, device, now).unwrap()
}

const REMEMBER: Consent = Consent {
    remember_device: true,
    marketing: false,
};

fn events_of(outbox: &Outbox, ty: &str) -> Vec<CloudEvent> {
    outbox
        .recent(1000)
        .unwrap()
        .into_iter()
        .filter(|e| e.ty == ty)
        .collect()
}

#[test]
fn phone_sign_in_issues_a_code_and_verifies_it() {
    let (m, _) = open();
    let now = Timestamp::now();
    let issued = m.request_code(PHONE, mac(1), now).unwrap();
    assert_eq!(issued.phone_e164, "+8613812345678");
    assert_eq!(issued.code.len(), 6);
    assert!(issued.code.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(issued.expires_at, now.plus(Duration::from_secs(300)));
    assert!(is_member_id(&issued.member_id), "{}", issued.member_id);
    let shown = format!("{issued:?}");
    assert!(!shown.contains("5678") && !shown.contains(&issued.code));

    // The same number in another spelling is the same member.
    let id = m
        .verify_code("+86 138-1234-5678", &issued.code, mac(1), now)
        .unwrap();
    assert_eq!(id, issued.member_id);
    assert_eq!(m.phone_last4(&id).as_deref(), Some("5678"));
    assert!(matches!(
        m.verify_code(PHONE, &issued.code, mac(1), now),
        Err(MemberError::NoCode)
    ));
}

#[test]
fn refusals_have_keys_and_never_show_the_number() {
    let (m, _) = open();
    let now = Timestamp::now();
    let e = m.request_code("not a phone", mac(1), now).unwrap_err();
    assert_eq!(e.key(), "err_bad_phone");
    let issued = m.request_code(PHONE, mac(1), now).unwrap();
    let e = m.request_code(PHONE, mac(1), now).unwrap_err();
    assert_eq!(e.key(), "err_rate_limited");
    let wrong = if issued.code == "000000" {
        "111111"
    } else {
        "000000"
    };
    let e = m.verify_code(PHONE, wrong, mac(1), now).unwrap_err();
    assert_eq!(e.key(), "err_code_wrong");
    for e in [
        e,
        MemberError::NoCode,
        MemberError::LockedOut { until: now },
        MemberError::BadMemberNumber,
        MemberError::UnknownMember,
        MemberError::RateLimited {
            retry_after: Duration::from_secs(20),
        },
    ] {
        let text = e.to_string();
        assert!(
            !text.contains("5678") && !text.contains(&issued.code),
            "{text}"
        );
    }
}

#[test]
fn member_ids_are_keyed_and_separate_phones_from_numbers() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (m, _) = open_with(store, MembersConfig::default());
    let by_phone = m.id_for("phone", "8613812345678");
    assert_eq!(by_phone, m.id_for("phone", "8613812345678"));
    assert_ne!(by_phone, m.id_for("number", "8613812345678"));
    assert!(!by_phone.contains("5678"));
    let other = Members::open(
        Arc::new(MemoryStore::new()),
        DeviceKey::from_bytes([8; 32]),
        MembersConfig::default(),
        Arc::new(LogSink),
    )
    .unwrap();
    assert_ne!(by_phone, other.id_for("phone", "8613812345678"));
    assert_ne!(
        by_phone[2..],
        key().device_id(mac(1))[..22],
        "another domain than device ids"
    );
}

#[test]
fn member_numbers_follow_the_configured_format_and_luhn() {
    let config = MembersConfig {
        member_number_digits: (8, 12),
        member_number_check: MemberNumberCheck::Luhn,
        ..MembersConfig::default()
    };
    let (m, _) = open_with(Arc::new(MemoryStore::new()), config);
    let now = Timestamp::now();
    let id = m
        .verify_member_number("7992 7398 713", mac(1), now)
        .unwrap();
    assert_eq!(
        id,
        m.verify_member_number("79927398713", mac(2), now).unwrap()
    );
    assert_eq!(m.phone_last4(&id), None);
    for bad in ["79927398710", "1234567", "abcdefghij", ""] {
        assert!(
            matches!(
                m.verify_member_number(bad, mac(3), now),
                Err(MemberError::BadMemberNumber)
            ),
            "{bad:?}"
        );
    }
    // Failed numbers spend the device's hourly budget.
    for _ in 0..6 {
        let _ = m.verify_member_number("1", mac(3), now);
    }
    assert!(matches!(
        m.verify_member_number("79927398713", mac(3), now),
        Err(MemberError::NumberLimited { .. })
    ));
}

#[test]
fn link_binds_and_max_devices_1_moves_the_binding() {
    let (m, outbox) = open();
    let now = Timestamp::now();
    let a = verified(&m, PHONE, mac(1), now);
    let linked = m.link(&a, mac(1), REMEMBER, Some("S042"), now).unwrap();
    assert_eq!(
        linked,
        Linked {
            member_id: a.clone(),
            remembered: true,
            consent_stored: true,
            unbound: vec![]
        }
    );
    assert_eq!(m.recognise(mac(1), now).as_deref(), Some(a.as_str()));
    assert_eq!(m.recognise(mac(9), now), None);

    // A second device of the same member replaces the first.
    let t1 = now.plus(Duration::from_secs(60));
    let again = verified(&m, PHONE, mac(2), t1);
    let linked = m.link(&again, mac(2), REMEMBER, None, t1).unwrap();
    assert_eq!(linked.unbound, vec![mac(1)]);
    assert_eq!(m.recognise(mac(1), t1), None);
    assert_eq!(m.recognise(mac(2), t1).as_deref(), Some(a.as_str()));

    // Another member signing in on that device takes it over.
    let b = verified(&m, "13900001111", mac(2), t1);
    let linked = m.link(&b, mac(2), REMEMBER, None, t1).unwrap();
    assert!(linked.unbound.is_empty(), "mac 2 is still recognised");
    assert_eq!(m.recognise(mac(2), t1).as_deref(), Some(b.as_str()));
    let views = m.list();
    assert_eq!(views.len(), 2);
    let va = views.iter().find(|v| v.member_id == a).unwrap();
    assert!(va.devices.is_empty());
    assert_eq!(va.staff_code.as_deref(), Some("S042"));
    assert_eq!(va.phone_last4.as_deref(), Some("5678"));
    assert_eq!(va.method, "otp");
    let vb = views.iter().find(|v| v.member_id == b).unwrap();
    assert_eq!(vb.devices, vec![mac(2).to_string()]);

    // HQ hears of each link, by device_id, never the MAC.
    let linked = events_of(&outbox, crate::uplink::event::MEMBER_LINKED);
    assert_eq!(linked.len(), 3);
    let first = &linked[0].data;
    assert_eq!(first["member_id"], a.as_str());
    assert_eq!(first["device_id"], key().device_id(mac(1)).as_str());
    assert_eq!(first["staff_code"], "S042");
    assert_eq!(first["remember_device"], true);
    assert_eq!(first["marketing"], false);
    let all = serde_json::to_string(&outbox.recent(1000).unwrap()).unwrap();
    assert!(!all.contains(&mac(1).to_string()) && !all.contains("13812345678"));
}

#[test]
fn more_devices_when_configured() {
    let config = MembersConfig {
        max_devices: 2,
        ..MembersConfig::default()
    };
    let (m, _) = open_with(Arc::new(MemoryStore::new()), config);
    let now = Timestamp::now();
    let a = verified(&m, PHONE, mac(1), now);
    m.link(&a, mac(1), REMEMBER, None, now).unwrap();
    let t1 = now.plus(Duration::from_secs(60));
    let a = verified(&m, PHONE, mac(2), t1);
    assert!(
        m.link(&a, mac(2), REMEMBER, None, t1)
            .unwrap()
            .unbound
            .is_empty()
    );
    let t2 = t1.plus(Duration::from_secs(60));
    m.recognise(mac(1), t2);
    let a = verified(&m, PHONE, mac(3), t2);
    let linked = m.link(&a, mac(3), REMEMBER, None, t2).unwrap();
    assert_eq!(linked.unbound, vec![mac(2)], "mac 1 was seen more recently");
}

#[test]
fn no_consent_no_remembering() {
    let (m, _) = open();
    let now = Timestamp::now();
    let a = verified(&m, PHONE, mac(1), now);
    let consent = Consent {
        remember_device: false,
        marketing: true,
    };
    let linked = m.link(&a, mac(1), consent, Some("bad code!"), now).unwrap();
    assert!(!linked.remembered);
    assert!(linked.unbound.is_empty());
    assert_eq!(m.recognise(mac(1), now), None);
    let v = &m.list()[0];
    assert!(v.devices.is_empty());
    assert_eq!(v.staff_code, None, "not a staff code: ignored");
    assert!(
        v.consents["remember_device"].is_null(),
        "an unticked box records nothing: {}",
        v.consents
    );
    assert_eq!(v.consents["marketing"]["granted"], true);
    assert_eq!(v.consents["marketing"]["version"], "1");
    assert_eq!(v.consents["marketing"]["at"], now.rfc3339().as_str());

    // Remembered once, then signed in on it without the consent: dropped.
    m.link(&a, mac(1), REMEMBER, None, now).unwrap();
    assert!(m.recognise(mac(1), now).is_some());
    let linked = m.link(&a, mac(1), consent, None, now).unwrap();
    assert_eq!(linked.unbound, vec![mac(1)]);
    assert_eq!(m.recognise(mac(1), now), None);
    // ... while the consent given earlier still stands for what it was
    // given, and an unticked marketing box withdraws nothing.
    let quiet = Consent::default();
    m.link(&a, mac(2), quiet, None, now).unwrap();
    let v = &m.list()[0];
    assert_eq!(v.consents["remember_device"]["granted"], true);
    assert_eq!(v.consents["marketing"]["granted"], true);
}

#[test]
fn link_needs_a_verified_or_known_member() {
    let (m, _) = open();
    let now = Timestamp::now();
    let fake = m.id_for("phone", "8613900000000");
    assert!(matches!(
        m.link(&fake, mac(1), REMEMBER, None, now),
        Err(MemberError::UnknownMember)
    ));
    // A verification is good for 30 minutes.
    let a = verified(&m, PHONE, mac(1), now);
    assert!(matches!(
        m.link(
            &a,
            mac(1),
            REMEMBER,
            None,
            now.plus(Duration::from_secs(1800))
        ),
        Err(MemberError::UnknownMember)
    ));
    let a = verified(&m, PHONE, mac(1), now.plus(Duration::from_secs(1800)));
    m.link(
        &a,
        mac(1),
        REMEMBER,
        None,
        now.plus(Duration::from_secs(1801)),
    )
    .unwrap();
    // Known now: a later link (e.g. the consent page sent twice) works.
    m.link(
        &a,
        mac(1),
        REMEMBER,
        None,
        now.plus(Duration::from_secs(9000)),
    )
    .unwrap();
}

#[test]
fn stale_bindings_expire_and_recognition_keeps_them_alive() {
    let (m, _) = open();
    let t0 = Timestamp::now();
    let a = verified(&m, PHONE, mac(1), t0);
    m.link(&a, mac(1), REMEMBER, None, t0).unwrap();
    let b = verified(&m, "13900001111", mac(2), t0);
    m.link(&b, mac(2), REMEMBER, None, t0).unwrap();
    // mac 1 is seen on day 100; mac 2 never again.
    assert!(m.recognise(mac(1), t0.plus(DAY * 100)).is_some());
    assert_eq!(m.recognise(mac(2), t0.plus(DAY * 180)), None, "lapsed");
    assert_eq!(m.tick(t0.plus(DAY * 180)), vec![mac(2)]);
    assert!(m.expire(t0.plus(DAY * 279)).is_empty());
    assert_eq!(m.expire(t0.plus(DAY * 280)), vec![mac(1)]);
    assert_eq!(m.recognise(mac(1), t0.plus(DAY * 280)), None);
    assert!(m.list().iter().all(|v| v.devices.is_empty()));
}

#[test]
fn members_and_bindings_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let now = Timestamp::now();
    let a;
    {
        let store: Arc<dyn Store> = Arc::new(RedbStore::open(dir.path()).unwrap());
        let (m, _) = open_with(store, MembersConfig::default());
        a = verified(&m, PHONE, mac(1), now);
        m.link(&a, mac(1), REMEMBER, Some("S1"), now).unwrap();
        // A recognition two hours later is written by the next tick.
        m.recognise(mac(1), now.plus(Duration::from_secs(7200)));
        m.tick(now.plus(Duration::from_secs(7200)));
    }
    let store: Arc<dyn Store> = Arc::new(RedbStore::open(dir.path()).unwrap());
    let (m, _) = open_with(store, MembersConfig::default());
    assert_eq!(m.recognise(mac(1), now).as_deref(), Some(a.as_str()));
    assert_eq!(m.phone_last4(&a).as_deref(), Some("5678"));
    let v = &m.list()[0];
    assert_eq!(v.devices, vec![mac(1).to_string()]);
    assert_eq!(
        v.last_seen.as_deref(),
        Some(now.plus(Duration::from_secs(7200)).rfc3339().as_str())
    );
    assert_eq!(m.bound_devices(), 1);
}

#[test]
fn open_prunes_stale_bindings() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let long_ago = Timestamp(Timestamp::now().millis() - 200 * 86_400_000);
    let a;
    {
        let (m, _) = open_with(store.clone(), MembersConfig::default());
        a = verified(&m, PHONE, mac(1), long_ago);
        m.link(&a, mac(1), REMEMBER, None, long_ago).unwrap();
    }
    let (m, _) = open_with(store.clone(), MembersConfig::default());
    assert_eq!(m.recognise(mac(1), Timestamp::now()), None);
    assert_eq!(m.bound_devices(), 0);
    let v = &m.list()[0];
    assert_eq!(v.member_id, a);
    assert!(
        v.devices.is_empty(),
        "the binding is gone from the store too"
    );
}

#[test]
fn erase_removes_the_member_and_tells_hq() {
    let (m, outbox) = open();
    let now = Timestamp::now();
    let a = verified(&m, PHONE, mac(1), now);
    m.link(&a, mac(1), REMEMBER, None, now).unwrap();
    let b = verified(&m, "13900001111", mac(2), now);
    m.link(&b, mac(2), REMEMBER, None, now).unwrap();

    let erased = m.erase(&a, now).unwrap();
    assert_eq!(
        erased,
        Erased {
            member_id: a.clone(),
            devices: vec![mac(1)]
        }
    );
    assert_eq!(m.recognise(mac(1), now), None, "the index forgot it");
    assert_eq!(m.phone_last4(&a), None);
    assert_eq!(m.list().len(), 1, "only the other member is left");
    assert!(m.recognise(mac(2), now).is_some());
    let erased_events = events_of(&outbox, crate::uplink::event::MEMBER_ERASED);
    assert_eq!(erased_events.len(), 1);
    assert_eq!(erased_events[0].data, json!({"member_id": a.clone()}));

    assert!(matches!(m.erase(&a, now), Err(MemberError::UnknownMember)));
    assert!(matches!(
        m.erase("m_; rm -rf /", now),
        Err(MemberError::UnknownMember)
    ));
    assert!(matches!(m.erase("", now), Err(MemberError::UnknownMember)));
    // A new sign-in after erasure starts afresh.
    let again = verified(&m, PHONE, mac(1), now.plus(Duration::from_secs(60)));
    assert_eq!(again, a);
}

#[test]
fn the_first_staff_code_keeps_the_credit() {
    let (m, outbox) = open();
    let now = Timestamp::now();
    let a = verified(&m, PHONE, mac(1), now);
    m.link(&a, mac(1), REMEMBER, Some("S042"), now).unwrap();
    let t1 = now.plus(Duration::from_secs(60));
    let again = verified(&m, PHONE, mac(1), t1);
    m.link(&again, mac(1), REMEMBER, Some("S777"), t1).unwrap();
    let linked = events_of(&outbox, crate::uplink::event::MEMBER_LINKED);
    assert_eq!(linked.len(), 2);
    assert_eq!(linked[1].data["staff_code"], "S042", "{:?}", linked[1].data);
    assert_eq!(m.list()[0].staff_code.as_deref(), Some("S042"));
}
