//! AWS event stream framing (`application/vnd.amazon.eventstream`), decoded incrementally:
//! bytes in, whole checked messages out, however the bytes are split.
//!
//! A message is: total length (u32, big endian), headers length (u32), CRC-32 of those eight
//! bytes, headers, payload, and a CRC-32 of everything before it. A header is: name length
//! (u8), name, value type (u8), value. Memory is bounded: a message announcing more than the
//! limit is refused as soon as its prelude arrives.

use std::fmt;

/// Prelude (12 bytes) plus message CRC (4 bytes).
const FRAME_OVERHEAD: usize = 16;
const PRELUDE_BYTES: usize = 12;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub headers: Vec<Header>,
    pub payload: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: HeaderValue,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    Bool(bool),
    Byte(i8),
    Short(i16),
    Int(i32),
    Long(i64),
    Bytes(Vec<u8>),
    String(String),
    /// Milliseconds since the Unix epoch.
    Timestamp(i64),
    Uuid([u8; 16]),
}

impl Message {
    /// The value of a string header such as `:event-type`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|h| match &h.value {
            HeaderValue::String(s) if h.name == name => Some(s.as_str()),
            _ => None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    TooLarge { length: usize, limit: usize },
    PreludeChecksum,
    MessageChecksum,
    Malformed(&'static str),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::TooLarge { length, limit } => {
                write!(f, "an event of {length} bytes exceeds the limit of {limit}")
            }
            DecodeError::PreludeChecksum => f.write_str("an event's prelude checksum is wrong"),
            DecodeError::MessageChecksum => f.write_str("an event's message checksum is wrong"),
            DecodeError::Malformed(what) => write!(f, "an event is malformed: {what}"),
        }
    }
}

#[derive(Debug)]
pub struct Decoder {
    /// Bytes of a message not complete yet (never more than one message's worth).
    pending: Vec<u8>,
    max_message_bytes: usize,
}

impl Decoder {
    pub fn new(max_message_bytes: usize) -> Self {
        Decoder {
            pending: Vec::new(),
            max_message_bytes,
        }
    }

    /// Feeds bytes, calling `on_message` for every message completed by them. After an error
    /// the stream cannot be trusted: stop feeding.
    pub fn feed(
        &mut self,
        chunk: &[u8],
        mut on_message: impl FnMut(Message),
    ) -> Result<(), DecodeError> {
        self.pending.extend_from_slice(chunk);
        let mut consumed = 0;
        let result = loop {
            let rest = self.pending.get(consumed..).unwrap_or_default();
            match self.next_frame(rest) {
                Ok(Some((message, length))) => {
                    on_message(message);
                    consumed += length;
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        self.pending.drain(..consumed);
        result
    }

    /// True when no partial message is pending (a clean end of stream).
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty()
    }

    /// The first complete message of `bytes` and its length, `None` when more bytes are needed.
    fn next_frame(&self, bytes: &[u8]) -> Result<Option<(Message, usize)>, DecodeError> {
        let Some(prelude) = bytes.get(..PRELUDE_BYTES) else {
            return Ok(None);
        };
        let mut cursor = Cursor(prelude);
        let total = cursor.u32()? as usize;
        let headers_len = cursor.u32()? as usize;
        let prelude_crc = cursor.u32()?;
        if crc32fast::hash(prelude.get(..8).unwrap_or_default()) != prelude_crc {
            return Err(DecodeError::PreludeChecksum);
        }
        if total > self.max_message_bytes {
            return Err(DecodeError::TooLarge {
                length: total,
                limit: self.max_message_bytes,
            });
        }
        if total < FRAME_OVERHEAD || headers_len > total - FRAME_OVERHEAD {
            return Err(DecodeError::Malformed("lengths do not add up"));
        }
        let Some(frame) = bytes.get(..total) else {
            return Ok(None);
        };
        let (body, crc) = frame.split_at(total - 4);
        if crc32fast::hash(body) != Cursor(crc).u32()? {
            return Err(DecodeError::MessageChecksum);
        }
        let (headers, payload) = body
            .get(PRELUDE_BYTES..)
            .unwrap_or_default()
            .split_at(headers_len);
        let message = Message {
            headers: parse_headers(headers)?,
            payload: payload.to_vec(),
        };
        Ok(Some((message, total)))
    }
}

fn parse_headers(bytes: &[u8]) -> Result<Vec<Header>, DecodeError> {
    let mut cursor = Cursor(bytes);
    let mut headers = Vec::new();
    while !cursor.0.is_empty() {
        let name_len = usize::from(cursor.u8()?);
        let name = cursor.string(name_len)?;
        let value = match cursor.u8()? {
            0 => HeaderValue::Bool(true),
            1 => HeaderValue::Bool(false),
            2 => HeaderValue::Byte(i8::from_be_bytes(cursor.array()?)),
            3 => HeaderValue::Short(i16::from_be_bytes(cursor.array()?)),
            4 => HeaderValue::Int(i32::from_be_bytes(cursor.array()?)),
            5 => HeaderValue::Long(i64::from_be_bytes(cursor.array()?)),
            6 => {
                let len = usize::from(cursor.u16()?);
                HeaderValue::Bytes(cursor.take(len)?.to_vec())
            }
            7 => {
                let len = usize::from(cursor.u16()?);
                HeaderValue::String(cursor.string(len)?)
            }
            8 => HeaderValue::Timestamp(i64::from_be_bytes(cursor.array()?)),
            9 => HeaderValue::Uuid(cursor.array()?),
            _ => return Err(DecodeError::Malformed("unknown header value type")),
        };
        headers.push(Header { name, value });
    }
    Ok(headers)
}

/// Reads big-endian fields off a byte slice.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.0.len() {
            return Err(DecodeError::Malformed("a header runs past its block"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(u8::from_be_bytes(self.array()?))
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn string(&mut self, n: usize) -> Result<String, DecodeError> {
        String::from_utf8(self.take(n)?.to_vec())
            .map_err(|_| DecodeError::Malformed("a header is not UTF-8"))
    }
}

/// Builds a message with string headers (fixtures for the translators' tests).
#[cfg(test)]
pub fn encode(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut header_bytes = Vec::new();
    for (name, value) in headers {
        header_bytes.push(name.len() as u8);
        header_bytes.extend_from_slice(name.as_bytes());
        header_bytes.push(7);
        header_bytes.extend_from_slice(&(value.len() as u16).to_be_bytes());
        header_bytes.extend_from_slice(value.as_bytes());
    }
    let total = (FRAME_OVERHEAD + header_bytes.len() + payload.len()) as u32;
    let mut out = Vec::with_capacity(total as usize);
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&(header_bytes.len() as u32).to_be_bytes());
    let prelude_crc = crc32fast::hash(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&header_bytes);
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::test;

    const FOO_BAR: &[u8] = b"{'foo':'bar'}";

    fn decode_all(input: &[u8], split: usize) -> Result<Vec<Message>, DecodeError> {
        let mut d = Decoder::new(1 << 20);
        let mut out = Vec::new();
        let (a, b) = input.split_at(split);
        d.feed(a, |m| out.push(m))?;
        d.feed(b, |m| out.push(m))?;
        assert!(d.is_idle());
        Ok(out)
    }

    /// AWS's published event stream test vectors (as shipped with the AWS SDKs, e.g.
    /// aws-sdk-js-v3 `eventstream-marshaller` TestVectors), encoded bytes verbatim.
    #[test]
    fn aws_positive_vectors() {
        /// A vector that decodes to one message.
        struct PositiveVector {
            name: &'static str,
            encoded: &'static [u8],
            headers: Vec<Header>,
            payload: &'static [u8],
        }
        let cases = [
            PositiveVector {
                name: "empty_message",
                encoded: &[0, 0, 0, 16, 0, 0, 0, 0, 5, 194, 72, 235, 125, 152, 200, 255],
                headers: vec![],
                payload: b"",
            },
            PositiveVector {
                name: "int32_header",
                encoded: &[
                    0, 0, 0, 43, 0, 0, 0, 14, 52, 139, 236, 123, 8, 101, 118, 101, 110, 116, 45,
                    105, 100, 4, 0, 0, 160, 12, 123, 39, 102, 111, 111, 39, 58, 39, 98, 97, 114,
                    39, 125, 211, 137, 2, 133,
                ],
                headers: vec![Header {
                    name: "event-id".into(),
                    value: HeaderValue::Int(0x0000_a00c),
                }],
                payload: FOO_BAR,
            },
            PositiveVector {
                name: "payload_no_headers",
                encoded: &[
                    0, 0, 0, 29, 0, 0, 0, 0, 253, 82, 140, 90, 123, 39, 102, 111, 111, 39, 58, 39,
                    98, 97, 114, 39, 125, 195, 101, 57, 54,
                ],
                headers: vec![],
                payload: FOO_BAR,
            },
            PositiveVector {
                name: "payload_one_str_header",
                encoded: &[
                    0, 0, 0, 61, 0, 0, 0, 32, 7, 253, 131, 150, 12, 99, 111, 110, 116, 101, 110,
                    116, 45, 116, 121, 112, 101, 7, 0, 16, 97, 112, 112, 108, 105, 99, 97, 116,
                    105, 111, 110, 47, 106, 115, 111, 110, 123, 39, 102, 111, 111, 39, 58, 39, 98,
                    97, 114, 39, 125, 141, 156, 8, 177,
                ],
                headers: vec![Header {
                    name: "content-type".into(),
                    value: HeaderValue::String("application/json".into()),
                }],
                payload: FOO_BAR,
            },
        ];
        for PositiveVector {
            name,
            encoded,
            headers,
            payload,
        } in cases
        {
            let expected = vec![Message {
                headers,
                payload: payload.to_vec(),
            }];
            for split in 0..=encoded.len() {
                assert_eq!(
                    decode_all(encoded, split).as_ref(),
                    Ok(&expected),
                    "{name} split at {split}"
                );
            }
        }
    }

    #[test]
    fn aws_negative_vectors() {
        /// A vector the decoder refuses.
        struct NegativeVector {
            name: &'static str,
            encoded: &'static [u8],
            expected: DecodeError,
        }
        let cases = [
            NegativeVector {
                name: "corrupted_headers",
                encoded: &[
                    0, 0, 0, 61, 0, 0, 0, 32, 7, 253, 131, 150, 12, 99, 111, 110, 116, 101, 110,
                    116, 43, 116, 121, 112, 101, 7, 0, 16, 97, 112, 112, 108, 105, 99, 97, 116,
                    105, 111, 110, 47, 106, 115, 111, 110, 123, 39, 102, 111, 111, 39, 58, 39, 98,
                    97, 114, 39, 125, 141, 156, 8, 177,
                ],
                expected: DecodeError::MessageChecksum,
            },
            NegativeVector {
                name: "corrupted_header_len",
                encoded: &[
                    0, 0, 0, 61, 0, 0, 1, 32, 7, 253, 131, 150, 12, 99, 111, 110, 116, 101, 110,
                    116, 45, 116, 121, 112, 101, 7, 0, 16, 97, 112, 112, 108, 105, 99, 97, 116,
                    105, 111, 110, 47, 106, 115, 111, 110, 123, 39, 102, 111, 111, 39, 58, 39, 98,
                    97, 114, 39, 125, 141, 156, 8, 177,
                ],
                expected: DecodeError::PreludeChecksum,
            },
            NegativeVector {
                name: "corrupted_length",
                encoded: &[
                    1, 0, 0, 29, 0, 0, 0, 0, 253, 82, 140, 90, 123, 39, 102, 111, 111, 39, 58, 39,
                    98, 97, 114, 39, 125, 195, 101, 57, 54,
                ],
                expected: DecodeError::PreludeChecksum,
            },
            NegativeVector {
                name: "corrupted_payload",
                encoded: &[
                    0, 0, 0, 29, 0, 0, 0, 0, 253, 82, 140, 90, 123, 39, 102, 111, 111, 39, 58, 39,
                    98, 97, 114, 39, 141, 195, 101, 57, 54,
                ],
                expected: DecodeError::MessageChecksum,
            },
        ];
        for NegativeVector {
            name,
            encoded,
            expected,
        } in cases
        {
            for split in 0..=encoded.len() {
                assert_eq!(
                    decode_all(encoded, split),
                    Err(expected.clone()),
                    "{name} split at {split}"
                );
            }
        }
    }

    #[test]
    fn several_messages_at_every_split_and_byte_by_byte() {
        let mut input = encode(&[(":event-type", "a"), (":message-type", "event")], b"{}");
        input.extend(encode(&[], b""));
        input.extend(encode(&[(":event-type", "b")], &[0xff; 300]));
        let whole = decode_all(&input, 0).unwrap();
        assert_eq!(whole.len(), 3);
        assert_eq!(whole[0].header(":event-type"), Some("a"));
        assert_eq!(whole[0].header(":message-type"), Some("event"));
        assert_eq!(whole[2].payload.len(), 300);
        for split in 0..=input.len() {
            assert_eq!(
                decode_all(&input, split).unwrap(),
                whole,
                "split at {split}"
            );
        }
        let mut d = Decoder::new(1 << 20);
        let mut out = Vec::new();
        for byte in &input {
            d.feed(std::slice::from_ref(byte), |m| out.push(m)).unwrap();
        }
        assert_eq!(out, whole);
    }

    #[test]
    fn oversized_messages_are_refused_from_their_prelude() {
        let big = encode(&[], &[0; 100]);
        let mut d = Decoder::new(64);
        assert_eq!(
            d.feed(big.get(..12).unwrap(), |_| {}),
            Err(DecodeError::TooLarge {
                length: 116,
                limit: 64
            })
        );
    }

    #[test]
    fn a_cut_message_leaves_the_decoder_busy() {
        let input = encode(&[(":event-type", "a")], b"{}");
        let mut d = Decoder::new(1 << 20);
        d.feed(&input[..input.len() - 1], |_| panic!("incomplete"))
            .unwrap();
        assert!(!d.is_idle());
    }
}
