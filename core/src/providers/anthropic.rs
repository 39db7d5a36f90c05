//! Anthropic's Messages API: `POST {base}/v1/messages` with `x-api-key` and `anthropic-version`.
//!
//! The translation is kept apart from auth and paths so that other hosts of Claude (Vertex AI's
//! `rawPredict`, Bedrock's `InvokeModel`) reuse it as is:
//! - [`messages_request`]: an OpenAI chat request → the Messages body (model and body-level
//!   `anthropic_version` optional, as those hosts want them elsewhere or spelled differently);
//! - [`chat_completion`]: a Messages JSON answer → an OpenAI chat completion and its usage;
//! - [`MessagesEvents`]: Messages stream events, one JSON document at a time → OpenAI chunks
//!   (for hosts with another framing); [`MessagesStream`] adds Anthropic's SSE framing;
//! - [`anthropic_error`]: an Anthropic error answer → the OpenAI error a client expects.
//!
//! Where the two APIs differ, this is what happens:
//! - `reasoning_effort` → `thinking` with a budget of 1024 (minimal, low), 4096 (medium),
//!   16384 (high) or 32768 (xhigh) tokens; `none` leaves thinking off. Anthropic wants
//!   `max_tokens` above the budget: a smaller cap becomes budget + cap, so the visible answer
//!   keeps the room the client asked for. A native `thinking` object is passed through as is.
//! - `response_format: json_schema` → a tool named after the schema that the model is made to
//!   call; its input comes back as the message `content` (a JSON string), finish reason `stop`.
//!   With thinking on (Anthropic then refuses forced tools) the tool is offered and asked for
//!   in the system prompt instead.
//! - `response_format: json_object` → a system instruction to answer with one JSON object only.
//! - Thinking is not replayed from earlier turns: OpenAI clients cannot hand back the block
//!   signatures Anthropic requires, so an echoed `reasoning_content` is left out, and a request
//!   that continues a tool loop (it ends with tool results) runs without thinking.
//! - Tool calls in the history of a request without `tools`: the tools used are declared with
//!   an open schema and `tool_choice: none`, as Anthropic refuses tool blocks without tools.

use super::openai::invalid_answer;
use super::{
    error_message, write_sse_error, write_sse_json, Credential, Endpoint, Provider, ProviderSetup,
    ResponseContext, StreamTranslator, Translated, UpstreamRequest, SSE_DONE,
};
use crate::api::chat::UsageReport;
use crate::api::chat::{
    AssistantMessage, ChatChunk, ChatRequest, ChunkChoice, ContentPart, Delta, FinishReason,
    FunctionCallOut, FunctionDelta, ImageSource, JsonSchemaFormat, Message, MessageContent,
    ResponseFormat, Role, ToolCallDelta, ToolCallOut, ToolChoice,
};
use crate::api::{ApiError, ErrorKind};
use crate::config::secret::Secret;
use crate::config::{ModelSettings, Problem};
use crate::stream::sse::{SseEvent, SseParser};
use crate::usage::Usage;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
const KIND: &str = "anthropic";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnthropicSettings {
    #[serde(default = "default_version")]
    anthropic_version: String,
    /// Beta features, sent as one comma-separated `anthropic-beta` header.
    #[serde(default)]
    beta: Vec<String>,
    /// Output cap when neither the client nor the model's `max_tokens` gives one.
    #[serde(default = "default_max_tokens")]
    default_max_tokens: u32,
}

fn default_version() -> String {
    "2023-06-01".into()
}

fn default_max_tokens() -> u32 {
    4096
}

/// The first-party Anthropic API.
pub struct Anthropic {
    endpoint: Endpoint,
    api_key: Credential,
    headers: Vec<(String, Secret)>,
    version: String,
    beta: Option<String>,
    options: MessagesOptions,
}

pub fn build(setup: &ProviderSetup) -> Result<Box<dyn Provider>, Vec<Problem>> {
    let mut problems = Vec::new();
    let endpoint = setup
        .endpoint(Some(DEFAULT_BASE_URL))
        .map_err(|p| vec![p])?;
    let settings: AnthropicSettings = setup.settings().map_err(|p| vec![p])?;
    if setup.spec.api_key.is_none() {
        problems.push(Problem::new(
            format!("{}.api_key", setup.path),
            "required for kind `anthropic` (e.g. api_key: {env: ANTHROPIC_API_KEY})",
        ));
    }
    if settings.default_max_tokens == 0 {
        problems.push(Problem::new(
            format!("{}.default_max_tokens", setup.path),
            "must be at least 1",
        ));
    }
    let headers = match setup.headers() {
        Ok(h) => h,
        Err(mut p) => {
            problems.append(&mut p);
            Vec::new()
        }
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Box::new(Anthropic {
        endpoint,
        api_key: setup.api_key(),
        headers,
        version: settings.anthropic_version,
        beta: (!settings.beta.is_empty()).then(|| settings.beta.join(",")),
        options: MessagesOptions {
            default_max_tokens: settings.default_max_tokens,
        },
    }))
}

impl Provider for Anthropic {
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
        attempt: &super::Attempt,
    ) -> Result<UpstreamRequest, ApiError> {
        let model = attempt.upstream_model;
        let body = messages_request(req, Some(model), attempt.settings, &self.options)?;
        let body = serde_json::to_vec(&body).map_err(|e| ApiError::server(e.to_string()))?;
        let mut headers = Vec::with_capacity(self.headers.len() + 3);
        if let Some(key) = self.api_key.get()? {
            headers.push(("x-api-key".to_owned(), key.to_owned()));
        }
        headers.push(("anthropic-version".to_owned(), self.version.clone()));
        if let Some(beta) = &self.beta {
            headers.push(("anthropic-beta".to_owned(), beta.clone()));
        }
        for (name, value) in &self.headers {
            headers.push((name.clone(), value.expose().to_owned()));
        }
        Ok(UpstreamRequest {
            path: self.endpoint.path("/v1/messages"),
            headers,
            body,
        })
    }

    fn chat_response(&self, body: &[u8], ctx: &ResponseContext) -> Result<Translated, ApiError> {
        chat_completion(KIND, body, ctx)
    }

    fn chat_stream(&self, ctx: &ResponseContext) -> Box<dyn StreamTranslator> {
        Box::new(MessagesStream::new(KIND, ctx))
    }

    fn error_response(&self, status: u16, body: &[u8]) -> ApiError {
        anthropic_error(status, body)
    }
}

// ---------------------------------------------------------------------------------------------
// Request: OpenAI chat → Messages

/// Translation settings that come from the provider's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessagesOptions {
    /// `max_tokens` when neither the client nor the model settings give one.
    pub default_max_tokens: u32,
}

/// A Messages API request body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessagesRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Body-level version, for hosts that want it there (Vertex, Bedrock); the first-party
    /// API takes it as a header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anthropic_version: Option<String>,
    pub max_tokens: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub system: Vec<Block>,
    pub messages: Vec<Turn>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stop_sequences: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<RequestMetadata>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolSpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<AnthropicToolChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking: Option<Value>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
}

/// One conversation turn; consecutive messages of one role are merged into one turn.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Turn {
    pub role: &'static str,
    pub content: Vec<Block>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    Text {
        text: String,
    },
    Image {
        source: Source,
    },
    Document {
        source: Source,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
    ToolResult {
        tool_use_id: String,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        content: Vec<Block>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Source {
    Base64 { media_type: String, data: String },
    Url { url: String },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestMetadata {
    pub user_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolSpec {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub input_schema: Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AnthropicToolChoice {
    Auto {
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        disable_parallel_tool_use: bool,
    },
    Any {
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        disable_parallel_tool_use: bool,
    },
    Tool {
        name: String,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        disable_parallel_tool_use: bool,
    },
    None,
}

const JSON_OBJECT_INSTRUCTION: &str =
    "Answer with one valid JSON object and nothing else: no prose, no code fences.";

/// Builds the Messages body for an OpenAI chat request.
///
/// Contract: `model` is put in the body when given; `anthropic_version` is left `None` for
/// the caller to set. Parameters Anthropic cannot honour are a 400 naming them, or are left
/// out when `settings.drop_unsupported_params` is set. Nothing here depends on auth or path.
pub fn messages_request(
    req: &ChatRequest,
    model: Option<&str>,
    settings: &ModelSettings,
    options: &MessagesOptions,
) -> Result<MessagesRequest, ApiError> {
    refuse_unsupported(req, settings)?;
    let (mut system, messages) = conversation(&req.messages)?;
    let mut thinking = thinking(req)?;
    if continues_tool_loop(&messages) {
        // Anthropic wants the signed thinking blocks of the turn being continued back, and
        // OpenAI clients cannot give them: this step of the loop runs without thinking.
        thinking = None;
    }
    let thinking_on = thinking
        .as_ref()
        .is_some_and(|t| t.get("type").and_then(Value::as_str) != Some("disabled"));
    let mut max_tokens = req
        .max_output_tokens()
        .or(settings.max_tokens)
        .unwrap_or(options.default_max_tokens);
    let budget = thinking
        .as_ref()
        .and_then(|t| t.get("budget_tokens"))
        .and_then(Value::as_u64)
        .and_then(|b| u32::try_from(b).ok());
    if let Some(budget) = budget {
        if max_tokens <= budget {
            max_tokens = budget.saturating_add(max_tokens);
        }
    }

    let mut tools = tools(req)?;
    let mut tool_choice = if tools.is_empty() {
        None
    } else {
        tool_choice(req, settings, thinking_on)?
    };
    match &req.response_format {
        Some(ResponseFormat::JsonObject) => system.push(Block::Text {
            text: JSON_OBJECT_INSTRUCTION.to_owned(),
        }),
        Some(ResponseFormat::JsonSchema { json_schema }) => {
            tool_choice = Some(answer_tool(
                req,
                json_schema,
                thinking_on,
                &mut tools,
                &mut system,
            )?);
        }
        Some(ResponseFormat::Text) | None => {}
    }

    if tools.is_empty() {
        // Anthropic refuses tool blocks in a conversation without tools: declare the ones
        // used, and let none be called, as the client offered none.
        tools = tools_in_history(&messages);
        if !tools.is_empty() {
            tool_choice = Some(AnthropicToolChoice::None);
        }
    }

    let sampling = sampling(req, settings, thinking_on)?;
    let user = req
        .extra
        .get("safety_identifier")
        .and_then(Value::as_str)
        .or(req.user.as_deref());
    Ok(MessagesRequest {
        model: model.map(str::to_owned),
        anthropic_version: None,
        max_tokens,
        system,
        messages,
        temperature: sampling.temperature,
        top_p: sampling.top_p,
        top_k: sampling.top_k,
        stop_sequences: req.stop.as_ref().map(|s| s.0.clone()).unwrap_or_default(),
        metadata: user.map(|u| RequestMetadata {
            user_id: u.to_owned(),
        }),
        tools,
        tool_choice,
        thinking,
        stream: req.stream,
    })
}

/// `response_format: json_schema` as a tool named after the schema, whose input is the
/// answer; returns the tool_choice that makes the model answer through it.
fn answer_tool(
    req: &ChatRequest,
    json_schema: &JsonSchemaFormat,
    thinking_on: bool,
    tools: &mut Vec<ToolSpec>,
    system: &mut Vec<Block>,
) -> Result<AnthropicToolChoice, ApiError> {
    let name = json_schema.name.clone();
    if tools.iter().any(|t| t.name == name) {
        return Err(ApiError::invalid_param(
            "response_format",
            format!(
                "The json_schema name `{name}` is also the name of a tool; rename one of them."
            ),
        ));
    }
    let has_client_tools = !tools.is_empty();
    tools.push(ToolSpec {
        name: name.clone(),
        description: Some(json_schema.description.clone().unwrap_or_else(|| {
            "Give your final answer by calling this tool with it as the input.".to_owned()
        })),
        input_schema: json_schema
            .schema
            .clone()
            .unwrap_or_else(|| json!({"type": "object"})),
    });
    let disable_parallel_tool_use = req.parallel_tool_calls == Some(false);
    if thinking_on {
        // Anthropic refuses forced tools while thinking: ask instead.
        system.push(Block::Text {
            text: format!("Give your final answer by calling the `{name}` tool."),
        });
        return Ok(AnthropicToolChoice::Auto {
            disable_parallel_tool_use,
        });
    }
    Ok(match &req.tool_choice {
        _ if !has_client_tools => AnthropicToolChoice::Tool {
            name,
            disable_parallel_tool_use,
        },
        Some(ToolChoice::Function(f)) => AnthropicToolChoice::Tool {
            name: f.clone(),
            disable_parallel_tool_use,
        },
        Some(ToolChoice::None) => AnthropicToolChoice::Tool {
            name,
            disable_parallel_tool_use,
        },
        // The model must call a tool: one of the client's, or the answer tool.
        _ => AnthropicToolChoice::Any {
            disable_parallel_tool_use,
        },
    })
}

/// A 400 naming a parameter Anthropic cannot honour, or `Ok` when the model's settings say
/// to leave such parameters out.
fn unsupported(settings: &ModelSettings, param: &str, why: &str) -> Result<(), ApiError> {
    if settings.drop_unsupported_params {
        Ok(())
    } else {
        Err(ApiError::invalid_param(
            param,
            format!("Unsupported parameter `{param}`: {why}."),
        ))
    }
}

const NOT_ON_ANTHROPIC: &str = "Anthropic models do not support it";

/// Parameters with no Anthropic counterpart. Values that change nothing (`n: 1`,
/// `logprobs: false`, zero penalties, `store: false`) pass.
fn refuse_unsupported(req: &ChatRequest, settings: &ModelSettings) -> Result<(), ApiError> {
    let checks = [
        ("n", req.n.is_some_and(|n| n > 1)),
        (
            "presence_penalty",
            req.presence_penalty.is_some_and(|v| v != 0.0),
        ),
        (
            "frequency_penalty",
            req.frequency_penalty.is_some_and(|v| v != 0.0),
        ),
        (
            "logit_bias",
            req.logit_bias.as_ref().is_some_and(|m| !m.is_empty()),
        ),
        ("logprobs", req.logprobs == Some(true)),
        ("top_logprobs", req.top_logprobs.is_some_and(|n| n > 0)),
        ("seed", req.seed.is_some()),
        (
            "metadata",
            req.metadata.as_ref().is_some_and(|m| !m.is_empty()),
        ),
    ];
    for (param, used) in checks {
        if used {
            unsupported(settings, param, NOT_ON_ANTHROPIC)?;
        }
    }
    for (key, value) in &req.extra {
        let harmless = match key.as_str() {
            "top_k" | "thinking" | "safety_identifier" => true,
            "store" => matches!(value, Value::Null | Value::Bool(false)),
            _ => value.is_null(),
        };
        if !harmless {
            unsupported(settings, key, NOT_ON_ANTHROPIC)?;
        }
    }
    Ok(())
}

/// `thinking` as Anthropic takes it: a native object the client sent, or one derived from
/// `reasoning_effort`.
fn thinking(req: &ChatRequest) -> Result<Option<Value>, ApiError> {
    match req.extra.get("thinking") {
        Some(v @ Value::Object(_)) => return Ok(Some(v.clone())),
        Some(Value::Null) | None => {}
        Some(_) => {
            return Err(ApiError::invalid_param(
                "thinking",
                "`thinking` must be an object such as {\"type\": \"enabled\", \"budget_tokens\": 2048}.",
            ))
        }
    }
    let budget = match req.reasoning_effort.as_deref() {
        None | Some("none") => return Ok(None),
        Some("minimal" | "low") => 1024,
        Some("medium") => 4096,
        Some("high") => 16384,
        Some("xhigh") => 32768,
        Some(other) => {
            return Err(ApiError::invalid_param(
                "reasoning_effort",
                format!(
                    "Invalid value for `reasoning_effort`: `{other}` (expected none, minimal, low, medium, high or xhigh)."
                ),
            ))
        }
    };
    Ok(Some(json!({"type": "enabled", "budget_tokens": budget})))
}

/// Sampling parameters within what Anthropic accepts.
struct Sampling {
    temperature: Option<f64>,
    top_p: Option<f64>,
    top_k: Option<u64>,
}

/// temperature, top_p and top_k within what Anthropic accepts (0..1, and nothing but
/// top_p ≥ 0.95 while thinking).
fn sampling(
    req: &ChatRequest,
    settings: &ModelSettings,
    thinking_on: bool,
) -> Result<Sampling, ApiError> {
    const WITH_THINKING: &str = "Anthropic models do not accept it together with reasoning";
    let temperature = match req.temperature {
        // 1 is Anthropic's default: harmless with thinking, so left out rather than refused.
        Some(t) if thinking_on && (t - 1.0).abs() < f64::EPSILON => None,
        Some(_) if thinking_on => {
            unsupported(settings, "temperature", WITH_THINKING)?;
            None
        }
        Some(t) if t > 1.0 => {
            unsupported(
                settings,
                "temperature",
                "Anthropic models accept values from 0 to 1",
            )?;
            None
        }
        t => t,
    };
    let top_p = match req.top_p {
        Some(p) if thinking_on && p < 0.95 => {
            unsupported(
                settings,
                "top_p",
                "with reasoning, Anthropic models accept values from 0.95 to 1",
            )?;
            None
        }
        p => p,
    };
    let top_k = match req.extra.get("top_k") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let k = v.as_u64().ok_or_else(|| {
                ApiError::invalid_param("top_k", "`top_k` must be a positive integer.")
            })?;
            if thinking_on {
                unsupported(settings, "top_k", WITH_THINKING)?;
                None
            } else {
                Some(k)
            }
        }
    };
    Ok(Sampling {
        temperature,
        top_p,
        top_k,
    })
}

/// Which content parts a message of some role may carry.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Allowed {
    TextOnly,
    TextAndImages,
    Everything,
}

/// Where a message sits in the request, for error messages: formatted only when one is made.
#[derive(Clone, Copy)]
struct MessageAt(usize);

impl std::fmt::Display for MessageAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "messages[{}]", self.0)
    }
}

/// `system`/`developer` messages become the top-level system prompt; the rest become turns
/// that alternate between user and assistant. Tool results go first in their user turn, as
/// Anthropic requires; a user message right after them joins that same turn.
fn conversation(messages: &[Message]) -> Result<(Vec<Block>, Vec<Turn>), ApiError> {
    let mut system = Vec::new();
    let mut turns: Vec<Turn> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let path = MessageAt(i);
        let (role, blocks) = match m.role {
            Role::System | Role::Developer => {
                system.extend(content_blocks(m.content.as_ref(), path, Allowed::TextOnly)?);
                continue;
            }
            Role::User => (
                "user",
                content_blocks(m.content.as_ref(), path, Allowed::Everything)?,
            ),
            Role::Assistant => ("assistant", assistant_blocks(m, path)?),
            Role::Tool => ("user", vec![tool_result(m, path)?]),
            Role::Function => {
                return Err(ApiError::invalid_param(
                    format!("{path}.role"),
                    "Messages with role `function` are not supported; use `tool` messages.",
                ))
            }
        };
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some(turn) if turn.role == role => turn.content.extend(blocks),
            _ => turns.push(Turn {
                role,
                content: blocks,
            }),
        }
    }
    for turn in &mut turns {
        if turn.role == "user" {
            let (mut first, rest): (Vec<Block>, Vec<Block>) = std::mem::take(&mut turn.content)
                .into_iter()
                .partition(|b| matches!(b, Block::ToolResult { .. }));
            first.extend(rest);
            turn.content = first;
        }
    }
    Ok((system, turns))
}

fn content_blocks(
    content: Option<&MessageContent>,
    path: MessageAt,
    allowed: Allowed,
) -> Result<Vec<Block>, ApiError> {
    let parts = match content {
        None => return Ok(Vec::new()),
        // Anthropic refuses empty text blocks.
        Some(MessageContent::Text(t)) if t.is_empty() => return Ok(Vec::new()),
        Some(MessageContent::Text(t)) => return Ok(vec![Block::Text { text: t.clone() }]),
        Some(MessageContent::Parts(parts)) => parts,
    };
    let mut blocks = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        let at = || format!("{path}.content[{j}]");
        let refuse = |what: &str| {
            Err(ApiError::invalid_param(
                at(),
                format!("{what} are not supported here by Anthropic models."),
            ))
        };
        match part {
            ContentPart::Text { text } | ContentPart::Refusal { refusal: text } => {
                if !text.is_empty() {
                    blocks.push(Block::Text { text: text.clone() });
                }
            }
            ContentPart::ImageUrl { image_url } => {
                if allowed == Allowed::TextOnly {
                    return refuse("Image parts");
                }
                blocks.push(Block::Image {
                    source: match image_url.source() {
                        ImageSource::Url(url) => Source::Url {
                            url: url.to_owned(),
                        },
                        ImageSource::Base64 { media_type, data } => Source::Base64 {
                            media_type: media_type.to_owned(),
                            data: data.to_owned(),
                        },
                    },
                });
            }
            ContentPart::File { file } => {
                if allowed != Allowed::Everything {
                    return refuse("File parts");
                }
                blocks.push(document(file, &at())?);
            }
            ContentPart::InputAudio { .. } => return refuse("Audio parts"),
        }
    }
    Ok(blocks)
}

/// A `file` part with inline PDF data → a document block.
fn document(file: &Map<String, Value>, path: &str) -> Result<Block, ApiError> {
    let data_url = file.get("file_data").and_then(Value::as_str);
    let pdf = data_url
        .and_then(|u| u.strip_prefix("data:application/pdf;base64,"))
        .filter(|d| !d.is_empty());
    match pdf {
        Some(data) => Ok(Block::Document {
            source: Source::Base64 {
                media_type: "application/pdf".to_owned(),
                data: data.to_owned(),
            },
        }),
        None => Err(ApiError::invalid_param(
            format!("{path}.file"),
            "Anthropic models take files as `file_data` with a base64 PDF data URL (data:application/pdf;base64,...).",
        )),
    }
}

fn assistant_blocks(m: &Message, path: MessageAt) -> Result<Vec<Block>, ApiError> {
    let mut blocks = content_blocks(m.content.as_ref(), path, Allowed::TextOnly)?;
    for (j, call) in m.tool_calls.iter().flatten().enumerate() {
        let args = call.function.arguments.trim();
        let input = if args.is_empty() {
            Value::Object(Map::new())
        } else {
            match serde_json::from_str::<Value>(args) {
                Ok(v @ Value::Object(_)) => v,
                _ => {
                    return Err(ApiError::invalid_param(
                        format!("{path}.tool_calls[{j}].function.arguments"),
                        "Tool call arguments must be a JSON object.",
                    ))
                }
            }
        };
        blocks.push(Block::ToolUse {
            id: call.id.clone(),
            name: call.function.name.clone(),
            input,
        });
    }
    Ok(blocks)
}

fn tool_result(m: &Message, path: MessageAt) -> Result<Block, ApiError> {
    let id = m.tool_call_id.as_ref().ok_or_else(|| {
        ApiError::invalid_param(
            format!("{path}.tool_call_id"),
            format!("Missing required parameter: `{path}.tool_call_id`."),
        )
    })?;
    Ok(Block::ToolResult {
        tool_use_id: id.clone(),
        content: content_blocks(m.content.as_ref(), path, Allowed::TextAndImages)?,
    })
}

fn tools(req: &ChatRequest) -> Result<Vec<ToolSpec>, ApiError> {
    let mut out = Vec::new();
    for (i, tool) in req.tools.iter().flatten().enumerate() {
        if tool.kind != "function" {
            return Err(ApiError::invalid_param(
                format!("tools[{i}].type"),
                format!(
                    "Tools of type `{}` are not supported by Anthropic models; use `function`.",
                    tool.kind
                ),
            ));
        }
        out.push(ToolSpec {
            name: tool.function.name.clone(),
            description: tool.function.description.clone(),
            input_schema: tool
                .function
                .parameters
                .clone()
                .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
        });
    }
    Ok(out)
}

/// True when the conversation ends with tool results answering the assistant's tool calls:
/// the request continues that assistant turn.
fn continues_tool_loop(turns: &[Turn]) -> bool {
    let mut last_two = turns.iter().rev();
    let (Some(user), Some(assistant)) = (last_two.next(), last_two.next()) else {
        return false;
    };
    user.role == "user"
        && matches!(user.content.first(), Some(Block::ToolResult { .. }))
        && assistant
            .content
            .iter()
            .any(|b| matches!(b, Block::ToolUse { .. }))
}

/// The tools an earlier assistant turn called, declared with an open schema.
fn tools_in_history(turns: &[Turn]) -> Vec<ToolSpec> {
    let mut out: Vec<ToolSpec> = Vec::new();
    for block in turns.iter().flat_map(|t| &t.content) {
        if let Block::ToolUse { name, .. } = block {
            if !out.iter().any(|t| &t.name == name) {
                out.push(ToolSpec {
                    name: name.clone(),
                    description: None,
                    input_schema: json!({"type": "object"}),
                });
            }
        }
    }
    out
}

fn tool_choice(
    req: &ChatRequest,
    settings: &ModelSettings,
    thinking_on: bool,
) -> Result<Option<AnthropicToolChoice>, ApiError> {
    let parallel_off = req.parallel_tool_calls == Some(false);
    let choice = match &req.tool_choice {
        None if !parallel_off => return Ok(None),
        None | Some(ToolChoice::Auto) => AnthropicToolChoice::Auto {
            disable_parallel_tool_use: parallel_off,
        },
        Some(ToolChoice::None) => AnthropicToolChoice::None,
        Some(ToolChoice::Required) => AnthropicToolChoice::Any {
            disable_parallel_tool_use: parallel_off,
        },
        Some(ToolChoice::Function(name)) => AnthropicToolChoice::Tool {
            name: name.clone(),
            disable_parallel_tool_use: parallel_off,
        },
    };
    let forced = matches!(
        choice,
        AnthropicToolChoice::Any { .. } | AnthropicToolChoice::Tool { .. }
    );
    if forced && thinking_on {
        unsupported(
            settings,
            "tool_choice",
            "with reasoning, Anthropic models only accept `auto` or `none`",
        )?;
        return Ok(Some(AnthropicToolChoice::Auto {
            disable_parallel_tool_use: parallel_off,
        }));
    }
    Ok(Some(choice))
}

// ---------------------------------------------------------------------------------------------
// Answers: Messages → OpenAI

/// Anthropic's usage. `input_tokens` excludes cache reads and writes.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
struct WireUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens_details: Option<OutputDetails>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
struct OutputDetails {
    #[serde(default)]
    thinking_tokens: Option<u64>,
}

impl WireUsage {
    /// Takes the counts `newer` reports (stream usage is cumulative), keeping the others.
    fn update(&mut self, newer: WireUsage) {
        self.input_tokens = newer.input_tokens.or(self.input_tokens);
        self.output_tokens = newer.output_tokens.or(self.output_tokens);
        self.cache_creation_input_tokens = newer
            .cache_creation_input_tokens
            .or(self.cache_creation_input_tokens);
        self.cache_read_input_tokens = newer
            .cache_read_input_tokens
            .or(self.cache_read_input_tokens);
        self.output_tokens_details = newer.output_tokens_details.or(self.output_tokens_details);
    }

    fn normalise(self) -> Usage {
        let read = self.cache_read_input_tokens.unwrap_or(0);
        let written = self.cache_creation_input_tokens.unwrap_or(0);
        Usage {
            prompt_tokens: self.input_tokens.unwrap_or(0) + read + written,
            completion_tokens: self.output_tokens.unwrap_or(0),
            cached_tokens: read,
            cache_write_tokens: written,
            reasoning_tokens: self
                .output_tokens_details
                .and_then(|d| d.thinking_tokens)
                .unwrap_or(0),
        }
    }
}

#[derive(Deserialize)]
struct WireMessage {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    content: Vec<WireBlock>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

/// One content block, read flat: serde reads an internally tagged enum by buffering each block
/// into a generic tree first, which doubles the work on every answer.
#[derive(Deserialize)]
struct WireBlock {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    thinking: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    input: Option<Value>,
}

/// `stop_reason` → `finish_reason`. A tool call that only carried the json_schema answer
/// finishes as `stop`.
fn finish_reason(stop_reason: Option<&str>, client_tool_calls: bool) -> FinishReason {
    match stop_reason {
        Some("max_tokens" | "model_context_window_exceeded") => FinishReason::Length,
        Some("tool_use") if client_tool_calls => FinishReason::ToolCalls,
        Some("refusal") => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}

/// Maps a Messages JSON answer to an OpenAI chat completion (`body: Some`) and its usage.
///
/// Contract: `kind` names the provider in error messages; `ctx.json_schema` names the tool
/// whose input is the structured answer. An answer that is not a Message is a 502.
pub fn chat_completion(
    kind: &str,
    body: &[u8],
    ctx: &ResponseContext,
) -> Result<Translated, ApiError> {
    let msg: WireMessage = serde_json::from_slice(body).map_err(|e| invalid_answer(kind, &e))?;
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut calls = Vec::new();
    let mut schema_answer = None;
    for mut block in msg.content {
        let block_type = std::mem::take(&mut block.kind);
        match (block_type.as_str(), block) {
            ("text", WireBlock { text: Some(t), .. }) => text.push_str(&t),
            (
                "thinking",
                WireBlock {
                    thinking: Some(t), ..
                },
            ) => reasoning.push_str(&t),
            (
                "tool_use",
                WireBlock {
                    id: Some(id),
                    name: Some(name),
                    input: Some(input),
                    ..
                },
            ) => {
                let arguments = input.to_string();
                if ctx.json_schema == Some(name.as_str()) {
                    schema_answer = Some(arguments);
                } else {
                    calls.push(ToolCallOut {
                        id,
                        kind: "function",
                        function: FunctionCallOut { name, arguments },
                    });
                }
            }
            ("text" | "thinking" | "tool_use", _) => {
                return Err(ApiError::upstream(format!(
                    "the {kind} provider returned an invalid answer: a `{block_type}` block \
                     without its fields"
                ))
                .with_code("invalid_upstream_response"))
            }
            // Redacted thinking, server tools and their results: nothing an OpenAI client reads.
            _ => {}
        }
    }
    let finish = finish_reason(msg.stop_reason.as_deref(), !calls.is_empty());
    // The structured answer is the content; prose around the tool call is not.
    let content = match schema_answer {
        Some(answer) => Some(answer),
        None if text.is_empty() && !calls.is_empty() => None,
        None => Some(text),
    };
    let usage = msg.usage.map(WireUsage::normalise);
    let message = AssistantMessage::new(content, reasoning, calls);
    Translated::one_choice(ctx, msg.id, msg.model, message, finish, usage)
}

// ---------------------------------------------------------------------------------------------
// Streams

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireEvent {
    MessageStart {
        message: StartedMessage,
    },
    ContentBlockStart {
        index: u64,
        content_block: StartedBlock,
    },
    ContentBlockDelta {
        index: u64,
        delta: BlockDelta,
    },
    ContentBlockStop {
        index: u64,
    },
    MessageDelta {
        #[serde(default)]
        delta: Option<MessageChange>,
        #[serde(default)]
        usage: Option<WireUsage>,
    },
    MessageStop,
    Error {
        error: WireError,
    },
    /// `ping` and event types added later.
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct StartedMessage {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StartedBlock {
    Text {
        #[serde(default)]
        text: String,
    },
    Thinking {
        #[serde(default)]
        thinking: String,
    },
    ToolUse {
        id: String,
        name: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockDelta {
    TextDelta {
        text: String,
    },
    ThinkingDelta {
        thinking: String,
    },
    InputJsonDelta {
        partial_json: String,
    },
    /// `signature_delta`, `citations_delta`: nothing an OpenAI client reads.
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct MessageChange {
    #[serde(default)]
    stop_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireError {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    message: Option<String>,
}

/// What an open content block turns into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpenBlock {
    Text,
    Thinking,
    /// A tool call: its OpenAI index, and whether any argument bytes went out yet.
    Tool {
        index: u32,
        has_arguments: bool,
    },
    /// The json_schema answer tool: its input streams as content.
    Answer,
    Ignored,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Open,
    Done,
    Failed,
}

/// Turns Messages stream events into OpenAI chunks, one event's JSON at a time.
///
/// Contract: feed each event's JSON (the SSE `data`, or the payload another framing carries)
/// to [`MessagesEvents::event`]; call [`MessagesEvents::finish`] at the end of the stream.
/// Output: a role chunk first, content / reasoning / tool-call deltas, the finish chunk, a
/// usage chunk when `ctx.include_usage`, `[DONE]`; or an OpenAI error event and no `[DONE]`
/// (Anthropic `error` event, invalid event, or a stream that ends before `message_stop`).
/// Memory is bounded by the open content blocks, not the stream's length.
pub struct MessagesEvents {
    kind: &'static str,
    include_usage: bool,
    json_schema: Option<String>,
    id: String,
    model: String,
    created: u64,
    role_sent: bool,
    blocks: Vec<(u64, OpenBlock)>,
    tool_calls: u32,
    stop_reason: Option<String>,
    usage: Option<WireUsage>,
    phase: Phase,
}

impl MessagesEvents {
    pub fn new(kind: &'static str, ctx: &ResponseContext) -> Self {
        MessagesEvents {
            kind,
            include_usage: ctx.include_usage,
            json_schema: ctx.json_schema.map(str::to_owned),
            id: format!("chatcmpl-{}", ctx.request_id),
            model: ctx.upstream_model.to_owned(),
            created: ctx.created,
            role_sent: false,
            blocks: Vec::new(),
            tool_calls: 0,
            stop_reason: None,
            usage: None,
            phase: Phase::Open,
        }
    }

    /// True until the stream has ended, well or not; later events are ignored.
    pub fn is_open(&self) -> bool {
        self.phase == Phase::Open
    }

    /// Usage reported so far (input side from `message_start`, output from `message_delta`).
    pub fn usage(&self) -> Option<Usage> {
        self.usage.map(WireUsage::normalise)
    }

    /// Handles one event's JSON.
    pub fn event(&mut self, data: &[u8], out: &mut Vec<u8>) {
        if !self.is_open() {
            return;
        }
        let event: WireEvent = match serde_json::from_slice(data) {
            Ok(e) => e,
            Err(e) => return self.fail(out, &invalid_answer(self.kind, &e)),
        };
        match event {
            WireEvent::MessageStart { message } => {
                if let Some(id) = message.id {
                    self.id = id;
                }
                if let Some(model) = message.model {
                    self.model = model;
                }
                if let Some(u) = message.usage {
                    self.usage.get_or_insert_with(WireUsage::default).update(u);
                }
                self.send_role(out);
            }
            WireEvent::ContentBlockStart {
                index,
                content_block,
            } => self.block_start(index, content_block, out),
            WireEvent::ContentBlockDelta { index, delta } => self.block_delta(index, delta, out),
            WireEvent::ContentBlockStop { index } => self.block_stop(index, out),
            WireEvent::MessageDelta { delta, usage } => {
                if let Some(reason) = delta.and_then(|d| d.stop_reason) {
                    self.stop_reason = Some(reason);
                }
                if let Some(u) = usage {
                    self.usage.get_or_insert_with(WireUsage::default).update(u);
                }
            }
            WireEvent::MessageStop => self.message_stop(out),
            WireEvent::Error { error } => {
                let message = error
                    .message
                    .unwrap_or_else(|| "the provider reported an error".to_owned());
                self.fail(out, &typed_error(&error.kind, message, None));
            }
            WireEvent::Other => {}
        }
    }

    /// The upstream stream ended: anything but a clean `message_stop` is an error event.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.is_open() {
            self.fail(
                out,
                &ApiError::upstream("the provider's stream ended before it was complete")
                    .with_code("stream_interrupted"),
            );
        }
    }

    /// Ends the client stream with an error event (never followed by `[DONE]`).
    pub fn fail(&mut self, out: &mut Vec<u8>, error: &ApiError) {
        if self.is_open() {
            self.phase = Phase::Failed;
            write_sse_error(out, error);
        }
    }

    fn block_start(&mut self, index: u64, block: StartedBlock, out: &mut Vec<u8>) {
        let open = match block {
            StartedBlock::Text { text } => {
                self.send_content(text, out);
                OpenBlock::Text
            }
            StartedBlock::Thinking { thinking } => {
                self.send(
                    Delta {
                        reasoning_content: Some(thinking).filter(|t| !t.is_empty()),
                        ..Delta::default()
                    },
                    out,
                );
                OpenBlock::Thinking
            }
            StartedBlock::ToolUse { name, .. } if self.json_schema.as_deref() == Some(&name) => {
                OpenBlock::Answer
            }
            StartedBlock::ToolUse { id, name } => {
                let tool_index = self.tool_calls;
                self.tool_calls += 1;
                self.send_tool_call(tool_index, Some(id), Some(name), String::new(), out);
                OpenBlock::Tool {
                    index: tool_index,
                    has_arguments: false,
                }
            }
            StartedBlock::Other => OpenBlock::Ignored,
        };
        self.blocks.retain(|(i, _)| *i != index);
        self.blocks.push((index, open));
    }

    fn block_delta(&mut self, index: u64, delta: BlockDelta, out: &mut Vec<u8>) {
        let Some(pos) = self.blocks.iter().position(|(i, _)| *i == index) else {
            return;
        };
        let Some(&(_, open)) = self.blocks.get(pos) else {
            return;
        };
        match (delta, open) {
            (BlockDelta::TextDelta { text }, OpenBlock::Text) => self.send_content(text, out),
            (BlockDelta::ThinkingDelta { thinking }, OpenBlock::Thinking) => self.send(
                Delta {
                    reasoning_content: Some(thinking).filter(|t| !t.is_empty()),
                    ..Delta::default()
                },
                out,
            ),
            (BlockDelta::InputJsonDelta { partial_json }, OpenBlock::Tool { index: tool, .. })
                if !partial_json.is_empty() =>
            {
                if let Some(entry) = self.blocks.get_mut(pos) {
                    entry.1 = OpenBlock::Tool {
                        index: tool,
                        has_arguments: true,
                    };
                }
                self.send_tool_call(tool, None, None, partial_json, out);
            }
            (BlockDelta::InputJsonDelta { partial_json }, OpenBlock::Answer) => {
                self.send_content(partial_json, out)
            }
            _ => {}
        }
    }

    fn block_stop(&mut self, index: u64, out: &mut Vec<u8>) {
        let Some(pos) = self.blocks.iter().position(|(i, _)| *i == index) else {
            return;
        };
        let (_, block) = self.blocks.swap_remove(pos);
        // A tool called without arguments still gets valid JSON for them.
        if let OpenBlock::Tool {
            index: tool,
            has_arguments: false,
        } = block
        {
            self.send_tool_call(tool, None, None, "{}".to_owned(), out);
        }
    }

    fn message_stop(&mut self, out: &mut Vec<u8>) {
        self.send_role(out);
        let finish = finish_reason(self.stop_reason.as_deref(), self.tool_calls > 0);
        self.write(
            vec![ChunkChoice {
                index: 0,
                delta: Delta::default(),
                finish_reason: Some(finish),
                logprobs: None,
            }],
            None,
            out,
        );
        if self.include_usage {
            let usage = self.usage().unwrap_or_default();
            self.write(Vec::new(), Some(usage), out);
        }
        out.extend_from_slice(SSE_DONE);
        self.phase = Phase::Done;
    }

    fn send_role(&mut self, out: &mut Vec<u8>) {
        if !self.role_sent {
            self.role_sent = true;
            self.send(
                Delta {
                    role: Some("assistant"),
                    content: Some(String::new()),
                    ..Delta::default()
                },
                out,
            );
        }
    }

    fn send_content(&mut self, text: String, out: &mut Vec<u8>) {
        if !text.is_empty() {
            self.send(
                Delta {
                    content: Some(text),
                    ..Delta::default()
                },
                out,
            );
        }
    }

    fn send_tool_call(
        &mut self,
        index: u32,
        id: Option<String>,
        name: Option<String>,
        arguments: String,
        out: &mut Vec<u8>,
    ) {
        let first = id.is_some();
        self.send(
            Delta {
                tool_calls: Some(vec![ToolCallDelta {
                    index,
                    id,
                    kind: first.then_some("function"),
                    function: FunctionDelta {
                        name,
                        arguments: Some(arguments),
                    },
                }]),
                ..Delta::default()
            },
            out,
        );
    }

    /// One chunk with a delta; the role chunk always goes first.
    fn send(&mut self, delta: Delta, out: &mut Vec<u8>) {
        if delta == Delta::default() {
            return;
        }
        if delta.role.is_none() {
            self.send_role(out);
        }
        self.write(
            vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason: None,
                logprobs: None,
            }],
            None,
            out,
        );
    }

    fn write(&self, choices: Vec<ChunkChoice>, usage: Option<Usage>, out: &mut Vec<u8>) {
        let mut chunk = ChatChunk::new(self.id.clone(), self.created, self.model.clone(), choices);
        chunk.usage = usage.as_ref().map(UsageReport::from);
        write_sse_json(out, &chunk);
    }
}

/// Largest SSE event accepted from the provider.
const MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;

/// Anthropic SSE → OpenAI SSE: the SSE framing around [`MessagesEvents`].
pub struct MessagesStream {
    parser: SseParser,
    events: MessagesEvents,
    pending: Vec<SseEvent>,
}

impl MessagesStream {
    pub fn new(kind: &'static str, ctx: &ResponseContext) -> Self {
        MessagesStream {
            parser: SseParser::new(MAX_EVENT_BYTES),
            events: MessagesEvents::new(kind, ctx),
            pending: Vec::new(),
        }
    }

    fn drain(&mut self, out: &mut Vec<u8>) {
        for event in std::mem::take(&mut self.pending) {
            // Events without data (a bare `event:` line) carry nothing.
            if !event.data.is_empty() {
                self.events.event(event.data.as_bytes(), out);
            }
        }
    }
}

impl StreamTranslator for MessagesStream {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        if !self.events.is_open() {
            return;
        }
        let pending = &mut self.pending;
        if self.parser.feed(chunk, |e| pending.push(e)).is_err() {
            self.drain(out);
            self.events.fail(
                out,
                &ApiError::upstream("the provider sent a stream event larger than 4 MiB"),
            );
            return;
        }
        self.drain(out);
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        if self.events.is_open() {
            let pending = &mut self.pending;
            self.parser.finish(|e| pending.push(e));
            self.drain(out);
        }
        self.events.finish(out);
    }

    fn usage(&self) -> Option<Usage> {
        self.events.usage()
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

/// Maps an Anthropic error answer (`{"type":"error","error":{"type","message"}}`) to the
/// OpenAI error a client expects, keeping Anthropic's message and its error type as `code`.
///
/// Contract: retriable states come out retriable for Envoy and clients: `overloaded_error`
/// (HTTP 529) → 503, `rate_limit_error` → 429. Bodies of another shape are mapped by status.
pub fn anthropic_error(status: u16, body: &[u8]) -> ApiError {
    #[derive(Deserialize)]
    struct Envelope {
        error: WireError,
    }
    match serde_json::from_slice::<Envelope>(body) {
        Ok(env) if !env.error.kind.is_empty() => {
            let message = env
                .error
                .message
                .unwrap_or_else(|| "the provider returned an error".to_owned());
            typed_error(&env.error.kind, message, Some(status))
        }
        _ => {
            let status = client_status(status);
            ApiError::new(ErrorKind::from_status(status), error_message(body)).with_status(status)
        }
    }
}

/// Anthropic's 529 (overloaded) is not a status clients or Envoy's retry policy know.
fn client_status(status: u16) -> u16 {
    if status == 529 {
        503
    } else {
        status
    }
}

/// The OpenAI error for an Anthropic error type; `status` is the HTTP status, if any (stream
/// error events have none).
fn typed_error(kind: &str, message: String, status: Option<u16>) -> ApiError {
    let (error_kind, error_status) = match kind {
        "invalid_request_error" => (ErrorKind::InvalidRequest, 400),
        "authentication_error" => (ErrorKind::Authentication, 401),
        "permission_error" => (ErrorKind::Permission, 403),
        "not_found_error" => (ErrorKind::NotFound, 404),
        "request_too_large" => (ErrorKind::InvalidRequest, 413),
        "rate_limit_error" => (ErrorKind::RateLimit, 429),
        // Out of credit: OpenAI's shape for it, and retriable so another provider can answer.
        "billing_error" => (ErrorKind::InsufficientQuota, 429),
        "timeout_error" => (ErrorKind::Timeout, 504),
        "api_error" => (ErrorKind::Server, 500),
        "overloaded_error" => (ErrorKind::Upstream, 503),
        _ => {
            let status = status.map_or(502, client_status);
            (ErrorKind::from_status(status), status)
        }
    };
    let mut err = ApiError::new(error_kind, message).with_status(error_status);
    if !kind.is_empty() {
        err = err.with_code(kind);
    }
    err
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::testing::*;

    const PROVIDER: &str = "kind: anthropic\napi_key: sk-ant";

    fn translate(json: &str, settings: ModelSettings) -> Result<Value, ApiError> {
        let (req, _) = chat_request(json);
        let body = messages_request(
            &req,
            Some("claude-x"),
            &settings,
            &MessagesOptions {
                default_max_tokens: 4096,
            },
        )?;
        Ok(serde_json::to_value(body).unwrap())
    }

    fn drop_params() -> ModelSettings {
        ModelSettings {
            drop_unsupported_params: true,
            ..ModelSettings::default()
        }
    }

    /// (case, OpenAI request, Anthropic body). `model` and `max_tokens` are added to the
    /// expected body when it does not name them.
    const REQUESTS: &[(&str, &str, &str)] = &[
        (
            "system and developer messages become the system prompt",
            r#"{"model":"m","messages":[{"role":"system","content":"Be brief."},
                {"role":"developer","content":[{"type":"text","text":"Use metric units."}]},
                {"role":"user","content":"hi"}]}"#,
            r#"{"system":[{"type":"text","text":"Be brief."},{"type":"text","text":"Use metric units."}],
                "messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}"#,
        ),
        (
            "consecutive turns of one role are merged; empty text is left out",
            r#"{"model":"m","messages":[{"role":"user","content":"a"},{"role":"user","content":""},
                {"role":"user","content":"b"},{"role":"assistant","content":"c"},{"role":"assistant","content":"d"}]}"#,
            r#"{"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},
                {"role":"assistant","content":[{"type":"text","text":"c"},{"type":"text","text":"d"}]}]}"#,
        ),
        (
            "images by https URL and base64 data URL",
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"what is this?"},
                {"type":"image_url","image_url":{"url":"https://example.com/cat.png","detail":"high"}},
                {"type":"image_url","image_url":{"url":"data:image/jpeg;base64,/9j/4AAQ"}}]}]}"#,
            r#"{"messages":[{"role":"user","content":[{"type":"text","text":"what is this?"},
                {"type":"image","source":{"type":"url","url":"https://example.com/cat.png"}},
                {"type":"image","source":{"type":"base64","media_type":"image/jpeg","data":"/9j/4AAQ"}}]}]}"#,
        ),
        (
            "PDF files become documents",
            r#"{"model":"m","messages":[{"role":"user","content":[
                {"type":"file","file":{"filename":"a.pdf","file_data":"data:application/pdf;base64,JVBERi0"}}]}]}"#,
            r#"{"messages":[{"role":"user","content":[
                {"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0"}}]}]}"#,
        ),
        (
            "tools, tool calls and parallel results grouped in one user turn, user text after them",
            r#"{"model":"m","messages":[{"role":"user","content":"weather in Paris and Rome?"},
                {"role":"assistant","content":"Checking.","tool_calls":[
                  {"id":"toolu_1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}},
                  {"id":"toolu_2","type":"function","function":{"name":"weather","arguments":""}}]},
                {"role":"tool","tool_call_id":"toolu_1","content":"18C"},
                {"role":"tool","tool_call_id":"toolu_2","content":[{"type":"text","text":"21C"}]},
                {"role":"user","content":"and in F?"}],
              "tools":[{"type":"function","function":{"name":"weather","description":"Weather now",
                "parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}},
                {"type":"function","function":{"name":"clock"}}]}"#,
            r#"{"messages":[{"role":"user","content":[{"type":"text","text":"weather in Paris and Rome?"}]},
                {"role":"assistant","content":[{"type":"text","text":"Checking."},
                  {"type":"tool_use","id":"toolu_1","name":"weather","input":{"city":"Paris"}},
                  {"type":"tool_use","id":"toolu_2","name":"weather","input":{}}]},
                {"role":"user","content":[
                  {"type":"tool_result","tool_use_id":"toolu_1","content":[{"type":"text","text":"18C"}]},
                  {"type":"tool_result","tool_use_id":"toolu_2","content":[{"type":"text","text":"21C"}]},
                  {"type":"text","text":"and in F?"}]}],
              "tools":[{"name":"weather","description":"Weather now",
                "input_schema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}},
                {"name":"clock","input_schema":{"type":"object","properties":{}}}]}"#,
        ),
        (
            "tool_choice auto with parallel calls off",
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"tool_choice":"auto","parallel_tool_calls":false,
                "tools":[{"type":"function","function":{"name":"f"}}]}"#,
            r#"{"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],
                "tools":[{"name":"f","input_schema":{"type":"object","properties":{}}}],
                "tool_choice":{"type":"auto","disable_parallel_tool_use":true}}"#,
        ),
        (
            "tool_choice required",
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"tool_choice":"required",
                "tools":[{"type":"function","function":{"name":"f"}}]}"#,
            r#"{"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],
                "tools":[{"name":"f","input_schema":{"type":"object","properties":{}}}],"tool_choice":{"type":"any"}}"#,
        ),
        (
            "tool_choice none",
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"tool_choice":"none",
                "tools":[{"type":"function","function":{"name":"f"}}]}"#,
            r#"{"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],
                "tools":[{"name":"f","input_schema":{"type":"object","properties":{}}}],"tool_choice":{"type":"none"}}"#,
        ),
        (
            "tool_choice naming a function",
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],
                "tool_choice":{"type":"function","function":{"name":"f"}},
                "tools":[{"type":"function","function":{"name":"f"}}]}"#,
            r#"{"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],
                "tools":[{"name":"f","input_schema":{"type":"object","properties":{}}}],"tool_choice":{"type":"tool","name":"f"}}"#,
        ),
        (
            "tool_choice without tools is left out",
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"tool_choice":"auto"}"#,
            r#"{"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]}"#,
        ),
        (
            "sampling parameters, stop list, user, top_k, stream",
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":100,"temperature":0.2,
                "top_p":0.9,"stop":["END","STOP"],"user":"u-42","top_k":40,"stream":true,
                "stream_options":{"include_usage":true},"n":1,"logprobs":false,"presence_penalty":0,"store":false}"#,
            r#"{"max_tokens":100,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],
                "temperature":0.2,"top_p":0.9,"stop_sequences":["END","STOP"],"metadata":{"user_id":"u-42"},
                "top_k":40,"stream":true}"#,
        ),
        (
            "stop as a string; max_completion_tokens wins over max_tokens",
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"stop":"END",
                "max_tokens":10,"max_completion_tokens":20}"#,
            r#"{"max_tokens":20,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],
                "stop_sequences":["END"]}"#,
        ),
        (
            "reasoning_effort becomes a thinking budget, max_tokens raised above it",
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"reasoning_effort":"medium","max_tokens":1000}"#,
            r#"{"max_tokens":5096,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],
                "thinking":{"type":"enabled","budget_tokens":4096}}"#,
        ),
        (
            "reasoning_effort high keeps a larger cap",
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"reasoning_effort":"high","max_tokens":20000,
                "temperature":1,"top_p":0.97}"#,
            r#"{"max_tokens":20000,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],
                "top_p":0.97,"thinking":{"type":"enabled","budget_tokens":16384}}"#,
        ),
        (
            "reasoning_effort low; none means no thinking",
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"reasoning_effort":"low"}"#,
            r#"{"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],
                "thinking":{"type":"enabled","budget_tokens":1024}}"#,
        ),
        (
            "reasoning_effort none",
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"reasoning_effort":"none"}"#,
            r#"{"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]}"#,
        ),
        (
            "a native thinking object passes through",
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"thinking":{"type":"enabled","budget_tokens":2000}}"#,
            r#"{"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],
                "thinking":{"type":"enabled","budget_tokens":2000}}"#,
        ),
        (
            "json_object asks for JSON in the system prompt",
            r#"{"model":"m","messages":[{"role":"system","content":"S"},{"role":"user","content":"x"}],
                "response_format":{"type":"json_object"}}"#,
            r#"{"system":[{"type":"text","text":"S"},
                {"type":"text","text":"Answer with one valid JSON object and nothing else: no prose, no code fences."}],
                "messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]}"#,
        ),
        (
            "json_schema becomes a forced tool",
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],
                "response_format":{"type":"json_schema","json_schema":{"name":"person","strict":true,
                  "schema":{"type":"object","properties":{"name":{"type":"string"}}}}}}"#,
            r#"{"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],
                "tools":[{"name":"person","description":"Give your final answer by calling this tool with it as the input.",
                  "input_schema":{"type":"object","properties":{"name":{"type":"string"}}}}],
                "tool_choice":{"type":"tool","name":"person"}}"#,
        ),
        (
            "json_schema beside client tools: some tool must be called",
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],
                "response_format":{"type":"json_schema","json_schema":{"name":"out","description":"The answer"}}}"#,
            r#"{"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],
                "tools":[{"name":"f","input_schema":{"type":"object","properties":{}}},
                  {"name":"out","description":"The answer","input_schema":{"type":"object"}}],
                "tool_choice":{"type":"any"}}"#,
        ),
        (
            "json_schema with thinking: offered and asked for, not forced",
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"reasoning_effort":"low","max_tokens":2000,
                "response_format":{"type":"json_schema","json_schema":{"name":"out","schema":{"type":"object"}}}}"#,
            r#"{"max_tokens":2000,"system":[{"type":"text","text":"Give your final answer by calling the `out` tool."}],
                "messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],
                "tools":[{"name":"out","description":"Give your final answer by calling this tool with it as the input.",
                  "input_schema":{"type":"object"}}],
                "tool_choice":{"type":"auto"},"thinking":{"type":"enabled","budget_tokens":1024}}"#,
        ),
        (
            "assistant refusal text and echoed reasoning: text kept, reasoning left out",
            r#"{"model":"m","messages":[{"role":"user","content":"x"},
                {"role":"assistant","content":[{"type":"refusal","refusal":"No."}],"reasoning_content":"hmm"},
                {"role":"user","content":"please"}]}"#,
            r#"{"messages":[{"role":"user","content":[{"type":"text","text":"x"}]},
                {"role":"assistant","content":[{"type":"text","text":"No."}]},
                {"role":"user","content":[{"type":"text","text":"please"}]}]}"#,
        ),
        (
            "a tool loop continued with reasoning runs without thinking (no signatures to replay)",
            r#"{"model":"m","reasoning_effort":"high","max_tokens":100,"messages":[{"role":"user","content":"x"},
                {"role":"assistant","tool_calls":[{"id":"t1","type":"function","function":{"name":"f","arguments":"{}"}}]},
                {"role":"tool","tool_call_id":"t1","content":"ok"}],
              "tools":[{"type":"function","function":{"name":"f"}}]}"#,
            r#"{"max_tokens":100,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]},
                {"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f","input":{}}]},
                {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":[{"type":"text","text":"ok"}]}]}],
              "tools":[{"name":"f","input_schema":{"type":"object","properties":{}}}]}"#,
        ),
        (
            "tool history without tools: the tools used are declared and none may be called",
            r#"{"model":"m","messages":[{"role":"user","content":"x"},
                {"role":"assistant","tool_calls":[{"id":"t1","type":"function","function":{"name":"f","arguments":"{}"}}]},
                {"role":"tool","tool_call_id":"t1","content":""},{"role":"user","content":"thanks"}]}"#,
            r#"{"messages":[{"role":"user","content":[{"type":"text","text":"x"}]},
                {"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f","input":{}}]},
                {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1"},{"type":"text","text":"thanks"}]}],
              "tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"none"}}"#,
        ),
        (
            "safety_identifier is the user id",
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"safety_identifier":"hash-1","user":"old"}"#,
            r#"{"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"metadata":{"user_id":"hash-1"}}"#,
        ),
    ];

    #[test]
    fn requests_map_to_messages() {
        for (case, input, expected) in REQUESTS {
            let got = translate(input, ModelSettings::default())
                .unwrap_or_else(|e| panic!("{case}: {e}"));
            let mut want: Value = serde_json::from_str(expected).unwrap();
            let obj = want.as_object_mut().unwrap();
            obj.entry("model").or_insert(json!("claude-x"));
            obj.entry("max_tokens").or_insert(json!(4096));
            assert_eq!(got, want, "{case}");
        }
    }

    #[test]
    fn max_tokens_default_comes_from_the_model_then_the_provider() {
        let body = r#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#;
        let settings = ModelSettings {
            max_tokens: Some(777),
            ..ModelSettings::default()
        };
        assert_eq!(translate(body, settings).unwrap()["max_tokens"], 777);
        let p = provider(&format!("{PROVIDER}\ndefault_max_tokens: 1234"));
        let (req, raw) = chat_request(body);
        let up = p
            .chat_request(&req, raw.as_bytes(), &attempt("claude-x"))
            .unwrap();
        let sent: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(sent["max_tokens"], 1234);
    }

    /// (OpenAI request, parameter a 400 names, body when the model drops unsupported ones).
    const REFUSED: &[(&str, &str, Option<&str>)] = &[
        (r#""n":2"#, "n", Some("{}")),
        (r#""seed":7"#, "seed", Some("{}")),
        (r#""presence_penalty":0.5"#, "presence_penalty", Some("{}")),
        (
            r#""frequency_penalty":0.5"#,
            "frequency_penalty",
            Some("{}"),
        ),
        (r#""logit_bias":{"50256":-100}"#, "logit_bias", Some("{}")),
        (
            r#""logprobs":true,"top_logprobs":2"#,
            "logprobs",
            Some("{}"),
        ),
        (r#""metadata":{"k":"v"}"#, "metadata", Some("{}")),
        (r#""service_tier":"flex""#, "service_tier", Some("{}")),
        (r#""temperature":1.5"#, "temperature", Some("{}")),
        (
            r#""reasoning_effort":"low","max_tokens":4000,"temperature":0.3"#,
            "temperature",
            Some(r#"{"max_tokens":4000,"thinking":{"type":"enabled","budget_tokens":1024}}"#),
        ),
        (
            r#""reasoning_effort":"low","max_tokens":4000,"top_p":0.5"#,
            "top_p",
            Some(r#"{"max_tokens":4000,"thinking":{"type":"enabled","budget_tokens":1024}}"#),
        ),
        (
            r#""reasoning_effort":"low","max_tokens":4000,"top_k":5"#,
            "top_k",
            Some(r#"{"max_tokens":4000,"thinking":{"type":"enabled","budget_tokens":1024}}"#),
        ),
        (
            r#""reasoning_effort":"low","max_tokens":4000,"tool_choice":"required","tools":[{"type":"function","function":{"name":"f"}}]"#,
            "tool_choice",
            Some(
                r#"{"max_tokens":4000,"thinking":{"type":"enabled","budget_tokens":1024},
                "tools":[{"name":"f","input_schema":{"type":"object","properties":{}}}],"tool_choice":{"type":"auto"}}"#,
            ),
        ),
        (r#""reasoning_effort":"extreme""#, "reasoning_effort", None),
        (r#""thinking":true"#, "thinking", None),
        (r#""top_k":-1"#, "top_k", None),
        (
            r#""tools":[{"type":"web_search","function":{"name":"f"}}]"#,
            "tools[0].type",
            None,
        ),
        (
            r#""tools":[{"type":"function","function":{"name":"out"}}],"response_format":{"type":"json_schema","json_schema":{"name":"out"}}"#,
            "response_format",
            None,
        ),
    ];

    #[test]
    fn unsupported_parameters_are_refused_by_name_or_dropped() {
        for (params, param, dropped) in REFUSED {
            let json =
                format!(r#"{{"model":"m","messages":[{{"role":"user","content":"x"}}],{params}}}"#);
            let err = translate(&json, ModelSettings::default()).unwrap_err();
            assert_eq!(err.status, 400, "{params}");
            assert_eq!(
                err.param.as_deref(),
                Some(*param),
                "{params}: {}",
                err.message
            );
            match dropped {
                Some(expected) => {
                    let got = translate(&json, drop_params()).unwrap();
                    let mut want: Value = serde_json::from_str(expected).unwrap();
                    let obj = want.as_object_mut().unwrap();
                    obj.entry("model").or_insert(json!("claude-x"));
                    obj.entry("max_tokens").or_insert(json!(4096));
                    obj.insert(
                        "messages".into(),
                        json!([{"role":"user","content":[{"type":"text","text":"x"}]}]),
                    );
                    assert_eq!(got, want, "{params} with drop_unsupported_params");
                }
                None => assert!(translate(&json, drop_params()).is_err(), "{params}"),
            }
        }
    }

    /// (message list, parameter a 400 names).
    const INVALID_MESSAGES: &[(&str, &str)] = &[
        (
            r#"{"role":"function","name":"f","content":"x"}"#,
            "messages[0].role",
        ),
        (
            r#"{"role":"tool","content":"x"}"#,
            "messages[0].tool_call_id",
        ),
        (
            r#"{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"[1]"}}]}"#,
            "messages[0].tool_calls[0].function.arguments",
        ),
        (
            r#"{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{oops"}}]}"#,
            "messages[0].tool_calls[0].function.arguments",
        ),
        (
            r#"{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AA","format":"wav"}}]}"#,
            "messages[0].content[0]",
        ),
        (
            r#"{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}"#,
            "messages[0].content[0]",
        ),
        (
            r#"{"role":"user","content":[{"type":"text","text":"a"},{"type":"file","file":{"file_id":"file-1"}}]}"#,
            "messages[0].content[1].file",
        ),
    ];

    #[test]
    fn invalid_messages_are_refused_by_path() {
        for (message, param) in INVALID_MESSAGES {
            let json = format!(r#"{{"model":"m","messages":[{message}]}}"#);
            let err = translate(&json, drop_params()).unwrap_err();
            assert_eq!(err.status, 400, "{message}");
            assert_eq!(
                err.param.as_deref(),
                Some(*param),
                "{message}: {}",
                err.message
            );
        }
    }

    #[test]
    fn upstream_request_path_and_headers() {
        let cases = [
            (
                PROVIDER.to_owned(),
                "/v1/messages",
                vec![("x-api-key", "sk-ant"), ("anthropic-version", "2023-06-01")],
            ),
            (
                "kind: anthropic\nbase_url: http://mock:9/mock/status=529\napi_key: {env: TEST_KEY}\n\
                 anthropic_version: 2024-01-01\nbeta: [prompt-caching-2024-07-31, output-128k-2025-02-19]\n\
                 headers: {X-Team: blue}"
                    .to_owned(),
                "/mock/status=529/v1/messages",
                vec![
                    ("x-api-key", "env-secret"),
                    ("anthropic-version", "2024-01-01"),
                    (
                        "anthropic-beta",
                        "prompt-caching-2024-07-31,output-128k-2025-02-19",
                    ),
                    ("x-team", "blue"),
                ],
            ),
        ];
        for (yaml, path, headers) in cases {
            let p = provider(&yaml);
            assert_eq!(p.kind(), "anthropic");
            let (req, raw) =
                chat_request(r#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#);
            let up = p
                .chat_request(&req, raw.as_bytes(), &attempt("claude-x"))
                .unwrap();
            assert_eq!(up.path, path, "{yaml}");
            let want: Vec<(String, String)> = headers
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            assert_eq!(up.headers, want, "{yaml}");
            let body: Value = serde_json::from_slice(&up.body).unwrap();
            assert_eq!(body["model"], "claude-x");
        }
        let p = provider(PROVIDER);
        assert_eq!(p.endpoint().host, "api.anthropic.com");
        assert!(p.endpoint().tls);
    }

    #[test]
    fn config_problems() {
        assert_build_error("kind: anthropic", "providers.test.api_key: required");
        assert_build_error(
            "kind: anthropic\napi_key: k\nanthropic_versoin: x",
            "unknown field `anthropic_versoin`",
        );
        assert_build_error(
            "kind: anthropic\napi_key: k\ndefault_max_tokens: 0",
            "providers.test.default_max_tokens: must be at least 1",
        );
        let p = provider("kind: anthropic\napi_key: {env: UNSET_KEY}");
        let (req, raw) =
            chat_request(r#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#);
        let err = p
            .chat_request(&req, raw.as_bytes(), &attempt("c"))
            .unwrap_err();
        assert!(err.message.contains("no api_key"), "{}", err.message);
    }

    fn ctx_schema(name: &'static str) -> ResponseContext<'static> {
        ResponseContext {
            json_schema: Some(name),
            ..ctx(false)
        }
    }

    /// (case, Anthropic answer, json_schema name, OpenAI answer).
    const RESPONSES: &[(&str, &str, Option<&str>, &str)] = &[
        (
            "text, with cache reads and writes counted once",
            r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-x-2025",
                "content":[{"type":"text","text":"Hello"},{"type":"text","text":" there"}],
                "stop_reason":"end_turn","stop_sequence":null,
                "usage":{"input_tokens":10,"output_tokens":5,"cache_read_input_tokens":100,"cache_creation_input_tokens":20}}"#,
            None,
            r#"{"id":"msg_1","object":"chat.completion","created":1700000000,"model":"claude-x-2025",
                "choices":[{"index":0,"message":{"role":"assistant","content":"Hello there"},"finish_reason":"stop","logprobs":null}],
                "usage":{"prompt_tokens":130,"completion_tokens":5,"total_tokens":135,
                  "prompt_tokens_details":{"cached_tokens":100,"cache_creation_tokens":20},
                  "completion_tokens_details":{"reasoning_tokens":0}}}"#,
        ),
        (
            "tool calls with JSON string arguments",
            r#"{"id":"msg_2","type":"message","role":"assistant","model":"claude-x",
                "content":[{"type":"tool_use","id":"toolu_1","name":"weather","input":{"city":"Paris"}},
                  {"type":"tool_use","id":"toolu_2","name":"clock","input":{}}],
                "stop_reason":"tool_use","usage":{"input_tokens":3,"output_tokens":4}}"#,
            None,
            r#"{"id":"msg_2","object":"chat.completion","created":1700000000,"model":"claude-x",
                "choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[
                  {"id":"toolu_1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}},
                  {"id":"toolu_2","type":"function","function":{"name":"clock","arguments":"{}"}}]},
                  "finish_reason":"tool_calls","logprobs":null}],
                "usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7,
                  "prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}"#,
        ),
        (
            "thinking becomes reasoning_content; redacted thinking and signatures are left out",
            r#"{"id":"msg_3","type":"message","role":"assistant","model":"claude-x",
                "content":[{"type":"thinking","thinking":"Let me think.","signature":"sig"},
                  {"type":"redacted_thinking","data":"xx"},{"type":"text","text":"42"}],
                "stop_reason":"max_tokens",
                "usage":{"input_tokens":3,"output_tokens":40,"output_tokens_details":{"thinking_tokens":30}}}"#,
            None,
            r#"{"id":"msg_3","object":"chat.completion","created":1700000000,"model":"claude-x",
                "choices":[{"index":0,"message":{"role":"assistant","content":"42","reasoning_content":"Let me think."},
                  "finish_reason":"length","logprobs":null}],
                "usage":{"prompt_tokens":3,"completion_tokens":40,"total_tokens":43,
                  "prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":30}}}"#,
        ),
        (
            "the json_schema tool's input is the content",
            r#"{"id":"msg_4","type":"message","role":"assistant","model":"claude-x",
                "content":[{"type":"text","text":"Here you go:"},{"type":"tool_use","id":"toolu_9","name":"person","input":{"name":"Ada"}}],
                "stop_reason":"tool_use","usage":{"input_tokens":1,"output_tokens":2}}"#,
            Some("person"),
            r#"{"id":"msg_4","object":"chat.completion","created":1700000000,"model":"claude-x",
                "choices":[{"index":0,"message":{"role":"assistant","content":"{\"name\":\"Ada\"}"},
                  "finish_reason":"stop","logprobs":null}],
                "usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3,
                  "prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}"#,
        ),
        (
            "stop sequence, refusal and missing fields",
            r#"{"content":[],"stop_reason":"refusal"}"#,
            None,
            r#"{"id":"chatcmpl-req-1","object":"chat.completion","created":1700000000,"model":"up-model",
                "choices":[{"index":0,"message":{"role":"assistant","content":""},
                  "finish_reason":"content_filter","logprobs":null}]}"#,
        ),
        (
            "stop_sequence finishes as stop",
            r#"{"id":"m","model":"c","content":[{"type":"text","text":"a"}],"stop_reason":"stop_sequence",
                "usage":{"input_tokens":1,"output_tokens":1}}"#,
            None,
            r#"{"id":"m","object":"chat.completion","created":1700000000,"model":"c",
                "choices":[{"index":0,"message":{"role":"assistant","content":"a"},"finish_reason":"stop","logprobs":null}],
                "usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2,
                  "prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}"#,
        ),
    ];

    #[test]
    fn answers_map_to_chat_completions() {
        let p = provider(PROVIDER);
        for (case, body, schema, expected) in RESPONSES {
            let ctx = schema.map_or_else(|| ctx(false), ctx_schema);
            let t = p.chat_response(body.as_bytes(), &ctx).unwrap();
            let got: Value = serde_json::from_slice(&t.body.unwrap()).unwrap();
            let want: Value = serde_json::from_str(expected).unwrap();
            assert_eq!(got, want, "{case}");
            assert_eq!(
                t.usage
                    .as_ref()
                    .map(UsageReport::from)
                    .map(|r| serde_json::to_value(r).unwrap()),
                want.get("usage").cloned(),
                "{case}"
            );
        }
        let tool_without_input =
            br#"{"content":[{"type":"tool_use","id":"t","name":"f"}],"stop_reason":"tool_use"}"#;
        for broken in [
            &b"{\"id\":"[..],
            b"{\"id\":\"x\"}",
            b"[]",
            tool_without_input,
        ] {
            let err = p.chat_response(broken, &ctx(false)).unwrap_err();
            assert_eq!(err.status, 502);
            assert_eq!(err.code.as_deref(), Some("invalid_upstream_response"));
        }
    }

    /// The OpenAI chunk the stream writes for a delta, as SSE.
    fn chunk(id: &str, model: &str, delta: &str, finish: Option<&str>) -> String {
        let finish = finish.map_or("null".to_owned(), |f| format!("\"{f}\""));
        format!(
            "data: {{\"id\":\"{id}\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"{model}\",\
             \"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish},\"logprobs\":null}}]}}\n\n"
        )
    }

    fn usage_chunk(id: &str, model: &str, usage: &str) -> String {
        format!(
            "data: {{\"id\":\"{id}\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"{model}\",\
             \"choices\":[],\"usage\":{usage}}}\n\n"
        )
    }

    fn sse(events: &[(&str, &str)]) -> String {
        events
            .iter()
            .map(|(name, data)| format!("event: {name}\ndata: {data}\n\n"))
            .collect()
    }

    const START: (&str, &str) = (
        "message_start",
        r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-x","stop_reason":null,"usage":{"input_tokens":10,"cache_read_input_tokens":100,"cache_creation_input_tokens":20,"output_tokens":1}}}"#,
    );
    const PING: (&str, &str) = ("ping", r#"{"type": "ping"}"#);
    const STOP: (&str, &str) = ("message_stop", r#"{"type":"message_stop"}"#);

    fn text_stream() -> String {
        sse(&[
            START,
            (
                "content_block_start",
                r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            ),
            PING,
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"lo \"é\""}}"#,
            ),
            (
                "content_block_stop",
                r#"{"type":"content_block_stop","index":0}"#,
            ),
            (
                "message_delta",
                r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":7}}"#,
            ),
            STOP,
        ])
    }

    fn tool_stream() -> String {
        sse(&[
            START,
            (
                "content_block_start",
                r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Two cities."}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQB"}}"#,
            ),
            (
                "content_block_stop",
                r#"{"type":"content_block_stop","index":0}"#,
            ),
            (
                "content_block_start",
                r#"{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Checking."}}"#,
            ),
            (
                "content_block_stop",
                r#"{"type":"content_block_stop","index":1}"#,
            ),
            (
                "content_block_start",
                r#"{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_1","name":"weather","input":{}}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":""}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"city\": "}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"\"Paris\"}"}}"#,
            ),
            (
                "content_block_stop",
                r#"{"type":"content_block_stop","index":2}"#,
            ),
            (
                "content_block_start",
                r#"{"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"toolu_2","name":"clock","input":{}}}"#,
            ),
            (
                "content_block_stop",
                r#"{"type":"content_block_stop","index":3}"#,
            ),
            (
                "message_delta",
                r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":33,"output_tokens_details":{"thinking_tokens":12}}}"#,
            ),
            STOP,
        ])
    }

    fn schema_stream() -> String {
        sse(&[
            START,
            (
                "content_block_start",
                r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_9","name":"person","input":{}}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"name\":"}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":" \"Ada\"}"}}"#,
            ),
            (
                "content_block_stop",
                r#"{"type":"content_block_stop","index":0}"#,
            ),
            (
                "message_delta",
                r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":9}}"#,
            ),
            STOP,
        ])
    }

    const USAGE_130_7: &str = r#"{"prompt_tokens":130,"completion_tokens":7,"total_tokens":137,"prompt_tokens_details":{"cached_tokens":100,"cache_creation_tokens":20},"completion_tokens_details":{"reasoning_tokens":0}}"#;

    type StreamCase = (&'static str, String, bool, Option<&'static str>, String);

    fn stream_cases() -> Vec<StreamCase> {
        let c = |delta: &str| chunk("msg_1", "claude-x", delta, None);
        let role = c(r#"{"role":"assistant","content":""}"#);
        let text_body = [
            role.clone(),
            c(r#"{"content":"Hel"}"#),
            c(r#"{"content":"lo \"é\""}"#),
            chunk("msg_1", "claude-x", "{}", Some("stop")),
        ]
        .concat();
        vec![
            (
                "text, no usage chunk unless asked",
                text_stream(),
                false,
                None,
                [text_body.clone(), "data: [DONE]\n\n".into()].concat(),
            ),
            (
                "text with the usage chunk",
                text_stream(),
                true,
                None,
                [
                    text_body,
                    usage_chunk("msg_1", "claude-x", USAGE_130_7),
                    "data: [DONE]\n\n".into(),
                ]
                .concat(),
            ),
            (
                "reasoning, text and two tool calls, one without arguments",
                tool_stream(),
                false,
                None,
                [
                    role.clone(),
                    c(r#"{"reasoning_content":"Two cities."}"#),
                    c(r#"{"content":"Checking."}"#),
                    c(r#"{"tool_calls":[{"index":0,"id":"toolu_1","type":"function","function":{"name":"weather","arguments":""}}]}"#),
                    c(r#"{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\": "}}]}"#),
                    c(r#"{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]}"#),
                    c(r#"{"tool_calls":[{"index":1,"id":"toolu_2","type":"function","function":{"name":"clock","arguments":""}}]}"#),
                    c(r#"{"tool_calls":[{"index":1,"function":{"arguments":"{}"}}]}"#),
                    chunk("msg_1", "claude-x", "{}", Some("tool_calls")),
                    "data: [DONE]\n\n".into(),
                ]
                .concat(),
            ),
            (
                "the json_schema answer streams as content and finishes as stop",
                schema_stream(),
                false,
                Some("person"),
                [
                    role.clone(),
                    c(r#"{"content":"{\"name\":"}"#),
                    c(r#"{"content":" \"Ada\"}"}"#),
                    chunk("msg_1", "claude-x", "{}", Some("stop")),
                    "data: [DONE]\n\n".into(),
                ]
                .concat(),
            ),
            (
                "an error event mid-stream ends it with an OpenAI error and no [DONE]",
                sse(&[
                    START,
                    ("content_block_start", r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#),
                    ("content_block_delta", r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#),
                    ("error", r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#),
                    ("content_block_delta", r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"late"}}"#),
                    STOP,
                ]),
                true,
                None,
                [
                    role.clone(),
                    c(r#"{"content":"Hi"}"#),
                    "data: {\"error\":{\"message\":\"Overloaded\",\"type\":\"upstream_error\",\"param\":null,\"code\":\"overloaded_error\"}}\n\n".into(),
                ]
                .concat(),
            ),
            (
                "a stream cut before message_stop ends with stream_interrupted",
                sse(&[
                    START,
                    ("content_block_start", r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#),
                    ("content_block_delta", r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#),
                ]),
                true,
                None,
                [
                    role.clone(),
                    c(r#"{"content":"Hi"}"#),
                    "data: {\"error\":{\"message\":\"the provider's stream ended before it was complete\",\"type\":\"upstream_error\",\"param\":null,\"code\":\"stream_interrupted\"}}\n\n".into(),
                ]
                .concat(),
            ),
            (
                "a broken event is an invalid answer",
                "event: message_start\ndata: {\"type\":\"message_start\",\"message\":\n\n".to_owned(),
                false,
                None,
                "data: {\"error\":{\"message\":\"the anthropic provider returned an invalid answer: EOF while parsing a value at line 1 column 34\",\"type\":\"upstream_error\",\"param\":null,\"code\":\"invalid_upstream_response\"}}\n\n".to_owned(),
            ),
            (
                "CRLF framing, no event lines, no message_start",
                "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"A\"}}\r\n\r\n\
                 data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\"},\"usage\":{\"output_tokens\":2}}\r\n\r\n\
                 data: {\"type\":\"message_stop\"}\r\n\r\n"
                    .to_owned(),
                true,
                None,
                [
                    chunk("chatcmpl-req-1", "up-model", r#"{"role":"assistant","content":""}"#, None),
                    chunk("chatcmpl-req-1", "up-model", r#"{"content":"A"}"#, None),
                    chunk("chatcmpl-req-1", "up-model", "{}", Some("length")),
                    usage_chunk(
                        "chatcmpl-req-1",
                        "up-model",
                        r#"{"prompt_tokens":0,"completion_tokens":2,"total_tokens":2,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}"#,
                    ),
                    "data: [DONE]\n\n".into(),
                ]
                .concat(),
            ),
        ]
    }

    #[test]
    fn streams_map_to_chunks_at_every_split() {
        for (case, input, include_usage, schema, expected) in stream_cases() {
            let make = || {
                let base = ctx(include_usage);
                MessagesStream::new(
                    KIND,
                    &ResponseContext {
                        json_schema: schema,
                        ..base
                    },
                )
            };
            let (out, _) = run_stream_whole(make, input.as_bytes());
            assert_eq!(String::from_utf8(out).unwrap(), expected, "{case}");
            assert_every_split_matches(make, input.as_bytes(), expected.as_bytes());
        }
    }

    #[test]
    fn stream_usage_comes_from_message_start_and_message_delta() {
        let cases = [
            (
                text_stream(),
                Usage {
                    prompt_tokens: 130,
                    completion_tokens: 7,
                    cached_tokens: 100,
                    cache_write_tokens: 20,
                    reasoning_tokens: 0,
                },
            ),
            (
                tool_stream(),
                Usage {
                    prompt_tokens: 130,
                    completion_tokens: 33,
                    cached_tokens: 100,
                    cache_write_tokens: 20,
                    reasoning_tokens: 12,
                },
            ),
        ];
        let p = provider(PROVIDER);
        for (input, usage) in cases {
            let (_, got) =
                run_stream_whole(|| MessagesStream::new(KIND, &ctx(false)), input.as_bytes());
            assert_eq!(got, Some(usage));
            let mut t = p.chat_stream(&ctx(false));
            let mut out = Vec::new();
            t.feed(input.as_bytes(), &mut out);
            t.finish(&mut out);
            assert_eq!(t.usage(), Some(usage));
        }
    }

    /// (Anthropic status, body, status and type a client sees, code).
    type ErrorCase = (u16, &'static str, u16, &'static str, Option<&'static str>);

    #[test]
    fn errors_map_to_openai_statuses() {
        let cases: &[ErrorCase] = &[
            (
                529,
                r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
                503,
                "upstream_error",
                Some("overloaded_error"),
            ),
            (
                429,
                r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow"}}"#,
                429,
                "rate_limit_error",
                Some("rate_limit_error"),
            ),
            (
                401,
                r#"{"type":"error","error":{"type":"authentication_error","message":"bad key"}}"#,
                401,
                "authentication_error",
                Some("authentication_error"),
            ),
            (
                403,
                r#"{"type":"error","error":{"type":"permission_error","message":"no"}}"#,
                403,
                "permission_error",
                Some("permission_error"),
            ),
            (
                404,
                r#"{"type":"error","error":{"type":"not_found_error","message":"model: x"}}"#,
                404,
                "invalid_request_error",
                Some("not_found_error"),
            ),
            (
                413,
                r#"{"type":"error","error":{"type":"request_too_large","message":"big"}}"#,
                413,
                "invalid_request_error",
                Some("request_too_large"),
            ),
            (
                400,
                r#"{"type":"error","error":{"type":"invalid_request_error","message":"messages: bad"}}"#,
                400,
                "invalid_request_error",
                Some("invalid_request_error"),
            ),
            (
                500,
                r#"{"type":"error","error":{"type":"api_error","message":"oops"}}"#,
                500,
                "server_error",
                Some("api_error"),
            ),
            (
                402,
                r#"{"type":"error","error":{"type":"billing_error","message":"credit"}}"#,
                429,
                "insufficient_quota",
                Some("billing_error"),
            ),
            (
                504,
                r#"{"type":"error","error":{"type":"timeout_error","message":"slow"}}"#,
                504,
                "timeout_error",
                Some("timeout_error"),
            ),
            (
                418,
                r#"{"type":"error","error":{"type":"teapot_error","message":"short"}}"#,
                418,
                "invalid_request_error",
                Some("teapot_error"),
            ),
            (529, "<html>overloaded</html>", 503, "upstream_error", None),
            (502, "", 502, "upstream_error", None),
        ];
        let p = provider(PROVIDER);
        for (status, body, want_status, want_type, want_code) in cases {
            let e = p.error_response(*status, body.as_bytes());
            assert!(
                p.chat_response(body.as_bytes(), &ctx(false)).is_err(),
                "{body}"
            );
            assert_eq!(e.status, *want_status, "{body}");
            assert_eq!(e.kind.type_name(), *want_type, "{body}");
            assert_eq!(e.code.as_deref(), *want_code, "{body}");
        }
        let e = anthropic_error(
            529,
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        );
        assert_eq!(e.message, "Overloaded");
        assert_eq!(
            anthropic_error(529, b"<html>overloaded</html>").message,
            "<html>overloaded</html>"
        );
    }
}
