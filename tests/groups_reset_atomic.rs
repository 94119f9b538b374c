//! An executed reset is all or nothing: a failed write of its batch leaves every committed offset as
//! it was, in memory and after a reopen; a successful one survives the reopen whole.

use kappalog::{
    fault::{FaultInjector, FaultKind},
    groups::{GroupCoordinator, ResetRequest, ResetStrategy, TopicPartition},
    NewRecord, Store, StoreConfig, TopicConfig,
};

fn all(c: &GroupCoordinator) -> Vec<Option<u64>> {
    let mut v = Vec::new();
    for t in ["a", "b"] {
        for p in 0..4 {
            v.push(c.committed("g", &TopicPartition::new(t, p)).map(|o| o.offset));
        }
    }
    v
}

fn execute(c: &GroupCoordinator, strategy: ResetStrategy) -> kappalog::groups::Result<kappalog::groups::ResetPlan> {
    c.reset_offsets("g", ResetRequest { topic: None, partitions: None, strategy, execute: true, force: false })
}

#[test]
fn an_executed_reset_is_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let faults = FaultInjector::new();
    let config = || StoreConfig::default().faults(Some(faults.clone()));
    let committed = {
        let store = Store::open(dir.path(), config()).unwrap();
        let mut offsets = Vec::new();
        for t in ["a", "b"] {
            let topic = store.create_topic(t, 4, TopicConfig::default()).unwrap();
            for p in 0..4 {
                topic.partition(p).unwrap().append(&vec![NewRecord::new("v"); 30]).unwrap();
                offsets.push((TopicPartition::new(t, p), 10 + p as u64, None));
            }
        }
        let c = store.groups().unwrap();
        c.commit("g", None, &offsets).unwrap();
        let committed = all(&c);
        assert!(committed.iter().all(Option::is_some));

        // The reset's one batch fails half written: nothing applies.
        faults.fail_write_after(1, FaultKind::Io);
        let err = execute(&c, ResetStrategy::ToLatest).unwrap_err();
        assert!(matches!(err, kappalog::groups::GroupError::Log(kappalog::Error::Io { .. })), "{err}");
        faults.heal();
        assert_eq!(all(&c), committed, "in memory: nothing applied");
        committed
    };
    {
        let store = Store::open(dir.path(), config()).unwrap();
        let c = store.groups().unwrap();
        assert_eq!(all(&c), committed, "after recovery: the torn batch is gone, nothing applied");

        // The batch is written but its fsync fails: the call fails; after a reopen, all or none.
        faults.fail_sync_after(1, FaultKind::Io);
        assert!(execute(&c, ResetStrategy::ToEarliest).is_err());
        faults.heal();
        assert_eq!(all(&c), committed, "in memory: nothing applied");
    }
    let expected_all = vec![Some(0); 8];
    let store = Store::open(dir.path(), config()).unwrap();
    let c = store.groups().unwrap();
    let now = all(&c);
    assert!(now == committed || now == expected_all, "all or nothing, got {now:?}");

    // A successful reset survives a reopen whole.
    let plan = execute(&c, ResetStrategy::ToOffset(25)).unwrap();
    assert_eq!(plan.entries.len(), 8);
    drop((c, store));
    let store = Store::open(dir.path(), config()).unwrap();
    let c = store.groups().unwrap();
    assert_eq!(all(&c), vec![Some(25); 8]);
}
