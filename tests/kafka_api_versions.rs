//! ApiVersions over a real connection: every served version decodes with the `kafka-protocol`
//! crate, an unsupported version gets UNSUPPORTED_VERSION in a v0 body listing the ranges (as
//! Kafka answers), responses never carry tagged fields, and an unknown api key closes the
//! connection.

mod broker_common;
mod kafka_common;

use broker_common::Broker;
use kafka_common::Conn;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest};
use kafka_protocol::protocol::StrBytes;

#[test]
fn api_versions_every_version_and_unsupported_ones() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let mut c = Conn::connect(&broker.kafka);
    for v in 0..=3 {
        let req = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("test"))
            .with_client_software_version(StrBytes::from_static_str("1"));
        let resp = c.call(v, &req);
        assert_eq!(resp.error_code, 0, "v{v}");
        let av = resp.api_keys.iter().find(|k| k.api_key == ApiKey::ApiVersions as i16).expect("ApiVersions listed");
        assert_eq!((av.min_version, av.max_version), (0, 3), "v{v}");
        assert!(resp.unknown_tagged_fields.is_empty());
        assert!(resp.supported_features.is_empty() && resp.finalized_features.is_empty());
    }
    // kafka-python 3 opens with v4: the answer is a v0 body with error 35 and the ranges.
    let (corr, frame) = c.frame(4, &ApiVersionsRequest::default());
    c.send_raw(&frame);
    let resp = c.read_frame().expect("an answer, not a close");
    let resp = Conn::decode::<ApiVersionsRequest>(0, corr, resp);
    assert_eq!(resp.error_code, 35);
    assert!(resp.api_keys.iter().any(|k| k.api_key == 18 && k.max_version == 3));
    // The connection is still usable.
    assert_eq!(c.call(3, &ApiVersionsRequest::default()).error_code, 0);
    // An unknown api key closes the connection.
    let mut raw = Vec::new();
    raw.extend_from_slice(&10i32.to_be_bytes());
    raw.extend_from_slice(&[0x03, 0xe7, 0, 0, 0, 0, 0, 9, 0xff, 0xff]); // key 999, v0, corr 9, null client id
    c.send_raw(&raw);
    assert!(c.closed(), "an unknown api key closes the connection");
}
