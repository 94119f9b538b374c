//! Replay against a batch engine, in the same run on the same records: N JSON records
//! `{"page","user","ts"}` (1 000 distinct pages) in a 2-partition topic and, the same bytes, in an
//! NDJSON file. Measured alternately, each run in turn:
//!
//! - the raw read of the log (every value touched, not parsed; one thread, the runner's read sizes);
//! - a count-per-page view built from the beginning, against DuckDB's `GROUP BY page` over the
//!   NDJSON file (DuckDB from PyPI, run as a `python3` subprocess; its query time is measured
//!   inside that process, after the import);
//! - a tumbling-window sum (`sum(user)` per page per minute of `ts`) view, against DuckDB's
//!   `GROUP BY page, ts // 60000`.
//!
//! Each view is built twice: with one decode worker (the runner thread alone) and with
//! `KAPPALOG_BENCH_WORKERS` (default: the cores available). Reports the median of each and the
//! median over runs of each run's ratio (view rate / DuckDB rate: above 1.0, the replay is
//! faster). Without `python3 -c 'import duckdb'` the DuckDB rows say so and the rest still runs.
//!
//! Then, unless `KAPPALOG_BENCH_REPLAY_KEYS` is empty, the count view's rate as the number of
//! distinct keys grows (default 1 k, 100 k, 1 M, 10 M; each case max(N, keys) records in a topic
//! of its own, beside its raw read and DuckDB's `GROUP BY` of the same records).
//!
//! ```sh
//! cargo bench --bench replay                                   # 4 M records, 3 runs
//! KAPPALOG_BENCH_REPLAY_RECORDS=400000 KAPPALOG_BENCH_RUNS=1 KAPPALOG_BENCH_REPLAY_KEYS=1000,100000 \
//!     cargo bench --bench replay                               # quick
//! ```

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use kappalog::{Durability, NewRecord, Partition, Store, StoreConfig, TopicConfig, Views, ViewsConfig};

const RECORDS_DEFAULT: u64 = 4_000_000;
const PAGES: u64 = 1_000;
const PARTITIONS: u32 = 2;
const APPEND_BATCH: u64 = 20_000;
const RUNS_DEFAULT: usize = 3;
const WINDOW_MS: i64 = 60_000;

fn env<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|s| s.parse().ok())
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    match xs.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => xs[n / 2],
        n => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}

/// Writes the records to topic `name` (record `j` to partition `j % PARTITIONS`, so each partition
/// is in event-time order; its page `j * 7919 % pages`, every page once in each `pages` records)
/// and the same values, one a line, to `ndjson`.
fn write_records(store: &Store, name: &str, ndjson: &Path, records: u64, pages: u64, t0: i64) -> Vec<Partition> {
    let config = TopicConfig::default().durability(Durability::None);
    let topic = store.create_topic(name, PARTITIONS, config).expect("topic");
    let parts: Vec<Partition> = (0..PARTITIONS).map(|i| topic.partition(i).expect("partition").clone()).collect();
    let mut file = std::io::BufWriter::new(std::fs::File::create(ndjson).expect("ndjson file"));
    let mut i = 0u64;
    while i < records {
        let n = APPEND_BATCH.min(records - i);
        let mut batches: Vec<Vec<NewRecord>> = vec![Vec::new(); PARTITIONS as usize];
        for j in i..i + n {
            let v = format!(r#"{{"page":"/p{}","user":{},"ts":{}}}"#, j * 7919 % pages, j % 1000, t0 + j as i64);
            file.write_all(v.as_bytes()).and_then(|_| file.write_all(b"\n")).expect("write ndjson");
            batches[(j % PARTITIONS as u64) as usize].push(NewRecord::new(v));
        }
        for (p, b) in parts.iter().zip(&batches) {
            p.append(b).expect("append");
        }
        i += n;
    }
    file.flush().expect("flush ndjson");
    for p in &parts {
        p.flush().expect("flush");
    }
    parts
}

/// Reads every record of every partition, touching each value; records/s.
fn raw_read(parts: &[Partition], cfg: &ViewsConfig, records: u64) -> f64 {
    let started = Instant::now();
    let mut touched = 0u64;
    let mut count = 0u64;
    for p in parts {
        let mut next = 0u64;
        while next < p.high_watermark() {
            let batches = p.read_batches(next, cfg.read_bytes_max, cfg.read_records_max).expect("read");
            for b in &batches {
                next = b
                    .for_each(|r| {
                        touched += r.value.map_or(0, |v| v.len() as u64);
                        count += 1;
                    })
                    .expect("well-formed batch");
            }
        }
    }
    assert_eq!(count, records);
    assert!(touched > 0);
    records as f64 / started.elapsed().as_secs_f64()
}

/// Builds the view of `spec` from the beginning with `workers` decode workers, and deletes it;
/// records/s.
fn build(store: &Store, workers: usize, spec: &str, name: &str, records: u64, keys: Option<usize>) -> f64 {
    let views = Views::open(store, ViewsConfig::default().workers(workers)).expect("views");
    let started = Instant::now();
    let view = views.create_json(spec.replace("NAME", name).as_bytes()).expect("create");
    assert!(view.wait_caught_up(Duration::from_secs(3600)), "caught up: {:?}", view.failure());
    let took = started.elapsed();
    let status = view.status();
    assert_eq!(status.counters.records_read, records, "every record read");
    assert_eq!(status.counters.records_applied, records, "every record applied: {:?}", status.counters);
    if let Some(k) = keys {
        assert_eq!(status.keys, k);
    }
    views.delete(name).expect("delete");
    views.close();
    records as f64 / took.as_secs_f64()
}

/// Runs `sql` in DuckDB over the NDJSON file (`{file}` in it); the query's records/s, or why not.
fn duckdb(ndjson: &Path, sql: &str, records: u64, rows: u64) -> Result<f64, String> {
    let script = format!(
        r#"
import sys, time
try:
    import duckdb
except ImportError as e:
    print("missing", e); sys.exit(3)
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
started = time.perf_counter()
rows = con.sql("""{sql}""".replace("{{file}}", sys.argv[1])).fetchall()
print(time.perf_counter() - started, len(rows))
"#
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(ndjson)
        .output()
        .map_err(|e| format!("python3 did not run: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        return Err(format!("{} {}", text.trim(), String::from_utf8_lossy(&out.stderr).trim()));
    }
    let mut it = text.lines().last().unwrap_or_default().split_whitespace();
    let secs: f64 = it.next().and_then(|s| s.parse().ok()).ok_or(format!("unexpected output {text:?}"))?;
    let got: u64 = it.next().and_then(|s| s.parse().ok()).ok_or(format!("unexpected output {text:?}"))?;
    if got != rows {
        return Err(format!("DuckDB gave {got} rows, not {rows}"));
    }
    Ok(records as f64 / secs)
}

const COUNT_SPEC: &str = r#"{"name": "NAME", "source": {"topics": ["TOPIC"]}, "key": "/page",
    "aggregates": {"n": {"op": "count"}}}"#;
const WINDOW_SPEC: &str = r#"{"name": "NAME", "source": {"topics": ["TOPIC"]}, "key": "/page",
    "window": {"type": "tumbling", "size_ms": 60000, "time": "/ts"},
    "aggregates": {"users": {"op": "sum", "field": "/user"}}}"#;
const COLUMNS: &str = "columns={'page': 'VARCHAR', 'user': 'BIGINT', 'ts': 'BIGINT'}";
const KEYS_DEFAULT: &str = "1000,100000,1000000,10000000";

fn count_sql() -> String {
    format!("SELECT page, count(*) FROM read_ndjson('{{file}}', {COLUMNS}) GROUP BY page")
}

/// The lowest and highest of `xs`.
fn span(xs: &[f64]) -> String {
    let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{lo:.2} - {hi:.2}")
}

fn m(xs: &[f64]) -> f64 {
    median(xs.to_vec()) / 1e6
}

/// Event times that end now: within every view's max_future_ms.
fn first_time(records: u64) -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as i64;
    now - records as i64
}

fn main() {
    let records: u64 = env("KAPPALOG_BENCH_REPLAY_RECORDS").unwrap_or(RECORDS_DEFAULT);
    let runs: usize = env("KAPPALOG_BENCH_RUNS").unwrap_or(RUNS_DEFAULT);
    let all: usize =
        env("KAPPALOG_BENCH_WORKERS").unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let key_cases: Vec<u64> = std::env::var("KAPPALOG_BENCH_REPLAY_KEYS")
        .unwrap_or_else(|_| KEYS_DEFAULT.to_string())
        .split(',')
        .filter_map(|k| k.trim().parse().ok())
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let ndjson = dir.path().join("clicks.ndjson");
    let store = Store::open(dir.path().join("store"), StoreConfig::default()).expect("open");
    let t0 = first_time(records);
    let started = Instant::now();
    let parts = write_records(&store, "clicks", &ndjson, records, PAGES, t0);
    let bytes: u64 = parts.iter().map(|p| p.stats().size_bytes).sum();
    let file_bytes = std::fs::metadata(&ndjson).expect("ndjson").len();
    println!(
        "replay bench: {records} records, {PAGES} pages, {PARTITIONS} partitions ({bytes} bytes of log, \
         {file_bytes} bytes of NDJSON), written in {:.1?}; {runs} runs, alternated; views with 1 and \
         {all} decode workers",
        started.elapsed()
    );
    let count_spec = COUNT_SPEC.replace("TOPIC", "clicks");
    let window_spec = WINDOW_SPEC.replace("TOPIC", "clicks");
    let windows = {
        let first = t0.div_euclid(WINDOW_MS);
        let last = (t0 + records as i64 - 1).div_euclid(WINDOW_MS);
        // Each page has a record in every minute (the pages cycle every PAGES records, < 1 minute).
        (last - first + 1) as u64 * PAGES.min(records)
    };
    let count_sql = count_sql();
    let window_sql = format!(
        "SELECT page, ts // {WINDOW_MS} AS w, sum(\"user\") FROM read_ndjson('{{file}}', {COLUMNS}) GROUP BY page, w"
    );
    let cfg = ViewsConfig::default();
    let mut raw = Vec::new();
    // [one worker, all]
    let (mut count, mut window) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()]);
    let (mut duck_count, mut duck_window) = (Vec::new(), Vec::new());
    let (mut count_ratio, mut window_ratio) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()]);
    let mut missing = None;
    let pages = PAGES.min(records);
    for run in 0..runs {
        raw.push(raw_read(&parts, &cfg, records));
        for (i, w) in [1, all].into_iter().enumerate() {
            count[i].push(build(&store, w, &count_spec, &format!("count{run}w{w}"), records, Some(pages as usize)));
        }
        match duckdb(&ndjson, &count_sql, records, pages) {
            Ok(r) => {
                duck_count.push(r);
                for i in 0..2 {
                    count_ratio[i].push(count[i][run] / r);
                }
            }
            Err(e) => missing = Some(e),
        }
        for (i, w) in [1, all].into_iter().enumerate() {
            window[i].push(build(&store, w, &window_spec, &format!("window{run}w{w}"), records, None));
        }
        match duckdb(&ndjson, &window_sql, records, windows) {
            Ok(r) => {
                duck_window.push(r);
                for i in 0..2 {
                    window_ratio[i].push(window[i][run] / r);
                }
            }
            Err(e) => missing = Some(e),
        }
        let nan = f64::NAN;
        println!(
            "run {}: raw {:.0}, count view {:.0} / {:.0} ({all} workers), duckdb count {:.0}, \
             window view {:.0} / {:.0} ({all} workers), duckdb window {:.0} records/s",
            run + 1,
            raw[run],
            count[0][run],
            count[1][run],
            duck_count.get(run).copied().unwrap_or(nan),
            window[0][run],
            window[1][run],
            duck_window.get(run).copied().unwrap_or(nan)
        );
    }
    println!("raw read of the log:      {:>6.2} M records/s (median)", m(&raw));
    for (i, w) in [1, all].into_iter().enumerate() {
        println!(
            "count-per-page view,  {w:>2} workers: {:>6.2} M records/s = {:.2} of raw",
            m(&count[i]),
            m(&count[i]) / m(&raw)
        );
        println!(
            "tumbling-window view, {w:>2} workers: {:>6.2} M records/s = {:.2} of raw",
            m(&window[i]),
            m(&window[i]) / m(&raw)
        );
    }
    if let Some(why) = &missing {
        println!("DuckDB baseline not measured (pip install duckdb): {why}");
    }
    for (i, w) in [1, all].into_iter().enumerate() {
        if !count_ratio[i].is_empty() {
            println!(
                "DuckDB GROUP BY page:     {:>6.2} M records/s; count view ({w} workers) / DuckDB = {:.2} (median of runs; {})",
                m(&duck_count),
                median(count_ratio[i].clone()),
                span(&count_ratio[i])
            );
        }
        if !window_ratio[i].is_empty() {
            println!(
                "DuckDB GROUP BY page, w:  {:>6.2} M records/s; window view ({w} workers) / DuckDB = {:.2} (median of runs; {})",
                m(&duck_window),
                median(window_ratio[i].clone()),
                span(&window_ratio[i])
            );
        }
    }
    drop(parts);
    store.delete_topic("clicks").expect("delete topic");
    std::fs::remove_file(&ndjson).expect("remove ndjson");
    for keys in key_cases {
        key_case(&store, dir.path(), records.max(keys), keys, all);
    }
}

/// The count view over `records` records of `keys` distinct pages, with 1 and `all` workers,
/// beside the raw read and DuckDB over the same records (one run each).
fn key_case(store: &Store, dir: &Path, records: u64, keys: u64, all: usize) {
    let topic = format!("keys{keys}");
    let ndjson = dir.join(format!("{topic}.ndjson"));
    let parts = write_records(store, &topic, &ndjson, records, keys, first_time(records));
    let spec = COUNT_SPEC.replace("TOPIC", &topic);
    let raw = raw_read(&parts, &ViewsConfig::default(), records);
    let one = build(store, 1, &spec, &format!("{topic}w1"), records, Some(keys as usize));
    let many = build(store, all, &spec, &format!("{topic}w{all}"), records, Some(keys as usize));
    let duck = duckdb(&ndjson, &count_sql(), records, keys);
    let vs = |r: f64| duck.as_ref().map_or("-".to_string(), |d| format!("{:.2}", r / d));
    println!(
        "keys {keys:>9}, {records} records: raw {:.2} M/s; count view 1 worker {:.2} M/s ({} of DuckDB), \
         {all} workers {:.2} M/s ({} of DuckDB); DuckDB {}",
        raw / 1e6,
        one / 1e6,
        vs(one),
        many / 1e6,
        vs(many),
        duck.as_ref().map_or_else(|e| format!("not measured: {e}"), |d| format!("{:.2} M/s", d / 1e6)),
    );
    drop(parts);
    store.delete_topic(&topic).expect("delete topic");
    std::fs::remove_file(&ndjson).expect("remove ndjson");
}
