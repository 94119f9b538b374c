//! Aggregates: count, sum, min, max, avg, latest. Each keeps a small accumulator that can be
//! updated by one record, merged with another (session windows) and shown as JSON.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

use super::expr::lookup;
use super::spec::{AggregateOp, AggregateSpec};
use super::time::Stamp;

/// One accumulator. Sums stay integers until a non-integer is added, so integer sums are exact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Accumulator {
    Count(u64),
    Sum(Sum),
    Min(Option<f64>),
    Max(Option<f64>),
    Avg {
        sum: f64,
        count: u64,
    },
    /// The value, and the stamp of the record it came from: the greatest stamp wins (the
    /// latest event time, then topic, partition, offset), whatever the order records came in.
    Latest(Option<(Value, Stamp)>),
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Sum {
    Int(i64),
    Float(f64),
}

impl Sum {
    fn add(self, n: &Number) -> Sum {
        match (self, n.as_i64()) {
            (Sum::Int(a), Some(b)) => match a.checked_add(b) {
                Some(s) => Sum::Int(s),
                None => Sum::Float(a as f64 + b as f64),
            },
            (s, _) => Sum::Float(s.as_f64() + n.as_f64().unwrap_or(0.0)),
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

/// The input an aggregate needs from one record, extracted before anything changes (so a record
/// with a missing field changes nothing).
#[derive(Debug)]
pub(crate) enum Input<'a> {
    None,
    Number(&'a Number),
    Value(&'a Value),
}

/// Extracts every aggregate's input from `doc`; `Err(field)` names the first missing or
/// non-numeric one.
pub(crate) fn inputs<'a>(specs: &'a [(String, AggregateSpec)], doc: &'a Value) -> Result<Vec<Input<'a>>, &'a str> {
    specs
        .iter()
        .map(|(_, s)| match (s.op, &s.field) {
            (AggregateOp::Count, _) => Ok(Input::None),
            (AggregateOp::Latest, None) => Ok(Input::Value(doc)),
            (AggregateOp::Latest, Some(f)) => lookup(doc, f).map(Input::Value).ok_or(f.as_str()),
            (_, Some(f)) => match lookup(doc, f) {
                Some(Value::Number(n)) => Ok(Input::Number(n)),
                _ => Err(f.as_str()),
            },
            (_, None) => Err(""),
        })
        .collect()
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
            Input::Number(n) => n.as_f64().unwrap_or(0.0),
            _ => 0.0,
        };
        match self {
            Accumulator::Count(c) => *c += 1,
            Accumulator::Sum(s) => {
                if let Input::Number(n) = input {
                    *s = s.add(n);
                }
            }
            Accumulator::Min(m) => *m = Some(m.map_or(num(input), |m| m.min(num(input)))),
            Accumulator::Max(m) => *m = Some(m.map_or(num(input), |m| m.max(num(input)))),
            Accumulator::Avg { sum, count } => {
                *sum += num(input);
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

    /// Folds `other` (of the same op) into `self`.
    pub(crate) fn merge(&mut self, other: &Accumulator) {
        match (self, other) {
            (Accumulator::Count(a), Accumulator::Count(b)) => *a += b,
            (Accumulator::Sum(a), Accumulator::Sum(b)) => *a = a.merge(*b),
            (Accumulator::Min(a), Accumulator::Min(b)) => *a = opt(*a, *b, f64::min),
            (Accumulator::Max(a), Accumulator::Max(b)) => *a = opt(*a, *b, f64::max),
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
        let float = |f: f64| Number::from_f64(f).map_or(Value::Null, Value::Number);
        let whole = |f: f64| {
            if f.fract() == 0.0 && f.abs() < 9.0e15 {
                Value::from(f as i64)
            } else {
                float(f)
            }
        };
        match self {
            Accumulator::Count(c) => Value::from(*c),
            Accumulator::Sum(Sum::Int(i)) => Value::from(*i),
            Accumulator::Sum(Sum::Float(f)) => float(*f),
            Accumulator::Min(m) | Accumulator::Max(m) => m.map_or(Value::Null, whole),
            Accumulator::Avg { count: 0, .. } => Value::Null,
            Accumulator::Avg { sum, count } => float(sum / *count as f64),
            Accumulator::Latest(l) => l.as_ref().map_or(Value::Null, |(v, _)| v.clone()),
        }
    }
}

fn opt(a: Option<f64>, b: Option<f64>, f: fn(f64, f64) -> f64) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(f(a, b)),
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
}
