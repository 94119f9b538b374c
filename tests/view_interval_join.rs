//! Windowed stream-stream joins: impressions joined with the clicks on the same ad within
//! `within_ms` of them. Random impressions and clicks over 1-3 partitions each, every partition
//! out of order by at most `grace_ms`; inner or left; the clicks' time their record timestamp or a
//! `time` pointer; with or without a tumbling window. The view (pairs and click cost per ad, or per
//! ad and window of the impression's time) equals a batch interval join computed
//! here, and a left join's unmatched impressions (applied with `click: null`, so an error record
//! for the cost's sum) are exactly the batch's, when the view
//! (a) runs live while the records are appended in a random interleaving, waiting for it at
//!     random moments, and is closed and reopened (resuming from its checkpoint) in the middle,
//! (b) is created after the data,
//! (c) is rebuilt.
//!
//! `SEED=<n>` replays a run; `CASES=<n>` sets the number of random cases.

mod view_common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kappalog::{clock::ManualClock, stream::RebuildFrom, NewRecord, Store, StoreConfig, TopicConfig, View, Views};
use serde_json::{json, Value};
use view_common::{fast_views, scan_all, Rng};

const NOW_MS: i64 = 2_000_000;
const BASE_MS: i64 = 1_000_000;

#[derive(Debug, Clone)]
struct Rec {
    t: i64,
    ad: String,
    /// The impression id, or the click's cost.
    n: i64,
}

struct Case {
    left: bool,
    /// A tumbling window of the impressions' time (grace `within + grace`), or none.
    window: Option<i64>,
    click_time_pointer: bool,
    within: i64,
    grace: i64,
    impressions: Vec<Vec<Rec>>,
    clicks: Vec<Vec<Rec>>,
}

/// Per partition, records whose times are at most `grace` behind the partition's highest.
fn partitions(rng: &mut Rng, grace: i64, ids: &mut i64) -> Vec<Vec<Rec>> {
    (0..1 + rng.below(3))
        .map(|_| {
            let mut max = BASE_MS + rng.below(200) as i64;
            (0..rng.below(40))
                .map(|_| {
                    let t = max + rng.below(12) as i64 - grace * rng.below(1001) as i64 / 1000;
                    max = max.max(t);
                    *ids += 1;
                    Rec { t, ad: format!("a{}", rng.below(4)), n: *ids }
                })
                .collect()
        })
        .collect()
}

fn generate(rng: &mut Rng) -> Case {
    let grace = rng.below(30) as i64;
    let mut ids = 0;
    Case {
        left: rng.below(2) == 0,
        window: (rng.below(2) == 0).then(|| 5 + rng.below(40) as i64),
        click_time_pointer: rng.below(2) == 0,
        within: rng.below(25) as i64,
        grace,
        impressions: partitions(rng, grace, &mut ids),
        clicks: partitions(rng, grace, &mut ids),
    }
}

impl Case {
    fn spec(&self, name: &str) -> String {
        let mut join = json!({"stream": "clicks", "on": "/ad_id", "other_key": "/ad_id", "within_ms": self.within,
            "grace_ms": self.grace, "as": "click", "type": if self.left { "left" } else { "inner" }});
        if self.click_time_pointer {
            join["time"] = json!("/ts");
        }
        let mut spec = json!({"name": name, "source": {"topics": ["impressions"]}, "join": join, "key": "/ad_id",
            "aggregates": {"pairs": {"op": "count"}, "cost": {"op": "sum", "field": "/click/cost"}}});
        if let Some(size) = self.window {
            // A pair is applied when its second record comes: at most within + grace after the
            // impression's time.
            spec["window"] = json!({"type": "tumbling", "size_ms": size, "grace_ms": self.within + self.grace});
        }
        spec.to_string()
    }

    /// The batch interval join: per ad, the pairs within `within` and their cost; and how many
    /// impressions have no click within it.
    fn expected(&self) -> (BTreeMap<String, Value>, u64) {
        let clicks: Vec<&Rec> = self.clicks.iter().flatten().collect();
        let mut per_ad: BTreeMap<(String, i64), (u64, i64)> = BTreeMap::new();
        let mut unmatched = 0;
        for i in self.impressions.iter().flatten() {
            let mut any = false;
            let start = self.window.map_or(0, |size| i.t.div_euclid(size) * size);
            for c in clicks.iter().filter(|c| c.ad == i.ad && (c.t - i.t).abs() <= self.within) {
                let g = per_ad.entry((i.ad.clone(), start)).or_default();
                g.0 += 1;
                g.1 += c.n;
                any = true;
            }
            unmatched += u64::from(!any);
        }
        let mut state: BTreeMap<String, Value> = BTreeMap::new();
        for ((ad, start), (n, cost)) in per_ad {
            let value = json!({"pairs": n, "cost": cost});
            match self.window {
                None => {
                    state.insert(ad, value);
                }
                Some(size) => {
                    let w = json!({"start": start, "end": start + size, "value": value});
                    state.entry(ad).or_insert_with(|| json!([])).as_array_mut().unwrap().push(w);
                }
            }
        }
        (state, if self.left { unmatched } else { 0 })
    }

    fn record(&self, topic: &str, r: &Rec) -> NewRecord {
        if topic == "impressions" {
            NewRecord::new(json!({"imp": r.n, "ad_id": r.ad}).to_string()).with_timestamp(r.t)
        } else if self.click_time_pointer {
            NewRecord::new(json!({"ad_id": r.ad, "cost": r.n, "ts": r.t}).to_string())
        } else {
            NewRecord::new(json!({"ad_id": r.ad, "cost": r.n}).to_string()).with_timestamp(r.t)
        }
    }

    /// A record far after the others in every partition: the watermark passes every window.
    fn flush(&self, store: &Store) {
        let t = BASE_MS + 100_000;
        for (topic, parts) in [("impressions", &self.impressions), ("clicks", &self.clicks)] {
            for p in 0..parts.len() as u32 {
                let r = self.record(topic, &Rec { t, ad: "flush".into(), n: 0 });
                store.topic(topic).unwrap().partition(p).unwrap().append(&[r]).unwrap();
            }
        }
    }
}

fn open(dir: &Path, clock: &Arc<ManualClock>) -> (Store, Views) {
    let store = Store::open(dir, StoreConfig::default().clock(clock.clone())).unwrap();
    let views = Views::open(&store, fast_views().read_records_max(5)).unwrap();
    (store, views)
}

fn caught_up(view: &View) {
    assert!(view.wait_caught_up(Duration::from_secs(60)), "did not catch up: {:#?}", view.status());
}

fn check(what: &str, view: &View, case: &Case, expected: &BTreeMap<String, Value>, unmatched: u64) {
    let status = view.status();
    assert_eq!(status.late_records, 0, "{what}: none is late within grace: {status:#?}");
    assert_eq!(status.error_records, unmatched, "{what}: left join: the unmatched impressions, once each");
    let mut state = scan_all(view);
    let flush = state.remove("flush").map(|f| if case.window.is_some() { f[0]["value"].clone() } else { f });
    let n = (case.impressions.len() * case.clicks.len()) as u64;
    assert_eq!(flush.map(|f| f["pairs"].clone()), Some(json!(n)), "{what}: the flush records pair up");
    assert_eq!(&state, expected, "{what}: the batch interval join");
}

#[test]
fn impressions_join_clicks_within_the_window_live_after_and_rebuilt() {
    let mut rng = Rng::from_env("view_interval_join");
    let cases = std::env::var("CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(12);
    for case_number in 0..cases {
        let case = generate(&mut rng);
        let (expected, unmatched) = case.expected();
        let what = format!(
            "case {case_number} (left {}, window {:?}, pointer {}, within {}, grace {}, {}+{} partitions)",
            case.left,
            case.window,
            case.click_time_pointer,
            case.within,
            case.grace,
            case.impressions.len(),
            case.clicks.len()
        );
        let clock = ManualClock::new(NOW_MS);
        let dir = tempfile::tempdir().unwrap();
        let (mut store, mut views) = open(dir.path(), &clock);
        store.create_topic("impressions", case.impressions.len() as u32, TopicConfig::default()).unwrap();
        store.create_topic("clicks", case.clicks.len() as u32, TopicConfig::default()).unwrap();
        let mut live = views.create_json(case.spec("a").as_bytes()).unwrap();
        // A random interleaving of the partitions, each in its own order.
        let inputs: Vec<(&str, u32, &Vec<Rec>)> = [("impressions", &case.impressions), ("clicks", &case.clicks)]
            .into_iter()
            .flat_map(|(topic, parts)| parts.iter().enumerate().map(move |(p, rs)| (topic, p as u32, rs)))
            .collect();
        let mut next = vec![0usize; inputs.len()];
        let total: usize = inputs.iter().map(|(_, _, rs)| rs.len()).sum();
        let reopen_at = rng.below(total as u64 + 1) as usize;
        let mut done = 0;
        loop {
            let left: Vec<usize> = (0..inputs.len()).filter(|&i| next[i] < inputs[i].2.len()).collect();
            if left.is_empty() {
                break;
            }
            let i = left[rng.below(left.len() as u64) as usize];
            let (topic, p, rs) = inputs[i];
            let n = (1 + rng.below(4) as usize).min(rs.len() - next[i]);
            let batch: Vec<NewRecord> = rs[next[i]..next[i] + n].iter().map(|r| case.record(topic, r)).collect();
            store.topic(topic).unwrap().partition(p).unwrap().append(&batch).unwrap();
            next[i] += n;
            if done <= reopen_at && reopen_at < done + n {
                drop(live);
                views.close();
                store.close().unwrap();
                (store, views) = open(dir.path(), &clock);
                live = views.get("a").unwrap();
            }
            done += n;
            if rng.below(4) == 0 {
                caught_up(&live);
            }
        }
        case.flush(&store);
        caught_up(&live);
        check(&format!("{what} (a) live"), &live, &case, &expected, unmatched);
        let after = views.create_json(case.spec("b").as_bytes()).unwrap();
        caught_up(&after);
        check(&format!("{what} (b) created after"), &after, &case, &expected, unmatched);
        views.rebuild("a", RebuildFrom::Beginning).unwrap();
        caught_up(&live);
        assert_eq!(live.status().version, 2);
        check(&format!("{what} (c) rebuilt"), &live, &case, &expected, unmatched);
        views.close();
    }
}
