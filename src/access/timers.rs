//! The gate's clock: a task that ends sessions on time, feeds traffic
//! activity (read from the firewall) to the idle timers, and keeps
//! sessions' promised time when the wall clock steps.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::Gate;
use crate::time::ClockWatch;

const TICK: Duration = Duration::from_secs(1);
/// The shortest real tick (a fast simulated clock).
const MIN_TICK: Duration = Duration::from_millis(20);

/// How long one forwarded packet counts as activity (whole seconds, as
/// nftables keeps set timeouts): fine enough for the idle timeout, cheap at
/// scale. The daemon reads the set twice per window, so a late read (a
/// loaded box) still sees a packet before its entry expires.
pub fn activity_window(idle: Duration) -> Duration {
    let half = idle.as_secs().div_ceil(2);
    Duration::from_secs(half.clamp(2, 60))
}

/// Ends sessions on time and feeds traffic activity to the idle timers.
/// Ticks every second of the gate's clock (at most every `MIN_TICK` of
/// real time when a simulated clock runs fast); reads the firewall's
/// activity twice per `window` of real time.
pub async fn session_timers(gate: Arc<Gate>, window: Duration, shutdown: CancellationToken) {
    let clock = gate.clock().clone();
    // A read at most half a tick early: a late tick (a loaded box) still
    // reads twice per window, before an entry expires.
    let poll_every = (window / 2).saturating_sub(TICK / 2);
    let mut last_poll: Option<Instant> = None;
    let mut watch = ClockWatch::new(clock.now(), clock.monotonic());
    loop {
        let sleep = clock.real_clamped(TICK, MIN_TICK, TICK);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(sleep) => {}
        }
        let g = gate.clone();
        let poll = last_poll.is_none_or(|t| t.elapsed() >= poll_every);
        if poll {
            last_poll = Some(Instant::now());
        }
        let step = watch.check(clock.now(), clock.monotonic());
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
