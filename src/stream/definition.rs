//! A view's durable definition: what each version computes (a declarative spec, or the topics of
//! a custom view), in `views/<name>/view.json`, replaced atomically. A rebuilding view names two
//! versions: the current one and the pending one.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::spec::ViewSpec;
use crate::error::{Corruption, Error, Result};
use crate::log::io::write_atomic;

pub(crate) const VIEW_FILE: &str = "view.json";
/// The `view.json` format this build writes and the newest it reads.
pub(crate) const VIEW_FILE_VERSION: u32 = 1;

/// What a version computes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Definition {
    Spec(Box<ViewSpec>),
    /// A Rust view: the logic is given again by [`Views::create_custom`] after a restart.
    Custom {
        topics: Vec<String>,
        emit_topic: Option<String>,
    },
}

impl Definition {
    /// Every topic a version reads: the source topics, then a join's other topic.
    pub(crate) fn topics(&self) -> Vec<String> {
        match self {
            Definition::Spec(s) => {
                let mut all = s.source.topics.clone();
                all.extend(s.join.as_ref().map(|j| j.topic().to_string()));
                all
            }
            Definition::Custom { topics, .. } => topics.clone(),
        }
    }
    pub(crate) fn emit_topic(&self) -> Option<&str> {
        match self {
            Definition::Spec(s) => s.emit.as_ref().map(|e| e.topic.as_str()),
            Definition::Custom { emit_topic, .. } => emit_topic.as_deref(),
        }
    }
    pub(crate) fn spec(&self) -> Option<&ViewSpec> {
        match self {
            Definition::Spec(s) => Some(s.as_ref()),
            Definition::Custom { .. } => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VersionDef {
    pub version: u64,
    pub definition: Definition,
    /// A rebuild from a timestamp starts each partition at `offset_for_timestamp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_timestamp_ms: Option<i64>,
}

/// `view.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ViewFile {
    pub format_version: u32,
    pub current: VersionDef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<VersionDef>,
}

pub(crate) fn read_view_file(dir: &Path) -> Result<Option<ViewFile>> {
    let path = dir.join(VIEW_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&path, e)),
    };
    let file: ViewFile = serde_json::from_slice(&bytes).map_err(|e| Error::Corrupted {
        path: path.clone(),
        position: 0,
        detail: Corruption::Malformed(e.to_string()),
    })?;
    if file.format_version > VIEW_FILE_VERSION {
        return Err(Error::UnsupportedFormat { path, found: file.format_version, supported: VIEW_FILE_VERSION });
    }
    Ok(Some(file))
}

pub(crate) fn write_view_file(dir: &Path, file: &ViewFile) -> Result<()> {
    write_atomic(&dir.join(VIEW_FILE), &serde_json::to_vec_pretty(file).expect("serializable"))
}
