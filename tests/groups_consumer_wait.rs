//! The consumer's async wait: it returns as soon as an assigned partition gets a record past its
//! position (a notification), and false after the timeout when none comes.

use std::time::Duration;

use kappalog::{groups::AutoOffsetReset, Consumer, ConsumerConfig, NewRecord, Store, StoreConfig, TopicConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_data_wakes_on_append() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let t = store.create_topic("t", 2, TopicConfig::default()).unwrap();
    let coordinator = store.groups().unwrap();
    let config = ConsumerConfig::default().auto_offset_reset(AutoOffsetReset::Latest);
    let mut c = Consumer::subscribe(&coordinator, "g", vec!["t".into()], config).unwrap();
    assert!(!c.wait_for_data(Duration::from_millis(50)).await.unwrap(), "nothing to read");

    let appender = tokio::task::spawn_blocking(move || t.append(&[NewRecord::keyed("k", "v")]).unwrap());
    assert!(c.wait_for_data(Duration::from_secs(30)).await.unwrap(), "woken by the append");
    appender.await.unwrap();
    let got = tokio::task::block_in_place(|| c.poll(10)).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1.value.as_deref(), Some(&b"v"[..]));
    c.close().unwrap();
}
