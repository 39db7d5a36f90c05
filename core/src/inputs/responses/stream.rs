//! OpenAI chat SSE (as the provider translators write it) → the Responses event sequence.
//!
//! Output: `response.created` and `response.in_progress` at the first chunk; per output item
//! `response.output_item.added`, its part and delta events, their `.done` events and
//! `response.output_item.done`; then `response.completed` (or `response.incomplete`, for a
//! length or content-filter finish) with the whole response and its usage. A stream that
//! carries an error, is cut, or cannot be read ends with `error` and `response.failed`
//! instead. Every event has its `type` and a `sequence_number` counting from 0; item ids,
//! `output_index` and `content_index` agree across an item's events.
//!
//! One item is open at a time, except function calls, which stay open side by side until
//! other output begins or the stream ends (a delta for a call already closed is dropped: no
//! translator writes one). Memory holds the answer's output, which `response.completed`
//! repeats in full.

use super::encode::{item_status, outcome};
use super::error::StreamError;
use super::wire::{
    minted_id, response_json, ChatAnswer, ChatError, ChatToolCall, ItemStatus, OutputContent,
    OutputItem, ResponseError, ResponseObject, ResponsesUsage, TextPart,
};
use super::Context;
use crate::api::ApiError;
use crate::providers::{event_too_large, stream_interrupted};
use crate::stream::sse::{SseEvent, SseParser};
use crate::stream::MAX_EVENT_BYTES;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing received yet.
    Waiting,
    Open,
    /// `response.completed` (or `.incomplete`) sent.
    Done,
    /// `error` and `response.failed` sent.
    Failed,
}

pub struct StreamEncoder {
    ctx: Context,
    parser: SseParser,
    events: Vec<SseEvent>,
    phase: Phase,
    sequence: u64,
    /// The chat completion's id, which every id of the response is minted from.
    base: String,
    id: String,
    created_at: u64,
    model: String,
    items: Vec<OutputItem>,
    /// Output indexes of the items still open, in the order they opened.
    open: Vec<usize>,
    /// Chat tool call index → output index.
    calls: Vec<(u32, usize)>,
    finish: Option<String>,
    usage: Option<ResponsesUsage>,
}

impl StreamEncoder {
    pub fn new(ctx: &Context) -> Self {
        StreamEncoder {
            ctx: ctx.clone(),
            parser: SseParser::new(MAX_EVENT_BYTES),
            events: Vec::new(),
            phase: Phase::Waiting,
            sequence: 0,
            base: String::new(),
            id: String::new(),
            created_at: 0,
            model: String::new(),
            items: Vec::new(),
            open: Vec::new(),
            calls: Vec::new(),
            finish: None,
            usage: None,
        }
    }

    fn ended(&self) -> bool {
        matches!(self.phase, Phase::Done | Phase::Failed)
    }

    fn emit<T: Serialize>(&mut self, out: &mut Vec<u8>, kind: &str, body: &T) {
        write_event(out, self.sequence, kind, body);
        self.sequence += 1;
    }

    fn handle(&mut self, data: &str, out: &mut Vec<u8>) {
        if self.ended() {
            return;
        }
        if data == "[DONE]" {
            return self.complete(out);
        }
        if data.starts_with("{\"error\"") {
            let error = serde_json::from_str::<ChatError>(data)
                .map(|e| StreamError::from_chat(e.error))
                .unwrap_or_else(|_| StreamError::from_api(&stream_interrupted()));
            return self.fail(out, error);
        }
        match serde_json::from_str::<ChatAnswer>(data) {
            Ok(chunk) => self.chunk(chunk, out),
            Err(e) => {
                let err = ApiError::upstream(format!("the provider sent an invalid chunk: {e}"));
                self.fail(out, StreamError::from_api(&err));
            }
        }
    }

    /// `response.created` and `response.in_progress`, named after the first chunk.
    fn start(&mut self, out: &mut Vec<u8>, chunk: Option<&ChatAnswer>) {
        self.phase = Phase::Open;
        self.base = chunk.and_then(|c| c.id.clone()).unwrap_or_default();
        self.id = minted_id("resp", &self.base);
        self.created_at = chunk.and_then(|c| c.created).unwrap_or_default();
        self.model = chunk.and_then(|c| c.model.clone()).unwrap_or_default();
        for kind in ["response.created", "response.in_progress"] {
            let response = self.response("in_progress", None, None, false);
            self.emit(
                out,
                kind,
                &Lifecycle {
                    response: &response,
                },
            );
        }
    }

    /// The response object as it stands (`finished`: with its output and usage).
    fn response(
        &self,
        status: &'static str,
        incomplete_details: Option<super::wire::IncompleteDetails>,
        error: Option<&ResponseError>,
        finished: bool,
    ) -> Box<serde_json::value::RawValue> {
        let object = ResponseObject {
            id: &self.id,
            object: "response",
            created_at: self.created_at,
            status,
            error,
            incomplete_details,
            model: &self.model,
            output: if finished { &self.items } else { &[] },
            usage: self.usage.as_ref().filter(|_| finished),
        };
        let json = response_json(&object, &self.ctx.echo);
        String::from_utf8(json)
            .ok()
            .and_then(|s| serde_json::value::RawValue::from_string(s).ok())
            .unwrap_or_default()
    }

    fn chunk(&mut self, chunk: ChatAnswer, out: &mut Vec<u8>) {
        if self.phase == Phase::Waiting {
            self.start(out, Some(&chunk));
        }
        if let Some(usage) = &chunk.usage {
            self.usage = Some(usage.to_responses());
        }
        let Some(choice) = chunk.choices.into_iter().find(|c| c.index == 0) else {
            return;
        };
        if let Some(delta) = choice.delta {
            if let Some(text) = delta.reasoning_text().filter(|t| !t.is_empty()) {
                self.reasoning_delta(out, text);
            }
            if let Some(text) = delta.content.as_deref().filter(|t| !t.is_empty()) {
                self.message_delta(out, text, PartKind::Text);
            }
            if let Some(text) = delta.refusal.as_deref().filter(|t| !t.is_empty()) {
                self.message_delta(out, text, PartKind::Refusal);
            }
            for call in &delta.tool_calls {
                self.call_delta(out, call);
            }
        }
        if choice.finish_reason.is_some() {
            self.finish = choice.finish_reason;
        }
    }

    /// Opens an item: `response.output_item.added` shows it as it starts.
    fn open_item(&mut self, out: &mut Vec<u8>, item: OutputItem) -> usize {
        let output_index = self.items.len();
        self.emit(
            out,
            "response.output_item.added",
            &ItemEvent {
                output_index,
                item: &item,
            },
        );
        self.items.push(item);
        self.open.push(output_index);
        output_index
    }

    /// The open item of this kind, if it is the last opened.
    fn last_open(&self, is_kind: impl Fn(&OutputItem) -> bool) -> Option<usize> {
        self.open
            .last()
            .copied()
            .filter(|&i| self.items.get(i).is_some_and(&is_kind))
    }

    fn reasoning_delta(&mut self, out: &mut Vec<u8>, delta: &str) {
        let index = match self.last_open(|i| matches!(i, OutputItem::Reasoning { .. })) {
            Some(index) => index,
            None => {
                self.close_all(out, ItemStatus::Completed);
                let item = OutputItem::Reasoning {
                    id: self.minted("rs"),
                    summary: Vec::new(),
                    content: Vec::new(),
                };
                let index = self.open_item(out, item);
                let item_id = self.item_id(index);
                let part = match self.ctx.summary {
                    true => TextPart::summary(String::new()),
                    false => TextPart::reasoning(String::new()),
                };
                if self.ctx.summary {
                    self.emit(
                        out,
                        "response.reasoning_summary_part.added",
                        &SummaryPart {
                            item_id: &item_id,
                            output_index: index,
                            summary_index: 0,
                            part: &part,
                        },
                    );
                } else {
                    self.emit(
                        out,
                        "response.content_part.added",
                        &ContentPart {
                            item_id: &item_id,
                            output_index: index,
                            content_index: 0,
                            part: &part,
                        },
                    );
                }
                if let Some(OutputItem::Reasoning {
                    summary, content, ..
                }) = self.items.get_mut(index)
                {
                    match self.ctx.summary {
                        true => summary.push(part),
                        false => content.push(part),
                    }
                }
                index
            }
        };
        if let Some(OutputItem::Reasoning {
            summary, content, ..
        }) = self.items.get_mut(index)
        {
            if let Some(part) = summary.last_mut().or(content.last_mut()) {
                part.text.push_str(delta);
            }
        }
        let item_id = self.item_id(index);
        if self.ctx.summary {
            self.emit(
                out,
                "response.reasoning_summary_text.delta",
                &SummaryDelta {
                    item_id: &item_id,
                    output_index: index,
                    summary_index: 0,
                    delta,
                },
            );
        } else {
            self.emit(
                out,
                "response.reasoning_text.delta",
                &PartDelta {
                    item_id: &item_id,
                    output_index: index,
                    content_index: 0,
                    delta,
                    logprobs: None,
                },
            );
        }
    }

    /// Text or refusal of the assistant message (opened, or its part switched, as needed).
    fn message_delta(&mut self, out: &mut Vec<u8>, delta: &str, kind: PartKind) {
        let index = match self.last_open(|i| matches!(i, OutputItem::Message { .. })) {
            Some(index) => index,
            None => {
                self.close_all(out, ItemStatus::Completed);
                let message = OutputItem::Message {
                    id: self.minted("msg"),
                    status: ItemStatus::InProgress,
                    role: "assistant",
                    content: Vec::new(),
                };
                self.open_item(out, message)
            }
        };
        let current = match self.items.get(index) {
            Some(OutputItem::Message { content, .. }) => content.last().map(PartKind::of),
            _ => return,
        };
        if current != Some(kind) {
            if current.is_some() {
                self.close_message_part(out, index);
            }
            let part = match kind {
                PartKind::Text => OutputContent::text(String::new()),
                PartKind::Refusal => OutputContent::Refusal {
                    refusal: String::new(),
                },
            };
            let item_id = self.item_id(index);
            let content_index = self.content_len(index);
            self.emit(
                out,
                "response.content_part.added",
                &ContentPart {
                    item_id: &item_id,
                    output_index: index,
                    content_index,
                    part: &part,
                },
            );
            if let Some(OutputItem::Message { content, .. }) = self.items.get_mut(index) {
                content.push(part);
            }
        }
        let content_index = self.content_len(index).saturating_sub(1);
        if let Some(OutputItem::Message { content, .. }) = self.items.get_mut(index) {
            match content.last_mut() {
                Some(OutputContent::OutputText { text, .. }) => text.push_str(delta),
                Some(OutputContent::Refusal { refusal }) => refusal.push_str(delta),
                None => {}
            }
        }
        let item_id = self.item_id(index);
        let (event, logprobs) = match kind {
            PartKind::Text => ("response.output_text.delta", Some([(); 0])),
            PartKind::Refusal => ("response.refusal.delta", None),
        };
        self.emit(
            out,
            event,
            &PartDelta {
                item_id: &item_id,
                output_index: index,
                content_index,
                delta,
                logprobs,
            },
        );
    }

    fn call_delta(&mut self, out: &mut Vec<u8>, call: &ChatToolCall) {
        let call_index = call.index.unwrap_or(0);
        let index = match self.calls.iter().find(|(c, _)| *c == call_index) {
            Some(&(_, index)) if self.open.contains(&index) => index,
            Some(_) => return,
            None => {
                // Other output ends where a call begins; earlier calls stay open.
                let others: Vec<usize> = self
                    .open
                    .iter()
                    .copied()
                    .filter(|&i| {
                        !matches!(self.items.get(i), Some(OutputItem::FunctionCall { .. }))
                    })
                    .collect();
                for i in others {
                    self.close_item(out, i, ItemStatus::Completed);
                }
                let (namespace, name) = self
                    .ctx
                    .call_name(call.function.name.as_deref().unwrap_or_default());
                let item = OutputItem::FunctionCall {
                    id: minted_id("fc", &format!("{}_{call_index}", self.base)),
                    status: ItemStatus::InProgress,
                    call_id: call.id.clone().unwrap_or_default(),
                    name,
                    namespace,
                    arguments: String::new(),
                };
                let index = self.open_item(out, item);
                self.calls.push((call_index, index));
                index
            }
        };
        let Some(delta) = call.function.arguments.as_deref().filter(|a| !a.is_empty()) else {
            return;
        };
        if let Some(OutputItem::FunctionCall { arguments, .. }) = self.items.get_mut(index) {
            arguments.push_str(delta);
        }
        let item_id = self.item_id(index);
        self.emit(
            out,
            "response.function_call_arguments.delta",
            &ArgumentsDelta {
                item_id: &item_id,
                output_index: index,
                delta,
            },
        );
    }

    fn close_all(&mut self, out: &mut Vec<u8>, status: ItemStatus) {
        for index in std::mem::take(&mut self.open) {
            self.close_item(out, index, status);
        }
    }

    /// The `.done` events of an open item, and `response.output_item.done`.
    fn close_item(&mut self, out: &mut Vec<u8>, index: usize, status: ItemStatus) {
        self.open.retain(|&i| i != index);
        let item_id = self.item_id(index);
        match self.items.get_mut(index) {
            Some(OutputItem::Message { status: s, .. }) => {
                *s = status;
                self.close_message_part(out, index);
            }
            Some(OutputItem::FunctionCall {
                status: s,
                arguments,
                ..
            }) => {
                *s = status;
                let arguments = arguments.clone();
                self.emit(
                    out,
                    "response.function_call_arguments.done",
                    &ArgumentsDone {
                        item_id: &item_id,
                        output_index: index,
                        arguments: &arguments,
                    },
                );
            }
            Some(item @ OutputItem::Reasoning { .. }) => {
                let Some(part) = reasoning_part(item).cloned() else {
                    return;
                };
                if self.ctx.summary {
                    self.emit(
                        out,
                        "response.reasoning_summary_text.done",
                        &SummaryDone {
                            item_id: &item_id,
                            output_index: index,
                            summary_index: 0,
                            text: &part.text,
                        },
                    );
                    self.emit(
                        out,
                        "response.reasoning_summary_part.done",
                        &SummaryPart {
                            item_id: &item_id,
                            output_index: index,
                            summary_index: 0,
                            part: &part,
                        },
                    );
                } else {
                    self.emit(
                        out,
                        "response.reasoning_text.done",
                        &PartDone {
                            item_id: &item_id,
                            output_index: index,
                            content_index: 0,
                            text: Some(&part.text),
                            refusal: None,
                            logprobs: None,
                        },
                    );
                    self.emit(
                        out,
                        "response.content_part.done",
                        &ContentPart {
                            item_id: &item_id,
                            output_index: index,
                            content_index: 0,
                            part: &part,
                        },
                    );
                }
            }
            None => return,
        }
        if let Some(item) = self.items.get(index).cloned() {
            self.emit(
                out,
                "response.output_item.done",
                &ItemEvent {
                    output_index: index,
                    item: &item,
                },
            );
        }
    }

    /// The `.done` events of a message's last part.
    fn close_message_part(&mut self, out: &mut Vec<u8>, index: usize) {
        let Some(OutputItem::Message { content, .. }) = self.items.get(index) else {
            return;
        };
        let Some(part) = content.last().cloned() else {
            return;
        };
        let content_index = content.len().saturating_sub(1);
        let item_id = self.item_id(index);
        let (event, text, refusal, logprobs) = match &part {
            OutputContent::OutputText { text, .. } => {
                ("response.output_text.done", Some(text), None, Some([(); 0]))
            }
            OutputContent::Refusal { refusal } => {
                ("response.refusal.done", None, Some(refusal), None)
            }
        };
        self.emit(
            out,
            event,
            &PartDone {
                item_id: &item_id,
                output_index: index,
                content_index,
                text: text.map(String::as_str),
                refusal: refusal.map(String::as_str),
                logprobs,
            },
        );
        self.emit(
            out,
            "response.content_part.done",
            &ContentPart {
                item_id: &item_id,
                output_index: index,
                content_index,
                part: &part,
            },
        );
    }

    /// `[DONE]`: the open items close and the response completes.
    fn complete(&mut self, out: &mut Vec<u8>) {
        if self.phase == Phase::Waiting {
            self.start(out, None);
        }
        let (status, incomplete_details) = outcome(self.finish.as_deref());
        self.close_all(out, item_status(incomplete_details));
        let response = self.response(status, incomplete_details, None, true);
        let kind = match incomplete_details {
            Some(_) => "response.incomplete",
            None => "response.completed",
        };
        self.emit(
            out,
            kind,
            &Lifecycle {
                response: &response,
            },
        );
        self.phase = Phase::Done;
    }

    /// `error`, then `response.failed` with what was output so far.
    fn fail(&mut self, out: &mut Vec<u8>, error: StreamError) {
        if self.phase == Phase::Waiting {
            self.start(out, None);
        }
        self.emit(out, "error", &error);
        for index in std::mem::take(&mut self.open) {
            match self.items.get_mut(index) {
                Some(OutputItem::Message { status, .. })
                | Some(OutputItem::FunctionCall { status, .. }) => *status = ItemStatus::Incomplete,
                _ => {}
            }
        }
        let failure = ResponseError {
            code: error.code,
            message: error.message,
        };
        let response = self.response("failed", None, Some(&failure), true);
        self.emit(
            out,
            "response.failed",
            &Lifecycle {
                response: &response,
            },
        );
        self.phase = Phase::Failed;
    }

    /// The id of a new item: minted from the completion's id, and numbered from the second
    /// item of its kind on (reasoning between tool calls, say).
    fn minted(&self, prefix: &str) -> String {
        let first = minted_id(prefix, &self.base);
        let earlier = self
            .items
            .iter()
            .filter(|i| i.id().starts_with(first.as_str()))
            .count();
        match earlier {
            0 => first,
            n => minted_id(prefix, &format!("{}_{n}", self.base)),
        }
    }

    fn item_id(&self, index: usize) -> String {
        self.items
            .get(index)
            .map(|i| i.id().to_owned())
            .unwrap_or_default()
    }

    fn content_len(&self, index: usize) -> usize {
        match self.items.get(index) {
            Some(OutputItem::Message { content, .. }) => content.len(),
            _ => 0,
        }
    }
}

impl crate::inputs::StreamEncoder for StreamEncoder {
    fn feed(&mut self, openai: &[u8], out: &mut Vec<u8>) {
        if self.ended() {
            return;
        }
        let events = &mut self.events;
        if self.parser.feed(openai, |e| events.push(e)).is_err() {
            self.events.clear();
            return self.fail(out, StreamError::from_api(&event_too_large()));
        }
        for event in std::mem::take(&mut self.events) {
            self.handle(&event.data, out);
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.ended() {
            let events = &mut self.events;
            self.parser.finish(|e| events.push(e));
            for event in std::mem::take(&mut self.events) {
                self.handle(&event.data, out);
            }
        }
        if !self.ended() {
            self.fail(out, StreamError::from_api(&stream_interrupted()));
        }
    }

    fn complete(&self) -> bool {
        self.phase == Phase::Done
    }
}

/// The text part a reasoning item streams into: its summary or its content.
fn reasoning_part(item: &OutputItem) -> Option<&TextPart> {
    match item {
        OutputItem::Reasoning {
            summary, content, ..
        } => summary.last().or(content.last()),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PartKind {
    Text,
    Refusal,
}

impl PartKind {
    fn of(part: &OutputContent) -> Self {
        match part {
            OutputContent::OutputText { .. } => PartKind::Text,
            OutputContent::Refusal { .. } => PartKind::Refusal,
        }
    }
}

/// Appends one event: `event: {kind}` and its data, `type` and `sequence_number` first, then
/// the members of `body` (a JSON object).
pub(super) fn write_event<T: Serialize>(out: &mut Vec<u8>, sequence: u64, kind: &str, body: &T) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\ndata: {\"type\":\"");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\",\"sequence_number\":");
    out.extend_from_slice(sequence.to_string().as_bytes());
    let members = serde_json::to_vec(body).unwrap_or_default();
    match members.get(1..members.len().saturating_sub(1)) {
        Some(inner) if !inner.is_empty() => {
            out.push(b',');
            out.extend_from_slice(inner);
        }
        _ => {}
    }
    out.extend_from_slice(b"}\n\n");
}

// Event bodies (after `type` and `sequence_number`).

#[derive(Serialize)]
struct Lifecycle<'a> {
    response: &'a serde_json::value::RawValue,
}

#[derive(Serialize)]
struct ItemEvent<'a> {
    output_index: usize,
    item: &'a OutputItem,
}

#[derive(Serialize)]
struct ContentPart<'a, P: Serialize> {
    item_id: &'a str,
    output_index: usize,
    content_index: usize,
    part: &'a P,
}

#[derive(Serialize)]
struct PartDelta<'a> {
    item_id: &'a str,
    output_index: usize,
    content_index: usize,
    delta: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    logprobs: Option<[(); 0]>,
}

#[derive(Serialize)]
struct PartDone<'a> {
    item_id: &'a str,
    output_index: usize,
    content_index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refusal: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    logprobs: Option<[(); 0]>,
}

#[derive(Serialize)]
struct SummaryPart<'a> {
    item_id: &'a str,
    output_index: usize,
    summary_index: usize,
    part: &'a TextPart,
}

#[derive(Serialize)]
struct SummaryDelta<'a> {
    item_id: &'a str,
    output_index: usize,
    summary_index: usize,
    delta: &'a str,
}

#[derive(Serialize)]
struct SummaryDone<'a> {
    item_id: &'a str,
    output_index: usize,
    summary_index: usize,
    text: &'a str,
}

#[derive(Serialize)]
struct ArgumentsDelta<'a> {
    item_id: &'a str,
    output_index: usize,
    delta: &'a str,
}

#[derive(Serialize)]
struct ArgumentsDone<'a> {
    item_id: &'a str,
    output_index: usize,
    arguments: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inputs::StreamEncoder as _;
    use crate::testkit::test;
    use serde_json::{json, Value};

    fn context(request: Value) -> Context {
        let d = super::super::decode(&serde_json::to_vec(&request).unwrap()).unwrap();
        match d.context {
            crate::inputs::Context::Responses(ctx) => ctx,
            crate::inputs::Context::Messages(_) => panic!("a Responses context expected"),
        }
    }

    /// Chat chunks as the translators write them (`id` c1, `created` 1700, model `up`).
    fn sse(deltas: &[Value], done: bool) -> String {
        let mut out = String::new();
        for delta in deltas {
            let chunk = match delta.get("usage") {
                Some(usage) => {
                    json!({"id": "c1", "object": "chat.completion.chunk", "created": 1700,
                                      "model": "up", "choices": [], "usage": usage})
                }
                None => json!({"id": "c1", "object": "chat.completion.chunk", "created": 1700,
                               "model": "up", "choices": [delta]}),
            };
            out.push_str(&format!("data: {chunk}\n\n"));
        }
        if done {
            out.push_str("data: [DONE]\n\n");
        }
        out
    }

    fn delta(delta: Value) -> Value {
        json!({"index": 0, "delta": delta, "finish_reason": null})
    }

    fn finish(reason: &str) -> Value {
        json!({"index": 0, "delta": {}, "finish_reason": reason})
    }

    fn run(ctx: &Context, pieces: &[&[u8]]) -> (String, bool) {
        let mut encoder = StreamEncoder::new(ctx);
        let mut out = Vec::new();
        for piece in pieces {
            encoder.feed(piece, &mut out);
        }
        encoder.finish(&mut out);
        (String::from_utf8(out).unwrap(), encoder.complete())
    }

    /// The whole input at once, then split at every byte boundary and byte by byte: the same.
    fn encode_every_split(ctx: &Context, input: &str) -> (String, bool) {
        let bytes = input.as_bytes();
        let whole = run(ctx, &[bytes]);
        for split in 0..=bytes.len() {
            let (a, b) = bytes.split_at(split);
            assert_eq!(run(ctx, &[a, b]), whole, "split at {split}");
        }
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(run(ctx, &singles), whole, "byte by byte");
        whole
    }

    /// The events, checked: `event:` names the data's `type`, sequence numbers count from 0,
    /// and every event about an item names the item added at its output index.
    fn events(out: &str) -> Vec<Value> {
        let mut events = Vec::new();
        let mut items: Vec<String> = Vec::new();
        for frame in out.split_terminator("\n\n") {
            let (name, data) = frame
                .strip_prefix("event: ")
                .and_then(|f| f.split_once("\ndata: "))
                .unwrap_or_else(|| panic!("not an event: {frame:?}"));
            let event: Value = serde_json::from_str(data).unwrap();
            assert_eq!(event["type"], name, "{frame}");
            assert_eq!(event["sequence_number"], events.len(), "{frame}");
            if name == "response.output_item.added" {
                assert_eq!(event["output_index"], items.len(), "{frame}");
                items.push(event["item"]["id"].as_str().unwrap().to_owned());
            }
            if let Some(index) = event["output_index"].as_u64() {
                let id = items
                    .get(index as usize)
                    .unwrap_or_else(|| panic!("{frame}"));
                let named = event.get("item_id").or(event["item"].get("id")).unwrap();
                assert_eq!(named, id, "{frame}");
            }
            events.push(event);
        }
        events
    }

    fn types(events: &[Value]) -> Vec<&str> {
        events.iter().map(|e| e["type"].as_str().unwrap()).collect()
    }

    const USAGE: &str = r#"{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15,
        "prompt_tokens_details":{"cached_tokens":4},"completion_tokens_details":{"reasoning_tokens":2}}"#;

    struct Case {
        name: &'static str,
        request: Value,
        deltas: Vec<Value>,
        types: Vec<&'static str>,
        /// The same answer as one chat completion: `response.completed` must hold what the
        /// JSON answer does.
        completion: Value,
    }

    #[test]
    fn streams_become_the_responses_event_sequence() {
        let usage: Value = serde_json::from_str(USAGE).unwrap();
        let cases = [
            Case {
                name: "text",
                request: json!({"model": "m", "input": "hi"}),
                deltas: vec![
                    delta(json!({"role": "assistant", "content": ""})),
                    delta(json!({"content": "Hel"})),
                    delta(json!({"content": "lo"})),
                    finish("stop"),
                    json!({"usage": usage}),
                ],
                types: vec![
                    "response.created",
                    "response.in_progress",
                    "response.output_item.added",
                    "response.content_part.added",
                    "response.output_text.delta",
                    "response.output_text.delta",
                    "response.output_text.done",
                    "response.content_part.done",
                    "response.output_item.done",
                    "response.completed",
                ],
                completion: json!({"message": {"content": "Hello"}, "finish_reason": "stop", "usage": usage}),
            },
            Case {
                name: "reasoning summary, then text",
                request: json!({"model": "m", "input": "hi", "reasoning": {"effort": "low", "summary": "auto"}}),
                deltas: vec![
                    delta(json!({"role": "assistant", "reasoning_content": "Think"})),
                    delta(json!({"reasoning_content": "ing."})),
                    delta(json!({"content": "42"})),
                    finish("stop"),
                    json!({"usage": usage}),
                ],
                types: vec![
                    "response.created",
                    "response.in_progress",
                    "response.output_item.added",
                    "response.reasoning_summary_part.added",
                    "response.reasoning_summary_text.delta",
                    "response.reasoning_summary_text.delta",
                    "response.reasoning_summary_text.done",
                    "response.reasoning_summary_part.done",
                    "response.output_item.done",
                    "response.output_item.added",
                    "response.content_part.added",
                    "response.output_text.delta",
                    "response.output_text.done",
                    "response.content_part.done",
                    "response.output_item.done",
                    "response.completed",
                ],
                completion: json!({"message": {"content": "42", "reasoning_content": "Thinking."},
                                   "finish_reason": "stop", "usage": usage}),
            },
            Case {
                name: "reasoning text without a summary asked for",
                request: json!({"model": "m", "input": "hi", "reasoning": {"effort": "low"}}),
                deltas: vec![
                    delta(json!({"reasoning": "Hmm."})),
                    delta(json!({"content": "ok"})),
                    finish("stop"),
                ],
                types: vec![
                    "response.created",
                    "response.in_progress",
                    "response.output_item.added",
                    "response.content_part.added",
                    "response.reasoning_text.delta",
                    "response.reasoning_text.done",
                    "response.content_part.done",
                    "response.output_item.done",
                    "response.output_item.added",
                    "response.content_part.added",
                    "response.output_text.delta",
                    "response.output_text.done",
                    "response.content_part.done",
                    "response.output_item.done",
                    "response.completed",
                ],
                completion: json!({"message": {"content": "ok", "reasoning_content": "Hmm."}, "finish_reason": "stop"}),
            },
            Case {
                name: "two tool calls, one namespaced, arguments in pieces",
                request: json!({"model": "m", "input": "hi", "tools": [{"type": "function", "name": "get_weather"},
                    {"type": "namespace", "name": "agents", "tools": [{"type": "function", "name": "spawn"}]}]}),
                deltas: vec![
                    delta(
                        json!({"role": "assistant", "content": null, "tool_calls": [{"index": 0, "id": "call_a",
                        "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
                    ),
                    delta(
                        json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}),
                    ),
                    delta(
                        json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}),
                    ),
                    delta(
                        json!({"tool_calls": [{"index": 1, "id": "call_b", "type": "function",
                        "function": {"name": "agents__spawn", "arguments": "{}"}}]}),
                    ),
                    finish("tool_calls"),
                    json!({"usage": usage}),
                ],
                types: vec![
                    "response.created",
                    "response.in_progress",
                    "response.output_item.added",
                    "response.function_call_arguments.delta",
                    "response.function_call_arguments.delta",
                    "response.output_item.added",
                    "response.function_call_arguments.delta",
                    "response.function_call_arguments.done",
                    "response.output_item.done",
                    "response.function_call_arguments.done",
                    "response.output_item.done",
                    "response.completed",
                ],
                completion: json!({"message": {"content": null, "tool_calls": [
                        {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                        {"id": "call_b", "type": "function", "function": {"name": "agents__spawn", "arguments": "{}"}}]},
                    "finish_reason": "tool_calls", "usage": usage}),
            },
            Case {
                name: "text, then a call",
                request: json!({"model": "m", "input": "hi", "tools": [{"type": "function", "name": "f"}]}),
                deltas: vec![
                    delta(json!({"content": "Let me check."})),
                    delta(
                        json!({"tool_calls": [{"index": 0, "id": "call_a", "function": {"name": "f", "arguments": "{}"}}]}),
                    ),
                    finish("tool_calls"),
                ],
                types: vec![
                    "response.created",
                    "response.in_progress",
                    "response.output_item.added",
                    "response.content_part.added",
                    "response.output_text.delta",
                    "response.output_text.done",
                    "response.content_part.done",
                    "response.output_item.done",
                    "response.output_item.added",
                    "response.function_call_arguments.delta",
                    "response.function_call_arguments.done",
                    "response.output_item.done",
                    "response.completed",
                ],
                completion: json!({"message": {"content": "Let me check.", "tool_calls": [
                        {"id": "call_a", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                    "finish_reason": "tool_calls"}),
            },
            Case {
                name: "token limit: response.incomplete",
                request: json!({"model": "m", "input": "hi", "max_output_tokens": 2}),
                deltas: vec![
                    delta(json!({"content": "Hel"})),
                    finish("length"),
                    json!({"usage": usage}),
                ],
                types: vec![
                    "response.created",
                    "response.in_progress",
                    "response.output_item.added",
                    "response.content_part.added",
                    "response.output_text.delta",
                    "response.output_text.done",
                    "response.content_part.done",
                    "response.output_item.done",
                    "response.incomplete",
                ],
                completion: json!({"message": {"content": "Hel"}, "finish_reason": "length", "usage": usage}),
            },
            Case {
                name: "refusal",
                request: json!({"model": "m", "input": "hi"}),
                deltas: vec![
                    delta(json!({"refusal": "I can't"})),
                    delta(json!({"refusal": "."})),
                    finish("stop"),
                ],
                types: vec![
                    "response.created",
                    "response.in_progress",
                    "response.output_item.added",
                    "response.content_part.added",
                    "response.refusal.delta",
                    "response.refusal.delta",
                    "response.refusal.done",
                    "response.content_part.done",
                    "response.output_item.done",
                    "response.completed",
                ],
                completion: json!({"message": {"content": null, "refusal": "I can't."}, "finish_reason": "stop"}),
            },
        ];
        for case in cases {
            let ctx = context(case.request);
            let (out, complete) = encode_every_split(&ctx, &sse(&case.deltas, true));
            assert!(complete, "{}", case.name);
            let events = events(&out);
            assert_eq!(types(&events), case.types, "{}", case.name);
            let Some(last) = events.last() else {
                panic!("{}: no events", case.name)
            };
            let mut completion = json!({"id": "c1", "created": 1700, "model": "up",
                "choices": [{"index": 0, "message": case.completion["message"],
                             "finish_reason": case.completion["finish_reason"]}]});
            if let Some(usage) = case.completion.get("usage") {
                completion["usage"] = usage.clone();
            }
            let json = super::super::encode_answer(&ctx, &serde_json::to_vec(&completion).unwrap())
                .unwrap();
            let json: Value = serde_json::from_slice(&json).unwrap();
            assert_eq!(last["response"], json, "{}", case.name);
            // The lifecycle events before the end name the same response, without output.
            for event in &events[..2] {
                assert_eq!(event["response"]["id"], "resp_sb_c1", "{}", case.name);
                assert_eq!(event["response"]["status"], "in_progress", "{}", case.name);
                assert_eq!(event["response"]["output"], json!([]), "{}", case.name);
            }
        }
    }

    #[test]
    fn deltas_and_done_events_carry_the_text() {
        let ctx = context(
            json!({"model": "m", "input": "hi", "reasoning": {"summary": "auto"},
            "tools": [{"type": "function", "name": "f"}]}),
        );
        let input = sse(
            &[
                delta(json!({"reasoning_content": "A"})),
                delta(json!({"reasoning_content": "B"})),
                delta(json!({"content": "C"})),
                delta(json!({"content": "D"})),
                delta(
                    json!({"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "f", "arguments": "{\"a\""}}]}),
                ),
                delta(json!({"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]})),
                finish("tool_calls"),
            ],
            true,
        );
        let (out, _) = run(&ctx, &[input.as_bytes()]);
        let events = events(&out);
        let field = |kind: &str, key: &str| -> Vec<Value> {
            events
                .iter()
                .filter(|e| e["type"] == kind)
                .map(|e| e[key].clone())
                .collect()
        };
        assert_eq!(
            field("response.reasoning_summary_text.delta", "delta"),
            [json!("A"), json!("B")]
        );
        assert_eq!(
            field("response.reasoning_summary_text.done", "text"),
            [json!("AB")]
        );
        assert_eq!(
            field("response.output_text.delta", "delta"),
            [json!("C"), json!("D")]
        );
        assert_eq!(field("response.output_text.done", "text"), [json!("CD")]);
        assert_eq!(
            field("response.function_call_arguments.done", "arguments"),
            [json!("{\"a\":1}")]
        );
        let added = field("response.output_item.added", "item");
        assert_eq!(
            added[0],
            json!({"type": "reasoning", "id": "rs_sb_c1", "summary": []})
        );
        assert_eq!(
            added[1],
            json!({"type": "message", "id": "msg_sb_c1", "status": "in_progress",
                                    "role": "assistant", "content": []})
        );
        assert_eq!(
            added[2],
            json!({"type": "function_call", "id": "fc_sb_c1_0", "status": "in_progress",
                                    "call_id": "call_1", "name": "f", "arguments": ""})
        );
        assert_eq!(
            field("response.output_item.done", "item")[2]["status"],
            "completed"
        );
        assert_eq!(
            field("response.content_part.added", "part"),
            [json!({"type": "output_text", "text": "", "annotations": [], "logprobs": []})]
        );
    }

    #[test]
    fn failed_and_cut_streams_end_with_error_and_response_failed() {
        let ctx = context(json!({"model": "m", "input": "hi"}));
        let partial = sse(&[delta(json!({"content": "Hel"}))], false);
        let error = r#"data: {"error":{"message":"overloaded","type":"upstream_error","param":null,"code":"overloaded"}}"#;
        struct Case {
            name: &'static str,
            input: String,
            code: &'static str,
            /// The start of the error's message.
            message: &'static str,
            /// Whether the failed response keeps what was said before the failure.
            has_message: bool,
        }
        let cases = [
            Case {
                name: "an error event",
                input: format!("{partial}{error}\n\n"),
                code: "overloaded",
                message: "overloaded",
                has_message: true,
            },
            Case {
                name: "cut",
                input: partial.clone(),
                code: "stream_interrupted",
                message: "the provider's stream ended before it was complete",
                has_message: true,
            },
            Case {
                name: "error first",
                input: format!("{error}\n\n"),
                code: "overloaded",
                message: "overloaded",
                has_message: false,
            },
            Case {
                name: "nothing at all",
                input: String::new(),
                code: "stream_interrupted",
                message: "the provider's stream ended before it was complete",
                has_message: false,
            },
            Case {
                name: "an invalid chunk",
                input: format!("{partial}data: {{not json\n\n"),
                code: "upstream_error",
                message: "",
                has_message: true,
            },
            Case {
                name: "events after an error are ignored",
                input: format!("{error}\n\n{partial}data: [DONE]\n\n"),
                code: "overloaded",
                message: "overloaded",
                has_message: false,
            },
        ];
        for Case {
            name,
            input,
            code,
            message,
            has_message,
        } in cases
        {
            let (out, complete) = encode_every_split(&ctx, &input);
            assert!(!complete, "{name}");
            let events = events(&out);
            let types = types(&events);
            assert_eq!(
                types[..2],
                ["response.created", "response.in_progress"],
                "{name}"
            );
            assert_eq!(
                types[types.len() - 2..],
                ["error", "response.failed"],
                "{name}"
            );
            let (error, failed) = (&events[events.len() - 2], &events[events.len() - 1]);
            assert_eq!(error["code"], code, "{name}");
            assert!(
                error["message"].as_str().unwrap().starts_with(message),
                "{name}"
            );
            assert_eq!(failed["response"]["status"], "failed", "{name}");
            assert_eq!(failed["response"]["error"]["code"], code, "{name}");
            assert_eq!(
                failed["response"]["id"], events[0]["response"]["id"],
                "{name}"
            );
            let output = failed["response"]["output"].as_array().unwrap();
            assert_eq!(output.len(), usize::from(has_message), "{name}");
            if has_message {
                // What was said before the failure, marked incomplete.
                assert_eq!(output[0]["status"], "incomplete", "{name}");
                assert_eq!(output[0]["content"][0]["text"], "Hel", "{name}");
            }
        }
    }

    #[test]
    fn a_huge_event_fails_the_stream() {
        let ctx = context(json!({"model": "m", "input": "hi"}));
        let mut encoder = StreamEncoder::new(&ctx);
        let mut out = Vec::new();
        encoder.feed(b"data: ", &mut out);
        encoder.feed(&vec![b'x'; MAX_EVENT_BYTES + 1], &mut out);
        encoder.feed(b"\n\ndata: [DONE]\n\n", &mut out);
        encoder.finish(&mut out);
        let events = events(&String::from_utf8(out).unwrap());
        assert_eq!(types(&events)[2..], ["error", "response.failed"]);
        assert!(!encoder.complete());
    }
}
