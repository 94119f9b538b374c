//! A fraud detector: transactions joined with the user's risk tier from the `users` table (as of
//! each transaction's time: some users change tier during the history), low-risk users' left out;
//! per user, a session window (10 minutes of inactivity closes it) with more than 10 transactions
//! and a total above 50000 writes an alert to `fraud-alerts` when the session closes. The alerts
//! equal an independent batch as-of join and sessionization of the whole history.

mod view_common;

use std::collections::{BTreeMap, BTreeSet};

use kappalog::{NewRecord, TopicConfig};
use serde_json::{json, Value};
use view_common::{all_records, open, wait, Rng};

const GAP_MS: i64 = 10 * 60 * 1000;
const SPEC: &str = r#"{ "name": "fraud",
  "source": { "topics": ["transactions"] },
  "join": { "table": "users", "on": "/user", "as": "profile" },
  "filter": { "field": "/profile/risk", "op": "in", "value": ["high", "medium"] },
  "key": "/user",
  "window": { "type": "session", "gap_ms": 600000, "grace_ms": 3600000 },
  "aggregates": { "n": { "op": "count" }, "total": { "op": "sum", "field": "/amount" },
                  "largest": { "op": "max", "field": "/amount" } },
  "having": { "all": [ { "field": "/n", "op": "gt", "value": 10 },
                       { "field": "/total", "op": "gt", "value": 50000 } ] },
  "emit": { "topic": "fraud-alerts", "on": "window_close" } }"#;

#[test]
fn session_alerts_match_a_batch_sessionization() {
    let mut rng = Rng::from_env("fraud_sessions");
    let dir = tempfile::tempdir().unwrap();
    let (store, views) = open(dir.path());
    store.create_topic("transactions", 3, TopicConfig::default()).unwrap();
    store.create_topic("fraud-alerts", 1, TopicConfig::default()).unwrap();
    store.create_topic("users", 2, TopicConfig::default()).unwrap();
    let view = views.create_json(SPEC.as_bytes()).unwrap();
    let t0: i64 = 1_700_000_000_000;
    // Risk tiers: one per user before the history, and a change during it for some users.
    // Produced before the transactions (the view then holds versions ahead of them).
    let tiers = ["high", "medium", "low"];
    let mut changes: Vec<(i64, String, &str)> = vec![(t0 - 1, "flush".to_string(), "high")];
    for u in 0..40 {
        let user = format!("user{u:02}");
        changes.push((t0 - 1, user.clone(), tiers[rng.below(3) as usize]));
        if rng.below(3) == 0 {
            changes.push((t0 + rng.below(50 * 60 * 1000) as i64, user, tiers[rng.below(3) as usize]));
        }
    }
    let users = store.topic("users").unwrap();
    for (t, user, risk) in &changes {
        let r = NewRecord::keyed(json!(user).to_string(), json!({"risk": risk}).to_string()).with_timestamp(*t);
        users.append(&[r]).unwrap();
    }
    let tier_at = |user: &str, t: i64| {
        changes.iter().filter(|(ct, u, _)| u == user && *ct <= t).max_by_key(|(ct, _, _)| *ct).map(|(_, _, r)| *r)
    };
    // Per user, bursts of transactions: gaps inside a burst are short, between bursts long (but
    // some "long" gaps are just under the session gap, so sessions merge). Within 50 minutes, so
    // that the 1-hour grace keeps every session open until the final record.
    let mut records = Vec::new();
    for u in 0..40 {
        let user = format!("user{u:02}");
        let mut t = t0 + rng.below(60_000) as i64;
        while t < t0 + 50 * 60 * 1000 {
            let burst = 1 + rng.below(20);
            let big = rng.below(3) == 0;
            for _ in 0..burst {
                let amount = if big { 3000 + rng.below(6000) } else { 1 + rng.below(500) };
                records.push((t, user.clone(), amount));
                t += rng.below(90_000) as i64;
            }
            t += if rng.below(4) == 0 {
                GAP_MS - 1 - rng.below(1000) as i64
            } else {
                GAP_MS + rng.below(GAP_MS as u64) as i64
            };
        }
    }
    records.sort();
    let topic = store.topic("transactions").unwrap();
    for chunk in records.chunks(300) {
        let batch = chunk
            .iter()
            .map(|(t, user, amount)| {
                NewRecord::keyed(user.clone(), json!({"user": user, "amount": amount}).to_string()).with_timestamp(*t)
            })
            .collect::<Vec<_>>();
        topic.append(&batch).unwrap();
    }
    wait(&view);
    assert_eq!(view.status().late_records, 0);
    // One record far in the future in every partition moves the watermark (the least of the
    // partitions' watermarks) past every session's end + grace.
    for p in topic.partitions().iter() {
        p.append(&[NewRecord::keyed("flush", r#"{"user": "flush", "amount": 0}"#).with_timestamp(t0 + 86_400_000)])
            .unwrap();
    }
    wait(&view);

    // Batch: the transactions of users whose tier at their time is high or medium; per user in
    // time order, a new session starts when the gap from the last event is at least GAP_MS; a
    // session is [first, last + GAP_MS).
    let mut by_user: BTreeMap<String, Vec<(i64, u64)>> = BTreeMap::new();
    let mut low = 0;
    for (_, r) in all_records(&store, "transactions") {
        let v: Value = serde_json::from_slice(r.value.as_deref().unwrap()).unwrap();
        if tier_at(v["user"].as_str().unwrap(), r.timestamp) == Some("low") {
            low += 1;
            continue;
        }
        by_user
            .entry(v["user"].as_str().unwrap().to_string())
            .or_default()
            .push((r.timestamp, v["amount"].as_u64().unwrap()));
    }
    let mut expected = BTreeSet::new();
    let mut sessions = 0;
    for (user, mut events) in by_user {
        events.sort();
        let mut i = 0;
        while i < events.len() {
            let (first, mut last) = (events[i].0, events[i].0);
            let (mut n, mut total, mut largest) = (0u64, 0u64, 0u64);
            while i < events.len() && events[i].0 < last + GAP_MS {
                last = events[i].0;
                n += 1;
                total += events[i].1;
                largest = largest.max(events[i].1);
                i += 1;
            }
            sessions += 1;
            if n > 10 && total > 50_000 {
                expected.insert((
                    user.clone(),
                    json!({"start": first, "end": last + GAP_MS,
                    "value": {"n": n, "total": total, "largest": largest}})
                    .to_string(),
                ));
            }
        }
    }
    let alerts: BTreeSet<(String, String)> = all_records(&store, "fraud-alerts")
        .into_iter()
        .map(|(_, r)| {
            let v: Value = serde_json::from_slice(r.value.as_deref().unwrap()).unwrap();
            // Emitted keys are JSON: a string key as a JSON string.
            (serde_json::from_slice::<String>(&r.key.unwrap()).unwrap(), v.to_string())
        })
        .collect();
    assert!(expected.len() >= 3 && expected.len() < sessions, "{} alerts of {sessions} sessions", expected.len());
    assert_eq!(view.status().counters.records_filtered, low, "low-risk transactions");
    assert_eq!(view.status().counters.records_unmatched, 0);
    assert_eq!(alerts, expected);
    assert_eq!(view.status().counters.records_emitted, expected.len() as u64, "each alert once");
}
