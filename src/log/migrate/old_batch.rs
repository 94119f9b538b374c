//! A reader of the batch header of format versions 1 and 2 (kappalog's own layout, before the
//! segments became Kafka RecordBatch v2), kept only for `kappalog migrate`. All little-endian:
//!
//! ```text
//! 0  length            u32  bytes of the whole batch, header included
//! 4  crc               u32  CRC-32 (IEEE) of bytes [8, length)
//! 8  version           u8   1
//! 9  attributes        u16  bit 0: timestamps are log-append time; other bits zero
//! 11 base_offset       u64
//! 19 last_offset_delta u32  last offset = base_offset + last_offset_delta
//! 23 record_count      u32  >= 1
//! 27 first_timestamp   i64  record timestamps are deltas from this
//! 35 max_timestamp     i64
//! 43 records           record_count records (Kafka v2 record encoding, as in format 3)
//! ```

use crate::config::{BATCH_BYTES_MAX, BATCH_RECORDS_MAX};
use crate::error::Corruption;

/// Bytes of an old batch header.
pub(crate) const HEADER_LEN: usize = 43;
const VERSION: u8 = 1;
const RECORD_LEN_MIN: usize = 7;
/// Attribute bit 0 of the old header.
pub(crate) const LOG_APPEND_TIME: u16 = 1;

/// An old batch header, parsed and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OldHeader {
    pub length: u32,
    pub crc: u32,
    pub attributes: u16,
    pub base_offset: u64,
    pub last_offset_delta: u32,
    pub record_count: u32,
    pub first_timestamp: i64,
    pub max_timestamp: i64,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

impl OldHeader {
    /// Parses the header at the start of `b`: `Ok(None)` when `b` is shorter than a header.
    pub fn parse(b: &[u8]) -> Result<Option<OldHeader>, Corruption> {
        if b.len() < HEADER_LEN {
            return Ok(None);
        }
        let bad = |s: String| Err(Corruption::Malformed(s));
        let h = OldHeader {
            length: u32_at(b, 0),
            crc: u32_at(b, 4),
            attributes: u16::from_le_bytes([b[9], b[10]]),
            base_offset: u64_at(b, 11),
            last_offset_delta: u32_at(b, 19),
            record_count: u32_at(b, 23),
            first_timestamp: u64_at(b, 27) as i64,
            max_timestamp: u64_at(b, 35) as i64,
        };
        if b[8] != VERSION {
            return bad(format!("format-2 batch version {} (expected {VERSION})", b[8]));
        }
        let len = h.length as usize;
        if len < HEADER_LEN + RECORD_LEN_MIN || h.length > BATCH_BYTES_MAX {
            return bad(format!("format-2 batch length {}", h.length));
        }
        if h.attributes & !LOG_APPEND_TIME != 0 {
            return bad(format!("unknown format-2 batch attributes {:#x}", h.attributes));
        }
        if h.record_count == 0
            || h.record_count > BATCH_RECORDS_MAX
            || h.record_count as u64 > h.last_offset_delta as u64 + 1
            || (h.record_count as usize) * RECORD_LEN_MIN > len - HEADER_LEN
        {
            return bad(format!("record count {} (last offset delta {})", h.record_count, h.last_offset_delta));
        }
        if h.base_offset.checked_add(h.last_offset_delta as u64).is_none_or(|o| o >= u64::MAX / 2) {
            return bad(format!("base offset {}", h.base_offset));
        }
        Ok(Some(h))
    }

    pub fn last_offset(&self) -> u64 {
        self.base_offset + self.last_offset_delta as u64
    }

    pub fn len(&self) -> usize {
        self.length as usize
    }

    /// Checks the CRC-32 of the whole batch `b` (`b.len() == self.len()`).
    pub fn verify(&self, b: &[u8]) -> Result<(), Corruption> {
        let found = crc32fast::hash(&b[8..]);
        match found == self.crc {
            true => Ok(()),
            false => Err(Corruption::ChecksumMismatch { expected: self.crc, found }),
        }
    }
}
