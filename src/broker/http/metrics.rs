//! `GET /metrics` in Prometheus' text format, and the counters and histograms behind it.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;

use super::AppState;

/// Upper bounds of the latency histogram buckets, in seconds.
pub const LATENCY_BUCKETS_SECONDS: [f64; 14] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

#[derive(Debug, Default, Clone)]
struct Histogram {
    buckets: [u64; LATENCY_BUCKETS_SECONDS.len()],
    count: u64,
    sum_seconds: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (b, le) in self.buckets.iter_mut().zip(LATENCY_BUCKETS_SECONDS) {
            if seconds <= le {
                *b += 1;
            }
        }
        self.count += 1;
        self.sum_seconds += seconds;
    }
}

/// The broker's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    produce_records: AtomicU64,
    produce_bytes: AtomicU64,
    fetch_records: AtomicU64,
    fetch_bytes: AtomicU64,
    /// Requests being handled now.
    in_flight: AtomicU64,
    /// Requests refused with a 503 because the memory budget of requests in flight was spent.
    memory_refused: AtomicU64,
    /// Connections closed at once because the broker held its maximum.
    connections_refused: AtomicU64,
    /// Connections open now.
    connections_open: AtomicU64,
    /// One produce's append: encode, write, and the fsync under `sync` durability.
    append: Mutex<Histogram>,
    /// Method → route → its latency and its responses by status (looked up without allocating).
    requests: Mutex<HashMap<String, HashMap<String, RouteStats>>>,
}

/// The requests of one (method, route).
#[derive(Debug, Default)]
struct RouteStats {
    latency: Histogram,
    responses: BTreeMap<u16, u64>,
}

impl Metrics {
    pub fn produced(&self, records: u64, bytes: u64) {
        self.produce_records.fetch_add(records, Ordering::Relaxed);
        self.produce_bytes.fetch_add(bytes, Ordering::Relaxed);
    }
    /// A produce's append took `seconds` (its fsync included under `sync` durability).
    pub fn appended(&self, seconds: f64) {
        self.append.lock().observe(seconds);
    }
    pub fn fetched(&self, records: u64, bytes: u64) {
        self.fetch_records.fetch_add(records, Ordering::Relaxed);
        self.fetch_bytes.fetch_add(bytes, Ordering::Relaxed);
    }
    pub fn memory_refused(&self) {
        self.memory_refused.fetch_add(1, Ordering::Relaxed);
    }
    pub fn connection_refused(&self) {
        self.connections_refused.fetch_add(1, Ordering::Relaxed);
    }
    /// A connection opened (`true`) or closed.
    pub fn connection(&self, opened: bool) {
        if opened {
            self.connections_open.fetch_add(1, Ordering::Relaxed);
        } else {
            self.connections_open.fetch_sub(1, Ordering::Relaxed);
        }
    }
    fn request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let mut methods = self.requests.lock();
        if !methods.contains_key(method) {
            methods.insert(method.to_string(), HashMap::new());
        }
        let routes = methods.get_mut(method).expect("inserted above");
        if !routes.contains_key(route) {
            routes.insert(route.to_string(), RouteStats::default());
        }
        let stats = routes.get_mut(route).expect("inserted above");
        stats.latency.observe(seconds);
        *stats.responses.entry(status).or_default() += 1;
    }
}

/// Times the request `run` answers by its method and route template (the middleware of every
/// route: see `router`).
pub(crate) async fn track<F: std::future::Future<Output = Response>>(
    state: &AppState,
    req: Request,
    run: impl FnOnce(Request) -> F,
) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().cloned();
    state.metrics().in_flight.fetch_add(1, Ordering::Relaxed);
    let resp = run(req).await;
    state.metrics().in_flight.fetch_sub(1, Ordering::Relaxed);
    let route = route.as_ref().map_or("unmatched", |m| m.as_str());
    state.metrics().request(method.as_str(), route, resp.status().as_u16(), started.elapsed().as_secs_f64());
    resp
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Renders every metric as Prometheus text.
pub fn text(state: &AppState) -> String {
    let mut o = String::new();
    traffic_text(state.metrics(), &mut o);
    durations_text(state.metrics(), &mut o);
    requests_text(state.metrics(), &mut o);
    limits_text(state, &mut o);
    partitions_text(state, &mut o);
    group_lag_text(state, &mut o);
    views_text(state, &mut o);
    crate::broker::kafka::metrics::text(state.store(), &mut o);
    o
}

/// Produce and fetch counters, and requests in flight.
fn traffic_text(m: &Metrics, o: &mut String) {
    let counters = [
        ("kappalog_produce_records_total", "Records acknowledged to producers.", &m.produce_records),
        ("kappalog_produce_bytes_total", "Value bytes acknowledged to producers.", &m.produce_bytes),
        ("kappalog_fetch_records_total", "Records returned to consumers.", &m.fetch_records),
        ("kappalog_fetch_bytes_total", "Value bytes returned to consumers.", &m.fetch_bytes),
        (
            "kappalog_http_requests_memory_refused_total",
            "Requests answered 503 because the memory budget of requests in flight was spent.",
            &m.memory_refused,
        ),
        (
            "kappalog_http_connections_refused_total",
            "Connections closed at once because the broker held its maximum number of connections.",
            &m.connections_refused,
        ),
    ];
    for (name, help, v) in counters {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", v.load(Ordering::Relaxed));
    }
    let _ = writeln!(
        o,
        "# HELP kappalog_http_requests_in_flight Requests being handled (this one included).\n# TYPE kappalog_http_requests_in_flight gauge\nkappalog_http_requests_in_flight {}",
        m.in_flight.load(Ordering::Relaxed)
    );
}

/// Connections open and the memory reserved by requests in flight (the broker's limits).
fn limits_text(state: &AppState, o: &mut String) {
    let _ = writeln!(
        o,
        "# HELP kappalog_http_connections_open Connections open now.\n# TYPE kappalog_http_connections_open gauge\nkappalog_http_connections_open {}\n# HELP kappalog_http_requests_memory_reserved_bytes Memory reserved by requests in flight.\n# TYPE kappalog_http_requests_memory_reserved_bytes gauge\nkappalog_http_requests_memory_reserved_bytes {}",
        state.metrics().connections_open.load(Ordering::Relaxed),
        state.memory().reserved_bytes()
    );
}

/// Histograms of produce appends and of fsyncs.
fn durations_text(m: &Metrics, o: &mut String) {
    let h = m.append.lock().clone();
    write_histogram(
        o,
        "kappalog_produce_append_duration_seconds",
        "Append of one produce request: write plus fsync (group-committed) under sync durability.",
        LATENCY_BUCKETS_SECONDS.iter().copied().zip(h.buckets.iter().copied()),
        h.count,
        h.sum_seconds,
    );
    let f = crate::log::fsync_latency();
    write_histogram(
        o,
        "kappalog_fsync_duration_seconds",
        "fdatasync of log and index files (group commits, rolls, flushes).",
        f.buckets.iter().copied(),
        f.count,
        f.sum_seconds,
    );
}

/// Request latency and responses, by route.
fn requests_text(m: &Metrics, o: &mut String) {
    let _ = writeln!(o, "# HELP kappalog_http_request_duration_seconds Request latency by route.");
    let _ = writeln!(o, "# TYPE kappalog_http_request_duration_seconds histogram");
    let requests = m.requests.lock();
    let sorted: BTreeMap<(&str, &str), &RouteStats> = requests
        .iter()
        .flat_map(|(method, routes)| routes.iter().map(move |(route, s)| ((method.as_str(), route.as_str()), s)))
        .collect();
    for ((method, route), s) in &sorted {
        let h = &s.latency;
        let labels = format!("method=\"{}\",route=\"{}\"", escape(method), escape(route));
        for (b, le) in h.buckets.iter().zip(LATENCY_BUCKETS_SECONDS) {
            let _ = writeln!(o, "kappalog_http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {b}");
        }
        let _ = writeln!(o, "kappalog_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
        let _ = writeln!(o, "kappalog_http_request_duration_seconds_sum{{{labels}}} {}", h.sum_seconds);
        let _ = writeln!(o, "kappalog_http_request_duration_seconds_count{{{labels}}} {}", h.count);
    }
    let _ = writeln!(o, "# HELP kappalog_http_responses_total Responses by route and status.");
    let _ = writeln!(o, "# TYPE kappalog_http_responses_total counter");
    for ((method, route), s) in &sorted {
        for (status, n) in &s.responses {
            let _ = writeln!(
                o,
                "kappalog_http_responses_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(method),
                escape(route)
            );
        }
    }
}

/// The partition gauges: (name, help), in output order.
const PARTITION_GAUGES: [(&str, &str); 8] = [
    ("kappalog_partition_size_bytes", "Bytes of log on disk."),
    ("kappalog_partition_log_start_offset", "First readable offset."),
    ("kappalog_partition_log_end_offset", "High watermark: the next offset to be written."),
    ("kappalog_partition_segments", "Segment files."),
    (
        "kappalog_cleaner_dirty_ratio",
        "Dirty bytes / cleanable bytes (compaction triggers past min.cleanable.dirty.ratio).",
    ),
    ("kappalog_cleaner_compactions", "Compaction runs that did work since the store opened."),
    ("kappalog_cleaner_last_compaction_bytes_removed", "Bytes the last compaction run removed."),
    ("kappalog_cleaner_last_retention_bytes_removed", "Bytes the last retention run removed."),
];

/// The values of [`PARTITION_GAUGES`] for one partition (`None`: not known, not printed).
fn partition_values(p: &crate::Partition) -> [Option<f64>; PARTITION_GAUGES.len()] {
    let s = p.stats();
    let c = p.cleaner_stats().ok();
    [
        Some(s.size_bytes as f64),
        Some(s.log_start_offset as f64),
        Some(s.high_watermark as f64),
        Some(s.segments as f64),
        c.as_ref().map(|c| c.dirty_ratio),
        c.as_ref().map(|c| c.compactions as f64),
        c.as_ref()
            .and_then(|c| c.last_compaction.as_ref())
            .map(|r| r.bytes_before.saturating_sub(r.bytes_after) as f64),
        c.as_ref().and_then(|c| c.last_retention.as_ref()).map(|r| r.bytes_removed as f64),
    ]
}

/// Every partition gauge, grouped by gauge.
fn partitions_text(state: &AppState, o: &mut String) {
    let mut lines: [Vec<String>; PARTITION_GAUGES.len()] = Default::default();
    for name in state.store().topic_names() {
        let Ok(t) = state.store().topic(&name) else { continue };
        for p in t.partitions().iter() {
            let labels = format!("topic=\"{}\",partition=\"{}\"", escape(&name), p.id());
            for ((gauge, out), v) in PARTITION_GAUGES.iter().zip(lines.iter_mut()).zip(partition_values(p)) {
                if let Some(v) = v {
                    out.push(format!("{}{{{labels}}} {v}", gauge.0));
                }
            }
        }
    }
    for ((name, help), lines) in PARTITION_GAUGES.into_iter().zip(lines) {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} gauge");
        for l in lines {
            let _ = writeln!(o, "{l}");
        }
    }
}

/// Lag of every group with a committed offset, per partition.
fn group_lag_text(state: &AppState, o: &mut String) {
    let _ = writeln!(o, "# HELP kappalog_consumer_group_lag Log end minus committed offset.");
    let _ = writeln!(o, "# TYPE kappalog_consumer_group_lag gauge");
    let coordinator = state.consumers().coordinator();
    for group in coordinator.list() {
        let Ok(d) = coordinator.describe(&group) else { continue };
        for l in d.partitions {
            if let Some(lag) = l.lag {
                let _ = writeln!(
                    o,
                    "kappalog_consumer_group_lag{{group=\"{}\",topic=\"{}\",partition=\"{}\"}} {lag}",
                    escape(&group),
                    escape(&l.topic),
                    l.partition
                );
            }
        }
    }
}

/// View gauges and counters: lag per source partition, watermark, late and error records.
fn views_text(state: &AppState, o: &mut String) {
    let views = state.views();
    let statuses: Vec<_> = views.list().iter().filter_map(|n| views.get(n).ok()).map(|v| v.status()).collect();
    let _ = writeln!(o, "# HELP kappalog_view_lag Records of a source partition the view has not applied yet.");
    let _ = writeln!(o, "# TYPE kappalog_view_lag gauge");
    for s in &statuses {
        for l in &s.lag {
            let _ = writeln!(
                o,
                "kappalog_view_lag{{view=\"{}\",topic=\"{}\",partition=\"{}\"}} {}",
                escape(&s.name),
                escape(&l.topic),
                l.partition,
                l.lag
            );
        }
    }
    let _ = writeln!(o, "# HELP kappalog_view_watermark_ms Highest event time a windowed view has seen (epoch ms).");
    let _ = writeln!(o, "# TYPE kappalog_view_watermark_ms gauge");
    for s in &statuses {
        if let Some(w) = s.watermark {
            let _ = writeln!(o, "kappalog_view_watermark_ms{{view=\"{}\"}} {w}", escape(&s.name));
        }
    }
    let _ =
        writeln!(o, "# HELP kappalog_view_state_bytes Estimated memory of the view's state (keys, entries, windows).");
    let _ = writeln!(o, "# TYPE kappalog_view_state_bytes gauge");
    for s in &statuses {
        let _ = writeln!(o, "kappalog_view_state_bytes{{view=\"{}\"}} {}", escape(&s.name), s.state_bytes);
    }
    type Read = fn(&crate::stream::ViewStatus) -> u64;
    let counters: [(&str, &str, Read); 4] = [
        ("kappalog_view_late_records_total", "Records dropped because all their windows were closed.", |s| {
            s.late_records
        }),
        ("kappalog_view_error_records_total", "Records that were not JSON or lacked a field the view needs.", |s| {
            s.error_records
        }),
        ("kappalog_view_records_applied_total", "Records applied to the view's state.", |s| s.counters.records_applied),
        ("kappalog_view_keys_expired_total", "Keys dropped by state.ttl_ms.", |s| s.counters.keys_expired),
    ];
    for (name, help, get) in counters {
        let _ =
            writeln!(o, "# HELP {name} {help} (Of the serving version: a rebuild restarts it.)\n# TYPE {name} counter");
        for s in &statuses {
            let _ = writeln!(o, "{name}{{view=\"{}\"}} {}", escape(&s.name), get(s));
        }
    }
    let _ = writeln!(
        o,
        "# HELP kappalog_view_failed 1 when the view's runner stopped on an error (see GET /views/{{name}})."
    );
    let _ = writeln!(o, "# TYPE kappalog_view_failed gauge");
    for s in &statuses {
        let failed = u8::from(s.state == crate::stream::ViewRunState::Failed);
        let _ = writeln!(o, "kappalog_view_failed{{view=\"{}\"}} {failed}", escape(&s.name));
    }
    let _ = writeln!(o, "# HELP kappalog_view_rebuilding 1 while a new version is being rebuilt.");
    let _ = writeln!(o, "# TYPE kappalog_view_rebuilding gauge");
    for s in &statuses {
        let _ =
            writeln!(o, "kappalog_view_rebuilding{{view=\"{}\"}} {}", escape(&s.name), u8::from(s.rebuild.is_some()));
    }
}

pub async fn render(State(state): State<AppState>) -> Response {
    // Describing groups and partitions may touch files: off the async workers.
    let body = match tokio::task::spawn_blocking(move || text(&state)).await {
        Ok(b) => b,
        Err(e) => return super::ApiError::internal(format!("rendering metrics failed: {e}")).into_response(),
    };
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// One unlabelled Prometheus histogram: cumulative `(upper bound, count)` buckets, then `+Inf`, sum, count.
fn write_histogram(
    o: &mut String,
    name: &str,
    help: &str,
    buckets: impl Iterator<Item = (f64, u64)>,
    count: u64,
    sum_seconds: f64,
) {
    let _ = writeln!(o, "# HELP {name} {help}");
    let _ = writeln!(o, "# TYPE {name} histogram");
    for (le, b) in buckets {
        let _ = writeln!(o, "{name}_bucket{{le=\"{le}\"}} {b}");
    }
    let _ = writeln!(o, "{name}_bucket{{le=\"+Inf\"}} {count}\n{name}_sum {sum_seconds}\n{name}_count {count}");
}
