//! The offset and time index decoders: any bytes give entries or an error, never a panic.
#![no_main]

use kappalog::log::fuzzing::{decode_offset_index, decode_time_index};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (bound, bytes) = match data.split_first_chunk::<8>() {
        Some((b, rest)) => (u64::from_le_bytes(*b), rest),
        None => (0, data),
    };
    if let Ok(n) = decode_offset_index(bytes, bound) {
        assert_eq!(n, bytes.len() / 8);
    }
    if let Ok(n) = decode_time_index(bytes, bound) {
        assert_eq!(n, bytes.len() / 16);
    }
});
