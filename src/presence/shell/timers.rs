//! The presence shell's timer task: ticks the machine at its deadlines
//! (read on the shell's clock), sends footfall summaries, and saves,
//! forgets and ticks members now and then (on real time: chores are about
//! flash, not about the store's day).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::PresenceShell;

/// How often changed device records are written.
const PERSIST_DEVICES_EVERY: Duration = Duration::from_secs(5);
/// How often visits and footfall are written (and at shutdown); events are
/// in the outbox at once regardless. Bounds what a crash loses; spares flash.
const PERSIST_CORE_EVERY: Duration = Duration::from_secs(30);
/// Longest sleep between ticks, whatever the machine's next deadline.
const MAX_SLEEP: Duration = Duration::from_secs(1);
/// How often devices of no member are checked for the privacy period.
const FORGET_UNBOUND_EVERY: Duration = Duration::from_secs(3600);
/// How often `Members::tick` runs (binding expiry, `last_seen` writes;
/// blocked stations' Wi-Fi keys).
const MEMBERS_TICK_EVERY: Duration = Duration::from_secs(60);

/// Ticks the machine at its deadlines and persists now and then.
pub async fn timer_loop(
    shell: Arc<PresenceShell>,
    summary_interval: Duration,
    shutdown: CancellationToken,
) {
    let clock = shell.clock().clone();
    // Summaries cover `summary_interval` of the store's clock; saves and
    // chores run on real time (they are about flash, not the day).
    let mut last_summary = clock.now();
    let mut last_devices = tokio::time::Instant::now();
    let mut last_core = tokio::time::Instant::now();
    let mut last_forget: Option<tokio::time::Instant> = None;
    let mut last_members = tokio::time::Instant::now();
    let mut events = Vec::new();
    {
        let s = shell.clone();
        let _ = tokio::task::spawn_blocking(move || s.refresh_hq_staff()).await;
    }
    loop {
        let next = shell.tick(&mut events);
        if last_summary.until(clock.now()) >= summary_interval {
            last_summary = clock.now();
            events.push(shell.footfall_summary(summary_interval));
        }
        shell.store_events(&mut events);
        let (devices_due, core_due) = (
            last_devices.elapsed() >= PERSIST_DEVICES_EVERY,
            last_core.elapsed() >= PERSIST_CORE_EVERY,
        );
        let forget_due = last_forget.is_none_or(|t| t.elapsed() >= FORGET_UNBOUND_EVERY);
        let members_due = last_members.elapsed() >= MEMBERS_TICK_EVERY;
        if forget_due || members_due {
            let s = shell.clone();
            let _ = tokio::task::spawn_blocking(move || {
                if members_due {
                    s.members_tick();
                    s.revoke_blocked_keys();
                    s.refresh_hq_staff();
                }
                if forget_due {
                    s.forget_unbound();
                }
            })
            .await;
            let now = tokio::time::Instant::now();
            if forget_due {
                last_forget = Some(now);
            }
            if members_due {
                last_members = now;
            }
        }
        if devices_due || core_due {
            let s = shell.clone();
            let _ = tokio::task::spawn_blocking(move || {
                s.persist_devices();
                if core_due {
                    s.persist_core();
                    // Durable at most this late (the writes are in one
                    // flush; nothing changed, nothing written).
                    if let Err(e) = s.store.flush() {
                        tracing::warn!("could not flush presence state: {e}");
                    }
                    // Saving serialises everything at once; return what
                    // it freed (every 30 s, a few ms at most).
                    crate::memory::return_freed_memory();
                }
            })
            .await;
            last_devices = tokio::time::Instant::now();
            if core_due {
                last_core = last_devices;
            }
        }
        let now = clock.now();
        let summary_in = summary_interval.saturating_sub(last_summary.until(now));
        let until_next = next.map(|t| now.until(t)).unwrap_or(MAX_SLEEP);
        let sleep = clock.real_clamped(
            until_next.min(summary_in),
            Duration::from_millis(20),
            MAX_SLEEP,
        );
        tokio::select! {
            _ = shutdown.cancelled() => {
                let s = shell.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    s.members_persist();
                    s.persist_all();
                })
                .await;
                return;
            }
            _ = tokio::time::sleep(sleep) => {}
        }
    }
}
