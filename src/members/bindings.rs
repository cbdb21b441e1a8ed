//! Device bindings: `link` (consents, and the MAC bound to the member
//! only with "remember this device"), `recognise` (the in-memory hot path
//! the presence shell calls for every sighting) and the housekeeping
//! that keeps the stored bindings in step with it (`tick`, `expire`,
//! `persist`).
//!
//! Consent and a binding are only taken from a sign-in that proved
//! something: a texted code, or a member number where the operator trusts
//! member numbers (`members.member_number_trusted`). Anyone may type
//! someone else's member number; without that trust it signs the device
//! in for the session and stores neither a consent nor a binding in that
//! member's name.

use std::collections::BTreeMap;
use std::time::Duration;

use super::ids::clean_staff_code;
use super::record::{MemberRecord, Method};
use super::{Bound, Consent, Linked, MemberError, MemberId, Members, PENDING_TTL};
use crate::mac::MacAddr;
use crate::time::Timestamp;
use crate::uplink::event::Event;

/// A recognition's `last_seen` is written when it is this much newer than
/// the stored one: fine enough for expiry in days, kind to the flash.
const SAVE_SEEN_EVERY: Duration = Duration::from_secs(3600);

impl Members {
    /// After a successful verify (within 30 minutes, or for a member the
    /// box knows): records the consents (each with `now` and
    /// `members.consent_version`); with `remember_device`, binds `mac` to
    /// the member (moving it from any other member; at most
    /// `members.max_devices` per member, newest kept); without it binds
    /// nothing and drops any binding of `mac` ("no consent, no
    /// remembering"). Keeps the first valid `staff_code`, and appends
    /// `com.storegate.member.linked` {member_id, device_id, staff_code,
    /// remember_device, marketing}, the consents as stored.
    ///
    /// The consents are taken as not given when the sign-in proved
    /// nothing (a member number that is not trusted), and for a new
    /// member when `members.max_members` records are stored already (then
    /// no record is stored either).
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
        // The consents as taken (see above), for HQ.
        let taken;
        let wifi_method;
        let linked = {
            let mut inner = self.lock();
            let pending = inner.pending(member_id, now).cloned();
            let (mut rec, new) = match (self.load(member_id)?, &pending) {
                (Some(r), _) => (r, false),
                (None, Some(p)) => (
                    MemberRecord::new(member_id, p.method, p.last4.clone(), now),
                    true,
                ),
                (None, None) => return Err(MemberError::UnknownMember),
            };
            let method = pending.as_ref().map_or(rec.method, |p| p.method);
            let proven = method == Method::Otp || self.config.member_number_trusted;
            let room = !new || inner.records < self.config.max_members as usize;
            if !room {
                tracing::warn!(
                    max_members = self.config.max_members,
                    "member records are at their cap: a new member is signed in for this \
                     session only"
                );
            }
            let consent = if proven && room {
                consent
            } else {
                Consent::default()
            };
            taken = consent;
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
            if room {
                self.save(&rec)?;
                if new {
                    inner.records += 1;
                }
            }
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
            wifi_method = method;
            Linked {
                member_id: member_id.to_string(),
                remembered: consent.remember_device,
                consent_stored: proven && room,
                unbound,
            }
        };
        self.offer_wifi_key(
            mac,
            member_id,
            wifi_method,
            linked.remembered && linked.consent_stored,
            now,
        );
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
            remember_device: taken.remember_device,
            marketing: taken.marketing,
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

    /// Housekeeping, for the daemon to call every minute or so: writes
    /// recognitions' `last_seen`, expires bindings not seen for
    /// `remember_days`, and drops spent codes and stale sign-ins. Returns
    /// the MACs whose binding expired.
    pub fn tick(&self, now: Timestamp) -> Vec<MacAddr> {
        self.persist();
        let expired = self.expire(now);
        let mut inner = self.lock();
        inner.otp.gc(now);
        inner.spent.gc(now);
        inner.limits.gc(now);
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
