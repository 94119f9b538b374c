//! The batch and record decoder: any bytes decode to records or to a `Corruption`, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(records) = kappalog::log::decode_batch(data) {
        // A batch that decodes has at least one record, in increasing offsets.
        assert!(!records.is_empty());
        assert!(records.windows(2).all(|w| w[0].offset < w[1].offset));
    }
});
