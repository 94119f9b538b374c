//! Soak: a bounded mixed load runs for a fixed time in this process, and invariants are checked
//! throughout. Producers append to a delete-policy topic with small segments and `retention_bytes`
//! (one producer per partition, so every record's content is a function of the seed, the partition
//! and its offset), a compacted topic (latest value per key kept by its producer), and a view's
//! source topic; two consumer groups (one stable, one whose members leave and join) poll and
//! commit; the background cleaner runs retention and compaction, and a maintenance thread calls
//! them too; the view is rebuilt and redefined again and again.
//!
//! Checked: per-partition offsets strictly increase for every reader and every record read is
//! what was written at its offset; committed offsets never go backwards; the compacted topic holds
//! self-consistent records in key order of writing and, after a final compaction, exactly the latest
//! value of every key; the view, once caught up, equals a recomputation from its topic; the
//! process's RSS and open file descriptors after warm-up stay within a bound.
//!
//! `KAPPALOG_SOAK_SECONDS` sets the duration (default [`SOAK_SECONDS_DEFAULT`]); `SEED` replays the
//! data (the seed is printed).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kappalog::{
    groups::{AutoOffsetReset, GroupCoordinator, GroupError, TopicPartition},
    stream::RebuildFrom,
    CleanupPolicy, Consumer, ConsumerConfig, Durability, NewRecord, Store, StoreConfig, Topic, TopicConfig, ViewSpec,
    Views, ViewsConfig,
};
use serde_json::{json, Value};

const SOAK_SECONDS_DEFAULT: u64 = 45;
/// The first third of the run is warm-up: the RSS and fd baseline is its maximum.
const WARMUP_FRACTION: f64 = 1.0 / 3.0;
/// After warm-up, RSS may exceed the baseline by at most this.
const RSS_GROWTH_MAX_BYTES: u64 = 64 * 1024 * 1024;
/// After warm-up, open fds may exceed the baseline by at most this.
const FD_GROWTH_MAX: u64 = 64;
const SAMPLE_INTERVAL: Duration = Duration::from_millis(100);

const EVENTS: &str = "events";
const EVENT_PARTITIONS: u32 = 3;
const EVENT_SEGMENT_BYTES: u64 = 16 * 1024;
const EVENT_RETENTION_BYTES: i64 = 128 * 1024;
/// Largest batch a producer appends at once.
const BATCH_RECORDS_MAX: u64 = 32;

const PROFILES: &str = "profiles";
const PROFILE_KEYS: u64 = 300;

const CLICKS: &str = "clicks";
const CLICK_USERS: u64 = 97;
const VIEW: &str = "clicks_per_user";
const VIEW_COUNT: &str = r#"{"name": "clicks_per_user", "source": {"topics": ["clicks"]}, "key": "/user",
    "aggregates": {"n": {"op": "count"}}}"#;
const VIEW_COUNT_SUM: &str = r#"{"name": "clicks_per_user", "source": {"topics": ["clicks"]}, "key": "/user",
    "aggregates": {"n": {"op": "count"}, "total": {"op": "sum", "field": "/ms"}}}"#;
/// How long a view gets to catch up after a rebuild.
const VIEW_WAIT: Duration = Duration::from_secs(120);

/// splitmix64 of a few words: the content generator.
fn mix(words: &[u64]) -> u64 {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for w in words {
        x ^= *w;
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
    }
    x
}

/// The key and value of the event at `offset` of `partition`.
fn event(seed: u64, partition: u32, offset: u64) -> (String, String) {
    let h = mix(&[seed, partition as u64, offset]);
    let key = format!("e{}", h % 64);
    let value = format!("{partition}:{offset}:{h:016x}:{}", "x".repeat((h >> 58) as usize));
    (key, value)
}

/// The value of the `seq`-th write of `key` to the compacted topic.
fn profile_value(seed: u64, key: &str, seq: u64) -> String {
    let h = mix(&[seed, seq, key.len() as u64, key.bytes().fold(0, |a, b| a * 31 + b as u64)]);
    format!("{key}|{seq}|{h:016x}")
}

/// Checks a compacted-topic record against its generator; returns its sequence number.
fn check_profile(seed: u64, key: &[u8], value: Option<&[u8]>, where_: &str) -> Option<u64> {
    let key = std::str::from_utf8(key).unwrap_or_else(|e| panic!("{where_}: key not UTF-8: {e}"));
    let value = value?;
    let text = std::str::from_utf8(value).unwrap_or_else(|e| panic!("{where_}: value not UTF-8: {e}"));
    let seq: u64 = text.split('|').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{where_}: {text}"));
    assert_eq!(text, profile_value(seed, key, seq), "{where_}: a record that was never written");
    Some(seq)
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = mix(&[self.0]);
        self.0 % n
    }
}

/// VmRSS of this process in bytes, and its open file descriptors.
fn rss_and_fds() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status");
    let fds = std::fs::read_dir("/proc/self/fd").expect("read /proc/self/fd").count() as u64;
    (kib * 1024, fds)
}

/// What the threads share.
struct Shared {
    seed: u64,
    stop: AtomicBool,
    store: Store,
    coordinator: GroupCoordinator,
    /// Held for reading by the clicks producer per append, for writing while the view is checked.
    clicks_gate: RwLock<()>,
    /// The compacted topic's model: key → (sequence number, value or tombstone) of its latest write.
    profiles_latest: Mutex<BTreeMap<String, (u64, Option<String>)>>,
    records_checked: AtomicU64,
    commits: AtomicU64,
    commits_fenced: AtomicU64,
    view_checks: AtomicU64,
    compactions: AtomicU64,
    /// Times the lagging group's offsets jumped past records retention deleted.
    lagging_jumps: AtomicU64,
}

impl Shared {
    fn running(&self) -> bool {
        !self.stop.load(Ordering::Acquire)
    }
}

fn events_config() -> TopicConfig {
    TopicConfig::default()
        .segment_bytes(EVENT_SEGMENT_BYTES)
        .retention_bytes(EVENT_RETENTION_BYTES)
        .durability(Durability::Interval { ms: 20 })
}

fn profiles_config() -> TopicConfig {
    TopicConfig::default()
        .segment_bytes(4096)
        .cleanup_policy(CleanupPolicy::Compact)
        .min_cleanable_dirty_ratio(0.2)
        .durability(Durability::Sync)
}

/// Appends batches to one partition of the events topic; it is the partition's only writer, so it
/// knows each record's offset before the append and checks the log assigns exactly that.
fn produce_events(s: &Shared, partition: u32) {
    let p = s.store.topic(EVENTS).unwrap().partition(partition).unwrap();
    let mut rng = Rng(s.seed ^ (partition as u64 + 1));
    while s.running() {
        let n = 1 + rng.below(BATCH_RECORDS_MAX);
        let base = p.high_watermark();
        let batch: Vec<NewRecord> = (base..base + n)
            .map(|o| {
                let (k, v) = event(s.seed, partition, o);
                NewRecord::keyed(k, v)
            })
            .collect();
        let a = p.append(&batch).unwrap();
        assert_eq!((a.base_offset, a.last_offset), (base, base + n - 1), "{EVENTS}-{partition}: offsets assigned");
        if rng.below(8) == 0 {
            // Read back what was just written (the active segment: retention cannot have taken it).
            let back = p.read(base, 1 << 20, n as usize).unwrap();
            check_events(s, partition, &back, &mut None, "read back");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Every record is what the producer wrote at its offset; offsets strictly increase from `last`.
/// Returns how many times the offsets jumped (records skipped: deleted by retention).
fn check_events(s: &Shared, partition: u32, records: &[kappalog::Record], last: &mut Option<u64>, who: &str) -> u64 {
    let mut jumps = 0;
    for r in records {
        if let Some(l) = *last {
            assert!(r.offset > l, "{who}: {EVENTS}-{partition}: offset {} after {l}", r.offset);
            jumps += u64::from(r.offset > l + 1);
        }
        *last = Some(r.offset);
        let (k, v) = event(s.seed, partition, r.offset);
        assert_eq!(r.key.as_deref(), Some(k.as_bytes()), "{who}: {EVENTS}-{partition}@{}: key", r.offset);
        assert_eq!(r.value.as_deref(), Some(v.as_bytes()), "{who}: {EVENTS}-{partition}@{}: value", r.offset);
    }
    s.records_checked.fetch_add(records.len() as u64, Ordering::Relaxed);
    jumps
}

/// How a group's members consume.
#[derive(Clone, Copy)]
struct Pace {
    /// Two members, one of which leaves and is replaced every few seconds (a rebalance).
    churn: bool,
    records_per_poll: usize,
    pause: Duration,
}

const KEEPING_UP: Pace = Pace { churn: false, records_per_poll: 1000, pause: Duration::from_millis(5) };
const CHURNING: Pace = Pace { churn: true, ..KEEPING_UP };
/// Far slower than the producers: retention deletes records before it reads them.
const LAGGING: Pace = Pace { churn: false, records_per_poll: 50, pause: Duration::from_millis(50) };

/// A member, its assignment after its previous poll, and the last offset it read per partition.
type Member = (Consumer, Vec<TopicPartition>, HashMap<u32, Option<u64>>);

/// Polls and commits as members of `group`; returns how often offsets jumped past deleted records.
fn consume(s: &Shared, group: &str, pace: Pace) -> u64 {
    let churn = pace.churn;
    let mut jumps = 0;
    let config = ConsumerConfig::default().auto_offset_reset(AutoOffsetReset::Earliest);
    let join = || Consumer::subscribe(&s.coordinator, group, vec![EVENTS.into()], config.clone()).unwrap();
    let members = if churn { 2 } else { 1 };
    let mut list: Vec<Member> = (0..members).map(|_| (join(), Vec::new(), HashMap::new())).collect();
    let mut rng = Rng(s.seed ^ group.len() as u64);
    let mut last_churn = Instant::now();
    while s.running() {
        for (i, (c, before, last)) in list.iter_mut().enumerate() {
            let records = match c.poll(pace.records_per_poll) {
                Ok(r) => r,
                Err(e) => panic!("{group}: poll: {e}"),
            };
            let now = c.assignment();
            // A partition this member did not own before the poll restarts from the committed offset.
            last.retain(|p, _| before.iter().any(|tp| tp.partition == *p));
            let mut by_partition: BTreeMap<u32, Vec<kappalog::Record>> = BTreeMap::new();
            for (tp, r) in records {
                assert!(now.contains(&tp), "{group}: {tp} polled by a member that does not own it");
                by_partition.entry(tp.partition).or_default().push(r);
            }
            for (p, recs) in &by_partition {
                jumps += check_events(s, *p, recs, last.entry(*p).or_default(), &format!("{group} member {i}"));
            }
            last.retain(|p, _| now.iter().any(|tp| tp.partition == *p));
            *before = now;
            if !by_partition.is_empty() || rng.below(10) == 0 {
                match c.commit() {
                    Ok(()) => s.commits.fetch_add(1, Ordering::Relaxed),
                    // A rebalance since the poll: the next poll rejoins.
                    Err(
                        GroupError::IllegalGeneration { .. }
                        | GroupError::NotAssigned { .. }
                        | GroupError::UnknownMember { .. },
                    ) => s.commits_fenced.fetch_add(1, Ordering::Relaxed),
                    Err(e) => panic!("{group}: commit: {e}"),
                };
            }
        }
        if churn && last_churn.elapsed() > Duration::from_secs(3) {
            let i = rng.below(list.len() as u64) as usize;
            let (old, _, _) = std::mem::replace(&mut list[i], (join(), Vec::new(), HashMap::new()));
            old.close().unwrap();
            last_churn = Instant::now();
        }
        std::thread::sleep(pace.pause);
    }
    for (c, _, _) in list {
        c.close().unwrap();
    }
    jumps
}

/// Samples the committed offsets of the groups: none ever goes backwards.
fn watch_commits(s: &Shared, groups: &[&str]) {
    let mut seen: BTreeMap<(String, u32), u64> = BTreeMap::new();
    while s.running() {
        for g in groups {
            for p in 0..EVENT_PARTITIONS {
                let Some(c) = s.coordinator.committed(g, &TopicPartition::new(EVENTS, p)) else { continue };
                let prev = seen.insert((g.to_string(), p), c.offset);
                if let Some(prev) = prev {
                    assert!(
                        c.offset >= prev,
                        "group {g}: committed offset of {EVENTS}-{p} went from {prev} to {}",
                        c.offset
                    );
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(seen.len() as u32 >= EVENT_PARTITIONS, "commits were seen: {seen:?}");
}

/// Writes keyed values and tombstones to the compacted topic, keeping the latest per key.
fn produce_profiles(s: &Shared) {
    let topic = s.store.topic(PROFILES).unwrap();
    let mut rng = Rng(s.seed ^ 0x9f0f);
    let mut seq = 0u64;
    while s.running() {
        let n = 1 + rng.below(10);
        let mut batch = Vec::new();
        let mut writes = Vec::new();
        for _ in 0..n {
            seq += 1;
            let key = format!("user-{}", rng.below(PROFILE_KEYS));
            let value = (rng.below(20) != 0).then(|| profile_value(s.seed, &key, seq));
            batch.push(match &value {
                Some(v) => NewRecord::keyed(key.clone(), v.clone()),
                None => NewRecord::tombstone(key.clone()),
            });
            writes.push((key, seq, value));
        }
        topic.append(&batch).unwrap();
        let mut latest = s.profiles_latest.lock().unwrap();
        for (key, seq, value) in writes {
            latest.insert(key, (seq, value));
        }
        drop(latest);
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Reads the compacted topic from its start again and again: offsets increase, every record is
/// one that was written, and a key's writes appear in the order they were made.
fn read_profiles(s: &Shared) {
    let topic = s.store.topic(PROFILES).unwrap();
    while s.running() {
        for p in topic.partitions().iter() {
            let mut next = p.log_start_offset();
            let end = p.high_watermark();
            let mut last: Option<u64> = None;
            let mut seqs: HashMap<Vec<u8>, u64> = HashMap::new();
            while next < end {
                let batch = p.read(next, 64 * 1024, 1000).unwrap();
                assert!(!batch.is_empty(), "{PROFILES}-{}: nothing at {next} below {end}", p.id());
                for r in &batch {
                    assert!(
                        last.is_none_or(|l| r.offset > l),
                        "{PROFILES}-{}: offset {} after {last:?}",
                        p.id(),
                        r.offset
                    );
                    last = Some(r.offset);
                    let key = r.key.as_deref().expect("compacted records have keys");
                    let where_ = format!("{PROFILES}-{}@{}", p.id(), r.offset);
                    if let Some(seq) = check_profile(s.seed, key, r.value.as_deref(), &where_) {
                        let prev = seqs.insert(key.to_vec(), seq);
                        assert!(prev.is_none_or(|q| q < seq), "{where_}: write {seq} of a key after write {prev:?}");
                    }
                }
                next = batch.last().unwrap().offset + 1;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Explicit maintenance beside the background cleaner.
fn maintain(s: &Shared) {
    let mut rng = Rng(s.seed ^ 0x3a1);
    while s.running() {
        s.store.enforce_retention(EVENTS).unwrap();
        if rng.below(3) == 0 {
            let report = s.store.compact(PROFILES).unwrap();
            s.compactions.fetch_add(report.partitions.iter().map(|r| r.passes as u64).sum(), Ordering::Relaxed);
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Appends clicks (JSON `{"user","ms"}`) at a bounded rate.
fn produce_clicks(s: &Shared) {
    let topic = s.store.topic(CLICKS).unwrap();
    let mut rng = Rng(s.seed ^ 0xc11c);
    while s.running() {
        let batch: Vec<NewRecord> = (0..1 + rng.below(20))
            .map(|_| {
                let user = format!("u{}", rng.below(CLICK_USERS));
                NewRecord::keyed(user.clone(), json!({"user": user, "ms": rng.below(5000)}).to_string())
            })
            .collect();
        let gate = s.clicks_gate.read().unwrap();
        topic.append(&batch).unwrap();
        drop(gate);
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The view's expected content: a recomputation from every record of its topic.
fn recompute(topic: &Topic, with_total: bool) -> BTreeMap<String, Value> {
    let mut m: BTreeMap<String, (u64, i64)> = BTreeMap::new();
    for p in topic.partitions().iter() {
        let (mut next, end) = (p.log_start_offset(), p.high_watermark());
        assert_eq!(next, 0, "{CLICKS} has no retention");
        while next < end {
            let batch = p.read(next, 1 << 20, 10_000).unwrap();
            for r in &batch {
                let v: Value = serde_json::from_slice(r.value.as_deref().unwrap()).unwrap();
                let e = m.entry(v["user"].as_str().unwrap().to_string()).or_default();
                e.0 += 1;
                e.1 += v["ms"].as_i64().unwrap();
            }
            next = batch.last().unwrap().offset + 1;
        }
    }
    m.into_iter()
        .map(|(k, (n, total))| (k, if with_total { json!({"n": n, "total": total}) } else { json!({"n": n}) }))
        .collect()
}

/// Rebuilds or redefines the view, now and then pauses the clicks producer, waits until the view
/// caught up and compares it with a recomputation.
fn check_view(s: &Shared, views: &Views) {
    let view = views.get(VIEW).unwrap();
    let topic = s.store.topic(CLICKS).unwrap();
    let mut rng = Rng(s.seed ^ 0x5eed);
    let mut with_total = false;
    while s.running() {
        match rng.below(4) {
            0 => {
                with_total = !with_total;
                let spec = if with_total { VIEW_COUNT_SUM } else { VIEW_COUNT };
                views.update(ViewSpec::from_json(spec.as_bytes()).unwrap()).unwrap();
            }
            1 => {
                views.rebuild(VIEW, RebuildFrom::Beginning).unwrap();
                if rng.below(2) == 0 {
                    // A second rebuild replaces the first before it finishes.
                    views.rebuild(VIEW, RebuildFrom::Beginning).unwrap();
                }
            }
            _ => {}
        }
        // Let the producer run a little beside the rebuild, then stop it and compare.
        std::thread::sleep(Duration::from_millis(200 + rng.below(1500)));
        let gate = s.clicks_gate.write().unwrap();
        assert!(view.wait_caught_up(VIEW_WAIT), "the view did not catch up: {:#?}", view.status());
        let got: BTreeMap<String, Value> =
            view.scan("", usize::MAX).into_iter().map(|r| (r.key, r.value.expect("a table view"))).collect();
        let want = recompute(&topic, with_total);
        assert!(got == want, "the view differs from a recomputation ({} keys vs {})", got.len(), want.len());
        drop(gate);
        s.view_checks.fetch_add(1, Ordering::Relaxed);
    }
}

fn spawn(name: &str, s: &Arc<Shared>, f: impl FnOnce(&Shared) + Send + 'static) -> (String, JoinHandle<()>) {
    let s = Arc::clone(s);
    let handle = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&s)));
            // One failure ends the run: the others stop and the panic is reported by join.
            s.stop.store(true, Ordering::Release);
            if let Err(p) = result {
                std::panic::resume_unwind(p);
            }
        })
        .unwrap();
    (name.to_string(), handle)
}

#[test]
fn mixed_load_keeps_every_invariant_and_bounded_resources() {
    let seconds: u64 =
        std::env::var("KAPPALOG_SOAK_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(SOAK_SECONDS_DEFAULT);
    let seed: u64 = std::env::var("SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
    });
    eprintln!("fault_soak: SEED={seed}, {seconds} s (KAPPALOG_SOAK_SECONDS)");
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig::default().cleaner_interval_ms(100);
    let store = Store::open(dir.path(), config).unwrap();
    store.create_topic(EVENTS, EVENT_PARTITIONS, events_config()).unwrap();
    store.create_topic(PROFILES, 2, profiles_config()).unwrap();
    store.create_topic(CLICKS, 2, TopicConfig::default().durability(Durability::Interval { ms: 20 })).unwrap();
    let coordinator = store.groups().unwrap();
    let views_config = ViewsConfig::default().checkpoint_interval_ms(100).idle_wait_ms(20);
    let views = Views::open(&store, views_config).unwrap();
    views.create_json(VIEW_COUNT.as_bytes()).unwrap();

    let shared = Arc::new(Shared {
        seed,
        stop: AtomicBool::new(false),
        store: store.clone(),
        coordinator,
        clicks_gate: RwLock::new(()),
        profiles_latest: Mutex::new(BTreeMap::new()),
        records_checked: AtomicU64::new(0),
        commits: AtomicU64::new(0),
        commits_fenced: AtomicU64::new(0),
        view_checks: AtomicU64::new(0),
        compactions: AtomicU64::new(0),
        lagging_jumps: AtomicU64::new(0),
    });
    let mut threads = Vec::new();
    for p in 0..EVENT_PARTITIONS {
        threads.push(spawn(&format!("events-{p}"), &shared, move |s| produce_events(s, p)));
    }
    for i in 0..2 {
        threads.push(spawn(&format!("g-stable-{i}"), &shared, |s| {
            consume(s, "stable", KEEPING_UP);
        }));
    }
    threads.push(spawn("g-churn", &shared, |s| {
        consume(s, "churn", CHURNING);
    }));
    threads.push(spawn("g-lagging", &shared, |s| {
        let jumps = consume(s, "lagging", LAGGING);
        s.lagging_jumps.store(jumps, Ordering::Relaxed);
    }));
    threads.push(spawn("commits", &shared, |s| watch_commits(s, &["stable", "churn", "lagging"])));
    threads.push(spawn("profiles", &shared, produce_profiles));
    threads.push(spawn("profiles-reader", &shared, read_profiles));
    threads.push(spawn("maintenance", &shared, maintain));
    threads.push(spawn("clicks", &shared, produce_clicks));
    {
        let views = views.clone();
        threads.push(spawn("view", &shared, move |s| check_view(s, &views)));
    }

    // Sample RSS and fds until the time is up or a thread failed.
    let started = Instant::now();
    let duration = Duration::from_secs(seconds);
    let mut samples: Vec<(Duration, u64, u64)> = Vec::new();
    while started.elapsed() < duration && shared.running() {
        let (rss, fds) = rss_and_fds();
        samples.push((started.elapsed(), rss, fds));
        std::thread::sleep(SAMPLE_INTERVAL);
    }
    shared.stop.store(true, Ordering::Release);
    let mut failures = Vec::new();
    for (name, t) in threads {
        if let Err(p) = t.join() {
            let msg = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()));
            failures.push(format!("{name}: {}", msg.unwrap_or_default()));
        }
    }
    assert!(failures.is_empty(), "seed {seed}: {failures:#?}");
    let elapsed = started.elapsed();

    // Resources: the late phase stays within a bound of the warm-up's maximum.
    let warmup = duration.mul_f64(WARMUP_FRACTION);
    let phase = |from: Duration, to: Duration| {
        samples
            .iter()
            .filter(|(t, _, _)| *t >= from && *t < to)
            .fold((0, 0), |(r, f), (_, rss, fds)| (r.max(*rss), f.max(*fds)))
    };
    let (base_rss, base_fds) = phase(Duration::ZERO, warmup);
    let (mid_rss, mid_fds) = phase(warmup, duration.mul_f64(2.0 / 3.0));
    let (late_rss, late_fds) = phase(duration.mul_f64(2.0 / 3.0), duration);
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    eprintln!(
        "fault_soak: RSS max warm-up {:.1} MiB, middle {:.1} MiB, late {:.1} MiB; fds {base_fds}, {mid_fds}, {late_fds}",
        mib(base_rss),
        mib(mid_rss),
        mib(late_rss)
    );
    assert!(base_rss > 0 && late_rss > 0, "samples in every phase ({} samples)", samples.len());
    assert!(late_rss <= base_rss + RSS_GROWTH_MAX_BYTES, "seed {seed}: RSS grew from {base_rss} to {late_rss} bytes");
    assert!(late_fds <= base_fds + FD_GROWTH_MAX, "seed {seed}: open fds grew from {base_fds} to {late_fds}");

    // The load did something of everything.
    let s = &shared;
    let (checked, commits, fenced) = (
        s.records_checked.load(Ordering::Relaxed),
        s.commits.load(Ordering::Relaxed),
        s.commits_fenced.load(Ordering::Relaxed),
    );
    let (view_checks, compactions) = (s.view_checks.load(Ordering::Relaxed), s.compactions.load(Ordering::Relaxed));
    let jumps = s.lagging_jumps.load(Ordering::Relaxed);
    let events = store.topic(EVENTS).unwrap();
    let starts: Vec<u64> = events.partitions().iter().map(|p| p.log_start_offset()).collect();
    eprintln!(
        "fault_soak: {elapsed:?}: {checked} records checked, {commits} commits ({fenced} fenced), {view_checks} view checks, \
         {compactions} explicit compaction passes, events log starts {starts:?}, {jumps} jumps of the lagging group"
    );
    assert!(checked > 0 && commits > 0 && view_checks > 0);
    assert!(jumps > 0, "the lagging group fell behind retention and restarted at the log start");
    assert!(starts.iter().any(|s| *s > 0), "retention deleted segments of {EVENTS}");
    // Size retention keeps a partition larger than retention_bytes by less than a segment.
    store.enforce_retention(EVENTS).unwrap();
    for p in events.partitions().iter() {
        let size: u64 = p.segment_infos().unwrap().iter().map(|i| i.size_bytes).sum();
        assert!(
            size < EVENT_RETENTION_BYTES as u64 + EVENT_SEGMENT_BYTES,
            "{EVENTS}-{}: {size} bytes on disk after retention",
            p.id()
        );
    }

    // The compacted topic, compacted once more with everything sealed, holds exactly the latest
    // write of every key.
    let profiles = store.topic(PROFILES).unwrap();
    for p in profiles.partitions().iter() {
        p.roll().unwrap();
    }
    store.compact(PROFILES).unwrap();
    let latest = shared.profiles_latest.lock().unwrap().clone();
    let mut got: BTreeMap<String, (u64, Option<String>)> = BTreeMap::new();
    for p in profiles.partitions().iter() {
        for r in p.cursor_from_start() {
            let r = r.unwrap();
            let key = String::from_utf8(r.key.as_deref().unwrap().to_vec()).unwrap();
            let value = r.value.as_deref().map(|v| String::from_utf8(v.to_vec()).unwrap());
            let seq = check_profile(seed, key.as_bytes(), r.value.as_deref(), "final read");
            // Tombstones carry no sequence number: take the model's, the only one it can be.
            let seq = seq.unwrap_or_else(|| latest.get(&key).map_or(0, |l| l.0));
            let dup = got.insert(key.clone(), (seq, value));
            assert!(dup.is_none(), "seed {seed}: key {key} twice after a full compaction");
        }
    }
    assert_eq!(got.len(), latest.len(), "seed {seed}: keys after compaction");
    for (key, (seq, value)) in &latest {
        let g = got.get(key).unwrap_or_else(|| panic!("seed {seed}: key {key} lost by compaction"));
        assert_eq!(&g.1, value, "seed {seed}: key {key}: the latest write (number {seq}) is kept");
    }
    drop((views, shared));
    store.close().unwrap();
}
