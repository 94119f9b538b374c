//! Helpers shared by the view tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use kappalog::{Record, Store, StoreConfig, Views, ViewsConfig};

/// Views that checkpoint often, so tests exercise checkpoints.
pub fn fast_views() -> ViewsConfig {
    ViewsConfig::default().checkpoint_interval_ms(20).checkpoint_interval_records(2000).idle_wait_ms(20)
}

pub fn open(dir: &std::path::Path) -> (Store, Views) {
    let store = Store::open(dir, StoreConfig::default()).unwrap();
    let views = Views::open(&store, fast_views()).unwrap();
    (store, views)
}

/// Every record of a topic, partition by partition, in offset order.
pub fn all_records(store: &Store, topic: &str) -> Vec<(u32, Record)> {
    let t = store.topic(topic).unwrap();
    let mut out = Vec::new();
    for p in t.partitions().iter() {
        out.extend(p.cursor_from_start().map(|r| (p.id(), r.unwrap())));
    }
    out
}

pub fn wait(view: &kappalog::View) {
    assert!(view.wait_caught_up(Duration::from_secs(60)), "view did not catch up: {:#?}", view.status());
}

/// A tiny seeded generator (xorshift), so failures replay from the printed seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn from_env(name: &str) -> Rng {
        let seed = std::env::var("SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
        });
        eprintln!("{name}: SEED={seed}");
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The state of a view as a map key → JSON, from a full scan.
pub fn scan_all(view: &kappalog::View) -> BTreeMap<String, serde_json::Value> {
    view.scan("", usize::MAX)
        .into_iter()
        .map(|r| (r.key, r.value.or_else(|| r.windows.map(|w| serde_json::to_value(w).unwrap())).unwrap()))
        .collect()
}
