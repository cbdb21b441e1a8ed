//! A day's plan: how many shoppers come in each opening hour (along
//! `ARRIVAL_CURVE`), how long each stays (log-normal dwell), and who they
//! are: a member, a device back from an earlier day, or a new phone, and
//! whether they sign in on the portal.

use rand::Rng;
use rand::seq::SliceRandom;

use super::{ARRIVAL_CURVE, DAY_SECS, MAX_DWELL, MIN_DWELL, Sim};

/// The log-normal dwell: median and sigma of its logarithm.
const MEDIAN_DWELL: f64 = 15.0 * 60.0;
const DWELL_SIGMA: f64 = 0.6;

/// One visit of a day's plan.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedVisit {
    /// Index into [`Sim::devices`].
    pub device: usize,
    /// Simulated seconds after the day's opening.
    pub arrive: u64,
    /// Simulated seconds.
    pub dwell: u64,
    /// How the shopper signs in on the portal, if they do.
    pub sign_in: Option<SignIn>,
    /// Gives the lease back on leaving (else goes silent).
    pub release: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignIn {
    ClickThrough,
    /// Member-number sign-in; `remember`: the "remember this device"
    /// consent.
    MemberNumber {
        number: String,
        remember: bool,
    },
}

impl Sim {
    /// A log-normal dwell in `MIN_DWELL..=MAX_DWELL` (simulated seconds).
    fn dwell(&mut self) -> u64 {
        // Box–Muller: one standard normal from two uniforms.
        let u1: f64 = self.rng.gen_range(f64::EPSILON..1.0);
        let u2: f64 = self.rng.r#gen();
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        let secs = MEDIAN_DWELL * (DWELL_SIGMA * z).exp();
        (secs as u64).clamp(MIN_DWELL, MAX_DWELL)
    }

    /// The current day's visits, in order of arrival.
    pub(super) fn plan_day(&mut self) -> Vec<PlannedVisit> {
        let total: u32 = ARRIVAL_CURVE.iter().sum();
        let mut arrivals = Vec::new();
        for (hour, weight) in ARRIVAL_CURVE.iter().enumerate() {
            let expected =
                f64::from(self.cfg.visitors_per_day) * f64::from(*weight) / f64::from(total);
            let n = (expected * self.rng.gen_range(0.85..1.15)).round() as u64;
            let start = hour as u64 * 3600;
            // The last hour: no one comes in the closing minutes.
            let end = (start + 3600).min(DAY_SECS - MIN_DWELL);
            for _ in 0..n {
                arrivals.push(self.rng.gen_range(start..end));
            }
        }
        arrivals.sort_unstable();
        let mut members: Vec<usize> = (0..self.members.len()).collect();
        members.shuffle(&mut self.rng);
        let mut returning = self.seen_before.clone();
        returning.shuffle(&mut self.rng);
        let mut plan = Vec::with_capacity(arrivals.len());
        for arrive in arrivals {
            let dwell = self.dwell().min(DAY_SECS - arrive);
            let release = self.rng.gen_bool(self.cfg.release_share.clamp(0.0, 1.0));
            let roll: f64 = self.rng.r#gen();
            let (device, sign_in) = if roll < self.cfg.member_share
                && let Some(m) = members.pop()
            {
                let m = &self.members[m];
                let sign_in = (!m.remembered).then(|| SignIn::MemberNumber {
                    number: m.number.clone(),
                    remember: false,
                });
                (m.device, sign_in)
            } else {
                let back = self.rng.gen_bool(self.cfg.returning_share.clamp(0.0, 1.0));
                let device = match if back { returning.pop() } else { None } {
                    Some(d) => d,
                    None => {
                        let os = self.random_os();
                        self.new_device(os, None)
                    }
                };
                let click = self
                    .rng
                    .gen_bool(self.cfg.click_through_share.clamp(0.0, 1.0));
                (device, click.then_some(SignIn::ClickThrough))
            };
            plan.push(PlannedVisit {
                device,
                arrive,
                dwell,
                sign_in,
                release,
            });
        }
        plan
    }
}
