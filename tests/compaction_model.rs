//! Model test: random keyed appends and tombstones, rolls, clock moves, compactions and reopens at
//! random points, against a plain list of every record. After each compaction the log is a
//! sub-sequence of the model with unchanged offsets that holds every key's latest record (tombstones
//! only once past `delete_retention_ms`); at the end, with every tombstone expired, a full read
//! equals the model's "latest value per key".

use std::collections::BTreeMap;

use kappalog::{
    clock::{Clock, ManualClock},
    limits::OFFSET_MAP_BYTES_MIN,
    CleanupPolicy, Durability, NewRecord, Partition, Record, Store, StoreConfig, TopicConfig,
};
use proptest::prelude::*;

const T0: i64 = 1_700_000_000_000;
const DELETE_RETENTION_MS: u64 = 5_000;

#[derive(Debug, Clone)]
enum Op {
    /// Records of (key, tombstone?) in one append.
    Append(Vec<(u8, bool)>),
    Roll,
    Advance(u16),
    Compact,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => prop::collection::vec((0u8..30, prop::bool::weighted(0.15)), 1..6).prop_map(Op::Append),
        1 => Just(Op::Roll),
        1 => (0u16..3000).prop_map(Op::Advance),
        2 => Just(Op::Compact),
        1 => Just(Op::Reopen),
    ]
}

/// What the model says about one offset.
#[derive(Debug, Clone)]
struct Model {
    key: Vec<u8>,
    value: Option<Vec<u8>>,
    timestamp: i64,
}

fn open(dir: &std::path::Path, clock: &std::sync::Arc<ManualClock>) -> (Store, Partition) {
    let cfg = StoreConfig::default().clock(clock.clone()).cleaner_interval_ms(0).offset_map_bytes(OFFSET_MAP_BYTES_MIN);
    let store = Store::open(dir, cfg).unwrap();
    let p = match store.topic("t") {
        Ok(t) => t.partition(0).unwrap(),
        Err(_) => {
            let tc = TopicConfig::default()
                .segment_bytes(4096)
                .index_interval_bytes(128)
                .durability(Durability::None)
                .cleanup_policy(CleanupPolicy::Compact)
                .delete_retention_ms(DELETE_RETENTION_MS);
            store.create_topic("t", 1, tc).unwrap().partition(0).unwrap()
        }
    };
    (store, p)
}

fn read_all(p: &Partition) -> Vec<Record> {
    p.cursor_from_start().fetch_limits(512, 7).collect::<kappalog::Result<_>>().unwrap()
}

/// The log read back must be a sub-sequence of the model with the same offsets and contents, and
/// hold every key's latest record unless it is a tombstone older than the retention at `now`.
fn check(p: &Partition, model: &[Model], last_compaction_ms: Option<i64>) {
    let log = read_all(p);
    assert_eq!(p.high_watermark(), model.len() as u64);
    let mut prev = None;
    for r in &log {
        assert!(prev.is_none_or(|o| o < r.offset), "order kept");
        prev = Some(r.offset);
        let m = &model[r.offset as usize];
        assert_eq!(r.key.as_deref(), Some(&m.key[..]), "offset {}", r.offset);
        assert_eq!(r.value.as_ref().map(|v| v.to_vec()), m.value, "offset {}", r.offset);
        assert_eq!(r.timestamp, m.timestamp);
    }
    let mut latest: BTreeMap<&[u8], u64> = BTreeMap::new();
    for (o, m) in model.iter().enumerate() {
        latest.insert(&m.key, o as u64);
    }
    let present: std::collections::HashSet<u64> = log.iter().map(|r| r.offset).collect();
    for (&key, &o) in &latest {
        let m = &model[o as usize];
        let may_be_gone =
            m.value.is_none() && last_compaction_ms.is_some_and(|now| m.timestamp <= now - DELETE_RETENTION_MS as i64);
        assert!(present.contains(&o) || may_be_gone, "the latest record of key {key:?} (offset {o}) is missing");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn compaction_matches_the_model(ops in prop::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(T0);
        let (mut store, mut p) = open(dir.path(), &clock);
        let mut model: Vec<Model> = Vec::new();
        let mut last_compaction = None;
        let mut seq = 0u64;
        for op in ops {
            match op {
                Op::Append(recs) => {
                    let batch: Vec<NewRecord> = recs
                        .iter()
                        .map(|&(k, tomb)| {
                            seq += 1;
                            let key = format!("key-{k}");
                            if tomb { NewRecord::tombstone(key) } else { NewRecord::keyed(key, format!("v{seq}-{}", "x".repeat(k as usize * 7))) }
                        })
                        .collect();
                    p.append(&batch).unwrap();
                    for r in batch {
                        model.push(Model { key: r.key.unwrap().to_vec(), value: r.value.map(|v| v.to_vec()), timestamp: clock.now_ms() });
                    }
                }
                Op::Roll => p.roll().unwrap(),
                Op::Advance(ms) => clock.advance(ms as i64),
                Op::Compact => {
                    kappalog::cleaner::compact(&p, clock.now_ms(), OFFSET_MAP_BYTES_MIN).unwrap();
                    last_compaction = Some(clock.now_ms());
                    check(&p, &model, last_compaction);
                }
                Op::Reopen => {
                    drop(p);
                    drop(store);
                    (store, p) = open(dir.path(), &clock);
                    check(&p, &model, last_compaction);
                }
            }
        }
        // The end: a last record (the log's last record is never removed), everything sealed, every
        // tombstone expired, then a full compaction.
        p.append(&[NewRecord::keyed("end", "end")]).unwrap();
        model.push(Model { key: b"end".to_vec(), value: Some(b"end".to_vec()), timestamp: clock.now_ms() });
        p.roll().unwrap();
        clock.advance(DELETE_RETENTION_MS as i64 + 1);
        kappalog::cleaner::compact(&p, clock.now_ms(), OFFSET_MAP_BYTES_MIN).unwrap();
        let mut expected: BTreeMap<Vec<u8>, (u64, Option<Vec<u8>>)> = BTreeMap::new();
        for (o, m) in model.iter().enumerate() {
            expected.insert(m.key.clone(), (o as u64, m.value.clone()));
        }
        let mut expected: Vec<(u64, Vec<u8>, Vec<u8>)> =
            expected.into_iter().filter_map(|(k, (o, v))| v.map(|v| (o, k, v))).collect();
        expected.sort();
        let got: Vec<(u64, Vec<u8>, Vec<u8>)> = read_all(&p)
            .into_iter()
            .map(|r| (r.offset, r.key.unwrap().to_vec(), r.value.expect("no tombstone survives").to_vec()))
            .collect();
        prop_assert_eq!(got, expected);
    }
}
