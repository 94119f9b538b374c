//! Predicates for `filter` and `having`: comparisons of a JSON-pointer field with a constant,
//! combined with `all`, `any` and `not`.

use std::cmp::Ordering;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::spec::{check_pointer, SpecError};

/// The deepest nesting of `all` / `any` / `not` a predicate may have.
pub const PREDICATE_DEPTH_MAX: usize = 32;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    Exists,
    In,
}

impl CompareOp {
    const NAMES: [(&'static str, CompareOp); 8] = [
        ("eq", CompareOp::Eq),
        ("ne", CompareOp::Ne),
        ("gt", CompareOp::Gt),
        ("gte", CompareOp::Gte),
        ("lt", CompareOp::Lt),
        ("lte", CompareOp::Lte),
        ("exists", CompareOp::Exists),
        ("in", CompareOp::In),
    ];

    fn name(self) -> &'static str {
        Self::NAMES.iter().find(|(_, op)| *op == self).map(|(n, _)| *n).expect("every op is named")
    }
}

/// A condition on a JSON value. A missing field makes every comparison false (`exists` tests for
/// it); `gt`/`gte`/`lt`/`lte` compare numbers with numbers and strings with strings, anything else
/// is false; `eq`/`ne`/`in` compare numbers by value (`1 == 1.0`) and the rest structurally.
#[derive(Debug, Clone, PartialEq)]
pub enum Predicate {
    Compare { field: String, op: CompareOp, value: Value },
    All(Vec<Predicate>),
    Any(Vec<Predicate>),
    Not(Box<Predicate>),
}

impl Predicate {
    /// Parses the JSON form; errors name the path from `path` (`filter.all[1].op`).
    pub fn parse(v: &Value, path: &str) -> Result<Predicate, SpecError> {
        Self::parse_at(v, path, 0)
    }

    fn parse_at(v: &Value, path: &str, depth: usize) -> Result<Predicate, SpecError> {
        if depth > PREDICATE_DEPTH_MAX {
            return Err(SpecError::new(
                path,
                format!("nested deeper than PREDICATE_DEPTH_MAX ({PREDICATE_DEPTH_MAX})"),
            ));
        }
        let Some(obj) = v.as_object() else {
            return Err(SpecError::new(path, "a predicate is an object: {field, op, value}, {all}, {any} or {not}"));
        };
        let list = |key: &str, items: &Value| -> Result<Vec<Predicate>, SpecError> {
            let Some(items) = items.as_array() else {
                return Err(SpecError::new(format!("{path}.{key}"), "must be an array of predicates"));
            };
            items.iter().enumerate().map(|(i, p)| Self::parse_at(p, &format!("{path}.{key}[{i}]"), depth + 1)).collect()
        };
        let only = |key: &str| -> Result<(), SpecError> {
            match obj.keys().find(|k| k.as_str() != key) {
                Some(other) => Err(SpecError::new(format!("{path}.{other}"), format!("not allowed beside {key:?}"))),
                None => Ok(()),
            }
        };
        if let Some(items) = obj.get("all") {
            only("all")?;
            return Ok(Predicate::All(list("all", items)?));
        }
        if let Some(items) = obj.get("any") {
            only("any")?;
            return Ok(Predicate::Any(list("any", items)?));
        }
        if let Some(inner) = obj.get("not") {
            only("not")?;
            return Ok(Predicate::Not(Box::new(Self::parse_at(inner, &format!("{path}.not"), depth + 1)?)));
        }
        if let Some(other) = obj.keys().find(|k| !matches!(k.as_str(), "field" | "op" | "value")) {
            return Err(SpecError::new(format!("{path}.{other}"), "unknown key (expected field, op, value)"));
        }
        let field = match obj.get("field") {
            Some(Value::String(f)) => f.clone(),
            Some(_) => return Err(SpecError::new(format!("{path}.field"), "must be a JSON pointer string")),
            None => return Err(SpecError::new(format!("{path}.field"), "missing")),
        };
        check_pointer(&field, &format!("{path}.field"))?;
        let op_name = obj.get("op").and_then(Value::as_str).unwrap_or_default();
        let Some(op) = CompareOp::NAMES.iter().find(|(n, _)| *n == op_name).map(|(_, op)| *op) else {
            return Err(SpecError::new(
                format!("{path}.op"),
                format!("{:?} is not one of eq, ne, gt, gte, lt, lte, exists, in", obj.get("op")),
            ));
        };
        let value = match (op, obj.get("value")) {
            (CompareOp::Exists, None) => Value::Null,
            (CompareOp::Exists, Some(_)) => {
                return Err(SpecError::new(format!("{path}.value"), "exists takes no value"));
            }
            (_, None) => return Err(SpecError::new(format!("{path}.value"), format!("{op_name} needs a value"))),
            (CompareOp::In, Some(v)) if !v.is_array() => {
                return Err(SpecError::new(format!("{path}.value"), "in needs an array"));
            }
            (_, Some(v)) => v.clone(),
        };
        Ok(Predicate::Compare { field, op, value })
    }

    /// The JSON form (what [`parse`](Self::parse) reads).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        match self {
            Predicate::Compare { field, op, value } => {
                m.insert("field".into(), Value::String(field.clone()));
                m.insert("op".into(), Value::String(op.name().into()));
                if *op != CompareOp::Exists {
                    m.insert("value".into(), value.clone());
                }
            }
            Predicate::All(ps) => {
                m.insert("all".into(), Value::Array(ps.iter().map(Predicate::to_json).collect()));
            }
            Predicate::Any(ps) => {
                m.insert("any".into(), Value::Array(ps.iter().map(Predicate::to_json).collect()));
            }
            Predicate::Not(p) => {
                m.insert("not".into(), p.to_json());
            }
        }
        Value::Object(m)
    }

    /// Evaluates the predicate on `doc`.
    pub fn eval(&self, doc: &Value) -> bool {
        match self {
            Predicate::Compare { field, op, value } => match lookup(doc, field) {
                None => false,
                Some(found) => compare(found, *op, value),
            },
            Predicate::All(ps) => ps.iter().all(|p| p.eval(doc)),
            Predicate::Any(ps) => ps.iter().any(|p| p.eval(doc)),
            Predicate::Not(p) => !p.eval(doc),
        }
    }

    /// Every field the predicate reads (for documentation and checks).
    pub fn fields(&self) -> Vec<&str> {
        match self {
            Predicate::Compare { field, .. } => vec![field.as_str()],
            Predicate::All(ps) | Predicate::Any(ps) => ps.iter().flat_map(Predicate::fields).collect(),
            Predicate::Not(p) => p.fields(),
        }
    }
}

fn compare(found: &Value, op: CompareOp, value: &Value) -> bool {
    match op {
        CompareOp::Exists => true,
        CompareOp::Eq => json_eq(found, value),
        CompareOp::Ne => !json_eq(found, value),
        CompareOp::In => value.as_array().is_some_and(|items| items.iter().any(|v| json_eq(found, v))),
        CompareOp::Gt => order(found, value) == Some(Ordering::Greater),
        CompareOp::Gte => matches!(order(found, value), Some(Ordering::Greater | Ordering::Equal)),
        CompareOp::Lt => order(found, value) == Some(Ordering::Less),
        CompareOp::Lte => matches!(order(found, value), Some(Ordering::Less | Ordering::Equal)),
    }
}

/// `doc.pointer(pointer)` without allocating when no token holds an escape (`~0`, `~1`): the
/// hot path of every view reads a few fields of every record.
pub(crate) fn lookup<'a>(doc: &'a Value, pointer: &str) -> Option<&'a Value> {
    if pointer.contains('~') {
        return doc.pointer(pointer);
    }
    if pointer.is_empty() {
        return Some(doc);
    }
    let mut at = doc;
    for token in pointer.strip_prefix('/')?.split('/') {
        at = match at {
            Value::Object(m) => m.get(token)?,
            Value::Array(items) => {
                if token.len() > 1 && token.starts_with('0') || token.starts_with('+') {
                    return None;
                }
                items.get(token.parse::<usize>().ok()?)?
            }
            _ => return None,
        };
    }
    Some(at)
}

/// Equality where numbers compare by value.
pub(crate) fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        _ => a == b,
    }
}

fn order(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => Some(x.cmp(&y)),
            _ => x.as_f64()?.partial_cmp(&y.as_f64()?),
        },
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

impl Serialize for Predicate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Predicate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Predicate, D::Error> {
        let v = Value::deserialize(d)?;
        Predicate::parse(&v, "predicate").map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(v: Value) -> Predicate {
        Predicate::parse(&v, "filter").unwrap()
    }

    #[test]
    fn comparisons() {
        let doc = json!({"amount": 10, "price": 2.5, "name": "bob", "tags": ["a"], "nested": {"x": true}});
        assert!(p(json!({"field": "/amount", "op": "gt", "value": 0})).eval(&doc));
        assert!(!p(json!({"field": "/amount", "op": "gt", "value": 10})).eval(&doc));
        assert!(p(json!({"field": "/amount", "op": "gte", "value": 10.0})).eval(&doc));
        assert!(p(json!({"field": "/amount", "op": "eq", "value": 10.0})).eval(&doc));
        assert!(p(json!({"field": "/price", "op": "lt", "value": 3})).eval(&doc));
        assert!(p(json!({"field": "/price", "op": "lte", "value": 2.5})).eval(&doc));
        assert!(p(json!({"field": "/name", "op": "ne", "value": "alice"})).eval(&doc));
        assert!(p(json!({"field": "/name", "op": "gt", "value": "alice"})).eval(&doc));
        assert!(!p(json!({"field": "/name", "op": "gt", "value": 1})).eval(&doc), "string vs number is false");
        assert!(p(json!({"field": "/name", "op": "in", "value": ["x", "bob"]})).eval(&doc));
        assert!(p(json!({"field": "/nested/x", "op": "exists"})).eval(&doc));
        assert!(!p(json!({"field": "/missing", "op": "exists"})).eval(&doc));
        assert!(!p(json!({"field": "/missing", "op": "ne", "value": 1})).eval(&doc), "a missing field is false");
    }

    #[test]
    fn lookup_is_json_pointer() {
        let doc = json!({"a": {"b": [10, {"c": 3}]}, "x/y": 1, "m~n": 2, "": 5});
        for p in
            ["", "/a", "/a/b", "/a/b/0", "/a/b/1/c", "/a/b/2", "/a/b/01", "/a/b/-", "/x~1y", "/m~0n", "/", "/zz", "a"]
        {
            assert_eq!(lookup(&doc, p), doc.pointer(p), "{p}");
        }
    }

    #[test]
    fn combinators() {
        let doc = json!({"a": 1, "b": 2});
        let t = json!({"field": "/a", "op": "eq", "value": 1});
        let f = json!({"field": "/b", "op": "eq", "value": 1});
        assert!(p(json!({"all": [t, t]})).eval(&doc));
        assert!(!p(json!({"all": [t, f]})).eval(&doc));
        assert!(p(json!({"any": [f, t]})).eval(&doc));
        assert!(!p(json!({"any": [f]})).eval(&doc));
        assert!(p(json!({"not": f})).eval(&doc));
        assert!(p(json!({"all": []})).eval(&doc));
        let round = p(json!({"not": {"any": [t, {"field": "/c", "op": "exists"}]}}));
        assert_eq!(Predicate::parse(&round.to_json(), "x").unwrap(), round);
    }

    #[test]
    fn bad_predicates_name_the_path() {
        let err = |v: Value| Predicate::parse(&v, "filter").unwrap_err().field;
        assert_eq!(err(json!({"all": [{"field": "/a", "op": "eq"}]})), "filter.all[0].value");
        assert_eq!(err(json!({"any": [{"not": {"field": "a", "op": "exists"}}]})), "filter.any[0].not.field");
        assert_eq!(err(json!({"field": "/a", "op": "in", "value": 3})), "filter.value");
        assert_eq!(err(json!({"all": [], "any": []})), "filter.any");
        assert_eq!(err(json!({"field": "/a", "op": "eq", "value": 1, "x": 1})), "filter.x");
        assert_eq!(err(json!(3)), "filter");
        let mut deep = json!({"field": "/a", "op": "exists"});
        for _ in 0..40 {
            deep = json!({ "not": deep });
        }
        assert!(Predicate::parse(&deep, "filter").unwrap_err().reason.contains("PREDICATE_DEPTH_MAX"));
    }
}
