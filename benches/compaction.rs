//! Compaction throughput beside a raw read + write of the same bytes, in the same run.
//!
//! A partition of `KAPPALOG_BENCH_BYTES` (default 1 GiB; `KAPPALOG_BENCH_QUICK=1`: 64 MiB) of
//! ~120-byte records whose keys repeat: the distinct keys are 10% of the records. The baseline reads
//! every segment file and writes it to a new file, then fsyncs (what any rewrite must at least do);
//! compaction is `kappalog::cleaner::compact`. Both are reported in MB/s of input; the target is a
//! ratio of at least 0.40.
//!
//! `cargo bench --bench compaction` (quick: `KAPPALOG_BENCH_QUICK=1 cargo bench --bench compaction`)

use std::io::{Read, Write};
use std::time::Instant;

use kappalog::{
    limits::OFFSET_MAP_BYTES_DEFAULT, CleanupPolicy, Durability, NewRecord, Store, StoreConfig, TopicConfig,
};

const RECORDS_PER_APPEND: usize = 500;
const VALUE_BYTES: usize = 100;
const UNIQUE_KEY_PERCENT: u64 = 10;

fn main() {
    let quick = std::env::var("KAPPALOG_BENCH_QUICK").is_ok_and(|v| v == "1");
    let target_bytes: u64 = std::env::var("KAPPALOG_BENCH_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 64 << 20 } else { 1 << 30 });
    let dir = tempfile::tempdir_in(std::env::var("KAPPALOG_BENCH_DIR").unwrap_or_else(|_| ".".into())).unwrap();
    let store = Store::open(dir.path(), StoreConfig::default().cleaner_interval_ms(0)).unwrap();
    let cfg = TopicConfig::default()
        .segment_bytes(256 << 20)
        .durability(Durability::None)
        .cleanup_policy(CleanupPolicy::Compact);
    let p = store.create_topic("bench", 1, cfg).unwrap().partition(0).unwrap();

    // Fill: estimate the record count from the size of one record, keys are 10% of it.
    let value = vec![b'v'; VALUE_BYTES];
    let approx_record_bytes = 16 + VALUE_BYTES as u64 + 8;
    let records = target_bytes / approx_record_bytes;
    let keys = (records * UNIQUE_KEY_PERCENT / 100).max(1);
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut i = 0;
    while i < records {
        let batch: Vec<NewRecord> = (0..RECORDS_PER_APPEND)
            .map(|_| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                NewRecord::keyed(format!("key-{:011}", rng % keys), value.clone())
            })
            .collect();
        p.append(&batch).unwrap();
        i += RECORDS_PER_APPEND as u64;
    }
    p.roll().unwrap();
    p.flush().unwrap();
    let infos = p.segment_infos().unwrap();
    let input: u64 = infos.iter().map(|s| s.size_bytes).sum();
    let mb = input as f64 / 1e6;
    eprintln!("partition: {mb:.0} MB in {} segments, {i} records, {keys} distinct keys", infos.len());

    // Baseline: read every sealed segment and write it to a new file, fsync.
    let raw = || {
        let started = Instant::now();
        let out_path = dir.path().join("raw-copy");
        let mut out = std::fs::File::create(&out_path).unwrap();
        let mut buf = vec![0u8; 1 << 20];
        for s in infos.iter().filter(|s| !s.active) {
            let mut f = std::fs::File::open(&s.path).unwrap();
            loop {
                let n = f.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                out.write_all(&buf[..n]).unwrap();
            }
        }
        out.sync_all().unwrap();
        let secs = started.elapsed().as_secs_f64();
        std::fs::remove_file(&out_path).unwrap();
        secs
    };
    // Twice, keeping the best (compaction replaces the files, so the baseline runs first).
    let raw_secs = raw();
    let raw_secs_after = raw();
    let raw_best = raw_secs.min(raw_secs_after);

    let started = Instant::now();
    let cpu_before = thread_cpu_secs();
    let report = kappalog::cleaner::compact(&p, i64::MAX / 2, OFFSET_MAP_BYTES_DEFAULT).unwrap();
    let compact_secs = started.elapsed().as_secs_f64();
    let compact_cpu_secs = thread_cpu_secs() - cpu_before;

    let raw_mbps = mb / raw_best;
    let compact_mbps = mb / compact_secs;
    println!(
        "compaction: {compact_mbps:.0} MB/s ({mb:.0} MB in {compact_secs:.2} s, {} passes, {} -> {} bytes, {} records removed)",
        report.passes, report.bytes_before, report.bytes_after, report.records_removed
    );
    println!(
        "compaction CPU time: {compact_cpu_secs:.2} s of {compact_secs:.2} s wall (the rest: waiting for I/O or a CPU)"
    );
    println!("raw read+write: {raw_mbps:.0} MB/s (best of {raw_secs:.2} s and {raw_secs_after:.2} s)");
    println!("ratio: {:.2} (target >= 0.40)", compact_mbps / raw_mbps);
}

/// User + system CPU seconds of this thread so far, from `/proc/thread-self/stat` (fields 14 and 15,
/// in USER_HZ ticks, which Linux fixes at 100 for this file).
fn thread_cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    (ticks(11) + ticks(12)) as f64 / 100.0
}
