//! Rebuild rate of a count-per-key view over small JSON records, beside the raw rate of reading
//! the same records without processing, and the build rate of the same count after a temporal
//! join with a table of the pages (count per category), in the same run.
//!
//! ```sh
//! cargo bench --bench views                              # 10 million records
//! KAPPALOG_BENCH_VIEWS_RECORDS=200000 cargo bench --bench views   # quick
//! ```

use std::time::{Duration, Instant};

use kappalog::{stream::RebuildFrom, Durability, NewRecord, Store, StoreConfig, TopicConfig, Views, ViewsConfig};

const RECORDS_DEFAULT: u64 = 10_000_000;
const KEYS: u64 = 10_000;
const APPEND_BATCH: u64 = 20_000;
const SPEC: &str = r#"{"name": "count_per_page", "source": {"topics": ["clicks"]}, "key": "/page",
    "aggregates": {"n": {"op": "count"}}}"#;
const JOIN_SPEC: &str = r#"{"name": "count_per_category", "source": {"topics": ["clicks"]},
    "join": {"table": "pages", "on": "/page", "as": "p"}, "key": "/p/category",
    "aggregates": {"n": {"op": "count"}}}"#;
const CATEGORIES: u64 = 50;

fn main() {
    let records: u64 =
        std::env::var("KAPPALOG_BENCH_VIEWS_RECORDS").ok().and_then(|s| s.parse().ok()).unwrap_or(RECORDS_DEFAULT);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path(), StoreConfig::default()).expect("open");
    let config = TopicConfig::default().durability(Durability::None);
    let topic = store.create_topic("clicks", 1, config.clone()).expect("topic");
    // The table of pages, older than every click.
    let pages = store.create_topic("pages", 1, config).expect("topic");
    let rows = (0..KEYS)
        .map(|k| {
            NewRecord::keyed(format!(r#""/p{k}""#), format!(r#"{{"category":"c{}"}}"#, k % CATEGORIES))
                .with_timestamp(0)
        })
        .collect::<Vec<_>>();
    pages.append(&rows).expect("append");
    let started = Instant::now();
    let mut i = 0u64;
    while i < records {
        let n = APPEND_BATCH.min(records - i);
        let batch = (i..i + n)
            .map(|j| NewRecord::new(format!(r#"{{"page":"/p{}","user":{}}}"#, j * 7919 % KEYS, j % 1000)))
            .collect::<Vec<_>>();
        topic.append(&batch).expect("append");
        i += n;
    }
    let p = topic.partition(0).expect("partition");
    p.flush().expect("flush");
    let bytes = p.stats().size_bytes;
    println!("views bench: {records} records, {bytes} bytes, written in {:.1?}", started.elapsed());

    // Baseline: read every record (and touch its value) with the runner's read sizes.
    let cfg = ViewsConfig::default();
    let started = Instant::now();
    let mut touched = 0u64;
    for r in p.cursor(0).fetch_limits(cfg.read_bytes_max, cfg.read_records_max) {
        touched += r.expect("read").value.as_ref().map_or(0, |v| v.len() as u64);
    }
    let raw = started.elapsed();
    let raw_rate = records as f64 / raw.as_secs_f64();
    println!("raw read:     {:>12.0} records/s ({raw:.2?}, {touched} value bytes)", raw_rate);

    let views = Views::open(&store, cfg).expect("views");
    let started = Instant::now();
    let view = views.create_json(SPEC.as_bytes()).expect("create");
    assert!(view.wait_caught_up(Duration::from_secs(3600)), "caught up");
    let build = started.elapsed();
    let status = view.status();
    assert_eq!(status.counters.records_applied, records, "every record counted");
    assert_eq!(status.keys as u64, KEYS.min(records));
    let build_rate = records as f64 / build.as_secs_f64();
    println!("view build:   {:>12.0} records/s ({build:.2?}) = {:.2} of raw", build_rate, build_rate / raw_rate);

    // A rebuild: version 2 replays beside version 1 and takes over.
    let started = Instant::now();
    views.rebuild("count_per_page", RebuildFrom::Beginning).expect("rebuild");
    assert!(view.wait_caught_up(Duration::from_secs(3600)), "rebuilt");
    let rebuild = started.elapsed();
    assert_eq!(view.status().version, 2);
    let rebuild_rate = records as f64 / rebuild.as_secs_f64();
    println!("view rebuild: {:>12.0} records/s ({rebuild:.2?}) = {:.2} of raw", rebuild_rate, rebuild_rate / raw_rate);

    // The same count after a temporal join with the pages table (a new view, in the same run).
    let started = Instant::now();
    let joined = views.create_json(JOIN_SPEC.as_bytes()).expect("create");
    assert!(joined.wait_caught_up(Duration::from_secs(3600)), "caught up");
    let join = started.elapsed();
    let status = joined.status();
    assert_eq!(status.counters.records_applied, records, "every click joined");
    assert_eq!(status.keys as u64, CATEGORIES.min(records));
    let join_rate = records as f64 / join.as_secs_f64();
    println!("join build:   {:>12.0} records/s ({join:.2?}) = {:.2} of raw", join_rate, join_rate / raw_rate);
}
