//! The log with compression at rest: append and read throughput and bytes on disk of `lz4` and
//! `zstd` topics against an `uncompressed` one in the same run, for JSON-like values.
//!
//! ```sh
//! cargo bench --bench log_compression                          # 64 MiB of values per codec
//! KAPPALOG_BENCH_QUICK=1 cargo bench --bench log_compression   # 8 MiB: a smoke run
//! ```
//!
//! Each codec appends the same records (batches of 1000, `durability: none`), then reads them all
//! back through `Partition::read` (decompressing); runs alternate codecs so that drift in the
//! machine's load hits each. Figures are the median over the runs; ratios are against
//! `uncompressed` (throughput: higher is faster; disk: lower is smaller).

use std::path::Path;
use std::time::{Duration, Instant};

use kappalog::{CompressionType, Durability, NewRecord, Partition, Store, StoreConfig, TopicConfig};

const MIB: usize = 1024 * 1024;
const BATCH: usize = 1000;
const FETCH_BYTES: usize = MIB;

/// JSON-like values of about 200 bytes, with the repetition real events have.
fn records(count: usize) -> Vec<NewRecord> {
    (0..count)
        .map(|i| {
            let v = format!(
                r#"{{"user_id":"user-{:05}","event":"{}","page":"/products/{}","ts":{},"session":"s-{:08x}","amount":{}.{:02}}}"#,
                i % 5000,
                ["view", "click", "add_to_cart", "purchase"][i % 4],
                i % 977,
                1_700_000_000_000u64 + i as u64 * 13,
                (i / 40) as u32 ^ 0x5bd1_e995,
                i % 300,
                i % 100
            );
            NewRecord::keyed(format!("user-{:05}", i % 5000), v)
        })
        .collect()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

struct Measured {
    append: Vec<Duration>,
    read: Vec<Duration>,
    disk_bytes: u64,
}

fn read_all(p: &Partition) -> usize {
    let (mut offset, mut n) = (0, 0);
    while offset < p.high_watermark() {
        let recs = p.read(offset, FETCH_BYTES, usize::MAX).expect("read");
        n += recs.len();
        offset = recs.last().expect("progress").offset + 1;
    }
    n
}

fn run(dir: &Path, codec: CompressionType, batches: &[Vec<NewRecord>], m: &mut Measured) {
    let _ = std::fs::remove_dir_all(dir);
    let store = Store::open(dir, StoreConfig::default().cleaner_interval_ms(0)).expect("open");
    let config = TopicConfig::default().durability(Durability::None).compression_type(codec);
    let p = store.create_topic("t", 1, config).expect("topic").partition(0).expect("partition");
    let start = Instant::now();
    for b in batches {
        p.append(b).expect("append");
    }
    m.append.push(start.elapsed());
    let start = Instant::now();
    assert_eq!(read_all(&p), batches.len() * BATCH);
    m.read.push(start.elapsed());
    p.flush().expect("flush");
    m.disk_bytes = p.segment_infos().expect("segments").iter().map(|s| s.size_bytes).sum();
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("kappalog compression benchmark: skipped (run it with `cargo bench --bench log_compression`)");
        return;
    }
    let quick = std::env::var("KAPPALOG_BENCH_QUICK").is_ok_and(|v| v != "0");
    let (value_mib, runs) = if quick { (8, 3) } else { (64, 5) };
    let sample = records(BATCH);
    let per_batch: usize = sample.iter().map(|r| r.value.as_ref().map_or(0, |v| v.len())).sum();
    let batch_count = (value_mib * MIB).div_ceil(per_batch);
    let batches: Vec<Vec<NewRecord>> = (0..batch_count).map(|_| records(BATCH)).collect();
    let value_bytes = batch_count * per_batch;
    let dir = std::env::var_os("KAPPALOG_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kappalog-bench-compression"));
    let codecs = [CompressionType::Uncompressed, CompressionType::Lz4, CompressionType::Zstd];
    let mut measured: Vec<Measured> =
        codecs.iter().map(|_| Measured { append: Vec::new(), read: Vec::new(), disk_bytes: 0 }).collect();
    for _ in 0..runs {
        for (codec, m) in codecs.iter().zip(measured.iter_mut()) {
            run(&dir.join(codec.as_str()), *codec, &batches, m);
        }
    }
    let rate = |d: Duration| value_bytes as f64 / d.as_secs_f64() / 1e6;
    let records = (batch_count * BATCH) as f64;
    let (base_append, base_read) = (median(measured[0].append.clone()), median(measured[0].read.clone()));
    let base_disk = measured[0].disk_bytes as f64;
    println!(
        "\n{} MiB of JSON-like values ({} records of ~{} B), batches of {BATCH}, {runs} runs, median",
        value_bytes / MIB,
        records,
        per_batch / BATCH
    );
    println!("| codec | append MB/s of values (x uncompressed) | read MB/s (x uncompressed) | bytes on disk (x uncompressed) |");
    println!("|---|---|---|---|");
    for (codec, m) in codecs.iter().zip(&measured) {
        let (a, r) = (median(m.append.clone()), median(m.read.clone()));
        println!(
            "| {} | {:.0} ({:.2}x) | {:.0} ({:.2}x) | {:.1} MiB ({:.3}x) |",
            codec.as_str(),
            rate(a),
            base_append.as_secs_f64() / a.as_secs_f64(),
            rate(r),
            base_read.as_secs_f64() / r.as_secs_f64(),
            m.disk_bytes as f64 / MIB as f64,
            m.disk_bytes as f64 / base_disk
        );
    }
}
