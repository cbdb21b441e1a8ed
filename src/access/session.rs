//! The client-session machine: pre-auth → authorised → ended.
//!
//! Pure: no clock, no I/O. Every method takes `now` and returns the
//! `Action`s the shell must carry out, in order (persist before allowing,
//! so a crash between the two never loses a signed-in client).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::mac::MacAddr;
use crate::time::Timestamp;

/// How long an unauthorised client is remembered after we last saw it.
const PREAUTH_FORGET_AFTER: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientState {
    Preauth,
    Authorized,
}

/// How a client got authorised (the `method` of `session.authorized`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    ClickThrough,
    Otp,
    MemberNumber,
    ReturningDevice,
    /// The device joined the members' Wi-Fi with the member's own key.
    WifiKey,
    /// An operator ran `storegate ctl auth`.
    Operator,
}

impl AuthMethod {
    /// The wire name (as serde writes it).
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClickThrough => "click_through",
            AuthMethod::Otp => "otp",
            AuthMethod::MemberNumber => "member_number",
            AuthMethod::ReturningDevice => "returning_device",
            AuthMethod::WifiKey => "wifi_key",
            AuthMethod::Operator => "operator",
        }
    }
}

/// Why a session ended (the `reason` of `session.ended`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    Logout,
    SessionTimeout,
    IdleTimeout,
    Operator,
    /// The firewall refused the grant, so the sign-in was undone.
    FirewallError,
}

impl EndReason {
    /// The wire name (as serde writes it).
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Logout => "logout",
            EndReason::SessionTimeout => "session_timeout",
            EndReason::IdleTimeout => "idle_timeout",
            EndReason::Operator => "operator",
            EndReason::FirewallError => "firewall_error",
        }
    }
}

/// One client as the box knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    pub mac: MacAddr,
    pub ip: Option<IpAddr>,
    pub state: ClientState,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub authorized_at: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
    pub method: Option<AuthMethod>,
    pub member_id: Option<String>,
    /// Last time traffic from the client was seen (idle timeout).
    #[serde(skip)]
    pub last_active: Option<Timestamp>,
}

impl Client {
    fn new(mac: MacAddr, ip: Option<IpAddr>, now: Timestamp) -> Self {
        Client {
            mac,
            ip,
            state: ClientState::Preauth,
            first_seen: now,
            last_seen: now,
            authorized_at: None,
            expires_at: None,
            method: None,
            member_id: None,
            last_active: None,
        }
    }

    pub fn is_authorized(&self) -> bool {
        self.state == ClientState::Authorized
    }

    /// Time left in the session at `now`; `None` unless authorised with
    /// time to spare. A session past its end counts as over at once, even
    /// before the next `tick` ends it formally (the kernel already has).
    pub fn remaining(&self, now: Timestamp) -> Option<Duration> {
        match (self.state, self.expires_at) {
            (ClientState::Authorized, Some(until)) if until > now => Some(now.until(until)),
            _ => None,
        }
    }
}

/// Something that happened to a session, for the event stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    Authorized {
        mac: MacAddr,
        method: AuthMethod,
        member_id: Option<String>,
        at: Timestamp,
    },
    Ended {
        mac: MacAddr,
        reason: EndReason,
        at: Timestamp,
    },
}

/// What the shell must do, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Persist this authorised client (durably, before `Allow`).
    Save(Client),
    /// Let `mac` through until `until`.
    Allow {
        mac: MacAddr,
        until: Timestamp,
    },
    /// Stop letting `mac` through.
    Revoke(MacAddr),
    /// Remove the persisted record of `mac`.
    Forget(MacAddr),
    Event(SessionEvent),
}

#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    pub session_timeout: Duration,
    pub idle_timeout: Duration,
    /// Cap on remembered unauthorised clients; the longest-unseen goes.
    pub max_preauth: usize,
}

/// All clients, authorised or not.
#[derive(Debug)]
pub struct Sessions {
    policy: SessionPolicy,
    /// Boxed, so the table's unused slots cost 16 bytes, not a record.
    clients: HashMap<MacAddr, Box<Client>>,
    preauth: usize,
}

impl Sessions {
    pub fn new(policy: SessionPolicy) -> Self {
        Sessions {
            policy,
            clients: HashMap::new(),
            preauth: 0,
        }
    }

    pub fn policy(&self) -> SessionPolicy {
        self.policy
    }

    /// Takes back persisted clients after a start. Sessions still running
    /// are allowed again (the idle clock restarts); expired ones are ended.
    pub fn restore(&mut self, saved: Vec<Client>, now: Timestamp) -> Vec<Action> {
        let mut actions = Vec::new();
        for mut c in saved {
            let Some(until) = c.expires_at.filter(|_| c.is_authorized()) else {
                actions.push(Action::Forget(c.mac));
                continue;
            };
            if until <= now {
                actions.push(Action::Forget(c.mac));
                actions.push(Action::Event(SessionEvent::Ended {
                    mac: c.mac,
                    reason: EndReason::SessionTimeout,
                    at: until,
                }));
                continue;
            }
            c.last_active = Some(now);
            actions.push(Action::Allow { mac: c.mac, until });
            if let Some(old) = self.clients.insert(c.mac, Box::new(c))
                && !old.is_authorized()
            {
                self.preauth -= 1;
            }
        }
        actions
    }

    /// Notes a client (from the portal or the LAN) at `ip`.
    pub fn seen(&mut self, mac: MacAddr, ip: Option<IpAddr>, now: Timestamp) {
        if let Some(c) = self.clients.get_mut(&mac) {
            c.last_seen = now;
            if ip.is_some() {
                c.ip = ip;
            }
            return;
        }
        if self.preauth >= self.policy.max_preauth {
            self.evict_oldest_preauth();
        }
        self.clients
            .insert(mac, Box::new(Client::new(mac, ip, now)));
        self.preauth += 1;
    }

    fn evict_oldest_preauth(&mut self) {
        let oldest = self
            .clients
            .values()
            .filter(|c| !c.is_authorized())
            .min_by_key(|c| c.last_seen)
            .map(|c| c.mac);
        if let Some(mac) = oldest {
            self.clients.remove(&mac);
            self.preauth -= 1;
        }
    }

    /// Signs a client in. Authorising an authorised client renews its
    /// session (a new sign-in starts a full new session).
    pub fn authorize(
        &mut self,
        mac: MacAddr,
        ip: Option<IpAddr>,
        method: AuthMethod,
        member_id: Option<String>,
        now: Timestamp,
    ) -> Vec<Action> {
        let until = now.plus(self.policy.session_timeout);
        let c = match self.clients.get_mut(&mac) {
            Some(c) => {
                if !c.is_authorized() {
                    self.preauth -= 1;
                }
                c.last_seen = now;
                if ip.is_some() {
                    c.ip = ip;
                }
                c
            }
            // A new client goes straight to authorised: it never takes a
            // pre-auth place, so it cannot evict anyone.
            None => self
                .clients
                .entry(mac)
                .or_insert_with(|| Box::new(Client::new(mac, ip, now))),
        };
        c.state = ClientState::Authorized;
        c.authorized_at = Some(now);
        c.expires_at = Some(until);
        c.method = Some(method);
        c.member_id = member_id.clone();
        c.last_active = Some(now);
        vec![
            Action::Save((**c).clone()),
            Action::Allow { mac, until },
            Action::Event(SessionEvent::Authorized {
                mac,
                method,
                member_id,
                at: now,
            }),
        ]
    }

    /// Ends an authorised session; the client stays known as pre-auth.
    /// Ending a client that is not authorised does nothing.
    pub fn end(&mut self, mac: MacAddr, reason: EndReason, now: Timestamp) -> Vec<Action> {
        let Some(c) = self.clients.get_mut(&mac) else {
            return Vec::new();
        };
        if !c.is_authorized() {
            return Vec::new();
        }
        c.state = ClientState::Preauth;
        c.authorized_at = None;
        c.expires_at = None;
        c.method = None;
        c.member_id = None;
        c.last_active = None;
        c.last_seen = c.last_seen.max(now);
        self.preauth += 1;
        // Forget before revoking: should the box die between the two, the
        // restart rebuilds the firewall from the store without this client.
        vec![
            Action::Forget(mac),
            Action::Revoke(mac),
            Action::Event(SessionEvent::Ended {
                mac,
                reason,
                at: now,
            }),
        ]
    }

    /// The wall clock stepped by `delta_ms` (an NTP sync on a box with no
    /// real-time clock, typically soon after boot). Sessions authorised
    /// between `from` and `to` (by the clock before the step) get their
    /// times moved with it, so they keep the time they were promised; the
    /// kernel's own timeouts are relative and need nothing. Sessions
    /// outside that window (restored from before the process started)
    /// were stamped by a good clock and stay as they are. Returns the
    /// MACs whose records changed.
    pub fn shift_clock(&mut self, from: Timestamp, to: Timestamp, delta_ms: i64) -> Vec<MacAddr> {
        let shift = |t: Timestamp| Timestamp(t.0.saturating_add(delta_ms));
        let mut changed = Vec::new();
        for c in self.clients.values_mut() {
            if !c.authorized_at.is_some_and(|t| from <= t && t <= to) {
                continue;
            }
            c.authorized_at = c.authorized_at.map(shift);
            c.expires_at = c.expires_at.map(shift);
            c.last_active = c.last_active.map(shift);
            c.last_seen = shift(c.last_seen);
            changed.push(c.mac);
        }
        changed.sort();
        changed
    }

    /// Traffic from `mac` was seen at `now`.
    pub fn activity(&mut self, mac: MacAddr, now: Timestamp) {
        if let Some(c) = self.clients.get_mut(&mac)
            && c.is_authorized()
        {
            c.last_active = Some(c.last_active.map_or(now, |t| t.max(now)));
        }
    }

    /// Ends sessions whose time is up and forgets long-unseen pre-auth
    /// clients.
    pub fn tick(&mut self, now: Timestamp) -> Vec<Action> {
        let idle = self.policy.idle_timeout;
        let mut ending = Vec::new();
        let mut stale = Vec::new();
        for c in self.clients.values() {
            if c.is_authorized() {
                if c.expires_at.is_some_and(|t| t <= now) {
                    ending.push((c.mac, EndReason::SessionTimeout));
                } else if c.last_active.is_some_and(|t| t.plus(idle) <= now) {
                    ending.push((c.mac, EndReason::IdleTimeout));
                }
            } else if c.last_seen.plus(PREAUTH_FORGET_AFTER) <= now {
                stale.push(c.mac);
            }
        }
        for mac in stale {
            self.clients.remove(&mac);
            self.preauth -= 1;
        }
        ending.sort_by_key(|(mac, _)| *mac);
        ending
            .into_iter()
            .flat_map(|(mac, reason)| self.end(mac, reason, now))
            .collect()
    }

    pub fn get(&self, mac: MacAddr) -> Option<&Client> {
        self.clients.get(&mac).map(|c| &**c)
    }

    /// The client using `ip` now, if any.
    pub fn by_ip(&self, ip: IpAddr) -> Option<&Client> {
        self.clients
            .values()
            .map(|c| &**c)
            .filter(|c| c.ip == Some(ip))
            .max_by_key(|c| c.last_seen)
    }

    pub fn clients(&self) -> impl Iterator<Item = &Client> {
        self.clients.values().map(|c| &**c)
    }

    pub fn authorized_count(&self) -> usize {
        self.clients.len() - self.preauth
    }

    pub fn preauth_count(&self) -> usize {
        self.preauth
    }
}

#[cfg(test)]
mod tests;
