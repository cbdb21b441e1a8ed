//! The task the daemon runs once it is ready: it enrols the remembered
//! members' phones, prints the banner, then steps the simulator and feeds
//! its sightings and sign-ins to the daemon through the same calls the
//! capture and the portal make, until shutdown.

use std::io::Write;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::BROWSER_MAC;
use super::banner::Banner;
use crate::access::AuthMethod;
use crate::daemon::Handles;
use crate::mac::MacAddr;
use crate::members::Consent;
use crate::sim::{Action, SignIn, Sim};
use crate::time::Timestamp;

/// How often the simulator is stepped.
const STEP: Duration = Duration::from_millis(200);

/// The on-ready task: members first, then the banner, then the store.
pub(super) async fn simulate(h: Handles, mut sim: Sim, banner: Banner) {
    enroll_members(&h, &sim).await;
    banner.print(&h.portal_url).await;
    let start = Instant::now();
    let mut tick = tokio::time::interval(STEP);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut events = Vec::new();
    let mut last_hour = None;
    loop {
        tokio::select! {
            _ = h.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let elapsed = start.elapsed();
        let mut sign_ins = Vec::new();
        for action in sim.step(elapsed) {
            match action {
                Action::Sight(s) => h.presence.observe(&s, &mut events),
                Action::SignIn { mac, ip, how } => sign_ins.push((mac, ip, how)),
            }
        }
        h.presence.store_events(&mut events);
        if !sign_ins.is_empty() {
            let h2 = h.clone();
            let _ = tokio::task::spawn_blocking(move || {
                for (mac, ip, how) in sign_ins {
                    sign_in(&h2, mac, ip, how);
                }
            })
            .await;
        }
        let (day, clock) = sim.clock(elapsed);
        let hour = (day, clock[..2].to_string());
        if last_hour.as_ref() != Some(&hour) {
            last_hour = Some(hour);
            let staff = sim.present().filter(|d| d.staff).count();
            let shoppers = sim
                .present()
                .filter(|d| !d.staff && d.mac != BROWSER_MAC)
                .count();
            let mut out = std::io::stdout().lock();
            let _ = writeln!(
                out,
                "[day {} {clock}] {shoppers} shoppers and {staff} staff in the store",
                day + 1,
            );
            let _ = out.flush();
        }
    }
}

/// Binds the remembered members' phones through the real sign-in path
/// (member number, then "remember this device"), so they are signed in
/// by their DHCP packet when they come.
async fn enroll_members(h: &Handles, sim: &Sim) {
    let members: Vec<(String, MacAddr, bool)> = sim
        .members()
        .iter()
        .enumerate()
        .filter(|(_, m)| m.remembered)
        .map(|(i, m)| (m.number.clone(), sim.devices()[m.device].mac, i % 2 == 0))
        .collect();
    let m = h.members.clone();
    let result = tokio::task::spawn_blocking(move || {
        let now = Timestamp::now();
        let mut failed = 0;
        for (number, mac, marketing) in &members {
            let linked = m.verify_member_number(number, *mac, now).and_then(|id| {
                m.link(
                    &id,
                    *mac,
                    Consent {
                        remember_device: true,
                        marketing: *marketing,
                    },
                    None,
                    now,
                )
            });
            if let Err(e) = linked {
                failed += 1;
                tracing::warn!(mac = %mac.redacted(), "demo: could not enrol a member: {e}");
            }
        }
        (members.len(), failed)
    })
    .await;
    if let Ok((n, failed)) = result {
        tracing::info!(members = n, failed, "demo: members' phones remembered");
    }
}

/// A shopper signs in on the portal: the same calls as the portal's
/// click-through and member-number routes.
fn sign_in(h: &Handles, mac: MacAddr, ip: IpAddr, how: SignIn) {
    let result = match how {
        SignIn::ClickThrough => h
            .gate
            .authorize(mac, Some(ip), AuthMethod::ClickThrough, None)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        SignIn::MemberNumber { number, remember } => {
            let now = Timestamp::now();
            h.members
                .verify_member_number(&number, mac, now)
                .and_then(|id| {
                    h.members
                        .link(
                            &id,
                            mac,
                            Consent {
                                remember_device: remember,
                                marketing: false,
                            },
                            None,
                            now,
                        )
                        .map(|_| id)
                })
                .map_err(|e| e.to_string())
                .and_then(|id| {
                    h.gate
                        .authorize(mac, Some(ip), AuthMethod::MemberNumber, Some(id))
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                })
        }
    };
    if let Err(e) = result {
        tracing::debug!(%mac, "demo: a simulated sign-in failed: {e}");
    }
}
