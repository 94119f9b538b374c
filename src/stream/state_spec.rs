//! The `state` part of a view spec: how long keys live (`ttl_ms`) and how much memory the state
//! may take (`memory_bytes_max`).
//!
//! - `ttl_ms`: a key whose last record is more than this older (in event time: the record
//!   timestamps) than the view's watermark is dropped, counted in `keys_expired`, and, when the
//!   view emits, a tombstone of the key is emitted. The watermark is the one windows use (the least
//!   over the source partitions that are not idle, `time.rs`), so expiry is the same in a replay as
//!   live. Views without a window only; a windowed view's windows expire by `window.retention_ms`.
//! - `memory_bytes_max`: when the state's estimated size ([`ViewStatus::state_bytes`], keys, entries,
//!   windows and indexes) passes it, the view fails (`state: failed`, the error names the bound),
//!   rather than grow until the process runs out of memory. It is checked after each read batch, so
//!   the state can pass it by at most one batch's keys.
//!
//! [`ViewStatus::state_bytes`]: super::view::ViewStatus::state_bytes

use serde::{Deserialize, Serialize};

use super::spec::SpecError;

/// `state` in a view spec.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateSpec {
    /// Keys not updated for this long in event time are dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u64>,
    /// The most bytes the state may take before the view fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes_max: Option<u64>,
}

impl StateSpec {
    pub(crate) fn check(&self, windowed: bool) -> Result<(), SpecError> {
        match self.ttl_ms {
            Some(0) => return Err(SpecError::new("state.ttl_ms", "must be more than 0")),
            Some(v) if v > i64::MAX as u64 / 4 => return Err(SpecError::new("state.ttl_ms", "is too large")),
            Some(_) if windowed => {
                return Err(SpecError::new("state.ttl_ms", "a windowed view's windows expire by window.retention_ms"))
            }
            _ => {}
        }
        if self.memory_bytes_max == Some(0) {
            return Err(SpecError::new("state.memory_bytes_max", "must be more than 0"));
        }
        Ok(())
    }
}
