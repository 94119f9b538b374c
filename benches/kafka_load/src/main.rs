//! The Kafka load generator of `benches/kafka.rs`: a librdkafka producer and consumer (the rdkafka
//! crate, librdkafka built from its bundled source) whose own cost per record is small, so that the
//! benchmark measures the broker rather than the client.
//!
//! ```text
//! kafka_load produce BOOTSTRAP TOPIC RECORDS PRODUCERS [KEY=VALUE ...]
//! kafka_load consume BOOTSTRAP TOPIC PARTITIONS RECORDS [KEY=VALUE ...]
//! ```
//!
//! `KEY=VALUE` pairs are librdkafka settings, applied after this program's own. Each command prints
//! one JSON object on stdout and exits non-zero when a record was not delivered or not read.
//!
//! - `produce` sends RECORDS keyless records of 100 bytes, split over PRODUCERS threads with a
//!   producer (and a connection) each: one value prepared before the clock starts, copied into
//!   librdkafka's queue by each `send` (as any rdkafka user's record is), the default
//!   partitioner; each thread polls for delivery reports while it sends, then flushes. Every
//!   record must be acknowledged: a failed delivery is counted and makes the run fail. Timed from
//!   creating the producers (connecting and the metadata included) to the last acknowledgement.
//! - `consume` assigns every partition from the beginning and reads until it has RECORDS records,
//!   reading every value's bytes. Timed from creating the consumer to the last record.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use serde_json::json;

const RECORD_BYTES: usize = 100;
/// A run that makes no progress for this long fails.
const STALL: Duration = Duration::from_secs(60);

/// Counts delivery reports.
#[derive(Default)]
struct Deliveries {
    ok: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.ok.fetch_add(1, Ordering::Relaxed),
            Err((e, _)) => {
                self.first_error.lock().unwrap().get_or_insert_with(|| e.to_string());
                self.failed.fetch_add(1, Ordering::Relaxed)
            }
        };
    }
}

fn config(bootstrap: &str, ours: &[(&str, &str)], extra: &[String]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap);
    for (k, v) in ours {
        c.set(*k, *v);
    }
    for kv in extra {
        let (k, v) = kv.split_once('=').unwrap_or_else(|| fail(&format!("{kv}: not KEY=VALUE")));
        c.set(k, v);
    }
    c
}

fn fail(why: &str) -> ! {
    eprintln!("kafka_load: {why}");
    std::process::exit(1)
}

fn number(s: Option<&String>, what: &str) -> u64 {
    s.and_then(|s| s.parse().ok()).unwrap_or_else(|| fail(&format!("{what}: a number expected")))
}

/// What one producer reports: delivered, failed, its first error, sends refused with a full queue.
type Report = (u64, u64, Option<String>, u64);

/// `records` split over `producers` threads, each with a producer (and a connection) of its own.
fn produce(bootstrap: &str, topic: &str, records: u64, producers: u64, extra: &[String]) {
    let started = Instant::now();
    let reports: Vec<Report> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..producers)
            .map(|i| {
                let n = records / producers + u64::from(i < records % producers);
                s.spawn(move || produce_one(bootstrap, topic, n, extra))
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let seconds = started.elapsed().as_secs_f64();
    let (ok, failed) = (reports.iter().map(|r| r.0).sum::<u64>(), reports.iter().map(|r| r.1).sum::<u64>());
    let first_error = reports.iter().find_map(|r| r.2.clone());
    let queue_full: u64 = reports.iter().map(|r| r.3).sum();
    println!(
        "{}",
        json!({"records": records, "producers": producers, "seconds": seconds, "delivered": ok,
               "failed": failed, "first_error": first_error, "queue_full": queue_full})
    );
    if ok != records || failed != 0 {
        fail(&format!("{ok} of {records} records delivered, {failed} failed: {first_error:?}"));
    }
}

fn produce_one(bootstrap: &str, topic: &str, records: u64, extra: &[String]) -> Report {
    let value = [b'x'; RECORD_BYTES];
    let producer: BaseProducer<Deliveries> = config(bootstrap, &[("acks", "all")], extra)
        .create_with_context(Deliveries::default())
        .unwrap_or_else(|e| fail(&format!("creating the producer: {e}")));
    let (mut sent, mut queue_full) = (0u64, 0u64);
    let mut last_progress = (Instant::now(), 0u64);
    while sent < records {
        match producer.send(BaseRecord::<(), _, ()>::to(topic).payload(&value[..])) {
            Ok(()) => {
                sent += 1;
                if sent % 1024 == 0 {
                    producer.poll(Duration::ZERO);
                }
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                // The queue is full: serve delivery reports until there is room.
                queue_full += 1;
                producer.poll(Duration::from_millis(1));
                let done = producer.context().ok.load(Ordering::Relaxed);
                if done > last_progress.1 {
                    last_progress = (Instant::now(), done);
                } else if last_progress.0.elapsed() > STALL {
                    fail(&format!("no delivery for {STALL:?} with the queue full ({done} delivered)"));
                }
            }
            Err((e, _)) => fail(&format!("send: {e}")),
        }
    }
    if let Err(e) = producer.flush(STALL) {
        fail(&format!("flush: {e}"));
    }
    let ctx = producer.context();
    let first_error = ctx.first_error.lock().unwrap().clone();
    (ctx.ok.load(Ordering::Relaxed), ctx.failed.load(Ordering::Relaxed), first_error, queue_full)
}

fn consume(bootstrap: &str, topic: &str, partitions: u64, records: u64, extra: &[String]) {
    let started = Instant::now();
    let ours = [
        ("group.id", "kafka_load"),
        ("enable.auto.commit", "false"),
        ("enable.auto.offset.store", "false"),
        ("enable.partition.eof", "false"),
    ];
    let consumer: BaseConsumer =
        config(bootstrap, &ours, extra).create().unwrap_or_else(|e| fail(&format!("creating the consumer: {e}")));
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment.add_partition_offset(topic, p as i32, Offset::Beginning).unwrap();
    }
    consumer.assign(&assignment).unwrap_or_else(|e| fail(&format!("assign: {e}")));
    let (mut got, mut bytes, mut sum, mut first) = (0u64, 0u64, 0u64, None);
    let mut next = vec![0i64; partitions as usize];
    // The clock is read only when a poll returns nothing (it is not free on every machine).
    let mut last_progress = (Instant::now(), 0u64);
    while got < records {
        match consumer.poll(Duration::from_millis(100)) {
            None if got > last_progress.1 => last_progress = (Instant::now(), got),
            None if last_progress.0.elapsed() > STALL => fail(&format!("no record for {STALL:?} after {got}")),
            None => {}
            Some(Err(e)) => fail(&format!("consume: {e}")),
            Some(Ok(m)) => {
                first.get_or_insert_with(Instant::now);
                let p = m.partition() as usize;
                if m.offset() != next[p] {
                    fail(&format!("partition {p}: offset {} where {} was next", m.offset(), next[p]));
                }
                next[p] += 1;
                let v = m.payload().unwrap_or_default();
                bytes += v.len() as u64;
                sum += v.iter().map(|&b| u64::from(b)).sum::<u64>();
                got += 1;
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let from_first = first.map_or(0.0, |f| f.elapsed().as_secs_f64());
    println!(
        "{}",
        json!({"records": got, "bytes": bytes, "value_sum": sum, "seconds": seconds,
               "seconds_from_first": from_first})
    );
    if bytes != records * RECORD_BYTES as u64 || sum != bytes * u64::from(b'x') {
        fail(&format!("{bytes} value bytes (sum {sum}) for {records} records of {RECORD_BYTES} x"));
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("produce") if args.len() >= 5 => {
            let (records, producers) = (number(args.get(3), "RECORDS"), number(args.get(4), "PRODUCERS"));
            produce(&args[1], &args[2], records, producers.max(1), &args[5..]);
        }
        Some("consume") if args.len() >= 5 => {
            let (parts, records) = (number(args.get(3), "PARTITIONS"), number(args.get(4), "RECORDS"));
            consume(&args[1], &args[2], parts, records, &args[5..]);
        }
        _ => fail(
            "usage: kafka_load produce BOOTSTRAP TOPIC RECORDS PRODUCERS [K=V ...] | \
             consume BOOTSTRAP TOPIC PARTITIONS RECORDS [K=V ...]",
        ),
    }
}
