//! The other files read at open (`store_metadata` covers `kappalog.json` and `topic.json`,
//! `segment_open` the segments): a partition's `log-start-offset` and `cleaner-checkpoint`, the
//! compaction swap manifest `cleaner.swap`, a view's `view.json` and `v<N>.checkpoint`, and the
//! broker's TOML config file. The first input byte picks the file (low 3 bits) and whether the rest
//! is framed with a valid checksum (bit 3), so that the fuzzer also reaches what lies behind the CRC.
//! Whatever the file holds, opening the store and its views, then reading, querying, appending and
//! cleaning give a result or an error, never a panic; what opens is consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;

mod store_files_harness;

fuzz_target!(|input: &[u8]| {
    store_files_harness::run(input);
});
