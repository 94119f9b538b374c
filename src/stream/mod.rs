//! Stream processing: views. A view consumes one or more topics and applies each record to a
//! keyed state (a table, aggregates, or event-time windows of aggregates), checkpointed together
//! with the source offsets it reflects, so that after a crash it resumes exactly where its state
//! is: no record counted twice, none missed.
//!
//! - `spec.rs` — the declarative spec (serde) and its validation; `expr.rs` — filter/having predicates.
//! - `aggregate.rs` — count, sum, min, max, avg, latest; `window.rs` — tumbling, hopping, session
//!   windows, watermark, grace, retention, RFC 3339.
//! - `state.rs` — the keyed state; `checkpoint.rs` — state + offsets in one atomically replaced file.
//! - `operator.rs` — applying a record (declarative operators, or a custom [`ViewLogic`]).
//! - `view.rs` — the runner thread per version, queries and status; `manager.rs` — [`Views`]:
//!   durable definitions, create / update / rebuild / delete, the atomic switch after a rebuild.
//!
//! Emitted records (`emit`) are at least once: they are appended before the checkpoint that
//! covers their inputs, so a crash in between emits them again on restart.

mod aggregate;
mod checkpoint;
mod expr;
mod manager;
mod operator;
mod spec;
mod state;
mod view;
mod window;

pub use expr::{CompareOp, Predicate, PREDICATE_DEPTH_MAX};
pub use manager::{RebuildFrom, Views, ViewsConfig};
pub use operator::{ViewLogic, WindowResult};
pub use spec::{
    AggregateOp, AggregateSpec, EmitOn, EmitSpec, SourceSpec, SpecError, ViewSpec, WindowSpec, WindowType,
    VIEW_AGGREGATES_MAX, VIEW_NAME_LEN_MAX, VIEW_SOURCE_TOPICS_MAX,
};
pub use state::ViewCounters;
pub use view::{
    KeyResult, PartitionLag, PartitionTarget, RebuildProgress, View, ViewRunState, ViewStatus, EMIT_BATCH_RECORDS_MAX,
    SCAN_LIMIT_MAX,
};
pub use window::{parse_rfc3339_ms, WINDOWS_PER_RECORD_MAX, WINDOW_RETENTION_MS_DEFAULT};

/// Errors of views, converging into [`Error::View`](crate::Error::View).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ViewError {
    /// The spec does not parse or does not fit the store; `field` names what was wrong
    /// (`window.size_ms`, `source.topics[1]`, …). The broker maps it to 422.
    #[error("invalid view spec: {field}: {reason}")]
    InvalidSpec { field: String, reason: String },
    #[error("view {0:?} not found")]
    NotFound(String),
    #[error("view {0:?} already exists")]
    Exists(String),
    #[error("custom view {name:?}: {reason}")]
    Custom { name: String, reason: String },
}
