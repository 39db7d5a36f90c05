//! OpenAI's Responses API, `POST */responses` (what Codex CLI speaks): JSON and SSE answers
//! from the shared conversation, in the shapes of OpenAI's API reference. Errors are OpenAI's
//! (`crate::openai::error`).
//!
//! `instructions` and the `input` items become turns: messages of any role (`developer`
//! counts as system), `function_call` items (assistant turns) and `function_call_output` items
//! (tool turns, each answering a call earlier in the input, as OpenAI checks when nothing is
//! stored). Reasoning and other items sent back carry nothing to answer from and are skipped.
//! Function tools are offered to the conversation; hosted and namespace tools are accepted
//! and never called.
//!
//! A request asking for reasoning (`reasoning.effort` other than `none`, or a
//! `reasoning.summary`) gets a reasoning item first: summarised when a summary is asked for,
//! with `encrypted_content` when `include` asks for it; its words are reasoning tokens,
//! counted in the output tokens. A stream is the documented event sequence, each event with
//! `type` and `sequence_number`, ending with `response.completed`; `midstream_error` ends it
//! with an `error` event and `response.failed` instead. `no_content` leaves `output` empty
//! (a stream without output items); the format-independent faults are `crate::faults`'
//! business.

use serde_json::{json, Value};

use crate::conversation::{self, Answer, Conversation, Tool, ToolChoice, Turn, Usage};
use crate::openai::{bad_request, content_text, invalid_json, model};
use crate::{Call, Reply};

const SSE: &str = "text/event-stream";
/// Stands in for the opaque reasoning state OpenAI returns when `include` asks for it.
const ENCRYPTED_REASONING: &str = "gAAAAABtb2NrLWVuY3J5cHRlZC1yZWFzb25pbmc=";
/// How many events of a stream come before the `cut` or `midstream_error` directive ends it:
/// `response.created`, `response.in_progress` and the first item's first two events.
const EVENTS_BEFORE_FAILURE: usize = 4;

pub fn create(call: &Call) -> Reply {
    let Some(body) = call.body.filter(|b| b.is_object()) else {
        return invalid_json();
    };
    if let Some(id) = body.get("previous_response_id").and_then(Value::as_str) {
        // The mock stores nothing, as with `store: false`.
        return bad_request(
            &format!("Previous response with id '{id}' not found."),
            Some("previous_response_id"),
        );
    }
    let conversation = match conversation(body) {
        Ok(c) => c,
        Err((message, param)) => return bad_request(&message, Some(&param)),
    };
    let (answer, mut usage) = conversation::respond(&conversation, call.directives);

    let mut output = Vec::new();
    if let Some(summarised) = reasoning_asked(body) {
        let thought = conversation::thought(&conversation);
        let tokens = call
            .directives
            .usage
            .reasoning
            .unwrap_or_else(|| conversation::words(&thought));
        usage.reasoning = tokens;
        if call.directives.usage.completion.is_none() {
            usage.completion += tokens;
        }
        let encrypted = body
            .get("include")
            .and_then(Value::as_array)
            .is_some_and(|i| i.iter().any(|v| v == "reasoning.encrypted_content"));
        output.push(Item::Reasoning {
            id: format!("rs_mock_{}", call.seq),
            summary: summarised.then_some(thought),
            encrypted,
        });
    }
    output.push(match answer {
        Answer::Text(text) => Item::Message {
            id: format!("msg_mock_{}", call.seq),
            text,
        },
        Answer::ToolCall(tool_call) => Item::FunctionCall {
            id: format!("fc_mock_{}", call.seq),
            call_id: tool_call.id.clone(),
            name: tool_call.name.clone(),
            arguments: tool_call.arguments_json(),
        },
    });
    if call.directives.no_content {
        output.clear();
    }
    let response = Response {
        id: format!("resp_mock_{}", call.seq),
        created_at: call.created,
        model: model(call),
        request: body,
        output,
        usage,
    };
    if body.get("stream").and_then(Value::as_bool) == Some(true) {
        return response.stream(call);
    }
    Reply::json(200, &response.json("completed", true, Value::Null))
}

// ---------------------------------------------------------------------------------------------
// Requests

/// The request as the shared conversation logic sees it, or the 400 OpenAI would give
/// (message, param).
fn conversation(body: &Value) -> Result<Conversation, (String, String)> {
    let mut turns = Vec::new();
    if let Some(instructions) = body.get("instructions").and_then(Value::as_str) {
        turns.push(Turn::new("system", instructions));
    }
    match body.get("input") {
        Some(Value::String(text)) => turns.push(Turn::new("user", text.as_str())),
        Some(Value::Array(items)) => {
            // Call ids of the function calls seen so far.
            let mut calls: Vec<&str> = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match item
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("message")
                {
                    "message" => {
                        let role = match item.get("role").and_then(Value::as_str) {
                            Some("developer") => "system",
                            Some(role @ ("system" | "user" | "assistant")) => role,
                            other => {
                                return Err((
                                    format!(
                                        "Invalid value: '{}'. Supported values are: 'assistant', \
                                         'system', 'developer', and 'user'.",
                                        other.unwrap_or("")
                                    ),
                                    format!("input[{i}].role"),
                                ))
                            }
                        };
                        turns.push(Turn::new(role, content_text(item.get("content"))));
                    }
                    "function_call" => {
                        if let Some(id) = item.get("call_id").and_then(Value::as_str) {
                            calls.push(id);
                        }
                        turns.push(Turn::new("assistant", ""));
                    }
                    "function_call_output" => {
                        let id = item.get("call_id").and_then(Value::as_str).unwrap_or("");
                        if !calls.contains(&id) {
                            return Err((
                                format!(
                                    "No tool call found for function call output with call_id {id}."
                                ),
                                "input".to_owned(),
                            ));
                        }
                        turns.push(Turn::new("tool", content_text(item.get("output"))));
                    }
                    _ => {}
                }
            }
        }
        _ => {
            return Err((
                "Missing required parameter: 'input'.".to_owned(),
                "input".to_owned(),
            ))
        }
    }
    let tools = body
        .get("tools")
        .and_then(Value::as_array)
        .map(|tools| {
            tools
                .iter()
                .filter(|t| t.get("type").and_then(Value::as_str) == Some("function"))
                .filter_map(|t| {
                    Some(Tool {
                        name: t.get("name")?.as_str()?.to_owned(),
                        parameters: t.get("parameters").cloned().unwrap_or(Value::Null),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let tool_choice = match body.get("tool_choice") {
        Some(Value::String(choice)) if choice == "none" => ToolChoice::None,
        Some(choice @ Value::Object(_)) => choice
            .get("name")
            .and_then(Value::as_str)
            .map(|name| ToolChoice::Named(name.to_owned()))
            .unwrap_or_default(),
        _ => ToolChoice::Auto,
    };
    Ok(Conversation {
        turns,
        tools,
        tool_choice,
    })
}

/// Whether the request asks for reasoning, and if so whether for a summary of it.
fn reasoning_asked(body: &Value) -> Option<bool> {
    let reasoning = body.get("reasoning").filter(|r| r.is_object())?;
    let summary = reasoning
        .get("summary")
        .and_then(Value::as_str)
        .is_some_and(|s| s != "none");
    let effort = reasoning
        .get("effort")
        .and_then(Value::as_str)
        .is_some_and(|e| e != "none");
    (summary || effort).then_some(summary)
}

// ---------------------------------------------------------------------------------------------
// Answers

/// One output item.
enum Item {
    Reasoning {
        id: String,
        /// The summary text, when a summary was asked for.
        summary: Option<String>,
        encrypted: bool,
    },
    Message {
        id: String,
        text: String,
    },
    FunctionCall {
        id: String,
        call_id: String,
        name: String,
        arguments: String,
    },
}

fn output_text(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

fn summary_text(text: &str) -> Value {
    json!({"type": "summary_text", "text": text})
}

impl Item {
    fn id(&self) -> &str {
        match self {
            Item::Reasoning { id, .. }
            | Item::Message { id, .. }
            | Item::FunctionCall { id, .. } => id,
        }
    }

    /// The item as `response.output_item.added` shows it (nothing generated yet).
    fn started(&self) -> Value {
        match self {
            Item::Reasoning { id, .. } => json!({"id": id, "type": "reasoning", "summary": []}),
            Item::Message { id, .. } => json!({"id": id, "type": "message",
                "status": "in_progress", "role": "assistant", "content": []}),
            Item::FunctionCall {
                id, call_id, name, ..
            } => json!({"id": id, "type": "function_call", "status": "in_progress",
                "arguments": "", "call_id": call_id, "name": name}),
        }
    }

    /// The finished item, as in `output` and `response.output_item.done`.
    fn done(&self) -> Value {
        match self {
            Item::Reasoning {
                id,
                summary,
                encrypted,
            } => {
                let mut item = json!({"id": id, "type": "reasoning",
                    "summary": summary.as_deref().map(summary_text).into_iter().collect::<Vec<_>>()});
                if *encrypted {
                    item["encrypted_content"] = json!(ENCRYPTED_REASONING);
                }
                item
            }
            Item::Message { id, text } => json!({"id": id, "type": "message",
                "status": "completed", "role": "assistant", "content": [output_text(text)]}),
            Item::FunctionCall {
                id,
                call_id,
                name,
                arguments,
            } => json!({"id": id, "type": "function_call", "status": "completed",
                "arguments": arguments, "call_id": call_id, "name": name}),
        }
    }

    /// The events between the item's `output_item.added` and `output_item.done`.
    fn deltas(&self, output_index: usize) -> Vec<Value> {
        let item_id = self.id();
        let at =
            |kind: &str| json!({"type": kind, "item_id": item_id, "output_index": output_index});
        let mut events = Vec::new();
        match self {
            Item::Reasoning { summary: None, .. } => {}
            Item::Reasoning {
                summary: Some(text),
                ..
            } => {
                let part = |kind: &str, text: &str| {
                    let mut event = at(kind);
                    event["summary_index"] = json!(0);
                    event["part"] = summary_text(text);
                    event
                };
                events.push(part("response.reasoning_summary_part.added", ""));
                for piece in conversation::stream_pieces(text) {
                    let mut event = at("response.reasoning_summary_text.delta");
                    event["summary_index"] = json!(0);
                    event["delta"] = json!(piece);
                    events.push(event);
                }
                let mut event = at("response.reasoning_summary_text.done");
                event["summary_index"] = json!(0);
                event["text"] = json!(text);
                events.push(event);
                events.push(part("response.reasoning_summary_part.done", text));
            }
            Item::Message { text, .. } => {
                let content = |kind: &str| {
                    let mut event = at(kind);
                    event["content_index"] = json!(0);
                    event
                };
                let mut event = content("response.content_part.added");
                event["part"] = output_text("");
                events.push(event);
                for piece in conversation::stream_pieces(text) {
                    let mut event = content("response.output_text.delta");
                    event["delta"] = json!(piece);
                    event["logprobs"] = json!([]);
                    events.push(event);
                }
                let mut event = content("response.output_text.done");
                event["text"] = json!(text);
                event["logprobs"] = json!([]);
                events.push(event);
                let mut event = content("response.content_part.done");
                event["part"] = output_text(text);
                events.push(event);
            }
            Item::FunctionCall { arguments, .. } => {
                for fragment in conversation::fragments(arguments, 3) {
                    let mut event = at("response.function_call_arguments.delta");
                    event["delta"] = json!(fragment);
                    events.push(event);
                }
                let mut event = at("response.function_call_arguments.done");
                event["arguments"] = json!(arguments);
                events.push(event);
            }
        }
        events
    }
}

fn usage_json(usage: &Usage) -> Value {
    json!({
        "input_tokens": usage.prompt,
        "input_tokens_details": {"cached_tokens": usage.cached},
        "output_tokens": usage.completion,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning},
        "total_tokens": usage.total()
    })
}

struct Response<'a> {
    id: String,
    created_at: u64,
    model: String,
    /// What the response object echoes back (instructions, tools, settings).
    request: &'a Value,
    output: Vec<Item>,
    usage: Usage,
}

impl Response<'_> {
    /// The response object with this status; the output and usage only when `finished`.
    fn json(&self, status: &str, finished: bool, error: Value) -> Value {
        let echo = |key: &str, default: Value| match self.request.get(key) {
            Some(value) if !value.is_null() => value.clone(),
            _ => default,
        };
        let reasoning = |key: &str| self.request.pointer(&format!("/reasoning/{key}")).cloned();
        let output: Vec<Value> = if finished {
            self.output.iter().map(Item::done).collect()
        } else {
            Vec::new()
        };
        json!({
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "background": false,
            "error": error,
            "incomplete_details": null,
            "instructions": echo("instructions", Value::Null),
            "max_output_tokens": echo("max_output_tokens", Value::Null),
            "model": self.model,
            "output": output,
            "parallel_tool_calls": echo("parallel_tool_calls", json!(true)),
            "previous_response_id": null,
            "reasoning": {
                "effort": reasoning("effort").unwrap_or(Value::Null),
                "summary": reasoning("summary").unwrap_or(Value::Null)
            },
            "service_tier": "default",
            "store": echo("store", json!(true)),
            "temperature": echo("temperature", json!(1.0)),
            "text": echo("text", json!({"format": {"type": "text"}})),
            "tool_choice": echo("tool_choice", json!("auto")),
            "tools": echo("tools", json!([])),
            "top_p": echo("top_p", json!(1.0)),
            "truncation": echo("truncation", json!("disabled")),
            "usage": if finished { usage_json(&self.usage) } else { Value::Null },
            "user": null,
            "metadata": echo("metadata", json!({}))
        })
    }

    /// The event sequence, spoiled as the directives ask.
    fn stream(&self, call: &Call) -> Reply {
        let lifecycle = |kind: &str, response: Value| json!({"type": kind, "response": response});
        let mut events = vec![
            lifecycle(
                "response.created",
                self.json("in_progress", false, Value::Null),
            ),
            lifecycle(
                "response.in_progress",
                self.json("in_progress", false, Value::Null),
            ),
        ];
        for (output_index, item) in self.output.iter().enumerate() {
            events.push(json!({"type": "response.output_item.added",
                "output_index": output_index, "item": item.started()}));
            events.extend(item.deltas(output_index));
            events.push(json!({"type": "response.output_item.done",
                "output_index": output_index, "item": item.done()}));
        }
        events.push(lifecycle(
            "response.completed",
            self.json("completed", true, Value::Null),
        ));

        let directives = call.directives;
        if directives.midstream_error {
            events.truncate(EVENTS_BEFORE_FAILURE);
            let message =
                "The server had an error while processing your request. Sorry about that!";
            events.push(
                json!({"type": "error", "code": "server_error", "message": message,
                "param": null}),
            );
            events.push(lifecycle(
                "response.failed",
                self.json(
                    "failed",
                    false,
                    json!({"code": "server_error", "message": message}),
                ),
            ));
        }
        if directives.cut {
            events.truncate(EVENTS_BEFORE_FAILURE);
        }
        if directives.malformed {
            events.truncate(2);
        }
        let mut frames: Vec<Vec<u8>> = events
            .into_iter()
            .enumerate()
            .map(|(sequence_number, mut event)| {
                event["sequence_number"] = json!(sequence_number);
                let kind = event["type"].as_str().unwrap_or("").to_owned();
                format!("event: {kind}\ndata: {event}\n\n").into_bytes()
            })
            .collect();
        if directives.malformed {
            frames.push(b"event: response.output_item.added\ndata: {not json\n\n".to_vec());
        }
        Reply::Stream {
            content_type: SSE,
            events: frames,
        }
    }
}
