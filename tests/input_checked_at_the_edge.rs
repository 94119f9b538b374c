//! Values a library caller passes are checked where they enter, with an error naming the field:
//! durations that would wrap the i64 millisecond clock (`segment_ms` of 2^63 made every append
//! roll a segment), negative timestamps (near `i64::MIN` their differences overflow), and
//! internal topic names (created or reconfigured only by kappalog itself).

use kappalog::{Error, NewRecord, Store, StoreConfig, TopicConfig};

#[test]
fn wrapping_durations_negative_timestamps_and_internal_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let huge = TopicConfig::default().segment_ms(1 << 63);
    let e = store.create_topic("t", 1, huge.clone()).unwrap_err();
    assert!(matches!(e, Error::InvalidConfig { field: "segment_ms", .. }), "{e}");
    let t = store.create_topic("t", 1, TopicConfig::default()).unwrap();
    let e = store.set_topic_config("t", huge).unwrap_err();
    assert!(matches!(e, Error::InvalidConfig { field: "segment_ms", .. }), "{e}");

    let p = t.partition(0).unwrap();
    for ts in [i64::MIN, i64::MIN + 1, -2] {
        let e = p.append(&[NewRecord::new("a"), NewRecord::new("b").with_timestamp(ts)]).unwrap_err();
        assert!(matches!(&e, Error::InvalidRecord(m) if m.contains("record 1") && m.contains("timestamp")), "{e}");
    }
    assert_eq!(p.high_watermark(), 0, "a refused append writes nothing");
    p.append(&[NewRecord::new("a").with_timestamp(0), NewRecord::new("b").with_timestamp(i64::MAX)]).unwrap();
    let got = p.read(0, 1 << 20, 10).unwrap();
    assert_eq!((got[0].timestamp, got[1].timestamp), (0, i64::MAX));

    for name in ["__consumer_offsets", "__mine"] {
        let e = store.create_topic(name, 1, TopicConfig::default()).unwrap_err();
        assert!(matches!(e, Error::InvalidTopicName { .. }), "{name}: {e}");
    }
    let groups = store.groups().unwrap();
    let e = store.set_topic_config("__consumer_offsets", TopicConfig::default()).unwrap_err();
    assert!(matches!(e, Error::InvalidTopicName { .. }), "{e}");
    drop(groups);
}
