//! The memory bound of a view's state (`state.memory_bytes_max`, see `state_spec.rs`).

use super::view::Version;
use super::Result;
use super::ViewError;

/// Fails when the state of `v` takes more than its bound.
pub(crate) fn check_memory(view: &str, v: &Version) -> Result<()> {
    let Some(max) = v.operator.memory_bytes_max() else { return Ok(()) };
    let bytes = v.state.read().memory_bytes();
    if bytes > max {
        return Err(ViewError::StateTooLarge { view: view.to_string(), bytes, max });
    }
    Ok(())
}
