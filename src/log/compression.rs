//! Compression of a batch's records (Kafka's codecs: attribute bits 0-2).

use bytes::Bytes;

use super::batch::{self, BatchHeader};
use crate::error::Corruption;

/// The records of a verified batch, uncompressed: shared with `batch` when its codec is none.
pub(crate) fn records_of(header: &BatchHeader, batch: &Bytes) -> Result<Bytes, Corruption> {
    match header.codec() {
        0 => Ok(batch::uncompressed_records(batch)),
        c => Err(Corruption::Malformed(format!("compression codec {c} is not supported"))),
    }
}

/// Appends `plain` (records) to `out`, compressed with `codec`.
pub(crate) fn compress_into(codec: u16, plain: &[u8], out: &mut Vec<u8>) -> crate::error::Result<()> {
    match codec {
        0 => {
            out.extend_from_slice(plain);
            Ok(())
        }
        c => Err(crate::error::Error::InvalidRecord(format!("compression codec {c} is not supported"))),
    }
}

/// Kafka's name of a codec number.
pub(crate) fn codec_name(codec: u16) -> &'static str {
    match codec {
        0 => "none",
        1 => "gzip",
        2 => "snappy",
        3 => "lz4",
        4 => "zstd",
        _ => "unknown",
    }
}
