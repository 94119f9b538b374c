//! The `kafka_requests` fuzz target's property over a valid request of every advertised API and
//! version (encoded by the `kafka-protocol` crate), and over every truncation and several single
//! byte changes of each (a cheap stand-in for `cargo fuzz run kafka_requests` in `cargo test`):
//! no panic, answers well framed, memory bounded by the request's size. Every seed is answered.
//! With `KAPPALOG_WRITE_FUZZ_SEEDS=1` the seeds are written to `fuzz/corpus/kafka_requests`.

#[path = "../fuzz/fuzz_targets/kafka_harness.rs"]
mod kafka_harness;

use bytes::{Bytes, BytesMut};
use kafka_harness::Harness;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

const MUTATIONS: &[u8] = &[0x00, 0x7f, 0xff];

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn records() -> Bytes {
    let r = |i: i64| Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: i,
        sequence: i as i32,
        timestamp: 1_700_000_000_000,
        key: Some(Bytes::from_static(b"k")),
        value: Some(Bytes::from_static(b"v")),
        headers: Default::default(),
    };
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &[r(0), r(1)],
        &RecordEncodeOptions { version: 2, compression: Compression::None },
    )
    .unwrap();
    buf.freeze()
}

fn body<T: Encodable>(req: &T, version: i16) -> Vec<u8> {
    let mut b = BytesMut::new();
    req.encode(&mut b, version).unwrap();
    b.to_vec()
}

/// A valid request body for `api_key` at `version` (the APIs outside the groups').
fn seed(api_key: i16, version: i16) -> Option<Vec<u8>> {
    let t = TopicName(s("t"));
    Some(match api_key {
        0 => {
            let mut p = produce_request::PartitionProduceData::default();
            p.records = Some(records());
            let mut td = produce_request::TopicProduceData::default();
            td.name = t;
            td.partition_data = vec![p];
            body(&ProduceRequest::default().with_acks(1).with_topic_data(vec![td]), version)
        }
        1 => {
            let mut p = fetch_request::FetchPartition::default();
            p.partition_max_bytes = 1 << 16;
            let mut ft = fetch_request::FetchTopic::default();
            ft.topic = t;
            ft.partitions = vec![p];
            body(&FetchRequest::default().with_max_bytes(1 << 20).with_topics(vec![ft]), version)
        }
        2 => {
            let mut p = list_offsets_request::ListOffsetsPartition::default();
            p.timestamp = -2;
            let mut lt = list_offsets_request::ListOffsetsTopic::default();
            lt.name = t;
            lt.partitions = vec![p];
            body(&ListOffsetsRequest::default().with_topics(vec![lt]), version)
        }
        3 => {
            let mut mt = metadata_request::MetadataRequestTopic::default();
            mt.name = Some(t);
            body(&MetadataRequest::default().with_topics(Some(vec![mt])), version)
        }
        18 => body(&ApiVersionsRequest::default(), version),
        22 => body(&InitProducerIdRequest::default().with_transactional_id(None), version),
        19 => {
            let mut c = create_topics_request::CreatableTopic::default();
            c.name = TopicName(s("new"));
            c.num_partitions = 1;
            c.replication_factor = 1;
            body(&CreateTopicsRequest::default().with_topics(vec![c]).with_validate_only(true), version)
        }
        20 => body(&DeleteTopicsRequest::default().with_topic_names(vec![TopicName(s("none"))]), version),
        21 => {
            let mut p = delete_records_request::DeleteRecordsPartition::default();
            p.offset = 0;
            let mut dt = delete_records_request::DeleteRecordsTopic::default();
            dt.name = t;
            dt.partitions = vec![p];
            body(&DeleteRecordsRequest::default().with_topics(vec![dt]), version)
        }
        32 => {
            let mut r = describe_configs_request::DescribeConfigsResource::default();
            r.resource_type = 2;
            r.resource_name = s("t");
            body(&DescribeConfigsRequest::default().with_resources(vec![r]), version)
        }
        44 => {
            let mut c = incremental_alter_configs_request::AlterableConfig::default();
            c.name = s("retention.ms");
            c.value = Some(s("60000"));
            let mut r = incremental_alter_configs_request::AlterConfigsResource::default();
            r.resource_type = 2;
            r.resource_name = s("t");
            r.configs = vec![c];
            body(&IncrementalAlterConfigsRequest::default().with_resources(vec![r]).with_validate_only(true), version)
        }
        _ => return None,
    })
}

#[test]
fn kafka_request_seeds_and_their_mutations() {
    let mut seeds = Vec::new();
    for (key, lo, hi) in kafka_harness::apis() {
        for v in lo..=hi {
            let v_served = if key == 0 { v.max(3) } else { v };
            if let Some(b) = seed(key, v_served) {
                seeds.push((format!("seed-{key}-v{v_served}"), kafka_harness::input(key, v_served, &b)));
            }
        }
    }
    assert!(seeds.len() >= 40, "a seed for every API and version");
    if std::env::var_os("KAPPALOG_WRITE_FUZZ_SEEDS").is_some() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/kafka_requests");
        std::fs::create_dir_all(&dir).unwrap();
        for (name, input) in &seeds {
            std::fs::write(dir.join(name), input).unwrap();
        }
    }
    let mut h = Harness::new();
    for (name, input) in &seeds {
        h.run(input);
        assert!(h.answered, "{name}: a valid request is answered");
    }
    for (_, input) in &seeds {
        for cut in 2..input.len() {
            h.run(&input[..cut]);
        }
        for i in 2..input.len() {
            for &b in MUTATIONS {
                let mut m = input.clone();
                m[i] = b;
                h.run(&m);
            }
        }
    }
    eprintln!("{} requests", h.requests);
}
