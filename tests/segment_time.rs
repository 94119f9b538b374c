//! Time in the log: `segment_ms` rolls the active segment by age (on a `ManualClock`), and
//! `LogAppendTime` stores the append time instead of the producer's timestamp.

use kappalog::{clock::ManualClock, Durability, NewRecord, Store, StoreConfig, TimestampType, TopicConfig};

const START_MS: i64 = 1_700_000_000_000;
const SEGMENT_MS: u64 = 60_000;

#[test]
fn segment_ms_rolls_by_age() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START_MS);
    let store = Store::open(dir.path(), StoreConfig::default().clock(clock.clone())).unwrap();
    let config = TopicConfig::default().segment_ms(SEGMENT_MS).durability(Durability::None);
    let p = store.create_topic("t", 1, config).unwrap().partition(0).unwrap();

    // An empty segment does not age: time passing before the first append rolls nothing.
    clock.advance(10 * SEGMENT_MS as i64);
    p.append(&[NewRecord::new("a")]).unwrap();
    assert_eq!(p.stats().segments, 1);
    // Younger than segment_ms: no roll.
    clock.advance(SEGMENT_MS as i64 - 1);
    p.append(&[NewRecord::new("b")]).unwrap();
    assert_eq!(p.stats().segments, 1);
    // segment_ms after the segment's first append: the next append starts a new segment.
    clock.advance(1);
    p.append(&[NewRecord::new("c")]).unwrap();
    let infos = p.segment_infos().unwrap();
    assert_eq!(
        infos.iter().map(|s| (s.base_offset, s.next_offset, s.active)).collect::<Vec<_>>(),
        [(0, 2, false), (2, 3, true)]
    );
    // The new segment's age counts from its own first append.
    clock.advance(SEGMENT_MS as i64 - 1);
    p.append(&[NewRecord::new("d")]).unwrap();
    assert_eq!(p.stats().segments, 2);
    clock.advance(1);
    p.append(&[NewRecord::new("e")]).unwrap();
    assert_eq!(p.stats().segments, 3);
    let values: Vec<_> = p.read(0, usize::MAX, usize::MAX).unwrap().into_iter().map(|r| r.value.unwrap()).collect();
    assert_eq!(values, ["a", "b", "c", "d", "e"]);
}

#[test]
fn segment_age_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START_MS);
    let open = || Store::open(dir.path(), StoreConfig::default().clock(clock.clone())).unwrap();
    let config = TopicConfig::default().segment_ms(SEGMENT_MS).durability(Durability::None);
    let store = open();
    store.create_topic("t", 1, config).unwrap().partition(0).unwrap().append(&[NewRecord::new("a")]).unwrap();
    drop(store);
    clock.advance(SEGMENT_MS as i64 / 2);
    for unclean in [false, true] {
        // A restart in the middle of the segment's life does not make it young again.
        if unclean {
            std::fs::remove_file(dir.path().join("clean-shutdown")).unwrap();
        }
        let store = open();
        let p = store.topic("t").unwrap().partition(0).unwrap();
        assert_eq!(p.stats().segments, 1);
        drop(store);
    }
    let store = open();
    let p = store.topic("t").unwrap().partition(0).unwrap();
    clock.advance(SEGMENT_MS as i64 / 2 - 1);
    p.append(&[NewRecord::new("b")]).unwrap();
    assert_eq!(p.stats().segments, 1, "younger than segment_ms");
    clock.advance(1);
    p.append(&[NewRecord::new("c")]).unwrap();
    assert_eq!(p.stats().segments, 2, "segment_ms after the first append, a restart in between");
}

#[test]
fn log_append_time_overrides_producer_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START_MS);
    let store = Store::open(dir.path(), StoreConfig::default().clock(clock.clone())).unwrap();
    let log_time = TopicConfig::default().timestamp_type(TimestampType::LogAppendTime);
    let create_time = TopicConfig::default().timestamp_type(TimestampType::CreateTime);
    let lat = store.create_topic("log-time", 1, log_time).unwrap();
    let ct = store.create_topic("create-time", 1, create_time).unwrap();

    let records = || {
        vec![
            NewRecord::new("old").with_timestamp(5),
            NewRecord::new("none"),
            NewRecord::new("new").with_timestamp(START_MS * 2),
        ]
    };
    let placed = lat.append(&records()).unwrap();
    assert!(placed.iter().all(|m| m.timestamp == START_MS), "{placed:?}");
    let a = lat.partition(0).unwrap().append(&records()).unwrap();
    assert_eq!(a.timestamp, START_MS);
    let stored: Vec<i64> =
        lat.partition(0).unwrap().read(0, usize::MAX, usize::MAX).unwrap().iter().map(|r| r.timestamp).collect();
    assert_eq!(stored, [START_MS; 6]);

    clock.advance(1000);
    let placed = ct.append(&records()).unwrap();
    assert_eq!(placed.iter().map(|m| m.timestamp).collect::<Vec<_>>(), [5, START_MS + 1000, START_MS * 2]);
    let stored: Vec<i64> =
        ct.partition(0).unwrap().read(0, usize::MAX, usize::MAX).unwrap().iter().map(|r| r.timestamp).collect();
    assert_eq!(stored, [5, START_MS + 1000, START_MS * 2]);

    // The time index follows the stored timestamps, and they survive a reopen.
    drop((lat, ct));
    drop(store);
    let store = Store::open(dir.path(), StoreConfig::default().clock(clock.clone())).unwrap();
    let p = store.topic("log-time").unwrap().partition(0).unwrap();
    assert_eq!(p.offset_for_timestamp(6).unwrap(), Some(0));
    assert_eq!(p.offset_for_timestamp(START_MS + 1).unwrap(), None, "no producer timestamp was kept");
    let p = store.topic("create-time").unwrap().partition(0).unwrap();
    assert_eq!(p.offset_for_timestamp(6).unwrap(), Some(1));
    assert_eq!(p.offset_for_timestamp(START_MS + 1001).unwrap(), Some(2));
}
