//! The event ids the receiver has seen lately, bounded.

use std::collections::{HashSet, VecDeque};

use sha2::{Digest, Sha256};

/// The ids seen lately: a FIFO and a set over the same keys, so memory is
/// bounded by `capacity` and lookups are O(1). Keys are the first 128 bits
/// of SHA-256(id): fixed size whatever the id's length, and a collision
/// among a million ids has a probability around 2^-89.
#[derive(Debug)]
pub struct Dedupe {
    capacity: usize,
    order: VecDeque<u128>,
    set: HashSet<u128>,
}

impl Dedupe {
    pub fn new(capacity: usize) -> Self {
        assert!(capacity > 0);
        Dedupe {
            capacity,
            order: VecDeque::new(),
            set: HashSet::new(),
        }
    }

    pub fn key(id: &str) -> u128 {
        let digest = Sha256::digest(id.as_bytes());
        let mut first = [0u8; 16];
        first.copy_from_slice(&digest[..16]);
        u128::from_be_bytes(first)
    }

    pub fn contains(&self, id: &str) -> bool {
        self.set.contains(&Self::key(id))
    }

    /// Records `id`; false if it was already remembered. The oldest id is
    /// forgotten when full.
    pub fn insert(&mut self, id: &str) -> bool {
        self.insert_key(Self::key(id))
    }

    /// Is this key (see [`Dedupe::key`]) remembered?
    pub(super) fn contains_key(&self, key: u128) -> bool {
        self.set.contains(&key)
    }

    pub(super) fn insert_key(&mut self, key: u128) -> bool {
        if !self.set.insert(key) {
            return false;
        }
        self.order.push_back(key);
        if self.order.len() > self.capacity
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        true
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}
