//! A dry run (the default) returns the plan and changes nothing: not the committed offsets, not the
//! offsets topic, not after a reopen.

use kappalog::{
    groups::{ResetRequest, ResetStrategy, TopicPartition, OFFSETS_TOPIC},
    NewRecord, Store, StoreConfig, TopicConfig,
};

fn offsets_topic_end(store: &Store) -> u64 {
    store.topic(OFFSETS_TOPIC).unwrap().partitions().iter().map(|p| p.high_watermark()).sum()
}

#[test]
fn a_dry_run_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let tps: Vec<TopicPartition> = (0..3).map(|p| TopicPartition::new("t", p)).collect();
    let before = {
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        let t = store.create_topic("t", 3, TopicConfig::default()).unwrap();
        for p in 0..3 {
            t.partition(p).unwrap().append(&vec![NewRecord::new("v").with_timestamp(5); 20]).unwrap();
        }
        let c = store.groups().unwrap();
        c.commit("g", None, &[(tps[0].clone(), 5, Some("meta".into())), (tps[1].clone(), 20, None)]).unwrap();
        let before: Vec<_> = tps.iter().map(|tp| c.committed("g", tp)).collect();
        let end = offsets_topic_end(&store);
        for strategy in [
            ResetStrategy::ToEarliest,
            ResetStrategy::ToLatest,
            ResetStrategy::ToOffset(7),
            ResetStrategy::ToTimestamp(5),
            ResetStrategy::ByDuration(1),
        ] {
            let req =
                ResetRequest { topic: Some("t".into()), partitions: None, strategy, execute: false, force: false };
            let plan = c.reset_offsets("g", req).unwrap();
            assert!(!plan.executed);
            assert_eq!(plan.entries.len(), 3);
            assert!(plan.entries.iter().any(|e| Some(e.new) != e.current), "{strategy:?} would change something");
            assert_eq!(tps.iter().map(|tp| c.committed("g", tp)).collect::<Vec<_>>(), before, "{strategy:?}");
        }
        // Deserialized without `execute`, a request is a dry run.
        let req: ResetRequest =
            serde_json::from_str(r#"{"topic": "t", "partitions": null, "strategy": "to_earliest"}"#).unwrap();
        assert!(!c.reset_offsets("g", req).unwrap().executed);
        assert_eq!(offsets_topic_end(&store), end, "nothing was written");
        before
    };
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let c = store.groups().unwrap();
    assert_eq!(tps.iter().map(|tp| c.committed("g", tp)).collect::<Vec<_>>(), before);
    assert_eq!(before[0].as_ref().unwrap().metadata.as_deref(), Some("meta"));
}
