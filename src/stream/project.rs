//! Parsing only what a view reads: a record value is validated whole (as JSON) but only the
//! top-level fields its pointers start with are built as `Value`s; the rest is skipped without
//! allocating. Every pointer lookup on the projection gives what it gives on the whole document.
//! The key's field, when nothing else reads it, is not built at all: its raw text is borrowed from
//! the record (for a count per key, a record then costs no allocation).

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::expr::lookup;

/// What a view parses out of each record value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    /// Top-level fields built as `Value`s.
    fields: Vec<String>,
    /// The one top-level field the key pointer names, when no other pointer reads it: kept raw.
    key_field: Option<String>,
    /// Whether a parse gives [`Doc::Fields`] (no object built per record).
    inline: bool,
}

/// How many fields [`Doc::Fields`] holds.
const FIELDS_INLINE: usize = 4;

impl Plan {
    /// The plan for a view keyed by `key` (a pointer, if any) that reads `others`; `None` when
    /// the whole document is needed (an empty pointer, or an escaped token this fast path does
    /// not handle).
    pub(crate) fn new<'a>(key: Option<&str>, others: impl IntoIterator<Item = &'a str>) -> Option<Plan> {
        let others: Vec<&str> = others.into_iter().collect();
        let mut fields = fields_for(others.iter().copied())?;
        let key_field = match key {
            None => None,
            Some(k) => match k.strip_prefix('/') {
                Some(name) if !name.contains(['/', '~']) && !fields.iter().any(|f| f == name) => Some(name.to_string()),
                _ => {
                    for f in fields_for([k])? {
                        if !fields.contains(&f) {
                            fields.push(f);
                        }
                    }
                    None
                }
            },
        };
        Some(Plan { fields, key_field, inline: false })
    }

    /// This plan parsing into [`Doc::Fields`] when it has few enough fields: for a view that reads
    /// the projection only by pointer lookups ([`Doc::lookup`]), never as one `Value`.
    pub(crate) fn inline(mut self) -> Plan {
        self.inline = self.fields.len() <= FIELDS_INLINE;
        self
    }

    /// Whether the key comes from [`Parsed::key`] (else it is looked up in the document).
    pub(crate) fn captures_key(&self) -> bool {
        self.key_field.is_some()
    }
}

/// A record value as parsed: whole, or projected.
#[derive(Debug)]
pub(crate) enum Doc {
    /// The whole value, or the projection as an object of the plan's fields (`Null` for a value
    /// that is no object).
    Value(Value),
    /// The projection of an inline plan: its fields' values by their place in the plan (`None`:
    /// absent, or the value is no object).
    Fields([Option<Value>; FIELDS_INLINE]),
}

impl From<Value> for Doc {
    fn from(v: Value) -> Doc {
        Doc::Value(v)
    }
}

impl Doc {
    /// What `expr::lookup` gives for `pointer` on the whole value. `plan` is the plan that
    /// parsed this document (needed for [`Doc::Fields`]); `pointer` one the plan was made for.
    pub(crate) fn lookup<'a>(&'a self, plan: Option<&Plan>, pointer: &str) -> Option<&'a Value> {
        match (self, plan) {
            (Doc::Value(v), _) => lookup(v, pointer),
            (Doc::Fields(values), Some(plan)) => {
                let rest = pointer.strip_prefix('/')?;
                let first = rest.split('/').next().unwrap_or_default();
                let v = values[plan.fields.iter().position(|f| f == first)?].as_ref()?;
                lookup(v, &rest[first.len()..])
            }
            (Doc::Fields(_), None) => None,
        }
    }

    /// The document as one `Value` (an object of the fields present, for [`Doc::Fields`]).
    pub(crate) fn into_value(self, plan: Option<&Plan>) -> Value {
        match (self, plan) {
            (Doc::Value(v), _) => v,
            (Doc::Fields(values), plan) => {
                let names = plan.map_or(&[][..], |p| &p.fields[..]);
                let fields = names.iter().zip(values).filter_map(|(n, v)| Some((n.clone(), v?)));
                Value::Object(fields.collect())
            }
        }
    }

    /// A copy of the document as one `Value` (see [`into_value`](Self::into_value)).
    pub(crate) fn to_value(&self, plan: Option<&Plan>) -> Value {
        match self {
            Doc::Value(v) => v.clone(),
            Doc::Fields(values) => Doc::Fields(values.clone()).into_value(plan),
        }
    }
}

/// A parsed record value.
pub(crate) struct Parsed<'a> {
    /// The projection.
    pub doc: Doc,
    /// The key field's raw JSON, when the plan captures it and the value has it.
    pub key: Option<&'a RawValue>,
}

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

/// Parses `bytes` as JSON keeping only what `plan` names (anything else: `Null`).
pub(crate) fn parse<'a>(bytes: &'a [u8], plan: &Plan) -> serde_json::Result<Parsed<'a>> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let (doc, key) = Projection(plan).deserialize(&mut de)?;
    de.end()?;
    Ok(Parsed { doc, key })
}

/// A key as text, as `lookup` then `as_str`/`to_string` would give it: a string's contents
/// (borrowed when it has no escapes), any other JSON's text; `None` for `null` and for JSON that
/// has no value (a lone surrogate `"\ud800"`, `1e999`: a `RawValue` checks only the syntax).
pub(crate) fn key_text(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get().trim();
    if let Some(inner) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        if !inner.contains('\\') {
            return Some(Cow::Borrowed(inner));
        }
    }
    match serde_json::from_str::<Value>(text).ok()? {
        Value::Null => None,
        Value::String(s) => Some(Cow::Owned(s)),
        v => Some(Cow::Owned(v.to_string())),
    }
}

/// The view key of a record key: a record key that is a JSON string (`"u1"`, as the JSON
/// embedded format writes keys) is its string's value (`u1`); any other key is its bytes as
/// UTF-8 (invalid sequences replaced), so `42`, `{"a":1}` and a binary `u1` are their own text.
/// `None` for a JSON string with no value (a lone surrogate): an error record.
pub(crate) fn record_key(bytes: &[u8]) -> Option<Cow<'_, str>> {
    let json_string = bytes.len() >= 2 && bytes[0] == b'"' && bytes[bytes.len() - 1] == b'"';
    if !json_string {
        return Some(String::from_utf8_lossy(bytes));
    }
    let inner = &bytes[1..bytes.len() - 1];
    if !inner.iter().any(|&b| b == b'\\' || b == b'"' || b < 0x20) {
        if let Ok(s) = std::str::from_utf8(inner) {
            return Some(Cow::Borrowed(s));
        }
    }
    match serde_json::from_slice::<&RawValue>(bytes) {
        // A JSON string: its value, if it has one.
        Ok(_) => serde_json::from_slice::<String>(bytes).ok().map(Cow::Owned),
        // Quotes around something that is no JSON string (`"a"b"`): the bytes as they are.
        Err(_) => Some(String::from_utf8_lossy(bytes)),
    }
}

/// The key of a record a declarative view emits for view key `key`: JSON, so the emit topic
/// reads back in the JSON embedded format. A view key that is the JSON text of a number,
/// boolean, array or object (a key field's value `42`) is emitted as that text (`42`); any other
/// as a JSON string (`u1` → `"u1"`).
pub(crate) fn emitted_key(key: &str) -> String {
    let first = key.as_bytes().first().copied().unwrap_or(b'"');
    let maybe_json = first == b'-' || first.is_ascii_digit() || matches!(first, b't' | b'f' | b'[' | b'{');
    // Only JSON that reads back as the same text: `1e999` or `{"a": 1}` (not compact) are strings.
    if maybe_json {
        if let Ok(v) = serde_json::from_str::<Value>(key) {
            let text = v.to_string();
            if !v.is_string() && text == key {
                return text;
            }
        }
    }
    serde_json::to_string(key).expect("a string serializes")
}

struct Projection<'p>(&'p Plan);

type Projected<'de> = (Doc, Option<&'de RawValue>);

impl Projection<'_> {
    /// What a value that is no object projects to.
    fn nothing<'de>(&self) -> Projected<'de> {
        match self.0.inline {
            true => (Doc::Fields(Default::default()), None),
            false => (Doc::Value(Value::Null), None),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Projection<'_> {
    type Value = Projected<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Projected<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Projection<'_> {
    type Value = Projected<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Projected<'de>, A::Error> {
        if self.0.inline {
            let mut values: [Option<Value>; FIELDS_INLINE] = Default::default();
            let mut key = None;
            while let Some(slot) = map.next_key_seed(FieldSlot(self.0))? {
                match slot {
                    // A repeated field: the last one wins, as in `Value`.
                    Slot::Field(i) => values[i] = Some(map.next_value()?),
                    Slot::Key => key = Some(map.next_value::<&'de RawValue>()?),
                    Slot::Skip => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            return Ok((Doc::Fields(values), key));
        }
        let mut out = Map::new();
        let mut key = None;
        while let Some(slot) = map.next_key_seed(FieldSlot(self.0))? {
            match slot {
                Slot::Field(i) => {
                    let v: Value = map.next_value()?;
                    out.insert(self.0.fields[i].clone(), v);
                }
                // A repeated field: the last one wins, as in `Value`.
                Slot::Key => key = Some(map.next_value::<&'de RawValue>()?),
                Slot::Skip => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok((Doc::Value(Value::Object(out)), key))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Projected<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(self.nothing())
    }
    fn visit_bool<E>(self, _: bool) -> Result<Projected<'de>, E> {
        Ok(self.nothing())
    }
    fn visit_i64<E>(self, _: i64) -> Result<Projected<'de>, E> {
        Ok(self.nothing())
    }
    fn visit_u64<E>(self, _: u64) -> Result<Projected<'de>, E> {
        Ok(self.nothing())
    }
    fn visit_f64<E>(self, _: f64) -> Result<Projected<'de>, E> {
        Ok(self.nothing())
    }
    fn visit_str<E>(self, _: &str) -> Result<Projected<'de>, E> {
        Ok(self.nothing())
    }
    fn visit_unit<E>(self) -> Result<Projected<'de>, E> {
        Ok(self.nothing())
    }
}

/// Where an object key's value goes.
enum Slot {
    Field(usize),
    Key,
    Skip,
}

struct FieldSlot<'p>(&'p Plan);

impl<'de> DeserializeSeed<'de> for FieldSlot<'_> {
    type Value = Slot;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Slot, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for FieldSlot<'_> {
    type Value = Slot;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E>(self, v: &str) -> Result<Slot, E> {
        if self.0.key_field.as_deref() == Some(v) {
            return Ok(Slot::Key);
        }
        Ok(self.0.fields.iter().position(|f| f == v).map_or(Slot::Skip, Slot::Field))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_on_the_projection_equal_lookups_on_the_document() {
        let pointers = ["/page", "/a/b", "/a/c/0", "/n", "/missing", "/esc\"aped"];
        // Five fields: objects; four: inline fields.
        let plan = Plan::new(None, pointers).unwrap();
        let few = ["/page", "/a/b", "/a/c/0", "/n", "/esc\"aped"];
        let inline = Plan::new(None, few).unwrap().inline();
        assert!(!plan.clone().inline().inline && inline.inline);
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
            let projected = parse(d.as_bytes(), &plan).unwrap();
            assert!(projected.key.is_none());
            assert!(matches!(projected.doc, Doc::Value(_)));
            for p in pointers {
                assert_eq!(projected.doc.lookup(Some(&plan), p), lookup(&full, p), "{d} {p}");
            }
            let fields = parse(d.as_bytes(), &inline).unwrap();
            assert!(matches!(fields.doc, Doc::Fields(_)));
            for p in few {
                assert_eq!(fields.doc.lookup(Some(&inline), p), lookup(&full, p), "inline {d} {p}");
            }
            let as_value = fields.doc.into_value(Some(&inline));
            for p in few {
                assert_eq!(lookup(&as_value, p), lookup(&full, p), "inline as a value {d} {p}");
            }
        }
        for bad in ["{", r#"{"page": 1,}"#, r#"{"page": 1} x"#, r#"{"junk": [1,]}"#, "nope", ""] {
            assert!(parse(bad.as_bytes(), &plan).is_err(), "{bad}");
            assert!(parse(bad.as_bytes(), &inline).is_err(), "{bad}");
            assert!(serde_json::from_str::<Value>(bad).is_err(), "{bad}");
        }
        assert_eq!(fields_for(["", "/a"]), None);
        assert_eq!(fields_for(["/a~1b"]), None);
    }

    /// The key as the slow path computes it from the whole document.
    fn key_by_lookup(doc: &Value, pointer: &str) -> Option<String> {
        match lookup(doc, pointer)? {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            v => Some(v.to_string()),
        }
    }

    #[test]
    fn a_captured_key_equals_the_key_looked_up_in_the_document() {
        for plan in [
            Plan::new(Some("/page"), ["/n", "/a/b"]).unwrap(),
            Plan::new(Some("/page"), ["/n", "/a/b"]).unwrap().inline(),
        ] {
            assert!(plan.captures_key());
            let docs = [
                r#"{"page": "/p1", "n": 1}"#,
                r#"{"page": "tab\there \u00e9 \"q\"", "n": 1}"#,
                r#"{"p\u0061ge": "escaped name"}"#,
                r#"{"page": "first", "page": "last"}"#,
                r#"{"page": 42}"#,
                r#"{"page": -1.5e3}"#,
                r#"{"page": {"b": [1, "x"]}, "a": {"b": 2}}"#,
                r#"{"page": [true, null]}"#,
                r#"{"page": null}"#,
                r#"{"n": 1}"#,
                r#"[{"page": "in an array"}]"#,
                r#""page""#,
                r#"{ "page" :   "spaced"   , "n" : 2 }"#,
            ];
            for d in docs {
                let full: Value = serde_json::from_str(d).unwrap();
                let parsed = parse(d.as_bytes(), &plan).unwrap();
                assert_eq!(parsed.key.and_then(key_text).map(|k| k.into_owned()), key_by_lookup(&full, "/page"), "{d}");
                for p in ["/n", "/a/b"] {
                    assert_eq!(parsed.doc.lookup(Some(&plan), p), lookup(&full, p), "{d} {p}");
                }
            }
        }
        // The key's field read by another pointer, or a nested key: looked up in the document.
        for (key, others) in [("/page", vec!["/page"]), ("/a/b", vec!["/n"]), ("/p~1q", vec![])] {
            let plan = Plan::new(Some(key), others.clone());
            assert!(plan.as_ref().is_none_or(|p| !p.captures_key()), "{key} {others:?}");
            if let Some(plan) = plan {
                let d = r#"{"page": "x", "a": {"b": "y"}, "n": 3}"#;
                let full: Value = serde_json::from_str(d).unwrap();
                let parsed = parse(d.as_bytes(), &plan).unwrap();
                assert_eq!(parsed.doc.lookup(Some(&plan), key), lookup(&full, key), "{key}");
            }
        }
    }

    #[test]
    fn record_keys_and_emitted_keys_round_trip() {
        for (bytes, key) in [
            (&br#""u1""#[..], Some("u1")),
            (b"u1", Some("u1")),
            (b"42", Some("42")),
            (br#"{"a":1}"#, Some(r#"{"a":1}"#)),
            (br#""tab\t \u00e9""#, Some("tab\t \u{e9}")),
            (br#""a"b""#, Some(r#""a"b""#)),
            (b"\"", Some("\"")),
            (b"\"\"", Some("")),
            (br#""\ud800""#, None),
        ] {
            assert_eq!(record_key(bytes).as_deref(), key, "{:?}", String::from_utf8_lossy(bytes));
        }
        for (key, emitted) in [
            ("u1", r#""u1""#),
            ("42", "42"),
            ("-1.5", "-1.5"),
            ("true", "true"),
            (r#"{"a":1}"#, r#"{"a":1}"#),
            (r#"{"a": 1}"#, r#""{\"a\": 1}""#),
            ("1e999", r#""1e999""#),
            ("007", r#""007""#),
            ("", r#""""#),
            ("null", r#""null""#),
        ] {
            assert_eq!(emitted_key(key), emitted, "{key}");
        }
    }
}
