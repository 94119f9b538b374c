//! Model-based: random sequences of appends, commits, resets (dry and executed), starting positions
//! with reads, clock moves and reopens, checked against a plain model of the committed offsets.
//! proptest prints the failing case (and its seed) and shrinks it.

use std::sync::Arc;

use kappalog::{
    clock::ManualClock,
    groups::{AutoOffsetReset, GroupCoordinator, GroupError, ResetRequest, ResetStrategy, TopicPartition},
    NewRecord, Store, StoreConfig, TopicConfig,
};
use proptest::prelude::*;

const PARTITIONS: u32 = 2;

#[derive(Debug, Clone)]
enum Op {
    Append { p: u32, n: usize },
    Commit { p: u32, raw: u64 },
    Reset { strategy: ResetStrategy, scope: Option<Option<u32>>, execute: bool },
    Start { p: u32, policy: AutoOffsetReset },
    Advance { ms: i64 },
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    let strategy = prop_oneof![
        Just(ResetStrategy::ToEarliest),
        Just(ResetStrategy::ToLatest),
        (0u64..40).prop_map(ResetStrategy::ToOffset),
        (0i64..400).prop_map(ResetStrategy::ToTimestamp),
        (0u64..900).prop_map(ResetStrategy::ByDuration),
        (-20i64..20).prop_map(ResetStrategy::ShiftBy),
    ];
    let policy =
        prop_oneof![Just(AutoOffsetReset::Earliest), Just(AutoOffsetReset::Latest), Just(AutoOffsetReset::None)];
    prop_oneof![
        3 => (0..PARTITIONS, 1usize..6).prop_map(|(p, n)| Op::Append { p, n }),
        3 => (0..PARTITIONS, any::<u64>()).prop_map(|(p, raw)| Op::Commit { p, raw }),
        3 => (strategy, prop::option::of(prop::option::of(0..PARTITIONS)), any::<bool>())
            .prop_map(|(strategy, scope, execute)| Op::Reset { strategy, scope, execute }),
        2 => (0..PARTITIONS, policy).prop_map(|(p, policy)| Op::Start { p, policy }),
        1 => (0i64..100).prop_map(|ms| Op::Advance { ms }),
        1 => Just(Op::Reopen),
    ]
}

/// What the group's offsets should be: the model.
#[derive(Debug, Default)]
struct Model {
    /// Per partition, each record's timestamp (nondecreasing).
    timestamps: Vec<Vec<i64>>,
    committed: Vec<Option<u64>>,
    next_timestamp: i64,
}

impl Model {
    fn hw(&self, p: u32) -> u64 {
        self.timestamps[p as usize].len() as u64
    }
    fn clamp(&self, p: u32, v: i128) -> u64 {
        v.clamp(0, self.hw(p) as i128) as u64
    }
    fn by_time(&self, p: u32, ts: i64) -> u64 {
        self.timestamps[p as usize].iter().position(|&t| t >= ts).map_or(self.hw(p), |i| i as u64)
    }
}

fn tp(p: u32) -> TopicPartition {
    TopicPartition::new("t", p)
}

fn open(dir: &std::path::Path, clock: &Arc<ManualClock>) -> (Store, GroupCoordinator) {
    let store = Store::open(dir, StoreConfig::default().clock(clock.clone())).unwrap();
    let c = store.groups().unwrap();
    (store, c)
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(500);
    let config = TopicConfig::default().segment_bytes(4096).index_interval_bytes(64);
    let (mut store, mut c) = open(dir.path(), &clock);
    store.create_topic("t", PARTITIONS, config).unwrap();
    let mut m = Model {
        timestamps: vec![Vec::new(); PARTITIONS as usize],
        committed: vec![None; PARTITIONS as usize],
        next_timestamp: 10,
    };
    for op in ops {
        match op {
            Op::Append { p, n } => {
                let recs: Vec<NewRecord> = (0..n)
                    .map(|i| NewRecord::new(format!("r{i}")).with_timestamp(m.next_timestamp + i as i64))
                    .collect();
                store.topic("t").unwrap().partition(p).unwrap().append(&recs).unwrap();
                m.timestamps[p as usize].extend((0..n).map(|i| m.next_timestamp + i as i64));
                m.next_timestamp += 10 * n as i64;
            }
            Op::Commit { p, raw } => {
                let offset = raw % (m.hw(p) + 3);
                let got = c.commit("g", None, &[(tp(p), offset, None)]);
                if offset > m.hw(p) {
                    prop_assert!(matches!(got, Err(GroupError::OffsetAboveHighWatermark { .. })), "{got:?}");
                } else {
                    got.unwrap();
                    m.committed[p as usize] = Some(offset);
                }
            }
            Op::Reset { strategy, scope, execute } => {
                let (topic, partitions) = match scope {
                    None => (None, None),
                    Some(None) => (Some("t".to_string()), None),
                    Some(Some(p)) => (Some("t".to_string()), Some(vec![p])),
                };
                let in_scope: Vec<u32> = match (&topic, &partitions) {
                    (None, _) if m.committed.iter().all(Option::is_none) => vec![],
                    (_, Some(ps)) => ps.clone(),
                    _ => (0..PARTITIONS).collect(),
                };
                let got = c.reset_offsets("g", ResetRequest { topic, partitions, strategy, execute, force: false });
                let now = clock_now(&clock);
                let mut expected = Vec::new();
                let mut nothing_to_shift = false;
                for &p in &in_scope {
                    let current = m.committed[p as usize];
                    let new = match strategy {
                        ResetStrategy::ToEarliest => 0,
                        ResetStrategy::ToLatest => m.hw(p),
                        ResetStrategy::ToOffset(n) => m.clamp(p, n as i128),
                        ResetStrategy::ToTimestamp(ts) => m.by_time(p, ts),
                        ResetStrategy::ByDuration(ms) => m.by_time(p, now - ms as i64),
                        ResetStrategy::ShiftBy(n) => match current {
                            Some(c) => m.clamp(p, c as i128 + n as i128),
                            None => {
                                nothing_to_shift = true;
                                0
                            }
                        },
                    };
                    expected.push((p, current, new));
                }
                if nothing_to_shift {
                    prop_assert!(matches!(got, Err(GroupError::NothingToShift { .. })), "{got:?}");
                } else {
                    let plan = got.unwrap();
                    prop_assert_eq!(plan.executed, execute);
                    let entries: Vec<(u32, Option<u64>, u64)> =
                        plan.entries.iter().map(|e| (e.partition, e.current, e.new)).collect();
                    prop_assert_eq!(&entries, &expected);
                    if execute {
                        for (p, _, new) in expected {
                            m.committed[p as usize] = Some(new);
                        }
                    }
                }
            }
            Op::Start { p, policy } => {
                let got = c.starting_offset("g", &tp(p), policy);
                let want = match (m.committed[p as usize], policy) {
                    (Some(c), _) => Some(c),
                    (None, AutoOffsetReset::Earliest) => Some(0),
                    (None, AutoOffsetReset::Latest) => Some(m.hw(p)),
                    (None, AutoOffsetReset::None) => None,
                };
                match want {
                    Some(w) => {
                        let start = got.unwrap();
                        prop_assert_eq!(start, w);
                        // Replay from there returns every later record.
                        let part = store.topic("t").unwrap().partition(p).unwrap();
                        let records = part.read(start, 1 << 20, 1 << 20).unwrap();
                        prop_assert_eq!(records.len() as u64, m.hw(p) - start);
                        let ts: Vec<i64> = records.iter().map(|r| r.timestamp).collect();
                        prop_assert_eq!(&ts[..], &m.timestamps[p as usize][start as usize..]);
                    }
                    None => {
                        prop_assert!(matches!(got, Err(GroupError::NoValidOffset { .. })), "{got:?}")
                    }
                }
            }
            Op::Advance { ms } => clock.advance(ms),
            Op::Reopen => {
                drop(c);
                drop(store);
                (store, c) = open(dir.path(), &clock);
            }
        }
        for p in 0..PARTITIONS {
            prop_assert_eq!(c.committed("g", &tp(p)).map(|o| o.offset), m.committed[p as usize], "t-{}", p);
        }
    }
    Ok(())
}

fn clock_now(clock: &ManualClock) -> i64 {
    use kappalog::clock::Clock;
    clock.now_ms()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]
    #[test]
    fn commits_resets_and_reads_match_the_model(ops in prop::collection::vec(op(), 1..40)) {
        run(ops)?;
    }
}
