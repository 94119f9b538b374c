//! Compression of a batch's records: Kafka's codecs (attribute bits 0-2), each through a
//! well-kept crate: gzip (`flate2`, pure Rust miniz_oxide), snappy (`snap`, in the xerial framing
//! Kafka's Java client writes; raw snappy is read too), lz4 (`lz4_flex`, the LZ4 frame format) and
//! zstd (`zstd`). The records of a batch are compressed as one block after the 61-byte header.
//!
//! Decompression is bounded: a batch's records may not expand past [`DECOMPRESSED_BYTES_MAX`];
//! a batch that would (a compression bomb) is a malformed batch, found before more than that
//! bound is allocated.

use std::io::{Read, Write};

use bytes::Bytes;

use super::batch::{self, BatchHeader};
use crate::config::BATCH_BYTES_MAX;
use crate::error::{Corruption, Error, Result};

/// The codec numbers of Kafka's attribute bits 0-2.
pub(crate) const CODEC_NONE: u16 = 0;
pub(crate) const CODEC_GZIP: u16 = 1;
pub(crate) const CODEC_SNAPPY: u16 = 2;
pub(crate) const CODEC_LZ4: u16 = 3;
pub(crate) const CODEC_ZSTD: u16 = 4;

/// The most bytes a batch's records may take uncompressed: the largest batch
/// ([`BATCH_BYTES_MAX`], which also bounds every topic's `max_message_bytes`). Decompressing
/// more is an error, whatever the reader.
pub const DECOMPRESSED_BYTES_MAX: usize = BATCH_BYTES_MAX as usize;

/// The zstd window a decoder accepts (2^25 = 32 MiB): a frame asking for more is refused rather
/// than allocated.
const ZSTD_WINDOW_LOG_MAX: u32 = 25;

/// xerial snappy framing: magic, then version 1 and compatible version 1, then blocks of a
/// big-endian u32 length and a raw snappy block.
const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";
/// Uncompressed bytes per xerial block (snappy-java's default).
const XERIAL_BLOCK_BYTES: usize = 32 * 1024;

const _: () = assert!(XERIAL_HEADER.len() == 16);

/// Kafka's name of a codec number.
pub(crate) fn codec_name(codec: u16) -> &'static str {
    match codec {
        CODEC_NONE => "none",
        CODEC_GZIP => "gzip",
        CODEC_SNAPPY => "snappy",
        CODEC_LZ4 => "lz4",
        CODEC_ZSTD => "zstd",
        _ => "unknown",
    }
}

/// The records of a verified batch, uncompressed: shared with `batch` when its codec is none,
/// else decompressed (bounded by [`DECOMPRESSED_BYTES_MAX`]).
pub(crate) fn records_of(header: &BatchHeader, batch: &Bytes) -> std::result::Result<Bytes, Corruption> {
    if header.record_count == 0 {
        // An empty batch (a bare header, whatever its codec bits say): no records to decompress.
        return Ok(Bytes::new());
    }
    match header.codec() {
        CODEC_NONE => Ok(batch::uncompressed_records(batch)),
        codec => decompress(codec, &batch[batch::HEADER_LEN..], DECOMPRESSED_BYTES_MAX).map(Bytes::from),
    }
}

fn bomb(codec: u16, cap: usize) -> Corruption {
    Corruption::Malformed(format!("{} records expand past {cap} bytes", codec_name(codec)))
}

fn undecodable(codec: u16, e: impl std::fmt::Display) -> Corruption {
    Corruption::Malformed(format!("{} records do not decompress: {e}", codec_name(codec)))
}

/// Reads `r` to its end into a vector, failing once it passes `cap` bytes.
fn read_capped(codec: u16, r: impl Read, cap: usize) -> std::result::Result<Vec<u8>, Corruption> {
    let mut out = Vec::new();
    r.take(cap as u64 + 1).read_to_end(&mut out).map_err(|e| undecodable(codec, e))?;
    if out.len() > cap {
        return Err(bomb(codec, cap));
    }
    Ok(out)
}

/// Decompresses `data` (a batch's records compressed with `codec`), at most `cap` bytes out.
pub(crate) fn decompress(codec: u16, data: &[u8], cap: usize) -> std::result::Result<Vec<u8>, Corruption> {
    match codec {
        CODEC_NONE => match data.len() <= cap {
            true => Ok(data.to_vec()),
            false => Err(bomb(codec, cap)),
        },
        CODEC_GZIP => read_capped(codec, flate2::read::GzDecoder::new(data), cap),
        CODEC_SNAPPY => snappy_decompress(data, cap),
        CODEC_LZ4 => read_capped(codec, lz4_flex::frame::FrameDecoder::new(data), cap),
        CODEC_ZSTD => {
            let mut d = zstd::stream::read::Decoder::with_buffer(data).map_err(|e| undecodable(codec, e))?;
            d.window_log_max(ZSTD_WINDOW_LOG_MAX).map_err(|e| undecodable(codec, e))?;
            read_capped(codec, d, cap)
        }
        other => Err(Corruption::Malformed(format!("unknown compression codec {other}"))),
    }
}

/// One raw snappy block appended to `out`, its announced length checked against the room left.
fn snappy_block(block: &[u8], out: &mut Vec<u8>, cap: usize) -> std::result::Result<(), Corruption> {
    let len = snap::raw::decompress_len(block).map_err(|e| undecodable(CODEC_SNAPPY, e))?;
    if len > cap - out.len() {
        return Err(bomb(CODEC_SNAPPY, cap));
    }
    let at = out.len();
    out.resize(at + len, 0);
    let n = snap::raw::Decoder::new().decompress(block, &mut out[at..]).map_err(|e| undecodable(CODEC_SNAPPY, e))?;
    out.truncate(at + n);
    Ok(())
}

fn snappy_decompress(data: &[u8], cap: usize) -> std::result::Result<Vec<u8>, Corruption> {
    let mut out = Vec::new();
    if data.len() < XERIAL_HEADER.len() || &data[..XERIAL_MAGIC.len()] != XERIAL_MAGIC {
        // Raw snappy, as snappy-java falls back to.
        snappy_block(data, &mut out, cap)?;
        return Ok(out);
    }
    let mut p = XERIAL_HEADER.len();
    while p < data.len() {
        let Some(len) = data.get(p..p + 4).map(|b| u32::from_be_bytes(b.try_into().unwrap()) as usize) else {
            return Err(undecodable(CODEC_SNAPPY, "truncated xerial block length"));
        };
        p += 4;
        let block = data.get(p..p.saturating_add(len)).ok_or_else(|| undecodable(CODEC_SNAPPY, "truncated block"))?;
        snappy_block(block, &mut out, cap)?;
        p += len;
    }
    Ok(out)
}

/// Appends `plain` (records) to `out`, compressed with `codec`.
pub(crate) fn compress_into(codec: u16, plain: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let failed = |e: std::io::Error| Error::InvalidRecord(format!("{} compression failed: {e}", codec_name(codec)));
    match codec {
        CODEC_NONE => out.extend_from_slice(plain),
        CODEC_GZIP => {
            let mut e = flate2::write::GzEncoder::new(std::mem::take(out), flate2::Compression::default());
            e.write_all(plain).map_err(failed)?;
            *out = e.finish().map_err(failed)?;
        }
        CODEC_SNAPPY => {
            out.extend_from_slice(XERIAL_HEADER);
            let mut enc = snap::raw::Encoder::new();
            for chunk in plain.chunks(XERIAL_BLOCK_BYTES) {
                let at = out.len();
                out.resize(at + 4 + snap::raw::max_compress_len(chunk.len()), 0);
                let n = enc
                    .compress(chunk, &mut out[at + 4..])
                    .map_err(|e| Error::InvalidRecord(format!("snappy compression failed: {e}")))?;
                out[at..at + 4].copy_from_slice(&(n as u32).to_be_bytes());
                out.truncate(at + 4 + n);
            }
        }
        CODEC_LZ4 => {
            let info = lz4_flex::frame::FrameInfo::new()
                .block_size(lz4_flex::frame::BlockSize::Max64KB)
                .block_mode(lz4_flex::frame::BlockMode::Independent);
            let mut e = lz4_flex::frame::FrameEncoder::with_frame_info(info, std::mem::take(out));
            e.write_all(plain).map_err(failed)?;
            *out = e.finish().map_err(|e| Error::InvalidRecord(format!("lz4 compression failed: {e}")))?;
        }
        CODEC_ZSTD => {
            let compressed = zstd::bulk::compress(plain, zstd::DEFAULT_COMPRESSION_LEVEL).map_err(failed)?;
            out.extend_from_slice(&compressed);
        }
        other => return Err(Error::InvalidRecord(format!("unknown compression codec {other}"))),
    }
    Ok(())
}

/// Compresses the records of an encoded, unfinished batch (`buf` = header room + plain records)
/// with `codec`, giving the new buffer (header room + compressed records). `codec` none gives
/// `buf` back as it is.
pub(crate) fn compress_batch(buf: Vec<u8>, codec: u16) -> Result<Vec<u8>> {
    if codec == CODEC_NONE {
        return Ok(buf);
    }
    let mut out = Vec::with_capacity(batch::HEADER_LEN + buf.len() / 2);
    out.resize(batch::HEADER_LEN, 0);
    compress_into(codec, &buf[batch::HEADER_LEN..], &mut out)?;
    crate::log::buffers::give(buf);
    if out.len() > BATCH_BYTES_MAX as usize {
        let max = BATCH_BYTES_MAX as u64;
        return Err(Error::LimitExceeded { limit: "BATCH_BYTES_MAX", value: out.len() as u64, max });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_like(n: usize) -> Vec<u8> {
        (0..n).flat_map(|i| format!(r#"{{"user":"u{}","event":"click","n":{i}}}"#, i % 17).into_bytes()).collect()
    }

    #[test]
    fn every_codec_roundtrips() {
        for plain in [json_like(1), json_like(3000), vec![0u8; 200_000]] {
            for codec in [CODEC_NONE, CODEC_GZIP, CODEC_SNAPPY, CODEC_LZ4, CODEC_ZSTD] {
                let mut out = Vec::new();
                compress_into(codec, &plain, &mut out).unwrap();
                assert_eq!(decompress(codec, &out, DECOMPRESSED_BYTES_MAX).unwrap(), plain, "{}", codec_name(codec));
            }
        }
    }

    /// A small input that expands past the cap is an error, for every codec, found without
    /// allocating more than the cap.
    #[test]
    fn a_compression_bomb_is_an_error() {
        let plain = vec![0u8; 4 << 20];
        for codec in [CODEC_GZIP, CODEC_SNAPPY, CODEC_LZ4, CODEC_ZSTD] {
            let mut out = Vec::new();
            compress_into(codec, &plain, &mut out).unwrap();
            assert!(out.len() < plain.len() / 20, "{}: {} bytes", codec_name(codec), out.len());
            let e = decompress(codec, &out, 1 << 20).unwrap_err();
            assert!(e.to_string().contains("expand past"), "{}: {e}", codec_name(codec));
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for codec in [CODEC_GZIP, CODEC_SNAPPY, CODEC_LZ4, CODEC_ZSTD] {
            for data in [&b"\x00"[..], b"garbage bytes here", b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01\xff\xff"]
            {
                // An empty output is fine too (a raw snappy stream of zero bytes): the batch's
                // record count then fails.
                let r = decompress(codec, data, 1 << 20);
                assert!(r.as_ref().map_or(true, |v| v.is_empty()), "{} {data:?}: {r:?}", codec_name(codec));
            }
        }
    }

    /// Raw snappy (no xerial framing) is read as snappy-java reads it.
    #[test]
    fn raw_snappy_is_read() {
        let plain = json_like(100);
        let raw = snap::raw::Encoder::new().compress_vec(&plain).unwrap();
        assert_eq!(decompress(CODEC_SNAPPY, &raw, 1 << 20).unwrap(), plain);
    }
}
