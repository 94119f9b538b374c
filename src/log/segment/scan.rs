//! The checking scan of a log file: batch by batch, lengths, offsets and CRCs, telling a torn
//! tail (truncated by recovery) from corruption (reported), and rebuilding the indexes.

use super::IndexCursor;
use crate::error::Corruption;
use crate::log::batch::{self, BatchHeader};
use crate::log::index::Indexes;

/// What a scan of a log file found.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// End of the last valid batch: everything after it is a torn tail.
    pub valid_len: u64,
    /// Offset after the last valid batch, if any.
    pub next_offset: Option<u64>,
    pub max_timestamp: Option<i64>,
    pub indexes: Indexes,
    /// The first bad batch that valid batches follow: corruption, not a torn tail.
    pub corruption: Option<(u64, Corruption)>,
    /// Whether the bytes after `valid_len` were something other than a clean end.
    pub torn: bool,
}

/// Scans `data` (a whole log file) batch by batch, checking lengths, offsets and CRCs, and rebuilds
/// the indexes. A bad batch (including one whose length runs past the end of the file) followed by a
/// valid one is corruption: it is recorded and the scan goes on from the valid one. A bad or
/// incomplete batch with nothing valid after it is a torn tail: the scan stops.
pub(crate) fn scan(data: &[u8], base_offset: u64, index_interval: u32) -> Scan {
    let mut s = Scan::default();
    let mut cursor = IndexCursor::new();
    let mut expected = base_offset;
    let mut pos = 0usize;
    let mut force_entry = false;
    while pos < data.len() {
        match valid_batch_at(data, pos, expected) {
            Ok(h) => {
                if force_entry {
                    cursor.bytes_since_entry = u64::MAX;
                    force_entry = false;
                }
                cursor.position = pos as u64;
                let (oe, te) = cursor.entries_for(base_offset, &h, index_interval);
                s.indexes.offsets.extend(oe);
                s.indexes.times.extend(te);
                expected = h.next_offset();
                s.next_offset = Some(expected);
                pos += h.len();
                s.valid_len = pos as u64;
            }
            // A batch that runs past the end is a torn write only if nothing valid follows it:
            // a damaged length field in the middle of the file looks the same, and truncating
            // there would throw away every acknowledged batch after it.
            Err(tail) => match resync(data, pos + 1, expected) {
                Some(next) => {
                    if s.corruption.is_none() {
                        let detail = match tail {
                            TailKind::Bad(c) => c,
                            TailKind::Incomplete => Corruption::Malformed(format!(
                                "the batch length runs past the end of the file, yet a valid batch follows at byte {next}"
                            )),
                        };
                        s.corruption = Some((pos as u64, detail));
                    }
                    force_entry = true;
                    pos = next;
                }
                None => {
                    s.torn = true;
                    break;
                }
            },
        }
    }
    if let Some(next) = s.next_offset {
        s.max_timestamp = Some(cursor.max_timestamp);
        let last_rel = s.indexes.offsets.last().map_or(0, |e| e.relative_offset);
        let rel = (next - 1 - base_offset).max(last_rel as u64) as u32;
        s.indexes.times.extend(cursor.final_time_entry(rel));
    }
    s
}

pub(super) enum TailKind {
    /// The batch runs past the end of the data: the classic torn write.
    Incomplete,
    Bad(Corruption),
}

pub(super) fn valid_batch_at(data: &[u8], pos: usize, expected: u64) -> std::result::Result<BatchHeader, TailKind> {
    let h = match BatchHeader::parse(&data[pos..]) {
        Ok(Some(h)) => h,
        Ok(None) => return Err(TailKind::Incomplete),
        Err(c) => return Err(TailKind::Bad(c)),
    };
    if h.len() > data.len() - pos {
        return Err(TailKind::Incomplete);
    }
    batch::verify(&h, &data[pos..pos + h.len()]).map_err(TailKind::Bad)?;
    if h.base_offset < expected {
        return Err(TailKind::Bad(Corruption::Malformed(format!(
            "batch base offset {} is below the expected {expected}",
            h.base_offset
        ))));
    }
    Ok(h)
}

/// The first position at or after `from` where a whole valid batch starts.
fn resync(data: &[u8], from: usize, expected: u64) -> Option<usize> {
    let last = data.len().checked_sub(batch::HEADER_LEN)?;
    (from..=last).find(|&q| data[q + batch::MAGIC_OFFSET] == batch::MAGIC && valid_batch_at(data, q, expected).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::record;

    fn three_batches() -> (Vec<u8>, [usize; 3]) {
        let mut data = Vec::new();
        let mut starts = [0; 3];
        for (i, start) in starts.iter_mut().enumerate() {
            *start = data.len();
            let value = vec![b'v'; 100];
            let _ = batch::encode_to_vec(
                &mut data,
                10 + i as u64,
                0,
                (1_000, 1_000),
                std::iter::once(
                    record::RecordFields {
                        offset_delta: 0,
                        timestamp_delta: 0,
                        key: None,
                        value: Some(&value),
                        headers: &[],
                    }
                    .with_body_len(),
                ),
            );
        }
        (data, starts)
    }

    #[test]
    fn torn_tail_is_cut() {
        let (data, starts) = three_batches();
        let cut = &data[..data.len() - 5];
        let s = scan(cut, 10, 4096);
        assert!(s.torn && s.corruption.is_none());
        assert_eq!((s.valid_len, s.next_offset), (starts[2] as u64, Some(12)));
    }

    #[test]
    fn bad_length_in_the_middle_is_corruption_not_a_torn_tail() {
        let (mut data, starts) = three_batches();
        // The middle batch claims to run past the end of the log: valid data follows it.
        let huge = (data.len() as u32) * 2;
        data[starts[1] + 8..starts[1] + 12].copy_from_slice(&huge.to_be_bytes());
        let s = scan(&data, 10, 4096);
        assert!(!s.torn);
        assert_eq!((s.valid_len, s.next_offset), (data.len() as u64, Some(13)));
        assert!(matches!(s.corruption, Some((p, _)) if p == starts[1] as u64), "{:?}", s.corruption);
        // The batch after the damage is indexed, so reads past it do not cross the damage.
        assert_eq!(s.indexes.offsets.last().map(|e| e.position), Some(starts[2] as u32));
    }
}
