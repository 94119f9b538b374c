//! Accepting Kafka connections and serving each one, with the limits of the HTTP listener
//! ([`crate::broker::listener`]):
//!
//! - at most `connections_max` connections (the same rule as HTTP, counted separately); one over
//!   the limit is closed at once and counted in `/metrics`;
//! - a connection with nothing in flight and no bytes arriving for `connections_max_idle_ms`
//!   (Kafka's setting, 10 minutes by default: clients keep idle connections open) is closed; a
//!   request whose bytes stop arriving for `header_read_timeout_ms` closes it too;
//! - a request larger than `request_bytes_max` (Kafka's `socket.request.max.bytes`) or smaller
//!   than a header closes the connection; the buffer grows with the bytes that arrive, not with
//!   the size a request declares;
//! - requests of one connection are handled one after another, in order, and answered in that
//!   order (Kafka's rule). A Produce is handled once its batches are queued in the log's order (so
//!   a producer's batches keep their order); its acknowledgement waits for the fsync while the
//!   next requests are read and appended, so a client's pipelined requests share fsyncs. At most
//!   `in_flight_max` answers wait to be written (acknowledgements waiting for their fsync): past
//!   that the connection is not read until they are written, nor while the client does not read
//!   its responses.
//! - an answer's chunks (a Fetch's batches are slices of the mapped segments, not copies) go to
//!   the socket in vectored writes.
//!
//! At shutdown the listener stops accepting, each connection stops reading, parked fetches answer
//! with what they have, and the answers in flight are written before the connection closes.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use super::{dispatch, Context, Outcome, REQUEST_BYTES_MIN};
use crate::broker::listener::{accept_loop, ConnectionConfig};

/// Most bytes the read buffer grows by per read.
const READ_CHUNK_BYTES: usize = 256 * 1024;

/// Serves Kafka clients on `listener` until `stop` turns true, then lets every connection write
/// its answers in flight and returns.
pub async fn serve(
    listener: TcpListener,
    ctx: Context,
    config: ConnectionConfig,
    stop: watch::Receiver<bool>,
) -> io::Result<()> {
    let max = config.connections_max();
    let metrics = Arc::clone(&ctx.metrics);
    accept_loop(
        listener,
        max,
        "Kafka",
        move || metrics.connection_refused(),
        stop,
        |stream, peer, stop| {
            let (mut ctx, config) = (ctx.clone(), config.clone());
            ctx.peer = Some(peer.ip());
            async move {
                ctx.metrics.connection(true);
                connection(stream, &ctx, &config, stop).await;
                ctx.metrics.connection(false);
            }
        },
    )
    .await
}

type Pending = std::pin::Pin<Box<dyn std::future::Future<Output = Option<Vec<Bytes>>> + Send>>;

/// Serves one connection: this task reads and handles requests in order; a writer task awaits
/// their answers in the same order and writes them.
pub(crate) async fn connection(
    stream: TcpStream,
    ctx: &Context,
    config: &ConnectionConfig,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = mpsc::channel::<Pending>(ctx.config.in_flight_max.max(1));
    let writing = Arc::clone(&in_flight);
    let writer = tokio::spawn(async move {
        while let Some(answer) = rx.recv().await {
            let chunks = answer.await;
            writing.fetch_sub(1, Ordering::Relaxed);
            if let Err(e) = write_chunks(&mut wr, chunks.unwrap_or_default()).await {
                tracing::debug!(error = %e, "writing a Kafka response failed");
                return;
            }
        }
        let _ = wr.shutdown().await;
    });
    let mut buf = BytesMut::new();
    loop {
        let frame = tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            f = next_frame(&mut rd, &mut buf, ctx, config, &in_flight) => f,
        };
        let frame = match frame {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(why) => {
                tracing::debug!(why, "closing a Kafka connection");
                break;
            }
        };
        match dispatch(ctx, frame).await {
            Outcome::Reply(answer) => {
                in_flight.fetch_add(1, Ordering::Relaxed);
                if tx.send(answer).await.is_err() {
                    break;
                }
            }
            Outcome::Close(why) => {
                tracing::info!(why, "closing a Kafka connection");
                break;
            }
        }
    }
    drop(tx);
    let _ = writer.await;
}

/// Most chunks handed to one vectored write.
const IOV_MAX: usize = 64;

/// Writes `chunks` in order with vectored writes.
async fn write_chunks(wr: &mut OwnedWriteHalf, mut chunks: Vec<Bytes>) -> io::Result<()> {
    let mut at = 0;
    loop {
        while at < chunks.len() && chunks[at].is_empty() {
            at += 1;
        }
        if at == chunks.len() {
            return Ok(());
        }
        let slices: Vec<io::IoSlice<'_>> = chunks[at..].iter().take(IOV_MAX).map(|c| io::IoSlice::new(c)).collect();
        let mut n = wr.write_vectored(&slices).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        while n > 0 {
            let c = &mut chunks[at];
            if n >= c.len() {
                n -= c.len();
                at += 1;
            } else {
                c.advance(n);
                n = 0;
            }
        }
    }
}

/// The next request (without its size prefix); `None` at a clean end of stream.
async fn next_frame(
    rd: &mut OwnedReadHalf,
    buf: &mut BytesMut,
    ctx: &Context,
    config: &ConnectionConfig,
    in_flight: &AtomicUsize,
) -> Result<Option<Bytes>, String> {
    let max = ctx.config.request_bytes_max;
    loop {
        if buf.len() >= 4 {
            let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
            if size < REQUEST_BYTES_MIN as i32 || size as usize > max {
                return Err(format!("request size {size} outside {REQUEST_BYTES_MIN}..={max}"));
            }
            let size = size as usize;
            if buf.len() >= 4 + size {
                buf.advance(4);
                return Ok(Some(buf.split_to(size).freeze()));
            }
            buf.reserve((4 + size - buf.len()).min(READ_CHUNK_BYTES));
        } else {
            buf.reserve(READ_CHUNK_BYTES.min(64 * 1024));
        }
        let (wait, idle) = if buf.is_empty() {
            (ctx.config.connections_max_idle_ms, true)
        } else {
            (config.header_read_timeout_ms, false)
        };
        match tokio::time::timeout(Duration::from_millis(wait), rd.read_buf(buf)).await {
            Ok(Ok(0)) if buf.is_empty() => return Ok(None),
            Ok(Ok(0)) => return Err("the connection closed in the middle of a request".into()),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(format!("reading: {e}")),
            Err(_) if idle && in_flight.load(Ordering::Relaxed) > 0 => {}
            Err(_) if idle => return Err("the connection was idle".into()),
            Err(_) => return Err("a request stopped arriving".into()),
        }
    }
}
