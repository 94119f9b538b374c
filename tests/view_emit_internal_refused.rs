//! A view may not emit into an internal topic: results written to `__consumer_offsets` are not
//! offset records, and the group coordinator refuses to open over them (the broker would not start
//! again). Creating, redefining or registering such a view is refused naming `emit.topic`, and the
//! coordinator still opens afterwards.

mod view_common;

use kappalog::{stream::ViewError, NewRecord, TopicConfig, ViewSpec};
use view_common::open;

const INTERNAL_EMIT: &str = r#"{"name": "v", "source": {"topics": ["orders"]}, "key": "/k",
    "aggregates": {"n": {"op": "count"}}, "emit": {"topic": "__consumer_offsets"}}"#;

fn assert_emit_refused<T: std::fmt::Debug>(r: kappalog::stream::Result<T>) {
    match r {
        Err(ViewError::InvalidSpec { field, reason }) => {
            assert_eq!(field, "emit.topic", "{reason}");
            assert!(reason.contains("internal"), "{reason}");
        }
        other => panic!("expected InvalidSpec on emit.topic, got {other:?}"),
    }
}

#[test]
fn a_view_cannot_emit_into_an_internal_topic() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, views) = open(dir.path());
        let orders = store.create_topic("orders", 1, TopicConfig::default()).unwrap();
        orders.append(&(0..10).map(|i| NewRecord::new(format!(r#"{{"k": "a{i}"}}"#))).collect::<Vec<_>>()).unwrap();
        // The coordinator creates its internal topic.
        drop(store.groups().unwrap());
        assert!(store.topic("__consumer_offsets").is_ok());

        assert_emit_refused(views.create_json(INTERNAL_EMIT.as_bytes()));
        let ok = INTERNAL_EMIT.replace(r#", "emit": {"topic": "__consumer_offsets"}"#, "");
        let view = views.create_json(ok.as_bytes()).unwrap();
        assert_emit_refused(views.update(ViewSpec::from_json(INTERNAL_EMIT.as_bytes()).unwrap()));
        assert!(view.wait_caught_up(std::time::Duration::from_secs(60)));
        assert_eq!(view.status().version, 1, "no rebuild was started");
        assert_eq!(
            store.topic("__consumer_offsets").unwrap().partitions().iter().map(|p| p.high_watermark()).sum::<u64>(),
            0
        );
    }
    let (store, _views) = open(dir.path());
    store.groups().expect("the coordinator opens over its own records only");
}
