//! Auto-creation of topics on produce: off by default (404), on with `--auto-create-topics true`.

mod broker_common;

use broker_common::{Broker, JSON_V2};
use serde_json::json;

#[test]
fn produce_creates_topics_only_when_enabled() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let (s, b) = broker.client().post_as("/topics/new", JSON_V2, &json!({"records": [{"value": 1}]}));
    assert_eq!((s, &b["error_code"]), (404, &json!(40401)), "{b}");
    drop(broker);

    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &["--auto-create-topics", "true"]);
    let http = broker.client();
    let (s, b) = http.post_as("/topics/new", JSON_V2, &json!({"records": [{"value": 1}]}));
    assert_eq!(s, 200, "{b}");
    assert_eq!(http.get("/topics").1, json!(["new"]));
    // An invalid name is still refused, and creates nothing.
    let (s, b) = http.post_as("/topics/bad%20name", JSON_V2, &json!({"records": [{"value": 1}]}));
    assert_eq!((s, &b["error_code"]), (422, &json!(42206)), "{b}");
    assert_eq!(http.get("/topics").1, json!(["new"]));
}
