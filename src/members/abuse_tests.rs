//! The limits that hold against a hostile guest, through `Members`' own
//! methods: member-number attempts counted per device and per box, the
//! cap on stored members, no consent and no binding from a member number
//! the operator does not trust, codes only to the store's countries,
//! only for a page's ticket, within a cap per block of numbers and per
//! box, and those caps kept across a reopen on the same store.

use super::*;
use crate::store::{MemoryStore, RedbStore};
use crate::uplink::sink::OutboxSink;
use crate::uplink::{CloudEvent, Outbox};

fn mac(n: u8) -> MacAddr {
    MacAddr([0x02, 0x11, 0, 0, 0, n])
}

fn open_on(store: Arc<dyn Store>, config: MembersConfig) -> (Members, Arc<Outbox>) {
    let outbox = Arc::new(Outbox::open(None, store.clone(), "wulin-01").unwrap());
    let key = DeviceKey::from_bytes([7; 32]);
    let sink = Arc::new(OutboxSink {
        outbox: outbox.clone(),
        key: key.clone(),
    });
    (Members::open(store, key, config, sink).unwrap(), outbox)
}

fn open(config: MembersConfig) -> (Members, Arc<Outbox>) {
    open_on(Arc::new(MemoryStore::new()), config)
}

fn linked_events(outbox: &Outbox) -> Vec<CloudEvent> {
    outbox
        .recent(10_000)
        .unwrap()
        .into_iter()
        .filter(|e| e.ty == crate::uplink::event::MEMBER_LINKED)
        .collect()
}

const EVERYTHING: Consent = Consent {
    remember_device: true,
    marketing: true,
};

/// A member number signed in and linked from `device` with every consent
/// ticked.
fn number_sign_in(m: &Members, number: &str, device: MacAddr, now: Timestamp) -> Linked {
    let id = m.verify_member_number(number, device, now).unwrap();
    m.link(&id, device, EVERYTHING, None, now).unwrap()
}

#[test]
fn every_member_number_attempt_counts_against_the_device() {
    let (m, _) = open(MembersConfig::default());
    let now = Timestamp::now();
    // Good numbers, each a different "member": successes count too.
    for i in 0..10u32 {
        m.verify_member_number(&format!("{}", 40_000_000 + i), mac(1), now)
            .unwrap();
    }
    match m.verify_member_number("40000099", mac(1), now) {
        Err(MemberError::NumberLimited { retry_after }) => {
            assert!(retry_after > Duration::from_secs(3500), "{retry_after:?}")
        }
        other => panic!("{other:?}"),
    }
    // The device's budget is shared with code requests.
    assert!(matches!(
        m.request_code("13812345678", mac(1), now),
        Err(MemberError::RateLimited { .. })
    ));
    // Another device may; this one again an hour later.
    m.verify_member_number("40000099", mac(2), now).unwrap();
    m.verify_member_number("40000099", mac(1), now.plus(Duration::from_secs(3600)))
        .unwrap();
}

#[test]
fn member_number_attempts_are_capped_per_box_whatever_the_mac() {
    let config = MembersConfig {
        member_number_per_hour: 6,
        ..MembersConfig::default()
    };
    let (m, _) = open(config);
    let now = Timestamp::now();
    // Three good and three bad numbers, each from a new MAC.
    for i in 0..3u8 {
        m.verify_member_number(&format!("5000000{i}"), mac(i), now)
            .unwrap();
        assert!(matches!(
            m.verify_member_number("12", mac(100 + i), now),
            Err(MemberError::BadMemberNumber)
        ));
    }
    for (n, device) in [("50000009", mac(50)), ("12", mac(51))] {
        assert!(
            matches!(
                m.verify_member_number(n, device, now),
                Err(MemberError::NumberLimited { .. })
            ),
            "{n}"
        );
    }
    assert_eq!(m.lock().limits.counts().1, 6, "refusals are not counted");
    let later = now.plus(Duration::from_secs(3660));
    m.verify_member_number("50000009", mac(50), later).unwrap();
}

#[test]
fn an_untrusted_member_number_stores_no_consent_and_binds_nothing() {
    let (m, outbox) = open(MembersConfig::default());
    assert!(!m.config().member_number_trusted, "the default");
    let now = Timestamp::now();
    let linked = number_sign_in(&m, "88001234", mac(1), now);
    assert!(!linked.remembered && !linked.consent_stored, "{linked:?}");
    assert_eq!(m.recognise(mac(1), now), None);
    assert_eq!(m.bound_devices(), 0);
    let views = m.list();
    assert_eq!(views.len(), 1);
    assert!(views[0].devices.is_empty());
    assert!(views[0].consents["remember_device"].is_null());
    assert!(
        views[0].consents["marketing"].is_null(),
        "{}",
        views[0].consents
    );
    let events = linked_events(&outbox);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].data["remember_device"], false);
    assert_eq!(events[0].data["marketing"], false);

    // A device bound to a member by phone is not taken over either: the
    // number signs it in for the session and the binding just goes.
    let issued = m.request_code("13812345678", mac(2), now).unwrap();
    let phone = m
        .verify_code("13812345678", &issued.code, mac(2), now)
        .unwrap();
    assert!(
        m.link(&phone, mac(2), EVERYTHING, None, now)
            .unwrap()
            .remembered
    );
    let linked = number_sign_in(&m, "88001234", mac(2), now);
    assert!(!linked.remembered);
    assert_eq!(m.recognise(mac(2), now), None);
    let views = m.list();
    let number = views
        .iter()
        .find(|v| v.member_id == linked.member_id)
        .unwrap();
    assert!(number.devices.is_empty() && number.consents["marketing"].is_null());
}

#[test]
fn a_trusted_member_number_may_consent_and_be_remembered() {
    let config = MembersConfig {
        member_number_trusted: true,
        ..MembersConfig::default()
    };
    let (m, outbox) = open(config);
    let now = Timestamp::now();
    let linked = number_sign_in(&m, "88001234", mac(1), now);
    assert!(linked.remembered && linked.consent_stored);
    assert_eq!(m.recognise(mac(1), now), Some(linked.member_id));
    assert_eq!(m.list()[0].consents["marketing"]["granted"], true);
    assert_eq!(linked_events(&outbox)[0].data["marketing"], true);
}

#[test]
fn stored_members_are_capped_and_a_new_one_past_it_is_stored_nowhere() {
    let config = MembersConfig {
        max_members: 3,
        member_number_trusted: true,
        ..MembersConfig::default()
    };
    let (m, outbox) = open(config.clone());
    let now = Timestamp::now();
    for i in 0..3u8 {
        let linked = number_sign_in(&m, &format!("6000000{i}"), mac(i), now);
        assert!(linked.remembered, "{i}");
    }
    let past = number_sign_in(&m, "60000009", mac(9), now);
    assert!(!past.remembered && !past.consent_stored, "{past:?}");
    assert_eq!(m.list().len(), 3);
    assert_eq!(m.recognise(mac(9), now), None);
    assert_eq!(linked_events(&outbox)[3].data["marketing"], false);
    // A member the box knows still signs in with everything.
    let known = number_sign_in(&m, "60000000", mac(20), now);
    assert!(known.remembered && known.consent_stored);
    // Erasing one makes room; the count is taken from the store on open.
    m.erase(&known.member_id, now).unwrap();
    assert!(number_sign_in(&m, "60000009", mac(9), now).consent_stored);
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (m, _) = open_on(store.clone(), config.clone());
    for i in 0..3u8 {
        number_sign_in(&m, &format!("6100000{i}"), mac(i), now);
    }
    drop(m);
    let (m, _) = open_on(store, config);
    assert!(!number_sign_in(&m, "61000009", mac(9), now).consent_stored);
}

#[test]
fn codes_go_only_to_the_store_countries() {
    let (m, _) = open(MembersConfig::default());
    let now = Timestamp::now();
    for foreign in ["+1 415 555 0100", "+44 7700 900123", "00852 9123 4567"] {
        assert!(
            matches!(
                m.request_code(foreign, mac(1), now),
                Err(MemberError::CountryNotAllowed)
            ),
            "{foreign}"
        );
    }
    m.request_code("138 1234 5678", mac(1), now).unwrap();
    m.request_code("+86 139 0000 1111", mac(1), now).unwrap();
    let config = MembersConfig {
        otp_countries: vec!["86".into(), "852".into()],
        ..MembersConfig::default()
    };
    let (m, _) = open(config);
    m.request_code("00852 9123 4567", mac(1), now).unwrap();
    assert_eq!(m.lock().limits.counts().0, 1, "one code counted");
}

#[test]
fn numbers_in_one_block_share_a_cap() {
    let config = MembersConfig {
        otp_per_prefix_per_hour: 2,
        ..MembersConfig::default()
    };
    let (m, _) = open(config);
    let now = Timestamp::now();
    m.request_code("13812340001", mac(1), now).unwrap();
    m.request_code("+86 138 1234 0002", mac(2), now).unwrap();
    assert!(matches!(
        m.request_code("13812349999", mac(3), now),
        Err(MemberError::RateLimited { .. })
    ));
    // Another block is not held up.
    m.request_code("13812350000", mac(3), now).unwrap();
}

#[test]
fn the_box_caps_survive_a_reopen_on_the_same_store() {
    let dir = tempfile::tempdir().unwrap();
    let config = MembersConfig {
        otp_per_hour: 2,
        member_number_per_hour: 2,
        ..MembersConfig::default()
    };
    let now = Timestamp::now();
    {
        let store: Arc<dyn Store> = Arc::new(RedbStore::open(dir.path()).unwrap());
        let (m, _) = open_on(store, config.clone());
        m.request_code("13800000001", mac(1), now).unwrap();
        m.request_code("13900000002", mac(2), now).unwrap();
        assert!(matches!(
            m.request_code("13700000003", mac(3), now),
            Err(MemberError::RateLimited { .. })
        ));
        m.verify_member_number("70000001", mac(4), now).unwrap();
        m.verify_member_number("70000002", mac(5), now).unwrap();
    }
    let store: Arc<dyn Store> = Arc::new(RedbStore::open(dir.path()).unwrap());
    let (m, _) = open_on(store, config.clone());
    let soon = now.plus(Duration::from_secs(60));
    assert!(matches!(
        m.request_code("13600000004", mac(6), soon),
        Err(MemberError::RateLimited { .. })
    ));
    assert!(matches!(
        m.verify_member_number("70000003", mac(7), soon),
        Err(MemberError::NumberLimited { .. })
    ));
    // The hour does end.
    let later = now.plus(Duration::from_secs(3660));
    m.request_code("13600000004", mac(6), later).unwrap();
}

#[test]
fn a_code_for_the_portal_costs_a_fresh_ticket_for_that_device() {
    let (m, _) = open(MembersConfig::default());
    let now = Timestamp::now();
    let phone = "13812345678";
    for junk in ["", "not-a-ticket"] {
        assert!(matches!(
            m.request_code_for_page(phone, mac(1), "tokA", junk, now),
            Err(MemberError::PageExpired)
        ));
    }
    let ticket = m.code_ticket("tokA", now);
    assert!(
        matches!(
            m.request_code_for_page(phone, mac(2), "tokB", &ticket, now),
            Err(MemberError::PageExpired)
        ),
        "minted for another device"
    );
    // A refusal before anything is sent leaves the ticket good.
    assert!(matches!(
        m.request_code_for_page("+1 415 555 0100", mac(1), "tokA", &ticket, now),
        Err(MemberError::CountryNotAllowed)
    ));
    m.request_code_for_page(phone, mac(1), "tokA", &ticket, now)
        .unwrap();
    let soon = now.plus(Duration::from_secs(60));
    assert!(
        matches!(
            m.request_code_for_page("13900001111", mac(1), "tokA", &ticket, soon),
            Err(MemberError::PageExpired)
        ),
        "spent"
    );
    // Given back (HQ did not send the code): good for one more.
    m.return_code_ticket("tokA", &ticket, soon);
    m.request_code_for_page("13900001111", mac(1), "tokA", &ticket, soon)
        .unwrap();
    let stale = m.code_ticket("tokA", now);
    assert!(matches!(
        m.request_code_for_page(
            "13700001111",
            mac(1),
            "tokA",
            &stale,
            now.plus(ticket::TICKET_TTL)
        ),
        Err(MemberError::PageExpired)
    ));
    assert_eq!(m.lock().limits.counts().0, 2, "two codes, two tickets");
}
