//! The hourly caps a restart must not reset: codes the whole box has HQ
//! text, codes to one block of numbers, and member-number sign-ins the
//! whole box takes.
//!
//! Why on disk: texts cost the retailer money, and a guest who can make
//! the box restart (or who simply waits for a reboot) must not get a
//! fresh hour. Why per block: SMS-pumping schemes walk a range of numbers
//! they are paid for, so numbers sharing their first
//! [`BLOCK_DIGITS`] digits after the calling code share one budget. Why
//! per box: MAC addresses cost nothing to change, so per-device limits
//! alone bound nothing.
//!
//! Pure: every method takes `now`. Counts are kept in minute buckets (at
//! most an hour's worth per window), blocks by a keyed hash of the block
//! (the box keeps no part of a phone number), so the whole state is a
//! few kilobytes: [`MAX_BLOCKS`] bounds it, and `Members` stores it as
//! one `Tree::Meta` value after every counted request.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// Digits after the calling code that make a block of numbers (a
/// Chinese mobile number's carrier prefix and area block, `138 1234`).
pub const BLOCK_DIGITS: usize = 7;
/// Blocks tracked at once. Each holds at least one code of the last hour,
/// and the config caps the box at 1,000 codes an hour, so this is never
/// reached by honest use; when it is, codes wait rather than the state
/// growing past what one stored value may hold.
pub const MAX_BLOCKS: usize = 1_000;
const MINUTE_MS: i64 = 60_000;
/// Buckets in the window: one hour.
const MINUTES: i64 = 60;

/// Counts of the last hour, in (minute since the epoch, count) buckets,
/// oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Window(Vec<(i64, u32)>);

fn minute(now: Timestamp) -> i64 {
    now.millis().div_euclid(MINUTE_MS)
}

impl Window {
    /// Drops buckets an hour old or more, and any from more than an hour
    /// ahead (left by a clock that was set back), so neither can hold the
    /// box up for long.
    fn trim(&mut self, now: Timestamp) {
        let m = minute(now);
        self.0
            .retain(|(b, _)| *b > m - MINUTES && *b <= m + MINUTES);
    }

    /// What the last hour holds.
    pub fn count(&self) -> u64 {
        self.0.iter().map(|(_, n)| u64::from(*n)).sum()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok` when one more fits under `cap`; else how long until the
    /// oldest bucket leaves the window.
    pub fn check(&mut self, cap: u32, now: Timestamp) -> Result<(), Duration> {
        self.trim(now);
        if self.count() < u64::from(cap) {
            return Ok(());
        }
        let oldest = self.0.iter().map(|(b, _)| *b).min().unwrap_or(minute(now));
        let free_at = (oldest + MINUTES).saturating_mul(MINUTE_MS);
        let wait = free_at.saturating_sub(now.millis()).max(1000);
        Err(Duration::from_millis(u64::try_from(wait).unwrap_or(1000)))
    }

    /// Counts one at `now`.
    pub fn add(&mut self, now: Timestamp) {
        self.trim(now);
        let m = minute(now);
        match self.0.iter_mut().find(|(b, _)| *b == m) {
            Some((_, n)) => *n = n.saturating_add(1),
            None => {
                self.0.push((m, 1));
                self.0.sort_unstable();
            }
        }
    }
}

/// The caps' counts, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Codes texted by the box.
    #[serde(default)]
    texts: Window,
    /// Member-number sign-in attempts on the box.
    #[serde(default)]
    numbers: Window,
    /// Codes per block of numbers, by the block's keyed hash.
    #[serde(default)]
    blocks: BTreeMap<String, Window>,
}

impl Limits {
    /// Forgets what is an hour old.
    pub fn gc(&mut self, now: Timestamp) {
        self.texts.trim(now);
        self.numbers.trim(now);
        self.blocks.retain(|_, w| {
            w.trim(now);
            !w.is_empty()
        });
    }

    /// May a code go to a number in `block` now, with at most `per_block`
    /// codes an hour to that block and `per_box` in all? `Err` is the
    /// time to wait.
    pub fn check_text(
        &mut self,
        block: &str,
        per_block: u32,
        per_box: u32,
        now: Timestamp,
    ) -> Result<(), Duration> {
        self.gc(now);
        let full = self.blocks.len() >= MAX_BLOCKS;
        match self.blocks.get_mut(block) {
            Some(w) => w.check(per_block, now)?,
            None if full => return Err(Duration::from_secs(60)),
            None => {}
        }
        self.texts.check(per_box, now)
    }

    /// Counts a code sent to a number in `block`.
    pub fn count_text(&mut self, block: &str, now: Timestamp) {
        self.texts.add(now);
        self.blocks.entry(block.to_string()).or_default().add(now);
    }

    /// May the box take one more member-number attempt, with at most
    /// `per_box` an hour?
    pub fn check_number(&mut self, per_box: u32, now: Timestamp) -> Result<(), Duration> {
        self.numbers.check(per_box, now)
    }

    pub fn count_number(&mut self, now: Timestamp) {
        self.numbers.add(now);
    }

    /// (codes, member-number attempts) in the last hour, as counted.
    pub fn counts(&self) -> (u64, u64) {
        (self.texts.count(), self.numbers.count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp(1_795_000_020_000);

    fn at(secs: u64) -> Timestamp {
        T0.plus(Duration::from_secs(secs))
    }

    #[test]
    fn the_box_texts_at_most_its_cap_an_hour() {
        let mut l = Limits::default();
        for i in 0..3u64 {
            assert_eq!(l.check_text(&format!("b{i}"), 10, 3, at(i)), Ok(()));
            l.count_text(&format!("b{i}"), at(i));
        }
        let wait = l.check_text("b9", 10, 3, at(30)).unwrap_err();
        assert!(
            wait <= Duration::from_secs(3600) && wait > Duration::from_secs(3500),
            "{wait:?}"
        );
        // An hour after the first, one more may go.
        assert_eq!(l.check_text("b9", 10, 3, at(3660)), Ok(()));
    }

    #[test]
    fn a_block_of_numbers_has_its_own_cap() {
        let mut l = Limits::default();
        for i in 0..2 {
            assert_eq!(l.check_text("blockA", 2, 100, at(i * 60)), Ok(()));
            l.count_text("blockA", at(i * 60));
        }
        assert!(l.check_text("blockA", 2, 100, at(200)).is_err());
        assert_eq!(l.check_text("blockB", 2, 100, at(200)), Ok(()));
        assert_eq!(l.counts(), (2, 0));
    }

    #[test]
    fn member_number_attempts_are_capped_per_box() {
        let mut l = Limits::default();
        for i in 0..5 {
            assert_eq!(l.check_number(5, at(i)), Ok(()));
            l.count_number(at(i));
        }
        assert!(l.check_number(5, at(10)).is_err());
        assert_eq!(l.check_number(5, at(3600 + 60)), Ok(()));
    }

    #[test]
    fn blocks_are_bounded_and_forgotten_after_an_hour() {
        let mut l = Limits::default();
        for i in 0..MAX_BLOCKS {
            l.count_text(&format!("b{i}"), T0);
        }
        assert_eq!(
            l.check_text("new", 10, u32::MAX, at(1)),
            Err(Duration::from_secs(60)),
            "full: waits rather than grows"
        );
        assert_eq!(l.check_text("b1", 10, u32::MAX, at(1)), Ok(()));
        assert_eq!(l.check_text("new", 10, u32::MAX, at(3600)), Ok(()));
        assert!(l.blocks.is_empty());
        // And all of it fits one stored value: every block (12-character
        // keys, as `Members` makes them) and a full hour of buckets.
        for i in 0..MAX_BLOCKS {
            l.count_text(&format!("{i:012}"), at(i as u64 * 3));
            l.count_number(at(i as u64 * 3));
        }
        let bytes = serde_json::to_vec(&l).unwrap();
        assert!(
            bytes.len() < crate::store::MAX_VALUE_BYTES,
            "{}",
            bytes.len()
        );
    }

    #[test]
    fn a_clock_set_back_holds_nothing_up_for_long() {
        let mut w = Window::default();
        w.add(at(7200));
        // Now is two hours earlier: the bucket is from "the future".
        assert!(w.check(1, T0).is_ok(), "dropped: more than an hour ahead");
        let mut w = Window::default();
        w.add(at(600));
        assert!(w.check(1, T0).is_err(), "ten minutes ahead still counts");
    }

    #[test]
    fn what_is_stored_reads_back() {
        let mut l = Limits::default();
        l.count_text("abc", T0);
        l.count_number(T0);
        let back: Limits = serde_json::from_slice(&serde_json::to_vec(&l).unwrap()).unwrap();
        assert_eq!(back, l);
        let empty: Limits = serde_json::from_str("{}").unwrap();
        assert_eq!(empty, Limits::default());
    }
}
