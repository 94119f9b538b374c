//! A small durable file holding one offset: the partition's `log-start-offset` and the cleaner's
//! `cleaner-checkpoint`. Layout (12 bytes): `offset u64 LE`, `crc u32 LE` (CRC-32 of the 8 offset
//! bytes). Replaced atomically (temporary file, fsync, rename, fsync the directory).

use std::path::Path;

use crate::error::{Corruption, Error, Result};
use crate::log::io::write_atomic;

/// Bytes of an offset file.
pub(crate) const OFFSET_FILE_LEN: usize = 12;

/// Reads the offset stored at `path`; `Ok(None)` when the file does not exist.
/// A file of the wrong length or with a bad checksum is corruption (it was replaced atomically).
pub(crate) fn read(path: &Path) -> Result<Option<u64>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    let corrupted = |detail| Error::Corrupted { path: path.to_path_buf(), position: 0, detail };
    if bytes.len() != OFFSET_FILE_LEN {
        return Err(corrupted(Corruption::Malformed(format!("{} bytes, expected {OFFSET_FILE_LEN}", bytes.len()))));
    }
    let expected = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    let found = crc32fast::hash(&bytes[..8]);
    if expected != found {
        return Err(corrupted(Corruption::ChecksumMismatch { expected, found }));
    }
    Ok(Some(u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"))))
}

/// Replaces the file at `path` with `offset`, durably.
pub(crate) fn write(path: &Path, offset: u64) -> Result<()> {
    let mut b = [0u8; OFFSET_FILE_LEN];
    b[..8].copy_from_slice(&offset.to_le_bytes());
    let crc = crc32fast::hash(&b[..8]);
    b[8..].copy_from_slice(&crc.to_le_bytes());
    write_atomic(path, &b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log-start-offset");
        assert_eq!(read(&path).unwrap(), None);
        write(&path, 42).unwrap();
        assert_eq!(read(&path).unwrap(), Some(42));
        write(&path, 7_000_000_000).unwrap();
        assert_eq!(read(&path).unwrap(), Some(7_000_000_000));
        let mut b = std::fs::read(&path).unwrap();
        b[0] ^= 1;
        std::fs::write(&path, &b).unwrap();
        assert!(matches!(read(&path), Err(Error::Corrupted { .. })));
        std::fs::write(&path, [0u8; 5]).unwrap();
        assert!(matches!(read(&path), Err(Error::Corrupted { .. })));
    }
}
