//! Model test: random appends, reads with random budgets, rolls, reopens (clean, unclean, unclean
//! without index files) and time lookups, checked against a plain `Vec<Record>`.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use kappalog::{
    clock::{Clock, ManualClock},
    Durability, Error, Header, NewRecord, Partition, Record, Store, StoreConfig, TopicConfig,
};
use proptest::prelude::*;

/// The clock starts here; producer timestamps and lookups fall around it.
const CLOCK_START_MS: i64 = 1_000_000;

#[derive(Debug, Clone)]
struct RecordSpec {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Vec<u8>)>,
    timestamp: Option<i64>,
}

#[derive(Debug, Clone, Copy)]
enum Reopen {
    Clean,
    Unclean,
    UncleanWithoutIndexes,
}

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<RecordSpec>),
    /// `offset_pick` is turned into an offset in `0..=high_watermark + 1`.
    Read {
        offset_pick: u64,
        max_bytes: usize,
        max_records: usize,
    },
    Roll,
    Reopen(Reopen),
    OffsetForTimestamp(i64),
    AdvanceClock(i64),
}

fn bytes_up_to(n: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..=n)
}

fn record_spec() -> impl Strategy<Value = RecordSpec> {
    let value = prop_oneof![
        6 => bytes_up_to(200).prop_map(Some),
        1 => Just(None),
        1 => bytes_up_to(5000).prop_map(Some),
    ];
    (
        prop::option::of(bytes_up_to(16)),
        value,
        prop::collection::vec(("[a-c]{0,3}", bytes_up_to(8)), 0..3),
        prop::option::of(CLOCK_START_MS - 1_000..CLOCK_START_MS + 2_000),
    )
        .prop_map(|(key, value, headers, timestamp)| RecordSpec { key, value, headers, timestamp })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => prop::collection::vec(record_spec(), 1..8).prop_map(Op::Append),
        6 => (any::<u64>(), prop_oneof![Just(1usize), 1..2000usize, Just(usize::MAX)], prop_oneof![1..5usize, Just(usize::MAX)])
            .prop_map(|(offset_pick, max_bytes, max_records)| Op::Read { offset_pick, max_bytes, max_records }),
        1 => Just(Op::Roll),
        1 => prop_oneof![Just(Reopen::Clean), Just(Reopen::Unclean), Just(Reopen::UncleanWithoutIndexes)].prop_map(Op::Reopen),
        2 => (CLOCK_START_MS - 2_000..CLOCK_START_MS + 4_000).prop_map(Op::OffsetForTimestamp),
        1 => (0..500i64).prop_map(Op::AdvanceClock),
    ]
}

struct Harness {
    dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    store: Option<Store>,
    partition: Option<Partition>,
}

impl Harness {
    fn new(config: TopicConfig) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(CLOCK_START_MS);
        let store = Store::open(dir.path(), StoreConfig::default().clock(clock.clone())).unwrap();
        let partition = store.create_topic("t", 1, config).unwrap().partition(0).unwrap();
        Harness { dir, clock, store: Some(store), partition: Some(partition) }
    }

    fn p(&self) -> &Partition {
        self.partition.as_ref().unwrap()
    }

    fn reopen(&mut self, how: Reopen) {
        self.partition = None;
        self.store = None;
        let root = self.dir.path();
        assert!(root.join("clean-shutdown").exists(), "dropping the store marks a clean shutdown");
        if !matches!(how, Reopen::Clean) {
            common::forget_clean_shutdown(root);
        }
        if matches!(how, Reopen::UncleanWithoutIndexes) {
            let pdir = common::partition_dir(root, "t", 0);
            for f in common::segment_files(&pdir, "index").into_iter().chain(common::segment_files(&pdir, "timeindex"))
            {
                std::fs::remove_file(f).unwrap();
            }
        }
        let store = Store::open(root, StoreConfig::default().clock(self.clock.clone())).unwrap();
        self.partition = Some(store.topic("t").unwrap().partition(0).unwrap());
        self.store = Some(store);
    }
}

fn to_new_record(s: &RecordSpec) -> NewRecord {
    NewRecord {
        key: s.key.clone().map(Bytes::from),
        value: s.value.clone().map(Bytes::from),
        headers: s.headers.iter().map(|(k, v)| Header::new(k.clone(), v.clone())).collect(),
        timestamp: s.timestamp,
        partition: None,
    }
}

/// Reads the whole log in steps and compares it with the model.
fn check_all(p: &Partition, model: &[Record]) -> Result<(), TestCaseError> {
    prop_assert_eq!(p.high_watermark(), model.len() as u64);
    prop_assert_eq!(p.log_start_offset(), 0);
    let mut next = 0u64;
    while next < model.len() as u64 {
        let got = p.read(next, 1 << 30, usize::MAX).unwrap();
        prop_assert!(!got.is_empty(), "read at {} below the high watermark returned nothing", next);
        prop_assert_eq!(&got[..], &model[next as usize..next as usize + got.len()]);
        next += got.len() as u64;
    }
    Ok(())
}

fn run(config: TopicConfig, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut h = Harness::new(config);
    let mut model: Vec<Record> = Vec::new();
    for op in ops {
        match op {
            Op::Append(specs) => {
                let now = h.clock.now_ms();
                let records: Vec<NewRecord> = specs.iter().map(to_new_record).collect();
                let a = h.p().append(&records).unwrap();
                prop_assert_eq!(a.base_offset, model.len() as u64);
                prop_assert_eq!(a.last_offset, (model.len() + records.len() - 1) as u64);
                for r in records {
                    model.push(Record {
                        offset: model.len() as u64,
                        timestamp: r.timestamp.unwrap_or(now),
                        key: r.key,
                        value: r.value,
                        headers: r.headers,
                    });
                }
                prop_assert_eq!(h.p().high_watermark(), model.len() as u64);
            }
            Op::Read { offset_pick, max_bytes, max_records } => {
                let hw = model.len() as u64;
                let offset = offset_pick % (hw + 2);
                let got = h.p().read(offset, max_bytes, max_records);
                if offset > hw {
                    prop_assert!(
                        matches!(got, Err(Error::OffsetOutOfRange { offset: o, high_watermark, .. }) if o == offset && high_watermark == hw),
                        "read at {} past the high watermark {}: {:?}",
                        offset,
                        hw,
                        got
                    );
                    continue;
                }
                let got = got.unwrap();
                let rest = &model[offset as usize..];
                prop_assert!(got.len() <= max_records);
                prop_assert_eq!(&got[..], &rest[..got.len()]);
                if rest.is_empty() {
                    prop_assert!(got.is_empty());
                } else {
                    prop_assert!(!got.is_empty(), "a read below the high watermark makes progress");
                }
                if max_bytes == usize::MAX {
                    prop_assert_eq!(
                        got.len(),
                        rest.len().min(max_records),
                        "an unbounded read stops only at max_records"
                    );
                }
            }
            Op::Roll => {
                let before = h.p().stats().segments;
                let active_bytes = h.p().segment_infos().unwrap().last().unwrap().size_bytes;
                h.p().roll().unwrap();
                let after = h.p().stats().segments;
                prop_assert_eq!(after, before + usize::from(active_bytes > 0));
            }
            Op::Reopen(how) => {
                h.reopen(how);
                check_all(h.p(), &model)?;
            }
            Op::OffsetForTimestamp(ts) => {
                let expected = model.iter().find(|r| r.timestamp >= ts).map(|r| r.offset);
                prop_assert_eq!(h.p().offset_for_timestamp(ts).unwrap(), expected, "offset_for_timestamp({})", ts);
            }
            Op::AdvanceClock(ms) => h.clock.advance(ms),
        }
    }
    check_all(h.p(), &model)?;
    h.reopen(Reopen::Unclean);
    check_all(h.p(), &model)
}

fn topic_config() -> impl Strategy<Value = TopicConfig> {
    (
        prop_oneof![Just(64u32), Just(256), Just(1000), Just(100_000)],
        prop_oneof![4 => Just(Durability::None), 1 => Just(Durability::Sync)],
    )
        .prop_map(|(index_interval_bytes, durability)| {
            TopicConfig::default().segment_bytes(4096).index_interval_bytes(index_interval_bytes).durability(durability)
        })
}

proptest! {
    // Bounded so that the test takes seconds in debug; `PROPTEST_CASES=1000` for a longer hunt.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(24),
        max_shrink_iters: 2000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn log_matches_the_model(config in topic_config(), ops in prop::collection::vec(op(), 1..50)) {
        run(config, ops)?;
    }
}
