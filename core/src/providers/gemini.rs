//! Google Gemini on AI Studio (`generativelanguage.googleapis.com`): `generateContent`,
//! `streamGenerateContent?alt=sse` and `batchEmbedContents`, authenticated with `x-goog-api-key`.
//!
//! The mapping itself (request body, answer, stream, error) is public and independent of paths
//! and auth, so Vertex AI (`vertex.rs`) serves Gemini with the same functions.
//!
//! Choices worth knowing (also in the operator docs):
//! - **Thought signatures.** Gemini returns an opaque `thoughtSignature` on function-call parts and
//!   Gemini 3 rejects the next turn unless it comes back on the same part. OpenAI clients echo
//!   only `tool_calls`, so the signature travels inside the tool call id:
//!   `call_<unique>_sig_<signature as unpadded base64url>` (ids stay within `[A-Za-z0-9_-]`, which
//!   Anthropic and Bedrock also accept). Assistant turns are decoded back; a turn whose calls carry
//!   no signature (history from another provider) gets Google's documented
//!   `skip_thought_signature_validator` on its first call. Signatures on text parts are optional
//!   for Gemini and are not kept.
//! - **Blocked prompts** (`promptFeedback.blockReason`, no candidates) answer 200 with one empty
//!   choice and `finish_reason: content_filter`, the same as a block during a stream (which cannot
//!   change its status any more) and as an answer blocked by `SAFETY` and the like.
//! - **Malformed tool calls** (`MALFORMED_FUNCTION_CALL` and kin) are not turned into `stop`: they
//!   are a 502 (JSON) or an error event (stream), so the client or the fallback sees the failure.

use super::{
    write_sse_error, write_sse_json, Attempt, Credential, Endpoint, Provider, ProviderSetup,
    ResponseContext, StreamTranslator, Translated, UpstreamRequest, SSE_DONE,
};
use crate::api::chat::UsageReport;
use crate::api::chat::{
    content_beside_tools, AssistantMessage, ChatChunk, ChatCompletion, ChatRequest, Choice,
    ChunkChoice, ContentPart, Delta, FinishReason, FunctionCallOut, FunctionDelta, ImageSource,
    Message, MessageContent, ResponseFormat, Role, ToolCallDelta, ToolCallOut, ToolChoice,
};
use crate::api::embeddings::{
    Embedding, EmbeddingVector, EmbeddingsRequest, EmbeddingsResponse, EmbeddingsUsage,
};
use crate::api::{ApiError, ErrorKind};
use crate::config::secret::Secret;
use crate::config::Problem;
use crate::stream::sse::{SseEvent, SseParser};
use crate::usage::Usage;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::HashMap;

const KIND: &str = "gemini";

pub struct Gemini {
    endpoint: Endpoint,
    api_key: Credential,
    headers: Vec<(String, Secret)>,
    api_version: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GeminiSettings {
    /// `v1beta` (default; every current feature) or `v1`.
    #[serde(default = "default_api_version")]
    api_version: String,
}

fn default_api_version() -> String {
    "v1beta".into()
}

pub fn build(setup: &ProviderSetup) -> Result<Box<dyn Provider>, Vec<Problem>> {
    let endpoint = setup
        .endpoint(Some("https://generativelanguage.googleapis.com"))
        .map_err(|p| vec![p])?;
    if setup.spec.api_key.is_none() {
        return Err(vec![Problem::new(
            format!("{}.api_key", setup.path),
            "required for kind `gemini` (e.g. api_key: {env: GEMINI_API_KEY})",
        )]);
    }
    let settings: GeminiSettings = setup.settings().map_err(|p| vec![p])?;
    Ok(Box::new(Gemini {
        endpoint,
        api_key: setup.api_key(),
        headers: setup.headers()?,
        api_version: settings.api_version,
    }))
}

impl Gemini {
    fn upstream_request(
        &self,
        model: &str,
        method: &str,
        body: Vec<u8>,
    ) -> Result<UpstreamRequest, ApiError> {
        let mut headers = Vec::with_capacity(self.headers.len() + 1);
        if let Some(key) = self.api_key.get()? {
            headers.push(("x-goog-api-key".to_owned(), key.to_owned()));
        }
        for (name, value) in &self.headers {
            headers.push((name.clone(), value.expose().to_owned()));
        }
        let model = model.strip_prefix("models/").unwrap_or(model);
        let path = self
            .endpoint
            .path(&format!("/{}/models/{model}:{method}", self.api_version));
        Ok(UpstreamRequest {
            path,
            headers,
            body,
        })
    }
}

impl Provider for Gemini {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn chat_request(
        &self,
        req: &ChatRequest,
        _raw: &[u8],
        attempt: &Attempt,
    ) -> Result<UpstreamRequest, ApiError> {
        let body = generate_content_body(req, attempt)?;
        self.upstream_request(attempt.upstream_model, chat_method(req.stream), body)
    }

    fn chat_response(&self, body: &[u8], ctx: &ResponseContext) -> Result<Translated, ApiError> {
        chat_completion(KIND, body, ctx)
    }

    fn chat_stream(&self, ctx: &ResponseContext) -> Box<dyn StreamTranslator> {
        Box::new(GeminiStream::new(KIND, ctx))
    }

    fn embeddings_request(
        &self,
        req: &EmbeddingsRequest,
        _raw: &[u8],
        attempt: &Attempt,
    ) -> Result<UpstreamRequest, ApiError> {
        let model = attempt.upstream_model;
        let body = batch_embed_body(req, model)?;
        self.upstream_request(model, "batchEmbedContents", body)
    }

    fn embeddings_response(
        &self,
        body: &[u8],
        ctx: &ResponseContext,
    ) -> Result<Translated, ApiError> {
        batch_embed_response(KIND, body, ctx)
    }

    fn error_response(&self, status: u16, body: &[u8]) -> ApiError {
        google_error(status, body)
    }
}

/// The method after `models/{model}:` for a chat request (SSE when streaming).
pub fn chat_method(stream: bool) -> &'static str {
    if stream {
        "streamGenerateContent?alt=sse"
    } else {
        "generateContent"
    }
}

// ---------------------------------------------------------------------------------------------
// Wire types (one set for both directions; unknown answer fields are ignored)

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Content {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default)]
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Part {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// A thought summary (reasoning), not answer text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thought: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thought_signature: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline_data: Option<Blob>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_data: Option<FileData>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_call: Option<FunctionCall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_response: Option<FunctionResponse>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Blob {
    pub mime_type: String,
    pub data: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileData {
    pub mime_type: String,
    pub file_uri: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionCall {
    pub name: String,
    #[serde(default)]
    pub args: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionResponse {
    pub name: String,
    pub response: Value,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerateContentRequest {
    contents: Vec<Content>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_instruction: Option<Content>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<ToolDeclarations>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_config: Option<ToolConfig>,
    #[serde(skip_serializing_if = "GenerationConfig::is_empty")]
    generation_config: GenerationConfig,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolDeclarations {
    function_declarations: Vec<FunctionDeclaration>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FunctionDeclaration {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    /// Plain JSON Schema (not the OpenAPI subset of `parameters`), as OpenAI clients write it.
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters_json_schema: Option<Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolConfig {
    function_calling_config: FunctionCallingConfig,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FunctionCallingConfig {
    mode: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    allowed_function_names: Vec<String>,
}

#[derive(Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerationConfig {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    stop_sequences: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    candidate_count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_output_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_k: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    presence_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frequency_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_mime_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_json_schema: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking_config: Option<ThinkingConfig>,
}

impl GenerationConfig {
    fn is_empty(&self) -> bool {
        self.stop_sequences.is_empty()
            && self.candidate_count.is_none()
            && self.max_output_tokens.is_none()
            && self.temperature.is_none()
            && self.top_p.is_none()
            && self.top_k.is_none()
            && self.seed.is_none()
            && self.presence_penalty.is_none()
            && self.frequency_penalty.is_none()
            && self.response_mime_type.is_none()
            && self.response_json_schema.is_none()
            && self.thinking_config.is_none()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ThinkingConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking_budget: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking_level: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Request

/// Sent on the first call of a turn that has no signature (history made elsewhere); Google
/// documents it for exactly this case.
pub const SKIP_SIGNATURE: &str = "skip_thought_signature_validator";

/// Unmodelled OpenAI fields that change nothing in the answer (like the typed `user` and
/// `metadata`, which are ignored too).
const IGNORED_FIELDS: [&str; 1] = ["store"];

/// The `generateContent` body for a chat request (no model: it is in the path).
pub fn generate_content_body(req: &ChatRequest, attempt: &Attempt) -> Result<Vec<u8>, ApiError> {
    let drop = attempt.settings.drop_unsupported_params;
    let unsupported = |param: &str| -> Result<(), ApiError> {
        if drop {
            Ok(())
        } else {
            Err(ApiError::invalid_param(
                param,
                format!("`{param}` is not supported by Gemini (set drop_unsupported_params on the model to ignore it)"),
            ))
        }
    };
    if req.logprobs == Some(true) {
        unsupported("logprobs")?;
    }
    if req.top_logprobs.is_some() {
        unsupported("top_logprobs")?;
    }
    if req.logit_bias.as_ref().is_some_and(|b| !b.is_empty()) {
        unsupported("logit_bias")?;
    }
    if req.parallel_tool_calls == Some(false) {
        unsupported("parallel_tool_calls")?;
    }
    let mut top_k = None;
    for (name, value) in &req.extra {
        match name.as_str() {
            "top_k" => {
                top_k = Some(value.as_u64().ok_or_else(|| {
                    ApiError::invalid_param("top_k", "`top_k` must be a positive integer")
                })?)
            }
            n if IGNORED_FIELDS.contains(&n) => {}
            other => unsupported(other)?,
        }
    }

    let (system_instruction, contents) = contents(&req.messages)?;
    let tools = match &req.tools {
        Some(tools) if !tools.is_empty() => vec![ToolDeclarations {
            function_declarations: tools
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    if t.kind != "function" {
                        return Err(ApiError::invalid_param(
                            format!("tools[{i}].type"),
                            format!("tool type `{}` is not supported by Gemini", t.kind),
                        ));
                    }
                    Ok(FunctionDeclaration {
                        name: t.function.name.clone(),
                        description: t.function.description.clone(),
                        parameters_json_schema: t.function.parameters.clone(),
                    })
                })
                .collect::<Result<_, _>>()?,
        }],
        _ => Vec::new(),
    };
    let tool_config = req.tool_choice.as_ref().map(|choice| {
        let (mode, allowed) = match choice {
            ToolChoice::None => ("NONE", Vec::new()),
            ToolChoice::Auto => ("AUTO", Vec::new()),
            ToolChoice::Required => ("ANY", Vec::new()),
            ToolChoice::Function(name) => ("ANY", vec![name.clone()]),
        };
        ToolConfig {
            function_calling_config: FunctionCallingConfig {
                mode,
                allowed_function_names: allowed,
            },
        }
    });
    let (response_mime_type, response_json_schema) = match &req.response_format {
        None | Some(ResponseFormat::Text) => (None, None),
        Some(ResponseFormat::JsonObject) => (Some("application/json"), None),
        Some(ResponseFormat::JsonSchema { json_schema }) => {
            (Some("application/json"), json_schema.schema.clone())
        }
    };
    let generation_config = GenerationConfig {
        stop_sequences: req.stop.as_ref().map(|s| s.0.clone()).unwrap_or_default(),
        candidate_count: req.n,
        max_output_tokens: req.max_output_tokens().or(attempt.settings.max_tokens),
        temperature: req.temperature,
        top_p: req.top_p,
        top_k,
        seed: req.seed,
        presence_penalty: req.presence_penalty,
        frequency_penalty: req.frequency_penalty,
        response_mime_type,
        response_json_schema,
        thinking_config: req
            .reasoning_effort
            .as_deref()
            .map(|effort| thinking_config(attempt.upstream_model, effort)),
    };
    let body = GenerateContentRequest {
        contents,
        system_instruction,
        tools,
        tool_config,
        generation_config,
    };
    serde_json::to_vec(&body).map_err(|e| ApiError::server(e.to_string()))
}

/// `reasoning_effort` → a thinking budget for Gemini 2.x, a thinking level for later models.
fn thinking_config(model: &str, effort: &str) -> ThinkingConfig {
    let model = model.strip_prefix("models/").unwrap_or(model);
    if model.starts_with("gemini-2") {
        let budget = match effort {
            "none" | "minimal" => 0,
            "low" => 1024,
            "high" => 24576,
            _ => 8192,
        };
        ThinkingConfig {
            thinking_budget: Some(budget),
            thinking_level: None,
        }
    } else {
        let level = if effort == "none" { "minimal" } else { effort };
        ThinkingConfig {
            thinking_budget: None,
            thinking_level: Some(level.to_owned()),
        }
    }
}

/// OpenAI messages → Gemini `systemInstruction` and `contents` (roles `user` and `model`, each
/// run of same-role turns merged, tool results as `functionResponse` parts of a user turn).
fn contents(messages: &[Message]) -> Result<(Option<Content>, Vec<Content>), ApiError> {
    let mut system: Vec<Part> = Vec::new();
    let mut contents: Vec<Content> = Vec::new();
    let mut call_names: HashMap<&str, &str> = HashMap::new();
    for (i, m) in messages.iter().enumerate() {
        let (role, parts) = match m.role {
            Role::System | Role::Developer => {
                system.extend(text_parts(m, i)?);
                continue;
            }
            Role::User => ("user", user_parts(m, i)?),
            Role::Assistant => {
                for call in m.tool_calls.iter().flatten() {
                    call_names.insert(call.id.as_str(), call.function.name.as_str());
                }
                ("model", assistant_parts(m, i)?)
            }
            Role::Tool | Role::Function => {
                let name = m
                    .tool_call_id
                    .as_deref()
                    .and_then(|id| call_names.get(id).copied())
                    .or(m.name.as_deref())
                    .ok_or_else(|| {
                        ApiError::invalid_param(
                            format!("messages[{i}].tool_call_id"),
                            "no earlier assistant tool call has this id",
                        )
                    })?;
                let text = m.text();
                let output = serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text));
                let mut response = Map::new();
                response.insert("output".into(), output);
                let part = Part {
                    function_response: Some(FunctionResponse {
                        name: name.to_owned(),
                        response: Value::Object(response),
                    }),
                    ..Part::default()
                };
                ("user", vec![part])
            }
        };
        if parts.is_empty() {
            continue;
        }
        match contents.last_mut() {
            Some(last) if last.role.as_deref() == Some(role) => last.parts.extend(parts),
            _ => contents.push(Content {
                role: Some(role.to_owned()),
                parts,
            }),
        }
    }
    let system = (!system.is_empty()).then_some(Content {
        role: None,
        parts: system,
    });
    Ok((system, contents))
}

fn text_part(text: &str) -> Option<Part> {
    (!text.is_empty()).then(|| Part {
        text: Some(text.to_owned()),
        ..Part::default()
    })
}

/// System and developer messages: text only.
fn text_parts(m: &Message, i: usize) -> Result<Vec<Part>, ApiError> {
    if let Some(MessageContent::Parts(parts)) = &m.content {
        if let Some(j) = parts
            .iter()
            .position(|p| !matches!(p, ContentPart::Text { .. }))
        {
            return Err(ApiError::invalid_param(
                format!("messages[{i}].content[{j}]"),
                "system messages take text parts only",
            ));
        }
    }
    Ok(text_part(&m.text()).into_iter().collect())
}

fn user_parts(m: &Message, i: usize) -> Result<Vec<Part>, ApiError> {
    let parts = match &m.content {
        None => return Ok(Vec::new()),
        Some(MessageContent::Text(t)) => return Ok(text_part(t).into_iter().collect()),
        Some(MessageContent::Parts(parts)) => parts,
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, p) in parts.iter().enumerate() {
        let param = || format!("messages[{i}].content[{j}]");
        let part = match p {
            ContentPart::Text { text } => text_part(text),
            ContentPart::Refusal { refusal } => text_part(refusal),
            ContentPart::ImageUrl { image_url } => Some(match image_url.source() {
                ImageSource::Base64 { media_type, data } => inline(media_type, data),
                ImageSource::Url(url) => file(media_type_of(url).unwrap_or("image/jpeg"), url),
            }),
            ContentPart::InputAudio { input_audio } => Some(inline(
                &format!("audio/{}", input_audio.format),
                &input_audio.data,
            )),
            ContentPart::File { file: f } => Some(file_part(f).ok_or_else(|| {
                ApiError::invalid_param(
                    param(),
                    "a file part needs `file_data` (a base64 data URL) or `file_id` (a Gemini file URI) with a known media type (`format`)",
                )
            })?),
        };
        out.extend(part);
    }
    Ok(out)
}

fn inline(mime_type: &str, data: &str) -> Part {
    Part {
        inline_data: Some(Blob {
            mime_type: mime_type.to_owned(),
            data: data.to_owned(),
        }),
        ..Part::default()
    }
}

fn file(mime_type: &str, uri: &str) -> Part {
    Part {
        file_data: Some(FileData {
            mime_type: mime_type.to_owned(),
            file_uri: uri.to_owned(),
        }),
        ..Part::default()
    }
}

/// OpenAI `file` parts: `file_data` as a data URL becomes inline bytes; `file_id` is taken as a
/// Gemini file URI (Files API, `gs://` on Vertex), typed by `format` or its extension.
fn file_part(f: &Map<String, Value>) -> Option<Part> {
    let field = |name: &str| f.get(name).and_then(Value::as_str);
    if let Some(data_url) = field("file_data") {
        let (meta, data) = data_url.strip_prefix("data:")?.split_once(',')?;
        return Some(inline(meta.strip_suffix(";base64")?, data));
    }
    let uri = field("file_id")?;
    let mime = field("format")
        .or_else(|| field("filename").and_then(media_type_of))
        .or_else(|| media_type_of(uri))?;
    Some(file(mime, uri))
}

/// The media type a URL's extension implies, for `fileData` (which requires one).
fn media_type_of(url: &str) -> Option<&'static str> {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "mp3" => "audio/mp3",
        "wav" => "audio/wav",
        "mp4" => "video/mp4",
        _ => return None,
    })
}

fn assistant_parts(m: &Message, i: usize) -> Result<Vec<Part>, ApiError> {
    let mut parts: Vec<Part> = text_part(&m.text()).into_iter().collect();
    let calls = m.tool_calls.as_deref().unwrap_or_default();
    let first_call = parts.len();
    for (j, call) in calls.iter().enumerate() {
        let args = if call.function.arguments.trim().is_empty() {
            Value::Object(Map::new())
        } else {
            match serde_json::from_str::<Value>(&call.function.arguments) {
                Ok(v @ Value::Object(_)) => v,
                _ => {
                    return Err(ApiError::invalid_param(
                        format!("messages[{i}].tool_calls[{j}].function.arguments"),
                        "tool call arguments must be a JSON object",
                    ))
                }
            }
        };
        parts.push(Part {
            thought_signature: signature_from_call_id(&call.id),
            function_call: Some(FunctionCall {
                name: call.function.name.clone(),
                args,
            }),
            ..Part::default()
        });
    }
    if !calls.is_empty() && parts.iter().all(|p| p.thought_signature.is_none()) {
        if let Some(first) = parts.get_mut(first_call) {
            first.thought_signature = Some(SKIP_SIGNATURE.to_owned());
        }
    }
    Ok(parts)
}

// ---------------------------------------------------------------------------------------------
// Tool call ids carrying thought signatures

const SIGNATURE_MARK: &str = "_sig_";

/// `call_<request id, alphanumerics only>-<n>`, plus `_sig_<signature>` when Gemini signed it.
/// The signature (standard base64) is written as unpadded base64url so the id keeps to
/// `[A-Za-z0-9_-]`.
pub fn tool_call_id(request_id: &str, n: usize, signature: Option<&str>) -> String {
    let mut id = String::from("call_");
    id.extend(request_id.chars().filter(char::is_ascii_alphanumeric));
    id.push('-');
    id.push_str(&n.to_string());
    if let Some(sig) = signature {
        id.push_str(SIGNATURE_MARK);
        id.extend(sig.chars().filter(|&c| c != '=').map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        }));
    }
    id
}

/// The signature a tool call id made by `tool_call_id` carries, back in standard base64.
pub fn signature_from_call_id(id: &str) -> Option<String> {
    let (unique, sig) = id.strip_prefix("call_")?.split_once(SIGNATURE_MARK)?;
    let (request, n) = unique.rsplit_once('-')?;
    let ours = request.chars().all(|c| c.is_ascii_alphanumeric())
        && !n.is_empty()
        && n.chars().all(|c| c.is_ascii_digit());
    if !ours
        || sig.is_empty()
        || !sig
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return None;
    }
    let mut out: String = sig
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    while !out.len().is_multiple_of(4) {
        out.push('=');
    }
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// Answers

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateContentResponse {
    #[serde(default)]
    candidates: Vec<Candidate>,
    #[serde(default)]
    prompt_feedback: Option<PromptFeedback>,
    #[serde(default)]
    usage_metadata: Option<UsageMetadata>,
    #[serde(default)]
    model_version: Option<String>,
    #[serde(default)]
    response_id: Option<String>,
    /// Only in stream events: an error after the stream started.
    #[serde(default)]
    error: Option<GoogleErrorDetail>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    #[serde(default)]
    content: Option<Content>,
    #[serde(default)]
    finish_reason: Option<String>,
    #[serde(default)]
    finish_message: Option<String>,
    #[serde(default)]
    index: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    #[serde(default)]
    block_reason: Option<String>,
}

/// Gemini's `usageMetadata`. `promptTokenCount` includes the cached tokens; thoughts are
/// counted apart from the candidates, and tool-use prompts (search results) apart from the prompt.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageMetadata {
    #[serde(default)]
    prompt_token_count: u64,
    #[serde(default)]
    candidates_token_count: u64,
    #[serde(default)]
    cached_content_token_count: u64,
    #[serde(default)]
    thoughts_token_count: u64,
    #[serde(default)]
    tool_use_prompt_token_count: u64,
}

impl UsageMetadata {
    pub fn normalise(self) -> Usage {
        Usage {
            prompt_tokens: self.prompt_token_count + self.tool_use_prompt_token_count,
            completion_tokens: self.candidates_token_count + self.thoughts_token_count,
            cached_tokens: self.cached_content_token_count,
            cache_write_tokens: 0,
            reasoning_tokens: self.thoughts_token_count,
        }
    }
}

impl GenerateContentResponse {
    fn blocked(&self) -> Option<&str> {
        self.prompt_feedback
            .as_ref()
            .and_then(|f| f.block_reason.as_deref())
    }
}

fn broken_answer(kind: &str, what: impl std::fmt::Display) -> ApiError {
    ApiError::upstream(format!(
        "the {kind} provider returned an invalid answer: {what}"
    ))
    .with_code("invalid_upstream_response")
}

/// How a candidate ended, in OpenAI's words; tool-call failures are errors, not endings.
fn finish_reason(
    kind: &str,
    reason: &str,
    message: Option<&str>,
    has_tool_calls: bool,
) -> Result<FinishReason, ApiError> {
    Ok(match reason {
        "MAX_TOKENS" => FinishReason::Length,
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION" => FinishReason::ContentFilter,
        "MALFORMED_FUNCTION_CALL" | "UNEXPECTED_TOOL_CALL" | "TOO_MANY_TOOL_CALLS" => {
            return Err(ApiError::upstream(format!(
                "the {kind} model produced an unusable tool call ({reason}){}",
                message.map(|m| format!(": {m}")).unwrap_or_default()
            ))
            .with_code(reason.to_ascii_lowercase()))
        }
        _ if has_tool_calls => FinishReason::ToolCalls,
        _ => FinishReason::Stop,
    })
}

/// What one candidate's parts say, split the way OpenAI clients read it.
#[derive(Default)]
struct Said {
    text: String,
    reasoning: String,
    calls: Vec<(String, String, Option<String>)>,
}

fn read_parts(parts: Vec<Part>) -> Said {
    let mut said = Said::default();
    for part in parts {
        if let Some(call) = part.function_call {
            said.calls
                .push((call.name, arguments(&call.args), part.thought_signature));
        } else if let Some(text) = part.text {
            if part.thought == Some(true) {
                said.reasoning.push_str(&text);
            } else {
                said.text.push_str(&text);
            }
        }
    }
    said
}

/// Function call `args` as the JSON text OpenAI's `arguments` holds.
fn arguments(args: &Value) -> String {
    if args.is_null() {
        return "{}".into();
    }
    serde_json::to_string(args).unwrap_or_else(|_| "{}".into())
}

/// A `generateContent` answer → an OpenAI chat completion.
pub fn chat_completion(
    kind: &str,
    body: &[u8],
    ctx: &ResponseContext,
) -> Result<Translated, ApiError> {
    let answer: GenerateContentResponse =
        serde_json::from_slice(body).map_err(|e| broken_answer(kind, e))?;
    let usage = answer.usage_metadata.map(UsageMetadata::normalise);
    let mut choices = Vec::with_capacity(answer.candidates.len().max(1));
    let mut calls_made = 0;
    if answer.candidates.is_empty() {
        if answer.blocked().is_none() {
            return Err(broken_answer(kind, "no candidates"));
        }
        choices.push(Choice {
            index: 0,
            message: AssistantMessage {
                role: "assistant",
                content: Some(String::new()),
                ..AssistantMessage::default()
            },
            finish_reason: Some(FinishReason::ContentFilter),
            logprobs: None,
        });
    }
    for (position, candidate) in answer.candidates.into_iter().enumerate() {
        let said = read_parts(candidate.content.map(|c| c.parts).unwrap_or_default());
        let finish = finish_reason(
            kind,
            candidate.finish_reason.as_deref().unwrap_or("STOP"),
            candidate.finish_message.as_deref(),
            !said.calls.is_empty(),
        )?;
        let tool_calls: Vec<ToolCallOut> = said
            .calls
            .into_iter()
            .map(|(name, arguments, signature)| {
                calls_made += 1;
                ToolCallOut {
                    id: tool_call_id(ctx.request_id, calls_made - 1, signature.as_deref()),
                    kind: "function",
                    function: FunctionCallOut { name, arguments },
                }
            })
            .collect();
        let content = content_beside_tools(said.text, &tool_calls);
        choices.push(Choice::new(
            candidate.index.unwrap_or(position as u32),
            AssistantMessage::new(content, said.reasoning, tool_calls),
            finish,
        ));
    }
    let id = answer
        .response_id
        .unwrap_or_else(|| format!("chatcmpl-{}", ctx.request_id));
    let model = answer
        .model_version
        .unwrap_or_else(|| ctx.upstream_model.to_owned());
    Translated::completion(
        &ChatCompletion::new(id, ctx.created, model, choices, usage),
        usage,
    )
}

// ---------------------------------------------------------------------------------------------
// Streams

const MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;
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
            match serde_json::from_str::<GenerateContentResponse>(data) {
                Ok(answer) => self.answer(answer, out),
                Err(e) => {
                    let err = broken_answer(self.kind, e);
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
                let err = broken_answer(self.kind, "too many candidates");
                self.fail(out, &err);
                return;
            };
            if self.candidates.get(pos).is_some_and(|c| c.finished) {
                continue;
            }
            let parts = candidate.content.map(|c| c.parts).unwrap_or_default();
            self.parts(pos, index, parts, out);
            if let Some(reason) = candidate.finish_reason.as_deref() {
                let has_calls = self.candidates.get(pos).is_some_and(|c| c.tool_calls > 0);
                let finish = finish_reason(
                    self.kind,
                    reason,
                    candidate.finish_message.as_deref(),
                    has_calls,
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
        if self.parser.feed(chunk, |e| events.push(e)).is_err() {
            let err = ApiError::upstream("the provider sent a stream event larger than 4 MiB");
            self.fail(out, &err);
            return;
        }
        self.emit(out);
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
            let err = ApiError::upstream("the provider's stream ended before it was complete")
                .with_code("stream_interrupted");
            self.fail(out, &err);
            return;
        }
        if self.include_usage {
            if let Some(usage) = self.usage {
                let mut chunk = self.chunk(Vec::new());
                chunk.usage = Some(UsageReport::from(&usage));
                write_sse_json(out, &chunk);
            }
        }
        out.extend_from_slice(SSE_DONE);
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

#[derive(Debug, Default, Deserialize)]
pub struct GoogleErrorDetail {
    #[serde(default)]
    code: Option<u16>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    details: Vec<Value>,
}

impl GoogleErrorDetail {
    /// The error a client sees, from the Google status name, else the HTTP status.
    fn to_gateway_error(&self, http: u16) -> ApiError {
        let key_invalid = self
            .details
            .iter()
            .any(|d| d.get("reason").and_then(Value::as_str) == Some("API_KEY_INVALID"));
        let (kind, status) = match self.status.as_deref() {
            _ if key_invalid => (ErrorKind::Authentication, 401),
            Some("RESOURCE_EXHAUSTED") => (ErrorKind::RateLimit, 429),
            Some("UNAVAILABLE" | "ABORTED") => (ErrorKind::Upstream, 503),
            Some("INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE") => {
                (ErrorKind::InvalidRequest, 400)
            }
            Some("PERMISSION_DENIED") => (ErrorKind::Permission, 403),
            Some("UNAUTHENTICATED") => (ErrorKind::Authentication, 401),
            Some("NOT_FOUND") => (ErrorKind::NotFound, 404),
            Some("DEADLINE_EXCEEDED") => (ErrorKind::Timeout, 504),
            Some("INTERNAL" | "UNKNOWN" | "DATA_LOSS") => (ErrorKind::Upstream, 502),
            _ => (ErrorKind::from_status(http), http),
        };
        let message = self
            .message
            .clone()
            .unwrap_or_else(|| "the provider returned an error".into());
        let mut err = ApiError::new(kind, message).with_status(status);
        err.code = if key_invalid {
            Some("invalid_api_key".into())
        } else {
            self.status.as_deref().map(str::to_ascii_lowercase)
        };
        if matches!(status, 429 | 503) {
            if let Some(seconds) = self.retry_delay() {
                err = err.with_retry_after(seconds);
            }
        }
        err
    }

    /// `google.rpc.RetryInfo.retryDelay` ("37s", "0.5s"), rounded up to whole seconds.
    fn retry_delay(&self) -> Option<u64> {
        let delay = self
            .details
            .iter()
            .find_map(|d| d.get("retryDelay").and_then(Value::as_str))?;
        let seconds: f64 = delay.strip_suffix('s')?.parse().ok()?;
        (seconds.is_finite() && seconds >= 0.0).then(|| seconds.ceil() as u64)
    }
}

/// A Google API error body (`{"error":{"code","message","status","details"}}`, also inside an
/// array) mapped to what an OpenAI client expects.
pub fn google_error(status: u16, body: &[u8]) -> ApiError {
    #[derive(Deserialize)]
    struct Envelope {
        error: GoogleErrorDetail,
    }
    // A struct also deserializes from an array, so the shape is chosen by the first byte.
    let is_array = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    let detail = if is_array {
        serde_json::from_slice::<Vec<Envelope>>(body)
            .ok()
            .and_then(|v| v.into_iter().next())
    } else {
        serde_json::from_slice::<Envelope>(body).ok()
    }
    .map(|e| e.error);
    match detail {
        Some(detail) => detail.to_gateway_error(status),
        None => ApiError::new(ErrorKind::from_status(status), super::error_message(body))
            .with_status(status),
    }
}

// ---------------------------------------------------------------------------------------------
// Embeddings

/// The texts to embed; Gemini takes no token arrays.
pub fn embedding_texts(req: &EmbeddingsRequest) -> Result<Vec<&str>, ApiError> {
    req.input.texts().ok_or_else(|| {
        ApiError::invalid_param(
            "input",
            "Gemini embeds text; token arrays are not supported",
        )
    })
}

/// `batchEmbedContents`: one request per input text.
pub fn batch_embed_body(req: &EmbeddingsRequest, model: &str) -> Result<Vec<u8>, ApiError> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct EmbedRequest<'a> {
        model: &'a str,
        content: Content,
        #[serde(skip_serializing_if = "Option::is_none")]
        output_dimensionality: Option<u32>,
    }
    #[derive(Serialize)]
    struct Batch<'a> {
        requests: Vec<EmbedRequest<'a>>,
    }
    let model = model.strip_prefix("models/").unwrap_or(model);
    let qualified = format!("models/{model}");
    let requests = embedding_texts(req)?
        .into_iter()
        .map(|text| EmbedRequest {
            model: &qualified,
            content: Content {
                role: None,
                parts: vec![Part {
                    text: Some(text.to_owned()),
                    ..Part::default()
                }],
            },
            output_dimensionality: req.dimensions,
        })
        .collect();
    serde_json::to_vec(&Batch { requests }).map_err(|e| ApiError::server(e.to_string()))
}

/// An OpenAI embeddings answer from vectors in input order.
pub fn embeddings_answer(
    vectors: Vec<Vec<f32>>,
    usage: Option<Usage>,
    ctx: &ResponseContext,
) -> Result<Translated, ApiError> {
    let prompt_tokens = usage.map(|u| u.prompt_tokens).unwrap_or(0);
    let response = EmbeddingsResponse {
        object: "list",
        data: vectors
            .into_iter()
            .enumerate()
            .map(|(i, values)| Embedding {
                object: "embedding",
                index: i as u32,
                embedding: EmbeddingVector::encode(values, ctx.base64_embeddings),
            })
            .collect(),
        model: ctx.upstream_model.to_owned(),
        usage: EmbeddingsUsage {
            prompt_tokens,
            total_tokens: prompt_tokens,
        },
    };
    let body = serde_json::to_vec(&response).map_err(|e| ApiError::server(e.to_string()))?;
    Ok(Translated {
        body: Some(body),
        usage,
    })
}

/// `{"embeddings":[{"values":[..]}]}` → OpenAI. AI Studio reports no token counts for embeddings.
pub fn batch_embed_response(
    kind: &str,
    body: &[u8],
    ctx: &ResponseContext,
) -> Result<Translated, ApiError> {
    #[derive(Deserialize)]
    struct Batch {
        embeddings: Vec<Values>,
    }
    #[derive(Deserialize)]
    struct Values {
        values: Vec<f32>,
    }
    let batch: Batch = serde_json::from_slice(body).map_err(|e| broken_answer(kind, e))?;
    embeddings_answer(
        batch.embeddings.into_iter().map(|e| e.values).collect(),
        None,
        ctx,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ModelSettings;
    use crate::providers::testing::*;
    use crate::testkit::test;
    use serde_json::json;

    const YAML: &str = "kind: gemini\napi_key: {env: TEST_KEY}";

    fn body_of(model: &str, settings: ModelSettings, request: &str) -> Result<Value, ApiError> {
        let p = provider(YAML);
        let (req, raw) = chat_request(request);
        let up = p.chat_request(&req, raw.as_bytes(), &attempt_with(model, settings))?;
        Ok(serde_json::from_slice(&up.body).unwrap())
    }

    fn sig_id(sig: &str) -> String {
        tool_call_id("req-1", 0, Some(sig))
    }

    #[test]
    fn request_bodies() {
        let signed = sig_id("Zm9v+/8=");
        let cases: Vec<(&str, &str, Value, Value)> = vec![
            (
                "system, text and sampling",
                "gemini-2.5-flash",
                json!({"model":"m","messages":[
                    {"role":"system","content":"be brief"},
                    {"role":"developer","content":[{"type":"text","text":"be kind"}]},
                    {"role":"user","content":"hi"}],
                    "temperature":0.2,"top_p":0.9,"max_tokens":50,"stop":"END","seed":7,
                    "presence_penalty":0.1,"frequency_penalty":0.3,"n":2,"top_k":40,
                    "user":"u1","metadata":{"a":"b"},"store":false,
                    "stream_options":{"include_usage":true}}),
                json!({"contents":[{"role":"user","parts":[{"text":"hi"}]}],
                    "systemInstruction":{"parts":[{"text":"be brief"},{"text":"be kind"}]},
                    "generationConfig":{"stopSequences":["END"],"candidateCount":2,
                    "maxOutputTokens":50,"temperature":0.2,"topP":0.9,"topK":40,"seed":7,
                    "presencePenalty":0.1,"frequencyPenalty":0.3}}),
            ),
            (
                "images, audio and files",
                "gemini-2.5-flash",
                json!({"model":"m","messages":[{"role":"user","content":[
                    {"type":"text","text":"look"},
                    {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBO"}},
                    {"type":"image_url","image_url":{"url":"https://x.test/cat.webp?s=1"}},
                    {"type":"image_url","image_url":{"url":"gs://bucket/dog"}},
                    {"type":"input_audio","input_audio":{"data":"UklG","format":"wav"}},
                    {"type":"file","file":{"file_data":"data:application/pdf;base64,JVBE","filename":"a.pdf"}},
                    {"type":"file","file":{"file_id":"https://generativelanguage.googleapis.com/v1beta/files/abc","format":"video/mp4"}}
                ]}]}),
                json!({"contents":[{"role":"user","parts":[
                    {"text":"look"},
                    {"inlineData":{"mimeType":"image/png","data":"iVBO"}},
                    {"fileData":{"mimeType":"image/webp","fileUri":"https://x.test/cat.webp?s=1"}},
                    {"fileData":{"mimeType":"image/jpeg","fileUri":"gs://bucket/dog"}},
                    {"inlineData":{"mimeType":"audio/wav","data":"UklG"}},
                    {"inlineData":{"mimeType":"application/pdf","data":"JVBE"}},
                    {"fileData":{"mimeType":"video/mp4","fileUri":"https://generativelanguage.googleapis.com/v1beta/files/abc"}}
                ]}]}),
            ),
            (
                "tools, a signed tool turn and merged results",
                "gemini-3-pro-preview",
                json!({"model":"m","messages":[
                    {"role":"user","content":"weather in Paris and Rome?"},
                    {"role":"assistant","content":null,"tool_calls":[
                        {"id":signed,"type":"function","function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}},
                        {"id":"call_req1-1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Rome\"}"}}]},
                    {"role":"tool","tool_call_id":signed,"content":"{\"temp\":21}"},
                    {"role":"tool","tool_call_id":"call_req1-1","content":"sunny"},
                    {"role":"user","content":"thanks"}],
                    "tools":[{"type":"function","function":{"name":"weather","description":"Weather now",
                        "parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"],"additionalProperties":false}}}],
                    "tool_choice":{"type":"function","function":{"name":"weather"}}}),
                json!({"contents":[
                    {"role":"user","parts":[{"text":"weather in Paris and Rome?"}]},
                    {"role":"model","parts":[
                        {"thoughtSignature":"Zm9v+/8=","functionCall":{"name":"weather","args":{"city":"Paris"}}},
                        {"functionCall":{"name":"weather","args":{"city":"Rome"}}}]},
                    {"role":"user","parts":[
                        {"functionResponse":{"name":"weather","response":{"output":{"temp":21}}}},
                        {"functionResponse":{"name":"weather","response":{"output":"sunny"}}},
                        {"text":"thanks"}]}],
                    "tools":[{"functionDeclarations":[{"name":"weather","description":"Weather now",
                        "parametersJsonSchema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"],"additionalProperties":false}}]}],
                    "toolConfig":{"functionCallingConfig":{"mode":"ANY","allowedFunctionNames":["weather"]}}}),
            ),
            (
                "a tool turn from another provider gets the documented skip signature",
                "gemini-3-pro-preview",
                json!({"model":"m","messages":[
                    {"role":"user","content":"hi"},
                    {"role":"assistant","content":"let me look","tool_calls":[
                        {"id":"toolu_01","type":"function","function":{"name":"look","arguments":""}}]},
                    {"role":"tool","tool_call_id":"toolu_01","content":"found"}],
                    "tool_choice":"required"}),
                json!({"contents":[
                    {"role":"user","parts":[{"text":"hi"}]},
                    {"role":"model","parts":[{"text":"let me look"},
                        {"thoughtSignature":"skip_thought_signature_validator","functionCall":{"name":"look","args":{}}}]},
                    {"role":"user","parts":[{"functionResponse":{"name":"look","response":{"output":"found"}}}]}],
                    "toolConfig":{"functionCallingConfig":{"mode":"ANY"}}}),
            ),
            (
                "json schema, thinking budget for 2.x, default max tokens from the model",
                "gemini-2.5-pro",
                json!({"model":"m","messages":[{"role":"user","content":"x"}],"reasoning_effort":"low",
                    "response_format":{"type":"json_schema","json_schema":{"name":"s","schema":{"type":"object"}}}}),
                json!({"contents":[{"role":"user","parts":[{"text":"x"}]}],
                    "generationConfig":{"maxOutputTokens":4096,"responseMimeType":"application/json",
                    "responseJsonSchema":{"type":"object"},"thinkingConfig":{"thinkingBudget":1024}}}),
            ),
            (
                "json object, thinking level for later models, tool_choice none",
                "gemini-3-flash-preview",
                json!({"model":"m","messages":[{"role":"user","content":"x"}],"reasoning_effort":"high",
                    "response_format":{"type":"json_object"},"tool_choice":"none","max_completion_tokens":9}),
                json!({"contents":[{"role":"user","parts":[{"text":"x"}]}],
                    "toolConfig":{"functionCallingConfig":{"mode":"NONE"}},
                    "generationConfig":{"maxOutputTokens":9,"responseMimeType":"application/json",
                    "thinkingConfig":{"thinkingLevel":"high"}}}),
            ),
        ];
        for (name, model, input, expected) in cases {
            let settings = if name.contains("default max tokens") {
                ModelSettings {
                    max_tokens: Some(4096),
                    ..ModelSettings::default()
                }
            } else {
                ModelSettings::default()
            };
            let got = body_of(model, settings, &input.to_string()).unwrap();
            assert_eq!(got, expected, "{name}");
        }
    }

    #[test]
    fn request_refusals_name_the_parameter() {
        let cases = [
            (
                json!({"model":"m","messages":[],"logprobs":true}),
                "logprobs",
            ),
            (
                json!({"model":"m","messages":[],"top_logprobs":2}),
                "top_logprobs",
            ),
            (
                json!({"model":"m","messages":[],"logit_bias":{"1":2}}),
                "logit_bias",
            ),
            (
                json!({"model":"m","messages":[],"parallel_tool_calls":false}),
                "parallel_tool_calls",
            ),
            (
                json!({"model":"m","messages":[],"service_tier":"flex"}),
                "service_tier",
            ),
            (json!({"model":"m","messages":[],"top_k":"many"}), "top_k"),
            (
                json!({"model":"m","messages":[],"tools":[{"type":"code_interpreter","function":{"name":"x"}}]}),
                "tools[0].type",
            ),
            (
                json!({"model":"m","messages":[{"role":"assistant","tool_calls":[
                    {"id":"a","type":"function","function":{"name":"f","arguments":"[1]"}}]}]}),
                "messages[0].tool_calls[0].function.arguments",
            ),
            (
                json!({"model":"m","messages":[{"role":"tool","tool_call_id":"nope","content":"x"}]}),
                "messages[0].tool_call_id",
            ),
            (
                json!({"model":"m","messages":[{"role":"system","content":[
                    {"type":"image_url","image_url":{"url":"https://x/a.png"}}]}]}),
                "messages[0].content[0]",
            ),
            (
                json!({"model":"m","messages":[{"role":"user","content":[
                    {"type":"file","file":{"file_id":"file-abc"}}]}]}),
                "messages[0].content[0]",
            ),
        ];
        for (input, param) in cases {
            let err = body_of(
                "gemini-2.5-flash",
                ModelSettings::default(),
                &input.to_string(),
            )
            .unwrap_err();
            assert_eq!(err.status, 400, "{input}");
            assert_eq!(err.param.as_deref(), Some(param), "{input}");
        }
        let lenient = ModelSettings {
            drop_unsupported_params: true,
            ..ModelSettings::default()
        };
        let input = json!({"model":"m","messages":[{"role":"user","content":"x"}],"logprobs":true,
            "top_logprobs":2,"parallel_tool_calls":false,"service_tier":"flex"});
        let got = body_of("gemini-2.5-flash", lenient, &input.to_string()).unwrap();
        assert_eq!(
            got,
            json!({"contents":[{"role":"user","parts":[{"text":"x"}]}]})
        );
    }

    #[test]
    fn paths_and_auth() {
        let cases = [
            (YAML, "gemini-2.5-flash", false, "/v1beta/models/gemini-2.5-flash:generateContent"),
            (
                YAML,
                "models/gemini-2.5-flash",
                true,
                "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
            ),
            (
                "kind: gemini\napi_key: {env: TEST_KEY}\napi_version: v1\nbase_url: http://mock:9/google",
                "gemini-2.0-flash",
                false,
                "/google/v1/models/gemini-2.0-flash:generateContent",
            ),
        ];
        for (yaml, model, stream, path) in cases {
            let p = provider(yaml);
            let (req, raw) = chat_request(&format!(
                r#"{{"model":"m","messages":[{{"role":"user","content":"hi"}}],"stream":{stream}}}"#
            ));
            let up = p
                .chat_request(&req, raw.as_bytes(), &attempt(model))
                .unwrap();
            assert_eq!(up.path, path);
            assert_eq!(
                up.headers,
                [("x-goog-api-key".to_string(), "env-secret".to_string())]
            );
        }
        assert_eq!(
            provider(YAML).endpoint().host,
            "generativelanguage.googleapis.com"
        );
        let missing = provider("kind: gemini\napi_key: {env: UNSET}");
        let (req, raw) = chat_request(r#"{"model":"m","messages":[]}"#);
        let err = missing
            .chat_request(&req, raw.as_bytes(), &attempt("g"))
            .unwrap_err();
        assert!(err.message.contains("no api_key"), "{}", err.message);
    }

    #[test]
    fn config_problems() {
        assert_build_error("kind: gemini", "providers.test.api_key: required");
        assert_build_error(
            "kind: gemini\napi_key: k\nproject: p",
            "unknown field `project`",
        );
    }

    #[test]
    fn tool_call_ids_carry_signatures_both_ways() {
        let cases = [
            ("req-1", 0, Some("Zm9v+/8="), "call_req1-0_sig_Zm9v-_8"),
            ("", 3, Some("AAAA"), "call_-3_sig_AAAA"),
            ("a1", 2, None, "call_a1-2"),
        ];
        for (request, n, sig, id) in cases {
            assert_eq!(tool_call_id(request, n, sig), id);
            assert_eq!(signature_from_call_id(id).as_deref(), sig, "{id}");
        }
        for foreign in [
            "call_abc123",
            "toolu_01A_sig_x",
            "call_x_sig_y",
            "call_a-1_sig_",
            "call_a-1_sig_a+b",
        ] {
            assert_eq!(signature_from_call_id(foreign), None, "{foreign}");
        }
    }

    fn answer(body: Value) -> Result<(Value, Option<Usage>), ApiError> {
        let t = provider(YAML).chat_response(body.to_string().as_bytes(), &ctx(false))?;
        Ok((serde_json::from_slice(&t.body.unwrap()).unwrap(), t.usage))
    }

    #[test]
    fn answers() {
        let usage = json!({"promptTokenCount":10,"candidatesTokenCount":5,"totalTokenCount":22,
            "cachedContentTokenCount":4,"thoughtsTokenCount":7});
        let usage_out = json!({"prompt_tokens":10,"completion_tokens":12,"total_tokens":22,
            "prompt_tokens_details":{"cached_tokens":4},"completion_tokens_details":{"reasoning_tokens":7}});
        let cases: Vec<(&str, Value, Value)> = vec![
            (
                "text with thoughts",
                json!({"candidates":[{"content":{"role":"model","parts":[
                    {"text":"thinking...","thought":true},{"text":"Hel"},{"text":"lo","thoughtSignature":"c2ln"}]},
                    "finishReason":"STOP","index":0}],
                    "usageMetadata":usage,"modelVersion":"gemini-2.5-flash","responseId":"resp-1"}),
                json!({"id":"resp-1","object":"chat.completion","created":1_700_000_000,"model":"gemini-2.5-flash",
                    "choices":[{"index":0,"message":{"role":"assistant","content":"Hello","reasoning_content":"thinking..."},
                    "finish_reason":"stop","logprobs":null}],"usage":usage_out}),
            ),
            (
                "tool calls keep their signature in the id",
                json!({"candidates":[{"content":{"role":"model","parts":[
                    {"functionCall":{"name":"weather","args":{"city":"Paris"}},"thoughtSignature":"Zm9v+/8="},
                    {"functionCall":{"name":"time","args":{}}}]},"finishReason":"STOP"}]}),
                json!({"id":"chatcmpl-req-1","object":"chat.completion","created":1_700_000_000,"model":"up-model",
                    "choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[
                        {"id":"call_req1-0_sig_Zm9v-_8","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}},
                        {"id":"call_req1-1","type":"function","function":{"name":"time","arguments":"{}"}}]},
                    "finish_reason":"tool_calls","logprobs":null}]}),
            ),
            (
                "length, safety and several candidates",
                json!({"candidates":[
                    {"content":{"parts":[{"text":"cut"}]},"finishReason":"MAX_TOKENS","index":0},
                    {"content":{"parts":[]},"finishReason":"SAFETY","index":1},
                    {"finishReason":"RECITATION","index":2}]}),
                json!({"id":"chatcmpl-req-1","object":"chat.completion","created":1_700_000_000,"model":"up-model",
                    "choices":[
                        {"index":0,"message":{"role":"assistant","content":"cut"},"finish_reason":"length","logprobs":null},
                        {"index":1,"message":{"role":"assistant","content":""},"finish_reason":"content_filter","logprobs":null},
                        {"index":2,"message":{"role":"assistant","content":""},"finish_reason":"content_filter","logprobs":null}]}),
            ),
            (
                "a blocked prompt is an empty content_filter answer",
                json!({"promptFeedback":{"blockReason":"PROHIBITED_CONTENT"},
                    "usageMetadata":{"promptTokenCount":8,"totalTokenCount":8}}),
                json!({"id":"chatcmpl-req-1","object":"chat.completion","created":1_700_000_000,"model":"up-model",
                    "choices":[{"index":0,"message":{"role":"assistant","content":""},"finish_reason":"content_filter","logprobs":null}],
                    "usage":{"prompt_tokens":8,"completion_tokens":0,"total_tokens":8,
                        "prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}),
            ),
        ];
        for (name, input, expected) in cases {
            let (got, _) = answer(input).unwrap();
            assert_eq!(got, expected, "{name}");
        }
        let (_, usage) = answer(json!({"candidates":[{"content":{"parts":[{"text":"x"}]},"finishReason":"STOP"}],
            "usageMetadata":{"promptTokenCount":10,"candidatesTokenCount":5,"cachedContentTokenCount":4,
            "thoughtsTokenCount":7,"toolUsePromptTokenCount":3}}))
        .unwrap();
        assert_eq!(
            usage,
            Some(Usage {
                prompt_tokens: 13,
                completion_tokens: 12,
                cached_tokens: 4,
                cache_write_tokens: 0,
                reasoning_tokens: 7
            })
        );
    }

    #[test]
    fn broken_answers_are_502() {
        let cases: [(&[u8], &str); 4] = [
            (b"{\"candidates\": [", "invalid_upstream_response"),
            (b"{}", "invalid_upstream_response"),
            (b"[1,2]", "invalid_upstream_response"),
            (
                br#"{"candidates":[{"content":{"parts":[]},"finishReason":"MALFORMED_FUNCTION_CALL","finishMessage":"bad call"}]}"#,
                "malformed_function_call",
            ),
        ];
        for (body, code) in cases {
            let err = provider(YAML).chat_response(body, &ctx(false)).unwrap_err();
            assert_eq!(err.status, 502, "{}", String::from_utf8_lossy(body));
            assert_eq!(err.code.as_deref(), Some(code));
        }
    }

    /// (name, include_usage, upstream SSE, what the client sees)
    type StreamCase = (&'static str, bool, String, String);

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
        let cut = text_stream
            .get(..text_stream.rfind("data:").unwrap())
            .unwrap();
        vec![
            ("text", false, text_stream.to_owned(), format!("{text_out}data: [DONE]\n\n")),
            ("text with usage", true, text_stream.to_owned(), format!("{text_out}{usage}data: [DONE]\n\n")),
            ("tools", false, tool_stream.to_owned(), format!("{tool_out}data: [DONE]\n\n")),
            (
                "blocked prompt",
                false,
                blocked.to_owned(),
                format!("{role}{}data: [DONE]\n\n", chunk("{}", "\"content_filter\"")),
            ),
            (
                "cut short",
                false,
                cut.to_owned(),
                format!(
                    "{role}{}{}data: {interrupted}\n\n",
                    chunk(r#"{"reasoning_content":"hmm"}"#, "null"),
                    chunk(r#"{"content":"Hel"}"#, "null")
                ),
            ),
            (
                "an error event mid-stream",
                false,
                format!(
                    "{}data: {{\"error\":{{\"code\":503,\"message\":\"overloaded\",\"status\":\"UNAVAILABLE\"}}}}\n\n",
                    text_stream.get(..text_stream.find("\r\n\r\n").unwrap() + 4).unwrap()
                ),
                format!(
                    "{role}{}data: {{\"error\":{{\"message\":\"overloaded\",\"type\":\"upstream_error\",\"param\":null,\"code\":\"unavailable\"}}}}\n\n",
                    chunk(r#"{"reasoning_content":"hmm"}"#, "null")
                ),
            ),
            (
                "a malformed function call",
                false,
                "data: {\"candidates\":[{\"finishReason\":\"MALFORMED_FUNCTION_CALL\"}],\"responseId\":\"r1\",\"modelVersion\":\"gemini-x\"}\n\n".to_owned(),
                format!(
                    "{role}data: {{\"error\":{{\"message\":\"the gemini model produced an unusable tool call (MALFORMED_FUNCTION_CALL)\",\"type\":\"upstream_error\",\"param\":null,\"code\":\"malformed_function_call\"}}}}\n\n"
                ),
            ),
            (
                "invalid JSON",
                false,
                "data: {\"candidates\":[\n\n".to_owned(),
                "data: {\"error\":{\"message\":\"the gemini provider returned an invalid answer: EOF while parsing a list at line 1 column 15\",\"type\":\"upstream_error\",\"param\":null,\"code\":\"invalid_upstream_response\"}}\n\n".to_owned(),
            ),
        ]
    }

    #[test]
    fn streams_at_every_split() {
        for (name, include_usage, input, expected) in stream_cases() {
            let make = || GeminiStream::new(KIND, &ctx(include_usage));
            let (out, _) = run_stream_whole(make, input.as_bytes());
            assert_eq!(String::from_utf8(out).unwrap(), expected, "{name}");
            assert_every_split_matches(make, input.as_bytes(), expected.as_bytes());
        }
    }

    #[test]
    fn stream_usage_is_recorded_even_when_hidden() {
        let (input, _) = stream_cases()
            .into_iter()
            .find(|c| c.0 == "text")
            .map(|c| (c.2, c.3))
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

    /// (provider status, body, status, type, code, retry-after)
    type ErrorCase = (
        u16,
        Value,
        u16,
        &'static str,
        Option<&'static str>,
        Option<u64>,
    );

    #[test]
    fn errors() {
        let cases: Vec<ErrorCase> = vec![
            (
                429,
                json!({"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED","details":[
                    {"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"36.5s"}]}}),
                429,
                "rate_limit_error",
                Some("resource_exhausted"),
                Some(37),
            ),
            (
                503,
                json!({"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}),
                503,
                "upstream_error",
                Some("unavailable"),
                None,
            ),
            (
                400,
                json!({"error":{"code":400,"message":"API key not valid.","status":"INVALID_ARGUMENT","details":[
                    {"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}),
                401,
                "authentication_error",
                Some("invalid_api_key"),
                None,
            ),
            (
                400,
                json!({"error":{"code":400,"message":"Function call is missing a thought_signature","status":"INVALID_ARGUMENT"}}),
                400,
                "invalid_request_error",
                Some("invalid_argument"),
                None,
            ),
            (
                403,
                json!({"error":{"code":403,"message":"denied","status":"PERMISSION_DENIED"}}),
                403,
                "permission_error",
                Some("permission_denied"),
                None,
            ),
            (
                401,
                json!({"error":{"code":401,"message":"no token","status":"UNAUTHENTICATED"}}),
                401,
                "authentication_error",
                Some("unauthenticated"),
                None,
            ),
            (
                404,
                json!([{"error":{"code":404,"message":"models/x is not found","status":"NOT_FOUND"}}]),
                404,
                "invalid_request_error",
                Some("not_found"),
                None,
            ),
            (
                500,
                json!({"error":{"code":500,"message":"oops","status":"INTERNAL"}}),
                502,
                "upstream_error",
                Some("internal"),
                None,
            ),
            (
                504,
                json!({"error":{"code":504,"message":"slow","status":"DEADLINE_EXCEEDED"}}),
                504,
                "timeout_error",
                Some("deadline_exceeded"),
                None,
            ),
            (
                503,
                json!("<html>busy</html>"),
                503,
                "upstream_error",
                None,
                None,
            ),
        ];
        for (status, body, want_status, want_type, want_code, retry_after) in cases {
            let raw = match &body {
                Value::String(s) => s.clone().into_bytes(),
                v => v.to_string().into_bytes(),
            };
            let e = provider(YAML).error_response(status, &raw);
            assert!(
                provider(YAML).chat_response(&raw, &ctx(false)).is_err(),
                "{body}"
            );
            assert_eq!(e.status, want_status, "{body}");
            assert_eq!(e.kind.type_name(), want_type, "{body}");
            assert_eq!(e.code.as_deref(), want_code, "{body}");
            assert_eq!(e.retry_after, retry_after, "{body}");
        }
        let e = google_error(503, b"<html>busy</html>");
        assert_eq!(e.message, "<html>busy</html>");
    }

    #[test]
    fn embeddings() {
        let p = provider(YAML);
        let (req, raw) = embeddings_request(r#"{"model":"e","input":["a","b"],"dimensions":8}"#);
        let up = p
            .embeddings_request(&req, raw.as_bytes(), &attempt("gemini-embedding-001"))
            .unwrap();
        assert_eq!(
            up.path,
            "/v1beta/models/gemini-embedding-001:batchEmbedContents"
        );
        assert_eq!(
            serde_json::from_slice::<Value>(&up.body).unwrap(),
            json!({"requests":[
                {"model":"models/gemini-embedding-001","content":{"parts":[{"text":"a"}]},"outputDimensionality":8},
                {"model":"models/gemini-embedding-001","content":{"parts":[{"text":"b"}]},"outputDimensionality":8}]})
        );
        let (req, raw) = embeddings_request(r#"{"model":"e","input":[1,2]}"#);
        let err = p
            .embeddings_request(&req, raw.as_bytes(), &attempt("e"))
            .unwrap_err();
        assert_eq!(err.param.as_deref(), Some("input"));

        let body = br#"{"embeddings":[{"values":[0.5,-1]},{"values":[1]}]}"#;
        let t = p.embeddings_response(body, &ctx(false)).unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&t.body.unwrap()).unwrap(),
            json!({"object":"list","data":[
                {"object":"embedding","index":0,"embedding":[0.5,-1.0]},
                {"object":"embedding","index":1,"embedding":[1.0]}],
                "model":"up-model","usage":{"prompt_tokens":0,"total_tokens":0}})
        );
        let mut b64 = ctx(false);
        b64.base64_embeddings = true;
        let t = p
            .embeddings_response(br#"{"embeddings":[{"values":[1]}]}"#, &b64)
            .unwrap();
        assert!(String::from_utf8(t.body.unwrap())
            .unwrap()
            .contains("\"embedding\":\"AACAPw==\""));
        let err = p.embeddings_response(b"{}", &ctx(false)).unwrap_err();
        assert_eq!(err.status, 502);
    }
}
