//! Offline inspection of segment files (for `kappalog dump`, tools and fuzzing).

use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::batch::{self, BatchHeader};
use super::record::Record;
use crate::error::{Corruption, Error, Result};

/// One batch as found in a segment file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchSummary {
    pub position: u64,
    pub length: u32,
    pub crc: u32,
    pub base_offset: u64,
    pub last_offset: u64,
    pub record_count: u32,
    pub first_timestamp: i64,
    pub max_timestamp: i64,
    pub log_append_time: bool,
    /// `partitionLeaderEpoch` (0 in batches kappalog writes).
    pub partition_leader_epoch: i32,
    /// Compression codec: `none`, `gzip`, `snappy`, `lz4` or `zstd`.
    pub compression: &'static str,
    /// `-1` when the batch has no producer.
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

/// What a walk over a segment file found: every valid batch up to the first bad one.
#[derive(Debug)]
pub struct SegmentReport {
    pub path: PathBuf,
    pub size_bytes: u64,
    pub batches: Vec<BatchSummary>,
    /// The first bad batch (checksum, length or record encoding), with its position.
    pub corruption: Option<Error>,
    /// Zero bytes after the last batch, to the end of the file: the zero tail of an active `sync`
    /// segment (a store that is open, or crashed and not yet recovered). Not corruption.
    pub zero_tail_bytes: u64,
}

fn summary(position: usize, h: &BatchHeader) -> BatchSummary {
    BatchSummary {
        position: position as u64,
        length: h.length,
        crc: h.crc,
        base_offset: h.base_offset,
        last_offset: h.last_offset(),
        record_count: h.record_count,
        first_timestamp: h.first_timestamp,
        max_timestamp: h.max_timestamp,
        log_append_time: h.log_append_time(),
        partition_leader_epoch: h.partition_leader_epoch,
        compression: crate::log::compression::codec_name(h.codec()),
        producer_id: h.producer.producer_id,
        producer_epoch: h.producer.producer_epoch,
        base_sequence: h.producer.base_sequence,
    }
}

/// Walks a `.log` file batch by batch, checking every CRC and decoding every record.
/// `records`, when given, receives every record of every valid batch.
pub fn inspect_segment(path: &Path, mut records: Option<&mut Vec<Record>>) -> Result<SegmentReport> {
    let data = Bytes::from(std::fs::read(path).map_err(|e| Error::io(path, e))?);
    let mut report = SegmentReport {
        path: path.to_path_buf(),
        size_bytes: data.len() as u64,
        batches: Vec::new(),
        corruption: None,
        zero_tail_bytes: 0,
    };
    let mut pos = 0;
    while pos < data.len() {
        if data[pos..].iter().all(|&b| b == 0) {
            report.zero_tail_bytes = (data.len() - pos) as u64;
            break;
        }
        let bad = |c: Corruption| Error::Corrupted { path: path.to_path_buf(), position: pos as u64, detail: c };
        let end = match BatchHeader::parse(&data[pos..]) {
            Ok(Some(h)) if h.len() <= data.len() - pos => pos + h.len(),
            Ok(_) => {
                report.corruption = Some(bad(Corruption::Malformed("incomplete batch at the end of the file".into())));
                break;
            }
            Err(c) => {
                report.corruption = Some(bad(c));
                break;
            }
        };
        match batch::decode_all(&data.slice(pos..end)) {
            Ok((h, recs)) => {
                report.batches.push(summary(pos, &h));
                if let Some(out) = records.as_deref_mut() {
                    out.extend(recs);
                }
            }
            Err(c) => {
                report.corruption = Some(bad(c));
                break;
            }
        }
        pos = end;
    }
    Ok(report)
}

/// Decodes one whole batch (exactly its bytes), checking its CRC and every record.
pub fn decode_batch(bytes: &[u8]) -> std::result::Result<Vec<Record>, Corruption> {
    batch::decode_all(&Bytes::copy_from_slice(bytes)).map(|(_, r)| r)
}
