//! `streamGenerateContent?alt=sse` → OpenAI chunks.

use super::response::{arguments, finish_reason};
use super::signature::tool_call_id;
use super::wire::{GenerateContentResponse, Part};
use crate::api::chat::{ChatChunk, ChunkChoice, Delta, FinishReason, FunctionDelta, ToolCallDelta};
use crate::api::ApiError;
use crate::providers::{
    event_too_large, invalid_answer, stream_interrupted, write_sse_error, write_sse_json,
    write_stream_end, ResponseContext, StreamTranslator,
};
use crate::stream::sse::{SseEvent, SseParser};
use crate::stream::MAX_EVENT_BYTES;
use crate::usage::Usage;

/// More candidates than any client asks for (`n`); beyond it events are refused, not stored.
const MAX_CANDIDATES: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamState {
    Open,
    Failed,
}

struct CandidateStream {
    index: u32,
    tool_calls: u32,
    /// Answer text went out for it (reasoning is not an answer).
    has_text: bool,
    finished: bool,
}

/// `streamGenerateContent?alt=sse` → OpenAI chunks. Each event is a whole
/// `GenerateContentResponse` holding the next delta; function calls arrive whole, so each becomes
/// one tool-call delta with id, name and full arguments.
pub struct GeminiStream {
    kind: &'static str,
    parser: SseParser,
    events: Vec<SseEvent>,
    include_usage: bool,
    request_id: String,
    created: u64,
    id: Option<String>,
    model: String,
    candidates: Vec<CandidateStream>,
    calls_made: usize,
    usage: Option<Usage>,
    state: StreamState,
}

impl GeminiStream {
    pub fn new(kind: &'static str, ctx: &ResponseContext) -> Self {
        GeminiStream {
            kind,
            parser: SseParser::new(MAX_EVENT_BYTES),
            events: Vec::new(),
            include_usage: ctx.include_usage,
            request_id: ctx.request_id.to_owned(),
            created: ctx.created,
            id: None,
            model: ctx.upstream_model.to_owned(),
            candidates: Vec::new(),
            calls_made: 0,
            usage: None,
            state: StreamState::Open,
        }
    }

    fn chunk(&self, choices: Vec<ChunkChoice>) -> ChatChunk {
        let id = self
            .id
            .clone()
            .unwrap_or_else(|| format!("chatcmpl-{}", self.request_id));
        ChatChunk::new(id, self.created, self.model.clone(), choices)
    }

    fn write_delta(
        &self,
        out: &mut Vec<u8>,
        index: u32,
        delta: Delta,
        finish_reason: Option<FinishReason>,
    ) {
        let choice = ChunkChoice {
            index,
            delta,
            finish_reason,
            logprobs: None,
        };
        write_sse_json(out, &self.chunk(vec![choice]));
    }

    fn fail(&mut self, out: &mut Vec<u8>, error: &ApiError) {
        self.state = StreamState::Failed;
        write_sse_error(out, error);
    }

    /// The state of candidate `index`, announcing it (role chunk) on first sight.
    fn candidate(&mut self, index: u32, out: &mut Vec<u8>) -> Option<usize> {
        if let Some(pos) = self.candidates.iter().position(|c| c.index == index) {
            return Some(pos);
        }
        if self.candidates.len() >= MAX_CANDIDATES {
            return None;
        }
        let role = Delta {
            role: Some("assistant"),
            content: Some(String::new()),
            ..Delta::default()
        };
        self.write_delta(out, index, role, None);
        self.candidates.push(CandidateStream {
            index,
            tool_calls: 0,
            has_text: false,
            finished: false,
        });
        Some(self.candidates.len() - 1)
    }

    fn emit(&mut self, out: &mut Vec<u8>) {
        for event in std::mem::take(&mut self.events) {
            if self.state != StreamState::Open {
                return;
            }
            let data = event.data.trim();
            if data.is_empty() || data == "[DONE]" {
                continue;
            }
            if !data.starts_with('{') {
                let err = invalid_answer(self.kind, "an event that is not a JSON object");
                self.fail(out, &err);
                return;
            }
            match serde_json::from_str::<GenerateContentResponse>(data) {
                Ok(answer) if answer.says_nothing() => {
                    let err =
                        invalid_answer(self.kind, "an event with neither candidates nor usage");
                    self.fail(out, &err);
                }
                Ok(answer) => self.answer(answer, out),
                Err(e) => {
                    let err = invalid_answer(self.kind, e);
                    self.fail(out, &err);
                }
            }
        }
    }

    fn answer(&mut self, answer: GenerateContentResponse, out: &mut Vec<u8>) {
        if let Some(detail) = &answer.error {
            let err = detail.to_gateway_error(detail.code.unwrap_or(502));
            self.fail(out, &err);
            return;
        }
        if self.id.is_none() {
            self.id = answer.response_id.clone();
        }
        if let Some(version) = &answer.model_version {
            self.model.clone_from(version);
        }
        if let Some(usage) = answer.usage_metadata {
            self.usage = Some(usage.normalise());
        }
        if answer.candidates.is_empty() && answer.blocked().is_some() {
            if let Some(pos) = self.candidate(0, out) {
                self.finish_candidate(pos, Ok(FinishReason::ContentFilter), out);
            }
            return;
        }
        for (position, candidate) in answer.candidates.into_iter().enumerate() {
            let index = candidate.index.unwrap_or(position as u32);
            let Some(pos) = self.candidate(index, out) else {
                let err = invalid_answer(self.kind, "too many candidates");
                self.fail(out, &err);
                return;
            };
            if self.candidates.get(pos).is_some_and(|c| c.finished) {
                continue;
            }
            let parts = candidate.content.map(|c| c.parts).unwrap_or_default();
            self.parts(pos, index, parts, out);
            if let Some(reason) = candidate.finish_reason.as_deref() {
                let (has_calls, has_text) = self
                    .candidates
                    .get(pos)
                    .map_or((false, false), |c| (c.tool_calls > 0, c.has_text));
                let finish = finish_reason(
                    self.kind,
                    reason,
                    candidate.finish_message.as_deref(),
                    has_calls,
                    has_text,
                );
                self.finish_candidate(pos, finish, out);
                if self.state != StreamState::Open {
                    return;
                }
            }
        }
    }

    fn parts(&mut self, pos: usize, index: u32, parts: Vec<Part>, out: &mut Vec<u8>) {
        for part in parts {
            let delta = if let Some(call) = part.function_call {
                let Some(state) = self.candidates.get_mut(pos) else {
                    return;
                };
                let call_index = state.tool_calls;
                state.tool_calls += 1;
                self.calls_made += 1;
                Delta {
                    tool_calls: Some(vec![ToolCallDelta {
                        index: call_index,
                        id: Some(tool_call_id(
                            &self.request_id,
                            self.calls_made - 1,
                            part.thought_signature.as_deref(),
                        )),
                        kind: Some("function"),
                        function: FunctionDelta {
                            name: Some(call.name),
                            arguments: Some(arguments(&call.args)),
                        },
                    }]),
                    ..Delta::default()
                }
            } else {
                match part.text {
                    Some(text) if !text.is_empty() => {
                        if part.thought == Some(true) {
                            Delta {
                                reasoning_content: Some(text),
                                ..Delta::default()
                            }
                        } else {
                            if let Some(state) = self.candidates.get_mut(pos) {
                                state.has_text = true;
                            }
                            Delta {
                                content: Some(text),
                                ..Delta::default()
                            }
                        }
                    }
                    _ => continue,
                }
            };
            self.write_delta(out, index, delta, None);
        }
    }

    fn finish_candidate(
        &mut self,
        pos: usize,
        finish: Result<FinishReason, ApiError>,
        out: &mut Vec<u8>,
    ) {
        let Some(state) = self.candidates.get_mut(pos) else {
            return;
        };
        state.finished = true;
        let index = state.index;
        match finish {
            Ok(reason) => self.write_delta(out, index, Delta::default(), Some(reason)),
            Err(e) => self.fail(out, &e),
        }
    }
}

impl StreamTranslator for GeminiStream {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        if self.state != StreamState::Open {
            return;
        }
        let events = &mut self.events;
        let parsed = self.parser.feed(chunk, |e| events.push(e));
        self.emit(out);
        if parsed.is_err() && self.state == StreamState::Open {
            self.fail(out, &event_too_large());
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        if self.state != StreamState::Open {
            return;
        }
        let events = &mut self.events;
        self.parser.finish(|e| events.push(e));
        self.emit(out);
        if self.state != StreamState::Open {
            return;
        }
        let complete = !self.candidates.is_empty() && self.candidates.iter().all(|c| c.finished);
        if !complete {
            self.fail(out, &stream_interrupted());
            return;
        }
        let usage = self.usage.filter(|_| self.include_usage);
        write_stream_end(out, usage, || self.chunk(Vec::new()));
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
    use crate::providers::gemini::KIND;
    use crate::providers::testing::*;
    use crate::testkit::test;

    struct StreamCase {
        name: &'static str,
        include_usage: bool,
        /// What Gemini sends.
        input: String,
        /// What the client sees.
        expected: String,
    }

    fn chunk(delta: &str, finish: &str) -> String {
        format!(
            "data: {{\"id\":\"r1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"gemini-x\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish},\"logprobs\":null}}]}}\n\n"
        )
    }

    fn stream_cases() -> Vec<StreamCase> {
        let role = chunk(r#"{"role":"assistant","content":""}"#, "null");
        let usage = "data: {\"id\":\"r1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"gemini-x\",\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":3,\"total_tokens\":7,\"prompt_tokens_details\":{\"cached_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":1}}}\n\n";
        let text_stream = concat!(
            "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"hmm\",\"thought\":true}]},\"index\":0}],\"responseId\":\"r1\",\"modelVersion\":\"gemini-x\"}\r\n\r\n",
            "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"Hel\"}]},\"index\":0}],\"responseId\":\"r1\",\"modelVersion\":\"gemini-x\"}\r\n\r\n",
            "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"lo \\\"é\\\"\"}]},\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":4,\"candidatesTokenCount\":2,\"thoughtsTokenCount\":1},\"responseId\":\"r1\",\"modelVersion\":\"gemini-x\"}\r\n\r\n",
        );
        let text_out = [
            role.clone(),
            chunk(r#"{"reasoning_content":"hmm"}"#, "null"),
            chunk(r#"{"content":"Hel"}"#, "null"),
            chunk(r#"{"content":"lo \"é\""}"#, "null"),
            chunk("{}", "\"stop\""),
        ]
        .concat();
        let tool_stream = "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":\"weather\",\"args\":{\"city\":\"Paris\"}},\"thoughtSignature\":\"Zm9v+/8=\"},{\"functionCall\":{\"name\":\"time\"}}]},\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":4,\"candidatesTokenCount\":2,\"thoughtsTokenCount\":1},\"responseId\":\"r1\",\"modelVersion\":\"gemini-x\"}\n\n";
        let tool_out = [
            role.clone(),
            chunk(r#"{"tool_calls":[{"index":0,"id":"call_req1-0_sig_Zm9v-_8","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}}]}"#, "null"),
            chunk(r#"{"tool_calls":[{"index":1,"id":"call_req1-1","type":"function","function":{"name":"time","arguments":"{}"}}]}"#, "null"),
            chunk("{}", "\"tool_calls\""),
        ]
        .concat();
        let blocked = "data: {\"promptFeedback\":{\"blockReason\":\"SAFETY\"},\"usageMetadata\":{\"promptTokenCount\":4},\"responseId\":\"r1\",\"modelVersion\":\"gemini-x\"}\n\n";
        let interrupted = "{\"error\":{\"message\":\"the provider's stream ended before it was complete\",\"type\":\"upstream_error\",\"param\":null,\"code\":\"stream_interrupted\"}}";
        let no_content = "{\"error\":{\"message\":\"the gemini provider returned an invalid answer: an answer without content\",\"type\":\"upstream_error\",\"param\":null,\"code\":\"invalid_upstream_response\"}}";
        let cut = text_stream
            .get(..text_stream.rfind("data:").unwrap())
            .unwrap();
        vec![
            StreamCase {
                name: "text",
                include_usage: false,
                input: text_stream.to_owned(),
                expected: format!("{text_out}data: [DONE]\n\n"),
            },
            StreamCase {
                name: "text with usage",
                include_usage: true,
                input: text_stream.to_owned(),
                expected: format!("{text_out}{usage}data: [DONE]\n\n"),
            },
            StreamCase {
                name: "tools",
                include_usage: false,
                input: tool_stream.to_owned(),
                expected: format!("{tool_out}data: [DONE]\n\n"),
            },
            StreamCase {
                name: "blocked prompt",
                include_usage: false,
                input: blocked.to_owned(),
                expected: format!("{role}{}data: [DONE]\n\n", chunk("{}", "\"content_filter\"")),
            },
            StreamCase {
                name: "cut short",
                include_usage: false,
                input: cut.to_owned(),
                expected: format!(
                    "{role}{}{}data: {interrupted}\n\n",
                    chunk(r#"{"reasoning_content":"hmm"}"#, "null"),
                    chunk(r#"{"content":"Hel"}"#, "null")
                ),
            },
            StreamCase {
                name: "an error event mid-stream",
                include_usage: false,
                input: format!(
                    "{}data: {{\"error\":{{\"code\":503,\"message\":\"overloaded\",\"status\":\"UNAVAILABLE\"}}}}\n\n",
                    text_stream.get(..text_stream.find("\r\n\r\n").unwrap() + 4).unwrap()
                ),
                expected: format!(
                    "{role}{}data: {{\"error\":{{\"message\":\"overloaded\",\"type\":\"upstream_error\",\"param\":null,\"code\":\"unavailable\"}}}}\n\n",
                    chunk(r#"{"reasoning_content":"hmm"}"#, "null")
                ),
            },
            StreamCase {
                name: "a malformed function call",
                include_usage: false,
                input: "data: {\"candidates\":[{\"finishReason\":\"MALFORMED_FUNCTION_CALL\"}],\"responseId\":\"r1\",\"modelVersion\":\"gemini-x\"}\n\n".to_owned(),
                expected: format!(
                    "{role}data: {{\"error\":{{\"message\":\"the gemini model produced an unusable tool call (MALFORMED_FUNCTION_CALL)\",\"type\":\"upstream_error\",\"param\":null,\"code\":\"malformed_function_call\"}}}}\n\n"
                ),
            },
            StreamCase {
                name: "a candidate that stops without content",
                include_usage: false,
                input: "data: {\"candidates\":[{\"index\":0,\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":4},\"responseId\":\"r1\",\"modelVersion\":\"gemini-x\"}\r\n\r\n".to_owned(),
                expected: format!("{role}data: {no_content}\n\n"),
            },
            StreamCase {
                name: "thoughts, then a stop without answer text",
                include_usage: false,
                input: text_stream.replace("Hel", "").replace("lo \\\"é\\\"", ""),
                expected: format!("{role}{}data: {no_content}\n\n", chunk(r#"{"reasoning_content":"hmm"}"#, "null")),
            },
            StreamCase {
                name: "thoughts, then the token limit: an empty length answer",
                include_usage: false,
                input: "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"hmm\",\"thought\":true}]},\"finishReason\":\"MAX_TOKENS\"}],\"responseId\":\"r1\",\"modelVersion\":\"gemini-x\"}\n\n".to_owned(),
                expected: format!("{role}{}{}data: [DONE]\n\n", chunk(r#"{"reasoning_content":"hmm"}"#, "null"), chunk("{}", "\"length\"")),
            },
            StreamCase {
                name: "an event that is not an object",
                include_usage: false,
                input: format!("{}data: [1]\n\n", text_stream.get(..text_stream.find("\r\n\r\n").unwrap() + 4).unwrap()),
                expected: format!(
                    "{role}{}data: {{\"error\":{{\"message\":\"the gemini provider returned an invalid answer: an event that is not a JSON object\",\"type\":\"upstream_error\",\"param\":null,\"code\":\"invalid_upstream_response\"}}}}\n\n",
                    chunk(r#"{"reasoning_content":"hmm"}"#, "null")
                ),
            },
            StreamCase {
                name: "an event of another shape",
                include_usage: false,
                input: "data: {\"kind\":\"chunk\"}\n\n".to_owned(),
                expected: "data: {\"error\":{\"message\":\"the gemini provider returned an invalid answer: an event with neither candidates nor usage\",\"type\":\"upstream_error\",\"param\":null,\"code\":\"invalid_upstream_response\"}}\n\n".to_owned(),
            },
            StreamCase {
                name: "invalid JSON",
                include_usage: false,
                input: "data: {\"candidates\":[\n\n".to_owned(),
                expected: "data: {\"error\":{\"message\":\"the gemini provider returned an invalid answer: EOF while parsing a list at line 1 column 15\",\"type\":\"upstream_error\",\"param\":null,\"code\":\"invalid_upstream_response\"}}\n\n".to_owned(),
            },
        ]
    }

    #[test]
    fn streams_at_every_split() {
        for case in stream_cases() {
            let make = || GeminiStream::new(KIND, &ctx(case.include_usage));
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
    fn stream_usage_is_recorded_even_when_hidden() {
        let input = stream_cases()
            .into_iter()
            .find(|c| c.name == "text")
            .map(|c| c.input)
            .unwrap();
        let (_, usage) =
            run_stream_whole(|| GeminiStream::new(KIND, &ctx(false)), input.as_bytes());
        assert_eq!(
            usage,
            Some(Usage {
                prompt_tokens: 4,
                completion_tokens: 3,
                cached_tokens: 0,
                cache_write_tokens: 0,
                reasoning_tokens: 1
            })
        );
    }
}
