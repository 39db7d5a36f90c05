//! Anthropic's Messages API: `POST */v1/messages` (JSON and SSE), token counting
//! (`POST */v1/messages/count_tokens`) and Anthropic's error bodies.
//!
//! Requests are checked the way Anthropic checks them where a translator can get it wrong
//! (`max_tokens` required, tool results right after their tool calls and first in their turn,
//! tools declared when tool blocks are present, system messages only right after a user
//! message, thinking constraints), so end-to-end tests catch a bad translation as a 400. With
//! `thinking` enabled (or adaptive) the answer starts with a signed thinking block, its text
//! left empty when the request asks for `display: omitted` (as Claude Code does).

use axum::http::Method;
use serde_json::{json, Map, Value};

use crate::conversation::{self, Answer, Conversation, Tool, ToolChoice, Turn, Usage};
use crate::{Call, Reply};

const SSE: &str = "text/event-stream";
/// Id of the tool call the mock makes, in Anthropic's style.
const TOOL_USE_ID: &str = "toolu_mock_1";
const SIGNATURE: &str = "c2lnbmF0dXJlLW1vY2s=";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// POST `*/v1/messages`
    Messages,
    /// POST `*/v1/messages/count_tokens`
    CountTokens,
}

/// Matches by path suffix, whatever comes before (a directive prefix, a proxy path...).
pub fn route(method: &Method, path: &str) -> Option<Endpoint> {
    let path = path.trim_end_matches('/');
    if *method != Method::POST {
        return None;
    }
    if path.ends_with("/v1/messages") {
        Some(Endpoint::Messages)
    } else if path.ends_with("/v1/messages/count_tokens") {
        Some(Endpoint::CountTokens)
    } else {
        None
    }
}

pub fn handle(endpoint: &Endpoint, call: &Call) -> Reply {
    match endpoint {
        Endpoint::Messages => messages(call),
        Endpoint::CountTokens => count_tokens(call),
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

fn error_body(kind: &str, message: &str, call: &Call) -> Value {
    json!({
        "type": "error",
        "error": {"type": kind, "message": message},
        "request_id": format!("req_mock_{}", call.seq)
    })
}

/// The error Anthropic sends for this status (529 is its "overloaded").
pub fn error(status: u16, call: &Call) -> Reply {
    let (kind, message) = match status {
        400 => ("invalid_request_error", "Invalid request (mock error)."),
        401 => ("authentication_error", "invalid x-api-key"),
        402 => ("billing_error", "Your credit balance is too low."),
        403 => (
            "permission_error",
            "Your API key does not have permission to use the specified resource.",
        ),
        404 => ("not_found_error", "model: not found (mock error)"),
        413 => (
            "request_too_large",
            "Request exceeds the maximum allowed size.",
        ),
        429 => (
            "rate_limit_error",
            "Number of requests has exceeded your rate limit.",
        ),
        504 => ("timeout_error", "Request timed out."),
        503 | 529 => ("overloaded_error", "Overloaded"),
        s if s >= 500 => ("api_error", "Internal server error"),
        _ => ("invalid_request_error", "Mock error."),
    };
    let reply = Reply::json(status, &error_body(kind, message, call));
    if status == 429 {
        reply.with_header("retry-after", "1")
    } else {
        reply
    }
}

/// The 401 (or `status`) Anthropic sends for a wrong key, quoting the key as presented.
pub fn invalid_key(status: u16, key: &str, call: &Call) -> Reply {
    let message = format!("invalid x-api-key: {key}");
    Reply::json(status, &error_body("authentication_error", &message, call))
}

fn invalid(message: &str, call: &Call) -> Reply {
    Reply::json(400, &error_body("invalid_request_error", message, call))
}

// ---------------------------------------------------------------------------------------------
// Requests

/// Blocks of a message or system content: a string is one text block.
fn blocks(content: Option<&Value>) -> Vec<Value> {
    match content {
        Some(Value::String(text)) => vec![json!({"type": "text", "text": text})],
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    }
}

fn block_type(block: &Value) -> &str {
    block.get("type").and_then(Value::as_str).unwrap_or("")
}

/// Text of the text blocks, joined with a space.
fn text_of(blocks: &[Value]) -> String {
    blocks
        .iter()
        .filter(|b| block_type(b) == "text")
        .filter_map(|b| b.get("text").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The request as the shared conversation logic sees it, or the 400 Anthropic would give.
fn conversation(body: &Value) -> Result<Conversation, String> {
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or("messages: Field required")?;
    let tools: Vec<Tool> = body
        .get("tools")
        .and_then(Value::as_array)
        .map(|tools| {
            tools
                .iter()
                .filter_map(|t| {
                    Some(Tool {
                        name: t.get("name")?.as_str()?.to_owned(),
                        parameters: t.get("input_schema").cloned().unwrap_or(Value::Null),
                    })
                })
                .collect()
        })
        .unwrap_or_default();

    let mut turns = Vec::new();
    let system = blocks(body.get("system"));
    if !system.is_empty() {
        turns.push(Turn::new("system", text_of(&system)));
    }
    // Tool calls of the previous assistant message still waiting for their results.
    let mut pending_calls: Vec<String> = Vec::new();
    let mut saw_tool_blocks = false;
    let mut previous_role = "";
    for (i, message) in messages.iter().enumerate() {
        let role = message.get("role").and_then(Value::as_str).unwrap_or("");
        let content = blocks(message.get("content"));
        if content.is_empty() {
            return Err(format!(
                "messages.{i}: all messages must have non-empty content"
            ));
        }
        for (j, block) in content.iter().enumerate() {
            if block_type(block) == "text" && block.get("text").and_then(Value::as_str) == Some("")
            {
                return Err(format!(
                    "messages.{i}.content.{j}.text: text content blocks must be non-empty"
                ));
            }
        }
        match role {
            "user" => {
                let results: Vec<&Value> = content
                    .iter()
                    .filter(|b| block_type(b) == "tool_result")
                    .collect();
                let leading = content
                    .iter()
                    .take_while(|b| block_type(b) == "tool_result")
                    .count();
                if leading != results.len() {
                    return Err(format!(
                        "messages.{i}: tool_result blocks must come first in the user message"
                    ));
                }
                for result in &results {
                    let id = result
                        .get("tool_use_id")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    if !pending_calls.iter().any(|p| p == id) {
                        return Err(format!(
                            "messages.{i}: unexpected `tool_use_id` found in `tool_result` blocks: {id}. \
                             Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
                        ));
                    }
                    pending_calls.retain(|p| p != id);
                    let text = text_of(&blocks(result.get("content")));
                    turns.push(Turn::new("tool", text));
                }
                saw_tool_blocks |= !results.is_empty();
                if !pending_calls.is_empty() {
                    return Err(format!(
                        "messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: {}",
                        pending_calls.join(", ")
                    ));
                }
                if leading < content.len() {
                    let rest = content.get(leading..).unwrap_or_default();
                    turns.push(Turn::new("user", text_of(rest)));
                }
            }
            "assistant" => {
                if !pending_calls.is_empty() {
                    return Err(format!(
                        "messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after"
                    ));
                }
                pending_calls = content
                    .iter()
                    .filter(|b| block_type(b) == "tool_use")
                    .filter_map(|b| b.get("id").and_then(Value::as_str).map(str::to_owned))
                    .collect();
                saw_tool_blocks |= !pending_calls.is_empty();
                turns.push(Turn::new("assistant", text_of(&content)));
            }
            // Mid-conversation instructions: accepted right after a user message.
            "system" if previous_role == "user" => {
                turns.push(Turn::new("system", text_of(&content)));
            }
            "system" if i > 0 => {
                return Err(format!(
                    "messages.{i}: a system message must immediately follow a user message"
                ))
            }
            other => {
                return Err(format!(
                    "messages.{i}.role: Input should be 'user' or 'assistant', got '{other}'"
                ))
            }
        }
        previous_role = role;
    }
    if saw_tool_blocks && tools.is_empty() {
        return Err(
            "Requests which include `tool_use` or `tool_result` blocks must define tools."
                .to_owned(),
        );
    }
    let tool_choice = match body.pointer("/tool_choice/type").and_then(Value::as_str) {
        Some("none") => ToolChoice::None,
        Some("tool") => body
            .pointer("/tool_choice/name")
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

/// How the answer shows its thinking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Thinking {
    Off,
    /// A thinking block with its text.
    Shown,
    /// A thinking block with its signature but an empty text (`display: omitted`).
    Omitted,
}

/// How the request asks to think, after checking Anthropic's constraints on it.
fn thinking(body: &Value, max_tokens: u64) -> Result<Thinking, String> {
    let Some(thinking) = body.get("thinking") else {
        return Ok(Thinking::Off);
    };
    match thinking.get("type").and_then(Value::as_str) {
        Some("disabled") => return Ok(Thinking::Off),
        Some("enabled") => {
            let budget = thinking
                .get("budget_tokens")
                .and_then(Value::as_u64)
                .ok_or("thinking.enabled.budget_tokens: Field required")?;
            if budget < 1024 {
                return Err(
                    "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
                        .to_owned(),
                );
            }
            if max_tokens <= budget {
                return Err("`max_tokens` must be greater than `thinking.budget_tokens`".to_owned());
            }
        }
        // The model decides how much to think; the mock always thinks.
        Some("adaptive") => {}
        _ => {
            return Err(
                "thinking.type: Input should be 'enabled', 'disabled' or 'adaptive'".to_owned(),
            )
        }
    }
    let display = match thinking.get("display").and_then(Value::as_str) {
        None | Some("summarized") => Thinking::Shown,
        Some("omitted") => Thinking::Omitted,
        Some(other) => {
            return Err(format!(
                "thinking.display: Input should be 'summarized' or 'omitted', got '{other}'"
            ))
        }
    };
    if body.get("temperature").is_some() || body.get("top_k").is_some() {
        return Err("`temperature` and `top_k` may not be set when thinking is enabled".to_owned());
    }
    if matches!(
        body.pointer("/tool_choice/type").and_then(Value::as_str),
        Some("any" | "tool")
    ) {
        return Err("Thinking may not be enabled when tool_choice forces tool use.".to_owned());
    }
    Ok(display)
}

// ---------------------------------------------------------------------------------------------
// Answers

/// Anthropic's usage: `input_tokens` excludes what was read from or written to the cache.
fn usage_json(usage: &Usage, thinking_tokens: Option<u64>) -> Value {
    let mut out = json!({
        "input_tokens": usage.prompt.saturating_sub(usage.cached).saturating_sub(usage.cache_write),
        "cache_creation_input_tokens": usage.cache_write,
        "cache_read_input_tokens": usage.cached,
        "output_tokens": usage.completion
    });
    if let (Some(tokens), Some(map)) = (thinking_tokens, out.as_object_mut()) {
        map.insert(
            "output_tokens_details".to_owned(),
            json!({"thinking_tokens": tokens}),
        );
    }
    out
}

fn messages(call: &Call) -> Reply {
    let Some(body) = call.body.filter(|b| b.is_object()) else {
        return invalid("There was an error parsing the body: not valid JSON.", call);
    };
    let Some(model) = body.get("model").and_then(Value::as_str) else {
        return invalid("model: Field required", call);
    };
    let Some(max_tokens) = body.get("max_tokens").and_then(Value::as_u64) else {
        return invalid("max_tokens: Field required", call);
    };
    let conversation = match conversation(body) {
        Ok(c) => c,
        Err(message) => return invalid(&message, call),
    };
    let thinking = match thinking(body, max_tokens) {
        Ok(t) => t,
        Err(message) => return invalid(&message, call),
    };
    let (answer, mut usage) = conversation::respond(&conversation, call.directives);
    let thought = (thinking != Thinking::Off).then(|| Thought {
        text: conversation::thought(&conversation),
        shown: thinking == Thinking::Shown,
    });
    // Omitted thinking is still thought, and billed.
    let thinking_tokens = thought.as_ref().map(|t| {
        let tokens = call
            .directives
            .usage
            .reasoning
            .unwrap_or_else(|| conversation::words(&t.text));
        if call.directives.usage.completion.is_none() {
            usage.completion += tokens;
        }
        tokens
    });
    let message = Message {
        id: format!("msg_mock_{}", call.seq),
        model: model.to_owned(),
        thought,
        answer,
        usage_json: usage_json(&usage, thinking_tokens),
        output_tokens: usage.completion,
    };
    if body.get("stream").and_then(Value::as_bool) == Some(true) {
        return message.stream(call);
    }
    Reply::json(200, &message.json(call.directives.no_content))
}

/// Token counting: what the same request would be billed as input.
fn count_tokens(call: &Call) -> Reply {
    let Some(body) = call.body.filter(|b| b.is_object()) else {
        return invalid("There was an error parsing the body: not valid JSON.", call);
    };
    if body.get("model").and_then(Value::as_str).is_none() {
        return invalid("model: Field required", call);
    }
    let conversation = match conversation(body) {
        Ok(c) => c,
        Err(message) => return invalid(&message, call),
    };
    let input_tokens = call
        .directives
        .usage
        .prompt
        .unwrap_or_else(|| conversation::prompt_tokens(&conversation.turns));
    let counted = if call.directives.no_content {
        json!({})
    } else {
        json!({"input_tokens": input_tokens})
    };
    Reply::json(200, &counted)
}

struct Thought {
    text: String,
    /// Whether the text is shown, or only the block and its signature.
    shown: bool,
}

impl Thought {
    fn shown_text(&self) -> &str {
        if self.shown {
            &self.text
        } else {
            ""
        }
    }
}

struct Message {
    id: String,
    model: String,
    thought: Option<Thought>,
    answer: Answer,
    usage_json: Value,
    output_tokens: u64,
}

impl Message {
    fn stop_reason(&self) -> &'static str {
        match self.answer {
            Answer::Text(_) => "end_turn",
            Answer::ToolCall(_) => "tool_use",
        }
    }

    fn json(&self, no_content: bool) -> Value {
        let mut content = Vec::new();
        if let Some(thought) = &self.thought {
            content.push(json!({"type": "thinking", "thinking": thought.shown_text(),
                "signature": SIGNATURE}));
        }
        content.push(match &self.answer {
            Answer::Text(text) => json!({"type": "text", "text": text}),
            Answer::ToolCall(call) => json!({
                "type": "tool_use", "id": TOOL_USE_ID, "name": call.name, "input": call.arguments
            }),
        });
        if no_content {
            content.clear();
        }
        json!({
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": self.stop_reason(),
            "stop_sequence": null,
            "usage": self.usage_json
        })
    }

    /// message_start, ping, one block per part (start, deltas, stop), message_delta,
    /// message_stop; spoiled as the directives ask.
    fn stream(&self, call: &Call) -> Reply {
        let mut start_usage = self.usage_json.clone();
        if let Some(map) = start_usage.as_object_mut() {
            map.insert("output_tokens".to_owned(), json!(1));
            map.remove("output_tokens_details");
        }
        let mut events = vec![
            event(
                "message_start",
                json!({"type": "message_start", "message": {
                    "id": self.id, "type": "message", "role": "assistant", "model": self.model,
                    "content": [], "stop_reason": null, "stop_sequence": null, "usage": start_usage
                }}),
            ),
            event("ping", json!({"type": "ping"})),
        ];
        if !call.directives.no_content {
            events.extend(self.block_events());
        }
        let mut delta_usage = Map::new();
        delta_usage.insert("output_tokens".to_owned(), json!(self.output_tokens));
        if let Some(details) = self.usage_json.get("output_tokens_details") {
            delta_usage.insert("output_tokens_details".to_owned(), details.clone());
        }
        events.push(event(
            "message_delta",
            json!({"type": "message_delta",
                "delta": {"stop_reason": self.stop_reason(), "stop_sequence": null},
                "usage": delta_usage}),
        ));
        events.push(event("message_stop", json!({"type": "message_stop"})));

        let directives = call.directives;
        if directives.malformed {
            events.truncate(2);
            events.push(b"event: content_block_start\ndata: {not json\n\n".to_vec());
        }
        if directives.midstream_error {
            events.truncate(4);
            events.push(event(
                "error",
                error_body("overloaded_error", "Overloaded", call),
            ));
        }
        if directives.cut {
            events.truncate(4);
        }
        Reply::Stream {
            content_type: SSE,
            events,
        }
    }

    /// Start, deltas and stop of each content block: the thinking, then the answer.
    fn block_events(&self) -> Vec<Vec<u8>> {
        let mut events = Vec::new();
        let mut index = 0;
        if let Some(thought) = &self.thought {
            events.push(block_start(
                index,
                json!({"type": "thinking", "thinking": ""}),
            ));
            for piece in conversation::stream_pieces(thought.shown_text()) {
                events.push(block_delta(
                    index,
                    json!({"type": "thinking_delta", "thinking": piece}),
                ));
            }
            events.push(block_delta(
                index,
                json!({"type": "signature_delta", "signature": SIGNATURE}),
            ));
            events.push(block_stop(index));
            index += 1;
        }
        match &self.answer {
            Answer::Text(text) => {
                events.push(block_start(index, json!({"type": "text", "text": ""})));
                for piece in conversation::stream_pieces(text) {
                    events.push(block_delta(
                        index,
                        json!({"type": "text_delta", "text": piece}),
                    ));
                }
            }
            Answer::ToolCall(tool_call) => {
                events.push(block_start(
                    index,
                    json!({"type": "tool_use", "id": TOOL_USE_ID, "name": tool_call.name, "input": {}}),
                ));
                // Anthropic opens tool input with an empty fragment.
                events.push(block_delta(
                    index,
                    json!({"type": "input_json_delta", "partial_json": ""}),
                ));
                let arguments = tool_call.arguments_json();
                for fragment in conversation::fragments(&arguments, 3) {
                    events.push(block_delta(
                        index,
                        json!({"type": "input_json_delta", "partial_json": fragment}),
                    ));
                }
            }
        }
        events.push(block_stop(index));
        events
    }
}

fn event(name: &str, data: Value) -> Vec<u8> {
    format!("event: {name}\ndata: {data}\n\n").into_bytes()
}

fn block_start(index: u32, block: Value) -> Vec<u8> {
    event(
        "content_block_start",
        json!({"type": "content_block_start", "index": index, "content_block": block}),
    )
}

fn block_delta(index: u32, delta: Value) -> Vec<u8> {
    event(
        "content_block_delta",
        json!({"type": "content_block_delta", "index": index, "delta": delta}),
    )
}

fn block_stop(index: u32) -> Vec<u8> {
    event(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": index}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Directives;

    fn call<'a>(body: &'a Value, directives: &'a Directives) -> Call<'a> {
        Call {
            seq: 7,
            method: &Method::POST,
            path: "/v1/messages",
            body: Some(body),
            directives,
            created: 1_700_000_000,
        }
    }

    fn reply_json(reply: Reply) -> (u16, Value) {
        match reply {
            Reply::Full { status, body, .. } => (status, serde_json::from_slice(&body).unwrap()),
            Reply::Stream { .. } => panic!("a JSON reply was expected"),
        }
    }

    /// The stream's events as (name, data).
    fn reply_events(reply: Reply) -> Vec<(String, String)> {
        let Reply::Stream { events, .. } = reply else {
            panic!("a stream was expected")
        };
        events
            .iter()
            .map(|e| {
                let text = String::from_utf8(e.clone()).unwrap();
                let (name, data) = text.trim_end().split_once('\n').unwrap();
                (
                    name.strip_prefix("event: ").unwrap().to_owned(),
                    data.strip_prefix("data: ").unwrap().to_owned(),
                )
            })
            .collect()
    }

    const WEATHER: &str = r#"{"name":"get_weather","input_schema":{"type":"object",
        "properties":{"city":{"type":"string"}},"required":["city"]}}"#;

    #[test]
    fn routes_by_suffix() {
        assert_eq!(
            route(&Method::POST, "/v1/messages"),
            Some(Endpoint::Messages)
        );
        assert_eq!(
            route(&Method::POST, "/proxy/v1/messages/"),
            Some(Endpoint::Messages)
        );
        assert_eq!(route(&Method::GET, "/v1/messages"), None);
        assert_eq!(route(&Method::POST, "/v1/chat/completions"), None);
    }

    #[test]
    fn text_answer_with_cache_reads_outside_input_tokens() {
        let body = json!({"model": "claude-x", "max_tokens": 100, "system": "be brief",
            "messages": [{"role": "user", "content": "hello there"}]});
        let directives = Directives {
            usage: crate::UsageOverride {
                prompt: Some(50),
                cached: Some(20),
                ..Default::default()
            },
            ..Default::default()
        };
        let (status, answer) = reply_json(handle(&Endpoint::Messages, &call(&body, &directives)));
        assert_eq!(status, 200);
        assert_eq!(
            answer,
            json!({"id": "msg_mock_7", "type": "message", "role": "assistant", "model": "claude-x",
                "content": [{"type": "text", "text": "echo: hello there"}],
                "stop_reason": "end_turn", "stop_sequence": null,
                "usage": {"input_tokens": 30, "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 20, "output_tokens": 3}})
        );
    }

    #[test]
    fn tool_call_then_tool_result() {
        let tools: Value = serde_json::from_str(&format!("[{WEATHER}]")).unwrap();
        let body = json!({"model": "c", "max_tokens": 100, "tools": tools,
            "tool_choice": {"type": "tool", "name": "get_weather"},
            "messages": [{"role": "user", "content": [{"type": "text", "text": "weather?"}]}]});
        let (_, answer) = reply_json(messages(&call(&body, &Directives::default())));
        assert_eq!(answer["stop_reason"], "tool_use");
        assert_eq!(
            answer["content"],
            json!([{"type": "tool_use", "id": "toolu_mock_1", "name": "get_weather", "input": {"city": "mock"}}])
        );

        let body = json!({"model": "c", "max_tokens": 100, "tools": tools, "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_mock_1", "name": "get_weather", "input": {"city": "mock"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_mock_1", "content": "18C"}]}]});
        let (_, answer) = reply_json(messages(&call(&body, &Directives::default())));
        assert_eq!(
            answer["content"],
            json!([{"type": "text", "text": "tool result: 18C"}])
        );
    }

    #[test]
    fn refuses_what_anthropic_refuses() {
        let cases = [
            (
                json!({"model": "c", "messages": [{"role": "user", "content": "x"}]}),
                "max_tokens: Field required",
            ),
            (
                json!({"model": "c", "max_tokens": 9, "messages": [{"role": "system", "content": "x"}]}),
                "messages.0.role",
            ),
            (
                json!({"model": "c", "max_tokens": 9, "messages": [{"role": "user", "content": ""}]}),
                "non-empty",
            ),
            (
                json!({"model": "c", "max_tokens": 9, "tools": [{"name": "f"}], "messages": [
                    {"role": "user", "content": "x"},
                    {"role": "assistant", "content": [{"type": "tool_use", "id": "a", "name": "f", "input": {}}]},
                    {"role": "user", "content": [{"type": "text", "text": "y"}, {"type": "tool_result", "tool_use_id": "a"}]}]}),
                "must come first",
            ),
            (
                json!({"model": "c", "max_tokens": 9, "tools": [{"name": "f"}], "messages": [
                    {"role": "user", "content": "x"},
                    {"role": "assistant", "content": [{"type": "tool_use", "id": "a", "name": "f", "input": {}},
                        {"type": "tool_use", "id": "b", "name": "f", "input": {}}]},
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "a"}]},
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "b"}]}]}),
                "without `tool_result` blocks immediately after",
            ),
            (
                json!({"model": "c", "max_tokens": 9, "messages": [
                    {"role": "user", "content": "x"},
                    {"role": "assistant", "content": [{"type": "tool_use", "id": "a", "name": "f", "input": {}}]},
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "a"}]}]}),
                "must define tools",
            ),
            (
                json!({"model": "c", "max_tokens": 1000, "thinking": {"type": "enabled", "budget_tokens": 1024},
                    "messages": [{"role": "user", "content": "x"}]}),
                "greater than `thinking.budget_tokens`",
            ),
            (
                json!({"model": "c", "max_tokens": 2000, "temperature": 0.5,
                    "thinking": {"type": "enabled", "budget_tokens": 1024},
                    "messages": [{"role": "user", "content": "x"}]}),
                "may not be set when thinking",
            ),
            (
                json!({"model": "c", "max_tokens": 9, "messages": [
                    {"role": "user", "content": "x"},
                    {"role": "assistant", "content": "y"},
                    {"role": "system", "content": "z"}]}),
                "must immediately follow a user message",
            ),
            (
                json!({"model": "c", "max_tokens": 9, "thinking": {"type": "auto"},
                    "messages": [{"role": "user", "content": "x"}]}),
                "thinking.type",
            ),
            (
                json!({"model": "c", "max_tokens": 9, "thinking": {"type": "adaptive", "display": "full"},
                    "messages": [{"role": "user", "content": "x"}]}),
                "thinking.display",
            ),
        ];
        for (body, expected) in cases {
            let (status, answer) = reply_json(messages(&call(&body, &Directives::default())));
            assert_eq!(status, 400, "{body}");
            assert_eq!(answer["error"]["type"], "invalid_request_error");
            let message = answer["error"]["message"].as_str().unwrap();
            assert!(message.contains(expected), "{body}: {message}");
        }
    }

    #[test]
    fn thinking_comes_first_and_counts_as_output() {
        let body = json!({"model": "c", "max_tokens": 2000,
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "messages": [{"role": "user", "content": "two words"}]});
        let (_, answer) = reply_json(messages(&call(&body, &Directives::default())));
        assert_eq!(
            answer["content"],
            json!([{"type": "thinking", "thinking": "The user wrote: two words", "signature": SIGNATURE},
                {"type": "text", "text": "echo: two words"}])
        );
        assert_eq!(answer["usage"]["output_tokens"], 3 + 5);
        assert_eq!(
            answer["usage"]["output_tokens_details"]["thinking_tokens"],
            5
        );
    }

    #[test]
    fn streams_text_tool_use_and_thinking() {
        let body = json!({"model": "c", "max_tokens": 2000, "stream": true,
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "messages": [{"role": "user", "content": "hi you"}]});
        let events = reply_events(messages(&call(&body, &Directives::default())));
        let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "ping",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_delta",
                "content_block_delta",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        for (name, data) in &events {
            let data: Value = serde_json::from_str(data).unwrap();
            assert_eq!(data["type"], name.as_str());
        }
        let delta: Value = serde_json::from_str(&events[15].1).unwrap();
        assert_eq!(delta["delta"]["stop_reason"], "end_turn");
        assert_eq!(delta["usage"]["output_tokens"], 3 + 5);

        let tools: Value = serde_json::from_str(&format!("[{WEATHER}]")).unwrap();
        let body = json!({"model": "c", "max_tokens": 10, "stream": true, "tools": tools,
            "messages": [{"role": "user", "content": "weather?"}]});
        let events = reply_events(messages(&call(&body, &Directives::default())));
        let arguments: String = events
            .iter()
            .filter_map(|(_, d)| {
                let d: Value = serde_json::from_str(d).unwrap();
                d.pointer("/delta/partial_json")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .collect();
        assert_eq!(arguments, r#"{"city":"mock"}"#);
        assert!(events[2].1.contains(r#""type":"tool_use""#));
    }

    #[test]
    fn stream_directives_spoil_the_stream() {
        let body = json!({"model": "c", "max_tokens": 10, "stream": true,
            "messages": [{"role": "user", "content": "a b c d e"}]});
        let cut = Directives {
            cut: true,
            ..Default::default()
        };
        let events = reply_events(messages(&call(&body, &cut)));
        assert_eq!(events.len(), 4);
        assert!(!events.iter().any(|(n, _)| n == "message_stop"));

        let failing = Directives {
            midstream_error: true,
            ..Default::default()
        };
        let events = reply_events(messages(&call(&body, &failing)));
        let (name, data) = events.last().unwrap();
        assert_eq!(name, "error");
        assert!(data.contains("overloaded_error"));
        assert_eq!(events.len(), 5);
    }

    #[test]
    fn errors_in_anthropic_shape() {
        let body = json!({});
        let directives = Directives::default();
        for (status, kind) in [
            (529, "overloaded_error"),
            (429, "rate_limit_error"),
            (401, "authentication_error"),
            (500, "api_error"),
            (400, "invalid_request_error"),
        ] {
            let (got, answer) = reply_json(error(status, &call(&body, &directives)));
            assert_eq!(got, status);
            assert_eq!(answer["type"], "error");
            assert_eq!(answer["error"]["type"], kind);
            assert_eq!(answer["request_id"], "req_mock_7");
        }
    }
}
