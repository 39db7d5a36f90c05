//! AWS Bedrock. Chat goes through the Converse API (`/model/{id}/converse`, and
//! `/model/{id}/converse-stream`, which answers in AWS eventstream framing); embeddings through
//! InvokeModel (`/model/{id}/invoke`) for Titan and Cohere models. Requests are signed with
//! SigV4 over the final body, or carry a Bedrock API key as a bearer token.
//!
//! Converse wants strictly alternating user/assistant turns: consecutive messages of one role
//! are merged, and tool results (OpenAI `tool` messages) become `toolResult` blocks of the
//! user turn that follows the assistant's `toolUse` turn.
//!
//! Titan embeds one text per call, so a list of several inputs is refused with a 400 naming
//! `input` rather than fanned out into several signed calls (use a `cohere.embed-*` model to
//! embed batches).

use super::invalid_answer;
use super::{
    sigv4, write_sse_error, write_sse_json, Attempt, Credential, Endpoint, Provider, ProviderSetup,
    ResponseContext, StreamTranslator, Translated, UpstreamRequest, SSE_DONE,
};
use crate::api::chat::UsageReport;
use crate::api::chat::{
    content_beside_tools, AssistantMessage, ChatChunk, ChatRequest, ChunkChoice, ContentPart,
    Delta, FinishReason, FunctionCallOut, FunctionDelta, ImageSource, Message, MessageContent,
    ResponseFormat, Role, ToolCallDelta, ToolCallOut, ToolChoice,
};
use crate::api::embeddings::{
    Embedding, EmbeddingVector, EmbeddingsRequest, EmbeddingsResponse, EmbeddingsUsage,
};
use crate::api::{ApiError, ErrorKind};
use crate::config::secret::{Secret, SecretSpec};
use crate::config::{ModelSettings, Problem, ProviderSpec};
use crate::stream::eventstream::{Decoder, Message as EventMessage};
use crate::usage::Usage;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// The SigV4 signing name of `bedrock-runtime`.
const SIGNING_SERVICE: &str = "bedrock";

/// Where credentials come from when the configuration does not say, as in AWS's SDKs.
const DEFAULT_ACCESS_KEY_ID_ENV: &str = "AWS_ACCESS_KEY_ID";
const DEFAULT_SECRET_ACCESS_KEY_ENV: &str = "AWS_SECRET_ACCESS_KEY";
const DEFAULT_SESSION_TOKEN_ENV: &str = "AWS_SESSION_TOKEN";

/// Converse request fields a client may send as they are (unknown top-level fields).
const NATIVE_FIELDS: [&str; 6] = [
    "additionalModelRequestFields",
    "additionalModelResponseFieldPaths",
    "guardrailConfig",
    "performanceConfig",
    "promptVariables",
    "requestMetadata",
];

/// Largest eventstream message accepted; Bedrock's are a few KiB.
const MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    region: String,
    #[serde(default)]
    access_key_id: Option<SecretSpec>,
    #[serde(default)]
    secret_access_key: Option<SecretSpec>,
    #[serde(default)]
    session_token: Option<SecretSpec>,
}

enum Auth {
    SigV4 {
        access_key_id: Credential,
        secret_access_key: Credential,
        session_token: Credential,
    },
    /// A Bedrock API key, sent as `Authorization: Bearer`.
    ApiKey(Credential),
}

pub struct Bedrock {
    endpoint: Endpoint,
    region: String,
    auth: Auth,
    headers: Vec<(String, Secret)>,
}

pub fn build(setup: &ProviderSetup) -> Result<Box<dyn Provider>, Vec<Problem>> {
    let settings: Settings = setup.settings().map_err(|p| vec![p])?;
    let region = settings.region.as_str();
    if region.is_empty()
        || !region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(vec![Problem::new(
            format!("{}.region", setup.path),
            format!("`{region}` is not an AWS region name (e.g. us-east-1)"),
        )]);
    }
    let endpoint = setup
        .endpoint(Some(&format!(
            "https://bedrock-runtime.{region}.amazonaws.com"
        )))
        .map_err(|p| vec![p])?;
    let auth = if setup.spec.api_key.is_some() {
        if settings.access_key_id.is_some()
            || settings.secret_access_key.is_some()
            || settings.session_token.is_some()
        {
            return Err(vec![Problem::new(
                format!("{}.api_key", setup.path),
                "set either api_key (a Bedrock API key) or AWS access keys, not both",
            )]);
        }
        Auth::ApiKey(setup.api_key())
    } else {
        let env_default = |name: &str| SecretSpec::Env {
            env: name.to_owned(),
        };
        let session_token = match &settings.session_token {
            Some(spec) => setup.credential("session_token", Some(spec)),
            // A token belongs to its keys: taken from the environment (when there is one) only
            // with the access key id from the environment too.
            None if settings.access_key_id.is_none() => {
                match env_default(DEFAULT_SESSION_TOKEN_ENV).resolve(setup.env) {
                    Ok(token) => Credential::Present(token),
                    Err(_) => Credential::None,
                }
            }
            None => Credential::None,
        };
        Auth::SigV4 {
            access_key_id: setup.credential(
                "access_key_id",
                Some(
                    settings
                        .access_key_id
                        .as_ref()
                        .unwrap_or(&env_default(DEFAULT_ACCESS_KEY_ID_ENV)),
                ),
            ),
            secret_access_key: setup.credential(
                "secret_access_key",
                Some(
                    settings
                        .secret_access_key
                        .as_ref()
                        .unwrap_or(&env_default(DEFAULT_SECRET_ACCESS_KEY_ENV)),
                ),
            ),
            session_token,
        }
    };
    Ok(Box::new(Bedrock {
        endpoint,
        region: settings.region,
        auth,
        headers: setup.headers()?,
    }))
}

/// The environment variables read by default (credentials the configuration does not name),
/// so that the renderer lets them into the Wasm VM.
pub fn implied_env_names(spec: &ProviderSpec) -> Vec<&'static str> {
    if spec.api_key.is_some() {
        return Vec::new();
    }
    let configured = |field: &str| spec.settings.contains_key(field);
    let mut names = Vec::new();
    if !configured("access_key_id") {
        names.push(DEFAULT_ACCESS_KEY_ID_ENV);
    }
    if !configured("secret_access_key") {
        names.push(DEFAULT_SECRET_ACCESS_KEY_ENV);
    }
    if !configured("session_token") && !configured("access_key_id") {
        names.push(DEFAULT_SESSION_TOKEN_ENV);
    }
    names
}

impl Bedrock {
    /// A signed POST to `/model/{model}/{action}`. The model id is one path segment, so the
    /// `:` and `/` of ids and ARNs are percent-encoded.
    fn upstream_request(
        &self,
        action: &str,
        model: &str,
        body: Vec<u8>,
        now_ms: u64,
    ) -> Result<UpstreamRequest, ApiError> {
        let path = self
            .endpoint
            .path(&format!("/model/{}/{action}", sigv4::uri_encode(model)));
        let mut headers: Vec<(String, String)> = self
            .headers
            .iter()
            .map(|(name, value)| (name.clone(), value.expose().to_owned()))
            .collect();
        match &self.auth {
            Auth::ApiKey(key) => {
                let key = key
                    .get()?
                    .ok_or_else(|| ApiError::server("the Bedrock API key is not configured"))?;
                headers.push(("authorization".to_owned(), format!("Bearer {key}")));
            }
            Auth::SigV4 {
                access_key_id,
                secret_access_key,
                session_token,
            } => {
                let missing = || ApiError::server("AWS credentials are not configured");
                let credentials = sigv4::Credentials {
                    access_key_id: access_key_id.get()?.ok_or_else(missing)?,
                    secret_access_key: secret_access_key.get()?.ok_or_else(missing)?,
                    session_token: session_token.get()?,
                };
                let request = sigv4::Request {
                    method: "POST",
                    host: &self.endpoint.authority(),
                    path: &path,
                    query: &[],
                    headers: &[],
                    payload: &body,
                };
                let scope = sigv4::Scope {
                    region: &self.region,
                    service: SIGNING_SERVICE,
                };
                headers.extend(sigv4::sign(&request, &credentials, &scope, now_ms));
            }
        }
        Ok(UpstreamRequest {
            path,
            headers,
            body,
        })
    }
}

impl Provider for Bedrock {
    fn kind(&self) -> &'static str {
        "bedrock"
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
        let body = converse_request(req, attempt.settings)?;
        let body = serde_json::to_vec(&body).map_err(|e| ApiError::server(e.to_string()))?;
        let action = if req.stream {
            "converse-stream"
        } else {
            "converse"
        };
        self.upstream_request(action, attempt.upstream_model, body, attempt.now_ms)
    }

    fn chat_response(&self, body: &[u8], ctx: &ResponseContext) -> Result<Translated, ApiError> {
        let answer: ConverseResponse =
            serde_json::from_slice(body).map_err(|e| invalid_answer("bedrock", &e))?;
        let mut text = String::new();
        let mut reasoning = String::new();
        let mut tool_calls = Vec::new();
        for block in answer.output.message.content {
            if let Some(t) = block.text {
                text.push_str(&t);
            }
            if let Some(r) = block.reasoning_content.and_then(|r| r.reasoning_text) {
                reasoning.push_str(&r.text);
            }
            if let Some(tool) = block.tool_use {
                tool_calls.push(ToolCallOut {
                    id: tool.tool_use_id,
                    kind: "function",
                    function: FunctionCallOut {
                        name: tool.name,
                        arguments: tool.input.to_string(),
                    },
                });
            }
        }
        let finish_reason = match answer.stop_reason.as_deref() {
            Some(reason) => finish_reason(reason),
            None if !tool_calls.is_empty() => FinishReason::ToolCalls,
            None => FinishReason::Stop,
        };
        let usage = answer.usage.map(|u| u.normalise());
        let content = content_beside_tools(text, &tool_calls);
        let message = AssistantMessage::new(content, reasoning, tool_calls);
        Translated::one_choice(ctx, None, None, message, finish_reason, usage)
    }

    fn chat_stream(&self, ctx: &ResponseContext) -> Box<dyn StreamTranslator> {
        Box::new(ConverseStream::new(ctx))
    }

    fn embeddings_request(
        &self,
        req: &EmbeddingsRequest,
        raw: &[u8],
        attempt: &Attempt,
    ) -> Result<UpstreamRequest, ApiError> {
        let model = attempt.upstream_model;
        let body = invoke_embeddings_request(req, raw, model, attempt.settings)?;
        let body = serde_json::to_vec(&body).map_err(|e| ApiError::server(e.to_string()))?;
        self.upstream_request("invoke", model, body, attempt.now_ms)
    }

    fn embeddings_response(
        &self,
        body: &[u8],
        ctx: &ResponseContext,
    ) -> Result<Translated, ApiError> {
        let answer: InvokeEmbeddings =
            serde_json::from_slice(body).map_err(|e| invalid_answer("bedrock", &e))?;
        let (vectors, prompt_tokens) = match answer {
            InvokeEmbeddings::Titan {
                embedding,
                input_text_token_count,
            } => (vec![embedding], input_text_token_count),
            // Cohere on Bedrock reports its token count in a response header only.
            InvokeEmbeddings::Cohere { embeddings } => match embeddings {
                CohereEmbeddings::Floats(v) | CohereEmbeddings::ByType { float: v } => (v, 0),
            },
        };
        let response = EmbeddingsResponse {
            object: "list",
            data: vectors
                .into_iter()
                .zip(0..)
                .map(|(values, index)| Embedding {
                    object: "embedding",
                    index,
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
            usage: Some(Usage {
                prompt_tokens,
                ..Usage::default()
            }),
        })
    }

    fn signs_with_time(&self) -> bool {
        matches!(self.auth, Auth::SigV4 { .. })
    }

    fn error_response(&self, status: u16, body: &[u8]) -> ApiError {
        #[derive(Deserialize)]
        struct AwsError {
            #[serde(alias = "Message")]
            message: String,
        }
        let message = match serde_json::from_slice::<AwsError>(body) {
            Ok(e) => e.message,
            Err(_) => super::error_message(body),
        };
        status_error(status, message)
    }
}

/// A Bedrock error status mapped to what OpenAI clients expect; throttling stays 429 and
/// unavailability 503, so Envoy's retry policy falls back.
fn status_error(status: u16, message: String) -> ApiError {
    let (kind, status) = match status {
        400 => (ErrorKind::InvalidRequest, 400),
        403 => (ErrorKind::Permission, 403),
        404 => (ErrorKind::NotFound, 404),
        // ModelTimeoutException
        408 => (ErrorKind::Timeout, 504),
        // ModelErrorException, ModelStreamErrorException
        424 => (ErrorKind::Upstream, 502),
        429 => (ErrorKind::RateLimit, 429),
        500 => (ErrorKind::Upstream, 502),
        503 => (ErrorKind::Upstream, 503),
        other => (ErrorKind::from_status(other), other),
    };
    ApiError::new(kind, message).with_status(status)
}

/// An exception event inside a ConverseStream, with the status its exception type carries.
fn stream_exception(exception: &str, message: String) -> ApiError {
    let status = match exception {
        "throttlingException" | "serviceQuotaExceededException" => 429,
        "validationException" => 400,
        "accessDeniedException" => 403,
        "resourceNotFoundException" => 404,
        "modelTimeoutException" => 408,
        "serviceUnavailableException" | "modelNotReadyException" => 503,
        // modelStreamErrorException, internalServerException and anything new
        _ => 502,
    };
    status_error(status, message).with_code(exception)
}

fn finish_reason(stop_reason: &str) -> FinishReason {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "guardrail_intervened" | "content_filtered" => FinishReason::ContentFilter,
        // end_turn, stop_sequence
        _ => FinishReason::Stop,
    }
}

// ---------------------------------------------------------------------------------------------
// Request: OpenAI chat → Converse

fn converse_request(req: &ChatRequest, settings: &ModelSettings) -> Result<Value, ApiError> {
    refuse_unsupported(req, settings)?;
    let (system, messages) = converse_messages(&req.messages)?;
    let mut body = Map::new();
    body.insert("messages".into(), Value::Array(messages));
    if !system.is_empty() {
        body.insert("system".into(), Value::Array(system));
    }
    let mut inference = Map::new();
    if let Some(max) = req.max_output_tokens().or(settings.max_tokens) {
        inference.insert("maxTokens".into(), max.into());
    }
    if let Some(t) = req.temperature {
        inference.insert("temperature".into(), t.into());
    }
    if let Some(p) = req.top_p {
        inference.insert("topP".into(), p.into());
    }
    if let Some(stop) = &req.stop {
        let sequences: Vec<&String> = stop.0.iter().filter(|s| !s.is_empty()).collect();
        if !sequences.is_empty() {
            inference.insert("stopSequences".into(), json!(sequences));
        }
    }
    if !inference.is_empty() {
        body.insert("inferenceConfig".into(), Value::Object(inference));
    }
    if let Some(tool_config) = tool_config(req, settings)? {
        body.insert("toolConfig".into(), tool_config);
    }
    for (name, value) in &req.extra {
        if NATIVE_FIELDS.contains(&name.as_str()) {
            body.insert(name.clone(), value.clone());
        }
    }
    Ok(Value::Object(body))
}

/// Parameters Converse cannot honour: a 400 naming the first one, unless the model's
/// settings say to drop them.
fn refuse_unsupported(req: &ChatRequest, settings: &ModelSettings) -> Result<(), ApiError> {
    if settings.drop_unsupported_params {
        return Ok(());
    }
    let json_format = matches!(
        req.response_format,
        Some(ResponseFormat::JsonObject | ResponseFormat::JsonSchema { .. })
    );
    let unsupported = [
        ("n", req.n.is_some_and(|n| n != 1)),
        ("logprobs", req.logprobs == Some(true)),
        ("top_logprobs", req.top_logprobs.is_some()),
        (
            "logit_bias",
            req.logit_bias.as_ref().is_some_and(|b| !b.is_empty()),
        ),
        (
            "presence_penalty",
            req.presence_penalty.is_some_and(|p| p != 0.0),
        ),
        (
            "frequency_penalty",
            req.frequency_penalty.is_some_and(|p| p != 0.0),
        ),
        ("seed", req.seed.is_some()),
        ("response_format", json_format),
        ("reasoning_effort", req.reasoning_effort.is_some()),
        (
            "parallel_tool_calls",
            req.parallel_tool_calls == Some(false),
        ),
    ];
    if let Some((name, _)) = unsupported.iter().find(|(_, used)| *used) {
        return Err(ApiError::invalid_param(
            *name,
            format!("`{name}` is not supported by Bedrock's Converse API"),
        ));
    }
    if let Some(name) = req
        .extra
        .keys()
        .find(|k| !NATIVE_FIELDS.contains(&k.as_str()))
    {
        return Err(ApiError::invalid_param(
            name.clone(),
            format!(
                "unknown parameter `{name}` for Bedrock (model-specific fields go in `additionalModelRequestFields`)"
            ),
        ));
    }
    Ok(())
}

/// System prompts, and the turns with same-role neighbours merged.
fn converse_messages(messages: &[Message]) -> Result<(Vec<Value>, Vec<Value>), ApiError> {
    let mut system = Vec::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let (role, blocks) = match m.role {
            Role::System | Role::Developer => {
                let text = m.text();
                if !text.is_empty() {
                    system.push(json!({ "text": text }));
                }
                continue;
            }
            Role::User => ("user", user_blocks(m, i)?),
            Role::Assistant => ("assistant", assistant_blocks(m, i)?),
            Role::Tool => ("user", vec![tool_result_block(m, i)?]),
            Role::Function => {
                return Err(ApiError::invalid_param(
                    format!("messages[{i}].role"),
                    "the `function` role is not supported; use `tool` messages",
                ))
            }
        };
        match turns.last_mut() {
            Some((last_role, last_blocks)) if *last_role == role => last_blocks.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    let turns = turns
        .into_iter()
        .map(|(role, content)| json!({ "role": role, "content": content }))
        .collect();
    Ok((system, turns))
}

fn user_blocks(m: &Message, i: usize) -> Result<Vec<Value>, ApiError> {
    match &m.content {
        None => Ok(Vec::new()),
        Some(MessageContent::Text(t)) => Ok(text_block(t).into_iter().collect()),
        Some(MessageContent::Parts(parts)) => {
            let mut blocks = Vec::with_capacity(parts.len());
            for (j, part) in parts.iter().enumerate() {
                let at = || format!("messages[{i}].content[{j}]");
                match part {
                    ContentPart::Text { text } => blocks.extend(text_block(text)),
                    ContentPart::Refusal { refusal } => blocks.extend(text_block(refusal)),
                    ContentPart::ImageUrl { image_url } => blocks.push(
                        image_block(image_url.source())
                            .map_err(|why| ApiError::invalid_param(at(), why))?,
                    ),
                    ContentPart::InputAudio { .. } => {
                        return Err(ApiError::invalid_param(
                            at(),
                            "audio input is not supported by Bedrock's Converse API",
                        ))
                    }
                    ContentPart::File { .. } => {
                        return Err(ApiError::invalid_param(
                            at(),
                            "file input is not supported for Bedrock by this gateway",
                        ))
                    }
                }
            }
            Ok(blocks)
        }
    }
}

/// Converse refuses blank text blocks, so empty text is left out.
fn text_block(text: &str) -> Option<Value> {
    (!text.is_empty()).then(|| json!({ "text": text }))
}

fn image_block(source: ImageSource) -> Result<Value, String> {
    match source {
        ImageSource::Base64 { media_type, data } => {
            let format = match media_type {
                "image/png" => "png",
                "image/jpeg" | "image/jpg" => "jpeg",
                "image/gif" => "gif",
                "image/webp" => "webp",
                other => {
                    return Err(format!(
                        "image type `{other}` is not supported by Bedrock (png, jpeg, gif, webp)"
                    ))
                }
            };
            Ok(json!({ "image": { "format": format, "source": { "bytes": data } } }))
        }
        ImageSource::Url(_) => {
            Err("Bedrock takes images inline only: send them as base64 `data:` URLs".to_owned())
        }
    }
}

fn assistant_blocks(m: &Message, i: usize) -> Result<Vec<Value>, ApiError> {
    let mut blocks: Vec<Value> = text_block(&m.text()).into_iter().collect();
    for (k, call) in m.tool_calls.iter().flatten().enumerate() {
        let arguments = call.function.arguments.trim();
        let input: Value = if arguments.is_empty() {
            json!({})
        } else {
            serde_json::from_str(arguments).map_err(|e| {
                ApiError::invalid_param(
                    format!("messages[{i}].tool_calls[{k}].function.arguments"),
                    format!("tool call arguments must be JSON: {e}"),
                )
            })?
        };
        blocks.push(json!({
            "toolUse": { "toolUseId": call.id, "name": call.function.name, "input": input }
        }));
    }
    Ok(blocks)
}

fn tool_result_block(m: &Message, i: usize) -> Result<Value, ApiError> {
    let id = m.tool_call_id.as_deref().ok_or_else(|| {
        ApiError::invalid_param(
            format!("messages[{i}].tool_call_id"),
            "tool messages need the `tool_call_id` they answer",
        )
    })?;
    Ok(json!({
        "toolResult": { "toolUseId": id, "content": [{ "text": m.text() }] }
    }))
}

/// `toolConfig` from `tools` and `tool_choice`. `auto` is Converse's default and is left
/// out, since some Bedrock models refuse any `toolChoice`.
fn tool_config(req: &ChatRequest, settings: &ModelSettings) -> Result<Option<Value>, ApiError> {
    let tools = req.tools.as_deref().unwrap_or_default();
    if tools.is_empty() {
        return Ok(None);
    }
    let mut specs = Vec::with_capacity(tools.len());
    for (k, tool) in tools.iter().enumerate() {
        if tool.kind != "function" {
            return Err(ApiError::invalid_param(
                format!("tools[{k}].type"),
                format!("tool type `{}` is not supported by Bedrock", tool.kind),
            ));
        }
        let f = &tool.function;
        let mut spec = Map::new();
        spec.insert("name".into(), json!(f.name));
        if let Some(d) = f.description.as_deref().filter(|d| !d.is_empty()) {
            spec.insert("description".into(), json!(d));
        }
        let schema = f
            .parameters
            .clone()
            .unwrap_or_else(|| json!({ "type": "object", "properties": {} }));
        spec.insert("inputSchema".into(), json!({ "json": schema }));
        specs.push(json!({ "toolSpec": spec }));
    }
    let choice = match &req.tool_choice {
        None | Some(ToolChoice::Auto) => None,
        Some(ToolChoice::Required) => Some(json!({ "any": {} })),
        Some(ToolChoice::Function(name)) => Some(json!({ "tool": { "name": name } })),
        Some(ToolChoice::None) => {
            // Converse has no `none`: offer no tools, unless the conversation already holds
            // tool blocks (Converse then requires the tool definitions).
            let has_tool_blocks = req.messages.iter().any(|m| {
                m.role == Role::Tool || m.tool_calls.as_ref().is_some_and(|c| !c.is_empty())
            });
            if !has_tool_blocks {
                return Ok(None);
            }
            if !settings.drop_unsupported_params {
                return Err(ApiError::invalid_param(
                    "tool_choice",
                    "Bedrock cannot forbid tool calls in a conversation that already uses tools",
                ));
            }
            None
        }
    };
    let mut config = Map::new();
    config.insert("tools".into(), Value::Array(specs));
    if let Some(choice) = choice {
        config.insert("toolChoice".into(), choice);
    }
    Ok(Some(Value::Object(config)))
}

// ---------------------------------------------------------------------------------------------
// Response: Converse → OpenAI

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConverseResponse {
    output: ConverseOutput,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct ConverseOutput {
    message: OutputMessage,
}

#[derive(Deserialize)]
struct OutputMessage {
    #[serde(default)]
    content: Vec<OutputBlock>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OutputBlock {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    tool_use: Option<ToolUse>,
    #[serde(default)]
    reasoning_content: Option<ReasoningBlock>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolUse {
    tool_use_id: String,
    name: String,
    #[serde(default)]
    input: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReasoningBlock {
    #[serde(default)]
    reasoning_text: Option<ReasoningText>,
}

#[derive(Deserialize)]
struct ReasoningText {
    text: String,
}

/// Converse usage: `inputTokens` excludes the tokens read from or written to the cache.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    cache_read_input_tokens: u64,
    #[serde(default)]
    cache_write_input_tokens: u64,
}

impl WireUsage {
    fn normalise(&self) -> Usage {
        Usage {
            prompt_tokens: self.input_tokens
                + self.cache_read_input_tokens
                + self.cache_write_input_tokens,
            completion_tokens: self.output_tokens,
            cached_tokens: self.cache_read_input_tokens,
            cache_write_tokens: self.cache_write_input_tokens,
            reasoning_tokens: 0,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Stream: ConverseStream eventstream → OpenAI SSE

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockStart {
    content_block_index: u32,
    #[serde(default)]
    start: BlockStartBody,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockStartBody {
    #[serde(default)]
    tool_use: Option<ToolUseStart>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolUseStart {
    tool_use_id: String,
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockDelta {
    content_block_index: u32,
    delta: BlockDeltaBody,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockDeltaBody {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    tool_use: Option<ToolUseDelta>,
    #[serde(default)]
    reasoning_content: Option<ReasoningDelta>,
}

#[derive(Deserialize)]
struct ToolUseDelta {
    #[serde(default)]
    input: String,
}

/// Reasoning deltas carry `text`, or a `signature` / `redactedContent` clients cannot use.
#[derive(Deserialize)]
struct ReasoningDelta {
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageStop {
    #[serde(default)]
    stop_reason: Option<String>,
}

#[derive(Deserialize)]
struct StreamMetadata {
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamState {
    Open,
    /// `[DONE]` sent.
    Done,
    /// An error event sent; nothing follows it.
    Failed,
}

/// Decodes ConverseStream events and writes OpenAI chunks as each one arrives.
pub struct ConverseStream {
    decoder: Decoder,
    id: String,
    created: u64,
    model: String,
    include_usage: bool,
    role_sent: bool,
    /// Converse content block index → OpenAI tool call index, for tool-use blocks.
    tool_blocks: Vec<(u32, u32)>,
    /// `messageStop` seen (its finish chunk is out).
    stopped: bool,
    /// `metadata` seen (usage known, if Bedrock sent any).
    metadata_seen: bool,
    usage: Option<Usage>,
    state: StreamState,
    events: Vec<EventMessage>,
}

impl ConverseStream {
    fn new(ctx: &ResponseContext) -> Self {
        ConverseStream {
            decoder: Decoder::new(MAX_EVENT_BYTES),
            id: format!("chatcmpl-{}", ctx.request_id),
            created: ctx.created,
            model: ctx.upstream_model.to_owned(),
            include_usage: ctx.include_usage,
            role_sent: false,
            tool_blocks: Vec::new(),
            stopped: false,
            metadata_seen: false,
            usage: None,
            state: StreamState::Open,
            events: Vec::new(),
        }
    }

    fn chunk(&self, choices: Vec<ChunkChoice>) -> ChatChunk {
        ChatChunk::new(self.id.clone(), self.created, self.model.clone(), choices)
    }

    fn write_delta(&mut self, out: &mut Vec<u8>, delta: Delta, finish: Option<FinishReason>) {
        self.ensure_role(out);
        let chunk = self.chunk(vec![ChunkChoice {
            index: 0,
            delta,
            finish_reason: finish,
            logprobs: None,
        }]);
        write_sse_json(out, &chunk);
    }

    /// The first chunk carries the role, whether or not Bedrock sent `messageStart`.
    fn ensure_role(&mut self, out: &mut Vec<u8>) {
        if self.role_sent {
            return;
        }
        self.role_sent = true;
        let chunk = self.chunk(vec![ChunkChoice {
            index: 0,
            delta: Delta {
                role: Some("assistant"),
                content: Some(String::new()),
                ..Delta::default()
            },
            finish_reason: None,
            logprobs: None,
        }]);
        write_sse_json(out, &chunk);
    }

    fn fail(&mut self, out: &mut Vec<u8>, error: &ApiError) {
        self.state = StreamState::Failed;
        write_sse_error(out, error);
    }

    fn tool_index(&mut self, block: u32) -> (u32, bool) {
        if let Some((_, index)) = self.tool_blocks.iter().find(|(b, _)| *b == block) {
            return (*index, false);
        }
        let index = self.tool_blocks.len() as u32;
        self.tool_blocks.push((block, index));
        (index, true)
    }

    fn handle(&mut self, event: &EventMessage, out: &mut Vec<u8>) {
        match event.header(":message-type") {
            Some("exception") => {
                let kind = event.header(":exception-type").unwrap_or("exception");
                let message = payload_message(&event.payload)
                    .unwrap_or_else(|| format!("Bedrock sent a {kind} mid-stream"));
                let error = stream_exception(kind, message);
                self.fail(out, &error);
                return;
            }
            Some("error") => {
                let code = event.header(":error-code").unwrap_or("error");
                let message = event
                    .header(":error-message")
                    .unwrap_or("Bedrock sent an error mid-stream")
                    .to_owned();
                let error = ApiError::upstream(message).with_code(code);
                self.fail(out, &error);
                return;
            }
            _ => {}
        }
        let payload = event.payload.as_slice();
        let result = match event.header(":event-type").unwrap_or_default() {
            "messageStart" => {
                self.ensure_role(out);
                Ok(())
            }
            "contentBlockStart" => serde_json::from_slice::<BlockStart>(payload).map(|start| {
                if let Some(tool) = start.start.tool_use {
                    let (index, _) = self.tool_index(start.content_block_index);
                    self.write_tool_delta(out, index, Some(tool), String::new());
                }
            }),
            "contentBlockDelta" => serde_json::from_slice::<BlockDelta>(payload)
                .map(|delta| self.block_delta(out, delta)),
            "messageStop" => serde_json::from_slice::<MessageStop>(payload).map(|stop| {
                let reason = match stop.stop_reason.as_deref() {
                    Some(r) => finish_reason(r),
                    None if !self.tool_blocks.is_empty() => FinishReason::ToolCalls,
                    None => FinishReason::Stop,
                };
                self.stopped = true;
                self.write_delta(out, Delta::default(), Some(reason));
            }),
            "metadata" => serde_json::from_slice::<StreamMetadata>(payload).map(|meta| {
                self.metadata_seen = true;
                if let Some(u) = meta.usage {
                    self.usage = Some(u.normalise());
                }
            }),
            // contentBlockStop and events added later carry nothing a client needs.
            _ => Ok(()),
        };
        match result {
            Err(e) => self.fail(out, &invalid_answer("bedrock", &e)),
            Ok(()) if self.stopped && self.metadata_seen => self.complete(out),
            Ok(()) => {}
        }
    }

    fn block_delta(&mut self, out: &mut Vec<u8>, event: BlockDelta) {
        let delta = event.delta;
        if let Some(text) = delta.text {
            self.write_delta(
                out,
                Delta {
                    content: Some(text),
                    ..Delta::default()
                },
                None,
            );
        }
        if let Some(tool) = delta.tool_use {
            // A tool block always starts with `contentBlockStart`; tolerate one that did not.
            let (index, new) = self.tool_index(event.content_block_index);
            let start = new.then(|| ToolUseStart {
                tool_use_id: format!("call_{}_{index}", self.id),
                name: String::new(),
            });
            self.write_tool_delta(out, index, start, tool.input);
        }
        if let Some(text) = delta.reasoning_content.and_then(|r| r.text) {
            self.write_delta(
                out,
                Delta {
                    reasoning_content: Some(text),
                    ..Delta::default()
                },
                None,
            );
        }
    }

    /// A tool call delta: id, type and name on the call's first chunk, then argument text.
    fn write_tool_delta(
        &mut self,
        out: &mut Vec<u8>,
        index: u32,
        start: Option<ToolUseStart>,
        arguments: String,
    ) {
        let (id, kind, name) = match start {
            Some(s) => (Some(s.tool_use_id), Some("function"), Some(s.name)),
            None => (None, None, None),
        };
        let delta = Delta {
            tool_calls: Some(vec![ToolCallDelta {
                index,
                id,
                kind,
                function: FunctionDelta {
                    name,
                    arguments: Some(arguments),
                },
            }]),
            ..Delta::default()
        };
        self.write_delta(out, delta, None);
    }

    /// Usage chunk (when asked for) and `[DONE]`.
    fn complete(&mut self, out: &mut Vec<u8>) {
        if self.include_usage {
            if let Some(usage) = self.usage {
                let mut chunk = self.chunk(Vec::new());
                chunk.usage = Some(UsageReport::from(&usage));
                write_sse_json(out, &chunk);
            }
        }
        out.extend_from_slice(SSE_DONE);
        self.state = StreamState::Done;
    }
}

/// The `message` of an exception payload.
fn payload_message(payload: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Payload {
        #[serde(alias = "Message")]
        message: String,
    }
    serde_json::from_slice::<Payload>(payload)
        .ok()
        .map(|p| p.message)
}

impl StreamTranslator for ConverseStream {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        if self.state != StreamState::Open {
            return;
        }
        let events = &mut self.events;
        let decoded = self.decoder.feed(chunk, |m| events.push(m));
        for event in std::mem::take(&mut self.events) {
            if self.state != StreamState::Open {
                break;
            }
            self.handle(&event, out);
        }
        if let Err(e) = decoded {
            if self.state == StreamState::Open {
                let error =
                    ApiError::upstream(format!("the provider sent a broken event stream: {e}"))
                        .with_code("invalid_upstream_response");
                self.fail(out, &error);
            }
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        if self.state != StreamState::Open {
            return;
        }
        if self.stopped && self.decoder.is_idle() {
            // `messageStop` came but no `metadata`: the answer is whole, its usage unknown.
            self.complete(out);
            return;
        }
        let error = ApiError::upstream("the provider's stream ended before it was complete")
            .with_code("stream_interrupted");
        self.fail(out, &error);
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }
}

// ---------------------------------------------------------------------------------------------
// Embeddings: InvokeModel with Titan or Cohere bodies

enum EmbeddingFamily {
    Titan,
    Cohere,
}

impl EmbeddingFamily {
    /// By model id; ids may carry a cross-region prefix (`us.`) or be ARNs.
    fn of(model: &str) -> Option<EmbeddingFamily> {
        if model.contains("amazon.titan-embed") {
            Some(EmbeddingFamily::Titan)
        } else if model.contains("cohere.embed") {
            Some(EmbeddingFamily::Cohere)
        } else {
            None
        }
    }
}

fn invoke_embeddings_request(
    req: &EmbeddingsRequest,
    raw: &[u8],
    model: &str,
    settings: &ModelSettings,
) -> Result<Value, ApiError> {
    let texts = req.input.texts().ok_or_else(|| {
        ApiError::invalid_param("input", "Bedrock embeds text; token ids are not supported")
    })?;
    let family = EmbeddingFamily::of(model).ok_or_else(|| {
        ApiError::invalid_param(
            "model",
            format!(
                "`{model}` is not a Bedrock embeddings model this gateway knows (amazon.titan-embed-*, cohere.embed-*)"
            ),
        )
    })?;
    let unsupported_dimensions = || {
        ApiError::invalid_param(
            "dimensions",
            format!("`dimensions` is not supported by `{model}`"),
        )
    };
    let mut body = Map::new();
    match family {
        EmbeddingFamily::Titan => {
            let [text] = texts.as_slice() else {
                return Err(ApiError::invalid_param(
                    "input",
                    "amazon.titan-embed models embed one text per request: send a single string, or use a cohere.embed model for batches",
                ));
            };
            body.insert("inputText".into(), json!(text));
            if let Some(d) = req.dimensions {
                if model.contains("titan-embed-text-v2") {
                    body.insert("dimensions".into(), json!(d));
                } else if !settings.drop_unsupported_params {
                    return Err(unsupported_dimensions());
                }
            }
        }
        EmbeddingFamily::Cohere => {
            body.insert("texts".into(), json!(texts));
            body.insert("input_type".into(), json!(cohere_input_type(raw)));
            if let Some(d) = req.dimensions {
                if model.contains("embed-v4") {
                    body.insert("output_dimension".into(), json!(d));
                } else if !settings.drop_unsupported_params {
                    return Err(unsupported_dimensions());
                }
            }
        }
    }
    Ok(Value::Object(body))
}

/// Cohere needs to know what the texts are for; clients may say so with `input_type`
/// (`search_query`, `classification`...), documents being the common case.
fn cohere_input_type(raw: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(default)]
        input_type: Option<String>,
    }
    serde_json::from_slice::<Probe>(raw)
        .ok()
        .and_then(|p| p.input_type)
        .unwrap_or_else(|| "search_document".to_owned())
}

#[derive(Deserialize)]
#[serde(untagged)]
enum InvokeEmbeddings {
    #[serde(rename_all = "camelCase")]
    Titan {
        embedding: Vec<f32>,
        #[serde(default)]
        input_text_token_count: u64,
    },
    Cohere {
        embeddings: CohereEmbeddings,
    },
}

/// Floats, or (with `embedding_types`, and on Embed v4) floats keyed by type.
#[derive(Deserialize)]
#[serde(untagged)]
enum CohereEmbeddings {
    Floats(Vec<Vec<f32>>),
    ByType { float: Vec<Vec<f32>> },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::testing::*;
    use crate::stream::eventstream::encode;
    use crate::testkit::test;

    const KEYS: &str = "kind: bedrock\nregion: us-east-1\naccess_key_id: AKIDEXAMPLE\nsecret_access_key: wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\n";
    const CLAUDE: &str = "anthropic.claude-3-5-sonnet-20240620-v1:0";

    fn converse_body(request: &str) -> Result<Value, ApiError> {
        converse_body_with(request, ModelSettings::default())
    }

    fn converse_body_with(request: &str, settings: ModelSettings) -> Result<Value, ApiError> {
        let p = provider(KEYS);
        let (req, raw) = chat_request(request);
        let up = p.chat_request(&req, raw.as_bytes(), &attempt_with(CLAUDE, settings))?;
        Ok(serde_json::from_slice(&up.body).unwrap())
    }

    #[test]
    fn config_problems_and_defaults() {
        assert_build_error("kind: bedrock", "providers.test: missing field `region`");
        assert_build_error(
            "kind: bedrock\nregion: Mars 1",
            "providers.test.region: `Mars 1` is not an AWS region name",
        );
        assert_build_error(
            "kind: bedrock\nregion: us-east-1\napi_key: k\naccess_key_id: a",
            "set either api_key",
        );
        assert_build_error(
            "kind: bedrock\nregion: us-east-1\nsecret: x",
            "unknown field `secret`",
        );

        let spec: ProviderSpec =
            serde_yaml::from_str("kind: bedrock\nregion: eu-west-3\naccess_key_id: {env: MY_KEY}")
                .unwrap();
        assert_eq!(
            crate::providers::env_names(&spec),
            ["MY_KEY", "AWS_SECRET_ACCESS_KEY"]
        );
        let spec: ProviderSpec = serde_yaml::from_str("kind: bedrock\nregion: eu-west-3").unwrap();
        assert_eq!(
            crate::providers::env_names(&spec),
            [
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_SESSION_TOKEN"
            ]
        );
        let spec: ProviderSpec =
            serde_yaml::from_str("kind: bedrock\nregion: eu-west-3\napi_key: {env: BR}").unwrap();
        assert_eq!(crate::providers::env_names(&spec), ["BR"]);

        let p = provider("kind: bedrock\nregion: eu-west-3");
        assert_eq!(p.endpoint().host, "bedrock-runtime.eu-west-3.amazonaws.com");
        assert!(p.endpoint().tls);
        // Credentials default to AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, unset here: the
        // configuration loads, the request fails.
        let (req, raw) = chat_request(r#"{"model":"m","messages":[]}"#);
        let err = p
            .chat_request(&req, raw.as_bytes(), &attempt(CLAUDE))
            .unwrap_err();
        assert_eq!(err.status, 500);
        assert_eq!(
            err.message,
            "provider `test` has no access_key_id configured"
        );
    }

    #[test]
    fn session_tokens_come_with_their_keys() {
        let env = |name: &str| match name {
            "AWS_ACCESS_KEY_ID" => Some("AKIDENV".to_owned()),
            "AWS_SECRET_ACCESS_KEY" => Some("env-secret".to_owned()),
            "AWS_SESSION_TOKEN" => Some("env-token".to_owned()),
            _ => None,
        };
        let cases = [
            (
                "kind: bedrock\nregion: us-east-1",
                Some("env-token"),
                "AKIDENV/",
            ),
            (KEYS, None, "AKIDEXAMPLE/"),
            (
                &format!("{KEYS}session_token: own-token"),
                Some("own-token"),
                "AKIDEXAMPLE/",
            ),
        ];
        let (req, raw) = chat_request(r#"{"model":"m","messages":[]}"#);
        for (yaml, token, credential) in cases {
            let spec: ProviderSpec = serde_yaml::from_str(yaml).unwrap();
            let setup = ProviderSetup {
                name: "test",
                spec: &spec,
                env: &env,
                path: "providers.test".into(),
            };
            let Ok(p) = build(&setup) else {
                panic!("{yaml}")
            };
            let up = p
                .chat_request(&req, raw.as_bytes(), &attempt(CLAUDE))
                .unwrap();
            let header = |name: &str| {
                up.headers
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.as_str())
            };
            assert_eq!(header("x-amz-security-token"), token, "{yaml}");
            assert!(
                header("authorization")
                    .unwrap()
                    .contains(&format!("Credential={credential}")),
                "{yaml}"
            );
        }
    }

    #[test]
    fn requests_are_signed_over_the_final_body() {
        let p = provider(&format!(
            "{KEYS}session_token: tok\nbase_url: http://mock:9000/bedrock\nheaders: {{X-Team: a}}"
        ));
        let (req, raw) = chat_request(
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}"#,
        );
        let up = p
            .chat_request(&req, raw.as_bytes(), &attempt(CLAUDE))
            .unwrap();
        assert_eq!(
            up.path,
            "/bedrock/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse-stream"
        );
        let expected = sigv4::sign(
            &sigv4::Request {
                method: "POST",
                host: "mock:9000",
                path: &up.path,
                query: &[],
                headers: &[],
                payload: &up.body,
            },
            &sigv4::Credentials {
                access_key_id: "AKIDEXAMPLE",
                secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                session_token: Some("tok"),
            },
            &sigv4::Scope {
                region: "us-east-1",
                service: "bedrock",
            },
            1_700_000_000_000,
        );
        let mut want = vec![("x-team".to_owned(), "a".to_owned())];
        want.extend(expected);
        assert_eq!(up.headers, want);
        let auth = &up.headers.last().unwrap().1;
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/us-east-1/bedrock/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature="), "{auth}");
        assert_eq!(
            up.headers[1],
            ("x-amz-date".to_owned(), "20231114T221320Z".to_owned())
        );

        // ARNs keep their slashes inside the one path segment.
        let up = p
            .chat_request(
                &req,
                raw.as_bytes(),
                &attempt("arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.meta.llama3-1-8b-instruct-v1:0"),
            )
            .unwrap();
        assert_eq!(up.path, "/bedrock/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.meta.llama3-1-8b-instruct-v1%3A0/converse-stream");

        let p = provider("kind: bedrock\nregion: us-west-2\napi_key: br-key");
        let up = p
            .chat_request(&req, raw.as_bytes(), &attempt(CLAUDE))
            .unwrap();
        assert_eq!(
            up.headers,
            [("authorization".to_owned(), "Bearer br-key".to_owned())]
        );
    }

    #[test]
    fn chat_requests_to_converse() {
        let cases = [
            (
                "system, text, inference config, stop sequences",
                r#"{"model":"m","messages":[{"role":"system","content":"Be brief."},
                    {"role":"developer","content":[{"type":"text","text":"No jokes."}]},
                    {"role":"user","content":"Hi"}],
                    "max_tokens":100,"temperature":0.5,"top_p":0.9,"stop":["END",""],"user":"u1"}"#,
                json!({
                    "system": [{"text": "Be brief."}, {"text": "No jokes."}],
                    "messages": [{"role": "user", "content": [{"text": "Hi"}]}],
                    "inferenceConfig": {"maxTokens": 100, "temperature": 0.5, "topP": 0.9, "stopSequences": ["END"]}
                }),
            ),
            (
                "images inline, consecutive user turns merged",
                r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"What is this?"},
                    {"type":"image_url","image_url":{"url":"data:image/jpeg;base64,/9j/AA=="}}]},
                    {"role":"user","content":"Be precise."}],"max_completion_tokens":7}"#,
                json!({
                    "messages": [{"role": "user", "content": [
                        {"text": "What is this?"},
                        {"image": {"format": "jpeg", "source": {"bytes": "/9j/AA=="}}},
                        {"text": "Be precise."}
                    ]}],
                    "inferenceConfig": {"maxTokens": 7}
                }),
            ),
            (
                "tools, forced tool, tool use and grouped tool results",
                r#"{"model":"m","messages":[{"role":"user","content":"Weather in Paris and Rome?"},
                    {"role":"assistant","content":"Checking.","tool_calls":[
                      {"id":"t1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}},
                      {"id":"t2","type":"function","function":{"name":"weather","arguments":""}}]},
                    {"role":"tool","tool_call_id":"t1","content":"18C"},
                    {"role":"tool","tool_call_id":"t2","content":[{"type":"text","text":"21C"}]},
                    {"role":"user","content":"Thanks"}],
                    "tools":[{"type":"function","function":{"name":"weather","description":"Current weather",
                      "parameters":{"type":"object","properties":{"city":{"type":"string"}}}}},
                      {"type":"function","function":{"name":"time"}}],
                    "tool_choice":{"type":"function","function":{"name":"weather"}}}"#,
                json!({
                    "messages": [
                        {"role": "user", "content": [{"text": "Weather in Paris and Rome?"}]},
                        {"role": "assistant", "content": [
                            {"text": "Checking."},
                            {"toolUse": {"toolUseId": "t1", "name": "weather", "input": {"city": "Paris"}}},
                            {"toolUse": {"toolUseId": "t2", "name": "weather", "input": {}}}
                        ]},
                        {"role": "user", "content": [
                            {"toolResult": {"toolUseId": "t1", "content": [{"text": "18C"}]}},
                            {"toolResult": {"toolUseId": "t2", "content": [{"text": "21C"}]}},
                            {"text": "Thanks"}
                        ]}
                    ],
                    "toolConfig": {
                        "tools": [
                            {"toolSpec": {"name": "weather", "description": "Current weather",
                              "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}}}}},
                            {"toolSpec": {"name": "time", "inputSchema": {"json": {"type": "object", "properties": {}}}}}
                        ],
                        "toolChoice": {"tool": {"name": "weather"}}
                    }
                }),
            ),
            (
                "required tool choice; auto is left out",
                r#"{"model":"m","messages":[{"role":"user","content":"x"}],"tool_choice":"required",
                    "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]}"#,
                json!({
                    "messages": [{"role": "user", "content": [{"text": "x"}]}],
                    "toolConfig": {"tools": [{"toolSpec": {"name": "f", "inputSchema": {"json": {"type": "object"}}}}],
                                   "toolChoice": {"any": {}}}
                }),
            ),
            (
                "tool_choice none without tool history offers no tools; native fields pass",
                r#"{"model":"m","messages":[{"role":"user","content":"x"}],"tool_choice":"none",
                    "tools":[{"type":"function","function":{"name":"f"}}],
                    "additionalModelRequestFields":{"top_k":5},"guardrailConfig":{"guardrailIdentifier":"g","guardrailVersion":"1"}}"#,
                json!({
                    "messages": [{"role": "user", "content": [{"text": "x"}]}],
                    "additionalModelRequestFields": {"top_k": 5},
                    "guardrailConfig": {"guardrailIdentifier": "g", "guardrailVersion": "1"}
                }),
            ),
        ];
        for (name, request, expected) in cases {
            assert_eq!(converse_body(request).unwrap(), expected, "{name}");
        }
    }

    #[test]
    fn default_max_tokens_and_dropped_params() {
        let settings = ModelSettings {
            max_tokens: Some(4096),
            drop_unsupported_params: true,
        };
        let body = converse_body_with(
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"n":1,"seed":3,"logprobs":true,"top_k":4,
                "response_format":{"type":"json_object"}}"#,
            settings,
        )
        .unwrap();
        assert_eq!(
            body,
            json!({"messages": [{"role": "user", "content": [{"text": "x"}]}],
                   "inferenceConfig": {"maxTokens": 4096}})
        );
    }

    #[test]
    fn unsupported_requests_name_the_parameter() {
        let cases = [
            (r#""n":2"#, "n"),
            (r#""logprobs":true"#, "logprobs"),
            (r#""presence_penalty":0.5"#, "presence_penalty"),
            (r#""seed":1"#, "seed"),
            (
                r#""response_format":{"type":"json_object"}"#,
                "response_format",
            ),
            (r#""reasoning_effort":"low""#, "reasoning_effort"),
            (r#""parallel_tool_calls":false"#, "parallel_tool_calls"),
            (r#""top_k":5"#, "top_k"),
            (
                r#""messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x/cat.png"}}]}]"#,
                "messages[0].content[0]",
            ),
            (
                r#""messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"data:image/bmp;base64,AA"}}]}]"#,
                "messages[0].content[1]",
            ),
            (
                r#""messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AA","format":"wav"}}]}]"#,
                "messages[0].content[0]",
            ),
            (
                r#""messages":[{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{oops"}}]}]"#,
                "messages[0].tool_calls[0].function.arguments",
            ),
            (
                r#""messages":[{"role":"tool","content":"r"}]"#,
                "messages[0].tool_call_id",
            ),
            (
                r#""messages":[{"role":"function","name":"f","content":"r"}]"#,
                "messages[0].role",
            ),
            (
                r#""tools":[{"type":"retrieval","function":{"name":"f"}}]"#,
                "tools[0].type",
            ),
            (
                r#""messages":[{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"a","content":"r"}],
                   "tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"none""#,
                "tool_choice",
            ),
        ];
        for (fields, param) in cases {
            let request = if fields.starts_with(r#""messages""#) {
                format!(r#"{{"model":"m",{fields}}}"#)
            } else {
                format!(r#"{{"model":"m","messages":[{{"role":"user","content":"x"}}],{fields}}}"#)
            };
            let err = converse_body(&request).unwrap_err();
            assert_eq!(err.status, 400, "{fields}");
            assert_eq!(
                err.param.as_deref(),
                Some(param),
                "{fields}: {}",
                err.message
            );
        }
    }

    #[test]
    fn converse_answers_to_chat_completions() {
        let cases = [
            (
                "text with cache usage",
                r#"{"output":{"message":{"role":"assistant","content":[{"text":"Hello"},{"text":" there"}]}},
                    "stopReason":"end_turn","usage":{"inputTokens":10,"outputTokens":3,"totalTokens":33,
                    "cacheReadInputTokens":15,"cacheWriteInputTokens":5},"metrics":{"latencyMs":120}}"#,
                json!({"id":"chatcmpl-req-1","object":"chat.completion","created":1_700_000_000,"model":"up-model",
                       "choices":[{"index":0,"message":{"role":"assistant","content":"Hello there"},
                                   "finish_reason":"stop","logprobs":null}],
                       "usage":{"prompt_tokens":30,"completion_tokens":3,"total_tokens":33,
                                "prompt_tokens_details":{"cached_tokens":15,"cache_creation_tokens":5},
                                "completion_tokens_details":{"reasoning_tokens":0}}}),
                Usage {
                    prompt_tokens: 30,
                    completion_tokens: 3,
                    cached_tokens: 15,
                    cache_write_tokens: 5,
                    reasoning_tokens: 0,
                },
            ),
            (
                "tool use with reasoning",
                r#"{"output":{"message":{"role":"assistant","content":[
                    {"reasoningContent":{"reasoningText":{"text":"Need weather.","signature":"sig"}}},
                    {"toolUse":{"toolUseId":"tooluse_1","name":"weather","input":{"city":"Paris"}}}]}},
                    "stopReason":"tool_use","usage":{"inputTokens":5,"outputTokens":8,"totalTokens":13}}"#,
                json!({"id":"chatcmpl-req-1","object":"chat.completion","created":1_700_000_000,"model":"up-model",
                       "choices":[{"index":0,"message":{"role":"assistant","content":null,
                                   "reasoning_content":"Need weather.",
                                   "tool_calls":[{"id":"tooluse_1","type":"function",
                                     "function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}}]},
                                   "finish_reason":"tool_calls","logprobs":null}],
                       "usage":{"prompt_tokens":5,"completion_tokens":8,"total_tokens":13,
                                "prompt_tokens_details":{"cached_tokens":0},
                                "completion_tokens_details":{"reasoning_tokens":0}}}),
                Usage {
                    prompt_tokens: 5,
                    completion_tokens: 8,
                    ..Usage::default()
                },
            ),
        ];
        let p = provider(KEYS);
        for (name, body, expected, usage) in cases {
            let t = p.chat_response(body.as_bytes(), &ctx(false)).unwrap();
            let got: Value = serde_json::from_slice(&t.body.unwrap()).unwrap();
            assert_eq!(got, expected, "{name}");
            assert_eq!(t.usage, Some(usage), "{name}");
        }
        for (stop, finish) in [
            ("max_tokens", "length"),
            ("stop_sequence", "stop"),
            ("guardrail_intervened", "content_filter"),
            ("content_filtered", "content_filter"),
        ] {
            let body = format!(
                r#"{{"output":{{"message":{{"role":"assistant","content":[{{"text":"x"}}]}}}},"stopReason":"{stop}"}}"#
            );
            let t = p.chat_response(body.as_bytes(), &ctx(false)).unwrap();
            let got: Value = serde_json::from_slice(&t.body.unwrap()).unwrap();
            assert_eq!(got["choices"][0]["finish_reason"], finish, "{stop}");
        }
        for broken in [
            &b"{\"output\":"[..],
            b"{\"stopReason\":\"end_turn\"}",
            b"[]",
        ] {
            let err = p.chat_response(broken, &ctx(false)).unwrap_err();
            assert_eq!(err.status, 502);
            assert_eq!(err.code.as_deref(), Some("invalid_upstream_response"));
        }
    }

    fn event(kind: &str, payload: &str) -> Vec<u8> {
        encode(
            &[
                (":event-type", kind),
                (":content-type", "application/json"),
                (":message-type", "event"),
            ],
            payload.as_bytes(),
        )
    }

    fn exception(kind: &str, message: &str) -> Vec<u8> {
        encode(
            &[
                (":exception-type", kind),
                (":content-type", "application/json"),
                (":message-type", "exception"),
            ],
            format!(r#"{{"message":"{message}"}}"#).as_bytes(),
        )
    }

    fn text_stream() -> Vec<u8> {
        text_events().concat()
    }

    fn text_events() -> [Vec<u8>; 6] {
        [
            event("messageStart", r#"{"p":"abc","role":"assistant"}"#),
            event(
                "contentBlockDelta",
                r#"{"contentBlockIndex":0,"delta":{"text":"Hel"},"p":"ab"}"#,
            ),
            event(
                "contentBlockDelta",
                r#"{"contentBlockIndex":0,"delta":{"text":"lo"}}"#,
            ),
            event("contentBlockStop", r#"{"contentBlockIndex":0}"#),
            event("messageStop", r#"{"stopReason":"end_turn"}"#),
            event(
                "metadata",
                r#"{"usage":{"inputTokens":4,"outputTokens":2,"totalTokens":9,"cacheReadInputTokens":3},"metrics":{"latencyMs":5}}"#,
            ),
        ]
    }

    fn tool_stream() -> Vec<u8> {
        [
            event("messageStart", r#"{"role":"assistant"}"#),
            event("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"reasoningContent":{"text":"Hmm."}}}"#),
            event("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"reasoningContent":{"signature":"s"}}}"#),
            event("contentBlockStop", r#"{"contentBlockIndex":0}"#),
            event("contentBlockStart", r#"{"contentBlockIndex":1,"start":{"toolUse":{"toolUseId":"tu_1","name":"weather"}}}"#),
            event("contentBlockDelta", r#"{"contentBlockIndex":1,"delta":{"toolUse":{"input":"{\"city\":"}}}"#),
            event("contentBlockDelta", r#"{"contentBlockIndex":1,"delta":{"toolUse":{"input":"\"Paris\"}"}}}"#),
            event("contentBlockStop", r#"{"contentBlockIndex":1}"#),
            event("contentBlockStart", r#"{"contentBlockIndex":2,"start":{"toolUse":{"toolUseId":"tu_2","name":"time"}}}"#),
            event("contentBlockDelta", r#"{"contentBlockIndex":2,"delta":{"toolUse":{"input":"{}"}}}"#),
            event("contentBlockStop", r#"{"contentBlockIndex":2}"#),
            event("messageStop", r#"{"stopReason":"tool_use"}"#),
            event("metadata", r#"{"usage":{"inputTokens":7,"outputTokens":9,"totalTokens":16}}"#),
        ]
        .concat()
    }

    const CHUNK: &str = r#"data: {"id":"chatcmpl-req-1","object":"chat.completion.chunk","created":1700000000,"model":"up-model","choices":"#;

    fn sse(choices: &[&str]) -> String {
        choices
            .iter()
            .map(|c| format!("{CHUNK}{c}}}\n\n"))
            .collect()
    }

    #[test]
    fn converse_streams_to_openai_chunks_at_every_split() {
        let role = r#"[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null,"logprobs":null}]"#;
        let text_chunks = sse(&[
            role,
            r#"[{"index":0,"delta":{"content":"Hel"},"finish_reason":null,"logprobs":null}]"#,
            r#"[{"index":0,"delta":{"content":"lo"},"finish_reason":null,"logprobs":null}]"#,
            r#"[{"index":0,"delta":{},"finish_reason":"stop","logprobs":null}]"#,
        ]);
        let usage_chunk = format!("{CHUNK}[],\"usage\":{{\"prompt_tokens\":7,\"completion_tokens\":2,\"total_tokens\":9,\"prompt_tokens_details\":{{\"cached_tokens\":3}},\"completion_tokens_details\":{{\"reasoning_tokens\":0}}}}}}\n\n");
        let tool_chunks = sse(&[
            role,
            r#"[{"index":0,"delta":{"reasoning_content":"Hmm."},"finish_reason":null,"logprobs":null}]"#,
            r#"[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"tu_1","type":"function","function":{"name":"weather","arguments":""}}]},"finish_reason":null,"logprobs":null}]"#,
            r#"[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]},"finish_reason":null,"logprobs":null}]"#,
            r#"[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]},"finish_reason":null,"logprobs":null}]"#,
            r#"[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"tu_2","type":"function","function":{"name":"time","arguments":""}}]},"finish_reason":null,"logprobs":null}]"#,
            r#"[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"{}"}}]},"finish_reason":null,"logprobs":null}]"#,
            r#"[{"index":0,"delta":{},"finish_reason":"tool_calls","logprobs":null}]"#,
        ]);
        let cases = [
            (
                "text",
                text_stream(),
                false,
                format!("{text_chunks}data: [DONE]\n\n"),
                9,
            ),
            (
                "text with usage",
                text_stream(),
                true,
                format!("{text_chunks}{usage_chunk}data: [DONE]\n\n"),
                9,
            ),
            (
                "tool calls",
                tool_stream(),
                false,
                format!("{tool_chunks}data: [DONE]\n\n"),
                16,
            ),
        ];
        for (name, input, include_usage, expected, total) in cases {
            let make = || ConverseStream::new(&ctx(include_usage));
            let (out, usage) = run_stream_whole(make, &input);
            assert_eq!(String::from_utf8_lossy(&out), expected, "{name}");
            assert_eq!(usage.unwrap().total_tokens(), total, "{name}");
            assert_every_split_matches(make, &input, expected.as_bytes());
        }
    }

    #[test]
    fn broken_streams_end_with_an_error_event() {
        let full = text_stream();
        let events = text_events();
        let before_stop = events[..4].concat();
        let without_metadata = events[..5].concat();
        let mut corrupt = text_stream();
        let last = corrupt.len() - 1;
        corrupt[last] ^= 0xff;
        let throttled = [
            event("messageStart", r#"{"role":"assistant"}"#),
            event(
                "contentBlockDelta",
                r#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#,
            ),
            exception("throttlingException", "Too many tokens, please wait."),
            event(
                "contentBlockDelta",
                r#"{"contentBlockIndex":0,"delta":{"text":"ignored"}}"#,
            ),
        ]
        .concat();
        let cases: [(&str, Vec<u8>, &str); 5] = [
            (
                "exception mid-stream",
                throttled,
                r#"data: {"error":{"message":"Too many tokens, please wait.","type":"rate_limit_error","param":null,"code":"throttlingException"}}"#,
            ),
            (
                "model stream error",
                [
                    event("messageStart", r#"{"role":"assistant"}"#),
                    exception("modelStreamErrorException", "boom"),
                ]
                .concat(),
                r#"data: {"error":{"message":"boom","type":"upstream_error","param":null,"code":"modelStreamErrorException"}}"#,
            ),
            (
                "cut before messageStop",
                before_stop,
                r#""code":"stream_interrupted"}}"#,
            ),
            (
                "cut inside a frame",
                full[..full.len() - 3].to_vec(),
                r#""code":"stream_interrupted"}}"#,
            ),
            (
                "bad checksum",
                corrupt,
                r#"broken event stream: an event's message checksum is wrong","type":"upstream_error","param":null,"code":"invalid_upstream_response"}}"#,
            ),
        ];
        for (name, input, ending) in cases {
            let make = || ConverseStream::new(&ctx(true));
            let (out, _) = run_stream_whole(make, &input);
            let text = String::from_utf8(out.clone()).unwrap();
            assert!(text.trim_end().ends_with(ending), "{name}: {text}");
            assert!(!text.contains("[DONE]"), "{name}: {text}");
            assert!(!text.contains("ignored"), "{name}: {text}");
            assert_every_split_matches(make, &input, &out);
        }
        // messageStop without metadata: complete, usage unknown.
        let (out, usage) = run_stream_whole(|| ConverseStream::new(&ctx(true)), &without_metadata);
        assert!(String::from_utf8(out)
            .unwrap()
            .ends_with("\"finish_reason\":\"stop\",\"logprobs\":null}]}\n\ndata: [DONE]\n\n"));
        assert_eq!(usage, None);
    }

    #[test]
    fn error_answers_keep_the_message() {
        let p = provider(KEYS);
        let cases = [
            (
                429,
                r#"{"message":"Too many requests, please wait before trying again."}"#,
                429,
                "rate_limit_error",
                "Too many requests, please wait before trying again.",
            ),
            (
                400,
                r#"{"message":"The provided model identifier is invalid."}"#,
                400,
                "invalid_request_error",
                "The provided model identifier is invalid.",
            ),
            (
                403,
                r#"{"Message":"The request signature we calculated does not match the signature you provided."}"#,
                403,
                "permission_error",
                "The request signature we calculated does not match the signature you provided.",
            ),
            (
                404,
                r#"{"message":"Model not found"}"#,
                404,
                "invalid_request_error",
                "Model not found",
            ),
            (
                408,
                r#"{"message":"Model timed out"}"#,
                504,
                "timeout_error",
                "Model timed out",
            ),
            (
                424,
                r#"{"message":"Model error"}"#,
                502,
                "upstream_error",
                "Model error",
            ),
            (
                500,
                r#"{"message":"Internal error"}"#,
                502,
                "upstream_error",
                "Internal error",
            ),
            (
                503,
                r#"{"message":"Service unavailable"}"#,
                503,
                "upstream_error",
                "Service unavailable",
            ),
            (
                502,
                "<html>bad gateway</html>",
                502,
                "upstream_error",
                "<html>bad gateway</html>",
            ),
        ];
        for (status, body, want_status, want_type, want_message) in cases {
            let e = p.error_response(status, body.as_bytes());
            assert!(
                p.chat_response(body.as_bytes(), &ctx(false)).is_err(),
                "{body}"
            );
            assert_eq!(
                (e.status, e.kind.type_name(), e.message.as_str()),
                (want_status, want_type, want_message),
                "{status}"
            );
        }
    }

    #[test]
    fn embeddings_requests_to_invoke_model() {
        let p = provider(KEYS);
        let cases = [
            (
                "amazon.titan-embed-text-v2:0",
                r#"{"model":"e","input":"hello","dimensions":256}"#,
                json!({"inputText": "hello", "dimensions": 256}),
            ),
            (
                "amazon.titan-embed-text-v1",
                r#"{"model":"e","input":["only one"]}"#,
                json!({"inputText": "only one"}),
            ),
            (
                "cohere.embed-english-v3",
                r#"{"model":"e","input":["a","b"]}"#,
                json!({"texts": ["a", "b"], "input_type": "search_document"}),
            ),
            (
                "us.cohere.embed-v4:0",
                r#"{"model":"e","input":"q","input_type":"search_query","dimensions":512}"#,
                json!({"texts": ["q"], "input_type": "search_query", "output_dimension": 512}),
            ),
        ];
        for (model, request, expected) in cases {
            let (req, raw) = embeddings_request(request);
            let up = p
                .embeddings_request(&req, raw.as_bytes(), &attempt(model))
                .unwrap();
            assert_eq!(
                up.path,
                format!("/model/{}/invoke", sigv4::uri_encode(model))
            );
            assert!(up.headers.iter().any(|(n, _)| n == "authorization"));
            let body: Value = serde_json::from_slice(&up.body).unwrap();
            assert_eq!(body, expected, "{model}");
        }
        let refused = [
            (
                "amazon.titan-embed-text-v2:0",
                r#"{"model":"e","input":["a","b"]}"#,
                "input",
            ),
            (
                "amazon.titan-embed-text-v1",
                r#"{"model":"e","input":"a","dimensions":8}"#,
                "dimensions",
            ),
            (
                "cohere.embed-english-v3",
                r#"{"model":"e","input":[1,2]}"#,
                "input",
            ),
            (
                "meta.llama3-8b-instruct-v1:0",
                r#"{"model":"e","input":"a"}"#,
                "model",
            ),
        ];
        for (model, request, param) in refused {
            let (req, raw) = embeddings_request(request);
            let err = p
                .embeddings_request(&req, raw.as_bytes(), &attempt(model))
                .unwrap_err();
            assert_eq!(
                (err.status, err.param.as_deref()),
                (400, Some(param)),
                "{model} {request}"
            );
        }
    }

    #[test]
    fn embeddings_answers_to_openai() {
        let p = provider(KEYS);
        let cases = [
            (
                r#"{"embedding":[0.5,-1.0],"inputTextTokenCount":3}"#,
                false,
                json!({"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.5,-1.0]}],
                       "model":"up-model","usage":{"prompt_tokens":3,"total_tokens":3}}),
            ),
            (
                r#"{"id":"x","embeddings":[[1.0],[2.0]],"texts":["a","b"],"response_type":"embeddings_floats"}"#,
                false,
                json!({"object":"list","data":[{"object":"embedding","index":0,"embedding":[1.0]},
                                                {"object":"embedding","index":1,"embedding":[2.0]}],
                       "model":"up-model","usage":{"prompt_tokens":0,"total_tokens":0}}),
            ),
            (
                r#"{"id":"x","embeddings":{"float":[[1.0]]},"response_type":"embeddings_by_type"}"#,
                true,
                json!({"object":"list","data":[{"object":"embedding","index":0,"embedding":"AACAPw=="}],
                       "model":"up-model","usage":{"prompt_tokens":0,"total_tokens":0}}),
            ),
        ];
        for (body, base64, expected) in cases {
            let mut c = ctx(false);
            c.base64_embeddings = base64;
            let t = p.embeddings_response(body.as_bytes(), &c).unwrap();
            let got: Value = serde_json::from_slice(&t.body.unwrap()).unwrap();
            assert_eq!(got, expected, "{body}");
        }
        let err = p
            .embeddings_response(b"{\"vectors\":[]}", &ctx(false))
            .unwrap_err();
        assert_eq!(err.status, 502);
    }
}
