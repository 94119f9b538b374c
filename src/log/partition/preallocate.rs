//! Preallocation at the active segment's end: the zero-filled tail that `sync` appends write
//! over, and blocks reserved ahead of other appends. Both are cut when the segment is sealed.

use super::{Partition, Writer};
use crate::error::{Error, Result};
use crate::log::io;

/// Before writing a group with no `sync` batch, the writer reserves the active segment's disk blocks
/// ahead of the log's end (`fallocate` with `FALLOC_FL_KEEP_SIZE`: the file's size, and so what
/// readers and recovery see, does not change) when the group would pass the reserved end: up to
/// [`RESERVE_AHEAD_GROUPS`] groups like it ahead, at least [`RESERVE_AHEAD_MIN`], at most this,
/// never past `segment_bytes`. Writes into reserved blocks skip the file system's block reservation
/// per page, which makes a large `write()` markedly cheaper on ext4. The blocks
/// left past the log's end are freed when the segment is sealed, at a clean shutdown, and by the
/// next open after a crash; until then an active segment holds at most this much unused.
const RESERVE_AHEAD_MAX: u64 = 8 * 1024 * 1024;
const RESERVE_AHEAD_MIN: u64 = 1024 * 1024;
const RESERVE_AHEAD_GROUPS: u64 = 8;

/// Under `sync`, the active segment's file is kept this far ahead of the log's end, zero-filled
/// (topped up when less than half of it is left). A group commit then writes over blocks that are
/// already allocated and a file size that does not change, so its `fdatasync` writes the data alone,
/// not the block allocation and the inode as well: much cheaper than an fsync that extends the
/// file, on ext4 (PostgreSQL zero-fills its WAL segments for the same reason). The tail is cut when
/// the segment is sealed and at a clean shutdown; after a crash, recovery cuts it as a torn tail.
const ZERO_TAIL_BYTES: u64 = 256 * 1024;

/// Only a group smaller than this tops the zero tail up. A big group's fsync is mostly its data, so
/// the allocation it saves is small, while zeroing ahead of every such group writes about a quarter
/// more, which makes large `sync` appends slower overall.
pub(super) const ZERO_TAIL_GROUP_BYTES_MAX: u64 = ZERO_TAIL_BYTES / 4;

impl Partition {
    /// Keeps a zero-filled tail of about [`ZERO_TAIL_BYTES`] after the log's end (not past the roll
    /// point). Only bytes after the end are written. Best effort: the tail only makes fsyncs
    /// cheaper, so a failure to write it (a full disk) is logged, not an append's error.
    pub(super) fn top_up_zero_tail(w: &mut Writer) {
        let end = w.cursor.position;
        if w.file_len >= end + ZERO_TAIL_BYTES / 2 {
            return;
        }
        let target = (end + ZERO_TAIL_BYTES).next_multiple_of(4096).min(w.segment_bytes.max(end));
        if target <= w.file_len {
            return;
        }
        match io::write_zeros(&w.files.log, w.file_len, target) {
            Ok(()) => w.file_len = target,
            Err(e) => {
                tracing::warn!(path = %w.segment.log_path.display(), error = %e, "cannot zero-fill ahead of the log")
            }
        }
    }

    /// Reserves the active segment's blocks ahead of a group of `group_bytes` about to be written
    /// at the log's end, if it would pass the reserved end (see [`RESERVE_AHEAD_MAX`]). Best effort:
    /// where the file system cannot (or the disk is full), appends go on without, and this segment
    /// does not try again.
    pub(super) fn reserve_ahead(w: &mut Writer, group_bytes: u64) {
        let end = w.cursor.position + group_bytes;
        if end <= w.reserved_to || end > w.segment_bytes {
            return;
        }
        let ahead = group_bytes.saturating_mul(RESERVE_AHEAD_GROUPS).clamp(RESERVE_AHEAD_MIN, RESERVE_AHEAD_MAX);
        let from = w.reserved_to.max(w.cursor.position);
        let to = (end + ahead).min(w.segment_bytes);
        match io::reserve(&w.files.log, from, to) {
            Ok(()) => w.reserved_to = to,
            Err(e) => {
                tracing::debug!(path = %w.segment.log_path.display(), error = %e, "cannot reserve blocks ahead of the log");
                w.reserved_to = w.segment_bytes;
            }
        }
    }

    /// Cuts the active segment's file where its log ends: its zero-filled tail and the blocks
    /// reserved past it (a `set_len` to the size it has frees those). Returns `true` if the file's
    /// size changed. Does not fsync: the caller does (a size change is part of what `fdatasync`
    /// writes; freed reserved blocks need no fsync).
    pub(super) fn cut_tail(w: &mut Writer) -> Result<bool> {
        let end = w.cursor.position;
        if w.file_len <= end && w.reserved_to <= end {
            return Ok(false);
        }
        w.files.log.set_len(end).map_err(|e| Error::io(&w.segment.log_path, e))?;
        let resized = w.file_len > end;
        (w.file_len, w.reserved_to) = (end, end);
        Ok(resized)
    }

    /// At a clean shutdown, after [`flush`](Self::flush): cuts the active segment's file at its
    /// log's end ([`cut_tail`](Self::cut_tail)) and fsyncs a new size, so that the next open finds
    /// the log's end at the file's.
    pub(crate) fn cut_tail_for_close(&self) -> Result<()> {
        let mut w = self.inner.writer.lock();
        match Self::cut_tail(&mut w)? {
            true => io::sync_data(&w.files.log, &w.segment.log_path, None),
            false => Ok(()),
        }
    }
}
