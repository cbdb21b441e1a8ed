//! Members' Wi-Fi keys through `Members`: who is offered a key, the PSK
//! file after issue, renewal, removal, erasure and a restart, and what
//! `ctl members` shows.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::config::MembersConfig;
use crate::members::Consent;
use crate::privacy::DeviceKey;
use crate::store::{MemoryStore, Store};
use crate::uplink::sink::LogSink;

const SSID: &str = "Store Members";

fn mac(n: u8) -> MacAddr {
    MacAddr([0x3c, 0x22, 0xfb, 0, 1, n])
}

fn config(dir: &Path, allow_member_number: bool) -> MembersConfig {
    crate::app::rig::wifi_members(dir, SSID, allow_member_number)
}

fn open(store: Arc<dyn Store>, config: MembersConfig) -> Members {
    Members::open(
        store,
        DeviceKey::from_bytes([7; 32]),
        config,
        Arc::new(LogSink),
    )
    .unwrap()
}

const REMEMBER: Consent = Consent {
    remember_device: true,
    marketing: false,
};

fn phone_sign_in(m: &Members, phone: &str, device: MacAddr, consent: Consent) -> MemberId {
    let now = Timestamp::now();
    let issued = m.request_code(phone, device, now).unwrap();
    let id = m.verify_code(phone, &issued.code, device, now).unwrap();
    m.link(&id, device, consent, None, now).unwrap();
    id
}

fn psk_lines(dir: &Path) -> Vec<String> {
    fs::read_to_string(dir.join("members.psk"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn line(member_id: &str, passphrase: &Passphrase) -> String {
    format!(
        "keyid={member_id} 00:00:00:00:00:00 {}",
        key::psk_hex(passphrase.expose(), SSID)
    )
}

#[test]
fn a_phone_sign_in_with_remember_is_offered_one_key_once() {
    let dir = tempfile::tempdir().unwrap();
    let m = open(Arc::new(MemoryStore::new()), config(dir.path(), false));
    // Written at open, empty and private.
    assert_eq!(psk_lines(dir.path()), Vec::<String>::new());
    let mode = fs::metadata(dir.path().join("members.psk"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let id = phone_sign_in(&m, "13812345678", mac(1), REMEMBER);
    let now = Timestamp::now();
    assert!(!m.has_wifi_key(&id), "nothing is issued before it is shown");
    // Another device, or another member on this one, gets nothing.
    assert!(m.take_wifi_offer(mac(2), &id, now).is_none());
    assert!(
        m.take_wifi_offer(mac(1), "m_someoneelse0000000000", now)
            .is_none()
    );
    let p = m.take_wifi_offer(mac(1), &id, now).expect("offered");
    assert!(m.has_wifi_key(&id));
    assert_eq!(m.member_for_keyid(&id).as_deref(), Some(id.as_str()));
    assert_eq!(m.member_for_keyid("m_nobody"), None);
    assert_eq!(psk_lines(dir.path()), vec![line(&id, &p)]);
    // Shown once; kept a while for the profile download on that device.
    assert!(m.take_wifi_offer(mac(1), &id, now).is_none());
    assert_eq!(m.shown_wifi_key(mac(1), &id, now), Some(p.clone()));
    assert_eq!(m.shown_wifi_key(mac(2), &id, now), None);
    assert_eq!(m.shown_wifi_key(mac(1), &id, now.plus(SHOWN_TTL)), None);
    // The store holds the PSK, never the passphrase.
    let views = serde_json::to_string(&m.list()).unwrap();
    assert!(!views.contains(p.expose()) && !views.contains(&p.psk_hex(SSID)));
    assert!(views.contains("\"has_wifi_key\":true"), "{views}");
}

#[test]
fn no_key_without_remember_or_for_a_member_number_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let m = open(Arc::new(MemoryStore::new()), config(dir.path(), false));
    let now = Timestamp::now();
    let id = phone_sign_in(&m, "13812345678", mac(1), Consent::default());
    assert!(m.take_wifi_offer(mac(1), &id, now).is_none());
    // A member number (trusted, remembered) still gets no key...
    let id = m.verify_member_number("40000001", mac(3), now).unwrap();
    let linked = m.link(&id, mac(3), REMEMBER, None, now).unwrap();
    assert!(linked.remembered);
    assert!(m.take_wifi_offer(mac(3), &id, now).is_none());
    assert!(m.renew_wifi_key(mac(3), &id, now).is_err());
    assert!(psk_lines(dir.path()).is_empty());

    // ...unless the operator allows it.
    let dir = tempfile::tempdir().unwrap();
    let m = open(Arc::new(MemoryStore::new()), config(dir.path(), true));
    let id = m.verify_member_number("40000001", mac(3), now).unwrap();
    m.link(&id, mac(3), REMEMBER, None, now).unwrap();
    assert!(m.take_wifi_offer(mac(3), &id, now).is_some());
}

#[test]
fn renewal_replaces_the_psk_line_and_tells_the_listener() {
    let dir = tempfile::tempdir().unwrap();
    let m = open(Arc::new(MemoryStore::new()), config(dir.path(), false));
    let heard = Arc::new(Mutex::new(Vec::new()));
    let h = heard.clone();
    m.wifi()
        .unwrap()
        .set_listener(Arc::new(move |c: &WifiChange| {
            h.lock().unwrap().push(c.clone())
        }));
    let a = phone_sign_in(&m, "13812345678", mac(1), REMEMBER);
    let b = phone_sign_in(&m, "13900001111", mac(2), REMEMBER);
    let now = Timestamp::now();
    let pa = m.take_wifi_offer(mac(1), &a, now).unwrap();
    let pb = m.take_wifi_offer(mac(2), &b, now).unwrap();
    let mut want = vec![line(&a, &pa), line(&b, &pb)];
    want.sort();
    assert_eq!(psk_lines(dir.path()), want);

    m.renew_wifi_key(mac(1), &a, now).unwrap();
    let pa2 = m.take_wifi_offer(mac(1), &a, now).unwrap();
    assert_ne!(pa, pa2);
    let lines = psk_lines(dir.path());
    assert!(lines.contains(&line(&a, &pa2)) && !lines.contains(&line(&a, &pa)));
    assert!(lines.contains(&line(&b, &pb)));
    // Renewal only for a device bound to the member.
    assert!(matches!(
        m.renew_wifi_key(mac(2), &a, now),
        Err(WifiKeyError::NotEligible)
    ));

    assert!(m.remove_wifi_key(&b).unwrap());
    assert!(!m.remove_wifi_key(&b).unwrap());
    assert_eq!(psk_lines(dir.path()), vec![line(&a, &pa2)]);
    assert!(!m.has_wifi_key(&b));

    m.erase(&a, now).unwrap();
    assert!(psk_lines(dir.path()).is_empty());
    assert_eq!(m.member_for_keyid(&a), None);
    assert_eq!(
        *heard.lock().unwrap(),
        vec![
            WifiChange::Issued {
                member_id: a.clone(),
                renewed: false
            },
            WifiChange::Issued {
                member_id: b.clone(),
                renewed: false
            },
            WifiChange::Issued {
                member_id: a.clone(),
                renewed: true
            },
            WifiChange::Removed { member_id: b },
            WifiChange::Removed { member_id: a },
        ]
    );
}

#[test]
fn keys_survive_a_restart_and_the_file_is_rewritten_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (id, p) = {
        let m = open(store.clone(), config(dir.path(), false));
        let id = phone_sign_in(&m, "13812345678", mac(1), REMEMBER);
        let p = m.take_wifi_offer(mac(1), &id, Timestamp::now()).unwrap();
        (id, p)
    };
    fs::remove_file(dir.path().join("members.psk")).unwrap();
    let m = open(store.clone(), config(dir.path(), false));
    assert_eq!(psk_lines(dir.path()), vec![line(&id, &p)]);
    assert!(m.has_wifi_key(&id));
    // A new SSID: the old key cannot work and is left out.
    let mut other = config(dir.path(), false);
    other.wifi.as_mut().unwrap().ssid = "Other".into();
    let m = open(store, other);
    assert!(!m.has_wifi_key(&id));
    assert!(psk_lines(dir.path()).is_empty());
}

#[test]
fn without_members_wifi_nothing_is_offered() {
    let m = open(Arc::new(MemoryStore::new()), MembersConfig::default());
    let id = phone_sign_in(&m, "13812345678", mac(1), REMEMBER);
    let now = Timestamp::now();
    assert!(m.wifi().is_none());
    assert!(m.take_wifi_offer(mac(1), &id, now).is_none());
    assert!(matches!(
        m.issue_wifi_key(&id, now),
        Err(WifiKeyError::NotConfigured)
    ));
    assert!(!m.list()[0].has_wifi_key);
}
