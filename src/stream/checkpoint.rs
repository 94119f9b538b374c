//! Base checkpoints: a view version's whole state and the source offsets it reflects, in one
//! file, replaced atomically (temp file, fsync, rename, fsync the directory). The incremental
//! checkpoints after it are records of its delta log (`delta.rs`); `state_store.rs` decides which
//! to write. Layout in segment-format.md §15.
//!
//! ```text
//! 0   magic "KLVC"               4 bytes
//! 4   format version             u32 LE (CHECKPOINT_VERSION)
//! 8   body length                u64 LE
//! 16  CRC-32 (crc32fast)         u32 LE: of the body (versions 1, 2); of bytes 20..28 and the body (3)
//! 20  generation                 u64 LE (version 3 only; versions 1 and 2 are generation 0)
//! 28  body                       JSON of `Snapshot` (at 20 in versions 1 and 2)
//! ```

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::state::Snapshot;
use crate::error::{Corruption, Error, Result};
use crate::log::io::sync_dir;

pub(crate) const CHECKPOINT_MAGIC: [u8; 4] = *b"KLVC";
/// The checkpoint format this build writes and the newest it reads (it reads every older one:
/// version 2 added partition watermarks and stamps, absent from version 1 bodies; version 3 the
/// generation its delta log refers to).
pub(crate) const CHECKPOINT_VERSION: u32 = 3;
const MAGIC_OFFSET: usize = 0;
const VERSION_OFFSET: usize = MAGIC_OFFSET + 4;
const LENGTH_OFFSET: usize = VERSION_OFFSET + 4;
const CRC_OFFSET: usize = LENGTH_OFFSET + 8;
const GENERATION_OFFSET: usize = CRC_OFFSET + 4;
/// The header of versions 1 and 2.
const HEADER_V2_LEN: usize = GENERATION_OFFSET;
pub(crate) const HEADER_LEN: usize = GENERATION_OFFSET + 8;
const _: () = assert!(HEADER_V2_LEN == 20 && HEADER_LEN == 28);

/// A base checkpoint as read.
#[derive(Debug)]
pub(crate) struct Base {
    pub snap: Snapshot,
    /// The generation its delta log's records refer to (0: a version 1 or 2 file, which has none).
    pub generation: u64,
    /// The format version it was written in.
    pub version: u32,
}

/// The file of version `version` in a view's directory.
pub(crate) fn path_for(dir: &Path, version: u64) -> PathBuf {
    dir.join(format!("v{version}.checkpoint"))
}

/// Parses `v<N>.checkpoint`.
pub(crate) fn parse_name(name: &str) -> Option<u64> {
    name.strip_prefix('v')?.strip_suffix(".checkpoint")?.parse().ok()
}

pub(crate) fn encode(snap: &Snapshot, generation: u64) -> Vec<u8> {
    let mut buf = vec![0u8; HEADER_LEN];
    serde_json::to_writer(&mut buf, snap).expect("a snapshot serializes");
    let body_len = (buf.len() - HEADER_LEN) as u64;
    buf[MAGIC_OFFSET..VERSION_OFFSET].copy_from_slice(&CHECKPOINT_MAGIC);
    buf[VERSION_OFFSET..LENGTH_OFFSET].copy_from_slice(&CHECKPOINT_VERSION.to_le_bytes());
    buf[LENGTH_OFFSET..CRC_OFFSET].copy_from_slice(&body_len.to_le_bytes());
    buf[GENERATION_OFFSET..HEADER_LEN].copy_from_slice(&generation.to_le_bytes());
    let crc = crc32fast::hash(&buf[GENERATION_OFFSET..]);
    buf[CRC_OFFSET..GENERATION_OFFSET].copy_from_slice(&crc.to_le_bytes());
    buf
}

pub(crate) fn decode(path: &Path, buf: &[u8]) -> Result<Base> {
    let bad = |position: usize, why: String| Error::Corrupted {
        path: path.to_path_buf(),
        position: position as u64,
        detail: Corruption::Malformed(why),
    };
    if buf.len() < HEADER_LEN {
        return Err(bad(0, format!("{} bytes is shorter than the {HEADER_LEN}-byte header", buf.len())));
    }
    if buf[MAGIC_OFFSET..VERSION_OFFSET] != CHECKPOINT_MAGIC {
        return Err(bad(MAGIC_OFFSET, format!("magic {:?} is not KLVC", &buf[..4])));
    }
    let u32_at = |at: usize| u32::from_le_bytes(buf[at..at + 4].try_into().expect("4 bytes"));
    let version = u32_at(VERSION_OFFSET);
    if version == 0 || version > CHECKPOINT_VERSION {
        return Err(Error::UnsupportedFormat {
            path: path.to_path_buf(),
            found: version,
            supported: CHECKPOINT_VERSION,
        });
    }
    let header_len = if version >= 3 { HEADER_LEN } else { HEADER_V2_LEN };
    if buf.len() < header_len {
        return Err(bad(0, format!("{} bytes is shorter than the {header_len}-byte header", buf.len())));
    }
    let len = u64::from_le_bytes(buf[LENGTH_OFFSET..CRC_OFFSET].try_into().expect("8 bytes"));
    let body = &buf[header_len..];
    if len != body.len() as u64 {
        return Err(bad(LENGTH_OFFSET, format!("body length {len} but the file holds {} bytes of body", body.len())));
    }
    let expected = u32_at(CRC_OFFSET);
    let (found, generation) = if version >= 3 {
        let g = u64::from_le_bytes(buf[GENERATION_OFFSET..HEADER_LEN].try_into().expect("8 bytes"));
        (crc32fast::hash(&buf[GENERATION_OFFSET..]), g)
    } else {
        (crc32fast::hash(body), 0)
    };
    if expected != found {
        return Err(Error::Corrupted {
            path: path.to_path_buf(),
            position: header_len as u64,
            detail: Corruption::ChecksumMismatch { expected, found },
        });
    }
    let snap =
        serde_json::from_slice(body).map_err(|e| bad(header_len + e.column(), format!("checkpoint body: {e}")))?;
    Ok(Base { snap, generation, version })
}

/// Writes `snap` as `path` atomically: the old file or the new one survives a crash, never a mix.
#[cfg(test)]
pub(crate) fn write(path: &Path, snap: &Snapshot) -> Result<()> {
    write_bytes(path, &encode(snap, 1))
}

/// Writes encoded checkpoint `bytes` as `path` atomically.
pub(crate) fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("checkpoint.tmp");
    let mut f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.write_all(bytes).and_then(|_| f.sync_all()).map_err(|e| Error::io(&tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    sync_dir(path.parent().expect("a checkpoint lives in a view directory"))
}

/// Reads the checkpoint at `path`; `None` when there is none.
pub(crate) fn read(path: &Path) -> Result<Option<Base>> {
    match std::fs::read(path) {
        Ok(buf) => decode(path, &buf).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::state::{Entry, SourceOffset};

    fn sample() -> Snapshot {
        let mut s = Snapshot { watermark: Some(42), ..Snapshot::default() };
        s.offsets.push(SourceOffset {
            topic: "t".into(),
            partition: 3,
            next_offset: 17,
            event_time_max: Some(40),
            idle: false,
        });
        s.entries.insert("k".into(), Entry::Value(serde_json::json!({"a": 1})));
        s.counters.records_read = 17;
        s
    }

    #[test]
    fn round_trip_and_atomic_replace() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(dir.path(), 7);
        assert_eq!(parse_name("v7.checkpoint"), Some(7));
        assert!(read(&path).unwrap().is_none());
        write(&path, &sample()).unwrap();
        let base = read(&path).unwrap().unwrap();
        assert_eq!((base.snap, base.generation, base.version), (sample(), 1, CHECKPOINT_VERSION));
        let mut next = sample();
        next.watermark = Some(43);
        write(&path, &next).unwrap();
        assert_eq!(read(&path).unwrap().unwrap().snap, next);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("v7.checkpoint")], "no temp file left");
    }

    #[test]
    fn a_version_1_checkpoint_still_reads() {
        let body = br#"{"offsets": [{"topic": "t", "partition": 0, "next_offset": 3}], "watermark": 5,
            "counters": {"records_read": 3, "records_applied": 3, "records_filtered": 0, "late_records": 0,
                         "error_records": 0, "records_emitted": 0},
            "entries": {"k": {"value": {"a": 1}},
                        "w": {"windows": {"0": {"end": 10, "aggregates": [{"latest": [{"v": 1}, 7]}]}}}}}"#;
        let mut buf = Vec::new();
        buf.extend_from_slice(&CHECKPOINT_MAGIC);
        buf.extend_from_slice(&1u32.to_le_bytes());
        buf.extend_from_slice(&(body.len() as u64).to_le_bytes());
        buf.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
        buf.extend_from_slice(body);
        let base = decode(Path::new("/x/v1.checkpoint"), &buf).unwrap();
        assert_eq!((base.generation, base.version), (0, 1));
        let snap = base.snap;
        assert_eq!((snap.offsets[0].next_offset, snap.offsets[0].event_time_max, snap.watermark), (3, None, Some(5)));
        assert!(matches!(snap.entries.get("k"), Some(Entry::Value(_))));
        let Some(Entry::Windows(ws)) = snap.entries.get("w") else { panic!("{snap:?}") };
        let latest = &ws[&0].aggregates.0[0];
        let older = crate::stream::time::Stamp { time: 0, topic: 0, partition: 0, offset: 0 };
        assert!(
            matches!(latest, crate::stream::aggregate::Accumulator::Latest(Some((_, s))) if *s < older && s.offset == 7)
        );
    }

    #[test]
    fn every_damage_is_reported_with_evidence() {
        let path = Path::new("/x/v1.checkpoint");
        let good = encode(&sample(), 5);
        let mut generation = good.clone();
        generation[20] ^= 1;
        assert!(
            matches!(
                decode(path, &generation),
                Err(Error::Corrupted { detail: Corruption::ChecksumMismatch { .. }, .. })
            ),
            "the CRC covers the generation"
        );
        let mut flipped = good.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(matches!(
            decode(path, &flipped),
            Err(Error::Corrupted { detail: Corruption::ChecksumMismatch { .. }, .. })
        ));
        assert!(matches!(decode(path, &good[..good.len() - 1]), Err(Error::Corrupted { position: 8, .. })));
        assert!(matches!(decode(path, &good[..10]), Err(Error::Corrupted { position: 0, .. })));
        let mut magic = good.clone();
        magic[0] = b'X';
        assert!(matches!(decode(path, &magic), Err(Error::Corrupted { position: 0, .. })));
        let mut version = good.clone();
        version[4] = 9;
        assert!(matches!(decode(path, &version), Err(Error::UnsupportedFormat { found: 9, .. })));
    }
}
