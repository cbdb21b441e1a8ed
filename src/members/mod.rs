//! Members: member ↔ device bindings, consent, OTP sign-in, the lookup
//! behind returning-member auto-authorisation, and erasure.
//!
//! A shopper proves who they are with a texted code (`request_code`, then
//! `verify_code`) or a member number (`verify_member_number`); `link` then
//! records their consents and, only with the "remember this device"
//! consent, binds the device's MAC to them. From then on `recognise` (in
//! memory, O(1): the presence shell calls it for every sighting) names
//! the member the moment the phone rejoins the Wi-Fi, and the shell
//! authorises it at its first DHCP packet.
//!
//! - `ids`: member ids (keyed hashes) and staff codes;
//! - `sign_in`: code and member-number sign-in;
//! - `bindings`: `link`, `recognise` and the bindings' housekeeping;
//! - `listing`: `list`, `phone_last4` and `erase`;
//! - `types`: what the API takes and returns, and its errors;
//! - `phone`: phone numbers to E.164, member-number formats and Luhn;
//! - `otp`: the pure code machine (expiry, per-phone and per-device
//!   limits, lockout);
//! - `limits`: the hourly caps kept on disk (codes per box and per block
//!   of numbers, member-number attempts per box);
//! - `ticket`: the sign-in page's proof that it was loaded, which every
//!   texted code from the portal costs;
//! - `record`: the stored record and the pure binding rules;
//! - `wifi`: per-member Wi-Fi keys (`[members.wifi]`) and hostapd's PSK
//!   file.
//!
//! This file holds `Members` itself: its state, `open` and the record
//! store.
//!
//! The guest LAN is hostile: anyone on it can post the portal's forms in
//! a loop and change MAC address at will. So a texted code (which costs
//! the retailer money) goes only to the store's own countries
//! (`members.otp_countries`), only for a page load (a ticket), and within
//! caps per phone, device, block of numbers and box, the last two on
//! disk; and a member number, which proves nothing (HQ never confirms
//! it), is counted on every attempt, per device and per box, and carries
//! no consent and binds no device unless the operator trusts member
//! numbers (`members.member_number_trusted`). At most
//! `members.max_members` records are kept.
//!
//! Privacy: the box never stores a phone number. A member's id is a keyed
//! hash (the `privacy` key, domain-separated from device ids) of
//! `phone:<E.164 digits>` or `number:<member number>`; the record keeps
//! only the last four digits for the welcome page, and the caps know a
//! block of numbers only by a keyed hash. Codes live in memory only and
//! are never logged, so **a restart invalidates every code handed out**
//! (shoppers ask for a new one), and the per-phone and per-device windows
//! and lockouts start afresh (the box's and the blocks' caps do not).
//! `erase` removes the record, its bindings and consents and tells HQ
//! (`com.storegate.member.erased`); the daemon also ends the member's
//! sessions and scrubs it from presence.
//!
//! Bindings not recognised for `members.remember_days` expire: at `open`
//! and at every `tick`, which the daemon calls now and then and which
//! also writes recognitions' `last_seen` (in coarse steps, to spare the
//! flash) and drops spent codes.

mod bindings;
mod ids;
pub mod limits;
mod listing;
pub mod otp;
pub mod phone;
pub mod record;
mod sign_in;
pub mod ticket;
mod types;
pub mod wifi;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::config::MembersConfig;
use crate::mac::MacAddr;
use crate::privacy::DeviceKey;
use crate::store::{self, Store, StoreError, Tree};
use crate::time::Timestamp;
use crate::uplink::sink::EventSink;

pub use ids::{MemberId, is_member_id};
pub use types::{CodeIssued, Consent, Erased, Linked, MemberError, MemberView};
pub use wifi::{Passphrase, WifiChange, WifiKeyError, WifiKeys, WifiListener};

use limits::Limits;
use otp::{OtpBook, OtpPolicy};
use record::{MemberRecord, Method};
use ticket::Spent;

/// Where `limits` are stored in `Tree::Meta`.
const LIMITS_KEY: &[u8] = b"members/limits";

/// A verified shopper has this long to finish signing in (`link`).
const PENDING_TTL: Duration = Duration::from_secs(30 * 60);
/// Verified-but-not-linked sign-ins kept at once.
const MAX_PENDING: usize = 10_000;

/// The in-memory index entry of a bound MAC.
#[derive(Debug, Clone)]
struct Bound {
    member_id: MemberId,
    last_seen: Timestamp,
    /// The `last_seen` on disk.
    saved_seen: Timestamp,
}

/// A verified shopper who has not been linked yet.
#[derive(Debug, Clone)]
struct Pending {
    method: Method,
    last4: Option<String>,
    at: Timestamp,
}

struct Inner {
    /// MAC → the member bound to it: what `recognise` reads.
    index: HashMap<MacAddr, Bound>,
    /// Recognised MACs whose `last_seen` is due to be written.
    touched: HashSet<MacAddr>,
    otp: OtpBook,
    pending: HashMap<MemberId, Pending>,
    /// The hourly caps kept on disk (a copy of what is stored).
    limits: Limits,
    /// Code tickets already spent.
    spent: Spent,
    /// Member records stored (bounded by `members.max_members`).
    records: usize,
}

impl Inner {
    fn add_pending(&mut self, id: MemberId, p: Pending) {
        if self.pending.len() >= MAX_PENDING && !self.pending.contains_key(&id) {
            let now = p.at;
            self.pending.retain(|_, q| q.at.plus(PENDING_TTL) > now);
            if self.pending.len() >= MAX_PENDING
                && let Some(oldest) = self
                    .pending
                    .iter()
                    .min_by_key(|(_, q)| q.at)
                    .map(|(k, _)| k.clone())
            {
                self.pending.remove(&oldest);
            }
        }
        self.pending.insert(id, p);
    }

    fn pending(&self, id: &str, now: Timestamp) -> Option<&Pending> {
        self.pending
            .get(id)
            .filter(|p| p.at.plus(PENDING_TTL) > now)
    }
}

/// The members of this store: see the module docs.
pub struct Members {
    store: Arc<dyn Store>,
    /// `member.linked` and `member.erased` go here (the outbox).
    events: Arc<dyn EventSink>,
    key: DeviceKey,
    config: MembersConfig,
    remember: Duration,
    inner: Mutex<Inner>,
    /// Per-member Wi-Fi keys, with `[members.wifi]`.
    wifi: Option<WifiKeys>,
}

impl Members {
    /// Loads every member, builds the MAC index and drops bindings not
    /// seen for `remember_days`. A corrupt record is skipped (logged);
    /// should two records claim one MAC, the fresher binding wins.
    pub fn open(
        store: Arc<dyn Store>,
        key: DeviceKey,
        config: MembersConfig,
        events: Arc<dyn EventSink>,
    ) -> Result<Self, StoreError> {
        Members::open_at(store, key, config, events, Timestamp::now())
    }

    /// [`Members::open`] at `now` on the store's clock (bindings unseen
    /// for `remember_days` before it are dropped).
    pub fn open_at(
        store: Arc<dyn Store>,
        key: DeviceKey,
        config: MembersConfig,
        events: Arc<dyn EventSink>,
        now: Timestamp,
    ) -> Result<Self, StoreError> {
        let remember = Duration::from_secs(u64::from(config.remember_days.max(1)) * 86_400);
        let mut records = Vec::new();
        for r in store::scan_json::<MemberRecord>(store.as_ref(), Tree::Members)? {
            match r {
                Ok(r) => records.push(r),
                Err(e) => tracing::warn!("skipping a saved member: {e}"),
            }
        }
        // Who holds each MAC: the freshest binding.
        let mut holder: HashMap<MacAddr, (Timestamp, usize)> = HashMap::new();
        for (i, r) in records.iter().enumerate() {
            for b in r.bindings.iter().filter(|b| !b.stale(remember, now)) {
                let e = holder.entry(b.mac).or_insert((b.last_seen, i));
                if b.last_seen > e.0 {
                    *e = (b.last_seen, i);
                }
            }
        }
        let wifi = config.wifi.clone().map(|w| WifiKeys::new(w, &records));
        let mut index = HashMap::new();
        let mut changed = 0;
        for (i, mut r) in records.into_iter().enumerate() {
            let mut dirty = !r.expire(remember, now).is_empty();
            let lost: Vec<MacAddr> = r
                .bindings
                .iter()
                .filter(|b| holder.get(&b.mac).is_some_and(|(_, j)| *j != i))
                .map(|b| b.mac)
                .collect();
            for mac in lost {
                dirty |= r.unbind(mac);
            }
            for b in &r.bindings {
                index.insert(
                    b.mac,
                    Bound {
                        member_id: r.member_id.clone(),
                        last_seen: b.last_seen,
                        saved_seen: b.last_seen,
                    },
                );
            }
            if dirty {
                store::put_json(store.as_ref(), Tree::Members, r.member_id.as_bytes(), &r)?;
                changed += 1;
            }
        }
        if changed > 0 {
            store.flush()?;
            tracing::info!(changed, "member bindings expired or repaired");
        }
        let limits = match store.get(Tree::Meta, LIMITS_KEY)? {
            None => Limits::default(),
            Some(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!("the stored sign-in limits are corrupt, starting afresh: {e}");
                Limits::default()
            }),
        };
        let records = store.count(Tree::Members)?;
        let policy = OtpPolicy {
            ttl: config.otp_ttl,
            max_attempts: config.otp_max_attempts.max(1),
            lockout: config.otp_lockout,
            ..OtpPolicy::default()
        };
        // hostapd reads the file at start: it must hold the keys in force.
        if let Some(w) = &wifi
            && let Err(e) = w.write_psk_file()
        {
            tracing::error!("members' Wi-Fi keys are not available to hostapd: {e}");
        }
        Ok(Members {
            wifi,
            store,
            events,
            key,
            remember,
            config,
            inner: Mutex::new(Inner {
                index,
                touched: HashSet::new(),
                otp: OtpBook::new(policy),
                pending: HashMap::new(),
                limits,
                spent: Spent::default(),
                records,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn config(&self) -> &MembersConfig {
        &self.config
    }

    /// A stored record; a corrupt one counts as absent (and is replaced
    /// by the next write).
    fn load(&self, id: &str) -> Result<Option<MemberRecord>, StoreError> {
        let Some(bytes) = self.store.get(Tree::Members, id.as_bytes())? else {
            return Ok(None);
        };
        match serde_json::from_slice(&bytes) {
            Ok(r) => Ok(Some(r)),
            Err(e) => {
                tracing::warn!(member_id = id, "a saved member is corrupt: {e}");
                Ok(None)
            }
        }
    }

    /// Stores the caps' counts (`flush` makes them durable).
    fn save_limits(&self, limits: &Limits) -> Result<(), StoreError> {
        store::put_json(self.store.as_ref(), Tree::Meta, LIMITS_KEY, limits)
    }

    fn save(&self, r: &MemberRecord) -> Result<(), StoreError> {
        store::put_json(
            self.store.as_ref(),
            Tree::Members,
            r.member_id.as_bytes(),
            r,
        )
    }
}

#[cfg(test)]
mod abuse_tests;
#[cfg(test)]
mod tests;
