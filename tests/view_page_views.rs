//! Page views per page (a count table): the streaming result equals a batch count over the whole
//! topic, while records keep arriving, and after a restart.

mod view_common;

use std::collections::BTreeMap;

use kappalog::{stream::ViewRunState, NewRecord, TopicConfig};
use serde_json::{json, Value};
use view_common::{all_records, open, scan_all, wait, Rng};

const SPEC: &str = r#"{"name": "views_per_page", "source": {"topics": ["page-views"]},
    "key": "/page", "aggregates": {"views": {"op": "count"}}}"#;

fn produce(store: &kappalog::Store, rng: &mut Rng, n: usize) -> u64 {
    let topic = store.topic("page-views").unwrap();
    let mut bad = 0;
    let mut batch = Vec::new();
    for i in 0..n {
        let user = format!("u{}", rng.below(50));
        let value = match rng.below(100) {
            0 => {
                bad += 1;
                "not json".to_string()
            }
            1 => {
                bad += 1;
                json!({"user": user}).to_string() // no page
            }
            _ => json!({"page": format!("/p{}", rng.below(40)), "user": user}).to_string(),
        };
        batch.push(NewRecord::keyed(user, value));
        if batch.len() == 500 || i + 1 == n {
            topic.append(&batch).unwrap();
            batch.clear();
        }
    }
    bad
}

fn batch_counts(store: &kappalog::Store) -> BTreeMap<String, Value> {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for (_, r) in all_records(store, "page-views") {
        let Ok(v) = serde_json::from_slice::<Value>(r.value.as_deref().unwrap()) else { continue };
        if let Some(page) = v.get("page").and_then(Value::as_str) {
            *counts.entry(page.to_string()).or_default() += 1;
        }
    }
    counts.into_iter().map(|(k, n)| (k, json!({"views": n}))).collect()
}

#[test]
fn count_table_matches_a_batch_count_across_tailing_and_restart() {
    let mut rng = Rng::from_env("page_views");
    let dir = tempfile::tempdir().unwrap();
    let mut bad = 0;
    {
        let (store, views) = open(dir.path());
        store.create_topic("page-views", 3, TopicConfig::default()).unwrap();
        bad += produce(&store, &mut rng, 5_000);
        let view = views.create_json(SPEC.as_bytes()).unwrap();
        // More records while the view runs: it tails.
        bad += produce(&store, &mut rng, 5_000);
        wait(&view);
        assert_eq!(scan_all(&view), batch_counts(&store));
        let status = view.status();
        assert_eq!(status.state, ViewRunState::Running);
        assert_eq!(status.error_records, bad);
        assert_eq!(status.counters.records_read, 10_000);
        assert!(status.lag.iter().all(|l| l.lag == 0) && status.lag.len() == 3, "{:?}", status.lag);
        assert_eq!(view.get("/p3").unwrap().value, batch_counts(&store).get("/p3").cloned());
        assert_eq!(view.scan("/p1", 100).len(), 11, "/p1 and /p10../p19");
        assert!(view.get("/nope").is_none());
    }
    // The definition and the state survive a restart; new records add to it.
    let (store, views) = open(dir.path());
    assert_eq!(views.list(), vec!["views_per_page".to_string()]);
    let view = views.get("views_per_page").unwrap();
    bad += produce(&store, &mut rng, 2_000);
    wait(&view);
    assert_eq!(scan_all(&view), batch_counts(&store));
    assert_eq!(view.status().error_records, bad);
    assert_eq!(view.status().counters.records_read, 12_000, "nothing read twice after the restart");
}
