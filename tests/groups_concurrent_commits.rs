//! Concurrent commits from many threads, to one group and to several: the offsets in memory after
//! they finish are exactly those a reopen replays from the log (memory follows the log's order).

use std::collections::BTreeMap;

use kappalog::{groups::TopicPartition, NewRecord, Store, StoreConfig, TopicConfig};

const THREADS: u64 = 4;
const COMMITS: u64 = 40;

#[test]
fn concurrent_commits_agree_with_the_replayed_log() {
    let dir = tempfile::tempdir().unwrap();
    let groups = ["g0", "g1", "g2"];
    let tps: Vec<TopicPartition> = (0..3).map(|p| TopicPartition::new("t", p)).collect();
    let before: BTreeMap<(String, TopicPartition), u64> = {
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        let t = store.create_topic("t", 3, TopicConfig::default()).unwrap();
        for p in 0..3 {
            t.partition(p).unwrap().append(&vec![NewRecord::new("v"); 1000]).unwrap();
        }
        let c = store.groups().unwrap();
        std::thread::scope(|s| {
            for thread in 0..THREADS {
                let c = c.clone();
                let tps = tps.clone();
                s.spawn(move || {
                    for i in 0..COMMITS {
                        let g = groups[((thread + i) % 3) as usize];
                        // Every thread hits the same keys, with offsets that tell who wrote them.
                        let offsets: Vec<_> =
                            tps.iter().map(|tp| (tp.clone(), thread * 100 + i, Some(format!("t{thread}")))).collect();
                        c.commit(g, None, &offsets).unwrap();
                    }
                });
            }
        });
        let mut all = BTreeMap::new();
        for g in groups {
            let offsets: Vec<u64> = tps.iter().map(|tp| c.committed(g, tp).unwrap().offset).collect();
            assert!(offsets.iter().all(|&o| o == offsets[0]), "{g}: the last commit set all three: {offsets:?}");
            for tp in &tps {
                let got = c.committed(g, tp).unwrap();
                assert_eq!(got.metadata, Some(format!("t{}", got.offset / 100)), "one commit's offset and metadata");
                all.insert((g.to_string(), tp.clone()), got.offset);
            }
        }
        all
    };
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let c = store.groups().unwrap();
    for ((g, tp), offset) in before {
        assert_eq!(c.committed(&g, &tp).unwrap().offset, offset, "{g} {tp}");
    }
}
