//! Changing `segment_bytes` of a live topic applies from the next roll, and never lets the active
//! segment outgrow what it was set up for (its memory map is sized from `segment_bytes` at creation).

use kappalog::{limits::BATCH_BYTES_MAX, Durability, NewRecord, Store, StoreConfig, TopicConfig};

/// Records of this size, four to a batch: big batches reach the map's slack quickly.
const VALUE_BYTES: usize = 1_000_000;

#[test]
fn growing_segment_bytes_on_a_live_topic_is_safe() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let small = TopicConfig::default().segment_bytes(4096).durability(Durability::None);
    let p = store.create_topic("t", 1, small.clone()).unwrap().partition(0).unwrap();
    p.append(&[NewRecord::new("first")]).unwrap();
    // The active segment was made for 4 KiB segments; now segments may be 1 GiB.
    store.set_topic_config("t", small.segment_bytes(1 << 30)).unwrap();
    let value = vec![7u8; VALUE_BYTES];
    let batch: Vec<NewRecord> = (0..4).map(|_| NewRecord::new(value.clone())).collect();
    let batches = (BATCH_BYTES_MAX as usize / (4 * VALUE_BYTES)) as u64 + 2;
    for i in 0..batches {
        let a = p.append(&batch).unwrap();
        assert_eq!(a.base_offset, 1 + 4 * i);
    }
    assert_eq!(p.high_watermark(), 1 + 4 * batches);
    let last = p.read(4 * batches, usize::MAX, 1).unwrap();
    assert_eq!(last[0].value.as_deref(), Some(&value[..]));
    // The first big batch rolled the 4 KiB segment; the new one was made for 1 GiB and took them all.
    let infos = p.segment_infos().unwrap();
    assert_eq!(infos.len(), 2, "{infos:?}");
    assert!(infos[1].size_bytes > BATCH_BYTES_MAX as u64);
}
