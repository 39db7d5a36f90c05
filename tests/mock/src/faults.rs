//! Faults that do not depend on the wire format: what the mock does to an answer after a format
//! module built it (see the directive list in `main.rs`).
//!
//! Format modules handle the faults that need the format's knowledge (`no_content`, `huge`
//! content, `echo_key` bodies, stream `cut`/`malformed`/`midstream_error`); this module spoils
//! the built [`Reply`] (`empty`, `bad_event`, `bad_crc`, JSON `malformed`/`cut`/`huge` padding)
//! and finds the credential `echo_key` repeats. How the body then goes on the wire (`stall`,
//! `reset`) is `Reply::into_response`'s business.

use axum::http::HeaderMap;
use serde_json::Value;

use crate::bedrock::{eventstream, EVENTSTREAM};
use crate::{Directives, Reply};

/// Largest `huge` size honoured, so that an odd value cannot exhaust the machine's memory.
pub const MAX_HUGE: usize = 64 * 1024 * 1024;
/// What a `malformed` JSON body is.
const MALFORMED_JSON: &[u8] = b"{\"mock\": \"malformed\", this is not json";

/// Which CRC of an eventstream frame `bad_crc` spoils.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crc {
    Prelude,
    Message,
    Both,
}

impl Crc {
    /// `prelude`, `message`, `both`; a bare flag means both.
    pub fn parse(value: &str) -> Option<Option<Crc>> {
        match value.to_ascii_lowercase().as_str() {
            "prelude" => Some(Some(Crc::Prelude)),
            "message" => Some(Some(Crc::Message)),
            "both" | "" | "1" | "true" | "yes" | "on" => Some(Some(Crc::Both)),
            "0" | "false" | "no" | "off" => Some(None),
            _ => None,
        }
    }
}

/// Marks a response whose connection is to be dropped before anything is written: the
/// server turns it into a service error, on which hyper closes the connection (HTTP/1) or
/// resets the stream (HTTP/2) without a response.
#[derive(Debug, Clone, Copy)]
pub struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped on request (reset_before_headers)")
    }
}

impl std::error::Error for DropConnection {}

/// The credential a request was sent with, as providers that echo it would read it: the first
/// of `x-api-key`, `x-goog-api-key`, `api-key`, `authorization` (without its `Bearer `), the
/// `key` query parameter; empty when there is none.
pub fn presented_key(headers: &HeaderMap, query: Option<&str>) -> String {
    for name in ["x-api-key", "x-goog-api-key", "api-key", "authorization"] {
        let Some(value) = headers.get(name) else {
            continue;
        };
        let value = String::from_utf8_lossy(value.as_bytes());
        let value = value.trim();
        let key = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => value,
        };
        if !key.is_empty() {
            return key.to_owned();
        }
    }
    crate::query_param(query, "key").unwrap_or_default()
}

/// Applies the format-independent body faults to the reply the directives asked for.
pub fn spoil(reply: Reply, directives: &Directives) -> Reply {
    match reply {
        Reply::Full {
            status,
            content_type,
            headers,
            mut body,
        } => {
            if let Some(size) = directives.huge.filter(|_| status < 400) {
                pad_json(&mut body, size);
            }
            if directives.malformed {
                body = MALFORMED_JSON.to_vec();
            }
            if directives.cut {
                body.truncate(body.len() / 2);
            }
            if directives.empty {
                body.clear();
            }
            Reply::Full {
                status,
                content_type,
                headers,
                body,
            }
        }
        Reply::Stream {
            content_type,
            mut events,
        } => {
            let eventstream = content_type == EVENTSTREAM;
            if directives.bad_event {
                insert_bad_event(&mut events, eventstream);
            }
            if let Some(crc) = directives.bad_crc.filter(|_| eventstream) {
                let at = middle(events.len()).min(events.len().saturating_sub(1));
                if let Some(frame) = events.get_mut(at) {
                    spoil_crc(frame, crc);
                }
            }
            if directives.empty {
                events.clear();
            }
            Reply::Stream {
                content_type,
                events,
            }
        }
    }
}

/// Where a stream is broken into: half of its events, at least one (as long as there is one).
pub fn middle(len: usize) -> usize {
    (len / 2).max(1).min(len)
}

/// Grows a JSON object body to at least `size` bytes with a `mock_padding` string member
/// (for answers whose content is not text, such as embeddings).
fn pad_json(body: &mut Vec<u8>, size: usize) {
    let size = size.min(MAX_HUGE);
    if body.len() >= size {
        return;
    }
    let Ok(Value::Object(mut object)) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    // `,"mock_padding":""` adds 18 bytes besides the padding itself.
    let missing = size.saturating_sub(body.len() + 18);
    object.insert(
        "mock_padding".to_owned(),
        Value::String("x".repeat(missing)),
    );
    *body = Value::Object(object).to_string().into_bytes();
}

/// Inserts, in the middle of the stream, a copy of the event before that point whose JSON
/// breaks off halfway; every real event stays, in order.
fn insert_bad_event(events: &mut Vec<Vec<u8>>, eventstream: bool) {
    let at = middle(events.len());
    let broken = events
        .get(..at)
        .unwrap_or_default()
        .iter()
        .rev()
        .find_map(|event| {
            if eventstream {
                broken_frame(event)
            } else {
                broken_sse(event)
            }
        });
    if let Some(broken) = broken {
        events.insert(at, broken);
    }
}

/// The largest char boundary of `text` at or below half its length.
fn half(text: &str) -> usize {
    let mut cut = text.len() / 2;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    cut
}

/// An SSE event with the JSON of its `data:` line cut in half (framing kept); `None` when the
/// event carries no JSON object (`[DONE]`).
fn broken_sse(event: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(event).ok()?;
    let line_start = if text.starts_with("data:") {
        0
    } else {
        text.find("\ndata:")? + 1
    };
    let mut value_start = line_start + "data:".len();
    if text.get(value_start..)?.starts_with(' ') {
        value_start += 1;
    }
    let rest = text.get(value_start..)?;
    let value_len = rest.find(['\r', '\n']).unwrap_or(rest.len());
    let value = rest.get(..value_len)?;
    if !value.starts_with('{') {
        return None;
    }
    let cut = value_start + half(value);
    let mut out = text.get(..cut)?.as_bytes().to_vec();
    out.extend_from_slice(text.get(value_start + value_len..)?.as_bytes());
    Some(out)
}

/// An eventstream frame with the same headers and the first half of its JSON payload, with
/// correct CRCs (only the JSON is broken).
fn broken_frame(frame: &[u8]) -> Option<Vec<u8>> {
    let (header_block, payload) = eventstream::split(frame)?;
    if !payload.starts_with(b"{") {
        return None;
    }
    let payload = payload.get(..payload.len() / 2)?;
    Some(eventstream::frame_raw(header_block, payload))
}

/// Makes the chosen CRC(s) of a frame wrong; with `Prelude` alone the message CRC is
/// recomputed so that it is the only wrong one.
fn spoil_crc(frame: &mut [u8], crc: Crc) {
    let len = frame.len();
    if len < eventstream::MIN_FRAME {
        return;
    }
    let flip = |bytes: &mut [u8]| bytes.iter_mut().for_each(|b| *b ^= 0xff);
    if matches!(crc, Crc::Prelude | Crc::Both) {
        if let Some(prelude_crc) = frame.get_mut(8..12) {
            flip(prelude_crc);
        }
    }
    match crc {
        Crc::Prelude => {
            let message_crc = crc32fast::hash(frame.get(..len - 4).unwrap_or_default());
            if let Some(slot) = frame.get_mut(len - 4..) {
                slot.copy_from_slice(&message_crc.to_be_bytes());
            }
        }
        Crc::Message | Crc::Both => {
            if let Some(slot) = frame.get_mut(len - 4..) {
                flip(slot);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn stream(events: &[&str]) -> Reply {
        Reply::Stream {
            content_type: "text/event-stream",
            events: events.iter().map(|e| e.as_bytes().to_vec()).collect(),
        }
    }

    fn events(reply: Reply) -> Vec<String> {
        let Reply::Stream { events, .. } = reply else {
            panic!("a stream was expected")
        };
        events
            .into_iter()
            .map(|e| String::from_utf8(e).unwrap())
            .collect()
    }

    fn body(reply: Reply) -> Vec<u8> {
        let Reply::Full { body, .. } = reply else {
            panic!("a full reply was expected")
        };
        body
    }

    fn with(set: impl FnOnce(&mut Directives)) -> Directives {
        let mut directives = Directives::default();
        set(&mut directives);
        directives
    }

    #[test]
    fn bad_event_is_an_extra_half_copy_in_the_middle() {
        let original = [
            "data: {\"a\":1}\n\n",
            "event: x\ndata: {\"b\":\"é2345\"}\n\n",
            "data: {\"c\":3}\n\n",
            "data: [DONE]\n\n",
        ];
        let out = events(spoil(stream(&original), &with(|d| d.bad_event = true)));
        assert_eq!(
            out,
            [
                original[0],
                original[1],
                "event: x\ndata: {\"b\":\"\n\n",
                original[2],
                original[3]
            ]
        );
        // CRLF framing is kept; `[DONE]` is never the one copied.
        let out = events(spoil(
            stream(&["data: {\"x\":1}\r\n\r\n", "data: [DONE]\r\n\r\n"]),
            &with(|d| d.bad_event = true),
        ));
        assert_eq!(out[1], "data: {\"x\r\n\r\n");
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn bad_event_in_an_eventstream_keeps_valid_crcs() {
        let frames: Vec<Vec<u8>> = (0..4)
            .map(|i| {
                eventstream::frame(&[(":event-type", "e")], format!("{{\"i\":{i}}}").as_bytes())
            })
            .collect();
        let reply = Reply::Stream {
            content_type: EVENTSTREAM,
            events: frames.clone(),
        };
        let Reply::Stream { events, .. } = spoil(reply, &with(|d| d.bad_event = true)) else {
            panic!()
        };
        assert_eq!(events.len(), 5);
        assert_eq!(events[3], frames[2]);
        let (headers, payload) = eventstream::split(&events[2]).unwrap();
        assert_eq!(payload, b"{\"i");
        assert_eq!(events[2], eventstream::frame_raw(headers, payload));
        assert_eq!(eventstream::split(&frames[1]).unwrap().0, headers);
    }

    #[test]
    fn bad_crc_spoils_the_chosen_crc_of_the_middle_frame() {
        let frames: Vec<Vec<u8>> = (0..3)
            .map(|i| eventstream::frame(&[], format!("{{\"i\":{i}}}").as_bytes()))
            .collect();
        struct Case {
            crc: Crc,
            /// Whether the prelude's CRC still matches.
            prelude_ok: bool,
            /// Whether the message's CRC still matches.
            message_ok: bool,
        }
        let cases = [
            Case {
                crc: Crc::Prelude,
                prelude_ok: false,
                message_ok: true,
            },
            Case {
                crc: Crc::Message,
                prelude_ok: true,
                message_ok: false,
            },
            Case {
                crc: Crc::Both,
                prelude_ok: false,
                message_ok: false,
            },
        ];
        for Case {
            crc,
            prelude_ok,
            message_ok,
        } in cases
        {
            let reply = Reply::Stream {
                content_type: EVENTSTREAM,
                events: frames.clone(),
            };
            let Reply::Stream { events, .. } = spoil(reply, &with(|d| d.bad_crc = Some(crc)))
            else {
                panic!()
            };
            assert_eq!(events[0], frames[0]);
            assert_eq!(events[2], frames[2]);
            let frame = &events[1];
            let len = frame.len();
            let stored = |at: usize| u32::from_be_bytes(frame[at..at + 4].try_into().unwrap());
            assert_eq!(
                crc32fast::hash(&frame[..8]) == stored(8),
                prelude_ok,
                "{crc:?}"
            );
            assert_eq!(
                crc32fast::hash(&frame[..len - 4]) == stored(len - 4),
                message_ok,
                "{crc:?}"
            );
        }
        // SSE streams have no CRC to spoil.
        let sse = ["data: {}\n\n", "data: {}\n\n"];
        assert_eq!(
            events(spoil(stream(&sse), &with(|d| d.bad_crc = Some(Crc::Both)))),
            sse
        );
    }

    #[test]
    fn json_bodies_padded_cut_broken_emptied() {
        let answer = || Reply::json(200, &serde_json::json!({"data": [1, 2]}));
        let padded = body(spoil(answer(), &with(|d| d.huge = Some(1000))));
        assert!(padded.len() >= 1000, "{}", padded.len());
        assert!(padded.len() < 1010, "{}", padded.len());
        let value: Value = serde_json::from_slice(&padded).unwrap();
        assert_eq!(value["data"], serde_json::json!([1, 2]));
        // Errors are not padded; big enough answers are left alone.
        let error = Reply::json(503, &serde_json::json!({"e": 1}));
        assert_eq!(
            body(spoil(error, &with(|d| d.huge = Some(1000)))),
            b"{\"e\":1}"
        );
        assert_eq!(
            body(spoil(answer(), &with(|d| d.huge = Some(3)))),
            b"{\"data\":[1,2]}"
        );

        assert_eq!(body(spoil(answer(), &with(|d| d.cut = true))), b"{\"data\"");
        assert_eq!(
            body(spoil(answer(), &with(|d| d.malformed = true))),
            MALFORMED_JSON
        );
        assert!(body(spoil(answer(), &with(|d| d.empty = true))).is_empty());
        assert!(events(spoil(stream(&["data: {}\n\n"]), &with(|d| d.empty = true))).is_empty());
    }

    #[test]
    fn middles() {
        assert_eq!([0, 1, 2, 3, 7].map(middle), [0, 1, 1, 1, 3]);
    }

    #[test]
    fn keys_as_presented() {
        let mut headers = HeaderMap::new();
        assert_eq!(presented_key(&headers, Some("alt=sse&key=AIza1")), "AIza1");
        assert_eq!(presented_key(&headers, None), "");
        headers.insert("authorization", HeaderValue::from_static("Bearer sk-123"));
        assert_eq!(presented_key(&headers, None), "sk-123");
        headers.insert("x-api-key", HeaderValue::from_static("sk-ant-9"));
        assert_eq!(presented_key(&headers, None), "sk-ant-9");
        let mut headers = HeaderMap::new();
        headers.insert(
            "authorization",
            HeaderValue::from_static("AWS4-HMAC-SHA256 Credential=AKID/x, Signature=ab"),
        );
        assert_eq!(
            presented_key(&headers, None),
            "AWS4-HMAC-SHA256 Credential=AKID/x, Signature=ab"
        );
        assert_eq!(Crc::parse(""), Some(Some(Crc::Both)));
        assert_eq!(Crc::parse("Prelude"), Some(Some(Crc::Prelude)));
        assert_eq!(Crc::parse("off"), Some(None));
        assert_eq!(Crc::parse("bogus"), None);
    }
}
