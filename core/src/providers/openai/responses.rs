//! OpenAI's own Responses API, passed through (kind `openai` only: Azure and the compatible
//! presets are given the translated chat request). The client's body goes on with `model`
//! replaced, and with the items this gateway minted on translated turns taken out again
//! (OpenAI cannot resolve them: reasoning items are dropped, other items lose their `id`).
//! Answers pass through while their usage is read: a JSON answer's `usage`, a stream's from
//! `response.completed`. The stream's bytes pass as they come, re-cut at event boundaries only,
//! so a stream cut mid-event never leaves half an event before the `error` event appended.

use super::{rewrite_request, span_in};
use crate::api::ApiError;
use crate::inputs::responses::wire::{is_minted, ResponsesUsage};
use crate::inputs::responses::write_error_event;
use crate::providers::{event_too_large, invalid_answer, stream_interrupted};
use crate::providers::{StreamTranslator, Translated};
use crate::stream::sse::{SseEvent, SseParser};
use crate::stream::MAX_EVENT_BYTES;
use crate::usage::Usage;
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::borrow::Cow;

/// The client's Responses body for OpenAI: `model` replaced, minted items taken out.
pub(super) fn native_body(raw: &[u8], model: &str) -> Result<Vec<u8>, ApiError> {
    let body = rewrite_request(raw, model, false)?;
    without_minted_items(body)
}

/// `input` without the items a translated turn minted (the body unchanged if it has none).
fn without_minted_items(body: Vec<u8>) -> Result<Vec<u8>, ApiError> {
    #[derive(Deserialize)]
    struct Members<'a> {
        #[serde(borrow, default)]
        input: Option<&'a RawValue>,
    }
    #[derive(Deserialize)]
    struct Probe<'a> {
        #[serde(borrow, rename = "type", default)]
        kind: Option<Cow<'a, str>>,
        #[serde(borrow, default)]
        id: Option<Cow<'a, str>>,
    }
    let members: Members =
        serde_json::from_slice(&body).map_err(|e| ApiError::invalid(e.to_string()))?;
    let Some(input) = members.input else {
        return Ok(body);
    };
    let Ok(items) = serde_json::from_str::<Vec<&RawValue>>(input.get()) else {
        return Ok(body); // a string input
    };
    let mut changed = false;
    let mut kept: Vec<Cow<str>> = Vec::with_capacity(items.len());
    for item in items {
        let probe = serde_json::from_str::<Probe>(item.get()).ok();
        let minted = probe
            .as_ref()
            .and_then(|p| p.id.as_deref())
            .is_some_and(is_minted);
        if !minted {
            kept.push(Cow::Borrowed(item.get()));
            continue;
        }
        changed = true;
        if probe.and_then(|p| p.kind).as_deref() == Some("reasoning") {
            continue;
        }
        let mut object: Map<String, Value> =
            serde_json::from_str(item.get()).map_err(|e| ApiError::invalid(e.to_string()))?;
        object.remove("id");
        let json = serde_json::to_string(&object).map_err(|e| ApiError::server(e.to_string()))?;
        kept.push(Cow::Owned(json));
    }
    let Some(span) = changed.then(|| span_in(&body, input)).flatten() else {
        return Ok(body);
    };
    let mut out = Vec::with_capacity(body.len());
    out.extend_from_slice(body.get(..span.start).unwrap_or_default());
    out.push(b'[');
    for (i, item) in kept.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(item.as_bytes());
    }
    out.push(b']');
    out.extend_from_slice(body.get(span.end..).unwrap_or_default());
    Ok(out)
}

/// A Responses JSON answer: checked, its usage read, its bytes kept.
pub(super) fn native_answer(kind: &str, body: &[u8]) -> Result<Translated, ApiError> {
    #[derive(Deserialize)]
    struct Probe {
        #[allow(dead_code)]
        output: Vec<IgnoredAny>,
        #[serde(default)]
        usage: Option<ResponsesUsage>,
    }
    let probe: Probe = serde_json::from_slice(body).map_err(|e| invalid_answer(kind, &e))?;
    Ok(Translated {
        body: None,
        usage: probe.usage.map(ResponsesUsage::normalise),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Open,
    /// `response.completed` (or `.incomplete`) passed.
    Complete,
    /// The provider's `error` or `response.failed` passed.
    Failed,
    /// This gateway ended the stream with an `error` event: nothing more passes.
    Ended,
}

/// A Responses stream passed through, its usage read from `response.completed`.
pub struct ResponsesStream {
    parser: SseParser,
    boundary: EventBoundary,
    /// Bytes of an event not yet complete, held back until it is.
    held: Vec<u8>,
    last_sequence: Option<u64>,
    usage: Option<Usage>,
    phase: Phase,
}

impl ResponsesStream {
    pub fn new() -> Self {
        ResponsesStream {
            parser: SseParser::new(MAX_EVENT_BYTES),
            boundary: EventBoundary::default(),
            held: Vec::new(),
            last_sequence: None,
            usage: None,
            phase: Phase::Open,
        }
    }

    /// Reads what the stream's state needs of one event; whether its data is JSON.
    fn inspect(&mut self, event: &SseEvent) -> bool {
        #[derive(Deserialize)]
        struct Probe {
            #[serde(rename = "type", default)]
            kind: String,
            #[serde(default)]
            sequence_number: Option<u64>,
            #[serde(default)]
            response: Option<ResponseProbe>,
        }
        #[derive(Deserialize)]
        struct ResponseProbe {
            #[serde(default)]
            usage: Option<ResponsesUsage>,
        }
        let Ok(probe) = serde_json::from_str::<Probe>(&event.data) else {
            return false;
        };
        if probe.sequence_number.is_some() {
            self.last_sequence = probe.sequence_number;
        }
        if let Some(usage) = probe.response.and_then(|r| r.usage) {
            self.usage = Some(usage.normalise());
        }
        match probe.kind.as_str() {
            "response.completed" | "response.incomplete" if self.phase == Phase::Open => {
                self.phase = Phase::Complete
            }
            "response.failed" | "error" if self.phase == Phase::Open => self.phase = Phase::Failed,
            _ => {}
        }
        true
    }

    /// Ends the stream with an `error` event after the last one passed.
    fn end_with(&mut self, err: &ApiError, out: &mut Vec<u8>) {
        let sequence = self.last_sequence.map_or(0, |s| s + 1);
        write_error_event(err, sequence, out);
        self.held.clear();
        self.phase = Phase::Ended;
    }
}

impl Default for ResponsesStream {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamTranslator for ResponsesStream {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        if self.phase == Phase::Ended {
            return;
        }
        let mut events = Vec::new();
        if self.parser.feed(chunk, |e| events.push(e)).is_err() {
            return self.end_with(&event_too_large(), out);
        }
        for event in &events {
            self.inspect(event);
        }
        match self.boundary.last_in(chunk) {
            Some(end) => {
                out.append(&mut self.held);
                out.extend_from_slice(chunk.get(..end).unwrap_or_default());
                self.held
                    .extend_from_slice(chunk.get(end..).unwrap_or_default());
            }
            None => self.held.extend_from_slice(chunk),
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        if self.phase == Phase::Ended {
            return;
        }
        let mut events = Vec::new();
        self.parser.finish(|e| events.push(e));
        // An event the provider left unterminated passes, terminated, if it is whole.
        let whole = events.iter().fold(false, |_, e| self.inspect(e));
        if whole {
            let terminator: &[u8] = if self.held.ends_with(b"\n") {
                b"\n"
            } else {
                b"\n\n"
            };
            out.append(&mut self.held);
            out.extend_from_slice(terminator);
        }
        if self.phase == Phase::Open {
            self.end_with(&stream_interrupted(), out);
        }
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }

    fn complete(&self, _out: &[u8]) -> bool {
        self.phase == Phase::Complete
    }
}

/// Finds where events end in a stream's bytes, however they are split: after the blank line
/// that ends each (lines end in `\n`, `\r\n` or `\r`, as SSE has it).
#[derive(Debug, Default)]
struct EventBoundary {
    /// Bytes of the current line so far.
    line_len: usize,
    /// The last byte was a `\r`: a `\n` next belongs to it.
    after_cr: bool,
    /// That `\r` ended a blank line (an event): its `\n` goes with it.
    cr_ended_event: bool,
}

impl EventBoundary {
    /// The offset just past the last event boundary in `bytes`, if any.
    fn last_in(&mut self, bytes: &[u8]) -> Option<usize> {
        let mut end = None;
        for (i, &b) in bytes.iter().enumerate() {
            match b {
                b'\n' if self.after_cr => {
                    self.after_cr = false;
                    if self.cr_ended_event {
                        end = Some(i + 1);
                    }
                }
                b'\n' | b'\r' => {
                    let blank = self.line_len == 0;
                    if blank {
                        end = Some(i + 1);
                    }
                    self.after_cr = b == b'\r';
                    self.cr_ended_event = blank && self.after_cr;
                    self.line_len = 0;
                }
                _ => {
                    self.after_cr = false;
                    self.line_len += 1;
                }
            }
        }
        end
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Api, Operation};
    use crate::providers::testing::*;
    use crate::testkit::test;
    use serde_json::json;

    #[test]
    fn only_openai_speaks_responses() {
        let cases = [
            ("kind: openai\napi_key: k", Some(Api::OpenAiResponses)),
            (
                "kind: azure\napi_key: k\nbase_url: https://x.openai.azure.com",
                None,
            ),
            ("kind: groq\napi_key: k", None),
            ("kind: openai_compatible\nbase_url: http://h/v1", None),
        ];
        for (yaml, api) in cases {
            assert_eq!(provider(yaml).native_api(), api, "{yaml}");
        }
        let p = provider("kind: openai\napi_key: sk-1\nbase_url: http://mock:9/base/v1");
        let up = p
            .native_request(
                Operation::Responses,
                br#"{"model":"public","input":"hi","stream":true}"#,
                &attempt("gpt-5"),
            )
            .unwrap();
        assert_eq!(up.path, "/base/v1/responses");
        assert_eq!(up.headers, owned_pairs(&[("authorization", "Bearer sk-1")]));
        // No `stream_options` on Responses: usage comes with `response.completed`.
        assert_eq!(up.body, br#"{"model":"gpt-5","input":"hi","stream":true}"#);
        assert!(p
            .native_request(Operation::Messages, b"{}", &attempt("gpt-5"))
            .is_err());
    }

    #[test]
    fn the_body_passes_with_model_replaced_and_minted_items_out() {
        struct Case {
            name: &'static str,
            raw: &'static str,
            expected: &'static str,
        }
        let cases = [
            Case {
                name: "bytes kept, model replaced",
                raw: r#"{ "input" : [ {"type":"message","role":"user","content":"hi","id":"msg_01ab"} ], "model":"p", "x": 1 }"#,
                expected: r#"{ "input" : [ {"type":"message","role":"user","content":"hi","id":"msg_01ab"} ], "model":"up", "x": 1 }"#,
            },
            Case {
                name: "string input",
                raw: r#"{"model":"p","input":"hi"}"#,
                expected: r#"{"model":"up","input":"hi"}"#,
            },
            Case {
                name: "a minted reasoning item dropped, minted ids removed, OpenAI's kept",
                raw: r#"{"model":"p","input":[{"role":"user","content":"x"},
                    {"type":"reasoning","id":"rs_sb_c1","summary":[{"type":"summary_text","text":"t"}]},
                    {"type":"function_call","id":"fc_sb_c1_0","call_id":"call_a","name":"f","arguments":"{}"},
                    {"type":"function_call_output","call_id":"call_a","output":"ok"},
                    {"type":"reasoning","id":"rs_67ab","summary":[],"encrypted_content":"gAAA"},
                    {"type":"message","role":"assistant","id":"msg_sb_c2","content":[{"type":"output_text","text":"done"}]}],
                    "stream":true}"#,
                expected: r#"{"model":"up","input":[{"role":"user","content":"x"},{"arguments":"{}","call_id":"call_a","name":"f","type":"function_call"},{"type":"function_call_output","call_id":"call_a","output":"ok"},{"type":"reasoning","id":"rs_67ab","summary":[],"encrypted_content":"gAAA"},{"content":[{"text":"done","type":"output_text"}],"role":"assistant","type":"message"}],
                    "stream":true}"#,
            },
        ];
        for case in cases {
            let body = native_body(case.raw.as_bytes(), "up").unwrap();
            assert_eq!(
                String::from_utf8(body).unwrap(),
                case.expected,
                "{}",
                case.name
            );
        }
        assert_eq!(
            native_body(b"{\"input\":[]}", "up")
                .unwrap_err()
                .param
                .as_deref(),
            Some("model")
        );
    }

    #[test]
    fn json_answers_are_checked_and_their_usage_read() {
        let body = json!({"id": "resp_1", "object": "response", "status": "completed", "output": [],
            "usage": {"input_tokens": 10, "input_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 1},
                      "output_tokens": 6, "output_tokens_details": {"reasoning_tokens": 2}, "total_tokens": 16}});
        let p = provider("kind: openai\napi_key: k");
        let t = p
            .native_response(
                Operation::Responses,
                &serde_json::to_vec(&body).unwrap(),
                &ctx(false),
            )
            .unwrap();
        assert_eq!(t.body, None);
        assert_eq!(
            t.usage,
            Some(Usage {
                prompt_tokens: 10,
                completion_tokens: 6,
                cached_tokens: 4,
                cache_write_tokens: 0,
                reasoning_tokens: 2
            })
        );
        for bad in [
            &br#"{"error":{"message":"slow down","type":"requests"}}"#[..],
            br#"{"id":"chatcmpl-1","choices":[]}"#,
            b"{\"output\": [",
        ] {
            let err = p
                .native_response(Operation::Responses, bad, &ctx(false))
                .unwrap_err();
            assert_eq!(err.status, 502, "{}", String::from_utf8_lossy(bad));
        }
    }

    fn event(kind: &str, sequence: u64, rest: &str) -> String {
        format!(
            "event: {kind}\ndata: {{\"type\":\"{kind}\",\"sequence_number\":{sequence}{rest}}}\n\n"
        )
    }

    const COMPLETED_USAGE: &str = r#","response":{"id":"resp_1","status":"completed","output":[],"usage":{"input_tokens":7,"input_tokens_details":{"cached_tokens":0},"output_tokens":3,"output_tokens_details":{"reasoning_tokens":1},"total_tokens":10}}"#;

    fn stream_head() -> String {
        [
            event(
                "response.created",
                0,
                r#","response":{"id":"resp_1","status":"in_progress","output":[]}"#,
            ),
            event(
                "response.output_item.added",
                1,
                r#","output_index":0,"item":{"id":"msg_1","type":"message","content":[]}"#,
            ),
            event(
                "response.output_text.delta",
                2,
                r#","item_id":"msg_1","output_index":0,"content_index":0,"delta":"Hi \"there\"""#,
            ),
        ]
        .concat()
    }

    fn run(input: &[&[u8]]) -> (Vec<u8>, Option<Usage>, bool) {
        let mut t = ResponsesStream::new();
        let mut out = Vec::new();
        for piece in input {
            t.feed(piece, &mut out);
        }
        t.finish(&mut out);
        let complete = t.complete(&out);
        (out, t.usage(), complete)
    }

    #[test]
    fn streams_pass_through_whole_events_at_every_split() {
        let complete = format!(
            "{}{}",
            stream_head(),
            event("response.completed", 3, COMPLETED_USAGE)
        );
        let crlf = complete.replace('\n', "\r\n");
        let cr = complete.replace('\n', "\r");
        for input in [&complete, &crlf, &cr] {
            let bytes = input.as_bytes();
            for split in 0..=bytes.len() {
                let (a, b) = bytes.split_at(split);
                let (out, usage, done) = run(&[a, b]);
                assert_eq!(out, bytes, "split at {split}");
                assert_eq!(
                    usage.map(|u| u.total_tokens()),
                    Some(10),
                    "split at {split}"
                );
                assert!(done, "split at {split}");
            }
            let singles: Vec<&[u8]> = bytes.chunks(1).collect();
            assert_eq!(run(&singles).0, bytes);
        }
        // Bytes of a whole event leave with the chunk that completes it, not before.
        let mut t = ResponsesStream::new();
        let mut out = Vec::new();
        let head = stream_head();
        let cut = head.len() - 10;
        t.feed(&head.as_bytes()[..cut], &mut out);
        assert_eq!(out, event_prefix(&head, 2).as_bytes());
        t.feed(&head.as_bytes()[cut..], &mut out);
        assert_eq!(out, head.as_bytes());
    }

    /// The first `n` events of `stream`.
    fn event_prefix(stream: &str, n: usize) -> String {
        stream.split_inclusive("\n\n").take(n).collect()
    }

    #[test]
    fn a_cut_stream_ends_with_an_error_event_after_its_last_whole_event() {
        let head = stream_head();
        let bytes = head.as_bytes();
        // Where each event's JSON ends: cut there or later, the event is whole.
        let mut json_ends = Vec::new();
        let mut at = 0;
        for event in head.split_inclusive("\n\n") {
            json_ends.push(at + event.len() - 2);
            at += event.len();
        }
        for cut in 0..bytes.len() {
            let (out, _, done) = run(&[&bytes[..cut]]);
            let whole = json_ends.iter().filter(|&&end| cut >= end).count();
            let error = format!(
                "event: error\ndata: {{\"type\":\"error\",\"sequence_number\":{whole},\"code\":\"stream_interrupted\",\"message\":\"the provider's stream ended before it was complete\",\"param\":null}}\n\n",
            );
            let expected = format!("{}{error}", event_prefix(&head, whole));
            assert_eq!(String::from_utf8(out).unwrap(), expected, "cut at {cut}");
            assert!(!done);
        }
    }

    #[test]
    fn the_provider_s_own_failure_passes_as_it_is() {
        let failed = format!(
            "{}{}{}",
            stream_head(),
            event(
                "error",
                3,
                r#","code":"server_error","message":"boom","param":null"#
            ),
            event(
                "response.failed",
                4,
                r#","response":{"id":"resp_1","status":"failed","error":{"code":"server_error","message":"boom"}}"#
            ),
        );
        let (out, _, done) = run(&[failed.as_bytes()]);
        assert_eq!(out, failed.as_bytes());
        assert!(!done);
        // An unterminated last event passes, terminated.
        let unterminated = format!(
            "{}{}",
            stream_head(),
            event("response.completed", 3, COMPLETED_USAGE)
        );
        let unterminated = unterminated.trim_end();
        let (out, usage, done) = run(&[unterminated.as_bytes()]);
        assert_eq!(out, format!("{unterminated}\n\n").as_bytes());
        assert!(done && usage.is_some());
    }

    #[test]
    fn a_huge_event_ends_the_stream() {
        let mut t = ResponsesStream::new();
        let mut out = Vec::new();
        let head = stream_head();
        t.feed(head.as_bytes(), &mut out);
        t.feed(b"data: ", &mut out);
        t.feed(&vec![b'x'; MAX_EVENT_BYTES + 1], &mut out);
        t.feed(b"\n\n", &mut out);
        t.finish(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with(&head));
        assert!(text.ends_with("\"sequence_number\":3,\"code\":\"upstream_error\",\"message\":\"the provider sent a stream event larger than 4 MiB\",\"param\":null}\n\n"), "{}", &text[head.len()..]);
        assert!(!t.complete(b""));
    }
}
