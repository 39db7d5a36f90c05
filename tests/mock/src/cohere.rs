//! The Cohere v2 wire format: `/v2/chat` (JSON, and SSE where each event has an `event:` line
//! and its `type` repeated in the data, ending with `data: [DONE]`), `/v2/embed`, and Cohere's
//! `{"id", "message"}` error bodies.
//!
//! Requests are checked the way Cohere checks them (unknown fields, roles, tool shapes), so a
//! translation mistake shows up as a 400 rather than as a passing test.

use axum::http::Method;
use serde_json::{json, Map, Value};

use crate::conversation::{self, Answer, Conversation, Tool, ToolChoice, Turn, Usage};
use crate::{Call, Reply};

/// Embedding length when the request does not ask for `output_dimension`.
const DEFAULT_DIMENSIONS: usize = 8;
/// Largest `output_dimension` accepted.
const MAX_DIMENSIONS: usize = 8192;
const SSE: &str = "text/event-stream";

/// Top-level fields of a v2 chat request.
const CHAT_FIELDS: &[&str] = &[
    "model",
    "messages",
    "stream",
    "tools",
    "strict_tools",
    "documents",
    "citation_options",
    "response_format",
    "safety_mode",
    "max_tokens",
    "stop_sequences",
    "temperature",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "k",
    "p",
    "logprobs",
    "tool_choice",
    "thinking",
    "priority",
];

/// Top-level fields of a v2 embed request.
const EMBED_FIELDS: &[&str] = &[
    "model",
    "texts",
    "images",
    "inputs",
    "input_type",
    "embedding_types",
    "output_dimension",
    "max_tokens",
    "truncate",
    "priority",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// POST `*/v2/chat`
    Chat,
    /// POST `*/v2/embed`
    Embed,
}

/// Matches by path suffix, whatever prefix the base URL adds.
pub fn route(method: &Method, path: &str) -> Option<Endpoint> {
    let path = path.trim_end_matches('/');
    match *method {
        Method::POST if path.ends_with("/v2/chat") => Some(Endpoint::Chat),
        Method::POST if path.ends_with("/v2/embed") => Some(Endpoint::Embed),
        _ => None,
    }
}

pub fn handle(endpoint: &Endpoint, call: &Call) -> Reply {
    let Some(body) = call.body.and_then(Value::as_object) else {
        return bad_request(call, "invalid request: the body must be a JSON object");
    };
    let checked = match endpoint {
        Endpoint::Chat => chat_request(body),
        Endpoint::Embed => embed_request(body),
    };
    match checked {
        Ok(Request::Chat {
            conversation,
            stream,
        }) => chat(call, &conversation, stream),
        Ok(Request::Embed { texts, dimensions }) => embed(call, &texts, dimensions),
        Err(message) => bad_request(call, &message),
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

fn error_body(call: &Call, message: &str) -> Value {
    json!({"id": format!("mock-cohere-error-{}", call.seq), "message": message})
}

fn bad_request(call: &Call, message: &str) -> Reply {
    Reply::json(400, &error_body(call, message))
}

/// The error Cohere sends for this status.
pub fn error(status: u16, call: &Call) -> Reply {
    let message = match status {
        400 => "invalid request: mock error".to_owned(),
        401 => "invalid api token".to_owned(),
        402 => "please add a payment method to continue using the API (mock)".to_owned(),
        404 => format!("model '{}' not found (mock)", model(call)),
        429 => "trial key rate limit exceeded: 10 calls per minute (mock)".to_owned(),
        498 => "invalid api token (mock)".to_owned(),
        499 => "request cancelled (mock)".to_owned(),
        500 => "internal server error, this has been reported to our developers (mock)".to_owned(),
        503 => "service unavailable: the model is overloaded (mock)".to_owned(),
        _ => format!("mock error with status {status}"),
    };
    Reply::json(status, &error_body(call, &message))
}

/// The 401 (or `status`) Cohere sends for a wrong key, quoting the key as presented.
pub fn invalid_key(status: u16, key: &str, call: &Call) -> Reply {
    Reply::json(
        status,
        &error_body(call, &format!("invalid api token: {key}")),
    )
}

// ---------------------------------------------------------------------------------------------
// Request checks

enum Request {
    Chat {
        conversation: Conversation,
        stream: bool,
    },
    Embed {
        texts: Vec<String>,
        dimensions: usize,
    },
}

fn model(call: &Call) -> String {
    call.body
        .and_then(|b| b.get("model"))
        .and_then(Value::as_str)
        .unwrap_or("mock-model")
        .to_owned()
}

fn known_fields(body: &Map<String, Value>, known: &[&str]) -> Result<(), String> {
    match body.keys().find(|k| !known.contains(&k.as_str())) {
        Some(field) => Err(format!(
            "invalid request: unknown field: parameter {field} is not a valid field"
        )),
        None => Ok(()),
    }
}

fn required_model(body: &Map<String, Value>) -> Result<(), String> {
    match body.get("model") {
        Some(Value::String(m)) if !m.is_empty() => Ok(()),
        _ => Err("invalid request: model is required".to_owned()),
    }
}

/// Text of a content: a string, or the `text` of its text blocks joined with a space; other
/// blocks must be images (user turns) or documents (tool turns).
fn content_text(content: Option<&Value>, role: &str, i: usize) -> Result<String, String> {
    let parts = match content {
        None | Some(Value::Null) => return Ok(String::new()),
        Some(Value::String(text)) => return Ok(text.clone()),
        Some(Value::Array(parts)) => parts,
        Some(_) => return Err(format!("invalid request: messages[{i}].content is invalid")),
    };
    let mut texts = Vec::new();
    for part in parts {
        match (part.get("type").and_then(Value::as_str), role) {
            (Some("text"), _) => match part.get("text").and_then(Value::as_str) {
                Some(text) => texts.push(text),
                None => {
                    return Err(format!(
                        "invalid request: messages[{i}] text block without text"
                    ))
                }
            },
            (Some("image_url"), "user")
                if part.pointer("/image_url/url").is_some_and(Value::is_string) => {}
            (Some("document"), "tool") => {}
            (kind, _) => {
                return Err(format!(
                "invalid request: messages[{i}]: content type {} is not allowed for role {role}",
                kind.unwrap_or("(missing)")
            ))
            }
        }
    }
    Ok(texts.join(" "))
}

fn turn(i: usize, message: &Value) -> Result<Turn, String> {
    let role = message.get("role").and_then(Value::as_str).unwrap_or("");
    let content = message.get("content");
    match role {
        "system" | "user" => {
            if content.is_none_or(Value::is_null) {
                return Err(format!("invalid request: messages[{i}] must have content"));
            }
        }
        "assistant" => {
            let calls = message.get("tool_calls");
            if let Some(calls) = calls {
                let valid = calls.as_array().is_some_and(|calls| {
                    calls.iter().all(|c| {
                        c.get("id").is_some_and(Value::is_string)
                            && c.pointer("/function/name").is_some_and(Value::is_string)
                            && c.pointer("/function/arguments").is_some_and(Value::is_string)
                    })
                });
                if !valid {
                    return Err(format!("invalid request: messages[{i}].tool_calls is invalid"));
                }
            }
            if content.is_none_or(Value::is_null) && calls.is_none() {
                return Err(format!(
                    "invalid request: messages[{i}]: an assistant message needs content or tool calls"
                ));
            }
        }
        "tool" => {
            if !message.get("tool_call_id").is_some_and(Value::is_string) {
                return Err(format!("invalid request: messages[{i}].tool_call_id is required"));
            }
        }
        other => {
            return Err(format!(
                "invalid request: messages[{i}].role must be one of system, user, assistant, tool, not '{other}'"
            ))
        }
    }
    Ok(Turn::new(role, content_text(content, role, i)?))
}

fn tools(body: &Map<String, Value>) -> Result<Vec<Tool>, String> {
    let Some(tools) = body.get("tools") else {
        return Ok(Vec::new());
    };
    let tools = tools
        .as_array()
        .ok_or("invalid request: tools must be a list")?;
    tools
        .iter()
        .enumerate()
        .map(|(i, tool)| {
            let name = tool.pointer("/function/name").and_then(Value::as_str);
            let parameters = tool
                .pointer("/function/parameters")
                .filter(|p| p.is_object());
            match (tool.get("type").and_then(Value::as_str), name, parameters) {
                (Some("function"), Some(name), Some(parameters)) => Ok(Tool {
                    name: name.to_owned(),
                    parameters: parameters.clone(),
                }),
                _ => Err(format!(
                    "invalid request: tools[{i}] must be a function with a name and parameters"
                )),
            }
        })
        .collect()
}

fn chat_request(body: &Map<String, Value>) -> Result<Request, String> {
    known_fields(body, CHAT_FIELDS)?;
    required_model(body)?;
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or("invalid request: messages must be a non-empty list")?;
    let turns = messages
        .iter()
        .enumerate()
        .map(|(i, m)| turn(i, m))
        .collect::<Result<Vec<_>, _>>()?;
    let tool_choice = match body.get("tool_choice") {
        None => ToolChoice::Auto,
        Some(Value::String(c)) if c == "REQUIRED" => ToolChoice::Auto,
        Some(Value::String(c)) if c == "NONE" => ToolChoice::None,
        Some(other) => {
            return Err(format!(
                "invalid request: tool_choice must be REQUIRED or NONE, not {other}"
            ))
        }
    };
    let stream = match body.get("stream") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("invalid request: stream must be a boolean".to_owned()),
    };
    Ok(Request::Chat {
        conversation: Conversation {
            turns,
            tools: tools(body)?,
            tool_choice,
        },
        stream,
    })
}

fn embed_request(body: &Map<String, Value>) -> Result<Request, String> {
    known_fields(body, EMBED_FIELDS)?;
    required_model(body)?;
    let texts: Vec<String> = body
        .get("texts")
        .and_then(Value::as_array)
        .filter(|t| !t.is_empty())
        .and_then(|t| t.iter().map(|s| s.as_str().map(str::to_owned)).collect())
        .ok_or("invalid request: texts must be a non-empty list of strings")?;
    let input_types = [
        "search_document",
        "search_query",
        "classification",
        "clustering",
    ];
    if !body
        .get("input_type")
        .and_then(Value::as_str)
        .is_some_and(|t| input_types.contains(&t))
    {
        return Err(
            "invalid request: valid input_type must be provided with the provided model".to_owned(),
        );
    }
    if body.get("embedding_types") != Some(&json!(["float"])) {
        return Err("invalid request: the mock serves embedding_types [\"float\"] only".to_owned());
    }
    let dimensions = match body.get("output_dimension") {
        None | Some(Value::Null) => DEFAULT_DIMENSIONS,
        Some(value) => value
            .as_u64()
            .and_then(|d| usize::try_from(d).ok())
            .filter(|d| (1..=MAX_DIMENSIONS).contains(d))
            .ok_or("invalid request: output_dimension must be a positive integer")?,
    };
    Ok(Request::Embed { texts, dimensions })
}

// ---------------------------------------------------------------------------------------------
// Chat

fn usage_json(usage: &Usage) -> Value {
    let counts = json!({"input_tokens": usage.prompt, "output_tokens": usage.completion});
    let mut out = json!({"billed_units": counts, "tokens": counts});
    if usage.cached > 0 {
        out["cached_tokens"] = json!(usage.cached);
    }
    out
}

/// The plan Cohere writes before calling a tool.
fn tool_plan(name: &str) -> String {
    format!("I will call {name}.")
}

fn chat(call: &Call, conversation: &Conversation, stream: bool) -> Reply {
    let (answer, usage) = conversation::respond(conversation, call.directives);
    let id = format!("mock-cohere-{}", call.seq);
    if stream {
        return chat_stream(call, &id, &answer, &usage);
    }
    let (message, finish_reason) = match &answer {
        _ if call.directives.no_content => (json!({"role": "assistant"}), "COMPLETE"),
        Answer::Text(text) => (
            json!({"role": "assistant", "content": [{"type": "text", "text": text}]}),
            "COMPLETE",
        ),
        Answer::ToolCall(tool_call) => (
            json!({
                "role": "assistant",
                "tool_plan": tool_plan(&tool_call.name),
                "tool_calls": [{
                    "id": tool_call.id,
                    "type": "function",
                    "function": {"name": tool_call.name, "arguments": tool_call.arguments_json()}
                }]
            }),
            "TOOL_CALL",
        ),
    };
    let answer = json!({
        "id": id,
        "message": message,
        "finish_reason": finish_reason,
        "usage": usage_json(&usage)
    });
    Reply::json(200, &answer)
}

/// One event as Cohere frames it: `event: <type>` and the data, which repeats the type.
fn event(kind: &str, mut data: Value) -> Vec<u8> {
    data["type"] = json!(kind);
    format!("event: {kind}\ndata: {data}\n\n").into_bytes()
}

fn chat_stream(call: &Call, id: &str, answer: &Answer, usage: &Usage) -> Reply {
    let mut events = vec![event(
        "message-start",
        json!({"id": id, "delta": {"message": {"role": "assistant", "content": [],
            "tool_plan": "", "tool_calls": [], "citations": []}}}),
    )];
    let finish_reason = match answer {
        // Straight from the start to the end: no content, no tool call.
        _ if call.directives.no_content => "COMPLETE",
        Answer::Text(text) => {
            events.push(event(
                "content-start",
                json!({"index": 0, "delta": {"message": {"content": {"type": "text", "text": ""}}}}),
            ));
            for piece in conversation::stream_pieces(text) {
                events.push(event(
                    "content-delta",
                    json!({"index": 0, "delta": {"message": {"content": {"text": piece}}}}),
                ));
            }
            events.push(event("content-end", json!({"index": 0})));
            "COMPLETE"
        }
        Answer::ToolCall(tool_call) => {
            for piece in conversation::stream_pieces(&tool_plan(&tool_call.name)) {
                events.push(event(
                    "tool-plan-delta",
                    json!({"delta": {"message": {"tool_plan": piece}}}),
                ));
            }
            events.push(event(
                "tool-call-start",
                json!({"index": 0, "delta": {"message": {"tool_calls": {
                    "id": tool_call.id,
                    "type": "function",
                    "function": {"name": tool_call.name, "arguments": ""}
                }}}}),
            ));
            for fragment in conversation::fragments(&tool_call.arguments_json(), 3) {
                events.push(event(
                    "tool-call-delta",
                    json!({"index": 0, "delta": {"message": {"tool_calls": {
                        "function": {"arguments": fragment}
                    }}}}),
                ));
            }
            events.push(event("tool-call-end", json!({"index": 0})));
            "TOOL_CALL"
        }
    };
    events.push(event(
        "message-end",
        json!({"id": id, "delta": {"finish_reason": finish_reason, "usage": usage_json(usage)}}),
    ));
    events.push(b"data: [DONE]\n\n".to_vec());
    if call.directives.malformed {
        events.truncate(1);
        events.push(b"event: content-delta\ndata: {not json\n\n".to_vec());
        events.push(b"data: [DONE]\n\n".to_vec());
    }
    if call.directives.cut {
        events.truncate(2);
    }
    Reply::Stream {
        content_type: SSE,
        events,
    }
}

// ---------------------------------------------------------------------------------------------
// Embed

fn embed(call: &Call, texts: &[String], dimensions: usize) -> Reply {
    let vectors: Vec<Value> = texts
        .iter()
        .map(|text| {
            let vector = conversation::embedding(text, dimensions);
            Value::Array(vector.iter().map(|x| json!(f64::from(*x))).collect())
        })
        .collect();
    let tokens = call
        .directives
        .usage
        .prompt
        .unwrap_or_else(|| texts.iter().map(|t| conversation::words(t).max(1)).sum());
    let answer = json!({
        "id": format!("mock-cohere-{}", call.seq),
        "response_type": "embeddings_by_type",
        "texts": texts,
        "embeddings": if call.directives.no_content { json!({}) } else { json!({"float": vectors}) },
        "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": tokens}}
    });
    Reply::json(200, &answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Directives;

    fn call<'a>(body: &'a Value, directives: &'a Directives) -> Call<'a> {
        Call {
            seq: 7,
            method: &Method::POST,
            path: "/v2/chat",
            body: Some(body),
            directives,
            created: 1_700_000_000,
        }
    }

    fn full(reply: Reply) -> (u16, Value) {
        let Reply::Full { status, body, .. } = reply else {
            panic!("expected a full reply")
        };
        (status, serde_json::from_slice(&body).unwrap())
    }

    /// `(event name, data)` of every event; `[DONE]` has no name.
    fn events(reply: Reply) -> Vec<(Option<String>, String)> {
        let Reply::Stream { events, .. } = reply else {
            panic!("expected a stream")
        };
        events
            .iter()
            .map(|e| {
                let text = String::from_utf8(e.clone()).unwrap();
                let text = text.strip_suffix("\n\n").unwrap();
                match text.split_once('\n') {
                    Some((name, data)) => (
                        Some(name.strip_prefix("event: ").unwrap().to_owned()),
                        data.strip_prefix("data: ").unwrap().to_owned(),
                    ),
                    None => (None, text.strip_prefix("data: ").unwrap().to_owned()),
                }
            })
            .collect()
    }

    fn weather() -> Value {
        json!({"model": "command-a", "messages": [{"role": "user", "content": "weather?"}],
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters":
                {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]})
    }

    #[test]
    fn routes_by_suffix() {
        assert_eq!(route(&Method::POST, "/v2/chat"), Some(Endpoint::Chat));
        assert_eq!(route(&Method::POST, "/x/v2/embed/"), Some(Endpoint::Embed));
        assert_eq!(route(&Method::GET, "/v2/chat"), None);
        assert_eq!(route(&Method::POST, "/v1/chat"), None);
    }

    #[test]
    fn chat_json() {
        let d = Directives::default();
        let body = json!({"model": "command-a", "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hello"},
                {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                {"type": "text", "text": "world"}]}]});
        let (status, answer) = full(handle(&Endpoint::Chat, &call(&body, &d)));
        assert_eq!(status, 200);
        assert_eq!(
            answer,
            json!({"id": "mock-cohere-7", "finish_reason": "COMPLETE",
                "message": {"role": "assistant", "content": [{"type": "text", "text": "echo: hello world"}]},
                "usage": {"billed_units": {"input_tokens": 10, "output_tokens": 3},
                    "tokens": {"input_tokens": 10, "output_tokens": 3}}})
        );
    }

    #[test]
    fn chat_tool_call_and_tool_result() {
        let d = Directives::default();
        let (_, answer) = full(handle(&Endpoint::Chat, &call(&weather(), &d)));
        assert_eq!(answer["finish_reason"], "TOOL_CALL");
        assert_eq!(answer["message"]["tool_plan"], "I will call get_weather.");
        assert_eq!(
            answer["message"]["tool_calls"],
            json!([{"id": "call_mock_1", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"mock\"}"}}])
        );
        let mut body = weather();
        body["messages"] = json!([{"role": "user", "content": "weather?"},
            {"role": "assistant", "tool_plan": "p", "tool_calls": answer["message"]["tool_calls"]},
            {"role": "tool", "tool_call_id": "call_mock_1", "content": "sunny"}]);
        let (_, answer) = full(handle(&Endpoint::Chat, &call(&body, &d)));
        assert_eq!(
            answer["message"]["content"][0]["text"],
            "tool result: sunny"
        );
        body["tool_choice"] = json!("NONE");
        body["messages"] = json!([{"role": "user", "content": "hi"}]);
        let (_, answer) = full(handle(&Endpoint::Chat, &call(&body, &d)));
        assert_eq!(answer["message"]["content"][0]["text"], "echo: hi");
    }

    #[test]
    fn chat_stream_events() {
        let d = Directives::default();
        let mut body =
            json!({"model": "m", "messages": [{"role": "user", "content": "a b"}], "stream": true});
        let got = events(handle(&Endpoint::Chat, &call(&body, &d)));
        let names: Vec<Option<&str>> = got.iter().map(|(n, _)| n.as_deref()).collect();
        assert_eq!(
            names,
            [
                Some("message-start"),
                Some("content-start"),
                Some("content-delta"),
                Some("content-delta"),
                Some("content-delta"),
                Some("content-end"),
                Some("message-end"),
                None
            ]
        );
        for (name, data) in &got[..got.len() - 1] {
            let data: Value = serde_json::from_str(data).unwrap();
            assert_eq!(data["type"].as_str(), name.as_deref());
        }
        let text: String = got
            .iter()
            .filter_map(|(_, d)| serde_json::from_str::<Value>(d).ok())
            .filter_map(|d| {
                d.pointer("/delta/message/content/text")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .collect();
        assert_eq!(text, "echo: a b");
        let end: Value = serde_json::from_str(&got[6].1).unwrap();
        assert_eq!(end["delta"]["finish_reason"], "COMPLETE");
        assert_eq!(
            end["delta"]["usage"]["tokens"],
            json!({"input_tokens": 5, "output_tokens": 3})
        );
        assert_eq!(got[7].1, "[DONE]");

        body = weather();
        body["stream"] = json!(true);
        let got = events(handle(&Endpoint::Chat, &call(&body, &d)));
        let datas: Vec<Value> = got[..got.len() - 1]
            .iter()
            .map(|(_, d)| serde_json::from_str(d).unwrap())
            .collect();
        let start = datas
            .iter()
            .find(|d| d["type"] == "tool-call-start")
            .unwrap();
        assert_eq!(
            start["delta"]["message"]["tool_calls"]["function"]["name"],
            "get_weather"
        );
        let arguments: String = datas
            .iter()
            .filter(|d| d["type"] == "tool-call-delta")
            .map(|d| {
                d["delta"]["message"]["tool_calls"]["function"]["arguments"]
                    .as_str()
                    .unwrap()
            })
            .collect();
        assert_eq!(arguments, "{\"city\":\"mock\"}");
        let plan: String = datas
            .iter()
            .filter(|d| d["type"] == "tool-plan-delta")
            .map(|d| d["delta"]["message"]["tool_plan"].as_str().unwrap())
            .collect();
        assert_eq!(plan, "I will call get_weather.");
        assert_eq!(datas.last().unwrap()["delta"]["finish_reason"], "TOOL_CALL");
    }

    #[test]
    fn cut_and_malformed_streams() {
        let body =
            json!({"model": "m", "messages": [{"role": "user", "content": "a b"}], "stream": true});
        let cut = Directives {
            cut: true,
            ..Directives::default()
        };
        assert_eq!(events(handle(&Endpoint::Chat, &call(&body, &cut))).len(), 2);
        let malformed = Directives {
            malformed: true,
            ..Directives::default()
        };
        let got = events(handle(&Endpoint::Chat, &call(&body, &malformed)));
        assert_eq!(got[1].1, "{not json");
    }

    #[test]
    fn refuses_what_cohere_refuses() {
        let d = Directives::default();
        let cases = [
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "top_p": 1}),
            json!({"messages": [{"role": "user", "content": "x"}]}),
            json!({"model": "m", "messages": []}),
            json!({"model": "m", "messages": [{"role": "developer", "content": "x"}]}),
            json!({"model": "m", "messages": [{"role": "tool", "content": "x"}]}),
            json!({"model": "m", "messages": [{"role": "assistant"}]}),
            json!({"model": "m", "messages": [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "u"}}]}]}),
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": "required"}),
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function", "function": {"name": "f"}}]}),
        ];
        for body in cases {
            let (status, answer) = full(handle(&Endpoint::Chat, &call(&body, &d)));
            assert_eq!(status, 400, "{body}");
            assert!(
                answer["message"]
                    .as_str()
                    .unwrap()
                    .starts_with("invalid request"),
                "{answer}"
            );
            assert_eq!(answer["id"], "mock-cohere-error-7");
        }
    }

    #[test]
    fn embeddings() {
        let d = Directives::default();
        let body = json!({"model": "embed-v4.0", "texts": ["hello world", "x"], "input_type": "search_document",
            "embedding_types": ["float"], "output_dimension": 4});
        let (status, answer) = full(handle(&Endpoint::Embed, &call(&body, &d)));
        assert_eq!(status, 200);
        let vectors = answer["embeddings"]["float"].as_array().unwrap();
        assert_eq!(vectors.len(), 2);
        assert_eq!(vectors[0].as_array().unwrap().len(), 4);
        assert_eq!(answer["meta"]["billed_units"]["input_tokens"], 3);
        assert_eq!(answer["texts"], json!(["hello world", "x"]));
        for broken in [
            json!({"model": "e", "texts": ["x"], "embedding_types": ["float"]}),
            json!({"model": "e", "texts": [], "input_type": "search_query", "embedding_types": ["float"]}),
            json!({"model": "e", "input": "x", "input_type": "search_query", "embedding_types": ["float"]}),
        ] {
            assert_eq!(
                full(handle(&Endpoint::Embed, &call(&broken, &d))).0,
                400,
                "{broken}"
            );
        }
    }

    #[test]
    fn errors_in_cohere_shape() {
        let body = json!({"model": "command-a"});
        for status in [402, 404, 429, 498, 503] {
            let (got, answer) = full(error(status, &call(&body, &Directives::default())));
            assert_eq!(got, status);
            assert!(
                answer["message"].as_str().unwrap().contains("mock"),
                "{answer}"
            );
            assert!(answer.get("error").is_none());
        }
    }
}
