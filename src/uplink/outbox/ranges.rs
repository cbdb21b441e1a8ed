//! A set of sequence numbers kept as disjoint `[first, last]` ranges, so a
//! run of consecutive events costs one entry however long it is: the
//! outbox's only per-event state in memory is what cannot be folded into
//! a run.

use std::collections::BTreeMap;

#[derive(Debug, Default, Clone)]
pub(super) struct RangeSet {
    /// First number of each range → its last (inclusive); ranges never
    /// touch or overlap.
    ranges: BTreeMap<u64, u64>,
    /// How many numbers the set holds.
    len: u64,
}

impl RangeSet {
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The lowest and the highest number.
    pub fn bounds(&self) -> Option<(u64, u64)> {
        let first = self.ranges.first_key_value()?.0;
        let last = self.ranges.last_key_value()?.1;
        Some((*first, *last))
    }

    pub fn contains(&self, n: u64) -> bool {
        if self.bounds().is_none_or(|(f, l)| n < f || n > l) {
            return false;
        }
        self.ranges
            .range(..=n)
            .next_back()
            .is_some_and(|(_, last)| *last >= n)
    }

    pub fn insert(&mut self, n: u64) {
        self.insert_range(n, n);
    }

    /// Adds `first..=last` (numbers already present are not counted twice).
    pub fn insert_range(&mut self, first: u64, last: u64) {
        if first > last {
            return;
        }
        let (mut lo, mut hi) = (first, last);
        // Absorb every range that overlaps or touches [lo, hi].
        let touching: Vec<(u64, u64)> = self
            .ranges
            .range(..=hi.saturating_add(1))
            .rev()
            .take_while(|(_, l)| **l >= lo.saturating_sub(1))
            .map(|(f, l)| (*f, *l))
            .collect();
        for (f, l) in touching {
            self.ranges.remove(&f);
            self.len -= l - f + 1;
            lo = lo.min(f);
            hi = hi.max(l);
        }
        self.ranges.insert(lo, hi);
        self.len += hi - lo + 1;
    }

    /// Removes `n`; false if it was not there.
    pub fn remove(&mut self, n: u64) -> bool {
        self.remove_range(n, n) == 1
    }

    /// Removes `first..=last`; returns how many numbers were there.
    pub fn remove_range(&mut self, first: u64, last: u64) -> u64 {
        if first > last {
            return 0;
        }
        let hit: Vec<(u64, u64)> = self
            .ranges
            .range(..=last)
            .rev()
            .take_while(|(_, l)| **l >= first)
            .map(|(f, l)| (*f, *l))
            .collect();
        let mut removed = 0;
        for (f, l) in hit {
            self.ranges.remove(&f);
            if f < first {
                self.ranges.insert(f, first - 1);
            }
            if l > last {
                self.ranges.insert(last + 1, l);
            }
            removed += l.min(last) - f.max(first) + 1;
        }
        self.len -= removed;
        removed
    }

    /// The ranges, lowest first.
    pub fn ranges(&self) -> impl DoubleEndedIterator<Item = (u64, u64)> + '_ {
        self.ranges.iter().map(|(f, l)| (*f, *l))
    }

    /// The lowest `n` numbers, in order.
    pub fn first_n(&self, n: usize) -> Vec<u64> {
        let mut out = Vec::new();
        for (f, l) in self.ranges() {
            for s in f..=l {
                if out.len() >= n {
                    return out;
                }
                out.push(s);
            }
        }
        out
    }

    /// The highest `n` numbers, in order.
    pub fn last_n(&self, n: usize) -> Vec<u64> {
        let mut out = Vec::new();
        'outer: for (f, l) in self.ranges().rev() {
            for s in (f..=l).rev() {
                if out.len() >= n {
                    break 'outer;
                }
                out.push(s);
            }
        }
        out.reverse();
        out
    }
}

/// Sorted numbers folded into `[first, last]` runs.
pub(super) fn runs(sorted: &[u64]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &s in sorted {
        match out.last_mut() {
            Some((_, l)) if *l + 1 == s || *l == s => *l = s,
            _ => out.push((s, s)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_set_matches_a_plain_set_under_random_edits() {
        let mut set = RangeSet::default();
        let mut plain = std::collections::BTreeSet::new();
        let mut x: u64 = 11;
        for i in 0..3000 {
            x = (x * 1103 + 12345) % 9973;
            let a = x % 300;
            let b = a + (x / 300) % 7;
            if i % 3 == 0 {
                let n = set.remove_range(a, b);
                let before = plain.len();
                plain.retain(|s| *s < a || *s > b);
                assert_eq!(n as usize, before - plain.len());
            } else {
                set.insert_range(a, b);
                plain.extend(a..=b);
            }
            assert_eq!(set.len() as usize, plain.len());
        }
        let got: Vec<u64> = set.ranges().flat_map(|(f, l)| f..=l).collect();
        assert_eq!(got, plain.iter().copied().collect::<Vec<_>>());
        for w in set.ranges().collect::<Vec<_>>().windows(2) {
            assert!(w[0].1 + 1 < w[1].0, "touching ranges left unmerged");
        }
        for s in 0..310 {
            assert_eq!(set.contains(s), plain.contains(&s));
        }
        assert_eq!(
            set.first_n(5),
            plain.iter().take(5).copied().collect::<Vec<_>>()
        );
        let last: Vec<u64> = plain.iter().rev().take(5).rev().copied().collect();
        assert_eq!(set.last_n(5), last);
        assert_eq!(runs(&[1, 2, 3, 5, 7, 8]), [(1, 3), (5, 5), (7, 8)]);
    }
}
