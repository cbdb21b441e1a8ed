//! The daemon's business clock: where the shells read "now" for sessions,
//! visits, footfall, members' bindings and everything the dashboard and
//! `ctl` show. `run` uses the wall clock; `storegate demo` injects a
//! simulated one (a store's day in minutes, its past in seconds). The pure
//! machines never read it: their shells pass `clock.now()` in.
//!
//! What stays on the wall clock, whatever the business clock says:
//! transport and security times that another party checks against its own
//! clock — request signatures to and from HQ, the sync document's age,
//! TLS certificates, CSRF tokens, the manager's dashboard logins.
//! Members' sign-in codes and their limits are the store's business: they
//! run on this clock, so a code verified and the binding it makes agree
//! (the demo gives codes the longest life a store may set). Machine
//! chores (saves, flushes, retries) run on real time: they are about
//! flash and networks, not about the store's day.
//!
//! A simulated clock runs at `speed` simulated seconds per real second
//! from where it was last set; [`SimClock::set`] moves it (forward or
//! back) and [`SimClock::pause`] stops it. [`Clock::monotonic`] is the
//! same time as an `Instant`, so a watch for wall-clock steps
//! (`time::ClockWatch`) sees the simulated clock as steady.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::time::Timestamp;

/// The business clock (see the module docs). Cheap to clone.
#[derive(Clone)]
pub struct Clock(Source);

#[derive(Clone)]
enum Source {
    Wall,
    Simulated(Arc<Mutex<Sim>>),
}

/// A simulated clock's state: at real `at_real` it read `at`, and it
/// advances `speed` times as fast as real time.
#[derive(Debug, Clone, Copy)]
struct Sim {
    at: Timestamp,
    at_real: Instant,
    speed: f64,
    /// The monotonic reading at `at_real` (see [`Clock::monotonic`]).
    mono: Instant,
}

impl Sim {
    fn elapsed(&self, real_now: Instant) -> Duration {
        real_now.duration_since(self.at_real).mul_f64(self.speed)
    }

    fn now(&self, real_now: Instant) -> Timestamp {
        self.at.plus(self.elapsed(real_now))
    }

    fn monotonic(&self, real_now: Instant) -> Instant {
        self.mono + self.elapsed(real_now)
    }

    /// Re-bases at `real_now` (before a change of speed or a jump).
    fn rebase(&mut self, real_now: Instant) {
        self.mono = self.monotonic(real_now);
        self.at = self.now(real_now);
        self.at_real = real_now;
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Source::Wall => f.write_str("Clock::Wall"),
            Source::Simulated(s) => write!(f, "Clock::Simulated({:?})", lock(s)),
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::wall()
    }
}

fn lock(s: &Mutex<Sim>) -> std::sync::MutexGuard<'_, Sim> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// The slowest and fastest a simulated clock may run (0 is paused).
pub const MAX_SPEED: f64 = 1_000_000.0;

impl Clock {
    /// The wall clock.
    pub fn wall() -> Clock {
        Clock(Source::Wall)
    }

    /// Whether this is a simulated clock.
    pub fn is_simulated(&self) -> bool {
        matches!(self.0, Source::Simulated(_))
    }

    /// Now, in milliseconds since the epoch.
    pub fn now(&self) -> Timestamp {
        match &self.0 {
            Source::Wall => Timestamp::now(),
            Source::Simulated(s) => lock(s).now(Instant::now()),
        }
    }

    /// The same time as a steady `Instant`: the real monotonic clock for
    /// the wall clock; for a simulated one, an `Instant` that advances
    /// with it (and jumps with it when it is set), so that comparing it
    /// with [`Clock::now`] never shows a step.
    pub fn monotonic(&self) -> Instant {
        match &self.0 {
            Source::Wall => Instant::now(),
            Source::Simulated(s) => lock(s).monotonic(Instant::now()),
        }
    }

    /// How long `d` of this clock's time lasts in real time (`None`: never,
    /// the clock is paused).
    pub fn real(&self, d: Duration) -> Option<Duration> {
        match &self.0 {
            Source::Wall => Some(d),
            Source::Simulated(s) => {
                let speed = lock(s).speed;
                (speed > 0.0).then(|| d.div_f64(speed))
            }
        }
    }

    /// How long `d` of this clock's time lasts in real time, within
    /// `[min, max]` (a paused clock: `max`). For timer loops that must
    /// neither spin nor sleep through a change of speed.
    pub fn real_clamped(&self, d: Duration, min: Duration, max: Duration) -> Duration {
        self.real(d).unwrap_or(max).clamp(min, max.max(min))
    }
}

/// The handle that moves a simulated clock (the demo keeps it; the
/// daemon only gets the [`Clock`]).
#[derive(Clone)]
pub struct SimClock(Arc<Mutex<Sim>>);

impl SimClock {
    /// A simulated clock reading `start` now and running at `speed`
    /// (clamped to `0..=MAX_SPEED`; not a number: paused).
    pub fn new(start: Timestamp, speed: f64) -> SimClock {
        let real = Instant::now();
        SimClock(Arc::new(Mutex::new(Sim {
            at: start,
            at_real: real,
            speed: clamp_speed(speed),
            mono: real,
        })))
    }

    /// The clock to hand to the daemon.
    pub fn clock(&self) -> Clock {
        Clock(Source::Simulated(self.0.clone()))
    }

    pub fn now(&self) -> Timestamp {
        lock(&self.0).now(Instant::now())
    }

    pub fn speed(&self) -> f64 {
        lock(&self.0).speed
    }

    /// Moves the clock to `t`; it goes on at its speed from there.
    pub fn set(&self, t: Timestamp) {
        let real = Instant::now();
        let mut s = lock(&self.0);
        s.rebase(real);
        // The monotonic view jumps by as much (a jump back is no jump:
        // `Instant`s never go back).
        let forward = s.at.until(t);
        s.mono += forward;
        s.at = t;
    }

    /// From now on, `speed` simulated seconds per real second.
    pub fn set_speed(&self, speed: f64) {
        let real = Instant::now();
        let mut s = lock(&self.0);
        s.rebase(real);
        s.speed = clamp_speed(speed);
    }

    /// Stops the clock where it is (speed 0).
    pub fn pause(&self) {
        self.set_speed(0.0);
    }
}

fn clamp_speed(speed: f64) -> f64 {
    if speed.is_nan() {
        0.0
    } else {
        speed.clamp(0.0, MAX_SPEED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_clock_is_the_system_clock() {
        let c = Clock::wall();
        let (a, b, after) = (Timestamp::now(), c.now(), Timestamp::now());
        assert!(a <= b && b <= after);
        assert!(!c.is_simulated());
        assert_eq!(c.real(Duration::from_secs(3)), Some(Duration::from_secs(3)));
    }

    #[test]
    fn simulated_clock_runs_at_its_speed() {
        let start = Timestamp(1_800_000_000_000);
        let sim = SimClock::new(start, 1000.0);
        let c = sim.clock();
        assert!(c.is_simulated());
        std::thread::sleep(Duration::from_millis(20));
        let t = c.now();
        // 20 ms real at 1000x: at least 20 s simulated.
        assert!(start.until(t) >= Duration::from_secs(20), "{t:?}");
        assert_eq!(
            c.real(Duration::from_secs(10)),
            Some(Duration::from_millis(10))
        );
    }

    #[test]
    fn paused_clock_stands_and_set_moves_it() {
        let start = Timestamp(1_800_000_000_000);
        let sim = SimClock::new(start, 0.0);
        let c = sim.clock();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(c.now(), start);
        assert_eq!(c.real(Duration::from_secs(1)), None);
        assert_eq!(
            c.real_clamped(
                Duration::from_secs(1),
                Duration::from_millis(20),
                Duration::from_secs(1)
            ),
            Duration::from_secs(1)
        );
        let m0 = c.monotonic();
        let later = start.plus(Duration::from_secs(86_400));
        sim.set(later);
        assert_eq!(c.now(), later);
        // The monotonic view moved by as much: no step to see.
        assert_eq!(
            c.monotonic().duration_since(m0),
            Duration::from_secs(86_400)
        );
        sim.set_speed(f64::NAN);
        assert_eq!(sim.speed(), 0.0);
        sim.set_speed(1e12);
        assert_eq!(sim.speed(), MAX_SPEED);
    }

    #[test]
    fn a_clock_watch_sees_no_step_in_a_simulated_clock() {
        let sim = SimClock::new(Timestamp(1_800_000_000_000), 300.0);
        let c = sim.clock();
        let mut watch = crate::time::ClockWatch::new(c.now(), c.monotonic());
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(watch.check(c.now(), c.monotonic()), None);
        sim.set(c.now().plus(Duration::from_secs(12 * 3600)));
        assert_eq!(watch.check(c.now(), c.monotonic()), None);
        // The wall clock against the simulated one is a step (9 s+).
        let mut wall = crate::time::ClockWatch::new(c.now(), Instant::now());
        std::thread::sleep(Duration::from_millis(40));
        assert!(wall.check(c.now(), Instant::now()).is_some());
    }
}
