use super::*;
use crate::log::record::Header;

fn sample(n: u32) -> Vec<u8> {
    sample_over(n, 0)
}

/// `n` sample records, encoded into a buffer whose old bytes were all `old`.
fn sample_over(n: u32, old: u8) -> Vec<u8> {
    let headers = vec![Header::new("trace", Bytes::from_static(b"abc"))];
    let values: Vec<Vec<u8>> = (0..n).map(|i| format!("value-{i}").into_bytes()).collect();
    let records: Vec<_> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            RecordFields {
                offset_delta: i as u32,
                timestamp_delta: i as i64,
                key: if i % 2 == 0 { Some(b"key") } else { None },
                value: Some(v),
                headers: &headers,
            }
            .with_body_len()
        })
        .collect();
    let len = HEADER_LEN + records.iter().map(|(_, body)| record::encoded_len(*body)).sum::<usize>();
    let mut out = vec![old; len];
    let _ = encode(&mut out, 42, 0, (1_000, 1_000 + n as i64 - 1), records.into_iter());
    out
}

/// The header bytes are Kafka's RecordBatch v2, big-endian, at Kafka's positions.
#[test]
fn header_is_kafka_record_batch_v2() {
    let b = sample(3);
    assert_eq!(i64::from_be_bytes(b[0..8].try_into().unwrap()), 42, "baseOffset");
    assert_eq!(i32::from_be_bytes(b[8..12].try_into().unwrap()) as usize, b.len() - 12, "batchLength");
    assert_eq!(i32::from_be_bytes(b[12..16].try_into().unwrap()), 0, "partitionLeaderEpoch");
    assert_eq!(b[16], 2, "magic");
    assert_eq!(u32::from_be_bytes(b[17..21].try_into().unwrap()), crc32c::crc32c(&b[21..]), "crc");
    assert_eq!(i16::from_be_bytes(b[21..23].try_into().unwrap()), 0, "attributes");
    assert_eq!(i32::from_be_bytes(b[23..27].try_into().unwrap()), 2, "lastOffsetDelta");
    assert_eq!(i64::from_be_bytes(b[27..35].try_into().unwrap()), 1_000, "baseTimestamp");
    assert_eq!(i64::from_be_bytes(b[35..43].try_into().unwrap()), 1_002, "maxTimestamp");
    assert_eq!(i64::from_be_bytes(b[43..51].try_into().unwrap()), -1, "producerId");
    assert_eq!(i16::from_be_bytes(b[51..53].try_into().unwrap()), -1, "producerEpoch");
    assert_eq!(i32::from_be_bytes(b[53..57].try_into().unwrap()), -1, "baseSequence");
    assert_eq!(i32::from_be_bytes(b[57..61].try_into().unwrap()), 3, "recordsCount");
}

/// The CRC does not cover the base offset: rebasing a batch leaves it valid without touching it.
#[test]
fn rebase_keeps_the_crc_right() {
    for n in [4, 500] {
        let mut b = sample(n);
        let crc = b[CRC_OFFSET..CRC_OFFSET + 4].to_vec();
        let h = set_base_offset(&mut b, 1_000_000);
        assert_eq!(h.base_offset, 1_000_000);
        assert_eq!(b[CRC_OFFSET..CRC_OFFSET + 4], crc[..]);
        let (h2, recs) = decode_all(&Bytes::from(b)).unwrap();
        assert_eq!(h, h2);
        assert_eq!(recs[0].offset, 1_000_000);
    }
}

#[test]
fn producer_fields_roundtrip_and_are_covered_by_the_crc() {
    let mut b = sample(3);
    let p = ProducerFields { producer_id: 7, producer_epoch: 3, base_sequence: 100 };
    set_producer(&mut b, &p);
    let (h, _) = decode_all(&Bytes::from(b.clone())).unwrap();
    assert_eq!(h.producer, p);
    b[PRODUCER_ID_OFFSET + 7] ^= 1;
    assert!(matches!(decode_all(&Bytes::from(b)), Err(Corruption::ChecksumMismatch { .. })));
}

/// The encoder writes every byte of its buffer: a reused buffer's old bytes never reach a batch
/// (the partition encodes into pooled buffers that are not zeroed).
#[test]
fn encode_overwrites_a_reused_buffer() {
    let clean = sample(300);
    for old in [0xaa, 0xff] {
        assert_eq!(sample_over(300, old), clean, "old bytes {old:#x} showed through");
    }
}

#[test]
fn roundtrip() {
    let b = Bytes::from(sample(5));
    let (h, recs) = decode_all(&b).unwrap();
    assert_eq!(
        (h.base_offset, h.record_count, h.last_offset(), h.first_timestamp, h.max_timestamp),
        (42, 5, 46, 1000, 1004)
    );
    assert_eq!(h.producer, ProducerFields::NONE);
    assert_eq!(recs.len(), 5);
    assert_eq!(recs[3].offset, 45);
    assert_eq!(recs[3].timestamp, 1003);
    assert_eq!(recs[3].value.as_deref(), Some(&b"value-3"[..]));
    assert_eq!(recs[2].key.as_deref(), Some(&b"key"[..]));
    assert_eq!(recs[1].key, None);
}

/// Under log-append time every record's timestamp is the batch's `maxTimestamp` (Kafka's rule),
/// whatever its delta says.
#[test]
fn log_append_time_gives_max_timestamp_to_every_record() {
    let mut b = sample(3);
    b[ATTRIBUTES_OFFSET + 1] |= ATTRIBUTE_LOG_APPEND_TIME as u8;
    b[MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8].copy_from_slice(&77_777i64.to_be_bytes());
    let crc = crc_of(&b);
    b[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    let (_, recs) = decode_all(&Bytes::from(b)).unwrap();
    assert!(recs.iter().all(|r| r.timestamp == 77_777), "{recs:?}");
}

#[test]
fn every_flipped_byte_but_the_unchecked_fields_is_detected() {
    let good = sample(3);
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x5a;
        let r = decode_all(&Bytes::from(bad));
        // The base offset and the partition leader epoch are not covered by the CRC (Kafka's
        // layout); a damaged base offset is caught by recovery's offset checks instead.
        if i < LENGTH_OFFSET || (PARTITION_LEADER_EPOCH_OFFSET..MAGIC_OFFSET).contains(&i) {
            continue;
        }
        assert!(r.is_err(), "flip at byte {i} went unnoticed");
    }
}

#[test]
fn zeros_and_other_magics_never_parse() {
    assert!(BatchHeader::parse(&[0u8; 100]).is_err());
    let mut b = sample(2);
    for magic in [0u8, 1, 3, 0xff] {
        b[MAGIC_OFFSET] = magic;
        assert!(BatchHeader::parse(&b).is_err(), "magic {magic}");
    }
}

#[test]
fn transactional_and_control_batches_are_refused() {
    for bit in [ATTRIBUTE_TRANSACTIONAL, ATTRIBUTE_CONTROL] {
        let mut b = sample(2);
        b[ATTRIBUTES_OFFSET + 1] |= bit as u8;
        let e = BatchHeader::parse(&b).unwrap_err();
        assert!(e.to_string().contains("transactional or control"), "{e}");
    }
}

#[test]
fn min_offset_and_budget() {
    let b = Bytes::from(sample(5));
    let h = BatchHeader::parse(&b).unwrap().unwrap();
    let mut out = Vec::new();
    decode_records(&h, &uncompressed_records(&b), 44, 2, &mut out).unwrap();
    assert_eq!(out.iter().map(|r| r.offset).collect::<Vec<_>>(), [44, 45]);
}

/// The empty batch compaction keeps of a producer's last batch (Kafka's `writeEmptyHeader`): a
/// bare header with `recordsCount` 0, valid with its CRC, decoding to no records. A count of 0
/// with record bytes, or a header alone claiming records, is malformed.
#[test]
fn an_empty_batch_is_a_bare_header() {
    let mut b = vec![0u8; HEADER_LEN];
    let producer = ProducerFields { producer_id: 5, producer_epoch: 1, base_sequence: 3 };
    let fields = HeaderFields {
        base_offset: 7,
        attributes: 0,
        timestamps: (-1, 1000),
        record_count: 0,
        last_offset_delta: 2,
        producer,
    };
    finish(&mut b, &fields);
    let (h, records) = decode_all(&Bytes::from(b.clone())).unwrap();
    assert!(records.is_empty());
    assert_eq!((h.record_count, h.last_offset(), h.producer, h.max_timestamp), (0, 9, producer, 1000));
    let mut claims = b.clone();
    claims[RECORDS_COUNT_OFFSET + 3] = 1;
    assert!(BatchHeader::parse(&claims).is_err(), "a header alone claiming a record");
    let mut longer = sample(1);
    longer[RECORDS_COUNT_OFFSET..RECORDS_COUNT_OFFSET + 4].copy_from_slice(&0u32.to_be_bytes());
    assert!(BatchHeader::parse(&longer).is_err(), "record bytes with a count of 0");
    b[HEADER_LEN - 1] ^= 1;
    assert!(decode_all(&Bytes::from(b)).is_err(), "its CRC is checked");
}
