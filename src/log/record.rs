//! Records and their encoding inside a batch: Kafka's v2 record layout (zig-zag varints).

use bytes::Bytes;

/// A record header: an ordered name → bytes pair (names may repeat, as in Kafka). As in Kafka, a
/// value may be null (`None`), which is not the empty value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub key: String,
    pub value: Option<Bytes>,
}

impl Header {
    /// A header with a value.
    pub fn new(key: impl Into<String>, value: impl Into<Bytes>) -> Header {
        Header { key: key.into(), value: Some(value.into()) }
    }
    /// A header with a null value.
    pub fn null(key: impl Into<String>) -> Header {
        Header { key: key.into(), value: None }
    }
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
        self.headers.push(Header::new(key, value));
        self
    }
    /// Adds a header whose value is null (not empty).
    pub fn with_null_header(mut self, key: impl Into<String>) -> NewRecord {
        self.headers.push(Header::null(key));
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

impl<'a> RecordFields<'a> {
    /// The fields with their [`body_len`], as the batch encoder takes them.
    #[cfg(test)]
    pub(crate) fn with_body_len(self) -> (RecordFields<'a>, usize) {
        let body = body_len(&self);
        (self, body)
    }
}

// ---- varints (Kafka: zig-zag, LEB128) ----

/// Writes `v` (zig-zag, LEB128) at `b[p..]`; returns the position after it.
///
/// The encoder writes into a slice sized for the whole batch, with the position in a register:
/// no `Vec::push` per byte (whose length field is reloaded after every byte store, since a byte
/// store may alias it) and no staging buffer copied out (a wide load of bytes just stored one by one
/// stalls on store forwarding, which cost the encoder as much as its copies of the values).
#[inline(always)]
fn put_varlong(b: &mut [u8], mut p: usize, v: i64) -> usize {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        b[p] = (z as u8) | 0x80;
        p += 1;
        z >>= 7;
    }
    b[p] = z as u8;
    p + 1
}

/// Copies `s` to `b[p..]`; returns the position after it.
#[inline(always)]
fn put_slice(b: &mut [u8], p: usize, s: &[u8]) -> usize {
    b[p..p + s.len()].copy_from_slice(s);
    p + s.len()
}

#[inline(always)]
pub(crate) fn varlong_len(v: i64) -> usize {
    let z = ((v << 1) ^ (v >> 63)) as u64;
    // ceil(bits / 7) for bits in 1..=64, without a division: (bits * 9 + 64) / 64.
    let bits = 64 - (z | 1).leading_zeros() as usize;
    (bits * 9 + 64) >> 6
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
#[inline]
pub(crate) fn body_len(r: &RecordFields<'_>) -> usize {
    let mut n = 1 + varlong_len(r.timestamp_delta) + varlong_len(r.offset_delta as i64);
    n += varlong_len(opt_len(r.key)) + r.key.map_or(0, |k| k.len());
    n += varlong_len(opt_len(r.value)) + r.value.map_or(0, |v| v.len());
    n += varlong_len(r.headers.len() as i64);
    for h in r.headers {
        n += varlong_len(h.key.len() as i64) + h.key.len();
        n += varlong_len(opt_len(h.value.as_deref())) + h.value.as_ref().map_or(0, |v| v.len());
    }
    n
}

/// The full encoded size of a record whose body is `body` bytes (its length varint included).
pub(crate) fn encoded_len(body: usize) -> usize {
    varlong_len(body as i64) + body
}

/// Writes the record at the start of `b`, which has room for it, and returns its length
/// ([`encoded_len`]`(body)`); `body` is its [`body_len`] (the caller sized the batch with it).
#[inline]
pub(crate) fn encode(b: &mut [u8], r: &RecordFields<'_>, body: usize) -> usize {
    debug_assert_eq!(body, body_len(r));
    let mut p = put_varlong(b, 0, body as i64);
    let body_start = p;
    b[p] = 0; // attributes: zero, unused, as in Kafka
    p = put_varlong(b, p + 1, r.timestamp_delta);
    p = put_varlong(b, p, r.offset_delta as i64);
    for field in [r.key, r.value] {
        p = put_varlong(b, p, opt_len(field));
        if let Some(f) = field {
            p = put_slice(b, p, f);
        }
    }
    p = put_varlong(b, p, r.headers.len() as i64);
    for h in r.headers {
        p = put_varlong(b, p, h.key.len() as i64);
        p = put_slice(b, p, h.key.as_bytes());
        p = put_varlong(b, p, opt_len(h.value.as_deref()));
        if let Some(v) = &h.value {
            p = put_slice(b, p, v);
        }
    }
    debug_assert_eq!(p - body_start, body);
    p
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

/// A record borrowed from its batch's bytes: no copy, no reference count, no allocation. Given by
/// [`ReadBatch::for_each`](crate::log::ReadBatch::for_each); what views apply.
/// [`ReadBatch::to_record`](crate::log::ReadBatch::to_record) makes the owned [`Record`] that
/// [`Partition::read`](crate::Partition::read) returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    pub offset: u64,
    /// Milliseconds since the Unix epoch.
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

    /// The record's headers, in order: name and value (`None`: a null value, as in
    /// [`Record::headers`]).
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, Option<&'a [u8]>)> + 'a {
        let (headers, mut p) = (self.headers, 0);
        (0..self.header_count).map(move |_| {
            let name = field(headers, &mut p, "header name").ok().flatten().expect("checked by decode");
            let name = std::str::from_utf8(name).expect("checked by decode");
            let value = field(headers, &mut p, "header value").expect("checked by decode");
            (name, value)
        })
    }

    /// The owned record, its fields slices of `batch` (the bytes this record was decoded from).
    /// Inlined: it is the inner loop of every read.
    #[inline(always)]
    pub(crate) fn to_record(self, batch: &Bytes) -> Record {
        let share = |s: &[u8]| {
            let at = (s.as_ptr() as usize).wrapping_sub(batch.as_ptr() as usize);
            match at <= batch.len() && s.len() <= batch.len() - at {
                true => batch.slice(at..at + s.len()),
                // Not decoded from `batch` (a caller's mix-up of two batches): copied, not shared.
                false => Bytes::copy_from_slice(s),
            }
        };
        let mut headers = Vec::with_capacity(self.header_count);
        headers.extend(self.headers().map(|(name, value)| Header { key: name.to_string(), value: value.map(share) }));
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
/// reads (owned reads going through `decode` and `RecordRef::to_record` would do the work twice).
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
        let value = field(&mut p, "header value")?;
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

    fn put_varlong(out: &mut Vec<u8>, v: i64) {
        let mut b = [0; 10];
        let n = super::put_varlong(&mut b, 0, v);
        out.extend_from_slice(&b[..n]);
    }

    /// Encodes a record into a new buffer of exactly its length.
    fn encoded(r: &RecordFields<'_>) -> Vec<u8> {
        let body = body_len(r);
        let mut out = vec![0; encoded_len(body)];
        assert_eq!(encode(&mut out, r, body), out.len());
        out
    }

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
        let headers = vec![Header::new("h", Bytes::from_static(b"v")), Header::null("n"), Header::new("e", "")];
        let r = RecordFields { offset_delta: 7, timestamp_delta: -5, key: Some(b"k"), value: None, headers: &headers };
        let out = encoded(&r);
        let buf = Bytes::from(out.clone());
        let mut pos = 0;
        let rec = decode(&buf, &mut pos, 100, 1000).unwrap().to_record(&buf);
        assert_eq!(pos, buf.len());
        assert_eq!(rec.offset, 107);
        assert_eq!(rec.timestamp, 995);
        assert_eq!(rec.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(rec.value, None);
        assert_eq!(rec.headers, headers);
        assert_eq!(decode_shared(&buf, &mut 0, 100, 1000).unwrap(), rec, "both decoders: null is not empty");
        for cut in 0..out.len() {
            let buf = Bytes::from(out[..cut].to_vec());
            assert!(decode(&buf, &mut 0, 0, 0).is_err(), "cut at {cut}");
        }
    }

    proptest::proptest! {
        /// The encoder writes exactly `encoded_len` bytes, at the start of a buffer with or without
        /// room to spare after them (left as it was), and they decode to the fields given: every
        /// varint width (negative timestamp deltas, 10-byte zig-zags), null and empty keys,
        /// values and header values, many headers.
        #[test]
        fn encode_decode_roundtrip(
            offset_delta in proptest::prelude::any::<u32>(),
            timestamp_delta in proptest::prelude::any::<i64>(),
            key in proptest::option::of(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)),
            value in proptest::option::of(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..20_000)),
            headers in proptest::collection::vec(("[a-z]{0,40}", proptest::option::of(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200))), 0..8),
            spare in 0usize..100,
        ) {
            let headers: Vec<Header> =
                headers.into_iter().map(|(k, v)| Header { key: k, value: v.map(Bytes::from) }).collect();
            let r = RecordFields {
                offset_delta,
                timestamp_delta,
                key: key.as_deref(),
                value: value.as_deref(),
                headers: &headers,
            };
            let body = body_len(&r);
            let len = encoded_len(body);
            let mut out = vec![0xee; len + spare];
            proptest::prop_assert_eq!(encode(&mut out, &r, body), len);
            proptest::prop_assert!(out[len..].iter().all(|&b| b == 0xee));
            let buf = Bytes::from(out[..len].to_vec());
            let mut pos = 0;
            let rec = decode(&buf, &mut pos, 1_000, 0).expect("decodes").to_record(&buf);
            proptest::prop_assert_eq!(pos, buf.len());
            proptest::prop_assert_eq!(rec.offset, 1_000 + offset_delta as u64);
            proptest::prop_assert_eq!(rec.timestamp, timestamp_delta);
            proptest::prop_assert_eq!(rec.key.as_deref(), key.as_deref());
            proptest::prop_assert_eq!(rec.value.as_deref(), value.as_deref());
            proptest::prop_assert_eq!(rec.headers, headers);
        }
    }
}
