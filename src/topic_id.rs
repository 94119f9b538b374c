//! A topic's identity: 16 random bytes given at creation (Kafka's topic id), kept in `topic.json`.
//! A topic deleted and created again under the same name gets a new id, so whatever recorded the
//! id (committed offsets, view checkpoints) can tell the new topic from the old one.

use std::fmt;
use std::io::Read;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// Where the random bytes of a new id come from.
const RANDOM_SOURCE: &str = "/dev/urandom";
/// The URL-safe base64 alphabet (RFC 4648 §5), which Kafka prints topic ids in, without padding.
const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/// Characters of an id in base64url without padding: ceil(16 * 8 / 6).
pub const TOPIC_ID_BASE64_LEN: usize = 22;

/// A topic's id: 16 random bytes, shown as Kafka shows them (22 characters of base64url, e.g.
/// `kX4Vvd2MQ2m0EYJ2Wzx8Ow`). Never all zeros (Kafka's "no id").
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicId([u8; 16]);

impl TopicId {
    /// A new random id.
    pub fn random() -> Result<TopicId> {
        let mut file = std::fs::File::open(RANDOM_SOURCE).map_err(|e| Error::io(RANDOM_SOURCE, e))?;
        loop {
            let mut bytes = [0u8; 16];
            file.read_exact(&mut bytes).map_err(|e| Error::io(RANDOM_SOURCE, e))?;
            let id = TopicId(bytes);
            // As Kafka: never the zero id, and never one whose text starts with '-' (it would read
            // as an option on a command line).
            if bytes != [0; 16] && !id.to_string().starts_with('-') {
                return Ok(id);
            }
        }
    }

    pub fn from_bytes(bytes: [u8; 16]) -> TopicId {
        TopicId(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The id in hex (32 lowercase digits).
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses the base64url form (22 characters) or the hex form (32 digits).
    pub fn parse(s: &str) -> std::result::Result<TopicId, String> {
        let bad = |why: &str| format!("topic id {s:?}: {why}");
        let mut out = [0u8; 16];
        match s.len() {
            32 => {
                for (i, o) in out.iter_mut().enumerate() {
                    *o = u8::from_str_radix(s.get(2 * i..2 * i + 2).ok_or_else(|| bad("not hex"))?, 16)
                        .map_err(|_| bad("not hex"))?;
                }
            }
            TOPIC_ID_BASE64_LEN => {
                let mut acc: u32 = 0;
                let (mut bits, mut n) = (0, 0);
                for c in s.bytes() {
                    let v = BASE64URL.iter().position(|&a| a == c).ok_or_else(|| bad("not base64url"))?;
                    acc = (acc << 6) | v as u32;
                    bits += 6;
                    if bits >= 8 {
                        bits -= 8;
                        out[n] = (acc >> bits) as u8;
                        n += 1;
                    }
                }
                // 22 characters hold 132 bits: the last 4 must be zero for one id to have one text.
                if acc & ((1 << bits) - 1) != 0 {
                    return Err(bad("not a canonical base64url id"));
                }
            }
            _ => return Err(bad("expected 22 base64url characters or 32 hex digits")),
        }
        Ok(TopicId(out))
    }
}

impl fmt::Display for TopicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::with_capacity(TOPIC_ID_BASE64_LEN);
        for chunk in self.0.chunks(3) {
            let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | (b as u32) << (16 - 8 * i));
            for i in 0..chunk.len() + 1 {
                out.push(BASE64URL[(n >> (18 - 6 * i)) as usize & 63] as char);
            }
        }
        f.write_str(&out)
    }
}

impl fmt::Debug for TopicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TopicId({self})")
    }
}

impl std::str::FromStr for TopicId {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<TopicId, String> {
        TopicId::parse(s)
    }
}

impl Serialize for TopicId {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TopicId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<TopicId, D::Error> {
        let s = String::deserialize(d)?;
        TopicId::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms_round_trip() {
        let id = TopicId::from_bytes([0xfb; 16]);
        assert_eq!(id.to_string(), "-_v7-_v7-_v7-_v7-_v7-w");
        let id = TopicId::from_bytes(*b"\x91\x7e\x15\xbd\xdd\x8c\x43\x69\xb4\x11\x82\x76\x5b\x3c\x7c\x3b");
        assert_eq!(id.to_string(), "kX4Vvd2MQ2m0EYJ2Wzx8Ow");
        assert_eq!(id.to_hex(), "917e15bddd8c4369b41182765b3c7c3b");
        assert_eq!(TopicId::parse("kX4Vvd2MQ2m0EYJ2Wzx8Ow"), Ok(id));
        assert_eq!(TopicId::parse("917e15bddd8c4369b41182765b3c7c3b"), Ok(id));
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"kX4Vvd2MQ2m0EYJ2Wzx8Ow\"");
        assert_eq!(serde_json::from_str::<TopicId>("\"kX4Vvd2MQ2m0EYJ2Wzx8Ow\"").unwrap(), id);
        for _ in 0..200 {
            let r = TopicId::random().unwrap();
            assert_eq!(r.to_string().len(), TOPIC_ID_BASE64_LEN);
            assert!(!r.to_string().starts_with('-'));
            assert_eq!(TopicId::parse(&r.to_string()), Ok(r));
            assert_eq!(TopicId::parse(&r.to_hex()), Ok(r));
        }
        assert_ne!(TopicId::random().unwrap(), TopicId::random().unwrap());
    }

    #[test]
    fn bad_text_is_an_error_naming_it() {
        for bad in
            ["", "abc", "kX4Vvd2MQ2m0EYJ2Wzx8O=", "kX4Vvd2MQ2m0EYJ2Wzx8Oz", "zz7e15bddd8c4369b41182765b3c7c3b", "é"]
        {
            let e = TopicId::parse(bad).unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
    }
}
