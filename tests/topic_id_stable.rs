//! A topic's id is given at creation, kept in `topic.json` across restarts, new when the topic is
//! deleted and created again, and given (and kept) at open to a topic written without one.

use kappalog::{Store, TopicConfig, TopicId};

#[test]
fn topic_ids_are_stable_and_new_for_a_new_topic() {
    let dir = tempfile::tempdir().unwrap();
    let open = || Store::builder(dir.path()).cleaner_interval_ms(0).open().unwrap();
    let (first, other) = {
        let store = open();
        let t = store.create_topic("t", 2, TopicConfig::default()).unwrap();
        let u = store.create_topic("u", 1, TopicConfig::default()).unwrap();
        assert_ne!(t.id(), u.id());
        store.add_partitions("t", 3).unwrap();
        store.set_topic_config("t", TopicConfig::default().retention_ms(60_000)).unwrap();
        assert_eq!(store.topic("t").unwrap().id(), t.id(), "changes keep the id");
        (t.id(), u.id())
    };
    let meta = std::fs::read_to_string(dir.path().join("topics/t/topic.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&meta).unwrap();
    assert_eq!(json["id"].as_str().map(TopicId::parse), Some(Ok(first)), "{meta}");
    {
        let store = open();
        assert_eq!(store.topic("t").unwrap().id(), first, "the id survives a restart");
        store.delete_topic("t").unwrap();
        let again = store.create_topic("t", 1, TopicConfig::default()).unwrap();
        assert_ne!(again.id(), first, "a topic created again is a new topic");
    }
    // A topic.json from a build without ids: the topic gets one at open, and keeps it.
    let path = dir.path().join("topics/u/topic.json");
    let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    json.as_object_mut().unwrap().remove("id");
    std::fs::write(&path, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
    let given = open().topic("u").unwrap().id();
    assert_ne!(given, other, "a new id, not a guess of the old one");
    assert_eq!(open().topic("u").unwrap().id(), given, "the id given at open is kept");
}
