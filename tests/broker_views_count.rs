//! A count view created over HTTP: after producing over HTTP, its keys (point queries and a scan)
//! equal an independent count; unknown views and keys are 404s with their codes; `/metrics`
//! reports the view's lag.

mod broker_common;
mod broker_views_common;

use broker_common::Broker;
use broker_views_common::*;
use serde_json::Value;

#[test]
fn count_view_over_http_matches_an_independent_count() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let http = broker.client();
    http.create_topic("page-views", 3, serde_json::json!({}));
    let spec: Value = serde_json::from_str(COUNT_SPEC).unwrap();
    let (s, created) = http.post("/views", &spec);
    assert_eq!(s, 201, "{created}");
    assert_eq!(created["name"], "views_per_page");
    let (s, again) = http.post("/views", &spec);
    assert_eq!((s, again["error_code"].as_i64()), (409, Some(40910)), "{again}");
    let (s, names) = http.get("/views");
    assert_eq!((s, names), (200, serde_json::json!(["views_per_page"])));

    let mut rng = Rng::from_env("count_view_over_http");
    let (records, counts) = page_views(&mut rng, 3000);
    let errors = records.len() as u64 - counts.values().sum::<u64>();
    produce_json(&http, "page-views", &records);

    let expected = as_count_values(&counts);
    wait_for("view counts equal the independent count", VIEW_WAIT, || {
        let got = scan_values(&http, "views_per_page");
        if got == expected {
            Ok(())
        } else {
            Err(format!("{} keys, want {}", got.len(), expected.len()))
        }
    });
    for (page, n) in &counts {
        let (s, v) = http.get(&format!("/views/views_per_page/keys/{}", segment(page)));
        assert_eq!(s, 200, "{v}");
        assert_eq!(v, serde_json::json!({"key": page, "value": {"views": n}}));
    }
    let status = wait_caught_up(&http, "views_per_page", 1);
    assert_eq!(status["error_records"].as_u64(), Some(errors), "{status}");
    assert_eq!(status["spec"]["key"], "/page");
    assert_eq!(status["lag"].as_array().unwrap().len(), 3);

    let (s, e) = http.get("/views/nope");
    assert_eq!((s, e["error_code"].as_i64()), (404, Some(40410)), "{e}");
    let (s, e) = http.get("/views/views_per_page/keys/no-such-page");
    assert_eq!((s, e["error_code"].as_i64()), (404, Some(40411)), "{e}");
    let (s, page) = http.get("/views/views_per_page/keys?prefix=%2Fp1&limit=3");
    assert_eq!(s, 200, "{page}");
    let keys: Vec<&str> = page.as_array().unwrap().iter().map(|k| k["key"].as_str().unwrap()).collect();
    let want: Vec<&str> = counts.keys().filter(|k| k.starts_with("/p1")).take(3).map(String::as_str).collect();
    assert_eq!(keys, want);

    let metrics = http.client.get(format!("{}/metrics", http.base)).send().unwrap().text().unwrap();
    for p in 0..3 {
        let line = format!("kappalog_view_lag{{view=\"views_per_page\",topic=\"page-views\",partition=\"{p}\"}} 0");
        assert!(metrics.contains(&line), "missing {line}");
    }
    assert!(metrics.contains(&format!("kappalog_view_error_records_total{{view=\"views_per_page\"}} {errors}")));

    let (s, _) = http.delete("/views/views_per_page");
    assert_eq!(s, 204);
    let (s, e) = http.get("/views/views_per_page");
    assert_eq!((s, e["error_code"].as_i64()), (404, Some(40410)), "{e}");
}
