//! Members' Wi-Fi: a personal WPA2 key per member on the members' SSID
//! (`[members.wifi]`), so a phone that joins with it is recognised by the
//! key it holds (hostapd names it, `keyid=<member_id>`) instead of by a
//! MAC address that iOS and Android rotate.
//!
//! - `key`: the passphrase (80 random bits, unambiguous symbols) and its
//!   PSK, PBKDF2-HMAC-SHA1 as hostapd computes it;
//! - `psk_file`: hostapd's `wpa_psk_file`, written atomically, mode 0600.
//!
//! Only the PSK is kept, in the member's record (`wifi_key`), with the
//! SSID it was derived for; the passphrase exists in memory only, from
//! the moment the welcome page first shows it until a few minutes later
//! (so the Apple profile can be downloaded), for that device alone.
//!
//! Who gets a key: a member who has just proved who they are on this
//! device with a texted code and ticked "remember this device" (`link`
//! leaves an offer for the device). A member number proves nothing, so
//! it gets no key unless the operator allows it
//! (`members.wifi.allow_member_number`, which also needs
//! `members.member_number_trusted` for the device to be remembered at
//! all). The key is made when the welcome page shows it, replacing any
//! older one; "Get a new key" leaves a new offer for a device still
//! signed in by that proof.
//!
//! The PSK file is rewritten at `open`, after every issue, renewal,
//! removal and erasure; then the listener (`WifiKeys::set_listener`)
//! hears of the change so hostapd can be told to reload the file
//! (`RELOAD_WPA_PSK`) and stations on a replaced or removed key be
//! deauthenticated. Passphrases and PSKs are never logged.

pub mod key;
pub mod psk_file;

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::record::{MemberRecord, Method, WifiKeyRecord};
use super::{MemberId, Members, PENDING_TTL};
use crate::config::WifiConfig;
use crate::mac::MacAddr;
use crate::store::StoreError;
use crate::time::Timestamp;

pub use key::Passphrase;

/// How long a shown passphrase stays in memory for its device (the
/// Apple profile's download).
pub const SHOWN_TTL: Duration = Duration::from_secs(10 * 60);
/// Devices with an offer or a shown passphrase at once.
const MAX_OFFERS: usize = 10_000;

/// What changed in the PSK file, for the listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WifiChange {
    /// A key was issued to the member; `renewed`: it replaced an older
    /// one, whose stations should be deauthenticated.
    Issued { member_id: MemberId, renewed: bool },
    /// The member's key is gone (removed or the member erased): its
    /// stations should be deauthenticated.
    Removed { member_id: MemberId },
}

/// Called after the PSK file was rewritten (from the thread that wrote
/// it; keep it short, e.g. send on a channel).
pub type WifiListener = Arc<dyn Fn(&WifiChange) + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum WifiKeyError {
    #[error("the members' Wi-Fi is not configured ([members.wifi])")]
    NotConfigured,
    /// No stored record (unknown, or not stored: past `max_members`).
    #[error("unknown member")]
    UnknownMember,
    /// Not a device that may get (or renew) a key now.
    #[error("this device may not get a members' Wi-Fi key")]
    NotEligible,
    #[error("state database: {0}")]
    Store(#[from] StoreError),
    #[error("cannot write the PSK file {path}: {source}")]
    File { path: String, source: io::Error },
}

/// A device's way to a key: due after a sign-in, shown once issued.
struct Offer {
    member_id: MemberId,
    at: Timestamp,
    shown: Option<Passphrase>,
}

impl Offer {
    fn live(&self, now: Timestamp) -> bool {
        let ttl = if self.shown.is_some() {
            SHOWN_TTL
        } else {
            PENDING_TTL
        };
        self.at.plus(ttl) > now
    }
}

/// The keys in force and the offers in flight: see the module docs.
pub struct WifiKeys {
    config: WifiConfig,
    /// Member id → PSK hex: exactly what the PSK file holds.
    keys: Mutex<BTreeMap<MemberId, String>>,
    offers: Mutex<HashMap<MacAddr, Offer>>,
    /// Held while the file is written, so writes land in order.
    file: Mutex<()>,
    listener: Mutex<Option<WifiListener>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl WifiKeys {
    /// The keys of `records` derived for the configured SSID (a key made
    /// for another SSID no longer works and is left out of the file).
    pub(super) fn new(config: WifiConfig, records: &[MemberRecord]) -> WifiKeys {
        let mut keys = BTreeMap::new();
        let mut other_ssid = 0;
        for r in records {
            if let Some(k) = &r.wifi_key {
                if k.ssid == config.ssid && key::is_psk_hex(&k.psk) {
                    keys.insert(r.member_id.clone(), k.psk.to_ascii_lowercase());
                } else {
                    other_ssid += 1;
                }
            }
        }
        if other_ssid > 0 {
            tracing::warn!(
                keys = other_ssid,
                "members' Wi-Fi keys made for another SSID are not loaded; those members \
                 need a new key"
            );
        }
        WifiKeys {
            config,
            keys: Mutex::new(keys),
            offers: Mutex::new(HashMap::new()),
            file: Mutex::new(()),
            listener: Mutex::new(None),
        }
    }

    pub fn config(&self) -> &WifiConfig {
        &self.config
    }

    /// Called after every rewrite of the PSK file caused by a change
    /// (not the one at `open`): tell hostapd to reload.
    pub fn set_listener(&self, listener: WifiListener) {
        *lock(&self.listener) = Some(listener);
    }

    /// Writes the PSK file from the keys in force (atomically, 0600).
    pub fn write_psk_file(&self) -> Result<(), WifiKeyError> {
        let _writing = lock(&self.file);
        let text = {
            let keys = lock(&self.keys);
            psk_file::render(keys.iter().map(|(m, p)| (m.as_str(), p.as_str())))
        };
        psk_file::write_atomic(&self.config.psk_file, &text).map_err(|source| WifiKeyError::File {
            path: self.config.psk_file.display().to_string(),
            source,
        })
    }

    /// Whether the member holds a key in force.
    pub fn has_key(&self, member_id: &str) -> bool {
        lock(&self.keys).contains_key(member_id)
    }

    /// The member a hostapd `keyid=` names (keyid = member id), if that
    /// member holds a key in force.
    pub fn member_for_keyid(&self, keyid: &str) -> Option<MemberId> {
        lock(&self.keys)
            .get_key_value(keyid)
            .map(|(m, _)| m.clone())
    }

    /// Keys in force.
    pub fn len(&self) -> usize {
        lock(&self.keys).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn notify(&self, change: WifiChange) {
        let listener = lock(&self.listener).clone();
        if let Some(l) = listener {
            l(&change);
        }
    }

    /// Sets (or with `due` false, withdraws) the device's offer.
    fn set_offer(&self, mac: MacAddr, member_id: &str, due: bool, now: Timestamp) {
        let mut offers = lock(&self.offers);
        if !due {
            offers.remove(&mac);
            return;
        }
        if offers.len() >= MAX_OFFERS && !offers.contains_key(&mac) {
            offers.retain(|_, o| o.live(now));
            if offers.len() >= MAX_OFFERS
                && let Some(oldest) = offers.iter().min_by_key(|(_, o)| o.at).map(|(m, _)| *m)
            {
                offers.remove(&oldest);
            }
        }
        offers.insert(
            mac,
            Offer {
                member_id: member_id.to_string(),
                at: now,
                shown: None,
            },
        );
    }
}

impl Members {
    /// The members' Wi-Fi, when `[members.wifi]` is configured.
    pub fn wifi(&self) -> Option<&WifiKeys> {
        self.wifi.as_ref()
    }

    fn wifi_or_err(&self) -> Result<&WifiKeys, WifiKeyError> {
        self.wifi.as_ref().ok_or(WifiKeyError::NotConfigured)
    }

    /// Makes a new key for a stored member, replacing any older one
    /// (renewal): stores its PSK, rewrites the PSK file and tells the
    /// listener. The passphrase is returned to be shown, never kept.
    pub fn issue_wifi_key(
        &self,
        member_id: &str,
        now: Timestamp,
    ) -> Result<Passphrase, WifiKeyError> {
        let wifi = self.wifi_or_err()?;
        let passphrase = Passphrase::generate();
        let psk = passphrase.psk_hex(&wifi.config.ssid);
        let renewed = {
            let _inner = self.lock();
            let mut rec = self.load(member_id)?.ok_or(WifiKeyError::UnknownMember)?;
            let renewed = rec.wifi_key.is_some();
            rec.wifi_key = Some(WifiKeyRecord {
                psk: psk.clone(),
                ssid: wifi.config.ssid.clone(),
                issued_at: now,
            });
            self.save(&rec)?;
            lock(&wifi.keys).insert(member_id.to_string(), psk);
            renewed
        };
        self.store.flush()?;
        wifi.write_psk_file()?;
        tracing::info!(member_id, renewed, "members' Wi-Fi key issued");
        wifi.notify(WifiChange::Issued {
            member_id: member_id.to_string(),
            renewed,
        });
        Ok(passphrase)
    }

    /// Removes the member's key (stored and in the PSK file). `false`:
    /// the member held none.
    pub fn remove_wifi_key(&self, member_id: &str) -> Result<bool, WifiKeyError> {
        self.wifi_or_err()?;
        {
            let _inner = self.lock();
            if let Some(mut rec) = self.load(member_id)?
                && rec.wifi_key.take().is_some()
            {
                self.save(&rec)?;
            }
        }
        self.store.flush()?;
        self.drop_wifi_key(member_id)
    }

    /// Takes the member's key out of force and the PSK file (the record
    /// is the caller's business), and any offer for it.
    pub(super) fn drop_wifi_key(&self, member_id: &str) -> Result<bool, WifiKeyError> {
        let Some(wifi) = &self.wifi else {
            return Ok(false);
        };
        lock(&wifi.offers).retain(|_, o| o.member_id != member_id);
        if lock(&wifi.keys).remove(member_id).is_none() {
            return Ok(false);
        }
        wifi.write_psk_file()?;
        tracing::info!(member_id, "members' Wi-Fi key removed");
        wifi.notify(WifiChange::Removed {
            member_id: member_id.to_string(),
        });
        Ok(true)
    }

    /// Whether the member holds a key in force (`ctl members`).
    pub fn has_wifi_key(&self, member_id: &str) -> bool {
        self.wifi.as_ref().is_some_and(|w| w.has_key(member_id))
    }

    /// The member hostapd's `keyid=` names, if it holds a key in force.
    pub fn member_for_keyid(&self, keyid: &str) -> Option<MemberId> {
        self.wifi.as_ref()?.member_for_keyid(keyid)
    }

    /// After `link`: a device just signed in with proof and remembered
    /// gets an offer; any other sign-in withdraws the device's offer.
    pub(super) fn offer_wifi_key(
        &self,
        mac: MacAddr,
        member_id: &str,
        method: Method,
        remembered: bool,
        now: Timestamp,
    ) {
        if let Some(wifi) = &self.wifi {
            let proven = method == Method::Otp || wifi.config.allow_member_number;
            wifi.set_offer(mac, member_id, remembered && proven, now);
        }
    }

    /// For the welcome page (a `GET`): when the device has an offer for
    /// this member, issues the key and returns its passphrase, once.
    /// Afterwards the passphrase stays with the device for [`SHOWN_TTL`]
    /// (`shown_wifi_key`), for the Apple profile only.
    pub fn take_wifi_offer(
        &self,
        mac: MacAddr,
        member_id: &str,
        now: Timestamp,
    ) -> Option<Passphrase> {
        let wifi = self.wifi.as_ref()?;
        // Claimed under the lock: a second load of the page while the key
        // is being made finds no offer (and cannot issue a second key,
        // which would count as a renewal and kill the first).
        let claimed = {
            let mut offers = lock(&wifi.offers);
            let o = offers.get(&mac)?;
            if o.member_id != member_id || o.shown.is_some() || !o.live(now) {
                return None;
            }
            offers.remove(&mac)?
        };
        if !self.wifi_eligible(mac, member_id) {
            return None;
        }
        match self.issue_wifi_key(member_id, now) {
            Ok(p) => {
                let mut offers = lock(&wifi.offers);
                offers.insert(
                    mac,
                    Offer {
                        member_id: member_id.to_string(),
                        at: now,
                        shown: Some(p.clone()),
                    },
                );
                Some(p)
            }
            Err(e) => {
                tracing::error!(member_id, "could not issue a members' Wi-Fi key: {e}");
                lock(&wifi.offers).insert(mac, claimed);
                None
            }
        }
    }

    /// The passphrase shown to this device for this member within the
    /// last [`SHOWN_TTL`] (for the Apple profile).
    pub fn shown_wifi_key(
        &self,
        mac: MacAddr,
        member_id: &str,
        now: Timestamp,
    ) -> Option<Passphrase> {
        let offers = lock(&self.wifi.as_ref()?.offers);
        let o = offers.get(&mac)?;
        (o.member_id == member_id && o.live(now))
            .then(|| o.shown.clone())
            .flatten()
    }

    /// Whether this device may get a key for this member: it is bound to
    /// the member (remembered), and the member proved who they are with a
    /// texted code (or a member number, where allowed).
    pub fn wifi_eligible(&self, mac: MacAddr, member_id: &str) -> bool {
        let Some(wifi) = &self.wifi else {
            return false;
        };
        let bound = self
            .lock()
            .index
            .get(&mac)
            .is_some_and(|b| b.member_id == member_id);
        bound
            && self
                .load(member_id)
                .ok()
                .flatten()
                .is_some_and(|r| r.method == Method::Otp || wifi.config.allow_member_number)
    }

    /// "Get a new key": leaves a new offer for the device, so the welcome
    /// page makes and shows a new key (replacing the old one). The caller
    /// checks that the device's session came from a sign-in with proof
    /// (not from recognition of its MAC alone).
    pub fn renew_wifi_key(
        &self,
        mac: MacAddr,
        member_id: &str,
        now: Timestamp,
    ) -> Result<(), WifiKeyError> {
        let wifi = self.wifi_or_err()?;
        if !self.wifi_eligible(mac, member_id) {
            return Err(WifiKeyError::NotEligible);
        }
        wifi.set_offer(mac, member_id, true, now);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
