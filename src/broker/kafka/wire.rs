//! The Kafka wire primitives: a bounded [`Reader`] over one request's bytes and a [`Writer`] for
//! responses.
//!
//! Every length or count read off the wire is checked against the bytes that remain before
//! anything is allocated for it: an array of `n` elements whose smallest encoding is `k` bytes
//! needs `n * k` bytes to follow, so an 8-byte request declaring two billion topics is an error
//! naming the field, not a 100 GiB allocation. Byte fields (records, keys, values) are slices of
//! the request's `Bytes`, never copies.

use bytes::{BufMut, Bytes, BytesMut};

/// A request that cannot be decoded; names the field that was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("{field}: the request ends before it ({needed} bytes needed, {remaining} remain)")]
    Truncated { field: &'static str, needed: usize, remaining: usize },
    #[error("{field}: invalid length {len}")]
    Length { field: &'static str, len: i64 },
    #[error("{field}: {count} elements cannot fit in the {remaining} bytes that remain")]
    Count { field: &'static str, count: usize, remaining: usize },
    #[error("{field}: not valid UTF-8")]
    Utf8 { field: &'static str },
    #[error("{field}: varint longer than its type")]
    Varint { field: &'static str },
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

pub type Result<T> = std::result::Result<T, Error>;

/// Reads one request. Positions only move forward; every read is bounded by what remains.
#[derive(Debug, Clone)]
pub struct Reader {
    buf: Bytes,
    pos: usize,
}

impl Reader {
    pub fn new(buf: Bytes) -> Reader {
        Reader { buf, pos: 0 }
    }
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    pub fn position(&self) -> usize {
        self.pos
    }
    fn take(&mut self, field: &'static str, n: usize) -> Result<&[u8]> {
        if n > self.remaining() {
            return Err(Error::Truncated { field, needed: n, remaining: self.remaining() });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N]> {
        let s = self.take(field, N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    pub fn i8(&mut self, field: &'static str) -> Result<i8> {
        Ok(self.array::<1>(field)?[0] as i8)
    }
    pub fn bool(&mut self, field: &'static str) -> Result<bool> {
        Ok(self.i8(field)? != 0)
    }
    pub fn i16(&mut self, field: &'static str) -> Result<i16> {
        Ok(i16::from_be_bytes(self.array(field)?))
    }
    pub fn i32(&mut self, field: &'static str) -> Result<i32> {
        Ok(i32::from_be_bytes(self.array(field)?))
    }
    pub fn i64(&mut self, field: &'static str) -> Result<i64> {
        Ok(i64::from_be_bytes(self.array(field)?))
    }
    pub fn u32(&mut self, field: &'static str) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }
    pub fn uuid(&mut self, field: &'static str) -> Result<[u8; 16]> {
        self.array(field)
    }
    /// An unsigned LEB128 varint (at most 5 bytes).
    pub fn uvarint(&mut self, field: &'static str) -> Result<u32> {
        let mut v: u64 = 0;
        for i in 0..5 {
            let b = self.array::<1>(field)?[0];
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return u32::try_from(v).map_err(|_| Error::Varint { field });
            }
        }
        Err(Error::Varint { field })
    }
    /// A zig-zag varint (i32).
    pub fn varint(&mut self, field: &'static str) -> Result<i32> {
        let z = self.uvarint(field)?;
        Ok(((z >> 1) as i32) ^ -((z & 1) as i32))
    }
    /// A zig-zag varlong (i64, at most 10 bytes).
    pub fn varlong(&mut self, field: &'static str) -> Result<i64> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let b = self.array::<1>(field)?[0];
            if i == 9 && b > 1 {
                return Err(Error::Varint { field });
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(((v >> 1) as i64) ^ -((v & 1) as i64));
            }
        }
        Err(Error::Varint { field })
    }
    /// `n` bytes shared with the request (no copy).
    pub fn bytes_n(&mut self, field: &'static str, n: usize) -> Result<Bytes> {
        if n > self.remaining() {
            return Err(Error::Truncated { field, needed: n, remaining: self.remaining() });
        }
        let b = self.buf.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(b)
    }
    fn utf8(field: &'static str, b: &[u8]) -> Result<String> {
        std::str::from_utf8(b).map(str::to_owned).map_err(|_| Error::Utf8 { field })
    }
    /// A nullable STRING (int16 length, -1 is null).
    pub fn nullable_string(&mut self, field: &'static str) -> Result<Option<String>> {
        let len = self.i16(field)?;
        match len {
            -1 => Ok(None),
            n if n < 0 => Err(Error::Length { field, len: n.into() }),
            n => Ok(Some(Self::utf8(field, self.take(field, n as usize)?)?)),
        }
    }
    /// A STRING (int16 length).
    pub fn string(&mut self, field: &'static str) -> Result<String> {
        self.nullable_string(field)?.ok_or(Error::Length { field, len: -1 })
    }
    /// A nullable COMPACT_STRING (uvarint length + 1, 0 is null).
    pub fn compact_nullable_string(&mut self, field: &'static str) -> Result<Option<String>> {
        match self.uvarint(field)? {
            0 => Ok(None),
            n => Ok(Some(Self::utf8(field, self.take(field, n as usize - 1)?)?)),
        }
    }
    pub fn compact_string(&mut self, field: &'static str) -> Result<String> {
        self.compact_nullable_string(field)?.ok_or(Error::Length { field, len: -1 })
    }
    /// A nullable BYTES or RECORDS field (int32 length, -1 is null), shared with the request.
    pub fn nullable_bytes(&mut self, field: &'static str) -> Result<Option<Bytes>> {
        match self.i32(field)? {
            -1 => Ok(None),
            n if n < 0 => Err(Error::Length { field, len: n.into() }),
            n => Ok(Some(self.bytes_n(field, n as usize)?)),
        }
    }
    pub fn bytes(&mut self, field: &'static str) -> Result<Bytes> {
        self.nullable_bytes(field)?.ok_or(Error::Length { field, len: -1 })
    }
    pub fn compact_nullable_bytes(&mut self, field: &'static str) -> Result<Option<Bytes>> {
        match self.uvarint(field)? {
            0 => Ok(None),
            n => Ok(Some(self.bytes_n(field, n as usize - 1)?)),
        }
    }
    fn bounded(&self, field: &'static str, count: usize, element_bytes_min: usize) -> Result<usize> {
        let need = count.saturating_mul(element_bytes_min.max(1));
        if need > self.remaining() {
            return Err(Error::Count { field, count, remaining: self.remaining() });
        }
        Ok(count)
    }
    /// A nullable ARRAY's count (int32, -1 is null), checked: `count * element_bytes_min` bytes
    /// must remain. The smallest encoding of every element is at least one byte, so this bounds
    /// any `Vec::with_capacity(count)` by the request's size.
    pub fn nullable_array_len(&mut self, field: &'static str, element_bytes_min: usize) -> Result<Option<usize>> {
        match self.i32(field)? {
            -1 => Ok(None),
            n if n < 0 => Err(Error::Length { field, len: n.into() }),
            n => self.bounded(field, n as usize, element_bytes_min).map(Some),
        }
    }
    pub fn array_len(&mut self, field: &'static str, element_bytes_min: usize) -> Result<usize> {
        Ok(self.nullable_array_len(field, element_bytes_min)?.unwrap_or(0))
    }
    /// A COMPACT_ARRAY's count (uvarint count + 1, 0 is null), checked as [`array_len`](Self::array_len).
    pub fn compact_nullable_array_len(
        &mut self,
        field: &'static str,
        element_bytes_min: usize,
    ) -> Result<Option<usize>> {
        match self.uvarint(field)? {
            0 => Ok(None),
            n => self.bounded(field, n as usize - 1, element_bytes_min).map(Some),
        }
    }
    pub fn compact_array_len(&mut self, field: &'static str, element_bytes_min: usize) -> Result<usize> {
        Ok(self.compact_nullable_array_len(field, element_bytes_min)?.unwrap_or(0))
    }
    /// Skips a tagged-field section (flexible versions): no tag kappalog reads is defined yet.
    pub fn skip_tagged_fields(&mut self, field: &'static str) -> Result<()> {
        let n = self.uvarint(field)?;
        self.bounded(field, n as usize, 2)?;
        for _ in 0..n {
            self.uvarint(field)?;
            let len = self.uvarint(field)? as usize;
            self.take(field, len)?;
        }
        Ok(())
    }
}

/// Builds a response: small fields into a buffer, large byte fields (fetched batches) kept as
/// the shared `Bytes` they are, so a fetch response is written without copying its records.
#[derive(Debug, Default)]
pub struct Writer {
    buf: BytesMut,
    chunks: Vec<Bytes>,
    len: usize,
}

impl Writer {
    pub fn new() -> Writer {
        Writer::default()
    }
    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len + self.buf.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn i8(&mut self, v: i8) -> &mut Self {
        self.buf.put_i8(v);
        self
    }
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.i8(v as i8)
    }
    pub fn i16(&mut self, v: i16) -> &mut Self {
        self.buf.put_i16(v);
        self
    }
    pub fn i32(&mut self, v: i32) -> &mut Self {
        self.buf.put_i32(v);
        self
    }
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.buf.put_i64(v);
        self
    }
    pub fn uuid(&mut self, v: [u8; 16]) -> &mut Self {
        self.buf.put_slice(&v);
        self
    }
    pub fn uvarint(&mut self, mut v: u32) -> &mut Self {
        while v >= 0x80 {
            self.buf.put_u8((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.put_u8(v as u8);
        self
    }
    /// A STRING (int16 length); longer strings are cut at 32767 bytes (on a character boundary).
    pub fn string(&mut self, s: &str) -> &mut Self {
        let s = cut(s, i16::MAX as usize);
        self.buf.put_i16(s.len() as i16);
        self.buf.put_slice(s.as_bytes());
        self
    }
    pub fn nullable_string(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            None => self.i16(-1),
            Some(s) => self.string(s),
        }
    }
    pub fn compact_string(&mut self, s: &str) -> &mut Self {
        self.uvarint(s.len() as u32 + 1);
        self.buf.put_slice(s.as_bytes());
        self
    }
    pub fn compact_nullable_string(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            None => self.uvarint(0),
            Some(s) => self.compact_string(s),
        }
    }
    /// A nullable BYTES (int32 length), copied: for small values.
    pub fn nullable_bytes(&mut self, b: Option<&[u8]>) -> &mut Self {
        match b {
            None => self.i32(-1),
            Some(b) => {
                self.buf.put_i32(b.len() as i32);
                self.buf.put_slice(b);
                self
            }
        }
    }
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.nullable_bytes(Some(b))
    }
    pub fn compact_nullable_bytes(&mut self, b: Option<&[u8]>) -> &mut Self {
        match b {
            None => self.uvarint(0),
            Some(b) => {
                self.uvarint(b.len() as u32 + 1);
                self.buf.put_slice(b);
                self
            }
        }
    }
    /// Appends `b` without copying it.
    pub fn shared(&mut self, b: Bytes) -> &mut Self {
        if b.len() < 512 {
            self.buf.put_slice(&b);
            return self;
        }
        let head = self.buf.split().freeze();
        self.len += head.len() + b.len();
        if !head.is_empty() {
            self.chunks.push(head);
        }
        self.chunks.push(b);
        self
    }
    pub fn array_len(&mut self, n: usize) -> &mut Self {
        self.i32(n as i32)
    }
    pub fn compact_array_len(&mut self, n: usize) -> &mut Self {
        self.uvarint(n as u32 + 1)
    }
    /// An empty tagged-field section: kappalog never sends tagged fields (clients built on
    /// librdkafka before 2.2 mis-skip them).
    pub fn no_tagged_fields(&mut self) -> &mut Self {
        self.uvarint(0)
    }
    /// The response as chunks, in order.
    pub fn finish(mut self) -> Vec<Bytes> {
        if !self.buf.is_empty() {
            self.chunks.push(self.buf.split().freeze());
        }
        self.chunks
    }
}

fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_bounded_by_the_bytes_that_remain() {
        let mut r = Reader::new(Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0]));
        let e = r.array_len("topics", 2).unwrap_err();
        assert!(matches!(e, Error::Count { field: "topics", count: 0x7fff_ffff, remaining: 4 }), "{e}");
        let mut r = Reader::new(Bytes::from_static(&[0x7f, 0xff, b'a']));
        assert!(matches!(r.string("client_id"), Err(Error::Truncated { field: "client_id", .. })));
        let mut r = Reader::new(Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x0f]));
        assert_eq!(r.uvarint("n").unwrap(), u32::MAX);
        let mut r = Reader::new(Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x7f]));
        assert!(matches!(r.uvarint("n"), Err(Error::Varint { .. })));
    }

    #[test]
    fn varints_round_trip() {
        for v in [0i64, 1, -1, 63, -64, 64, 300, i32::MAX as i64, i64::MIN, i64::MAX] {
            let mut w = BytesMut::new();
            let mut z = ((v << 1) ^ (v >> 63)) as u64;
            while z >= 0x80 {
                w.put_u8(z as u8 | 0x80);
                z >>= 7;
            }
            w.put_u8(z as u8);
            assert_eq!(Reader::new(w.freeze()).varlong("v").unwrap(), v);
        }
    }

    #[test]
    fn shared_bytes_are_not_copied() {
        let big = Bytes::from(vec![7u8; 4096]);
        let mut w = Writer::new();
        w.i32(1).shared(big.clone()).i16(2);
        assert_eq!(w.len(), 4 + 4096 + 2);
        let chunks = w.finish();
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks[1].as_ptr(), big.as_ptr());
    }
}
