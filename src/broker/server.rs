//! `kappalog serve`: the broker process. Opens the store, serves the HTTP API and the Kafka
//! protocol, and on SIGINT or SIGTERM stops accepting, lets in-flight requests finish (up to [`SHUTDOWN_GRACE_MS`]), stops
//! the views (each checkpoints its state), then drops the last store handle, which flushes,
//! fsyncs and marks a clean shutdown.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::broker::http::{self, AppState, HttpConfig};
pub use crate::broker::kafka::KafkaConfig;
use crate::broker::listener;
pub use crate::broker::listener::ConnectionConfig;
use crate::{Store, StoreConfig};

/// Where `kappalog serve` keeps its data with no flag or config.
pub const DATA_DIR_DEFAULT: &str = "./kappalog-data";
/// Where it listens with no flag or config.
pub const LISTEN_DEFAULT: &str = "127.0.0.1:8082";
/// How long shutdown waits for in-flight requests (long-polls included) before dropping them.
pub const SHUTDOWN_GRACE_MS: u64 = 5_000;
/// How often idle consumer instances are looked for.
pub const CONSUMER_REAP_INTERVAL_MS: u64 = 1_000;

/// The optional TOML config file (`--config`); every key is optional. Flags and environment
/// variables override it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<String>,
    pub body_bytes_max: Option<usize>,
    pub auto_create_topics: Option<bool>,
    pub auto_create_partitions: Option<u32>,
    pub consumer_instance_timeout_ms: Option<u64>,
    pub advertised_uri: Option<String>,
    pub cleaner_interval_ms: Option<u64>,
    pub requests_memory_bytes_max: Option<usize>,
    pub body_read_timeout_ms: Option<u64>,
    pub header_read_timeout_ms: Option<u64>,
    pub keep_alive_idle_ms: Option<u64>,
    pub connections_max: Option<usize>,
    pub commit_threads: Option<usize>,
    /// The Kafka listener's address, or `off`.
    pub kafka_listen: Option<String>,
    /// `host:port` Metadata returns to Kafka clients.
    pub kafka_advertised: Option<String>,
    pub kafka_request_bytes_max: Option<usize>,
    pub kafka_connections_max_idle_ms: Option<u64>,
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<FileConfig, ServeError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ServeError::Io { what: format!("reading config file {}", path.display()), source: e })?;
        toml::from_str(&text).map_err(|e| ServeError::Config(format!("{}: {e}", path.display())))
    }
}

/// Everything `serve` needs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    pub listen: String,
    /// `None`: `http://<the bound address>`.
    pub advertised_uri: Option<String>,
    /// How often the background cleaner runs retention and compaction; 0 disables it.
    pub cleaner_interval_ms: u64,
    /// Group-commit threads of the store (1..=[`COMMIT_THREADS_MAX`](crate::log::COMMIT_THREADS_MAX)).
    pub commit_threads: usize,
    pub http: HttpConfig,
    pub connections: ConnectionConfig,
    /// The Kafka listener (`listen: None` disables it); its auto-creation follows `http`'s.
    pub kafka: KafkaConfig,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            data_dir: DATA_DIR_DEFAULT.into(),
            listen: LISTEN_DEFAULT.into(),
            advertised_uri: None,
            cleaner_interval_ms: crate::limits::CLEANER_INTERVAL_MS_DEFAULT,
            commit_threads: crate::log::COMMIT_THREADS,
            http: HttpConfig::default(),
            connections: ConnectionConfig::default(),
            kafka: KafkaConfig::default(),
        }
    }
}

impl ServeConfig {
    /// Applies a config file's values over this one.
    pub fn with_file(mut self, f: FileConfig) -> ServeConfig {
        if let Some(v) = f.data_dir {
            self.data_dir = v;
        }
        if let Some(v) = f.listen {
            self.listen = v;
        }
        if let Some(v) = f.body_bytes_max {
            self.http.body_bytes_max = v;
        }
        if let Some(v) = f.auto_create_topics {
            self.http.auto_create_topics = v;
        }
        if let Some(v) = f.auto_create_partitions {
            self.http.auto_create_partitions = v;
        }
        if let Some(v) = f.consumer_instance_timeout_ms {
            self.http.consumer_timeout_ms_default = v;
        }
        if f.advertised_uri.is_some() {
            self.advertised_uri = f.advertised_uri;
        }
        if let Some(v) = f.cleaner_interval_ms {
            self.cleaner_interval_ms = v;
        }
        if let Some(v) = f.requests_memory_bytes_max {
            self.http.requests_memory_bytes_max = v;
        }
        if let Some(v) = f.body_read_timeout_ms {
            self.http.body_read_timeout_ms = v;
        }
        if let Some(v) = f.header_read_timeout_ms {
            self.connections.header_read_timeout_ms = v;
        }
        if let Some(v) = f.keep_alive_idle_ms {
            self.connections.keep_alive_idle_ms = v;
        }
        if f.connections_max.is_some() {
            self.connections.connections_max = f.connections_max;
        }
        if let Some(v) = f.commit_threads {
            self.commit_threads = v;
        }
        if let Some(v) = f.kafka_listen {
            self.kafka.listen = (!v.eq_ignore_ascii_case("off")).then_some(v);
        }
        if f.kafka_advertised.is_some() {
            self.kafka.advertised = f.kafka_advertised;
        }
        if let Some(v) = f.kafka_request_bytes_max {
            self.kafka.request_bytes_max = v;
        }
        if let Some(v) = f.kafka_connections_max_idle_ms {
            self.kafka.connections_max_idle_ms = v;
        }
        self
    }
}

impl ServeConfig {
    /// Refuses settings the broker cannot run with, naming the key.
    pub fn validate(&self) -> Result<(), ServeError> {
        let bad = |key: &str, why: String| Err(ServeError::Config(format!("{key}: {why}")));
        let h = &self.http;
        if h.body_bytes_max == 0 {
            return bad("body_bytes_max", "must be positive".into());
        }
        if h.requests_memory_bytes_max < h.body_bytes_max {
            let why = format!("{} is below body_bytes_max ({})", h.requests_memory_bytes_max, h.body_bytes_max);
            return bad("requests_memory_bytes_max", why);
        }
        let min = http::CONSUMER_INSTANCE_TIMEOUT_MS_MIN;
        if h.consumer_timeout_ms_default < min {
            let why = format!("{} is below the minimum, {min}", h.consumer_timeout_ms_default);
            return bad("consumer_instance_timeout_ms", why);
        }
        for (key, ms) in [
            ("body_read_timeout_ms", h.body_read_timeout_ms),
            ("header_read_timeout_ms", self.connections.header_read_timeout_ms),
            ("keep_alive_idle_ms", self.connections.keep_alive_idle_ms),
            ("kafka_connections_max_idle_ms", self.kafka.connections_max_idle_ms),
        ] {
            if ms == 0 {
                return bad(key, "must be positive".into());
            }
        }
        if self.connections.connections_max == Some(0) {
            return bad("connections_max", "must be positive".into());
        }
        let max = crate::log::COMMIT_THREADS_MAX;
        if !(1..=max).contains(&self.commit_threads) {
            return bad("commit_threads", format!("{} is outside 1..={max}", self.commit_threads));
        }
        if let Some(l) = &self.kafka.listen {
            if l.parse::<SocketAddr>().is_err() {
                return bad("kafka_listen", format!("{l:?} is not an address (ip:port) or off"));
            }
        }
        if let Some(a) = &self.kafka.advertised {
            if kafka_advertised(a).is_none() {
                return bad("kafka_advertised", format!("{a:?} is not host:port"));
            }
        }
        if self.kafka.request_bytes_max < crate::broker::kafka::REQUEST_BYTES_MIN {
            return bad("kafka_request_bytes_max", "is below the smallest request".into());
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] crate::Error),
    /// Opening the group coordinator failed (replaying its committed offsets).
    #[error(transparent)]
    Groups(#[from] crate::groups::GroupError),
    /// Opening the views failed (loading their definitions and checkpoints).
    #[error(transparent)]
    Views(#[from] crate::stream::ViewError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// `host:port` split, the port a valid one.
fn kafka_advertised(a: &str) -> Option<(String, i32)> {
    let (host, port) = a.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    (!host.is_empty()).then(|| (host.trim_start_matches('[').trim_end_matches(']').to_string(), i32::from(port)))
}

/// Runs the broker until SIGINT or SIGTERM. Prints `kappalog listening on http://ADDR` on stdout
/// once it accepts connections, then `kappalog kafka listening on ADDR` when the Kafka listener
/// is on (tests start it on port 0 and read the lines).
pub fn serve(config: ServeConfig) -> Result<(), ServeError> {
    config.validate()?;
    let listen: SocketAddr =
        config.listen.parse().map_err(|e| ServeError::Config(format!("listen address {:?}: {e}", config.listen)))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("kappalog-http")
        .build()
        .map_err(|e| ServeError::Io { what: "starting the runtime".into(), source: e })?;
    let store_config = StoreConfig {
        cleaner_interval_ms: config.cleaner_interval_ms,
        commit_threads: config.commit_threads,
        ..StoreConfig::default()
    };
    let store = Store::open(&config.data_dir, store_config)?;
    let result = runtime.block_on(run(store.clone(), listen, config));
    // Requests past the grace period are dropped with the runtime; blocking appends finish first.
    runtime.shutdown_timeout(Duration::from_millis(SHUTDOWN_GRACE_MS));
    let flushed = store.close();
    tracing::info!("broker stopped");
    result?;
    flushed?;
    Ok(())
}

async fn run(store: Store, listen: SocketAddr, config: ServeConfig) -> Result<(), ServeError> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| ServeError::Io { what: format!("binding {listen}"), source: e })?;
    let bound = listener.local_addr().map_err(|e| ServeError::Io { what: "local address".into(), source: e })?;
    let kafka_listener = match &config.kafka.listen {
        None => None,
        Some(addr) => {
            let addr: SocketAddr =
                addr.parse().map_err(|e| ServeError::Config(format!("kafka_listen {addr:?}: {e}")))?;
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| ServeError::Io { what: format!("binding the Kafka listener {addr}"), source: e })?;
            let local = l.local_addr().map_err(|e| ServeError::Io { what: "local address".into(), source: e })?;
            Some((l, local))
        }
    };
    let mut http_config = config.http.clone();
    http_config.advertised_uri = config.advertised_uri.clone().unwrap_or_else(|| format!("http://{bound}"));
    let kafka_store = store.clone();
    let state = tokio::task::spawn_blocking(move || AppState::new(store, http_config))
        .await
        .map_err(|e| ServeError::Config(format!("opening the group coordinator: {e}")))??;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let reaper = tokio::spawn(state.clone().reap_consumers(Duration::from_millis(CONSUMER_REAP_INTERVAL_MS), stop_rx));
    let app = http::router(state.clone());
    let state_for_views = state.clone();
    tracing::info!(%bound, data_dir = %config.data_dir.display(), "kappalog listening");
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "kappalog listening on http://{bound}");
        if let Some((_, local)) = &kafka_listener {
            let _ = writeln!(out, "kappalog kafka listening on {local}");
        }
        let _ = out.flush();
    }
    let (signaled_tx, mut signaled_rx) = tokio::sync::watch::channel(false);
    let draining = state.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: no new connections; finishing in-flight requests");
        draining.drain();
        let _ = signaled_tx.send(true);
    });
    let kafka = kafka_listener.map(|(l, local)| {
        let mut kafka_config = config.kafka.clone();
        kafka_config.auto_create_topics = config.http.auto_create_topics;
        kafka_config.auto_create_partitions = config.http.auto_create_partitions;
        let advertised = match kafka_config.advertised.as_deref().and_then(kafka_advertised) {
            Some(a) => a,
            None => (local.ip().to_string(), i32::from(local.port())),
        };
        let ctx = crate::broker::kafka::Context::new(kafka_store, kafka_config, advertised, signaled_rx.clone());
        tracing::info!(%local, "kafka listening");
        tokio::spawn(crate::broker::kafka::listener::serve(l, ctx, config.connections.clone(), signaled_rx.clone()))
    });
    let server = listener::serve(listener, app, config.connections.clone(), state.clone(), signaled_rx.clone());
    let server = async move {
        let http = server.await;
        if let Some(k) = kafka {
            match k.await {
                Ok(Err(e)) => tracing::warn!(error = %e, "the Kafka listener failed"),
                Err(e) => tracing::warn!(error = %e, "the Kafka listener panicked"),
                Ok(Ok(())) => {}
            }
        }
        http
    };
    let served = tokio::select! {
        r = server => r.map_err(|e| ServeError::Io { what: "serving".into(), source: e }),
        _ = async {
            let _ = signaled_rx.wait_for(|s| *s).await;
            tokio::time::sleep(Duration::from_millis(SHUTDOWN_GRACE_MS)).await;
        } => {
            tracing::warn!(grace_ms = SHUTDOWN_GRACE_MS, "in-flight requests still running after the grace period: dropping them");
            Ok(())
        }
    };
    let _ = stop_tx.send(true);
    let _ = reaper.await;
    // The last handle of the views (unless a request past the grace period still holds one, which
    // the runtime's shutdown drops): their runners stop after a final checkpoint. Joining them
    // blocks, so off the async workers.
    let _ = tokio::task::spawn_blocking(move || drop(state_for_views)).await;
    served
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; SIGINT only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
