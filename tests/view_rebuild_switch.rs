//! Changing a view's definition rebuilds it beside the current version; queries from another
//! thread never fail and never see a half-built state; the new version takes over atomically and
//! the old checkpoint is deleted. A rebuild from a timestamp starts at `offset_for_timestamp`.

mod view_common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use kappalog::{
    stream::{RebuildFrom, ViewRunState},
    NewRecord, TopicConfig, ViewSpec,
};
use serde_json::{json, Value};
use view_common::{all_records, open, scan_all, wait};

const V1: &str = r#"{"name": "clicks_per_user", "source": {"topics": ["clicks"]}, "key": "/user",
    "aggregates": {"n": {"op": "count"}}}"#;
const V2: &str = r#"{"name": "clicks_per_user", "source": {"topics": ["clicks"]}, "key": "/user",
    "aggregates": {"n": {"op": "count"}, "total": {"op": "sum", "field": "/ms"}}}"#;
const RECORDS: i64 = 50_000;
const T0: i64 = 1_000_000;

fn expected(store: &kappalog::Store, with_total: bool, from_ts: i64) -> BTreeMap<String, Value> {
    let mut m: BTreeMap<String, (u64, i64)> = BTreeMap::new();
    for (_, r) in all_records(store, "clicks") {
        if r.timestamp < from_ts {
            continue;
        }
        let v: Value = serde_json::from_slice(r.value.as_deref().unwrap()).unwrap();
        let e = m.entry(v["user"].as_str().unwrap().to_string()).or_default();
        e.0 += 1;
        e.1 += v["ms"].as_i64().unwrap();
    }
    m.into_iter()
        .map(|(k, (n, total))| (k, if with_total { json!({"n": n, "total": total}) } else { json!({"n": n}) }))
        .collect()
}

#[test]
fn definition_change_rebuilds_while_queries_see_old_or_new_never_partial() {
    let dir = tempfile::tempdir().unwrap();
    let (store, views) = open(dir.path());
    let topic = store.create_topic("clicks", 2, TopicConfig::default()).unwrap();
    for chunk in (0..RECORDS).collect::<Vec<_>>().chunks(5_000) {
        topic
            .append(
                &chunk
                    .iter()
                    .map(|i| {
                        let user = format!("u{}", i % 97);
                        NewRecord::keyed(user.clone(), json!({"user": user, "ms": i % 1000}).to_string())
                            .with_timestamp(T0 + i)
                    })
                    .collect::<Vec<_>>(),
            )
            .unwrap();
    }
    let view = views.create_json(V1.as_bytes()).unwrap();
    wait(&view);
    let old = expected(&store, false, 0);
    let new = expected(&store, true, 0);
    assert_eq!(scan_all(&view), old);

    let stop = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicBool::new(false));
    let reader = {
        let (view, stop, old, new) = (view.clone(), Arc::clone(&stop), old.clone(), new.clone());
        let started = Arc::clone(&started);
        std::thread::spawn(move || {
            let (mut saw_old, mut saw_new, mut queries) = (0u64, 0u64, 0u64);
            while !stop.load(Ordering::Acquire) {
                let got = scan_all(&view);
                queries += 1;
                if got == old {
                    assert_eq!(saw_new, 0, "went back to the old version");
                    saw_old += 1;
                } else if got == new {
                    saw_new += 1;
                } else {
                    panic!("a query saw a state that is neither the old nor the new version");
                }
                let one = view.get("u5").expect("a key never disappears during the switch").value.unwrap();
                assert!(one == old["u5"] || one == new["u5"], "{one}");
                started.store(true, Ordering::Release);
            }
            (saw_old, saw_new, queries)
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !started.load(Ordering::Acquire) {
        assert!(std::time::Instant::now() < deadline, "the reader thread never queried");
        std::thread::yield_now();
    }
    // The same definition changes nothing.
    views.update(ViewSpec::from_json(V1.as_bytes()).unwrap()).unwrap();
    assert_eq!(view.status().version, 1);
    assert_eq!(view.status().state, ViewRunState::Running);

    views.update(ViewSpec::from_json(V2.as_bytes()).unwrap()).unwrap();
    let status = view.status();
    assert_eq!(status.state, ViewRunState::Rebuilding, "{status:?}");
    assert_eq!(status.version, 1, "the old version serves during the rebuild");
    let progress = status.rebuild.unwrap();
    assert_eq!(progress.version, 2);
    assert_eq!(progress.targets.iter().map(|t| t.target_offset - t.start_offset).sum::<u64>(), RECORDS as u64);
    assert!((0.0..=100.0).contains(&progress.percent));
    wait(&view);
    stop.store(true, Ordering::Release);
    let (saw_old, saw_new, queries) = reader.join().unwrap();
    eprintln!("{queries} queries: {saw_old} saw the old version, {saw_new} the new");
    assert!(saw_old > 0 && queries > 1);
    let status = view.status();
    assert_eq!((status.version, status.state), (2, ViewRunState::Running));
    assert_eq!(status.spec.unwrap(), ViewSpec::from_json(V2.as_bytes()).unwrap());
    assert_eq!(scan_all(&view), new);
    // A version's files besides its delta log (`v<N>.delta`, present once it checkpointed incrementally).
    let files = |dir: &std::path::Path| -> Vec<String> {
        let mut f: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| {
                !n.ends_with(".delta") || !std::path::Path::new(dir).join(n.replace(".delta", ".checkpoint")).exists()
            })
            .collect();
        f.sort();
        f
    };
    let view_dir = dir.path().join("views/clicks_per_user");
    assert_eq!(files(&view_dir), vec!["v2.checkpoint", "view.json"], "the old checkpoint is deleted");

    // Rebuild from a timestamp: only records at or after it count.
    let from = T0 + RECORDS / 2 + 17;
    views.rebuild("clicks_per_user", RebuildFrom::Timestamp(from)).unwrap();
    wait(&view);
    assert_eq!(view.status().version, 3);
    assert_eq!(scan_all(&view), expected(&store, true, from));
    assert_eq!(files(&view_dir), vec!["v3.checkpoint", "view.json"]);
    // View handles hold the store open, like the views themselves.
    drop((view, views, store));

    // The switch is durable.
    let (_store, views) = open(dir.path());
    let view = views.get("clicks_per_user").unwrap();
    assert_eq!(view.status().version, 3);
    wait(&view);
    assert_eq!(view.status().counters.records_read, (RECORDS - (from - T0)) as u64);
}
