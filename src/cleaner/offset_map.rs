//! The cleaner's key → latest offset map, bounded in bytes.
//!
//! Like Kafka's `SkimpyOffsetMap`, it stores a 128-bit digest of each key, not the key: slots are
//! small and fixed-size ([`SLOT_BYTES`]), and a lookup never chases a pointer into the log. The digest
//! is two outputs of SipHash-1-3 under a random key drawn when the map is made (std's `RandomState`):
//! of the key, and of the key followed by one more byte (a PRF on two distinct inputs: independent
//! 64-bit values, for the price of one pass over the key). A producer cannot craft colliding keys
//! without the random key; two distinct keys share a digest with probability about `n² / 2^129` for
//! `n` keys (below 10^-24 for 10^7 keys), which would drop the older one's record.
//!
//! The table is open addressing with linear probing over one array, so a lookup costs one cache
//! miss; callers [`touch`](OffsetMap::touch) the slots of a whole batch of keys first, so that those
//! misses overlap. The table never takes more than its budget: it doubles while it fits, and when it
//! cannot grow and is [`LOAD_MAX_PERCENT`] full, it is full (Kafka's `log.cleaner.dedupe.buffer.size`):
//! the cleaner cleans what it has mapped and maps the rest of the dirty section in a later pass.

use std::hash::{BuildHasher, Hasher};

/// Bytes of one slot: the 16-byte digest and the 8-byte offset.
pub(crate) const SLOT_BYTES: usize = 24;
/// The table is full beyond this many keys per hundred slots.
pub(crate) const LOAD_MAX_PERCENT: usize = 70;
/// Slots of a new table.
const SLOTS_MIN: usize = 1024;
/// The offset of an empty slot (no record has it: offsets stay below `u64::MAX / 2`).
const EMPTY: u64 = u64::MAX;

/// A key's digest.
pub(crate) type Digest = u128;

#[derive(Clone, Copy)]
struct Slot {
    digest: Digest,
    offset: u64,
}

pub(crate) struct OffsetMap {
    slots: Vec<Slot>,
    len: usize,
    seed: std::collections::hash_map::RandomState,
    budget_bytes: usize,
}

impl std::fmt::Debug for OffsetMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OffsetMap").field("keys", &self.len).field("slots", &self.slots.len()).finish()
    }
}

impl OffsetMap {
    pub fn new(budget_bytes: usize) -> OffsetMap {
        let slots = SLOTS_MIN.min((budget_bytes / SLOT_BYTES).max(2).next_power_of_two() / 2).max(2);
        OffsetMap {
            slots: vec![Slot { digest: 0, offset: EMPTY }; slots],
            len: 0,
            seed: Default::default(),
            budget_bytes,
        }
    }

    pub fn digest(&self, key: &[u8]) -> Digest {
        let mut h = self.seed.build_hasher();
        h.write(key);
        let a = h.finish();
        h.write_u8(0xA5);
        let b = h.finish();
        ((b as u128) << 64) | a as u128
    }

    fn home(&self, d: Digest) -> usize {
        d as usize & (self.slots.len() - 1)
    }

    /// Reads the home slot of each digest, so that the cache misses of a batch overlap.
    pub fn touch(&self, digests: impl Iterator<Item = Digest>) {
        let mut acc = 0u64;
        for d in digests {
            acc ^= self.slots[self.home(d)].offset;
        }
        std::hint::black_box(acc);
    }

    /// The slot holding `d`, or the empty slot where it would go.
    fn find(&self, d: Digest) -> usize {
        let mask = self.slots.len() - 1;
        let mut i = self.home(d);
        loop {
            let s = &self.slots[i];
            if s.offset == EMPTY || s.digest == d {
                return i;
            }
            i = (i + 1) & mask;
        }
    }

    /// Records that the key of digest `d` has its latest record at `offset` (offsets arrive in
    /// increasing order). `false` when the key is new and the map is full: nothing was recorded.
    pub fn insert(&mut self, d: Digest, offset: u64) -> bool {
        let i = self.find(d);
        if self.slots[i].offset != EMPTY {
            debug_assert!(self.slots[i].offset < offset, "offsets arrive in order");
            self.slots[i].offset = offset;
            return true;
        }
        if (self.len + 1) * 100 > self.slots.len() * LOAD_MAX_PERCENT {
            if self.slots.len() * 2 * SLOT_BYTES > self.budget_bytes {
                return false;
            }
            self.grow();
            return self.insert(d, offset);
        }
        self.slots[i] = Slot { digest: d, offset };
        self.len += 1;
        true
    }

    fn grow(&mut self) {
        let slots = self.slots.len() * 2;
        let old = std::mem::replace(&mut self.slots, vec![Slot { digest: 0, offset: EMPTY }; slots]);
        for s in old.into_iter().filter(|s| s.offset != EMPTY) {
            let i = self.find(s.digest);
            self.slots[i] = s;
        }
    }

    /// The latest offset recorded for the key of digest `d`.
    pub fn get(&self, d: Digest) -> Option<u64> {
        if self.len == 0 {
            return None;
        }
        let s = &self.slots[self.find(d)];
        (s.offset != EMPTY).then_some(s.offset)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Bytes the table takes now (never more than the budget).
    #[cfg(test)]
    pub fn table_bytes(&self) -> usize {
        self.slots.len() * SLOT_BYTES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_and_respects_the_budget() {
        let budget = 64 * 1024;
        let mut m = OffsetMap::new(budget);
        let (a, b) = (m.digest(b"a"), m.digest(b"b"));
        assert_ne!(a, b);
        assert!(m.insert(a, 1) && m.insert(b, 2) && m.insert(a, 3));
        assert_eq!((m.get(a), m.get(b), m.get(m.digest(b"c"))), (Some(3), Some(2), None));
        let mut n = 2u64;
        while m.insert(m.digest(&n.to_le_bytes()), 10 + n) {
            n += 1;
        }
        assert!(m.table_bytes() <= budget);
        assert!(m.len() * 100 >= (budget / SLOT_BYTES / 2) * LOAD_MAX_PERCENT / 2, "{} keys", m.len());
        assert!((2..n).all(|i| m.get(m.digest(&i.to_le_bytes())) == Some(10 + i)));
        assert!(m.insert(a, 1_000_000), "an existing key never fills the map");
        assert_eq!(m.get(a), Some(1_000_000));
    }
}
