//! Kafka clients against the real broker (`cargo bench --bench kafka`): produce and consume
//! records/s with real librdkafka clients, 100 B records, `acks=all` to `sync` topics (fsync before
//! every acknowledgement), beside the HTTP batched produce path (1000 records per request, 16
//! connections) and the library's `Topic::append` (1000 records per append, 16 threads), measured
//! in the same run, alternating.
//!
//! Clients: kcat (librdkafka in C: `kcat -P -l FILE` to produce, `kcat -C -e` to consume) and
//! confluent-kafka (librdkafka under Python, `benches/kafka_client.py`). The benchmark skips with a
//! message when confluent-kafka cannot be imported, and leaves the kcat rows out without kcat.
//! To tell the broker's limit from the client's, it also measures each client's ceiling:
//! confluent-kafka's `produce()` into its queue with no broker, kcat producing with `acks=0`, and
//! confluent-kafka consuming without touching the records; and for every case the CPU seconds per
//! million records of the broker process and of the client (this process for HTTP and the
//! library, the child for kcat and Python), from `/proc`.
//!
//! Environment: `KAPPALOG_BENCH_RUNS` (alternated runs, default 3), `KAPPALOG_BENCH_SECONDS` (seconds
//! of each HTTP and library run, default 3), `KAPPALOG_BENCH_KAFKA_RECORDS` (records of each kcat
//! produce run, default 3 000 000; confluent-kafka runs a third of it), `KAPPALOG_BENCH_BROKER`
//! (another build's `kappalog`).

mod support;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Instant;

use base64::Engine as _;
use serde_json::{json, Value};
use support::{client, fsyncs, library_load, median, produce_load, start_with_kafka, BATCH_RECORDS, PARTITIONS};

const RECORD_BYTES: usize = support::RECORD_BYTES;
const PRODUCE_TARGET_VS_HTTP: f64 = 1.5;
const PRODUCE_TARGET_VS_LIBRARY: f64 = 0.5;
const CONSUME_TARGET: f64 = 2_000_000.0;
/// librdkafka settings a user tunes for throughput (kcat's `-X`, confluent-kafka's config).
const PRODUCER_TUNING: &[(&str, &str)] = &[
    ("enable.idempotence", "true"),
    ("linger.ms", "5"),
    ("batch.size", "1000000"),
    ("batch.num.messages", "10000"),
    ("compression.codec", "none"),
    ("queue.buffering.max.messages", "1000000"),
    ("queue.buffering.max.kbytes", "1048576"),
];
const CONSUMER_TUNING: &[(&str, &str)] = &[
    ("fetch.wait.max.ms", "100"),
    ("fetch.max.bytes", "52428800"),
    ("max.partition.fetch.bytes", "10485760"),
    ("queued.min.messages", "1000000"),
    ("queued.max.messages.kbytes", "1048576"),
];

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

/// CPU seconds per million records of the broker (`server`) and of the client (`client`), measured
/// around one case.
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
    /// (HTTP, library) or the children it waited for (kcat, Python).
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

fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// Runs `benches/kafka_client.py ARGS...` and parses its JSON answer.
fn python(args: &[&str]) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/kafka_client.py");
    let out = Command::new("python3").arg(script).args(args).stderr(Stdio::inherit()).output().expect("python3");
    assert!(out.status.success(), "kafka_client.py {args:?} failed");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("kafka_client.py {args:?}: {e}"))
}

fn rate(v: &Value, records: &str) -> f64 {
    v[records].as_f64().unwrap() / v["seconds"].as_f64().unwrap()
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
    for (k, v) in tuning {
        args.extend(["-X".to_string(), format!("{k}={v}")]);
    }
    args
}

/// `kcat -P -l FILE` of `records` lines with `acks`: records/s from spawn to exit (connecting
/// and the metadata included). Checks that exactly `records` were appended.
fn kcat_produce(addr: &str, base: &str, topic: &str, file: &std::path::Path, records: u64, acks: &str) -> f64 {
    let before = end_offsets(base, topic);
    let mut args = kcat_args(addr, topic, PRODUCER_TUNING);
    args.extend(["-P".into(), "-X".into(), format!("acks={acks}")]);
    if acks == "0" {
        // The idempotent producer requires acks=all.
        args.extend(["-X".into(), "enable.idempotence=false".into()]);
    }
    args.extend(["-l".into(), file.display().to_string()]);
    settle();
    let started = Instant::now();
    let status = Command::new("kcat").args(&args).stdin(Stdio::null()).status().expect("kcat");
    let seconds = started.elapsed().as_secs_f64();
    assert!(status.success(), "kcat -P failed: {status}");
    // acks=0 returns once sent: wait (bounded) for the broker to have appended them all.
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    while end_offsets(base, topic) - before < records && Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(end_offsets(base, topic) - before, records, "kcat produce to {topic}: records appended");
    records as f64 / seconds
}

/// `kcat -C -e` of all of `topic` from the beginning, one byte of output per record: records/s
/// from spawn to exit. Checks the count.
fn kcat_consume(addr: &str, topic: &str, records: u64) -> f64 {
    let mut args = kcat_args(addr, topic, CONSUMER_TUNING);
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

fn main() {
    let confluent = succeeds(Command::new("python3").args(["-c", "import confluent_kafka"]));
    if !confluent {
        println!("SKIPPED: the Python module confluent_kafka is not importable (pip install confluent-kafka==2.16.1)");
        return;
    }
    let kcat = succeeds(Command::new("kcat").arg("-V"));
    if !kcat {
        println!("kcat is not on the PATH (apt-get install kcat): the kcat rows are left out");
    }
    let runs: usize = env_or("KAPPALOG_BENCH_RUNS", 3);
    let seconds: f64 = env_or("KAPPALOG_BENCH_SECONDS", 3.0);
    let kcat_records: u64 = env_or("KAPPALOG_BENCH_KAFKA_RECORDS", 3_000_000);
    let py_records = (kcat_records / 3).max(1);

    let dir = tempfile::tempdir().unwrap();
    let (broker, kafka) = start_with_kafka(dir.path());
    let base = broker.1.clone();
    for t in ["http", "kcat", "python", "acks0"] {
        create_topic(&base, t);
    }
    let mut lines = tempfile::NamedTempFile::new().unwrap();
    let line = [vec![b'x'; RECORD_BYTES], vec![b'\n']].concat();
    for _ in 0..kcat_records {
        lines.write_all(&line).unwrap();
    }
    lines.flush().unwrap();
    let value = base64::engine::general_purpose::STANDARD.encode(vec![b'x'; RECORD_BYTES]);
    let http_body = json!({"records": vec![json!({"value": value}); BATCH_RECORDS]}).to_string();
    let py_n = py_records.to_string();

    let pid = broker.0.id().to_string();
    // Runs one case: its records/s, and the CPU per million records of broker and client.
    let measure = |case: &mut Case, client_is_child: bool, run: &mut dyn FnMut() -> f64| {
        let cpu = Cpu::start(&pid);
        let started = Instant::now();
        let rate = run();
        let records = rate * started.elapsed().as_secs_f64();
        case.push(rate, cpu.per_million(records, client_is_child));
    };
    let (mut http, mut lib, mut kc, mut py, mut per_fsync) =
        (Case::default(), Case::default(), Case::default(), Case::default(), vec![]);
    for run in 0..runs {
        settle();
        let url = format!("{base}/topics/http");
        measure(&mut http, false, &mut || produce_load(&url, http_body.clone(), BATCH_RECORDS, seconds));
        settle();
        measure(&mut lib, false, &mut || library_load(BATCH_RECORDS, seconds));
        if kcat {
            let f0 = fsyncs(&base);
            measure(&mut kc, true, &mut || kcat_produce(&kafka, &base, "kcat", lines.path(), kcat_records, "all"));
            per_fsync.push(kcat_records as f64 / (fsyncs(&base) - f0).max(1) as f64);
        }
        settle();
        let before = end_offsets(&base, "python");
        measure(&mut py, true, &mut || {
            let p = python(&["produce", &kafka, "python", &py_n, "all"]);
            assert_eq!(p["failed"], 0, "confluent-kafka deliveries failed: {p}");
            rate(&p, "records")
        });
        assert_eq!(end_offsets(&base, "python") - before, py_records, "confluent-kafka records appended");
        println!(
            "run {}: HTTP {} rec/s, library {} rec/s, kcat {} rec/s, confluent-kafka {} rec/s",
            run + 1,
            si(http.rate[run]),
            si(lib.rate[run]),
            kc.rate.last().map_or("-".into(), |&r| si(r)),
            si(py.rate[run])
        );
    }

    // The clients' ceilings.
    let enqueue = rate(&python(&["enqueue", &py_n]), "records");
    let mut kcat_acks0 = Case::default();
    if kcat {
        measure(&mut kcat_acks0, true, &mut || kcat_produce(&kafka, &base, "acks0", lines.path(), kcat_records, "0"));
    }

    // Consume what kcat (or else confluent-kafka) produced.
    let (topic, total) = if kcat { ("kcat", kcat_records * runs as u64) } else { ("python", py_records * runs as u64) };
    let (mut kc_consume, mut py_touch, mut py_count) = (Case::default(), Case::default(), Case::default());
    let py_consume_n = total.min(3 * py_records).to_string();
    let parts = PARTITIONS.to_string();
    for _ in 0..runs {
        if kcat {
            measure(&mut kc_consume, true, &mut || kcat_consume(&kafka, topic, total));
        }
        measure(&mut py_touch, true, &mut || {
            let t = python(&["consume", &kafka, topic, &parts, &py_consume_n, "touch"]);
            assert_eq!(t["errors"], 0, "confluent-kafka consume errors: {t}");
            rate(&t, "timed_records")
        });
        measure(&mut py_count, true, &mut || {
            rate(&python(&["consume", &kafka, topic, &parts, &py_consume_n]), "timed_records")
        });
    }
    drop(broker);

    let rec = si;
    let x = |v: f64| format!("{v:.2}");
    println!();
    println!("Kafka benchmark, {runs} alternated runs, 100 B records, acks=all to sync topics, 4 partitions; median (lowest - highest)");
    println!("CPU: seconds of CPU per million records (user + system), of the broker and of the client, medians");
    println!("| case | records/s | ratio to HTTP batched | ratio to library | target | CPU broker | CPU client |");
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| HTTP produce, {BATCH_RECORDS} records per request, 16 connections | {} | | | | {} |",
        spread(&http.rate, rec),
        http.cpu()
    );
    println!(
        "| library `Topic::append`, {BATCH_RECORDS} records, 16 threads | {} | | | | - | {:.2} |",
        spread(&lib.rate, rec),
        median(lib.client.clone())
    );
    let produce_row = |name: String, c: &Case, bold: bool| {
        let (vs_http, vs_lib) = (ratios(&c.rate, &http.rate), ratios(&c.rate, &lib.rate));
        let ok =
            median(vs_http.clone()) >= PRODUCE_TARGET_VS_HTTP && median(vs_lib.clone()) >= PRODUCE_TARGET_VS_LIBRARY;
        let (h, l) =
            (median(vs_http.clone()) >= PRODUCE_TARGET_VS_HTTP, median(vs_lib.clone()) >= PRODUCE_TARGET_VS_LIBRARY);
        let b = if bold { "**" } else { "" };
        println!(
            "| {name} | {} | {} ({}) | {} ({}) | >= {PRODUCE_TARGET_VS_HTTP} and >= {PRODUCE_TARGET_VS_LIBRARY}: {b}{}{b} | {} |",
            spread(&c.rate, rec),
            spread(&vs_http, x),
            verdict(h),
            spread(&vs_lib, x),
            verdict(l),
            verdict(ok),
            c.cpu()
        );
    };
    if kcat {
        produce_row(
            format!("**kcat produce**, {kcat_records} records per run, {:.0} records per fsync", median(per_fsync)),
            &kc,
            true,
        );
    }
    produce_row(format!("confluent-kafka produce, {py_records} records per run"), &py, false);
    println!("| (ceiling) confluent-kafka `produce()` into its queue, no broker | {} | | | | | |", si(enqueue));
    if kcat {
        println!("| (ceiling) kcat produce with acks=0 | {} | | | | {} |", si(kcat_acks0.rate[0]), kcat_acks0.cpu());
        let ok = median(kc_consume.rate.clone()) >= CONSUME_TARGET;
        println!(
            "| **kcat consume**, {total} records from the beginning | {} | | | >= 2 M: **{}** | {} |",
            spread(&kc_consume.rate, rec),
            verdict(ok),
            kc_consume.cpu()
        );
    }
    let ok = median(py_touch.rate.clone()) >= CONSUME_TARGET;
    println!(
        "| confluent-kafka consume, every value read | {} | | | >= 2 M: {} | {} |",
        spread(&py_touch.rate, rec),
        verdict(ok),
        py_touch.cpu()
    );
    println!(
        "| (ceiling) confluent-kafka consume, batches counted only | {} | | | | {} |",
        spread(&py_count.rate, rec),
        py_count.cpu()
    );
}
