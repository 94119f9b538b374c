//! HTTP request bodies through the broker's real router, in-process: produce (binary and JSON
//! embedded formats, to a topic and to a partition, to a compacted topic), consumer offset commits,
//! group offset resets, view creation and redefinition. The first byte picks the route, the rest
//! is the body. Never a panic, never a 5xx, Confluent-shaped 4xx bodies; every
//! [`REOPEN_EVERY`] inputs the broker is closed, its data directory must open again, and a fresh
//! one is made (which also bounds disk and memory). See `http_harness.rs`.
#![no_main]

use std::sync::Mutex;

use libfuzzer_sys::fuzz_target;

mod http_harness;

/// Inputs served by one broker before it is closed, checked to reopen, and replaced.
const REOPEN_EVERY: u64 = 5_000;

static HARNESS: Mutex<Option<http_harness::Harness>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let mut guard = HARNESS.lock().unwrap_or_else(|e| e.into_inner());
    if guard.as_ref().is_some_and(|h| h.requests >= REOPEN_EVERY) {
        let mut old = guard.take().unwrap();
        old.reopen_check();
    }
    let harness = guard.get_or_insert_with(http_harness::Harness::new);
    harness.run(data);
});
