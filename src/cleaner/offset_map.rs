//! The cleaner's key → latest offset map, bounded in bytes.
//!
//! Keys are `Bytes` slices of the segments' memory maps (no copy), so what the map costs is its table:
//! [`ENTRY_BYTES`] per key, plus the key's length, counted even though the key lives in the page cache
//! (a conservative bound that keeps the page-cache working set bounded too). When the next new key
//! would pass the budget, the map is full: the cleaner cleans what it has mapped so far and maps the
//! rest of the dirty section in a later pass (Kafka's `log.cleaner.dedupe.buffer.size`).

use std::collections::HashMap;

use bytes::Bytes;

/// What one entry costs besides its key: the `Bytes` handle, the offset and the table's overhead
/// (hashbrown keeps one control byte per slot and at most 7/8 of its slots full; rounded up).
pub(crate) const ENTRY_BYTES: usize = std::mem::size_of::<Bytes>() + std::mem::size_of::<u64>() + 16;

#[derive(Debug)]
pub(crate) struct OffsetMap {
    map: HashMap<Bytes, u64>,
    used_bytes: usize,
    budget_bytes: usize,
}

impl OffsetMap {
    pub fn new(budget_bytes: usize) -> OffsetMap {
        OffsetMap { map: HashMap::new(), used_bytes: 0, budget_bytes }
    }

    /// Records that `key`'s latest offset is `offset` (offsets arrive in increasing order).
    /// `false` when `key` is new and would pass the budget: nothing was recorded.
    pub fn insert(&mut self, key: &Bytes, offset: u64) -> bool {
        if let Some(o) = self.map.get_mut(key) {
            debug_assert!(*o < offset, "offsets arrive in order");
            *o = offset;
            return true;
        }
        let cost = ENTRY_BYTES + key.len();
        if self.used_bytes + cost > self.budget_bytes {
            return false;
        }
        self.used_bytes += cost;
        self.map.insert(key.clone(), offset);
        true
    }

    /// The latest offset recorded for `key`.
    pub fn get(&self, key: &[u8]) -> Option<u64> {
        self.map.get(key).copied()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    #[cfg(test)]
    pub fn used_bytes(&self) -> usize {
        self.used_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_and_respects_the_budget() {
        let mut m = OffsetMap::new(2 * (ENTRY_BYTES + 1));
        assert!(m.insert(&Bytes::from_static(b"a"), 1));
        assert!(m.insert(&Bytes::from_static(b"b"), 2));
        assert!(m.insert(&Bytes::from_static(b"a"), 3), "an existing key never fills the map");
        assert!(!m.insert(&Bytes::from_static(b"c"), 4), "a third key is over the budget");
        assert_eq!((m.get(b"a"), m.get(b"b"), m.get(b"c")), (Some(3), Some(2), None));
        assert_eq!((m.len(), m.used_bytes()), (2, 2 * (ENTRY_BYTES + 1)));
    }
}
