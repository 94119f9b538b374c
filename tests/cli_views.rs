//! The CLI's `views` commands against a real broker: create from a spec file, list, get a key,
//! rebuild (waiting, with its progress line, until the new version serves), errors exit 1.

mod broker_common;
mod broker_views_common;

use std::process::{Command, Output};

use broker_common::Broker;
use broker_views_common::*;

fn kappalog(broker: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kappalog")).args(args).env("KAPPALOG_BROKER", broker).output().unwrap()
}

fn ok(out: Output) -> (String, String) {
    assert!(out.status.success(), "exit {:?}: {}", out.status, String::from_utf8_lossy(&out.stderr));
    (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn cli_views_create_list_get_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let http = broker.client();
    let b = broker.url.clone();
    http.create_topic("page-views", 2, serde_json::json!({}));
    let spec_file = dir.path().join("spec.json");
    std::fs::write(&spec_file, COUNT_SPEC).unwrap();
    let (out, _) = ok(kappalog(&b, &["views", "create", spec_file.to_str().unwrap()]));
    assert!(out.contains("created view views_per_page"), "{out}");
    let (out, _) = ok(kappalog(&b, &["views", "list"]));
    assert_eq!(out.trim(), "views_per_page");

    let mut rng = Rng::from_env("cli_views_create_list_get_rebuild");
    let (records, counts) = page_views(&mut rng, 3000);
    produce_json(&http, "page-views", &records);
    wait_caught_up(&http, "views_per_page", 1);
    let (page, n) = counts.iter().next().unwrap();
    let (out, _) = ok(kappalog(&b, &["views", "get", "views_per_page", page]));
    let got: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(got, serde_json::json!({"key": page, "value": {"views": n}}));

    let (out, err) = ok(kappalog(&b, &["views", "rebuild", "views_per_page", "--timeout-s", "60"]));
    assert!(out.contains("version 2 serving"), "{out}");
    assert!(err.contains("rebuilding 100.0%"), "{err}");
    let (out, _) = ok(kappalog(&b, &["views", "get", "views_per_page", page]));
    assert_eq!(serde_json::from_str::<serde_json::Value>(&out).unwrap(), got, "the rebuilt view answers the same");
    let st = wait_caught_up(&http, "views_per_page", 2);
    assert_eq!(st["version"], 2);

    let missing = kappalog(&b, &["views", "get", "views_per_page", "no-such-page"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("404"), "{missing:?}");
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"name": "x", "source": {"topics": ["nope"]}}"#).unwrap();
    let rejected = kappalog(&b, &["views", "create", bad.to_str().unwrap()]);
    assert_eq!(rejected.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&rejected.stderr).contains("source.topics[0]"), "{rejected:?}");
}
