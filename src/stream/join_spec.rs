//! The `join` and `source.format` parts of the view spec, and their validation (every rejection
//! names the field). Semantics in the module docs of `stream` (`## Joins`, `## Change data capture`).

use serde::{Deserialize, Serialize};

use super::spec::{check_pointer, AggregateOp, SpecError, ViewSpec};

/// How long a temporal join keeps a table key's superseded versions, in event time behind the
/// table's latest time, unless the spec says (`join.retention_ms`).
pub const JOIN_RETENTION_MS_DEFAULT: u64 = 24 * 60 * 60 * 1000;
/// The most versions a temporal join keeps of one table key: older ones are dropped first (a
/// stream record older than the oldest version kept is late).
pub const JOIN_VERSIONS_PER_KEY_MAX: usize = 1024;
/// The most records a windowed stream-stream join buffers on each side; a record past it is
/// joined with what is buffered but not buffered itself (counted in `error_records`).
pub const JOIN_BUFFER_RECORDS_MAX: usize = 1_000_000;

/// How a topic's values are read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceFormat {
    /// Each value is a JSON document.
    #[default]
    Json,
    /// Debezium's change events (JSON, with or without the `{"schema", "payload"}` wrapper):
    /// `op` `c`/`r`/`u`/`d`, the row in `after` (`before` for deletes), `ts_ms` the event time.
    Debezium,
}

impl SourceFormat {
    pub(crate) fn is_json(&self) -> bool {
        *self == SourceFormat::Json
    }
}

/// Inner or left join.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JoinType {
    /// A record with no match is dropped (counted in `records_unmatched`).
    #[default]
    Inner,
    /// A record with no match goes on with `as` set to `null`.
    Left,
}

/// A join of the view's source with a table (`table`: as of each record's event time) or with
/// another stream (`stream`: records within `within_ms` of each other). Exactly one of `table`
/// and `stream` is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinSpec {
    /// A topic read as a table: the latest value per record key, versioned by time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// A topic read as a stream, joined within a time window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// A JSON pointer into the source record: its value is matched against the table's record key
    /// (a string as it is, another value as its compact JSON text), or the other stream's `other_key`.
    pub on: String,
    /// The field of the joined document that holds the other side's value.
    #[serde(rename = "as")]
    pub alias: String,
    #[serde(rename = "type", default)]
    pub kind: JoinType,
    /// A JSON pointer to the other side's event time; `None`: its record timestamp (a Debezium
    /// table: `ts_ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// How the other side's values are read (`debezium`: tables only).
    #[serde(default, skip_serializing_if = "SourceFormat::is_json")]
    pub format: SourceFormat,
    /// Table joins: how long superseded versions are kept; default [`JOIN_RETENTION_MS_DEFAULT`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_ms: Option<u64>,
    /// Stream joins: a JSON pointer into the other stream's records, matched against `on`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_key: Option<String>,
    /// Stream joins: the greatest distance in event time between two joined records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_ms: Option<u64>,
    /// Stream joins: how far behind the watermark a record may be and still join (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_ms: Option<u64>,
}

impl JoinSpec {
    /// A temporal join with table topic `table`: `on` (a pointer into the source record) matched
    /// against its record keys, the table's value placed at `alias`. Inner, record timestamps.
    pub fn table(table: impl Into<String>, on: impl Into<String>, alias: impl Into<String>) -> JoinSpec {
        JoinSpec {
            table: Some(table.into()),
            stream: None,
            on: on.into(),
            alias: alias.into(),
            kind: JoinType::Inner,
            time: None,
            format: SourceFormat::Json,
            retention_ms: None,
            other_key: None,
            within_ms: None,
            grace_ms: None,
        }
    }

    /// A windowed join with stream topic `stream`: records whose `on` and `other_key` match and
    /// whose event times are at most `within_ms` apart.
    pub fn stream(
        stream: impl Into<String>,
        on: impl Into<String>,
        other_key: impl Into<String>,
        within_ms: u64,
        alias: impl Into<String>,
    ) -> JoinSpec {
        JoinSpec {
            table: None,
            stream: Some(stream.into()),
            other_key: Some(other_key.into()),
            within_ms: Some(within_ms),
            ..JoinSpec::table("", on, alias)
        }
    }

    /// Sets the join type.
    pub fn kind(mut self, kind: JoinType) -> JoinSpec {
        self.kind = kind;
        self
    }

    /// Sets the pointer to the other side's event time.
    pub fn time(mut self, pointer: impl Into<String>) -> JoinSpec {
        self.time = Some(pointer.into());
        self
    }

    /// Sets the format of the table topic.
    pub fn format(mut self, format: SourceFormat) -> JoinSpec {
        self.format = format;
        self
    }

    /// Sets `retention_ms` (table joins).
    pub fn retention_ms(mut self, ms: u64) -> JoinSpec {
        self.retention_ms = Some(ms);
        self
    }

    /// Sets `grace_ms` (stream joins).
    pub fn grace_ms(mut self, ms: u64) -> JoinSpec {
        self.grace_ms = Some(ms);
        self
    }

    /// The other side's topic.
    pub fn topic(&self) -> &str {
        self.table.as_deref().or(self.stream.as_deref()).unwrap_or_default()
    }
}

/// The first token of a pointer (`/product/id` → `product`).
fn first_token(pointer: &str) -> Option<&str> {
    pointer.strip_prefix('/').map(|p| p.split('/').next().unwrap_or_default())
}

const TOO_LARGE: u64 = i64::MAX as u64 / 4;

/// Checks `join` and `source.format` against the rest of the spec.
pub(crate) fn check(spec: &ViewSpec) -> Result<(), SpecError> {
    let debezium = spec.source.format == SourceFormat::Debezium;
    if let Some(pk) = &spec.source.primary_key {
        check_pointer(pk, "source.primary_key")?;
        if !debezium {
            return Err(SpecError::new("source.primary_key", "only a debezium source has a primary key"));
        }
    }
    if debezium {
        if spec.window.is_some() {
            return Err(SpecError::new("window", "a debezium source is a table of rows: it has no windows"));
        }
        if spec.join.is_some() {
            return Err(SpecError::new("join", "a debezium source cannot be the stream side of a join"));
        }
        for (name, a) in &spec.aggregates {
            if matches!(a.op, AggregateOp::Min | AggregateOp::Max | AggregateOp::Latest) {
                return Err(SpecError::new(
                    format!("aggregates.{name}.op"),
                    format!(
                        "{:?} cannot retract a row that changed or was deleted (a debezium source): use count, \
                         sum or avg",
                        a.op
                    ),
                ));
            }
        }
        if spec.aggregates.is_empty() {
            if let (Some(k), Some(pk)) = (&spec.key, &spec.source.primary_key) {
                if k != pk {
                    return Err(SpecError::new(
                        "key",
                        "a table of a debezium source is keyed by its primary key: key and source.primary_key differ",
                    ));
                }
            }
        }
    }
    let Some(j) = &spec.join else { return Ok(()) };
    let topic = match (&j.table, &j.stream) {
        (Some(t), None) | (None, Some(t)) => t,
        _ => return Err(SpecError::new("join.table", "a join needs exactly one of table and stream")),
    };
    let field = if j.table.is_some() { "join.table" } else { "join.stream" };
    crate::config::validate_topic_name(topic).map_err(|e| SpecError::new(field, e.to_string()))?;
    if spec.source.topics.contains(topic) {
        return Err(SpecError::new(field, format!("{topic:?} is also a source topic")));
    }
    if spec.emit.as_ref().is_some_and(|e| &e.topic == topic) {
        return Err(SpecError::new("emit.topic", format!("{topic:?} is the joined topic: the view would loop")));
    }
    check_pointer(&j.on, "join.on")?;
    if let Some(t) = &j.time {
        check_pointer(t, "join.time")?;
    }
    if j.alias.is_empty() || j.alias.contains('/') || j.alias.contains('~') {
        return Err(SpecError::new("join.as", format!("{:?} is not a field name (non-empty, no '/' or '~')", j.alias)));
    }
    // The fields read from the source record before the join: `as` would hide them.
    let read_before = [
        Some(("join.on", j.on.as_str())),
        spec.window.as_ref().and_then(|w| w.time.as_deref()).map(|t| ("window.time", t)),
    ];
    for (what, pointer) in read_before.into_iter().flatten() {
        if first_token(pointer) == Some(j.alias.as_str()) || pointer.is_empty() {
            return Err(SpecError::new(
                "join.as",
                format!("{:?} collides with {what} ({pointer:?}), read from the source record", j.alias),
            ));
        }
    }
    if spec.source.topics.len() > super::spec::VIEW_SOURCE_TOPICS_MAX - 1 {
        return Err(SpecError::new("join", "a join needs a topic place beside the source topics"));
    }
    let refuse = |v: bool, name: &str, why: &str| {
        if v {
            Err(SpecError::new(format!("join.{name}"), why.to_string()))
        } else {
            Ok(())
        }
    };
    if j.table.is_some() {
        refuse(j.other_key.is_some(), "other_key", "a table join matches the table's record key")?;
        refuse(j.within_ms.is_some(), "within_ms", "a table join is as of each record's time: it has no window")?;
        refuse(j.grace_ms.is_some(), "grace_ms", "a table join has no window")?;
        refuse(j.retention_ms.is_some_and(|r| r > TOO_LARGE), "retention_ms", "is too large")?;
    } else {
        refuse(j.format != SourceFormat::Json, "format", "only a table may be a debezium topic")?;
        refuse(j.retention_ms.is_some(), "retention_ms", "a stream join keeps records for within_ms + grace_ms")?;
        match &j.other_key {
            Some(k) => check_pointer(k, "join.other_key")?,
            None => return Err(SpecError::new("join.other_key", "a stream join needs it")),
        }
        match j.within_ms {
            None => return Err(SpecError::new("join.within_ms", "a stream join needs it")),
            Some(w) => refuse(w > TOO_LARGE, "within_ms", "is too large")?,
        }
        refuse(j.grace_ms.is_some_and(|g| g > TOO_LARGE), "grace_ms", "is too large")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::stream::ViewError;
    use crate::stream::ViewSpec;
    use serde_json::json;

    fn field_of(v: serde_json::Value) -> String {
        match ViewSpec::from_json(v.to_string().as_bytes()) {
            Err(ViewError::InvalidSpec { field, .. }) => field,
            other => panic!("expected InvalidSpec for {v}, got {other:?}"),
        }
    }

    #[test]
    fn every_join_and_cdc_field_is_named_in_errors() {
        let with_join = |join: serde_json::Value| json!({"name": "v", "source": {"topics": ["orders"]}, "join": join});
        let table = || json!({"table": "products", "on": "/product_id", "as": "product"});
        let stream = || json!({"stream": "clicks", "on": "/ad", "other_key": "/ad", "within_ms": 10, "as": "click"});
        assert!(ViewSpec::from_json(with_join(table()).to_string().as_bytes()).is_ok());
        assert!(ViewSpec::from_json(with_join(stream()).to_string().as_bytes()).is_ok());
        let mut both = table();
        both["stream"] = json!("clicks");
        assert_eq!(field_of(with_join(both)), "join.table");
        let set = |mut j: serde_json::Value, k: &str, v: serde_json::Value| {
            j[k] = v;
            with_join(j)
        };
        assert_eq!(field_of(set(table(), "table", json!("orders"))), "join.table");
        assert_eq!(field_of(set(table(), "table", json!("a/b"))), "join.table");
        assert_eq!(field_of(set(table(), "on", json!("product_id"))), "join.on");
        assert_eq!(field_of(set(table(), "as", json!("product_id"))), "join.as");
        assert_eq!(field_of(set(table(), "as", json!(""))), "join.as");
        assert_eq!(field_of(set(table(), "as", json!("a/b"))), "join.as");
        assert_eq!(field_of(set(table(), "type", json!("outer"))), "join.type");
        assert_eq!(field_of(set(table(), "time", json!("at"))), "join.time");
        assert_eq!(field_of(set(table(), "within_ms", json!(5))), "join.within_ms");
        assert_eq!(field_of(set(table(), "other_key", json!("/x"))), "join.other_key");
        assert_eq!(field_of(set(table(), "grace_ms", json!(5))), "join.grace_ms");
        assert_eq!(field_of(set(table(), "retention_ms", json!(-1))), "join.retention_ms");
        assert_eq!(field_of(set(table(), "format", json!("avro"))), "join.format");
        assert_eq!(field_of(set(table(), "colour", json!(1))), "join.colour");
        assert_eq!(field_of(set(stream(), "within_ms", serde_json::Value::Null)), "join.within_ms");
        assert_eq!(field_of(set(stream(), "other_key", serde_json::Value::Null)), "join.other_key");
        assert_eq!(field_of(set(stream(), "format", json!("debezium"))), "join.format");
        assert_eq!(field_of(set(stream(), "retention_ms", json!(5))), "join.retention_ms");
        let mut windowed = with_join(table());
        windowed["aggregates"] = json!({"n": {"op": "count"}});
        windowed["window"] = json!({"type": "tumbling", "size_ms": 10, "time": "/product/at"});
        assert_eq!(field_of(windowed), "join.as", "window.time is read before the join");
        let mut looped = with_join(table());
        looped["emit"] = json!({"topic": "products"});
        assert_eq!(field_of(looped), "emit.topic");

        let cdc = |extra: serde_json::Value| {
            let mut v = json!({"name": "v", "source": {"topics": ["users"], "format": "debezium"}, "key": "/country",
                "aggregates": {"n": {"op": "count"}}});
            for (k, x) in extra.as_object().unwrap() {
                v[k] = x.clone();
            }
            v
        };
        assert!(ViewSpec::from_json(cdc(json!({})).to_string().as_bytes()).is_ok());
        assert_eq!(field_of(cdc(json!({"aggregates": {"lo": {"op": "min", "field": "/x"}}}))), "aggregates.lo.op");
        assert_eq!(field_of(cdc(json!({"join": table()}))), "join");
        assert_eq!(field_of(cdc(json!({"source": {"topics": ["users"], "format": "csv"}}))), "source.format");
        assert_eq!(field_of(cdc(json!({"source": {"topics": ["users"], "primary_key": "/id"}}))), "source.primary_key");
        assert_eq!(
            field_of(json!({"name": "v", "source": {"topics": ["users"], "format": "debezium", "primary_key": "/id"},
                "key": "/email"})),
            "key"
        );
    }
}
