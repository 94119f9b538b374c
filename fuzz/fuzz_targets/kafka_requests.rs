//! Kafka requests of every advertised api key through the broker's dispatcher, in-process: never
//! a panic, answers well framed, and memory bounded by the request's size (see
//! `kafka_harness.rs`). Every [`RENEW_EVERY`] inputs the store is replaced (bounding disk use).
#![no_main]

use std::sync::Mutex;

use libfuzzer_sys::fuzz_target;

mod kafka_harness;

const RENEW_EVERY: u64 = 20_000;

static HARNESS: Mutex<Option<kafka_harness::Harness>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let mut guard = HARNESS.lock().unwrap_or_else(|e| e.into_inner());
    if guard.as_ref().is_some_and(|h| h.requests >= RENEW_EVERY) {
        guard.take();
    }
    guard.get_or_insert_with(kafka_harness::Harness::new).run(data);
});
