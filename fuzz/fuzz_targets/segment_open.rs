//! Recovery of an arbitrary active segment: open a partition whose `.log`, `.index` and
//! `.timeindex` are the fuzz input. It must recover or report corruption, never panic, never read
//! out of bounds, and afterwards accept an append that reads back.
#![no_main]

use kappalog::{Durability, NewRecord, Store, StoreConfig, TopicConfig};
use libfuzzer_sys::fuzz_target;

fn split(data: &[u8]) -> (bool, &[u8], &[u8], &[u8]) {
    // [flags u8][index_len u16][timeindex_len u16][index][timeindex][log...]
    if data.len() < 5 {
        return (false, &[], &[], data);
    }
    let clean = data[0] & 1 == 1;
    let il = (u16::from_le_bytes([data[1], data[2]]) as usize).min(data.len() - 5);
    let rest = &data[5..];
    let tl = (u16::from_le_bytes([data[3], data[4]]) as usize).min(rest.len() - il);
    (clean, &rest[..il], &rest[il..il + tl], &rest[il + tl..])
}

fuzz_target!(|data: &[u8]| {
    let (clean, index, timeindex, log) = split(data);
    let base = if std::path::Path::new("/dev/shm").is_dir() { "/dev/shm" } else { "/tmp" };
    let dir = tempfile::tempdir_in(base).unwrap();
    let config = TopicConfig::default().segment_bytes(1 << 20).index_interval_bytes(64).durability(Durability::None);
    drop(Store::open(dir.path(), StoreConfig::default()).unwrap().create_topic("t", 1, config).unwrap());
    let pdir = dir.path().join("topics/t/0");
    std::fs::write(pdir.join("00000000000000000000.log"), log).unwrap();
    std::fs::write(pdir.join("00000000000000000000.index"), index).unwrap();
    std::fs::write(pdir.join("00000000000000000000.timeindex"), timeindex).unwrap();
    if !clean {
        let _ = std::fs::remove_file(dir.path().join("clean-shutdown"));
    }
    let store =
        Store::open(dir.path(), StoreConfig::default()).expect("a damaged segment never stops the store from opening");
    let p = store.topic("t").unwrap().partition(0).unwrap();
    let hw = p.high_watermark();
    let mut next = p.log_start_offset();
    while next < hw {
        match p.read(next, 4096, 100) {
            Ok(recs) if !recs.is_empty() => next = recs.last().unwrap().offset + 1,
            Ok(_) => break,
            Err(kappalog::Error::Corrupted { .. }) => break,
            Err(e) => panic!("unexpected error reading at {next}: {e}"),
        }
    }
    let _ = p.offset_for_timestamp(0);
    let appended = p.append(&[NewRecord::keyed("k", "after")]).expect("appends work after recovery");
    assert_eq!(appended.base_offset, hw);
    let back = p.read(hw, 4096, 1).expect("the appended record reads back");
    assert_eq!(back[0].value.as_deref(), Some(&b"after"[..]));
});
