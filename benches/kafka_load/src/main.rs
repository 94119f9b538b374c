//! The Kafka load generator of `benches/kafka.rs`: a librdkafka producer and consumer (the rdkafka
//! crate, librdkafka built from its bundled source) whose own cost per record is small, so that the
//! benchmark measures the broker rather than the client.
//!
//! ```text
//! kafka_load produce BOOTSTRAP TOPIC RECORDS PRODUCERS [KEY=VALUE ...]
//! kafka_load consume BOOTSTRAP TOPIC PARTITIONS RECORDS CONSUMERS [KEY=VALUE ...]
//! ```
//!
//! `KEY=VALUE` pairs are librdkafka settings, applied after this program's own, except the
//! `load.*` ones, which are this program's. Each command prints one JSON object on stdout and exits
//! non-zero when a record was not delivered or not read.
//!
//! - `produce` sends RECORDS keyless records of 100 bytes, split over PRODUCERS threads with a
//!   producer (and a connection) each: one value prepared before the clock starts, copied into
//!   librdkafka's queue for each record (as any user's record is). Timed from creating the
//!   producers (connecting and the metadata included) to the last acknowledgement; every record
//!   must be acknowledged and a failed one makes the run fail.
//!   - By default each record goes through the rdkafka crate's `send`, librdkafka's partitioner
//!     places it (`load.partition=app`: the program does, see [`Options`]), and every delivery is
//!     reported to the program, which polls for the reports while it sends, then flushes.
//!   - `load.api=batch` (with `delivery.report.only.error=true`): `batch.num.messages` records at a
//!     time through librdkafka's `rd_kafka_produce_batch`, one partition per call, moving to the
//!     next partition each call (see [`batch`]); only failures are reported, so a record counts as
//!     delivered when the final flush found nothing in flight and no failure was reported.
//! - `consume` reads PARTITIONS partitions from their start to their end offsets (taken when it
//!   starts; RECORDS must be their total) with CONSUMERS consumers, threads with a consumer (and a
//!   connection) each, partition `p` read by consumer `p % CONSUMERS`, checking that every
//!   partition's offsets follow one another and reading every value's bytes. One record per
//!   `poll` of the rdkafka crate, or with `load.api=batch` up to 10 000 per
//!   `rd_kafka_consume_batch_queue`. Timed from creating the consumers to the last record.

mod batch;

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
                s.spawn(move || produce_one(bootstrap, topic, i, n, extra))
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

/// This program's own `load.*` settings (the rest are librdkafka's).
#[derive(Clone, Copy, Default)]
struct Options {
    /// `load.partition=app`: the program picks each record's partition, moving to the next one every
    /// `batch.num.messages` records (as librdkafka's sticky partitioner does, without its clock
    /// read per record); default: librdkafka's partitioner.
    app_partition: bool,
    /// `load.timestamp=app`: the program sets each record's CreateTime, reading the clock once per
    /// 1024 records; default: librdkafka reads the clock for every record.
    app_timestamp: bool,
    /// `delivery.report.only.error=true` (librdkafka's): only failed records are reported, so the
    /// delivered ones are those not failed once `flush` has returned with nothing in flight.
    only_errors: bool,
    /// `load.api=batch`: records go to librdkafka with `rd_kafka_produce_batch`, `batch.num.messages`
    /// per call, one partition per call (moving to the next one each call); default: `send`.
    batch_api: bool,
    /// `batch.num.messages`, for `load.partition=app`.
    batch: u64,
}

impl Options {
    /// Takes the `load.*` settings out of `extra`.
    fn parse(extra: &[String]) -> (Options, Vec<String>) {
        let mut o = Options { batch: 10_000, ..Options::default() };
        let mut rest = vec![];
        for kv in extra {
            match kv.split_once('=') {
                Some(("load.partition", v)) => o.app_partition = v == "app",
                Some(("load.timestamp", v)) => o.app_timestamp = v == "app",
                Some(("load.api", v)) => o.batch_api = v == "batch",
                Some((k, v)) => {
                    match k {
                        "delivery.report.only.error" => o.only_errors = v == "true",
                        "batch.num.messages" => o.batch = v.parse().unwrap_or(o.batch).max(1),
                        _ => {}
                    }
                    rest.push(kv.clone());
                }
                None => rest.push(kv.clone()),
            }
        }
        (o, rest)
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn produce_one(bootstrap: &str, topic: &str, index: u64, records: u64, extra: &[String]) -> Report {
    let (opts, extra) = Options::parse(extra);
    let value = [b'x'; RECORD_BYTES];
    let producer: BaseProducer<Deliveries> = config(bootstrap, &[("acks", "all")], &extra)
        .create_with_context(Deliveries::default())
        .unwrap_or_else(|e| fail(&format!("creating the producer: {e}")));
    let partitions = if opts.app_partition || opts.batch_api {
        let md = producer
            .client()
            .fetch_metadata(Some(topic), STALL)
            .unwrap_or_else(|e| fail(&format!("metadata of {topic}: {e}")));
        md.topics().first().map_or(0, |t| t.partitions().len() as u64).max(1)
    } else {
        1
    };
    // Producers start on different partitions.
    let start = index;
    let (mut sent, mut queue_full) = (0u64, 0u64);
    let mut last_progress = (Instant::now(), 0u64);
    let mut ts = now_ms();
    if opts.batch_api {
        if !opts.only_errors {
            fail("load.api=batch needs delivery.report.only.error=true");
        }
        let handle = batch::TopicHandle::new(&producer, topic);
        let mut messages = Vec::new();
        while sent < records {
            let n = opts.batch.min(records - sent);
            let partition = ((start + sent / opts.batch) % partitions) as i32;
            batch::produce(&handle, partition, &value, n as usize, &mut messages);
            sent += n;
            // Failures, if any.
            producer.poll(Duration::ZERO);
        }
        drop(handle);
        batch::flush(&producer);
        producer.poll(Duration::ZERO);
    }
    while sent < records {
        let mut record = BaseRecord::<(), _, ()>::to(topic).payload(&value[..]);
        if opts.app_partition {
            record = record.partition(((start + sent / opts.batch) % partitions) as i32);
        }
        if opts.app_timestamp {
            record = record.timestamp(ts);
        }
        match producer.send(record) {
            Ok(()) => {
                sent += 1;
                if sent % 1024 == 0 {
                    producer.poll(Duration::ZERO);
                    if opts.app_timestamp {
                        ts = now_ms();
                    }
                }
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                // The queue is full: serve delivery reports until there is room.
                queue_full += 1;
                producer.poll(Duration::from_millis(1));
                let done = sent - producer.in_flight_count().max(0) as u64;
                if done > last_progress.1 {
                    last_progress = (Instant::now(), done);
                } else if last_progress.0.elapsed() > STALL {
                    fail(&format!("no delivery for {STALL:?} with the queue full ({done} done)"));
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
    let failed = ctx.failed.load(Ordering::Relaxed);
    let ok = match opts.only_errors {
        true if producer.in_flight_count() == 0 => records - failed,
        true => 0,
        false => ctx.ok.load(Ordering::Relaxed),
    };
    (ok, failed, first_error, queue_full)
}

/// What one consumer read: records, value bytes, the sum of the value bytes.
type Read = (u64, u64, u64);

/// Reads all of `topic`'s `partitions` from their beginning with `consumers` consumers (threads
/// with a consumer and a connection each, partition `p` read by consumer `p % consumers`), until
/// each partition's end offset at the start; `records` must be their total.
fn consume(bootstrap: &str, topic: &str, partitions: u64, records: u64, consumers: u64, extra: &[String]) {
    let started = Instant::now();
    let reads: Vec<Read> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..consumers)
            .map(|i| {
                let mine: Vec<i32> = (0..partitions).filter(|p| p % consumers == i).map(|p| p as i32).collect();
                s.spawn(move || consume_one(bootstrap, topic, &mine, extra))
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let seconds = started.elapsed().as_secs_f64();
    let got: u64 = reads.iter().map(|r| r.0).sum();
    let bytes: u64 = reads.iter().map(|r| r.1).sum();
    let sum: u64 = reads.iter().map(|r| r.2).sum();
    println!(
        "{}",
        json!({"records": got, "consumers": consumers, "bytes": bytes, "value_sum": sum, "seconds": seconds})
    );
    if got != records {
        fail(&format!("{got} records read where {records} were expected"));
    }
    if bytes != records * RECORD_BYTES as u64 || sum != bytes * u64::from(b'x') {
        fail(&format!("{bytes} value bytes (sum {sum}) for {records} records of {RECORD_BYTES} x"));
    }
}

/// One consumer reading `partitions` of `topic` from their start offsets to their end offsets
/// (read first, which also connects to the partitions' leader before the assignment: librdkafka
/// retries an offset lookup only after 500 ms when the leader's connection is not up yet).
fn consume_one(bootstrap: &str, topic: &str, partitions: &[i32], extra: &[String]) -> Read {
    let batch_api = extra.iter().any(|kv| kv == "load.api=batch");
    let extra: Vec<String> = extra.iter().filter(|kv| !kv.starts_with("load.")).cloned().collect();
    let ours = [
        ("group.id", "kafka_load"),
        ("enable.auto.commit", "false"),
        ("enable.auto.offset.store", "false"),
        ("enable.partition.eof", "false"),
    ];
    let consumer: BaseConsumer =
        config(bootstrap, &ours, &extra).create().unwrap_or_else(|e| fail(&format!("creating the consumer: {e}")));
    let mut assignment = TopicPartitionList::new();
    // next[i]: the offset expected next from partitions[i]; end[i]: its end offset.
    let (mut next, mut end) = (vec![], vec![]);
    for &p in partitions {
        let (lo, hi) = consumer
            .fetch_watermarks(topic, p, STALL)
            .unwrap_or_else(|e| fail(&format!("offsets of {topic} {p}: {e}")));
        next.push(lo);
        end.push(hi);
        assignment.add_partition_offset(topic, p, Offset::Offset(lo)).unwrap();
    }
    let records: u64 = next.iter().zip(&end).map(|(lo, hi)| (hi - lo) as u64).sum();
    consumer.assign(&assignment).unwrap_or_else(|e| fail(&format!("assign: {e}")));
    let mut tally = Tally { partitions, next, got: 0, bytes: 0, sum: 0 };
    // The clock is read only when a poll returns nothing (it is not free on every machine).
    let mut last_progress = (Instant::now(), 0u64);
    let queue = batch_api.then(|| batch::ConsumerQueue::new(&consumer));
    let mut buf = vec![std::ptr::null_mut(); if batch_api { 10_000 } else { 0 }];
    while tally.got < records {
        let n = match &queue {
            Some(q) => q
                .batch(Duration::from_millis(100), &mut buf, |p, o, v| tally.add(p, o, v))
                .unwrap_or_else(|e| fail(&format!("consume: {e}"))),
            None => match consumer.poll(Duration::from_millis(100)) {
                None => 0,
                Some(Err(e)) => fail(&format!("consume: {e}")),
                Some(Ok(m)) => {
                    tally.add(m.partition(), m.offset(), m.payload().unwrap_or_default());
                    1
                }
            },
        };
        if n == 0 {
            if tally.got > last_progress.1 {
                last_progress = (Instant::now(), tally.got);
            } else if last_progress.0.elapsed() > STALL {
                fail(&format!("no record for {STALL:?} after {}", tally.got));
            }
        }
    }
    drop(queue);
    (tally.got, tally.bytes, tally.sum)
}

/// What one consumer has read, checking that each partition's offsets follow one another.
struct Tally<'a> {
    partitions: &'a [i32],
    /// The offset expected next from each of `partitions`.
    next: Vec<i64>,
    got: u64,
    bytes: u64,
    sum: u64,
}

impl Tally<'_> {
    fn add(&mut self, p: i32, offset: i64, v: &[u8]) {
        let Some(i) = self.partitions.iter().position(|&q| q == p) else { fail(&format!("a record of partition {p}")) };
        if offset != self.next[i] {
            fail(&format!("partition {p}: offset {offset} where {} was next", self.next[i]));
        }
        self.next[i] += 1;
        self.bytes += v.len() as u64;
        self.sum += v.iter().map(|&b| u64::from(b)).sum::<u64>();
        self.got += 1;
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("produce") if args.len() >= 5 => {
            let (records, producers) = (number(args.get(3), "RECORDS"), number(args.get(4), "PRODUCERS"));
            produce(&args[1], &args[2], records, producers.max(1), &args[5..]);
        }
        Some("consume") if args.len() >= 6 => {
            let (parts, records) = (number(args.get(3), "PARTITIONS"), number(args.get(4), "RECORDS"));
            let consumers = number(args.get(5), "CONSUMERS").clamp(1, parts.max(1));
            consume(&args[1], &args[2], parts, records, consumers, &args[6..]);
        }
        _ => fail(
            "usage: kafka_load produce BOOTSTRAP TOPIC RECORDS PRODUCERS [K=V ...] | \
             consume BOOTSTRAP TOPIC PARTITIONS RECORDS CONSUMERS [K=V ...]",
        ),
    }
}
