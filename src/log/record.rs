//! Records and their encoding inside a batch: Kafka's v2 record layout (zig-zag varints).

use bytes::Bytes;

/// A record header: an ordered name → bytes pair (names may repeat, as in Kafka).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub key: String,
    pub value: Bytes,
}

/// A record read from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub offset: u64,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    pub key: Option<Bytes>,
    /// `None` is a tombstone.
    pub value: Option<Bytes>,
    pub headers: Vec<Header>,
}

/// A record to append. The log assigns its offset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewRecord {
    pub key: Option<Bytes>,
    /// `None` is a tombstone.
    pub value: Option<Bytes>,
    pub headers: Vec<Header>,
    /// The producer's timestamp; `None` takes the append time.
    pub timestamp: Option<i64>,
    /// An explicit partition; `None` lets the topic's partitioner choose.
    pub partition: Option<u32>,
}

impl NewRecord {
    /// A record with a value and no key.
    pub fn new(value: impl Into<Bytes>) -> NewRecord {
        NewRecord { value: Some(value.into()), ..NewRecord::default() }
    }
    /// A keyed record.
    pub fn keyed(key: impl Into<Bytes>, value: impl Into<Bytes>) -> NewRecord {
        NewRecord { key: Some(key.into()), value: Some(value.into()), ..NewRecord::default() }
    }
    /// A tombstone for `key`.
    pub fn tombstone(key: impl Into<Bytes>) -> NewRecord {
        NewRecord { key: Some(key.into()), ..NewRecord::default() }
    }
    pub fn with_header(mut self, key: impl Into<String>, value: impl Into<Bytes>) -> NewRecord {
        self.headers.push(Header { key: key.into(), value: value.into() });
        self
    }
    pub fn with_timestamp(mut self, timestamp: i64) -> NewRecord {
        self.timestamp = Some(timestamp);
        self
    }
    pub fn with_partition(mut self, partition: u32) -> NewRecord {
        self.partition = Some(partition);
        self
    }
}

/// What the encoder needs of one record.
pub(crate) struct RecordFields<'a> {
    pub offset_delta: u32,
    pub timestamp_delta: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: &'a [Header],
}

// ---- varints (Kafka: zig-zag, LEB128) ----

pub(crate) fn put_varlong(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

pub(crate) fn varlong_len(v: i64) -> usize {
    let z = ((v << 1) ^ (v >> 63)) as u64;
    (64 - (z | 1).leading_zeros() as usize).div_ceil(7)
}

/// Decodes a zig-zag varlong at `*pos`; `None` when truncated or longer than 10 bytes.
#[inline(always)]
pub(crate) fn get_varlong(buf: &[u8], pos: &mut usize) -> Option<i64> {
    // Fast path: most varints of a record (attributes aside, every field but the lengths of big
    // values) fit in one byte.
    let first = *buf.get(*pos)?;
    if first < 0x80 {
        *pos += 1;
        return Some(((first >> 1) as i64) ^ -((first & 1) as i64));
    }
    let mut z: u64 = 0;
    let mut shift = 0;
    loop {
        let b = *buf.get(*pos)?;
        *pos += 1;
        if shift == 63 && b > 1 {
            return None;
        }
        z |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            return Some(((z >> 1) as i64) ^ -((z & 1) as i64));
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
}

fn opt_len(b: Option<&[u8]>) -> i64 {
    b.map_or(-1, |b| b.len() as i64)
}

/// The size of a record's body (everything after its length varint).
pub(crate) fn body_len(r: &RecordFields<'_>) -> usize {
    let mut n = 1 + varlong_len(r.timestamp_delta) + varlong_len(r.offset_delta as i64);
    n += varlong_len(opt_len(r.key)) + r.key.map_or(0, |k| k.len());
    n += varlong_len(opt_len(r.value)) + r.value.map_or(0, |v| v.len());
    n += varlong_len(r.headers.len() as i64);
    for h in r.headers {
        n += varlong_len(h.key.len() as i64) + h.key.len();
        n += varlong_len(h.value.len() as i64) + h.value.len();
    }
    n
}

/// The full encoded size of a record (its length varint included).
pub(crate) fn encoded_len(r: &RecordFields<'_>) -> usize {
    let body = body_len(r);
    varlong_len(body as i64) + body
}

pub(crate) fn encode(out: &mut Vec<u8>, r: &RecordFields<'_>) {
    let body = body_len(r);
    put_varlong(out, body as i64);
    let start = out.len();
    out.push(0); // attributes: unused, as in Kafka
    put_varlong(out, r.timestamp_delta);
    put_varlong(out, r.offset_delta as i64);
    for field in [r.key, r.value] {
        put_varlong(out, opt_len(field));
        if let Some(b) = field {
            out.extend_from_slice(b);
        }
    }
    put_varlong(out, r.headers.len() as i64);
    for h in r.headers {
        put_varlong(out, h.key.len() as i64);
        out.extend_from_slice(h.key.as_bytes());
        put_varlong(out, h.value.len() as i64);
        out.extend_from_slice(&h.value);
    }
    debug_assert_eq!(out.len() - start, body);
}

/// Decodes a length-prefixed field (`-1`: null) at `*p` of `body` (which ends the record).
#[inline(always)]
fn field<'a>(body: &'a [u8], p: &mut usize, what: &str) -> Result<Option<&'a [u8]>, String> {
    let n = get_varlong(body, p).ok_or_else(|| format!("{what} length varint"))?;
    if n == -1 {
        return Ok(None);
    }
    if n < 0 || n as usize > body.len() - *p {
        return Err(format!("{what} length {n} exceeds the record"));
    }
    let s = &body[*p..*p + n as usize];
    *p += n as usize;
    Ok(Some(s))
}

/// A record borrowed from its batch's bytes: no copy, no reference count, no allocation. What
/// views apply; [`RecordRef::to_record`] makes the owned (shared-slice) [`Record`] reads return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordRef<'a> {
    pub offset: u64,
    pub timestamp: i64,
    pub key: Option<&'a [u8]>,
    /// `None` is a tombstone.
    pub value: Option<&'a [u8]>,
    /// The encoded headers (already checked), and how many.
    headers: &'a [u8],
    header_count: usize,
}

impl<'a> RecordRef<'a> {
    /// A record without headers (for tests of what applies records).
    #[cfg(test)]
    pub(crate) fn plain(offset: u64, timestamp: i64, key: Option<&'a [u8]>, value: Option<&'a [u8]>) -> RecordRef<'a> {
        RecordRef { offset, timestamp, key, value, headers: &[], header_count: 0 }
    }

    /// The owned record, its fields slices of `batch` (the bytes this record was decoded from).
    /// Inlined: it is the inner loop of every read.
    #[inline(always)]
    pub(crate) fn to_record(self, batch: &Bytes) -> Record {
        let share = |s: &[u8]| {
            let at = s.as_ptr() as usize - batch.as_ptr() as usize;
            debug_assert!(at + s.len() <= batch.len(), "a field lies inside its batch");
            batch.slice(at..at + s.len())
        };
        let mut headers = Vec::with_capacity(self.header_count);
        let mut p = 0;
        for _ in 0..self.header_count {
            let name = field(self.headers, &mut p, "header name").ok().flatten().expect("checked by decode");
            let name = std::str::from_utf8(name).expect("checked by decode").to_string();
            let value = field(self.headers, &mut p, "header value").expect("checked by decode");
            headers.push(Header { key: name, value: value.map(share).unwrap_or_default() });
        }
        Record {
            offset: self.offset,
            timestamp: self.timestamp,
            key: self.key.map(share),
            value: self.value.map(share),
            headers,
        }
    }
}

/// Decodes one record at `*pos` of `b` (a batch's bytes). Errors name what was malformed.
/// Inlined: it is the inner loop of every read.
#[inline(always)]
pub(crate) fn decode<'a>(
    b: &'a [u8],
    pos: &mut usize,
    base_offset: u64,
    first_timestamp: i64,
) -> Result<RecordRef<'a>, String> {
    let len = get_varlong(b, pos).ok_or("record length varint")?;
    if len < 0 || len as usize > b.len() - *pos {
        return Err(format!("record length {len} exceeds the batch"));
    }
    let end = *pos + len as usize;
    let body = &b[..end];
    let mut p = *pos + 1; // attributes
    if p > end {
        return Err("record attributes missing".into());
    }
    let ts_delta = get_varlong(body, &mut p).ok_or("timestamp delta varint")?;
    let off_delta = get_varlong(body, &mut p).ok_or("offset delta varint")?;
    if !(0..=u32::MAX as i64).contains(&off_delta) {
        return Err(format!("offset delta {off_delta} out of range"));
    }
    let key = field(body, &mut p, "key")?;
    let value = field(body, &mut p, "value")?;
    let count = get_varlong(body, &mut p).ok_or("header count varint")?;
    if count < 0 || count as usize > end - p {
        return Err(format!("header count {count} out of range"));
    }
    let headers_start = p;
    for _ in 0..count {
        let name = field(body, &mut p, "header name")?.ok_or("null header name")?;
        std::str::from_utf8(name).map_err(|e| format!("header name is not UTF-8: {e}"))?;
        field(body, &mut p, "header value")?;
    }
    if p != end {
        return Err(format!("record has {} trailing bytes", end - p));
    }
    *pos = end;
    Ok(RecordRef {
        offset: base_offset + off_delta as u64,
        timestamp: first_timestamp.wrapping_add(ts_delta),
        key,
        value,
        headers: &body[headers_start..end],
        header_count: count as usize,
    })
}

/// Decodes a length-prefixed field (`-1`: null) at `*p`, which must end by `end`, as a shared slice.
#[inline(always)]
fn field_shared(buf: &Bytes, end: usize, p: &mut usize, what: &str) -> Result<Option<Bytes>, String> {
    let n = get_varlong(&buf[..end], p).ok_or_else(|| format!("{what} length varint"))?;
    if n == -1 {
        return Ok(None);
    }
    if n < 0 || n as usize > end - *p {
        return Err(format!("{what} length {n} exceeds the record"));
    }
    let s = buf.slice(*p..*p + n as usize);
    *p += n as usize;
    Ok(Some(s))
}

/// Decodes one record at `*pos` of `buf` (a batch's bytes, shared so that fields are zero-copy slices).
/// The same checks as [`decode`], which lends the fields instead: each is the inner loop of its
/// reads (going through `decode` and `RecordRef::to_record` made `Partition::read` a third slower).
/// Errors name what was malformed. Inlined: it is the inner loop of every read.
#[inline(always)]
pub(crate) fn decode_shared(
    buf: &Bytes,
    pos: &mut usize,
    base_offset: u64,
    first_timestamp: i64,
) -> Result<Record, String> {
    let b = &buf[..];
    let len = get_varlong(b, pos).ok_or("record length varint")?;
    if len < 0 || len as usize > b.len() - *pos {
        return Err(format!("record length {len} exceeds the batch"));
    }
    let end = *pos + len as usize;
    let body = &b[..end];
    let mut p = *pos + 1; // attributes
    if p > end {
        return Err("record attributes missing".into());
    }
    let ts_delta = get_varlong(body, &mut p).ok_or("timestamp delta varint")?;
    let off_delta = get_varlong(body, &mut p).ok_or("offset delta varint")?;
    if !(0..=u32::MAX as i64).contains(&off_delta) {
        return Err(format!("offset delta {off_delta} out of range"));
    }
    let field = |p: &mut usize, what: &str| field_shared(buf, end, p, what);
    let key = field(&mut p, "key")?;
    let value = field(&mut p, "value")?;
    let count = get_varlong(body, &mut p).ok_or("header count varint")?;
    if count < 0 || count as usize > end - p {
        return Err(format!("header count {count} out of range"));
    }
    let mut headers = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let name = field(&mut p, "header name")?.ok_or("null header name")?;
        let name = std::str::from_utf8(&name).map_err(|e| format!("header name is not UTF-8: {e}"))?.to_string();
        let value = field(&mut p, "header value")?.unwrap_or_default();
        headers.push(Header { key: name, value });
    }
    if p != end {
        return Err(format!("record has {} trailing bytes", end - p));
    }
    *pos = end;
    Ok(Record {
        offset: base_offset + off_delta as u64,
        timestamp: first_timestamp.wrapping_add(ts_delta),
        key,
        value,
        headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varlong_roundtrip() {
        for v in [0i64, 1, -1, 63, -64, 64, 300, -300, i32::MAX as i64, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            put_varlong(&mut out, v);
            assert_eq!(out.len(), varlong_len(v), "{v}");
            let mut pos = 0;
            assert_eq!(get_varlong(&out, &mut pos), Some(v));
            assert_eq!(pos, out.len());
        }
        // Kafka's zig-zag: -1 encodes as 0x01, 1 as 0x02.
        let mut out = Vec::new();
        put_varlong(&mut out, -1);
        put_varlong(&mut out, 1);
        assert_eq!(out, [1, 2]);
        let mut pos = 0;
        assert_eq!(get_varlong(&[0x80; 11], &mut pos), None);
    }

    #[test]
    fn record_roundtrip_and_truncation() {
        let headers = vec![Header { key: "h".into(), value: Bytes::from_static(b"v") }];
        let r = RecordFields { offset_delta: 7, timestamp_delta: -5, key: Some(b"k"), value: None, headers: &headers };
        let mut out = Vec::new();
        encode(&mut out, &r);
        assert_eq!(out.len(), encoded_len(&r));
        let buf = Bytes::from(out.clone());
        let mut pos = 0;
        let rec = decode(&buf, &mut pos, 100, 1000).unwrap().to_record(&buf);
        assert_eq!(pos, buf.len());
        assert_eq!(rec.offset, 107);
        assert_eq!(rec.timestamp, 995);
        assert_eq!(rec.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(rec.value, None);
        assert_eq!(rec.headers, headers);
        for cut in 0..out.len() {
            let buf = Bytes::from(out[..cut].to_vec());
            assert!(decode(&buf, &mut 0, 0, 0).is_err(), "cut at {cut}");
        }
    }
}
