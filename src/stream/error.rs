//! Errors of views.

/// Why a view operation failed: a view's own error, or an error of the store below it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ViewError {
    /// An error of the store, its topics or the log (a view's source and output are topics).
    #[error(transparent)]
    Log(#[from] crate::Error),
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
    /// A source topic was deleted and created again while the view was not running: its id is
    /// not the one the view's checkpoint holds, so the view's state is of the old topic.
    #[error("source topic {topic:?} was deleted and created again (topic id {found}; the view's checkpoint is of {expected}): rebuild the view to read the new topic")]
    SourceRecreated { topic: String, expected: crate::TopicId, found: crate::TopicId },
    /// The view's state passed its `state.memory_bytes_max`: the view fails rather than grow.
    #[error("view {view:?}: its state takes about {bytes} bytes, more than state.memory_bytes_max ({max})")]
    StateTooLarge { view: String, bytes: u64, max: u64 },
}

/// `Result` with [`ViewError`].
pub type Result<T, E = ViewError> = std::result::Result<T, E>;
