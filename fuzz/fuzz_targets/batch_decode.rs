//! The batch and record decoder: any bytes decode to records or to a `Corruption`, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(records) = kappalog::log::decode_batch(data) {
        // A batch that decodes has its records in increasing offsets; it may have none (the empty
        // batch compaction keeps of a producer's last batch, a bare 61-byte header).
        assert!(!records.is_empty() || data.len() == 61);
        assert!(records.windows(2).all(|w| w[0].offset < w[1].offset));
    }
});
