//! AWS eventstream inputs the fuzzer can reach past the checksums: a random byte almost never
//! makes a valid CRC-32, so a target either repairs the checksums of raw frames or encodes
//! messages written in a line format.

use crate::cuts::Cut;

/// Flag: the body describes messages to encode (Bedrock's target: lines, see
/// [`encode_lines`]; the decoder's: header blocks and payloads); else it is raw frames.
pub const ENCODE: u8 = 1;
/// Flag: raw frames get their checksums repaired (see [`repair_checksums`]).
pub const REPAIR: u8 = 2;

/// Bedrock's stream for a [`Cut`]: its body as lines or (repaired) raw frames, as its flags say.
pub fn stream(cut: &Cut) -> Vec<u8> {
    if cut.flags & ENCODE != 0 {
        return encode_lines(cut.body);
    }
    let mut bytes = cut.body.to_vec();
    if cut.flags & REPAIR != 0 {
        repair_checksums(&mut bytes);
    }
    bytes
}

/// One message per line: `TYPE PAYLOAD` is an event of `:event-type` TYPE; `!TYPE PAYLOAD` an
/// exception of `:exception-type` TYPE; `?CODE MESSAGE` an error with that `:error-code` and
/// `:error-message`. A line without a space is appended as raw bytes (a broken frame).
pub fn encode_lines(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in body.split(|&b| b == b'\n') {
        let Some(space) = line.iter().position(|&b| b == b' ') else {
            out.extend_from_slice(line);
            continue;
        };
        let (head, rest) = line.split_at(space);
        let payload = rest.get(1..).unwrap_or_default();
        let head = String::from_utf8_lossy(head);
        let frame = if let Some(kind) = head.strip_prefix('!') {
            frame(
                &[
                    (":message-type", "exception"),
                    (":exception-type", kind),
                    (":content-type", "application/json"),
                ],
                payload,
            )
        } else if let Some(code) = head.strip_prefix('?') {
            let message = String::from_utf8_lossy(payload);
            frame(
                &[
                    (":message-type", "error"),
                    (":error-code", code),
                    (":error-message", &message),
                ],
                b"",
            )
        } else {
            frame(
                &[
                    (":message-type", "event"),
                    (":event-type", &head),
                    (":content-type", "application/json"),
                ],
                payload,
            )
        };
        out.extend(frame);
    }
    out
}

/// A message with string headers (a header longer than its length fields allow is cut).
pub fn frame(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut block = Vec::new();
    for (name, value) in headers {
        let name = name.get(..name.len().min(255)).unwrap_or_default();
        let value = value.as_bytes();
        let value = value
            .get(..value.len().min(usize::from(u16::MAX)))
            .unwrap_or_default();
        block.push(name.len() as u8);
        block.extend_from_slice(name.as_bytes());
        block.push(7);
        block.extend_from_slice(&(value.len() as u16).to_be_bytes());
        block.extend_from_slice(value);
    }
    frame_raw(&block, payload)
}

/// A message from its encoded header block and payload, with its lengths and checksums.
pub fn frame_raw(header_block: &[u8], payload: &[u8]) -> Vec<u8> {
    let total = 16 + header_block.len() + payload.len();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(header_block.len() as u32).to_be_bytes());
    let prelude_crc = crc32fast::hash(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(header_block);
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// Rewrites the checksums of the frames in `bytes` as their lengths lay them out, so a
/// mutated length, header or payload is decoded rather than refused for its checksum. Stops at
/// a frame whose length runs past the end (its prelude checksum still repaired).
pub fn repair_checksums(bytes: &mut [u8]) {
    let mut at = 0;
    while let Some(prelude) = bytes.get(at..at + 8) {
        let total = u32::from_be_bytes([prelude[0], prelude[1], prelude[2], prelude[3]]) as usize;
        let crc = crc32fast::hash(prelude).to_be_bytes();
        let Some(slot) = bytes.get_mut(at + 8..at + 12) else {
            return;
        };
        slot.copy_from_slice(&crc);
        let end = match at.checked_add(total) {
            Some(end) if total >= 16 && end <= bytes.len() => end,
            _ => return,
        };
        let crc = crc32fast::hash(&bytes[at..end - 4]).to_be_bytes();
        bytes[end - 4..end].copy_from_slice(&crc);
        at = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_core::stream::eventstream::{DecodeError, Decoder, Message};

    fn decode(bytes: &[u8]) -> Result<Vec<Message>, DecodeError> {
        let mut messages = Vec::new();
        Decoder::new(1 << 20).feed(bytes, |m| messages.push(m))?;
        Ok(messages)
    }

    #[test]
    fn lines_become_events_exceptions_errors_and_raw_bytes() {
        let stream = encode_lines(
            b"messageStart {\"role\":\"assistant\"}\n!throttlingException {}\n?E1 slow down",
        );
        let messages = decode(&stream).unwrap();
        let headers: Vec<_> = messages
            .iter()
            .map(|m| {
                (
                    m.header(":message-type"),
                    m.header(":event-type").or(m.header(":exception-type")),
                    m.header(":error-code"),
                )
            })
            .collect();
        assert_eq!(
            headers,
            [
                (Some("event"), Some("messageStart"), None),
                (Some("exception"), Some("throttlingException"), None),
                (Some("error"), None, Some("E1")),
            ]
        );
        assert_eq!(messages[0].payload, b"{\"role\":\"assistant\"}");
        assert_eq!(messages[2].header(":error-message"), Some("slow down"));
        assert!(decode(&encode_lines(b"garbage-without-space")).is_err());
    }

    #[test]
    fn repaired_frames_decode_as_their_lengths_lay_them_out() {
        let mut stream = frame(&[(":event-type", "a")], b"{}");
        stream.extend(frame(&[], b"xyz"));
        let whole = decode(&stream).unwrap();
        // A changed payload byte and a wrong prelude checksum in the second frame.
        let last = stream.len() - 5;
        stream[last] = b'Z';
        stream[whole_len(&whole[0]) + 8] ^= 0xff;
        assert!(decode(&stream).is_err());
        repair_checksums(&mut stream);
        let repaired = decode(&stream).unwrap();
        assert_eq!(repaired[0], whole[0]);
        assert_eq!(repaired[1].payload, b"xyZ");
    }

    fn whole_len(message: &Message) -> usize {
        frame(&[(":event-type", "a")], &message.payload).len()
    }
}
