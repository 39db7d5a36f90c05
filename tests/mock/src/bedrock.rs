//! The AWS Bedrock Runtime wire format: Converse (JSON), ConverseStream (binary AWS eventstream
//! with prelude and message CRCs), InvokeModel for Titan and Cohere embeddings, and AWS-shaped
//! errors (`{"message"}` with `x-amzn-errortype`).
//!
//! Every request must carry a SigV4 `authorization` header valid for the mock's credentials:
//! it is checked (before any directive) by an implementation of its own in [`sigv4`], so a
//! gateway that signs wrongly gets the 403 AWS would send. Requests are validated the way
//! Bedrock does (alternating roles, no blank text, `toolConfig` present with tool blocks,
//! no unknown fields), so a translation slip shows up as a 400.
//!
//! With `additionalModelRequestFields.thinking` enabled (or adaptive), as Claude on Bedrock
//! takes it, the answer starts with signed reasoning (`reasoningContent`); reasoning handed
//! back must carry the mock's signature, and a tool loop continued while thinking must start
//! its assistant turn with it, as Claude requires.
//!
//! Besides the shared directives, a stream request with `x-mock-bedrock-exception: <type>`
//! (e.g. `throttlingException`) gets that exception as an eventstream message after its first
//! text, as Bedrock sends failures that happen mid-stream.

use axum::http::Method;
use serde_json::{json, Value};

use crate::conversation::{self, Answer, Conversation, Tool, ToolChoice, Turn, Usage};
use crate::{Call, Received, Reply};

pub use sigv4::Credentials;

pub const EVENTSTREAM: &str = "application/vnd.amazon.eventstream";
/// Header asking for an exception in the middle of a ConverseStream.
const EXCEPTION_HEADER: &str = "x-mock-bedrock-exception";
/// The signature the mock gives its reasoning.
const REASONING_SIGNATURE: &str = "bW9jay1iZWRyb2NrLXJlYXNvbmluZw==";
/// Embedding length when the request does not ask for one.
const DEFAULT_DIMENSIONS: usize = 8;
const MAX_DIMENSIONS: usize = 8192;
/// Converse request fields Bedrock knows; anything else is refused.
const CONVERSE_FIELDS: [&str; 10] = [
    "messages",
    "system",
    "inferenceConfig",
    "toolConfig",
    "guardrailConfig",
    "additionalModelRequestFields",
    "additionalModelResponseFieldPaths",
    "promptVariables",
    "requestMetadata",
    "performanceConfig",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Converse { model: String },
    ConverseStream { model: String },
    Invoke { model: String },
}

/// `POST /model/{modelId}/converse|converse-stream|invoke`, under any base path.
pub fn route(method: &Method, path: &str) -> Option<Endpoint> {
    if *method != Method::POST {
        return None;
    }
    let rest = path.trim_end_matches('/');
    let (rest, action) = rest.rsplit_once('/')?;
    let (prefix, model) = rest.rsplit_once('/')?;
    if !prefix.ends_with("/model") && prefix != "/model" {
        return None;
    }
    let model = crate::percent_decode(model, false);
    match action {
        "converse" => Some(Endpoint::Converse { model }),
        "converse-stream" => Some(Endpoint::ConverseStream { model }),
        "invoke" => Some(Endpoint::Invoke { model }),
        _ => None,
    }
}

pub fn handle(
    endpoint: &Endpoint,
    call: &Call,
    received: &Received,
    credentials: &Credentials,
) -> Reply {
    if let Err(denied) = authenticate(call, received, credentials) {
        return denied;
    }
    match endpoint {
        Endpoint::Converse { .. } => converse(call, Mode::Json),
        Endpoint::ConverseStream { .. } => {
            let exception = received
                .headers
                .get(EXCEPTION_HEADER)
                .and_then(|v| v.to_str().ok());
            converse(call, Mode::Stream { exception })
        }
        Endpoint::Invoke { model } => invoke(model, call),
    }
}

/// The error Bedrock sends for this status (after authentication, as AWS does).
pub fn error(status: u16, call: &Call, received: &Received, credentials: &Credentials) -> Reply {
    if let Err(denied) = authenticate(call, received, credentials) {
        return denied;
    }
    let (kind, message) = match status {
        400 => ("ValidationException", "Mock validation error."),
        403 => (
            "AccessDeniedException",
            "You don't have access to the model with the specified model ID.",
        ),
        404 => (
            "ResourceNotFoundException",
            "The provided model identifier is invalid.",
        ),
        408 => (
            "ModelTimeoutException",
            "Model has timed out in processing the request.",
        ),
        424 => (
            "ModelErrorException",
            "The model encountered an error processing the request.",
        ),
        429 => (
            "ThrottlingException",
            "Too many requests, please wait before trying again.",
        ),
        500 => ("InternalServerException", "Internal server error (mock)."),
        503 => (
            "ServiceUnavailableException",
            "Bedrock is unable to process your request.",
        ),
        _ => ("InternalServerException", "Mock error."),
    };
    aws_error(status, kind, message)
}

/// The 401 (or `status`) AWS sends for credentials it does not know, quoting the
/// `authorization` as presented (after authentication: the signature must still be right).
pub fn invalid_key(
    status: u16,
    key: &str,
    call: &Call,
    received: &Received,
    credentials: &Credentials,
) -> Reply {
    if let Err(denied) = authenticate(call, received, credentials) {
        return denied;
    }
    aws_error(
        status,
        "UnrecognizedClientException",
        &format!("The security token included in the request is invalid: {key}"),
    )
}

/// `{"message"}` with the exception name in `x-amzn-errortype`, as Bedrock answers.
fn aws_error(status: u16, kind: &str, message: &str) -> Reply {
    Reply::json(status, &json!({ "message": message }))
        .with_header(
            "x-amzn-errortype",
            format!("{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"),
        )
        .with_header("x-amzn-requestid", "00000000-0000-0000-0000-000000000000")
}

fn validation(message: &str) -> Reply {
    aws_error(400, "ValidationException", message)
}

fn authenticate(call: &Call, received: &Received, credentials: &Credentials) -> Result<(), Reply> {
    // Only the benchmark's plain-Envoy baseline sends unsigned requests, and only when allowed.
    if credentials.allow_unsigned && !received.headers.contains_key("authorization") {
        return Ok(());
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    sigv4::verify(
        call.method.as_str(),
        received.raw_path,
        received.headers,
        received.body,
        credentials,
        now,
    )
    .map_err(|e| {
        let (kind, message) = e.aws_error();
        aws_error(403, kind, &message)
    })
}

// ---------------------------------------------------------------------------------------------
// Converse

/// Checks the request as Bedrock does and reduces it to the format-neutral conversation.
fn conversation(body: &Value) -> Result<Conversation, String> {
    let fields = body.as_object().ok_or("Malformed input request")?;
    if let Some(unknown) = fields
        .keys()
        .find(|k| !CONVERSE_FIELDS.contains(&k.as_str()))
    {
        return Err(format!(
            "Malformed input request: extraneous key [{unknown}] is not permitted"
        ));
    }
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or("A conversation must start with a user message. Try again with a conversation that starts with a user message.")?;
    let tool_config = body.get("toolConfig");
    let mut turns = Vec::new();
    for block in body
        .get("system")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let text = block.get("text").and_then(Value::as_str).unwrap_or("");
        if text.trim().is_empty() {
            return Err("The text field in the SystemContentBlock object is blank.".into());
        }
        turns.push(Turn::new("system", text));
    }
    let mut previous_tool_uses: Vec<&str> = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let role = message.get("role").and_then(Value::as_str).unwrap_or("");
        let expected = if i % 2 == 0 { "user" } else { "assistant" };
        if role != expected {
            return Err(if i == 0 {
                "A conversation must start with a user message. Try again with a conversation that starts with a user message.".into()
            } else {
                "A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.".into()
            });
        }
        let content = message
            .get("content")
            .and_then(Value::as_array)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| format!("The content field in the Message object at messages.{i} is empty. Add a ContentBlock object to the content field and try again."))?;
        let mut texts = Vec::new();
        let mut tool_uses = Vec::new();
        for (j, block) in content.iter().enumerate() {
            if let Some(text) = block.get("text") {
                let text = text.as_str().unwrap_or("");
                if text.trim().is_empty() {
                    return Err(format!(
                        "The text field in the ContentBlock object at messages.{i}.content.{j} is blank. Add text to the text field, and try again."
                    ));
                }
                texts.push(text);
            } else if let Some(tool_use) = block.get("toolUse") {
                tool_uses.push(
                    tool_use
                        .get("toolUseId")
                        .and_then(Value::as_str)
                        .unwrap_or(""),
                );
            } else if let Some(result) = block.get("toolResult") {
                let id = result
                    .get("toolUseId")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if !previous_tool_uses.contains(&id) {
                    return Err(format!(
                        "The toolResult block at messages.{i}.content.{j} does not match a toolUse block of the previous turn."
                    ));
                }
                turns.push(Turn::new("tool", tool_result_text(result)));
            } else if let Some(reasoning) = block.get("reasoningContent") {
                let signed = reasoning
                    .pointer("/reasoningText/signature")
                    .and_then(Value::as_str);
                if role != "assistant" {
                    return Err(format!(
                        "Reasoning content is only allowed in assistant turns (messages.{i}.content.{j})."
                    ));
                }
                if reasoning.get("redactedContent").is_none() && signed != Some(REASONING_SIGNATURE)
                {
                    return Err(format!(
                        "The signature of the reasoning block at messages.{i}.content.{j} is not valid."
                    ));
                }
            } else if block.get("image").is_none() && block.get("cachePoint").is_none() {
                return Err(format!(
                    "Unsupported content block at messages.{i}.content.{j}."
                ));
            }
            if (block.get("toolUse").is_some() || block.get("toolResult").is_some())
                && tool_config.is_none()
            {
                return Err("The toolConfig field must be defined when using toolUse and toolResult content blocks.".into());
            }
        }
        if !texts.is_empty() || role == "assistant" {
            turns.push(Turn::new(role, texts.join(" ")));
        }
        previous_tool_uses = tool_uses;
    }
    check_inference_config(body.get("inferenceConfig"))?;
    let (tools, tool_choice) = tools(tool_config)?;
    Ok(Conversation {
        turns,
        tools,
        tool_choice,
    })
}

fn tool_result_text(result: &Value) -> String {
    result
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| match (c.get("text"), c.get("json")) {
            (Some(Value::String(text)), _) => Some(text.clone()),
            (_, Some(json)) => Some(json.to_string()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn check_inference_config(config: Option<&Value>) -> Result<(), String> {
    let Some(config) = config else {
        return Ok(());
    };
    if let Some(max) = config.get("maxTokens") {
        if max.as_u64().is_none_or(|m| m < 1) {
            return Err("The maximum tokens you requested must be at least 1.".into());
        }
    }
    for (name, max) in [("temperature", 1.0), ("topP", 1.0)] {
        if let Some(value) = config.get(name) {
            if value.as_f64().is_none_or(|v| !(0.0..=max).contains(&v)) {
                return Err(format!(
                    "The value of inferenceConfig.{name} must be between 0 and {max}."
                ));
            }
        }
    }
    if let Some(stop) = config.get("stopSequences") {
        if stop.as_array().is_none_or(|s| s.len() > 4) {
            return Err("inferenceConfig.stopSequences takes at most 4 sequences.".into());
        }
    }
    Ok(())
}

fn tools(config: Option<&Value>) -> Result<(Vec<Tool>, ToolChoice), String> {
    let Some(config) = config else {
        return Ok((Vec::new(), ToolChoice::Auto));
    };
    let specs = config
        .get("tools")
        .and_then(Value::as_array)
        .filter(|t| !t.is_empty())
        .ok_or("toolConfig.tools must hold at least one tool.")?;
    let mut tools = Vec::with_capacity(specs.len());
    for spec in specs {
        let spec = spec.get("toolSpec").ok_or("Each tool needs a toolSpec.")?;
        let name = spec
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or("A toolSpec needs a name.")?;
        let schema = spec
            .pointer("/inputSchema/json")
            .ok_or("A toolSpec needs inputSchema.json.")?;
        tools.push(Tool {
            name: name.to_owned(),
            parameters: schema.clone(),
        });
    }
    let choice = match config.get("toolChoice") {
        None => ToolChoice::Auto,
        Some(choice) => match choice.pointer("/tool/name").and_then(Value::as_str) {
            Some(name) => ToolChoice::Named(name.to_owned()),
            None if choice.get("auto").is_some() || choice.get("any").is_some() => ToolChoice::Auto,
            None => return Err("toolChoice must be one of auto, any or tool.".into()),
        },
    };
    Ok((tools, choice))
}

/// Bedrock's `inputTokens` leave out the tokens read from or written to the cache.
fn usage_json(usage: &Usage) -> Value {
    let mut out = json!({
        "inputTokens": usage.prompt.saturating_sub(usage.cached).saturating_sub(usage.cache_write),
        "outputTokens": usage.completion,
        "totalTokens": usage.total(),
    });
    if usage.cached > 0 || usage.cache_write > 0 {
        out["cacheReadInputTokens"] = json!(usage.cached);
        out["cacheWriteInputTokens"] = json!(usage.cache_write);
    }
    out
}

/// How a Converse answer is sent.
enum Mode<'a> {
    Json,
    /// ConverseStream, optionally failing with this exception type after the first text.
    Stream {
        exception: Option<&'a str>,
    },
}

/// Whether the request asks Claude to think, after checking its constraints.
fn thinking(body: &Value) -> Result<bool, String> {
    let Some(thinking) = body.pointer("/additionalModelRequestFields/thinking") else {
        return Ok(false);
    };
    match thinking.get("type").and_then(Value::as_str) {
        Some("disabled") => return Ok(false),
        Some("adaptive") => {}
        Some("enabled") => {
            let budget = thinking
                .get("budget_tokens")
                .and_then(Value::as_u64)
                .filter(|b| *b >= 1024)
                .ok_or("thinking.budget_tokens: Input should be greater than or equal to 1024")?;
            let max = body
                .pointer("/inferenceConfig/maxTokens")
                .and_then(Value::as_u64);
            if max.is_none_or(|max| max <= budget) {
                return Err("`max_tokens` must be greater than `thinking.budget_tokens`.".into());
            }
        }
        _ => {
            return Err("thinking.type: Input should be 'enabled', 'disabled' or 'adaptive'".into())
        }
    }
    // Continuing a tool loop: the assistant turn must start with its reasoning.
    let messages = body.get("messages").and_then(Value::as_array);
    let mut last_two = messages.into_iter().flatten().rev();
    if let (Some(user), Some(assistant)) = (last_two.next(), last_two.next()) {
        let first =
            |m: &Value, key: &str| m.pointer("/content/0").and_then(|b| b.get(key)).is_some();
        let calls = assistant
            .get("content")
            .and_then(Value::as_array)
            .is_some_and(|c| c.iter().any(|b| b.get("toolUse").is_some()));
        if first(user, "toolResult") && calls && !first(assistant, "reasoningContent") {
            return Err("Expected `thinking` or `redacted_thinking`, but found `tool_use`. When `thinking` is enabled, a final `assistant` message must start with a thinking block.".into());
        }
    }
    Ok(true)
}

fn converse(call: &Call, mode: Mode) -> Reply {
    let Some(body) = call.body else {
        return aws_error(
            400,
            "SerializationException",
            "Malformed JSON in the request body.",
        );
    };
    let conversation = match conversation(body) {
        Ok(c) => c,
        Err(message) => return validation(&message),
    };
    let thought = match thinking(body) {
        Ok(true) => Some(conversation::thought(&conversation)),
        Ok(false) => None,
        Err(message) => return validation(&message),
    };
    let (answer, usage) = conversation::respond(&conversation, call.directives);
    if let Mode::Stream { exception } = mode {
        return converse_stream(&answer, thought.as_deref(), &usage, exception, call);
    }
    let (block, stop_reason) = match &answer {
        Answer::Text(text) => (json!({ "text": text }), "end_turn"),
        Answer::ToolCall(tool) => (
            json!({ "toolUse": { "toolUseId": tool.id, "name": tool.name, "input": tool.arguments } }),
            "tool_use",
        ),
    };
    let mut content: Vec<Value> = thought
        .iter()
        .map(|text| json!({ "reasoningContent": { "reasoningText": { "text": text, "signature": REASONING_SIGNATURE } } }))
        .collect();
    content.push(block);
    let mut message = json!({ "role": "assistant", "content": content });
    if call.directives.no_content {
        message = json!({ "role": "assistant" });
    }
    let answer = json!({
        "output": { "message": message },
        "stopReason": stop_reason,
        "usage": usage_json(&usage),
        "metrics": { "latencyMs": 1 }
    });
    Reply::json(200, &answer).with_header("x-amzn-requestid", format!("mock-{}", call.seq))
}

/// One eventstream event frame, with Bedrock's `p` padding field in the payload.
fn event(kind: &str, mut payload: Value) -> Vec<u8> {
    if let Some(fields) = payload.as_object_mut() {
        fields.insert("p".into(), json!("abcdefghijklmnop"));
    }
    eventstream::frame(
        &[
            (":event-type", kind),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload.to_string().as_bytes(),
    )
}

fn converse_stream(
    answer: &Answer,
    thought: Option<&str>,
    usage: &Usage,
    exception: Option<&str>,
    call: &Call,
) -> Reply {
    let mut events = vec![event("messageStart", json!({ "role": "assistant" }))];
    let mut index = 0;
    if let Some(text) = thought.filter(|_| !call.directives.no_content) {
        for piece in conversation::stream_pieces(text) {
            events.push(event(
                "contentBlockDelta",
                json!({ "contentBlockIndex": 0, "delta": { "reasoningContent": { "text": piece } } }),
            ));
        }
        events.push(event(
            "contentBlockDelta",
            json!({ "contentBlockIndex": 0, "delta": { "reasoningContent": { "signature": REASONING_SIGNATURE } } }),
        ));
        events.push(event("contentBlockStop", json!({ "contentBlockIndex": 0 })));
        index = 1;
    }
    let stop_reason = match answer {
        // From the start straight to the stop: no content block.
        _ if call.directives.no_content => "end_turn",
        Answer::Text(text) => {
            for piece in conversation::stream_pieces(text) {
                events.push(event(
                    "contentBlockDelta",
                    json!({ "contentBlockIndex": index, "delta": { "text": piece } }),
                ));
            }
            "end_turn"
        }
        Answer::ToolCall(tool) => {
            events.push(event(
                "contentBlockStart",
                json!({ "contentBlockIndex": index,
                        "start": { "toolUse": { "toolUseId": tool.id, "name": tool.name } } }),
            ));
            let arguments = tool.arguments_json();
            for fragment in conversation::fragments(&arguments, 3) {
                events.push(event(
                    "contentBlockDelta",
                    json!({ "contentBlockIndex": index, "delta": { "toolUse": { "input": fragment } } }),
                ));
            }
            "tool_use"
        }
    };
    if !call.directives.no_content {
        events.push(event(
            "contentBlockStop",
            json!({ "contentBlockIndex": index }),
        ));
    }
    events.push(event("messageStop", json!({ "stopReason": stop_reason })));
    events.push(event(
        "metadata",
        json!({ "usage": usage_json(usage), "metrics": { "latencyMs": 1 } }),
    ));
    if call.directives.malformed {
        events.truncate(1);
        events.push(eventstream::frame(
            &[
                (":event-type", "contentBlockDelta"),
                (":content-type", "application/json"),
                (":message-type", "event"),
            ],
            b"{not json",
        ));
    }
    if let Some(kind) = exception {
        events.truncate(2);
        events.push(eventstream::frame(
            &[
                (":exception-type", kind),
                (":content-type", "application/json"),
                (":message-type", "exception"),
            ],
            json!({ "message": format!("Mock {kind} in the middle of the stream.") })
                .to_string()
                .as_bytes(),
        ));
    }
    if call.directives.cut {
        // Two whole events, then half of the third frame.
        events.truncate(3);
        if let Some(last) = events.last_mut() {
            last.truncate(last.len() / 2);
        }
    }
    Reply::Stream {
        content_type: EVENTSTREAM,
        events,
    }
}

// ---------------------------------------------------------------------------------------------
// InvokeModel: embeddings

fn dimensions(value: Option<&Value>) -> Result<usize, String> {
    match value {
        None => Ok(DEFAULT_DIMENSIONS),
        Some(v) => v
            .as_u64()
            .and_then(|d| usize::try_from(d).ok())
            .filter(|d| (1..=MAX_DIMENSIONS).contains(d))
            .ok_or_else(|| "Malformed input request: dimensions must be a positive integer".into()),
    }
}

fn extraneous(body: &Value, known: &[&str]) -> Result<(), String> {
    match body
        .as_object()
        .and_then(|o| o.keys().find(|k| !known.contains(&k.as_str())))
    {
        Some(key) => Err(format!(
            "Malformed input request: extraneous key [{key}] is not permitted, please reformat your input and try again."
        )),
        None => Ok(()),
    }
}

fn floats(vector: &[f32]) -> Value {
    Value::Array(vector.iter().map(|x| json!(f64::from(*x))).collect())
}

fn invoke(model: &str, call: &Call) -> Reply {
    let Some(body) = call.body.filter(|b| b.is_object()) else {
        return aws_error(
            400,
            "ValidationException",
            "Malformed input request, please reformat your input and try again.",
        );
    };
    let result = if model.contains("amazon.titan-embed") {
        titan(body, call)
    } else if model.contains("cohere.embed") {
        cohere(body, call)
    } else {
        Err(format!(
            "The mock serves InvokeModel for embeddings models only, not {model}."
        ))
    };
    match result {
        Ok(answer) => Reply::json(200, &answer),
        Err(message) => validation(&message),
    }
}

fn titan(body: &Value, call: &Call) -> Result<Value, String> {
    extraneous(
        body,
        &["inputText", "dimensions", "normalize", "embeddingTypes"],
    )?;
    let text = body
        .get("inputText")
        .and_then(Value::as_str)
        .ok_or("Malformed input request: required key [inputText] not found")?;
    let dims = dimensions(body.get("dimensions"))?;
    let tokens = call
        .directives
        .usage
        .prompt
        .unwrap_or_else(|| conversation::words(text).max(1));
    let mut answer = json!({ "inputTextTokenCount": tokens });
    if !call.directives.no_content {
        answer["embedding"] = floats(&conversation::embedding(text, dims));
    }
    Ok(answer)
}

fn cohere(body: &Value, call: &Call) -> Result<Value, String> {
    extraneous(
        body,
        &[
            "texts",
            "input_type",
            "truncate",
            "embedding_types",
            "output_dimension",
            "images",
        ],
    )?;
    let texts: Vec<&str> = body
        .get("texts")
        .and_then(Value::as_array)
        .map(|t| t.iter().filter_map(Value::as_str).collect())
        .filter(|t: &Vec<&str>| !t.is_empty())
        .ok_or("Malformed input request: required key [texts] not found")?;
    if body.get("input_type").and_then(Value::as_str).is_none() {
        return Err("Malformed input request: required key [input_type] not found".into());
    }
    let dims = dimensions(body.get("output_dimension"))?;
    let vectors: Vec<Value> = texts
        .iter()
        .map(|t| floats(&conversation::embedding(t, dims)))
        .collect();
    let mut answer = json!({
        "id": format!("mock-{}", call.seq),
        "texts": texts,
        "response_type": "embeddings_floats"
    });
    if !call.directives.no_content {
        answer["embeddings"] = Value::Array(vectors);
    }
    Ok(answer)
}

// ---------------------------------------------------------------------------------------------
// Eventstream framing

pub mod eventstream {
    /// Prelude (total length, headers length, prelude CRC) and message CRC: a frame's least.
    pub const MIN_FRAME: usize = 16;

    /// One `application/vnd.amazon.eventstream` message with string headers: prelude (total
    /// length, headers length, CRC-32 of both), headers, payload, CRC-32 of all before.
    pub fn frame(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
        let mut header_block = Vec::new();
        for (name, value) in headers {
            header_block.push(name.len() as u8);
            header_block.extend_from_slice(name.as_bytes());
            header_block.push(7); // string
            header_block.extend_from_slice(&(value.len() as u16).to_be_bytes());
            header_block.extend_from_slice(value.as_bytes());
        }
        frame_raw(&header_block, payload)
    }

    /// A message from its encoded header block and its payload.
    pub fn frame_raw(header_block: &[u8], payload: &[u8]) -> Vec<u8> {
        let total = MIN_FRAME + header_block.len() + payload.len();
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&(total as u32).to_be_bytes());
        out.extend_from_slice(&(header_block.len() as u32).to_be_bytes());
        let prelude_crc = crc32fast::hash(&out);
        out.extend_from_slice(&prelude_crc.to_be_bytes());
        out.extend_from_slice(header_block);
        out.extend_from_slice(payload);
        let message_crc = crc32fast::hash(&out);
        out.extend_from_slice(&message_crc.to_be_bytes());
        out
    }

    /// The encoded header block and the payload of one whole message (CRCs not checked).
    pub fn split(frame: &[u8]) -> Option<(&[u8], &[u8])> {
        let word = |at: usize| -> Option<usize> {
            let bytes: [u8; 4] = frame.get(at..at + 4)?.try_into().ok()?;
            usize::try_from(u32::from_be_bytes(bytes)).ok()
        };
        let (total, headers_len) = (word(0)?, word(4)?);
        if total != frame.len() {
            return None;
        }
        let payload_start = 12usize.checked_add(headers_len)?;
        Some((
            frame.get(12..payload_start)?,
            frame.get(payload_start..total.checked_sub(4)?)?,
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// SigV4 verification

pub mod sigv4 {
    //! Checks an `Authorization: AWS4-HMAC-SHA256 ...` header by recomputing the signature
    //! over the request as received: the headers it names, the raw path (each segment
    //! URI-encoded once more, AWS's rule outside S3), the query and the body.

    use axum::http::HeaderMap;
    use hmac::{Hmac, Mac};
    use sha2::{Digest, Sha256};

    /// Requests signed longer ago (or further ahead) than this are refused, as AWS does.
    const MAX_SKEW_SECS: u64 = 15 * 60;

    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Credentials {
        pub access_key_id: String,
        pub secret_access_key: String,
        /// Accept requests with no `authorization` at all (`--aws-allow-unsigned`, bench only).
        pub allow_unsigned: bool,
    }

    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum AuthError {
        Missing,
        Malformed(String),
        UnknownAccessKey,
        Expired,
        Mismatch,
    }

    impl AuthError {
        /// The exception name and message AWS answers with (status 403).
        pub fn aws_error(&self) -> (&'static str, String) {
            match self {
                AuthError::Missing => (
                    "MissingAuthenticationTokenException",
                    "Missing Authentication Token".into(),
                ),
                AuthError::Malformed(why) => (
                    "IncompleteSignatureException",
                    format!("Authorization header is malformed: {why}"),
                ),
                AuthError::UnknownAccessKey => (
                    "UnrecognizedClientException",
                    "The security token included in the request is invalid.".into(),
                ),
                AuthError::Expired => (
                    "InvalidSignatureException",
                    "Signature expired: the request time is too far from the server time.".into(),
                ),
                AuthError::Mismatch => (
                    "InvalidSignatureException",
                    "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.".into(),
                ),
            }
        }
    }

    struct Authorization<'a> {
        access_key_id: &'a str,
        date: &'a str,
        region: &'a str,
        service: &'a str,
        signed_headers: Vec<&'a str>,
        signature: &'a str,
    }

    fn parse_authorization(value: &str) -> Result<Authorization<'_>, AuthError> {
        let malformed = |why: &str| AuthError::Malformed(why.to_owned());
        let rest = value
            .strip_prefix("AWS4-HMAC-SHA256 ")
            .ok_or_else(|| malformed("the algorithm must be AWS4-HMAC-SHA256"))?;
        let (mut credential, mut signed, mut signature) = (None, None, None);
        for part in rest.split(',') {
            match part.trim().split_once('=') {
                Some(("Credential", v)) => credential = Some(v),
                Some(("SignedHeaders", v)) => signed = Some(v),
                Some(("Signature", v)) => signature = Some(v),
                _ => return Err(malformed("unexpected element")),
            }
        }
        let credential = credential.ok_or_else(|| malformed("no Credential"))?;
        let scope: Vec<&str> = credential.split('/').collect();
        let [access_key_id, date, region, service, "aws4_request"] = scope.as_slice() else {
            return Err(malformed(
                "Credential must be KEY/DATE/REGION/SERVICE/aws4_request",
            ));
        };
        Ok(Authorization {
            access_key_id,
            date,
            region,
            service,
            signed_headers: signed
                .ok_or_else(|| malformed("no SignedHeaders"))?
                .split(';')
                .collect(),
            signature: signature.ok_or_else(|| malformed("no Signature"))?,
        })
    }

    /// Verifies the request's signature at `now` (Unix seconds).
    pub fn verify(
        method: &str,
        raw_path: &str,
        headers: &HeaderMap,
        body: &[u8],
        credentials: &Credentials,
        now: u64,
    ) -> Result<(), AuthError> {
        let header = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .ok_or(AuthError::Missing)?;
        let auth = parse_authorization(header)?;
        if auth.access_key_id != credentials.access_key_id {
            return Err(AuthError::UnknownAccessKey);
        }
        let mut required = vec!["host", "x-amz-date"];
        if headers.contains_key("x-amz-security-token") {
            required.push("x-amz-security-token");
        }
        for name in required {
            if !auth.signed_headers.contains(&name) {
                return Err(AuthError::Malformed(format!("{name} must be signed")));
            }
        }
        let timestamp = headers
            .get("x-amz-date")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| AuthError::Malformed("no x-amz-date header".into()))?;
        let signed_at = parse_amz_date(timestamp)
            .ok_or_else(|| AuthError::Malformed(format!("bad x-amz-date {timestamp}")))?;
        if signed_at.abs_diff(now) > MAX_SKEW_SECS {
            return Err(AuthError::Expired);
        }
        if !timestamp.starts_with(auth.date) {
            return Err(AuthError::Malformed(
                "the scope date is not the x-amz-date".into(),
            ));
        }

        let (path, query) = raw_path.split_once('?').unwrap_or((raw_path, ""));
        let mut canonical = String::new();
        canonical.push_str(method);
        canonical.push('\n');
        canonical.push_str(&canonical_uri(path));
        canonical.push('\n');
        canonical.push_str(&canonical_query(query));
        canonical.push('\n');
        for name in &auth.signed_headers {
            let values: Vec<String> = headers
                .get_all(*name)
                .iter()
                .map(|v| {
                    String::from_utf8_lossy(v.as_bytes())
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect();
            canonical.push_str(name);
            canonical.push(':');
            canonical.push_str(&values.join(","));
            canonical.push('\n');
        }
        canonical.push('\n');
        canonical.push_str(&auth.signed_headers.join(";"));
        canonical.push('\n');
        canonical.push_str(&hex(&Sha256::digest(body)));

        let scope = format!(
            "{}/{}/{}/aws4_request",
            auth.date, auth.region, auth.service
        );
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{timestamp}\n{scope}\n{}",
            hex(&Sha256::digest(canonical.as_bytes()))
        );
        let key = [auth.date, auth.region, auth.service, "aws4_request"]
            .iter()
            .fold(
                format!("AWS4{}", credentials.secret_access_key).into_bytes(),
                |key, part| hmac(&key, part.as_bytes()),
            );
        let expected = hex(&hmac(&key, string_to_sign.as_bytes()));
        if expected == auth.signature {
            Ok(())
        } else {
            Err(AuthError::Mismatch)
        }
    }

    fn canonical_uri(path: &str) -> String {
        if path.is_empty() {
            return "/".into();
        }
        path.split('/')
            .map(|s| encode(s.as_bytes()))
            .collect::<Vec<_>>()
            .join("/")
    }

    fn canonical_query(query: &str) -> String {
        let mut pairs: Vec<(String, String)> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (
                    encode(crate::percent_decode(k, false).as_bytes()),
                    encode(crate::percent_decode(v, false).as_bytes()),
                )
            })
            .collect();
        pairs.sort();
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// Percent-encodes all but `A-Z a-z 0-9 - _ . ~`.
    fn encode(bytes: &[u8]) -> String {
        const UNRESERVED: &[u8] = b"-_.~";
        bytes
            .iter()
            .map(|&b| {
                if b.is_ascii_alphanumeric() || UNRESERVED.contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    }

    fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
        // HMAC takes keys of any length.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
            return Vec::new();
        };
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// `YYYYMMDDTHHMMSSZ` to Unix seconds.
    fn parse_amz_date(text: &str) -> Option<u64> {
        if text.len() != 16 || text.as_bytes().get(8) != Some(&b'T') || !text.ends_with('Z') {
            return None;
        }
        let num = |range: std::ops::Range<usize>| text.get(range)?.parse::<u64>().ok();
        let (year, month, day) = (num(0..4)?, num(4..6)?, num(6..8)?);
        let (hour, minute, second) = (num(9..11)?, num(11..13)?, num(13..15)?);
        if !(1..=12).contains(&month)
            || !(1..=31).contains(&day)
            || hour > 23
            || minute > 59
            || second > 60
        {
            return None;
        }
        Some(days_since_epoch(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
    }

    /// Days from 1970-01-01 to a Gregorian date (dates from 1970 on).
    fn days_since_epoch(year: u64, month: u64, day: u64) -> u64 {
        let is_leap =
            |y: u64| (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
        let days_before_year: u64 = (1970..year)
            .map(|y| if is_leap(y) { 366 } else { 365 })
            .sum();
        const CUMULATIVE: [u64; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
        let leap_day = u64::from(month > 2 && is_leap(year));
        days_before_year + CUMULATIVE[(month - 1) as usize] + leap_day + day - 1
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use axum::http::HeaderValue;

        /// 2015-08-30T12:36:00Z, when AWS's test suite requests were signed.
        const SUITE_NOW: u64 = 1_440_938_160;

        fn suite_credentials() -> Credentials {
            Credentials {
                access_key_id: "AKIDEXAMPLE".into(),
                secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
                allow_unsigned: false,
            }
        }

        /// A request from AWS's published SigV4 test suite (aws-sig-v4-test-suite: the `.req`
        /// requests and their `.authz` signatures, verbatim).
        struct Vector {
            /// The suite's case.
            name: &'static str,
            method: &'static str,
            /// The raw path with its query.
            path: &'static str,
            headers: &'static [(&'static str, &'static str)],
            body: &'static str,
            authorization: &'static str,
        }

        const VECTORS: &[Vector] = &[
            Vector {
                name: "get-vanilla",
                method: "GET",
                path: "/",
                headers: &[("host", "example.amazonaws.com"), ("x-amz-date", "20150830T123600Z")],
                body: "",
                authorization: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            },
            Vector {
                name: "post-vanilla",
                method: "POST",
                path: "/",
                headers: &[("host", "example.amazonaws.com"), ("x-amz-date", "20150830T123600Z")],
                body: "",
                authorization: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
            },
            Vector {
                name: "post-x-www-form-urlencoded",
                method: "POST",
                path: "/",
                headers: &[
                    ("content-type", "application/x-www-form-urlencoded"),
                    ("host", "example.amazonaws.com"),
                    ("x-amz-date", "20150830T123600Z"),
                    ("content-length", "13"),
                ],
                body: "Param1=value1",
                authorization: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
            },
            Vector {
                name: "post-sts-header-before",
                method: "POST",
                path: "/",
                headers: &[
                    ("host", "example.amazonaws.com"),
                    ("x-amz-date", "20150830T123600Z"),
                    ("x-amz-security-token", "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="),
                ],
                body: "",
                authorization: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead",
            },
            Vector {
                name: "get-vanilla-query-order-key-case",
                method: "GET",
                path: "/?Param2=value2&Param1=value1",
                headers: &[("host", "example.amazonaws.com"), ("x-amz-date", "20150830T123600Z")],
                body: "",
                authorization: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
            },
            Vector {
                name: "get-vanilla-utf8-query",
                method: "GET",
                path: "/?\u{1234}=bar",
                headers: &[("host", "example.amazonaws.com"), ("x-amz-date", "20150830T123600Z")],
                body: "",
                authorization: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04",
            },
            Vector {
                name: "get-utf8",
                method: "GET",
                path: "/\u{1234}",
                headers: &[("host", "example.amazonaws.com"), ("x-amz-date", "20150830T123600Z")],
                body: "",
                authorization: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
            },
            Vector {
                name: "get-header-value-trim",
                method: "GET",
                path: "/",
                headers: &[
                    ("host", "example.amazonaws.com"),
                    ("my-header1", " value1"),
                    ("my-header2", " \"a   b   c\""),
                    ("x-amz-date", "20150830T123600Z"),
                ],
                body: "",
                authorization: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;my-header1;my-header2;x-amz-date, Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
            },
            Vector {
                name: "get-header-key-duplicate",
                method: "GET",
                path: "/",
                headers: &[
                    ("host", "example.amazonaws.com"),
                    ("my-header1", "value2"),
                    ("my-header1", "value2"),
                    ("my-header1", "value1"),
                    ("x-amz-date", "20150830T123600Z"),
                ],
                body: "",
                authorization: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;my-header1;x-amz-date, Signature=c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
            },
        ];

        fn headers(list: &[(&'static str, &'static str)], authorization: &str) -> HeaderMap {
            let mut map = HeaderMap::new();
            for (name, value) in list {
                map.append(*name, HeaderValue::from_str(value).unwrap());
            }
            map.insert(
                "authorization",
                HeaderValue::from_str(authorization).unwrap(),
            );
            map
        }

        #[test]
        fn accepts_aws_test_suite_signatures() {
            for vector in VECTORS {
                let map = headers(vector.headers, vector.authorization);
                let result = verify(
                    vector.method,
                    vector.path,
                    &map,
                    vector.body.as_bytes(),
                    &suite_credentials(),
                    SUITE_NOW,
                );
                assert_eq!(result, Ok(()), "{}", vector.name);
            }
        }

        #[test]
        fn refuses_what_aws_would() {
            let Vector {
                method,
                path,
                headers: list,
                body,
                authorization,
                ..
            } = VECTORS[2];
            let check = |method: &str,
                         path: &str,
                         map: &HeaderMap,
                         body: &str,
                         creds: &Credentials,
                         now: u64| {
                verify(method, path, map, body.as_bytes(), creds, now)
            };
            let good = headers(list, authorization);
            let creds = suite_credentials();
            assert_eq!(
                check(method, path, &good, body, &creds, SUITE_NOW + 60),
                Ok(())
            );
            // Body, path, method or a signed header changed; wrong secret; stale; no header.
            assert_eq!(
                check(method, path, &good, "Param1=value2", &creds, SUITE_NOW),
                Err(AuthError::Mismatch)
            );
            assert_eq!(
                check(method, "/x", &good, body, &creds, SUITE_NOW),
                Err(AuthError::Mismatch)
            );
            assert_eq!(
                check("PUT", path, &good, body, &creds, SUITE_NOW),
                Err(AuthError::Mismatch)
            );
            let mut other_type = good.clone();
            other_type.insert("content-type", HeaderValue::from_static("text/plain"));
            assert_eq!(
                check(method, path, &other_type, body, &creds, SUITE_NOW),
                Err(AuthError::Mismatch)
            );
            let wrong_secret = Credentials {
                secret_access_key: "nope".into(),
                ..suite_credentials()
            };
            assert_eq!(
                check(method, path, &good, body, &wrong_secret, SUITE_NOW),
                Err(AuthError::Mismatch)
            );
            let other_key = Credentials {
                access_key_id: "AKIDOTHER".into(),
                ..suite_credentials()
            };
            assert_eq!(
                check(method, path, &good, body, &other_key, SUITE_NOW),
                Err(AuthError::UnknownAccessKey)
            );
            assert_eq!(
                check(method, path, &good, body, &creds, SUITE_NOW + 16 * 60),
                Err(AuthError::Expired)
            );
            assert_eq!(
                check(method, path, &HeaderMap::new(), body, &creds, SUITE_NOW),
                Err(AuthError::Missing)
            );
            let unsigned_host = headers(
                list,
                &authorization.replace("content-type;host;", "content-type;"),
            );
            assert!(matches!(
                check(method, path, &unsigned_host, body, &creds, SUITE_NOW),
                Err(AuthError::Malformed(_))
            ));
            // A security token must be signed: one slipped in afterwards is refused.
            let mut unsigned_token = good.clone();
            unsigned_token.insert(
                "x-amz-security-token",
                HeaderValue::from_static("slipped-in"),
            );
            assert!(matches!(
                check(method, path, &unsigned_token, body, &creds, SUITE_NOW),
                Err(AuthError::Malformed(_))
            ));
        }

        #[test]
        fn bedrock_paths_are_encoded_twice() {
            assert_eq!(
                canonical_uri("/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"),
                "/model/anthropic.claude-3-5-sonnet-20240620-v1%253A0/converse"
            );
            assert_eq!(parse_amz_date("20150830T123600Z"), Some(SUITE_NOW));
            assert_eq!(parse_amz_date("20240229T235959Z"), Some(1_709_251_199));
            assert_eq!(parse_amz_date("2024-02-29T23:59"), None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Directives;
    use axum::http::{HeaderMap, HeaderValue};

    #[test]
    fn routes() {
        let cases = [
            (
                "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse",
                Some(Endpoint::Converse {
                    model: "anthropic.claude-3-5-sonnet-20240620-v1:0".into(),
                }),
            ),
            (
                "/bedrock/model/m/converse-stream",
                Some(Endpoint::ConverseStream { model: "m".into() }),
            ),
            (
                "/model/amazon.titan-embed-text-v2%3A0/invoke",
                Some(Endpoint::Invoke {
                    model: "amazon.titan-embed-text-v2:0".into(),
                }),
            ),
            ("/model/m/invoke-with-response-stream", None),
            ("/v1/chat/completions", None),
            ("/models/m/converse", None),
        ];
        for (path, expected) in cases {
            assert_eq!(route(&Method::POST, path), expected, "{path}");
        }
        assert_eq!(route(&Method::GET, "/model/m/converse"), None);
    }

    /// AWS's event stream test vectors: the frames this module writes must match byte for byte.
    #[test]
    fn frames_match_aws_vectors() {
        assert_eq!(
            eventstream::frame(&[], b""),
            [0, 0, 0, 16, 0, 0, 0, 0, 5, 194, 72, 235, 125, 152, 200, 255]
        );
        assert_eq!(
            eventstream::frame(&[], b"{'foo':'bar'}"),
            [
                0, 0, 0, 29, 0, 0, 0, 0, 253, 82, 140, 90, 123, 39, 102, 111, 111, 39, 58, 39, 98,
                97, 114, 39, 125, 195, 101, 57, 54
            ]
        );
        assert_eq!(
            eventstream::frame(&[("content-type", "application/json")], b"{'foo':'bar'}"),
            [
                0, 0, 0, 61, 0, 0, 0, 32, 7, 253, 131, 150, 12, 99, 111, 110, 116, 101, 110, 116,
                45, 116, 121, 112, 101, 7, 0, 16, 97, 112, 112, 108, 105, 99, 97, 116, 105, 111,
                110, 47, 106, 115, 111, 110, 123, 39, 102, 111, 111, 39, 58, 39, 98, 97, 114, 39,
                125, 141, 156, 8, 177
            ]
        );
    }

    fn call_with<'a>(body: &'a Value, directives: &'a Directives) -> Call<'a> {
        Call {
            seq: 1,
            method: &Method::POST,
            path: "/model/m/converse",
            body: Some(body),
            directives,
            created: 0,
        }
    }

    fn received(headers: &HeaderMap) -> Received<'_> {
        Received {
            raw_path: "/model/m/converse",
            headers,
            body: b"",
        }
    }

    #[test]
    fn validates_like_bedrock() {
        let cases = [
            (
                json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}], "model": "x"}),
                "extraneous key [model]",
            ),
            (json!({"messages": []}), "must start with a user message"),
            (
                json!({"messages": [{"role": "assistant", "content": [{"text": "hi"}]}]}),
                "must start with a user message",
            ),
            (
                json!({"messages": [{"role": "user", "content": [{"text": "a"}]}, {"role": "user", "content": [{"text": "b"}]}]}),
                "must alternate",
            ),
            (
                json!({"messages": [{"role": "user", "content": [{"text": " "}]}]}),
                "messages.0.content.0 is blank",
            ),
            (
                json!({"messages": [{"role": "user", "content": []}]}),
                "messages.0 is empty",
            ),
            (
                json!({"messages": [{"role": "user", "content": [{"text": "a"}]}, {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t", "name": "f", "input": {}}}]}]}),
                "toolConfig field must be defined",
            ),
            (
                json!({"messages": [{"role": "user", "content": [{"text": "a"}]}], "inferenceConfig": {"temperature": 1.5}}),
                "inferenceConfig.temperature",
            ),
            (
                json!({"messages": [{"role": "user", "content": [{"text": "a"}]}], "inferenceConfig": {"stopSequences": ["a", "b", "c", "d", "e"]}}),
                "at most 4",
            ),
            (
                json!({"messages": [{"role": "user", "content": [{"text": "a"}]}, {"role": "assistant", "content": [{"text": "b"}]},
                                 {"role": "user", "content": [{"toolResult": {"toolUseId": "t9", "content": [{"text": "r"}]}}]}],
                    "toolConfig": {"tools": [{"toolSpec": {"name": "f", "inputSchema": {"json": {}}}}]}}),
                "does not match a toolUse",
            ),
        ];
        for (body, expected) in cases {
            let err = conversation(&body).unwrap_err();
            assert!(err.contains(expected), "{body}: {err}");
        }
    }

    #[test]
    fn conversation_from_converse() {
        let body = json!({
            "system": [{"text": "be brief"}],
            "messages": [
                {"role": "user", "content": [{"text": "weather?"}, {"image": {"format": "png", "source": {"bytes": "AA=="}}}]},
                {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "weather", "input": {}}}]},
                {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": [{"text": "sunny"}]}}]}
            ],
            "toolConfig": {"tools": [{"toolSpec": {"name": "weather", "inputSchema": {"json": {"type": "object"}}}}],
                           "toolChoice": {"tool": {"name": "weather"}}}
        });
        let c = conversation(&body).unwrap();
        let turns: Vec<(&str, &str)> = c
            .turns
            .iter()
            .map(|t| (t.role.as_str(), t.text.as_str()))
            .collect();
        assert_eq!(
            turns,
            [
                ("system", "be brief"),
                ("user", "weather?"),
                ("assistant", ""),
                ("tool", "sunny")
            ]
        );
        assert_eq!(c.tool_choice, ToolChoice::Named("weather".into()));
        assert_eq!(c.tools.len(), 1);
    }

    #[test]
    fn unsigned_requests_get_aws_403() {
        let body = json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}]});
        let directives = Directives::default();
        let mut headers = HeaderMap::new();
        let creds = Credentials {
            access_key_id: "AKID".into(),
            secret_access_key: "s".into(),
            allow_unsigned: false,
        };
        let call = call_with(&body, &directives);
        let Reply::Full {
            status,
            headers: out,
            body: bytes,
            ..
        } = handle(
            &Endpoint::Converse { model: "m".into() },
            &call,
            &received(&headers),
            &creds,
        )
        else {
            panic!("a JSON error expected")
        };
        assert_eq!(status, 403);
        assert!(out.iter().any(|(n, v)| *n == "x-amzn-errortype"
            && v.starts_with("MissingAuthenticationTokenException:")));
        assert_eq!(
            serde_json::from_slice::<Value>(&bytes).unwrap(),
            json!({"message": "Missing Authentication Token"})
        );
        // A status directive does not get past authentication either.
        headers.insert("authorization", HeaderValue::from_static("AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/bedrock/aws4_request, SignedHeaders=host;x-amz-date, Signature=00"));
        headers.insert("x-amz-date", HeaderValue::from_static("20240101T000000Z"));
        let Reply::Full {
            status,
            headers: out,
            ..
        } = error(429, &call, &received(&headers), &creds)
        else {
            panic!("a JSON error expected")
        };
        assert_eq!(status, 403);
        assert!(out
            .iter()
            .any(|(n, v)| *n == "x-amzn-errortype" && v.starts_with("InvalidSignatureException:")));
    }

    #[test]
    fn thinking_answers_with_signed_reasoning_and_wants_it_back() {
        let directives = Directives::default();
        let thinking = json!({"thinking": {"type": "enabled", "budget_tokens": 1024}});
        let ask = json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}],
            "inferenceConfig": {"maxTokens": 2000}, "additionalModelRequestFields": thinking});
        let Reply::Full { body: bytes, .. } = converse(&call_with(&ask, &directives), Mode::Json)
        else {
            panic!()
        };
        let answer: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            answer["output"]["message"]["content"],
            json!([{"reasoningContent": {"reasoningText": {"text": "The user wrote: hi", "signature": REASONING_SIGNATURE}}},
                   {"text": "echo: hi"}])
        );
        let tool_loop = |reasoning: Option<&str>| {
            let mut assistant =
                vec![json!({"toolUse": {"toolUseId": "t", "name": "f", "input": {}}})];
            if let Some(signature) = reasoning {
                assistant.insert(0, json!({"reasoningContent": {"reasoningText": {"text": "r", "signature": signature}}}));
            }
            json!({"messages": [{"role": "user", "content": [{"text": "a"}]},
                {"role": "assistant", "content": assistant},
                {"role": "user", "content": [{"toolResult": {"toolUseId": "t", "content": [{"text": "ok"}]}}]}],
                "toolConfig": {"tools": [{"toolSpec": {"name": "f", "inputSchema": {"json": {}}}}]},
                "inferenceConfig": {"maxTokens": 2000}, "additionalModelRequestFields": thinking})
        };
        let status = |body: &Value| match converse(&call_with(body, &directives), Mode::Json) {
            Reply::Full { status, .. } => status,
            Reply::Stream { .. } => 0,
        };
        assert_eq!(status(&tool_loop(Some(REASONING_SIGNATURE))), 200);
        assert_eq!(status(&tool_loop(None)), 400);
        assert_eq!(status(&tool_loop(Some("forged"))), 400);
        let mut low_cap = ask.clone();
        low_cap["inferenceConfig"]["maxTokens"] = json!(1024);
        assert_eq!(status(&low_cap), 400);
    }

    #[test]
    fn converse_answers_and_streams() {
        let body = json!({"messages": [{"role": "user", "content": [{"text": "hello there"}]}]});
        let directives = Directives::default();
        let call = call_with(&body, &directives);
        let Reply::Full { body: bytes, .. } = converse(&call, Mode::Json) else {
            panic!()
        };
        let answer: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            answer["output"]["message"]["content"],
            json!([{"text": "echo: hello there"}])
        );
        assert_eq!(answer["stopReason"], "end_turn");
        assert_eq!(
            answer["usage"],
            json!({"inputTokens": 5, "outputTokens": 3, "totalTokens": 8})
        );

        let Reply::Stream {
            content_type,
            events,
        } = converse(&call, Mode::Stream { exception: None })
        else {
            panic!()
        };
        assert_eq!(content_type, EVENTSTREAM);
        let kinds: Vec<String> = events
            .iter()
            .map(|frame| {
                // `:event-type` is the first header: name length, name, type 7, u16 length, value.
                let len =
                    u16::from_be_bytes([frame[12 + 1 + 11 + 1], frame[12 + 1 + 11 + 2]]) as usize;
                String::from_utf8(frame[12 + 1 + 11 + 3..12 + 1 + 11 + 3 + len].to_vec()).unwrap()
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "messageStart",
                "contentBlockDelta",
                "contentBlockDelta",
                "contentBlockDelta",
                "contentBlockStop",
                "messageStop",
                "metadata"
            ]
        );
    }
}
