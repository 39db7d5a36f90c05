//! Messages stream events → OpenAI chunks: [`MessagesEvents`] takes one event's JSON at a time
//! (for hosts with another framing, such as Bedrock's eventstream); [`MessagesStream`] adds
//! Anthropic's SSE framing.

use super::error::typed_error;
use super::response::finish_reason;
use super::wire::{BlockDelta, StartedBlock, WireEvent, WireUsage};
use crate::api::chat::{
    ChatChunk, ChunkChoice, Delta, FunctionDelta, ThinkingBlock, ToolCallDelta,
};
use crate::api::ApiError;
use crate::providers::{
    event_too_large, invalid_answer, stream_interrupted, write_sse_error, write_sse_json,
    write_stream_end, ResponseContext, StreamTranslator,
};
use crate::stream::sse::{SseEvent, SseParser};
use crate::stream::MAX_EVENT_BYTES;
use crate::usage::Usage;

/// What an open content block turns into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpenBlock {
    Text,
    Thinking,
    /// A tool call: its OpenAI index, and whether any argument bytes went out yet.
    Tool {
        index: u32,
        has_arguments: bool,
    },
    /// The json_schema answer tool: its input streams as content.
    Answer,
    Ignored,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Open,
    Done,
    Failed,
}

/// Turns Messages stream events into OpenAI chunks, one event's JSON at a time.
///
/// Contract: feed each event's JSON (the SSE `data`, or the payload another framing carries)
/// to [`MessagesEvents::event`]; call [`MessagesEvents::finish`] at the end of the stream.
/// Output: a role chunk first, content / reasoning / tool-call deltas, the finish chunk, a
/// usage chunk when `ctx.include_usage`, `[DONE]`; or an OpenAI error event and no `[DONE]`
/// (Anthropic `error` event, invalid event, or a stream that ends before `message_stop`).
/// Memory is bounded by the open content blocks, not the stream's length.
pub struct MessagesEvents {
    kind: &'static str,
    include_usage: bool,
    json_schema: Option<String>,
    id: String,
    model: String,
    created: u64,
    role_sent: bool,
    blocks: Vec<(u64, OpenBlock)>,
    tool_calls: u32,
    stop_reason: Option<String>,
    usage: Option<WireUsage>,
    phase: Phase,
}

impl MessagesEvents {
    pub fn new(kind: &'static str, ctx: &ResponseContext) -> Self {
        MessagesEvents {
            kind,
            include_usage: ctx.include_usage,
            json_schema: ctx.json_schema.map(str::to_owned),
            id: format!("chatcmpl-{}", ctx.request_id),
            model: ctx.upstream_model.to_owned(),
            created: ctx.created,
            role_sent: false,
            blocks: Vec::new(),
            tool_calls: 0,
            stop_reason: None,
            usage: None,
            phase: Phase::Open,
        }
    }

    /// True until the stream has ended, well or not; later events are ignored.
    pub fn is_open(&self) -> bool {
        self.phase == Phase::Open
    }

    /// True once the stream has ended with an error event.
    pub fn failed(&self) -> bool {
        self.phase == Phase::Failed
    }

    /// Usage reported so far (input side from `message_start`, output from `message_delta`).
    pub fn usage(&self) -> Option<Usage> {
        self.usage.map(WireUsage::normalise)
    }

    /// Handles one event's JSON.
    pub fn event(&mut self, data: &[u8], out: &mut Vec<u8>) {
        if !self.is_open() {
            return;
        }
        let event: WireEvent = match serde_json::from_slice(data) {
            Ok(e) => e,
            Err(e) => return self.fail(out, &invalid_answer(self.kind, &e)),
        };
        match event {
            WireEvent::MessageStart { message } => {
                if let Some(id) = message.id {
                    self.id = id;
                }
                if let Some(model) = message.model {
                    self.model = model;
                }
                if let Some(u) = message.usage {
                    self.usage.get_or_insert_with(WireUsage::default).update(u);
                }
                self.send_role(out);
            }
            WireEvent::ContentBlockStart {
                index,
                content_block,
            } => self.block_start(index, content_block, out),
            WireEvent::ContentBlockDelta { index, delta } => self.block_delta(index, delta, out),
            WireEvent::ContentBlockStop { index } => self.block_stop(index, out),
            WireEvent::MessageDelta { delta, usage } => {
                if let Some(reason) = delta.and_then(|d| d.stop_reason) {
                    self.stop_reason = Some(reason);
                }
                if let Some(u) = usage {
                    self.usage.get_or_insert_with(WireUsage::default).update(u);
                }
            }
            WireEvent::MessageStop => self.message_stop(out),
            WireEvent::Error { error } => {
                let message = error
                    .message
                    .unwrap_or_else(|| "the provider reported an error".to_owned());
                self.fail(out, &typed_error(&error.kind, message, None));
            }
            WireEvent::Other => {}
        }
    }

    /// The upstream stream ended: anything but a clean `message_stop` is an error event.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.is_open() {
            self.fail(out, &stream_interrupted());
        }
    }

    /// Ends the client stream with an error event (never followed by `[DONE]`).
    pub fn fail(&mut self, out: &mut Vec<u8>, error: &ApiError) {
        if self.is_open() {
            self.phase = Phase::Failed;
            write_sse_error(out, error);
        }
    }

    fn block_start(&mut self, index: u64, block: StartedBlock, out: &mut Vec<u8>) {
        let open = match block {
            StartedBlock::Text { text } => {
                self.send_content(text, out);
                OpenBlock::Text
            }
            StartedBlock::Thinking { thinking } => {
                self.send(
                    Delta {
                        reasoning_content: Some(thinking).filter(|t| !t.is_empty()),
                        ..Delta::default()
                    },
                    out,
                );
                OpenBlock::Thinking
            }
            StartedBlock::RedactedThinking { data } => {
                self.send(
                    Delta {
                        thinking_blocks: Some(vec![ThinkingBlock::RedactedThinking { data }]),
                        ..Delta::default()
                    },
                    out,
                );
                OpenBlock::Ignored
            }
            StartedBlock::ToolUse { name, .. } if self.json_schema.as_deref() == Some(&name) => {
                OpenBlock::Answer
            }
            StartedBlock::ToolUse { id, name } => {
                let tool_index = self.tool_calls;
                self.tool_calls += 1;
                self.send_tool_call(tool_index, Some(id), Some(name), String::new(), out);
                OpenBlock::Tool {
                    index: tool_index,
                    has_arguments: false,
                }
            }
            StartedBlock::Other => OpenBlock::Ignored,
        };
        self.blocks.retain(|(i, _)| *i != index);
        self.blocks.push((index, open));
    }

    fn block_delta(&mut self, index: u64, delta: BlockDelta, out: &mut Vec<u8>) {
        let Some(pos) = self.blocks.iter().position(|(i, _)| *i == index) else {
            return;
        };
        let Some(&(_, open)) = self.blocks.get(pos) else {
            return;
        };
        match (delta, open) {
            (BlockDelta::TextDelta { text }, OpenBlock::Text) => self.send_content(text, out),
            (BlockDelta::ThinkingDelta { thinking }, OpenBlock::Thinking) => self.send(
                Delta {
                    reasoning_content: Some(thinking).filter(|t| !t.is_empty()),
                    ..Delta::default()
                },
                out,
            ),
            (BlockDelta::SignatureDelta { signature }, OpenBlock::Thinking) => self.send(
                Delta {
                    thinking_blocks: Some(vec![ThinkingBlock::Thinking {
                        thinking: String::new(),
                        signature: Some(signature),
                    }]),
                    ..Delta::default()
                },
                out,
            ),
            (BlockDelta::InputJsonDelta { partial_json }, OpenBlock::Tool { index: tool, .. })
                if !partial_json.is_empty() =>
            {
                if let Some(entry) = self.blocks.get_mut(pos) {
                    entry.1 = OpenBlock::Tool {
                        index: tool,
                        has_arguments: true,
                    };
                }
                self.send_tool_call(tool, None, None, partial_json, out);
            }
            (BlockDelta::InputJsonDelta { partial_json }, OpenBlock::Answer) => {
                self.send_content(partial_json, out)
            }
            _ => {}
        }
    }

    fn block_stop(&mut self, index: u64, out: &mut Vec<u8>) {
        let Some(pos) = self.blocks.iter().position(|(i, _)| *i == index) else {
            return;
        };
        let (_, block) = self.blocks.swap_remove(pos);
        // A tool called without arguments still gets valid JSON for them.
        if let OpenBlock::Tool {
            index: tool,
            has_arguments: false,
        } = block
        {
            self.send_tool_call(tool, None, None, "{}".to_owned(), out);
        }
    }

    fn message_stop(&mut self, out: &mut Vec<u8>) {
        // `message_delta` always says why the message stopped; a stream that did not, did not end.
        if self.stop_reason.is_none() {
            return self.fail(
                out,
                &invalid_answer(self.kind, "the stream ended without a stop_reason"),
            );
        }
        self.send_role(out);
        let finish = finish_reason(self.stop_reason.as_deref(), self.tool_calls > 0);
        let finished = self.chunk(vec![ChunkChoice {
            index: 0,
            delta: Delta::default(),
            finish_reason: Some(finish),
            logprobs: None,
        }]);
        write_sse_json(out, &finished);
        // Anthropic always reports usage; a stream that did not is reported as zero.
        let usage = Some(self.usage().unwrap_or_default()).filter(|_| self.include_usage);
        write_stream_end(out, usage, || self.chunk(Vec::new()));
        self.phase = Phase::Done;
    }

    fn send_role(&mut self, out: &mut Vec<u8>) {
        if !self.role_sent {
            self.role_sent = true;
            self.send(
                Delta {
                    role: Some("assistant"),
                    content: Some(String::new()),
                    ..Delta::default()
                },
                out,
            );
        }
    }

    fn send_content(&mut self, text: String, out: &mut Vec<u8>) {
        if !text.is_empty() {
            self.send(
                Delta {
                    content: Some(text),
                    ..Delta::default()
                },
                out,
            );
        }
    }

    fn send_tool_call(
        &mut self,
        index: u32,
        id: Option<String>,
        name: Option<String>,
        arguments: String,
        out: &mut Vec<u8>,
    ) {
        let first = id.is_some();
        self.send(
            Delta {
                tool_calls: Some(vec![ToolCallDelta {
                    index,
                    id,
                    kind: first.then_some("function"),
                    function: FunctionDelta {
                        name,
                        arguments: Some(arguments),
                    },
                }]),
                ..Delta::default()
            },
            out,
        );
    }

    /// One chunk with a delta; the role chunk always goes first.
    fn send(&mut self, delta: Delta, out: &mut Vec<u8>) {
        if delta == Delta::default() {
            return;
        }
        if delta.role.is_none() {
            self.send_role(out);
        }
        let chunk = self.chunk(vec![ChunkChoice {
            index: 0,
            delta,
            finish_reason: None,
            logprobs: None,
        }]);
        write_sse_json(out, &chunk);
    }

    fn chunk(&self, choices: Vec<ChunkChoice>) -> ChatChunk {
        ChatChunk::new(self.id.clone(), self.created, self.model.clone(), choices)
    }
}

/// Anthropic SSE → OpenAI SSE: the SSE framing around [`MessagesEvents`].
pub struct MessagesStream {
    parser: SseParser,
    events: MessagesEvents,
    pending: Vec<SseEvent>,
}

impl MessagesStream {
    pub fn new(kind: &'static str, ctx: &ResponseContext) -> Self {
        MessagesStream {
            parser: SseParser::new(MAX_EVENT_BYTES),
            events: MessagesEvents::new(kind, ctx),
            pending: Vec::new(),
        }
    }

    fn drain(&mut self, out: &mut Vec<u8>) {
        for event in std::mem::take(&mut self.pending) {
            // Events without data (a bare `event:` line) carry nothing.
            if !event.data.is_empty() {
                self.events.event(event.data.as_bytes(), out);
            }
        }
    }
}

impl StreamTranslator for MessagesStream {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        if !self.events.is_open() {
            return;
        }
        let pending = &mut self.pending;
        if self.parser.feed(chunk, |e| pending.push(e)).is_err() {
            self.drain(out);
            self.events.fail(out, &event_too_large());
            return;
        }
        self.drain(out);
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        if self.events.is_open() {
            let pending = &mut self.pending;
            self.parser.finish(|e| pending.push(e));
            self.drain(out);
        }
        self.events.finish(out);
    }

    fn usage(&self) -> Option<Usage> {
        self.events.usage()
    }

    fn failed(&self) -> bool {
        self.events.failed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::anthropic::{KIND, PROVIDER};
    use crate::providers::testing::*;
    use crate::testkit::test;

    fn chunk(id: &str, model: &str, delta: &str, finish: Option<&str>) -> String {
        let finish = finish.map_or("null".to_owned(), |f| format!("\"{f}\""));
        format!(
            "data: {{\"id\":\"{id}\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"{model}\",\
             \"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish},\"logprobs\":null}}]}}\n\n"
        )
    }

    fn usage_chunk(id: &str, model: &str, usage: &str) -> String {
        format!(
            "data: {{\"id\":\"{id}\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"{model}\",\
             \"choices\":[],\"usage\":{usage}}}\n\n"
        )
    }

    fn sse(events: &[(&str, &str)]) -> String {
        events
            .iter()
            .map(|(name, data)| format!("event: {name}\ndata: {data}\n\n"))
            .collect()
    }

    const START: (&str, &str) = (
        "message_start",
        r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-x","stop_reason":null,"usage":{"input_tokens":10,"cache_read_input_tokens":100,"cache_creation_input_tokens":20,"output_tokens":1}}}"#,
    );
    const PING: (&str, &str) = ("ping", r#"{"type": "ping"}"#);
    const STOP: (&str, &str) = ("message_stop", r#"{"type":"message_stop"}"#);

    fn text_stream() -> String {
        sse(&[
            START,
            (
                "content_block_start",
                r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            ),
            PING,
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"lo \"é\""}}"#,
            ),
            (
                "content_block_stop",
                r#"{"type":"content_block_stop","index":0}"#,
            ),
            (
                "message_delta",
                r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":7}}"#,
            ),
            STOP,
        ])
    }

    fn tool_stream() -> String {
        sse(&[
            START,
            (
                "content_block_start",
                r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Two cities."}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQB"}}"#,
            ),
            (
                "content_block_stop",
                r#"{"type":"content_block_stop","index":0}"#,
            ),
            (
                "content_block_start",
                r#"{"type":"content_block_start","index":1,"content_block":{"type":"redacted_thinking","data":"cmVk"}}"#,
            ),
            (
                "content_block_stop",
                r#"{"type":"content_block_stop","index":1}"#,
            ),
            (
                "content_block_start",
                r#"{"type":"content_block_start","index":2,"content_block":{"type":"text","text":""}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":2,"delta":{"type":"text_delta","text":"Checking."}}"#,
            ),
            (
                "content_block_stop",
                r#"{"type":"content_block_stop","index":2}"#,
            ),
            (
                "content_block_start",
                r#"{"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"toolu_1","name":"weather","input":{}}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":""}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"{\"city\": "}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"\"Paris\"}"}}"#,
            ),
            (
                "content_block_stop",
                r#"{"type":"content_block_stop","index":3}"#,
            ),
            (
                "content_block_start",
                r#"{"type":"content_block_start","index":4,"content_block":{"type":"tool_use","id":"toolu_2","name":"clock","input":{}}}"#,
            ),
            (
                "content_block_stop",
                r#"{"type":"content_block_stop","index":4}"#,
            ),
            (
                "message_delta",
                r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":33,"output_tokens_details":{"thinking_tokens":12}}}"#,
            ),
            STOP,
        ])
    }

    fn schema_stream() -> String {
        sse(&[
            START,
            (
                "content_block_start",
                r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_9","name":"person","input":{}}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"name\":"}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":" \"Ada\"}"}}"#,
            ),
            (
                "content_block_stop",
                r#"{"type":"content_block_stop","index":0}"#,
            ),
            (
                "message_delta",
                r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":9}}"#,
            ),
            STOP,
        ])
    }

    const USAGE_130_7: &str = r#"{"prompt_tokens":130,"completion_tokens":7,"total_tokens":137,"prompt_tokens_details":{"cached_tokens":100,"cache_creation_tokens":20},"completion_tokens_details":{"reasoning_tokens":0}}"#;

    struct StreamCase {
        name: &'static str,
        /// What Anthropic sends.
        input: String,
        include_usage: bool,
        /// The json_schema response format the client asked for, by name.
        json_schema: Option<&'static str>,
        /// What the client sees.
        expected: String,
    }

    fn stream_cases() -> Vec<StreamCase> {
        let c = |delta: &str| chunk("msg_1", "claude-x", delta, None);
        let role = c(r#"{"role":"assistant","content":""}"#);
        let text_body = [
            role.clone(),
            c(r#"{"content":"Hel"}"#),
            c(r#"{"content":"lo \"é\""}"#),
            chunk("msg_1", "claude-x", "{}", Some("stop")),
        ]
        .concat();
        vec![
            StreamCase {
                name: "text, no usage chunk unless asked",
                input: text_stream(),
                include_usage: false,
                json_schema: None,
                expected: [text_body.clone(), "data: [DONE]\n\n".into()].concat(),
            },
            StreamCase {
                name: "text with the usage chunk",
                input: text_stream(),
                include_usage: true,
                json_schema: None,
                expected: [
                    text_body,
                    usage_chunk("msg_1", "claude-x", USAGE_130_7),
                    "data: [DONE]\n\n".into(),
                ]
                .concat(),
            },
            StreamCase {
                name: "reasoning with its signature, redacted reasoning, text and two tool calls, one without arguments",
                input: tool_stream(),
                include_usage: false,
                json_schema: None,
                expected: [
                    role.clone(),
                    c(r#"{"reasoning_content":"Two cities."}"#),
                    c(r#"{"thinking_blocks":[{"type":"thinking","thinking":"","signature":"EqQB"}]}"#),
                    c(r#"{"thinking_blocks":[{"type":"redacted_thinking","data":"cmVk"}]}"#),
                    c(r#"{"content":"Checking."}"#),
                    c(r#"{"tool_calls":[{"index":0,"id":"toolu_1","type":"function","function":{"name":"weather","arguments":""}}]}"#),
                    c(r#"{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\": "}}]}"#),
                    c(r#"{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]}"#),
                    c(r#"{"tool_calls":[{"index":1,"id":"toolu_2","type":"function","function":{"name":"clock","arguments":""}}]}"#),
                    c(r#"{"tool_calls":[{"index":1,"function":{"arguments":"{}"}}]}"#),
                    chunk("msg_1", "claude-x", "{}", Some("tool_calls")),
                    "data: [DONE]\n\n".into(),
                ]
                .concat(),
            },
            StreamCase {
                name: "the json_schema answer streams as content and finishes as stop",
                input: schema_stream(),
                include_usage: false,
                json_schema: Some("person"),
                expected: [
                    role.clone(),
                    c(r#"{"content":"{\"name\":"}"#),
                    c(r#"{"content":" \"Ada\"}"}"#),
                    chunk("msg_1", "claude-x", "{}", Some("stop")),
                    "data: [DONE]\n\n".into(),
                ]
                .concat(),
            },
            StreamCase {
                name: "an error event mid-stream ends it with an OpenAI error and no [DONE]",
                input: sse(&[
                    START,
                    ("content_block_start", r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#),
                    ("content_block_delta", r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#),
                    ("error", r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#),
                    ("content_block_delta", r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"late"}}"#),
                    STOP,
                ]),
                include_usage: true,
                json_schema: None,
                expected: [
                    role.clone(),
                    c(r#"{"content":"Hi"}"#),
                    "data: {\"error\":{\"message\":\"Overloaded\",\"type\":\"upstream_error\",\"param\":null,\"code\":\"overloaded_error\"}}\n\n".into(),
                ]
                .concat(),
            },
            StreamCase {
                name: "a stream cut before message_stop ends with stream_interrupted",
                input: sse(&[
                    START,
                    ("content_block_start", r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#),
                    ("content_block_delta", r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#),
                ]),
                include_usage: true,
                json_schema: None,
                expected: [
                    role.clone(),
                    c(r#"{"content":"Hi"}"#),
                    "data: {\"error\":{\"message\":\"the provider's stream ended before it was complete\",\"type\":\"upstream_error\",\"param\":null,\"code\":\"stream_interrupted\"}}\n\n".into(),
                ]
                .concat(),
            },
            StreamCase {
                name: "no content block, end_turn: a silent turn, as in a JSON answer",
                input: sse(&[
                    START,
                    PING,
                    ("message_delta", r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":2}}"#),
                    STOP,
                ]),
                include_usage: false,
                json_schema: None,
                expected: [
                    role.clone(),
                    chunk("msg_1", "claude-x", "{}", Some("stop")),
                    "data: [DONE]\n\n".into(),
                ]
                .concat(),
            },
            StreamCase {
                name: "message_stop without a stop_reason did not end the answer",
                input: sse(&[
                    START,
                    ("content_block_start", r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#),
                    ("content_block_delta", r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#),
                    STOP,
                ]),
                include_usage: false,
                json_schema: None,
                expected: [
                    role.clone(),
                    c(r#"{"content":"Hi"}"#),
                    "data: {\"error\":{\"message\":\"the anthropic provider returned an invalid answer: the stream ended without a stop_reason\",\"type\":\"upstream_error\",\"param\":null,\"code\":\"invalid_upstream_response\"}}\n\n".into(),
                ]
                .concat(),
            },
            StreamCase {
                name: "a broken event is an invalid answer",
                input: "event: message_start\ndata: {\"type\":\"message_start\",\"message\":\n\n".to_owned(),
                include_usage: false,
                json_schema: None,
                expected: "data: {\"error\":{\"message\":\"the anthropic provider returned an invalid answer: EOF while parsing a value at line 1 column 34\",\"type\":\"upstream_error\",\"param\":null,\"code\":\"invalid_upstream_response\"}}\n\n".to_owned(),
            },
            StreamCase {
                name: "CRLF framing, no event lines, no message_start",
                input: "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"A\"}}\r\n\r\n\
                 data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\"},\"usage\":{\"output_tokens\":2}}\r\n\r\n\
                 data: {\"type\":\"message_stop\"}\r\n\r\n"
                    .to_owned(),
                include_usage: true,
                json_schema: None,
                expected: [
                    chunk("chatcmpl-req-1", "up-model", r#"{"role":"assistant","content":""}"#, None),
                    chunk("chatcmpl-req-1", "up-model", r#"{"content":"A"}"#, None),
                    chunk("chatcmpl-req-1", "up-model", "{}", Some("length")),
                    usage_chunk(
                        "chatcmpl-req-1",
                        "up-model",
                        r#"{"prompt_tokens":0,"completion_tokens":2,"total_tokens":2,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}"#,
                    ),
                    "data: [DONE]\n\n".into(),
                ]
                .concat(),
            },
        ]
    }

    #[test]
    fn streams_map_to_chunks_at_every_split() {
        for case in stream_cases() {
            let make = || {
                let base = ctx(case.include_usage);
                MessagesStream::new(
                    KIND,
                    &ResponseContext {
                        json_schema: case.json_schema,
                        ..base
                    },
                )
            };
            let (out, _) = run_stream_whole(make, case.input.as_bytes());
            assert_eq!(
                String::from_utf8(out).unwrap(),
                case.expected,
                "{}",
                case.name
            );
            assert_every_split_matches(make, case.input.as_bytes(), case.expected.as_bytes());
        }
    }

    #[test]
    fn stream_usage_comes_from_message_start_and_message_delta() {
        let cases = [
            UsageCase {
                name: "text",
                input: text_stream(),
                expected: Usage {
                    prompt_tokens: 130,
                    completion_tokens: 7,
                    cached_tokens: 100,
                    cache_write_tokens: 20,
                    reasoning_tokens: 0,
                },
            },
            UsageCase {
                name: "thinking and tools",
                input: tool_stream(),
                expected: Usage {
                    prompt_tokens: 130,
                    completion_tokens: 33,
                    cached_tokens: 100,
                    cache_write_tokens: 20,
                    reasoning_tokens: 12,
                },
            },
        ];
        let p = provider(PROVIDER);
        for case in cases {
            let (_, got) = run_stream_whole(
                || MessagesStream::new(KIND, &ctx(false)),
                case.input.as_bytes(),
            );
            assert_eq!(got, Some(case.expected), "{}", case.name);
            let mut t = p.chat_stream(&ctx(false));
            let mut out = Vec::new();
            t.feed(case.input.as_bytes(), &mut out);
            t.finish(&mut out);
            assert_eq!(t.usage(), Some(case.expected), "{}", case.name);
        }
    }

    struct UsageCase {
        name: &'static str,
        input: String,
        expected: Usage,
    }
}
