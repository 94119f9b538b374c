//! Accepting and serving HTTP connections, with limits a careless or hostile client cannot get
//! around:
//!
//! - at most `connections_max` connections (default [`CONNECTIONS_MAX_DEFAULT`]), and never more
//!   than half the process's open-file limit, so that the store can always open its segment and
//!   index files; a connection over the limit is closed at once, with a log line (at most one
//!   a second) and a count in `/metrics`;
//! - a request head must arrive within `header_read_timeout_ms` of its first byte
//!   ([`HEADER_READ_TIMEOUT_MS_DEFAULT`]);
//! - a connection with no request in flight and no bytes moving for `keep_alive_idle_ms`
//!   ([`KEEP_ALIVE_IDLE_MS_DEFAULT`]) is closed. (Request bodies have their own timeout: see
//!   [`budget`](crate::broker::http::budget).)
//!
//! An accept error (such as running out of file descriptors) is logged and retried after
//! [`ACCEPT_ERROR_PAUSE_MS`]: the broker keeps serving the connections it has.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

use crate::broker::http::AppState;

/// Default most connections open at once (also capped at half the open-file limit).
pub const CONNECTIONS_MAX_DEFAULT: usize = 1024;
/// Default time a request head may take from its first byte.
pub const HEADER_READ_TIMEOUT_MS_DEFAULT: u64 = 10_000;
/// Default time a connection may sit idle between requests.
pub const KEEP_ALIVE_IDLE_MS_DEFAULT: u64 = 60_000;
/// The pause after a failed `accept`.
pub const ACCEPT_ERROR_PAUSE_MS: u64 = 100;
/// Least interval between two log lines about refused connections.
const REFUSED_LOG_INTERVAL: Duration = Duration::from_secs(1);

/// The connection settings of `kappalog serve`.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    pub header_read_timeout_ms: u64,
    pub keep_alive_idle_ms: u64,
    /// `None`: [`CONNECTIONS_MAX_DEFAULT`]. Either way at most half the open-file limit.
    pub connections_max: Option<usize>,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            header_read_timeout_ms: HEADER_READ_TIMEOUT_MS_DEFAULT,
            keep_alive_idle_ms: KEEP_ALIVE_IDLE_MS_DEFAULT,
            connections_max: None,
        }
    }
}

impl ConnectionConfig {
    /// The connection limit in force: the configured one, at most half the open-file limit.
    pub fn connections_max(&self) -> usize {
        let wanted = self.connections_max.unwrap_or(CONNECTIONS_MAX_DEFAULT);
        let files = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
        let cap = files.map_or(usize::MAX, |n| (n / 2) as usize);
        wanted.min(cap).max(1)
    }
}

/// Serves `app` on `listener` until `stop` turns true, then lets every open connection finish its
/// request in flight (the caller bounds how long it waits) and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    config: ConnectionConfig,
    state: AppState,
    stop: watch::Receiver<bool>,
) -> io::Result<()> {
    let max = config.connections_max();
    let refused = state.clone();
    accept_loop(
        listener,
        max,
        "HTTP",
        move || refused.metrics().connection_refused(),
        stop,
        |stream, _, stop| {
            let (app, config, state) = (app.clone(), config.clone(), state.clone());
            async move {
                state.metrics().connection(true);
                connection(stream, app, &config, stop).await;
                state.metrics().connection(false);
            }
        },
    )
    .await
}

/// The accept loop of every listener of the broker (HTTP and Kafka): accepts on `listener` until
/// `stop` turns true and spawns `serve` for each connection, at most `max` open at once. A
/// connection over the limit is closed at once and counted by `refused`, with a log line at most
/// once a second; a failed `accept` is logged and retried after [`ACCEPT_ERROR_PAUSE_MS`]. Once
/// `stop` turns true, returns when every connection it spawned has finished.
pub(crate) async fn accept_loop<F, Fut>(
    listener: TcpListener,
    max: usize,
    protocol: &'static str,
    refused: impl Fn(),
    mut stop: watch::Receiver<bool>,
    mut serve: F,
) -> io::Result<()>
where
    F: FnMut(TcpStream, SocketAddr, watch::Receiver<bool>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(max));
    let (open_tx, open_rx) = watch::channel(());
    let mut last_refused_log: Option<Instant> = None;
    let mut refused_since_log = 0u64;
    loop {
        let accepted = tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(protocol, error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(ACCEPT_ERROR_PAUSE_MS)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            refused();
            refused_since_log += 1;
            if last_refused_log.is_none_or(|t| t.elapsed() >= REFUSED_LOG_INTERVAL) {
                tracing::warn!(
                    protocol,
                    connections_max = max,
                    refused = refused_since_log,
                    "connection refused: the broker holds its maximum number of connections"
                );
                last_refused_log = Some(Instant::now());
                refused_since_log = 0;
            }
            drop(stream);
            continue;
        };
        let (served, open) = (serve(stream, peer, stop.clone()), open_rx.clone());
        tokio::spawn(async move {
            served.await;
            drop((slot, open));
        });
    }
    drop(listener);
    drop(open_rx);
    open_tx.closed().await;
    Ok(())
}

/// What a connection's watchdog looks at.
#[derive(Debug)]
struct Activity {
    started: Instant,
    /// Requests handed to the router and not answered yet.
    in_flight: AtomicUsize,
    /// Bytes of a request head have arrived and its request has not reached the router.
    head_started: AtomicBool,
    head_started_ms: AtomicU64,
    /// The last time bytes moved or a request ended.
    last_ms: AtomicU64,
}

impl Activity {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }
    fn touch(&self) {
        self.last_ms.store(self.now_ms(), Ordering::Relaxed);
    }
    fn read(&self) {
        self.touch();
        if self.in_flight.load(Ordering::Relaxed) == 0 && !self.head_started.swap(true, Ordering::Relaxed) {
            self.head_started_ms.store(self.now_ms(), Ordering::Relaxed);
        }
    }
    /// Why the connection should close now, if it should.
    fn expired(&self, config: &ConnectionConfig) -> Option<&'static str> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let now = self.now_ms();
        if self.head_started.load(Ordering::Relaxed) {
            let since = now.saturating_sub(self.head_started_ms.load(Ordering::Relaxed));
            (since > config.header_read_timeout_ms).then_some("the request head did not arrive in time")
        } else {
            let since = now.saturating_sub(self.last_ms.load(Ordering::Relaxed));
            (since > config.keep_alive_idle_ms).then_some("the connection was idle")
        }
    }
}

async fn connection(stream: TcpStream, app: Router, config: &ConnectionConfig, mut stop: watch::Receiver<bool>) {
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity {
        started: Instant::now(),
        in_flight: AtomicUsize::new(0),
        head_started: AtomicBool::new(false),
        head_started_ms: AtomicU64::new(0),
        last_ms: AtomicU64::new(0),
    });
    let io = TokioIo::new(Watched { inner: stream, activity: Arc::clone(&activity) });
    let service = Tracked { app: TowerToHyperService::new(app), activity: Arc::clone(&activity) };
    let conn = hyper::server::conn::http1::Builder::new().keep_alive(true).serve_connection(io, service);
    let mut conn = std::pin::pin!(conn);
    let tick_ms = (config.header_read_timeout_ms.min(config.keep_alive_idle_ms) / 4).clamp(10, 1000);
    let mut tick = tokio::time::interval(Duration::from_millis(tick_ms));
    let mut stopping = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = stop.wait_for(|s| *s), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = tick.tick() => {
                if let Some(why) = activity.expired(config) {
                    tracing::debug!(why, "closing a connection");
                    return;
                }
            }
        }
    }
}

/// The router, counting the requests in flight on its connection.
#[derive(Clone)]
struct Tracked {
    app: TowerToHyperService<Router>,
    activity: Arc<Activity>,
}

/// Marks a request done when dropped (answered or abandoned).
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

type Answer = Result<axum::response::Response, std::convert::Infallible>;

impl hyper::service::Service<hyper::Request<Incoming>> for Tracked {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = Pin<Box<dyn Future<Output = Answer> + Send>>;

    fn call(&self, req: hyper::Request<Incoming>) -> Self::Future {
        self.activity.in_flight.fetch_add(1, Ordering::Relaxed);
        self.activity.head_started.store(false, Ordering::Relaxed);
        let busy = Busy(Arc::clone(&self.activity));
        let answer = hyper::service::Service::call(&self.app, req);
        Box::pin(async move {
            let r = answer.await;
            drop(busy);
            r
        })
    }
}

/// The socket, noting when bytes move.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.read();
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
