//! Aggregates: count, sum, min, max, avg, latest. Each keeps a small accumulator that can be
//! updated by one record, merged with another (session windows) and shown as JSON.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

use super::expr::lookup;
use super::spec::{AggregateOp, AggregateSpec};
use super::time::Stamp;

/// One accumulator. Integer sums, minimums and maximums stay exact (see [`Num`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Accumulator {
    Count(u64),
    Sum(Sum),
    Min(Option<Num>),
    Max(Option<Num>),
    Avg {
        #[serde(with = "float")]
        sum: f64,
        count: u64,
    },
    /// The value, and the stamp of the record it came from: the greatest stamp wins (the
    /// latest event time, then topic, partition, offset), whatever the order records came in.
    Latest(Option<(Value, Stamp)>),
}

/// A sum: an `i128` while every input is an integer (so a total that fits `i64`/`u64` is exact
/// even when a partial sum does not), a float from the first non-integer on (or past `i128`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Sum {
    Int(i128),
    Float(#[serde(with = "float")] f64),
}

impl Sum {
    fn add(self, n: &Number) -> Sum {
        match (self, Num::of(n)) {
            (Sum::Int(a), Num::Int(b)) => a.checked_add(b).map_or(Sum::Float(a as f64 + b as f64), Sum::Int),
            (s, b) => Sum::Float(s.as_f64() + b.as_f64()),
        }
    }
    fn merge(self, other: Sum) -> Sum {
        match (self, other) {
            (Sum::Int(a), Sum::Int(b)) => a.checked_add(b).map_or(Sum::Float(a as f64 + b as f64), Sum::Int),
            (a, b) => Sum::Float(a.as_f64() + b.as_f64()),
        }
    }
    fn as_f64(self) -> f64 {
        match self {
            Sum::Int(i) => i as f64,
            Sum::Float(f) => f,
        }
    }
}

/// A JSON number as a minimum or maximum keeps it: an integer (any `i64` or `u64`) exactly, else
/// a float. Integers and floats compare by their exact values. Checkpointed as a JSON number (an
/// integer, or a float with a fraction or exponent, as older checkpoints hold).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Num {
    Int(i128),
    Float(f64),
}

impl Num {
    fn of(n: &Number) -> Num {
        match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Num::Int(i128::from(i)),
            (None, Some(u)) => Num::Int(i128::from(u)),
            _ => Num::Float(n.as_f64().unwrap_or(0.0)),
        }
    }
    fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
    fn cmp(self, other: Num) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        // An integer against a float: as floats, and when those are equal (the float is then a
        // whole number within range) as integers.
        fn mixed(i: i128, f: f64) -> Ordering {
            match (i as f64).partial_cmp(&f) {
                Some(Ordering::Equal) => i.cmp(&(f as i128)),
                Some(o) => o,
                None => Ordering::Equal,
            }
        }
        match (self, other) {
            (Num::Int(a), Num::Int(b)) => a.cmp(&b),
            (Num::Int(a), Num::Float(b)) => mixed(a, b),
            (Num::Float(a), Num::Int(b)) => mixed(b, a).reverse(),
            (Num::Float(a), Num::Float(b)) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
        }
    }
    fn to_json(self) -> Value {
        match self {
            Num::Int(i) => int_json(i),
            // A whole float shows as an integer (`2.0` → `2`) while it is exact as one.
            Num::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Value::from(f as i64),
            Num::Float(f) => float_json(f),
        }
    }
}

impl Serialize for Num {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match *self {
            Num::Int(i) => s.serialize_i128(i),
            Num::Float(f) => float::serialize(&f, s),
        }
    }
}

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Num, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Num;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number")
            }
            fn visit_i64<E>(self, v: i64) -> Result<Num, E> {
                Ok(Num::Int(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Num, E> {
                Ok(Num::Int(v.into()))
            }
            fn visit_i128<E>(self, v: i128) -> Result<Num, E> {
                Ok(Num::Int(v))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Num, E> {
                Ok(Num::Float(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Num, E> {
                float::from_text(v).map(Num::Float).ok_or_else(|| E::custom(format!("{v:?} is not a number")))
            }
        }
        d.deserialize_any(V)
    }
}

/// An integer as JSON: exact while it fits `i64` or `u64`, else the nearest float.
fn int_json(i: i128) -> Value {
    if let Ok(v) = i64::try_from(i) {
        Value::from(v)
    } else if let Ok(v) = u64::try_from(i) {
        Value::from(v)
    } else {
        float_json(i as f64)
    }
}

/// A float as JSON; `null` for an infinite one (a float sum past `f64::MAX`), which JSON cannot say.
fn float_json(f: f64) -> Value {
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// Floats in checkpoints: a finite one as a JSON number, an infinite one (a float sum past
/// `f64::MAX`) as `"inf"` or `"-inf"` (JSON has no infinity; `serde_json` would write `null`
/// and refuse it on reading).
mod float {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(f: &f64, s: S) -> Result<S::Ok, S::Error> {
        match *f {
            f if f.is_finite() => s.serialize_f64(f),
            f if f > 0.0 => s.serialize_str("inf"),
            f if f < 0.0 => s.serialize_str("-inf"),
            _ => s.serialize_str("nan"),
        }
    }

    pub(super) fn from_text(t: &str) -> Option<f64> {
        match t {
            "inf" => Some(f64::INFINITY),
            "-inf" => Some(f64::NEG_INFINITY),
            "nan" => Some(f64::NAN),
            _ => None,
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Number(f64),
        Text(String),
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        match Repr::deserialize(d)? {
            Repr::Number(f) => Ok(f),
            Repr::Text(t) => from_text(&t).ok_or_else(|| serde::de::Error::custom(format!("{t:?} is not a number"))),
        }
    }
}

/// The input an aggregate needs from one record, extracted before anything changes (so a record
/// with a missing field changes nothing).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Input<'a> {
    None,
    Number(&'a Number),
    Value(&'a Value),
}

/// How many inputs [`Inputs`] holds without allocating.
const INPUTS_INLINE: usize = 8;

/// The inputs of one record, inline for up to [`INPUTS_INLINE`] aggregates (a record of a view
/// with few aggregates costs no allocation).
#[derive(Debug)]
pub(crate) struct Inputs<'a> {
    inline: [Input<'a>; INPUTS_INLINE],
    len: usize,
    more: Vec<Input<'a>>,
}

impl<'a> Inputs<'a> {
    fn push(&mut self, input: Input<'a>) {
        if self.more.is_empty() && self.len < INPUTS_INLINE {
            self.inline[self.len] = input;
            self.len += 1;
        } else {
            if self.more.is_empty() {
                self.more.extend_from_slice(&self.inline[..self.len]);
            }
            self.more.push(input);
        }
    }
}

impl<'a> std::ops::Deref for Inputs<'a> {
    type Target = [Input<'a>];
    fn deref(&self) -> &[Input<'a>] {
        if self.more.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.more
        }
    }
}

/// Extracts every aggregate's input from `doc`; `Err(field)` names the first missing or
/// non-numeric one.
pub(crate) fn inputs<'a>(specs: &'a [(String, AggregateSpec)], doc: &'a Value) -> Result<Inputs<'a>, &'a str> {
    inputs_by(specs, Some(doc), |f| lookup(doc, f))
}

/// [`inputs`] of a document read by `field` lookups; `whole` is the document as one value, for
/// a `latest` of the whole value (without it, such an aggregate is an error).
pub(crate) fn inputs_by<'a>(
    specs: &'a [(String, AggregateSpec)],
    whole: Option<&'a Value>,
    field: impl Fn(&str) -> Option<&'a Value>,
) -> Result<Inputs<'a>, &'a str> {
    let mut out = Inputs { inline: [Input::None; INPUTS_INLINE], len: 0, more: Vec::new() };
    for (_, s) in specs {
        out.push(match (s.op, &s.field) {
            (AggregateOp::Count, _) => Input::None,
            (AggregateOp::Latest, None) => whole.map(Input::Value).ok_or("")?,
            (AggregateOp::Latest, Some(f)) => field(f).map(Input::Value).ok_or(f.as_str())?,
            (_, Some(f)) => match field(f) {
                Some(Value::Number(n)) => Input::Number(n),
                _ => return Err(f.as_str()),
            },
            (_, None) => return Err(""),
        });
    }
    Ok(out)
}

impl Accumulator {
    pub(crate) fn new(op: AggregateOp) -> Accumulator {
        match op {
            AggregateOp::Count => Accumulator::Count(0),
            AggregateOp::Sum => Accumulator::Sum(Sum::Int(0)),
            AggregateOp::Min => Accumulator::Min(None),
            AggregateOp::Max => Accumulator::Max(None),
            AggregateOp::Avg => Accumulator::Avg { sum: 0.0, count: 0 },
            AggregateOp::Latest => Accumulator::Latest(None),
        }
    }

    pub(crate) fn add(&mut self, input: &Input<'_>, stamp: Stamp) {
        let num = |i: &Input<'_>| match i {
            Input::Number(n) => Num::of(n),
            _ => Num::Int(0),
        };
        match self {
            Accumulator::Count(c) => *c += 1,
            Accumulator::Sum(s) => {
                if let Input::Number(n) = input {
                    *s = s.add(n);
                }
            }
            Accumulator::Min(m) => *m = opt(*m, Some(num(input)), std::cmp::Ordering::Less),
            Accumulator::Max(m) => *m = opt(*m, Some(num(input)), std::cmp::Ordering::Greater),
            Accumulator::Avg { sum, count } => {
                *sum += num(input).as_f64();
                *count += 1;
            }
            Accumulator::Latest(l) => {
                if let Input::Value(v) = input {
                    if l.as_ref().is_none_or(|(_, held)| stamp > *held) {
                        *l = Some(((*v).clone(), stamp));
                    }
                }
            }
        }
    }

    fn remove(&mut self, input: &Input<'_>) {
        let Input::Number(n) = input else {
            if let Accumulator::Count(c) = self {
                *c = c.saturating_sub(1);
            }
            return;
        };
        match self {
            Accumulator::Sum(s) => {
                *s = match (*s, Num::of(n)) {
                    (Sum::Int(a), Num::Int(b)) => a.checked_sub(b).map_or(Sum::Float(a as f64 - b as f64), Sum::Int),
                    (s, b) => Sum::Float(s.as_f64() - b.as_f64()),
                }
            }
            Accumulator::Avg { sum, count } => {
                *sum -= Num::of(n).as_f64();
                *count = count.saturating_sub(1);
                if *count == 0 {
                    *sum = 0.0;
                }
            }
            _ => {}
        }
    }

    /// Folds `other` (of the same op) into `self`.
    pub(crate) fn merge(&mut self, other: &Accumulator) {
        match (self, other) {
            (Accumulator::Count(a), Accumulator::Count(b)) => *a += b,
            (Accumulator::Sum(a), Accumulator::Sum(b)) => *a = a.merge(*b),
            (Accumulator::Min(a), Accumulator::Min(b)) => *a = opt(*a, *b, std::cmp::Ordering::Less),
            (Accumulator::Max(a), Accumulator::Max(b)) => *a = opt(*a, *b, std::cmp::Ordering::Greater),
            (Accumulator::Avg { sum, count }, Accumulator::Avg { sum: s2, count: c2 }) => {
                *sum += s2;
                *count += c2;
            }
            (Accumulator::Latest(a), Accumulator::Latest(b)) => {
                if let Some((_, sb)) = b {
                    if a.as_ref().is_none_or(|(_, sa)| sb > sa) {
                        *a = b.clone();
                    }
                }
            }
            (a, b) => debug_assert!(false, "merging different aggregates {a:?} and {b:?}"),
        }
    }

    pub(crate) fn to_json(&self) -> Value {
        match self {
            Accumulator::Count(c) => Value::from(*c),
            Accumulator::Sum(Sum::Int(i)) => int_json(*i),
            Accumulator::Sum(Sum::Float(f)) => float_json(*f),
            Accumulator::Min(m) | Accumulator::Max(m) => m.map_or(Value::Null, Num::to_json),
            Accumulator::Avg { count: 0, .. } => Value::Null,
            Accumulator::Avg { sum, count } => float_json(sum / *count as f64),
            Accumulator::Latest(l) => l.as_ref().map_or(Value::Null, |(v, _)| v.clone()),
        }
    }
}

/// The one of `a` and `b` that compares `wins` against the other (`Less`: the minimum); `a` on a tie.
fn opt(a: Option<Num>, b: Option<Num>, wins: std::cmp::Ordering) -> Option<Num> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.cmp(a) == wins { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// The accumulators of one key (or one key's window), in the order of the spec's aggregates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Aggregates(pub Vec<Accumulator>);

impl Aggregates {
    pub(crate) fn new(specs: &[(String, AggregateSpec)]) -> Aggregates {
        Aggregates(specs.iter().map(|(_, s)| Accumulator::new(s.op)).collect())
    }

    pub(crate) fn add(&mut self, inputs: &[Input<'_>], stamp: Stamp) {
        for (acc, input) in self.0.iter_mut().zip(inputs) {
            acc.add(input, stamp);
        }
    }

    /// Takes back what [`add`](Self::add) of the same `inputs` added (a change-data-capture row
    /// that changed or was deleted). Exact for count, integer sums and averages of integers below
    /// 2^53; min, max and latest cannot retract (refused by the spec) and are left as they are.
    pub(crate) fn remove(&mut self, inputs: &[Input<'_>]) {
        for (acc, input) in self.0.iter_mut().zip(inputs) {
            acc.remove(input);
        }
    }

    pub(crate) fn merge(&mut self, other: &Aggregates) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            a.merge(b);
        }
    }

    /// The object of named aggregates.
    pub(crate) fn to_json(&self, specs: &[(String, AggregateSpec)]) -> Value {
        let mut m = Map::new();
        for ((name, _), acc) in specs.iter().zip(&self.0) {
            m.insert(name.clone(), acc.to_json());
        }
        Value::Object(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(offset: u64) -> Stamp {
        Stamp { time: 0, topic: 0, partition: 0, offset }
    }

    #[test]
    fn latest_is_decided_by_stamp_not_by_arrival() {
        let specs = vec![("last".to_string(), AggregateSpec { op: AggregateOp::Latest, field: Some("/v".into()) })];
        let stamp = |time, partition| Stamp { time, topic: 0, partition, offset: 0 };
        let (new, old) = (json!({"v": "new"}), json!({"v": "old"}));
        let mut a = Aggregates::new(&specs);
        a.add(&inputs(&specs, &new).unwrap(), stamp(5, 0));
        a.add(&inputs(&specs, &old).unwrap(), stamp(4, 1));
        assert_eq!(a.to_json(&specs), json!({"last": "new"}), "an older event arriving later loses");
        a.add(&inputs(&specs, &old).unwrap(), stamp(5, 1));
        assert_eq!(a.to_json(&specs), json!({"last": "old"}), "a tie goes to the higher partition");
    }

    fn specs() -> Vec<(String, AggregateSpec)> {
        let s = |op, field: Option<&str>| AggregateSpec { op, field: field.map(String::from) };
        vec![
            ("n".into(), s(AggregateOp::Count, None)),
            ("total".into(), s(AggregateOp::Sum, Some("/x"))),
            ("lo".into(), s(AggregateOp::Min, Some("/x"))),
            ("hi".into(), s(AggregateOp::Max, Some("/x"))),
            ("mean".into(), s(AggregateOp::Avg, Some("/x"))),
            ("last".into(), s(AggregateOp::Latest, Some("/name"))),
        ]
    }

    #[test]
    fn add_and_show() {
        let specs = specs();
        let mut a = Aggregates::new(&specs);
        for (seq, doc) in [json!({"x": 3, "name": "a"}), json!({"x": 5, "name": "b"}), json!({"x": -2, "name": "c"})]
            .iter()
            .enumerate()
        {
            a.add(&inputs(&specs, doc).unwrap(), at(seq as u64));
        }
        assert_eq!(a.to_json(&specs), json!({"n": 3, "total": 6, "lo": -2, "hi": 5, "mean": 2.0, "last": "c"}));
        let doc = json!({"x": 1.5, "name": "d"});
        a.add(&inputs(&specs, &doc).unwrap(), at(9));
        assert_eq!(a.to_json(&specs)["total"], json!(7.5));
    }

    #[test]
    fn a_missing_or_non_numeric_field_is_named() {
        let specs = specs();
        assert_eq!(inputs(&specs, &json!({"name": "a"})).unwrap_err(), "/x");
        assert_eq!(inputs(&specs, &json!({"x": "3", "name": "a"})).unwrap_err(), "/x");
        assert_eq!(inputs(&specs, &json!({"x": 3})).unwrap_err(), "/name");
    }

    #[test]
    fn merge_is_like_adding_everything_to_one() {
        let specs = specs();
        let docs: Vec<Value> = (0..10).map(|i| json!({"x": i * 7 % 5, "name": format!("n{i}")})).collect();
        let mut whole = Aggregates::new(&specs);
        let (mut left, mut right) = (Aggregates::new(&specs), Aggregates::new(&specs));
        for (i, d) in docs.iter().enumerate() {
            let inp = inputs(&specs, d).unwrap();
            whole.add(&inp, at(i as u64));
            if i % 3 == 0 { &mut left } else { &mut right }.add(&inp, at(i as u64));
        }
        right.merge(&left);
        assert_eq!(right.to_json(&specs), whole.to_json(&specs));
    }

    #[test]
    fn integers_stay_exact_and_checkpoint_exactly() {
        let specs = specs();
        let mut a = Aggregates::new(&specs);
        // Partial sums past i64::MAX, a total that fits; min and max beyond f64's 2^53.
        let xs = [i64::MAX, 1_700_000_000_000_000_001, i64::MAX, -i64::MAX, -i64::MAX];
        for (seq, x) in xs.iter().enumerate() {
            a.add(&inputs(&specs, &json!({"x": x, "name": "n"})).unwrap(), at(seq as u64));
        }
        let shown = a.to_json(&specs);
        assert_eq!(shown["total"], json!(1_700_000_000_000_000_001_i64), "{shown}");
        assert_eq!(shown["hi"], json!(i64::MAX), "{shown}");
        assert_eq!(shown["lo"], json!(-i64::MAX), "{shown}");
        let back: Aggregates = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(back, a, "the checkpoint holds the exact values");
        // u64 above i64::MAX, and a sum whose partial value is past u64.
        let mut b = Aggregates::new(&specs);
        for (seq, x) in [u64::MAX, u64::MAX, 3].iter().enumerate() {
            b.add(&inputs(&specs, &json!({"x": x, "name": "n"})).unwrap(), at(seq as u64));
        }
        let big = serde_json::to_string(&b).unwrap();
        assert!(big.contains(&format!("{}", 2 * u64::MAX as i128 + 3)), "{big}");
        assert_eq!(serde_json::from_str::<Aggregates>(&big).unwrap(), b);
        assert_eq!(b.to_json(&specs)["hi"], json!(u64::MAX));
        assert_eq!(b.to_json(&specs)["lo"], json!(3));
        // A float against an integer compares exactly: 2^53 + 1 > 2^53 as a float.
        let mut c = Aggregates::new(&specs);
        for (seq, x) in [json!(9_007_199_254_740_992.0_f64), json!(9_007_199_254_740_993_i64)].iter().enumerate() {
            c.add(&inputs(&specs, &json!({"x": x, "name": "n"})).unwrap(), at(seq as u64));
        }
        assert_eq!(c.to_json(&specs)["hi"], json!(9_007_199_254_740_993_i64));
        assert_eq!(c.to_json(&specs)["lo"], json!(9_007_199_254_740_992.0_f64));
    }

    #[test]
    fn checkpoints_of_earlier_builds_read_and_infinity_round_trips() {
        let old = r#"[{"count": 2}, {"sum": {"int": 5}}, {"min": 1.0}, {"max": 2.5},
            {"avg": {"sum": 3.0, "count": 2}}, {"latest": [7, 1]}]"#;
        let a: Aggregates = serde_json::from_str(old).unwrap();
        assert_eq!(a.to_json(&specs()), json!({"n": 2, "total": 5, "lo": 1, "hi": 2.5, "mean": 1.5, "last": 7}));
        let inf = Aggregates(vec![
            Accumulator::Sum(Sum::Float(f64::INFINITY)),
            Accumulator::Avg { sum: f64::NEG_INFINITY, count: 1 },
            Accumulator::Max(Some(Num::Float(f64::INFINITY))),
        ]);
        let text = serde_json::to_string(&inf).unwrap();
        assert_eq!(serde_json::from_str::<Aggregates>(&text).unwrap(), inf, "{text}");
        assert_eq!(inf.0[0].to_json(), Value::Null);
    }
}
