//! The checking scan of a log file: batch by batch, lengths, offsets and CRCs, telling a torn
//! tail (truncated by recovery) from corruption (reported), and rebuilding the indexes.

use super::IndexCursor;
use crate::error::Corruption;
use crate::log::batch::{self, BatchHeader};
use crate::log::index::{Indexes, OffsetEntry};

/// What a scan of a log file found.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// End of the last valid batch, or of the damaged bytes below the recovery point kept after
    /// it: everything after it is a torn tail.
    pub valid_len: u64,
    /// Offset after the last valid batch, if any.
    pub next_offset: Option<u64>,
    pub max_timestamp: Option<i64>,
    pub indexes: Indexes,
    /// The first invalid batch below the recovery point: corruption, not a torn tail.
    pub corruption: Option<(u64, Corruption)>,
    /// Whether the bytes after `valid_len` were something other than a clean end.
    pub torn: bool,
}

/// Scans `data` (a whole log file) batch by batch, checking lengths, offsets and CRCs, and rebuilds
/// the indexes. `recovery_position` is the byte position of the recovery point in this file
/// (`data.len()` or more for a sealed segment: all of it is durable); `hints` are offset index
/// entries of the file (possibly stale), used only below the recovery point.
///
/// At or above the recovery point, the first invalid batch ends the log: a torn tail (the scan
/// stops; nothing after it is ever looked at, so no bytes inside a record can become a batch).
/// Below it, an invalid batch is corruption: recorded, its bytes kept (never served), and the
/// scan goes on at the next batch boundary it can prove: the bad batch's own end, or an offset
/// index entry, when a chain of valid batches from there reaches the recovery point exactly; else
/// at the recovery point itself (a known boundary).
///
/// In an active segment (`recovery_position` below `u64::MAX`) batches follow each other with no
/// offset gap (only compaction, on sealed segments, leaves gaps), so each batch must start exactly
/// at the expected offset: the base offset is not covered by the CRC, and this is what checks it.
/// After damage below the recovery point, the next batch found may start further on.
pub(crate) fn scan(
    data: &[u8],
    base_offset: u64,
    index_interval: u32,
    recovery_position: u64,
    hints: &[OffsetEntry],
) -> Scan {
    let mut s = Scan::default();
    let contiguous = recovery_position != u64::MAX;
    let mut gap_allowed = !contiguous;
    let mut cursor = IndexCursor::new();
    let mut expected = base_offset;
    let mut pos = 0usize;
    let mut force_entry = false;
    let rp = usize::try_from(recovery_position).unwrap_or(usize::MAX);
    while pos < data.len() {
        match valid_batch_at(data, pos, expected, !gap_allowed) {
            Ok(h) => {
                gap_allowed = !contiguous;
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
            Err(_) if pos >= rp => {
                s.torn = true;
                break;
            }
            Err(tail) => {
                // Below the recovery point: damage to durable data.
                let parsed = BatchHeader::parse(&data[pos..]).ok().flatten();
                let next = resume_at(data, pos, parsed.as_ref(), expected, base_offset, rp, hints);
                if s.corruption.is_none() {
                    let detail = match tail {
                        TailKind::Bad(c) => c,
                        TailKind::Incomplete => Corruption::Malformed(format!(
                            "the batch runs past the end of the file, below the recovery point at byte {rp}"
                        )),
                    };
                    s.corruption = Some((pos as u64, detail));
                }
                // Offsets never go back: the damaged batch's, if its header still says them.
                if let Some(h) = parsed.filter(|h| h.base_offset >= expected) {
                    expected = h.next_offset();
                }
                force_entry = true;
                gap_allowed = true;
                if next > data.len() {
                    // The file ends below the recovery point: durable bytes are missing.
                    s.valid_len = data.len() as u64;
                    break;
                }
                pos = next;
                s.valid_len = pos as u64;
            }
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

/// Where a scan goes on after the invalid batch at `pos`, below the recovery point `rp`: the
/// batch's own end or an index entry's position, the first after `pos` from which valid batches
/// chain exactly to `rp`; else `rp`.
fn resume_at(
    data: &[u8],
    pos: usize,
    parsed: Option<&BatchHeader>,
    expected: u64,
    base_offset: u64,
    rp: usize,
    hints: &[OffsetEntry],
) -> usize {
    let own_end = parsed.map(|h| pos + h.len());
    let hinted = hints.iter().map(|e| e.position as usize);
    let mut candidates: Vec<usize> = own_end.into_iter().chain(hinted).filter(|&q| q > pos && q <= rp).collect();
    candidates.sort_unstable();
    candidates.dedup();
    let end = rp.min(data.len());
    for q in candidates {
        if q == end || chains_to(data, q, end, expected, base_offset, hints) {
            return q;
        }
    }
    rp
}

/// Whether valid batches from `q` follow each other up to `end` exactly (and, where an index
/// hint names `q`, the batch there has the hinted offset).
fn chains_to(data: &[u8], q: usize, end: usize, expected: u64, base_offset: u64, hints: &[OffsetEntry]) -> bool {
    if let Some(e) = hints.iter().find(|e| e.position as usize == q) {
        match BatchHeader::parse(&data[q..]) {
            Ok(Some(h)) if h.base_offset == base_offset + e.relative_offset as u64 => {}
            _ => return false,
        }
    }
    let (mut p, mut expected) = (q, expected);
    while p < end {
        match valid_batch_at(&data[..end], p, expected, false) {
            Ok(h) => {
                expected = h.next_offset();
                p += h.len();
            }
            Err(_) => return false,
        }
    }
    p == end
}

pub(super) enum TailKind {
    /// The batch runs past the end of the data: the classic torn write.
    Incomplete,
    Bad(Corruption),
}

/// The valid batch at `pos`: its header parses, it lies within `data`, its CRC matches, and its
/// base offset is `expected` (`exact`) or at least `expected`.
pub(super) fn valid_batch_at(
    data: &[u8],
    pos: usize,
    expected: u64,
    exact: bool,
) -> std::result::Result<BatchHeader, TailKind> {
    let h = match BatchHeader::parse(&data[pos..]) {
        Ok(Some(h)) => h,
        Ok(None) => return Err(TailKind::Incomplete),
        Err(c) => return Err(TailKind::Bad(c)),
    };
    if h.len() > data.len() - pos {
        return Err(TailKind::Incomplete);
    }
    batch::verify(&h, &data[pos..pos + h.len()]).map_err(TailKind::Bad)?;
    if h.base_offset < expected || (exact && h.base_offset != expected) {
        return Err(TailKind::Bad(Corruption::Malformed(format!(
            "batch base offset {} where {expected} was expected",
            h.base_offset
        ))));
    }
    Ok(h)
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
            one_record_batch(&mut data, 10 + i as u64, &[b'v'; 100]);
        }
        (data, starts)
    }

    /// Appends a batch at `base_offset` holding one record with `value`.
    fn one_record_batch(data: &mut Vec<u8>, base_offset: u64, value: &[u8]) {
        let _ = batch::encode_to_vec(
            data,
            base_offset,
            0,
            (1_000, 1_000),
            std::iter::once(
                record::RecordFields {
                    offset_delta: 0,
                    timestamp_delta: 0,
                    key: None,
                    value: Some(value),
                    headers: &[],
                }
                .with_body_len(),
            ),
        );
    }

    /// A record value that holds a whole valid batch (with the right offsets), as a crafted
    /// producer could send: the outer batch, then the inner one's bytes at `inner`.
    fn batch_in_a_value() -> (Vec<u8>, usize, usize) {
        let mut inner = Vec::new();
        one_record_batch(&mut inner, 11, &[b'v'; 40]);
        let mut data = Vec::new();
        one_record_batch(&mut data, 10, &inner);
        let at = data.windows(inner.len()).position(|w| w == &inner[..]).unwrap();
        let outer_len = data.len();
        (data, at, outer_len)
    }

    #[test]
    fn torn_tail_is_cut() {
        let (data, starts) = three_batches();
        let cut = &data[..data.len() - 5];
        let s = scan(cut, 10, 4096, 0, &[]);
        assert!(s.torn && s.corruption.is_none());
        assert_eq!((s.valid_len, s.next_offset), (starts[2] as u64, Some(12)));
    }

    /// Above the recovery point, a batch cut or damaged at any byte ends the log there, whatever
    /// follows (out-of-order writeback can leave a later batch whole): nothing after it is kept.
    #[test]
    fn above_the_recovery_point_the_first_bad_batch_ends_the_log() {
        let (data, starts) = three_batches();
        for rp in [0, starts[1] as u64] {
            for at in starts[1]..starts[2] {
                for damage in [0x01u8, 0xff] {
                    let mut d = data.clone();
                    d[at] ^= damage;
                    let s = scan(&d, 10, 4096, rp, &[]);
                    assert_eq!((s.valid_len, s.next_offset), (starts[1] as u64, Some(11)), "flip at {at}, rp {rp}");
                    assert!(s.torn && s.corruption.is_none(), "flip at {at}");
                }
            }
            for cut in starts[1]..data.len() {
                let s = scan(&data[..cut], 10, 4096, rp, &[]);
                let want = if cut < starts[2] { starts[1] } else { starts[2] };
                assert_eq!(s.valid_len, want as u64, "cut at {cut}");
                assert!(s.corruption.is_none());
            }
        }
    }

    #[test]
    fn below_the_recovery_point_a_bad_batch_is_corruption_and_the_rest_is_kept() {
        let (mut data, starts) = three_batches();
        let len = data.len();
        data[starts[1] + 70] ^= 0x10; // a record byte: the CRC fails, the length holds
        let s = scan(&data, 10, 4096, len as u64, &[]);
        assert!(!s.torn);
        assert_eq!((s.valid_len, s.next_offset), (len as u64, Some(13)));
        assert!(matches!(s.corruption, Some((p, Corruption::ChecksumMismatch { .. })) if p == starts[1] as u64));
        assert_eq!(s.indexes.offsets.last().map(|e| e.position), Some(starts[2] as u32));
    }

    /// A record value holding a valid batch never becomes a batch: damage to the outer batch's
    /// length makes the log end there above the recovery point, and below it the scan goes on at
    /// the recovery point, not at the batch inside the value.
    #[test]
    fn a_batch_inside_a_record_value_is_never_adopted() {
        let (mut data, inner_at, outer_len) = batch_in_a_value();
        assert!(valid_batch_at(&data, inner_at, 10, false).is_ok(), "the inner batch is whole and valid");
        data[8 + 2] ^= 0x40; // the outer batch's length
        let above = scan(&data, 10, 4096, 0, &[]);
        assert_eq!((above.valid_len, above.next_offset), (0, None));
        let below = scan(&data, 10, 4096, outer_len as u64, &[]);
        assert_eq!((below.valid_len, below.next_offset), (outer_len as u64, None));
        assert!(below.indexes.offsets.is_empty(), "{:?}", below.indexes.offsets);
        assert!(below.corruption.is_some());
    }

    #[test]
    fn bad_length_below_the_recovery_point_resumes_at_an_index_entry() {
        let (mut data, starts) = three_batches();
        let len = data.len() as u64;
        let huge = (data.len() as u32) * 2;
        data[starts[1] + 8..starts[1] + 12].copy_from_slice(&huge.to_be_bytes());
        let hints = [
            OffsetEntry { relative_offset: 0, position: 0 },
            OffsetEntry { relative_offset: 2, position: starts[2] as u32 },
        ];
        let s = scan(&data, 10, 4096, len, &hints);
        assert_eq!((s.valid_len, s.next_offset), (len, Some(13)));
        assert!(matches!(s.corruption, Some((p, _)) if p == starts[1] as u64));
        // Without the hint, the scan resumes at the recovery point.
        let s = scan(&data, 10, 4096, len, &[]);
        assert_eq!(s.valid_len, len);
        assert_eq!(s.next_offset, Some(11));
    }
}
