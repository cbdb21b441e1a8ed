//! The gate's clock: a task that ends sessions on time, feeds traffic
//! activity (read from the firewall) to the idle timers, and keeps
//! sessions' promised time when the wall clock steps.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::Gate;
use crate::time::{ClockWatch, Timestamp};

const TICK: Duration = Duration::from_secs(1);

/// How long one forwarded packet counts as activity (whole seconds, as
/// nftables keeps set timeouts): fine enough for the idle timeout, cheap at
/// scale. The daemon reads the set twice per window, so a late read (a
/// loaded box) still sees a packet before its entry expires.
pub fn activity_window(idle: Duration) -> Duration {
    let half = idle.as_secs().div_ceil(2);
    Duration::from_secs(half.clamp(2, 60))
}

/// Ends sessions on time and feeds traffic activity to the idle timers.
pub async fn session_timers(gate: Arc<Gate>, window: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Read the activity set every `polls_per` ticks: twice per window. A
    // tick counter, not elapsed time, so timer jitter cannot skip a read.
    let polls_per = ((window / 2).as_millis() / TICK.as_millis()).max(1);
    let mut ticks: u128 = 0;
    let mut clock = ClockWatch::new(Timestamp::now(), Instant::now());
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let g = gate.clone();
        let poll = ticks.is_multiple_of(polls_per);
        ticks += 1;
        let step = clock.check(Timestamp::now(), Instant::now());
        let result = tokio::task::spawn_blocking(move || {
            // Before the tick: sessions granted under the old clock must
            // not end early (or late) because the clock stepped.
            if let Some(st) = step {
                let moved = g.clock_stepped(st.from, st.to, st.delta_ms)?;
                tracing::warn!(
                    delta_ms = st.delta_ms,
                    sessions_moved = moved,
                    "the wall clock stepped; sessions granted before the step keep their time"
                );
            }
            if poll {
                g.refresh_activity()?;
            }
            g.tick()
        })
        .await;
        match result {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!("session timers: {e}"),
            Err(e) => tracing::error!("session timers task: {e}"),
        }
    }
}
