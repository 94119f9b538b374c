//! The files the store reads at open besides segments: `kappalog.json` and `topic.json`.
//! Any content opens or fails with an error, never a panic.
#![no_main]

use kappalog::{Store, StoreConfig, TopicConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let base = if std::path::Path::new("/dev/shm").is_dir() { "/dev/shm" } else { "/tmp" };
    let dir = tempfile::tempdir_in(base).unwrap();
    drop(
        Store::open(dir.path(), StoreConfig::default()).unwrap().create_topic("t", 2, TopicConfig::default()).unwrap(),
    );
    let (which, content) = data.split_first().unwrap_or((&0, data));
    let target = if which & 1 == 0 { dir.path().join("topics/t/topic.json") } else { dir.path().join("kappalog.json") };
    std::fs::write(target, content).unwrap();
    if let Ok(store) = Store::open(dir.path(), StoreConfig::default()) {
        for name in store.topic_names() {
            let t = store.topic(&name).unwrap();
            assert!(t.partition_count() >= 1);
            t.config().validate().expect("an opened topic has a valid config");
        }
    }
});
