//! The OpenAI wire format (also what Azure OpenAI and OpenAI-compatible providers speak):
//! Chat Completions (JSON and SSE), Responses (in `crate::responses`), Embeddings, a model
//! list, and OpenAI's error bodies.

use axum::http::Method;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::conversation::{self, Answer, Conversation, Tool, ToolChoice, Turn, Usage};
use crate::{Call, Reply};

/// Embedding length when the request does not ask for `dimensions`.
const DEFAULT_DIMENSIONS: usize = 8;
/// Largest `dimensions` accepted.
const MAX_DIMENSIONS: usize = 8192;
/// Model name when neither the body nor an Azure deployment path names one.
const DEFAULT_MODEL: &str = "mock-model";
const FINGERPRINT: &str = "fp_mock";
const SSE: &str = "text/event-stream";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// POST `*/chat/completions`
    Chat,
    /// POST `*/responses`
    Responses,
    /// POST `*/embeddings`
    Embeddings,
    /// GET `*/models`
    Models,
}

/// Matches by path suffix, whatever comes before (`/v1`, `/openai/deployments/<d>`, ...).
pub fn route(method: &Method, path: &str) -> Option<Endpoint> {
    let path = path.trim_end_matches('/');
    match *method {
        Method::POST if path.ends_with("/chat/completions") => Some(Endpoint::Chat),
        Method::POST if path.ends_with("/responses") => Some(Endpoint::Responses),
        Method::POST if path.ends_with("/embeddings") => Some(Endpoint::Embeddings),
        Method::GET if path.ends_with("/models") => Some(Endpoint::Models),
        _ => None,
    }
}

pub fn handle(endpoint: &Endpoint, call: &Call) -> Reply {
    match endpoint {
        Endpoint::Chat => chat(call),
        Endpoint::Responses => crate::responses::create(call),
        Endpoint::Embeddings => embeddings(call),
        Endpoint::Models => models(),
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

fn error_body(message: &str, kind: &str, param: Option<&str>, code: Option<&str>) -> Value {
    json!({"error": {"message": message, "type": kind, "param": param, "code": code}})
}

/// The error OpenAI sends for this status.
pub fn error(status: u16, call: &Call) -> Reply {
    let body = match status {
        400 => error_body(
            "Invalid request (mock error).",
            "invalid_request_error",
            None,
            None,
        ),
        401 => error_body(
            "Incorrect API key provided: sk-mock. You can find your API key at \
             https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            None,
            Some("invalid_api_key"),
        ),
        404 => {
            let model = model(call);
            error_body(
                &format!("The model `{model}` does not exist or you do not have access to it."),
                "invalid_request_error",
                None,
                Some("model_not_found"),
            )
        }
        429 => error_body(
            "Rate limit reached for requests",
            "requests",
            None,
            Some("rate_limit_exceeded"),
        ),
        500 => error_body(
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
            None,
            None,
        ),
        503 => error_body(
            "The engine is currently overloaded, please try again later",
            "server_error",
            None,
            None,
        ),
        _ => error_body(
            &format!("Mock error with status {status}."),
            if status >= 500 {
                "server_error"
            } else {
                "invalid_request_error"
            },
            None,
            None,
        ),
    };
    let reply = Reply::json(status, &body);
    if status == 429 {
        reply.with_header("retry-after", "1")
    } else {
        reply
    }
}

/// The 401 (or `status`) OpenAI sends for a wrong key, quoting the key as presented.
pub fn invalid_key(status: u16, key: &str) -> Reply {
    Reply::json(
        status,
        &error_body(
            &format!(
                "Incorrect API key provided: {key}. You can find your API key at \
                 https://platform.openai.com/account/api-keys."
            ),
            "invalid_request_error",
            None,
            Some("invalid_api_key"),
        ),
    )
}

pub fn bad_request(message: &str, param: Option<&str>) -> Reply {
    Reply::json(
        400,
        &error_body(message, "invalid_request_error", param, None),
    )
}

pub fn invalid_json() -> Reply {
    bad_request(
        "We could not parse the JSON body of your request. The OpenAI API expects a JSON payload.",
        None,
    )
}

/// 404 for a path no format knows.
pub fn not_found(call: &Call) -> Reply {
    Reply::json(
        404,
        &error_body(
            &format!(
                "Unknown request URL: {} {}. Please check the URL for typos.",
                call.method, call.path
            ),
            "invalid_request_error",
            None,
            Some("unknown_url"),
        ),
    )
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// The request's model, else the Azure deployment name from the path, else a default.
pub fn model(call: &Call) -> String {
    if let Some(model) = call
        .body
        .and_then(|b| b.get("model"))
        .and_then(Value::as_str)
    {
        return model.to_owned();
    }
    let mut segments = call.path.split('/');
    while let Some(segment) = segments.next() {
        if segment == "deployments" {
            if let Some(name) = segments.next().filter(|s| !s.is_empty()) {
                return name.to_owned();
            }
        }
    }
    DEFAULT_MODEL.to_owned()
}

/// Text of a message content: a string, or the text parts of an array joined with a space.
pub fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|part| match part {
                Value::String(text) => Some(text.as_str()),
                _ => part.get("text").and_then(Value::as_str),
            })
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

fn usage_json(usage: &Usage) -> Value {
    json!({
        "prompt_tokens": usage.prompt,
        "completion_tokens": usage.completion,
        "total_tokens": usage.total(),
        "prompt_tokens_details": {"cached_tokens": usage.cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": usage.reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0
        }
    })
}

fn sse_event(data: &Value) -> Vec<u8> {
    format!("data: {data}\n\n").into_bytes()
}

const SSE_DONE: &[u8] = b"data: [DONE]\n\n";

// ---------------------------------------------------------------------------------------------
// Chat Completions

fn conversation(body: &Value) -> Option<Conversation> {
    let messages = body.get("messages")?.as_array()?;
    let turns = messages
        .iter()
        .map(|m| {
            Turn::new(
                m.get("role").and_then(Value::as_str).unwrap_or(""),
                content_text(m.get("content")),
            )
        })
        .collect();
    let tools = body
        .get("tools")
        .and_then(Value::as_array)
        .map(|tools| {
            tools
                .iter()
                .filter_map(|t| {
                    let function = t.get("function")?;
                    Some(Tool {
                        name: function.get("name")?.as_str()?.to_owned(),
                        parameters: function.get("parameters").cloned().unwrap_or(Value::Null),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let tool_choice = match body.get("tool_choice") {
        Some(Value::String(choice)) if choice == "none" => ToolChoice::None,
        Some(choice @ Value::Object(_)) => choice
            .pointer("/function/name")
            .and_then(Value::as_str)
            .map(|name| ToolChoice::Named(name.to_owned()))
            .unwrap_or_default(),
        _ => ToolChoice::Auto,
    };
    Some(Conversation {
        turns,
        tools,
        tool_choice,
    })
}

fn chat(call: &Call) -> Reply {
    let Some(body) = call.body.filter(|b| b.is_object()) else {
        return invalid_json();
    };
    let Some(conversation) = conversation(body) else {
        return bad_request("Missing required parameter: 'messages'.", Some("messages"));
    };
    let (answer, usage) = conversation::respond(&conversation, call.directives);
    let head = ChunkHead {
        id: format!("chatcmpl-mock-{}", call.seq),
        created: call.created,
        model: model(call),
    };
    if body.get("stream").and_then(Value::as_bool) == Some(true) {
        let include_usage = body
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            == Some(true);
        return chat_stream(&head, &answer, &usage, include_usage, call);
    }
    let (message, finish_reason) = match &answer {
        Answer::Text(text) => (
            json!({"role": "assistant", "content": text, "refusal": null, "annotations": []}),
            "stop",
        ),
        Answer::ToolCall(tool_call) => (
            json!({
                "role": "assistant",
                "content": null,
                "tool_calls": [{
                    "id": tool_call.id,
                    "type": "function",
                    "function": {"name": tool_call.name, "arguments": tool_call.arguments_json()}
                }],
                "refusal": null,
                "annotations": []
            }),
            "tool_calls",
        ),
    };
    let mut choice = json!({"index": 0, "logprobs": null, "finish_reason": finish_reason});
    if !call.directives.no_content {
        choice["message"] = message;
    }
    let completion = json!({
        "id": head.id,
        "object": "chat.completion",
        "created": head.created,
        "model": head.model,
        "choices": [choice],
        "usage": usage_json(&usage),
        "service_tier": "default",
        "system_fingerprint": FINGERPRINT
    });
    Reply::json(200, &completion)
}

struct ChunkHead {
    id: String,
    created: u64,
    model: String,
}

impl ChunkHead {
    /// One `chat.completion.chunk` with a single choice.
    fn chunk(&self, delta: Value, finish_reason: Option<&str>, include_usage: bool) -> Value {
        let mut chunk = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "service_tier": "default",
            "system_fingerprint": FINGERPRINT,
            "choices": [{
                "index": 0,
                "delta": delta,
                "logprobs": null,
                "finish_reason": finish_reason
            }]
        });
        if include_usage {
            chunk["usage"] = Value::Null;
        }
        chunk
    }

    /// The usage chunk sent last when `stream_options.include_usage` is set.
    fn usage_chunk(&self, usage: &Usage) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "service_tier": "default",
            "system_fingerprint": FINGERPRINT,
            "choices": [],
            "usage": usage_json(usage)
        })
    }
}

fn chat_stream(
    head: &ChunkHead,
    answer: &Answer,
    usage: &Usage,
    include_usage: bool,
    call: &Call,
) -> Reply {
    let mut chunks = Vec::new();
    let finish_reason = match answer {
        // The role, then straight to the finish: not a word of content.
        _ if call.directives.no_content => {
            chunks.push(head.chunk(json!({"role": "assistant"}), None, include_usage));
            "stop"
        }
        Answer::Text(text) => {
            chunks.push(head.chunk(
                json!({"role": "assistant", "content": "", "refusal": null}),
                None,
                include_usage,
            ));
            for piece in conversation::stream_pieces(text) {
                chunks.push(head.chunk(json!({"content": piece}), None, include_usage));
            }
            "stop"
        }
        Answer::ToolCall(tool_call) => {
            chunks.push(head.chunk(
                json!({
                    "role": "assistant",
                    "content": null,
                    "tool_calls": [{
                        "index": 0,
                        "id": tool_call.id,
                        "type": "function",
                        "function": {"name": tool_call.name, "arguments": ""}
                    }],
                    "refusal": null
                }),
                None,
                include_usage,
            ));
            let arguments = tool_call.arguments_json();
            for fragment in conversation::fragments(&arguments, 3) {
                chunks.push(head.chunk(
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": fragment}}]}),
                    None,
                    include_usage,
                ));
            }
            "tool_calls"
        }
    };
    chunks.push(head.chunk(json!({}), Some(finish_reason), include_usage));
    if include_usage {
        chunks.push(head.usage_chunk(usage));
    }

    let mut events: Vec<Vec<u8>> = chunks.iter().map(sse_event).collect();
    events.push(SSE_DONE.to_vec());
    if call.directives.malformed {
        events.truncate(1);
        events.push(b"data: {not json\n\n".to_vec());
        events.push(SSE_DONE.to_vec());
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
// Embeddings

/// One input to embed: the text it is derived from and its token count.
struct Input {
    key: String,
    tokens: u64,
}

fn token_input(tokens: &[Value]) -> Option<Input> {
    let ids: Option<Vec<String>> = tokens
        .iter()
        .map(|t| t.as_u64().map(|n| n.to_string()))
        .collect();
    Some(Input {
        key: ids?.join(","),
        tokens: tokens.len() as u64,
    })
}

fn text_input(text: &str) -> Input {
    Input {
        key: text.to_owned(),
        tokens: conversation::words(text).max(1),
    }
}

/// `input`: a string, an array of strings, an array of token ids, or an array of those arrays.
fn embedding_inputs(input: &Value) -> Option<Vec<Input>> {
    match input {
        Value::String(text) => Some(vec![text_input(text)]),
        Value::Array(items) if items.is_empty() => None,
        Value::Array(items) if items.iter().all(Value::is_number) => {
            Some(vec![token_input(items)?])
        }
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(text) => Some(text_input(text)),
                Value::Array(tokens) if !tokens.is_empty() => token_input(tokens),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

fn embeddings(call: &Call) -> Reply {
    let Some(body) = call.body.filter(|b| b.is_object()) else {
        return invalid_json();
    };
    let Some(input) = body.get("input") else {
        return bad_request("Missing required parameter: 'input'.", Some("input"));
    };
    let Some(inputs) = embedding_inputs(input) else {
        return bad_request(
            "'input' must be a string, an array of strings, or an array of token arrays.",
            Some("input"),
        );
    };
    let dimensions = match body.get("dimensions") {
        None | Some(Value::Null) => DEFAULT_DIMENSIONS,
        Some(value) => match value.as_u64().and_then(|d| usize::try_from(d).ok()) {
            Some(d) if (1..=MAX_DIMENSIONS).contains(&d) => d,
            _ => {
                return bad_request(
                    "'dimensions' must be a positive integer.",
                    Some("dimensions"),
                )
            }
        },
    };
    let base64 = match body.get("encoding_format").and_then(Value::as_str) {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return bad_request(
                &format!("Invalid encoding_format '{other}': expected 'float' or 'base64'."),
                Some("encoding_format"),
            )
        }
    };
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, input)| {
            let vector = conversation::embedding(&input.key, dimensions);
            let embedding = if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                Value::Array(vector.iter().map(|x| json!(f64::from(*x))).collect())
            };
            if call.directives.no_content {
                json!({"object": "embedding", "index": index})
            } else {
                json!({"object": "embedding", "index": index, "embedding": embedding})
            }
        })
        .collect();
    let prompt = call
        .directives
        .usage
        .prompt
        .unwrap_or_else(|| inputs.iter().map(|i| i.tokens).sum());
    let answer = json!({
        "object": "list",
        "data": data,
        "model": model(call),
        "usage": {"prompt_tokens": prompt, "total_tokens": prompt}
    });
    Reply::json(200, &answer)
}

// ---------------------------------------------------------------------------------------------
// Models

fn models() -> Reply {
    Reply::json(
        200,
        &json!({
            "object": "list",
            "data": [{
                "id": DEFAULT_MODEL,
                "object": "model",
                "created": 0,
                "owned_by": "switchboard-mock"
            }]
        }),
    )
}
