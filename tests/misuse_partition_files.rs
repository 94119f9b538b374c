//! The small files a partition reads at open besides its segments: `log-start-offset` (and the
//! cleaner's `cleaner-checkpoint`, same layout) and the compaction swap manifest `cleaner.swap`.
//! Whatever they hold (garbage, a well-formed offset anywhere in `u64`), opening the store and then
//! reading, appending and cleaning must give a result or a clear error, never a panic; and an
//! intact log is never damaged by them. Seeded (printed) garbage for the manifest.

use kappalog::{CleanupPolicy, NewRecord, Store, StoreConfig, TopicConfig};

const RECORDS: u64 = 200;

/// A 12-byte offset file: offset, then the CRC-32 of its 8 bytes (segment-format.md, section 16).
fn offset_file(offset: u64) -> Vec<u8> {
    let mut b = offset.to_le_bytes().to_vec();
    b.extend_from_slice(&crc32fast::hash(&b).to_le_bytes());
    b
}

fn store_with_data(dir: &std::path::Path, compact: bool) {
    let store = Store::open(dir, StoreConfig::default()).unwrap();
    let cfg = TopicConfig::default().segment_bytes(4096).cleanup_policy(if compact {
        CleanupPolicy::Compact
    } else {
        CleanupPolicy::Delete
    });
    let p = store.create_topic("t", 1, cfg).unwrap().partition(0).unwrap();
    for i in 0..RECORDS {
        p.append(&[NewRecord::keyed(format!("k{}", i % 5), format!("value {i} {:0100}", 0))]).unwrap();
    }
}

/// Opens the store and exercises the partition; returns what happened, for the message.
fn exercise(dir: &std::path::Path) -> String {
    let store = match Store::open(dir, StoreConfig::default()) {
        Ok(s) => s,
        Err(e) => return format!("open refused: {e}"),
    };
    let p = store.topic("t").unwrap().partition(0).unwrap();
    let (start, hw) = (p.log_start_offset(), p.high_watermark());
    assert!(start <= hw, "log start {start} beyond the high watermark {hw}");
    let read = p.read(start, usize::MAX, usize::MAX).map(|r| r.len());
    let appended = p.append(&[NewRecord::keyed("k", "after")]).map(|a| a.base_offset);
    let retention = store.enforce_retention("t").map(|_| ());
    let compaction = store.compact("t").map(|_| ());
    format!("start {start} hw {hw} read {read:?} append {appended:?} retention {retention:?} compaction {compaction:?}")
}

#[test]
fn any_log_start_offset_or_cleaner_checkpoint_opens_or_fails_cleanly() {
    for file in ["log-start-offset", "cleaner-checkpoint"] {
        for value in [0, 1, RECORDS / 2, RECORDS, RECORDS + 1, u64::MAX / 2, u64::MAX - 1, u64::MAX] {
            for bytes in [offset_file(value), offset_file(value)[..7].to_vec(), vec![0xff; 12]] {
                let dir = tempfile::tempdir().unwrap();
                store_with_data(dir.path(), file == "cleaner-checkpoint");
                std::fs::write(dir.path().join("topics/t/0").join(file), &bytes).unwrap();
                let what = exercise(dir.path());
                eprintln!("{file} = {value} ({} bytes): {what}", bytes.len());
            }
        }
    }
}

#[test]
fn a_garbage_swap_manifest_opens_or_fails_cleanly() {
    let seed: u64 = std::env::var("SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    eprintln!("SEED={seed}");
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut contents: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"{}".to_vec(),
        b"{\"remove\":[0],\"install\":[0]}".to_vec(),
        b"{\"remove\":[18446744073709551615],\"install\":[5,3]}".to_vec(),
        b"{\"remove\":[],\"install\":[99999]}".to_vec(),
        vec![0xff; 40],
    ];
    for _ in 0..20 {
        let len = (next() % 64) as usize;
        contents.push((0..len).map(|_| next() as u8).collect());
    }
    // The same bodies behind a valid checksum (the manifest is `crc u32 LE` + JSON): they reach the
    // parser and the swap's recovery, which must not panic on lists that name missing segments.
    let checked: Vec<Vec<u8>> = contents
        .iter()
        .map(|body| {
            let mut b = crc32fast::hash(body).to_le_bytes().to_vec();
            b.extend_from_slice(body);
            b
        })
        .collect();
    contents.extend(checked);
    for bytes in contents {
        let dir = tempfile::tempdir().unwrap();
        store_with_data(dir.path(), true);
        std::fs::write(dir.path().join("topics/t/0/cleaner.swap"), &bytes).unwrap();
        let what = exercise(dir.path());
        eprintln!("cleaner.swap = {:?}: {what}", String::from_utf8_lossy(&bytes));
    }
}
