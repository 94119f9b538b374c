//! A Kafka connection to a real broker for the protocol tests, with the `kafka-protocol` crate
//! as an independent codec: requests it encodes must decode with the broker's codec, and the
//! broker's responses must decode with it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

/// How long one response may take.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(20);

pub struct Conn {
    pub stream: TcpStream,
    correlation: i32,
}

impl Conn {
    pub fn connect(addr: &str) -> Conn {
        let stream = TcpStream::connect(addr).expect("connect to the Kafka listener");
        stream.set_read_timeout(Some(RESPONSE_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Conn { stream, correlation: 0 }
    }

    /// The frame (size prefix included) of `req` at `version`, with the next correlation id.
    pub fn frame<R: Request>(&mut self, version: i16, req: &R) -> (i32, Vec<u8>) {
        self.correlation += 1;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(StrBytes::from_static_str("kappalog-test")));
        let mut body = BytesMut::new();
        header.encode(&mut body, R::header_version(version)).unwrap();
        req.encode(&mut body, version).unwrap();
        let mut out = Vec::with_capacity(body.len() + 4);
        out.put_i32(body.len() as i32);
        out.extend_from_slice(&body);
        (self.correlation, out)
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// One response frame (without its size), or `None` if the broker closed the connection.
    pub fn read_frame(&mut self) -> Option<Bytes> {
        let mut size = [0u8; 4];
        match self.stream.read_exact(&mut size) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return None,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
            Err(e) => panic!("reading a response: {e}"),
        }
        let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
        self.stream.read_exact(&mut body).expect("the response body");
        Some(body.into())
    }

    /// Decodes a response frame of `R` at `version`, checking the correlation id and that the
    /// crate consumed every byte.
    pub fn decode<R: Request>(version: i16, correlation: i32, mut frame: Bytes) -> R::Response {
        let header = ResponseHeader::decode(&mut frame, R::Response::header_version(version)).unwrap();
        assert_eq!(header.correlation_id, correlation);
        let resp = R::Response::decode(&mut frame, version)
            .unwrap_or_else(|e| panic!("api {} v{version}: the response does not decode: {e}", R::KEY));
        assert_eq!(frame.remaining(), 0, "api {} v{version}: bytes left after the response", R::KEY);
        resp
    }

    /// Sends `req` at `version` and decodes the response.
    pub fn call<R: Request>(&mut self, version: i16, req: &R) -> R::Response {
        let (c, frame) = self.frame(version, req);
        self.send_raw(&frame);
        let resp = self.read_frame().unwrap_or_else(|| panic!("api {} v{version}: connection closed", R::KEY));
        Self::decode::<R>(version, c, resp)
    }

    /// Whether the broker closed the connection (reads EOF) within the timeout.
    pub fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.stream.read(&mut b), Ok(0) | Err(_))
    }
}
