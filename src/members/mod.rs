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
//! - `phone`: phone numbers to E.164, member-number formats and Luhn;
//! - `otp`: the pure code machine (expiry, rate limits, lockout);
//! - `record`: the stored record and the pure binding rules.
//!
//! Privacy: the box never stores a phone number. A member's id is a keyed
//! hash (the `privacy` key, domain-separated from device ids) of
//! `phone:<E.164 digits>` or `number:<member number>`; the record keeps
//! only the last four digits for the welcome page. Codes live in memory
//! only and are never logged, so **a restart invalidates every code
//! handed out** (shoppers ask for a new one), and rate-limit windows and
//! lockouts start afresh. `erase` removes the record, its bindings and
//! consents and tells HQ (`com.storegate.member.erased`); the daemon also
//! ends the member's sessions and scrubs it from presence.
//!
//! Bindings not recognised for `members.remember_days` expire: at `open`
//! and at every `tick`, which the daemon calls now and then and which
//! also writes recognitions' `last_seen` (in coarse steps, to spare the
//! flash) and drops spent codes.

pub mod otp;
pub mod phone;
pub mod record;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::config::MembersConfig;
use crate::mac::MacAddr;
use crate::privacy::DeviceKey;
use crate::store::{self, Store, StoreError, Tree};
use crate::time::Timestamp;
use crate::uplink::event::Event;
use crate::uplink::sink::EventSink;

use otp::{OtpBook, OtpPolicy};
use record::{MemberRecord, Method};

/// `"m_"` + 22 base64url characters: 128 bits of a keyed hash of
/// `phone:<E.164 digits>` or `number:<member number>`. Stable for a given
/// key (chain-wide when stores share `privacy.device_key_file`), never
/// the phone itself.
pub type MemberId = String;

const MEMBER_DOMAIN: &[u8] = b"storegate-member-v1";
/// A verified shopper has this long to finish signing in (`link`).
const PENDING_TTL: Duration = Duration::from_secs(30 * 60);
/// Verified-but-not-linked sign-ins kept at once.
const MAX_PENDING: usize = 10_000;
/// A recognition's `last_seen` is written when it is this much newer than
/// the stored one: fine enough for expiry in days, kind to the flash.
const SAVE_SEEN_EVERY: Duration = Duration::from_secs(3600);
/// Longest staff code kept (a QR poster's `?staff=`).
const MAX_STAFF_CODE: usize = 32;

/// What the shopper agreed to on the sign-in page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    /// Bind this device, so it is signed in by itself next time.
    pub remember_device: bool,
    /// Marketing messages from HQ.
    pub marketing: bool,
}

/// What `request_code` gives the caller, who posts it to HQ
/// (`uplink::messages::MessageSender::send_otp`). `Debug` hides the phone
/// and the code.
pub struct CodeIssued {
    /// `+` and the E.164 digits.
    pub phone_e164: String,
    /// Six digits.
    pub code: String,
    pub member_id: MemberId,
    pub expires_at: Timestamp,
}

impl fmt::Debug for CodeIssued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CodeIssued")
            .field("phone_e164", &"***")
            .field("code", &"***")
            .field("member_id", &self.member_id)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Every refusal. `key()` is a stable i18n key the portal translates;
/// `Display` is English for logs and `ctl`. Neither ever contains the
/// phone number or the code.
#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    /// Not a phone number the config accepts.
    #[error("not a phone number this store accepts")]
    BadPhone,
    /// Too many code requests for this phone or this device.
    #[error("too many requests; try again in {}s", .retry_after.as_secs())]
    RateLimited { retry_after: Duration },
    /// Verify without a live code for that phone (none asked, or expired).
    #[error("no valid code for this phone (none was requested, or it expired)")]
    NoCode,
    #[error("wrong code; {attempts_left} attempts left")]
    WrongCode { attempts_left: u32 },
    /// Too many wrong codes: this phone is locked for a while.
    #[error("too many wrong codes; this phone is locked until {until}")]
    LockedOut { until: Timestamp },
    /// Fails the configured member-number format or check.
    #[error("not a valid member number")]
    BadMemberNumber,
    /// `link`/`erase` of an id the box does not know.
    #[error("unknown member")]
    UnknownMember,
    #[error("state database: {0}")]
    Store(#[from] StoreError),
}

impl MemberError {
    /// The i18n key of the message shown to the shopper.
    pub fn key(&self) -> &'static str {
        match self {
            MemberError::BadPhone => "err_bad_phone",
            MemberError::RateLimited { .. } => "err_rate_limited",
            MemberError::NoCode => "err_no_code",
            MemberError::WrongCode { .. } => "err_code_wrong",
            MemberError::LockedOut { .. } => "err_locked_out",
            MemberError::BadMemberNumber => "err_bad_member_number",
            MemberError::UnknownMember => "err_unknown_member",
            MemberError::Store(_) => "err_store",
        }
    }
}

/// What `link` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Linked {
    pub member_id: MemberId,
    /// The device is bound (it will be recognised).
    pub remembered: bool,
    /// MACs whose binding moved away (no longer recognised): the member's
    /// oldest device past `max_devices`, or this device when it is no
    /// longer to be remembered.
    pub unbound: Vec<MacAddr>,
}

/// One member as `ctl members --json` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct MemberView {
    pub member_id: String,
    pub phone_last4: Option<String>,
    /// `"otp"` or `"member_number"`.
    pub method: String,
    /// Bound MACs (box-local; never sent to HQ).
    pub devices: Vec<String>,
    /// `{"remember_device": {"granted", "at", "version"} | null, "marketing": …}`.
    pub consents: serde_json::Value,
    pub staff_code: Option<String>,
    pub created_at: String,
    /// The latest recognition of any bound device.
    pub last_seen: Option<String>,
}

/// What `erase` removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erased {
    pub member_id: MemberId,
    /// The devices that were bound to the member.
    pub devices: Vec<MacAddr>,
}

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
}

/// Whether `s` has the shape of a member id.
pub fn is_member_id(s: &str) -> bool {
    s.len() == 24
        && s.starts_with("m_")
        && s.bytes()
            .skip(2)
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A staff code as printed on a QR poster: 1 to 32 of `A-Za-z0-9_-`.
/// Anything else is not a staff code (ignored, never an error).
fn clean_staff_code(s: &str) -> Option<String> {
    let s = s.trim();
    let ok = (1..=MAX_STAFF_CODE).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| s.to_string())
}

/// Six digits from the OS's CSPRNG.
fn new_code() -> String {
    format!("{:06}", rand::rngs::OsRng.gen_range(0..1_000_000u32))
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
        let now = Timestamp::now();
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
        let policy = OtpPolicy {
            ttl: config.otp_ttl,
            max_attempts: config.otp_max_attempts.max(1),
            lockout: config.otp_lockout,
            ..OtpPolicy::default()
        };
        Ok(Members {
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
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn config(&self) -> &MembersConfig {
        &self.config
    }

    /// The member id for `kind:value`.
    fn id_for(&self, kind: &str, value: &str) -> MemberId {
        let h = self
            .key
            .keyed_hash(MEMBER_DOMAIN, format!("{kind}:{value}").as_bytes());
        format!(
            "m_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&h[..16])
        )
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

    fn save(&self, r: &MemberRecord) -> Result<(), StoreError> {
        store::put_json(
            self.store.as_ref(),
            Tree::Members,
            r.member_id.as_bytes(),
            r,
        )
    }

    /// Phone sign-in, step 1: a fresh code for the phone. Rate-limited
    /// per phone (one per 30 s, five per hour) and per device (ten per
    /// hour); refused while the phone is locked out.
    pub fn request_code(
        &self,
        phone: &str,
        mac: MacAddr,
        now: Timestamp,
    ) -> Result<CodeIssued, MemberError> {
        let digits = phone::normalise_phone(phone, &self.config.default_country_code)
            .ok_or(MemberError::BadPhone)?;
        let member_id = self.id_for("phone", &digits);
        let code = new_code();
        let expires_at = self
            .lock()
            .otp
            .request(&member_id, mac, code.clone(), now)?;
        Ok(CodeIssued {
            phone_e164: format!("+{digits}"),
            code,
            member_id,
            expires_at,
        })
    }

    /// Phone sign-in, step 2. Wrong codes are capped per code
    /// (`members.otp_max_attempts`); past the cap the phone is locked out
    /// for `members.otp_lockout`. A code is not tied to the device that
    /// asked for it (`mac` is accepted for symmetry).
    pub fn verify_code(
        &self,
        phone: &str,
        code: &str,
        mac: MacAddr,
        now: Timestamp,
    ) -> Result<MemberId, MemberError> {
        let _ = mac;
        let digits = phone::normalise_phone(phone, &self.config.default_country_code)
            .ok_or(MemberError::BadPhone)?;
        let member_id = self.id_for("phone", &digits);
        let mut inner = self.lock();
        inner.otp.verify(&member_id, code, now)?;
        inner.add_pending(
            member_id.clone(),
            Pending {
                method: Method::Otp,
                last4: Some(phone::last4(&digits)),
                at: now,
            },
        );
        Ok(member_id)
    }

    /// Member-number sign-in (`members.member_number_digits` and
    /// `members.member_number_check`). Failed numbers count against the
    /// device's hourly budget, shared with code requests.
    pub fn verify_member_number(
        &self,
        number: &str,
        mac: MacAddr,
        now: Timestamp,
    ) -> Result<MemberId, MemberError> {
        let checked = phone::check_member_number(
            number,
            self.config.member_number_digits,
            self.config.member_number_check,
        );
        let member_id = checked.as_deref().map(|n| self.id_for("number", n));
        let mut inner = self.lock();
        inner.otp.device_attempt(mac, now)?;
        let Some(member_id) = member_id else {
            inner.otp.device_failed(mac, now);
            return Err(MemberError::BadMemberNumber);
        };
        inner.add_pending(
            member_id.clone(),
            Pending {
                method: Method::MemberNumber,
                last4: None,
                at: now,
            },
        );
        Ok(member_id)
    }

    /// After a successful verify (within 30 minutes, or for a member the
    /// box knows): records the consents (each with `now` and
    /// `members.consent_version`); with `remember_device`, binds `mac` to
    /// the member (moving it from any other member; at most
    /// `members.max_devices` per member, newest kept); without it binds
    /// nothing and drops any binding of `mac` ("no consent, no
    /// remembering"). Keeps the first valid `staff_code`, and appends
    /// `com.storegate.member.linked` {member_id, device_id, staff_code,
    /// remember_device, marketing}.
    pub fn link(
        &self,
        member_id: &str,
        mac: MacAddr,
        consent: Consent,
        staff_code: Option<&str>,
        now: Timestamp,
    ) -> Result<Linked, MemberError> {
        let staff = staff_code.and_then(clean_staff_code);
        // The staff code HQ credits: the member's first one, on every link,
        // so a later sign-in through another poster credits no one else.
        let mut credited: Option<String> = None;
        let linked = {
            let mut inner = self.lock();
            let pending = inner.pending(member_id, now).cloned();
            let mut rec = match (self.load(member_id)?, &pending) {
                (Some(r), _) => r,
                (None, Some(p)) => MemberRecord::new(member_id, p.method, p.last4.clone(), now),
                (None, None) => return Err(MemberError::UnknownMember),
            };
            if let Some(last4) = pending.as_ref().and_then(|p| p.last4.clone()) {
                rec.phone_last4 = Some(last4);
            }
            // Recognitions not yet written decide which binding is newest.
            for b in rec.bindings.clone() {
                if let Some(i) = inner.index.get(&b.mac)
                    && i.member_id == member_id
                {
                    rec.touch(b.mac, i.last_seen);
                }
            }
            rec.consent(
                consent.remember_device,
                consent.marketing,
                &self.config.consent_version,
                now,
            );
            if rec.staff_code.is_none() {
                rec.staff_code.clone_from(&staff);
            }
            credited.clone_from(&rec.staff_code);
            let mut unbound = Vec::new();
            let mut unindex = Vec::new();
            // Another member's binding of this device goes either way.
            let holder = inner
                .index
                .get(&mac)
                .map(|b| b.member_id.clone())
                .filter(|h| h != member_id);
            let mut other = None;
            if let Some(h) = holder {
                if let Some(mut o) = self.load(&h)? {
                    o.unbind(mac);
                    other = Some(o);
                }
                unindex.push(mac);
                if !consent.remember_device {
                    unbound.push(mac);
                }
            }
            if consent.remember_device {
                let dropped = rec.bind(mac, self.config.max_devices as usize, now);
                unindex.extend(&dropped);
                unbound.extend(dropped);
            } else if rec.unbind(mac) {
                unindex.push(mac);
                unbound.push(mac);
            }
            if let Some(o) = &other {
                self.save(o)?;
            }
            self.save(&rec)?;
            for m in unindex {
                inner.index.remove(&m);
                inner.touched.remove(&m);
            }
            if consent.remember_device {
                inner.index.insert(
                    mac,
                    Bound {
                        member_id: member_id.to_string(),
                        last_seen: now,
                        saved_seen: now,
                    },
                );
            }
            inner.pending.remove(member_id);
            Linked {
                member_id: member_id.to_string(),
                remembered: consent.remember_device,
                unbound,
            }
        };
        tracing::info!(
            member_id,
            remembered = linked.remembered,
            unbound = linked.unbound.len(),
            "member linked"
        );
        // Durable (fsync) and outside the lock, so recognition never
        // waits for the disk. The record is already stored: a failure
        // here loses HQ's copy of the link, not the sign-in.
        let event = Event::MemberLinked {
            member_id: member_id.to_string(),
            mac,
            staff_code: credited,
            remember_device: consent.remember_device,
            marketing: consent.marketing,
        };
        if let Err(e) = self.events.emit(event, now) {
            tracing::error!("could not store a member.linked event: {e}");
        }
        Ok(linked)
    }

    /// Hot path (a DHCP packet): the member bound to `mac`, if any and not
    /// expired. In memory, no I/O, O(1). Notes the sighting as the
    /// binding's `last_seen` (written by a later `tick`).
    pub fn recognise(&self, mac: MacAddr, now: Timestamp) -> Option<MemberId> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let b = inner.index.get_mut(&mac)?;
        if b.last_seen.plus(self.remember) <= now {
            return None;
        }
        if now > b.last_seen {
            b.last_seen = now;
            if b.saved_seen.plus(SAVE_SEEN_EVERY) <= now {
                inner.touched.insert(mac);
            }
        }
        Some(b.member_id.clone())
    }

    /// The phone's last four digits for the welcome page ("••1234"), if
    /// the member signed in by phone.
    pub fn phone_last4(&self, member_id: &str) -> Option<String> {
        if let Some(p) = self.lock().pending.get(member_id) {
            return p.last4.clone();
        }
        self.load(member_id).ok().flatten()?.phone_last4
    }

    /// Every member, oldest first.
    pub fn list(&self) -> Vec<MemberView> {
        let records = match store::scan_json::<MemberRecord>(self.store.as_ref(), Tree::Members) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("cannot read members: {e}");
                return Vec::new();
            }
        };
        let inner = self.lock();
        let mut views: Vec<(Timestamp, MemberView)> = records
            .into_iter()
            .filter_map(Result::ok)
            .map(|mut r| {
                for b in r.bindings.iter_mut() {
                    if let Some(i) = inner.index.get(&b.mac)
                        && i.member_id == r.member_id
                    {
                        b.last_seen = b.last_seen.max(i.last_seen);
                    }
                }
                let view = MemberView {
                    member_id: r.member_id.clone(),
                    phone_last4: r.phone_last4.clone(),
                    method: r.method.as_str().to_string(),
                    devices: r.bindings.iter().map(|b| b.mac.to_string()).collect(),
                    consents: r.consents.to_json(),
                    staff_code: r.staff_code.clone(),
                    created_at: r.created_at.rfc3339(),
                    last_seen: r.last_seen().map(Timestamp::rfc3339),
                };
                (r.created_at, view)
            })
            .collect();
        views.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.member_id.cmp(&b.1.member_id)));
        views.into_iter().map(|(_, v)| v).collect()
    }

    /// Removes the member, its bindings and consents from the box (and
    /// any code or sign-in in progress), after appending
    /// `com.storegate.member.erased` {member_id} so HQ erases too: should
    /// the removal then fail, erasing again is safe. (The daemon also
    /// ends the member's sessions and scrubs it from presence.)
    pub fn erase(&self, member_id: &str, now: Timestamp) -> Result<Erased, MemberError> {
        if !is_member_id(member_id) {
            return Err(MemberError::UnknownMember);
        }
        let stored = self
            .store
            .get(Tree::Members, member_id.as_bytes())?
            .is_some();
        let known = stored || {
            let inner = self.lock();
            inner.pending.contains_key(member_id)
                || inner.index.values().any(|b| b.member_id == member_id)
        };
        if !known {
            return Err(MemberError::UnknownMember);
        }
        let event = Event::MemberErased {
            member_id: member_id.to_string(),
        };
        self.events.emit(event, now)?;
        let record = self.load(member_id).ok().flatten();
        let mut inner = self.lock();
        self.store.remove(Tree::Members, member_id.as_bytes())?;
        let mut devices: Vec<MacAddr> = inner
            .index
            .iter()
            .filter(|(_, b)| b.member_id == member_id)
            .map(|(m, _)| *m)
            .collect();
        devices.extend(record.iter().flat_map(|r| r.bindings.iter().map(|b| b.mac)));
        devices.sort();
        devices.dedup();
        for m in &devices {
            if inner.index.get(m).is_some_and(|b| b.member_id == member_id) {
                inner.index.remove(m);
                inner.touched.remove(m);
            }
        }
        inner.pending.remove(member_id);
        inner.otp.forget(member_id);
        drop(inner);
        self.store.flush()?;
        tracing::info!(member_id, devices = devices.len(), "member erased");
        Ok(Erased {
            member_id: member_id.to_string(),
            devices,
        })
    }

    /// Housekeeping, for the daemon to call every minute or so: writes
    /// recognitions' `last_seen`, expires bindings not seen for
    /// `remember_days`, and drops spent codes and stale sign-ins. Returns
    /// the MACs whose binding expired.
    pub fn tick(&self, now: Timestamp) -> Vec<MacAddr> {
        self.persist();
        let expired = self.expire(now);
        let mut inner = self.lock();
        inner.otp.gc(now);
        inner.pending.retain(|_, p| p.at.plus(PENDING_TTL) > now);
        expired
    }

    /// Removes bindings not recognised for `remember_days` by `now`;
    /// returns their MACs. A record that cannot be written keeps its
    /// binding (tried again next time).
    pub fn expire(&self, now: Timestamp) -> Vec<MacAddr> {
        let mut inner = self.lock();
        let mut by_member: BTreeMap<MemberId, Vec<MacAddr>> = BTreeMap::new();
        for (mac, b) in &inner.index {
            if b.last_seen.plus(self.remember) <= now {
                by_member.entry(b.member_id.clone()).or_default().push(*mac);
            }
        }
        let mut expired = Vec::new();
        for (id, macs) in by_member {
            let saved = match self.load(&id) {
                Ok(Some(mut r)) => {
                    macs.iter().for_each(|m| {
                        r.unbind(*m);
                    });
                    self.save(&r)
                }
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            };
            match saved {
                Ok(()) => {
                    for m in macs {
                        inner.index.remove(&m);
                        inner.touched.remove(&m);
                        expired.push(m);
                    }
                }
                Err(e) => tracing::warn!(member_id = id, "could not expire bindings: {e}"),
            }
        }
        if !expired.is_empty() {
            tracing::info!(count = expired.len(), "remembered devices expired");
        }
        expired.sort();
        expired
    }

    /// Writes the `last_seen` of recognised bindings (also at shutdown).
    pub fn persist(&self) {
        let mut inner = self.lock();
        if inner.touched.is_empty() {
            return;
        }
        let mut by_member: BTreeMap<MemberId, Vec<(MacAddr, Timestamp)>> = BTreeMap::new();
        for mac in inner.touched.drain().collect::<Vec<_>>() {
            if let Some(b) = inner.index.get(&mac) {
                by_member
                    .entry(b.member_id.clone())
                    .or_default()
                    .push((mac, b.last_seen));
            }
        }
        for (id, seen) in by_member {
            let saved = match self.load(&id) {
                Ok(Some(mut r)) => {
                    seen.iter().for_each(|(m, t)| {
                        r.touch(*m, *t);
                    });
                    self.save(&r)
                }
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            };
            match saved {
                Ok(()) => {
                    for (m, t) in seen {
                        if let Some(b) = inner.index.get_mut(&m) {
                            b.saved_seen = t;
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(member_id = id, "could not save last_seen: {e}");
                    inner.touched.extend(seen.into_iter().map(|(m, _)| m));
                }
            }
        }
    }

    /// How many devices are bound (for `ctl status`).
    pub fn bound_devices(&self) -> usize {
        self.lock().index.len()
    }
}

#[cfg(test)]
mod tests;
