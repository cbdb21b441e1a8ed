//! Stations from the access point (hostapd's control interface): a join
//! is known at association and a leave at disassociation, so dwell is
//! exact; a join with a member's personal Wi-Fi key is that member,
//! whatever MAC the phone shows today, and is signed in at once, before
//! the phone asks for an address.

use super::PresenceShell;
use crate::access::AuthMethod;
use crate::mac::MacAddr;
use crate::presence::{Sighting, SightingKind, Visit};
use crate::uplink::event::{Event, RecognisedBy};

impl PresenceShell {
    /// A station joined; `member` is the member whose key it used (the
    /// caller looked its `keyid` up), `None` for the open SSID or an
    /// unknown key. A member's station is signed in (method `wifi_key`)
    /// unless it is blocked or signed in already.
    pub fn station_joined(&self, mac: MacAddr, member: Option<String>, events: &mut Vec<Event>) {
        if !mac.is_unicast_client() {
            return;
        }
        let lock = || self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        match &member {
            Some(id) => {
                lock().insert(mac, id.clone());
            }
            None => {
                lock().remove(&mac);
            }
        }
        if let (Some(id), Some((_, gate))) = (&member, &self.members) {
            let signed_in = gate.client(mac).is_some_and(|c| c.is_authorized());
            if self.is_blocked(mac) {
                tracing::debug!(member_id = %id, "a blocked station of a member is not let in");
            } else if !signed_in {
                let seen = std::time::Instant::now();
                let result = tokio::task::block_in_place(|| {
                    gate.authorize(mac, None, AuthMethod::WifiKey, Some(id.clone()))
                });
                match result {
                    Ok(_) => {
                        self.count(|s| s.members_authorized += 1);
                        let us = seen.elapsed().as_micros() as u64;
                        tracing::info!(member_id = %id, us, "member signed in by Wi-Fi key");
                    }
                    Err(e) => {
                        self.count(|s| s.member_auth_errors += 1);
                        tracing::warn!(member_id = %id, "could not sign in a member by key: {e}");
                    }
                }
            }
        }
        let sighting = Sighting {
            mac,
            kind: SightingKind::Associated,
        };
        self.observe(&sighting, events);
    }

    /// A station left the access point: it is gone now.
    pub fn station_left(&self, mac: MacAddr, events: &mut Vec<Event>) {
        let sighting = Sighting {
            mac,
            kind: SightingKind::Disassociated,
        };
        self.observe(&sighting, events);
        self.by_key
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&mac);
    }

    /// The member whose key this station joined with, while it is on and
    /// the key is still in force (an erased or revoked key names nobody,
    /// even before hostapd has ended the station).
    pub(super) fn member_by_key(&self, mac: MacAddr) -> Option<String> {
        let id = self
            .by_key
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&mac)
            .cloned()?;
        match &self.members {
            Some((members, _)) if !members.has_wifi_key(&id) => None,
            _ => Some(id),
        }
    }

    /// Erasure: the member's stations name them no more.
    pub(super) fn forget_key_stations(&self, member_id: &str) {
        self.by_key
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, m| m != member_id);
    }

    /// The stations on the members' Wi-Fi now with `member_id`'s key
    /// (to deauthenticate when that key is renewed or removed).
    pub fn stations_of(&self, member_id: &str) -> Vec<MacAddr> {
        self.by_key
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, m)| m.as_str() == member_id)
            .map(|(mac, _)| *mac)
            .collect()
    }

    /// Takes out the Wi-Fi key of every member one of whose stations the
    /// manager or HQ has blocked: the line leaves the PSK file, hostapd
    /// reloads it and the member's stations are ended (the members'
    /// listener does that). Checked every minute with HQ's staff list.
    /// Returns the members whose key went.
    pub fn revoke_blocked_keys(&self) -> Vec<String> {
        let Some((members, _)) = &self.members else {
            return Vec::new();
        };
        let blocked: Vec<String> = {
            let by_key = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
            by_key
                .iter()
                .filter(|(mac, _)| self.is_blocked(**mac))
                .map(|(_, member)| member.clone())
                .collect()
        };
        let mut revoked = Vec::new();
        for member in blocked {
            match members.remove_wifi_key(&member) {
                Ok(true) => {
                    tracing::info!(member_id = %member, "Wi-Fi key taken out: a station of it is blocked");
                    revoked.push(member);
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(member_id = %member, "could not take out a blocked Wi-Fi key: {e}")
                }
            }
        }
        revoked
    }

    /// How a visit's member was recognised: by the Wi-Fi key its station
    /// joined with, else by the device's remembered MAC.
    pub fn recognised_by(&self, v: &Visit) -> Option<RecognisedBy> {
        v.member_id.as_ref()?;
        match self.member_by_key(v.mac) {
            Some(id) if Some(&id) == v.member_id.as_ref() => Some(RecognisedBy::WifiKey),
            _ => Some(RecognisedBy::Mac),
        }
    }
}
