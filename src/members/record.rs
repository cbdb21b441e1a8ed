//! A member as the box keeps it, and the pure rules for its bindings:
//! linking a device (moving a binding, at most `max_devices`, newest
//! kept), forgetting stale ones. The shell in `super` loads and saves.
//!
//! Never the phone number: only its keyed hash (the member id) and its
//! last four digits for the welcome page.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::mac::MacAddr;
use crate::time::Timestamp;

/// How the member proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Otp,
    MemberNumber,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Otp => "otp",
            Method::MemberNumber => "member_number",
        }
    }
}

/// One consent as given: yes or no, when, and to which version of the text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentRecord {
    pub granted: bool,
    pub at: Timestamp,
    pub version: String,
}

impl ConsentRecord {
    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "granted": self.granted,
            "at": self.at.rfc3339(),
            "version": self.version,
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consents {
    pub remember_device: Option<ConsentRecord>,
    pub marketing: Option<ConsentRecord>,
}

impl Consents {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "remember_device": self.remember_device.as_ref().map(ConsentRecord::to_json),
            "marketing": self.marketing.as_ref().map(ConsentRecord::to_json),
        })
    }
}

/// A device the member agreed to have remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    pub mac: MacAddr,
    pub bound_at: Timestamp,
    /// The last time it was recognised (or bound).
    pub last_seen: Timestamp,
}

impl Binding {
    /// Whether the binding has lapsed by `now`.
    pub fn stale(&self, remember: Duration, now: Timestamp) -> bool {
        self.last_seen.plus(remember) <= now
    }
}

/// Stored in `Tree::Members` under the member id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRecord {
    pub member_id: String,
    /// The phone's last four digits (phone sign-in only).
    pub phone_last4: Option<String>,
    pub method: Method,
    #[serde(default)]
    pub consents: Consents,
    /// Newest last.
    #[serde(default)]
    pub bindings: Vec<Binding>,
    /// The staff member credited with bringing the shopper in (the first
    /// one given).
    pub staff_code: Option<String>,
    pub created_at: Timestamp,
    /// The member's Wi-Fi key (its PSK only), if one was issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wifi_key: Option<WifiKeyRecord>,
}

/// A member's Wi-Fi key as stored: the PSK hostapd uses and the SSID it
/// was derived for; never the passphrase. `Debug` hides the PSK.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WifiKeyRecord {
    /// 64 hex digits.
    pub psk: String,
    pub ssid: String,
    pub issued_at: Timestamp,
}

impl std::fmt::Debug for WifiKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WifiKeyRecord")
            .field("psk", &"***")
            .field("ssid", &self.ssid)
            .field("issued_at", &self.issued_at)
            .finish()
    }
}

impl MemberRecord {
    pub fn new(member_id: &str, method: Method, last4: Option<String>, now: Timestamp) -> Self {
        MemberRecord {
            member_id: member_id.to_string(),
            phone_last4: last4,
            method,
            consents: Consents::default(),
            bindings: Vec::new(),
            staff_code: None,
            created_at: now,
            wifi_key: None,
        }
    }

    /// Records the consents ticked at `now` under text `version`. A box
    /// left unticked (its default) grants nothing on this device and
    /// withdraws nothing given before: the page offers consent, not an
    /// opt-out, so an untouched box is no answer.
    pub fn consent(&mut self, remember: bool, marketing: bool, version: &str, now: Timestamp) {
        let rec = || {
            Some(ConsentRecord {
                granted: true,
                at: now,
                version: version.to_string(),
            })
        };
        if remember {
            self.consents.remember_device = rec();
        }
        if marketing {
            self.consents.marketing = rec();
        }
    }

    /// Binds `mac` (or renews its binding) at `now`, keeping at most `max`
    /// bindings, newest (by last sighting) kept. Returns the MACs dropped.
    pub fn bind(&mut self, mac: MacAddr, max: usize, now: Timestamp) -> Vec<MacAddr> {
        match self.bindings.iter().position(|b| b.mac == mac) {
            Some(i) => {
                let mut b = self.bindings.remove(i);
                b.bound_at = now;
                b.last_seen = b.last_seen.max(now);
                self.bindings.push(b);
            }
            None => self.bindings.push(Binding {
                mac,
                bound_at: now,
                last_seen: now,
            }),
        }
        let mut dropped = Vec::new();
        while self.bindings.len() > max.max(1) {
            // The one seen longest ago, never the one just bound (last).
            let last = self.bindings.len() - 1;
            let oldest = self.bindings[..last]
                .iter()
                .enumerate()
                .min_by_key(|(_, b)| (b.last_seen, b.bound_at))
                .map(|(i, _)| i)
                .unwrap_or(0);
            dropped.push(self.bindings.remove(oldest).mac);
        }
        dropped
    }

    /// Removes the binding of `mac`; whether there was one.
    pub fn unbind(&mut self, mac: MacAddr) -> bool {
        let before = self.bindings.len();
        self.bindings.retain(|b| b.mac != mac);
        self.bindings.len() != before
    }

    /// Removes bindings not seen for `remember`; returns their MACs.
    pub fn expire(&mut self, remember: Duration, now: Timestamp) -> Vec<MacAddr> {
        let (stale, keep): (Vec<Binding>, Vec<Binding>) =
            self.bindings.iter().partition(|b| b.stale(remember, now));
        self.bindings = keep;
        stale.into_iter().map(|b| b.mac).collect()
    }

    /// Takes a fresher `last_seen` for the binding of `mac`.
    pub fn touch(&mut self, mac: MacAddr, at: Timestamp) -> bool {
        match self.bindings.iter_mut().find(|b| b.mac == mac) {
            Some(b) if b.last_seen < at => {
                b.last_seen = at;
                true
            }
            _ => false,
        }
    }

    pub fn last_seen(&self) -> Option<Timestamp> {
        self.bindings.iter().map(|b| b.last_seen).max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const B: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
    const C: MacAddr = MacAddr([2, 0, 0, 0, 0, 3]);
    const T0: Timestamp = Timestamp(1_795_000_000_000);

    fn at(secs: u64) -> Timestamp {
        T0.plus(Duration::from_secs(secs))
    }

    #[test]
    fn binding_keeps_the_newest_devices() {
        let mut r = MemberRecord::new("m_x", Method::Otp, Some("5678".into()), T0);
        assert!(r.bind(A, 2, at(1)).is_empty());
        assert!(r.bind(B, 2, at(2)).is_empty());
        r.touch(A, at(3));
        assert_eq!(r.bind(C, 2, at(4)), vec![B], "B was seen longest ago");
        assert_eq!(r.bind(A, 1, at(5)), vec![C], "max 1: the newest stays");
        assert_eq!(r.bindings.len(), 1);
        assert_eq!(r.bindings[0].bound_at, at(5));
        assert!(r.unbind(A));
        assert!(!r.unbind(A));
    }

    #[test]
    fn stale_bindings_expire() {
        let day = Duration::from_secs(86_400);
        let mut r = MemberRecord::new("m_x", Method::MemberNumber, None, T0);
        r.bind(A, 4, T0);
        r.bind(B, 4, T0.plus(day));
        assert!(r.expire(day * 2, T0.plus(day)).is_empty());
        assert_eq!(r.expire(day * 2, T0.plus(day * 2)), vec![A]);
        assert!(!r.touch(A, T0.plus(day * 3)), "A is gone");
        assert!(r.touch(B, T0.plus(day * 3)));
        assert_eq!(r.last_seen(), Some(T0.plus(day * 3)));
    }
}
