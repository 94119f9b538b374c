//! Temporal stream-table joins: orders joined with the product price that was current at each
//! order's time. Random histories of product price changes and deletions (a JSON table keyed by
//! product, or a Debezium topic; its time the record timestamp, a `time` pointer or `ts_ms`)
//! interleaved with orders, over several partitions each, produced in event-time order. The view
//! (inner: revenue per category; left: count and latest product per product id) equals an as-of
//! batch join computed here, when it
//! (a) runs live while the history is appended, waiting for it at random moments, and is
//!     closed and reopened (resuming from its checkpoint) in the middle,
//! (b) is created after the data,
//! (c) is rebuilt.
//!
//! `SEED=<n>` replays a run; `CASES=<n>` sets the number of random histories.

mod view_common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use kappalog::stream::{AggregateOp, AggregateSpec, JoinSpec, JoinType, RebuildFrom, SourceSpec};
use kappalog::{NewRecord, Store, StoreConfig, TopicConfig, View, ViewSpec, Views};
use serde_json::{json, Value};
use view_common::{fast_views, scan_all, Rng};

const CATEGORIES: [&str; 3] = ["books", "games", "tools"];

#[derive(Debug, Clone, Copy, PartialEq)]
enum TableKind {
    /// JSON values, the record timestamp is the time.
    Timestamp,
    /// JSON values with the time in `/at` (record timestamps are unrelated).
    Pointer,
    /// Debezium events, `ts_ms` is the time.
    Debezium,
}

#[derive(Debug, Clone)]
enum Event {
    /// A product's new version (`None`: deleted) at time `t`.
    Product {
        t: i64,
        id: String,
        version: Option<(i64, &'static str)>,
        partition: u32,
    },
    Order {
        t: i64,
        id: String,
        qty: i64,
        partition: u32,
    },
}

impl Event {
    fn time(&self) -> i64 {
        match self {
            Event::Product { t, .. } | Event::Order { t, .. } => *t,
        }
    }
}

struct Case {
    kind: TableKind,
    left: bool,
    table_partitions: u32,
    order_partitions: u32,
    /// By time, a product's change before an order of the same time.
    events: Vec<Event>,
    /// How far ahead (in event time) product changes are produced: a live view then applies
    /// versions later than the orders it joins next.
    lead: i64,
}

fn generate(rng: &mut Rng) -> Case {
    let kind = [TableKind::Timestamp, TableKind::Pointer, TableKind::Debezium][rng.below(3) as usize];
    let (table_partitions, order_partitions) = (1 + rng.below(3) as u32, 1 + rng.below(4) as u32);
    let products = 1 + rng.below(6);
    let mut events = Vec::new();
    let mut t = 1_000_000i64;
    for _ in 0..(10 + rng.below(150)) {
        let id = format!("p{}", rng.below(products));
        // A product's records share a partition (keyed), as a compacted table topic's do.
        let table_partition = (id[1..].parse::<u32>().unwrap()) % table_partitions;
        if rng.below(3) == 0 {
            // A change may have the time of the order before it (it is then applied first).
            t += rng.below(3) as i64;
            let version = (rng.below(8) != 0).then(|| (1 + rng.below(100) as i64, CATEGORIES[rng.below(3) as usize]));
            events.push(Event::Product { t, id, version, partition: table_partition });
        } else {
            t += 1 + rng.below(3) as i64;
            let partition = rng.below(order_partitions as u64) as u32;
            events.push(Event::Order { t, id, qty: 1 + rng.below(5) as i64, partition });
        }
    }
    events.sort_by_key(|e| (e.time(), matches!(e, Event::Order { .. })));
    let lead = if rng.below(3) == 0 { 0 } else { rng.below(60) as i64 };
    Case { kind, left: rng.below(2) == 0, table_partitions, order_partitions, events, lead }
}

impl Case {
    fn spec(&self, name: &str) -> String {
        let mut join = json!({"table": "products", "on": "/product_id", "as": "product",
            "type": if self.left { "left" } else { "inner" }});
        match self.kind {
            TableKind::Timestamp => {}
            TableKind::Pointer => join["time"] = json!("/at"),
            TableKind::Debezium => join["format"] = json!("debezium"),
        }
        if self.left {
            json!({"name": name, "source": {"topics": ["orders"]}, "join": join, "key": "/product_id",
                "aggregates": {"n": {"op": "count"}, "last": {"op": "latest", "field": "/product"}}})
        } else {
            json!({"name": name, "source": {"topics": ["orders"]}, "join": join, "key": "/product/category",
                "aggregates": {"revenue": {"op": "sum", "field": "/product/price"}, "orders": {"op": "count"}}})
        }
        .to_string()
    }

    /// The record of an event and its partition.
    fn record(&self, e: &Event) -> (&'static str, u32, NewRecord) {
        match e {
            Event::Order { t, id, qty, partition } => {
                let v = json!({"order": format!("o{t}"), "product_id": id, "qty": qty});
                ("orders", *partition, NewRecord::new(v.to_string()).with_timestamp(*t))
            }
            Event::Product { t, id, version, partition } => {
                let row = version.map(|(price, category)| json!({"id": id, "price": price, "category": category}));
                let key = json!(id).to_string();
                let r = match (self.kind, row) {
                    (TableKind::Timestamp, Some(row)) => NewRecord::keyed(key, row.to_string()).with_timestamp(*t),
                    (TableKind::Timestamp, None) => NewRecord::tombstone(key).with_timestamp(*t),
                    (TableKind::Pointer, Some(mut row)) => {
                        row["at"] = json!(t);
                        NewRecord::keyed(key, row.to_string()).with_timestamp(5)
                    }
                    // A table keyed by a JSON string deletes with a tombstone; its time is the timestamp.
                    (TableKind::Pointer, None) => NewRecord::tombstone(key).with_timestamp(*t),
                    (TableKind::Debezium, row) => {
                        let key = json!({"id": id}).to_string();
                        let env = match row {
                            Some(row) => json!({"op": "u", "before": null, "after": row, "ts_ms": t}),
                            None => json!({"op": "d", "before": {"id": id}, "after": null, "ts_ms": t}),
                        };
                        NewRecord::keyed(key, env.to_string()).with_timestamp(1)
                    }
                };
                ("products", *partition, r)
            }
        }
    }

    /// The as-of batch join: each order with its product's version at its time (the latest
    /// change at or before it), then grouped as the spec says.
    fn expected(&self) -> (BTreeMap<String, Value>, u64) {
        let mut current: BTreeMap<&str, Option<(i64, &str)>> = BTreeMap::new();
        let mut unmatched = 0;
        let mut revenue: BTreeMap<String, (i64, u64)> = BTreeMap::new();
        let mut left: BTreeMap<String, (u64, Value)> = BTreeMap::new();
        for e in &self.events {
            match e {
                Event::Product { id, version, .. } => {
                    current.insert(id, *version);
                }
                Event::Order { id, .. } => {
                    let version = current.get(id.as_str()).copied().flatten();
                    let product = version.map(|(price, category)| {
                        let mut row = json!({"id": id, "price": price, "category": category});
                        if self.kind == TableKind::Pointer {
                            row["at"] = json!(self.version_time(id, e.time()));
                        }
                        row
                    });
                    match (self.left, version) {
                        (false, None) => unmatched += 1,
                        (false, Some((price, category))) => {
                            let g = revenue.entry(category.to_string()).or_default();
                            g.0 += price;
                            g.1 += 1;
                        }
                        (true, _) => {
                            let g = left.entry(id.clone()).or_insert((0, Value::Null));
                            g.0 += 1;
                            // Orders come in time order, ties by partition then offset: the
                            // latest is the one of the greatest (time, partition, offset).
                            g.1 = product.unwrap_or(Value::Null);
                        }
                    }
                }
            }
        }
        let state = if self.left {
            left.into_iter().map(|(k, (n, last))| (k, json!({"n": n, "last": last}))).collect()
        } else {
            revenue.into_iter().map(|(k, (r, n))| (k, json!({"revenue": r, "orders": n}))).collect()
        };
        (state, unmatched)
    }

    /// The time of the version of product `id` current at `t`.
    fn version_time(&self, id: &str, t: i64) -> i64 {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Product { t: vt, id: vid, .. } if vid == id && *vt <= t => Some(*vt),
                _ => None,
            })
            .max()
            .unwrap()
    }
}

fn open(dir: &Path) -> (Store, Views) {
    let store = Store::open(dir, StoreConfig::default()).unwrap();
    let views = Views::open(&store, fast_views().read_records_max(5)).unwrap();
    (store, views)
}

fn caught_up(view: &View) {
    assert!(view.wait_caught_up(Duration::from_secs(60)), "did not catch up: {:#?}", view.status());
}

fn check(what: &str, view: &View, expected: &BTreeMap<String, Value>, unmatched: u64) {
    let status = view.status();
    assert_eq!((status.error_records, status.late_records), (0, 0), "{what}: {status:#?}");
    assert_eq!(status.counters.records_unmatched, unmatched, "{what}: orders with no product then");
    assert_eq!(&scan_all(view), expected, "{what}: the as-of batch join");
}

#[test]
fn orders_join_the_price_of_their_time_live_after_and_rebuilt() {
    let mut rng = Rng::from_env("view_temporal_join");
    let cases = std::env::var("CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(12);
    for case_number in 0..cases {
        let case = generate(&mut rng);
        let (expected, unmatched) = case.expected();
        let what = format!(
            "case {case_number} ({:?}, left {}, lead {}, {}+{} partitions, {} events)",
            case.kind,
            case.left,
            case.lead,
            case.table_partitions,
            case.order_partitions,
            case.events.len()
        );
        let dir = tempfile::tempdir().unwrap();
        let (mut store, mut views) = open(dir.path());
        store.create_topic("products", case.table_partitions, TopicConfig::default()).unwrap();
        store.create_topic("orders", case.order_partitions, TopicConfig::default()).unwrap();
        let mut live = views.create_json(case.spec("a").as_bytes()).unwrap();
        let reopen_at = rng.below(case.events.len() as u64 + 1) as usize;
        let mut produced: Vec<&Event> = case.events.iter().collect();
        produced.sort_by_key(|e| match e {
            Event::Product { t, .. } => (t - case.lead, false),
            Event::Order { t, .. } => (*t, true),
        });
        for (i, e) in produced.into_iter().enumerate() {
            if i == reopen_at {
                drop(live);
                views.close();
                store.close().unwrap();
                (store, views) = open(dir.path());
                live = views.get("a").unwrap();
            }
            let (topic, partition, record) = case.record(e);
            store.topic(topic).unwrap().partition(partition).unwrap().append(&[record]).unwrap();
            if rng.below(5) == 0 {
                caught_up(&live);
            }
        }
        caught_up(&live);
        check(&format!("{what} (a) live"), &live, &expected, unmatched);
        let after = views.create_json(case.spec("b").as_bytes()).unwrap();
        caught_up(&after);
        check(&format!("{what} (b) created after"), &after, &expected, unmatched);
        views.rebuild("a", RebuildFrom::Beginning).unwrap();
        caught_up(&live);
        assert_eq!(live.status().version, 2);
        check(&format!("{what} (c) rebuilt"), &live, &expected, unmatched);
        views.close();
    }
}

#[test]
fn the_rust_api_builds_the_same_joins() {
    let sum = AggregateSpec { op: AggregateOp::Sum, field: Some("/product/price".into()) };
    let spec = ViewSpec {
        name: "revenue".into(),
        source: SourceSpec::new(["orders"]),
        filter: None,
        key: Some("/product/category".into()),
        window: None,
        aggregates: BTreeMap::from([("revenue".to_string(), sum)]),
        having: None,
        emit: None,
        join: Some(JoinSpec::table("products", "/product_id", "product").retention_ms(60_000)),
        state: None,
    };
    let json = r#"{"name": "revenue", "source": {"topics": ["orders"]}, "key": "/product/category",
        "join": {"table": "products", "on": "/product_id", "as": "product", "retention_ms": 60000},
        "aggregates": {"revenue": {"op": "sum", "field": "/product/price"}}}"#;
    assert_eq!(ViewSpec::from_json(json.as_bytes()).unwrap(), spec);
    let stream = JoinSpec::stream("clicks", "/ad_id", "/ad_id", 600_000, "click").kind(JoinType::Left).grace_ms(5);
    let parsed: JoinSpec = serde_json::from_value(json!({"stream": "clicks", "on": "/ad_id", "other_key": "/ad_id",
        "within_ms": 600000, "as": "click", "type": "left", "grace_ms": 5}))
    .unwrap();
    assert_eq!(stream, parsed);

    let dir = tempfile::tempdir().unwrap();
    let (store, views) = open(dir.path());
    store.create_topic("products", 1, TopicConfig::default()).unwrap();
    store.create_topic("orders", 1, TopicConfig::default()).unwrap();
    let view = views.create(spec).unwrap();
    let product = |price: i64, t: i64| {
        NewRecord::keyed(r#""p1""#, json!({"price": price, "category": "books"}).to_string()).with_timestamp(t)
    };
    // Both versions first: the orders at 20 and 25 still join the price of 10.
    store.topic("products").unwrap().append(&[product(5, 10), product(7, 30)]).unwrap();
    let order = |t: i64| NewRecord::new(json!({"product_id": "p1"}).to_string()).with_timestamp(t);
    store.topic("orders").unwrap().append(&[order(5), order(20), order(25), order(30)]).unwrap();
    caught_up(&view);
    assert_eq!(scan_all(&view), BTreeMap::from([("books".to_string(), json!({"revenue": 17}))]));
    assert_eq!(view.status().counters.records_unmatched, 1, "the order before the product existed");
}
