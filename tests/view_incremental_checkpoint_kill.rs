//! Incremental checkpoints across `kill -9`: a child process appends records over many keys and
//! runs a view that checkpoints every few hundred records (most checkpoints are records of the
//! delta log `v1.delta`, now and then a new base). The parent kills it at random moments (so also
//! while a base or a delta is being written), several times, then reopens and compares the view
//! with a recomputation over the whole topic: no record counted twice, none missed.

mod view_common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kappalog::{NewRecord, Store, StoreConfig, TopicConfig, Views, ViewsConfig};
use serde_json::{json, Value};
use view_common::{all_records, open, scan_all, wait, Rng};

const CHILD_ENV: &str = "KAPPALOG_VIEW_INCR_KILL_CHILD_DIR";
const VIEW: &str = "per_user";
const KEYS: u64 = 4_000;
const SPEC: &str = r#"{"name": "per_user", "source": {"topics": ["events"]}, "key": "/user",
    "aggregates": {"n": {"op": "count"}, "total": {"op": "sum", "field": "/amount"}}}"#;

fn events(seed: u64, n: usize) -> Vec<NewRecord> {
    let mut rng = Rng(seed | 1);
    (0..n)
        .map(|_| {
            let user = format!("user-{:05}", rng.below(KEYS));
            NewRecord::new(json!({"user": user, "amount": rng.below(100)}).to_string())
        })
        .collect()
}

/// The child: resumes the view and appends until killed, printing a line per append and whether
/// the delta log exists.
#[test]
fn child_process() {
    let Ok(dir) = std::env::var(CHILD_ENV) else { return };
    let store = Store::open(&dir, StoreConfig::default()).unwrap();
    let config = ViewsConfig::default()
        .checkpoint_interval_ms(2)
        .checkpoint_interval_records(200)
        .read_records_max(100)
        .idle_wait_ms(2);
    let _views = Views::open(&store, config).unwrap();
    let topic = store.topic("events").unwrap();
    let delta = std::path::Path::new(&dir).join("views").join(VIEW).join("v1.delta");
    for i in 0u64.. {
        topic.append(&events(i.wrapping_mul(0x9E37_79B9_7F4A_7C15), 300)).unwrap();
        println!("appended {i} delta={}", delta.exists());
    }
}

fn recompute(store: &Store) -> BTreeMap<String, Value> {
    let mut m: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (_, r) in all_records(store, "events") {
        let v: Value = serde_json::from_slice(r.value.as_deref().unwrap()).unwrap();
        let e = m.entry(v["user"].as_str().unwrap().to_string()).or_default();
        e.0 += 1;
        e.1 += v["amount"].as_u64().unwrap();
    }
    m.into_iter().map(|(k, (n, total))| (k, json!({"n": n, "total": total}))).collect()
}

#[test]
fn kill_nine_during_incremental_checkpoints_then_resume_exactly_once() {
    let mut rng = Rng::from_env("incremental_kill_nine");
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, views) = open(dir.path());
        store.create_topic("events", 2, TopicConfig::default()).unwrap();
        store.topic("events").unwrap().append(&events(rng.next(), 10_000)).unwrap();
        let view = views.create_json(SPEC.as_bytes()).unwrap();
        wait(&view);
    }
    let mut saw_delta = false;
    for round in 0..6 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["child_process", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let appends_before_kill = 1 + rng.below(12);
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut seen = 0;
        while seen < appends_before_kill {
            assert!(Instant::now() < deadline, "round {round}: the child made no progress");
            match lines.next() {
                Some(Ok(l)) if l.starts_with("appended") => {
                    seen += 1;
                    saw_delta |= l.ends_with("delta=true");
                }
                Some(_) => {}
                None => panic!("round {round}: the child exited: {:?}", child.wait()),
            }
        }
        // A random moment within the next few checkpoints.
        std::thread::sleep(Duration::from_micros(rng.below(20_000)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        eprintln!("round {round}: killed after {seen} appends");
    }
    assert!(saw_delta, "the child wrote incremental checkpoints");
    let (store, views) = open(dir.path());
    let total: u64 = store.topic("events").unwrap().partitions().iter().map(|p| p.high_watermark()).sum();
    let view = views.get(VIEW).unwrap();
    wait(&view);
    assert_eq!(scan_all(&view), recompute(&store));
    assert!(total > 10_000, "the children appended");
    assert_eq!(view.status().counters.records_read, total, "each record read exactly once into the state");
}
