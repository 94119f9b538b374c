//! `GET /views/{v}/keys/{k}?from=&to=` on a windowed (hopping) view: the windows returned are
//! exactly those whose start is in `from..to` (from inclusive, to exclusive; either may be left
//! out), computed independently from what was produced; values that are not milliseconds, and a
//! `from` past `to`, are 400s naming the parameter. Set SEED to replay.

mod broker_common;
mod broker_views_common;

use std::collections::BTreeMap;

use broker_common::Broker;
use broker_views_common::*;
use serde_json::{json, Value};

const SIZE_MS: i64 = 60_000;
const ADVANCE_MS: i64 = 20_000;
const RECORDS: usize = 1500;
/// Event times of most keys fall in `T0..T0 + SPAN_MS`; the key "early" straddles zero.
const T0: i64 = 1_700_000_000_000;
const SPAN_MS: i64 = 10 * SIZE_MS;

/// Grace far beyond every event time used: no window closes, none is late, none is evicted.
const SPEC: &str = r#"{"name": "per_user", "source": {"topics": ["events"]}, "key": "/user",
    "window": {"type": "hopping", "size_ms": 60000, "advance_ms": 20000, "grace_ms": 4000000000000, "time": "/ts"},
    "aggregates": {"n": {"op": "count"}, "total": {"op": "sum", "field": "/amount"}}}"#;

/// key → window start → (end, count, total), from the produced records alone.
type Expected = BTreeMap<String, BTreeMap<i64, (i64, u64, i64)>>;

fn expected(records: &[(String, Value)]) -> Expected {
    let mut out = Expected::new();
    for (_, v) in records {
        let (user, t, amount) = (v["user"].as_str().unwrap(), v["ts"].as_i64().unwrap(), v["amount"].as_i64().unwrap());
        // Every start k * ADVANCE_MS with start <= t < start + SIZE_MS.
        let mut start = t.div_euclid(ADVANCE_MS) * ADVANCE_MS;
        while start > t - SIZE_MS {
            let w = out.entry(user.to_string()).or_default().entry(start).or_insert((start + SIZE_MS, 0, 0));
            w.1 += 1;
            w.2 += amount;
            start -= ADVANCE_MS;
        }
    }
    out
}

fn windows_of(body: &Value) -> Vec<(i64, i64, u64, i64)> {
    body["windows"]
        .as_array()
        .unwrap_or_else(|| panic!("no windows in {body}"))
        .iter()
        .map(|w| {
            (
                w["start"].as_i64().unwrap(),
                w["end"].as_i64().unwrap(),
                w["value"]["n"].as_u64().unwrap(),
                w["value"]["total"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn in_range(all: &BTreeMap<i64, (i64, u64, i64)>, from: Option<i64>, to: Option<i64>) -> Vec<(i64, i64, u64, i64)> {
    all.iter()
        .filter(|(s, _)| from.is_none_or(|f| **s >= f) && to.is_none_or(|t| **s < t))
        .map(|(s, (e, n, total))| (*s, *e, *n, *total))
        .collect()
}

fn query(from: Option<i64>, to: Option<i64>) -> String {
    let mut q = Vec::new();
    if let Some(f) = from {
        q.push(format!("from={f}"));
    }
    if let Some(t) = to {
        q.push(format!("to={t}"));
    }
    if q.is_empty() {
        String::new()
    } else {
        format!("?{}", q.join("&"))
    }
}

#[test]
fn window_range_query_returns_exactly_the_windows_starting_in_range() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let http = broker.client();
    http.create_topic("events", 2, json!({}));
    let (s, created) = http.post("/views", &serde_json::from_str::<Value>(SPEC).unwrap());
    assert_eq!(s, 201, "{created}");

    let mut rng = Rng::from_env("window_range_query");
    let mut records = Vec::with_capacity(RECORDS);
    for _ in 0..RECORDS {
        let (user, ts) = if rng.below(10) == 0 {
            ("early".to_string(), rng.below(4 * SIZE_MS as u64) as i64 - 2 * SIZE_MS)
        } else {
            (format!("u{}", rng.below(4)), T0 + rng.below(SPAN_MS as u64) as i64)
        };
        let amount = rng.below(1000) as i64 - 100;
        records.push((user.clone(), json!({"user": user, "ts": ts, "amount": amount})));
    }
    produce_json(&http, "events", &records);
    let want = expected(&records);
    wait_caught_up(&http, "per_user", 1);
    let (_, status) = http.get("/views/per_user");
    assert_eq!(status["late_records"], 0, "{status}");

    let mut queries = 0;
    for (user, all) in &want {
        let path = format!("/views/per_user/keys/{user}");
        let (s, body) = http.get(&path);
        assert_eq!(s, 200, "{body}");
        assert_eq!(windows_of(&body), in_range(all, None, None), "{user}: every window");
        let starts: Vec<i64> = all.keys().copied().collect();
        let (lo, hi) = (starts[0], *starts.last().unwrap());
        // Bounds at window starts, one off either side, outside everything, and random ones.
        let mut bounds = vec![None, Some(lo), Some(hi), Some(lo - 1), Some(hi + 1), Some(i64::MIN), Some(i64::MAX)];
        for _ in 0..6 {
            let s = starts[rng.below(starts.len() as u64) as usize];
            bounds.push(Some(s + rng.below(3) as i64 - 1));
            bounds.push(Some(lo + rng.below((hi - lo + 1) as u64) as i64));
        }
        for &from in &bounds {
            for &to in &bounds {
                if let (Some(f), Some(t)) = (from, to) {
                    if f > t {
                        continue;
                    }
                }
                let (s, body) = http.get(&format!("{path}{}", query(from, to)));
                assert_eq!(s, 200, "{user} from={from:?} to={to:?}: {body}");
                assert_eq!(body["key"], json!(user));
                assert_eq!(
                    windows_of(&body),
                    in_range(all, from, to),
                    "{user}: windows starting in from={from:?}..to={to:?}"
                );
                queries += 1;
            }
        }
        // from == to: an empty range, not an error.
        let (s, body) = http.get(&format!("{path}?from={lo}&to={lo}"));
        assert_eq!((s, windows_of(&body)), (200, vec![]), "{body}");
    }
    eprintln!("{queries} range queries over {} keys", want.len());
    assert!(want.contains_key("early") && want["early"].keys().any(|s| *s < 0), "negative window starts tested");

    // Bad values: 400, naming the parameter.
    for (q, param) in [
        ("from=abc", "from"),
        ("to=1.5", "to"),
        ("from=", "from"),
        ("to=99999999999999999999", "to"),
        ("from=0&to=x", "to"),
        ("from=--1", "from"),
    ] {
        let (s, e) = http.get(&format!("/views/per_user/keys/u0?{q}"));
        assert_eq!((s, e["error_code"].as_i64()), (400, Some(40000)), "?{q}: {e}");
        let message = e["message"].as_str().unwrap();
        assert!(message.contains(&format!("{param}=")), "?{q}: the message names {param}: {message}");
    }
    // from past to is a mistake, not an empty range (and must not take the handler down).
    let (s, e) = http.get("/views/per_user/keys/u0?from=100&to=99");
    assert_eq!((s, e["error_code"].as_i64()), (400, Some(40000)), "{e}");
    let message = e["message"].as_str().unwrap();
    assert!(message.contains("from=100") && message.contains("to=99"), "{message}");
    // Absent key: 404 whatever the range.
    let (s, e) = http.get("/views/per_user/keys/nobody?from=0&to=10");
    assert_eq!((s, e["error_code"].as_i64()), (404, Some(40411)), "{e}");
    let (s, h) = http.get("/health");
    assert_eq!(s, 200, "{h}");
}
