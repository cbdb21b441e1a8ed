//! The hub: the handles every adapter shares, and every operation that
//! spans modules. The portal, the dashboard and the control socket call
//! in here; nothing in here knows HTTP or sockets.
//!
//! Operations (each the one place its rule lives):
//! - [`App::sign_out`] / [`App::authorize`]: a client's session, by hand;
//! - [`App::block`]: the manager's block list (a blocked device also
//!   loses its session at once);
//! - [`App::set_staff`]: a device in or out of footfall;
//! - [`App::erase_member`]: a member gone from records, bindings,
//!   sessions, devices and visits, and HQ told (`erase`);
//! - [`App::observe`]: a hand-made DHCP sighting (`ctl observe`);
//! - [`App::set_dashboard_password`]: the manager password, every
//!   dashboard session signed out;
//! - [`App::status`]: the whole picture for `ctl status` (`status`).
//!
//! `daemon` builds one `App` and hands an `Arc<App>` to each server.

mod erase;
pub mod manager;
mod stats;
mod status;

#[cfg(test)]
pub(crate) mod rig;

use std::sync::{Arc, Mutex};

use crate::access::blocked::{BlockError, Blocklist};
use crate::access::gate::{Gate, GateError};
use crate::access::session::Client;
use crate::access::{AuthMethod, EndReason};
use crate::clock::Clock;
use crate::mac::MacAddr;
use crate::members::Members;
use crate::presence::{DhcpInfo, DhcpMessageType, PresenceShell, Sighting, SightingKind};
use crate::store::Store;
use crate::uplink::Outbox;
use crate::uplink::delivery::DeliveryStatus;
use crate::uplink::sink::EventSink;
use crate::uplink::sync::SyncState;

pub use erase::{EraseError, Erased};
pub use manager::Sessions as ManagerSessions;
pub use stats::PortalStats;
pub use status::AppInfo;

/// The box's shared state and operations (see the module docs).
pub struct App {
    /// What the box is (for `status`): ids, names, URLs, start time.
    pub info: AppInfo,
    pub store: Arc<dyn Store>,
    pub gate: Arc<Gate>,
    /// `None`: member sign-in is off (`members` and `member-erase` say so).
    pub members: Option<Arc<Members>>,
    pub presence: Arc<PresenceShell>,
    pub outbox: Arc<Outbox>,
    /// The one path to HQ (the outbox, MACs hashed on the way).
    pub events: Arc<dyn EventSink>,
    /// Blocked by the manager or HQ; the portal and presence read it.
    pub blocklist: Arc<Blocklist>,
    /// HQ's last good sync document.
    pub sync: Arc<SyncState>,
    /// The portal's counters (it writes them, `status` and `/metrics` read).
    pub portal_stats: Arc<PortalStats>,
    /// How delivery to HQ is going (written by the delivery task).
    pub delivery: Arc<Mutex<DeliveryStatus>>,
    /// Signed-in dashboard sessions.
    pub manager_sessions: Arc<ManagerSessions>,
    /// The business clock (sessions, visits, footfall, what the dashboard
    /// and `ctl` show); the wall clock but in the demo.
    pub clock: Clock,
}

/// Why an operation on a client failed.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error("{0} is a group or zero address, not a client")]
    NotAClient(MacAddr),
    #[error(transparent)]
    Gate(#[from] GateError),
    #[error(transparent)]
    Block(#[from] BlockError),
}

/// Clients are unicast MACs; group and zero addresses never are.
fn client_mac(mac: MacAddr) -> Result<MacAddr, OpError> {
    if mac.is_unicast_client() {
        Ok(mac)
    } else {
        Err(OpError::NotAClient(mac))
    }
}

impl App {
    /// Signs a client in by hand (`ctl auth`), keeping the IP the box knows.
    pub fn authorize(&self, mac: MacAddr) -> Result<Client, OpError> {
        let mac = client_mac(mac)?;
        let ip = self.gate.client(mac).and_then(|c| c.ip);
        Ok(self.gate.authorize(mac, ip, AuthMethod::Operator, None)?)
    }

    /// Ends a client's session by hand; returns whether it was signed in.
    pub fn sign_out(&self, mac: MacAddr) -> Result<bool, OpError> {
        let mac = client_mac(mac)?;
        Ok(self.gate.end(mac, EndReason::Operator)?)
    }

    /// Blocks or unblocks a device for the manager. A blocked device loses
    /// its session at once; returns whether it had one.
    pub fn block(&self, mac: MacAddr, blocked: bool) -> Result<bool, OpError> {
        self.blocklist.manager().set(mac, blocked)?;
        if !blocked {
            return Ok(false);
        }
        Ok(self.gate.end(mac, EndReason::Operator)?)
    }

    /// Marks a device as staff or not, from now on.
    pub fn set_staff(&self, mac: MacAddr, staff: bool) {
        self.presence.set_staff(mac, staff);
    }

    /// A DHCP request from `mac` recorded by hand, as the capture would
    /// (the hostname bounded as the DHCP parser bounds it). Returns the
    /// device as `ctl devices` shows it.
    pub fn observe(
        &self,
        mac: MacAddr,
        requested_ip: Option<std::net::Ipv4Addr>,
        hostname: Option<String>,
    ) -> Result<serde_json::Value, OpError> {
        let mac = client_mac(mac)?;
        let hostname = hostname.and_then(|h| {
            crate::net::wire::dhcp::clean_text(
                h.as_bytes(),
                crate::net::wire::dhcp::MAX_HOSTNAME_CHARS,
            )
        });
        let sighting = Sighting {
            mac,
            kind: SightingKind::DhcpClient(DhcpInfo {
                message_type: DhcpMessageType::Request,
                requested_ip,
                hostname,
                ..DhcpInfo::default()
            }),
        };
        let mut events = Vec::new();
        self.presence.observe(&sighting, &mut events);
        self.presence.store_events(&mut events);
        let device = self.presence.machine().device(mac).map(|d| d.to_ctl_json());
        Ok(device.unwrap_or_default())
    }

    /// Sets the manager password (hashed, stored) and signs every
    /// dashboard session out.
    pub fn set_dashboard_password(&self, password: &str) -> Result<(), manager::AuthError> {
        manager::set_password(self.store.as_ref(), password)?;
        self.manager_sessions.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests;
