//! Crash loop: a real `kappalog serve` is killed with `kill -9` at random moments, [`ROUNDS`]
//! times, while producers produce over HTTP, a consumer group reads and commits over HTTP, and two
//! declarative views run (a count per key over a 3-partition topic; a tumbling window with late
//! records and eviction over a 1-partition topic). After every restart:
//! - every acknowledged record is at its acknowledged partition and offset, and no record is there
//!   twice; every record the consumer was served is still at the place it was served from;
//! - the group's committed offsets are at least every commit that got a 2xx, and never go back;
//!   the consumer resumes exactly at them;
//! - once the views have read every partition to its end, their keys, values, watermark and
//!   counters equal a recomputation from the whole log (exactly once across crashes).
//!
//! The kill moment is drawn from the seed (after a random number of acknowledged produce
//! requests, plus a random delay); some rounds ask for a view rebuild (so kills land in replays
//! and take-overs) and send large produce requests (so kills may tear a write); some rounds end
//! with SIGTERM instead, and some restarts are killed again while starting (a crash during
//! recovery). No check depends on timing. The seed is printed; `SEED=<n>` replays its choices
//! (not the thread interleaving); `CRASH_ROUNDS=<n>` runs a longer loop.

mod broker_common;
mod broker_views_common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use broker_common::{Broker, Http, JSON_V2};
use broker_views_common::{wait_for, VIEW_WAIT};
use kappalog::{Store, StoreConfig};
use serde_json::{json, Value};

/// Kill, restart and check this many times (`CRASH_ROUNDS` overrides).
const ROUNDS: usize = 20;
const PRODUCERS: u64 = 3;
/// The keyed topic the count view and the consumer group read.
const EVENTS: &str = "events";
const EVENTS_PARTITIONS: u32 = 3;
/// Small segments, so that kills also land around segment rolls.
const EVENTS_SEGMENT_BYTES: u64 = 16 * 1024;
/// The topic of the windowed view: one partition, so that log order (and so lateness) is defined.
const CLICKS: &str = "clicks";
const GROUP: &str = "crash-readers";
/// Distinct keys (`k0`…).
const KEYS: u64 = 7;
/// Records per produce request: 1..=this…
const RECORDS_PER_REQUEST_MAX: u64 = 8;
/// … except one request in this many, which is large (a write over many pages, which a kill
/// may tear): this many records …
const LARGE_REQUEST_ONE_IN: u64 = 12;
const LARGE_REQUEST_RECORDS: u64 = 120;
/// … each padded with this many bytes.
const LARGE_REQUEST_PAD_BYTES: usize = 400;
/// The kill comes after 1..=this acknowledged produce requests of the round…
const ACKS_BEFORE_KILL_MAX: u64 = 60;
/// … and then 0..this milliseconds more (only the moment depends on it, never a check).
const KILL_DELAY_MS_MAX: u64 = 30;
/// In one round in this many, a rebuild of one of the views is asked for 0..[`REBUILD_DELAY_MS_MAX`]
/// ms into the round (the kill may land while it replays or while it takes over).
const REBUILD_ONE_IN: u64 = 3;
const REBUILD_DELAY_MS_MAX: u64 = 60;
/// One round in this many ends with SIGTERM instead (a clean shutdown between crashes).
const TERMINATE_ONE_IN: u64 = 6;
/// One restart in this many is itself killed 0..[`RESTART_KILL_MS_MAX`] ms after it was spawned,
/// whether or not it is listening yet: a crash during recovery.
const RESTART_KILL_ONE_IN: u64 = 4;
const RESTART_KILL_MS_MAX: u64 = 80;
/// How long a round may take to reach its kill point.
const PROGRESS_TIMEOUT: Duration = Duration::from_secs(30);

const COUNT_VIEW: &str = "count_per_key";
const WINDOW_VIEW: &str = "clicks_per_second";
/// Event time of the first click; each record takes the next [`TICK_MS`].
const T0_MS: i64 = 1_700_000_000_000;
const TICK_MS: i64 = 5;
const SIZE_MS: i64 = 1000;
const GRACE_MS: i64 = 1000;
const RETENTION_MS: i64 = 8000;
/// One click in this many is this much older than its tick: often late.
const LATE_ONE_IN: u64 = 15;
const LATE_BY_MS: i64 = 2500;

fn count_spec() -> Value {
    json!({"name": COUNT_VIEW, "source": {"topics": [EVENTS]}, "key": "/k", "aggregates": {"n": {"op": "count"}}})
}

fn window_spec() -> Value {
    json!({"name": WINDOW_VIEW, "source": {"topics": [CLICKS]}, "key": "/k",
           "window": {"type": "tumbling", "size_ms": SIZE_MS, "grace_ms": GRACE_MS, "time": "/ts",
                      "retention_ms": RETENTION_MS},
           "aggregates": {"n": {"op": "count"}}})
}

/// SplitMix64: small, seedable, good enough to draw test choices.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A record whose produce got a 200, where the broker said it put it.
#[derive(Debug, Clone)]
struct Acked {
    topic: &'static str,
    partition: u32,
    offset: u64,
    id: String,
}

/// A record the consumer was served.
#[derive(Debug, Clone)]
struct Served {
    partition: u32,
    offset: u64,
    id: String,
}

/// What the clients of one round saw.
#[derive(Default)]
struct RoundLog {
    acked: Vec<Acked>,
    served: Vec<Served>,
    /// partition → the highest offset whose commit got a 2xx (the next offset to read).
    committed_acked: BTreeMap<u32, u64>,
}

/// A client failure that is not the broker dying (which shows as a transport error).
type ClientResult = Result<(), String>;

/// What the client threads of one round share.
#[derive(Clone)]
struct Round {
    url: String,
    round: usize,
    log: Arc<Mutex<RoundLog>>,
    /// Acknowledged produce requests.
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    /// The next event-time tick (shared by all rounds).
    clock: Arc<AtomicU64>,
}

fn producer(r: Round, id: u64, mut rng: Rng) -> ClientResult {
    let Round { url, round, log, requests, stop, clock } = r;
    let http = Http::new(&url);
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let topic = if rng.below(3) == 0 { CLICKS } else { EVENTS };
        let large = rng.below(LARGE_REQUEST_ONE_IN) == 0;
        let n = if large { LARGE_REQUEST_RECORDS } else { 1 + rng.below(RECORDS_PER_REQUEST_MAX) };
        let pad = if large { "x".repeat(LARGE_REQUEST_PAD_BYTES) } else { String::new() };
        let mut ids = Vec::new();
        let mut records = Vec::new();
        for _ in 0..n {
            let rid = format!("r{round}-p{id}-{seq}");
            seq += 1;
            let k = format!("k{}", rng.below(KEYS));
            let tick = clock.fetch_add(1, Ordering::Relaxed) as i64;
            let late = if rng.below(LATE_ONE_IN) == 0 { LATE_BY_MS } else { 0 };
            let ts = T0_MS + tick * TICK_MS - late;
            records.push(json!({"key": k, "value": {"id": rid, "k": k, "ts": ts, "pad": pad}}));
            ids.push(rid);
        }
        let resp = http
            .client
            .post(format!("{url}/topics/{topic}"))
            .header("Content-Type", JSON_V2)
            .body(json!({ "records": records }).to_string())
            .send();
        // A transport error is the kill: the request is not acknowledged.
        let Ok(resp) = resp else { return Ok(()) };
        let status = resp.status().as_u16();
        let Ok(body) = resp.json::<Value>() else { return Ok(()) };
        if status != 200 {
            return Err(format!("producer {id}: produce to {topic} got {status}: {body}"));
        }
        let mut log = log.lock().unwrap();
        for (i, rid) in ids.into_iter().enumerate() {
            let o = &body["offsets"][i];
            let (Some(partition), Some(offset)) = (o["partition"].as_u64(), o["offset"].as_u64()) else {
                return Err(format!("producer {id}: offsets[{i}] malformed in {body}"));
            };
            log.acked.push(Acked { topic, partition: partition as u32, offset, id: rid });
        }
        drop(log);
        requests.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// One consumer instance of [`GROUP`]: reads `events`, commits the last offset read of each
/// partition explicitly after each fetch.
fn consumer(r: Round) -> ClientResult {
    let Round { url, round, log, stop, .. } = r;
    let http = Http::new(&url);
    let send = |method: reqwest::Method, path: &str, body: Option<Value>| {
        let mut req = http.client.request(method, format!("{url}{path}"));
        if let Some(b) = body {
            req = req.header("Content-Type", "application/json").body(b.to_string());
        }
        let resp = req.header("Accept", JSON_V2).send().ok()?;
        let status = resp.status().as_u16();
        let body = resp.bytes().ok()?;
        Some((status, serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null)))
    };
    let name = format!("c{round}");
    let create =
        json!({"name": name, "format": "json", "auto.offset.reset": "earliest", "auto.commit.enable": "false"});
    let Some((s, b)) = send(reqwest::Method::POST, &format!("/consumers/{GROUP}"), Some(create)) else { return Ok(()) };
    if s != 200 {
        return Err(format!("create consumer: {s} {b}"));
    }
    let base = format!("/consumers/{GROUP}/instances/{name}");
    let Some((s, b)) = send(reqwest::Method::POST, &format!("{base}/subscription"), Some(json!({"topics": [EVENTS]})))
    else {
        return Ok(());
    };
    if s != 204 {
        return Err(format!("subscribe: {s} {b}"));
    }
    while !stop.load(Ordering::Relaxed) {
        let Some((s, recs)) = send(reqwest::Method::GET, &format!("{base}/records?timeout=100"), None) else {
            return Ok(());
        };
        let Some(recs) = recs.as_array().filter(|_| s == 200) else {
            return Err(format!("fetch: {s} {recs}"));
        };
        let mut last: BTreeMap<u32, u64> = BTreeMap::new();
        {
            let mut log = log.lock().unwrap();
            for r in recs {
                let (partition, offset) = (r["partition"].as_u64().unwrap() as u32, r["offset"].as_u64().unwrap());
                let id = r["value"]["id"].as_str().ok_or_else(|| format!("served record without id: {r}"))?;
                log.served.push(Served { partition, offset, id: id.to_string() });
                last.insert(partition, offset);
            }
        }
        if last.is_empty() {
            continue;
        }
        let offsets: Vec<Value> =
            last.iter().map(|(p, o)| json!({"topic": EVENTS, "partition": p, "offset": o})).collect();
        let Some((s, b)) = send(reqwest::Method::POST, &format!("{base}/offsets"), Some(json!({ "offsets": offsets })))
        else {
            return Ok(());
        };
        if s != 204 {
            return Err(format!("commit {offsets:?}: {s} {b}"));
        }
        let mut log = log.lock().unwrap();
        for (p, o) in last {
            let c = log.committed_acked.entry(p).or_default();
            *c = (*c).max(o + 1);
        }
    }
    Ok(())
}

/// Asks for a rebuild of `view` after `delay` (unless the round ends first).
fn rebuilder(r: Round, view: &'static str, delay: Duration) -> ClientResult {
    let deadline = Instant::now() + delay;
    while Instant::now() < deadline {
        if r.stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let http = Http::new(&r.url);
    let Ok(resp) = http.client.post(format!("{}/views/{view}/rebuild", r.url)).send() else { return Ok(()) };
    let status = resp.status().as_u16();
    let Ok(body) = resp.text() else { return Ok(()) };
    if status != 202 {
        return Err(format!("rebuild {view}: {status} {body}"));
    }
    Ok(())
}

/// Everything the checks remember across rounds.
#[derive(Default)]
struct Model {
    acked: Vec<Acked>,
    /// (partition, offset, id, round) of every record the consumer was served.
    served: Vec<(Served, usize)>,
    /// partition → the highest acknowledged commit so far.
    committed_acked: BTreeMap<u32, u64>,
    /// partition → the committed offset read after the last restart.
    committed_seen: BTreeMap<u32, u64>,
}

/// (topic, partition) → (offset, value) of every record, in offset order.
type Logs = BTreeMap<(String, u32), Vec<(u64, Vec<u8>)>>;

fn read_logs_http(http: &Http) -> Logs {
    let mut logs = Logs::new();
    for p in 0..EVENTS_PARTITIONS {
        logs.insert((EVENTS.into(), p), http.read_all(EVENTS, p));
    }
    logs.insert((CLICKS.into(), 0), http.read_all(CLICKS, 0));
    logs
}

fn read_logs_library(dir: &Path) -> Logs {
    let store = Store::open(dir, StoreConfig::default()).expect("open the data directory after the last kill");
    let mut logs = Logs::new();
    for (topic, n) in [(EVENTS, EVENTS_PARTITIONS), (CLICKS, 1)] {
        for p in 0..n {
            let part = store.topic(topic).unwrap().partition(p).unwrap();
            let out = part
                .cursor_from_start()
                .map(|r| r.map(|r| (r.offset, r.value.expect("no tombstones are produced").to_vec())))
                .collect::<kappalog::Result<_>>()
                .unwrap();
            logs.insert((topic.into(), p), out);
        }
    }
    logs
}

fn id_of(value: &[u8]) -> String {
    let v: Value = serde_json::from_slice(value).expect("a JSON value");
    v["id"].as_str().expect("an id").to_string()
}

/// Every acknowledged record at its place, no id twice, every served record where it was served.
fn check_logs(what: &str, logs: &Logs, model: &Model) {
    let mut at: HashMap<(&str, u32, u64), String> = HashMap::new();
    let mut seen: HashMap<String, (&str, u32, u64)> = HashMap::new();
    for ((topic, p), recs) in logs {
        let mut prev = None;
        for (o, v) in recs {
            assert!(prev.is_none_or(|x| x + 1 == *o), "{what}: {topic}/{p}: offset {o} after {prev:?}");
            prev = Some(*o);
            let id = id_of(v);
            if let Some(before) = seen.insert(id.clone(), (topic, *p, *o)) {
                panic!("{what}: record {id} is twice in the log: at {before:?} and at {topic}/{p}/{o}");
            }
            at.insert((topic, *p, *o), id);
        }
    }
    for a in &model.acked {
        let found = at.get(&(a.topic, a.partition, a.offset));
        assert_eq!(
            found,
            Some(&a.id),
            "{what}: acknowledged {} at {}/{}/{} is missing or different",
            a.id,
            a.topic,
            a.partition,
            a.offset
        );
    }
    for (s, round) in &model.served {
        let found = at.get(&(EVENTS, s.partition, s.offset));
        assert_eq!(
            found,
            Some(&s.id),
            "{what}: {} served in round {round} from {EVENTS}/{}/{} is no longer there",
            s.id,
            s.partition,
            s.offset
        );
    }
}

/// The group's committed offsets now: at least every acknowledged commit, never below the last
/// restart's, never above the log end. Remembers them.
fn check_committed(what: &str, http: &Http, logs: &Logs, model: &mut Model) {
    let (s, g) = http.get(&format!("/groups/{GROUP}"));
    let mut now: BTreeMap<u32, u64> = BTreeMap::new();
    match s {
        200 => {
            for p in g["partitions"].as_array().unwrap() {
                if let (Some(part), Some(c)) = (p["partition"].as_u64(), p["committed"].as_u64()) {
                    assert_eq!(p["topic"], EVENTS, "{what}: {g}");
                    now.insert(part as u32, c);
                }
            }
        }
        404 => {}
        _ => panic!("{what}: describe the group: {s} {g}"),
    }
    for (p, acked) in &model.committed_acked {
        let c = now.get(p).copied();
        assert!(c >= Some(*acked), "{what}: partition {p}: committed {c:?} but a commit of {acked} was acknowledged");
    }
    for (p, before) in &model.committed_seen {
        let c = now.get(p).copied();
        assert!(c >= Some(*before), "{what}: partition {p}: committed {c:?} went back from {before}");
    }
    for (p, c) in &now {
        let end = logs[&(EVENTS.to_string(), *p)].last().map_or(0, |(o, _)| o + 1);
        assert!(*c <= end, "{what}: partition {p}: committed {c} is past the log end {end}");
    }
    model.committed_seen = now;
}

/// Waits until the view has read every source partition to its end (`ends`), then returns its
/// status. A view that read past the end (state from records the log lost) fails at once.
fn wait_view_at(http: &Http, what: &str, view: &str, ends: &BTreeMap<(String, u32), u64>) -> Value {
    wait_for(&format!("{what}: view {view} reads to the log end"), VIEW_WAIT, || {
        let (s, st) = http.get(&format!("/views/{view}"));
        if s != 200 || st["state"] != "running" {
            return Err(format!("{s} {st}"));
        }
        let lag = st["lag"].as_array().unwrap();
        let mut done = !lag.is_empty();
        for l in lag {
            let key = (l["topic"].as_str().unwrap().to_string(), l["partition"].as_u64().unwrap() as u32);
            let (next, hw) = (l["next_offset"].as_u64().unwrap(), l["high_watermark"].as_u64().unwrap());
            assert_eq!(hw, ends[&key], "{what}: view {view} sees a high watermark other than the log's: {st}");
            assert!(next <= hw, "{what}: view {view} is past the log end of {key:?}: {st}");
            done &= next == hw;
        }
        if done {
            Ok(st)
        } else {
            Err(st.to_string())
        }
    })
}

/// Every key of a view: `value` or `windows`.
fn scan(http: &Http, view: &str) -> BTreeMap<String, Value> {
    let (s, keys) = http.get(&format!("/views/{view}/keys?limit=10000"));
    assert_eq!(s, 200, "scan {view}: {keys}");
    let keys = keys.as_array().unwrap();
    assert!(keys.len() < 10_000, "the scan may be cut");
    keys.iter()
        .map(|k| {
            let v = if k["windows"].is_null() { k["value"].clone() } else { k["windows"].clone() };
            (k["key"].as_str().unwrap().to_string(), v)
        })
        .collect()
}

/// Checks both views; returns (late, evicted) of the windowed one, to show what was exercised.
fn check_views(what: &str, http: &Http, logs: &Logs) -> (u64, u64) {
    let ends: BTreeMap<(String, u32), u64> =
        logs.iter().map(|(k, recs)| (k.clone(), recs.last().map_or(0, |(o, _)| o + 1))).collect();

    // Count per key over every partition of `events`.
    let st = wait_view_at(http, what, COUNT_VIEW, &ends);
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut total = 0u64;
    for ((topic, _), recs) in logs {
        if topic != EVENTS {
            continue;
        }
        for (_, v) in recs {
            let v: Value = serde_json::from_slice(v).unwrap();
            *counts.entry(v["k"].as_str().unwrap().to_string()).or_default() += 1;
            total += 1;
        }
    }
    let expected: BTreeMap<String, Value> = counts.iter().map(|(k, n)| (k.clone(), json!({ "n": n }))).collect();
    assert_eq!(scan(http, COUNT_VIEW), expected, "{what}: {COUNT_VIEW} differs from a count over the log");
    assert_eq!(st["counters"]["records_read"].as_u64(), Some(total), "{what}: {COUNT_VIEW} read count: {st}");

    // Tumbling windows over `clicks`, in log order: the watermark is the highest event time so far;
    // a record for a closed window is late; closed windows past their retention are evicted.
    let st = wait_view_at(http, what, WINDOW_VIEW, &ends);
    let mut watermark: Option<i64> = None;
    let (mut late, mut read) = (0u64, 0u64);
    let mut windows: BTreeMap<(String, i64), u64> = BTreeMap::new();
    for (_, v) in &logs[&(CLICKS.to_string(), 0)] {
        let v: Value = serde_json::from_slice(v).unwrap();
        read += 1;
        let ts = v["ts"].as_i64().unwrap();
        let w = watermark.map_or(ts, |w| w.max(ts));
        watermark = Some(w);
        let start = ts.div_euclid(SIZE_MS) * SIZE_MS;
        if start + SIZE_MS + GRACE_MS <= w {
            late += 1;
            continue;
        }
        *windows.entry((v["k"].as_str().unwrap().to_string(), start)).or_default() += 1;
    }
    let mut expected: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut evicted = 0;
    for ((k, start), n) in &windows {
        if watermark.is_some_and(|w| w >= start + SIZE_MS + RETENTION_MS) {
            evicted += 1;
            continue;
        }
        expected.entry(k.clone()).or_default().push(json!({"start": start, "end": start + SIZE_MS, "value": {"n": n}}));
    }
    let expected: BTreeMap<String, Value> = expected.into_iter().map(|(k, w)| (k, Value::Array(w))).collect();
    assert_eq!(scan(http, WINDOW_VIEW), expected, "{what}: {WINDOW_VIEW} differs from a recomputation over the log");
    assert_eq!(st["watermark"].as_i64(), watermark, "{what}: {WINDOW_VIEW} watermark: {st}");
    assert_eq!(st["late_records"].as_u64(), Some(late), "{what}: {WINDOW_VIEW} late records: {st}");
    assert_eq!(st["counters"]["records_read"].as_u64(), Some(read), "{what}: {WINDOW_VIEW} read count: {st}");
    (late, evicted)
}

/// The consumer of `round` read each partition from the committed offset seen at the round's start,
/// without gaps or repeats.
fn check_served_contiguous(round: usize, served: &[Served], start: &BTreeMap<u32, u64>) {
    let mut next: BTreeMap<u32, u64> = BTreeMap::new();
    for s in served {
        let expect = next.get(&s.partition).copied().unwrap_or_else(|| start.get(&s.partition).copied().unwrap_or(0));
        assert_eq!(
            s.offset, expect,
            "round {round}: partition {} served offset {} where {expect} was next (committed at start: {start:?})",
            s.partition, s.offset
        );
        next.insert(s.partition, s.offset + 1);
    }
}

/// Spawns a broker on `dir` and kills it `after` the spawn, listening or not (recovery, view
/// resumption and the offsets replay may be under way). It must not have exited on its own.
fn kill_while_starting(dir: &Path, after: Duration) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kappalog"))
        .arg("serve")
        .env("KAPPALOG_KAFKA_LISTEN", "off")
        .arg("--data-dir")
        .arg(dir)
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn the broker");
    std::thread::sleep(after);
    if let Some(status) = child.try_wait().expect("try_wait") {
        panic!("the broker exited by itself {after:?} into a restart: {status}");
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
}

#[test]
fn crash_loop_keeps_acked_records_commits_and_views() {
    let seed = std::env::var("SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    let rounds = std::env::var("CRASH_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(ROUNDS);
    eprintln!("fault_crash_loop: SEED={seed} CRASH_ROUNDS={rounds} (set both to replay the choices)");
    let mut rng = Rng(seed);
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(AtomicU64::new(0));
    let mut model = Model::default();
    let mut windows_exercised = (0, 0);

    let mut broker = Broker::start(dir.path(), &[]);
    let http = broker.client();
    http.create_topic(EVENTS, EVENTS_PARTITIONS, json!({ "segment.bytes": EVENTS_SEGMENT_BYTES }));
    http.create_topic(CLICKS, 1, json!({}));
    for spec in [count_spec(), window_spec()] {
        let (s, b) = http.post("/views", &spec);
        assert_eq!(s, 201, "create view: {b}");
    }

    for round in 0..rounds {
        let shared = Round {
            url: broker.url.clone(),
            round,
            log: Arc::default(),
            requests: Arc::default(),
            stop: Arc::default(),
            clock: clock.clone(),
        };
        let mut threads = Vec::new();
        for id in 0..PRODUCERS {
            let (r, rng) = (shared.clone(), Rng(rng.next()));
            threads.push(std::thread::spawn(move || producer(r, id, rng)));
        }
        let r = shared.clone();
        threads.push(std::thread::spawn(move || consumer(r)));
        // Producers and the consumer run until the kill; the rebuilder ends on its own.
        let clients = threads.len();
        if rng.below(REBUILD_ONE_IN) == 0 {
            let view = if rng.below(2) == 0 { COUNT_VIEW } else { WINDOW_VIEW };
            let (r, delay) = (shared.clone(), Duration::from_millis(rng.below(REBUILD_DELAY_MS_MAX)));
            threads.push(std::thread::spawn(move || rebuilder(r, view, delay)));
        }
        let Round { log, requests, stop, .. } = shared;

        let acks_before_kill = 1 + rng.below(ACKS_BEFORE_KILL_MAX) as usize;
        let delay = Duration::from_millis(rng.below(KILL_DELAY_MS_MAX));
        let deadline = Instant::now() + PROGRESS_TIMEOUT;
        while requests.load(Ordering::Relaxed) < acks_before_kill {
            assert!(Instant::now() < deadline, "round {round}: producers made no progress");
            if let Some(i) = threads[..clients].iter().position(|t| t.is_finished()) {
                let result = threads.swap_remove(i).join().expect("client thread");
                panic!("round {round}: a client stopped before the kill: {result:?}");
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(delay);
        let how = if rng.below(TERMINATE_ONE_IN) == 0 {
            let status = broker.terminate();
            assert!(status.success(), "round {round}: the broker exited with {status} after SIGTERM");
            "SIGTERM"
        } else {
            broker.kill9();
            "kill -9"
        };
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            if let Err(e) = t.join().expect("client thread") {
                panic!("round {round}: {e}");
            }
        }
        let log = std::mem::take(&mut *log.lock().unwrap());
        check_served_contiguous(round, &log.served, &model.committed_seen);
        model.acked.extend(log.acked);
        model.served.extend(log.served.into_iter().map(|s| (s, round)));
        for (p, c) in log.committed_acked {
            let m = model.committed_acked.entry(p).or_default();
            *m = (*m).max(c);
        }

        let mut what = format!("after {how} {} of {rounds}", round + 1);
        if rng.below(RESTART_KILL_ONE_IN) == 0 {
            let after = Duration::from_millis(rng.below(RESTART_KILL_MS_MAX));
            kill_while_starting(dir.path(), after);
            what += &format!(" and a kill -9 {after:?} into the restart");
        }
        what += &format!(" (SEED={seed})");
        broker = Broker::start(dir.path(), &[]);
        let http = broker.client();
        let logs = read_logs_http(&http);
        check_logs(&what, &logs, &model);
        check_committed(&what, &http, &logs, &mut model);
        windows_exercised = check_views(&what, &http, &logs);
    }
    broker.kill9();
    let logs = read_logs_library(dir.path());
    check_logs(&format!("read through the library (SEED={seed})"), &logs, &model);
    let served: usize = model.served.len();
    let records: usize = logs.values().map(Vec::len).sum();
    eprintln!(
        "fault_crash_loop: {rounds} rounds, {records} records ({} acknowledged), {served} served, \
         {} late and {} evicted windows, {:?}",
        model.acked.len(),
        windows_exercised.0,
        windows_exercised.1,
        started.elapsed()
    );
    assert!(model.acked.len() >= rounds, "every round acknowledged something");
    assert!(served > 0, "the consumer read something");
}
