//! Raw request bytes: each decoder reads what the versions define, and refuses truncated input and
//! hostile counts with an error naming the field (never a panic or a large allocation).

use bytes::{BufMut, Bytes, BytesMut};

use super::admin::{decode_delete, DescribeGroupsRequest};
use super::membership::{
    FindCoordinatorRequest, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, SyncGroupRequest,
};
use super::offsets::{OffsetCommitRequest, OffsetFetchRequest};
use crate::broker::kafka::wire::{Error, Reader};

fn s(b: &mut BytesMut, v: &str) {
    b.put_i16(v.len() as i16);
    b.put_slice(v.as_bytes());
}

fn join_v5() -> Bytes {
    let mut b = BytesMut::new();
    s(&mut b, "g");
    b.put_i32(45_000);
    b.put_i32(300_000);
    s(&mut b, "");
    b.put_i16(-1); // group_instance_id: null
    s(&mut b, "consumer");
    b.put_i32(1);
    s(&mut b, "range");
    b.put_i32(3);
    b.put_slice(b"abc");
    b.freeze()
}

#[test]
fn join_group_v5_decodes_and_every_cut_is_an_error() {
    let bytes = join_v5();
    let req = JoinGroupRequest::decode(5, &mut Reader::new(bytes.clone())).unwrap();
    assert_eq!((req.group_id.as_str(), req.session_timeout_ms, req.rebalance_timeout_ms), ("g", 45_000, 300_000));
    assert_eq!((req.group_instance_id, req.protocols), (None, vec![("range".to_string(), Bytes::from_static(b"abc"))]));
    for cut in 0..bytes.len() {
        assert!(JoinGroupRequest::decode(5, &mut Reader::new(bytes.slice(..cut))).is_err(), "cut at {cut}");
    }
}

#[test]
fn hostile_counts_are_errors_naming_the_field() {
    let mut b = BytesMut::new();
    s(&mut b, "g");
    b.put_i32(1);
    s(&mut b, "m");
    b.put_i32(i32::MAX); // assignments
    let e = SyncGroupRequest::decode(0, &mut Reader::new(b.freeze())).unwrap_err();
    assert!(matches!(e, Error::Count { field: "assignments", .. }), "{e}");
    let mut b = BytesMut::new();
    b.put_i32(0x7fff_ffff);
    let e = DescribeGroupsRequest::decode(0, &mut Reader::new(b.clone().freeze())).unwrap_err();
    assert!(matches!(e, Error::Count { field: "groups", .. }), "{e}");
    assert!(matches!(decode_delete(&mut Reader::new(b.freeze())), Err(Error::Count { field: "groups_names", .. })));
    let mut b = BytesMut::new();
    s(&mut b, "g");
    b.put_i32(-1);
    s(&mut b, "");
    b.put_i32(1);
    s(&mut b, "t");
    b.put_i32(1_000_000);
    let e = OffsetCommitRequest::decode(5, &mut Reader::new(b.freeze())).unwrap_err();
    assert!(matches!(e, Error::Count { field: "topics.partitions", .. }), "{e}");
}

#[test]
fn versions_add_their_fields() {
    let mut b = BytesMut::new();
    s(&mut b, "g");
    b.put_i8(0);
    assert_eq!(FindCoordinatorRequest::decode(1, &mut Reader::new(b.freeze())).unwrap().key_type, 0);
    let mut b = BytesMut::new();
    s(&mut b, "g");
    b.put_i32(3);
    s(&mut b, "m");
    s(&mut b, "i");
    let hb = HeartbeatRequest::decode(3, &mut Reader::new(b.freeze())).unwrap();
    assert_eq!((hb.generation_id, hb.group_instance_id.as_deref()), (3, Some("i")));
    let mut b = BytesMut::new();
    s(&mut b, "g");
    b.put_i32(2);
    s(&mut b, "a");
    b.put_i16(-1);
    s(&mut b, "b");
    s(&mut b, "x");
    let leave = LeaveGroupRequest::decode(3, &mut Reader::new(b.freeze())).unwrap();
    assert_eq!(leave.members, vec![("a".to_string(), None), ("b".to_string(), Some("x".to_string()))]);
    let mut b = BytesMut::new();
    s(&mut b, "g");
    b.put_i32(-1);
    assert_eq!(OffsetFetchRequest::decode(2, &mut Reader::new(b.clone().freeze())).unwrap().topics, None);
    assert!(OffsetFetchRequest::decode(1, &mut Reader::new(b.freeze())).is_err(), "v1 has no null topics");
}
