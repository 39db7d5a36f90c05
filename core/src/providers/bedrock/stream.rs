//! ConverseStream (AWS eventstream framing) → OpenAI SSE.

use super::error::{aws_message, stream_exception};
use super::response::finish_reason;
use super::wire::{BlockDelta, BlockStart, MessageStop, StreamMetadata, ToolUseStart};
use super::KIND;
use crate::api::chat::{
    ChatChunk, ChunkChoice, Delta, FinishReason, FunctionDelta, ThinkingBlock, ToolCallDelta,
};
use crate::api::ApiError;
use crate::providers::{
    event_too_large, invalid_answer, stream_interrupted, write_sse_error, write_sse_json,
    write_stream_end, ResponseContext, StreamTranslator,
};
use crate::stream::eventstream::{DecodeError, Decoder, Message as EventMessage};
use crate::stream::MAX_EVENT_BYTES;
use crate::usage::Usage;
use serde::de::IgnoredAny;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamState {
    Open,
    /// `[DONE]` sent.
    Done,
    /// An error event sent; nothing follows it.
    Failed,
}

/// Decodes ConverseStream events and writes OpenAI chunks as each one arrives.
pub struct ConverseStream {
    decoder: Decoder,
    id: String,
    created: u64,
    model: String,
    include_usage: bool,
    role_sent: bool,
    /// Converse content block index → OpenAI tool call index, for tool-use blocks.
    tool_blocks: Vec<(u32, u32)>,
    /// `messageStop` seen (its finish chunk is out).
    stopped: bool,
    /// `metadata` seen (usage known, if Bedrock sent any).
    metadata_seen: bool,
    usage: Option<Usage>,
    state: StreamState,
    events: Vec<EventMessage>,
}

impl ConverseStream {
    pub(super) fn new(ctx: &ResponseContext) -> Self {
        ConverseStream {
            decoder: Decoder::new(MAX_EVENT_BYTES),
            id: format!("chatcmpl-{}", ctx.request_id),
            created: ctx.created,
            model: ctx.upstream_model.to_owned(),
            include_usage: ctx.include_usage,
            role_sent: false,
            tool_blocks: Vec::new(),
            stopped: false,
            metadata_seen: false,
            usage: None,
            state: StreamState::Open,
            events: Vec::new(),
        }
    }

    fn chunk(&self, choices: Vec<ChunkChoice>) -> ChatChunk {
        ChatChunk::new(self.id.clone(), self.created, self.model.clone(), choices)
    }

    fn write_delta(&mut self, out: &mut Vec<u8>, delta: Delta, finish: Option<FinishReason>) {
        self.ensure_role(out);
        let chunk = self.chunk(vec![ChunkChoice {
            index: 0,
            delta,
            finish_reason: finish,
            logprobs: None,
        }]);
        write_sse_json(out, &chunk);
    }

    /// The first chunk carries the role, whether or not Bedrock sent `messageStart`.
    fn ensure_role(&mut self, out: &mut Vec<u8>) {
        if self.role_sent {
            return;
        }
        self.role_sent = true;
        let chunk = self.chunk(vec![ChunkChoice {
            index: 0,
            delta: Delta {
                role: Some("assistant"),
                content: Some(String::new()),
                ..Delta::default()
            },
            finish_reason: None,
            logprobs: None,
        }]);
        write_sse_json(out, &chunk);
    }

    fn fail(&mut self, out: &mut Vec<u8>, error: &ApiError) {
        self.state = StreamState::Failed;
        write_sse_error(out, error);
    }

    fn tool_index(&mut self, block: u32) -> (u32, bool) {
        if let Some((_, index)) = self.tool_blocks.iter().find(|(b, _)| *b == block) {
            return (*index, false);
        }
        let index = self.tool_blocks.len() as u32;
        self.tool_blocks.push((block, index));
        (index, true)
    }

    fn handle(&mut self, event: &EventMessage, out: &mut Vec<u8>) {
        match event.header(":message-type") {
            Some("exception") => {
                let kind = event.header(":exception-type").unwrap_or("exception");
                let message = aws_message(&event.payload)
                    .unwrap_or_else(|| format!("Bedrock sent a {kind} mid-stream"));
                let error = stream_exception(kind, message);
                self.fail(out, &error);
                return;
            }
            Some("error") => {
                let code = event.header(":error-code").unwrap_or("error");
                let message = event
                    .header(":error-message")
                    .unwrap_or("Bedrock sent an error mid-stream")
                    .to_owned();
                let error = ApiError::upstream(message).with_code(code);
                self.fail(out, &error);
                return;
            }
            _ => {}
        }
        let payload = event.payload.as_slice();
        let result = match event.header(":event-type").unwrap_or_default() {
            "messageStart" => serde_json::from_slice::<IgnoredAny>(payload).map(|_| {
                self.ensure_role(out);
            }),
            "contentBlockStart" => serde_json::from_slice::<BlockStart>(payload).map(|start| {
                if let Some(tool) = start.start.tool_use {
                    let (index, _) = self.tool_index(start.content_block_index);
                    self.write_tool_delta(out, index, Some(tool), String::new());
                }
            }),
            "contentBlockDelta" => serde_json::from_slice::<BlockDelta>(payload)
                .map(|delta| self.block_delta(out, delta)),
            "messageStop" => serde_json::from_slice::<MessageStop>(payload).map(|stop| {
                self.stopped = true;
                let reason = finish_reason(&stop.stop_reason);
                self.write_delta(out, Delta::default(), Some(reason));
            }),
            "metadata" => serde_json::from_slice::<StreamMetadata>(payload).map(|meta| {
                self.metadata_seen = true;
                if let Some(u) = meta.usage {
                    self.usage = Some(u.normalise());
                }
            }),
            // contentBlockStop and events added later carry nothing a client needs, but
            // are JSON all the same.
            _ => serde_json::from_slice::<IgnoredAny>(payload).map(|_| ()),
        };
        match result {
            Err(e) => self.fail(out, &invalid_answer(KIND, &e)),
            Ok(()) if self.stopped && self.metadata_seen => self.complete(out),
            Ok(()) => {}
        }
    }

    fn block_delta(&mut self, out: &mut Vec<u8>, event: BlockDelta) {
        let delta = event.delta;
        if let Some(text) = delta.text {
            self.write_delta(
                out,
                Delta {
                    content: Some(text),
                    ..Delta::default()
                },
                None,
            );
        }
        if let Some(tool) = delta.tool_use {
            // A tool block always starts with `contentBlockStart`; tolerate one that did not.
            let (index, new) = self.tool_index(event.content_block_index);
            let start = new.then(|| ToolUseStart {
                tool_use_id: format!("call_{}_{index}", self.id),
                name: String::new(),
            });
            self.write_tool_delta(out, index, start, tool.input);
        }
        if let Some(reasoning) = delta.reasoning_content {
            let signed = reasoning
                .signature
                .map(|signature| ThinkingBlock::Thinking {
                    thinking: String::new(),
                    signature: Some(signature),
                });
            let redacted = reasoning
                .redacted_content
                .map(|data| ThinkingBlock::RedactedThinking { data });
            let blocks: Vec<ThinkingBlock> = signed.into_iter().chain(redacted).collect();
            let delta = Delta {
                reasoning_content: reasoning.text.filter(|t| !t.is_empty()),
                thinking_blocks: (!blocks.is_empty()).then_some(blocks),
                ..Delta::default()
            };
            if delta != Delta::default() {
                self.write_delta(out, delta, None);
            }
        }
    }

    /// A tool call delta: id, type and name on the call's first chunk, then argument text.
    fn write_tool_delta(
        &mut self,
        out: &mut Vec<u8>,
        index: u32,
        start: Option<ToolUseStart>,
        arguments: String,
    ) {
        let (id, kind, name) = match start {
            Some(s) => (Some(s.tool_use_id), Some("function"), Some(s.name)),
            None => (None, None, None),
        };
        let delta = Delta {
            tool_calls: Some(vec![ToolCallDelta {
                index,
                id,
                kind,
                function: FunctionDelta {
                    name,
                    arguments: Some(arguments),
                },
            }]),
            ..Delta::default()
        };
        self.write_delta(out, delta, None);
    }

    /// Usage chunk (when asked for) and `[DONE]`.
    fn complete(&mut self, out: &mut Vec<u8>) {
        let usage = self.usage.filter(|_| self.include_usage);
        write_stream_end(out, usage, || self.chunk(Vec::new()));
        self.state = StreamState::Done;
    }
}

impl StreamTranslator for ConverseStream {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        if self.state != StreamState::Open {
            return;
        }
        let events = &mut self.events;
        let decoded = self.decoder.feed(chunk, |m| events.push(m));
        for event in std::mem::take(&mut self.events) {
            if self.state != StreamState::Open {
                break;
            }
            self.handle(&event, out);
        }
        if let Err(e) = decoded {
            if self.state == StreamState::Open {
                let error = match e {
                    DecodeError::TooLarge { .. } => event_too_large(),
                    e => invalid_answer(KIND, format_args!("a broken event stream: {e}")),
                };
                self.fail(out, &error);
            }
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        if self.state != StreamState::Open {
            return;
        }
        if self.stopped && self.decoder.is_idle() {
            // `messageStop` came but no `metadata`: the answer is whole, its usage unknown.
            self.complete(out);
            return;
        }
        self.fail(out, &stream_interrupted());
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }

    fn failed(&self) -> bool {
        self.state == StreamState::Failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::testing::*;
    use crate::stream::eventstream::encode;
    use crate::testkit::test;

    fn event(kind: &str, payload: &str) -> Vec<u8> {
        encode(
            &[
                (":event-type", kind),
                (":content-type", "application/json"),
                (":message-type", "event"),
            ],
            payload.as_bytes(),
        )
    }

    fn exception(kind: &str, message: &str) -> Vec<u8> {
        encode(
            &[
                (":exception-type", kind),
                (":content-type", "application/json"),
                (":message-type", "exception"),
            ],
            format!(r#"{{"message":"{message}"}}"#).as_bytes(),
        )
    }

    fn text_stream() -> Vec<u8> {
        text_events().concat()
    }

    fn text_events() -> [Vec<u8>; 6] {
        [
            event("messageStart", r#"{"p":"abc","role":"assistant"}"#),
            event(
                "contentBlockDelta",
                r#"{"contentBlockIndex":0,"delta":{"text":"Hel"},"p":"ab"}"#,
            ),
            event(
                "contentBlockDelta",
                r#"{"contentBlockIndex":0,"delta":{"text":"lo"}}"#,
            ),
            event("contentBlockStop", r#"{"contentBlockIndex":0}"#),
            event("messageStop", r#"{"stopReason":"end_turn"}"#),
            event(
                "metadata",
                r#"{"usage":{"inputTokens":4,"outputTokens":2,"totalTokens":9,"cacheReadInputTokens":3},"metrics":{"latencyMs":5}}"#,
            ),
        ]
    }

    fn tool_stream() -> Vec<u8> {
        [
            event("messageStart", r#"{"role":"assistant"}"#),
            event("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"reasoningContent":{"text":"Hmm."}}}"#),
            event("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"reasoningContent":{"signature":"s"}}}"#),
            event("contentBlockStop", r#"{"contentBlockIndex":0}"#),
            event("contentBlockDelta", r#"{"contentBlockIndex":3,"delta":{"reasoningContent":{"redactedContent":"cmVk"}}}"#),
            event("contentBlockStop", r#"{"contentBlockIndex":3}"#),
            event("contentBlockStart", r#"{"contentBlockIndex":1,"start":{"toolUse":{"toolUseId":"tu_1","name":"weather"}}}"#),
            event("contentBlockDelta", r#"{"contentBlockIndex":1,"delta":{"toolUse":{"input":"{\"city\":"}}}"#),
            event("contentBlockDelta", r#"{"contentBlockIndex":1,"delta":{"toolUse":{"input":"\"Paris\"}"}}}"#),
            event("contentBlockStop", r#"{"contentBlockIndex":1}"#),
            event("contentBlockStart", r#"{"contentBlockIndex":2,"start":{"toolUse":{"toolUseId":"tu_2","name":"time"}}}"#),
            event("contentBlockDelta", r#"{"contentBlockIndex":2,"delta":{"toolUse":{"input":"{}"}}}"#),
            event("contentBlockStop", r#"{"contentBlockIndex":2}"#),
            event("messageStop", r#"{"stopReason":"tool_use"}"#),
            event("metadata", r#"{"usage":{"inputTokens":7,"outputTokens":9,"totalTokens":16}}"#),
        ]
        .concat()
    }

    const CHUNK: &str = r#"data: {"id":"chatcmpl-req-1","object":"chat.completion.chunk","created":1700000000,"model":"up-model","choices":"#;

    fn sse(choices: &[&str]) -> String {
        choices
            .iter()
            .map(|c| format!("{CHUNK}{c}}}\n\n"))
            .collect()
    }

    struct StreamCase {
        name: &'static str,
        /// What Bedrock sends.
        input: Vec<u8>,
        include_usage: bool,
        /// What the client sees.
        expected: String,
        /// The total the stream's usage comes to.
        total_tokens: u64,
    }

    #[test]
    fn converse_streams_to_openai_chunks_at_every_split() {
        let role = r#"[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null,"logprobs":null}]"#;
        let text_chunks = sse(&[
            role,
            r#"[{"index":0,"delta":{"content":"Hel"},"finish_reason":null,"logprobs":null}]"#,
            r#"[{"index":0,"delta":{"content":"lo"},"finish_reason":null,"logprobs":null}]"#,
            r#"[{"index":0,"delta":{},"finish_reason":"stop","logprobs":null}]"#,
        ]);
        let usage_chunk = format!("{CHUNK}[],\"usage\":{{\"prompt_tokens\":7,\"completion_tokens\":2,\"total_tokens\":9,\"prompt_tokens_details\":{{\"cached_tokens\":3}},\"completion_tokens_details\":{{\"reasoning_tokens\":0}}}}}}\n\n");
        let tool_chunks = sse(&[
            role,
            r#"[{"index":0,"delta":{"reasoning_content":"Hmm."},"finish_reason":null,"logprobs":null}]"#,
            r#"[{"index":0,"delta":{"thinking_blocks":[{"type":"thinking","thinking":"","signature":"s"}]},"finish_reason":null,"logprobs":null}]"#,
            r#"[{"index":0,"delta":{"thinking_blocks":[{"type":"redacted_thinking","data":"cmVk"}]},"finish_reason":null,"logprobs":null}]"#,
            r#"[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"tu_1","type":"function","function":{"name":"weather","arguments":""}}]},"finish_reason":null,"logprobs":null}]"#,
            r#"[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]},"finish_reason":null,"logprobs":null}]"#,
            r#"[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]},"finish_reason":null,"logprobs":null}]"#,
            r#"[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"tu_2","type":"function","function":{"name":"time","arguments":""}}]},"finish_reason":null,"logprobs":null}]"#,
            r#"[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"{}"}}]},"finish_reason":null,"logprobs":null}]"#,
            r#"[{"index":0,"delta":{},"finish_reason":"tool_calls","logprobs":null}]"#,
        ]);
        let cases = [
            StreamCase {
                name: "text",
                input: text_stream(),
                include_usage: false,
                expected: format!("{text_chunks}data: [DONE]\n\n"),
                total_tokens: 9,
            },
            StreamCase {
                name: "text with usage",
                input: text_stream(),
                include_usage: true,
                expected: format!("{text_chunks}{usage_chunk}data: [DONE]\n\n"),
                total_tokens: 9,
            },
            StreamCase {
                name: "tool calls",
                input: tool_stream(),
                include_usage: false,
                expected: format!("{tool_chunks}data: [DONE]\n\n"),
                total_tokens: 16,
            },
        ];
        for case in cases {
            let make = || ConverseStream::new(&ctx(case.include_usage));
            let (out, usage) = run_stream_whole(make, &case.input);
            assert_eq!(
                String::from_utf8_lossy(&out),
                case.expected,
                "{}",
                case.name
            );
            assert_eq!(
                usage.unwrap().total_tokens(),
                case.total_tokens,
                "{}",
                case.name
            );
            assert_every_split_matches(make, &case.input, case.expected.as_bytes());
        }
    }

    struct Broken {
        name: &'static str,
        input: Vec<u8>,
        /// How the client stream ends.
        ending: &'static str,
    }

    #[test]
    fn broken_streams_end_with_an_error_event() {
        let full = text_stream();
        let events = text_events();
        let before_stop = events[..4].concat();
        let without_metadata = events[..5].concat();
        let mut corrupt = text_stream();
        let last = corrupt.len() - 1;
        corrupt[last] ^= 0xff;
        let throttled = [
            event("messageStart", r#"{"role":"assistant"}"#),
            event(
                "contentBlockDelta",
                r#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#,
            ),
            exception("throttlingException", "Too many tokens, please wait."),
            event(
                "contentBlockDelta",
                r#"{"contentBlockIndex":0,"delta":{"text":"ignored"}}"#,
            ),
        ]
        .concat();
        let invalid =
            r#""type":"upstream_error","param":null,"code":"invalid_upstream_response"}}"#;
        let cases = [
            Broken {
                name: "a broken messageStart",
                input: [
                    event("messageStart", r#"{"role":"assis"#),
                    events[1].clone(),
                ]
                .concat(),
                ending: invalid,
            },
            Broken {
                name: "a broken contentBlockStop",
                input: [
                    events[..3].concat(),
                    event("contentBlockStop", r#"{"contentBlockInd"#),
                    events[3..].concat(),
                ]
                .concat(),
                ending: invalid,
            },
            Broken {
                name: "a broken event of a type added later",
                input: [events[..2].concat(), event("citation", "{\"x\":")].concat(),
                ending: invalid,
            },
            Broken {
                name: "messageStop without a stop reason",
                input: [
                    events[..4].concat(),
                    event("messageStop", "{}"),
                    events[5].clone(),
                ]
                .concat(),
                ending: invalid,
            },
            Broken {
                name: "an event over the limit",
                input: [
                    events[..2].concat(),
                    event(
                        "contentBlockDelta",
                        &format!(
                            r#"{{"contentBlockIndex":0,"delta":{{"text":"{}"}}}}"#,
                            "x".repeat(MAX_EVENT_BYTES)
                        ),
                    ),
                ]
                .concat(),
                ending: r#"larger than 4 MiB","type":"upstream_error","param":null,"code":null}}"#,
            },
            Broken {
                name: "exception mid-stream",
                input: throttled,
                ending: r#"data: {"error":{"message":"Too many tokens, please wait.","type":"rate_limit_error","param":null,"code":"throttlingException"}}"#,
            },
            Broken {
                name: "model stream error",
                input: [
                    event("messageStart", r#"{"role":"assistant"}"#),
                    exception("modelStreamErrorException", "boom"),
                ]
                .concat(),
                ending: r#"data: {"error":{"message":"boom","type":"upstream_error","param":null,"code":"modelStreamErrorException"}}"#,
            },
            Broken {
                name: "cut before messageStop",
                input: before_stop,
                ending: r#""code":"stream_interrupted"}}"#,
            },
            Broken {
                name: "cut inside a frame",
                input: full[..full.len() - 3].to_vec(),
                ending: r#""code":"stream_interrupted"}}"#,
            },
            Broken {
                name: "bad checksum",
                input: corrupt,
                ending: r#"invalid answer: a broken event stream: an event's message checksum is wrong","type":"upstream_error","param":null,"code":"invalid_upstream_response"}}"#,
            },
        ];
        for case in cases {
            let name = case.name;
            let make = || ConverseStream::new(&ctx(true));
            let (out, _) = run_stream_whole(make, &case.input);
            let text = String::from_utf8(out.clone()).unwrap();
            assert!(text.trim_end().ends_with(case.ending), "{name}: {text}");
            assert!(!text.contains("[DONE]"), "{name}: {text}");
            assert!(!text.contains("ignored"), "{name}: {text}");
            if case.input.len() < 10_000 {
                assert_every_split_matches(make, &case.input, &out);
            }
        }
        // No content events, then the stop: an empty answer, as a JSON `content: []` is.
        let silent = [
            events[0].clone(),
            event("messageStop", r#"{"stopReason":"end_turn"}"#),
            events[5].clone(),
        ]
        .concat();
        let (out, _) = run_stream_whole(|| ConverseStream::new(&ctx(false)), &silent);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            sse(&[
                r#"[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null,"logprobs":null}]"#,
                r#"[{"index":0,"delta":{},"finish_reason":"stop","logprobs":null}]"#,
            ]) + "data: [DONE]\n\n"
        );
        // messageStop without metadata: complete, usage unknown.
        let (out, usage) = run_stream_whole(|| ConverseStream::new(&ctx(true)), &without_metadata);
        assert!(String::from_utf8(out)
            .unwrap()
            .ends_with("\"finish_reason\":\"stop\",\"logprobs\":null}]}\n\ndata: [DONE]\n\n"));
        assert_eq!(usage, None);
    }
}
