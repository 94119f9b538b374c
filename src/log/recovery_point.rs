//! The durable recovery point of a partition (Kafka's `recovery-point-offset-checkpoint`):
//! every batch below it was fsynced, so recovery reports an invalid batch there as corruption,
//! while at or above it the first invalid batch ends the log (a torn tail). Layout (28 bytes, all
//! little-endian, replaced atomically):
//!
//! ```text
//! 0  offset        u64  every offset below it is durable
//! 8  segment_base  u64  the base offset of the segment `position` is in
//! 16 position      u64  the byte position of `offset` in that segment: a batch boundary
//! 24 crc           u32  CRC-32 (IEEE) of bytes [0, 24)
//! ```
//!
//! Written at every roll (the sealed segment is durable: the point moves to the new segment's
//! start) and by `Partition::flush` (so at a clean close: the point moves to the log's end).

use std::path::Path;

use crate::error::{Corruption, Error, Result};
use crate::log::io::write_atomic;

pub(crate) const RECOVERY_POINT_FILE: &str = "recovery-point";
const LEN: usize = 28;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecoveryPoint {
    pub offset: u64,
    pub segment_base: u64,
    pub position: u64,
}

impl RecoveryPoint {
    /// Where the point falls in the active segment of base `base` whose file is `len` bytes: a
    /// point in an older segment is the active segment's start; one in a later segment (a crash
    /// between writing it at a roll and creating the new segment) is the whole file.
    pub fn position_in(this: Option<RecoveryPoint>, base: u64, len: u64) -> u64 {
        match this {
            None => 0,
            Some(rp) if rp.segment_base < base => 0,
            Some(rp) if rp.segment_base > base => len,
            Some(rp) => rp.position,
        }
    }
}

/// Reads the recovery point in partition directory `dir`; `Ok(None)` when there is none yet.
pub(crate) fn read(dir: &Path) -> Result<Option<RecoveryPoint>> {
    let path = dir.join(RECOVERY_POINT_FILE);
    let b = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&path, e)),
    };
    let corrupted = |detail| Error::Corrupted { path: path.clone(), position: 0, detail };
    if b.len() != LEN {
        return Err(corrupted(Corruption::Malformed(format!("{} bytes, expected {LEN}", b.len()))));
    }
    let expected = u32::from_le_bytes(b[24..28].try_into().unwrap());
    let found = crc32fast::hash(&b[..24]);
    if expected != found {
        return Err(corrupted(Corruption::ChecksumMismatch { expected, found }));
    }
    let u = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
    Ok(Some(RecoveryPoint { offset: u(0), segment_base: u(8), position: u(16) }))
}

/// Replaces the recovery point of partition directory `dir`, durably.
pub(crate) fn write(dir: &Path, rp: RecoveryPoint) -> Result<()> {
    let mut b = [0u8; LEN];
    b[0..8].copy_from_slice(&rp.offset.to_le_bytes());
    b[8..16].copy_from_slice(&rp.segment_base.to_le_bytes());
    b[16..24].copy_from_slice(&rp.position.to_le_bytes());
    let crc = crc32fast::hash(&b[..24]);
    b[24..].copy_from_slice(&crc.to_le_bytes());
    write_atomic(&dir.join(RECOVERY_POINT_FILE), &b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_damage_and_placement() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        let rp = RecoveryPoint { offset: 42, segment_base: 10, position: 4096 };
        write(dir.path(), rp).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(rp));
        assert_eq!(RecoveryPoint::position_in(Some(rp), 10, 9000), 4096);
        assert_eq!(RecoveryPoint::position_in(Some(rp), 42, 9000), 0);
        assert_eq!(RecoveryPoint::position_in(Some(rp), 5, 9000), 9000);
        assert_eq!(RecoveryPoint::position_in(None, 5, 9000), 0);
        let path = dir.path().join(RECOVERY_POINT_FILE);
        let mut b = std::fs::read(&path).unwrap();
        b[3] ^= 1;
        std::fs::write(&path, &b).unwrap();
        assert!(matches!(read(dir.path()), Err(Error::Corrupted { .. })));
    }
}
