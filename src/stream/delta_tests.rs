use serde_json::json;

use super::*;
use crate::stream::state::SourceOffset;

/// A base, and three delta records over it with the snapshot after each.
fn log() -> (Snapshot, Vec<u8>, Vec<(usize, Snapshot)>) {
    let mut snap = Snapshot::default();
    snap.offsets.push(SourceOffset {
        topic: "t".into(),
        partition: 0,
        next_offset: 0,
        event_time_max: None,
        idle: false,
    });
    for k in 0..20 {
        snap.entries.insert(format!("k{k}"), Entry::Value(json!(k)));
        snap.ttl.touch(&format!("k{k}"), k);
    }
    let base: Snapshot = serde_json::from_slice(&serde_json::to_vec(&snap).unwrap()).unwrap();
    snap.entries.take_dirty();
    snap.ttl.take_dirty();
    let mut buf = Vec::new();
    let mut after = Vec::new();
    for seq in 1..=3u64 {
        *snap.entries.get_mut("k1").unwrap() = Entry::Value(json!(100 + seq));
        snap.entries.insert(format!("new{seq}"), Entry::Value(json!(seq)));
        snap.entries.remove(&format!("k{}", 10 + seq));
        snap.ttl.touch("k1", 100 + seq as i64);
        snap.ttl.remove(&format!("k{}", 10 + seq));
        snap.offsets[0].next_offset = seq * 10;
        snap.watermark = Some(seq as i64);
        snap.counters.records_read = seq * 10;
        let (changed, ttl_changed) = (snap.entries.take_dirty(), snap.ttl.take_dirty());
        buf.extend_from_slice(&encode(7, seq, &snap, &changed, &ttl_changed));
        after.push((buf.len(), snap.clone()));
    }
    (base, buf, after)
}

fn replayed(base: &Snapshot, buf: &[u8]) -> Result<(Replayed, Snapshot)> {
    let mut snap = base.clone();
    replay(Path::new("/x/v1.delta"), buf, 7, &mut snap).map(|r| (r, snap))
}

#[test]
fn every_record_applies_in_sequence() {
    let (base, buf, after) = log();
    let (r, snap) = replayed(&base, &buf).unwrap();
    assert_eq!(r, Replayed { records: 3, valid_len: buf.len() as u64, stale: false });
    assert_eq!(snap, after[2].1);
    assert_eq!(snap.entries.get("k1"), Some(&Entry::Value(json!(103))));
    assert_eq!(snap.entries.get("k11"), None);
    assert_eq!(snap.ttl.get("k1"), Some(103));
    assert_eq!(snap.ttl.get("k12"), None);
    assert_eq!(snap.offsets[0].next_offset, 30);
    assert_eq!(parse_name("v12.delta"), Some(12));
}

#[test]
fn a_log_torn_at_any_byte_reads_as_the_records_before_the_tear() {
    let (base, buf, after) = log();
    for cut in 0..=buf.len() {
        let (r, snap) = replayed(&base, &buf[..cut]).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        let whole = after.iter().filter(|(end, _)| *end <= cut).count();
        let (valid, expected) = match whole {
            0 => (0, &base),
            n => (after[n - 1].0, &after[n - 1].1),
        };
        assert_eq!((r.records, r.valid_len), (whole as u64, valid as u64), "cut at {cut}");
        assert_eq!(&snap, expected, "cut at {cut}");
    }
    // A tail of zeros (a file extended, its data not written before a power loss) is torn too.
    let mut zeros = buf.clone();
    zeros.extend_from_slice(&[0; 100]);
    assert_eq!(replayed(&base, &zeros).unwrap().0.valid_len, buf.len() as u64);
    // The last record's body not all written (its length is): torn.
    let mut last = buf.clone();
    *last.last_mut().unwrap() ^= 0x20;
    assert_eq!(replayed(&base, &last).unwrap().0.records, 2);
}

#[test]
fn damage_before_the_last_record_is_corruption_with_its_position() {
    let (base, buf, after) = log();
    let first_end = after[0].0;
    for at in 0..after[1].0 {
        let mut bad = buf.clone();
        bad[at] ^= 0x01;
        match replayed(&base, &bad) {
            Err(Error::Corrupted { position, .. }) => {
                let record = if at < first_end { 0 } else { first_end };
                assert!(position as usize >= record, "byte {at}: position {position}");
            }
            other => panic!("byte {at} flipped: {:?}", other.map(|r| r.0)),
        }
    }
    // A record out of sequence.
    let (_, mut two) = (0, buf[..first_end].to_vec());
    two.extend_from_slice(&buf[..first_end]);
    assert!(
        matches!(replayed(&base, &two), Err(Error::Corrupted { position, .. }) if position as usize == first_end + 16)
    );
    // A newer format is refused by name.
    let mut newer = buf.clone();
    newer[VERSION_OFFSET] = 9;
    let crc = crc32fast::hash(&newer[..HEADER_CRC_OFFSET]);
    newer[HEADER_CRC_OFFSET..HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
    assert!(matches!(replayed(&base, &newer), Err(Error::UnsupportedFormat { found: 9, .. })));
}

#[test]
fn a_log_of_an_earlier_base_is_stale() {
    let (base, buf, _) = log();
    let mut snap = base.clone();
    let r = replay(Path::new("/x/v1.delta"), &buf, 8, &mut snap).unwrap();
    assert_eq!(r, Replayed { records: 0, valid_len: 0, stale: true });
    assert_eq!(snap, base, "nothing applied");
    assert!(matches!(replay(Path::new("/x/v1.delta"), &buf, 6, &mut snap), Err(Error::Corrupted { position: 8, .. })));
}
