//! `Partition::read_batches` lends, field by field, the records `Partition::read` returns: keys,
//! null keys, tombstones, empty values, headers (repeated names, empty and null values), across segment
//! rolls, and with every starting offset; reading on from the offset `for_each` returns gives every
//! record once, in order.

use kappalog::{log::RecordRef, Header, NewRecord, Partition, Record, Store, StoreConfig, TopicConfig};

fn record(n: u64) -> NewRecord {
    let mut r = match n % 4 {
        0 => NewRecord::keyed(format!("k{n}"), format!("value {n}")),
        1 => NewRecord::new(format!("keyless {n}")),
        2 => NewRecord::tombstone(format!("k{n}")),
        _ => NewRecord::keyed(format!("k{n}"), ""),
    };
    for h in 0..n % 4 {
        r.headers.push(match h {
            0 => Header::new("h", format!("{n}")),
            1 => Header::new("h", ""),
            _ => Header::null("h"),
        });
    }
    r.with_timestamp(1_000 + n as i64)
}

fn same(lent: &RecordRef<'_>, owned: &Record) -> bool {
    let headers: Vec<(&str, Option<&[u8]>)> =
        owned.headers.iter().map(|h| (h.key.as_str(), h.value.as_deref())).collect();
    lent.offset == owned.offset
        && lent.timestamp == owned.timestamp
        && lent.key == owned.key.as_deref()
        && lent.value == owned.value.as_deref()
        && lent.headers().collect::<Vec<_>>() == headers
}

/// Every record from `offset` on, read with `read_batches` in steps of the given budgets.
fn read_lent_from(p: &Partition, mut offset: u64, max_bytes: usize, max_records: usize) -> Vec<Record> {
    let mut out = Vec::new();
    while offset < p.high_watermark() {
        let batches = p.read_batches(offset, max_bytes, max_records).unwrap();
        assert!(!batches.is_empty(), "no batch at {offset}, below the high watermark");
        for b in &batches {
            assert!(b.base_offset() <= b.last_offset());
            offset = b
                .for_each(|r| {
                    let owned = b.to_record(r);
                    assert!(same(&r, &owned), "{r:?} lent, {owned:?} owned");
                    out.push(owned);
                })
                .unwrap();
        }
    }
    out
}

#[test]
fn lent_records_are_the_records_read_returns() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let cfg = TopicConfig::default().segment_bytes(4096);
    let p = store.create_topic("t", 1, cfg).unwrap().partition(0).unwrap();
    let mut n = 0;
    for batch in 0..120 {
        let records: Vec<NewRecord> = (0..1 + batch % 5)
            .map(|_| {
                n += 1;
                record(n)
            })
            .collect();
        p.append(&records).unwrap();
    }
    assert!(p.segment_infos().unwrap().len() > 2, "the records span several segments");
    let all = p.read(0, usize::MAX, usize::MAX).unwrap();
    assert_eq!(all.len() as u64, n);
    for offset in 0..n {
        for (max_bytes, max_records) in [(1, 1), (100, 3), (usize::MAX, usize::MAX)] {
            let lent = read_lent_from(&p, offset, max_bytes, max_records);
            assert_eq!(lent[..], all[offset as usize..], "from {offset}, budgets {max_bytes} {max_records}");
            for (r, want) in lent.iter().zip(&all[offset as usize..]) {
                // The owned records `to_record` makes are those `read` returns, also by field.
                assert_eq!(r.headers, want.headers);
            }
        }
    }
    // At the high watermark there is nothing to lend; past it is out of range, as for `read`.
    assert!(p.read_batches(n, usize::MAX, usize::MAX).unwrap().is_empty());
    assert!(p.read_batches(n + 1, usize::MAX, usize::MAX).is_err());
}

#[test]
fn a_record_of_another_batch_is_copied_not_misread() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let p = store.create_topic("t", 1, TopicConfig::default()).unwrap().partition(0).unwrap();
    p.append(&[record(0)]).unwrap();
    p.append(&[record(4), record(5)]).unwrap();
    let all = p.read(0, usize::MAX, usize::MAX).unwrap();
    let batches = p.read_batches(0, usize::MAX, usize::MAX).unwrap();
    assert_eq!(batches.len(), 2);
    // Each batch asked for the other's records: the same records, by value.
    for (mine, other) in [(&batches[0], &batches[1]), (&batches[1], &batches[0])] {
        other
            .for_each(|r| {
                let owned = mine.to_record(r);
                assert_eq!(owned, all[r.offset as usize]);
            })
            .unwrap();
    }
}
