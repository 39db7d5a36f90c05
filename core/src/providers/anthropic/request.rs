//! An OpenAI chat request → the Messages body (see the module doc for where the APIs differ).

use super::wire::{
    AnthropicToolChoice, Block, MessagesRequest, RequestMetadata, Source, ToolSpec, Turn,
};
use crate::api::chat::{
    ChatRequest, ContentPart, ImageSource, JsonSchemaFormat, Message, MessageContent,
    ResponseFormat, Role, ThinkingBlock, ToolChoice,
};
use crate::api::ApiError;
use crate::config::ModelSettings;
use crate::providers::checks::{self, Constraints, ToolNames};
use crate::providers::params::unsupported;
use serde_json::{json, Map, Value};

/// Translation settings that come from the provider's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessagesOptions {
    /// `max_tokens` when neither the client nor the model settings give one.
    pub default_max_tokens: u32,
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
    let (mut system, mut messages) = conversation(&req.messages)?;
    checks::check(req, &CONSTRAINTS)?;
    let mut thinking = thinking(req)?;
    if continues_tool_loop(&messages) && !continued_turn_is_signed(&messages) {
        // Anthropic wants the signed thinking blocks of the turn being continued back; a
        // client that did not keep them (`thinking_blocks`) continues without thinking.
        thinking = None;
    }
    let thinking_on = thinking
        .as_ref()
        .is_some_and(|t| t.get("type").and_then(Value::as_str) != Some("disabled"));
    if !thinking_on {
        // Thinking handed back is only taken while thinking.
        without_thinking_blocks(&mut messages);
    }
    // Checked once the thinking handed back is settled: a turn of nothing else may be gone.
    if messages.is_empty() {
        return Err(checks::empty_conversation(CONSTRAINTS.name));
    }
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

const NOT_ON_ANTHROPIC: &str = "Anthropic models do not support it";

/// What the Messages API documents of requests (the penalties are refused before, as
/// unsupported parameters).
const CONSTRAINTS: Constraints = Constraints {
    name: "Anthropic",
    temperature: 0.0..=1.0,
    top_p: 0.0..=1.0,
    penalties: -2.0..=2.0,
    max_stop_sequences: usize::MAX,
    stop_needs_text: true,
    tool_names: Some(ToolNames {
        max_len: 128,
        extra: &[],
    }),
    image_types: &["image/jpeg", "image/png", "image/gif", "image/webp"],
    max_image_bytes: 5 * 1024 * 1024,
    max_images: 100,
};

/// The smallest thinking budget Anthropic takes.
const MIN_THINKING_BUDGET: u64 = 1024;

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
        Some(v @ Value::Object(_)) => {
            let budget = v.get("budget_tokens").and_then(Value::as_u64);
            if budget.is_some_and(|b| b < MIN_THINKING_BUDGET) {
                return Err(ApiError::invalid_param(
                    "thinking.budget_tokens",
                    format!("Anthropic takes a thinking budget of at least {MIN_THINKING_BUDGET} tokens."),
                ));
            }
            return Ok(Some(v.clone()));
        }
        Some(Value::Null) | None => {}
        Some(_) => {
            return Err(ApiError::invalid_param(
                "thinking",
                "`thinking` must be an object such as {\"type\": \"enabled\", \"budget_tokens\": 2048}.",
            ))
        }
    }
    Ok(req
        .reasoning_effort
        .as_deref()
        .map(thinking_budget)
        .transpose()?
        .flatten()
        .map(|budget| json!({"type": "enabled", "budget_tokens": budget})))
}

/// The thinking budget of a `reasoning_effort` (`None`: no thinking), for every host of
/// Claude.
pub fn thinking_budget(effort: &str) -> Result<Option<u32>, ApiError> {
    Ok(Some(match effort {
        "none" => return Ok(None),
        "minimal" | "low" => 1024,
        "medium" => 4096,
        "high" => 16384,
        "xhigh" => 32768,
        other => {
            return Err(ApiError::invalid_param(
                "reasoning_effort",
                format!(
                    "Invalid value for `reasoning_effort`: `{other}` (expected none, minimal, low, medium, high or xhigh)."
                ),
            ))
        }
    }))
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
    let temperature = match CONSTRAINTS.sampling(settings, "temperature", req.temperature)? {
        // 1 is Anthropic's default: harmless with thinking, so left out rather than refused.
        Some(t) if thinking_on && (t - 1.0).abs() < f64::EPSILON => None,
        Some(_) if thinking_on => {
            unsupported(settings, "temperature", WITH_THINKING)?;
            None
        }
        t => t,
    };
    let top_p = match CONSTRAINTS.sampling(settings, "top_p", req.top_p)? {
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
    // Signed thinking goes first, as the answer gave it; unsigned reasoning cannot go back.
    let mut blocks: Vec<Block> = m
        .thinking_blocks
        .iter()
        .flatten()
        .filter(|b| b.is_signed())
        .map(|b| match b {
            ThinkingBlock::Thinking {
                thinking,
                signature,
            } => Block::Thinking {
                thinking: thinking.clone(),
                signature: signature.clone().unwrap_or_default(),
            },
            ThinkingBlock::RedactedThinking { data } => {
                Block::RedactedThinking { data: data.clone() }
            }
        })
        .collect();
    blocks.extend(content_blocks(m.content.as_ref(), path, Allowed::TextOnly)?);
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

/// Whether the assistant turn a tool loop continues starts with signed thinking.
fn continued_turn_is_signed(turns: &[Turn]) -> bool {
    let assistant = turns.iter().rev().nth(1);
    matches!(
        assistant.and_then(|t| t.content.first()),
        Some(Block::Thinking { .. } | Block::RedactedThinking { .. })
    )
}

/// Leaves out the thinking handed back, and the assistant turns that held nothing else
/// (Anthropic joins the same-role turns around them).
fn without_thinking_blocks(turns: &mut Vec<Turn>) {
    for turn in turns.iter_mut() {
        turn.content
            .retain(|b| !matches!(b, Block::Thinking { .. } | Block::RedactedThinking { .. }));
    }
    turns.retain(|t| !t.content.is_empty());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::anthropic::PROVIDER;
    use crate::providers::testing::*;
    use crate::testkit::test;

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

    /// `model` and `max_tokens` are added to the expected body when it does not name them.
    struct Case {
        name: &'static str,
        /// The OpenAI request.
        request: &'static str,
        /// The Messages body.
        expected: &'static str,
    }

    const REQUESTS: &[Case] = &[
        Case {
            name: "system and developer messages become the system prompt",
            request: r#"{"model":"m","messages":[{"role":"system","content":"Be brief."},
                {"role":"developer","content":[{"type":"text","text":"Use metric units."}]},
                {"role":"user","content":"hi"}]}"#,
            expected: r#"{"system":[{"type":"text","text":"Be brief."},{"type":"text","text":"Use metric units."}],
                "messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}"#,
        },
        Case {
            name: "consecutive turns of one role are merged; empty text is left out",
            request: r#"{"model":"m","messages":[{"role":"user","content":"a"},{"role":"user","content":""},
                {"role":"user","content":"b"},{"role":"assistant","content":"c"},{"role":"assistant","content":"d"}]}"#,
            expected: r#"{"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},
                {"role":"assistant","content":[{"type":"text","text":"c"},{"type":"text","text":"d"}]}]}"#,
        },
        Case {
            name: "images by https URL and base64 data URL",
            request: r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"what is this?"},
                {"type":"image_url","image_url":{"url":"https://example.com/cat.png","detail":"high"}},
                {"type":"image_url","image_url":{"url":"data:image/jpeg;base64,/9j/4AAQ"}}]}]}"#,
            expected: r#"{"messages":[{"role":"user","content":[{"type":"text","text":"what is this?"},
                {"type":"image","source":{"type":"url","url":"https://example.com/cat.png"}},
                {"type":"image","source":{"type":"base64","media_type":"image/jpeg","data":"/9j/4AAQ"}}]}]}"#,
        },
        Case {
            name: "PDF files become documents",
            request: r#"{"model":"m","messages":[{"role":"user","content":[
                {"type":"file","file":{"filename":"a.pdf","file_data":"data:application/pdf;base64,JVBERi0"}}]}]}"#,
            expected: r#"{"messages":[{"role":"user","content":[
                {"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0"}}]}]}"#,
        },
        Case {
            name: "tools, tool calls and parallel results grouped in one user turn, user text after them",
            request: r#"{"model":"m","messages":[{"role":"user","content":"weather in Paris and Rome?"},
                {"role":"assistant","content":"Checking.","tool_calls":[
                  {"id":"toolu_1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}},
                  {"id":"toolu_2","type":"function","function":{"name":"weather","arguments":""}}]},
                {"role":"tool","tool_call_id":"toolu_1","content":"18C"},
                {"role":"tool","tool_call_id":"toolu_2","content":[{"type":"text","text":"21C"}]},
                {"role":"user","content":"and in F?"}],
              "tools":[{"type":"function","function":{"name":"weather","description":"Weather now",
                "parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}},
                {"type":"function","function":{"name":"clock"}}]}"#,
            expected: r#"{"messages":[{"role":"user","content":[{"type":"text","text":"weather in Paris and Rome?"}]},
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
        },
        Case {
            name: "tool_choice auto with parallel calls off",
            request: r#"{"model":"m","messages":[{"role":"user","content":"x"}],"tool_choice":"auto","parallel_tool_calls":false,
                "tools":[{"type":"function","function":{"name":"f"}}]}"#,
            expected: r#"{"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],
                "tools":[{"name":"f","input_schema":{"type":"object","properties":{}}}],
                "tool_choice":{"type":"auto","disable_parallel_tool_use":true}}"#,
        },
        Case {
            name: "tool_choice required",
            request: r#"{"model":"m","messages":[{"role":"user","content":"x"}],"tool_choice":"required",
                "tools":[{"type":"function","function":{"name":"f"}}]}"#,
            expected: r#"{"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],
                "tools":[{"name":"f","input_schema":{"type":"object","properties":{}}}],"tool_choice":{"type":"any"}}"#,
        },
        Case {
            name: "tool_choice none",
            request: r#"{"model":"m","messages":[{"role":"user","content":"x"}],"tool_choice":"none",
                "tools":[{"type":"function","function":{"name":"f"}}]}"#,
            expected: r#"{"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],
                "tools":[{"name":"f","input_schema":{"type":"object","properties":{}}}],"tool_choice":{"type":"none"}}"#,
        },
        Case {
            name: "tool_choice naming a function",
            request: r#"{"model":"m","messages":[{"role":"user","content":"x"}],
                "tool_choice":{"type":"function","function":{"name":"f"}},
                "tools":[{"type":"function","function":{"name":"f"}}]}"#,
            expected: r#"{"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],
                "tools":[{"name":"f","input_schema":{"type":"object","properties":{}}}],"tool_choice":{"type":"tool","name":"f"}}"#,
        },
        Case {
            name: "tool_choice without tools is left out",
            request: r#"{"model":"m","messages":[{"role":"user","content":"x"}],"tool_choice":"auto"}"#,
            expected: r#"{"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]}"#,
        },
        Case {
            name: "sampling parameters, stop list, user, top_k, stream",
            request: r#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":100,"temperature":0.2,
                "top_p":0.9,"stop":["END","STOP"],"user":"u-42","top_k":40,"stream":true,
                "stream_options":{"include_usage":true},"n":1,"logprobs":false,"presence_penalty":0,"store":false}"#,
            expected: r#"{"max_tokens":100,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],
                "temperature":0.2,"top_p":0.9,"stop_sequences":["END","STOP"],"metadata":{"user_id":"u-42"},
                "top_k":40,"stream":true}"#,
        },
        Case {
            name: "stop as a string; max_completion_tokens wins over max_tokens",
            request: r#"{"model":"m","messages":[{"role":"user","content":"x"}],"stop":"END",
                "max_tokens":10,"max_completion_tokens":20}"#,
            expected: r#"{"max_tokens":20,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],
                "stop_sequences":["END"]}"#,
        },
        Case {
            name: "reasoning_effort becomes a thinking budget, max_tokens raised above it",
            request: r#"{"model":"m","messages":[{"role":"user","content":"x"}],"reasoning_effort":"medium","max_tokens":1000}"#,
            expected: r#"{"max_tokens":5096,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],
                "thinking":{"type":"enabled","budget_tokens":4096}}"#,
        },
        Case {
            name: "reasoning_effort high keeps a larger cap",
            request: r#"{"model":"m","messages":[{"role":"user","content":"x"}],"reasoning_effort":"high","max_tokens":20000,
                "temperature":1,"top_p":0.97}"#,
            expected: r#"{"max_tokens":20000,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],
                "top_p":0.97,"thinking":{"type":"enabled","budget_tokens":16384}}"#,
        },
        Case {
            name: "reasoning_effort low; none means no thinking",
            request: r#"{"model":"m","messages":[{"role":"user","content":"x"}],"reasoning_effort":"low"}"#,
            expected: r#"{"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],
                "thinking":{"type":"enabled","budget_tokens":1024}}"#,
        },
        Case {
            name: "reasoning_effort none",
            request: r#"{"model":"m","messages":[{"role":"user","content":"x"}],"reasoning_effort":"none"}"#,
            expected: r#"{"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]}"#,
        },
        Case {
            name: "a native thinking object passes through",
            request: r#"{"model":"m","messages":[{"role":"user","content":"x"}],"thinking":{"type":"enabled","budget_tokens":2000}}"#,
            expected: r#"{"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],
                "thinking":{"type":"enabled","budget_tokens":2000}}"#,
        },
        Case {
            name: "json_object asks for JSON in the system prompt",
            request: r#"{"model":"m","messages":[{"role":"system","content":"S"},{"role":"user","content":"x"}],
                "response_format":{"type":"json_object"}}"#,
            expected: r#"{"system":[{"type":"text","text":"S"},
                {"type":"text","text":"Answer with one valid JSON object and nothing else: no prose, no code fences."}],
                "messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]}"#,
        },
        Case {
            name: "json_schema becomes a forced tool",
            request: r#"{"model":"m","messages":[{"role":"user","content":"x"}],
                "response_format":{"type":"json_schema","json_schema":{"name":"person","strict":true,
                  "schema":{"type":"object","properties":{"name":{"type":"string"}}}}}}"#,
            expected: r#"{"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],
                "tools":[{"name":"person","description":"Give your final answer by calling this tool with it as the input.",
                  "input_schema":{"type":"object","properties":{"name":{"type":"string"}}}}],
                "tool_choice":{"type":"tool","name":"person"}}"#,
        },
        Case {
            name: "json_schema beside client tools: some tool must be called",
            request: r#"{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],
                "response_format":{"type":"json_schema","json_schema":{"name":"out","description":"The answer"}}}"#,
            expected: r#"{"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],
                "tools":[{"name":"f","input_schema":{"type":"object","properties":{}}},
                  {"name":"out","description":"The answer","input_schema":{"type":"object"}}],
                "tool_choice":{"type":"any"}}"#,
        },
        Case {
            name: "json_schema with thinking: offered and asked for, not forced",
            request: r#"{"model":"m","messages":[{"role":"user","content":"x"}],"reasoning_effort":"low","max_tokens":2000,
                "response_format":{"type":"json_schema","json_schema":{"name":"out","schema":{"type":"object"}}}}"#,
            expected: r#"{"max_tokens":2000,"system":[{"type":"text","text":"Give your final answer by calling the `out` tool."}],
                "messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],
                "tools":[{"name":"out","description":"Give your final answer by calling this tool with it as the input.",
                  "input_schema":{"type":"object"}}],
                "tool_choice":{"type":"auto"},"thinking":{"type":"enabled","budget_tokens":1024}}"#,
        },
        Case {
            name: "assistant refusal text and echoed reasoning: text kept, reasoning left out",
            request: r#"{"model":"m","messages":[{"role":"user","content":"x"},
                {"role":"assistant","content":[{"type":"refusal","refusal":"No."}],"reasoning_content":"hmm"},
                {"role":"user","content":"please"}]}"#,
            expected: r#"{"messages":[{"role":"user","content":[{"type":"text","text":"x"}]},
                {"role":"assistant","content":[{"type":"text","text":"No."}]},
                {"role":"user","content":[{"type":"text","text":"please"}]}]}"#,
        },
        Case {
            name: "a tool loop continued with reasoning runs without thinking (no signatures to replay)",
            request: r#"{"model":"m","reasoning_effort":"high","max_tokens":100,"messages":[{"role":"user","content":"x"},
                {"role":"assistant","tool_calls":[{"id":"t1","type":"function","function":{"name":"f","arguments":"{}"}}]},
                {"role":"tool","tool_call_id":"t1","content":"ok"}],
              "tools":[{"type":"function","function":{"name":"f"}}]}"#,
            expected: r#"{"max_tokens":100,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]},
                {"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f","input":{}}]},
                {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":[{"type":"text","text":"ok"}]}]}],
              "tools":[{"name":"f","input_schema":{"type":"object","properties":{}}}]}"#,
        },
        Case {
            name: "signed thinking handed back goes first in its turn, and the tool loop keeps thinking",
            request: r#"{"model":"m","reasoning_effort":"low","max_tokens":2000,"messages":[{"role":"user","content":"x"},
                {"role":"assistant","content":"Checking.","reasoning_content":"Need f.",
                  "thinking_blocks":[{"type":"thinking","thinking":"Need f.","signature":"sig-1"},
                    {"type":"redacted_thinking","data":"cmVk"},{"type":"thinking","thinking":"unsigned"}],
                  "tool_calls":[{"id":"t1","type":"function","function":{"name":"f","arguments":"{}"}}]},
                {"role":"tool","tool_call_id":"t1","content":"ok"}],
              "tools":[{"type":"function","function":{"name":"f"}}]}"#,
            expected: r#"{"max_tokens":2000,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]},
                {"role":"assistant","content":[{"type":"thinking","thinking":"Need f.","signature":"sig-1"},
                  {"type":"redacted_thinking","data":"cmVk"},{"type":"text","text":"Checking."},
                  {"type":"tool_use","id":"t1","name":"f","input":{}}]},
                {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":[{"type":"text","text":"ok"}]}]}],
              "tools":[{"name":"f","input_schema":{"type":"object","properties":{}}}],
              "thinking":{"type":"enabled","budget_tokens":1024}}"#,
        },
        Case {
            name: "without thinking, thinking handed back is left out, and turns that held only it",
            request: r#"{"model":"m","messages":[{"role":"user","content":"x"},
                {"role":"assistant","content":"A.","thinking_blocks":[{"type":"thinking","thinking":"hm","signature":"sig-1"}]},
                {"role":"assistant","thinking_blocks":[{"type":"redacted_thinking","data":"cmVk"}]},
                {"role":"user","content":"y"}]}"#,
            expected: r#"{"messages":[{"role":"user","content":[{"type":"text","text":"x"}]},
                {"role":"assistant","content":[{"type":"text","text":"A."}]},
                {"role":"user","content":[{"type":"text","text":"y"}]}]}"#,
        },
        Case {
            name: "tool history without tools: the tools used are declared and none may be called",
            request: r#"{"model":"m","messages":[{"role":"user","content":"x"},
                {"role":"assistant","tool_calls":[{"id":"t1","type":"function","function":{"name":"f","arguments":"{}"}}]},
                {"role":"tool","tool_call_id":"t1","content":""},{"role":"user","content":"thanks"}]}"#,
            expected: r#"{"messages":[{"role":"user","content":[{"type":"text","text":"x"}]},
                {"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f","input":{}}]},
                {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1"},{"type":"text","text":"thanks"}]}],
              "tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"none"}}"#,
        },
        Case {
            name: "safety_identifier is the user id",
            request: r#"{"model":"m","messages":[{"role":"user","content":"x"}],"safety_identifier":"hash-1","user":"old"}"#,
            expected: r#"{"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"metadata":{"user_id":"hash-1"}}"#,
        },
    ];

    #[test]
    fn requests_map_to_messages() {
        for case in REQUESTS {
            let got = translate(case.request, ModelSettings::default())
                .unwrap_or_else(|e| panic!("{}: {e}", case.name));
            let mut want: Value = serde_json::from_str(case.expected).unwrap();
            let obj = want.as_object_mut().unwrap();
            obj.entry("model").or_insert(json!("claude-x"));
            obj.entry("max_tokens").or_insert(json!(4096));
            assert_eq!(got, want, "{}", case.name);
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
        let up = send_chat(p.as_ref(), body, &attempt("claude-x")).unwrap();
        let sent: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(sent["max_tokens"], 1234);
    }

    /// A request Anthropic cannot honour as it is; `params` (its fields beside one user
    /// message) names the case.
    struct Refused {
        params: &'static str,
        /// The parameter the 400 names.
        param: &'static str,
        /// The body when the model drops unsupported parameters (`model`, `max_tokens` and
        /// the message added); `None`: refused even then.
        dropped: Option<&'static str>,
    }

    const REFUSED: &[Refused] = &[
        Refused {
            params: r#""n":2"#,
            param: "n",
            dropped: Some("{}"),
        },
        Refused {
            params: r#""seed":7"#,
            param: "seed",
            dropped: Some("{}"),
        },
        Refused {
            params: r#""presence_penalty":0.5"#,
            param: "presence_penalty",
            dropped: Some("{}"),
        },
        Refused {
            params: r#""frequency_penalty":0.5"#,
            param: "frequency_penalty",
            dropped: Some("{}"),
        },
        Refused {
            params: r#""logit_bias":{"50256":-100}"#,
            param: "logit_bias",
            dropped: Some("{}"),
        },
        Refused {
            params: r#""logprobs":true,"top_logprobs":2"#,
            param: "logprobs",
            dropped: Some("{}"),
        },
        Refused {
            params: r#""metadata":{"k":"v"}"#,
            param: "metadata",
            dropped: Some("{}"),
        },
        Refused {
            params: r#""service_tier":"flex""#,
            param: "service_tier",
            dropped: Some("{}"),
        },
        Refused {
            params: r#""temperature":1.5"#,
            param: "temperature",
            dropped: Some("{}"),
        },
        Refused {
            params: r#""reasoning_effort":"low","max_tokens":4000,"temperature":0.3"#,
            param: "temperature",
            dropped: Some(
                r#"{"max_tokens":4000,"thinking":{"type":"enabled","budget_tokens":1024}}"#,
            ),
        },
        Refused {
            params: r#""reasoning_effort":"low","max_tokens":4000,"top_p":0.5"#,
            param: "top_p",
            dropped: Some(
                r#"{"max_tokens":4000,"thinking":{"type":"enabled","budget_tokens":1024}}"#,
            ),
        },
        Refused {
            params: r#""reasoning_effort":"low","max_tokens":4000,"top_k":5"#,
            param: "top_k",
            dropped: Some(
                r#"{"max_tokens":4000,"thinking":{"type":"enabled","budget_tokens":1024}}"#,
            ),
        },
        Refused {
            params: r#""reasoning_effort":"low","max_tokens":4000,"tool_choice":"required","tools":[{"type":"function","function":{"name":"f"}}]"#,
            param: "tool_choice",
            dropped: Some(
                r#"{"max_tokens":4000,"thinking":{"type":"enabled","budget_tokens":1024},
                "tools":[{"name":"f","input_schema":{"type":"object","properties":{}}}],"tool_choice":{"type":"auto"}}"#,
            ),
        },
        Refused {
            params: r#""reasoning_effort":"extreme""#,
            param: "reasoning_effort",
            dropped: None,
        },
        Refused {
            params: r#""thinking":true"#,
            param: "thinking",
            dropped: None,
        },
        Refused {
            params: r#""top_k":-1"#,
            param: "top_k",
            dropped: None,
        },
        Refused {
            params: r#""tools":[{"type":"web_search","function":{"name":"f"}}]"#,
            param: "tools[0].type",
            dropped: None,
        },
        Refused {
            params: r#""tools":[{"type":"function","function":{"name":"out"}}],"response_format":{"type":"json_schema","json_schema":{"name":"out"}}"#,
            param: "response_format",
            dropped: None,
        },
    ];

    #[test]
    fn unsupported_parameters_are_refused_by_name_or_dropped() {
        for case in REFUSED {
            let (params, param) = (case.params, case.param);
            let json =
                format!(r#"{{"model":"m","messages":[{{"role":"user","content":"x"}}],{params}}}"#);
            let err = translate(&json, ModelSettings::default()).unwrap_err();
            assert_refused(&err, param, case.dropped.is_some(), params);
            match case.dropped {
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

    /// A message Anthropic cannot take, whatever the model's settings.
    struct Invalid {
        message: &'static str,
        /// The parameter the 400 names.
        param: &'static str,
    }

    const INVALID_MESSAGES: &[Invalid] = &[
        Invalid {
            message: r#"{"role":"function","name":"f","content":"x"}"#,
            param: "messages[0].role",
        },
        Invalid {
            message: r#"{"role":"tool","content":"x"}"#,
            param: "messages[0].tool_call_id",
        },
        Invalid {
            message: r#"{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"[1]"}}]}"#,
            param: "messages[0].tool_calls[0].function.arguments",
        },
        Invalid {
            message: r#"{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{oops"}}]}"#,
            param: "messages[0].tool_calls[0].function.arguments",
        },
        Invalid {
            message: r#"{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AA","format":"wav"}}]}"#,
            param: "messages[0].content[0]",
        },
        Invalid {
            message: r#"{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}"#,
            param: "messages[0].content[0]",
        },
        Invalid {
            message: r#"{"role":"user","content":[{"type":"text","text":"a"},{"type":"file","file":{"file_id":"file-1"}}]}"#,
            param: "messages[0].content[1].file",
        },
    ];

    #[test]
    fn invalid_messages_are_refused_by_path() {
        for case in INVALID_MESSAGES {
            let message = case.message;
            let json = format!(r#"{{"model":"m","messages":[{message}]}}"#);
            let err = translate(&json, drop_params()).unwrap_err();
            assert_refused(&err, case.param, false, message);
        }
    }

    /// A request Anthropic is certain to refuse (its messages and other fields), whatever the
    /// model's settings, and the parameter the local 400 names.
    struct Rejected {
        name: &'static str,
        request: &'static str,
        param: &'static str,
    }

    const REJECTED: &[Rejected] = &[
        Rejected {
            name: "nothing but system messages",
            request: r#""messages":[{"role":"system","content":"S"},{"role":"developer","content":"D"}]"#,
            param: "messages",
        },
        Rejected {
            name: "messages whose content is empty",
            request: r#""messages":[{"role":"system","content":"S"},{"role":"user","content":""},{"role":"assistant","content":[]}]"#,
            param: "messages",
        },
        Rejected {
            name: "nothing but thinking handed back, while not thinking",
            request: r#""messages":[{"role":"system","content":"S"},{"role":"assistant","thinking_blocks":[{"type":"thinking","thinking":"hm","signature":"s"}]}]"#,
            param: "messages",
        },
        Rejected {
            name: "a stop sequence of white space",
            request: r#""messages":[{"role":"user","content":"x"}],"stop":"\n""#,
            param: "stop",
        },
        Rejected {
            name: "an empty stop sequence in a list",
            request: r#""messages":[{"role":"user","content":"x"}],"stop":["END",""]"#,
            param: "stop[1]",
        },
        Rejected {
            name: "a tool name with a slash",
            request: r#""messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"fs/read"}}]"#,
            param: "tools[0].function.name",
        },
        Rejected {
            name: "an image type Anthropic does not read",
            request: r#""messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/bmp;base64,Qk0="}}]}]"#,
            param: "messages[0].content[0].image_url",
        },
        Rejected {
            name: "a tool result without its tool_use",
            request: r#""messages":[{"role":"user","content":"x"},{"role":"tool","tool_call_id":"t9","content":"r"}]"#,
            param: "messages[1].tool_call_id",
        },
        Rejected {
            name: "a tool_use without its result",
            request: r#""messages":[{"role":"user","content":"x"},
                {"role":"assistant","tool_calls":[{"id":"t1","type":"function","function":{"name":"f","arguments":"{}"}}]},
                {"role":"user","content":"go on"}]"#,
            param: "messages[1].tool_calls[0]",
        },
        Rejected {
            name: "a thinking budget under 1024",
            request: r#""messages":[{"role":"user","content":"x"}],"thinking":{"type":"enabled","budget_tokens":500}"#,
            param: "thinking.budget_tokens",
        },
        Rejected {
            name: "an output cap of 0",
            request: r#""messages":[{"role":"user","content":"x"}],"max_tokens":0"#,
            param: "max_tokens",
        },
        Rejected {
            name: "a temperature below 0",
            request: r#""messages":[{"role":"user","content":"x"}],"temperature":-0.5"#,
            param: "temperature",
        },
    ];

    #[test]
    fn requests_anthropic_refuses_are_refused_here() {
        for case in REJECTED {
            let json = format!(r#"{{"model":"m",{}}}"#, case.request);
            let err = translate(&json, drop_params()).unwrap_err();
            assert_refused(&err, case.param, false, case.name);
        }
    }
}
