//! Benchmarks of the log. Every figure is printed beside a baseline measured in the same run, on the
//! same disk, and the ratio is what counts: the machine is shared, so absolute numbers are noisy.
//!
//! ```sh
//! cargo bench --bench log                           # full sizes (~1 GiB read, ~2.4 GiB open case)
//! KAPPALOG_BENCH_QUICK=1 cargo bench --bench log    # small sizes: a smoke run
//! ```
//!
//! Environment:
//! - `KAPPALOG_BENCH_QUICK=1`: small sizes and fewer runs.
//! - `KAPPALOG_BENCH_RUNS=N`: pairs of subject and baseline runs per case (append: runs of
//!   interleaved batches); default 5 (quick: 3).
//! - `KAPPALOG_BENCH_APPEND_MIB=N`: bytes of values appended per run of a `none` append case;
//!   default 32 (quick: 4).
//! - `KAPPALOG_BENCH_READ_MIB=N`: bytes of log for the sequential read; default 1024 (quick: 64).
//! - `KAPPALOG_BENCH_OPEN_SEGMENT_MIB=N`: size of each of the 100 segments of the open case;
//!   default 24 (quick: 1).
//! - `KAPPALOG_BENCH_ONLY=append,group,read,open`: run only these cases.
//! - `KAPPALOG_BENCH_APPEND=none:1000:1024,sync:1:100`: run only these append cases
//!   (durability:records per batch:value bytes).
//! - `KAPPALOG_BENCH_GROUP=tasks`: the group commit case with tasks only (not threads);
//!   `KAPPALOG_BENCH_WORKERS=N`: the runtime's worker threads for it (default: one per core).
//! - `KAPPALOG_BENCH_DIR=path`: where to write (default: cargo's target tmp dir). Everything written is
//!   deleted at the end of each case.
//! - `KAPPALOG_BENCH_CRITERION=1`: also run the criterion groups (append, read) after the table.
//!
//! Each case alternates subject and baseline runs, so that drift in the machine's load hits both, and
//! reports the median over the pairs of runs of each pair's ratio (with the lowest and highest pair):
//! a subject run is compared with the baseline run made beside it. The append cases interleave
//! closer still: batch by batch within each run (see `AppendRuns`).

use std::cell::Cell;
use std::fs::{File, OpenOptions};
use std::hint::black_box;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput};
use kappalog::{fault::FaultInjector, Durability, NewRecord, Partition, Store, StoreConfig, TopicConfig};

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;
/// Bytes of records per append run under `durability: none`.
const APPEND_RUN_BYTES: usize = 32 * MIB;
const APPEND_RUN_BYTES_QUICK: usize = 4 * MIB;
/// Appends (= fsyncs) per append run under `durability: sync`.
const APPEND_SYNC_BATCHES: usize = 100;
const APPEND_SYNC_BATCHES_QUICK: usize = 20;
/// Concurrent single-record appenders of the group-commit case.
const GROUP_THREADS: usize = 64;
const GROUP_APPENDS_PER_THREAD: usize = 40;
const GROUP_APPENDS_PER_THREAD_QUICK: usize = 10;
/// write+fdatasync iterations of the group-commit baseline.
const GROUP_BASELINE_SYNCS: usize = 200;
const GROUP_BASELINE_SYNCS_QUICK: usize = 50;
/// Record size and batch size used to fill the log for the read case.
const READ_RECORD_BYTES: usize = 100;
const READ_FILL_BATCH: usize = 1000;
/// `max_bytes` of each `Partition::read` call in the read case (a consumer's fetch size).
const READ_FETCH_BYTES: usize = MIB;
/// Segments of the open case, and the size of each record written to fill them.
const OPEN_SEGMENTS: usize = 100;
const OPEN_RECORD_BYTES: usize = 256 * KIB;
/// Targets from the project charter.
const APPEND_TARGET_RATIO: f64 = 0.70;
const GROUP_TARGET_RATIO: f64 = 20.0;
const READ_TARGET_RECORDS_PER_S: f64 = 10_000_000.0;

struct Settings {
    quick: bool,
    runs: usize,
    append_bytes: usize,
    read_bytes: usize,
    open_segment_bytes: usize,
    only: Option<Vec<String>>,
    dir: PathBuf,
}

impl Settings {
    fn from_env() -> Settings {
        let quick = std::env::var("KAPPALOG_BENCH_QUICK").is_ok_and(|v| v != "0");
        let num = |name: &str, default: usize| -> usize {
            std::env::var(name)
                .ok()
                .map_or(default, |v| v.parse().unwrap_or_else(|_| panic!("{name}={v} is not a number")))
        };
        let runs = num("KAPPALOG_BENCH_RUNS", if quick { 3 } else { 5 }).max(1);
        let append_bytes =
            num("KAPPALOG_BENCH_APPEND_MIB", if quick { APPEND_RUN_BYTES_QUICK } else { APPEND_RUN_BYTES } / MIB) * MIB;
        let read_bytes = num("KAPPALOG_BENCH_READ_MIB", if quick { 64 } else { 1024 }) * MIB;
        let open_segment_bytes = num("KAPPALOG_BENCH_OPEN_SEGMENT_MIB", if quick { 1 } else { 24 }) * MIB;
        let only =
            std::env::var("KAPPALOG_BENCH_ONLY").ok().map(|v| v.split(',').map(|s| s.trim().to_string()).collect());
        let dir = std::env::var_os("KAPPALOG_BENCH_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kappalog-bench"));
        Settings { quick, runs, append_bytes, read_bytes, open_segment_bytes, only, dir }
    }

    fn wants(&self, case: &str) -> bool {
        self.only.as_ref().is_none_or(|o| o.iter().any(|c| c == case))
    }

    /// Whether `KAPPALOG_BENCH_APPEND` (if set) lists this append case.
    fn append_case_selected(&self, durability: Durability, batch: usize, value_bytes: usize) -> bool {
        std::env::var("KAPPALOG_BENCH_APPEND")
            .map_or(true, |cases| cases.split(',').any(|c| c.trim() == format!("{durability}:{batch}:{value_bytes}")))
    }

    /// A fresh, empty working directory for one case.
    fn workdir(&self, case: &str) -> PathBuf {
        let d = self.dir.join(case);
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("create the bench directory");
        d
    }
}

/// What a row is measured against.
enum Target {
    /// subject / baseline (throughputs) must reach this.
    Ratio(f64),
    /// The subject's records/s must reach this.
    RecordsPerSecond(f64),
    None,
}

struct Row {
    case: String,
    subject: String,
    baseline: String,
    /// Subject throughput / baseline throughput (for the open case: subject time / baseline time),
    /// over the pairs of runs.
    ratio: Spread,
    ratio_unit: &'static str,
    target: Target,
    subject_records_per_s: f64,
}

impl Row {
    fn verdict(&self) -> (&'static str, String) {
        match self.target {
            Target::Ratio(t) => (if self.ratio.median >= t { "PASS" } else { "MISS" }, format!(">= {t:.2}x")),
            Target::RecordsPerSecond(t) => {
                (if self.subject_records_per_s >= t { "PASS" } else { "MISS" }, format!(">= {} rec/s", si(t)))
            }
            Target::None => ("-", "-".into()),
        }
    }
}

fn si(v: f64) -> String {
    if v >= 1e9 {
        format!("{:.2} G", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.2} M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1} k", v / 1e3)
    } else {
        format!("{v:.0} ")
    }
}

fn rate(records: usize, bytes: usize, t: Duration) -> String {
    let s = t.as_secs_f64();
    format!("{}rec/s, {:.1} MB/s", si(records as f64 / s), bytes as f64 / s / 1e6)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The times of subject and baseline runs made alternately: run `i` of each ran side by side.
struct Paired {
    subject: Vec<Duration>,
    baseline: Vec<Duration>,
}

/// A ratio over the pairs of runs: its median, and the lowest and highest pair.
#[derive(Clone, Copy)]
struct Spread {
    median: f64,
    low: f64,
    high: f64,
}

impl Paired {
    fn subject(&self) -> Duration {
        median(self.subject.clone())
    }

    fn baseline(&self) -> Duration {
        median(self.baseline.clone())
    }

    /// `ratio(subject, baseline)` of each pair of runs. The median of these per-pair ratios is what
    /// rows report: the load of a shared machine drifts, and each subject run is compared with the
    /// baseline run beside it rather than with the whole session's median.
    fn ratio(&self, ratio: impl Fn(Duration, Duration) -> f64) -> Spread {
        spread(self.subject.iter().zip(&self.baseline).map(|(&s, &b)| ratio(s, b)).collect())
    }

    /// Subject throughput / baseline throughput, per pair, for runs that do the same work.
    fn speedup(&self) -> Spread {
        self.ratio(|s, b| b.as_secs_f64() / s.as_secs_f64())
    }
}

/// Runs subject and baseline alternately `runs` times.
fn paired(runs: usize, mut subject: impl FnMut() -> Duration, mut baseline: impl FnMut() -> Duration) -> Paired {
    let (mut s, mut b) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    for _ in 0..runs {
        s.push(subject());
        b.push(baseline());
    }
    Paired { subject: s, baseline: b }
}

fn records(count: usize, value_bytes: usize) -> Vec<NewRecord> {
    // Incompressible-looking values; no key (the partitioner is not measured here).
    let value: Vec<u8> = (0..value_bytes).map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3]).collect();
    let value = Bytes::from(value);
    (0..count).map(|_| NewRecord::new(value.clone())).collect()
}

fn open_partition(dir: &Path, config: TopicConfig) -> (Store, Partition) {
    let store = Store::open(dir, StoreConfig::default()).expect("open the store");
    let topic = match store.topic("bench") {
        Ok(t) => t,
        Err(_) => store.create_topic("bench", 1, config).expect("create the topic"),
    };
    let p = topic.partition(0).expect("partition 0");
    (store, p)
}

/// The least an append of these records could cost with its bytes checksummed: copy each value
/// into one reused buffer (with 8 bytes standing in for each record's framing), CRC the buffer with
/// crc32fast, `write()` it. Not a target: it shows how much of the gap to `write()` is the copy and
/// the checksum every design pays, and how much is kappalog's own.
fn floor_batch(f: &File, buf: &mut Vec<u8>, chunk: &[NewRecord]) {
    buf.clear();
    buf.extend_from_slice(&[0; 43]);
    for r in chunk {
        buf.extend_from_slice(&[0; 8]);
        buf.extend_from_slice(r.value.as_deref().unwrap_or_default());
    }
    let crc = crc32fast::hash(&buf[8..]);
    buf[4..8].copy_from_slice(&crc.to_le_bytes());
    (&*f).write_all(buf).expect("write");
}

/// The baseline's `write()` of `buf`, into disk blocks reserved ahead the way kappalog reserves its
/// active segment's (`fallocate` with `FALLOC_FL_KEEP_SIZE`, 8 batches ahead, 1 - 8 MiB: see
/// `RESERVE_AHEAD_MAX` in `src/log/partition.rs`). Not a target: it shows how much of kappalog's
/// ratio to a plain `write()` that reservation makes. `(written, reserved)`: the file's end and the
/// end of its reserved blocks.
fn reserved_write(f: &File, buf: &[u8], (written, reserved): &mut (u64, u64)) {
    let end = *written + buf.len() as u64;
    if end > *reserved {
        let from = (*reserved).max(*written);
        let to = end + (buf.len() as u64 * 8).clamp(MIB as u64, 8 * MIB as u64);
        rustix::fs::fallocate(f, rustix::fs::FallocateFlags::KEEP_SIZE, from, to - from).expect("fallocate");
        *reserved = to;
    }
    (&*f).write_all(buf).expect("write");
    *written = end;
}

/// One run of `batches` plain `write()`s of `batch_bytes` interleaved with as many
/// [`reserved_write`]s to another file: their total times and the median of the per-batch ratios
/// (plain time / reserved time).
fn reserved_runs(dir: &Path, batch_bytes: usize, batches: usize) -> (Duration, Duration, f64) {
    let (plain_path, reserved_path) = (dir.join("plain.bin"), dir.join("reserved.bin"));
    let (plain, reserved) = (baseline_file(&plain_path), baseline_file(&reserved_path));
    let buf = vec![0x5au8; batch_bytes];
    let (mut tp, mut tr, mut ends) = (Vec::new(), Vec::new(), (0, 0));
    for _ in 0..batches {
        let start = Instant::now();
        (&plain).write_all(&buf).expect("write");
        tp.push(start.elapsed());
        let start = Instant::now();
        reserved_write(&reserved, &buf, &mut ends);
        tr.push(start.elapsed());
    }
    remove_baseline_file(plain, &plain_path);
    remove_baseline_file(reserved, &reserved_path);
    (tr.iter().sum(), tp.iter().sum(), median_ratio(&tp, &tr))
}

/// Writes `batches` buffers of `batch_bytes` to a new file with `write()`, each followed by
/// `fdatasync` when `sync`. Returns the time of the writes (the file is synced and deleted after).
fn raw_writes(path: &Path, batch_bytes: usize, batches: usize, sync: bool) -> Duration {
    let f = baseline_file(path);
    let buf = vec![0x5au8; batch_bytes];
    let start = Instant::now();
    for _ in 0..batches {
        (&f).write_all(&buf).expect("write");
        if sync {
            f.sync_data().expect("fdatasync");
        }
    }
    let t = start.elapsed();
    remove_baseline_file(f, path);
    t
}

/// A new file for a baseline's writes (appended to, as a log is).
fn baseline_file(path: &Path) -> File {
    OpenOptions::new().create(true).truncate(true).write(true).open(path).expect("create a baseline file")
}

/// Syncs and deletes a baseline's file (outside the timed part, as the subject's close).
fn remove_baseline_file(f: File, path: &Path) {
    f.sync_data().expect("fdatasync");
    drop(f);
    std::fs::remove_file(path).expect("remove a baseline file");
}

/// The runs of one append case. Within a run the subject's batches and the baselines' writes are
/// interleaved one by one (the subject appends batch `i`, then the baseline writes its batch `i`,
/// then the floor its batch `i`), each timed alone: a shared machine's load swings within
/// milliseconds, and whole runs made one after the other saw different machines (single pairs of
/// 30 MiB runs ranged from 0.3 to 1.3x). A run's ratio is the median over its batches of baseline
/// time / subject time.
#[derive(Default)]
struct AppendRuns {
    /// Per run: the subject's, the baseline's and the floor's total time.
    subject: Vec<Duration>,
    baseline: Vec<Duration>,
    floor: Vec<Duration>,
    /// Per run: the median over its batches of baseline time / subject (floor) time.
    ratio: Vec<f64>,
    floor_ratio: Vec<f64>,
}

/// The median of `r`, with its lowest and highest value.
fn spread(mut r: Vec<f64>) -> Spread {
    r.sort_by(f64::total_cmp);
    Spread { median: r[r.len() / 2], low: r[0], high: r[r.len() - 1] }
}

fn median_ratio(numerators: &[Duration], denominators: &[Duration]) -> f64 {
    spread(numerators.iter().zip(denominators).map(|(n, d)| n.as_secs_f64() / d.as_secs_f64()).collect()).median
}

// ---- 1. append ----

fn bench_append(s: &Settings, rows: &mut Vec<Row>) {
    let dir = s.workdir("append");
    for durability in [Durability::None, Durability::Sync] {
        for value_bytes in [100, KIB] {
            for batch in [1, 100, 1000] {
                if !s.append_case_selected(durability, batch, value_bytes) {
                    continue;
                }
                let count = match durability {
                    Durability::Sync => batch * if s.quick { APPEND_SYNC_BATCHES_QUICK } else { APPEND_SYNC_BATCHES },
                    _ => s.append_bytes / value_bytes,
                };
                let count = count.div_ceil(batch) * batch;
                let recs = records(count, value_bytes);
                let batches = count / batch;
                let sync = durability == Durability::Sync;
                let targeted = durability == Durability::None && value_bytes == KIB && batch == 1000;
                let store_dir = dir.join("store");
                let (baseline_path, floor_path) = (dir.join("baseline.bin"), dir.join("floor.bin"));
                // One run. `batch_bytes`: the size of a batch on disk, which the baseline writes
                // (none: the subject runs alone, to learn it).
                let run = |batch_bytes: Option<usize>, runs: &mut AppendRuns| -> usize {
                    let (store, p) = open_partition(&store_dir, TopicConfig::default().durability(durability));
                    let baseline = batch_bytes.map(|n| (baseline_file(&baseline_path), vec![0x5au8; n]));
                    let floor = (batch_bytes.is_some() && targeted).then(|| baseline_file(&floor_path));
                    let mut floor_buf = Vec::new();
                    let (mut ts, mut tb, mut tf) = (Vec::new(), Vec::new(), Vec::new());
                    for chunk in recs.chunks(batch) {
                        let start = Instant::now();
                        p.append(chunk).expect("append");
                        ts.push(start.elapsed());
                        if let Some((f, buf)) = &baseline {
                            let start = Instant::now();
                            (&*f).write_all(buf).expect("write");
                            if sync {
                                f.sync_data().expect("fdatasync");
                            }
                            tb.push(start.elapsed());
                        }
                        if let Some(f) = &floor {
                            let start = Instant::now();
                            floor_batch(f, &mut floor_buf, chunk);
                            tf.push(start.elapsed());
                        }
                    }
                    let log_bytes = p.stats().size_bytes as usize;
                    drop((p, store)); // flushes: outside the timed part, as the baseline's last fsync
                    std::fs::remove_dir_all(&store_dir).expect("remove the store");
                    if let Some((f, _)) = baseline {
                        remove_baseline_file(f, &baseline_path);
                        runs.subject.push(ts.iter().sum());
                        runs.baseline.push(tb.iter().sum());
                        runs.ratio.push(median_ratio(&tb, &ts));
                    }
                    if let Some(f) = floor {
                        remove_baseline_file(f, &floor_path);
                        runs.floor.push(tf.iter().sum());
                        runs.floor_ratio.push(median_ratio(&tb, &tf));
                    }
                    log_bytes
                };
                let mut runs = AppendRuns::default();
                let batch_bytes = run(None, &mut runs) / batches;
                for _ in 0..s.runs {
                    run(Some(batch_bytes), &mut runs);
                }
                let (ts, tb) = (median(runs.subject.clone()), median(runs.baseline.clone()));
                let payload = count * value_bytes;
                let size = if value_bytes == KIB { "1 KiB".to_string() } else { format!("{value_bytes} B") };
                let baseline = format!("write(){}: {}", if sync { "+fdatasync" } else { "" }, rate(count, payload, tb));
                rows.push(Row {
                    case: format!("append {durability}, {batch} x {size}"),
                    subject: rate(count, payload, ts),
                    baseline: baseline.clone(),
                    ratio: spread(runs.ratio),
                    ratio_unit: "x",
                    target: if targeted { Target::Ratio(APPEND_TARGET_RATIO) } else { Target::None },
                    subject_records_per_s: count as f64 / ts.as_secs_f64(),
                });
                eprintln!("  done: {}", rows.last().unwrap().case);
                if targeted {
                    let tf = median(runs.floor);
                    rows.push(Row {
                        case: format!("(floor: copy + crc32fast + write(), {batch} x {size})"),
                        subject: rate(count, payload, tf),
                        baseline: baseline.clone(),
                        ratio: spread(runs.floor_ratio),
                        ratio_unit: "x",
                        target: Target::None,
                        subject_records_per_s: count as f64 / tf.as_secs_f64(),
                    });
                    // Its own runs: a fourth file written between the subject's batches would evict
                    // more of the cache the subject and the floor find (it lowered both by ~0.05).
                    let (mut tr, mut tb, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
                    for _ in 0..s.runs {
                        let (r, b, ratio) = reserved_runs(&dir, batch_bytes, batches);
                        tr.push(r);
                        tb.push(b);
                        ratios.push(ratio);
                    }
                    let (tr, tb) = (median(tr), median(tb));
                    rows.push(Row {
                        case: format!("(write() into reserved blocks, as kappalog's segments, {batch} x {size})"),
                        subject: rate(count, payload, tr),
                        baseline: format!("write(): {}", rate(count, payload, tb)),
                        ratio: spread(ratios),
                        ratio_unit: "x",
                        target: Target::None,
                        subject_records_per_s: count as f64 / tr.as_secs_f64(),
                    });
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- 2. group commit ----

/// How the group commit case's appenders run.
#[derive(Clone, Copy, PartialEq)]
enum Appenders {
    /// OS threads calling `Partition::append`.
    Threads,
    /// Tokio tasks on a runtime with one worker per core, awaiting `Partition::append_async`.
    Tasks,
}

fn bench_group_commit(s: &Settings, rows: &mut Vec<Row>, appenders: Appenders) {
    let dir = s.workdir("group");
    let per_appender = if s.quick { GROUP_APPENDS_PER_THREAD_QUICK } else { GROUP_APPENDS_PER_THREAD };
    let syncs = if s.quick { GROUP_BASELINE_SYNCS_QUICK } else { GROUP_BASELINE_SYNCS };
    let rec = records(1, 100).pop().unwrap();
    let store_dir = dir.join("store");
    let record_bytes = Cell::new(0);
    let fsyncs = Cell::new(0);
    // The subject's fsyncs, timed by kappalog itself (its fsync latency histogram).
    let (fsync_seconds, fsync_count) = (Cell::new(0.0), Cell::new(0));
    let workers = std::env::var("KAPPALOG_BENCH_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(workers).build().expect("a runtime");
    let subject = || {
        // A fault injector that never fails: it counts the fsyncs.
        let faults = FaultInjector::new();
        let config = StoreConfig::default().faults(Some(Arc::clone(&faults)));
        let store = Store::open(&store_dir, config).expect("open the store");
        let cfg = TopicConfig::default().durability(Durability::Sync);
        let p = store.create_topic("bench", 1, cfg).expect("create the topic").partition(0).expect("partition 0");
        let syncs_before = faults.syncs();
        let latency_before = kappalog::log::fsync_latency();
        let t = match appenders {
            Appenders::Threads => {
                let barrier = Barrier::new(GROUP_THREADS + 1);
                let mut start = None;
                std::thread::scope(|scope| {
                    for _ in 0..GROUP_THREADS {
                        scope.spawn(|| {
                            barrier.wait();
                            for _ in 0..per_appender {
                                p.append(std::slice::from_ref(&rec)).expect("append");
                            }
                        });
                    }
                    barrier.wait();
                    start = Some(Instant::now());
                });
                start.expect("started").elapsed()
            }
            Appenders::Tasks => runtime.block_on(async {
                let start = Instant::now();
                let tasks: Vec<_> = (0..GROUP_THREADS)
                    .map(|_| {
                        let (p, rec) = (p.clone(), rec.clone());
                        tokio::spawn(async move {
                            for _ in 0..per_appender {
                                p.append_async(vec![rec.clone()]).await.expect("append");
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.expect("an appender task");
                }
                start.elapsed()
            }),
        };
        fsyncs.set(fsyncs.get() + faults.syncs() - syncs_before);
        let latency = kappalog::log::fsync_latency();
        fsync_seconds.set(fsync_seconds.get() + latency.sum_seconds - latency_before.sum_seconds);
        fsync_count.set(fsync_count.get() + latency.count - latency_before.count);
        assert_eq!(p.high_watermark(), (GROUP_THREADS * per_appender) as u64);
        record_bytes.set(p.stats().size_bytes as usize / (GROUP_THREADS * per_appender));
        drop((p, store));
        std::fs::remove_dir_all(&store_dir).expect("remove the store");
        t
    };
    let _ = subject();
    let baseline = || raw_writes(&dir.join("baseline.bin"), record_bytes.get(), syncs, true);
    let runs = paired(s.runs, subject, baseline);
    let (ts, tb) = (runs.subject(), runs.baseline());
    let n = GROUP_THREADS * per_appender;
    let per_fsync = (n * (s.runs + 1)) as f64 / fsyncs.get().max(1) as f64;
    let subject_rps = n as f64 / ts.as_secs_f64();
    let baseline_rps = syncs as f64 / tb.as_secs_f64();
    let who = match appenders {
        Appenders::Threads => format!("{GROUP_THREADS} threads (append)"),
        Appenders::Tasks => format!("{GROUP_THREADS} tasks on {workers} workers (append_async)"),
    };
    rows.push(Row {
        case: format!("group commit: sync, {who} x 1 x 100 B"),
        subject: format!(
            "{}rec/s, {per_fsync:.1} records per fsync, fsync {:.0} us",
            si(subject_rps),
            fsync_seconds.get() / fsync_count.get().max(1) as f64 * 1e6
        ),
        baseline: format!("write+fdatasync per record: {}rec/s ({:.0} us each)", si(baseline_rps), 1e6 / baseline_rps),
        ratio: runs.ratio(|s, b| (n as f64 / s.as_secs_f64()) / (syncs as f64 / b.as_secs_f64())),
        ratio_unit: "x",
        target: Target::Ratio(GROUP_TARGET_RATIO),
        subject_records_per_s: subject_rps,
    });
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- 3. sequential read ----

/// How the read case reads.
#[derive(Clone, Copy)]
enum ReadApi {
    /// `Partition::read`: owned `Record`s sharing the map.
    Owned,
    /// `Partition::read_batches` and `ReadBatch::for_each`: records lent from the map.
    Lent,
}

/// Reads every record from the start; returns the number of records and of value bytes seen.
fn read_all(p: &Partition, api: ReadApi) -> (usize, usize) {
    let end = p.high_watermark();
    let mut offset = p.log_start_offset();
    let (mut n, mut value_bytes) = (0, 0);
    while offset < end {
        match api {
            ReadApi::Owned => {
                let recs = p.read(offset, READ_FETCH_BYTES, usize::MAX).expect("read");
                for r in &recs {
                    value_bytes += r.value.as_ref().map_or(0, |v| v.len());
                }
                n += recs.len();
                offset = recs.last().expect("progress").offset + 1;
            }
            ReadApi::Lent => {
                let batches = p.read_batches(offset, READ_FETCH_BYTES, usize::MAX).expect("read");
                assert!(!batches.is_empty(), "progress");
                for b in &batches {
                    offset = b
                        .for_each(|r| {
                            n += 1;
                            value_bytes += r.value.map_or(0, |v| v.len());
                        })
                        .expect("records");
                }
            }
        }
    }
    (n, value_bytes)
}

/// CPU time of the calling thread so far (user + system, from the scheduler), or `None` where
/// `/proc/thread-self/schedstat` is missing. Lets single-thread cases report a rate per core-second,
/// which other processes on a shared machine do not disturb as much as wall time.
fn thread_cpu_time() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(Duration::from_nanos(s.split_whitespace().next()?.parse().ok()?))
}

/// Copies `src` into a fetch-sized buffer, chunk by chunk (the memcpy baseline of a read).
fn memcpy_all(src: &[u8], dst: &mut [u8]) {
    for chunk in src.chunks(dst.len()) {
        dst[..chunk.len()].copy_from_slice(chunk);
        black_box(&mut *dst);
    }
}

fn bench_read(s: &Settings, rows: &mut Vec<Row>) {
    let dir = s.workdir("read");
    let store_dir = dir.join("store");
    let count = s.read_bytes / (READ_RECORD_BYTES + 8); // ~8 bytes of record framing each
    let count = count.div_ceil(READ_FILL_BATCH) * READ_FILL_BATCH;
    {
        let (store, p) = open_partition(&store_dir, TopicConfig::default().durability(Durability::None));
        let batch = records(READ_FILL_BATCH, READ_RECORD_BYTES);
        let start = Instant::now();
        for _ in 0..count / READ_FILL_BATCH {
            p.append(&batch).expect("append");
        }
        eprintln!("  filled {} records, {} MiB in {:?}", count, p.stats().size_bytes / MIB as u64, start.elapsed());
        drop((p, store));
    }
    // The memcpy baseline copies the same bytes.
    let mut src = Vec::new();
    let log_bytes = {
        let (store, p) = open_partition(&store_dir, TopicConfig::default());
        for info in p.segment_infos().expect("segments") {
            src.extend_from_slice(&std::fs::read(&info.path).expect("read a segment"));
        }
        drop(store);
        src.len()
    };
    let mut dst = vec![0u8; READ_FETCH_BYTES];
    // Single-thread cases are timed in CPU time of the thread (wall time when unavailable): on a
    // shared machine, that is what "on one core" means.
    let cpu_or_wall = |f: &mut dyn FnMut()| {
        let (c0, w0) = (thread_cpu_time(), Instant::now());
        f();
        match (c0, thread_cpu_time()) {
            (Some(a), Some(b)) => b - a,
            _ => w0.elapsed(),
        }
    };
    let clock = if thread_cpu_time().is_some() { "CPU time" } else { "wall time" };
    let check = |(n, v): (usize, usize)| assert_eq!((n, v), (count, count * READ_RECORD_BYTES));
    let gib = log_bytes as f64 / (1u64 << 30) as f64;
    for (api, api_label) in [(ReadApi::Owned, "read: owned records"), (ReadApi::Lent, "read_batches: lent records")] {
        // A fresh open: the first read faults the maps in (the page cache is warm from the writes).
        let (store, p) = open_partition(&store_dir, TopicConfig::default());
        let first = cpu_or_wall(&mut || check(read_all(&p, api)));
        let tb_first = cpu_or_wall(&mut || memcpy_all(&src, &mut dst));
        let subject = || cpu_or_wall(&mut || check(black_box(read_all(&p, api))));
        let baseline = || cpu_or_wall(&mut || memcpy_all(&src, &mut dst));
        let runs = paired(s.runs, subject, baseline);
        let first = Paired { subject: vec![first], baseline: vec![tb_first] };
        for (label, runs) in [("first read after open", first), ("warm map, median", runs)] {
            let (ts, tb) = (runs.subject(), runs.baseline());
            let rps = count as f64 / ts.as_secs_f64();
            rows.push(Row {
                case: format!("{api_label}, {gib:.2} GiB of 100 B records, 1 thread, {label} ({clock})"),
                subject: format!("{}rec/s, {:.2} GB/s", si(rps), log_bytes as f64 / ts.as_secs_f64() / 1e9),
                baseline: format!("memcpy: {:.2} GB/s", log_bytes as f64 / tb.as_secs_f64() / 1e9),
                ratio: runs.speedup(),
                ratio_unit: "x",
                target: Target::RecordsPerSecond(READ_TARGET_RECORDS_PER_S),
                subject_records_per_s: rps,
            });
        }
        drop((p, store));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- 4. open after a clean shutdown ----

fn bench_open(s: &Settings, rows: &mut Vec<Row>) {
    let dir = s.workdir("open");
    let big = dir.join("big");
    let empty = dir.join("empty");
    let config = TopicConfig::default().durability(Durability::None).segment_bytes(s.open_segment_bytes as u64);
    let total = {
        let (store, p) = open_partition(&big, config.clone());
        let rec = records(1, OPEN_RECORD_BYTES);
        let start = Instant::now();
        while p.stats().segments < OPEN_SEGMENTS {
            p.append(&rec).expect("append");
        }
        // Half-fill the active segment, so the open has a tail to check.
        let half = s.open_segment_bytes / OPEN_RECORD_BYTES / 2;
        for _ in 0..half {
            p.append(&rec).expect("append");
        }
        let stats = p.stats();
        assert_eq!(stats.segments, OPEN_SEGMENTS);
        eprintln!(
            "  filled {} segments, {} MiB in {:?}",
            stats.segments,
            stats.size_bytes / MIB as u64,
            start.elapsed()
        );
        drop((p, store));
        stats.size_bytes
    };
    drop(open_partition(&empty, config));
    let open = |path: &Path| {
        let start = Instant::now();
        let store = Store::open(path, StoreConfig::default()).expect("open");
        let t = start.elapsed();
        drop(store); // closes cleanly again, outside the timed part
        t
    };
    let runs = paired(s.runs * 2, || open(&big), || open(&empty));
    let (ts, tb) = (runs.subject(), runs.baseline());
    rows.push(Row {
        case: format!(
            "open after clean shutdown: {OPEN_SEGMENTS} segments, {:.2} GiB",
            total as f64 / (1u64 << 30) as f64
        ),
        subject: format!("{:.2} ms", ts.as_secs_f64() * 1e3),
        baseline: format!("one empty segment: {:.2} ms", tb.as_secs_f64() * 1e3),
        ratio: runs.ratio(|s, b| s.as_secs_f64() / b.as_secs_f64()),
        ratio_unit: "x the time",
        target: Target::None,
        subject_records_per_s: 0.0,
    });
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- criterion groups (optional) ----

fn criterion_groups(s: &Settings) {
    // Short windows: every append iteration grows the log on disk (~1 GiB at most for 1 MiB batches).
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let dir = s.workdir("criterion");
    let mut g = c.benchmark_group("append_none");
    for (value_bytes, batch) in [(100, 1000), (KIB, 1000), (KIB, 1)] {
        let recs = records(batch, value_bytes);
        g.throughput(Throughput::Bytes((batch * value_bytes) as u64));
        let (store, p) = open_partition(
            &dir.join(format!("a{value_bytes}-{batch}")),
            TopicConfig::default().durability(Durability::None),
        );
        g.bench_with_input(BenchmarkId::new(format!("{value_bytes}B"), batch), &recs, |b, recs| {
            b.iter(|| p.append(recs).expect("append"))
        });
        drop((p, store));
    }
    g.finish();
    let mut g = c.benchmark_group("read");
    let (store, p) = open_partition(&dir.join("r"), TopicConfig::default().durability(Durability::None));
    let batch = records(READ_FILL_BATCH, READ_RECORD_BYTES);
    for _ in 0..(16 * MIB / (READ_FILL_BATCH * READ_RECORD_BYTES)) {
        p.append(&batch).expect("append");
    }
    g.throughput(Throughput::Elements(p.high_watermark()));
    g.bench_function("sequential_100B", |b| b.iter(|| read_all(&p, ReadApi::Owned)));
    g.finish();
    drop((p, store));
    let _ = std::fs::remove_dir_all(&dir);
    c.final_summary();
}

fn machine() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores, load average {}", load.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` / `--all-targets` does not, and must stay
    // fast: the benchmarks only run under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("kappalog benchmarks: skipped (run them with `cargo bench --bench log`)");
        return;
    }
    let s = Settings::from_env();
    std::fs::create_dir_all(&s.dir).expect("create the bench directory");
    eprintln!(
        "kappalog benchmarks ({}; {} pairs of runs per case) in {}; {}",
        if s.quick { "quick" } else { "full" },
        s.runs,
        s.dir.display(),
        machine()
    );
    let mut rows = Vec::new();
    if s.wants("append") {
        bench_append(&s, &mut rows);
    }
    if s.wants("group") {
        if std::env::var("KAPPALOG_BENCH_GROUP").map_or(true, |v| v != "tasks") {
            bench_group_commit(&s, &mut rows, Appenders::Threads);
        }
        bench_group_commit(&s, &mut rows, Appenders::Tasks);
    }
    if s.wants("read") {
        bench_read(&s, &mut rows);
    }
    if s.wants("open") {
        bench_open(&s, &mut rows);
    }
    println!();
    println!("| case | kappalog (median) | baseline (median) | ratio: median of pairs (lowest - highest) | target | result |");
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        let (verdict, target) = r.verdict();
        let Spread { median, low, high } = r.ratio;
        let spread = if low < high { format!(" ({low:.2} - {high:.2})") } else { String::new() };
        println!(
            "| {} | {} | {} | {median:.2} {}{spread} | {} | {} |",
            r.case, r.subject, r.baseline, r.ratio_unit, target, verdict
        );
    }
    println!("\n({})", machine());
    if std::env::var("KAPPALOG_BENCH_CRITERION").is_ok_and(|v| v != "0") {
        criterion_groups(&s);
    }
}
