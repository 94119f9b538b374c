//! A record that does not decode inside a batch whose CRC is right (a bug or a crafted file, not
//! a torn write) stops the view with the corruption error, and the view's offset stays exactly
//! after the last record it applied: nothing it counted is counted again when it resumes.

mod common;

use std::time::{Duration, Instant};

use kappalog::{stream::ViewRunState, NewRecord, Store, StoreConfig, TopicConfig, Views, ViewsConfig};

/// Kafka's zig-zag varint, as the record format uses (segment-format.md).
fn varlong(b: &[u8], pos: &mut usize) -> i64 {
    let (mut v, mut shift) = (0u64, 0);
    loop {
        let byte = b[*pos];
        *pos += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return ((v >> 1) as i64) ^ -((v & 1) as i64);
        }
        shift += 7;
    }
}

#[test]
fn a_malformed_record_stops_the_view_right_after_what_it_applied() {
    const HEADER_LEN: usize = common::batch::HEADER_LEN;
    const BAD: usize = 5;
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        let p = store.create_topic("t", 1, TopicConfig::default()).unwrap().partition(0).unwrap();
        p.append(&(0..3).map(|i| NewRecord::new(format!(r#"{{"k":"a{i}"}}"#))).collect::<Vec<_>>()).unwrap();
        p.append(&(0..10).map(|i| NewRecord::new(format!(r#"{{"k":"b{i}"}}"#))).collect::<Vec<_>>()).unwrap();
    }
    // Give record BAD of the second batch an impossible length, and the batch a CRC that matches.
    let log = dir.path().join("topics/t/0/00000000000000000000.log");
    let mut b = std::fs::read(&log).unwrap();
    let second = common::batch::len_at(&b, 0);
    let mut pos = second + HEADER_LEN;
    for _ in 0..BAD {
        let len = varlong(&b, &mut pos);
        pos += len as usize;
    }
    assert!(b[pos] < 0x80, "a one-byte length varint");
    b[pos] = 0x7f; // zig-zag -64
    let end = second + common::batch::len_at(&b, second);
    common::batch::fix_crc(&mut b[second..end]);
    std::fs::write(&log, &b).unwrap();

    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    assert_eq!(store.topic("t").unwrap().partition(0).unwrap().high_watermark(), 13, "the CRC holds: kept");
    let views = Views::open(&store, ViewsConfig::default()).unwrap();
    let spec = r#"{"name": "per_k", "source": {"topics": ["t"]}, "key": "/k", "aggregates": {"n": {"op": "count"}}}"#;
    let view = views.create_json(spec.as_bytes()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let s = view.status();
        if s.state == ViewRunState::Failed {
            break s;
        }
        assert!(Instant::now() < deadline, "the view did not stop: {s:?}");
        std::thread::sleep(Duration::from_millis(10));
    };
    let error = status.error.clone().unwrap_or_default();
    assert!(error.contains("00000000000000000000.log") && error.contains(&format!("record {BAD}")), "{error}");
    let applied = 3 + BAD as u64;
    assert_eq!(status.counters.records_read, applied, "{status:?}");
    assert_eq!(status.keys as u64, applied);
    assert_eq!(status.lag[0].next_offset, applied, "the offset stays right after the last applied record");
    views.close();
}
