//! Helpers for the view tests against a real broker: producing JSON records, waiting on a
//! condition (bounded), reading a whole view. Needs `mod broker_common;` in the test crate.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::broker_common::{Http, JSON_V2};

/// How long a view gets to reach an expected state.
pub const VIEW_WAIT: Duration = Duration::from_secs(60);

/// A count of records per page: the spec the view tests create.
pub const COUNT_SPEC: &str = r#"{"name": "views_per_page", "source": {"topics": ["page-views"]},
    "key": "/page", "aggregates": {"views": {"op": "count"}}}"#;

/// Produces `(key, JSON value)` records with the JSON embedded format, asserting success.
pub fn produce_json(http: &Http, topic: &str, records: &[(String, Value)]) {
    for chunk in records.chunks(500) {
        let recs: Vec<Value> = chunk.iter().map(|(k, v)| json!({"key": k, "value": v})).collect();
        let (s, b) = http.post_as(&format!("/topics/{topic}"), JSON_V2, &json!({ "records": recs }));
        assert_eq!(s, 200, "produce: {b}");
    }
}

/// Polls `f` until it returns `Some`, for at most `timeout`; panics with `what` and the last value.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match f() {
            Ok(t) => return t,
            Err(last) => {
                assert!(Instant::now() < deadline, "{what}: not reached within {timeout:?}; last: {last}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// Every key of a view (by scan) → its `value`.
pub fn scan_values(http: &Http, view: &str) -> BTreeMap<String, Value> {
    let (s, keys) = http.get(&format!("/views/{view}/keys?limit=10000"));
    assert_eq!(s, 200, "scan: {keys}");
    keys.as_array().unwrap().iter().map(|k| (k["key"].as_str().unwrap().to_string(), k["value"].clone())).collect()
}

/// Waits until the view serves version `version`, running, with lag 0 on every partition.
pub fn wait_caught_up(http: &Http, view: &str, version: u64) -> Value {
    wait_for(&format!("view {view} v{version} caught up"), VIEW_WAIT, || {
        let (s, st) = http.get(&format!("/views/{view}"));
        let done = s == 200
            && st["state"] == "running"
            && st["version"].as_u64() == Some(version)
            && st["lag"].as_array().is_some_and(|l| l.iter().all(|p| p["lag"] == 0));
        if done {
            Ok(st)
        } else {
            Err(format!("{s} {st}"))
        }
    })
}

/// Seeded xorshift, printing its seed.
pub struct Rng(u64);

impl Rng {
    pub fn from_env(test: &str) -> Rng {
        let seed = std::env::var("SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
        });
        eprintln!("{test}: SEED={seed}");
        Rng(seed)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// `n` page-view records (a few without a page, which the view counts as errors), and the
/// independent count per page.
pub fn page_views(rng: &mut Rng, n: usize) -> (Vec<(String, Value)>, BTreeMap<String, u64>) {
    let mut records = Vec::with_capacity(n);
    let mut counts = BTreeMap::new();
    for _ in 0..n {
        let user = format!("u{}", rng.below(50));
        if rng.below(50) == 0 {
            records.push((user.clone(), json!({ "user": user })));
            continue;
        }
        let page = format!("/p{}", rng.below(30));
        *counts.entry(page.clone()).or_insert(0) += 1;
        records.push((user.clone(), json!({ "page": page, "user": user })));
    }
    (records, counts)
}

/// The expected view content of a count per page.
pub fn as_count_values(counts: &BTreeMap<String, u64>) -> BTreeMap<String, Value> {
    counts.iter().map(|(k, n)| (k.clone(), json!({ "views": n }))).collect()
}

/// Percent-encodes a path segment (keys like `/p3` hold slashes).
pub fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
