//! The declarative view spec: serde types (the same JSON in the crate and over HTTP) and their
//! validation. Every rejection names the field that was wrong (`filter.all[0].op`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::expr::Predicate;
use super::join_spec::{JoinSpec, SourceFormat};
pub use super::state_spec::StateSpec;
use super::ViewError;

/// The most source topics one view reads.
pub const VIEW_SOURCE_TOPICS_MAX: usize = 64;
/// The most named aggregates one view computes.
pub const VIEW_AGGREGATES_MAX: usize = 64;
/// The longest view name (it names a directory, like a topic).
pub const VIEW_NAME_LEN_MAX: usize = crate::config::TOPIC_NAME_LEN_MAX;

/// What a view is: its sources, how records are filtered, keyed, windowed and aggregated, and
/// where results go. Deserializes from the JSON documented in the crate docs; every field error
/// names the field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawViewSpec", into = "RawViewSpec")]
pub struct ViewSpec {
    pub name: String,
    pub source: SourceSpec,
    /// Records for which this is false are ignored.
    pub filter: Option<Predicate>,
    /// A JSON pointer into the value; `None` keys by the record key.
    pub key: Option<String>,
    /// `None` is a plain table.
    pub window: Option<WindowSpec>,
    /// Named aggregates; empty means a table of the latest value per key (a tombstone deletes it).
    pub aggregates: BTreeMap<String, AggregateSpec>,
    /// Filters emitted results (evaluated on the object of named aggregates, or the latest value).
    pub having: Option<Predicate>,
    pub emit: Option<EmitSpec>,
    /// A temporal (table) or windowed (stream) join, applied to each record before `filter`.
    pub join: Option<JoinSpec>,
    /// Key expiry and the memory bound (`state.ttl_ms`, `state.memory_bytes_max`).
    pub state: Option<StateSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    pub topics: Vec<String>,
    /// How values are read: JSON documents, or Debezium change events (a table of rows).
    #[serde(default, skip_serializing_if = "SourceFormat::is_json")]
    pub format: SourceFormat,
    /// A Debezium source: a JSON pointer into the row to its primary key; `None`: the record key
    /// (see the module docs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_key: Option<String>,
}

impl SourceSpec {
    /// JSON records of `topics`.
    pub fn new<S: Into<String>>(topics: impl IntoIterator<Item = S>) -> SourceSpec {
        SourceSpec {
            topics: topics.into_iter().map(Into::into).collect(),
            format: SourceFormat::Json,
            primary_key: None,
        }
    }

    /// Sets the pointer to a Debezium row's primary key.
    pub fn primary_key(mut self, pointer: impl Into<String>) -> SourceSpec {
        self.primary_key = Some(pointer.into());
        self
    }

    /// Debezium change events of `topics`.
    pub fn debezium<S: Into<String>>(topics: impl IntoIterator<Item = S>) -> SourceSpec {
        SourceSpec { format: SourceFormat::Debezium, ..SourceSpec::new(topics) }
    }
}

/// Window kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowType {
    Tumbling,
    Hopping,
    Session,
}

/// An event-time window. A window closes when the view's watermark (the least of its source
/// partitions' highest event times, see the module docs) passes its end plus `grace_ms`; closed
/// windows are dropped once the watermark passes their end plus `retention_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowSpec {
    #[serde(rename = "type")]
    pub kind: WindowType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advance_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gap_ms: Option<u64>,
    #[serde(default)]
    pub grace_ms: u64,
    /// A JSON pointer to the event time (epoch ms or RFC 3339); `None` uses the record timestamp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// How long closed windows stay queryable (event time after their end); default
    /// [`WINDOW_RETENTION_MS_DEFAULT`](super::window::WINDOW_RETENTION_MS_DEFAULT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_ms: Option<u64>,
    /// How long (on the store's clock) a source partition with nothing left to read may hold the
    /// watermark back; default [`IDLE_TIMEOUT_MS_DEFAULT`](super::time::IDLE_TIMEOUT_MS_DEFAULT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_ms: Option<u64>,
    /// A record whose event time is more than this after its record timestamp counts as an error
    /// record; default [`MAX_FUTURE_MS_DEFAULT`](super::time::MAX_FUTURE_MS_DEFAULT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_future_ms: Option<u64>,
}

/// Aggregate operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AggregateOp {
    Count,
    Sum,
    Min,
    Max,
    Avg,
    Latest,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregateSpec {
    pub op: AggregateOp,
    /// A JSON pointer; required by sum, min, max, avg; optional for latest (the whole value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// When results are written to the emit topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmitOn {
    /// Every change of a key (or of a key's window).
    #[default]
    Update,
    /// A window's final result, once it closes.
    WindowClose,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmitSpec {
    pub topic: String,
    #[serde(default)]
    pub on: EmitOn,
}

/// The wire form: predicates stay JSON until checked with their path.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawViewSpec {
    name: String,
    source: SourceSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    filter: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    window: Option<WindowSpec>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    aggregates: BTreeMap<String, AggregateSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    having: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    emit: Option<EmitSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    join: Option<JoinSpec>,
    state: Option<StateSpec>,
}

/// A spec error: the field (a path like `window.size_ms`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    pub field: String,
    pub reason: String,
}

impl SpecError {
    pub(crate) fn new(field: impl Into<String>, reason: impl Into<String>) -> SpecError {
        SpecError { field: field.into(), reason: reason.into() }
    }
}

impl std::fmt::Display for SpecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl From<SpecError> for ViewError {
    fn from(e: SpecError) -> ViewError {
        ViewError::InvalidSpec { field: e.field, reason: e.reason }
    }
}

impl TryFrom<RawViewSpec> for ViewSpec {
    type Error = SpecError;
    fn try_from(raw: RawViewSpec) -> Result<ViewSpec, SpecError> {
        let filter = raw.filter.as_ref().map(|v| Predicate::parse(v, "filter")).transpose()?;
        let having = raw.having.as_ref().map(|v| Predicate::parse(v, "having")).transpose()?;
        let spec = ViewSpec {
            name: raw.name,
            source: raw.source,
            filter,
            key: raw.key,
            window: raw.window,
            aggregates: raw.aggregates,
            having,
            emit: raw.emit,
            join: raw.join,
            state: raw.state,
        };
        spec.check()?;
        Ok(spec)
    }
}

impl From<ViewSpec> for RawViewSpec {
    fn from(s: ViewSpec) -> RawViewSpec {
        RawViewSpec {
            name: s.name,
            source: s.source,
            filter: s.filter.map(|p| p.to_json()),
            key: s.key,
            window: s.window,
            aggregates: s.aggregates,
            having: s.having.map(|p| p.to_json()),
            emit: s.emit,
            join: s.join,
            state: s.state,
        }
    }
}

/// A JSON pointer is empty (the whole value) or starts with `/` (RFC 6901).
pub(crate) fn check_pointer(pointer: &str, field: &str) -> Result<(), SpecError> {
    if pointer.is_empty() || pointer.starts_with('/') {
        Ok(())
    } else {
        Err(SpecError::new(field, format!("{pointer:?} is not a JSON pointer (it must start with '/')")))
    }
}

impl ViewSpec {
    /// Parses a spec from JSON. Errors name the field.
    pub fn from_json(json: &[u8]) -> Result<ViewSpec, ViewError> {
        let mut de = serde_json::Deserializer::from_slice(json);
        let raw: RawViewSpec = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let msg = e.into_inner().to_string();
            // A wrong type or value names its path (`window.grace_ms`); a missing or unknown
            // field is named by serde in backticks.
            let field = if path != "." && !path.is_empty() && !path.contains('?') {
                path
            } else {
                match msg.split('`').nth(1) {
                    // An unknown field named by the empty string.
                    Some("") => "\"\"".to_string(),
                    Some(f) => f.to_string(),
                    None => "(document)".to_string(),
                }
            };
            ViewError::InvalidSpec { field, reason: msg }
        })?;
        de.end().map_err(|e| ViewError::InvalidSpec { field: "(document)".into(), reason: e.to_string() })?;
        Ok(ViewSpec::try_from(raw)?)
    }

    /// True when the view has windows.
    pub fn is_windowed(&self) -> bool {
        self.window.is_some()
    }

    /// Checks everything that does not need the store (topics' existence is checked by `Views`).
    pub fn check(&self) -> Result<(), SpecError> {
        crate::config::validate_topic_name(&self.name)
            .map_err(|e| SpecError::new("name", format!("{:?} is not a valid view name: {e}", self.name)))?;
        let topics = &self.source.topics;
        if topics.is_empty() {
            return Err(SpecError::new("source.topics", "a view needs at least one source topic"));
        }
        if topics.len() > VIEW_SOURCE_TOPICS_MAX {
            return Err(SpecError::new(
                "source.topics",
                format!("{} topics is more than VIEW_SOURCE_TOPICS_MAX ({VIEW_SOURCE_TOPICS_MAX})", topics.len()),
            ));
        }
        for (i, t) in topics.iter().enumerate() {
            if topics[..i].contains(t) {
                return Err(SpecError::new(format!("source.topics[{i}]"), format!("topic {t:?} is listed twice")));
            }
        }
        if let Some(k) = &self.key {
            check_pointer(k, "key")?;
        }
        if let Some(w) = &self.window {
            w.check()?;
        }
        if self.aggregates.len() > VIEW_AGGREGATES_MAX {
            return Err(SpecError::new(
                "aggregates",
                format!(
                    "{} aggregates is more than VIEW_AGGREGATES_MAX ({VIEW_AGGREGATES_MAX})",
                    self.aggregates.len()
                ),
            ));
        }
        if self.window.is_some() && self.aggregates.is_empty() {
            return Err(SpecError::new("aggregates", "a windowed view needs at least one aggregate"));
        }
        for (name, a) in &self.aggregates {
            let path = format!("aggregates.{name}");
            if name.is_empty() {
                return Err(SpecError::new("aggregates", "an aggregate name is empty"));
            }
            match (a.op, &a.field) {
                (AggregateOp::Sum | AggregateOp::Min | AggregateOp::Max | AggregateOp::Avg, None) => {
                    return Err(SpecError::new(format!("{path}.field"), format!("{:?} needs a field", a.op)));
                }
                (AggregateOp::Count, Some(_)) => {
                    return Err(SpecError::new(format!("{path}.field"), "count takes no field"));
                }
                (_, Some(f)) => check_pointer(f, &format!("{path}.field"))?,
                _ => {}
            }
        }
        if let Some(e) = &self.emit {
            crate::config::validate_topic_name(&e.topic)
                .map_err(|err| SpecError::new("emit.topic", err.to_string()))?;
            if topics.contains(&e.topic) {
                return Err(SpecError::new(
                    "emit.topic",
                    format!("{:?} is also a source: the view would loop", e.topic),
                ));
            }
            if e.on == EmitOn::WindowClose && self.window.is_none() {
                return Err(SpecError::new("emit.on", "window_close needs a window"));
            }
        }
        if let Some(st) = &self.state {
            st.check(self.window.is_some())?;
        }
        super::join_spec::check(self)
    }
}

impl WindowSpec {
    fn check(&self) -> Result<(), SpecError> {
        let positive = |v: Option<u64>, field: &str| match v {
            Some(0) => Err(SpecError::new(format!("window.{field}"), "must be more than 0")),
            Some(v) if v > i64::MAX as u64 / 4 => Err(SpecError::new(format!("window.{field}"), "is too large")),
            Some(v) => Ok(v),
            None => Err(SpecError::new(format!("window.{field}"), format!("a {:?} window needs it", self.kind))),
        };
        let absent = |v: Option<u64>, field: &str| match v {
            Some(_) => {
                Err(SpecError::new(format!("window.{field}"), format!("a {:?} window does not take it", self.kind)))
            }
            None => Ok(()),
        };
        match self.kind {
            WindowType::Tumbling => {
                positive(self.size_ms, "size_ms")?;
                absent(self.advance_ms, "advance_ms")?;
                absent(self.gap_ms, "gap_ms")?;
            }
            WindowType::Hopping => {
                let size = positive(self.size_ms, "size_ms")?;
                let advance = positive(self.advance_ms, "advance_ms")?;
                if advance > size {
                    return Err(SpecError::new("window.advance_ms", "must not be more than size_ms"));
                }
                if size / advance > super::window::WINDOWS_PER_RECORD_MAX {
                    return Err(SpecError::new(
                        "window.advance_ms",
                        format!(
                            "size_ms / advance_ms is more than WINDOWS_PER_RECORD_MAX ({})",
                            super::window::WINDOWS_PER_RECORD_MAX
                        ),
                    ));
                }
                absent(self.gap_ms, "gap_ms")?;
            }
            WindowType::Session => {
                positive(self.gap_ms, "gap_ms")?;
                absent(self.size_ms, "size_ms")?;
                absent(self.advance_ms, "advance_ms")?;
            }
        }
        if self.grace_ms > i64::MAX as u64 / 4 {
            return Err(SpecError::new("window.grace_ms", "is too large"));
        }
        for (field, v) in [
            ("retention_ms", self.retention_ms),
            ("idle_timeout_ms", self.idle_timeout_ms),
            ("max_future_ms", self.max_future_ms),
        ] {
            if v.is_some_and(|v| v > i64::MAX as u64 / 4) {
                return Err(SpecError::new(
                    format!("window.{field}"),
                    format!("is too large (at most {})", i64::MAX / 4),
                ));
            }
        }
        if self.max_future_ms == Some(0) {
            return Err(SpecError::new("window.max_future_ms", "must be more than 0"));
        }
        if let Some(t) = &self.time {
            check_pointer(t, "window.time")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"{ "name": "revenue_per_product",
      "source": { "topics": ["orders"] },
      "filter": { "field": "/amount", "op": "gt", "value": 0 },
      "key": "/product_id",
      "window": { "type": "tumbling", "size_ms": 60000, "grace_ms": 5000, "time": "/ts" },
      "aggregates": { "revenue": { "op": "sum", "field": "/price" }, "orders": { "op": "count" } },
      "having": { "all": [ { "field": "/orders", "op": "gt", "value": 10 } ] },
      "emit": { "topic": "revenue-per-minute", "on": "update" } }"#;

    #[test]
    fn the_documented_example_parses_and_round_trips() {
        let spec = ViewSpec::from_json(EXAMPLE.as_bytes()).unwrap();
        assert_eq!(spec.name, "revenue_per_product");
        assert_eq!(spec.window.as_ref().unwrap().size_ms, Some(60000));
        assert_eq!(spec.aggregates.len(), 2);
        let again: ViewSpec = serde_json::from_str(&serde_json::to_string(&spec).unwrap()).unwrap();
        assert_eq!(again, spec);
    }

    fn field_of(json: &str) -> String {
        match ViewSpec::from_json(json.as_bytes()) {
            Err(ViewError::InvalidSpec { field, .. }) => field,
            other => panic!("expected InvalidSpec, got {other:?}"),
        }
    }

    #[test]
    fn errors_name_the_field() {
        let base: Value = serde_json::from_str(EXAMPLE).unwrap();
        let with = |pointer: &str, v: Value| {
            let mut doc = base.clone();
            *doc.pointer_mut(pointer).unwrap() = v;
            doc.to_string()
        };
        assert_eq!(field_of(&with("/filter/op", "like".into())), "filter.op");
        assert_eq!(field_of(&with("/having/all/0/field", "orders".into())), "having.all[0].field");
        assert_eq!(field_of(&with("/window/size_ms", 0.into())), "window.size_ms");
        assert_eq!(field_of(&with("/key", "product_id".into())), "key");
        assert_eq!(field_of(&with("/source/topics", serde_json::json!([]))), "source.topics");
        assert_eq!(field_of(&with("/emit/topic", "orders".into())), "emit.topic");
        assert_eq!(
            field_of(&with("/aggregates/revenue", serde_json::json!({"op": "sum"}))),
            "aggregates.revenue.field"
        );
        assert_eq!(field_of(&with("/name", "a/b".into())), "name");
        assert_eq!(field_of(r#"{"source": {"topics": ["a"]}}"#), "name");
        assert_eq!(field_of(r#"{"name": "x", "source": {"topics": ["a"]}, "sauce": 1}"#), "sauce");
        assert_eq!(field_of("{"), "(document)");
        assert_eq!(field_of(&with("/window/grace_ms", (-1).into())), "window.grace_ms");
        let window = |extra: &str| {
            format!(
                r#"{{"name": "w", "source": {{"topics": ["t"]}}, "aggregates": {{"n": {{"op": "count"}}}},
                "window": {{"type": "tumbling", "size_ms": 10{extra}}}}}"#
            )
        };
        assert_eq!(field_of(&window(r#", "idle_timeout_ms": -5"#)), "window.idle_timeout_ms");
        assert_eq!(field_of(&window(r#", "idle_timeout_ms": "1s""#)), "window.idle_timeout_ms");
        assert_eq!(field_of(&window(r#", "idle_timeout_ms": 9223372036854775807"#)), "window.idle_timeout_ms");
        assert_eq!(field_of(&window(r#", "max_future_ms": 0"#)), "window.max_future_ms");
        let spec = ViewSpec::from_json(window(r#", "idle_timeout_ms": 0, "max_future_ms": 5"#).as_bytes()).unwrap();
        assert_eq!(spec.window.as_ref().map(|w| (w.idle_timeout_ms, w.max_future_ms)), Some((Some(0), Some(5))));
    }
}
