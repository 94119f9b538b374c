//! Every API and advertised version over a real connection, with the `kafka-protocol` crate
//! encoding the requests and decoding the responses: topics created, described and altered,
//! records produced and fetched back intact (keys, values, headers, timestamps), offsets listed
//! and records deleted. Also: acks=0 gets no response, pipelined requests are answered in order,
//! Produce v0-2 (advertised, not served) closes the connection.

mod broker_common;
mod kafka_common;

use broker_common::Broker;
use bytes::{Bytes, BytesMut};
use kafka_common::Conn;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}
fn topic(v: &str) -> TopicName {
    TopicName(s(v))
}

fn batch(first: usize, n: usize, ts: i64) -> Bytes {
    let records: Vec<Record> = (first..first + n)
        .map(|i| {
            let mut headers: kafka_protocol::indexmap::IndexMap<StrBytes, Option<Bytes>> = Default::default();
            headers.insert(s("h"), Some(Bytes::from(format!("hv{i}"))));
            Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: (i - first) as i64,
                // The crate puts records in one batch when offset - sequence is the same for all.
                sequence: (i - first) as i32,
                timestamp: ts + i as i64,
                key: Some(Bytes::from(format!("k{i}"))),
                value: (i % 7 != 3).then(|| Bytes::from(format!("value {i}"))),
                headers,
            }
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, &records, &RecordEncodeOptions { version: 2, compression: Compression::None })
        .unwrap();
    buf.freeze()
}

fn produce_request(name: &str, partition: i32, records: Bytes, acks: i16) -> ProduceRequest {
    let mut p = produce_request::PartitionProduceData::default();
    p.index = partition;
    p.records = Some(records);
    let mut t = produce_request::TopicProduceData::default();
    t.name = topic(name);
    t.partition_data = vec![p];
    let mut r = ProduceRequest::default();
    r.acks = acks;
    r.timeout_ms = 10_000;
    r.topic_data = vec![t];
    r
}

fn fetch_request(name: &str, partition: i32, offset: i64, max_wait_ms: i32) -> FetchRequest {
    let mut p = fetch_request::FetchPartition::default();
    p.partition = partition;
    p.fetch_offset = offset;
    p.partition_max_bytes = 1 << 20;
    let mut t = fetch_request::FetchTopic::default();
    t.topic = topic(name);
    t.partitions = vec![p];
    let mut r = FetchRequest::default();
    r.replica_id = BrokerId(-1);
    r.max_wait_ms = max_wait_ms;
    r.min_bytes = 1;
    r.max_bytes = 10 << 20;
    r.topics = vec![t];
    r
}

fn list_offsets(c: &mut Conn, v: i16, name: &str, timestamp: i64) -> (i16, i64, i64) {
    let mut p = list_offsets_request::ListOffsetsPartition::default();
    p.partition_index = 0;
    p.timestamp = timestamp;
    let mut t = list_offsets_request::ListOffsetsTopic::default();
    t.name = topic(name);
    t.partitions = vec![p];
    let mut r = ListOffsetsRequest::default();
    r.replica_id = BrokerId(-1);
    r.topics = vec![t];
    let resp = c.call(v, &r);
    let p = &resp.topics[0].partitions[0];
    (p.error_code, p.timestamp, p.offset)
}

#[test]
fn every_api_and_version_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let mut c = Conn::connect(&broker.kafka);

    // CreateTopics v2-4, one topic per version, with a Kafka config name.
    for v in 2..=4 {
        let mut cfg = create_topics_request::CreatableTopicConfig::default();
        cfg.name = s("retention.ms");
        cfg.value = Some(s("3600000"));
        let mut t = create_topics_request::CreatableTopic::default();
        t.name = topic(&format!("t{v}"));
        t.num_partitions = 2;
        t.replication_factor = 1;
        t.configs = vec![cfg];
        let mut bad = create_topics_request::CreatableTopic::default();
        bad.name = topic(&format!("bad{v}"));
        bad.num_partitions = 1;
        bad.replication_factor = 3;
        let mut r = CreateTopicsRequest::default();
        r.topics = vec![t, bad];
        r.timeout_ms = 5000;
        let resp = c.call(v, &r);
        assert_eq!(resp.topics[0].error_code, 0, "v{v}: {:?}", resp.topics[0].error_message);
        assert_eq!(resp.topics[1].error_code, 38, "v{v}: replication factor 3 is refused");
        let again = c.call(v, &r);
        assert_eq!(again.topics[0].error_code, 36, "v{v}: TOPIC_ALREADY_EXISTS");
    }

    // Metadata v0-8: all topics, and one named topic.
    for v in 0..=8 {
        let resp = c.call(v, &MetadataRequest::default().with_topics(if v == 0 { Some(vec![]) } else { None }));
        assert_eq!(resp.brokers.len(), 1, "v{v}");
        assert_eq!(resp.brokers[0].port.to_string(), broker.kafka.rsplit(':').next().unwrap());
        let t2 = resp.topics.iter().find(|t| t.name.as_ref().map(|n| n.0.as_str()) == Some("t2")).expect("t2");
        assert_eq!(t2.partitions.len(), 2, "v{v}");
        assert!(t2.partitions.iter().all(|p| p.leader_id.0 == 0 && p.replica_nodes == vec![BrokerId(0)]));
        if v >= 7 {
            // The epoch stored in every batch (fetched below), so clients' fencing agrees.
            assert!(t2.partitions.iter().all(|p| p.leader_epoch == 0), "v{v}: leader epoch 0");
        }
        let mut one = metadata_request::MetadataRequestTopic::default();
        one.name = Some(topic("nope"));
        let resp = c.call(v, &MetadataRequest::default().with_topics(Some(vec![one])));
        assert_eq!(resp.topics[0].error_code, 3, "v{v}: an unknown topic, auto-creation off");
        if v >= 1 {
            assert_eq!(resp.controller_id.0, 0);
        }
    }

    // Produce v3-8 to t2/0, then Fetch v4-11 reads everything back.
    let ts = 1_700_000_000_000i64;
    let mut next = 0i64;
    for v in 3..=8 {
        let resp = c.call(v, &produce_request("t2", 0, batch(next as usize, 5, ts), 1));
        let p = &resp.responses[0].partition_responses[0];
        assert_eq!((p.error_code, p.base_offset), (0, next), "v{v}: {:?}", p.error_message);
        next += 5;
    }
    let unknown = c.call(8, &produce_request("nope", 0, batch(0, 1, ts), 1));
    assert_eq!(unknown.responses[0].partition_responses[0].error_code, 3);
    let mut corrupt = batch(0, 2, ts).to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    let resp = c.call(8, &produce_request("t2", 0, corrupt.into(), -1));
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 2, "a CRC mismatch is CORRUPT_MESSAGE");
    for v in 4..=11 {
        let mut records = Vec::new();
        let mut offset = 0i64;
        while offset < next {
            let resp = c.call(v, &fetch_request("t2", 0, offset, 100));
            let p = &resp.responses[0].partitions[0];
            assert_eq!((p.error_code, p.high_watermark), (0, next), "v{v}");
            let mut bytes = p.records.clone().expect("records");
            for set in RecordBatchDecoder::decode_all(&mut bytes).unwrap() {
                records.extend(set.records.into_iter().filter(|r| r.offset >= offset));
            }
            offset = records.last().map_or(offset, |r| r.offset + 1);
        }
        assert_eq!(records.len() as i64, next, "v{v}");
        assert!(records.iter().all(|r| r.partition_leader_epoch == 0), "v{v}: batches carry leader epoch 0");
        for (i, r) in records.iter().enumerate() {
            assert_eq!(r.offset, i as i64);
            assert_eq!(r.key.as_deref(), Some(format!("k{i}").as_bytes()));
            assert_eq!(r.value, (i % 7 != 3).then(|| Bytes::from(format!("value {i}"))), "v{v} record {i}");
            assert_eq!(r.timestamp, ts + i as i64);
            assert_eq!(r.headers.get(&s("h")).cloned().flatten(), Some(Bytes::from(format!("hv{i}"))));
        }
        // Fetching inside a batch returns the batch holding the offset (and the records after).
        let resp = c.call(v, &fetch_request("t2", 0, 7, 100));
        let mut bytes = resp.responses[0].partitions[0].records.clone().unwrap();
        let first = RecordBatchDecoder::decode_all(&mut bytes).unwrap()[0].records[0].offset;
        assert!(first <= 7, "v{v}: the fetch at 7 starts at {first}");
        let resp = c.call(v, &fetch_request("t2", 0, next + 1, 100));
        assert_eq!(resp.responses[0].partitions[0].error_code, 1, "v{v}: OFFSET_OUT_OF_RANGE");
    }
    // At the high watermark a fetch waits max_wait_ms and answers empty.
    let started = std::time::Instant::now();
    let resp = c.call(11, &fetch_request("t2", 0, next, 300));
    assert!(started.elapsed() >= std::time::Duration::from_millis(250), "the fetch long-polled");
    assert!(resp.responses[0].partitions[0].records.as_ref().is_none_or(|r| r.is_empty()));

    // ListOffsets v1-5.
    for v in 1..=5 {
        assert_eq!(list_offsets(&mut c, v, "t2", -2), (0, -1, 0), "v{v} earliest");
        assert_eq!(list_offsets(&mut c, v, "t2", -1), (0, -1, next), "v{v} latest");
        assert_eq!(list_offsets(&mut c, v, "t2", ts + 12), (0, ts + 12, 12), "v{v} by time");
        assert_eq!(list_offsets(&mut c, v, "t2", ts + 1_000_000), (0, -1, -1), "v{v} after every record");
        assert_eq!(list_offsets(&mut c, v, "nope", -1).0, 3);
    }
    for v in 4..=5 {
        let mut p = list_offsets_request::ListOffsetsPartition::default();
        p.timestamp = -1;
        let mut t = list_offsets_request::ListOffsetsTopic::default();
        t.name = topic("t2");
        t.partitions = vec![p];
        let resp = c.call(v, &ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![t]));
        assert_eq!(resp.topics[0].partitions[0].leader_epoch, 0, "v{v}: the leader epoch Metadata gives");
    }

    // DescribeConfigs v1-3 and IncrementalAlterConfigs v0.
    let mut alter = incremental_alter_configs_request::AlterableConfig::default();
    alter.name = s("retention.ms");
    alter.config_operation = 0;
    alter.value = Some(s("120000"));
    let mut res = incremental_alter_configs_request::AlterConfigsResource::default();
    res.resource_type = 2;
    res.resource_name = s("t3");
    res.configs = vec![alter];
    let resp = c.call(0, &IncrementalAlterConfigsRequest::default().with_resources(vec![res]));
    assert_eq!(resp.responses[0].error_code, 0, "{:?}", resp.responses[0].error_message);
    for v in 1..=3 {
        let mut res = describe_configs_request::DescribeConfigsResource::default();
        res.resource_type = 2;
        res.resource_name = s("t3");
        let resp = c.call(v, &DescribeConfigsRequest::default().with_resources(vec![res]));
        let r = &resp.results[0];
        assert_eq!(r.error_code, 0);
        let get = |k: &str| r.configs.iter().find(|c| c.name.as_str() == k).and_then(|c| c.value.clone());
        assert_eq!(get("retention.ms").as_deref(), Some("120000"), "v{v}: {r:?}");
        assert_eq!(get("cleanup.policy").as_deref(), Some("delete"), "v{v}");
    }

    // DeleteRecords v0-1: the log start moves; reads below it are out of range.
    for v in 0..=1 {
        let mut p = delete_records_request::DeleteRecordsPartition::default();
        p.partition_index = 0;
        p.offset = 10 + v as i64;
        let mut t = delete_records_request::DeleteRecordsTopic::default();
        t.name = topic("t2");
        t.partitions = vec![p];
        let resp = c.call(v, &DeleteRecordsRequest::default().with_topics(vec![t]).with_timeout_ms(5000));
        let p = &resp.topics[0].partitions[0];
        assert_eq!((p.error_code, p.low_watermark), (0, 10 + v as i64), "v{v}");
    }
    assert_eq!(list_offsets(&mut c, 5, "t2", -2), (0, -1, 11));
    let resp = c.call(11, &fetch_request("t2", 0, 0, 0));
    assert_eq!(resp.responses[0].partitions[0].error_code, 1);

    // DeleteTopics v1-3.
    for v in 1..=3 {
        let name = format!("t{}", v + 1);
        let resp = c.call(v, &DeleteTopicsRequest::default().with_topic_names(vec![topic(&name)]));
        assert_eq!(resp.responses[0].error_code, 0, "v{v}");
        let resp = c.call(v, &DeleteTopicsRequest::default().with_topic_names(vec![topic(&name)]));
        assert_eq!(resp.responses[0].error_code, 3, "v{v}: already gone");
    }
}

#[test]
fn acks_zero_is_not_answered_and_pipelined_requests_answer_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let mut c = Conn::connect(&broker.kafka);
    let mut t = create_topics_request::CreatableTopic::default();
    t.name = topic("p");
    t.num_partitions = 1;
    t.replication_factor = -1;
    let resp = c.call(4, &CreateTopicsRequest::default().with_topics(vec![t]));
    assert_eq!(resp.topics[0].error_code, 0);

    // Pipelined: acks=0 produce, acks=1 produce, metadata, api versions, all sent at once.
    let (_, f0) = c.frame(8, &produce_request("p", 0, batch(0, 3, 1), 0));
    let (c1, f1) = c.frame(8, &produce_request("p", 0, batch(3, 3, 1), 1));
    let (c2, f2) = c.frame(8, &MetadataRequest::default());
    let (c3, f3) = c.frame(3, &ApiVersionsRequest::default());
    c.send_raw(&[f0, f1, f2, f3].concat());
    let r1 = Conn::decode::<ProduceRequest>(8, c1, c.read_frame().unwrap());
    assert_eq!(r1.responses[0].partition_responses[0].base_offset, 3, "the acks=0 batch came first");
    Conn::decode::<MetadataRequest>(8, c2, c.read_frame().unwrap());
    Conn::decode::<ApiVersionsRequest>(3, c3, c.read_frame().unwrap());

    // Produce v0-2 is advertised (librdkafka's compression check) but closes the connection.
    let versions = c.call(0, &ApiVersionsRequest::default());
    let produce = versions.api_keys.iter().find(|k| k.api_key == 0).unwrap();
    assert_eq!((produce.min_version, produce.max_version), (0, 8));
    let mut raw = Vec::new();
    raw.extend_from_slice(&14i32.to_be_bytes());
    raw.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 7, 0xff, 0xff, 0, 1, 0, 0]);
    c.send_raw(&raw);
    assert!(c.closed(), "Produce v2 closes the connection");
}

#[test]
fn init_producer_id_and_idempotent_produce_deduplicates_retries() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let mut c = Conn::connect(&broker.kafka);
    let mut t = create_topics_request::CreatableTopic::default();
    t.name = topic("i");
    t.num_partitions = 1;
    t.replication_factor = 1;
    assert_eq!(c.call(4, &CreateTopicsRequest::default().with_topics(vec![t])).topics[0].error_code, 0);
    let mut ids = Vec::new();
    for v in 0..=1 {
        let req = InitProducerIdRequest::default().with_transactional_id(None).with_transaction_timeout_ms(60_000);
        let resp = c.call(v, &req);
        assert_eq!((resp.error_code, resp.producer_epoch), (0, 0), "v{v}");
        ids.push(resp.producer_id.0);
    }
    assert_ne!(ids[0], ids[1], "every producer gets its own id");
    let with_producer = |first: usize, seq: i32| {
        let mut b = batch(first, 3, 1).to_vec();
        b[43..51].copy_from_slice(&ids[0].to_be_bytes()); // producerId
        b[51..53].copy_from_slice(&0i16.to_be_bytes()); // producerEpoch
        b[53..57].copy_from_slice(&seq.to_be_bytes()); // baseSequence
        let crc = crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        Bytes::from(b)
    };
    let offsets: Vec<(i16, i64)> = [(0, 0), (3, 3), (3, 3), (6, 9)]
        .iter()
        .map(|&(first, seq)| {
            let resp = c.call(8, &produce_request("i", 0, with_producer(first, seq), -1));
            let p = &resp.responses[0].partition_responses[0];
            (p.error_code, p.base_offset)
        })
        .collect();
    assert_eq!(offsets[..3], [(0, 0), (0, 3), (0, 3)], "the retry is acknowledged with its first offset");
    assert_eq!(offsets[3].0, 45, "a sequence gap is OUT_OF_ORDER_SEQUENCE_NUMBER");
    let resp = c.call(1, &InitProducerIdRequest::default().with_transactional_id(Some(TransactionalId(s("tx")))));
    assert_ne!(resp.error_code, 0, "transactions are not supported");
    assert_eq!(list_offsets(&mut c, 5, "i", -1), (0, -1, 6));
}

/// CRC-32C (Castagnoli), bitwise: the test's own, independent of the broker's.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82f6_3b78 } else { crc >> 1 };
        }
    }
    !crc
}

/// Produce requests sent back to back on one connection (more than the broker keeps in flight, so
/// it stops reading meanwhile) to a `sync` topic: answered in request order, each batch at the
/// offsets the requests' order gives (computed here from the batch sizes), and read back in that
/// order. The batch sizes and partitions are random, from a printed seed.
#[test]
fn pipelined_produce_requests_keep_their_order() {
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    println!("seed {seed}");
    let mut rng = seed | 1;
    let mut next = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    broker.client().create_topic("q", 2, serde_json::json!({"durability": "sync"}));
    let mut c = Conn::connect(&broker.kafka);
    let (mut frames, mut expected, mut ends, mut first) = (Vec::new(), Vec::new(), [0i64; 2], 0usize);
    for _ in 0..40 {
        let (p, n) = (next(2) as usize, 1 + next(20) as usize);
        let (corr, f) = c.frame(8, &produce_request("q", p as i32, batch(first, n, 1), -1));
        frames.extend(f);
        expected.push((corr, p, ends[p], first, n));
        ends[p] += n as i64;
        first += n;
    }
    c.send_raw(&frames);
    for &(corr, p, base, _, _) in &expected {
        let r = Conn::decode::<ProduceRequest>(8, corr, c.read_frame().expect("an answer per request"));
        let got = &r.responses[0].partition_responses[0];
        assert_eq!((got.index, got.error_code, got.base_offset), (p as i32, 0, base), "seed {seed}, request {corr}");
    }
    for (p, &end) in ends.iter().enumerate() {
        let mut keys = Vec::new();
        while (keys.len() as i64) < end {
            let resp = c.call(11, &fetch_request("q", p as i32, keys.len() as i64, 100));
            let mut bytes = resp.responses[0].partitions[0].records.clone().expect("records");
            let from = keys.len() as i64;
            for set in RecordBatchDecoder::decode_all(&mut bytes).unwrap() {
                keys.extend(set.records.into_iter().filter(|r| r.offset >= from).map(|r| r.key.unwrap()));
            }
        }
        let want: Vec<Bytes> = expected
            .iter()
            .filter(|e| e.1 == p)
            .flat_map(|&(_, _, _, first, n)| (first..first + n).map(|i| Bytes::from(format!("k{i}"))))
            .collect();
        assert_eq!(keys, want, "seed {seed}, partition {p}");
    }
}
