//! An OpenAI chat stream (as the provider translators write it) → Messages stream events:
//! `message_start` (with usage) and `ping`, then one block at a time —
//! `content_block_start`, its deltas, `content_block_stop` — for thinking (`thinking_delta`,
//! then the `signature_delta` that closes it), redacted thinking, text (`text_delta`) and
//! each tool call (`input_json_delta`); `message_delta` with the stop reason and the usage,
//! `message_stop`. An OpenAI error event, a broken chunk or a stream that ends before
//! `[DONE]` ends it with an `error` event instead.

use super::encode::{invalid, stop_reason, thinking_out, OpenAiUsage};
use super::error::{write_openai_stream_error, write_stream_error};
use super::wire::{BlockOut, DeltaOut, Event, MessageChange, MessageOut};
use super::Context;
use crate::api::chat::ThinkingBlock;
use crate::api::ApiError;
use crate::providers::{event_too_large, stream_interrupted};
use crate::stream::sse::{SseEvent, SseParser};
use crate::stream::MAX_EVENT_BYTES;
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::borrow::Cow;

/// A string of a chunk, borrowed from the event unless it holds escapes (every chunk of every
/// stream is read: allocations add up).
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> serde::de::Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(TextVisitor)
    }
}

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// A chunk of the OpenAI stream.
#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(default, borrow)]
    id: Option<Text<'a>>,
    #[serde(default, borrow)]
    model: Option<Text<'a>>,
    #[serde(default, borrow)]
    choices: Vec<ChunkChoice<'a>>,
    #[serde(default)]
    usage: Option<OpenAiUsage>,
    #[serde(default)]
    error: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct ChunkChoice<'a> {
    #[serde(default)]
    index: u32,
    #[serde(default, borrow)]
    delta: Option<ChunkDelta<'a>>,
    #[serde(default, borrow)]
    finish_reason: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct ChunkDelta<'a> {
    #[serde(default, borrow)]
    content: Option<Text<'a>>,
    #[serde(default, borrow)]
    refusal: Option<Text<'a>>,
    #[serde(default, borrow)]
    reasoning_content: Option<Text<'a>>,
    #[serde(default)]
    thinking_blocks: Option<Vec<ThinkingBlock>>,
    #[serde(default, borrow)]
    tool_calls: Option<Vec<ToolCallChunk<'a>>>,
}

#[derive(Deserialize)]
struct ToolCallChunk<'a> {
    #[serde(default)]
    index: u32,
    #[serde(default)]
    id: Option<String>,
    #[serde(default, borrow)]
    function: Option<FunctionChunk<'a>>,
}

#[derive(Deserialize)]
struct FunctionChunk<'a> {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, borrow)]
    arguments: Option<Text<'a>>,
}

/// What a content block holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Thinking,
    Text,
    Tool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Open,
    /// `message_stop` sent.
    Done,
    /// An `error` event sent; nothing follows it.
    Failed,
}

/// Turns OpenAI chat SSE into Messages events, whatever way its bytes are split.
pub struct StreamEncoder {
    parser: SseParser,
    events: Vec<SseEvent>,
    context: Context,
    started: bool,
    next_index: u32,
    /// The block being written, and its index.
    open: Option<(Kind, u32)>,
    /// OpenAI tool call index → its `tool_use` block's index.
    tools: Vec<(u32, u32)>,
    finish_reason: Option<String>,
    usage: Option<OpenAiUsage>,
    phase: Phase,
}

impl StreamEncoder {
    pub fn new(ctx: &Context) -> Self {
        StreamEncoder {
            parser: SseParser::new(MAX_EVENT_BYTES),
            events: Vec::new(),
            context: Context {
                untranslatable: Vec::new(),
                ..ctx.clone()
            },
            started: false,
            next_index: 0,
            open: None,
            tools: Vec::new(),
            finish_reason: None,
            usage: None,
            phase: Phase::Open,
        }
    }

    fn drain(&mut self, out: &mut Vec<u8>) {
        for event in std::mem::take(&mut self.events) {
            if self.phase == Phase::Open && !event.data.is_empty() {
                self.event(&event.data, out);
            }
        }
    }

    fn event(&mut self, data: &str, out: &mut Vec<u8>) {
        if data == "[DONE]" {
            self.stop(out);
            return;
        }
        let chunk: Chunk = match serde_json::from_str(data) {
            Ok(chunk) => chunk,
            Err(e) => return self.fail(&invalid(e), out),
        };
        if chunk.error.is_some() {
            write_openai_stream_error(data, out);
            self.phase = Phase::Failed;
            return;
        }
        self.start(chunk.id.as_deref(), chunk.model.as_deref(), out);
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage);
        }
        for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
            if let Some(delta) = choice.delta {
                self.delta(delta, out);
            }
            if let Some(reason) = choice.finish_reason {
                self.finish_reason = Some(reason.0.into_owned());
            }
        }
    }

    /// `message_start` and a `ping`, before anything else.
    fn start(&mut self, id: Option<&str>, model: Option<&str>, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        Event::MessageStart {
            message: MessageOut::new(id.unwrap_or_default(), model.unwrap_or_default()),
        }
        .write(out);
        Event::Ping.write(out);
    }

    fn delta(&mut self, delta: ChunkDelta, out: &mut Vec<u8>) {
        let blocks = delta.thinking_blocks.unwrap_or_default();
        // Reasoning text comes in `reasoning_content`; servers that put it in the blocks
        // only are read too.
        let reasoning = delta
            .reasoning_content
            .filter(|r| !r.is_empty())
            .or_else(|| {
                let text: String = blocks
                    .iter()
                    .filter_map(|b| match b {
                        ThinkingBlock::Thinking { thinking, .. } => Some(thinking.as_str()),
                        ThinkingBlock::RedactedThinking { .. } => None,
                    })
                    .collect();
                (!text.is_empty()).then_some(Text(Cow::Owned(text)))
            });
        if let Some(thinking) = reasoning {
            if !self.context.omit_thinking {
                let index = self.block(Kind::Thinking, out);
                self.delta_event(
                    index,
                    DeltaOut::Thinking {
                        thinking: &thinking,
                    },
                    out,
                );
            }
        }
        for block in blocks {
            match block {
                ThinkingBlock::Thinking {
                    signature: Some(signature),
                    ..
                } if !signature.is_empty() => {
                    let index = self.block(Kind::Thinking, out);
                    self.delta_event(
                        index,
                        DeltaOut::Signature {
                            signature: &signature,
                        },
                        out,
                    );
                    self.close(out);
                }
                ThinkingBlock::Thinking { .. } => {}
                redacted @ ThinkingBlock::RedactedThinking { .. } => {
                    if let Some(block) = thinking_out(redacted, &self.context) {
                        self.close(out);
                        let index = self.next();
                        Event::ContentBlockStart {
                            index,
                            content_block: block,
                        }
                        .write(out);
                        Event::ContentBlockStop { index }.write(out);
                    }
                }
            }
        }
        for text in [delta.content, delta.refusal].into_iter().flatten() {
            if !text.is_empty() {
                let index = self.block(Kind::Text, out);
                self.delta_event(index, DeltaOut::Text { text: &text }, out);
            }
        }
        for call in delta.tool_calls.into_iter().flatten() {
            let (name, arguments) = match call.function {
                Some(f) => (f.name, f.arguments),
                None => (None, None),
            };
            let index = match self.tools.iter().find(|(openai, _)| *openai == call.index) {
                Some(&(_, index)) if self.open == Some((Kind::Tool, index)) => index,
                // Its block was closed when other output began, and blocks do not reopen: a
                // late delta is dropped, as the Responses encoder drops one.
                Some(_) => continue,
                None => {
                    self.close(out);
                    let index = self.next();
                    self.tools.push((call.index, index));
                    self.open = Some((Kind::Tool, index));
                    Event::ContentBlockStart {
                        index,
                        content_block: BlockOut::ToolUse {
                            id: call.id.unwrap_or_else(|| format!("toolu_{index}")),
                            name: name.unwrap_or_default(),
                            input: Value::Object(Map::new()),
                        },
                    }
                    .write(out);
                    index
                }
            };
            if let Some(partial_json) = arguments.filter(|a| !a.is_empty()) {
                self.delta_event(
                    index,
                    DeltaOut::InputJson {
                        partial_json: &partial_json,
                    },
                    out,
                );
            }
        }
    }

    /// The index of the open thinking or text block, opening one (and closing the block
    /// before) if need be.
    fn block(&mut self, kind: Kind, out: &mut Vec<u8>) -> u32 {
        match self.open {
            Some((open, index)) if open == kind => return index,
            Some(_) => self.close(out),
            None => {}
        }
        let index = self.next();
        let content_block = match kind {
            Kind::Thinking => BlockOut::Thinking {
                thinking: String::new(),
                signature: String::new(),
            },
            Kind::Text | Kind::Tool => BlockOut::Text {
                text: String::new(),
            },
        };
        Event::ContentBlockStart {
            index,
            content_block,
        }
        .write(out);
        self.open = Some((kind, index));
        index
    }

    fn next(&mut self) -> u32 {
        let index = self.next_index;
        self.next_index += 1;
        index
    }

    fn delta_event(&self, index: u32, delta: DeltaOut, out: &mut Vec<u8>) {
        delta.write_event(index, out);
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if let Some((_, index)) = self.open.take() {
            Event::ContentBlockStop { index }.write(out);
        }
    }

    /// `[DONE]`: the last block closes, `message_delta` gives the stop reason and usage.
    fn stop(&mut self, out: &mut Vec<u8>) {
        self.start(None, None, out);
        self.close(out);
        Event::MessageDelta {
            delta: MessageChange {
                stop_reason: stop_reason(self.finish_reason.as_deref(), !self.tools.is_empty()),
                stop_sequence: None,
            },
            usage: self.usage.map(|u| u.anthropic()).unwrap_or_default(),
        }
        .write(out);
        Event::MessageStop.write(out);
        self.phase = Phase::Done;
    }

    fn fail(&mut self, error: &ApiError, out: &mut Vec<u8>) {
        write_stream_error(error, out);
        self.phase = Phase::Failed;
    }
}

impl crate::inputs::StreamEncoder for StreamEncoder {
    fn feed(&mut self, openai: &[u8], out: &mut Vec<u8>) {
        if self.phase != Phase::Open {
            return;
        }
        let events = &mut self.events;
        let parsed = self.parser.feed(openai, |e| events.push(e));
        self.drain(out);
        if parsed.is_err() && self.phase == Phase::Open {
            self.fail(&event_too_large(), out);
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        if self.phase == Phase::Open {
            let events = &mut self.events;
            self.parser.finish(|e| events.push(e));
            self.drain(out);
        }
        if self.phase == Phase::Open {
            self.fail(&stream_interrupted(), out);
        }
    }

    fn complete(&self) -> bool {
        self.phase == Phase::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inputs::StreamEncoder as _;
    use crate::testkit::test;
    use serde_json::json;

    /// An OpenAI chunk with one delta (and a finish reason).
    fn chunk(delta: Value, finish: Option<&str>) -> String {
        let chunk = json!({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"up-model",
            "choices":[{"index":0,"delta":delta,"finish_reason":finish,"logprobs":null}]});
        format!("data: {chunk}\n\n")
    }

    fn usage(usage: Value) -> String {
        let chunk = json!({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"up-model",
            "choices":[],"usage":usage});
        format!("data: {chunk}\n\n")
    }

    const DONE: &str = "data: [DONE]\n\n";

    fn run(ctx: &Context, input: &[u8], split: Option<usize>) -> (String, bool) {
        let mut encoder = StreamEncoder::new(ctx);
        let mut out = Vec::new();
        match split {
            Some(at) => {
                let (a, b) = input.split_at(at);
                encoder.feed(a, &mut out);
                encoder.feed(b, &mut out);
            }
            None => {
                for byte in input {
                    encoder.feed(std::slice::from_ref(byte), &mut out);
                }
            }
        }
        encoder.finish(&mut out);
        (String::from_utf8(out).unwrap(), encoder.complete())
    }

    /// The events written, as (event name, data).
    fn events(out: &str) -> Vec<(String, Value)> {
        out.split_terminator("\n\n")
            .map(|event| {
                let (name, data) = event.split_once('\n').unwrap();
                let name = name.strip_prefix("event: ").unwrap().to_owned();
                let data: Value =
                    serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
                assert_eq!(data["type"], name, "{event}");
                (name, data)
            })
            .collect()
    }

    fn start() -> Vec<Value> {
        vec![
            json!({"type":"message_start","message":{"id":"chatcmpl-1","type":"message","role":"assistant",
                "model":"up-model","content":[],"stop_reason":null,"stop_sequence":null,
                "usage":{"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0}}}),
            json!({"type":"ping"}),
        ]
    }

    fn block_start(index: u32, block: Value) -> Value {
        json!({"type":"content_block_start","index":index,"content_block":block})
    }

    fn delta(index: u32, delta: Value) -> Value {
        json!({"type":"content_block_delta","index":index,"delta":delta})
    }

    fn stop(index: u32) -> Value {
        json!({"type":"content_block_stop","index":index})
    }

    fn end(stop_reason: &str, usage: Value) -> Vec<Value> {
        vec![
            json!({"type":"message_delta","delta":{"stop_reason":stop_reason,"stop_sequence":null},"usage":usage}),
            json!({"type":"message_stop"}),
        ]
    }

    fn error(kind: &str, message: &str) -> Value {
        json!({"type":"error","error":{"type":kind,"message":message}})
    }

    struct Case {
        name: &'static str,
        omit_thinking: bool,
        /// The OpenAI stream.
        input: String,
        /// The Messages events.
        expected: Vec<Value>,
        complete: bool,
    }

    fn cases() -> Vec<Case> {
        let usage_130 = usage(
            json!({"prompt_tokens":130,"completion_tokens":7,"total_tokens":137,
            "prompt_tokens_details":{"cached_tokens":100,"cache_creation_tokens":20},"completion_tokens_details":{"reasoning_tokens":0}}),
        );
        let anthropic_130 = json!({"input_tokens":10,"cache_creation_input_tokens":20,"cache_read_input_tokens":100,"output_tokens":7});
        let thinking_stream = [
            chunk(json!({"role":"assistant","content":""}), None),
            chunk(json!({"reasoning_content":"Two "}), None),
            chunk(json!({"reasoning_content":"cities."}), None),
            chunk(
                json!({"thinking_blocks":[{"type":"thinking","thinking":"","signature":"EqQB"}]}),
                None,
            ),
            chunk(json!({"reasoning_content":"unsigned"}), None),
            chunk(
                json!({"thinking_blocks":[{"type":"redacted_thinking","data":"cmVk"}]}),
                None,
            ),
            chunk(json!({"content":"Checking."}), None),
        ]
        .concat();
        vec![
            Case {
                name: "text, usage in message_delta with Anthropic's meaning",
                omit_thinking: false,
                input: [
                    chunk(json!({"role":"assistant","content":""}), None),
                    chunk(json!({"content":"Hel"}), None),
                    chunk(json!({"content":"lo \"é\""}), None),
                    chunk(json!({}), Some("stop")),
                    usage_130.clone(),
                    DONE.to_owned(),
                ]
                .concat(),
                expected: [
                    start(),
                    vec![
                        block_start(0, json!({"type":"text","text":""})),
                        delta(0, json!({"type":"text_delta","text":"Hel"})),
                        delta(0, json!({"type":"text_delta","text":"lo \"é\""})),
                        stop(0),
                    ],
                    end("end_turn", anthropic_130.clone()),
                ]
                .concat(),
                complete: true,
            },
            Case {
                name: "thinking closed by its signature, unsigned thinking, redacted thinking, text, two tool calls",
                omit_thinking: false,
                input: [
                    thinking_stream.clone(),
                    chunk(json!({"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"weather","arguments":""}}]}), None),
                    chunk(json!({"tool_calls":[{"index":0,"function":{"arguments":"{\"city\": "}}]}), None),
                    chunk(json!({"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]}), None),
                    chunk(json!({"tool_calls":[{"index":1,"id":"c2","type":"function","function":{"name":"clock","arguments":"{}"}}]}), None),
                    chunk(json!({}), Some("tool_calls")),
                    usage(json!({"prompt_tokens":5,"completion_tokens":33,"completion_tokens_details":{"reasoning_tokens":12}})),
                    DONE.to_owned(),
                ]
                .concat(),
                expected: [
                    start(),
                    vec![
                        block_start(0, json!({"type":"thinking","thinking":"","signature":""})),
                        delta(0, json!({"type":"thinking_delta","thinking":"Two "})),
                        delta(0, json!({"type":"thinking_delta","thinking":"cities."})),
                        delta(0, json!({"type":"signature_delta","signature":"EqQB"})),
                        stop(0),
                        block_start(1, json!({"type":"thinking","thinking":"","signature":""})),
                        delta(1, json!({"type":"thinking_delta","thinking":"unsigned"})),
                        stop(1),
                        block_start(2, json!({"type":"redacted_thinking","data":"cmVk"})),
                        stop(2),
                        block_start(3, json!({"type":"text","text":""})),
                        delta(3, json!({"type":"text_delta","text":"Checking."})),
                        stop(3),
                        block_start(4, json!({"type":"tool_use","id":"c1","name":"weather","input":{}})),
                        delta(4, json!({"type":"input_json_delta","partial_json":"{\"city\": "})),
                        delta(4, json!({"type":"input_json_delta","partial_json":"\"Paris\"}"})),
                        stop(4),
                        block_start(5, json!({"type":"tool_use","id":"c2","name":"clock","input":{}})),
                        delta(5, json!({"type":"input_json_delta","partial_json":"{}"})),
                        stop(5),
                    ],
                    end("tool_use", json!({"input_tokens":5,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,
                        "output_tokens":33,"output_tokens_details":{"thinking_tokens":12}})),
                ]
                .concat(),
                complete: true,
            },
            Case {
                name: "thinking not to be displayed: signed blocks keep their signature only",
                omit_thinking: true,
                input: [thinking_stream, chunk(json!({}), Some("length")), DONE.to_owned()].concat(),
                expected: [
                    start(),
                    vec![
                        block_start(0, json!({"type":"thinking","thinking":"","signature":""})),
                        delta(0, json!({"type":"signature_delta","signature":"EqQB"})),
                        stop(0),
                        block_start(1, json!({"type":"redacted_thinking","data":"cmVk"})),
                        stop(1),
                        block_start(2, json!({"type":"text","text":""})),
                        delta(2, json!({"type":"text_delta","text":"Checking."})),
                        stop(2),
                    ],
                    end("max_tokens", json!({"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0})),
                ]
                .concat(),
                complete: true,
            },
            Case {
                name: "a delta of a call whose block was closed is dropped",
                omit_thinking: false,
                input: [
                    chunk(json!({"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"weather","arguments":"{\"city\": "}}]}), None),
                    chunk(json!({"tool_calls":[{"index":1,"id":"c2","type":"function","function":{"name":"clock","arguments":"{}"}}]}), None),
                    chunk(json!({"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]}), None),
                    chunk(json!({}), Some("tool_calls")),
                    DONE.to_owned(),
                ]
                .concat(),
                expected: [
                    start(),
                    vec![
                        block_start(0, json!({"type":"tool_use","id":"c1","name":"weather","input":{}})),
                        delta(0, json!({"type":"input_json_delta","partial_json":"{\"city\": "})),
                        stop(0),
                        block_start(1, json!({"type":"tool_use","id":"c2","name":"clock","input":{}})),
                        delta(1, json!({"type":"input_json_delta","partial_json":"{}"})),
                        stop(1),
                    ],
                    end("tool_use", json!({"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0})),
                ]
                .concat(),
                complete: true,
            },
            Case {
                name: "an OpenAI error event ends the stream with an error event",
                omit_thinking: false,
                input: [
                    chunk(json!({"content":"Hi"}), None),
                    "data: {\"error\":{\"message\":\"Overloaded\",\"type\":\"upstream_error\",\"param\":null,\"code\":\"overloaded_error\"}}\n\n".to_owned(),
                    chunk(json!({"content":"late"}), None),
                ]
                .concat(),
                expected: [
                    start(),
                    vec![
                        block_start(0, json!({"type":"text","text":""})),
                        delta(0, json!({"type":"text_delta","text":"Hi"})),
                        error("overloaded_error", "Overloaded"),
                    ],
                ]
                .concat(),
                complete: false,
            },
            Case {
                name: "a stream cut before [DONE]",
                omit_thinking: false,
                input: [chunk(json!({"content":"Hi"}), None), chunk(json!({}), Some("stop"))].concat(),
                expected: [
                    start(),
                    vec![
                        block_start(0, json!({"type":"text","text":""})),
                        delta(0, json!({"type":"text_delta","text":"Hi"})),
                        error("api_error", "the provider's stream ended before it was complete"),
                    ],
                ]
                .concat(),
                complete: false,
            },
            Case {
                name: "a broken chunk",
                omit_thinking: false,
                input: "data: {\"choices\":[\n\n".to_owned(),
                expected: vec![error(
                    "api_error",
                    "the provider's answer cannot be given as a Messages answer: EOF while parsing a list at line 1 column 12",
                )],
                complete: false,
            },
            Case {
                name: "an empty answer",
                omit_thinking: false,
                input: DONE.to_owned(),
                expected: [
                    vec![
                        json!({"type":"message_start","message":{"id":"","type":"message","role":"assistant","model":"",
                            "content":[],"stop_reason":null,"stop_sequence":null,
                            "usage":{"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0}}}),
                        json!({"type":"ping"}),
                    ],
                    end("end_turn", json!({"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0})),
                ]
                .concat(),
                complete: true,
            },
        ]
    }

    #[test]
    fn streams_encode_to_messages_events_at_every_split() {
        for case in cases() {
            let ctx = Context {
                omit_thinking: case.omit_thinking,
                ..Context::default()
            };
            let input = case.input.as_bytes();
            let (whole, complete) = run(&ctx, input, Some(input.len()));
            let got: Vec<Value> = events(&whole).into_iter().map(|(_, data)| data).collect();
            assert_eq!(got, case.expected, "{}", case.name);
            assert_eq!(complete, case.complete, "{}", case.name);
            for at in 0..input.len() {
                assert_eq!(
                    run(&ctx, input, Some(at)).0,
                    whole,
                    "{}: split at {at}",
                    case.name
                );
            }
            assert_eq!(
                run(&ctx, input, None).0,
                whole,
                "{}: byte by byte",
                case.name
            );
        }
    }
}
