//! The task the daemon runs once it is ready: it enrols the remembered
//! members' phones, plays the store's past days (history), prints the
//! banner, then runs today live on the simulated clock, feeding the
//! simulator's sightings and sign-ins to the daemon through the same calls
//! the capture and the portal make, until shutdown.
//!
//! History is the same simulator through the same calls, with the clock
//! paused and moved by hand: each step sets the clock to the step's time,
//! feeds what happened and lets presence end the visits that are over.
//! Nothing is written to the state directly.

use std::io::Write;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use jiff::civil::Date;
use jiff::tz::TimeZone;

use super::BROWSER_MAC;
use super::banner::Banner;
use crate::access::AuthMethod;
use crate::clock::SimClock;
use crate::daemon::Handles;
use crate::mac::MacAddr;
use crate::members::Consent;
use crate::presence::local;
use crate::sim::{Action, DAY_SECS, OPEN_HOUR, SignIn, Sim};
use crate::time::Timestamp;

/// Simulated time between two steps of history.
const HISTORY_STEP: u64 = 60;
/// Simulated time per live step (real: this over the speed, within
/// `MIN_REAL_STEP..=MAX_REAL_STEP`).
const LIVE_STEP: Duration = Duration::from_secs(30);
const MIN_REAL_STEP: Duration = Duration::from_millis(20);
const MAX_REAL_STEP: Duration = Duration::from_millis(200);
/// After closing, long enough for presence to see the last shoppers gone
/// (the demo's `presence.leave_after` is 6 simulated minutes).
const AFTER_CLOSING: Duration = Duration::from_secs(15 * 60);
/// The file in the state directory naming the last day played live, so a
/// demo run again on the same `--state` opens on the next day.
pub(super) const LAST_DAY_FILE: &str = "demo-last-day";

/// The calendar of the simulated store: day `n` of the simulator is
/// `first_day + n`, open `OPEN_HOUR`–`CLOSE_HOUR` in the store's zone;
/// the first `history_days` days are history, the next one is today.
#[derive(Debug, Clone)]
pub(super) struct Calendar {
    pub(super) tz: TimeZone,
    pub(super) first_day: Date,
    pub(super) history_days: u64,
}

impl Calendar {
    /// When simulator day `day` opens.
    pub(super) fn opening(&self, day: u64) -> Timestamp {
        let date = self
            .first_day
            .checked_add(jiff::Span::new().days(i64::try_from(day).unwrap_or(0)))
            .unwrap_or(self.first_day);
        let start = local::start_of_day(date, &self.tz).unwrap_or(Timestamp(0));
        start.plus(Duration::from_secs(u64::from(OPEN_HOUR) * 3600))
    }

    pub(super) fn closing(&self, day: u64) -> Timestamp {
        self.opening(day).plus(Duration::from_secs(DAY_SECS))
    }

    /// The simulator's time (open hours since day 0 opened) at `now` on
    /// day `day`, within that day.
    fn sim_time(&self, day: u64, now: Timestamp) -> Duration {
        let into = self
            .opening(day)
            .until(now)
            .min(Duration::from_secs(DAY_SECS));
        Duration::from_secs(day * DAY_SECS) + into
    }

    /// Simulator day `day`'s local date.
    pub(super) fn date(&self, day: u64) -> Date {
        local::local_date(self.opening(day), &self.tz)
    }
}

/// The on-ready task: members, history, the banner, then today live.
pub(super) async fn simulate(
    h: Handles,
    mut sim: Sim,
    banner: Banner,
    clock: SimClock,
    calendar: Calendar,
) {
    enroll_members(&h, &sim, &clock).await;
    if calendar.history_days > 0 {
        let started = Instant::now();
        let (h2, c2, cal2) = (h.clone(), clock.clone(), calendar.clone());
        // A thread of its own: the runtime's one blocking thread stays
        // free for the daemon's saves and the HQ receiver's writes.
        let (tx, rx) = tokio::sync::oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("demo-history".into())
            .spawn(move || {
                let visits = play_history(&h2, &mut sim, &c2, &cal2);
                let _ = tx.send((sim, visits));
            });
        let played = match spawned {
            Ok(_) => rx.await.map_err(|_| ()),
            Err(_) => Err(()),
        };
        let Ok((s, visits)) = played else {
            tracing::error!("demo: history failed");
            h.shutdown.cancel();
            return;
        };
        sim = s;
        println!(
            "storegate demo: {} days of history played in {:.1} s ({visits} visits)",
            calendar.history_days,
            started.elapsed().as_secs_f64()
        );
    }
    let mut day = calendar.history_days;
    clock.set(calendar.opening(day));
    clock.set_speed(banner.speed);
    remember_day(&banner.state, &calendar, day);
    banner.print(&h.portal_url).await;
    let mut events = Vec::new();
    let mut last_hour = None;
    loop {
        let pause = h
            .app
            .clock
            .real_clamped(LIVE_STEP, MIN_REAL_STEP, MAX_REAL_STEP);
        tokio::select! {
            _ = h.shutdown.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
        let now = clock.now();
        let t = calendar.sim_time(day, now);
        let sign_ins = feed(&h, sim.step(t), &mut events);
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
        if now >= calendar.closing(day) {
            // Night falls at once: the next day opens.
            day += 1;
            clock.set(calendar.opening(day));
            remember_day(&banner.state, &calendar, day);
            continue;
        }
        let hour = local::local_hour(now, &calendar.tz);
        if last_hour != Some((day, hour)) {
            last_hour = Some((day, hour));
            let staff = sim.present().filter(|d| d.staff).count();
            let shoppers = sim
                .present()
                .filter(|d| !d.staff && d.mac != BROWSER_MAC)
                .count();
            let mut out = std::io::stdout().lock();
            let _ = writeln!(
                out,
                "[{} {hour:02}:00] {shoppers} shoppers and {staff} staff in the store",
                calendar.date(day),
            );
            let _ = out.flush();
        }
    }
}

/// Plays the history days through the daemon with the clock moved by
/// hand; returns how many visits were planned.
fn play_history(h: &Handles, sim: &mut Sim, clock: &SimClock, calendar: &Calendar) -> usize {
    let mut events = Vec::new();
    let mut visits = 0;
    for day in 0..calendar.history_days {
        visits += sim.plan().len();
        let mut t = day * DAY_SECS;
        loop {
            let into = t - day * DAY_SECS;
            clock.set(calendar.opening(day).plus(Duration::from_secs(into)));
            for (mac, ip, how) in feed(h, sim.step(Duration::from_secs(t)), &mut events) {
                sign_in(h, mac, ip, how);
            }
            h.presence.tick(&mut events);
            h.presence.store_events(&mut events);
            if into >= DAY_SECS {
                break;
            }
            t = (t + HISTORY_STEP).min((day + 1) * DAY_SECS);
        }
        // After closing: the last visits end, sessions run out.
        clock.set(calendar.closing(day).plus(AFTER_CLOSING));
        h.presence.tick(&mut events);
        h.presence.store_events(&mut events);
        if let Err(e) = h.gate.tick() {
            tracing::warn!("demo: ending sessions after closing: {e}");
        }
    }
    visits
}

type SignInAt = (MacAddr, IpAddr, SignIn);

/// Feeds sightings to presence; returns the portal sign-ins to do.
fn feed(
    h: &Handles,
    actions: Vec<Action>,
    events: &mut Vec<crate::uplink::event::Event>,
) -> Vec<SignInAt> {
    let mut sign_ins = Vec::new();
    for action in actions {
        match action {
            Action::Sight(s) => h.presence.observe(&s, events),
            Action::SignIn { mac, ip, how } => sign_ins.push((mac, ip, how)),
        }
    }
    sign_ins
}

/// Writes which simulator day is being played live (see
/// [`LAST_DAY_FILE`]).
fn remember_day(state: &std::path::Path, calendar: &Calendar, day: u64) {
    let path = state.join(LAST_DAY_FILE);
    if let Err(e) = std::fs::write(&path, format!("{}\n", calendar.date(day))) {
        tracing::warn!("demo: cannot write {}: {e}", path.display());
    }
}

/// Binds the remembered members' phones through the real sign-in path
/// (member number, then "remember this device"), before the first day
/// opens, so they are signed in by their DHCP packet when they come.
/// Every other one agrees to marketing (HQ's campaigns reach them).
async fn enroll_members(h: &Handles, sim: &Sim, clock: &SimClock) {
    let members: Vec<(String, MacAddr, bool)> = sim
        .members()
        .iter()
        .enumerate()
        .filter(|(_, m)| m.remembered)
        .map(|(i, m)| (m.number.clone(), sim.devices()[m.device].mac, i % 2 == 0))
        .collect();
    let (m, clock) = (h.members.clone(), clock.clone());
    let result = tokio::task::spawn_blocking(move || {
        let mut failed = 0;
        for (number, mac, marketing) in &members {
            let linked = m
                .verify_member_number(number, *mac, clock.now())
                .and_then(|id| {
                    m.link(
                        &id,
                        *mac,
                        Consent {
                            remember_device: true,
                            marketing: *marketing,
                        },
                        None,
                        clock.now(),
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
        SignIn::MemberNumber { number, remember } => h
            .members
            .verify_member_number(&number, mac, h.app.clock.now())
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
                        h.app.clock.now(),
                    )
                    .map(|_| id)
            })
            .map_err(|e| e.to_string())
            .and_then(|id| {
                h.gate
                    .authorize(mac, Some(ip), AuthMethod::MemberNumber, Some(id))
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }),
    };
    if let Err(e) = result {
        tracing::debug!(%mac, "demo: a simulated sign-in failed: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calendar() -> Calendar {
        Calendar {
            tz: crate::time::timezone_by_name("Asia/Shanghai").unwrap(),
            first_day: jiff::civil::date(2031, 2, 7),
            history_days: 35,
        }
    }

    #[test]
    fn days_open_at_ten_local_and_close_at_ten_at_night() {
        let c = calendar();
        // 10:00 in Shanghai is 02:00 UTC.
        assert_eq!(c.opening(0).rfc3339(), "2031-02-07T02:00:00Z");
        assert_eq!(c.closing(0).rfc3339(), "2031-02-07T14:00:00Z");
        assert_eq!(c.opening(35).rfc3339(), "2031-03-14T02:00:00Z");
        assert_eq!(c.date(35), jiff::civil::date(2031, 3, 14));
    }

    #[test]
    fn the_simulators_time_skips_nights_and_stays_in_the_day() {
        let c = calendar();
        let day = Duration::from_secs(DAY_SECS);
        // An hour into day 2: two whole days of open hours plus an hour.
        let t = c.opening(2).plus(Duration::from_secs(3600));
        assert_eq!(c.sim_time(2, t), day * 2 + Duration::from_secs(3600));
        // Before opening: the day's start; after closing: its end.
        assert_eq!(c.sim_time(2, c.opening(1)), day * 2);
        assert_eq!(c.sim_time(2, c.opening(3)), day * 3);
    }
}
