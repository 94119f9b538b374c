//! The cleaner's key → latest offset map, bounded in bytes.
//!
//! Like Kafka's `SkimpyOffsetMap`, it stores a 128-bit digest of each key, not the key: entries are
//! small and fixed-size ([`ENTRY_BYTES`]), and a lookup never chases a pointer into the log. The digest
//! is two outputs of SipHash-1-3 under a random key drawn when the map is made (std's `RandomState`):
//! of the key's encoding, and of that encoding followed by one more byte (a PRF on two distinct
//! inputs: independent 64-bit values, for the price of one pass over the key). A producer cannot
//! craft colliding keys without the random key; two distinct keys share a digest with probability
//! about `n² / 2^129` for `n` keys (below 10^-24 for 10^7 keys), which would drop the older one's record.
//! When the next new key would pass the budget the map is full: the cleaner cleans what it has mapped
//! and maps the rest of the dirty section in a later pass (Kafka's `log.cleaner.dedupe.buffer.size`).

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

/// What one entry may cost: a 25-byte slot (16-byte digest, 8-byte offset, one control byte) in a
/// table of power-of-two slots at most 7/8 full, so up to 2 × 8/7 slots per entry just after the
/// table grows (57 bytes), rounded up. The map never holds more than `budget / ENTRY_BYTES` keys.
pub(crate) const ENTRY_BYTES: usize = 64;

/// The digest is already a uniform hash: the table uses its first half as is.
#[derive(Default)]
struct Passthrough(u64);

impl Hasher for Passthrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u128` is used; stay correct for anything else.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ b as u64;
        }
    }
    fn write_u128(&mut self, v: u128) {
        self.0 = v as u64;
    }
}

pub(crate) struct OffsetMap {
    map: HashMap<u128, u64, BuildHasherDefault<Passthrough>>,
    seed: std::collections::hash_map::RandomState,
    budget_bytes: usize,
}

impl std::fmt::Debug for OffsetMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OffsetMap").field("keys", &self.map.len()).field("budget_bytes", &self.budget_bytes).finish()
    }
}

impl OffsetMap {
    pub fn new(budget_bytes: usize) -> OffsetMap {
        OffsetMap {
            map: HashMap::default(),
            seed: Default::default(),
            budget_bytes,
        }
    }

    fn digest(&self, key: &[u8]) -> u128 {
        let mut h = self.seed.build_hasher();
        h.write(key);
        let a = h.finish();
        h.write_u8(0xA5);
        let b = h.finish();
        ((b as u128) << 64) | a as u128
    }

    /// Records that `key`'s latest offset is `offset` (offsets arrive in increasing order).
    /// `false` when `key` is new and would pass the budget: nothing was recorded.
    pub fn insert(&mut self, key: &[u8], offset: u64) -> bool {
        let d = self.digest(key);
        if let Some(o) = self.map.get_mut(&d) {
            debug_assert!(*o < offset, "offsets arrive in order");
            *o = offset;
            return true;
        }
        if (self.map.len() + 1) * ENTRY_BYTES > self.budget_bytes {
            return false;
        }
        if self.map.len() == self.map.capacity() {
            // Grow within the budget only (the table doubles by default).
            let room = self.budget_bytes / ENTRY_BYTES - self.map.len();
            self.map.reserve(self.map.len().max(16).min(room).max(1));
        }
        self.map.insert(d, offset);
        true
    }

    /// The latest offset recorded for `key`.
    pub fn get(&self, key: &[u8]) -> Option<u64> {
        if self.map.is_empty() {
            return None;
        }
        self.map.get(&self.digest(key)).copied()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_and_respects_the_budget() {
        let mut m = OffsetMap::new(2 * ENTRY_BYTES);
        assert!(m.insert(b"a", 1));
        assert!(m.insert(b"b", 2));
        assert!(m.insert(b"a", 3), "an existing key never fills the map");
        assert!(!m.insert(b"c", 4), "a third key is over the budget");
        assert_eq!((m.get(b"a"), m.get(b"b"), m.get(b"c")), (Some(3), Some(2), None));
        assert_eq!(m.len(), 2);
        let mut big = OffsetMap::new(1000 * ENTRY_BYTES);
        for i in 0..1000u64 {
            assert!(big.insert(&i.to_le_bytes(), i));
        }
        assert!(!big.insert(b"one more", 1000));
        assert!((0..1000u64).all(|i| big.get(&i.to_le_bytes()) == Some(i)));
    }
}
