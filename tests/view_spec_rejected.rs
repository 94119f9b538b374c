//! Specs that do not parse or refer to missing topics are rejected with an error naming the field.

mod view_common;

use kappalog::{stream::ViewError, TopicConfig};
use view_common::open;

fn field_of(r: kappalog::stream::Result<kappalog::View>) -> String {
    match r {
        Err(ViewError::InvalidSpec { field, reason }) => {
            assert!(!reason.is_empty());
            field
        }
        other => panic!("expected InvalidSpec, got {other:?}"),
    }
}

#[test]
fn bad_specs_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let (store, views) = open(dir.path());
    store.create_topic("orders", 1, TopicConfig::default()).unwrap();
    let missing_source = r#"{"name": "v", "source": {"topics": ["orders", "nope"]}}"#;
    assert_eq!(field_of(views.create_json(missing_source.as_bytes())), "source.topics[1]");
    let missing_emit = r#"{"name": "v", "source": {"topics": ["orders"]}, "emit": {"topic": "out"}}"#;
    assert_eq!(field_of(views.create_json(missing_emit.as_bytes())), "emit.topic");
    let bad_window = r#"{"name": "v", "source": {"topics": ["orders"]},
        "window": {"type": "hopping", "size_ms": 10}, "aggregates": {"n": {"op": "count"}}}"#;
    assert_eq!(field_of(views.create_json(bad_window.as_bytes())), "window.advance_ms");
    let bad_op = r#"{"name": "v", "source": {"topics": ["orders"]}, "aggregates": {"n": {"op": "median"}}}"#;
    let err = views.create_json(bad_op.as_bytes()).unwrap_err();
    assert!(err.to_string().contains("median"), "{err}");
    let bad_having = r#"{"name": "v", "source": {"topics": ["orders"]},
        "having": {"any": [{"field": "/n", "op": "gt"}]}}"#;
    assert_eq!(field_of(views.create_json(bad_having.as_bytes())), "having.any[0].value");
    assert_eq!(field_of(views.create_json(b"[]")), "(document)");
    assert!(views.list().is_empty(), "nothing was created");

    let ok = r#"{"name": "v", "source": {"topics": ["orders"]}}"#;
    views.create_json(ok.as_bytes()).unwrap();
    assert!(matches!(views.create_json(ok.as_bytes()), Err(ViewError::Exists(_))));
    assert!(matches!(views.get("w"), Err(ViewError::NotFound(_))));
    assert!(matches!(views.delete("w"), Err(ViewError::NotFound(_))));
}
