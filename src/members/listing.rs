//! Reading members out and erasing them: the welcome page's last four
//! digits, `ctl members` (`list`, which says whether a member holds a
//! Wi-Fi key, never the key) and erasure (`erase`, which takes the
//! member's Wi-Fi key out of hostapd's file too), which tells HQ before
//! it removes anything so the erasure is never lost.

use super::record::MemberRecord;
use super::{Erased, MemberError, MemberView, Members, is_member_id};
use crate::mac::MacAddr;
use crate::store::{self, Tree};
use crate::time::Timestamp;
use crate::uplink::event::Event;

impl Members {
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
                    has_wifi_key: self.has_wifi_key(&r.member_id),
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
        if stored {
            inner.records = inner.records.saturating_sub(1);
        }
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
        // The record (and the PSK in it) is gone; so goes the key in force.
        if let Err(e) = self.drop_wifi_key(member_id) {
            tracing::error!(member_id, "erased, but the PSK file was not rewritten: {e}");
        }
        tracing::info!(member_id, devices = devices.len(), "member erased");
        Ok(Erased {
            member_id: member_id.to_string(),
            devices,
        })
    }
}
