//! ApiVersions (key 18), v0-3: the api keys and version ranges this broker serves.
//!
//! v3 is flexible; its request carries the client's software name and version, which are read
//! and ignored. The response never carries tagged fields (no `supported_features` and the like:
//! librdkafka before 2.2 mis-skips them).

use super::code;
use super::wire::{Reader, Result, Writer};

pub fn handle(version: i16, r: &mut Reader) -> Result<Writer> {
    if version >= 3 {
        r.compact_string("client_software_name")?;
        r.compact_string("client_software_version")?;
        r.skip_tagged_fields("ApiVersions request tagged fields")?;
    }
    Ok(body(version, code::NONE))
}

/// The v0-format answer to an ApiVersions request of a version kappalog does not serve
/// (`UNSUPPORTED_VERSION` with the supported ranges, as Kafka answers).
pub fn unsupported() -> Writer {
    body(0, code::UNSUPPORTED_VERSION)
}

fn body(version: i16, error_code: i16) -> Writer {
    let mut keys: Vec<(i16, i16, i16)> = super::advertised().collect();
    keys.sort_unstable();
    let mut w = Writer::new();
    w.i16(error_code);
    if version >= 3 {
        w.compact_array_len(keys.len());
    } else {
        w.array_len(keys.len());
    }
    for (k, lo, hi) in keys {
        w.i16(k).i16(lo).i16(hi);
        if version >= 3 {
            w.no_tagged_fields();
        }
    }
    if version >= 1 {
        w.i32(0); // throttle_time_ms
    }
    if version >= 3 {
        w.no_tagged_fields();
    }
    w
}
