//! The loop check: a view may not emit to a topic that feeds, through other views, one of its own
//! sources (`a` -> this view -> `b` -> another view -> `a`), or every result would be read again
//! and emitted again, for ever.

use std::collections::BTreeMap;

use super::definition::Definition;
use super::Result;
use super::ViewError;

/// One other view's edge: its name, its source topics and its emit topic.
pub(crate) struct Edge {
    pub view: String,
    pub sources: Vec<String>,
    pub emit: String,
}

impl Edge {
    /// The edge of a definition, if it emits.
    pub(crate) fn of(view: &str, d: &Definition) -> Option<Edge> {
        d.emit_topic().map(|e| Edge { view: view.to_string(), sources: d.topics().to_vec(), emit: e.to_string() })
    }
}

/// Refuses `definition` when its emit topic reaches one of its own sources through `others` (every
/// other view's definitions; a rebuilding view has two). The error names `emit.topic` and the path.
/// (A view whose emit topic is its own source is refused by `ViewSpec::check`.)
pub(crate) fn check_no_loop(definition: &Definition, others: &[Edge]) -> Result<()> {
    let Some(emit) = definition.emit_topic() else { return Ok(()) };
    // A walk from the emit topic; `via[t]`: the view that feeds topic t, and that view's source.
    let mut via: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut next = vec![emit.to_string()];
    while let Some(topic) = next.pop() {
        if definition.topics().contains(&topic) {
            let mut path = vec![format!("{topic:?}")];
            let mut t = &topic;
            while let Some((view, from)) = via.get(t) {
                path.extend([format!("view {view:?}"), format!("{from:?}")]);
                t = from;
            }
            path.reverse();
            return Err(ViewError::InvalidSpec {
                field: "emit.topic".into(),
                reason: format!("the views would loop: this view emits to {}, one of its sources", path.join(" -> ")),
            });
        }
        for edge in others {
            if edge.sources.contains(&topic) && edge.emit != emit && !via.contains_key(&edge.emit) {
                via.insert(edge.emit.clone(), (edge.view.clone(), topic.clone()));
                next.push(edge.emit.clone());
            }
        }
    }
    Ok(())
}
