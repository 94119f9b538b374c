//! A data directory written by a newer format version is refused with a clear message, and the
//! refusal changes nothing on disk.

use kappalog::{limits::FORMAT_VERSION, Error, Store, StoreConfig, TopicConfig};

#[test]
fn a_newer_store_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path(), StoreConfig::default()).unwrap());
    let meta = dir.path().join("kappalog.json");
    let newer = format!("{{\"format_version\": {}}}", FORMAT_VERSION + 1);
    std::fs::write(&meta, &newer).unwrap();
    let err = Store::open(dir.path(), StoreConfig::default()).unwrap_err();
    assert!(
        matches!(err, Error::UnsupportedFormat { found, supported, .. } if found == FORMAT_VERSION + 1 && supported == FORMAT_VERSION)
    );
    let msg = err.to_string();
    assert!(msg.contains("kappalog.json") && msg.contains("format version"), "{msg}");
    assert_eq!(std::fs::read_to_string(&meta).unwrap(), newer, "the refusal rewrote nothing");
}

#[test]
fn a_newer_topic_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(
        Store::open(dir.path(), StoreConfig::default()).unwrap().create_topic("t", 1, TopicConfig::default()).unwrap(),
    );
    let path = dir.path().join("topics/t/topic.json");
    let json = std::fs::read_to_string(&path).unwrap();
    let newer = json.replace(
        &format!("\"format_version\": {FORMAT_VERSION}"),
        &format!("\"format_version\": {}", FORMAT_VERSION + 1),
    );
    assert_ne!(json, newer);
    std::fs::write(&path, &newer).unwrap();
    let err = Store::open(dir.path(), StoreConfig::default()).unwrap_err();
    assert!(matches!(err, Error::UnsupportedFormat { .. }), "{err}");
    assert!(err.to_string().contains("topic.json"), "{err}");
}

#[test]
fn a_garbled_metadata_file_is_reported_not_guessed() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path(), StoreConfig::default()).unwrap());
    std::fs::write(dir.path().join("kappalog.json"), b"{\"format_vers").unwrap();
    let err = Store::open(dir.path(), StoreConfig::default()).unwrap_err();
    assert!(matches!(err, Error::Corrupted { .. }), "{err}");
    assert!(err.to_string().contains("kappalog.json"), "{err}");
}
