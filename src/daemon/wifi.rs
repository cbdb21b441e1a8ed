//! The members' Wi-Fi, wired: stations that hostapd reports go to the
//! presence shell (a member's key signs the station in at association);
//! key changes go to hostapd (`RELOAD_WPA_PSK`, then the stations of a
//! renewed or removed key are deauthenticated, so an old key stops
//! working at once).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::WifiConfig;
use crate::mac::MacAddr;
use crate::members::{Members, WifiChange};
use crate::net::hostapd::{self, HostapdSet, StationEvent};
use crate::presence::PresenceShell;

/// Station events and key changes waiting to be handled.
const QUEUE: usize = 1024;
/// Stations whose radio is remembered (for roaming); past this a leave
/// from any radio counts.
const MAX_STATIONS: usize = 16_384;

/// Starts the hostapd links and the two tasks that feed them and read
/// them. `local_dir` holds storegate's own control-interface sockets.
pub fn start(
    wifi: &WifiConfig,
    members: Arc<Members>,
    shell: Arc<PresenceShell>,
    local_dir: PathBuf,
    shutdown: &CancellationToken,
    tracker: &TaskTracker,
) {
    let (events_tx, events_rx) = mpsc::channel(QUEUE);
    let (set, commands) = HostapdSet::new(wifi.hostapd_ctrl.len());
    tracker.spawn(hostapd::run(
        wifi.hostapd_ctrl.clone(),
        local_dir,
        events_tx,
        commands,
        shutdown.clone(),
    ));
    tracker.spawn(stations(
        events_rx,
        members.clone(),
        shell.clone(),
        shutdown.clone(),
    ));
    let (changes_tx, changes_rx) = mpsc::channel(QUEUE);
    if let Some(keys) = members.wifi() {
        // The stations of a key that goes are taken now, on the thread
        // that changed it: by the time the task runs, erasure may have
        // cleared them from presence.
        let on_key = shell.clone();
        keys.set_listener(Arc::new(move |change: &WifiChange| {
            let stale = match change {
                WifiChange::Issued {
                    member_id,
                    renewed: true,
                }
                | WifiChange::Removed { member_id } => on_key.stations_of(member_id),
                WifiChange::Issued { renewed: false, .. } => Vec::new(),
            };
            if changes_tx.try_send(stale).is_err() {
                tracing::warn!("Wi-Fi key changes queue full; hostapd reloads at the next change");
            }
        }));
    }
    tracker.spawn(key_changes(changes_rx, set, shutdown.clone()));
}

/// hostapd's stations into presence.
async fn stations(
    mut rx: mpsc::Receiver<(usize, StationEvent)>,
    members: Arc<Members>,
    shell: Arc<PresenceShell>,
    shutdown: CancellationToken,
) {
    let mut events = Vec::new();
    // Which radio (control socket) each station is on now: a phone
    // roaming from one radio to the other often joins the new one before
    // the old one reports it gone, and that late leave must not end it.
    let mut on: HashMap<MacAddr, usize> = HashMap::new();
    loop {
        let (link, event) = tokio::select! {
            _ = shutdown.cancelled() => return,
            e = rx.recv() => match e {
                Some(e) => e,
                None => return,
            },
        };
        match event {
            StationEvent::Connected { mac, keyid } => {
                if on.len() < MAX_STATIONS || on.contains_key(&mac) {
                    on.insert(mac, link);
                }
                let member = keyid.and_then(|k| members.member_for_keyid(&k));
                shell.station_joined(mac, member, &mut events);
            }
            StationEvent::Disconnected { mac } => {
                if on.get(&mac).is_some_and(|&now_on| now_on != link) {
                    continue; // roamed: still on the other radio
                }
                on.remove(&mac);
                shell.station_left(mac, &mut events);
            }
        }
        shell.store_events(&mut events);
    }
}

/// Key changes into hostapd: reload the file everywhere, then end the
/// stations of a key no longer in force (`stale`, taken at the change).
async fn key_changes(
    mut rx: mpsc::Receiver<Vec<MacAddr>>,
    set: HostapdSet,
    shutdown: CancellationToken,
) {
    loop {
        let stale = tokio::select! {
            _ = shutdown.cancelled() => return,
            c = rx.recv() => match c {
                Some(c) => c,
                None => return,
            },
        };
        for (i, result) in set.reload_all().await.into_iter().enumerate() {
            if let Err(e) = result {
                tracing::warn!(hostapd = i, "RELOAD_WPA_PSK: {e}");
            }
        }
        for mac in stale {
            for (i, result) in set.deauthenticate_all(mac).await.into_iter().enumerate() {
                if let Err(e) = result {
                    tracing::debug!(hostapd = i, mac = %mac.redacted(), "DEAUTHENTICATE: {e}");
                }
            }
        }
    }
}
