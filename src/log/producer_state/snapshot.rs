//! Producer-state snapshots: `<offset>.snapshot` in the partition's directory holds the state of
//! every producer as of log offset `offset` (every batch below it, none at or above it). Written at
//! each segment roll (named by the new segment's base offset) and at clean shutdown (named by the
//! log end offset), replaced atomically; the newest [`SNAPSHOTS_KEPT`] are kept. Layout in
//! `segment-format.md` (little-endian):
//!
//! ```text
//! 0  magic          [u8; 4] b"KLPS"
//! 4  version        u16     SNAPSHOT_VERSION
//! 6  crc            u32     CRC-32 (IEEE, crc32fast) of bytes [10, end)
//! 10 offset         u64     the offset the state is as of (the file name's)
//! 18 producer_count u32
//! 22 producers, by producer id:
//!      producer_id i64, epoch i16, last_append_ms i64, batch_count u8 (1..=5), then per batch,
//!      oldest first: first_sequence i32, last_sequence i32, first_offset u64, last_offset u64,
//!      timestamp i64, append_time_ms i64
//! ```
//!
//! On open, the newest snapshot at or below the log end offset whose checksum and contents are
//! valid is loaded; snapshots above the log end (the log was cut shorter by recovery) and invalid
//! ones are deleted. The batches from its offset to the log end are then replayed from their
//! headers. No valid snapshot: the whole log is replayed.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use super::{BatchMetadata, ProducerEntry, ProducerState, PRODUCER_BATCHES_KEPT};
use crate::error::{Error, Result};
use crate::log::io::{sync_dir, write_atomic};
use crate::log::segment::{file_stem, parse_file_name};

/// The file extension of producer-state snapshots.
pub(crate) const SNAPSHOT_EXTENSION: &str = "snapshot";
/// The snapshot layout version.
pub(crate) const SNAPSHOT_VERSION: u16 = 1;
/// Snapshots kept per partition: the newest, and one to fall back to if it is found damaged.
pub(crate) const SNAPSHOTS_KEPT: usize = 2;

const MAGIC: &[u8; 4] = b"KLPS";
const VERSION_OFFSET: usize = 4;
const CRC_OFFSET: usize = VERSION_OFFSET + 2;
const STATE_OFFSET_OFFSET: usize = CRC_OFFSET + 4;
const PRODUCER_COUNT_OFFSET: usize = STATE_OFFSET_OFFSET + 8;
const HEADER_LEN: usize = PRODUCER_COUNT_OFFSET + 4;
/// Bytes of a producer's fixed part: id, epoch, last append time, batch count.
const PRODUCER_LEN: usize = 8 + 2 + 8 + 1;
/// Bytes of one kept batch.
const BATCH_LEN: usize = 4 + 4 + 8 + 8 + 8 + 8;

const _: () = assert!(HEADER_LEN == 22);
const _: () = assert!(PRODUCER_BATCHES_KEPT <= u8::MAX as usize);

/// The path of the snapshot as of `offset` in `dir`.
pub(crate) fn path(dir: &Path, offset: u64) -> PathBuf {
    dir.join(format!("{}.{SNAPSHOT_EXTENSION}", file_stem(offset)))
}

/// Encodes `state` as of log offset `offset`.
pub(crate) fn encode(state: &ProducerState, offset: u64) -> Vec<u8> {
    let entries = state.entries();
    let batches: usize = entries.iter().map(|(_, e)| e.batches.len()).sum();
    let mut b = Vec::with_capacity(HEADER_LEN + entries.len() * PRODUCER_LEN + batches * BATCH_LEN);
    b.extend_from_slice(MAGIC);
    b.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&offset.to_le_bytes());
    b.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for (id, e) in entries {
        debug_assert!(!e.batches.is_empty() && e.batches.len() <= PRODUCER_BATCHES_KEPT);
        b.extend_from_slice(&id.to_le_bytes());
        b.extend_from_slice(&e.epoch.to_le_bytes());
        b.extend_from_slice(&e.last_append_ms.to_le_bytes());
        b.push(e.batches.len() as u8);
        for m in &e.batches {
            b.extend_from_slice(&m.first_sequence.to_le_bytes());
            b.extend_from_slice(&m.last_sequence.to_le_bytes());
            b.extend_from_slice(&m.first_offset.to_le_bytes());
            b.extend_from_slice(&m.last_offset.to_le_bytes());
            b.extend_from_slice(&m.timestamp.to_le_bytes());
            b.extend_from_slice(&m.append_time_ms.to_le_bytes());
        }
    }
    let crc = crc32fast::hash(&b[STATE_OFFSET_OFFSET..]);
    b[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_le_bytes());
    b
}

/// Reads fixed-width fields off a byte slice, failing (never panicking) past its end.
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let end = self.at.checked_add(N).filter(|&e| e <= self.b.len()).ok_or_else(|| {
            format!("truncated at byte {} ({} bytes needed, {} left)", self.at, N, self.b.len() - self.at)
        })?;
        let v = self.b[self.at..end].try_into().expect("N bytes");
        self.at = end;
        Ok(v)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take::<1>()?[0])
    }
    fn i16(&mut self) -> Result<i16, String> {
        Ok(i16::from_le_bytes(self.take()?))
    }
    fn i32(&mut self) -> Result<i32, String> {
        Ok(i32::from_le_bytes(self.take()?))
    }
    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_le_bytes(self.take()?))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take()?))
    }
}

/// Decodes a snapshot into `state` (which should be empty): the offset it is as of, or why the
/// bytes are not a valid snapshot. Counts are checked against the bytes that remain before
/// anything is allocated from them.
pub(crate) fn decode(bytes: &[u8], state: &mut ProducerState) -> Result<u64, String> {
    if bytes.len() < HEADER_LEN {
        return Err(format!("{} bytes, shorter than the {HEADER_LEN}-byte header", bytes.len()));
    }
    if &bytes[..4] != MAGIC {
        return Err(format!("magic {:?} (expected {MAGIC:?})", &bytes[..4]));
    }
    let version = u16::from_le_bytes([bytes[VERSION_OFFSET], bytes[VERSION_OFFSET + 1]]);
    if version != SNAPSHOT_VERSION {
        return Err(format!("version {version} (expected {SNAPSHOT_VERSION})"));
    }
    let expected = u32::from_le_bytes(bytes[CRC_OFFSET..CRC_OFFSET + 4].try_into().expect("4 bytes"));
    let found = crc32fast::hash(&bytes[STATE_OFFSET_OFFSET..]);
    if expected != found {
        return Err(format!("CRC-32 mismatch: expected {expected:#010x}, found {found:#010x}"));
    }
    let mut r = Reader { b: bytes, at: STATE_OFFSET_OFFSET };
    let offset = r.u64()?;
    let count = u32::from_le_bytes(r.take()?) as usize;
    if count > (bytes.len() - HEADER_LEN) / (PRODUCER_LEN + BATCH_LEN) {
        return Err(format!("{count} producers cannot fit in {} bytes", bytes.len()));
    }
    let mut previous = None;
    for _ in 0..count {
        let id = r.i64()?;
        let epoch = r.i16()?;
        let last_append_ms = r.i64()?;
        let n = r.u8()? as usize;
        if id < 0 || epoch < 0 || previous.is_some_and(|p| p >= id) {
            return Err(format!("producer id {id} epoch {epoch} (after {previous:?})"));
        }
        if n == 0 || n > PRODUCER_BATCHES_KEPT {
            return Err(format!("producer {id} has {n} batches (1..={PRODUCER_BATCHES_KEPT})"));
        }
        previous = Some(id);
        let mut batches = VecDeque::with_capacity(n);
        for _ in 0..n {
            let m = BatchMetadata {
                first_sequence: r.i32()?,
                last_sequence: r.i32()?,
                first_offset: r.u64()?,
                last_offset: r.u64()?,
                timestamp: r.i64()?,
                append_time_ms: r.i64()?,
            };
            if m.first_sequence < 0 || m.last_sequence < 0 || m.first_offset > m.last_offset || m.last_offset >= offset
            {
                return Err(format!("producer {id}: batch {m:?} (the snapshot is as of offset {offset})"));
            }
            batches.push_back(m);
        }
        state.insert(id, ProducerEntry { epoch, batches, last_append_ms });
    }
    if r.at != bytes.len() {
        return Err(format!("{} bytes after the last producer", bytes.len() - r.at));
    }
    Ok(offset)
}

/// Writes the snapshot of `state` as of `offset` into `dir` (atomically) and deletes the older
/// ones beyond [`SNAPSHOTS_KEPT`].
pub(crate) fn write(dir: &Path, state: &ProducerState, offset: u64) -> Result<()> {
    write_atomic(&path(dir, offset), &encode(state, offset))?;
    let offsets = list(dir)?;
    let mut removed = false;
    for &old in offsets.iter().rev().skip(SNAPSHOTS_KEPT) {
        remove(dir, old)?;
        removed = true;
    }
    if removed {
        sync_dir(dir)?;
    }
    Ok(())
}

/// The offsets of the snapshots in `dir`, sorted.
pub(crate) fn list(dir: &Path) -> Result<Vec<u64>> {
    let mut offsets = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        if let Some(offset) = parse_file_name(&entry.file_name().to_string_lossy(), SNAPSHOT_EXTENSION) {
            offsets.push(offset);
        }
    }
    offsets.sort_unstable();
    Ok(offsets)
}

fn remove(dir: &Path, offset: u64) -> Result<()> {
    let p = path(dir, offset);
    match std::fs::remove_file(&p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(&p, e)),
    }
}

/// Loads the newest valid snapshot at or below `log_end` into `state` (which should be empty) and
/// returns its offset; `None` when there is none. Snapshots above `log_end` and invalid ones are
/// deleted (with a warning for the invalid ones).
pub(crate) fn load(dir: &Path, log_end: u64, state: &mut ProducerState) -> Result<Option<u64>> {
    let mut found = None;
    let mut removed = false;
    for offset in list(dir)?.into_iter().rev() {
        if found.is_some() {
            break;
        }
        let p = path(dir, offset);
        if offset > log_end {
            remove(dir, offset)?;
            removed = true;
            continue;
        }
        let bytes = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
        let mut loaded = ProducerState::new(state.expiration_ms);
        match decode(&bytes, &mut loaded) {
            Ok(at) if at == offset => {
                *state = loaded;
                found = Some(offset);
            }
            Ok(at) => warn_and_remove(&p, &format!("it says it is as of offset {at}"), &mut removed)?,
            Err(why) => warn_and_remove(&p, &why, &mut removed)?,
        }
    }
    if removed {
        sync_dir(dir)?;
    }
    Ok(found)
}

fn warn_and_remove(p: &Path, why: &str, removed: &mut bool) -> Result<()> {
    tracing::warn!(path = %p.display(), why, "ignoring a damaged producer-state snapshot; the batches after an older one are replayed");
    match std::fs::remove_file(p) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(p, e)),
    }
    *removed = true;
    Ok(())
}
