//! Writes the fuzz targets' seed corpora from real encoded data and real request bodies. Run on
//! purpose: `cargo test --test fuzz_seeds -- --ignored`, then commit `fuzz/corpus/*/seed-*`.

use std::path::Path;

use kappalog::{Durability, NewRecord, Store, StoreConfig, TopicConfig};

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
}

#[test]
#[ignore = "writes files into fuzz/corpus; run on purpose"]
fn write_seed_corpora() {
    let dir = tempfile::tempdir().unwrap();
    let config = TopicConfig { index_interval_bytes: 64, durability: Durability::None, ..TopicConfig::default() };
    {
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        let t = store.create_topic("t", 1, config).unwrap();
        let p = t.partition(0).unwrap();
        p.append(&[NewRecord::keyed("k", "v")]).unwrap();
        p.append(&[NewRecord::new("no key").with_header("h", "x").with_timestamp(5), NewRecord::tombstone("gone")])
            .unwrap();
        let many: Vec<NewRecord> =
            (0..20).map(|i| NewRecord::keyed(format!("key-{i}"), format!("value-{i}"))).collect();
        p.append(&many).unwrap();
    }
    let pdir = dir.path().join("topics/t/0");
    let log = std::fs::read(pdir.join("00000000000000000000.log")).unwrap();
    let index = std::fs::read(pdir.join("00000000000000000000.index")).unwrap();
    let timeindex = std::fs::read(pdir.join("00000000000000000000.timeindex")).unwrap();
    let report = kappalog::log::inspect_segment(&pdir.join("00000000000000000000.log"), None).unwrap();
    assert!(report.corruption.is_none());
    for (i, b) in report.batches.iter().enumerate() {
        let bytes = &log[b.position as usize..(b.position + b.length as u64) as usize];
        write("batch_decode", &format!("batch-{i}"), bytes);
    }
    let mut ix = (log.len() as u64).to_le_bytes().to_vec();
    ix.extend_from_slice(&index);
    write("index_decode", "offsets", &ix);
    let mut tx = 23u64.to_le_bytes().to_vec();
    tx.extend_from_slice(&timeindex);
    write("index_decode", "times", &tx);
    for clean in [0u8, 1] {
        let mut s = vec![clean];
        s.extend_from_slice(&(index.len() as u16).to_le_bytes());
        s.extend_from_slice(&(timeindex.len() as u16).to_le_bytes());
        s.extend_from_slice(&index);
        s.extend_from_slice(&timeindex);
        s.extend_from_slice(&log);
        write("segment_open", &format!("clean-{clean}"), &s);
        let torn = &s[..s.len() - 7];
        write("segment_open", &format!("torn-{clean}"), torn);
    }
    let mut topic_json = vec![0u8];
    topic_json.extend_from_slice(&std::fs::read(dir.path().join("topics/t/topic.json")).unwrap());
    write("store_metadata", "topic-json", &topic_json);
    let mut meta = vec![1u8];
    meta.extend_from_slice(&std::fs::read(dir.path().join("kappalog.json")).unwrap());
    write("store_metadata", "kappalog-json", &meta);
}

/// The `http_bodies` seeds: valid bodies of every route of `fuzz/fuzz_targets/http_harness.rs`
/// (first byte: the route's index in its `ROUTES`), and `rejected-*` ones for refusals that once
/// were bugs. `tests/http_bodies_fuzz_seeds.rs` replays them.
#[test]
#[ignore = "writes files into fuzz/corpus; run on purpose"]
fn write_http_bodies_seeds() {
    let seeds: &[(&str, u8, &str)] = &[
        (
            "produce-binary",
            0,
            r#"{"records":[{"key":"a2V5","value":"dmFsdWU=","headers":[{"name":"h","value":"eA=="}]},{"value":"aGVsbG8=","partition":1}]}"#,
        ),
        (
            "produce-json",
            1,
            r#"{"records":[{"key":"k1","value":{"k":"x","n":1}},{"value":[1,2.5,"s",null],"timestamp":1700000000000}]}"#,
        ),
        ("produce-partition-binary", 2, r#"{"records":[{"value":"AAEC","timestamp":0}]}"#),
        ("produce-partition-json", 3, r#"{"records":[{"key":{"id":1},"value":{"k":"y"}},{"value":null}]}"#),
        (
            "produce-compacted",
            4,
            r#"{"records":[{"key":"user-1","value":{"name":"a"}},{"key":"user-1","value":null}]}"#,
        ),
        ("produce-no-content-type", 5, r#"{"records":[{"value":"plain"}]}"#),
        ("commit", 6, r#"{"offsets":[{"topic":"t","partition":0,"offset":0,"metadata":"m"}]}"#),
        ("commit-fetched", 6, ""),
        ("reset-earliest", 7, r#"{"topic":"t","strategy":"to_earliest","dry_run":false}"#),
        ("reset-shift", 7, r#"{"topic":"t","partitions":[0,1],"strategy":"shift_by","value":-1,"dry_run":false}"#),
        (
            "view-create-window",
            8,
            r#"{"name":"w","source":{"topics":["t"]},"key":"/k","window":{"type":"hopping","size_ms":1000,"advance_ms":500,"time":"/ts"},"aggregates":{"n":{"op":"count"},"s":{"op":"sum","field":"/n"}}}"#,
        ),
        (
            "view-create-emit",
            8,
            r#"{"name":"e","source":{"topics":["t"]},"filter":{"field":"/n","op":"gt","value":0},"key":"/k","aggregates":{"m":{"op":"max","field":"/n"}},"emit":{"topic":"c","on":"update"}}"#,
        ),
        (
            "view-update",
            9,
            r#"{"name":"v","source":{"topics":["t"]},"key":"/k","aggregates":{"n":{"op":"count"},"last":{"op":"latest","field":"/n"}}}"#,
        ),
        (
            "rejected-view-emit-internal",
            9,
            r#"{"name":"v","source":{"topics":["t"]},"key":"/k","aggregates":{"n":{"op":"count"}},"emit":{"topic":"__consumer_offsets"}}"#,
        ),
    ];
    for (name, route, body) in seeds {
        let mut bytes = vec![*route];
        bytes.extend_from_slice(body.as_bytes());
        write("http_bodies", name, &bytes);
    }
}
