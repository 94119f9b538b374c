//! Checkpoint cost against the share of keys changed: a count-per-key view over N distinct keys
//! writes its first checkpoint (a base: the whole state); then records touching 1% of the keys
//! arrive and its next checkpoint is a record of the delta log. Bytes and time of each, side by
//! side in one run (from the view's status: `checkpoint`).
//!
//! ```sh
//! cargo bench --bench state_checkpoint                                     # 1 million keys
//! KAPPALOG_BENCH_STATE_KEYS=100000 cargo bench --bench state_checkpoint    # quick
//! ```

use std::time::{Duration, Instant};

use kappalog::stream::CheckpointStats;
use kappalog::{Durability, NewRecord, Store, StoreConfig, TopicConfig, View, Views, ViewsConfig};

const KEYS_DEFAULT: u64 = 1_000_000;
const APPEND_BATCH: u64 = 20_000;
const SPEC: &str = r#"{"name": "per_user", "source": {"topics": ["events"]}, "key": "/user",
    "aggregates": {"n": {"op": "count"}, "total": {"op": "sum", "field": "/amount"}}}"#;

fn append(topic: &kappalog::Topic, keys: impl Iterator<Item = u64>) {
    let mut batch = Vec::with_capacity(APPEND_BATCH as usize);
    for k in keys {
        batch.push(NewRecord::new(format!(r#"{{"user":"user-{k:08}","amount":{}}}"#, k % 97)));
        if batch.len() as u64 == APPEND_BATCH {
            topic.append(&batch).expect("append");
            batch.clear();
        }
    }
    if !batch.is_empty() {
        topic.append(&batch).expect("append");
    }
}

/// Waits (bounded) for a checkpoint other than `previous`.
fn next_checkpoint(view: &View, previous: Option<CheckpointStats>) -> CheckpointStats {
    let deadline = Instant::now() + Duration::from_secs(3600);
    assert!(view.wait_caught_up(Duration::from_secs(3600)), "caught up");
    loop {
        if let Some(c) = view.status().checkpoint.filter(|c| Some(*c) != previous) {
            return c;
        }
        assert!(Instant::now() < deadline, "no checkpoint: {:?}", view.status());
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn main() {
    let keys: u64 =
        std::env::var("KAPPALOG_BENCH_STATE_KEYS").ok().and_then(|s| s.parse().ok()).unwrap_or(KEYS_DEFAULT);
    let changed = (keys / 100).max(1);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path(), StoreConfig::default()).expect("open");
    let topic = store.create_topic("events", 1, TopicConfig::default().durability(Durability::None)).expect("topic");
    append(&topic, 0..keys);
    // Checkpoints only when caught up: one per phase.
    let config = ViewsConfig::default().checkpoint_interval_ms(3_600_000).checkpoint_interval_records(u64::MAX);
    let views = Views::open(&store, config).expect("views");
    let view = views.create_json(SPEC.as_bytes()).expect("create");
    let base = next_checkpoint(&view, None);
    assert!(base.full && view.status().keys as u64 == keys, "{base:?}");
    // 1% of the keys, spread over the key space.
    let step = keys / changed;
    append(&topic, (0..changed).map(|i| i * step));
    let delta = next_checkpoint(&view, Some(base));
    assert!(!delta.full, "{delta:?}");
    println!("state checkpoint bench: {keys} keys, {changed} changed ({:.1}%)", 100.0 * changed as f64 / keys as f64);
    println!("base checkpoint:  {:>12} bytes {:>10.1} ms  ({} keys)", base.bytes, base.micros as f64 / 1e3, base.keys);
    println!(
        "delta checkpoint: {:>12} bytes {:>10.1} ms  ({} keys)",
        delta.bytes,
        delta.micros as f64 / 1e3,
        delta.keys
    );
    println!(
        "delta / base:     {:>12.4} bytes {:>10.4} time",
        delta.bytes as f64 / base.bytes as f64,
        delta.micros as f64 / base.micros.max(1) as f64
    );
}
