//! Producer ids (Kafka's `InitProducerId`): the store hands out each id once, also across crashes.
//!
//! The file `producer-ids` in the data directory (an offset file: `u64` LE and its CRC-32, replaced
//! atomically) holds the end of the block of ids reserved so far. Ids are given from the block in
//! memory; when it runs out, the next block is reserved durably before any id of it is given. A
//! crash loses what is left of the block (those ids are never given), never gives one twice.

use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::log::offset_file;

/// The file holding the end of the reserved block of producer ids.
pub(crate) const PRODUCER_IDS_FILE: &str = "producer-ids";
/// Producer ids reserved per durable write (Kafka's block size).
pub const PRODUCER_ID_BLOCK: u64 = 1000;

/// The store's producer-id allocator.
#[derive(Debug)]
pub(crate) struct ProducerIds {
    path: PathBuf,
    /// The next id to give, and the end of the reserved block (`next == end`: none left).
    block: Mutex<(u64, u64)>,
}

impl ProducerIds {
    /// Opens the allocator of the data directory `dir`: ids start after every block reserved before.
    pub fn open(dir: &Path) -> Result<ProducerIds> {
        let path = dir.join(PRODUCER_IDS_FILE);
        let end = offset_file::read(&path)?.unwrap_or(0);
        Ok(ProducerIds { path, block: Mutex::new((end, end)) })
    }

    /// A producer id never given before by this data directory.
    pub fn allocate(&self) -> Result<i64> {
        let mut block = self.block.lock();
        let (next, end) = *block;
        if next == end {
            let new_end = end
                .checked_add(PRODUCER_ID_BLOCK)
                .filter(|&e| e <= i64::MAX as u64)
                .ok_or(Error::LimitExceeded { limit: "producer ids", value: end, max: i64::MAX as u64 })?;
            offset_file::write(&self.path, new_end)?;
            block.1 = new_end;
        }
        block.0 = next + 1;
        Ok(next as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_never_given_twice_across_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let ids = ProducerIds::open(dir.path()).unwrap();
        let first: Vec<i64> = (0..3).map(|_| ids.allocate().unwrap()).collect();
        assert_eq!(first, vec![0, 1, 2]);
        // A crash (no clean close): the rest of the block is skipped.
        drop(ids);
        let ids = ProducerIds::open(dir.path()).unwrap();
        let mut seen: std::collections::BTreeSet<i64> = first.into_iter().collect();
        for _ in 0..(PRODUCER_ID_BLOCK as usize + 5) {
            assert!(seen.insert(ids.allocate().unwrap()), "an id was given twice");
        }
        assert_eq!(*seen.iter().nth(3).unwrap(), PRODUCER_ID_BLOCK as i64);
        assert_eq!(offset_file::read(&dir.path().join(PRODUCER_IDS_FILE)).unwrap(), Some(3 * PRODUCER_ID_BLOCK));
        // A damaged file is an error, not a restart from 0.
        std::fs::write(dir.path().join(PRODUCER_IDS_FILE), b"garbage!garbage").unwrap();
        assert!(matches!(ProducerIds::open(dir.path()), Err(Error::Corrupted { .. })));
    }
}
