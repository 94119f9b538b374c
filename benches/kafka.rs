//! Kafka clients against the real broker (`cargo bench --bench kafka`): produce and consume
//! records/s with a real librdkafka client, 100 B records, `acks=all` to `sync` topics (fsync
//! before every acknowledgement), beside the HTTP batched produce path (1000 records per request,
//! 16 connections) and the library's `Topic::append` (1000 records per append, 16 threads),
//! measured in the same run, alternating.
//!
//! The client is `benches/kafka_load` (a crate of its own on the `rdkafka` crate, librdkafka
//! compiled from its bundled source; built here with `cargo build --release` on the first run), so
//! that the client's cost per record is librdkafka's and not a tool's or an interpreter's. It is
//! measured two ways: with librdkafka's batch calls (`rd_kafka_produce_batch`, 10 000 records per
//! call, only failures reported; `rd_kafka_consume_batch_queue`), and with the rdkafka crate's
//! per-record `send` (every delivery reported) and `poll`. kcat (librdkafka 2.0 in C, Debian's) is
//! measured too when it is on the PATH. The consumers read what the batch producer wrote.
//!
//! For every case the benchmark reports the CPU seconds per million records of the broker process
//! and of the client (this process for HTTP and the library, the child for the Kafka clients),
//! from `/proc`: on a shared machine records/s depend on the share of the cores each side gets,
//! the CPU per record does not.
//!
//! Environment: `KAPPALOG_BENCH_RUNS` (alternated runs, default 3), `KAPPALOG_BENCH_SECONDS`
//! (seconds of each HTTP and library run, default 3), `KAPPALOG_BENCH_KAFKA_RECORDS` (records of
//! each Kafka produce run, default 3 000 000), `KAPPALOG_BENCH_BROKER` (another build's
//! `kappalog`), `KAPPALOG_BENCH_KAFKA_LOAD` (a `kafka_load` binary built already),
//! `KAPPALOG_BENCH_KAFKA_PRODUCERS` (producers of `kafka_load`, default 4).

mod support;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use base64::Engine as _;
use serde_json::{json, Value};
use support::{client, fsyncs, library_load, median, produce_load, start_with_kafka, BATCH_RECORDS, PARTITIONS};

const RECORD_BYTES: usize = support::RECORD_BYTES;
const PRODUCE_TARGET_VS_HTTP: f64 = 1.5;
const PRODUCE_TARGET_VS_LIBRARY: f64 = 0.5;
const CONSUME_TARGET: f64 = 2_000_000.0;
/// librdkafka settings a user tunes for throughput (`kafka_load`'s and kcat's `-X`); `acks=all`
/// is set by each command.
const PRODUCER_TUNING: &[(&str, &str)] = &[
    ("linger.ms", "5"),
    ("batch.size", "1000000"),
    ("batch.num.messages", "10000"),
    ("compression.codec", "none"),
    ("queue.buffering.max.messages", "100000"),
    ("queue.buffering.max.kbytes", "1048576"),
];
/// `kafka_load produce` with librdkafka's batch call (see its documentation).
const BATCH_PRODUCE: &[(&str, &str)] = &[("load.api", "batch"), ("delivery.report.only.error", "true")];
/// Producers (threads with a connection each) of `kafka_load produce`, by default: one per
/// partition (16, as many connections as the HTTP case's, spend more CPU per record on both sides).
const PRODUCERS: u32 = 4;
const CONSUMER_TUNING: &[(&str, &str)] =
    &[("fetch.wait.max.ms", "100"), ("fetch.max.bytes", "4194304"), ("max.partition.fetch.bytes", "1048576")];
/// `kafka_load consume`: a prefetch queue small enough for its memory to be reused, refilled at
/// once (`fetch.queue.backoff.ms`, which Debian's kcat's librdkafka 2.0 does not have).
const LOAD_CONSUMER_QUEUE: &[(&str, &str)] =
    &[("queued.min.messages", "50000"), ("queued.max.messages.kbytes", "32768"), ("fetch.queue.backoff.ms", "1")];
const KCAT_CONSUMER_QUEUE: &[(&str, &str)] =
    &[("queued.min.messages", "1000000"), ("queued.max.messages.kbytes", "1048576")];
/// Consumers (threads with a connection each) of `kafka_load consume`.
const CONSUMERS: u32 = 2;

/// CPU seconds (user + system) from `/proc/PID/stat`: the process's own (`children`: false) or
/// its waited-for children's.
fn cpu_seconds(pid: &str, children: bool) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command's closing parenthesis: state is field 3, utime field 14.
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    let at = if children { 13 } else { 11 };
    let ticks: f64 = fields.get(at..at + 2).map_or(0.0, |f| f.iter().filter_map(|t| t.parse::<f64>().ok()).sum());
    ticks / CLOCK_TICKS
}

/// `sysconf(_SC_CLK_TCK)` on Linux.
const CLOCK_TICKS: f64 = 100.0;

/// CPU seconds of the broker and of the client, measured around one case.
struct Cpu {
    broker: String,
    server: f64,
    own: f64,
    children: f64,
}

impl Cpu {
    fn start(broker: &str) -> Cpu {
        Cpu {
            broker: broker.to_string(),
            server: cpu_seconds(broker, false),
            own: cpu_seconds("self", false),
            children: cpu_seconds("self", true),
        }
    }

    /// (broker, client) CPU seconds per million records since `start`; the client is this process
    /// (HTTP, library) or the children it waited for (the Kafka clients).
    fn per_million(&self, records: f64, client_is_child: bool) -> (f64, f64) {
        let server = cpu_seconds(&self.broker, false) - self.server;
        let client = match client_is_child {
            true => cpu_seconds("self", true) - self.children,
            false => cpu_seconds("self", false) - self.own,
        };
        (server / records * 1e6, client / records * 1e6)
    }
}

/// One case's figures over the runs: records/s and CPU seconds per million records.
#[derive(Default)]
struct Case {
    rate: Vec<f64>,
    server: Vec<f64>,
    client: Vec<f64>,
}

impl Case {
    fn push(&mut self, rate: f64, (server, client): (f64, f64)) {
        self.rate.push(rate);
        self.server.push(server);
        self.client.push(client);
    }

    /// "broker s | client s" per million records, medians.
    fn cpu(&self) -> String {
        format!("{:.2} | {:.2}", median(self.server.clone()), median(self.client.clone()))
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// The `kafka_load` binary: `KAPPALOG_BENCH_KAFKA_LOAD`, or built from `benches/kafka_load` with
/// the cargo running this benchmark. `None` (with the reason printed) when it cannot be built.
fn load_generator() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("KAPPALOG_BENCH_KAFKA_LOAD") {
        return Some(path.into());
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/kafka_load");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    println!("building {} (the first build compiles librdkafka: minutes)", dir.display());
    let target = dir.join("target");
    let built = Command::new(cargo)
        .args(["build", "--release", "--quiet", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .status();
    match built {
        Ok(s) if s.success() => Some(target.join("release/kafka_load")),
        other => {
            println!("building benches/kafka_load failed ({other:?}): the rdkafka rows are left out");
            None
        }
    }
}

/// Runs `kafka_load ARGS...` and parses its JSON answer; panics when it failed (a record not
/// delivered or not read).
fn kafka_load(bin: &Path, args: &[String]) -> Value {
    let out = Command::new(bin).args(args).stderr(Stdio::inherit()).output().expect("kafka_load");
    assert!(out.status.success(), "kafka_load {args:?} failed: {}", String::from_utf8_lossy(&out.stdout));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("kafka_load {args:?}: {e}"))
}

fn settings(tuning: &[(&str, &str)]) -> Vec<String> {
    tuning.iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// `kafka_load produce` of `records` by `PRODUCERS` (or `KAPPALOG_BENCH_KAFKA_PRODUCERS`)
/// producers with `PRODUCER_TUNING` and `extra`: records/s. Checks that exactly `records` were appended.
fn load_produce(bin: &Path, addr: &str, base: &str, topic: &str, records: u64, extra: &[(&str, &str)]) -> f64 {
    let before = end_offsets(base, topic);
    let producers: u32 = env_or("KAPPALOG_BENCH_KAFKA_PRODUCERS", PRODUCERS);
    let mut args = vec!["produce".to_string(), addr.into(), topic.into(), records.to_string(), producers.to_string()];
    args.extend(settings(PRODUCER_TUNING));
    args.extend(settings(extra));
    settle();
    let out = kafka_load(bin, &args);
    assert_eq!(out["failed"], 0, "kafka_load deliveries failed: {out}");
    assert_eq!(end_offsets(base, topic) - before, records, "kafka_load produce to {topic}: records appended");
    records as f64 / out["seconds"].as_f64().unwrap()
}

/// `kafka_load consume` of all of `topic` from the beginning by `CONSUMERS` consumers, with
/// `extra`: records/s.
fn load_consume(bin: &Path, addr: &str, topic: &str, records: u64, extra: &[(&str, &str)]) -> f64 {
    let mut args = vec!["consume".to_string(), addr.into(), topic.into(), PARTITIONS.to_string(), records.to_string()];
    args.push(CONSUMERS.to_string());
    args.extend(settings(CONSUMER_TUNING));
    args.extend(settings(LOAD_CONSUMER_QUEUE));
    args.extend(settings(extra));
    let out = kafka_load(bin, &args);
    assert_eq!(out["records"], records, "kafka_load consume of {topic}: {out}");
    records as f64 / out["seconds"].as_f64().unwrap()
}

/// The sum of the end offsets of `topic`'s partitions.
fn end_offsets(base: &str, topic: &str) -> u64 {
    let c = client();
    (0..PARTITIONS)
        .map(|p| {
            let o: Value =
                c.get(format!("{base}/topics/{topic}/partitions/{p}/offsets")).send().unwrap().json().unwrap();
            o["end_offset"].as_u64().expect("end_offset")
        })
        .sum()
}

fn kcat_args(addr: &str, topic: &str, tuning: &[(&str, &str)]) -> Vec<String> {
    let mut args = vec!["-b".to_string(), addr.to_string(), "-t".into(), topic.into(), "-q".into()];
    for s in settings(tuning) {
        args.extend(["-X".to_string(), s]);
    }
    args
}

/// `kcat -P -l FILE` of `records` lines with `acks=all`: records/s from spawn to exit (connecting
/// and the metadata included). Checks that exactly `records` were appended.
fn kcat_produce(addr: &str, base: &str, topic: &str, file: &Path, records: u64) -> f64 {
    let before = end_offsets(base, topic);
    let mut args = kcat_args(addr, topic, PRODUCER_TUNING);
    args.extend(["-P", "-X", "acks=all", "-l"].map(String::from));
    args.push(file.display().to_string());
    settle();
    let started = Instant::now();
    let status = Command::new("kcat").args(&args).stdin(Stdio::null()).status().expect("kcat");
    let seconds = started.elapsed().as_secs_f64();
    assert!(status.success(), "kcat -P failed: {status}");
    assert_eq!(end_offsets(base, topic) - before, records, "kcat produce to {topic}: records appended");
    records as f64 / seconds
}

/// `kcat -C -e` of all of `topic` from the beginning, one byte of output per record: records/s
/// from spawn to exit. Checks the count.
fn kcat_consume(addr: &str, topic: &str, records: u64) -> f64 {
    let mut args = kcat_args(addr, topic, &[CONSUMER_TUNING, KCAT_CONSUMER_QUEUE].concat());
    args.extend(["-C", "-e", "-o", "beginning", "-f", "\n"].map(String::from));
    let started = Instant::now();
    let mut child = Command::new("kcat").args(&args).stdin(Stdio::null()).stdout(Stdio::piped()).spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut got = 0u64;
    loop {
        let n = out.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        got += n as u64;
    }
    let status = child.wait().unwrap();
    let seconds = started.elapsed().as_secs_f64();
    assert!(status.success(), "kcat -C failed: {status}");
    assert_eq!(got, records, "kcat -C of {topic}: records read");
    records as f64 / seconds
}

/// Writes back the page cache's dirty pages (`sync`), so that a case does not pay for the
/// writeback of the one before it.
fn settle() {
    let _ = Command::new("sync").status();
}

fn create_topic(base: &str, name: &str) {
    let r = client().post(format!("{base}/topics")).json(&json!({"name": name, "partitions": PARTITIONS})).send();
    assert_eq!(r.unwrap().status(), 201, "create {name}");
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "MISS"
    }
}

fn si(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2} M", v / 1e6)
    } else {
        format!("{:.0} k", v / 1e3)
    }
}

/// Median of the runs and their range, as text.
fn spread(v: &[f64], fmt: impl Fn(f64) -> String) -> String {
    let (lo, hi) = v.iter().fold((f64::MAX, f64::MIN), |(l, h), &x| (l.min(x), h.max(x)));
    format!("{} ({} - {})", fmt(median(v.to_vec())), fmt(lo), fmt(hi))
}

fn ratios(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x / y).collect()
}

fn last(c: &Case) -> String {
    c.rate.last().map_or("-".into(), |&r| si(r))
}

fn main() {
    let kcat = Command::new("kcat").arg("-V").stdout(Stdio::null()).status().is_ok_and(|s| s.success());
    if !kcat {
        println!("kcat is not on the PATH (apt-get install kcat): the kcat rows are left out");
    }
    let load = load_generator();
    let Some(load) = load else {
        println!("SKIPPED: benches/kafka_load cannot be built");
        return;
    };
    let runs: usize = env_or("KAPPALOG_BENCH_RUNS", 3);
    let seconds: f64 = env_or("KAPPALOG_BENCH_SECONDS", 3.0);
    let records: u64 = env_or("KAPPALOG_BENCH_KAFKA_RECORDS", 3_000_000);

    let dir = tempfile::tempdir().unwrap();
    let (broker, kafka) = start_with_kafka(dir.path());
    let base = broker.1.clone();
    for t in ["http", "batch", "send", "kcat"] {
        create_topic(&base, t);
    }
    let mut lines = tempfile::NamedTempFile::new().unwrap();
    if kcat {
        let line = [vec![b'x'; RECORD_BYTES], vec![b'\n']].concat();
        for _ in 0..records {
            lines.write_all(&line).unwrap();
        }
        lines.flush().unwrap();
    }
    let value = base64::engine::general_purpose::STANDARD.encode(vec![b'x'; RECORD_BYTES]);
    let http_body = json!({"records": vec![json!({"value": value}); BATCH_RECORDS]}).to_string();

    let pid = broker.0.id().to_string();
    // Runs one case: its records/s, and the CPU per million records of broker and client.
    let measure = |case: &mut Case, client_is_child: bool, run: &mut dyn FnMut() -> f64| {
        let cpu = Cpu::start(&pid);
        let started = Instant::now();
        let rate = run();
        let records = rate * started.elapsed().as_secs_f64();
        case.push(rate, cpu.per_million(records, client_is_child));
    };
    let (mut http, mut lib) = (Case::default(), Case::default());
    let (mut batch, mut send, mut kc) = (Case::default(), Case::default(), Case::default());
    let mut per_fsync = [vec![], vec![], vec![]];
    for run in 0..runs {
        settle();
        let url = format!("{base}/topics/http");
        measure(&mut http, false, &mut || produce_load(&url, http_body.clone(), BATCH_RECORDS, seconds));
        settle();
        measure(&mut lib, false, &mut || library_load(BATCH_RECORDS, seconds));
        let f0 = fsyncs(&base);
        measure(&mut batch, true, &mut || load_produce(&load, &kafka, &base, "batch", records, BATCH_PRODUCE));
        per_fsync[0].push(records as f64 / (fsyncs(&base) - f0).max(1) as f64);
        let f0 = fsyncs(&base);
        measure(&mut send, true, &mut || load_produce(&load, &kafka, &base, "send", records, &[]));
        per_fsync[1].push(records as f64 / (fsyncs(&base) - f0).max(1) as f64);
        if kcat {
            let f0 = fsyncs(&base);
            measure(&mut kc, true, &mut || kcat_produce(&kafka, &base, "kcat", lines.path(), records));
            per_fsync[2].push(records as f64 / (fsyncs(&base) - f0).max(1) as f64);
        }
        println!(
            "run {}: HTTP {} rec/s, library {} rec/s, librdkafka batch {} rec/s, rdkafka send {} rec/s, kcat {} rec/s",
            run + 1,
            si(http.rate[run]),
            si(lib.rate[run]),
            last(&batch),
            last(&send),
            last(&kc)
        );
    }

    // Consume what the batch producer wrote, alternating the clients.
    let total = records * runs as u64;
    let (mut batch_consume, mut poll_consume, mut kc_consume) = (Case::default(), Case::default(), Case::default());
    for run in 0..runs {
        measure(&mut batch_consume, true, &mut || {
            load_consume(&load, &kafka, "batch", total, &[("load.api", "batch")])
        });
        measure(&mut poll_consume, true, &mut || load_consume(&load, &kafka, "batch", total, &[]));
        if kcat {
            measure(&mut kc_consume, true, &mut || kcat_consume(&kafka, "batch", total));
        }
        println!(
            "consume run {}: librdkafka batch {} rec/s, rdkafka poll {} rec/s, kcat {} rec/s",
            run + 1,
            last(&batch_consume),
            last(&poll_consume),
            last(&kc_consume)
        );
    }
    drop(broker);

    let x = |v: f64| format!("{v:.2}");
    println!();
    println!(
        "Kafka benchmark, {runs} alternated runs, 100 B records, acks=all to sync topics, {PARTITIONS} partitions; median (lowest - highest)"
    );
    println!("CPU: seconds of CPU per million records (user + system), of the broker and of the client, medians");
    println!("| case | records/s | ratio to HTTP batched | ratio to library | target | CPU broker | CPU client |");
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| HTTP produce, {BATCH_RECORDS} records per request, 16 connections | {} | | | | {} |",
        spread(&http.rate, si),
        http.cpu()
    );
    println!(
        "| library `Topic::append`, {BATCH_RECORDS} records, 16 threads | {} | | | | - | {:.2} |",
        spread(&lib.rate, si),
        median(lib.client.clone())
    );
    let produce_row = |name: &str, c: &Case, per_fsync: &[f64]| {
        if c.rate.is_empty() {
            return;
        }
        let (vs_http, vs_lib) = (ratios(&c.rate, &http.rate), ratios(&c.rate, &lib.rate));
        let (h, l) =
            (median(vs_http.clone()) >= PRODUCE_TARGET_VS_HTTP, median(vs_lib.clone()) >= PRODUCE_TARGET_VS_LIBRARY);
        println!(
            "| {name}, {records} records per run, {:.0} records per fsync | {} | {} ({}) | {} ({}) | >= {PRODUCE_TARGET_VS_HTTP} and >= {PRODUCE_TARGET_VS_LIBRARY}: **{}** | {} |",
            median(per_fsync.to_vec()),
            spread(&c.rate, si),
            spread(&vs_http, x),
            verdict(h),
            spread(&vs_lib, x),
            verdict(l),
            verdict(h && l),
            c.cpu()
        );
    };
    produce_row(
        &format!("**librdkafka `rd_kafka_produce_batch` produce**, {PRODUCERS} producers"),
        &batch,
        &per_fsync[0],
    );
    produce_row(&format!("rdkafka `send` produce, {PRODUCERS} producers"), &send, &per_fsync[1]);
    produce_row("kcat produce", &kc, &per_fsync[2]);
    let consume_rows = [
        (format!("**librdkafka `rd_kafka_consume_batch_queue` consume**, {CONSUMERS} consumers"), &batch_consume),
        (format!("rdkafka `poll` consume, {CONSUMERS} consumers"), &poll_consume),
        ("kcat consume".to_string(), &kc_consume),
    ];
    for (name, c) in consume_rows {
        if !c.rate.is_empty() {
            println!(
                "| {name}, {total} records from the beginning | {} | | | >= 2 M: **{}** | {} |",
                spread(&c.rate, si),
                verdict(median(c.rate.clone()) >= CONSUME_TARGET),
                c.cpu()
            );
        }
    }
}
