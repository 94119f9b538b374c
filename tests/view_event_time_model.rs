//! Model-based test of event time across partitions: random records over 1-8 partitions, each
//! partition out of order by at most `grace_ms`, random windows (tumbling, hopping, session) and
//! aggregates. The view's state, watermark and `window_close` emits equal a plain batch
//! computation of the same windows when the view
//! (a) runs live while the records are appended in a random interleaving, waiting for it at random
//!     moments,
//! (b) is created after the data,
//! (c) is rebuilt,
//! (d) crashes and resumes: its store is closed in the middle of the appends, its checkpoint
//!     replaced by an older one (what a crash right after that checkpoint leaves), and reopened.
//! Emits are exactly once in (a)-(c); in (d) at least once (none missing, none wrong). Every case
//! runs with one decode worker and with three (`ViewsConfig::workers`), with equal results.
//!
//! `SEED=<n>` replays a run; `CASES=<n>` sets the number of cases.

mod view_common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kappalog::{
    clock::ManualClock, stream::RebuildFrom, Durability, NewRecord, Store, StoreConfig, TopicConfig, View, Views,
    ViewsConfig,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use serde_json::{json, Value};
use view_common::{all_records, scan_all, Rng};

/// The store clock: every record's timestamp (event times are well before it).
const NOW_MS: i64 = 2_000_000;
const BASE_MS: i64 = 1_000_000;
const CASES_DEFAULT: u32 = 24;
/// Each case runs with the runner parsing every record itself and with decode workers: both must
/// equal the batch computation, so they equal each other.
const WORKERS: [usize; 2] = [1, 3];
const AGGREGATES: [&str; 6] = ["n", "total", "lo", "hi", "mean", "last"];

#[derive(Debug, Clone, Copy)]
enum Win {
    Tumbling { size: i64 },
    Hopping { size: i64, advance: i64 },
    Session { gap: i64 },
}

/// One record as generated: its event time follows from the partition's earlier ones.
#[derive(Debug, Clone, Copy)]
struct Raw {
    key: u8,
    step: i64,
    /// How far behind the partition's highest time so far, in thousandths of `grace_ms`.
    back: i64,
    x: i64,
    s: u8,
}

#[derive(Debug, Clone)]
struct Case {
    window: Win,
    grace_ms: i64,
    retention_ms: Option<i64>,
    aggregates: Vec<bool>,
    /// Per partition: where its event times start, and its records.
    partitions: Vec<(i64, Vec<Raw>)>,
    /// Drives the interleaving of appends and waits.
    interleave_seed: u64,
    /// The append steps after which (d) saves its checkpoint, and crashes.
    snapshot_step: usize,
    crash_step: usize,
}

/// A record with its event time.
#[derive(Debug, Clone)]
struct Rec {
    key: String,
    t: i64,
    x: i64,
    s: String,
}

impl Case {
    fn records(&self) -> Vec<Vec<Rec>> {
        self.partitions
            .iter()
            .map(|(skew, raws)| {
                let mut max = BASE_MS + skew;
                raws.iter()
                    .map(|r| {
                        let t = max + r.step - self.grace_ms * r.back / 1000;
                        max = max.max(t);
                        Rec { key: format!("k{}", r.key), t, x: r.x, s: format!("s{}", r.s) }
                    })
                    .collect()
            })
            .collect()
    }

    fn spec(&self, name: &str, emit: &str) -> String {
        let mut window = match self.window {
            Win::Tumbling { size } => json!({"type": "tumbling", "size_ms": size}),
            Win::Hopping { size, advance } => json!({"type": "hopping", "size_ms": size, "advance_ms": advance}),
            Win::Session { gap } => json!({"type": "session", "gap_ms": gap}),
        };
        window["grace_ms"] = json!(self.grace_ms);
        window["time"] = json!("/ts");
        if let Some(r) = self.retention_ms {
            window["retention_ms"] = json!(r);
        }
        let all = [
            json!({"op": "count"}),
            json!({"op": "sum", "field": "/x"}),
            json!({"op": "min", "field": "/x"}),
            json!({"op": "max", "field": "/x"}),
            json!({"op": "avg", "field": "/x"}),
            json!({"op": "latest", "field": "/s"}),
        ];
        let aggregates: serde_json::Map<String, Value> = AGGREGATES
            .iter()
            .zip(all)
            .zip(&self.aggregates)
            .filter(|(_, on)| **on)
            .map(|((name, a), _)| (name.to_string(), a))
            .collect();
        json!({"name": name, "source": {"topics": ["src"]}, "key": "/k", "window": window,
               "aggregates": aggregates, "emit": {"topic": emit, "on": "window_close"}})
        .to_string()
    }
}

fn case_strategy() -> impl Strategy<Value = Case> {
    let window = prop_oneof![
        (5i64..60).prop_map(|size| Win::Tumbling { size }),
        (5i64..60, 1i64..5).prop_map(|(size, k)| Win::Hopping { size, advance: (size / k).max(1) }),
        (1i64..30).prop_map(|gap| Win::Session { gap }),
    ];
    let raw = (0u8..4, 0i64..15, 0i64..=1000, -1000i64..1000, 0u8..10).prop_map(|(key, step, back, x, s)| Raw {
        key,
        step,
        back,
        x,
        s,
    });
    let partition = (0i64..400, prop::collection::vec(raw, 0..40));
    (
        window,
        0i64..40,
        prop::option::of(0i64..80),
        prop::collection::vec(any::<bool>(), 6),
        prop::collection::vec(partition, 1..=8),
        any::<u64>(),
        0usize..40,
        0usize..60,
    )
        .prop_map(|(window, grace_ms, extra_retention, mut aggregates, partitions, seed, snap, crash)| {
            if !aggregates.iter().any(|a| *a) {
                aggregates[0] = true;
            }
            Case {
                window,
                grace_ms,
                retention_ms: extra_retention.map(|r| grace_ms + r),
                aggregates,
                partitions,
                interleave_seed: seed,
                snapshot_step: snap.min(crash),
                crash_step: crash,
            }
        })
}

/// What the view must hold: per key its windows as queries show them, the windows that closed
/// (as emitted: key and JSON), and the watermark.
#[derive(Debug, PartialEq)]
struct Expected {
    state: BTreeMap<String, Value>,
    closed: BTreeSet<(String, String)>,
    watermark: Option<i64>,
}

/// One window's accumulators, computed plainly.
#[derive(Debug, Clone, Default)]
struct Acc {
    n: u64,
    total: i64,
    lo: Option<i64>,
    hi: Option<i64>,
    /// The latest record: (event time, partition, offset) and its value.
    last: Option<((i64, u32, u64), String)>,
}

impl Acc {
    fn add(&mut self, r: &Rec, partition: u32, offset: u64) {
        self.n += 1;
        self.total += r.x;
        self.lo = Some(self.lo.map_or(r.x, |l| l.min(r.x)));
        self.hi = Some(self.hi.map_or(r.x, |h| h.max(r.x)));
        let stamp = (r.t, partition, offset);
        if self.last.as_ref().is_none_or(|(s, _)| stamp > *s) {
            self.last = Some((stamp, r.s.clone()));
        }
    }

    fn to_json(&self, on: &[bool]) -> Value {
        let all = [
            json!(self.n),
            json!(self.total),
            json!(self.lo),
            json!(self.hi),
            json!(self.total as f64 / self.n as f64),
            json!(self.last.as_ref().map(|(_, s)| s)),
        ];
        let m: serde_json::Map<String, Value> = AGGREGATES
            .iter()
            .zip(all)
            .zip(on)
            .filter(|(_, on)| **on)
            .map(|((name, v), _)| (name.to_string(), v))
            .collect();
        Value::Object(m)
    }
}

/// The batch computation: every window of every record, sessions by sorting, the watermark as
/// the least of the partitions' highest event times (none while a partition has no record),
/// closed windows (end + grace at or below it) and expired ones (end + retention) dropped.
fn batch(case: &Case, parts: &[Vec<Rec>]) -> Expected {
    let watermark = parts.iter().map(|p| p.iter().map(|r| r.t).max()).collect::<Option<Vec<i64>>>();
    let watermark = watermark.and_then(|maxima| maxima.into_iter().min());
    // (key, start) -> (end, accumulators)
    let mut windows: BTreeMap<(String, i64), (i64, Acc)> = BTreeMap::new();
    let mut by_key: BTreeMap<String, Vec<(i64, u32, u64, Rec)>> = BTreeMap::new();
    for (p, records) in parts.iter().enumerate() {
        for (offset, r) in records.iter().enumerate() {
            let mut add = |start: i64, end: i64| {
                windows.entry((r.key.clone(), start)).or_insert((end, Acc::default())).1.add(r, p as u32, offset as u64)
            };
            match case.window {
                Win::Tumbling { size } => add(r.t.div_euclid(size) * size, r.t.div_euclid(size) * size + size),
                Win::Hopping { size, advance } => {
                    let mut start = r.t.div_euclid(advance) * advance;
                    while start + size > r.t {
                        add(start, start + size);
                        start -= advance;
                    }
                }
                Win::Session { .. } => {
                    by_key.entry(r.key.clone()).or_default().push((r.t, p as u32, offset as u64, r.clone()))
                }
            }
        }
    }
    if let Win::Session { gap } = case.window {
        for (key, mut events) in by_key {
            events.sort_by_key(|e| e.0);
            let mut i = 0;
            while i < events.len() {
                let (start, mut last) = (events[i].0, events[i].0);
                let mut acc = Acc::default();
                while i < events.len() && events[i].0 < last + gap {
                    last = events[i].0;
                    acc.add(&events[i].3, events[i].1, events[i].2);
                    i += 1;
                }
                windows.insert((key.clone(), start), (last + gap, acc));
            }
        }
    }
    let retention =
        case.retention_ms.unwrap_or(kappalog::stream::WINDOW_RETENTION_MS_DEFAULT as i64).max(case.grace_ms);
    let reached = |limit: i64| watermark.is_some_and(|w| w >= limit);
    let mut state: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut closed = BTreeSet::new();
    for ((key, start), (end, acc)) in &windows {
        let shown = json!({"start": start, "end": end, "value": acc.to_json(&case.aggregates)});
        if reached(end + case.grace_ms) {
            // As `emitted` reads it back: through JSON text (serde_json's float parsing may
            // round the last digit; both sides then round alike).
            let read_back: Value = serde_json::from_str(&shown.to_string()).unwrap();
            closed.insert((key.clone(), read_back.to_string()));
        }
        if !reached(end + retention) {
            state.entry(key.clone()).or_default().push(shown);
        }
    }
    Expected { state: state.into_iter().map(|(k, ws)| (k, Value::Array(ws))).collect(), closed, watermark }
}

fn open(dir: &Path, clock: &Arc<ManualClock>, workers: usize) -> (Store, Views) {
    let store = Store::open(dir, StoreConfig::default().clock(clock.clone())).unwrap();
    let config = ViewsConfig::default()
        .workers(workers)
        .checkpoint_interval_ms(5)
        .checkpoint_interval_records(7)
        .read_records_max(5)
        .idle_wait_ms(10);
    let views = Views::open(&store, config).unwrap();
    (store, views)
}

fn caught_up(view: &View) -> Result<(), TestCaseError> {
    prop_assert!(view.wait_caught_up(Duration::from_secs(60)), "did not catch up: {:#?}", view.status());
    Ok(())
}

/// The emitted `(key, JSON)` of `topic` from offset `from` of its one partition.
fn emitted(store: &Store, topic: &str, from: u64) -> Vec<(String, String)> {
    all_records(store, topic)
        .into_iter()
        .filter(|(_, r)| r.offset >= from)
        .map(|(_, r)| {
            let v: Value = serde_json::from_slice(r.value.as_deref().unwrap()).unwrap();
            // Emitted keys are JSON: `"k0"` for the view key k0.
            let key: String = serde_json::from_slice(r.key.as_deref().unwrap()).unwrap();
            (key, v.to_string())
        })
        .collect()
}

fn check_state(what: &str, view: &View, expected: &Expected) -> Result<(), TestCaseError> {
    let status = view.status();
    prop_assert_eq!(status.late_records, 0, "{}: no record is late within grace", what);
    prop_assert_eq!(status.error_records, 0, "{}", what);
    prop_assert_eq!(status.watermark, expected.watermark, "{}: watermark", what);
    prop_assert_eq!(&scan_all(view), &expected.state, "{}: state", what);
    Ok(())
}

fn check_exactly_once(what: &str, emits: Vec<(String, String)>, expected: &Expected) -> Result<(), TestCaseError> {
    let n = emits.len();
    let set: BTreeSet<(String, String)> = emits.into_iter().collect();
    prop_assert_eq!(n, set.len(), "{}: a window emitted twice", what);
    prop_assert_eq!(&set, &expected.closed, "{}: emitted windows", what);
    Ok(())
}

fn checkpoint_path(dir: &Path, view: &str) -> std::path::PathBuf {
    dir.join("views").join(view).join("v1.checkpoint")
}

fn run_case(case: &Case, workers: usize) -> Result<(), TestCaseError> {
    let parts = case.records();
    let expected = batch(case, &parts);
    let clock = ManualClock::new(NOW_MS);
    let topic_config = TopicConfig::default().durability(Durability::None);
    let (dir1, dir2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (store1, views1) = open(dir1.path(), &clock, workers);
    let (mut store2, mut views2) = open(dir2.path(), &clock, workers);
    for (store, emits) in [(&store1, &["out_a", "out_b"][..]), (&store2, &["out_d"][..])] {
        store.create_topic("src", parts.len() as u32, topic_config.clone()).unwrap();
        for e in emits {
            store.create_topic(e, 1, topic_config.clone()).unwrap();
        }
    }
    let a = views1.create_json(case.spec("a", "out_a").as_bytes()).unwrap();
    let mut d = views2.create_json(case.spec("d", "out_d").as_bytes()).unwrap();

    // (a) and (d): live, in a random interleaving of appends and waits.
    let mut rng = Rng(case.interleave_seed | 1);
    let mut next = vec![0usize; parts.len()];
    let (mut step, mut saved, mut crashed) = (0usize, None, false);
    loop {
        let left: Vec<usize> = (0..parts.len()).filter(|&p| next[p] < parts[p].len()).collect();
        if left.is_empty() {
            break;
        }
        let p = left[rng.below(left.len() as u64) as usize];
        let n = (1 + rng.below(6) as usize).min(parts[p].len() - next[p]);
        let batch: Vec<NewRecord> = parts[p][next[p]..next[p] + n]
            .iter()
            .map(|r| NewRecord::new(json!({"k": r.key, "ts": r.t, "x": r.x, "s": r.s}).to_string()))
            .collect();
        next[p] += n;
        for store in [&store1, &store2] {
            store.topic("src").unwrap().partition(p as u32).unwrap().append(&batch).unwrap();
        }
        if rng.below(4) == 0 {
            caught_up(&a)?;
            caught_up(&d)?;
        }
        step += 1;
        if step == case.snapshot_step {
            // The base checkpoint and its delta log (segment-format.md §15).
            saved = std::fs::read(checkpoint_path(dir2.path(), "d"))
                .ok()
                .map(|base| (base, std::fs::read(checkpoint_path(dir2.path(), "d").with_extension("delta")).ok()));
        }
        if step == case.crash_step {
            (store2, views2, d) = crash(dir2.path(), &clock, workers, store2, views2, d, saved.take());
            crashed = true;
        }
    }
    if !crashed {
        (store2, views2, d) = crash(dir2.path(), &clock, workers, store2, views2, d, saved.take());
    }
    caught_up(&a)?;
    check_state("(a) live", &a, &expected)?;
    check_exactly_once("(a) live", emitted(&store1, "out_a", 0), &expected)?;

    // (b) a view created after the data.
    let b = views1.create_json(case.spec("b", "out_b").as_bytes()).unwrap();
    caught_up(&b)?;
    check_state("(b) created after the data", &b, &expected)?;
    check_exactly_once("(b) created after the data", emitted(&store1, "out_b", 0), &expected)?;

    // (c) a rebuild: version 2's emits follow version 1's.
    let from = store1.topic("out_a").unwrap().partition(0).unwrap().high_watermark();
    views1.rebuild("a", RebuildFrom::Beginning).unwrap();
    caught_up(&a)?;
    prop_assert_eq!(a.status().version, 2);
    check_state("(c) rebuilt", &a, &expected)?;
    check_exactly_once("(c) rebuilt", emitted(&store1, "out_a", from), &expected)?;

    // (d) across a crash: the state is exact; emits at least once, none wrong.
    caught_up(&d)?;
    check_state("(d) crash and resume", &d, &expected)?;
    let emits: BTreeSet<(String, String)> = emitted(&store2, "out_d", 0).into_iter().collect();
    prop_assert_eq!(&emits, &expected.closed, "(d) crash and resume: emitted windows");
    views2.close();
    Ok(())
}

/// Closes the store and views of `dir` and puts back `saved` as the view's checkpoint (none: a
/// crash before the first checkpoint), then reopens them: what a crash right after that checkpoint
/// leaves behind.
#[allow(clippy::too_many_arguments)]
fn crash(
    dir: &Path,
    clock: &Arc<ManualClock>,
    workers: usize,
    store: Store,
    views: Views,
    view: View,
    saved: Option<(Vec<u8>, Option<Vec<u8>>)>,
) -> (Store, Views, View) {
    drop(view);
    views.close();
    store.close().unwrap();
    let path = checkpoint_path(dir, "d");
    let (base, log) = match saved {
        Some((base, log)) => (Some(base), log),
        None => (None, None),
    };
    for (path, bytes) in [(path.clone(), base), (path.with_extension("delta"), log)] {
        match bytes {
            Some(bytes) => std::fs::write(&path, bytes).unwrap(),
            None => match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => panic!("{e}"),
            },
        }
    }
    let (store, views) = open(dir, clock, workers);
    let view = views.get("d").unwrap();
    (store, views, view)
}

#[test]
fn views_over_partitions_equal_a_batch_computation_live_after_rebuilt_and_resumed() {
    let seed: u64 = std::env::var("SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    let cases = std::env::var("CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(CASES_DEFAULT);
    eprintln!("view_event_time_model: SEED={seed} CASES={cases}");
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config { cases, max_shrink_iters: 200, failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &key));
    if let Err(e) = runner.run(&case_strategy(), |case| {
        WORKERS.iter().try_for_each(|&w| {
            run_case(&case, w).map_err(|e| TestCaseError::fail(format!("with {w} decode workers: {e}")))
        })
    }) {
        panic!("SEED={seed}: {e}");
    }
}
