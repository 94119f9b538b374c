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
    let config = TopicConfig::default().index_interval_bytes(64).durability(Durability::None);
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

/// `batch_decode` seeds of every codec, and a compression bomb (a zstd batch whose records expand
/// past `DECOMPRESSED_BYTES_MAX`, with a valid CRC).
#[test]
#[ignore = "writes files into fuzz/corpus; run on purpose"]
fn write_codec_seeds() {
    use kappalog::CompressionType;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    for codec in [CompressionType::Gzip, CompressionType::Snappy, CompressionType::Lz4, CompressionType::Zstd] {
        let config = TopicConfig::default().compression_type(codec).durability(Durability::None);
        let p = store.create_topic(codec.as_str(), 1, config).unwrap().partition(0).unwrap();
        let recs: Vec<NewRecord> = (0..10)
            .map(|i| NewRecord::keyed(format!("k{i}"), format!(r#"{{"n":{i}}}"#)).with_header("h", "x"))
            .collect();
        p.append(&recs).unwrap();
        let raw = p.read_raw(0, usize::MAX).unwrap().bytes;
        write("batch_decode", &format!("codec-{}", codec.as_str()), &raw);
    }
    let p = store.topic("zstd").unwrap().partition(0).unwrap();
    let mut bomb = p.read_raw(0, usize::MAX).unwrap().bytes[..61].to_vec();
    bomb.extend_from_slice(
        &zstd::bulk::compress(&vec![0u8; kappalog::limits::DECOMPRESSED_BYTES_MAX + 1], 19).unwrap(),
    );
    let len = (bomb.len() - 12) as u32;
    bomb[8..12].copy_from_slice(&len.to_be_bytes());
    let crc = crc32c::crc32c(&bomb[21..]);
    bomb[17..21].copy_from_slice(&crc.to_be_bytes());
    assert!(kappalog::log::decode_batch(&bomb).unwrap_err().to_string().contains("expand past"));
    write("batch_decode", "zstd-bomb", &bomb);
}

/// The `store_files` seeds (first byte: the file, bit 3: framed by the harness with a valid
/// checksum; see `fuzz/fuzz_targets/store_files.rs`): real offset files, a swap manifest, view
/// definitions and checkpoints, and a broker config file.
#[test]
#[ignore = "writes files into fuzz/corpus; run on purpose"]
fn write_store_files_seeds() {
    use kappalog::stream::{Views, ViewsConfig};
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        let topic = store.create_topic("t", 1, TopicConfig::default()).unwrap();
        for i in 0..20u64 {
            let value = format!(r#"{{"k":"k{}","n":{i},"ts":{}}}"#, i % 7, 1000 + i * 97);
            topic.append(&[NewRecord::keyed(format!("k{}", i % 7), value)]).unwrap();
        }
        let views = Views::open(&store, ViewsConfig::default()).unwrap();
        for spec in [
            r#"{"name":"counts","source":{"topics":["t"]},"key":"/k",
                "aggregates":{"c":{"op":"count"},"s":{"op":"sum","field":"/n"}}}"#,
            r#"{"name":"per_second","source":{"topics":["t"]},"key":"/k",
                "window":{"type":"tumbling","size_ms":1000,"grace_ms":100,"time":"/ts"},
                "aggregates":{"c":{"op":"count"},"m":{"op":"max","field":"/n"}}}"#,
        ] {
            let v = views.create_json(spec.as_bytes()).unwrap();
            assert!(v.wait_caught_up(std::time::Duration::from_secs(30)));
        }
        views.close();
    }
    let with = |selector: u8, bytes: &[u8]| [&[selector][..], bytes].concat();
    write("store_files", "log-start-offset-framed", &with(0x08, &3u64.to_le_bytes()));
    write("store_files", "cleaner-checkpoint-framed", &with(0x09, &12u64.to_le_bytes()));
    write("store_files", "swap-manifest-framed", &with(0x0a, br#"{"remove":[0],"install":[0]}"#));
    let views = dir.path().join("views");
    write("store_files", "view-json-table", &with(0x03, &std::fs::read(views.join("counts/view.json")).unwrap()));
    write("store_files", "view-json-window", &with(0x07, &std::fs::read(views.join("per_second/view.json")).unwrap()));
    for (name, view, selector) in [("table", "counts", 4u8), ("window", "per_second", 5u8)] {
        let checkpoint = std::fs::read(dir.path().join("views").join(view).join("v1.checkpoint")).unwrap();
        write("store_files", &format!("checkpoint-{name}-raw"), &with(selector, &checkpoint));
        // The body alone (after the 28-byte header of version 3): the harness frames it (magic,
        // version 1, length, CRC).
        write("store_files", &format!("checkpoint-{name}-body-framed"), &with(selector | 8, &checkpoint[28..]));
    }
    let config =
        "data_dir = \"/tmp/x\"\nlisten = \"127.0.0.1:8082\"\nbody_bytes_max = 1048576\ncleaner_interval_ms = 500\n";
    write("store_files", "serve-config", &with(0x06, config.as_bytes()));
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
