//! Parsing only what a view reads: a record value is validated whole (as JSON) but only the
//! top-level fields its pointers start with are built as `Value`s; the rest is skipped without
//! allocating. Every pointer lookup on the projection gives what it gives on the whole document.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// The top-level field names a set of pointers starts with; `None` when the whole document is
/// needed (an empty pointer, or an escaped token this fast path does not handle).
pub(crate) fn fields_for<'a>(pointers: impl IntoIterator<Item = &'a str>) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for p in pointers {
        if p.is_empty() || p.contains('~') {
            return None;
        }
        let first = p.strip_prefix('/')?.split('/').next().unwrap_or_default();
        if !out.iter().any(|f| f == first) {
            out.push(first.to_string());
        }
    }
    Some(out)
}

/// Parses `bytes` as JSON keeping only the top-level `fields` of an object (anything else: `Null`).
pub(crate) fn parse(bytes: &[u8], fields: &[String]) -> serde_json::Result<Value> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = Projection(fields).deserialize(&mut de)?;
    de.end()?;
    Ok(v)
}

struct Projection<'a>(&'a [String]);

impl<'de> DeserializeSeed<'de> for Projection<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Projection<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(index) = map.next_key_seed(FieldIndex(self.0))? {
            match index {
                Some(i) => {
                    let v: Value = map.next_value()?;
                    out.insert(self.0[i].clone(), v);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(out))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Value::Null)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_str<E>(self, _: &str) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

/// A key: the index of the field it names, if wanted.
struct FieldIndex<'a>(&'a [String]);

impl<'de> DeserializeSeed<'de> for FieldIndex<'_> {
    type Value = Option<usize>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for FieldIndex<'_> {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E>(self, v: &str) -> Result<Option<usize>, E> {
        Ok(self.0.iter().position(|f| f == v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::expr::lookup;

    #[test]
    fn lookups_on_the_projection_equal_lookups_on_the_document() {
        let pointers = ["/page", "/a/b", "/a/c/0", "/n", "/missing", "/esc\"aped"];
        let fields = fields_for(pointers).unwrap();
        let docs = [
            r#"{"page": "/p1", "user": 5, "a": {"b": [1, 2], "c": [true]}, "n": 1.5, "junk": [[{"x": null}]]}"#,
            r#"{"page": "x", "page": "dup", "esc\"aped": 1}"#,
            r#"{"p\u0061ge": "escaped key"}"#,
            r#"[1, 2, {"page": 3}]"#,
            r#""just a string""#,
            "17",
            "null",
            "{}",
        ];
        for d in docs {
            let full: Value = serde_json::from_str(d).unwrap();
            let projected = parse(d.as_bytes(), &fields).unwrap();
            for p in pointers {
                assert_eq!(lookup(&projected, p), lookup(&full, p), "{d} {p}");
            }
        }
        for bad in ["{", r#"{"page": 1,}"#, r#"{"page": 1} x"#, r#"{"junk": [1,]}"#, "nope", ""] {
            assert!(parse(bad.as_bytes(), &fields).is_err(), "{bad}");
            assert!(serde_json::from_str::<Value>(bad).is_err(), "{bad}");
        }
        assert_eq!(fields_for(["", "/a"]), None);
        assert_eq!(fields_for(["/a~1b"]), None);
    }
}
