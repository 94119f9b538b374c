//! The broker: `kappalog serve` and its command line, behind the default cargo feature `broker`.
//!
//! - [`http`]: the HTTP API (Confluent REST Proxy v2 and extensions) as an embeddable axum router.
//! - [`kafka`]: the Kafka wire protocol (listener, bounded codec, the APIs).
//! - [`listener`]: accepting connections, with their limit and timeouts.
//! - [`server`]: the `serve` process: configuration, listeners, signals, graceful shutdown.
//! - [`cli`]: the command line; the `kappalog` binary only calls [`cli::main`].
//!
//! An application that embeds the log does not need this module: build with
//! `default-features = false` and none of the broker's dependencies (axum, hyper, clap, reqwest, toml,
//! tracing-subscriber) are linked.

pub mod cli;
pub mod http;
pub mod kafka;
pub mod listener;
pub mod server;
