//! Revenue and order count per product per 1-minute tumbling window on event time, with
//! out-of-order and late events (some times as RFC 3339 strings): the view, its late count and
//! its emitted updates equal an independent batch computation over the whole topic.

mod view_common;

use std::collections::BTreeMap;

use kappalog::{NewRecord, TopicConfig};
use serde_json::{json, Value};
use view_common::{all_records, open, wait, Rng};

const SPEC: &str = r#"{ "name": "revenue_per_product",
  "source": { "topics": ["orders"] },
  "filter": { "field": "/amount", "op": "gt", "value": 0 },
  "key": "/product_id",
  "window": { "type": "tumbling", "size_ms": 60000, "grace_ms": 5000, "time": "/ts" },
  "aggregates": { "revenue": { "op": "sum", "field": "/price" }, "orders": { "op": "count" } },
  "having": { "all": [ { "field": "/orders", "op": "gt", "value": 10 } ] },
  "emit": { "topic": "revenue-per-minute", "on": "update" } }"#;

const SIZE_MS: i64 = 60_000;
const GRACE_MS: i64 = 5_000;

/// Epoch ms as RFC 3339 (civil-from-days, Howard Hinnant).
fn rfc3339(ms: i64) -> String {
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (h, mi, s, milli) = (rem / 3_600_000, rem / 60_000 % 60, rem / 1000 % 60, rem % 1000);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

#[test]
fn windows_late_counts_and_emits_match_a_batch_computation() {
    let mut rng = Rng::from_env("tumbling_revenue");
    let dir = tempfile::tempdir().unwrap();
    let (store, views) = open(dir.path());
    store.create_topic("orders", 1, TopicConfig::default()).unwrap();
    store.create_topic("revenue-per-minute", 2, TopicConfig::default()).unwrap();
    let view = views.create_json(SPEC.as_bytes()).unwrap();
    let t0: i64 = 1_700_000_000_000;
    let orders = store.topic("orders").unwrap();
    let mut batch = Vec::new();
    for i in 0..6_000i64 {
        let base = t0 + i * 50;
        let ts = if i % 500 == 499 { base - 120_000 } else { base + rng.below(8_000) as i64 - 4_000 };
        let ts_json = if i % 2 == 0 { json!(ts) } else { json!(rfc3339(ts)) };
        let amount = rng.below(10) as i64 - 1; // some 0 and -1: filtered out
        let product = format!("p{}", rng.below(8));
        let price = 1 + rng.below(100);
        batch.push(NewRecord::new(
            json!({"product_id": product, "amount": amount, "price": price, "ts": ts_json}).to_string(),
        ));
        if batch.len() == 250 {
            orders.append(&batch).unwrap();
            batch.clear();
        }
    }
    wait(&view);

    // Batch: in log order, the watermark is the highest event time so far; late = window closed.
    let mut watermark = i64::MIN;
    let mut late = 0;
    let mut windows: BTreeMap<(String, i64), (u64, u64)> = BTreeMap::new();
    for (_, r) in all_records(&store, "orders") {
        let v: Value = serde_json::from_slice(r.value.as_deref().unwrap()).unwrap();
        if v["amount"].as_i64().unwrap() <= 0 {
            continue;
        }
        let ts = match &v["ts"] {
            Value::String(s) => kappalog::stream::parse_rfc3339_ms(s).unwrap(),
            n => n.as_i64().unwrap(),
        };
        watermark = watermark.max(ts);
        let start = ts.div_euclid(SIZE_MS) * SIZE_MS;
        if start + SIZE_MS + GRACE_MS <= watermark {
            late += 1;
            continue;
        }
        let w = windows.entry((v["product_id"].as_str().unwrap().to_string(), start)).or_default();
        w.0 += 1;
        w.1 += v["price"].as_u64().unwrap();
    }
    assert!(late > 12, "the data has late records ({late})");
    let status = view.status();
    assert_eq!(status.late_records, late);
    assert_eq!(status.watermark, Some(watermark));
    assert_eq!(status.error_records, 0);

    let mut per_product: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for ((p, start), (n, revenue)) in &windows {
        per_product
            .entry(p.clone())
            .or_default()
            .push(json!({"start": start, "end": start + SIZE_MS, "value": {"orders": n, "revenue": revenue}}));
    }
    for (product, expected) in &per_product {
        let got = view.get(product).unwrap().windows.unwrap();
        assert_eq!(serde_json::to_value(&got).unwrap(), json!(expected), "product {product}");
        // A time range keeps the windows starting in it.
        let start = expected[1]["start"].as_i64().unwrap();
        let one = view.get_range(product, Some(start), Some(start + SIZE_MS)).unwrap().windows.unwrap();
        assert_eq!(serde_json::to_value(&one).unwrap(), json!([expected[1]]));
    }
    assert_eq!(view.scan("p", 100).len(), per_product.len());

    // Emitted updates: every one passes `having`; the last per window is the final value, and
    // windows that never had more than 10 orders were never emitted.
    let mut last: BTreeMap<(String, i64), Value> = BTreeMap::new();
    for (_, r) in all_records(&store, "revenue-per-minute") {
        let v: Value = serde_json::from_slice(r.value.as_deref().unwrap()).unwrap();
        assert!(v["value"]["orders"].as_u64().unwrap() > 10, "{v}");
        // Emitted keys are JSON: a string key as a JSON string.
        let key: String = serde_json::from_slice(&r.key.unwrap()).unwrap();
        last.insert((key, v["start"].as_i64().unwrap()), v["value"].clone());
    }
    let expected: BTreeMap<(String, i64), Value> = windows
        .iter()
        .filter(|(_, (n, _))| *n > 10)
        .map(|(k, (n, revenue))| (k.clone(), json!({"orders": n, "revenue": revenue})))
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(last, expected);
    assert_eq!(status.counters.records_emitted, all_records(&store, "revenue-per-minute").len() as u64);
}
