//! The cleaner's key → latest offset map, bounded in bytes.
//!
//! Like Kafka's `SkimpyOffsetMap`, it stores a 128-bit digest of each key, not the key: slots are
//! small and fixed-size ([`SLOT_BYTES`]), and a lookup never chases a pointer into the log. The digest
//! is two 64-bit aHash values of the key under two independent random keys drawn when the map is made
//! (from std's `RandomState`). aHash is a keyed hash built for DoS resistance: without the keys, a
//! producer cannot aim at a collision (Kafka's map uses unkeyed MD5). Two distinct keys share a digest
//! with probability about `n² / 2^129` for `n` keys (below 10^-24 for 10^7 keys), which would drop the
//! older one's record. aHash costs a few nanoseconds per short key where SipHash cost about fifty:
//! every record of a pass is hashed, so this was a fifth of the cleaner's time.
//!
//! The table is open addressing with linear probing over one array, so a lookup costs one cache
//! miss; callers [`touch`](OffsetMap::touch) the slots of a whole batch of keys first, so that those
//! misses overlap. The table never takes more than its budget: it doubles while it fits, and when it
//! cannot grow and is [`LOAD_MAX_PERCENT`] full, it is full (Kafka's `log.cleaner.dedupe.buffer.size`):
//! the cleaner cleans what it has mapped and maps the rest of the dirty section in a later pass.

use std::hash::{BuildHasher, Hasher};

use crate::hash::random_state;

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

/// The digest is two `u64` halves rather than a `u128`, whose 16-byte alignment would pad a slot
/// to 32 bytes.
#[derive(Clone, Copy)]
struct Slot {
    digest: [u64; 2],
    offset: u64,
}

const _: () = assert!(std::mem::size_of::<Slot>() == SLOT_BYTES);

fn halves(d: Digest) -> [u64; 2] {
    [d as u64, (d >> 64) as u64]
}

/// What [`OffsetMap::insert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Inserted {
    /// The key is new.
    New,
    /// The key had this older offset, now superseded.
    Replaced(u64),
    /// The key is new and the map is full: nothing was recorded.
    Full,
}

pub(crate) struct OffsetMap {
    slots: Vec<Slot>,
    len: usize,
    seeds: [ahash::RandomState; 2],
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
            slots: vec![Slot { digest: [0; 2], offset: EMPTY }; slots],
            len: 0,
            seeds: [random_state(), random_state()],
            budget_bytes,
        }
    }

    pub fn digest(&self, key: &[u8]) -> Digest {
        let [a, b] = self.seeds.each_ref().map(|s| {
            let mut h = s.build_hasher();
            h.write(key);
            h.finish()
        });
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
        let d = halves(d);
        loop {
            let s = &self.slots[i];
            if s.offset == EMPTY || s.digest == d {
                return i;
            }
            i = (i + 1) & mask;
        }
    }

    /// Records that the key of digest `d` has its latest record at `offset` (offsets arrive in
    /// increasing order).
    pub fn insert(&mut self, d: Digest, offset: u64) -> Inserted {
        let i = self.find(d);
        let old = self.slots[i].offset;
        if old != EMPTY {
            debug_assert!(old < offset, "offsets arrive in order");
            self.slots[i].offset = offset;
            return Inserted::Replaced(old);
        }
        if (self.len + 1) * 100 > self.slots.len() * LOAD_MAX_PERCENT {
            if self.slots.len() * 2 * SLOT_BYTES > self.budget_bytes {
                return Inserted::Full;
            }
            self.grow();
            return self.insert(d, offset);
        }
        self.slots[i] = Slot { digest: halves(d), offset };
        self.len += 1;
        Inserted::New
    }

    fn grow(&mut self) {
        let slots = self.slots.len() * 2;
        let old = std::mem::replace(&mut self.slots, vec![Slot { digest: [0; 2], offset: EMPTY }; slots]);
        for s in old.into_iter().filter(|s| s.offset != EMPTY) {
            let i = self.find(s.digest[0] as u128 | (s.digest[1] as u128) << 64);
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
        assert_eq!(
            [m.insert(a, 1), m.insert(b, 2), m.insert(a, 3)],
            [Inserted::New, Inserted::New, Inserted::Replaced(1)]
        );
        assert_eq!((m.get(a), m.get(b), m.get(m.digest(b"c"))), (Some(3), Some(2), None));
        let mut n = 2u64;
        while m.insert(m.digest(&n.to_le_bytes()), 10 + n) == Inserted::New {
            n += 1;
        }
        assert!(m.table_bytes() <= budget);
        assert!(m.len() * 100 >= (budget / SLOT_BYTES / 2) * LOAD_MAX_PERCENT / 2, "{} keys", m.len());
        assert!((2..n).all(|i| m.get(m.digest(&i.to_le_bytes())) == Some(10 + i)));
        assert_eq!(m.insert(a, 1_000_000), Inserted::Replaced(3), "an existing key never fills the map");
        assert_eq!(m.get(a), Some(1_000_000));
    }
}
