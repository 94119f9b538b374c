//! An aggregating view without a window applies each partition's records as they are read (its
//! state does not depend on the order across partitions): live in a random interleaving of
//! appends, created after the data, and rebuilt, it equals a batch computation of count, sum,
//! min, max and latest (by event time) per key, with one worker and with three (three shards of
//! the state, each applied by its own thread): scanned in key order and looked up key by key (a
//! key applied in a shard not its own is not found by its lookup). `SEED=<n>` replays a run.

mod view_common;

use std::collections::BTreeMap;

use kappalog::{stream::RebuildFrom, NewRecord, TopicConfig};
use serde_json::{json, Value};
use view_common::{fast_views, scan_all, wait, Rng};

const PARTITIONS: u32 = 3;
const RECORDS: u64 = 3000;

/// A key's count, sum, min, max, and (timestamp, value) of its latest record.
type Model = (u64, i64, i64, i64, (i64, i64));

#[test]
fn aggregates_equal_a_batch_computation_whatever_the_read_order() {
    let seed = Rng::from_env("view_aggregates_any_order").0;
    // The same records, the same model, with one worker and with three.
    for workers in [1, 3] {
        case(&mut Rng(seed), workers);
    }
}

/// One run with `workers` workers (`ViewsConfig::workers`).
fn case(rng: &mut Rng, workers: usize) {
    let dir = tempfile::tempdir().unwrap();
    let store = kappalog::Store::open(dir.path(), kappalog::StoreConfig::default()).unwrap();
    let views = kappalog::Views::open(&store, fast_views().workers(workers).read_records_max(50)).unwrap();
    let topic = store.create_topic("t", PARTITIONS, TopicConfig::default()).unwrap();
    let spec = |name: &str| {
        format!(
            r#"{{"name": "{name}", "source": {{"topics": ["t"]}}, "key": "/k",
                "aggregates": {{"n": {{"op": "count"}}, "total": {{"op": "sum", "field": "/x"}},
                    "lo": {{"op": "min", "field": "/x"}}, "hi": {{"op": "max", "field": "/x"}},
                    "last": {{"op": "latest", "field": "/x"}}}}}}"#
        )
    };
    let live = views.create_json(spec("live").as_bytes()).unwrap();
    let mut model: BTreeMap<String, Model> = BTreeMap::new();
    let mut i = 0u64;
    while i < RECORDS {
        let p = rng.below(PARTITIONS as u64) as u32;
        let n = 1 + rng.below(200).min(RECORDS - i - 1);
        let batch: Vec<NewRecord> = (0..n)
            .map(|j| {
                let k = format!("k{}", rng.below(300));
                let x = rng.below(2000) as i64 - 1000;
                // Distinct timestamps, not in partition order across partitions.
                let ts = 1_000_000 + ((i + j) * 7919 % RECORDS) as i64;
                let m = model.entry(k.clone()).or_insert((0, 0, i64::MAX, i64::MIN, (i64::MIN, 0)));
                m.0 += 1;
                m.1 += x;
                m.2 = m.2.min(x);
                m.3 = m.3.max(x);
                if ts > m.4 .0 {
                    m.4 = (ts, x);
                }
                NewRecord::new(json!({"k": k, "x": x}).to_string()).with_timestamp(ts)
            })
            .collect();
        topic.partition(p).unwrap().append(&batch).unwrap();
        i += n;
        if rng.below(4) == 0 {
            wait(&live);
        }
    }
    let expected: BTreeMap<String, Value> = model
        .into_iter()
        .map(|(k, (n, total, lo, hi, (_, last)))| {
            (k, json!({"n": n, "total": total, "lo": lo, "hi": hi, "last": last}))
        })
        .collect();
    wait(&live);
    assert_eq!(scan_all(&live), expected, "live, {workers} workers");
    let lookups = |view: &kappalog::View| -> BTreeMap<String, Value> {
        expected.keys().filter_map(|k| Some((k.clone(), view.get(k)?.value?))).collect()
    };
    assert_eq!(lookups(&live), expected, "live, looked up, {workers} workers");
    let after = views.create_json(spec("after").as_bytes()).unwrap();
    wait(&after);
    assert_eq!(scan_all(&after), expected, "created after the data, {workers} workers");
    views.rebuild("live", RebuildFrom::Beginning).unwrap();
    wait(&live);
    assert_eq!(live.status().version, 2);
    assert_eq!(scan_all(&live), expected, "rebuilt, {workers} workers");
    assert_eq!(lookups(&live), expected, "rebuilt, looked up, {workers} workers");
}
