//! `PUT /views/{name}` with a new definition while another thread keeps querying: every query
//! succeeds and shows either the old definition's value or the new one's (never a half-built
//! state), and the new one takes over once rebuilt.

mod broker_common;
mod broker_views_common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use broker_common::{Broker, Http};
use broker_views_common::*;
use serde_json::{json, Value};

#[test]
fn queries_keep_succeeding_while_a_new_definition_takes_over() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let http = broker.client();
    http.create_topic("page-views", 2, json!({}));
    let (s, b) = http.post("/views", &serde_json::from_str::<Value>(COUNT_SPEC).unwrap());
    assert_eq!(s, 201, "{b}");
    let mut rng = Rng::from_env("queries_keep_succeeding_while_a_new_definition_takes_over");
    let (records, counts) = page_views(&mut rng, 20_000);
    produce_json(&http, "page-views", &records);
    wait_caught_up(&http, "views_per_page", 1);
    let (page, n) = counts.iter().next().map(|(k, n)| (k.clone(), *n)).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let (old_seen, new_seen) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let reader = {
        let (stop, old_seen, new_seen) = (stop.clone(), old_seen.clone(), new_seen.clone());
        let base = broker.url.clone();
        let path = format!("/views/views_per_page/keys/{}", segment(&page));
        std::thread::spawn(move || {
            let http = Http::new(&base);
            while !stop.load(Ordering::Acquire) {
                let (s, v) = http.get(&path);
                assert_eq!(s, 200, "a query failed during the switch: {v}");
                assert_eq!(v["value"]["views"].as_u64(), Some(n), "{v}");
                match v["value"].as_object().map(|o| o.len()) {
                    Some(1) => old_seen.fetch_add(1, Ordering::AcqRel),
                    Some(2) => {
                        assert!(v["value"]["last_user"].is_string(), "{v}");
                        new_seen.fetch_add(1, Ordering::AcqRel)
                    }
                    _ => panic!("neither the old nor the new shape: {v}"),
                };
                let (s, v) = http.get("/views/views_per_page/keys?limit=100");
                assert_eq!(s, 200, "a scan failed during the switch: {v}");
            }
        })
    };
    wait_for("the reader's first query", VIEW_WAIT, || {
        if old_seen.load(Ordering::Acquire) > 0 {
            Ok(())
        } else {
            Err("none yet".into())
        }
    });

    let new_spec = json!({"name": "views_per_page", "source": {"topics": ["page-views"]}, "key": "/page",
        "aggregates": {"views": {"op": "count"}, "last_user": {"op": "latest", "field": "/user"}}});
    let (s, st) =
        http.call("PUT", "/views/views_per_page", Some("application/json"), Some(new_spec.to_string().into_bytes()));
    assert_eq!(s, 202, "{st}");
    let st = wait_caught_up(&http, "views_per_page", 2);
    assert_eq!(st["spec"]["aggregates"]["last_user"]["op"], "latest", "{st}");
    wait_for("the reader sees the new definition", VIEW_WAIT, || {
        if new_seen.load(Ordering::Acquire) > 0 {
            Ok(())
        } else {
            Err("only the old shape so far".into())
        }
    });
    stop.store(true, Ordering::Release);
    reader.join().expect("the reader thread failed");
    let got = scan_values(&http, "views_per_page");
    assert_eq!(got.len(), counts.len());
    for (k, n) in &counts {
        assert_eq!(got[k]["views"].as_u64(), Some(*n), "{k}");
    }
}
