//! Change-data-capture sources: Debezium's JSON change events read as changes of a table of
//! rows. A table view keeps the current rows; an aggregating view retracts a row's old
//! contribution when it changes or is deleted, so each group's aggregates are those of the rows
//! it holds now (see the module docs of `stream`, `## Change data capture`).

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::aggregate::{self, Aggregates};
use super::expr::lookup;
use super::operator::{Declarative, Meta};
use super::project;
use super::state::{Entry, State};
use super::time::Stamp;
use crate::log::NewRecord;

/// What a change does to its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// `c` (create), `r` (snapshot read), `u` (update): the row is `after`.
    Upsert,
    /// `d`: the row is `before`.
    Delete,
}

/// One change event.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Change {
    pub op: Op,
    pub row: Value,
    /// `ts_ms`, else `source.ts_ms`.
    pub time: Option<i64>,
}

/// Parses a Debezium event, with or without the `{"schema", "payload"}` wrapper. `Ok(None)`: a
/// tombstone (`null`, or a null payload), which follows a delete and changes nothing. `Err`: a
/// malformed envelope (no JSON, no `op`, an unknown `op`, no row object).
pub(crate) fn parse(bytes: &[u8]) -> Result<Option<Change>, String> {
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    parse_value(doc)
}

pub(crate) fn parse_value(doc: Value) -> Result<Option<Change>, String> {
    let mut doc = unwrap(doc);
    let Value::Object(m) = &mut doc else {
        return if doc.is_null() { Ok(None) } else { Err("a change event is a JSON object".into()) };
    };
    let op = match m.get("op").and_then(Value::as_str) {
        Some("c" | "r" | "u") => Op::Upsert,
        Some("d") => Op::Delete,
        Some(other) => return Err(format!("op {other:?} is not one of c, r, u, d")),
        None => return Err("no op".into()),
    };
    let time = m
        .get("ts_ms")
        .and_then(Value::as_i64)
        .or_else(|| m.get("source").and_then(|s| s.get("ts_ms")).and_then(Value::as_i64));
    let side = if op == Op::Delete { "before" } else { "after" };
    match m.remove(side) {
        Some(row @ Value::Object(_)) => Ok(Some(Change { op, row, time })),
        _ => Err(format!("op {op:?} needs an object in {side:?}")),
    }
}

/// The `payload` of a `{"schema", "payload"}` wrapper, else the document.
fn unwrap(doc: Value) -> Value {
    match doc {
        Value::Object(mut m) if m.len() == 2 && m.contains_key("schema") && m.contains_key("payload") => {
            m.remove("payload").unwrap_or(Value::Null)
        }
        doc => doc,
    }
}

/// A value as a key: a string as it is, another value as its compact JSON text; `None` for null.
pub(crate) fn value_key(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(Cow::Borrowed(s)),
        v => Some(Cow::Owned(v.to_string())),
    }
}

/// The primary key a Debezium record key gives: its JSON (unwrapped from `{"schema",
/// "payload"}`), an object of one field being that field's value (`{"id": 3}` → `3`), as
/// [`value_key`] spells it; a key that is not JSON as [`project::record_key`] spells it.
pub(crate) fn record_primary_key(key: &[u8]) -> Option<String> {
    match serde_json::from_slice::<Value>(key) {
        Ok(doc) => match unwrap(doc) {
            Value::Object(m) if m.len() == 1 => m.values().next().and_then(value_key).map(Cow::into_owned),
            v => value_key(&v).map(Cow::into_owned),
        },
        Err(_) => project::record_key(key).map(Cow::into_owned),
    }
}

/// A change's primary key: `pointer` into the row, else the record key.
pub(crate) fn primary_key(row: &Value, pointer: Option<&str>, record_key: Option<&[u8]>) -> Option<String> {
    match pointer {
        Some(p) => lookup(row, p).and_then(value_key).map(Cow::into_owned),
        None => record_key.and_then(record_primary_key),
    }
}

/// The rows of a Debezium source that contribute to an aggregating view, by primary key (what a
/// change retracts), and how many rows each group holds (a group with none is removed).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct CdcRows {
    rows: BTreeMap<String, Value>,
    groups: BTreeMap<String, u64>,
}

impl CdcRows {
    pub(crate) fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.groups.is_empty()
    }
}

impl Declarative {
    /// Applies one record of a Debezium source.
    pub(crate) fn apply_change(&self, bytes: Option<&[u8]>, m: Meta<'_>, st: &mut State, out: &mut Vec<NewRecord>) {
        // Debezium's tombstone (a null value after a delete) changes nothing.
        let Some(bytes) = bytes else { return };
        let change = match parse(bytes) {
            Ok(Some(c)) => c,
            Ok(None) => return,
            Err(_) => {
                st.snap.counters.error_records += 1;
                return;
            }
        };
        let pointer = self.spec.source.primary_key.as_deref();
        let pointer = if self.aggregates.is_empty() { pointer.or(self.spec.key.as_deref()) } else { pointer };
        let Some(pk) = primary_key(&change.row, pointer, m.key) else {
            st.snap.counters.error_records += 1;
            return;
        };
        let time = change.time.unwrap_or(m.timestamp);
        let stamp = Stamp { time, topic: m.origin.topic, partition: m.origin.partition, offset: m.offset };
        if self.aggregates.is_empty() {
            self.apply_row(pk, change, stamp, st, out);
        } else {
            self.retract_and_add(pk, change, st, out);
        }
    }

    /// A table of the current rows: an upsert replaces the row (a row the filter rejects leaves
    /// the table), a delete removes it.
    fn apply_row(&self, pk: String, change: Change, stamp: Stamp, st: &mut State, out: &mut Vec<NewRecord>) {
        let keep = change.op == Op::Upsert && self.spec.filter.as_ref().is_none_or(|f| f.eval(&change.row));
        if change.op == Op::Upsert && !keep {
            st.snap.counters.records_filtered += 1;
        } else {
            st.snap.counters.records_applied += 1;
        }
        if keep {
            self.emit_update(&pk, change.row.clone(), out);
            st.snap.entries.insert(pk, Entry::Latest { value: change.row, stamp });
        } else if st.snap.entries.remove(&pk).is_some() && self.emits_updates() {
            out.push(NewRecord::tombstone(project::emitted_key(&pk)));
        }
    }

    /// The group key (`key` on the row, else the primary key) and aggregate inputs of a row;
    /// `None` for a row that lacks them.
    fn group_of<'a>(&'a self, pk: &str, row: &'a Value) -> Option<(String, aggregate::Inputs<'a>)> {
        let key = match &self.spec.key {
            Some(p) => lookup(row, p).and_then(value_key)?.into_owned(),
            None => pk.to_string(),
        };
        let inputs = aggregate::inputs(&self.aggregates, row).ok()?;
        Some((key, inputs))
    }

    /// Retracts the row held for `pk` (if any) from its group, and adds the new one (an upsert
    /// that passes the filter) to its group; then emits each changed group once.
    fn retract_and_add(&self, pk: String, change: Change, st: &mut State, out: &mut Vec<NewRecord>) {
        let mut changed: Vec<String> = Vec::new();
        if let Some(old) = st.snap.cdc.rows.remove(&pk) {
            if let Some((key, inputs)) = self.group_of(&pk, &old) {
                if let Some(Entry::Aggregates(a)) = st.snap.entries.get_mut(&key) {
                    a.remove(&inputs);
                }
                let n = st.snap.cdc.groups.entry(key.clone()).or_insert(1);
                *n -= 1;
                if *n == 0 {
                    st.snap.cdc.groups.remove(&key);
                    st.snap.entries.remove(&key);
                }
                changed.push(key);
            }
        }
        let mut row = change.row;
        if change.op == Op::Upsert {
            if self.spec.filter.as_ref().is_some_and(|f| !f.eval(&row)) {
                st.snap.counters.records_filtered += 1;
            } else if let Some((key, inputs)) = self.group_of(&pk, &row) {
                st.snap.counters.records_applied += 1;
                let entry =
                    st.snap.entries.get_or_insert_with(&key, || Entry::Aggregates(Aggregates::new(&self.aggregates)));
                if let Entry::Aggregates(a) = entry {
                    a.add(&inputs, Stamp::MIN);
                }
                *st.snap.cdc.groups.entry(key.clone()).or_insert(0) += 1;
                if !changed.contains(&key) {
                    changed.push(key);
                }
                self.project_row(&mut row);
                st.snap.cdc.rows.insert(pk, row);
            } else {
                st.snap.counters.error_records += 1;
            }
        } else {
            st.snap.counters.records_applied += 1;
        }
        if !self.emits_updates() {
            return;
        }
        for key in changed {
            match st.snap.entries.get(&key) {
                Some(Entry::Aggregates(a)) => self.emit_update(&key, a.to_json(&self.aggregates), out),
                _ => out.push(NewRecord::tombstone(project::emitted_key(&key))),
            }
        }
    }

    /// Keeps only the top-level fields of `row` that the view reads (what a retraction needs).
    fn project_row(&self, row: &mut Value) {
        let pointers = self
            .spec
            .key
            .iter()
            .map(String::as_str)
            .chain(self.aggregates.iter().filter_map(|(_, a)| a.field.as_deref()))
            .chain(self.spec.filter.iter().flat_map(|f| f.fields()));
        if let (Some(fields), Value::Object(m)) = (project::fields_for(pointers), row) {
            m.retain(|k, _| fields.iter().any(|f| f == k));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn envelopes_with_and_without_the_wrapper() {
        let plain = json!({"op": "u", "before": null, "after": {"id": 1, "c": "fr"}, "ts_ms": 7});
        let c = parse(plain.to_string().as_bytes()).unwrap().unwrap();
        assert_eq!((c.op, c.row.clone(), c.time), (Op::Upsert, json!({"id": 1, "c": "fr"}), Some(7)));
        let wrapped = json!({"schema": {"type": "struct"}, "payload": plain});
        assert_eq!(parse(wrapped.to_string().as_bytes()).unwrap(), Some(c));
        let delete = json!({"op": "d", "before": {"id": 1}, "after": null, "source": {"ts_ms": 9}});
        let d = parse(delete.to_string().as_bytes()).unwrap().unwrap();
        assert_eq!((d.op, d.time), (Op::Delete, Some(9)));
        assert_eq!(parse(b"null").unwrap(), None);
        assert_eq!(parse(br#"{"schema": {}, "payload": null}"#).unwrap(), None);
        for bad in [&b"{"[..], br#"{"after": {}}"#, br#"{"op": "t"}"#, br#"{"op": "c", "after": null}"#, b"[1]"] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn primary_keys_from_the_record_key_or_a_pointer() {
        assert_eq!(record_primary_key(br#"{"id": 3}"#).as_deref(), Some("3"));
        assert_eq!(record_primary_key(br#"{"schema": {}, "payload": {"id": "u3"}}"#).as_deref(), Some("u3"));
        assert_eq!(record_primary_key(br#"{"a": 1, "b": 2}"#).as_deref(), Some(r#"{"a":1,"b":2}"#));
        assert_eq!(record_primary_key(b"u7").as_deref(), Some("u7"));
        assert_eq!(record_primary_key(br#""u7""#).as_deref(), Some("u7"));
        let row = json!({"id": 5, "name": "x"});
        assert_eq!(primary_key(&row, Some("/id"), None).as_deref(), Some("5"));
        assert_eq!(primary_key(&row, Some("/nope"), Some(b"1")), None);
        assert_eq!(primary_key(&row, None, None), None);
    }
}
