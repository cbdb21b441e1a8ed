//! `Gate`: the shell around the session machine. It reads the clock,
//! carries out the machine's actions against the store and the firewall,
//! and hands session events on. The portal and the control socket call it.
//!
//! Ordering rule: every store change is flushed to disk before the next
//! firewall change, so the firewall never lets through a client the
//! state on disk does not know about.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::Duration;

use crate::access::session::{Action, Client, SessionEvent, SessionPolicy};
use crate::access::{AuthMethod, EndReason, Firewall, FirewallError, Grant, Sessions};
use crate::clock::Clock;
use crate::mac::MacAddr;
use crate::store::{self, Store, StoreError, Tree};
use crate::time::Timestamp;
use crate::uplink::event::{Event, RecognisedBy};
use crate::uplink::sink::EventSink;

/// The event HQ gets for a session event (logged here too: a sign-in or
/// sign-out is worth a line in the box's own log).
fn to_event(event: &SessionEvent) -> (Event, Timestamp) {
    match event {
        SessionEvent::Authorized {
            mac,
            method,
            member_id,
            at,
        } => {
            tracing::info!(device = %mac.redacted(), ?method, "client authorised");
            let recognised_by = match method {
                AuthMethod::ReturningDevice => Some(RecognisedBy::Mac),
                AuthMethod::WifiKey => Some(RecognisedBy::WifiKey),
                _ => None,
            };
            let e = Event::SessionAuthorized {
                mac: *mac,
                method: method.as_str(),
                member_id: member_id.clone(),
                recognised_by,
            };
            (e, *at)
        }
        SessionEvent::Ended { mac, reason, at } => {
            tracing::info!(device = %mac.redacted(), ?reason, "session ended");
            let e = Event::SessionEnded {
                mac: *mac,
                reason: reason.as_str(),
            };
            (e, *at)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error(transparent)]
    Firewall(#[from] FirewallError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What `Gate::open` found on disk.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Restored {
    pub authorized: usize,
    pub expired: usize,
    pub corrupt: usize,
}

pub struct Gate {
    sessions: Mutex<Sessions>,
    firewall: Arc<dyn Firewall>,
    store: Arc<dyn Store>,
    events: Arc<dyn EventSink>,
    /// Revokes the firewall refused; retried each tick.
    pending_revokes: Mutex<HashSet<MacAddr>>,
    /// Times sessions (the wall clock but in the demo).
    clock: Clock,
}

/// A session's remaining time `ttl` (on `clock`) as the firewall's real
/// timeout (a paused clock: the whole `ttl`; the gate's tick ends it).
fn real_ttl(clock: &Clock, ttl: Duration) -> Duration {
    clock.real(ttl).unwrap_or(ttl)
}

impl Gate {
    /// Loads saved sessions and installs the firewall with every session
    /// still running, in one step, before anyone is served.
    pub fn open(
        policy: SessionPolicy,
        firewall: Arc<dyn Firewall>,
        store: Arc<dyn Store>,
        events: Arc<dyn EventSink>,
    ) -> Result<(Gate, Restored), GateError> {
        Gate::open_with_clock(policy, firewall, store, events, Clock::wall())
    }

    /// [`Gate::open`] with sessions timed by `clock` (the demo's simulated
    /// one); the firewall's timeouts stay in real time.
    pub fn open_with_clock(
        policy: SessionPolicy,
        firewall: Arc<dyn Firewall>,
        store: Arc<dyn Store>,
        events: Arc<dyn EventSink>,
        clock: Clock,
    ) -> Result<(Gate, Restored), GateError> {
        let mut report = Restored::default();
        let mut saved = Vec::new();
        for record in store::scan_json::<Client>(store.as_ref(), Tree::Clients)? {
            match record {
                Ok(c) => saved.push(c),
                Err(e) => {
                    report.corrupt += 1;
                    tracing::warn!("skipping a saved client: {e}");
                }
            }
        }
        let now = clock.now();
        let mut sessions = Sessions::new(policy);
        let actions = sessions.restore(saved, now);
        let mut grants = Vec::new();
        for action in &actions {
            match action {
                Action::Allow { mac, until } => grants.push(Grant {
                    mac: *mac,
                    ttl: real_ttl(&clock, now.until(*until)),
                }),
                Action::Forget(mac) => {
                    store.remove(Tree::Clients, &mac.octets())?;
                }
                Action::Event(SessionEvent::Ended { .. }) => report.expired += 1,
                _ => {}
            }
        }
        store.flush()?;
        firewall.install(&grants)?;
        report.authorized = grants.len();
        let gate = Gate {
            sessions: Mutex::new(sessions),
            firewall,
            store,
            events,
            pending_revokes: Mutex::new(HashSet::new()),
            clock,
        };
        for action in actions {
            if let Action::Event(e) = action {
                gate.emit(vec![e]);
            }
        }
        Ok((gate, report))
    }

    fn lock(&self) -> MutexGuard<'_, Sessions> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Carries out actions in three steps: every store change, one flush,
    /// then every firewall change. So the firewall never lets through a
    /// client the disk does not know, and no client is forgotten on disk
    /// after its revoke. A grant is skipped if the store step failed (a
    /// revoke never is: revoking is always safe). It goes on past a
    /// failure, so one bad client cannot leave the others half done; a
    /// failed revoke is kept and retried by the next tick. Returns the
    /// events and the first error.
    fn apply(
        &self,
        actions: Vec<Action>,
        now: Timestamp,
    ) -> (Vec<SessionEvent>, Option<GateError>) {
        let mut first_error: Option<GateError> = None;
        let mut note = |e: GateError| {
            tracing::error!("session change failed: {e}");
            first_error.get_or_insert(e);
        };
        let (mut firewall_ops, mut events) = (Vec::new(), Vec::new());
        let mut store_ok = true;
        for action in actions {
            let stored = match action {
                Action::Save(c) => {
                    store::put_json(self.store.as_ref(), Tree::Clients, &c.mac.octets(), &c)
                }
                Action::Forget(mac) => self.store.remove(Tree::Clients, &mac.octets()),
                Action::Event(e) => {
                    events.push(e);
                    Ok(())
                }
                op => {
                    firewall_ops.push(op);
                    Ok(())
                }
            };
            if let Err(e) = stored {
                store_ok = false;
                note(e.into());
            }
        }
        if let Err(e) = self.store.flush() {
            store_ok = false;
            note(e.into());
        }
        for op in firewall_ops {
            match op {
                Action::Allow { mac, until } if store_ok => {
                    if let Err(e) = self.firewall.allow(Grant {
                        mac,
                        ttl: real_ttl(&self.clock, now.until(until)),
                    }) {
                        note(e.into());
                    }
                }
                Action::Revoke(mac) => {
                    if let Err(e) = self.firewall.revoke(mac) {
                        self.pending_revokes().insert(mac);
                        note(e.into());
                    }
                }
                _ => {}
            }
        }
        (events, first_error)
    }

    fn pending_revokes(&self) -> MutexGuard<'_, HashSet<MacAddr>> {
        self.pending_revokes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Retries revokes that failed earlier.
    fn retry_revokes(&self) {
        let pending: Vec<MacAddr> = self.pending_revokes().drain().collect();
        for mac in pending {
            if let Err(e) = self.firewall.revoke(mac) {
                tracing::warn!(mac = %mac.redacted(), "revoke still failing: {e}");
                self.pending_revokes().insert(mac);
            }
        }
    }

    /// Hands session events to the sink. The session is already stored
    /// and enforced; a sink that cannot store the event loses HQ's copy of
    /// it (logged), never the session.
    fn emit(&self, events: Vec<SessionEvent>) {
        for e in &events {
            let (event, at) = to_event(e);
            let ty = event.ty();
            if let Err(err) = self.events.emit(event, at) {
                tracing::error!("could not store a {ty} event: {err}");
            }
        }
    }

    /// Signs a client in. On a firewall failure the sign-in is undone and
    /// the error returned, so the client is never shown "connected" while
    /// its traffic is still blocked.
    pub fn authorize(
        &self,
        mac: MacAddr,
        ip: Option<IpAddr>,
        method: AuthMethod,
        member_id: Option<String>,
    ) -> Result<Client, GateError> {
        let now = self.clock.now();
        let mut sessions = self.lock();
        let actions = sessions.authorize(mac, ip, method, member_id, now);
        match self.apply(actions, now) {
            (events, None) => {
                let client = sessions.get(mac).cloned();
                // Events go out under the lock, so their sequence numbers
                // follow the order of the changes.
                self.emit(events);
                client.ok_or_else(|| StoreError::Backend("client vanished".into()).into())
            }
            (_, Some(e)) => {
                // Undo quietly: HQ never heard of this session.
                let undo = sessions.end(mac, EndReason::FirewallError, now);
                if let (_, Some(undo_err)) = self.apply(undo, now) {
                    tracing::error!(mac = %mac.redacted(), "could not undo a failed sign-in: {undo_err}");
                }
                Err(e)
            }
        }
    }

    /// Ends a client's session. Returns whether it was authorised.
    pub fn end(&self, mac: MacAddr, reason: EndReason) -> Result<bool, GateError> {
        let now = self.clock.now();
        let sessions = &mut self.lock();
        let actions = sessions.end(mac, reason, now);
        let was = !actions.is_empty();
        let (events, error) = self.apply(actions, now);
        self.emit(events);
        match error {
            Some(e) => Err(e),
            None => Ok(was),
        }
    }

    /// Erasure: ends every session signed in as `member_id` (the device
    /// is a stranger again: captured until it signs in anew), so no client
    /// record names the member. Returns the MACs signed out.
    pub fn forget_member(&self, member_id: &str) -> Result<Vec<MacAddr>, GateError> {
        let now = self.clock.now();
        let sessions = &mut self.lock();
        let mut macs: Vec<MacAddr> = sessions
            .clients()
            .filter(|c| c.member_id.as_deref() == Some(member_id))
            .map(|c| c.mac)
            .collect();
        macs.sort();
        let actions = macs
            .iter()
            .flat_map(|mac| sessions.end(*mac, EndReason::Operator, now))
            .collect();
        let (events, error) = self.apply(actions, now);
        self.emit(events);
        match error {
            Some(e) => Err(e),
            None => Ok(macs),
        }
    }

    /// Notes a client that reached the portal. Bookkeeping only: when a
    /// sign-in holds the lock (through its fsync), it is skipped rather
    /// than making a portal request wait.
    pub fn seen(&self, mac: MacAddr, ip: Option<IpAddr>) {
        match self.sessions.try_lock() {
            Ok(mut s) => s.seen(mac, ip, self.clock.now()),
            Err(TryLockError::Poisoned(p)) => p.into_inner().seen(mac, ip, self.clock.now()),
            Err(TryLockError::WouldBlock) => {}
        }
    }

    /// Ends sessions whose time is up. Returns how many ended.
    pub fn tick(&self) -> Result<usize, GateError> {
        let now = self.clock.now();
        let sessions = &mut self.lock();
        self.retry_revokes();
        let actions = sessions.tick(now);
        let (events, error) = self.apply(actions, now);
        let n = events.len();
        self.emit(events);
        match error {
            Some(e) => Err(e),
            None => Ok(n),
        }
    }

    /// The wall clock stepped by `delta_ms`: sessions this process
    /// authorised between `from` and `to` keep the time they were
    /// promised (see [`Sessions::shift_clock`]); their records are
    /// rewritten. Returns how many moved.
    pub fn clock_stepped(
        &self,
        from: Timestamp,
        to: Timestamp,
        delta_ms: i64,
    ) -> Result<usize, GateError> {
        let mut sessions = self.lock();
        let changed = sessions.shift_clock(from, to, delta_ms);
        for mac in &changed {
            if let Some(c) = sessions.get(*mac) {
                store::put_json(self.store.as_ref(), Tree::Clients, &mac.octets(), c)?;
            }
        }
        if !changed.is_empty() {
            self.store.flush()?;
        }
        Ok(changed.len())
    }

    /// Feeds the firewall's view of recent traffic to the idle timers.
    /// Backends that cannot tell keep every client active.
    pub fn refresh_activity(&self) -> Result<(), GateError> {
        let active = self.firewall.recently_active()?;
        let now = self.clock.now();
        let mut sessions = self.lock();
        match active {
            Some(macs) => macs.into_iter().for_each(|m| sessions.activity(m, now)),
            None => {
                let all: Vec<MacAddr> = sessions
                    .clients()
                    .filter(|c| c.is_authorized())
                    .map(|c| c.mac)
                    .collect();
                all.into_iter().for_each(|m| sessions.activity(m, now));
            }
        }
        Ok(())
    }

    pub fn client(&self, mac: MacAddr) -> Option<Client> {
        self.lock().get(mac).cloned()
    }

    pub fn client_by_ip(&self, ip: IpAddr) -> Option<Client> {
        self.lock().by_ip(ip).cloned()
    }

    /// Every known client, authorised first, then by MAC.
    pub fn clients(&self) -> Vec<Client> {
        let mut all: Vec<Client> = self.lock().clients().cloned().collect();
        all.sort_by_key(|c| (!c.is_authorized(), c.mac));
        all
    }

    /// (authorised, pre-auth) counts.
    pub fn counts(&self) -> (usize, usize) {
        let s = self.lock();
        (s.authorized_count(), s.preauth_count())
    }

    /// The clock sessions are timed by.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn policy(&self) -> SessionPolicy {
        self.lock().policy()
    }

    pub fn firewall_name(&self) -> &'static str {
        self.firewall.name()
    }
}

#[cfg(test)]
mod tests;
