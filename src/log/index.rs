//! The sparse indexes of a segment: offset → byte position (`.index`) and timestamp → offset
//! (`.timeindex`). Both are kept in memory and appended to their files; both can be rebuilt from the
//! log, so a damaged index file is replaced, never trusted.

/// `.index` entry: 8 bytes, `relative_offset u32 LE`, `position u32 LE`. The batch at `position`
/// has base offset `segment base + relative_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    pub relative_offset: u32,
    pub position: u32,
}

/// `.timeindex` entry: 16 bytes, `timestamp i64 LE`, `relative_offset u32 LE`, then `crc u32 LE`, the
/// CRC-32 of the first 12 bytes. Every record in the segment up to the end of the batch at
/// `relative_offset` has a timestamp `<= timestamp`; timestamps of successive entries strictly
/// increase. Unlike an offset entry, which a read checks against the batch it points at, a time entry
/// makes a claim about every batch before it, which no cheap check of the log can confirm: damage
/// that keeps the entries in order would make `offset_for_timestamp` skip records. Hence the CRC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    pub timestamp: i64,
    pub relative_offset: u32,
}

pub(crate) const OFFSET_ENTRY_LEN: usize = 8;
pub(crate) const TIME_ENTRY_LEN: usize = 16;

impl OffsetEntry {
    pub fn encode(&self) -> [u8; OFFSET_ENTRY_LEN] {
        let mut b = [0; OFFSET_ENTRY_LEN];
        b[..4].copy_from_slice(&self.relative_offset.to_le_bytes());
        b[4..].copy_from_slice(&self.position.to_le_bytes());
        b
    }
}

impl TimeEntry {
    pub fn encode(&self) -> [u8; TIME_ENTRY_LEN] {
        let mut b = [0; TIME_ENTRY_LEN];
        b[..8].copy_from_slice(&self.timestamp.to_le_bytes());
        b[8..12].copy_from_slice(&self.relative_offset.to_le_bytes());
        let crc = crc32fast::hash(&b[..12]);
        b[12..].copy_from_slice(&crc.to_le_bytes());
        b
    }
}

/// Decodes an `.index` file, checking that entries strictly increase and point inside a log of
/// `log_len` bytes. `Err` says what is wrong (the caller rebuilds the index from the log).
pub(crate) fn decode_offsets(b: &[u8], log_len: u64) -> Result<Vec<OffsetEntry>, String> {
    if !b.len().is_multiple_of(OFFSET_ENTRY_LEN) {
        return Err(format!("length {} is not a multiple of {OFFSET_ENTRY_LEN}", b.len()));
    }
    let mut out: Vec<OffsetEntry> = Vec::with_capacity(b.len() / OFFSET_ENTRY_LEN);
    for c in b.chunks_exact(OFFSET_ENTRY_LEN) {
        let e = OffsetEntry {
            relative_offset: u32::from_le_bytes(c[..4].try_into().unwrap()),
            position: u32::from_le_bytes(c[4..].try_into().unwrap()),
        };
        if e.position as u64 >= log_len {
            return Err(format!("entry points at byte {} of a {log_len}-byte log", e.position));
        }
        if let Some(p) = out.last() {
            if e.relative_offset <= p.relative_offset || e.position <= p.position {
                return Err(format!("entry {} does not increase", out.len()));
            }
        } else if e.position != 0 {
            return Err("first entry is not at byte 0".into());
        }
        out.push(e);
    }
    Ok(out)
}

/// Decodes a `.timeindex` file, checking each entry's CRC, that timestamps strictly increase,
/// offsets never decrease, and offsets are below `relative_end` (the segment's next offset minus its
/// base).
pub(crate) fn decode_times(b: &[u8], relative_end: u64) -> Result<Vec<TimeEntry>, String> {
    if !b.len().is_multiple_of(TIME_ENTRY_LEN) {
        return Err(format!("length {} is not a multiple of {TIME_ENTRY_LEN}", b.len()));
    }
    let mut out: Vec<TimeEntry> = Vec::with_capacity(b.len() / TIME_ENTRY_LEN);
    for c in b.chunks_exact(TIME_ENTRY_LEN) {
        let (expected, found) = (u32::from_le_bytes(c[12..].try_into().unwrap()), crc32fast::hash(&c[..12]));
        if expected != found {
            return Err(format!("entry {} checksum: expected {expected:#010x}, found {found:#010x}", out.len()));
        }
        let e = TimeEntry {
            timestamp: i64::from_le_bytes(c[..8].try_into().unwrap()),
            relative_offset: u32::from_le_bytes(c[8..12].try_into().unwrap()),
        };
        if e.relative_offset as u64 >= relative_end {
            return Err(format!("entry offset {} beyond the segment", e.relative_offset));
        }
        if let Some(p) = out.last() {
            if e.timestamp <= p.timestamp || e.relative_offset < p.relative_offset {
                return Err(format!("entry {} does not increase", out.len()));
            }
        }
        out.push(e);
    }
    Ok(out)
}

/// The position to start scanning from to find `relative_offset`: the last entry at or before it,
/// as `(position, relative offset of the batch there)`; `(0, 0)` when there is none.
pub(crate) fn lookup_offset(entries: &[OffsetEntry], relative_offset: u64) -> (u32, u32) {
    let i = entries.partition_point(|e| e.relative_offset as u64 <= relative_offset);
    if i == 0 {
        (0, 0)
    } else {
        (entries[i - 1].position, entries[i - 1].relative_offset)
    }
}

/// The relative offset to start scanning from to find the first record with a timestamp `>= ts`:
/// every batch up to and including the last entry below `ts` holds only older records.
pub(crate) fn lookup_time(entries: &[TimeEntry], ts: i64) -> Option<u32> {
    let i = entries.partition_point(|e| e.timestamp < ts);
    if i == 0 {
        None
    } else {
        Some(entries[i - 1].relative_offset)
    }
}

/// Both indexes of one segment, in memory.
#[derive(Debug, Default, Clone)]
pub(crate) struct Indexes {
    pub offsets: Vec<OffsetEntry>,
    pub times: Vec<TimeEntry>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_validation() {
        let entries =
            [OffsetEntry { relative_offset: 0, position: 0 }, OffsetEntry { relative_offset: 10, position: 4100 }];
        let bytes: Vec<u8> = entries.iter().flat_map(|e| e.encode()).collect();
        assert_eq!(decode_offsets(&bytes, 5000).unwrap(), entries);
        assert!(decode_offsets(&bytes, 4100).is_err(), "beyond the log");
        assert!(decode_offsets(&bytes[..7], 5000).is_err(), "torn entry");
        let swapped: Vec<u8> = entries.iter().rev().flat_map(|e| e.encode()).collect();
        assert!(decode_offsets(&swapped, 5000).is_err(), "not increasing");
        assert_eq!(lookup_offset(&entries, 0), (0, 0));
        assert_eq!(lookup_offset(&entries, 9), (0, 0));
        assert_eq!(lookup_offset(&entries, 10), (4100, 10));
        assert_eq!(lookup_offset(&entries, 99), (4100, 10));

        let times =
            [TimeEntry { timestamp: 100, relative_offset: 0 }, TimeEntry { timestamp: 200, relative_offset: 5 }];
        let bytes: Vec<u8> = times.iter().flat_map(|e| e.encode()).collect();
        assert_eq!(decode_times(&bytes, 6).unwrap(), times);
        assert!(decode_times(&bytes, 5).is_err());
        assert!(decode_times(&bytes[..TIME_ENTRY_LEN + 12], 6).is_err(), "torn entry");
        // Any changed byte of an entry (here: damage that keeps the entries in order) is detected.
        for byte in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[byte] ^= 0x04;
            let err = decode_times(&damaged, 6).unwrap_err();
            assert!(err.contains("checksum"), "byte {byte}: {err}");
        }
        assert_eq!(lookup_time(&times, 50), None);
        assert_eq!(lookup_time(&times, 100), None);
        assert_eq!(lookup_time(&times, 150), Some(0));
        assert_eq!(lookup_time(&times, 250), Some(5));
    }
}
