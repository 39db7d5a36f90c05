//! The Google Gemini wire format, on both of its hosts:
//! AI Studio (`/v1beta/models/{model}:{method}`) and Vertex AI
//! (`/v1/projects/{p}/locations/{l}/publishers/google/models/{model}:{method}`).
//!
//! Methods: `generateContent`, `streamGenerateContent` (always SSE, as `alt=sse` asks),
//! `batchEmbedContents` (AI Studio embeddings) and `predict` (Vertex embeddings), with Google's
//! error bodies (`{"error":{"code","message","status","details"}}`).
//!
//! Like Gemini 3, the mock signs every function call it makes (`thoughtSignature`) and rejects
//! (400 `INVALID_ARGUMENT`) a conversation whose model turns send function calls back without
//! the signature it issued, unless the turn carries Google's documented
//! `skip_thought_signature_validator`.

use axum::http::Method;
use base64::Engine as _;
use serde_json::{json, Map, Value};

use crate::conversation::{self, Answer, Conversation, Tool, ToolChoice, Turn, Usage};
use crate::{Call, Reply};

/// Embedding length when the request does not ask for `outputDimensionality`.
const DEFAULT_DIMENSIONS: usize = 8;
const MAX_DIMENSIONS: usize = 8192;
/// The signature Google documents for histories that were not made by Gemini.
const SKIP_SIGNATURE: &str = "skip_thought_signature_validator";
const SSE: &str = "text/event-stream";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Generate { model: String },
    Stream { model: String },
    BatchEmbed { model: String },
    Predict { model: String },
}

/// Matches `.../models/{model}:{method}` under either host's prefix.
pub fn route(method: &Method, path: &str) -> Option<Endpoint> {
    if *method != Method::POST {
        return None;
    }
    let (prefix, tail) = path.rsplit_once("/models/")?;
    let google_host = prefix == "/v1beta"
        || prefix == "/v1"
        || (prefix.starts_with("/v1/projects/") && prefix.ends_with("/publishers/google"));
    if !google_host {
        return None;
    }
    let (model, verb) = tail.split_once(':')?;
    let model = model.to_owned();
    match verb {
        "generateContent" => Some(Endpoint::Generate { model }),
        "streamGenerateContent" => Some(Endpoint::Stream { model }),
        "batchEmbedContents" => Some(Endpoint::BatchEmbed { model }),
        "predict" => Some(Endpoint::Predict { model }),
        _ => None,
    }
}

pub fn handle(endpoint: &Endpoint, call: &Call) -> Reply {
    let Some(body) = call.body.filter(|b| b.is_object()) else {
        return error_reply(
            400,
            "Invalid JSON payload received. Unexpected token.",
            "INVALID_ARGUMENT",
        );
    };
    match endpoint {
        Endpoint::Generate { model } => generate(model, body, call, false),
        Endpoint::Stream { model } => generate(model, body, call, true),
        Endpoint::BatchEmbed { model } => batch_embed(model, body, call),
        Endpoint::Predict { model } => predict(model, body, call),
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

fn error_body(code: u16, message: &str, status: &str) -> Value {
    json!({"error": {"code": code, "message": message, "status": status}})
}

fn error_reply(code: u16, message: &str, status: &str) -> Reply {
    Reply::json(code, &error_body(code, message, status))
}

/// The error Google sends for this status.
pub fn error(status: u16, call: &Call) -> Reply {
    let model = call
        .path
        .rsplit_once("/models/")
        .and_then(|(_, tail)| tail.split(':').next())
        .unwrap_or("mock-model");
    let body = match status {
        400 => error_body(400, "Request contains an invalid argument.", "INVALID_ARGUMENT"),
        401 => error_body(
            401,
            "Request had invalid authentication credentials. Expected OAuth 2 access token, \
             login cookie or other valid authentication credential.",
            "UNAUTHENTICATED",
        ),
        403 => error_body(
            403,
            "Permission denied on resource project mock-project.",
            "PERMISSION_DENIED",
        ),
        404 => error_body(
            404,
            &format!("models/{model} is not found for API version v1beta, or is not supported for generateContent."),
            "NOT_FOUND",
        ),
        429 => json!({"error": {
            "code": 429,
            "message": "You exceeded your current quota, please check your plan and billing details.",
            "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"}]
        }}),
        500 => error_body(
            500,
            "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
            "INTERNAL",
        ),
        503 => error_body(
            503,
            "The model is overloaded. Please try again later.",
            "UNAVAILABLE",
        ),
        504 => error_body(504, "Deadline expired before operation could complete.", "DEADLINE_EXCEEDED"),
        _ => error_body(
            status,
            &format!("Mock error with status {status}."),
            if status >= 500 { "UNKNOWN" } else { "FAILED_PRECONDITION" },
        ),
    };
    Reply::json(status, &body)
}

/// The 401 (or `status`) Google sends for a wrong credential, quoting it as presented.
pub fn invalid_key(status: u16, key: &str) -> Reply {
    let google_status = match status {
        400 => "INVALID_ARGUMENT",
        403 => "PERMISSION_DENIED",
        _ => "UNAUTHENTICATED",
    };
    error_reply(
        status,
        &format!("API key not valid: {key}. Please pass a valid API key."),
        google_status,
    )
}

// ---------------------------------------------------------------------------------------------
// Thought signatures

/// The signature the mock gives a function call: standard base64 that starts with `+/+/`, so a
/// gateway that does not carry it byte for byte (`+`, `/`, `=`) is caught.
pub fn signature(name: &str, args: &Value) -> String {
    let mut bytes = vec![0xfb, 0xff, 0xbf];
    bytes.extend_from_slice(format!("mock-thought:{name}:{args}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Checks every model turn that calls functions: its first call must carry the signature the
/// mock issued for it (or the documented skip value), as Gemini 3 requires.
fn check_signatures(contents: &[Value]) -> Result<(), String> {
    for (i, content) in contents.iter().enumerate() {
        if content.get("role").and_then(Value::as_str) != Some("model") {
            continue;
        }
        let parts = content
            .get("parts")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let Some((j, part)) = parts
            .iter()
            .enumerate()
            .find(|(_, p)| p.get("functionCall").is_some())
        else {
            continue;
        };
        let call = &part["functionCall"];
        let name = call.get("name").and_then(Value::as_str).unwrap_or("");
        let args = call.get("args").cloned().unwrap_or_else(|| json!({}));
        let expected = signature(name, &args);
        match part.get("thoughtSignature").and_then(Value::as_str) {
            Some(sig) if sig == expected || sig == SKIP_SIGNATURE => {}
            Some(_) => {
                return Err(format!(
                    "Thought signature is not valid (contents[{i}].parts[{j}], function call `{name}`)."
                ))
            }
            None => {
                return Err(format!(
                    "Function call is missing a thought_signature in functionCall parts. This is \
                     required for tools to work correctly. Additional data, function call `{name}`, \
                     position {}. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures \
                     for more details.",
                    i + 1
                ))
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// generateContent

fn parts_of(content: &Value) -> &[Value] {
    content
        .get("parts")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn texts(parts: &[Value]) -> String {
    parts
        .iter()
        .filter(|p| p.get("thought").and_then(Value::as_bool) != Some(true))
        .filter_map(|p| p.get("text").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}

fn conversation(body: &Value) -> Option<Conversation> {
    let contents = body.get("contents")?.as_array()?;
    let mut turns = Vec::new();
    if let Some(system) = body.get("systemInstruction") {
        turns.push(Turn::new("system", texts(parts_of(system))));
    }
    for content in contents {
        let parts = parts_of(content);
        match content.get("role").and_then(Value::as_str) {
            Some("model") => turns.push(Turn::new("assistant", texts(parts))),
            _ => {
                // Function responses read as tool results, in order, before the user's text.
                for response in parts.iter().filter_map(|p| p.get("functionResponse")) {
                    let output = response
                        .pointer("/response/output")
                        .or_else(|| response.get("response"))
                        .cloned()
                        .unwrap_or(Value::Null);
                    let text = match output {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    turns.push(Turn::new("tool", text));
                }
                let text = texts(parts);
                if !text.is_empty() || !parts.iter().any(|p| p.get("functionResponse").is_some()) {
                    turns.push(Turn::new("user", text));
                }
            }
        }
    }
    let tools = body
        .get("tools")
        .and_then(Value::as_array)
        .map(|tools| {
            tools
                .iter()
                .filter_map(|t| t.get("functionDeclarations")?.as_array())
                .flatten()
                .filter_map(|f| {
                    Some(Tool {
                        name: f.get("name")?.as_str()?.to_owned(),
                        parameters: f
                            .get("parametersJsonSchema")
                            .or_else(|| f.get("parameters"))
                            .cloned()
                            .unwrap_or(Value::Null),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let config = body.pointer("/toolConfig/functionCallingConfig");
    let tool_choice = match config.and_then(|c| c.get("mode")).and_then(Value::as_str) {
        Some("NONE") => ToolChoice::None,
        _ => match config
            .and_then(|c| c.pointer("/allowedFunctionNames/0"))
            .and_then(Value::as_str)
        {
            Some(name) => ToolChoice::Named(name.to_owned()),
            None => ToolChoice::Auto,
        },
    };
    Some(Conversation {
        turns,
        tools,
        tool_choice,
    })
}

/// `usageMetadata`: thoughts are counted apart from the candidates.
fn usage_json(usage: &Usage) -> Value {
    let mut out = json!({
        "promptTokenCount": usage.prompt,
        "candidatesTokenCount": usage.completion.saturating_sub(usage.reasoning),
        "totalTokenCount": usage.total(),
    });
    if usage.cached > 0 {
        out["cachedContentTokenCount"] = json!(usage.cached);
    }
    if usage.reasoning > 0 {
        out["thoughtsTokenCount"] = json!(usage.reasoning);
    }
    out
}

/// One `GenerateContentResponse`; under `no_content` its candidate has no `content`.
fn response(call: &Call, model: &str, parts: Vec<Value>, finish: bool, usage: Value) -> Value {
    let mut candidate = if call.directives.no_content {
        json!({"index": 0})
    } else {
        json!({"content": {"role": "model", "parts": parts}, "index": 0})
    };
    if finish {
        candidate["finishReason"] = json!("STOP");
    }
    json!({
        "candidates": [candidate],
        "usageMetadata": usage,
        "modelVersion": model,
        "responseId": format!("mock-gemini-{}", call.seq),
    })
}

fn generate(model: &str, body: &Value, call: &Call, stream: bool) -> Reply {
    let Some(conversation) = conversation(body) else {
        return error_reply(
            400,
            "* GenerateContentRequest.contents: contents is not specified",
            "INVALID_ARGUMENT",
        );
    };
    let contents = body
        .get("contents")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    if let Err(message) = check_signatures(contents) {
        return error_reply(400, &message, "INVALID_ARGUMENT");
    }
    let (answer, usage) = conversation::respond(&conversation, call.directives);
    // Like Gemini 3, a text answer carries a signature on its last part too.
    let text_signature = base64::engine::general_purpose::STANDARD.encode(b"mock-text-thought");
    if !stream {
        let parts = match &answer {
            Answer::Text(text) => {
                vec![json!({"text": text, "thoughtSignature": text_signature})]
            }
            Answer::ToolCall(tool_call) => vec![function_call_part(tool_call)],
        };
        let answer = response(call, model, parts, true, usage_json(&usage));
        return Reply::json(200, &answer);
    }
    let prompt_only = json!({"promptTokenCount": usage.prompt, "totalTokenCount": usage.prompt});
    let mut events: Vec<Value> = match &answer {
        // One event, finished, without content.
        _ if call.directives.no_content => Vec::new(),
        Answer::Text(text) => {
            let pieces = conversation::stream_pieces(text);
            let last = pieces.len().saturating_sub(1);
            pieces
                .iter()
                .enumerate()
                .map(|(i, piece)| {
                    if i == last {
                        let part = json!({"text": piece, "thoughtSignature": text_signature});
                        response(call, model, vec![part], true, usage_json(&usage))
                    } else {
                        let part = json!({"text": piece});
                        response(call, model, vec![part], false, prompt_only.clone())
                    }
                })
                .collect()
        }
        Answer::ToolCall(tool_call) => vec![response(
            call,
            model,
            vec![function_call_part(tool_call)],
            true,
            usage_json(&usage),
        )],
    };
    if events.is_empty() {
        events.push(response(
            call,
            model,
            vec![json!({"text": ""})],
            true,
            usage_json(&usage),
        ));
    }
    // Gemini frames its events with CRLF.
    let mut frames: Vec<Vec<u8>> = events
        .iter()
        .map(|e| format!("data: {e}\r\n\r\n").into_bytes())
        .collect();
    if call.directives.malformed {
        frames.truncate(1);
        frames.push(b"data: {not json\r\n\r\n".to_vec());
    }
    if call.directives.cut {
        // Drop the event carrying the finish reason.
        frames.pop();
    }
    Reply::Stream {
        content_type: SSE,
        events: frames,
    }
}

fn function_call_part(tool_call: &conversation::ToolCall) -> Value {
    json!({
        "functionCall": {"name": tool_call.name, "args": tool_call.arguments},
        "thoughtSignature": signature(&tool_call.name, &tool_call.arguments),
    })
}

// ---------------------------------------------------------------------------------------------
// Embeddings

fn dimensions(value: Option<&Value>) -> Result<usize, Reply> {
    match value {
        None => Ok(DEFAULT_DIMENSIONS),
        Some(v) => v
            .as_u64()
            .map(|d| d as usize)
            .filter(|d| (1..=MAX_DIMENSIONS).contains(d))
            .ok_or_else(|| {
                error_reply(
                    400,
                    "* outputDimensionality: must be a positive number",
                    "INVALID_ARGUMENT",
                )
            }),
    }
}

fn values(vector: Vec<f32>) -> Value {
    Value::Array(vector.iter().map(|x| json!(f64::from(*x))).collect())
}

/// AI Studio: `{"requests":[{"model":"models/{m}","content":{"parts":[{"text"}]}}]}`.
fn batch_embed(model: &str, body: &Value, call: &Call) -> Reply {
    let Some(requests) = body.get("requests").and_then(Value::as_array) else {
        return error_reply(400, "* requests: is required", "INVALID_ARGUMENT");
    };
    let qualified = format!("models/{model}");
    let mut embeddings = Vec::with_capacity(requests.len());
    for (i, request) in requests.iter().enumerate() {
        if request.get("model").and_then(Value::as_str) != Some(qualified.as_str()) {
            return error_reply(
                400,
                &format!(
                    "* BatchEmbedContentsRequest.requests[{i}].model: model must be `{qualified}`"
                ),
                "INVALID_ARGUMENT",
            );
        }
        let dims = match dimensions(request.get("outputDimensionality")) {
            Ok(d) => d,
            Err(reply) => return reply,
        };
        let text = request
            .get("content")
            .map(|c| texts(parts_of(c)))
            .unwrap_or_default();
        embeddings.push(if call.directives.no_content {
            json!({})
        } else {
            json!({"values": values(conversation::embedding(&text, dims))})
        });
    }
    Reply::json(200, &json!({"embeddings": embeddings}))
}

/// Vertex: `{"instances":[{"content"}],"parameters":{"outputDimensionality"}}`.
fn predict(_model: &str, body: &Value, call: &Call) -> Reply {
    let Some(instances) = body.get("instances").and_then(Value::as_array) else {
        return error_reply(400, "instances is required", "INVALID_ARGUMENT");
    };
    let dims = match dimensions(body.pointer("/parameters/outputDimensionality")) {
        Ok(d) => d,
        Err(reply) => return reply,
    };
    let mut predictions = Vec::with_capacity(instances.len());
    for instance in instances {
        let Some(text) = instance.get("content").and_then(Value::as_str) else {
            return error_reply(400, "instances[].content is required", "INVALID_ARGUMENT");
        };
        let mut statistics = Map::new();
        statistics.insert("truncated".into(), json!(false));
        statistics.insert(
            "token_count".into(),
            json!(conversation::words(text).max(1)),
        );
        let mut embeddings = json!({"statistics": statistics});
        if !call.directives.no_content {
            embeddings["values"] = values(conversation::embedding(text, dims));
        }
        predictions.push(json!({ "embeddings": embeddings }));
    }
    Reply::json(200, &json!({"predictions": predictions}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Directives;

    fn call<'a>(path: &'a str, body: &'a Value, d: &'a Directives) -> Call<'a> {
        Call {
            seq: 7,
            method: &Method::POST,
            path,
            body: Some(body),
            directives: d,
            created: 0,
        }
    }

    fn run(path: &str, body: &Value, d: &Directives) -> (u16, Vec<u8>) {
        let endpoint = route(&Method::POST, path).expect("route");
        match handle(&endpoint, &call(path, body, d)) {
            Reply::Full { status, body, .. } => (status, body),
            Reply::Stream { events, .. } => (200, events.concat()),
        }
    }

    fn json_of(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).unwrap()
    }

    const STUDIO: &str = "/v1beta/models/gemini-2.5-flash:generateContent";

    #[test]
    fn routes_both_hosts() {
        let cases = [
            (STUDIO, Some(Endpoint::Generate { model: "gemini-2.5-flash".into() })),
            (
                "/v1/projects/p/locations/us-central1/publishers/google/models/gemini-3-pro:streamGenerateContent",
                Some(Endpoint::Stream { model: "gemini-3-pro".into() }),
            ),
            (
                "/v1beta/models/gemini-embedding-001:batchEmbedContents",
                Some(Endpoint::BatchEmbed { model: "gemini-embedding-001".into() }),
            ),
            (
                "/v1/projects/p/locations/global/publishers/google/models/text-embedding-005:predict",
                Some(Endpoint::Predict { model: "text-embedding-005".into() }),
            ),
            ("/v1/projects/p/locations/l/publishers/anthropic/models/claude:rawPredict", None),
            ("/v1/chat/completions", None),
            ("/v1beta/models/x:countTokens", None),
        ];
        for (path, expected) in cases {
            assert_eq!(route(&Method::POST, path), expected, "{path}");
        }
        assert_eq!(route(&Method::GET, STUDIO), None);
    }

    #[test]
    fn text_answer_with_usage_and_signature() {
        let body = json!({"systemInstruction": {"parts": [{"text": "be brief"}]},
            "contents": [{"role": "user", "parts": [{"text": "hello there"}]}]});
        let (status, out) = run(STUDIO, &body, &Directives::default());
        assert_eq!(status, 200);
        let v = json_of(&out);
        assert_eq!(
            v["candidates"][0]["content"]["parts"][0]["text"],
            "echo: hello there"
        );
        assert_eq!(v["candidates"][0]["finishReason"], "STOP");
        assert_eq!(v["usageMetadata"]["promptTokenCount"], 2 + 3 + 2 + 3);
        assert_eq!(v["usageMetadata"]["candidatesTokenCount"], 3);
        assert_eq!(v["modelVersion"], "gemini-2.5-flash");
        assert!(v["candidates"][0]["content"]["parts"][0]["thoughtSignature"].is_string());
    }

    fn tool_request() -> Value {
        json!({"contents": [{"role": "user", "parts": [{"text": "weather?"}]}],
            "tools": [{"functionDeclarations": [{"name": "get_weather",
                "parametersJsonSchema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]}]})
    }

    #[test]
    fn tool_turns_require_the_issued_signature() {
        let (_, out) = run(STUDIO, &tool_request(), &Directives::default());
        let part = json_of(&out)["candidates"][0]["content"]["parts"][0].clone();
        assert_eq!(
            part["functionCall"],
            json!({"name": "get_weather", "args": {"city": "mock"}})
        );
        let sig = part["thoughtSignature"].as_str().unwrap().to_owned();
        assert!(sig.starts_with("+/+/"), "{sig}");

        let second = |signature: Option<&str>| {
            let mut call =
                json!({"functionCall": {"name": "get_weather", "args": {"city": "mock"}}});
            if let Some(s) = signature {
                call["thoughtSignature"] = json!(s);
            }
            let mut body = tool_request();
            body["contents"] = json!([
                {"role": "user", "parts": [{"text": "weather?"}]},
                {"role": "model", "parts": [call]},
                {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"output": "sunny"}}}]}
            ]);
            run(STUDIO, &body, &Directives::default())
        };
        let (status, out) = second(Some(&sig));
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&out));
        assert_eq!(
            json_of(&out)["candidates"][0]["content"]["parts"][0]["text"],
            "tool result: sunny"
        );
        assert_eq!(second(Some(SKIP_SIGNATURE)).0, 200);
        for bad in [None, Some("AAAA")] {
            let (status, out) = second(bad);
            assert_eq!(status, 400);
            assert_eq!(json_of(&out)["error"]["status"], "INVALID_ARGUMENT");
        }
    }

    #[test]
    fn streams_end_with_the_finish_reason() {
        let path = "/v1beta/models/g:streamGenerateContent";
        let body = json!({"contents": [{"role": "user", "parts": [{"text": "hello there"}]}]});
        let (status, out) = run(path, &body, &Directives::default());
        assert_eq!(status, 200);
        let text = String::from_utf8(out).unwrap();
        let events: Vec<Value> = text
            .split("\r\n\r\n")
            .filter(|e| !e.is_empty())
            .map(|e| serde_json::from_str(e.strip_prefix("data: ").unwrap()).unwrap())
            .collect();
        let joined: String = events
            .iter()
            .map(|e| {
                e["candidates"][0]["content"]["parts"][0]["text"]
                    .as_str()
                    .unwrap()
            })
            .collect();
        assert_eq!(joined, "echo: hello there");
        assert_eq!(
            events.last().unwrap()["candidates"][0]["finishReason"],
            "STOP"
        );
        assert!(events[0]["candidates"][0].get("finishReason").is_none());

        let cut = Directives {
            cut: true,
            ..Directives::default()
        };
        let (_, out) = run(path, &body, &cut);
        assert!(!String::from_utf8(out).unwrap().contains("finishReason"));
        let malformed = Directives {
            malformed: true,
            ..Directives::default()
        };
        let (_, out) = run(path, &body, &malformed);
        assert!(String::from_utf8(out)
            .unwrap()
            .ends_with("data: {not json\r\n\r\n"));
    }

    #[test]
    fn embeddings_on_both_hosts() {
        let body = json!({"requests": [
            {"model": "models/e", "content": {"parts": [{"text": "a"}]}, "outputDimensionality": 4},
            {"model": "models/e", "content": {"parts": [{"text": "b"}]}}]});
        let (status, out) = run(
            "/v1beta/models/e:batchEmbedContents",
            &body,
            &Directives::default(),
        );
        assert_eq!(status, 200);
        let v = json_of(&out);
        assert_eq!(v["embeddings"][0]["values"].as_array().unwrap().len(), 4);
        assert_eq!(
            v["embeddings"][1]["values"].as_array().unwrap().len(),
            DEFAULT_DIMENSIONS
        );
        let wrong =
            json!({"requests": [{"model": "models/other", "content": {"parts": [{"text": "a"}]}}]});
        assert_eq!(
            run(
                "/v1beta/models/e:batchEmbedContents",
                &wrong,
                &Directives::default()
            )
            .0,
            400
        );

        let body =
            json!({"instances": [{"content": "a b"}], "parameters": {"outputDimensionality": 2}});
        let path = "/v1/projects/p/locations/l/publishers/google/models/text-embedding-005:predict";
        let v = json_of(&run(path, &body, &Directives::default()).1);
        assert_eq!(
            v["predictions"][0]["embeddings"]["statistics"]["token_count"],
            2
        );
        assert_eq!(
            v["predictions"][0]["embeddings"]["values"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn google_error_bodies() {
        let d = Directives::default();
        let body = json!({});
        for (status, google) in [
            (429, "RESOURCE_EXHAUSTED"),
            (503, "UNAVAILABLE"),
            (404, "NOT_FOUND"),
            (401, "UNAUTHENTICATED"),
        ] {
            let Reply::Full {
                status: got,
                body: out,
                ..
            } = error(status, &call(STUDIO, &body, &d))
            else {
                panic!("full reply expected")
            };
            assert_eq!(got, status);
            let v = json_of(&out);
            assert_eq!(v["error"]["status"], google);
            assert_eq!(v["error"]["code"], status);
        }
    }
}
