//! Where keyless records go. Under `sync`, appends that queue for the same group-commit round
//! share one partition (one fsync for the round, not one per partition), and the next round takes
//! the next partition; an appender alone goes round-robin, as every appender does otherwise.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use common::{store_with_faults, wait_until, Committers, ResumeSyncs};
use kappalog::{Durability, NewRecord, TopicConfig};

const PARTITIONS: u32 = 4;

#[test]
fn one_appender_goes_round_robin() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _faults) = store_with_faults(dir.path());
    for durability in [Durability::Sync, Durability::None] {
        let name = format!("t-{durability}").replace(':', "-");
        let topic = store.create_topic(&name, PARTITIONS, TopicConfig::default().durability(durability)).unwrap();
        let went: Vec<u32> =
            (0..8).map(|i| topic.append(&[NewRecord::new(format!("{i}"))]).unwrap()[0].partition).collect();
        assert_eq!(went, [0, 1, 2, 3, 0, 1, 2, 3], "{durability}");
    }
}

#[test]
fn appends_of_one_round_share_a_partition() {
    let dir = tempfile::tempdir().unwrap();
    let (store, faults) = store_with_faults(dir.path());
    let config = TopicConfig::default().durability(Durability::Sync);
    let topic = store.create_topic("t", PARTITIONS, config).unwrap();
    // Every committer thread holds a round in its fsync: every append meanwhile queues.
    faults.pause_syncs();
    let resume = ResumeSyncs(Arc::clone(&faults));
    let held = Committers::occupy(&store, &faults);
    let syncs0 = faults.syncs();
    let appenders: Vec<_> = (0..12)
        .map(|i| {
            let topic = topic.clone();
            std::thread::spawn(move || topic.append(&[NewRecord::new(format!("{i}"))]).unwrap()[0].partition)
        })
        .collect();
    let queued = || topic.partitions().iter().map(|p| p.queued_appends()).sum::<usize>();
    wait_until("every append queued", || queued() == 12);
    drop(resume);
    held.join();
    let went: BTreeSet<u32> = appenders.into_iter().map(|a| a.join().unwrap()).collect();
    assert_eq!(went.len(), 1, "one partition for the round: {went:?}");
    assert_eq!(faults.syncs(), syncs0 + 1, "one fsync for the twelve");
    let next = topic.append(&[NewRecord::new("next")]).unwrap()[0].partition;
    assert!(!went.contains(&next), "the next round takes the next partition");
}
