//! Hostile frames on the Kafka listener: each closes its connection (or is answered), never
//! crashes the broker or makes it allocate from a count on the wire. After each, a new
//! connection still gets answers, and the broker's resident memory stays bounded.

mod broker_common;
mod kafka_common;

use broker_common::Broker;
use kafka_common::Conn;
use kafka_protocol::messages::ApiVersionsRequest;

fn frame(body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as i32).to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

/// A request header (null client id) followed by `body`.
fn request(key: i16, version: i16, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&key.to_be_bytes());
    v.extend_from_slice(&version.to_be_bytes());
    v.extend_from_slice(&77i32.to_be_bytes());
    v.extend_from_slice(&(-1i16).to_be_bytes());
    v.extend_from_slice(body);
    frame(&v)
}

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[test]
fn hostile_frames_close_the_connection_and_the_broker_lives_on() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let pid = broker.child.as_ref().unwrap().id();
    let huge = [0x7f, 0xff, 0xff, 0xff];
    let cases: Vec<(&str, Vec<u8>)> = vec![
        // The 8-byte attack on kafka-protocol 0.18: Metadata v0 declaring 2^31-1 topics.
        ("metadata v0 huge topics count", request(3, 0, &huge)),
        ("metadata v4 huge topics count", request(3, 4, &[huge.as_slice(), &[1]].concat())),
        ("produce huge topic count", request(0, 8, &[&[0xff, 0xff, 0, 1, 0, 0, 0, 0][..], &huge].concat())),
        (
            "produce huge records length",
            request(
                0,
                8,
                &[&[0xff, 0xff, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 1, 0, 0, 0, 0][..], &huge].concat(),
            ),
        ),
        (
            "fetch huge partitions",
            request(
                1,
                11,
                &[&[0xff; 4][..], &[0; 8], &[0, 0, 1, 0, 0], &[0; 8], &[0, 0, 0, 1, 0, 1, b't'], &huge].concat(),
            ),
        ),
        (
            "create topics huge configs",
            request(19, 4, &[&[0, 0, 0, 1, 0, 1, b'x', 0, 0, 0, 1, 0, 1, 0, 0, 0, 0][..], &huge].concat()),
        ),
        ("string longer than the frame", request(3, 1, &[0, 0, 0, 1, 0x7f, 0xff, b'a'])),
        ("negative array count", request(3, 1, &[0x80, 0, 0, 0])),
        ("api versions v3 huge compact string", request(18, 3, &[0, 0xff, 0xff, 0xff, 0xff, 0x07])),
        ("truncated header", frame(&[0, 3, 0])),
        ("unknown api key", request(999, 0, &[])),
        ("unsupported metadata version", request(3, 99, &[])),
        ("negative size", (-5i32).to_be_bytes().to_vec()),
        ("size over socket.request.max.bytes", [&i32::MAX.to_be_bytes()[..], &[0; 16]].concat()),
        ("trailing garbage in a produce batch", request(0, 3, &[0xff, 0xff, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0])),
    ];
    let before = rss_bytes(pid);
    for (name, bytes) in &cases {
        let mut c = Conn::connect(&broker.kafka);
        c.send_raw(bytes);
        // Either an answer (a request that parsed, with errors inside) or a close; never a hang.
        if let Some(f) = c.read_frame() {
            assert!(f.len() >= 4, "{name}: a response has a correlation id");
        }
        let mut fresh = Conn::connect(&broker.kafka);
        assert_eq!(fresh.call(2, &ApiVersionsRequest::default()).error_code, 0, "{name}: the broker still answers");
    }
    let after = rss_bytes(pid);
    assert!(after < before + (64 << 20), "resident memory grew from {before} to {after} bytes");
}
