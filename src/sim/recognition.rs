//! How often a member is recognised with no sign-in, by MAC alone and by
//! MAC plus a personal Wi-Fi key: a population of members' phones over
//! simulated days, each visit put through the real `Members` code (sign-in
//! by phone + code with "remember this device", `recognise` by MAC,
//! `member_for_keyid` for hostapd's `keyid`, key issue and renewal).
//!
//! The model, stated so the figures can be judged:
//! - Visits: each member's gaps between visits are exponential with mean
//!   `mean_gap_days` (at least a day), at a random hour of the store's
//!   day; over `days` days.
//! - Phones: `ios_share` iPhones, the rest Android. On the open SSID an
//!   iPhone uses a private address that rotates every 14 days (iOS 18's
//!   "rotating" default); an Android phone keeps one private address per
//!   SSID, except `android_non_persistent` of them, which take a new one
//!   at every connection. On the members' WPA2 SSID the address does not
//!   matter: hostapd names the key.
//! - Now and then a phone is replaced or reset (`reset_per_visit`): a new
//!   address everywhere, and the saved members' network is gone.
//! - A member not recognised signs in (phone + code, remembered); a
//!   member who `adopts` the key gets one at that sign-in and from then on
//!   joins the members' SSID.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::config::{MembersConfig, WifiConfig};
use crate::mac::MacAddr;
use crate::members::{Consent, Members};
use crate::privacy::DeviceKey;
use crate::store::MemoryStore;
use crate::time::Timestamp;
use crate::uplink::sink::LogSink;

const DAY_MS: i64 = 86_400_000;
/// iOS 18 rotates a private address on an open network about this often.
const IOS_ROTATION_DAYS: i64 = 14;

/// The population and its habits.
#[derive(Debug, Clone)]
pub struct Model {
    pub members: usize,
    pub days: u32,
    pub mean_gap_days: f64,
    pub ios_share: f64,
    pub android_non_persistent: f64,
    pub reset_per_visit: f64,
    /// Members who take the key when it is offered.
    pub adopts: f64,
    pub seed: u64,
}

impl Default for Model {
    fn default() -> Self {
        Model {
            members: 1_000,
            days: 90,
            mean_gap_days: 7.0,
            ios_share: 0.55,
            android_non_persistent: 0.15,
            reset_per_visit: 0.003,
            adopts: 0.6,
            seed: 1,
        }
    }
}

/// Visits, and how many were recognised with no sign-in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub visits: u64,
    pub recognised: u64,
}

impl Tally {
    pub fn share(&self) -> f64 {
        if self.visits == 0 {
            0.0
        } else {
            self.recognised as f64 / self.visits as f64
        }
    }

    fn add(&mut self, recognised: bool) {
        self.visits += 1;
        self.recognised += u64::from(recognised);
    }
}

/// One run's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    /// Nobody uses a key: every member by MAC alone.
    pub mac_only: Tally,
    /// With keys: every visit of a member after their first key (a reset
    /// phone that lost it included)...
    pub key_holders: Tally,
    /// ...and every member visit of that run.
    pub with_keys: Tally,
}

struct Phone {
    ios: bool,
    non_persistent: bool,
    /// Bumped when the phone is replaced or reset.
    generation: u32,
    /// Connections so far (a non-persistent Android's address).
    joins: u32,
    /// Holds the members' network (a key was saved on this phone).
    has_key: bool,
}

/// A visit: member, time.
type Visit = (usize, Timestamp);

fn schedule(model: &Model, rng: &mut StdRng, start: Timestamp) -> Vec<Visit> {
    let end = start.millis() + i64::from(model.days) * DAY_MS;
    let mut visits = Vec::new();
    for m in 0..model.members {
        let mut t = start.millis() + (rng.r#gen::<f64>() * 7.0 * DAY_MS as f64) as i64;
        while t < end {
            let hour = rng.gen_range(10..22);
            visits.push((m, Timestamp(t - t % DAY_MS + hour * 3_600_000)));
            let gap = -model.mean_gap_days * (1.0 - rng.r#gen::<f64>()).ln();
            t += (gap.max(1.0) * DAY_MS as f64) as i64;
        }
    }
    visits.sort_by_key(|v| v.1);
    visits
}

/// The address a phone shows on the open SSID at `now`.
fn open_ssid_mac(member: usize, phone: &Phone, start: Timestamp, now: Timestamp) -> MacAddr {
    let epoch = if phone.ios {
        u32::try_from((now.millis() - start.millis()) / (IOS_ROTATION_DAYS * DAY_MS)).unwrap_or(0)
    } else if phone.non_persistent {
        phone.joins
    } else {
        0
    };
    let m = u32::try_from(member).unwrap_or(u32::MAX);
    let mix = m
        .wrapping_mul(2_654_435_761)
        .wrapping_add(epoch.wrapping_mul(40_503))
        .wrapping_add(phone.generation.wrapping_mul(97));
    let b = mix.to_be_bytes();
    MacAddr([
        0x02,
        (m >> 8) as u8,
        m as u8,
        b[1],
        b[2],
        b[3] ^ (epoch as u8),
    ])
}

fn phone_number(member: usize) -> String {
    format!("139{:08}", member)
}

fn members_for(dir: &std::path::Path, wifi: bool) -> Members {
    let mut config = MembersConfig {
        otp_per_hour: 1000,
        ..MembersConfig::default()
    };
    if wifi {
        config.wifi = Some(WifiConfig {
            ssid: "Store Members".into(),
            psk_file: dir.join("members.psk"),
            hostapd_ctrl: vec![dir.join("hostapd.ctrl")],
            allow_member_number: false,
        });
    }
    Members::open(
        std::sync::Arc::new(MemoryStore::new()),
        DeviceKey::from_bytes([5; 32]),
        config,
        std::sync::Arc::new(LogSink),
    )
    .expect("members on a memory store")
}

/// Signs the member in by phone + code, remembering the device.
fn sign_in(members: &Members, member: usize, mac: MacAddr, now: Timestamp) -> Option<String> {
    let phone = phone_number(member);
    let issued = members.request_code(&phone, mac, now).ok()?;
    let id = members.verify_code(&phone, &issued.code, mac, now).ok()?;
    let consent = Consent {
        remember_device: true,
        marketing: false,
    };
    members.link(&id, mac, consent, None, now).ok()?;
    Some(id)
}

/// One pass over the schedule; `adopts` decides who takes a key.
fn pass(
    model: &Model,
    visits: &[Visit],
    start: Timestamp,
    adopts: f64,
    dir: &std::path::Path,
) -> (Tally, Tally) {
    let members = members_for(dir, adopts > 0.0);
    let mut rng = StdRng::seed_from_u64(model.seed ^ 0x5eed);
    let mut phones: Vec<Phone> = (0..model.members)
        .map(|_| Phone {
            ios: rng.r#gen::<f64>() < model.ios_share,
            non_persistent: rng.r#gen::<f64>() < model.android_non_persistent,
            generation: 0,
            joins: 0,
            has_key: false,
        })
        .collect();
    let adopter: Vec<bool> = (0..model.members)
        .map(|_| rng.r#gen::<f64>() < adopts)
        .collect();
    let mut ids: Vec<Option<String>> = vec![None; model.members];
    let mut had_key = vec![false; model.members];
    let (mut all, mut holders) = (Tally::default(), Tally::default());
    for &(m, now) in visits {
        let phone = &mut phones[m];
        if rng.r#gen::<f64>() < model.reset_per_visit {
            phone.generation += 1;
            phone.has_key = false;
        }
        phone.joins += 1;
        let held_key = phone.has_key;
        let recognised = if held_key {
            // On the members' SSID: hostapd names the key.
            ids[m]
                .as_deref()
                .is_some_and(|id| members.member_for_keyid(id).as_deref() == Some(id))
        } else {
            let mac = open_ssid_mac(m, phone, start, now);
            let known = members.recognise(mac, now);
            known.is_some() && known == ids[m]
        };
        all.add(recognised);
        if had_key[m] {
            holders.add(recognised);
        }
        if !recognised {
            let mac = open_ssid_mac(m, phone, start, now);
            ids[m] = sign_in(&members, m, mac, now).or(ids[m].take());
            if adopter[m]
                && let Some(id) = &ids[m]
                && members.issue_wifi_key(id, now).is_ok()
            {
                phone.has_key = true;
                had_key[m] = true;
            }
        }
    }
    (all, holders)
}

/// Runs the model twice on one schedule: without keys, then with them.
pub fn run(model: &Model) -> Report {
    let dir = tempfile_dir();
    let start = Timestamp(1_798_761_600_000); // 2027-01-01T00:00Z
    let mut rng = StdRng::seed_from_u64(model.seed);
    let visits = schedule(model, &mut rng, start);
    let (mac_only, _) = pass(model, &visits, start, 0.0, &dir);
    let (with_keys, key_holders) = pass(model, &visits, start, model.adopts, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    Report {
        mac_only,
        key_holders,
        with_keys,
    }
}

/// A private scratch directory for the PSK file.
fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "storegate-recognition-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let _ = std::fs::create_dir_all(&dir);
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_recognise_more_visits_than_mac_alone() {
        let model = Model {
            members: 40,
            days: 60,
            ..Model::default()
        };
        let r = run(&model);
        assert!(r.mac_only.visits > 100, "{r:?}");
        assert_eq!(r.mac_only.visits, r.with_keys.visits, "one schedule");
        assert!(r.key_holders.visits > 0, "{r:?}");
        // Rotating iPhone addresses and non-persistent Androids cost
        // recognitions by MAC; a key does not care.
        assert!(r.key_holders.share() > r.mac_only.share(), "{r:?}");
        assert!(r.with_keys.share() > r.mac_only.share(), "{r:?}");
        assert!(r.key_holders.share() >= 0.95, "{r:?}");
    }

    #[test]
    fn an_iphone_on_the_open_ssid_rotates_every_two_weeks() {
        let start = Timestamp(1_798_761_600_000);
        let phone = Phone {
            ios: true,
            non_persistent: false,
            generation: 0,
            joins: 0,
            has_key: false,
        };
        let day = |d: i64| Timestamp(start.millis() + d * DAY_MS);
        assert_eq!(
            open_ssid_mac(3, &phone, start, day(1)),
            open_ssid_mac(3, &phone, start, day(13))
        );
        assert_ne!(
            open_ssid_mac(3, &phone, start, day(13)),
            open_ssid_mac(3, &phone, start, day(15))
        );
        assert!(open_ssid_mac(3, &phone, start, day(1)).is_unicast_client());
    }
}
