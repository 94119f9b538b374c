//! A view survives a broker restart (SIGTERM, start again on the same data directory): it is
//! still listed without being created again, answers the same at once (its state comes from the
//! checkpoint written at shutdown), and goes on counting new records exactly once, also across
//! a shutdown in the middle of reading.

mod broker_common;
mod broker_views_common;

use broker_common::Broker;
use broker_views_common::*;
use serde_json::Value;

#[test]
fn view_survives_a_broker_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(dir.path(), &[]);
    let http = broker.client();
    http.create_topic("page-views", 2, serde_json::json!({}));
    let (s, b) = http.post("/views", &serde_json::from_str::<Value>(COUNT_SPEC).unwrap());
    assert_eq!(s, 201, "{b}");
    let mut rng = Rng::from_env("view_survives_a_broker_restart");
    let (records, mut counts) = page_views(&mut rng, 2000);
    produce_json(&http, "page-views", &records);
    wait_caught_up(&http, "views_per_page", 1);
    let before = scan_values(&http, "views_per_page");
    assert_eq!(before, as_count_values(&counts));

    let status = broker.terminate();
    assert!(status.success(), "the broker exited with {status}");
    let broker = Broker::start(dir.path(), &[]);
    let http = broker.client();
    let (s, names) = http.get("/views");
    assert_eq!((s, names), (200, serde_json::json!(["views_per_page"])));
    // No wait: the state is the checkpoint's, loaded before the broker listens.
    assert_eq!(scan_values(&http, "views_per_page"), before, "the first answer after the restart differs");
    let (s, st) = http.get("/views/views_per_page");
    assert_eq!((s, st["version"].as_u64()), (200, Some(1)), "{st}");

    let (more, more_counts) = page_views(&mut rng, 500);
    produce_json(&http, "page-views", &more);
    for (k, n) in more_counts {
        *counts.entry(k).or_default() += n;
    }
    let expected = as_count_values(&counts);
    wait_for("counts after the restart include the new records once", VIEW_WAIT, || {
        let got = scan_values(&http, "views_per_page");
        if got == expected {
            Ok(())
        } else {
            Err(format!("{got:?}"))
        }
    });

    // SIGTERM while the view is (likely) still reading: the shutdown checkpoint covers exactly
    // the records applied, so after a restart none is counted twice or missed.
    let mut broker = broker;
    let (more, more_counts) = page_views(&mut rng, 20_000);
    produce_json(&http, "page-views", &more);
    for (k, n) in more_counts {
        *counts.entry(k).or_default() += n;
    }
    let status = broker.terminate();
    assert!(status.success(), "the broker exited with {status}");
    let broker = Broker::start(dir.path(), &[]);
    let http = broker.client();
    wait_caught_up(&http, "views_per_page", 1);
    assert_eq!(scan_values(&http, "views_per_page"), as_count_values(&counts));
    let (_, st) = http.get("/views/views_per_page");
    assert_eq!(st["counters"]["records_read"].as_u64(), Some(22_500), "{st}");
}
