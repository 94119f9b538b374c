//! A bounded set of offsets, a bit each: the dirty offsets a compaction pass learnt are superseded.

/// A set of offsets in `[start, start + 8 * budget_bytes)`, a bit each.
pub(crate) struct OffsetSet {
    start: u64,
    bits: Vec<u64>,
    capacity: u64,
}

impl OffsetSet {
    pub fn new(start: u64, budget_bytes: usize) -> OffsetSet {
        OffsetSet { start, bits: Vec::new(), capacity: budget_bytes as u64 / 8 * 64 }
    }

    /// The first offset of the set's range.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Whether `offset` fits in the set's range.
    pub fn covers(&self, offset: u64) -> bool {
        offset >= self.start && offset - self.start < self.capacity
    }

    pub fn insert(&mut self, offset: u64) {
        debug_assert!(self.covers(offset));
        let i = offset - self.start;
        let word = (i / 64) as usize;
        if word >= self.bits.len() {
            self.bits.resize(word + 1, 0);
        }
        self.bits[word] |= 1 << (i % 64);
    }

    pub fn contains(&self, offset: u64) -> bool {
        let Some(i) = offset.checked_sub(self.start) else { return false };
        self.bits.get((i / 64) as usize).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
}
