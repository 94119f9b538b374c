//! The `kafka_requests` fuzz target's harness, shared with `tests/kafka_requests_fuzz_seeds.rs`
//! (which includes this file by path): the Kafka dispatcher over a store in a temporary
//! directory, called in-process. One input is one request: its first byte picks the api key
//! (among those advertised), its second the version (inside the advertised range, or for odd
//! values any version), the rest is the request body after the header.
//!
//! Properties: no panic; an answer is a well-framed response (its size, then the request's
//! correlation id), or the connection would be closed; and a request's peak resident memory
//! (Linux: `VmHWM`, reset before each request through `/proc/self/clear_refs`) grows by at most
//! [`REQUEST_MEMORY_FACTOR`] times its size plus [`MEMORY_SLACK_BYTES`]: no count on the wire
//! makes the broker allocate.
#![allow(dead_code)]

use bytes::Bytes;
use kappalog::broker::kafka::{self, Context, KafkaConfig};
use kappalog::{Durability, Store, StoreConfig, TopicConfig};

/// What a request's peak memory may grow by, per byte of the request.
pub const REQUEST_MEMORY_FACTOR: u64 = 8;
/// Plus this: the runtime's and the background threads' allocations, page granularity.
pub const MEMORY_SLACK_BYTES: u64 = 16 << 20;
const CORRELATION_ID: i32 = 0x1234_5678;

fn status_bytes(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

fn reset_peak() -> Option<u64> {
    std::fs::write("/proc/self/clear_refs", "5").ok()?;
    status_bytes("VmRSS:")
}

pub struct Harness {
    ctx: Option<Context>,
    runtime: tokio::runtime::Runtime,
    _stop: tokio::sync::watch::Sender<bool>,
    dir: tempfile::TempDir,
    pub requests: u64,
    /// Whether the last request was answered (else the connection would have closed).
    pub answered: bool,
}

/// `(api key, min, max)` of every advertised API, in a fixed order.
pub fn apis() -> Vec<(i16, i16, i16)> {
    let mut v: Vec<_> = kafka::advertised().collect();
    v.sort_unstable();
    v
}

/// The input that makes `body` a request of `api_key` at `version` (which must be advertised).
pub fn input(api_key: i16, version: i16, body: &[u8]) -> Vec<u8> {
    let apis = apis();
    let i = apis.iter().position(|a| a.0 == api_key).expect("an advertised api");
    let (lo, hi) = (apis[i].1, apis[i].2);
    assert!((lo..=hi).contains(&version));
    let v = (0..=255u8).find(|b| b % 2 == 0 && lo + (*b as i16 / 2) % (hi - lo + 1) == version).unwrap();
    let mut out = vec![i as u8, v];
    out.extend_from_slice(body);
    out
}

impl Harness {
    /// A store with topic `t` (2 partitions, a few records), Kafka's listener settings, and the
    /// shutdown signal already given (so a fetch never parks).
    pub fn new() -> Harness {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        let cfg =
            TopicConfig::default().segment_bytes(32 * 1024).retention_bytes(256 * 1024).durability(Durability::None);
        let t = store.create_topic("t", 2, cfg).unwrap();
        for p in 0..2 {
            let records: Vec<_> =
                (0..5).map(|i| kappalog::NewRecord::keyed(format!("k{i}"), format!("v{i}"))).collect();
            t.partition(p).unwrap().append(&records).unwrap();
        }
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(true);
        let config = KafkaConfig { request_bytes_max: 1 << 20, ..KafkaConfig::default() };
        let ctx = Context::new(store, config, ("127.0.0.1".into(), 9092), stop_rx);
        Harness { ctx: Some(ctx), runtime, _stop: stop_tx, dir, requests: 0, answered: false }
    }

    /// The request frame (size prefix removed) an input stands for.
    pub fn frame(data: &[u8]) -> Option<Vec<u8>> {
        let (&pick, rest) = data.split_first()?;
        let (&v, body) = rest.split_first()?;
        let apis = apis();
        let (key, lo, hi) = apis[pick as usize % apis.len()];
        let version = if v % 2 == 0 { lo + (v as i16 / 2) % (hi - lo + 1) } else { v as i16 / 2 - 20 };
        let mut frame = Vec::with_capacity(body.len() + 12);
        frame.extend_from_slice(&key.to_be_bytes());
        frame.extend_from_slice(&version.to_be_bytes());
        frame.extend_from_slice(&CORRELATION_ID.to_be_bytes());
        frame.extend_from_slice(&(-1i16).to_be_bytes());
        if kafka::request_is_flexible(key, version) {
            frame.push(0);
        }
        frame.extend_from_slice(body);
        Some(frame)
    }

    /// Serves one input; panics on a broken property.
    pub fn run(&mut self, data: &[u8]) {
        let Some(frame) = Self::frame(data) else { return };
        self.requests += 1;
        let size = frame.len() as u64;
        let ctx = self.ctx.clone().expect("open");
        let before = reset_peak();
        let answer = self.runtime.block_on(async move { kafka::answer(&ctx, Bytes::from(frame)).await });
        if let (Some(before), Some(peak)) = (before, status_bytes("VmHWM:")) {
            let bound = before + REQUEST_MEMORY_FACTOR * size + MEMORY_SLACK_BYTES;
            assert!(peak <= bound, "a {size}-byte request raised the peak memory from {before} to {peak} bytes");
        }
        self.answered = false;
        if let Ok(Some(bytes)) = answer {
            assert!(bytes.len() >= 8, "a response frame holds its size and correlation id");
            let declared = i32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
            assert_eq!(declared, bytes.len() - 4, "the size prefix is the frame's");
            assert_eq!(i32::from_be_bytes(bytes[4..8].try_into().unwrap()), CORRELATION_ID);
            self.answered = true;
        }
    }

    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        drop(self.ctx.take());
    }
}
