//! The HTTP API: Confluent REST Proxy v2 routes plus kappalog's extensions, over a [`Store`].
//! Embeddable: `kappalog::broker::http::router(AppState::new(store, HttpConfig::default())?)`.
//!
//! Handlers translate only; storage work runs on the blocking pool.
//!
//! Layout: `errors.rs` (Confluent error bodies), `content.rs` (embedded formats, parameters),
//! `topic_config.rs` (Kafka config names), `topics.rs`, `produce.rs`, `fetch.rs`,
//! `consumers/` (consumer instances), `groups.rs`, `views.rs` (stream views), `admin.rs` (maintenance), `metrics.rs`,
//! `openapi.rs`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use axum::Router;

use crate::Store;

mod admin;
pub mod budget;
pub mod consumers;
pub mod content;
pub mod errors;
mod fetch;
mod groups;
pub mod metrics;
pub mod openapi;
mod produce;
pub mod produce_body;
pub mod topic_config;
mod topics;
mod views;

pub use errors::ApiError;

/// Default largest request body (a produce of many records).
pub const BODY_BYTES_MAX_DEFAULT: usize = 64 * 1024 * 1024;
/// Default and largest `max_bytes` of a fetch.
pub const FETCH_BYTES_DEFAULT: u64 = 1024 * 1024;
pub const FETCH_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// Most records one fetch returns.
pub const FETCH_RECORDS_MAX: usize = 100_000;
/// Default and longest long-poll of a fetch, in milliseconds.
pub const FETCH_TIMEOUT_MS_DEFAULT: u64 = 1000;
pub const FETCH_TIMEOUT_MS_MAX: u64 = 60_000;

/// Shortest `consumer.instance.timeout.ms` (and `consumer_instance_timeout_ms` of `serve`): an
/// instance must outlive the time between its requests.
pub const CONSUMER_INSTANCE_TIMEOUT_MS_MIN: u64 = 100;

/// Broker settings that the HTTP layer needs.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Bodies larger than this get a 413.
    pub body_bytes_max: usize,
    /// Produce to an unknown topic creates it (with `auto_create_partitions`).
    pub auto_create_topics: bool,
    pub auto_create_partitions: u32,
    /// The base of the `base_uri` returned for new consumer instances (`http://host:port`).
    pub advertised_uri: String,
    /// A consumer instance idle longer than this (unless it sets its own) is removed.
    pub consumer_timeout_ms_default: u64,
    /// The memory budget of all requests in flight (see [`budget`]).
    pub requests_memory_bytes_max: usize,
    /// A request body that stops arriving for this long gets a 408.
    pub body_read_timeout_ms: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            body_bytes_max: BODY_BYTES_MAX_DEFAULT,
            auto_create_topics: false,
            auto_create_partitions: 1,
            advertised_uri: "http://127.0.0.1:8082".into(),
            consumer_timeout_ms_default: consumers::CONSUMER_TIMEOUT_MS_DEFAULT,
            requests_memory_bytes_max: budget::REQUESTS_MEMORY_BYTES_DEFAULT,
            body_read_timeout_ms: budget::BODY_READ_TIMEOUT_MS_DEFAULT,
        }
    }
}

/// What every handler shares. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    inner: Arc<StateInner>,
}

#[derive(Debug)]
struct StateInner {
    store: Store,
    config: HttpConfig,
    consumers: consumers::Registry,
    views: crate::stream::Views,
    metrics: metrics::Metrics,
    memory: budget::MemoryBudget,
    /// Set when the server begins shutting down: long-polls return at once.
    draining: tokio::sync::watch::Sender<bool>,
}

impl AppState {
    /// Opens the group coordinator over `store` (creating its offsets topic if needed) and its
    /// views (resuming each from its checkpoint). Blocking: it replays the committed offsets and
    /// loads checkpoints. The views stop (after a final checkpoint) when the last clone is dropped.
    pub fn new(store: Store, config: HttpConfig) -> Result<AppState, crate::broker::server::ServeError> {
        let coordinator = store.groups()?;
        let views = crate::stream::Views::open(&store, crate::stream::ViewsConfig::default())?;
        let memory = budget::MemoryBudget::new(config.requests_memory_bytes_max);
        Ok(AppState {
            inner: Arc::new(StateInner {
                consumers: consumers::Registry::new(store.clone(), coordinator),
                views,
                store,
                config,
                metrics: metrics::Metrics::default(),
                memory,
                draining: tokio::sync::watch::channel(false).0,
            }),
        })
    }
    pub fn store(&self) -> &Store {
        &self.inner.store
    }
    pub fn config(&self) -> &HttpConfig {
        &self.inner.config
    }
    pub fn consumers(&self) -> &consumers::Registry {
        &self.inner.consumers
    }
    pub fn views(&self) -> &crate::stream::Views {
        &self.inner.views
    }
    pub fn metrics(&self) -> &metrics::Metrics {
        &self.inner.metrics
    }
    pub fn memory(&self) -> &budget::MemoryBudget {
        &self.inner.memory
    }

    /// Starts draining: long-polls in flight return now (with what they have), so that a graceful
    /// shutdown does not wait for their timeouts.
    pub fn drain(&self) {
        self.inner.draining.send_replace(true);
    }

    /// Resolves when draining starts (at once if it has).
    pub(crate) async fn drained(&self) {
        let mut rx = self.inner.draining.subscribe();
        let _ = rx.wait_for(|d| *d).await;
    }

    /// Removes idle consumer instances every `tick` until `stop` fires. The server spawns it.
    pub async fn reap_consumers(self, tick: Duration, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(tick) => {
                    let state = self.clone();
                    // Leaving a group may write: off the async workers.
                    let _ = tokio::task::spawn_blocking(move || state.consumers().reap()).await;
                }
                _ = stop.changed() => return,
            }
        }
    }
}

/// Every route (method, path) of the API, for the OpenAPI document and its sync test.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/health"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/topics"),
    ("POST", "/topics"),
    ("GET", "/topics/{topic}"),
    ("POST", "/topics/{topic}"),
    ("DELETE", "/topics/{topic}"),
    ("PUT", "/topics/{topic}/configs"),
    ("POST", "/topics/{topic}/retention"),
    ("POST", "/topics/{topic}/compaction"),
    ("GET", "/topics/{topic}/partitions"),
    ("GET", "/topics/{topic}/partitions/{partition}"),
    ("POST", "/topics/{topic}/partitions/{partition}"),
    ("GET", "/topics/{topic}/partitions/{partition}/offsets"),
    ("GET", "/topics/{topic}/partitions/{partition}/records"),
    ("POST", "/consumers/{group}"),
    ("DELETE", "/consumers/{group}/instances/{instance}"),
    ("POST", "/consumers/{group}/instances/{instance}/subscription"),
    ("GET", "/consumers/{group}/instances/{instance}/subscription"),
    ("DELETE", "/consumers/{group}/instances/{instance}/subscription"),
    ("POST", "/consumers/{group}/instances/{instance}/assignments"),
    ("GET", "/consumers/{group}/instances/{instance}/assignments"),
    ("GET", "/consumers/{group}/instances/{instance}/records"),
    ("POST", "/consumers/{group}/instances/{instance}/offsets"),
    ("GET", "/consumers/{group}/instances/{instance}/offsets"),
    ("POST", "/consumers/{group}/instances/{instance}/positions"),
    ("POST", "/consumers/{group}/instances/{instance}/positions/beginning"),
    ("POST", "/consumers/{group}/instances/{instance}/positions/end"),
    ("POST", "/producers"),
    ("GET", "/groups"),
    ("GET", "/groups/{group}"),
    ("DELETE", "/groups/{group}"),
    ("POST", "/groups/{group}/reset-offsets"),
    ("GET", "/views"),
    ("POST", "/views"),
    ("GET", "/views/{name}"),
    ("PUT", "/views/{name}"),
    ("DELETE", "/views/{name}"),
    ("GET", "/views/{name}/keys"),
    ("GET", "/views/{name}/keys/{key}"),
    ("POST", "/views/{name}/rebuild"),
];

/// The middleware of every route, in one layer: the request is timed ([`metrics`]), its body
/// bounded and read ([`budget`]), and its error responses get Confluent's body.
async fn every_request(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    metrics::track(&state, req, |req| budget::bounded_body(&state, req, next)).await
}

/// The router over `state`: every route of [`ROUTES`], Confluent-shaped errors for everything
/// (unknown routes and oversized bodies included), the body limit, request metrics.
pub fn router(state: AppState) -> Router {
    let body_limit = state.config().body_bytes_max;
    let inst = "/consumers/{group}/instances/{instance}";
    Router::new()
        .route("/health", get(topics::health))
        .route("/metrics", get(metrics::render))
        .route("/openapi.json", get(openapi::document))
        .route("/topics", get(topics::list).post(topics::create))
        .route("/topics/{topic}", get(topics::describe).post(produce::to_topic).delete(topics::delete))
        .route("/topics/{topic}/configs", put(topics::set_configs))
        .route("/topics/{topic}/retention", post(admin::retention))
        .route("/topics/{topic}/compaction", post(admin::compaction))
        .route("/topics/{topic}/partitions", get(topics::partitions))
        .route("/topics/{topic}/partitions/{partition}", get(topics::partition).post(produce::to_partition))
        .route("/topics/{topic}/partitions/{partition}/offsets", get(topics::offsets))
        .route("/topics/{topic}/partitions/{partition}/records", get(fetch::stateless))
        .route("/consumers/{group}", post(consumers::create))
        .route(inst, axum::routing::delete(consumers::delete))
        .route(
            &format!("{inst}/subscription"),
            post(consumers::subscribe).get(consumers::subscription).delete(consumers::unsubscribe),
        )
        .route(&format!("{inst}/assignments"), post(consumers::assign).get(consumers::assignments))
        .route(&format!("{inst}/records"), get(consumers::records))
        .route(&format!("{inst}/offsets"), post(consumers::commit).get(consumers::committed))
        .route(&format!("{inst}/positions"), post(consumers::seek))
        .route(&format!("{inst}/positions/beginning"), post(consumers::seek_beginning))
        .route(&format!("{inst}/positions/end"), post(consumers::seek_end))
        .route("/producers", post(produce::init_producer))
        .route("/groups", get(groups::list))
        .route("/groups/{group}", get(groups::describe).delete(groups::delete))
        .route("/groups/{group}/reset-offsets", post(groups::reset_offsets))
        .route("/views", get(views::list).post(views::create))
        .route("/views/{name}", get(views::status).put(views::update).delete(views::delete))
        .route("/views/{name}/keys", get(views::scan))
        .route("/views/{name}/keys/{key}", get(views::get_key))
        .route("/views/{name}/rebuild", post(views::rebuild))
        .fallback(|| async { ApiError::not_found(errors::code::NOT_FOUND, "no such route: see GET /openapi.json") })
        .layer(axum::middleware::from_fn_with_state(state.clone(), every_request))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}
