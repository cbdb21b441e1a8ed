//! The nftables backend.
//!
//! The table `inet storegate` is created (or atomically replaced) at start
//! from one JSON document fed to `nft -j -f -` (`ruleset`). Authorising and
//! revoking a client afterwards touch only set elements, through netlink
//! (`netlink`), so the hot path spawns no process and does not grow with the
//! number of clients.

pub mod netlink;
pub mod ruleset;

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Mutex;

use crate::access::{Firewall, FirewallError, Grant};
use crate::mac::MacAddr;

use netlink::{NftSocket, NlError};
pub use ruleset::RulesetParams;

/// The nftables `Firewall`.
pub struct NftFirewall {
    params: RulesetParams,
    /// One netlink socket, used under the lock: a change is a few
    /// microseconds, so contention is not worth a pool.
    socket: Mutex<NftSocket>,
}

impl NftFirewall {
    /// Opens the netlink socket; the table is created by `install`.
    pub fn new(params: RulesetParams) -> Result<Self, FirewallError> {
        let socket = NftSocket::open().map_err(|e| FirewallError::Unavailable(e.to_string()))?;
        Ok(NftFirewall {
            params,
            socket: Mutex::new(socket),
        })
    }

    fn with_socket<R>(
        &self,
        f: impl FnOnce(&mut NftSocket) -> Result<R, NlError>,
    ) -> Result<R, FirewallError> {
        let mut socket = self.socket.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut socket).map_err(|e| FirewallError::Netlink(e.to_string()))
    }
}

/// Applies an nftables JSON document with `nft -j -f -`: one process,
/// one transaction, the document on stdin (never on a command line).
pub fn apply_document(doc: &serde_json::Value) -> Result<(), FirewallError> {
    let mut child = Command::new("nft")
        .args(["-j", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| FirewallError::Unavailable(format!("cannot run nft: {e}")))?;
    let body = doc.to_string();
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(body.as_bytes())
            .map_err(|e| FirewallError::Unavailable(format!("writing to nft: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| FirewallError::Unavailable(format!("waiting for nft: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let first = stderr
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no message");
        Err(FirewallError::Rejected(format!("{} ({first})", out.status)))
    }
}

impl Firewall for NftFirewall {
    fn install(&self, grants: &[Grant]) -> Result<(), FirewallError> {
        apply_document(&ruleset::document(&self.params, grants))
    }

    fn allow(&self, grant: Grant) -> Result<(), FirewallError> {
        self.with_socket(|s| {
            s.add_element(
                ruleset::TABLE,
                ruleset::SET_ALLOWED,
                &grant.mac.octets(),
                Some(grant.ttl.max(std::time::Duration::from_millis(1))),
            )
        })
    }

    fn revoke(&self, mac: MacAddr) -> Result<(), FirewallError> {
        // The `active` entry is left to expire on its own (within one
        // activity window): a re-sign-in restarts the idle clock anyway.
        self.with_socket(|s| s.remove_element(ruleset::TABLE, ruleset::SET_ALLOWED, &mac.octets()))
    }

    fn recently_active(&self) -> Result<Option<Vec<MacAddr>>, FirewallError> {
        let keys = self.with_socket(|s| s.list_elements(ruleset::TABLE, ruleset::SET_ACTIVE))?;
        Ok(Some(
            keys.into_iter()
                .filter_map(|k| <[u8; 6]>::try_from(k.get(..6)?).ok().map(MacAddr))
                .collect(),
        ))
    }

    fn name(&self) -> &'static str {
        "nftables"
    }
}
