//! The stream framings on their own: whatever the bytes and however they are cut, a decoder
//! reads the same events (or the same error) as from the whole.

use crate::cuts::Cut;
use crate::eventstream::{frame_raw, repair_checksums, ENCODE, REPAIR};
use arbitrary::Unstructured;
use switchboard_core::stream::eventstream::{DecodeError, Decoder, Message};
use switchboard_core::stream::sse::{SseEvent, SseParser};
use switchboard_core::stream::MAX_EVENT_BYTES;

/// Flag: a small event limit, so the refusal of a large event is reached.
const SMALL_LIMIT: u8 = 4;

fn limit(flags: u8) -> usize {
    if flags & SMALL_LIMIT != 0 {
        64
    } else {
        MAX_EVENT_BYTES
    }
}

/// What an SSE parser made of a stream: the events, whether it refused one as too large, and
/// whether it was idle before `finish`.
type SseOutcome = (Vec<SseEvent>, bool, bool);

fn parse_sse(limit: usize, pieces: &[&[u8]]) -> SseOutcome {
    let mut parser = SseParser::new(limit);
    let mut events = Vec::new();
    for piece in pieces {
        if parser.feed(piece, |e| events.push(e)).is_err() {
            return (events, true, false);
        }
    }
    let idle = parser.is_idle();
    parser.finish(|e| events.push(e));
    (events, false, idle)
}

/// The SSE parser: cut or whole, the same outcome; no event's name holds a line break, and
/// its data only the `\n` that joins data lines.
pub fn sse(data: &[u8]) {
    let cut = Cut::parse(data);
    let limit = limit(cut.flags);
    let whole = parse_sse(limit, &[cut.body]);
    let pieces = parse_sse(limit, &cut.split(cut.body));
    assert_eq!(whole, pieces, "whole and cut streams parse differently");
    for event in &whole.0 {
        assert!(!event.data.contains('\r'), "{event:?}");
        assert!(
            !event
                .event
                .as_deref()
                .unwrap_or_default()
                .contains(['\r', '\n']),
            "{event:?}"
        );
    }
}

/// What an eventstream decoder made of a stream: the messages, the error it stopped at, and
/// whether it was idle at the end.
type EventstreamOutcome = (Vec<Message>, Option<DecodeError>, bool);

fn decode(limit: usize, pieces: &[&[u8]]) -> EventstreamOutcome {
    let mut decoder = Decoder::new(limit);
    let mut messages = Vec::new();
    for piece in pieces {
        if let Err(e) = decoder.feed(piece, |m| messages.push(m)) {
            return (messages, Some(e), false);
        }
    }
    let idle = decoder.is_idle();
    (messages, None, idle)
}

/// The eventstream decoder on raw frames (checksums repaired when the flags say so) or on
/// frames it encodes from the body (arbitrary header blocks and payloads, valid checksums):
/// cut or whole, the same outcome; encoded frames decode to their payloads.
pub fn eventstream(data: &[u8]) {
    let cut = Cut::parse(data);
    let mut payloads = Vec::new();
    let stream = if cut.flags & ENCODE != 0 {
        let mut u = Unstructured::new(cut.body);
        let mut stream = Vec::new();
        while let (Ok(headers), Ok(payload)) = (u.arbitrary::<&[u8]>(), u.arbitrary::<&[u8]>()) {
            stream.extend(frame_raw(headers, payload));
            payloads.push(payload);
            if u.is_empty() {
                break;
            }
        }
        stream
    } else {
        let mut stream = cut.body.to_vec();
        if cut.flags & REPAIR != 0 {
            repair_checksums(&mut stream);
        }
        stream
    };
    let limit = limit(cut.flags);
    let whole = decode(limit, &[&stream]);
    let pieces = decode(limit, &cut.split(&stream));
    assert_eq!(whole, pieces, "whole and cut streams decode differently");
    if cut.flags & ENCODE != 0 {
        for (message, payload) in whole.0.iter().zip(&payloads) {
            assert_eq!(&message.payload, payload);
        }
    }
}
