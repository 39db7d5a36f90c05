//! Cohere's typed SSE events → OpenAI chunks.

use super::response::finish_reason;
use super::wire::{EndDelta, MessageDelta, WireEvent};
use super::KIND;
use crate::api::chat::{ChatChunk, ChunkChoice, Delta, FinishReason, FunctionDelta, ToolCallDelta};
use crate::api::ApiError;
use crate::providers::{
    event_too_large, invalid_answer, stream_interrupted, write_sse_error, write_sse_json,
    write_stream_end, ResponseContext, StreamTranslator,
};
use crate::stream::sse::{SseEvent, SseParser};
use crate::stream::MAX_EVENT_BYTES;
use crate::usage::Usage;
use serde::Deserialize;
use serde_json::value::RawValue;

/// Cohere's typed events (`event: <type>` lines and a `type` field in the data) to OpenAI
/// chunks. Tool calls arrive one after another; each gets the next OpenAI index.
pub struct CohereStream {
    parser: SseParser,
    events: Vec<SseEvent>,
    id: String,
    created: u64,
    model: String,
    include_usage: bool,
    started: bool,
    tool_calls: u32,
    /// Answer text went out (a plan or thinking is not an answer).
    has_text: bool,
    usage: Option<Usage>,
    done: bool,
    errored: bool,
}

impl CohereStream {
    pub(super) fn new(ctx: &ResponseContext) -> Self {
        CohereStream {
            parser: SseParser::new(MAX_EVENT_BYTES),
            events: Vec::new(),
            id: format!("chatcmpl-{}", ctx.request_id),
            created: ctx.created,
            model: ctx.upstream_model.to_owned(),
            include_usage: ctx.include_usage,
            started: false,
            tool_calls: 0,
            has_text: false,
            usage: None,
            done: false,
            errored: false,
        }
    }

    fn chunk(&self, delta: Delta, finish_reason: Option<FinishReason>) -> ChatChunk {
        let choice = ChunkChoice {
            index: 0,
            delta,
            finish_reason,
            logprobs: None,
        };
        ChatChunk::new(
            self.id.clone(),
            self.created,
            self.model.clone(),
            vec![choice],
        )
    }

    /// Sends a delta, preceded by the role chunk when it is the first.
    fn send(&mut self, delta: Delta, out: &mut Vec<u8>) {
        self.start(out);
        write_sse_json(out, &self.chunk(delta, None));
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            self.started = true;
            let role = Delta {
                role: Some("assistant"),
                content: Some(String::new()),
                ..Delta::default()
            };
            write_sse_json(out, &self.chunk(role, None));
        }
    }

    fn fail(&mut self, error: ApiError, out: &mut Vec<u8>) {
        self.errored = true;
        write_sse_error(out, &error);
    }

    fn emit(&mut self, out: &mut Vec<u8>) {
        for event in std::mem::take(&mut self.events) {
            if self.done || self.errored {
                break;
            }
            if let Err(e) = self.event(&event, out) {
                self.fail(e, out);
            }
        }
    }

    fn event(&mut self, event: &SseEvent, out: &mut Vec<u8>) -> Result<(), ApiError> {
        let data = event.data.trim();
        if data.is_empty() || data == "[DONE]" {
            // `[DONE]` follows `message-end`, which already closed the client stream.
            return Ok(());
        }
        if !data.starts_with('{') {
            return Err(invalid_answer(KIND, "an event that is not a JSON object"));
        }
        let parsed: WireEvent = serde_json::from_str(data).map_err(|e| invalid_answer(KIND, &e))?;
        let Some(kind) = parsed.kind.as_deref().or(event.event.as_deref()) else {
            return Err(invalid_answer(KIND, "an event without a type"));
        };
        match kind {
            "message-start" => {
                if let Some(id) = parsed.id.filter(|_| !self.started) {
                    self.id = id;
                }
                self.start(out);
            }
            "content-start" | "content-delta" | "tool-plan-delta" => {
                let message = delta::<MessageDelta>(parsed.delta)?
                    .message
                    .unwrap_or_default();
                let content = message.content.unwrap_or_default();
                let reasoning = match (content.thinking, message.tool_plan) {
                    (Some(a), Some(b)) => Some(a + &b),
                    (a, b) => a.or(b),
                };
                let delta = Delta {
                    content: content.text.filter(|t| !t.is_empty()),
                    reasoning_content: reasoning.filter(|t| !t.is_empty()),
                    ..Delta::default()
                };
                self.has_text |= delta.content.is_some();
                if delta.content.is_some() || delta.reasoning_content.is_some() {
                    self.send(delta, out);
                } else {
                    self.start(out);
                }
            }
            "tool-call-start" => {
                let call = delta::<MessageDelta>(parsed.delta)?
                    .message
                    .and_then(|m| m.tool_calls)
                    .unwrap_or_default();
                let function = call.function.unwrap_or_default();
                let index = self.tool_calls;
                self.tool_calls += 1;
                self.send(
                    tool_delta(
                        index,
                        Some(call.id.unwrap_or_else(|| format!("call_{index}"))),
                        FunctionDelta {
                            name: Some(function.name.unwrap_or_default()),
                            arguments: Some(function.arguments.unwrap_or_default()),
                        },
                    ),
                    out,
                );
            }
            "tool-call-delta" => {
                let Some(index) = self.tool_calls.checked_sub(1) else {
                    return Err(invalid_answer(
                        KIND,
                        "tool-call arguments came before a tool call started",
                    ));
                };
                let arguments = delta::<MessageDelta>(parsed.delta)?
                    .message
                    .and_then(|m| m.tool_calls)
                    .and_then(|c| c.function)
                    .and_then(|f| f.arguments)
                    .filter(|a| !a.is_empty());
                if let Some(arguments) = arguments {
                    let function = FunctionDelta {
                        name: None,
                        arguments: Some(arguments),
                    };
                    self.send(tool_delta(index, None, function), out);
                }
            }
            "message-end" => {
                let end = delta::<EndDelta>(parsed.delta)?;
                if let Some(usage) = end.usage {
                    self.usage = Some(usage.normalise());
                }
                if let Some(message) = end.error.filter(|m| !m.is_empty()) {
                    return Err(ApiError::upstream(message).with_code("provider_error"));
                }
                let said = self.has_text || self.tool_calls > 0;
                let finish = finish_reason(end.finish_reason.as_deref(), said)?;
                self.start(out);
                write_sse_json(out, &self.chunk(Delta::default(), Some(finish)));
                let usage = self.usage.filter(|_| self.include_usage);
                write_stream_end(out, usage, || self.chunk(Delta::default(), None));
                self.done = true;
            }
            // content-end, tool-call-end, citations, debug and events added later.
            _ => {}
        }
        Ok(())
    }
}

fn tool_delta(index: u32, id: Option<String>, function: FunctionDelta) -> Delta {
    Delta {
        tool_calls: Some(vec![ToolCallDelta {
            index,
            kind: id.as_ref().map(|_| "function"),
            id,
            function,
        }]),
        ..Delta::default()
    }
}

/// Parses an event's `delta` (absent or `null` is an empty one).
fn delta<'de, T: Deserialize<'de> + Default>(raw: Option<&'de RawValue>) -> Result<T, ApiError> {
    match raw {
        None => Ok(T::default()),
        Some(raw) if raw.get() == "null" => Ok(T::default()),
        Some(raw) => serde_json::from_str(raw.get()).map_err(|e| invalid_answer(KIND, &e)),
    }
}

impl StreamTranslator for CohereStream {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        if self.done || self.errored {
            return;
        }
        let events = &mut self.events;
        let parsed = self.parser.feed(chunk, |e| events.push(e));
        self.emit(out);
        if parsed.is_err() && !(self.done || self.errored) {
            self.fail(event_too_large(), out);
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        if !(self.done || self.errored) {
            let events = &mut self.events;
            self.parser.finish(|e| events.push(e));
            self.emit(out);
        }
        if !(self.done || self.errored) {
            self.fail(stream_interrupted(), out);
        }
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }

    fn failed(&self) -> bool {
        self.errored
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::testing::*;
    use crate::testkit::test;
    use serde_json::Value;

    fn stream(include_usage: bool) -> impl Fn() -> CohereStream {
        move || CohereStream::new(&ctx(include_usage))
    }

    /// Cohere's framing: an `event:` line and the type repeated in the data, then `[DONE]`.
    const TEXT_STREAM: &str = "event: message-start\n\
data: {\"id\":\"co-9\",\"type\":\"message-start\",\"delta\":{\"message\":{\"role\":\"assistant\",\"content\":[],\"tool_plan\":\"\",\"tool_calls\":[],\"citations\":[]}}}\n\n\
event: content-start\n\
data: {\"type\":\"content-start\",\"index\":0,\"delta\":{\"message\":{\"content\":{\"type\":\"text\",\"text\":\"\"}}}}\n\n\
event: content-delta\n\
data: {\"type\":\"content-delta\",\"index\":0,\"delta\":{\"message\":{\"content\":{\"text\":\"Hel\"}}}}\n\n\
event: content-delta\n\
data: {\"type\":\"content-delta\",\"index\":0,\"delta\":{\"message\":{\"content\":{\"text\":\"lo \\u00e9\\\"\"}}}}\n\n\
event: content-end\n\
data: {\"type\":\"content-end\",\"index\":0}\n\n\
event: message-end\n\
data: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"COMPLETE\",\"usage\":{\"billed_units\":{\"input_tokens\":3,\"output_tokens\":2},\"tokens\":{\"input_tokens\":9,\"output_tokens\":2}}}}\n\n\
data: [DONE]\n\n";

    const CHUNK: &str = "data: {\"id\":\"co-9\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"up-model\",\"choices\":[{\"index\":0,";

    #[test]
    fn text_stream_at_every_split() {
        for include_usage in [false, true] {
            let mut expected = [
                "\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null,\"logprobs\":null}]}\n\n",
                "\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null,\"logprobs\":null}]}\n\n",
                "\"delta\":{\"content\":\"lo é\\\"\"},\"finish_reason\":null,\"logprobs\":null}]}\n\n",
                "\"delta\":{},\"finish_reason\":\"stop\",\"logprobs\":null}]}\n\n",
            ]
            .map(|tail| format!("{CHUNK}{tail}"))
            .concat();
            if include_usage {
                expected.push_str("data: {\"id\":\"co-9\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"up-model\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,\"total_tokens\":11,\"prompt_tokens_details\":{\"cached_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":0}}}\n\n");
            }
            expected.push_str("data: [DONE]\n\n");
            assert_every_split_matches(
                stream(include_usage),
                TEXT_STREAM.as_bytes(),
                expected.as_bytes(),
            );
            let (_, usage) = run_stream_whole(stream(include_usage), TEXT_STREAM.as_bytes());
            assert_eq!(usage.unwrap().total_tokens(), 11);
        }
    }

    #[test]
    fn type_from_data_or_event_line_alone() {
        let expected = run_stream_whole(stream(false), TEXT_STREAM.as_bytes()).0;
        let data_only: String = TEXT_STREAM
            .lines()
            .filter(|l| !l.starts_with("event:"))
            .map(|l| format!("{l}\n"))
            .collect();
        let names_only = TEXT_STREAM
            .replace(",\"type\":\"message-start\"", "")
            .replace("{\"type\":\"", "{\"kind\":\"");
        for input in [data_only, names_only] {
            assert_every_split_matches(stream(false), input.as_bytes(), &expected);
        }
    }

    const TOOL_STREAM: &str = "event: message-start\n\
data: {\"id\":\"co-t\",\"type\":\"message-start\",\"delta\":{\"message\":{\"role\":\"assistant\"}}}\n\n\
event: tool-plan-delta\n\
data: {\"type\":\"tool-plan-delta\",\"delta\":{\"message\":{\"tool_plan\":\"I will check\"}}}\n\n\
event: tool-call-start\n\
data: {\"type\":\"tool-call-start\",\"index\":0,\"delta\":{\"message\":{\"tool_calls\":{\"id\":\"get_weather_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}}}}\n\n\
event: tool-call-delta\n\
data: {\"type\":\"tool-call-delta\",\"index\":0,\"delta\":{\"message\":{\"tool_calls\":{\"function\":{\"arguments\":\"{\\\"city\\\":\"}}}}}\n\n\
event: tool-call-delta\n\
data: {\"type\":\"tool-call-delta\",\"index\":0,\"delta\":{\"message\":{\"tool_calls\":{\"function\":{\"arguments\":\"\\\"Paris\\\"}\"}}}}}\n\n\
event: tool-call-end\n\
data: {\"type\":\"tool-call-end\",\"index\":0}\n\n\
event: tool-call-start\n\
data: {\"type\":\"tool-call-start\",\"index\":1,\"delta\":{\"message\":{\"tool_calls\":{\"id\":\"now_2\",\"type\":\"function\",\"function\":{\"name\":\"now\",\"arguments\":\"{}\"}}}}}\n\n\
event: tool-call-end\n\
data: {\"type\":\"tool-call-end\",\"index\":1}\n\n\
event: message-end\n\
data: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"TOOL_CALL\",\"usage\":{\"tokens\":{\"input_tokens\":20,\"output_tokens\":8}}}}\n\n\
data: [DONE]\n\n";

    #[test]
    fn tool_call_stream_at_every_split() {
        let head = "data: {\"id\":\"co-t\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"up-model\",\"choices\":[{\"index\":0,";
        let expected = [
            "\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null,\"logprobs\":null}]}\n\n",
            "\"delta\":{\"reasoning_content\":\"I will check\"},\"finish_reason\":null,\"logprobs\":null}]}\n\n",
            "\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"get_weather_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}]},\"finish_reason\":null,\"logprobs\":null}]}\n\n",
            "\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"city\\\":\"}}]},\"finish_reason\":null,\"logprobs\":null}]}\n\n",
            "\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"Paris\\\"}\"}}]},\"finish_reason\":null,\"logprobs\":null}]}\n\n",
            "\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"now_2\",\"type\":\"function\",\"function\":{\"name\":\"now\",\"arguments\":\"{}\"}}]},\"finish_reason\":null,\"logprobs\":null}]}\n\n",
            "\"delta\":{},\"finish_reason\":\"tool_calls\",\"logprobs\":null}]}\n\n",
        ]
        .map(|tail| format!("{head}{tail}"))
        .concat()
            + "data: [DONE]\n\n";
        assert_every_split_matches(stream(false), TOOL_STREAM.as_bytes(), expected.as_bytes());
        let (_, usage) = run_stream_whole(stream(false), TOOL_STREAM.as_bytes());
        assert_eq!(usage.unwrap().total_tokens(), 28);
    }

    #[test]
    fn thinking_streams_as_reasoning() {
        let input = "data: {\"type\":\"content-start\",\"index\":0,\"delta\":{\"message\":{\"content\":{\"type\":\"thinking\",\"thinking\":\"\"}}}}\n\n\
data: {\"type\":\"content-delta\",\"index\":0,\"delta\":{\"message\":{\"content\":{\"thinking\":\"hmm\"}}}}\n\n\
data: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"MAX_TOKENS\"}}\n\n";
        let head = "data: {\"id\":\"chatcmpl-req-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"up-model\",\"choices\":[{\"index\":0,";
        let expected = [
            "\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null,\"logprobs\":null}]}\n\n",
            "\"delta\":{\"reasoning_content\":\"hmm\"},\"finish_reason\":null,\"logprobs\":null}]}\n\n",
            "\"delta\":{},\"finish_reason\":\"length\",\"logprobs\":null}]}\n\n",
        ]
        .map(|tail| format!("{head}{tail}"))
        .concat()
            + "data: [DONE]\n\n";
        assert_every_split_matches(stream(true), input.as_bytes(), expected.as_bytes());
    }

    /// A stream that must end with an error event (with this code) and no `[DONE]`.
    struct Failed {
        name: &'static str,
        input: String,
        code: &'static str,
    }

    #[test]
    fn failed_streams_end_with_an_error_event() {
        let cut = &TEXT_STREAM[..TEXT_STREAM.find("event: content-end").unwrap()];
        let without_end = TEXT_STREAM
            .replace("event: message-end", "event: nothing")
            .replace("\"type\":\"message-end\"", "\"type\":\"nothing\"");
        let cases = [
            Failed {
                name: "cut before the end",
                input: cut.to_string(),
                code: "stream_interrupted",
            },
            Failed {
                name: "no message-end",
                input: without_end,
                code: "stream_interrupted",
            },
            Failed {
                name: "an error after content",
                input: "data: {\"type\":\"content-delta\",\"delta\":{\"message\":{\"content\":{\"text\":\"x\"}}}}\n\n\
data: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"ERROR\",\"error\":\"model overloaded\"}}\n\n".to_string(),
                code: "provider_error",
            },
            Failed {
                name: "an error finish",
                input: "data: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"ERROR\"}}\n\n".to_string(),
                code: "provider_error",
            },
            Failed {
                name: "a delta of the wrong type",
                input: "data: {\"type\":\"content-delta\",\"delta\":{\"message\":{\"content\":{\"text\":5}}}}\n\n".to_string(),
                code: "invalid_upstream_response",
            },
            Failed {
                name: "not JSON",
                input: "data: {not json\n\n".to_string(),
                code: "invalid_upstream_response",
            },
            Failed {
                name: "straight from the start to the end: no content",
                input: "event: message-start\n\
data: {\"id\":\"co-1\",\"type\":\"message-start\",\"delta\":{\"message\":{\"role\":\"assistant\",\"content\":[]}}}\n\n\
event: message-end\n\
data: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"COMPLETE\"}}\n\n\
data: [DONE]\n\n".to_string(),
                code: "invalid_upstream_response",
            },
            Failed {
                name: "a plan but no tool call",
                input: "data: {\"type\":\"tool-plan-delta\",\"delta\":{\"message\":{\"tool_plan\":\"I will\"}}}\n\n\
data: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"TOOL_CALL\"}}\n\n".to_string(),
                code: "invalid_upstream_response",
            },
            Failed {
                name: "an end without a finish reason",
                input: "data: {\"type\":\"content-delta\",\"delta\":{\"message\":{\"content\":{\"text\":\"x\"}}}}\n\n\
data: {\"type\":\"message-end\",\"delta\":{}}\n\n".to_string(),
                code: "invalid_upstream_response",
            },
            Failed {
                name: "an event without a type",
                input: "data: {\"delta\":{\"message\":{\"content\":{\"text\":\"x\"}}}}\n\n".to_string(),
                code: "invalid_upstream_response",
            },
            Failed {
                name: "an event that is not an object",
                input: "event: content-delta\ndata: [\"x\"]\n\n".to_string(),
                code: "invalid_upstream_response",
            },
            Failed {
                name: "a broken copy of an event in the middle",
                input: TEXT_STREAM.replacen(
                    "event: content-end",
                    "event: content-delta\ndata: {\"type\":\"content-delta\",\"index\":0,\"delta\":{\"mess\n\nevent: content-end",
                    1,
                ),
                code: "invalid_upstream_response",
            },
            Failed {
                name: "tool-call arguments before any tool call",
                input: "data: {\"type\":\"tool-call-delta\",\"delta\":{\"message\":{\"tool_calls\":{\"function\":{\"arguments\":\"{\"}}}}}\n\n".to_string(),
                code: "invalid_upstream_response",
            },
        ];
        for case in cases {
            let (out, _) = run_stream_whole(stream(false), case.input.as_bytes());
            assert_every_split_matches(stream(false), case.input.as_bytes(), &out);
            let text = String::from_utf8(out).unwrap();
            assert!(!text.contains("[DONE]"), "{}: {text}", case.name);
            let last = text.trim_end().rsplit("\n\n").next().unwrap();
            let error: Value = serde_json::from_str(last.strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(error["error"]["code"], case.code, "{}", case.name);
        }
        let (out, _) = run_stream_whole(
            stream(false),
            b"data: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"ERROR\",\"error\":\"model overloaded\"}}\n\n",
        );
        assert!(String::from_utf8(out)
            .unwrap()
            .contains("\"message\":\"model overloaded\""));
    }
}
