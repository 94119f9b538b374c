//! Builds a data directory of format version 2 byte for byte, from the layout format 2 documented
//! (kappalog's own 43-byte little-endian batch header with CRC-32 over `[8, length)`, Kafka v2
//! records), independently of the crate's code; and reads a store back for comparison.
#![allow(dead_code)]

use std::path::Path;

use crate::common::Rng;

/// One record as it should read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rec {
    pub offset: u64,
    pub timestamp: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

fn varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        let b = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn bytes_field(out: &mut Vec<u8>, b: &Option<Vec<u8>>) {
    match b {
        None => varint(out, -1),
        Some(b) => {
            varint(out, b.len() as i64);
            out.extend_from_slice(b);
        }
    }
}

/// A format-2 batch of `records` (offsets increasing, possibly with gaps), base offset `base`.
pub fn old_batch(base: u64, last_offset_delta: u32, log_append: bool, records: &[Rec]) -> Vec<u8> {
    let first_ts = records[0].timestamp;
    let max_ts = records.iter().map(|r| r.timestamp).max().unwrap();
    let mut body = Vec::new();
    for r in records {
        let mut rec = vec![0u8];
        varint(&mut rec, r.timestamp.wrapping_sub(first_ts));
        varint(&mut rec, (r.offset - base) as i64);
        bytes_field(&mut rec, &r.key);
        bytes_field(&mut rec, &r.value);
        varint(&mut rec, r.headers.len() as i64);
        for (k, v) in &r.headers {
            varint(&mut rec, k.len() as i64);
            rec.extend_from_slice(k.as_bytes());
            bytes_field(&mut rec, v);
        }
        varint(&mut body, rec.len() as i64);
        body.extend_from_slice(&rec);
    }
    let mut b = vec![0u8; 43];
    b[0..4].copy_from_slice(&((43 + body.len()) as u32).to_le_bytes());
    b[8] = 1;
    b[9..11].copy_from_slice(&(log_append as u16).to_le_bytes());
    b[11..19].copy_from_slice(&base.to_le_bytes());
    b[19..23].copy_from_slice(&last_offset_delta.to_le_bytes());
    b[23..27].copy_from_slice(&(records.len() as u32).to_le_bytes());
    b[27..35].copy_from_slice(&first_ts.to_le_bytes());
    b[35..43].copy_from_slice(&max_ts.to_le_bytes());
    b.extend_from_slice(&body);
    let crc = crc32fast::hash(&b[8..]);
    b[4..8].copy_from_slice(&crc.to_le_bytes());
    b
}

fn random_bytes(rng: &mut Rng, max: u64) -> Option<Vec<u8>> {
    match rng.below(8) {
        0 => None,
        1 => Some(Vec::new()),
        _ => {
            let n = rng.below(max) as usize;
            Some(rng.bytes(n))
        }
    }
}

/// Writes format-2 data directory `dir`: `topics` topics of `partitions` partitions, random
/// records in several segments per partition (with offset gaps, as compaction leaves, and an
/// empty active segment in some). Returns every record per (topic, partition).
pub fn write_old_store(dir: &Path, rng: &mut Rng, topics: u32, partitions: u32) -> Vec<(String, u32, Vec<Rec>)> {
    std::fs::create_dir_all(dir.join("topics")).unwrap();
    std::fs::write(dir.join("kappalog.json"), "{\n  \"format_version\": 2\n}").unwrap();
    let mut all = Vec::new();
    for t in 0..topics {
        let name = format!("t{t}");
        let log_append = t % 3 == 2;
        let tdir = dir.join("topics").join(&name);
        for p in 0..partitions {
            let pdir = tdir.join(p.to_string());
            std::fs::create_dir_all(&pdir).unwrap();
            let mut recs = Vec::new();
            let mut offset = 0u64;
            let segments = 1 + rng.below(3);
            for s in 0..segments {
                let mut log = Vec::new();
                let seg_base = offset;
                let batches = if s > 0 && s + 1 == segments && rng.below(3) == 0 { 0 } else { 1 + rng.below(6) };
                for _ in 0..batches {
                    let base = offset;
                    let n = 1 + rng.below(5);
                    let mut batch = Vec::new();
                    let ts0 = 1_700_000_000_000 + rng.below(1_000_000) as i64;
                    let mut o = base;
                    for i in 0..n {
                        if i > 0 {
                            o += 1 + rng.below(2); // a gap now and then, as compaction leaves
                        }
                        let headers = (0..rng.below(3)).map(|h| (format!("h{h}"), random_bytes(rng, 8))).collect();
                        batch.push(Rec {
                            offset: o,
                            timestamp: if log_append { ts0 } else { ts0 + rng.below(5000) as i64 - 2000 },
                            key: random_bytes(rng, 16),
                            value: random_bytes(rng, 200),
                            headers,
                        });
                    }
                    let last_delta = (o - base + rng.below(2)) as u32;
                    log.extend_from_slice(&old_batch(base, last_delta, log_append, &batch));
                    offset = base + last_delta as u64 + 1;
                    recs.extend(batch);
                }
                std::fs::write(pdir.join(format!("{seg_base:020}.log")), &log).unwrap();
                // Format-2 index files: ignored by the migration, which rebuilds them.
                std::fs::write(pdir.join(format!("{seg_base:020}.index")), [0u8; 8]).unwrap();
                std::fs::write(pdir.join(format!("{seg_base:020}.timeindex")), [1u8; 16]).unwrap();
                if s + 1 < segments && offset == seg_base {
                    offset += 1; // a sealed segment is never empty: keep bases distinct
                }
            }
            all.push((name.clone(), p, recs));
        }
        let ts_type = if log_append { "LogAppendTime" } else { "CreateTime" };
        let meta = format!(
            "{{\n  \"format_version\": 2,\n  \"name\": \"{name}\",\n  \"partitions\": {partitions},\n  \"config\": {{\n    \
             \"segment_bytes\": 4096,\n    \"durability\": \"sync\",\n    \"timestamp_type\": \"{ts_type}\",\n    \
             \"index_interval_bytes\": 256\n  }}\n}}"
        );
        std::fs::write(tdir.join("topic.json"), meta).unwrap();
    }
    all
}

/// Every record of the store in `dir`, per (topic, partition) of `expected`, compared with it.
pub fn assert_store_equals(dir: &Path, expected: &[(String, u32, Vec<Rec>)]) {
    let store = kappalog::Store::open(dir, kappalog::StoreConfig::default()).unwrap();
    for (topic, p, recs) in expected {
        let part = store.topic(topic).unwrap().partition(*p).unwrap();
        let mut got = Vec::new();
        let mut at = 0;
        loop {
            let batch = part.read(at, 1 << 20, 1000).unwrap();
            if batch.is_empty() {
                break;
            }
            at = batch.last().unwrap().offset + 1;
            got.extend(batch.into_iter().map(|r| Rec {
                offset: r.offset,
                timestamp: r.timestamp,
                key: r.key.map(|b| b.to_vec()),
                value: r.value.map(|b| b.to_vec()),
                headers: r.headers.into_iter().map(|h| (h.key, h.value.map(|v| v.to_vec()))).collect(),
            }));
        }
        assert_eq!(&got, recs, "{topic}/{p}: every record reads back equal");
    }
}
