//! The delta log of a view version (`v<N>.delta`, beside its base checkpoint `v<N>.checkpoint`):
//! one record per incremental checkpoint, holding what changed since the previous one. Layout in
//! segment-format.md §15.
//!
//! ```text
//! 0   magic "KLVD"                      4 bytes
//! 4   format version                    u32 LE (DELTA_VERSION)
//! 8   base generation                   u64 LE
//! 16  sequence (1, 2, .. per base)      u64 LE
//! 24  body length                       u64 LE
//! 32  body CRC-32 (crc32fast)           u32 LE
//! 36  header CRC-32 of bytes 0..36      u32 LE
//! 40  body                              JSON of `Body`
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::state::{Entry, RecordKeys, Snapshot, SourceOffset, ViewCounters};
use crate::error::{Corruption, Error, Result};

pub(crate) const DELTA_MAGIC: [u8; 4] = *b"KLVD";
/// The delta format this build writes and the newest it reads.
pub(crate) const DELTA_VERSION: u32 = 1;
const VERSION_OFFSET: usize = 4;
const GENERATION_OFFSET: usize = 8;
const SEQUENCE_OFFSET: usize = 16;
const LENGTH_OFFSET: usize = 24;
const BODY_CRC_OFFSET: usize = 32;
const HEADER_CRC_OFFSET: usize = 36;
pub(crate) const HEADER_LEN: usize = 40;

/// The delta log of version `version` in a view's directory.
pub(crate) fn path_for(dir: &Path, version: u64) -> PathBuf {
    dir.join(format!("v{version}.delta"))
}

/// Parses `v<N>.delta`.
pub(crate) fn parse_name(name: &str) -> Option<u64> {
    name.strip_prefix('v')?.strip_suffix(".delta")?.parse().ok()
}

/// What a delta record carries: everything a base checkpoint holds besides the entries and the
/// TTL index, whole, and of those only the keys that changed or went.
#[derive(Serialize)]
struct BodyOut<'a> {
    offsets: &'a [SourceOffset],
    watermark: Option<i64>,
    counters: &'a ViewCounters,
    emit: &'a super::emit::EmitLog,
    record_keys: RecordKeys,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    topic_ids: &'a BTreeMap<String, crate::TopicId>,
    #[serde(skip_serializing_if = "super::join::JoinState::is_empty")]
    join: &'a super::join::JoinState,
    #[serde(skip_serializing_if = "super::cdc::CdcRows::is_empty")]
    cdc: &'a super::cdc::CdcRows,
    entries: BTreeMap<&'a str, &'a Entry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    removed: Vec<&'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    ttl: BTreeMap<&'a str, i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ttl_removed: Vec<&'a str>,
}

#[derive(Deserialize)]
struct Body {
    offsets: Vec<SourceOffset>,
    watermark: Option<i64>,
    counters: ViewCounters,
    emit: super::emit::EmitLog,
    record_keys: RecordKeys,
    #[serde(default)]
    topic_ids: BTreeMap<String, crate::TopicId>,
    #[serde(default)]
    join: super::join::JoinState,
    #[serde(default)]
    cdc: super::cdc::CdcRows,
    entries: BTreeMap<String, Entry>,
    #[serde(default)]
    removed: Vec<String>,
    #[serde(default)]
    ttl: BTreeMap<String, i64>,
    #[serde(default)]
    ttl_removed: Vec<String>,
}

/// The record of sequence `sequence` over base `generation`: `snap` as it is, for the entries
/// `changed` (present: written; absent: removed) and the TTL keys `ttl_changed`.
pub(crate) fn encode(
    generation: u64,
    sequence: u64,
    snap: &Snapshot,
    changed: &[String],
    ttl_changed: &[String],
) -> Vec<u8> {
    let mut body = BodyOut {
        offsets: &snap.offsets,
        watermark: snap.watermark,
        counters: &snap.counters,
        emit: &snap.emit,
        record_keys: snap.record_keys,
        topic_ids: &snap.topic_ids,
        join: &snap.join,
        cdc: &snap.cdc,
        entries: BTreeMap::new(),
        removed: Vec::new(),
        ttl: BTreeMap::new(),
        ttl_removed: Vec::new(),
    };
    for k in changed {
        match snap.entries.get(k) {
            Some(e) => {
                body.entries.insert(k, e);
            }
            None => body.removed.push(k),
        }
    }
    for k in ttl_changed {
        match snap.ttl.get(k) {
            Some(t) => {
                body.ttl.insert(k, t);
            }
            None => body.ttl_removed.push(k),
        }
    }
    let body = serde_json::to_vec(&body).expect("a delta serializes");
    let mut buf = Vec::with_capacity(HEADER_LEN + body.len());
    buf.extend_from_slice(&DELTA_MAGIC);
    buf.extend_from_slice(&DELTA_VERSION.to_le_bytes());
    buf.extend_from_slice(&generation.to_le_bytes());
    buf.extend_from_slice(&sequence.to_le_bytes());
    buf.extend_from_slice(&(body.len() as u64).to_le_bytes());
    buf.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    let header_crc = crc32fast::hash(&buf[..HEADER_CRC_OFFSET]);
    buf.extend_from_slice(&header_crc.to_le_bytes());
    buf.extend_from_slice(&body);
    buf
}

fn apply(snap: &mut Snapshot, body: Body) {
    snap.offsets = body.offsets;
    snap.watermark = body.watermark;
    snap.counters = body.counters;
    snap.emit = body.emit;
    snap.record_keys = body.record_keys;
    snap.topic_ids = body.topic_ids;
    snap.join = body.join;
    snap.cdc = body.cdc;
    for (k, e) in body.entries {
        snap.entries.insert(k, e);
    }
    for k in body.removed {
        snap.entries.remove(&k);
    }
    for (k, t) in body.ttl {
        snap.ttl.set(&k, t);
    }
    for k in body.ttl_removed {
        snap.ttl.remove(&k);
    }
}

/// What reading a delta log found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Replayed {
    /// Records applied (the next record's sequence is one more).
    pub records: u64,
    /// Bytes of those records: the rest of the file (a torn last record) is to be cut off.
    pub valid_len: u64,
    /// The log belongs to an earlier base (a crash between a new base and the removal of the
    /// old log): nothing applied, the whole file is to be removed.
    pub stale: bool,
}

/// Applies to `snap` (read from the base of `generation`) the records of the delta log `buf`, in
/// sequence. A last record cut short (or zeros after the last record, or a last record whose
/// body fails its CRC and ends the file) is a write a crash interrupted: it is ignored, and the
/// checkpoint before it holds. Any other damage is `Error::Corrupted` with the byte position.
pub(crate) fn replay(path: &Path, buf: &[u8], generation: u64, snap: &mut Snapshot) -> Result<Replayed> {
    let bad = |position: usize, detail: Corruption| Error::Corrupted {
        path: path.to_path_buf(),
        position: position as u64,
        detail,
    };
    let malformed = |position: usize, why: String| bad(position, Corruption::Malformed(why));
    let mut out = Replayed { records: 0, valid_len: 0, stale: false };
    let mut pos = 0usize;
    while pos < buf.len() {
        let rest = &buf[pos..];
        if rest.len() < HEADER_LEN || rest.iter().all(|&b| b == 0) {
            break; // torn
        }
        let u32_at = |at: usize| u32::from_le_bytes(rest[at..at + 4].try_into().expect("4 bytes"));
        let u64_at = |at: usize| u64::from_le_bytes(rest[at..at + 8].try_into().expect("8 bytes"));
        let (expected, found) = (u32_at(HEADER_CRC_OFFSET), crc32fast::hash(&rest[..HEADER_CRC_OFFSET]));
        if expected != found {
            return Err(bad(pos + HEADER_CRC_OFFSET, Corruption::ChecksumMismatch { expected, found }));
        }
        if rest[..VERSION_OFFSET] != DELTA_MAGIC {
            return Err(malformed(pos, format!("magic {:?} is not KLVD", &rest[..4])));
        }
        let version = u32_at(VERSION_OFFSET);
        if version == 0 || version > DELTA_VERSION {
            return Err(Error::UnsupportedFormat {
                path: path.to_path_buf(),
                found: version,
                supported: DELTA_VERSION,
            });
        }
        let record_generation = u64_at(GENERATION_OFFSET);
        if record_generation != generation {
            if pos == 0 && record_generation < generation {
                return Ok(Replayed { stale: true, ..out });
            }
            return Err(malformed(
                pos + GENERATION_OFFSET,
                format!("delta of generation {record_generation} after records of generation {generation}"),
            ));
        }
        let sequence = u64_at(SEQUENCE_OFFSET);
        if sequence != out.records + 1 {
            return Err(malformed(
                pos + SEQUENCE_OFFSET,
                format!("delta sequence {sequence} where {} was next", out.records + 1),
            ));
        }
        let len = u64_at(LENGTH_OFFSET);
        let Some(body) = usize::try_from(len).ok().and_then(|l| rest.get(HEADER_LEN..HEADER_LEN.checked_add(l)?))
        else {
            break; // torn: the body was cut short
        };
        let end = pos + HEADER_LEN + body.len();
        let (expected, found) = (u32_at(BODY_CRC_OFFSET), crc32fast::hash(body));
        if expected != found {
            if end == buf.len() {
                break; // torn: the last record's body was not all written
            }
            return Err(bad(pos + HEADER_LEN, Corruption::ChecksumMismatch { expected, found }));
        }
        let body: Body = serde_json::from_slice(body)
            .map_err(|e| malformed(pos + HEADER_LEN + e.column(), format!("delta body: {e}")))?;
        apply(snap, body);
        out.records += 1;
        pos = end;
        out.valid_len = pos as u64;
    }
    Ok(out)
}

#[cfg(test)]
#[path = "delta_tests.rs"]
mod tests;
