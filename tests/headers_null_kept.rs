//! A header's null value and its empty value stay apart (Kafka's distinction) end to end through
//! the library: appended, read owned and lent, after a clean reopen, and after recovery of a crash
//! image (the data directory copied while the store is open: no clean-shutdown mark).

mod common;

use kappalog::{Header, NewRecord, Partition, Record, Store, TopicConfig};

fn records() -> Vec<NewRecord> {
    vec![
        NewRecord::keyed("a", "1").with_null_header("n").with_header("e", "").with_header("v", "x"),
        NewRecord::new("2").with_header("e", "").with_null_header("n"),
        NewRecord::tombstone("a").with_null_header("only"),
    ]
}

fn expected() -> Vec<Vec<Header>> {
    vec![
        vec![Header::null("n"), Header::new("e", ""), Header::new("v", "x")],
        vec![Header::new("e", ""), Header::null("n")],
        vec![Header::null("only")],
    ]
}

fn check(p: &Partition) {
    let owned: Vec<Record> = p.read(0, 1 << 20, 100).unwrap();
    let headers: Vec<Vec<Header>> = owned.iter().map(|r| r.headers.clone()).collect();
    assert_eq!(headers, expected(), "owned reads");
    let mut lent = Vec::new();
    for b in p.read_batches(0, 1 << 20, 100).unwrap() {
        b.for_each(|r| lent.push(r.headers().map(|(k, v)| (k.to_string(), v.map(<[u8]>::to_vec))).collect::<Vec<_>>()))
            .unwrap();
    }
    let want: Vec<Vec<(String, Option<Vec<u8>>)>> = expected()
        .into_iter()
        .map(|hs| hs.into_iter().map(|h| (h.key, h.value.map(|v| v.to_vec()))).collect())
        .collect();
    assert_eq!(lent, want, "lent reads");
}

#[test]
fn null_and_empty_header_values_survive_reopen_and_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let crash = tempfile::tempdir().unwrap();
    {
        let store = Store::builder(dir.path()).cleaner_interval_ms(0).open().unwrap();
        let t = store.create_topic("t", 1, TopicConfig::default()).unwrap();
        t.append(&records()).unwrap();
        check(&t.partition(0).unwrap());
        // A crash image: copied while open, so the next open recovers the log by scanning it.
        common::copy_dir(dir.path(), crash.path());
    }
    for d in [dir.path(), crash.path()] {
        let store = Store::builder(d).cleaner_interval_ms(0).open().unwrap();
        check(&store.topic("t").unwrap().partition(0).unwrap());
    }
}
