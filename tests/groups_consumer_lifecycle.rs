//! The consumer's own lifecycle, as HTTP consumer instances use it: created idle, subscribed and
//! unsubscribed in place, fetch without consuming then advance, commit what was fetched (once),
//! auto-commit on close, and a wait that wakes when the group gives it partitions.

use std::time::Duration;

use kappalog::groups::Wake;
use kappalog::{
    clock::ManualClock,
    groups::{AutoOffsetReset, TopicPartition},
    Consumer, ConsumerConfig, NewRecord, Store, StoreConfig, TopicConfig,
};

fn config(auto_commit: bool) -> ConsumerConfig {
    ConsumerConfig::default().auto_offset_reset(AutoOffsetReset::Earliest).auto_commit(auto_commit)
}

#[test]
fn subscribe_fetch_advance_commit_and_close() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_000_000);
    let store = Store::open(dir.path(), StoreConfig::default().clock(clock.clone())).unwrap();
    let t = store.create_topic("t", 1, TopicConfig::default()).unwrap();
    t.append(&[NewRecord::new("a"), NewRecord::new("b"), NewRecord::new("c")]).unwrap();
    let groups = store.groups().unwrap();
    let tp = TopicPartition::new("t", 0);

    let mut c = Consumer::new(&groups, "g", config(false)).unwrap();
    assert!(c.assignment().is_empty() && c.membership().is_none());
    c.subscribe_to(vec!["t".into(), "t".into()]).unwrap();
    let generation = c.membership().unwrap().generation;
    c.subscribe_to(vec!["t".into()]).unwrap();
    assert_eq!(c.membership().unwrap().generation, generation, "the same topics again change nothing");
    assert!(c.assign_partitions(vec![tp.clone()]).is_err(), "a subscription and an assignment exclude each other");

    // fetch reads without consuming; advance consumes.
    assert_eq!(c.fetch(10, usize::MAX).unwrap().len(), 3);
    let records = c.fetch(2, usize::MAX).unwrap();
    assert_eq!(records.iter().map(|(_, r)| r.offset).collect::<Vec<_>>(), vec![0, 1]);
    c.advance(&records);
    assert_eq!(c.position(&tp), Some(2));

    // commit_fetched commits the next offset, once.
    c.commit_fetched().unwrap();
    let first = groups.committed("g", &tp).unwrap();
    assert_eq!(first.offset, 2);
    clock.advance(1_000);
    c.commit_fetched().unwrap();
    assert_eq!(groups.committed("g", &tp), Some(first), "nothing new fetched: nothing written");

    c.unsubscribe().unwrap();
    assert!(groups.describe("g").unwrap().members.is_empty());
    assert_eq!(c.position(&tp), None);

    // With auto-commit, close commits what the last poll fetched.
    let mut c = Consumer::subscribe(&groups, "g", vec!["t".into()], config(true)).unwrap();
    assert_eq!(c.poll(10).unwrap().len(), 1, "from the committed offset 2");
    c.close().unwrap();
    assert_eq!(groups.committed("g", &tp).unwrap().offset, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_without_partitions_wakes_when_they_come() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    store.create_topic("one", 1, TopicConfig::default()).unwrap();
    let groups = store.groups().unwrap();
    let owner = Consumer::subscribe(&groups, "g", vec!["one".into()], config(false)).unwrap();
    let mut waiter = Consumer::subscribe(&groups, "g", vec!["one".into()], config(false)).unwrap();
    waiter.refresh().unwrap();
    assert!(waiter.assignment().is_empty());
    let wait = waiter.data_wait().unwrap();
    assert!(!wait.is_ready());
    let leaving = tokio::task::spawn_blocking(move || owner.close().unwrap());
    assert_eq!(wait.wait(Duration::from_secs(30)).await, Wake::Changed, "woken by the rebalance");
    leaving.await.unwrap();
    waiter.refresh().unwrap();
    assert_eq!(waiter.assignment(), vec![TopicPartition::new("one", 0)]);
}
