//! Exactly-once state across `kill -9`: a child process appends records and runs a view that
//! checkpoints often; the parent kills it mid-stream (several times), reopens, and compares the
//! view with a recomputation over the whole topic: no record counted twice, none missed.

mod view_common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kappalog::{NewRecord, Store, StoreConfig, TopicConfig, Views, ViewsConfig};
use serde_json::{json, Value};
use view_common::{all_records, open, scan_all, wait, Rng};

const CHILD_ENV: &str = "KAPPALOG_VIEW_KILL_CHILD_DIR";
const VIEW: &str = "spend_per_user";
const SPEC: &str = r#"{"name": "spend_per_user", "source": {"topics": ["payments"]}, "key": "/user",
    "filter": {"field": "/amount", "op": "gt", "value": 0},
    "aggregates": {"n": {"op": "count"}, "total": {"op": "sum", "field": "/amount"}}}"#;

fn payments(seed: u64, n: usize) -> Vec<NewRecord> {
    let mut rng = Rng(seed | 1);
    (0..n)
        .map(|_| {
            let user = format!("u{}", rng.below(30));
            let amount = rng.below(1000) as i64 - 50;
            NewRecord::keyed(user.clone(), json!({"user": user, "amount": amount}).to_string())
        })
        .collect()
}

/// The child: resumes the view and appends until killed, printing a line per append.
#[test]
fn child_process() {
    let Ok(dir) = std::env::var(CHILD_ENV) else { return };
    let store = Store::open(&dir, StoreConfig::default()).unwrap();
    let config = ViewsConfig::default()
        .checkpoint_interval_ms(5)
        .checkpoint_interval_records(300)
        .read_records_max(200)
        .idle_wait_ms(5);
    let _views = Views::open(&store, config).unwrap();
    let topic = store.topic("payments").unwrap();
    for i in 0u64.. {
        topic.append(&payments(i.wrapping_mul(0x9E37_79B9_7F4A_7C15), 2_000)).unwrap();
        println!("appended {i}");
    }
}

fn recompute(store: &Store) -> BTreeMap<String, Value> {
    let mut m: BTreeMap<String, (u64, i64)> = BTreeMap::new();
    for (_, r) in all_records(store, "payments") {
        let v: Value = serde_json::from_slice(r.value.as_deref().unwrap()).unwrap();
        let amount = v["amount"].as_i64().unwrap();
        if amount > 0 {
            let e = m.entry(v["user"].as_str().unwrap().to_string()).or_default();
            e.0 += 1;
            e.1 += amount;
        }
    }
    m.into_iter().map(|(k, (n, total))| (k, json!({"n": n, "total": total}))).collect()
}

#[test]
fn kill_nine_mid_stream_then_resume_exactly_once() {
    let mut rng = Rng::from_env("kill_nine");
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, views) = open(dir.path());
        store.create_topic("payments", 2, TopicConfig::default()).unwrap();
        store.topic("payments").unwrap().append(&payments(rng.next(), 20_000)).unwrap();
        views.create_json(SPEC.as_bytes()).unwrap();
    }
    let checkpoint = dir.path().join("views").join(VIEW).join("v1.checkpoint");
    for round in 0..3 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["child_process", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let appends_before_kill = 2 + rng.below(10);
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut seen = 0;
        while seen < appends_before_kill {
            assert!(Instant::now() < deadline, "round {round}: the child made no progress");
            match lines.next() {
                Some(Ok(l)) if l.starts_with("appended") => seen += 1,
                Some(_) => {}
                None => panic!("round {round}: the child exited: {:?}", child.wait()),
            }
        }
        assert!(checkpoint.exists(), "round {round}: the child never checkpointed");
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        eprintln!("round {round}: killed after {seen} appends");
    }
    // The base checkpoint (format: segment-format.md §15; the incremental checkpoints after it
    // are in its delta log) is behind the log: the view must resume mid-stream, not from the
    // beginning and not from the end.
    let bytes = std::fs::read(&checkpoint).unwrap();
    assert_eq!((&bytes[..4], &bytes[4..8]), (&b"KLVC"[..], &3u32.to_le_bytes()[..]));
    let snap: Value = serde_json::from_slice(&bytes[28..]).unwrap();
    let checkpointed = snap["counters"]["records_read"].as_u64().unwrap();
    let offsets: u64 = snap["offsets"].as_array().unwrap().iter().map(|o| o["next_offset"].as_u64().unwrap()).sum();
    assert_eq!(offsets, checkpointed, "the state reflects exactly the offsets stored with it");
    let (store, views) = open(dir.path());
    let total: u64 = store.topic("payments").unwrap().partitions().iter().map(|p| p.high_watermark()).sum();
    // Usually behind (the kill lands while the view applies a burst); never ahead.
    eprintln!("last checkpoint covers {checkpointed} of {total} records");
    assert!(checkpointed > 0 && checkpointed <= total, "checkpoint at {checkpointed} of {total}");
    let view = views.get(VIEW).unwrap();
    wait(&view);
    let expected = recompute(&store);
    assert_eq!(scan_all(&view), expected);
    assert!(total > 20_000, "the children appended");
    assert_eq!(view.status().counters.records_read, total, "each record read exactly once into the state");
}
