//! A data directory of an older format version (1 or 2: kappalog's own batch layout, before the
//! segments became Kafka RecordBatch v2) is refused at open with an error naming both versions and
//! what to do, and the refusal changes nothing on disk.

use kappalog::{limits::FORMAT_VERSION, Error, NewRecord, Store, StoreConfig, TopicConfig};

#[test]
fn an_older_store_is_refused_with_both_versions_and_what_to_do() {
    assert_eq!(FORMAT_VERSION, 3);
    for old in [1, 2] {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
            let p = store.create_topic("t", 1, TopicConfig::default()).unwrap().partition(0).unwrap();
            p.append(&[NewRecord::new("v")]).unwrap();
        }
        let meta = dir.path().join("kappalog.json");
        let older = format!("{{\n  \"format_version\": {old}\n}}");
        std::fs::write(&meta, &older).unwrap();
        let err = Store::open(dir.path(), StoreConfig::default()).unwrap_err();
        assert!(
            matches!(err, Error::FormatTooOld { found, supported, .. } if found == old && supported == FORMAT_VERSION),
            "{err}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("format version {old}")) && msg.contains(&format!("version {FORMAT_VERSION}")),
            "{msg}"
        );
        assert!(msg.contains("kappalog migrate DIR") && msg.contains("changed nothing"), "says what to do: {msg}");
        assert_eq!(std::fs::read_to_string(&meta).unwrap(), older, "the refusal rewrote nothing");
    }
}

#[test]
fn an_older_topic_in_a_current_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(
        Store::open(dir.path(), StoreConfig::default()).unwrap().create_topic("t", 1, TopicConfig::default()).unwrap(),
    );
    let path = dir.path().join("topics/t/topic.json");
    let json = std::fs::read_to_string(&path).unwrap();
    let older = json.replace(&format!("\"format_version\": {FORMAT_VERSION}"), "\"format_version\": 2");
    assert_ne!(json, older);
    std::fs::write(&path, &older).unwrap();
    let err = Store::open(dir.path(), StoreConfig::default()).unwrap_err();
    assert!(matches!(err, Error::FormatTooOld { found: 2, .. }), "{err}");
    assert!(err.to_string().contains("topic.json"), "{err}");
}
