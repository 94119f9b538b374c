//! The Kafka wire protocol: unmodified Kafka clients and tools (kcat, librdkafka, the Java and
//! Python clients) produce to and fetch from the same store as the HTTP API, on one node.
//!
//! # Layout
//! - `wire`: the bounded codec primitives (`Reader`, `Writer`).
//! - `header`: request headers, response framing, api keys.
//! - [`listener`]: accepting connections; one connection's read → handle → write pipeline.
//! - one file per API family: `api_versions`, `metadata`, `produce`, `fetch`, `offsets`
//!   (ListOffsets, DeleteRecords), `admin` (topics and configs), `producer_id` (InitProducerId),
//!   `groups` (the consumer-group APIs).
//! - [`metrics`]: the counters in `/metrics`.
//!
//! The codec is kappalog's own rather than a generated one: a count or a length read off the wire
//! is checked against the bytes that remain before anything is allocated for it, so no request
//! can make the broker allocate far beyond the request's size.
//!
//! kappalog is one node: node id [`NODE_ID`], the controller and the leader of every partition.

pub(crate) mod admin;
pub(crate) mod api_versions;
pub(crate) mod fetch;
pub(crate) mod groups;
pub(crate) mod header;
pub mod listener;
pub(crate) mod metadata;
pub mod metrics;
pub(crate) mod offsets;
pub(crate) mod produce;
pub(crate) mod producer_id;
pub(crate) mod wire;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::watch;

use crate::Store;
use header::{key, RequestHeader};
use wire::{Reader, Writer};

/// The node id of this broker in Metadata (also the controller id and every partition's leader).
pub const NODE_ID: i32 = 0;
/// Where `kappalog serve` listens for Kafka clients with no flag or config.
pub const KAFKA_LISTEN_DEFAULT: &str = "127.0.0.1:9092";
/// Largest request accepted (Kafka's `socket.request.max.bytes`); a larger one closes the connection.
pub const REQUEST_BYTES_MAX_DEFAULT: usize = 100 * 1024 * 1024;
/// Smallest request: a header with a null client id.
pub const REQUEST_BYTES_MIN: usize = 10;
/// Default most requests of one connection read and not yet answered; past it the connection
/// is not read until a response is written (back-pressure on a client that does not read).
pub const IN_FLIGHT_MAX_DEFAULT: usize = 16;
/// Default time a Kafka connection may sit idle (nothing in flight, no bytes arriving) before the
/// broker closes it (Kafka's `connections.max.idle.ms`).
pub const CONNECTIONS_MAX_IDLE_MS_DEFAULT: u64 = 600_000;
/// The leader epoch of every partition in Metadata and ListOffsets: the `partitionLeaderEpoch` of
/// every stored batch (one node, always its first leader epoch).
pub const LEADER_EPOCH: i32 = crate::log::batch::PARTITION_LEADER_EPOCH;
/// The cluster id in Metadata.
pub const CLUSTER_ID: &str = "kappalog";

/// Kafka error codes kappalog answers with.
pub mod code {
    pub const UNKNOWN_SERVER_ERROR: i16 = -1;
    pub const NONE: i16 = 0;
    pub const OFFSET_OUT_OF_RANGE: i16 = 1;
    pub const CORRUPT_MESSAGE: i16 = 2;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const REQUEST_TIMED_OUT: i16 = 7;
    pub const MESSAGE_TOO_LARGE: i16 = 10;
    pub const INVALID_TOPIC_EXCEPTION: i16 = 17;
    pub const RECORD_LIST_TOO_LARGE: i16 = 18;
    pub const INVALID_REQUIRED_ACKS: i16 = 21;
    pub const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
    pub const INVALID_TIMESTAMP: i16 = 32;
    pub const UNSUPPORTED_VERSION: i16 = 35;
    pub const TOPIC_ALREADY_EXISTS: i16 = 36;
    pub const INVALID_PARTITIONS: i16 = 37;
    pub const INVALID_REPLICATION_FACTOR: i16 = 38;
    pub const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
    pub const INVALID_CONFIG: i16 = 40;
    pub const INVALID_REQUEST: i16 = 42;
    pub const POLICY_VIOLATION: i16 = 44;
    pub const KAFKA_STORAGE_ERROR: i16 = 56;
    pub const UNSUPPORTED_COMPRESSION_TYPE: i16 = 76;
    pub const INVALID_RECORD: i16 = 87;
}

/// The Kafka error code for a store error.
pub fn error_code(e: &crate::Error) -> i16 {
    use crate::Error as E;
    match e {
        E::TopicNotFound(_) | E::PartitionNotFound { .. } => code::UNKNOWN_TOPIC_OR_PARTITION,
        E::TopicExists(_) => code::TOPIC_ALREADY_EXISTS,
        E::InvalidTopicName { .. } => code::INVALID_TOPIC_EXCEPTION,
        E::InternalTopic(_) => code::TOPIC_AUTHORIZATION_FAILED,
        E::InvalidConfig { .. } => code::INVALID_CONFIG,
        E::LimitExceeded { .. } => code::MESSAGE_TOO_LARGE,
        E::InvalidRecord(_) => code::INVALID_RECORD,
        E::OffsetOutOfRange { .. } => code::OFFSET_OUT_OF_RANGE,
        E::Io { .. } | E::Poisoned { .. } | E::Corrupted { .. } => code::KAFKA_STORAGE_ERROR,
        E::Producer { error, .. } => error.kafka_code(),
        _ => code::UNKNOWN_SERVER_ERROR,
    }
}

/// The Kafka listener's settings.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// `None`: no Kafka listener.
    pub listen: Option<String>,
    /// `host:port` returned by Metadata; `None`: the bound address.
    pub advertised: Option<String>,
    pub request_bytes_max: usize,
    pub in_flight_max: usize,
    /// An idle connection is closed after this long.
    pub connections_max_idle_ms: u64,
    /// Metadata (v4+ when the client allows it) creates unknown topics, with `auto_create_partitions`.
    pub auto_create_topics: bool,
    pub auto_create_partitions: u32,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            listen: Some(KAFKA_LISTEN_DEFAULT.into()),
            advertised: None,
            request_bytes_max: REQUEST_BYTES_MAX_DEFAULT,
            in_flight_max: IN_FLIGHT_MAX_DEFAULT,
            connections_max_idle_ms: CONNECTIONS_MAX_IDLE_MS_DEFAULT,
            auto_create_topics: false,
            auto_create_partitions: 1,
        }
    }
}

/// What every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct Context {
    pub store: Store,
    pub config: Arc<KafkaConfig>,
    /// What Metadata returns for this broker.
    pub advertised_host: Arc<str>,
    pub advertised_port: i32,
    pub metrics: Arc<metrics::KafkaMetrics>,
    /// Turns true at shutdown: parked fetches answer with what they have.
    pub stop: watch::Receiver<bool>,
    /// The client's address, on a connection's own copy (DescribeGroups' `client_host`).
    pub peer: Option<std::net::IpAddr>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("advertised", &(&self.advertised_host, self.advertised_port)).finish()
    }
}

impl Context {
    pub fn new(store: Store, config: KafkaConfig, advertised: (String, i32), stop: watch::Receiver<bool>) -> Context {
        let metrics = metrics::KafkaMetrics::of(&store);
        Context {
            store,
            config: Arc::new(config),
            advertised_host: advertised.0.into(),
            advertised_port: advertised.1,
            metrics,
            stop,
            peer: None,
        }
    }
}

/// A handler's answer: a response body, one to await (Produce's acknowledgement, once its
/// batches are durable), or none (Produce with `acks = 0`).
pub(crate) enum Answer {
    Now(Writer),
    Later(Pin<Box<dyn Future<Output = Writer> + Send>>),
    Nothing,
}

/// What the connection does with one request.
pub(crate) enum Outcome {
    /// Send these response chunks (possibly after awaiting them).
    Reply(Pin<Box<dyn Future<Output = Option<Vec<Bytes>>> + Send>>),
    /// Close the connection (an unknown api key, an unsupported version, a malformed request).
    Close(String),
}

/// The versions of each API this broker serves, outside the consumer-group APIs
/// (`(api key, min, max)`). Produce is advertised from v0, as Kafka 4 does, because librdkafka
/// before 2.11.1 (Debian's kcat among them) only compresses when the range includes v0, but
/// v0-2 are refused (the connection is closed).
pub const SUPPORTED: &[(i16, i16, i16)] = &[
    (key::PRODUCE, 0, 8),
    (key::FETCH, 4, 11),
    (key::LIST_OFFSETS, 1, 5),
    (key::METADATA, 0, 8),
    (key::API_VERSIONS, 0, 3),
    (key::CREATE_TOPICS, 2, 4),
    (key::DELETE_TOPICS, 1, 3),
    (key::DELETE_RECORDS, 0, 1),
    (key::DESCRIBE_CONFIGS, 1, 3),
    (key::INCREMENTAL_ALTER_CONFIGS, 0, 0),
];

/// Every advertised `(api key, min, max)`: this module's and the groups'.
pub fn advertised() -> impl Iterator<Item = (i16, i16, i16)> {
    SUPPORTED.iter().chain(groups::SUPPORTED).chain(producer_id::SUPPORTED).copied()
}

/// The advertised range of `api_key`.
pub fn range(api_key: i16) -> Option<(i16, i16)> {
    advertised().find(|(k, _, _)| *k == api_key).map(|(_, lo, hi)| (lo, hi))
}

/// Handles one request frame (size prefix removed).
pub(crate) async fn dispatch(ctx: &Context, frame: Bytes) -> Outcome {
    let started = Instant::now();
    let mut r = Reader::new(frame);
    let fixed = match header::RequestHeader::read_fixed(&mut r) {
        Ok(f) => f,
        Err(e) => return Outcome::Close(format!("malformed request header: {e}")),
    };
    let (api_key, api_version, correlation_id) = fixed;
    let Some((lo, hi)) = range(api_key) else {
        ctx.metrics.unknown_api();
        return Outcome::Close(format!("unknown api key {api_key} (correlation id {correlation_id})"));
    };
    if api_key == key::API_VERSIONS && !(lo..=hi).contains(&api_version) {
        // Kafka's rule: an unsupported ApiVersions gets UNSUPPORTED_VERSION with a v0 body and
        // our ranges, so the client retries with a version we have.
        let header = RequestHeader { api_key, api_version: 0, correlation_id, client_id: None };
        let body = api_versions::unsupported();
        ctx.metrics.request(api_key, true, started.elapsed().as_secs_f64());
        return ready(header::frame(&header, body));
    }
    if !(lo..=hi).contains(&api_version) {
        ctx.metrics.request(api_key, true, 0.0);
        return Outcome::Close(format!(
            "{} v{api_version} is not supported (supported: v{lo}-v{hi})",
            header::api_name(api_key)
        ));
    }
    let header = match RequestHeader::read_rest(&mut r, fixed) {
        Ok(h) => h,
        Err(e) => return Outcome::Close(format!("malformed request header: {e}")),
    };
    let in_flight = ctx.metrics.in_flight();
    let answer = handle(ctx, &header, &mut r).await;
    drop(in_flight);
    let metrics = Arc::clone(&ctx.metrics);
    match answer {
        Err(e) => {
            metrics.request(api_key, true, started.elapsed().as_secs_f64());
            Outcome::Close(format!("{} v{api_version}: {e}", header::api_name(api_key)))
        }
        Ok(Answer::Nothing) => {
            metrics.request(api_key, false, started.elapsed().as_secs_f64());
            Outcome::Reply(Box::pin(async { None }))
        }
        Ok(Answer::Now(body)) => {
            metrics.request(api_key, false, started.elapsed().as_secs_f64());
            ready(header::frame(&header, body))
        }
        Ok(Answer::Later(body)) => {
            let in_flight = metrics.in_flight();
            Outcome::Reply(Box::pin(async move {
                let body = body.await;
                drop(in_flight);
                metrics.request(api_key, false, started.elapsed().as_secs_f64());
                Some(header::frame(&header, body))
            }))
        }
    }
}

/// Whether requests of `api_key` at `version` use the flexible encoding (header v2).
#[doc(hidden)]
pub fn request_is_flexible(api_key: i16, version: i16) -> bool {
    header::flexible_from(api_key).is_some_and(|v| version >= v)
}

/// Answers one request frame (its size prefix removed) as a connection would: `Err` with the
/// reason when the connection would be closed, `Ok(None)` when nothing is sent back (acks=0),
/// else the response frame's bytes. For the fuzz target and tests.
#[doc(hidden)]
pub async fn answer(ctx: &Context, frame: Bytes) -> Result<Option<Vec<u8>>, String> {
    match dispatch(ctx, frame).await {
        Outcome::Close(why) => Err(why),
        Outcome::Reply(reply) => Ok(reply.await.map(|chunks| chunks.concat())),
    }
}

fn ready(chunks: Vec<Bytes>) -> Outcome {
    Outcome::Reply(Box::pin(async move { Some(chunks) }))
}

async fn handle(ctx: &Context, h: &RequestHeader, r: &mut Reader) -> wire::Result<Answer> {
    let v = h.api_version;
    let now = |w: Writer| Ok(Answer::Now(w));
    match h.api_key {
        key::API_VERSIONS => now(api_versions::handle(v, r)?),
        key::METADATA => now(metadata::handle(ctx, v, r).await?),
        key::PRODUCE => produce::handle(ctx, v, r).await,
        key::FETCH => now(fetch::handle(ctx, v, r).await?),
        key::LIST_OFFSETS => now(offsets::list_offsets(ctx, v, r).await?),
        key::DELETE_RECORDS => now(offsets::delete_records(ctx, v, r).await?),
        key::CREATE_TOPICS => now(admin::create_topics(ctx, v, r).await?),
        key::DELETE_TOPICS => now(admin::delete_topics(ctx, v, r).await?),
        key::DESCRIBE_CONFIGS => now(admin::describe_configs(ctx, v, r)?),
        key::INCREMENTAL_ALTER_CONFIGS => now(admin::incremental_alter_configs(ctx, v, r).await?),
        key::INIT_PRODUCER_ID => now(producer_id::handle(ctx, v, r).await?),
        _ => now(groups::handle(ctx, h, r).await?),
    }
}

/// Runs blocking store work off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}
