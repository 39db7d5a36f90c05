//! Messages clients on Anthropic: the client's body passes through with `model` replaced
//! (its bytes spliced, nothing re-serialised), answers and streams pass through while their
//! usage is read and their end checked.

use super::wire::{WireEvent, WireUsage};
use crate::api::{ApiError, Operation};
use crate::inputs::messages::write_stream_error;
use crate::providers::{
    event_too_large, invalid_answer, stream_interrupted, StreamTranslator, Translated,
};
use crate::stream::sse::{SseEvent, SseParser};
use crate::stream::MAX_EVENT_BYTES;
use crate::usage::Usage;
use serde::de::IgnoredAny;
use serde::Deserialize;

/// The path of a native request of `op` (after the base path).
pub(super) fn native_path(op: Operation) -> Result<&'static str, ApiError> {
    match op {
        Operation::Messages => Ok("/v1/messages"),
        Operation::CountTokens => Ok("/v1/messages/count_tokens"),
        other => Err(ApiError::server(format!(
            "Anthropic does not serve {} natively",
            other.config_name()
        ))),
    }
}

/// Checks a native success answer and reads its usage. A message needs content blocks (one
/// that stopped at `max_tokens` may have none: a cache warmed with `max_tokens: 0`); a count,
/// its `input_tokens` (no usage: counting is free).
pub(super) fn native_response(
    kind: &str,
    op: Operation,
    body: &[u8],
) -> Result<Translated, ApiError> {
    match op {
        Operation::CountTokens => {
            #[derive(Deserialize)]
            struct Count {
                #[allow(dead_code)]
                input_tokens: u64,
            }
            serde_json::from_slice::<Count>(body).map_err(|e| invalid_answer(kind, &e))?;
            Ok(Translated::default())
        }
        _ => {
            #[derive(Deserialize)]
            struct Message {
                content: Vec<IgnoredAny>,
                #[serde(default)]
                stop_reason: Option<String>,
                #[serde(default)]
                usage: Option<WireUsage>,
            }
            let message: Message =
                serde_json::from_slice(body).map_err(|e| invalid_answer(kind, &e))?;
            if message.content.is_empty() && message.stop_reason.as_deref() != Some("max_tokens") {
                return Err(invalid_answer(kind, "a message without content"));
            }
            Ok(Translated {
                body: None,
                usage: message.usage.map(WireUsage::normalise),
            })
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// `message_stop` seen.
    Done,
    /// An error event seen (Anthropic's or the one appended).
    Failed,
}

/// A Messages stream passed through as it comes; usage is read from `message_start` and
/// `message_delta`, the stream is complete at `message_stop`, and one that ends before it
/// gets an `error` event appended.
pub struct NativeStream {
    parser: SseParser,
    events: Vec<SseEvent>,
    usage: Option<WireUsage>,
    state: State,
    kind: &'static str,
}

impl NativeStream {
    pub fn new(kind: &'static str) -> Self {
        NativeStream {
            parser: SseParser::new(MAX_EVENT_BYTES),
            events: Vec::new(),
            usage: None,
            state: State::Open,
            kind,
        }
    }

    fn read(&mut self, out: &mut Vec<u8>) {
        for event in std::mem::take(&mut self.events) {
            if self.state != State::Open {
                continue;
            }
            // Only the events that carry usage or end the stream are parsed.
            let wanted = match event.event.as_deref() {
                Some("message_stop") => {
                    self.state = State::Done;
                    continue;
                }
                Some("message_start" | "message_delta" | "error") | None => true,
                Some(_) => false,
            };
            if !wanted || event.data.is_empty() {
                continue;
            }
            match serde_json::from_str::<WireEvent>(&event.data) {
                Ok(WireEvent::MessageStart { message }) => self.add_usage(message.usage),
                Ok(WireEvent::MessageDelta { usage, .. }) => self.add_usage(usage),
                Ok(WireEvent::MessageStop) => self.state = State::Done,
                Ok(WireEvent::Error { .. }) => self.state = State::Failed,
                Ok(_) => {}
                Err(e) => {
                    write_stream_error(&invalid_answer(self.kind, &e), out);
                    self.state = State::Failed;
                }
            }
        }
    }

    fn add_usage(&mut self, usage: Option<WireUsage>) {
        if let Some(u) = usage {
            self.usage.get_or_insert_with(WireUsage::default).update(u);
        }
    }
}

impl StreamTranslator for NativeStream {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        if self.state == State::Failed {
            return;
        }
        out.extend_from_slice(chunk);
        let events = &mut self.events;
        let parsed = self.parser.feed(chunk, |e| events.push(e));
        self.read(out);
        if parsed.is_err() && self.state == State::Open {
            write_stream_error(&event_too_large(), out);
            self.state = State::Failed;
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        if self.state == State::Open {
            let events = &mut self.events;
            self.parser.finish(|e| events.push(e));
            self.read(out);
        }
        if self.state == State::Open {
            write_stream_error(&stream_interrupted(), out);
            self.state = State::Failed;
        }
    }

    fn usage(&self) -> Option<Usage> {
        self.usage.map(WireUsage::normalise)
    }

    fn complete(&self, _out: &[u8]) -> bool {
        self.state == State::Done
    }

    fn failed(&self) -> bool {
        self.state == State::Failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::anthropic::{KIND, PROVIDER};
    use crate::providers::testing::*;
    use crate::testkit::test;

    #[test]
    fn requests_pass_through_with_the_model_replaced() {
        let p = provider(
            "kind: anthropic\napi_key: sk-ant\nanthropic_version: 2024-01-01\nbeta: [b1]\nheaders: {X-Team: blue}",
        );
        assert_eq!(p.native_api(), Some(crate::api::Api::AnthropicMessages));
        let body = br#"{"model":"claude","max_tokens":5,"context_management":{"edits":[]},"messages":[{"role":"user","content":"x"}]}"#;
        let up = p
            .native_request(Operation::Messages, body, &attempt("claude-x"))
            .unwrap();
        assert_eq!(up.path, "/v1/messages");
        // The client's anthropic-version and anthropic-beta pass as they are.
        assert_eq!(
            up.headers,
            owned_pairs(&[("x-api-key", "sk-ant"), ("x-team", "blue")])
        );
        assert_eq!(
            String::from_utf8(up.body).unwrap(),
            r#"{"model":"claude-x","max_tokens":5,"context_management":{"edits":[]},"messages":[{"role":"user","content":"x"}]}"#
        );
        let count = p
            .native_request(
                Operation::CountTokens,
                br#"{"model":"claude","messages":[]}"#,
                &attempt("claude-x"),
            )
            .unwrap();
        assert_eq!(count.path, "/v1/messages/count_tokens");
        assert!(p
            .native_request(Operation::ChatCompletions, body, &attempt("c"))
            .is_err());
    }

    struct AnswerCase {
        name: &'static str,
        op: Operation,
        body: &'static str,
        /// The usage read, or `None` for a 502.
        expected: Option<Option<Usage>>,
    }

    #[test]
    fn answers_are_checked_and_their_usage_read() {
        let cases = [
            AnswerCase {
                name: "a message",
                op: Operation::Messages,
                body: r#"{"id":"m","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn",
                    "usage":{"input_tokens":10,"cache_read_input_tokens":100,"cache_creation_input_tokens":20,"output_tokens":5}}"#,
                expected: Some(Some(Usage {
                    prompt_tokens: 130,
                    completion_tokens: 5,
                    cached_tokens: 100,
                    cache_write_tokens: 20,
                    reasoning_tokens: 0,
                })),
            },
            AnswerCase {
                name: "a cache warmed with max_tokens 0",
                op: Operation::Messages,
                body: r#"{"content":[],"stop_reason":"max_tokens","usage":{"input_tokens":3,"output_tokens":0}}"#,
                expected: Some(Some(Usage {
                    prompt_tokens: 3,
                    ..Usage::default()
                })),
            },
            AnswerCase {
                name: "a message without content",
                op: Operation::Messages,
                body: r#"{"content":[],"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":1}}"#,
                expected: None,
            },
            AnswerCase {
                name: "not a message",
                op: Operation::Messages,
                body: r#"{"type":"error","error":{"type":"overloaded_error","message":"x"}}"#,
                expected: None,
            },
            AnswerCase {
                name: "a count, which costs nothing",
                op: Operation::CountTokens,
                body: r#"{"input_tokens":42}"#,
                expected: Some(None),
            },
            AnswerCase {
                name: "a count without its number",
                op: Operation::CountTokens,
                body: "{}",
                expected: None,
            },
        ];
        let p = provider(PROVIDER);
        for case in cases {
            let got = p.native_response(case.op, case.body.as_bytes(), &ctx(false));
            match case.expected {
                Some(usage) => {
                    let t = got.unwrap_or_else(|e| panic!("{}: {e}", case.name));
                    assert_eq!((t.body, t.usage), (None, usage), "{}", case.name);
                }
                None => {
                    let e = got.unwrap_err();
                    assert_eq!(
                        (e.status, e.code.as_deref()),
                        (502, Some("invalid_upstream_response")),
                        "{}",
                        case.name
                    );
                }
            }
        }
    }

    fn sse(events: &[(&str, &str)]) -> String {
        events
            .iter()
            .map(|(name, data)| format!("event: {name}\ndata: {data}\n\n"))
            .collect()
    }

    const START: (&str, &str) = (
        "message_start",
        r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-x","usage":{"input_tokens":10,"cache_read_input_tokens":100,"cache_creation_input_tokens":20,"output_tokens":1}}}"#,
    );
    const TEXT: [(&str, &str); 4] = [
        ("ping", r#"{"type":"ping"}"#),
        (
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#,
        ),
        (
            "content_block_stop",
            r#"{"type":"content_block_stop","index":0}"#,
        ),
    ];
    const DELTA: (&str, &str) = (
        "message_delta",
        r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":7,"output_tokens_details":{"thinking_tokens":2}}}"#,
    );
    const STOP: (&str, &str) = ("message_stop", r#"{"type":"message_stop"}"#);
    const INTERRUPTED: &str = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"the provider's stream ended before it was complete\"}}\n\n";

    struct StreamCase {
        name: &'static str,
        input: String,
        /// Appended to the input.
        appended: &'static str,
        complete: bool,
        /// It ends with an error event (Anthropic's or the one appended).
        failed: bool,
        usage: Option<Usage>,
    }

    #[test]
    fn streams_pass_through_while_usage_and_their_end_are_read() {
        let whole = [vec![START], TEXT.to_vec(), vec![DELTA, STOP]].concat();
        let read = Usage {
            prompt_tokens: 130,
            completion_tokens: 7,
            cached_tokens: 100,
            cache_write_tokens: 20,
            reasoning_tokens: 2,
        };
        let cases = [
            StreamCase {
                name: "complete",
                input: sse(&whole),
                appended: "",
                complete: true,
                failed: false,
                usage: Some(read),
            },
            StreamCase {
                name: "data only (no event lines), CRLF",
                input: whole
                    .iter()
                    .map(|(_, data)| format!("data: {data}\r\n\r\n"))
                    .collect(),
                appended: "",
                complete: true,
                failed: false,
                usage: Some(read),
            },
            StreamCase {
                name: "cut before message_stop",
                input: sse(&[vec![START], TEXT.to_vec()].concat()),
                appended: INTERRUPTED,
                complete: false,
                failed: true,
                usage: Some(Usage {
                    prompt_tokens: 130,
                    completion_tokens: 1,
                    cached_tokens: 100,
                    cache_write_tokens: 20,
                    reasoning_tokens: 0,
                }),
            },
            StreamCase {
                name: "Anthropic's error event ends it: nothing appended",
                input: sse(&[
                    START,
                    (
                        "error",
                        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
                    ),
                ]),
                appended: "",
                complete: false,
                failed: true,
                usage: Some(Usage {
                    prompt_tokens: 130,
                    completion_tokens: 1,
                    cached_tokens: 100,
                    cache_write_tokens: 20,
                    reasoning_tokens: 0,
                }),
            },
            StreamCase {
                name: "a broken event",
                input: "event: message_start\ndata: {\"type\":\"message_start\",\"message\":\n\n".to_owned(),
                appended: "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"the anthropic provider returned an invalid answer: EOF while parsing a value at line 1 column 34\"}}\n\n",
                complete: false,
                failed: true,
                usage: None,
            },
        ];
        for case in cases {
            let expected = format!("{}{}", case.input, case.appended);
            assert_every_split_matches(
                || NativeStream::new(KIND),
                case.input.as_bytes(),
                expected.as_bytes(),
            );
            let mut t = NativeStream::new(KIND);
            let mut out = Vec::new();
            t.feed(case.input.as_bytes(), &mut out);
            t.finish(&mut out);
            assert_eq!(t.complete(&out), case.complete, "{}", case.name);
            assert_eq!(t.failed(), case.failed, "{}", case.name);
            assert_eq!(t.usage(), case.usage, "{}", case.name);
        }
    }
}
