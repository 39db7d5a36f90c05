//! Cohere v2: `/v2/chat` (messages, tools, typed SSE events) and `/v2/embed`, with
//! `Authorization: Bearer`.
//!
//! Choices made where the two APIs do not line up:
//! - `tool_plan` (the text Cohere writes before calling tools) and `thinking` content are
//!   returned as `reasoning_content`; an assistant turn that comes back with `tool_calls` and
//!   `reasoning_content` sends it as `tool_plan` again.
//! - `tool_choice` `required`/`none` become `REQUIRED`/`NONE`; a named tool cannot be forced
//!   (400 naming `tool_choice`, or left out with `drop_unsupported_params`).
//! - Finish `ERROR` answers 502 (a stream ends with an error event), `TIMEOUT` 504,
//!   `ERROR_TOXIC` finishes with `content_filter`.
//! - Status 402 (billing) becomes 429 `insufficient_quota` like OpenAI's, so fallbacks move on;
//!   498 (invalid token) becomes 401; 499 (cancelled, retryable per Cohere) and 503 become 503;
//!   other 5xx become 502.
//! - Usage reads `usage.tokens` (what the model processed), `billed_units` when absent.
//! - Citations are not translated; `user` and `metadata` (informational) are not sent.
//! - Cohere-only fields a client adds (`k`, `safety_mode`, `thinking`, `priority`) pass through.

use super::invalid_answer;
use super::{
    write_sse_error, write_sse_json, Attempt, Credential, Endpoint, Provider, ProviderSetup,
    ResponseContext, StreamTranslator, Translated, UpstreamRequest, SSE_DONE,
};
use crate::api::chat::UsageReport;
use crate::api::chat::{
    content_beside_tools, AssistantMessage, ChatChunk, ChatRequest, ChunkChoice, ContentPart,
    Delta, FinishReason, FunctionCallOut, FunctionDelta, Message, MessageContent, ResponseFormat,
    Role, ToolCallDelta, ToolCallOut, ToolChoice,
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
use serde_json::value::RawValue;
use serde_json::Value;
use std::collections::BTreeMap;

const KIND: &str = "cohere";

/// Request fields only Cohere knows, passed through when a client sends them.
const NATIVE_FIELDS: &[&str] = &["k", "safety_mode", "thinking", "priority"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CohereSettings {
    /// What the embedded texts are for; Cohere's v3+ embedding models require it.
    #[serde(default)]
    embed_input_type: EmbedInputType,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum EmbedInputType {
    #[default]
    SearchDocument,
    SearchQuery,
    Classification,
    Clustering,
}

pub struct Cohere {
    endpoint: Endpoint,
    api_key: Credential,
    headers: Vec<(String, Secret)>,
    embed_input_type: EmbedInputType,
}

pub fn build(setup: &ProviderSetup) -> Result<Box<dyn Provider>, Vec<Problem>> {
    let endpoint = setup
        .endpoint(Some("https://api.cohere.com"))
        .map_err(|p| vec![p])?;
    let settings: CohereSettings = setup.settings().map_err(|p| vec![p])?;
    if setup.spec.api_key.is_none() {
        return Err(vec![Problem::new(
            format!("{}.api_key", setup.path),
            "required for kind `cohere` (e.g. api_key: {env: COHERE_API_KEY})",
        )]);
    }
    Ok(Box::new(Cohere {
        endpoint,
        api_key: setup.api_key(),
        headers: setup.headers()?,
        embed_input_type: settings.embed_input_type,
    }))
}

impl Cohere {
    fn upstream_request<T: Serialize>(
        &self,
        api_path: &str,
        body: &T,
    ) -> Result<UpstreamRequest, ApiError> {
        let mut headers = Vec::with_capacity(self.headers.len() + 1);
        if let Some(key) = self.api_key.get()? {
            headers.push(("authorization".to_owned(), format!("Bearer {key}")));
        }
        for (name, value) in &self.headers {
            headers.push((name.clone(), value.expose().to_owned()));
        }
        Ok(UpstreamRequest {
            path: self.endpoint.path(api_path),
            headers,
            body: serde_json::to_vec(body).map_err(|e| ApiError::server(e.to_string()))?,
        })
    }
}

impl Provider for Cohere {
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
        let body = chat_body(req, attempt)?;
        self.upstream_request("/v2/chat", &body)
    }

    fn chat_response(&self, body: &[u8], ctx: &ResponseContext) -> Result<Translated, ApiError> {
        let answer: WireChatResponse =
            serde_json::from_slice(body).map_err(|e| invalid_answer(KIND, &e))?;
        let finish = finish_reason(answer.finish_reason.as_deref())?;
        let usage = answer.usage.map(WireUsage::normalise);
        let message = answer.message;
        let mut text = String::new();
        let mut reasoning = String::new();
        for part in message.content.unwrap_or_default() {
            match part {
                WireContent::Text { text: t } => text.push_str(&t),
                WireContent::Thinking { thinking } => reasoning.push_str(&thinking),
                WireContent::Other => {}
            }
        }
        if let Some(plan) = message.tool_plan.filter(|p| !p.is_empty()) {
            if !reasoning.is_empty() {
                reasoning.push_str("\n\n");
            }
            reasoning.push_str(&plan);
        }
        let tool_calls: Vec<ToolCallOut> = message
            .tool_calls
            .unwrap_or_default()
            .into_iter()
            .map(|call| ToolCallOut {
                id: call.id,
                kind: "function",
                function: FunctionCallOut {
                    name: call.function.name,
                    arguments: call.function.arguments.unwrap_or_else(|| "{}".to_owned()),
                },
            })
            .collect();
        let content = content_beside_tools(text, &tool_calls);
        let message = AssistantMessage::new(content, reasoning, tool_calls);
        Translated::one_choice(ctx, answer.id, None, message, finish, usage)
    }

    fn chat_stream(&self, ctx: &ResponseContext) -> Box<dyn StreamTranslator> {
        Box::new(CohereStream::new(ctx))
    }

    fn embeddings_request(
        &self,
        req: &EmbeddingsRequest,
        _raw: &[u8],
        attempt: &Attempt,
    ) -> Result<UpstreamRequest, ApiError> {
        let texts = req.input.texts().ok_or_else(|| {
            ApiError::invalid_param(
                "input",
                "Cohere embeds text only; send strings, not token ids",
            )
        })?;
        let body = EmbedBody {
            model: attempt.upstream_model,
            texts,
            input_type: self.embed_input_type,
            embedding_types: ["float"],
            output_dimension: req.dimensions,
        };
        self.upstream_request("/v2/embed", &body)
    }

    fn embeddings_response(
        &self,
        body: &[u8],
        ctx: &ResponseContext,
    ) -> Result<Translated, ApiError> {
        let answer: WireEmbedResponse =
            serde_json::from_slice(body).map_err(|e| invalid_answer(KIND, &e))?;
        let input_tokens = answer.meta.and_then(|m| {
            m.billed_units
                .and_then(|b| b.input_tokens)
                .or(m.tokens.and_then(|t| t.input_tokens))
        });
        let prompt_tokens = count(input_tokens);
        let data = answer
            .embeddings
            .float
            .into_iter()
            .zip(0u32..)
            .map(|(values, index)| Embedding {
                object: "embedding",
                index,
                embedding: EmbeddingVector::encode(values, ctx.base64_embeddings),
            })
            .collect();
        let response = EmbeddingsResponse {
            object: "list",
            data,
            model: ctx.upstream_model.to_owned(),
            usage: EmbeddingsUsage {
                prompt_tokens,
                total_tokens: prompt_tokens,
            },
        };
        let body = serde_json::to_vec(&response).map_err(|e| ApiError::server(e.to_string()))?;
        Ok(Translated {
            body: Some(body),
            usage: input_tokens.map(|_| Usage {
                prompt_tokens,
                ..Usage::default()
            }),
        })
    }

    fn error_response(&self, status: u16, body: &[u8]) -> ApiError {
        cohere_error(status, body)
    }
}

/// Cohere's `{"message": ...}` error (sometimes with an `id`) mapped to what OpenAI clients
/// expect; retriable states come out as 429/503 so Envoy falls back.
fn cohere_error(status: u16, body: &[u8]) -> ApiError {
    let message = super::error_message(body);
    let (kind, status, code) = match status {
        402 => (
            ErrorKind::InsufficientQuota,
            429,
            Some("insufficient_quota"),
        ),
        422 => (ErrorKind::InvalidRequest, 400, None),
        498 => (ErrorKind::Authentication, 401, Some("invalid_api_key")),
        499 => (ErrorKind::Upstream, 503, Some("request_cancelled")),
        503 => (ErrorKind::Upstream, 503, None),
        504 => (ErrorKind::Timeout, 504, None),
        500..=599 => (ErrorKind::Upstream, 502, None),
        _ => (ErrorKind::from_status(status), status, None),
    };
    let err = ApiError::new(kind, message).with_status(status);
    match code {
        Some(code) => err.with_code(code),
        None => err,
    }
}

// ---------------------------------------------------------------------------------------------
// Chat request

#[derive(Serialize)]
struct ChatBody<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    strict_tools: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<WireResponseFormat<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_sequences: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frequency_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    presence_penalty: Option<f64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    #[serde(flatten)]
    native: BTreeMap<&'a str, &'a Value>,
}

#[derive(Serialize)]
#[serde(tag = "role", rename_all = "lowercase")]
enum WireMessage<'a> {
    System {
        content: String,
    },
    User {
        content: UserContent<'a>,
    },
    Assistant {
        #[serde(skip_serializing_if = "Option::is_none")]
        content: Option<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<WireToolCall<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        tool_plan: Option<&'a str>,
    },
    Tool {
        tool_call_id: &'a str,
        content: String,
    },
}

#[derive(Serialize)]
#[serde(untagged)]
enum UserContent<'a> {
    Text(&'a str),
    Parts(Vec<WirePart<'a>>),
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WirePart<'a> {
    Text { text: &'a str },
    ImageUrl { image_url: WireImage<'a> },
}

#[derive(Serialize)]
struct WireImage<'a> {
    url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
}

#[derive(Serialize)]
struct WireToolCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunctionCall<'a>,
}

#[derive(Serialize)]
struct WireFunctionCall<'a> {
    name: &'a str,
    arguments: &'a str,
}

#[derive(Serialize)]
struct WireTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunction<'a>,
}

#[derive(Serialize)]
struct WireFunction<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    parameters: &'a Value,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireResponseFormat<'a> {
    JsonObject {
        #[serde(skip_serializing_if = "Option::is_none")]
        json_schema: Option<&'a Value>,
    },
}

/// Refuses a parameter Cohere cannot honour, unless the model is set to drop such parameters.
fn unsupported(attempt: &Attempt, param: &str, why: &str) -> Result<(), ApiError> {
    if attempt.settings.drop_unsupported_params {
        Ok(())
    } else {
        Err(ApiError::invalid_param(
            param,
            format!("`{param}` is not supported by Cohere: {why} (set drop_unsupported_params on the model to ignore it)"),
        ))
    }
}

fn chat_body<'a>(req: &'a ChatRequest, attempt: &'a Attempt) -> Result<ChatBody<'a>, ApiError> {
    if req.n.is_some_and(|n| n != 1) {
        unsupported(attempt, "n", "it returns one choice")?;
    }
    if req.logit_bias.as_ref().is_some_and(|b| !b.is_empty()) {
        unsupported(attempt, "logit_bias", "it has no token biasing")?;
    }
    if req.logprobs == Some(true) {
        unsupported(
            attempt,
            "logprobs",
            "its log probabilities are not translated",
        )?;
    }
    if req.top_logprobs.is_some() {
        unsupported(
            attempt,
            "top_logprobs",
            "its log probabilities are not translated",
        )?;
    }
    if req.parallel_tool_calls == Some(false) {
        unsupported(
            attempt,
            "parallel_tool_calls",
            "parallel tool calls cannot be turned off",
        )?;
    }
    if req.reasoning_effort.is_some() {
        unsupported(
            attempt,
            "reasoning_effort",
            "use Cohere's `thinking` field instead",
        )?;
    }
    let mut native = BTreeMap::new();
    for (name, value) in &req.extra {
        match NATIVE_FIELDS.iter().find(|f| **f == name.as_str()) {
            Some(field) => {
                native.insert(*field, value);
            }
            None => unsupported(attempt, name, "it has no such parameter")?,
        }
    }

    let tool_choice = match &req.tool_choice {
        None | Some(ToolChoice::Auto) => None,
        Some(ToolChoice::None) => Some("NONE"),
        Some(ToolChoice::Required) => Some("REQUIRED"),
        Some(ToolChoice::Function(_)) => {
            unsupported(
                attempt,
                "tool_choice",
                "a named tool cannot be forced, only `required` or `none`",
            )?;
            None
        }
    };

    let mut tools = Vec::new();
    let mut strict = false;
    for (i, tool) in req.tools.iter().flatten().enumerate() {
        if tool.kind != "function" {
            return Err(ApiError::invalid_param(
                format!("tools[{i}].type"),
                format!("Cohere accepts only function tools, not `{}`", tool.kind),
            ));
        }
        strict |= tool.function.strict == Some(true);
        tools.push(WireTool {
            kind: "function",
            function: WireFunction {
                name: &tool.function.name,
                description: tool.function.description.as_deref(),
                parameters: tool.function.parameters.as_ref().unwrap_or(&EMPTY_SCHEMA),
            },
        });
    }

    let response_format = match &req.response_format {
        None | Some(ResponseFormat::Text) => None,
        Some(ResponseFormat::JsonObject) => {
            Some(WireResponseFormat::JsonObject { json_schema: None })
        }
        Some(ResponseFormat::JsonSchema { json_schema }) => Some(WireResponseFormat::JsonObject {
            json_schema: json_schema.schema.as_ref(),
        }),
    };

    let messages = req
        .messages
        .iter()
        .enumerate()
        .map(|(i, m)| message(i, m))
        .collect::<Result<Vec<_>, _>>()?;

    Ok(ChatBody {
        model: attempt.upstream_model,
        messages,
        tools,
        strict_tools: strict.then_some(true),
        tool_choice,
        response_format,
        max_tokens: req.max_output_tokens().or(attempt.settings.max_tokens),
        temperature: req.temperature,
        p: req.top_p,
        stop_sequences: req.stop.as_ref().map(|s| s.0.as_slice()),
        seed: req.seed,
        frequency_penalty: req.frequency_penalty,
        presence_penalty: req.presence_penalty,
        stream: req.stream,
        native,
    })
}

/// Cohere requires a parameters schema; a tool without one takes no arguments.
static EMPTY_SCHEMA: std::sync::LazyLock<Value> =
    std::sync::LazyLock::new(|| serde_json::json!({"type": "object", "properties": {}}));

fn message(i: usize, m: &Message) -> Result<WireMessage<'_>, ApiError> {
    Ok(match m.role {
        Role::System | Role::Developer => WireMessage::System {
            content: text_only(i, m)?,
        },
        Role::User => WireMessage::User {
            content: user_content(i, m)?,
        },
        Role::Assistant => {
            let tool_calls: Vec<WireToolCall> = m
                .tool_calls
                .iter()
                .flatten()
                .map(|c| WireToolCall {
                    id: &c.id,
                    kind: "function",
                    function: WireFunctionCall {
                        name: &c.function.name,
                        arguments: &c.function.arguments,
                    },
                })
                .collect();
            let text = text_only(i, m)?;
            let tool_plan = if tool_calls.is_empty() {
                None
            } else {
                m.reasoning_content.as_deref().filter(|p| !p.is_empty())
            };
            WireMessage::Assistant {
                content: (!text.is_empty()).then_some(text),
                tool_calls,
                tool_plan,
            }
        }
        Role::Tool => WireMessage::Tool {
            tool_call_id: m.tool_call_id.as_deref().ok_or_else(|| {
                ApiError::invalid_param(
                    format!("messages[{i}].tool_call_id"),
                    "Cohere needs the `tool_call_id` a tool message answers",
                )
            })?,
            content: text_only(i, m)?,
        },
        Role::Function => {
            return Err(ApiError::invalid_param(
                format!("messages[{i}].role"),
                "Cohere does not accept the legacy `function` role; use `tool`",
            ))
        }
    })
}

/// The text of a message whose role takes only text.
fn text_only(i: usize, m: &Message) -> Result<String, ApiError> {
    if let Some(MessageContent::Parts(parts)) = &m.content {
        if let Some(j) = parts
            .iter()
            .position(|p| !matches!(p, ContentPart::Text { .. } | ContentPart::Refusal { .. }))
        {
            return Err(ApiError::invalid_param(
                format!("messages[{i}].content[{j}]"),
                "Cohere accepts only text in this message's role",
            ));
        }
    }
    Ok(m.text())
}

fn user_content(i: usize, m: &Message) -> Result<UserContent<'_>, ApiError> {
    let parts = match &m.content {
        None => return Ok(UserContent::Text("")),
        Some(MessageContent::Text(t)) => return Ok(UserContent::Text(t)),
        Some(MessageContent::Parts(parts)) => parts,
    };
    parts
        .iter()
        .enumerate()
        .map(|(j, part)| match part {
            ContentPart::Text { text } | ContentPart::Refusal { refusal: text } => {
                Ok(WirePart::Text { text })
            }
            ContentPart::ImageUrl { image_url } => Ok(WirePart::ImageUrl {
                image_url: WireImage {
                    url: &image_url.url,
                    detail: image_url.detail.as_deref(),
                },
            }),
            ContentPart::InputAudio { .. } | ContentPart::File { .. } => {
                Err(ApiError::invalid_param(
                    format!("messages[{i}].content[{j}]"),
                    "Cohere accepts text and images only",
                ))
            }
        })
        .collect::<Result<Vec<_>, _>>()
        .map(UserContent::Parts)
}

// ---------------------------------------------------------------------------------------------
// Chat answers

#[derive(Deserialize)]
struct WireChatResponse {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    finish_reason: Option<String>,
    message: WireAssistant,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct WireAssistant {
    #[serde(default)]
    content: Option<Vec<WireContent>>,
    #[serde(default)]
    tool_calls: Option<Vec<WireToolCallIn>>,
    #[serde(default)]
    tool_plan: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum WireContent {
    Text {
        text: String,
    },
    Thinking {
        thinking: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct WireToolCallIn {
    id: String,
    function: WireFunctionIn,
}

#[derive(Deserialize)]
struct WireFunctionIn {
    name: String,
    #[serde(default)]
    arguments: Option<String>,
}

/// Cohere's usage: counts may be written as floats.
#[derive(Debug, Default, Deserialize)]
struct WireUsage {
    #[serde(default)]
    tokens: Option<TokenCounts>,
    #[serde(default)]
    billed_units: Option<TokenCounts>,
    #[serde(default)]
    cached_tokens: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
struct TokenCounts {
    #[serde(default)]
    input_tokens: Option<f64>,
    #[serde(default)]
    output_tokens: Option<f64>,
}

impl WireUsage {
    fn normalise(self) -> Usage {
        let pick = |f: fn(&TokenCounts) -> Option<f64>| {
            self.tokens
                .as_ref()
                .and_then(f)
                .or_else(|| self.billed_units.as_ref().and_then(f))
        };
        let prompt_tokens = count(pick(|t| t.input_tokens));
        Usage {
            prompt_tokens,
            completion_tokens: count(pick(|t| t.output_tokens)),
            cached_tokens: count(self.cached_tokens).min(prompt_tokens),
            cache_write_tokens: 0,
            reasoning_tokens: 0,
        }
    }
}

/// A token count as Cohere writes it (a JSON number, possibly `12.0`); the cast saturates.
fn count(v: Option<f64>) -> u64 {
    v.map_or(0, |n| n.max(0.0) as u64)
}

/// Cohere's finish reason; the ones that mean the generation failed become errors.
fn finish_reason(reason: Option<&str>) -> Result<FinishReason, ApiError> {
    match reason {
        Some("MAX_TOKENS") => Ok(FinishReason::Length),
        Some("TOOL_CALL") => Ok(FinishReason::ToolCalls),
        Some("ERROR_TOXIC") => Ok(FinishReason::ContentFilter),
        Some("ERROR") => Err(ApiError::upstream(
            "the Cohere provider stopped generating because of an error",
        )
        .with_code("provider_error")),
        Some("TIMEOUT") => Err(ApiError::new(
            ErrorKind::Timeout,
            "the Cohere provider timed out while generating",
        )),
        // COMPLETE, STOP_SEQUENCE, and reasons added later.
        _ => Ok(FinishReason::Stop),
    }
}

// ---------------------------------------------------------------------------------------------
// Chat stream

#[derive(Deserialize)]
struct WireEvent<'a> {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default, borrow)]
    delta: Option<&'a RawValue>,
}

#[derive(Deserialize, Default)]
struct MessageDelta {
    #[serde(default)]
    message: Option<DeltaMessage>,
}

#[derive(Deserialize, Default)]
struct DeltaMessage {
    #[serde(default)]
    content: Option<DeltaContent>,
    #[serde(default)]
    tool_plan: Option<String>,
    #[serde(default)]
    tool_calls: Option<DeltaToolCall>,
}

#[derive(Deserialize, Default)]
struct DeltaContent {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    thinking: Option<String>,
}

#[derive(Deserialize, Default)]
struct DeltaToolCall {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<DeltaFunction>,
}

#[derive(Deserialize, Default)]
struct DeltaFunction {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

#[derive(Deserialize, Default)]
struct EndDelta {
    #[serde(default)]
    finish_reason: Option<String>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<String>,
}

const MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;

/// Cohere's typed events (`event: <type>` lines and a `type` field in the data) to OpenAI
/// chunks. Tool calls arrive one after another; each gets the next OpenAI index.
pub struct CohereStream {
    parser: SseParser,
    events: Vec<SseEvent>,
    id: String,
    created: u64,
    model: String,
    include_usage: bool,
    started: bool,
    tool_calls: u32,
    usage: Option<Usage>,
    done: bool,
    errored: bool,
}

impl CohereStream {
    fn new(ctx: &ResponseContext) -> Self {
        CohereStream {
            parser: SseParser::new(MAX_EVENT_BYTES),
            events: Vec::new(),
            id: format!("chatcmpl-{}", ctx.request_id),
            created: ctx.created,
            model: ctx.upstream_model.to_owned(),
            include_usage: ctx.include_usage,
            started: false,
            tool_calls: 0,
            usage: None,
            done: false,
            errored: false,
        }
    }

    fn chunk(&self, delta: Delta, finish_reason: Option<FinishReason>) -> ChatChunk {
        let choice = ChunkChoice {
            index: 0,
            delta,
            finish_reason,
            logprobs: None,
        };
        ChatChunk::new(
            self.id.clone(),
            self.created,
            self.model.clone(),
            vec![choice],
        )
    }

    /// Sends a delta, preceded by the role chunk when it is the first.
    fn send(&mut self, delta: Delta, out: &mut Vec<u8>) {
        self.start(out);
        write_sse_json(out, &self.chunk(delta, None));
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            self.started = true;
            let role = Delta {
                role: Some("assistant"),
                content: Some(String::new()),
                ..Delta::default()
            };
            write_sse_json(out, &self.chunk(role, None));
        }
    }

    fn fail(&mut self, error: ApiError, out: &mut Vec<u8>) {
        self.errored = true;
        write_sse_error(out, &error);
    }

    fn emit(&mut self, out: &mut Vec<u8>) {
        for event in std::mem::take(&mut self.events) {
            if self.done || self.errored {
                break;
            }
            if let Err(e) = self.event(&event, out) {
                self.fail(e, out);
            }
        }
    }

    fn event(&mut self, event: &SseEvent, out: &mut Vec<u8>) -> Result<(), ApiError> {
        let data = event.data.trim();
        if data.is_empty() || data == "[DONE]" {
            // `[DONE]` follows `message-end`, which already closed the client stream.
            return Ok(());
        }
        let parsed: WireEvent = serde_json::from_str(data).map_err(|e| invalid_answer(KIND, &e))?;
        let kind = parsed.kind.as_deref().or(event.event.as_deref());
        match kind {
            Some("message-start") => {
                if let Some(id) = parsed.id.filter(|_| !self.started) {
                    self.id = id;
                }
                self.start(out);
            }
            Some("content-start" | "content-delta" | "tool-plan-delta") => {
                let message = delta::<MessageDelta>(parsed.delta)?
                    .message
                    .unwrap_or_default();
                let content = message.content.unwrap_or_default();
                let reasoning = match (content.thinking, message.tool_plan) {
                    (Some(a), Some(b)) => Some(a + &b),
                    (a, b) => a.or(b),
                };
                let delta = Delta {
                    content: content.text.filter(|t| !t.is_empty()),
                    reasoning_content: reasoning.filter(|t| !t.is_empty()),
                    ..Delta::default()
                };
                if delta.content.is_some() || delta.reasoning_content.is_some() {
                    self.send(delta, out);
                } else {
                    self.start(out);
                }
            }
            Some("tool-call-start") => {
                let call = delta::<MessageDelta>(parsed.delta)?
                    .message
                    .and_then(|m| m.tool_calls)
                    .unwrap_or_default();
                let function = call.function.unwrap_or_default();
                let index = self.tool_calls;
                self.tool_calls += 1;
                self.send(
                    tool_delta(
                        index,
                        Some(call.id.unwrap_or_else(|| format!("call_{index}"))),
                        FunctionDelta {
                            name: Some(function.name.unwrap_or_default()),
                            arguments: Some(function.arguments.unwrap_or_default()),
                        },
                    ),
                    out,
                );
            }
            Some("tool-call-delta") => {
                let Some(index) = self.tool_calls.checked_sub(1) else {
                    return Err(ApiError::upstream(
                        "the Cohere provider streamed tool-call arguments before a tool call started",
                    )
                    .with_code("invalid_upstream_response"));
                };
                let arguments = delta::<MessageDelta>(parsed.delta)?
                    .message
                    .and_then(|m| m.tool_calls)
                    .and_then(|c| c.function)
                    .and_then(|f| f.arguments)
                    .filter(|a| !a.is_empty());
                if let Some(arguments) = arguments {
                    let function = FunctionDelta {
                        name: None,
                        arguments: Some(arguments),
                    };
                    self.send(tool_delta(index, None, function), out);
                }
            }
            Some("message-end") => {
                let end = delta::<EndDelta>(parsed.delta)?;
                if let Some(usage) = end.usage {
                    self.usage = Some(usage.normalise());
                }
                if let Some(message) = end.error.filter(|m| !m.is_empty()) {
                    return Err(ApiError::upstream(message).with_code("provider_error"));
                }
                let finish = finish_reason(end.finish_reason.as_deref())?;
                self.start(out);
                write_sse_json(out, &self.chunk(Delta::default(), Some(finish)));
                if self.include_usage {
                    if let Some(usage) = self.usage {
                        let mut chunk = self.chunk(Delta::default(), None);
                        chunk.choices.clear();
                        chunk.usage = Some(UsageReport::from(&usage));
                        write_sse_json(out, &chunk);
                    }
                }
                out.extend_from_slice(SSE_DONE);
                self.done = true;
            }
            // content-end, tool-call-end, citations, debug and events added later.
            _ => {}
        }
        Ok(())
    }
}

fn tool_delta(index: u32, id: Option<String>, function: FunctionDelta) -> Delta {
    Delta {
        tool_calls: Some(vec![ToolCallDelta {
            index,
            kind: id.as_ref().map(|_| "function"),
            id,
            function,
        }]),
        ..Delta::default()
    }
}

/// Parses an event's `delta` (absent or `null` is an empty one).
fn delta<'de, T: Deserialize<'de> + Default>(raw: Option<&'de RawValue>) -> Result<T, ApiError> {
    match raw {
        None => Ok(T::default()),
        Some(raw) if raw.get() == "null" => Ok(T::default()),
        Some(raw) => serde_json::from_str(raw.get()).map_err(|e| invalid_answer(KIND, &e)),
    }
}

impl StreamTranslator for CohereStream {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        if self.done || self.errored {
            return;
        }
        let events = &mut self.events;
        if self.parser.feed(chunk, |e| events.push(e)).is_err() {
            self.fail(
                ApiError::upstream("the provider sent a stream event larger than 4 MiB"),
                out,
            );
            return;
        }
        self.emit(out);
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        if !(self.done || self.errored) {
            let events = &mut self.events;
            self.parser.finish(|e| events.push(e));
            self.emit(out);
        }
        if !(self.done || self.errored) {
            self.fail(
                ApiError::upstream("the provider's stream ended before it was complete")
                    .with_code("stream_interrupted"),
                out,
            );
        }
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }
}

// ---------------------------------------------------------------------------------------------
// Embeddings

#[derive(Serialize)]
struct EmbedBody<'a> {
    model: &'a str,
    texts: Vec<&'a str>,
    input_type: EmbedInputType,
    embedding_types: [&'static str; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    output_dimension: Option<u32>,
}

#[derive(Deserialize)]
struct WireEmbedResponse {
    embeddings: WireEmbeddings,
    #[serde(default)]
    meta: Option<WireEmbedMeta>,
}

#[derive(Deserialize)]
struct WireEmbeddings {
    float: Vec<Vec<f32>>,
}

#[derive(Deserialize)]
struct WireEmbedMeta {
    #[serde(default)]
    billed_units: Option<TokenCounts>,
    #[serde(default)]
    tokens: Option<TokenCounts>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ModelSettings;
    use crate::providers::testing::*;
    use crate::testkit::test;
    use serde_json::json;

    const YAML: &str = "kind: cohere\napi_key: co-key";

    fn dropping() -> ModelSettings {
        ModelSettings {
            drop_unsupported_params: true,
            ..ModelSettings::default()
        }
    }

    fn translate(input: &str, settings: ModelSettings) -> Result<Value, ApiError> {
        let p = provider(YAML);
        let (req, raw) = chat_request(input);
        let up = p.chat_request(&req, raw.as_bytes(), &attempt_with("command-a", settings))?;
        Ok(serde_json::from_slice(&up.body).unwrap())
    }

    #[test]
    fn chat_requests() {
        let cases = [
            (
                "plain text and sampling parameters",
                json!({"model":"m","messages":[{"role":"system","content":"be brief"},
                    {"role":"developer","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},
                    {"role":"user","content":"hi","name":"ann"}],
                    "max_completion_tokens":50,"max_tokens":9,"temperature":0.2,"top_p":0.9,"stop":"END",
                    "seed":7,"frequency_penalty":0.1,"presence_penalty":0.3,"n":1,"user":"u1",
                    "metadata":{"x":"y"},"stream":true,"stream_options":{"include_usage":true}}),
                ModelSettings::default(),
                json!({"model":"command-a","messages":[{"role":"system","content":"be brief"},
                    {"role":"system","content":"a\n\nb"},{"role":"user","content":"hi"}],
                    "max_tokens":50,"temperature":0.2,"p":0.9,"stop_sequences":["END"],"seed":7,
                    "frequency_penalty":0.1,"presence_penalty":0.3,"stream":true}),
            ),
            (
                "images, tools, tool turns and a JSON schema",
                json!({"model":"m","messages":[
                    {"role":"user","content":[{"type":"text","text":"what is this?"},
                        {"type":"image_url","image_url":{"url":"data:image/png;base64,AAA","detail":"low"}},
                        {"type":"image_url","image_url":{"url":"https://x/cat.jpg"}}]},
                    {"role":"assistant","content":null,"reasoning_content":"I will look it up.",
                        "tool_calls":[{"id":"c1","type":"function","function":{"name":"lookup","arguments":"{\"q\":\"cat\"}"}}]},
                    {"role":"tool","tool_call_id":"c1","content":[{"type":"text","text":"{\"kind\":\"cat\"}"}]},
                    {"role":"assistant","content":"A cat.","reasoning_content":"not a tool turn"}],
                    "tools":[{"type":"function","function":{"name":"lookup","description":"Looks up",
                        "parameters":{"type":"object","properties":{"q":{"type":"string"}}},"strict":true}},
                        {"type":"function","function":{"name":"now"}}],
                    "tool_choice":"required","parallel_tool_calls":true,
                    "response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object"}}}}),
                ModelSettings {
                    max_tokens: Some(1024),
                    ..ModelSettings::default()
                },
                json!({"model":"command-a","messages":[
                    {"role":"user","content":[{"type":"text","text":"what is this?"},
                        {"type":"image_url","image_url":{"url":"data:image/png;base64,AAA","detail":"low"}},
                        {"type":"image_url","image_url":{"url":"https://x/cat.jpg"}}]},
                    {"role":"assistant","tool_plan":"I will look it up.",
                        "tool_calls":[{"id":"c1","type":"function","function":{"name":"lookup","arguments":"{\"q\":\"cat\"}"}}]},
                    {"role":"tool","tool_call_id":"c1","content":"{\"kind\":\"cat\"}"},
                    {"role":"assistant","content":"A cat."}],
                    "tools":[{"type":"function","function":{"name":"lookup","description":"Looks up",
                        "parameters":{"type":"object","properties":{"q":{"type":"string"}}}}},
                        {"type":"function","function":{"name":"now","parameters":{"type":"object","properties":{}}}}],
                    "strict_tools":true,"tool_choice":"REQUIRED",
                    "response_format":{"type":"json_object","json_schema":{"type":"object"}},
                    "max_tokens":1024}),
            ),
            (
                "json_object, tool_choice none, Cohere-only fields pass through",
                json!({"model":"m","messages":[{"role":"user","content":"x"}],
                    "response_format":{"type":"json_object"},"tool_choice":"none",
                    "tools":[{"type":"function","function":{"name":"f","parameters":{}}}],
                    "k":40,"safety_mode":"OFF","thinking":{"type":"disabled"}}),
                ModelSettings::default(),
                json!({"model":"command-a","messages":[{"role":"user","content":"x"}],
                    "response_format":{"type":"json_object"},"tool_choice":"NONE",
                    "tools":[{"type":"function","function":{"name":"f","parameters":{}}}],
                    "k":40,"safety_mode":"OFF","thinking":{"type":"disabled"}}),
            ),
            (
                "unsupported parameters dropped when configured",
                json!({"model":"m","messages":[{"role":"user","content":"x"}],"n":2,
                    "logit_bias":{"1":5},"logprobs":true,"top_logprobs":2,"parallel_tool_calls":false,
                    "reasoning_effort":"low","tool_choice":{"type":"function","function":{"name":"f"}},
                    "response_format":{"type":"text"},"service_tier":"auto"}),
                dropping(),
                json!({"model":"command-a","messages":[{"role":"user","content":"x"}]}),
            ),
        ];
        for (name, input, settings, expected) in cases {
            let got = translate(&input.to_string(), settings).unwrap();
            assert_eq!(got, expected, "{name}");
        }
    }

    #[test]
    fn chat_request_refusals() {
        let cases = [
            (json!({"n":3}), "n"),
            (json!({"logit_bias":{"1":5}}), "logit_bias"),
            (json!({"logprobs":true}), "logprobs"),
            (json!({"top_logprobs":1}), "top_logprobs"),
            (json!({"parallel_tool_calls":false}), "parallel_tool_calls"),
            (json!({"reasoning_effort":"high"}), "reasoning_effort"),
            (
                json!({"tool_choice":{"type":"function","function":{"name":"f"}}}),
                "tool_choice",
            ),
            (json!({"service_tier":"auto"}), "service_tier"),
            (
                json!({"tools":[{"type":"code_interpreter","function":{"name":"f"}}]}),
                "tools[0].type",
            ),
            (
                json!({"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"x","format":"wav"}}]}]}),
                "messages[0].content[0]",
            ),
            (
                json!({"messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"u"}}]}]}),
                "messages[0].content[0]",
            ),
            (
                json!({"messages":[{"role":"tool","content":"x"}]}),
                "messages[0].tool_call_id",
            ),
            (
                json!({"messages":[{"role":"function","name":"f","content":"x"}]}),
                "messages[0].role",
            ),
        ];
        for (fields, param) in cases {
            let mut input = json!({"model":"m","messages":[{"role":"user","content":"x"}]});
            for (k, v) in fields.as_object().unwrap() {
                input[k] = v.clone();
            }
            let err = translate(&input.to_string(), ModelSettings::default()).unwrap_err();
            assert_eq!(
                (err.status, err.param.as_deref()),
                (400, Some(param)),
                "{input}"
            );
            assert!(err.message.contains("Cohere"), "{}", err.message);
        }
    }

    #[test]
    fn upstream_path_and_auth() {
        let p = provider("kind: cohere\napi_key: {env: TEST_KEY}\nheaders: {X-Client-Name: sb}");
        assert_eq!(p.endpoint().authority(), "api.cohere.com");
        let (req, raw) =
            chat_request(r#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#);
        let up = p
            .chat_request(&req, raw.as_bytes(), &attempt("command-a"))
            .unwrap();
        assert_eq!(up.path, "/v2/chat");
        assert_eq!(
            up.headers,
            [
                ("authorization".to_string(), "Bearer env-secret".to_string()),
                ("x-client-name".to_string(), "sb".to_string())
            ]
        );
        let p = provider("kind: cohere\napi_key: k\nbase_url: http://mock:9/mock/status=429");
        let (req, raw) = embeddings_request(r#"{"model":"e","input":"x"}"#);
        let up = p
            .embeddings_request(&req, raw.as_bytes(), &attempt("embed-v4.0"))
            .unwrap();
        assert_eq!(up.path, "/mock/status=429/v2/embed");
    }

    #[test]
    fn config_problems() {
        assert_build_error(
            "kind: cohere",
            "providers.test.api_key: required for kind `cohere`",
        );
        assert_build_error(
            "kind: cohere\napi_key: k\nembed_input_type: search",
            "providers.test.embed_input_type: unknown variant `search`",
        );
        assert_build_error(
            "kind: cohere\napi_key: k\nregion: x",
            "unknown field `region`",
        );
    }

    fn respond(body: Value) -> Result<(Value, Option<Usage>), ApiError> {
        let p = provider(YAML);
        let t = p.chat_response(body.to_string().as_bytes(), &ctx(false))?;
        Ok((serde_json::from_slice(&t.body.unwrap()).unwrap(), t.usage))
    }

    #[test]
    fn chat_responses() {
        let usage = json!({"billed_units":{"input_tokens":5,"output_tokens":3},
            "tokens":{"input_tokens":12.0,"output_tokens":3},"cached_tokens":4});
        let report = json!({"prompt_tokens":12,"completion_tokens":3,"total_tokens":15,
            "prompt_tokens_details":{"cached_tokens":4},"completion_tokens_details":{"reasoning_tokens":0}});
        let cases = [
            (
                json!({"id":"co-1","finish_reason":"COMPLETE","usage":usage,
                    "message":{"role":"assistant","content":[{"type":"text","text":"Hello"},
                        {"type":"text","text":" there"}],"citations":[]}}),
                json!({"id":"co-1","object":"chat.completion","created":1_700_000_000u64,"model":"up-model",
                    "choices":[{"index":0,"message":{"role":"assistant","content":"Hello there"},
                    "finish_reason":"stop","logprobs":null}],"usage":report}),
            ),
            (
                json!({"id":"co-2","finish_reason":"TOOL_CALL",
                    "message":{"role":"assistant","tool_plan":"I will call f.",
                        "tool_calls":[{"id":"f_1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}},
                            {"id":"g_2","type":"function","function":{"name":"g"}}]}}),
                json!({"id":"co-2","object":"chat.completion","created":1_700_000_000u64,"model":"up-model",
                    "choices":[{"index":0,"message":{"role":"assistant","content":null,
                        "reasoning_content":"I will call f.","tool_calls":[
                        {"id":"f_1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}},
                        {"id":"g_2","type":"function","function":{"name":"g","arguments":"{}"}}]},
                    "finish_reason":"tool_calls","logprobs":null}]}),
            ),
            (
                json!({"finish_reason":"MAX_TOKENS","message":{"content":[{"type":"thinking","thinking":"hmm"},
                    {"type":"text","text":"Cut"}]},"usage":{"billed_units":{"input_tokens":2,"output_tokens":1}}}),
                json!({"id":"chatcmpl-req-1","object":"chat.completion","created":1_700_000_000u64,"model":"up-model",
                    "choices":[{"index":0,"message":{"role":"assistant","content":"Cut","reasoning_content":"hmm"},
                    "finish_reason":"length","logprobs":null}],
                    "usage":{"prompt_tokens":2,"completion_tokens":1,"total_tokens":3,
                    "prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}),
            ),
            (
                json!({"id":"co-4","finish_reason":"STOP_SEQUENCE","message":{"content":null}}),
                json!({"id":"co-4","object":"chat.completion","created":1_700_000_000u64,"model":"up-model",
                    "choices":[{"index":0,"message":{"role":"assistant","content":""},
                    "finish_reason":"stop","logprobs":null}]}),
            ),
            (
                json!({"id":"co-5","finish_reason":"ERROR_TOXIC","message":{"content":[]}}),
                json!({"id":"co-5","object":"chat.completion","created":1_700_000_000u64,"model":"up-model",
                    "choices":[{"index":0,"message":{"role":"assistant","content":""},
                    "finish_reason":"content_filter","logprobs":null}]}),
            ),
        ];
        for (input, expected) in cases {
            let (got, _) = respond(input.clone()).unwrap();
            assert_eq!(got, expected, "{input}");
        }
        let (_, usage) =
            respond(json!({"finish_reason":"COMPLETE","message":{},"usage":usage})).unwrap();
        assert_eq!(
            usage,
            Some(Usage {
                prompt_tokens: 12,
                completion_tokens: 3,
                cached_tokens: 4,
                ..Usage::default()
            })
        );
    }

    #[test]
    fn broken_or_failed_chat_responses() {
        let p = provider(YAML);
        let cases: [(&[u8], u16, Option<&str>); 5] = [
            (b"{\"id\":", 502, Some("invalid_upstream_response")),
            (b"{\"id\":\"x\"}", 502, Some("invalid_upstream_response")),
            (
                br#"{"message":{"tool_calls":[{"id":"c","function":{}}]}}"#,
                502,
                Some("invalid_upstream_response"),
            ),
            (
                br#"{"finish_reason":"ERROR","message":{}}"#,
                502,
                Some("provider_error"),
            ),
            (br#"{"finish_reason":"TIMEOUT","message":{}}"#, 504, None),
        ];
        for (body, status, code) in cases {
            let err = p.chat_response(body, &ctx(false)).unwrap_err();
            assert_eq!(
                (err.status, err.code.as_deref()),
                (status, code),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    /// (Cohere status, status, type, code) a client sees; Cohere's message is kept.
    type ErrorCase = (u16, u16, &'static str, Option<&'static str>);

    #[test]
    fn errors() {
        let cases: [ErrorCase; 11] = [
            (400, 400, "invalid_request_error", None),
            (401, 401, "authentication_error", None),
            (402, 429, "insufficient_quota", Some("insufficient_quota")),
            (404, 404, "invalid_request_error", None),
            (422, 400, "invalid_request_error", None),
            (429, 429, "rate_limit_error", None),
            (498, 401, "authentication_error", Some("invalid_api_key")),
            (499, 503, "upstream_error", Some("request_cancelled")),
            (500, 502, "upstream_error", None),
            (503, 503, "upstream_error", None),
            (504, 504, "timeout_error", None),
        ];
        let p = provider(YAML);
        for (status, want_status, want_type, want_code) in cases {
            let body = json!({"id": "e1", "message": format!("cohere says {status}")});
            let e = p.error_response(status, body.to_string().as_bytes());
            let as_answer = p.chat_response(body.to_string().as_bytes(), &ctx(false));
            assert!(as_answer.is_err(), "{body}");
            assert_eq!(
                (e.status, e.kind.type_name(), e.code.as_deref()),
                (want_status, want_type, want_code),
                "status {status}"
            );
            assert_eq!(e.message, format!("cohere says {status}"));
        }
        assert_eq!(
            p.error_response(503, b"<html>busy</html>").message,
            "<html>busy</html>"
        );
    }

    fn stream(include_usage: bool) -> impl Fn() -> CohereStream {
        move || CohereStream::new(&ctx(include_usage))
    }

    /// Cohere's framing: an `event:` line and the type repeated in the data, then `[DONE]`.
    const TEXT_STREAM: &str = "event: message-start\n\
data: {\"id\":\"co-9\",\"type\":\"message-start\",\"delta\":{\"message\":{\"role\":\"assistant\",\"content\":[],\"tool_plan\":\"\",\"tool_calls\":[],\"citations\":[]}}}\n\n\
event: content-start\n\
data: {\"type\":\"content-start\",\"index\":0,\"delta\":{\"message\":{\"content\":{\"type\":\"text\",\"text\":\"\"}}}}\n\n\
event: content-delta\n\
data: {\"type\":\"content-delta\",\"index\":0,\"delta\":{\"message\":{\"content\":{\"text\":\"Hel\"}}}}\n\n\
event: content-delta\n\
data: {\"type\":\"content-delta\",\"index\":0,\"delta\":{\"message\":{\"content\":{\"text\":\"lo \\u00e9\\\"\"}}}}\n\n\
event: content-end\n\
data: {\"type\":\"content-end\",\"index\":0}\n\n\
event: message-end\n\
data: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"COMPLETE\",\"usage\":{\"billed_units\":{\"input_tokens\":3,\"output_tokens\":2},\"tokens\":{\"input_tokens\":9,\"output_tokens\":2}}}}\n\n\
data: [DONE]\n\n";

    const CHUNK: &str = "data: {\"id\":\"co-9\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"up-model\",\"choices\":[{\"index\":0,";

    #[test]
    fn text_stream_at_every_split() {
        for include_usage in [false, true] {
            let mut expected = [
                "\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null,\"logprobs\":null}]}\n\n",
                "\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null,\"logprobs\":null}]}\n\n",
                "\"delta\":{\"content\":\"lo é\\\"\"},\"finish_reason\":null,\"logprobs\":null}]}\n\n",
                "\"delta\":{},\"finish_reason\":\"stop\",\"logprobs\":null}]}\n\n",
            ]
            .map(|tail| format!("{CHUNK}{tail}"))
            .concat();
            if include_usage {
                expected.push_str("data: {\"id\":\"co-9\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"up-model\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,\"total_tokens\":11,\"prompt_tokens_details\":{\"cached_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":0}}}\n\n");
            }
            expected.push_str("data: [DONE]\n\n");
            assert_every_split_matches(
                stream(include_usage),
                TEXT_STREAM.as_bytes(),
                expected.as_bytes(),
            );
            let (_, usage) = run_stream_whole(stream(include_usage), TEXT_STREAM.as_bytes());
            assert_eq!(usage.unwrap().total_tokens(), 11);
        }
    }

    #[test]
    fn type_from_data_or_event_line_alone() {
        let expected = run_stream_whole(stream(false), TEXT_STREAM.as_bytes()).0;
        let data_only: String = TEXT_STREAM
            .lines()
            .filter(|l| !l.starts_with("event:"))
            .map(|l| format!("{l}\n"))
            .collect();
        let names_only = TEXT_STREAM
            .replace(",\"type\":\"message-start\"", "")
            .replace("{\"type\":\"", "{\"kind\":\"");
        for input in [data_only, names_only] {
            assert_every_split_matches(stream(false), input.as_bytes(), &expected);
        }
    }

    const TOOL_STREAM: &str = "event: message-start\n\
data: {\"id\":\"co-t\",\"type\":\"message-start\",\"delta\":{\"message\":{\"role\":\"assistant\"}}}\n\n\
event: tool-plan-delta\n\
data: {\"type\":\"tool-plan-delta\",\"delta\":{\"message\":{\"tool_plan\":\"I will check\"}}}\n\n\
event: tool-call-start\n\
data: {\"type\":\"tool-call-start\",\"index\":0,\"delta\":{\"message\":{\"tool_calls\":{\"id\":\"get_weather_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}}}}\n\n\
event: tool-call-delta\n\
data: {\"type\":\"tool-call-delta\",\"index\":0,\"delta\":{\"message\":{\"tool_calls\":{\"function\":{\"arguments\":\"{\\\"city\\\":\"}}}}}\n\n\
event: tool-call-delta\n\
data: {\"type\":\"tool-call-delta\",\"index\":0,\"delta\":{\"message\":{\"tool_calls\":{\"function\":{\"arguments\":\"\\\"Paris\\\"}\"}}}}}\n\n\
event: tool-call-end\n\
data: {\"type\":\"tool-call-end\",\"index\":0}\n\n\
event: tool-call-start\n\
data: {\"type\":\"tool-call-start\",\"index\":1,\"delta\":{\"message\":{\"tool_calls\":{\"id\":\"now_2\",\"type\":\"function\",\"function\":{\"name\":\"now\",\"arguments\":\"{}\"}}}}}\n\n\
event: tool-call-end\n\
data: {\"type\":\"tool-call-end\",\"index\":1}\n\n\
event: message-end\n\
data: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"TOOL_CALL\",\"usage\":{\"tokens\":{\"input_tokens\":20,\"output_tokens\":8}}}}\n\n\
data: [DONE]\n\n";

    #[test]
    fn tool_call_stream_at_every_split() {
        let head = "data: {\"id\":\"co-t\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"up-model\",\"choices\":[{\"index\":0,";
        let expected = [
            "\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null,\"logprobs\":null}]}\n\n",
            "\"delta\":{\"reasoning_content\":\"I will check\"},\"finish_reason\":null,\"logprobs\":null}]}\n\n",
            "\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"get_weather_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}]},\"finish_reason\":null,\"logprobs\":null}]}\n\n",
            "\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"city\\\":\"}}]},\"finish_reason\":null,\"logprobs\":null}]}\n\n",
            "\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"Paris\\\"}\"}}]},\"finish_reason\":null,\"logprobs\":null}]}\n\n",
            "\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"now_2\",\"type\":\"function\",\"function\":{\"name\":\"now\",\"arguments\":\"{}\"}}]},\"finish_reason\":null,\"logprobs\":null}]}\n\n",
            "\"delta\":{},\"finish_reason\":\"tool_calls\",\"logprobs\":null}]}\n\n",
        ]
        .map(|tail| format!("{head}{tail}"))
        .concat()
            + "data: [DONE]\n\n";
        assert_every_split_matches(stream(false), TOOL_STREAM.as_bytes(), expected.as_bytes());
        let (_, usage) = run_stream_whole(stream(false), TOOL_STREAM.as_bytes());
        assert_eq!(usage.unwrap().total_tokens(), 28);
    }

    #[test]
    fn thinking_streams_as_reasoning() {
        let input = "data: {\"type\":\"content-start\",\"index\":0,\"delta\":{\"message\":{\"content\":{\"type\":\"thinking\",\"thinking\":\"\"}}}}\n\n\
data: {\"type\":\"content-delta\",\"index\":0,\"delta\":{\"message\":{\"content\":{\"thinking\":\"hmm\"}}}}\n\n\
data: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"MAX_TOKENS\"}}\n\n";
        let head = "data: {\"id\":\"chatcmpl-req-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"up-model\",\"choices\":[{\"index\":0,";
        let expected = [
            "\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null,\"logprobs\":null}]}\n\n",
            "\"delta\":{\"reasoning_content\":\"hmm\"},\"finish_reason\":null,\"logprobs\":null}]}\n\n",
            "\"delta\":{},\"finish_reason\":\"length\",\"logprobs\":null}]}\n\n",
        ]
        .map(|tail| format!("{head}{tail}"))
        .concat()
            + "data: [DONE]\n\n";
        assert_every_split_matches(stream(true), input.as_bytes(), expected.as_bytes());
    }

    /// Streams that must end with an error event (with this code) and no `[DONE]`.
    #[test]
    fn failed_streams_end_with_an_error_event() {
        let cut = &TEXT_STREAM[..TEXT_STREAM.find("event: content-end").unwrap()];
        let without_end = TEXT_STREAM
            .replace("event: message-end", "event: nothing")
            .replace("\"type\":\"message-end\"", "\"type\":\"nothing\"");
        let cases = [
            (cut.to_string(), "stream_interrupted"),
            (without_end, "stream_interrupted"),
            (
                "data: {\"type\":\"content-delta\",\"delta\":{\"message\":{\"content\":{\"text\":\"x\"}}}}\n\n\
data: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"ERROR\",\"error\":\"model overloaded\"}}\n\n".to_string(),
                "provider_error",
            ),
            (
                "data: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"ERROR\"}}\n\n".to_string(),
                "provider_error",
            ),
            (
                "data: {\"type\":\"content-delta\",\"delta\":{\"message\":{\"content\":{\"text\":5}}}}\n\n".to_string(),
                "invalid_upstream_response",
            ),
            ("data: {not json\n\n".to_string(), "invalid_upstream_response"),
            (
                "data: {\"type\":\"tool-call-delta\",\"delta\":{\"message\":{\"tool_calls\":{\"function\":{\"arguments\":\"{\"}}}}}\n\n".to_string(),
                "invalid_upstream_response",
            ),
        ];
        for (input, code) in cases {
            let (out, _) = run_stream_whole(stream(false), input.as_bytes());
            assert_every_split_matches(stream(false), input.as_bytes(), &out);
            let text = String::from_utf8(out).unwrap();
            assert!(!text.contains("[DONE]"), "{text}");
            let last = text.trim_end().rsplit("\n\n").next().unwrap();
            let error: Value = serde_json::from_str(last.strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(error["error"]["code"], code, "{input}");
        }
        let (out, _) = run_stream_whole(
            stream(false),
            b"data: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"ERROR\",\"error\":\"model overloaded\"}}\n\n",
        );
        assert!(String::from_utf8(out)
            .unwrap()
            .contains("\"message\":\"model overloaded\""));
    }

    #[test]
    fn embeddings() {
        let p = provider("kind: cohere\napi_key: k\nembed_input_type: search_query");
        let (req, raw) =
            embeddings_request(r#"{"model":"e","input":["a","b"],"dimensions":256,"user":"u"}"#);
        let up = p
            .embeddings_request(&req, raw.as_bytes(), &attempt("embed-v4.0"))
            .unwrap();
        assert_eq!(up.path, "/v2/embed");
        let body: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(
            body,
            json!({"model":"embed-v4.0","texts":["a","b"],"input_type":"search_query",
                "embedding_types":["float"],"output_dimension":256})
        );
        let (req, raw) = embeddings_request(r#"{"model":"e","input":"a"}"#);
        let up = provider(YAML)
            .embeddings_request(&req, raw.as_bytes(), &attempt("embed-v4.0"))
            .unwrap();
        let body: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(body["input_type"], "search_document");
        assert_eq!(body["texts"], json!(["a"]));

        let (req, raw) = embeddings_request(r#"{"model":"e","input":[1,2]}"#);
        let err = p
            .embeddings_request(&req, raw.as_bytes(), &attempt("embed-v4.0"))
            .unwrap_err();
        assert_eq!((err.status, err.param.as_deref()), (400, Some("input")));

        let answer = br#"{"id":"x","response_type":"embeddings_by_type","texts":["a","b"],
            "embeddings":{"float":[[1.0,0.5],[0.25,-2]]},
            "meta":{"api_version":{"version":"2"},"billed_units":{"input_tokens":4}}}"#;
        let cases = [
            (false, json!([[1.0, 0.5], [0.25, -2.0]])),
            (true, json!(["AACAPwAAAD8=", "AACAPgAAAMA="])),
        ];
        for (base64, vectors) in cases {
            let mut c = ctx(false);
            c.base64_embeddings = base64;
            let t = p.embeddings_response(answer, &c).unwrap();
            let got: Value = serde_json::from_slice(&t.body.unwrap()).unwrap();
            assert_eq!(
                got,
                json!({"object":"list","model":"up-model","usage":{"prompt_tokens":4,"total_tokens":4},
                    "data":[{"object":"embedding","index":0,"embedding":vectors[0]},
                        {"object":"embedding","index":1,"embedding":vectors[1]}]})
            );
            assert_eq!(t.usage.unwrap().prompt_tokens, 4);
        }
        for broken in [&b"{"[..], br#"{"embeddings":{"int8":[[1]]}}"#] {
            let err = p.embeddings_response(broken, &ctx(false)).unwrap_err();
            assert_eq!(err.status, 502);
        }
    }
}
