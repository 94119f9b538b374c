//! The Kafka listener's counters, rendered into `GET /metrics`: requests, errors and latency per
//! api key, connections open and refused.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::header::api_name;
use crate::broker::http::metrics::LATENCY_BUCKETS_SECONDS;
use crate::Store;

#[derive(Debug, Default, Clone)]
struct PerApi {
    requests: u64,
    errors: u64,
    buckets: [u64; LATENCY_BUCKETS_SECONDS.len()],
    sum_seconds: f64,
}

/// One store's Kafka counters (shared by the listener and `/metrics` through the store).
#[derive(Debug, Default)]
pub struct KafkaMetrics {
    apis: Mutex<BTreeMap<i16, PerApi>>,
    unknown_api: AtomicU64,
    connections_open: AtomicU64,
    connections_refused: AtomicU64,
    produce_records: AtomicU64,
    fetch_bytes: AtomicU64,
    in_flight: AtomicU64,
}

/// Counts a request as in flight while alive.
#[derive(Debug)]
pub struct InFlight(Arc<KafkaMetrics>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl crate::store::StoreExtension for Arc<KafkaMetrics> {}

impl KafkaMetrics {
    /// The store's counters, created on first use.
    pub fn of(store: &Store) -> Arc<KafkaMetrics> {
        store.extension::<Arc<KafkaMetrics>, crate::Error>(|_| Ok(Arc::default())).unwrap_or_default()
    }
    /// One request of `api_key` answered (`error`: refused or failed) after `seconds`.
    pub fn request(&self, api_key: i16, error: bool, seconds: f64) {
        let mut apis = self.apis.lock();
        let a = apis.entry(api_key).or_default();
        a.requests += 1;
        a.errors += u64::from(error);
        for (b, le) in a.buckets.iter_mut().zip(LATENCY_BUCKETS_SECONDS) {
            if seconds <= le {
                *b += 1;
            }
        }
        a.sum_seconds += seconds;
    }
    /// Marks a request in flight until the guard drops.
    pub fn in_flight(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(self))
    }
    pub fn unknown_api(&self) {
        self.unknown_api.fetch_add(1, Ordering::Relaxed);
    }
    pub fn connection(&self, opened: bool) {
        if opened {
            self.connections_open.fetch_add(1, Ordering::Relaxed);
        } else {
            self.connections_open.fetch_sub(1, Ordering::Relaxed);
        }
    }
    pub fn connection_refused(&self) {
        self.connections_refused.fetch_add(1, Ordering::Relaxed);
    }
    pub fn produced(&self, records: u64) {
        self.produce_records.fetch_add(records, Ordering::Relaxed);
    }
    pub fn fetched(&self, bytes: u64) {
        self.fetch_bytes.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// Appends the Kafka metrics of `store` in Prometheus' text format.
pub fn text(store: &Store, o: &mut String) {
    let m = KafkaMetrics::of(store);
    let gauges = [
        ("kappalog_kafka_connections_open", "gauge", "Kafka client connections open now.", &m.connections_open),
        (
            "kappalog_kafka_connections_refused_total",
            "counter",
            "Kafka connections closed at once because the broker held its maximum number of connections.",
            &m.connections_refused,
        ),
        (
            "kappalog_kafka_unknown_api_requests_total",
            "counter",
            "Kafka requests with an api key this broker does not serve (each closed the connection).",
            &m.unknown_api,
        ),
        ("kappalog_kafka_requests_in_flight", "gauge", "Kafka requests being handled now.", &m.in_flight),
        ("kappalog_kafka_produce_records_total", "counter", "Records appended by Kafka Produce.", &m.produce_records),
        ("kappalog_kafka_fetch_bytes_total", "counter", "Record batch bytes sent by Kafka Fetch.", &m.fetch_bytes),
    ];
    for (name, kind, help, v) in gauges {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}", v.load(Ordering::Relaxed));
    }
    let apis = m.apis.lock().clone();
    let _ = writeln!(o, "# HELP kappalog_kafka_requests_total Kafka requests answered, by api.");
    let _ = writeln!(o, "# TYPE kappalog_kafka_requests_total counter");
    for (k, a) in &apis {
        let _ = writeln!(o, "kappalog_kafka_requests_total{{api=\"{}\",api_key=\"{k}\"}} {}", api_name(*k), a.requests);
    }
    let _ = writeln!(o, "# HELP kappalog_kafka_request_errors_total Kafka requests refused or failed, by api.");
    let _ = writeln!(o, "# TYPE kappalog_kafka_request_errors_total counter");
    for (k, a) in &apis {
        let _ =
            writeln!(o, "kappalog_kafka_request_errors_total{{api=\"{}\",api_key=\"{k}\"}} {}", api_name(*k), a.errors);
    }
    let name = "kappalog_kafka_request_duration_seconds";
    let _ = writeln!(o, "# HELP {name} Kafka request latency, by api (fetch long-polls included).");
    let _ = writeln!(o, "# TYPE {name} histogram");
    for (k, a) in &apis {
        let api = api_name(*k);
        for (b, le) in a.buckets.iter().zip(LATENCY_BUCKETS_SECONDS) {
            let _ = writeln!(o, "{name}_bucket{{api=\"{api}\",le=\"{le}\"}} {b}");
        }
        let _ = writeln!(o, "{name}_bucket{{api=\"{api}\",le=\"+Inf\"}} {}", a.requests);
        let _ = writeln!(o, "{name}_sum{{api=\"{api}\"}} {}", a.sum_seconds);
        let _ = writeln!(o, "{name}_count{{api=\"{api}\"}} {}", a.requests);
    }
}
