//! Not kappalog: how fast JSON scanners read what the replay benchmark's views need from its
//! records (`{"page":"/p123","user":45,"ts":1764...}`): the page alone (a count per page), and
//! the page, `ts` and `user` (a tumbling-window sum). One thread, N records in memory, each
//! scanner's result checked against the others. kappalog's projection (`src/stream/project.rs`)
//! is compiled in as it is.
//!
//! ```sh
//! cd benches/json_scan && cargo run --release            # N = 2 M, best of 5
//! ```

#[allow(dead_code)]
#[path = "../../../src/stream/project.rs"]
mod project;

use std::hint::black_box;
use std::time::Instant;

use serde::Deserialize;
use serde_json::Value;
use sonic_rs::JsonValueTrait;

const PAGES: u64 = 1000;

fn records(n: u64) -> Vec<Vec<u8>> {
    (0..n)
        .map(|j| {
            format!(r#"{{"page":"/p{}","user":{},"ts":{}}}"#, j * 7919 % PAGES, j % 1000, 1_764_000_000_000 + j)
                .into_bytes()
        })
        .collect()
}

/// Best of `rounds` runs of `f` over all records; records/s, and the checksum `f` gave.
fn rate(recs: &[Vec<u8>], rounds: usize, f: impl Fn(&[u8]) -> u64) -> (f64, u64) {
    let mut best = f64::INFINITY;
    let mut sum = 0;
    for _ in 0..rounds {
        let started = Instant::now();
        sum = 0u64;
        for r in recs {
            sum = sum.wrapping_add(f(black_box(r)));
        }
        best = best.min(started.elapsed().as_secs_f64());
    }
    (recs.len() as f64 / best, sum)
}

/// A checksum of a page (its digits) for the count case.
fn page_sum(page: &str) -> u64 {
    page.bytes().fold(0u64, |a, b| a * 31 + b as u64)
}

#[derive(Deserialize)]
struct Typed<'a> {
    #[serde(borrow)]
    page: std::borrow::Cow<'a, str>,
    user: i64,
    ts: i64,
}

#[derive(Deserialize)]
struct PageOnly<'a> {
    #[serde(borrow)]
    page: std::borrow::Cow<'a, str>,
}

/// What the validation-only row sums (it reads no page).
fn count_sum_fixed() -> u64 {
    0
}

fn main() {
    let n: u64 = std::env::var("N").ok().and_then(|s| s.parse().ok()).unwrap_or(2_000_000);
    let rounds = 5;
    let recs = records(n);
    println!("{n} records, one thread, best of {rounds}; M records/s");
    let count_plan = project::Plan::new(Some("/page"), []).unwrap();
    let window_plan = project::Plan::new(Some("/page"), ["/ts", "/user"]).unwrap();

    let mut count: Vec<(&str, (f64, u64))> = Vec::new();
    count.push((
        "kappalog projection (serde_json, key borrowed raw)",
        rate(&recs, rounds, |b| {
            let p = project::parse(b, &count_plan).unwrap();
            page_sum(&project::key_text(p.key.unwrap()).unwrap())
        }),
    ));
    let skip_all = project::Plan::new(None, []).unwrap();
    count.push((
        "(kappalog projection, nothing kept: validation only)",
        rate(&recs, rounds, |b| {
            let p = project::parse(b, &skip_all).unwrap();
            black_box(p.doc);
            count_sum_fixed()
        }),
    ));
    count.push((
        "serde_json whole Value",
        rate(&recs, rounds, |b| {
            let v: Value = serde_json::from_slice(b).unwrap();
            page_sum(v["page"].as_str().unwrap())
        }),
    ));
    count.push((
        "serde_json typed struct (page only)",
        rate(&recs, rounds, |b| page_sum(&serde_json::from_slice::<PageOnly>(b).unwrap().page)),
    ));
    count.push((
        "sonic-rs get (lazy, the rest skipped unvalidated)",
        rate(&recs, rounds, |b| {
            let v = sonic_rs::get(b, &["page"]).unwrap();
            page_sum(v.as_str().unwrap())
        }),
    ));
    count.push((
        "sonic-rs typed struct (page only, validated)",
        rate(&recs, rounds, |b| page_sum(&sonic_rs::from_slice::<PageOnly>(b).unwrap().page)),
    ));
    count.push((
        "simd-json borrowed value (copy into a buffer first)",
        rate(&recs, rounds, |b| {
            let mut buf = b.to_vec();
            let v = simd_json::to_borrowed_value(&mut buf).unwrap();
            use simd_json::prelude::*;
            page_sum(v.get_str("page").unwrap())
        }),
    ));
    report("count: the page", &count);

    let mut window: Vec<(&str, (f64, u64))> = Vec::new();
    let win_sum = |page: &str, ts: i64, user: i64| page_sum(page) ^ (ts as u64).wrapping_mul(3) ^ user as u64;
    window.push((
        "kappalog projection (serde_json, key borrowed raw)",
        rate(&recs, rounds, |b| {
            let p = project::parse(b, &window_plan).unwrap();
            let ts = p.doc["ts"].as_i64().unwrap();
            let user = p.doc["user"].as_i64().unwrap();
            win_sum(&project::key_text(p.key.unwrap()).unwrap(), ts, user)
        }),
    ));
    window.push((
        "serde_json whole Value",
        rate(&recs, rounds, |b| {
            let v: Value = serde_json::from_slice(b).unwrap();
            win_sum(v["page"].as_str().unwrap(), v["ts"].as_i64().unwrap(), v["user"].as_i64().unwrap())
        }),
    ));
    window.push((
        "serde_json typed struct",
        rate(&recs, rounds, |b| {
            let t: Typed = serde_json::from_slice(b).unwrap();
            win_sum(&t.page, t.ts, t.user)
        }),
    ));
    window.push((
        "sonic-rs get_many (lazy, the rest skipped unvalidated)",
        rate(&recs, rounds, |b| {
            let mut tree = sonic_rs::PointerTree::new();
            tree.add_path(&["page"]);
            tree.add_path(&["ts"]);
            tree.add_path(&["user"]);
            let vs = sonic_rs::get_many(b, &tree).unwrap();
            let (p, t, u) = (vs[0].as_ref().unwrap(), vs[1].as_ref().unwrap(), vs[2].as_ref().unwrap());
            win_sum(p.as_str().unwrap(), t.as_i64().unwrap(), u.as_i64().unwrap())
        }),
    ));
    window.push((
        "sonic-rs typed struct (validated)",
        rate(&recs, rounds, |b| {
            let t: Typed = sonic_rs::from_slice(b).unwrap();
            win_sum(&t.page, t.ts, t.user)
        }),
    ));
    window.push((
        "simd-json borrowed value (copy into a buffer first)",
        rate(&recs, rounds, |b| {
            let mut buf = b.to_vec();
            let v = simd_json::to_borrowed_value(&mut buf).unwrap();
            use simd_json::prelude::*;
            win_sum(v.get_str("page").unwrap(), v.get_i64("ts").unwrap(), v.get_i64("user").unwrap())
        }),
    ));
    report("window: page, ts, user", &window);
}

fn report(what: &str, rows: &[(&str, (f64, u64))]) {
    let base = rows[0].1;
    println!("{what}");
    for (name, (r, sum)) in rows {
        assert!(*sum == base.1 || name.starts_with('('), "{name} read the same values");
        println!("  {:>6.2}  {:.2}x  {name}", r / 1e6, r / base.0);
    }
}
