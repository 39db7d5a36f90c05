//! An OpenAI chat request → a Converse body.

use super::wire::{
    ContentBlock, ConverseRequest, Image, ImageSource as WireImageSource, InferenceConfig,
    InputSchema, ReasoningContent, Tool, ToolChoice as WireToolChoice, ToolConfig, ToolResult,
    ToolSpec, ToolUse, Turn,
};
use crate::api::chat::{
    ChatRequest, ContentPart, ImageSource, Message, MessageContent, ResponseFormat, Role,
    ThinkingBlock, ToolChoice,
};
use crate::api::ApiError;
use crate::config::ModelSettings;
use crate::providers::anthropic::thinking_budget;
use crate::providers::checks::{self, Constraints, ToolNames};
use crate::providers::params::unsupported;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Converse request fields a client may send as they are (unknown top-level fields).
const NATIVE_FIELDS: [&str; 6] = [
    "additionalModelRequestFields",
    "additionalModelResponseFieldPaths",
    "guardrailConfig",
    "performanceConfig",
    "promptVariables",
    "requestMetadata",
];

const NOT_ON_CONVERSE: &str = "Bedrock's Converse API does not support it";

/// What Converse's reference documents of requests (the penalties are refused before, as
/// unsupported parameters; empty stop sequences are left out).
const CONSTRAINTS: Constraints = Constraints {
    name: "Bedrock's Converse API",
    temperature: 0.0..=1.0,
    top_p: 0.0..=1.0,
    penalties: -2.0..=2.0,
    max_stop_sequences: 2500,
    stop_needs_text: false,
    tool_names: Some(ToolNames {
        max_len: 64,
        extra: &[],
    }),
    image_types: &[
        "image/png",
        "image/jpeg",
        "image/jpg",
        "image/gif",
        "image/webp",
    ],
    max_image_bytes: 3_932_160,
    max_images: 20,
};

/// The output cap a thinking Claude gets when neither the request nor the model sets one
/// (Claude wants one above the thinking budget).
const THINKING_MAX_TOKENS: u32 = 4096;

/// Whether a model id (or inference profile) names a Claude model, which thinks with the
/// `thinking` field Anthropic defines.
fn is_claude(model: &str) -> bool {
    model.contains("claude")
}

/// The Converse body of a chat request to `model` (the model id is in the path, not here).
///
/// Contract: `reasoning_effort` asks Claude models for thinking
/// (`additionalModelRequestFields.thinking`, budgets as Anthropic's, the output cap raised
/// above the budget), unless the client set that field itself; other models refuse it as
/// unsupported. Signed reasoning handed back (`thinking_blocks`) goes first in its assistant
/// turn while thinking is on, and is left out otherwise.
pub(super) fn converse_request<'a>(
    req: &'a ChatRequest,
    model: &str,
    settings: &ModelSettings,
) -> Result<ConverseRequest<'a>, ApiError> {
    refuse_unsupported(req, model, settings)?;
    let Conversation {
        system,
        turns: mut messages,
        first,
    } = converse_messages(&req.messages)?;
    checks::check(req, &CONSTRAINTS)?;
    match (messages.first(), first) {
        (Some(turn), Some(at)) if turn.role != "user" => {
            return Err(ApiError::invalid_param(
                format!("messages[{at}].role"),
                "Bedrock's Converse API needs the conversation to start with a user message.",
            ));
        }
        (Some(_), _) => {}
        (None, _) => return Err(checks::empty_conversation(CONSTRAINTS.name)),
    }
    let tool_config = tool_config(req, settings)?;
    if tool_config.is_none() {
        if let Some(at) = req.messages.iter().position(|m| {
            m.role == Role::Tool || m.tool_calls.as_ref().is_some_and(|c| !c.is_empty())
        }) {
            return Err(ApiError::invalid_param(
                "tools",
                format!(
                    "Bedrock's Converse API needs the tools a conversation uses (messages[{at}]) declared in `tools`."
                ),
            ));
        }
    }
    let mut fields = match req.extra.get("additionalModelRequestFields") {
        None | Some(Value::Null) => None,
        Some(Value::Object(fields)) => Some(fields.clone()),
        Some(_) => {
            return Err(ApiError::invalid_param(
                "additionalModelRequestFields",
                "`additionalModelRequestFields` must be an object.",
            ))
        }
    };
    let client_thinking = fields
        .as_ref()
        .and_then(|f| f.get("thinking"))
        .filter(|t| !t.is_null());
    let client_thinks =
        client_thinking.is_some_and(|t| t.get("type").and_then(Value::as_str) != Some("disabled"));
    let mut budget = match req.reasoning_effort.as_deref() {
        Some(effort) if is_claude(model) && client_thinking.is_none() => thinking_budget(effort)?,
        _ => None,
    };
    if continues_tool_loop(&messages) && !continued_turn_is_signed(&messages) {
        // Claude wants the signed reasoning of the turn being continued back; without it,
        // this step runs without the thinking the gateway would have asked for.
        budget = None;
    }
    if !(client_thinks || budget.is_some()) {
        without_reasoning(&mut messages);
    }
    let mut max_tokens = req.max_output_tokens().or(settings.max_tokens);
    let mut temperature = CONSTRAINTS.sampling(settings, "temperature", req.temperature)?;
    let mut top_p = CONSTRAINTS.sampling(settings, "top_p", req.top_p)?;
    if let Some(budget) = budget {
        let cap = max_tokens.unwrap_or(THINKING_MAX_TOKENS);
        max_tokens = Some(if cap <= budget {
            budget.saturating_add(cap)
        } else {
            cap
        });
        fields.get_or_insert_with(Map::new).insert(
            "thinking".to_owned(),
            json!({"type": "enabled", "budget_tokens": budget}),
        );
        const WITH_THINKING: &str = "Claude does not accept it together with reasoning";
        if temperature.is_some_and(|t| (t - 1.0).abs() >= f64::EPSILON) {
            unsupported(settings, "temperature", WITH_THINKING)?;
        }
        temperature = None;
        if top_p.is_some_and(|p| p < 0.95) {
            unsupported(settings, "top_p", WITH_THINKING)?;
            top_p = None;
        }
    }
    let inference_config = InferenceConfig {
        max_tokens,
        temperature,
        top_p,
        stop_sequences: req
            .stop
            .iter()
            .flat_map(|stop| &stop.0)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
            .collect(),
    };
    let native = req
        .extra
        .iter()
        .filter(|(name, _)| {
            NATIVE_FIELDS.contains(&name.as_str()) && *name != "additionalModelRequestFields"
        })
        .map(|(name, value)| (name.as_str(), value))
        .collect::<BTreeMap<_, _>>();
    Ok(ConverseRequest {
        messages,
        system,
        inference_config,
        tool_config,
        additional_model_request_fields: fields.map(Value::Object),
        native,
    })
}

/// True when the conversation ends with tool results answering the assistant's tool calls:
/// the request continues that assistant turn.
fn continues_tool_loop(turns: &[Turn]) -> bool {
    let mut last_two = turns.iter().rev();
    let (Some(user), Some(assistant)) = (last_two.next(), last_two.next()) else {
        return false;
    };
    user.role == "user"
        && matches!(user.content.first(), Some(ContentBlock::ToolResult(_)))
        && assistant
            .content
            .iter()
            .any(|b| matches!(b, ContentBlock::ToolUse(_)))
}

/// Whether the assistant turn a tool loop continues starts with signed reasoning.
fn continued_turn_is_signed(turns: &[Turn]) -> bool {
    matches!(
        turns.iter().rev().nth(1).and_then(|t| t.content.first()),
        Some(ContentBlock::ReasoningContent(_))
    )
}

/// Leaves out the reasoning handed back; a turn that held nothing else goes, and the turns
/// around it merge (Converse wants them alternating).
fn without_reasoning(turns: &mut Vec<Turn>) {
    let mut kept: Vec<Turn> = Vec::with_capacity(turns.len());
    for mut turn in std::mem::take(turns) {
        turn.content
            .retain(|b| !matches!(b, ContentBlock::ReasoningContent(_)));
        if turn.content.is_empty() {
            continue;
        }
        match kept.last_mut() {
            Some(last) if last.role == turn.role => last.content.append(&mut turn.content),
            _ => kept.push(turn),
        }
    }
    *turns = kept;
}

/// Parameters Converse cannot honour: a 400 naming the first one, unless the model's
/// settings say to drop them.
fn refuse_unsupported(
    req: &ChatRequest,
    model: &str,
    settings: &ModelSettings,
) -> Result<(), ApiError> {
    let json_format = matches!(
        req.response_format,
        Some(ResponseFormat::JsonObject | ResponseFormat::JsonSchema { .. })
    );
    let checks = [
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
        (
            "reasoning_effort",
            req.reasoning_effort.is_some() && !is_claude(model),
        ),
        (
            "parallel_tool_calls",
            req.parallel_tool_calls == Some(false),
        ),
    ];
    for (param, used) in checks {
        if used {
            unsupported(settings, param, NOT_ON_CONVERSE)?;
        }
    }
    for name in req.extra.keys() {
        if !NATIVE_FIELDS.contains(&name.as_str()) {
            unsupported(
                settings,
                name,
                "Bedrock's Converse API has no such parameter; model-specific fields go in `additionalModelRequestFields`",
            )?;
        }
    }
    Ok(())
}

/// A request's messages as Converse takes them.
struct Conversation {
    system: Vec<ContentBlock>,
    /// The turns, same-role neighbours merged.
    turns: Vec<Turn>,
    /// The message the first turn comes from.
    first: Option<usize>,
}

/// System prompts and turns; messages without content are left out.
fn converse_messages(messages: &[Message]) -> Result<Conversation, ApiError> {
    let mut system = Vec::new();
    let mut turns: Vec<Turn> = Vec::new();
    let mut first = None;
    for (i, m) in messages.iter().enumerate() {
        let (role, blocks) = match m.role {
            Role::System | Role::Developer => {
                system.extend(text_block(&m.text()));
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
        // Converse refuses a turn without content: a message with none is left out.
        if blocks.is_empty() {
            continue;
        }
        first.get_or_insert(i);
        match turns.last_mut() {
            Some(last) if last.role == role => last.content.extend(blocks),
            _ => turns.push(Turn {
                role,
                content: blocks,
            }),
        }
    }
    Ok(Conversation {
        system,
        turns,
        first,
    })
}

fn user_blocks(m: &Message, i: usize) -> Result<Vec<ContentBlock>, ApiError> {
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
fn text_block(text: &str) -> Option<ContentBlock> {
    (!text.is_empty()).then(|| ContentBlock::Text(text.to_owned()))
}

fn image_block(source: ImageSource) -> Result<ContentBlock, String> {
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
            Ok(ContentBlock::Image(Image {
                format,
                source: WireImageSource {
                    bytes: data.to_owned(),
                },
            }))
        }
        ImageSource::Url(_) => {
            Err("Bedrock takes images inline only: send them as base64 `data:` URLs".to_owned())
        }
    }
}

fn assistant_blocks(m: &Message, i: usize) -> Result<Vec<ContentBlock>, ApiError> {
    // Signed reasoning goes first, as the answer gave it; unsigned reasoning cannot go back.
    let mut blocks: Vec<ContentBlock> = m
        .thinking_blocks
        .iter()
        .flatten()
        .filter(|b| b.is_signed())
        .map(|b| match b {
            ThinkingBlock::Thinking {
                thinking,
                signature,
            } => ReasoningContent::ReasoningText {
                text: thinking.clone(),
                signature: signature.clone().unwrap_or_default(),
            },
            ThinkingBlock::RedactedThinking { data } => {
                ReasoningContent::RedactedContent(data.clone())
            }
        })
        .map(ContentBlock::ReasoningContent)
        .collect();
    blocks.extend(text_block(&m.text()));
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
        blocks.push(ContentBlock::ToolUse(ToolUse {
            tool_use_id: call.id.clone(),
            name: call.function.name.clone(),
            input,
        }));
    }
    Ok(blocks)
}

fn tool_result_block(m: &Message, i: usize) -> Result<ContentBlock, ApiError> {
    let id = m.tool_call_id.as_deref().ok_or_else(|| {
        ApiError::invalid_param(
            format!("messages[{i}].tool_call_id"),
            "tool messages need the `tool_call_id` they answer",
        )
    })?;
    Ok(ContentBlock::ToolResult(ToolResult {
        tool_use_id: id.to_owned(),
        content: vec![ContentBlock::Text(m.text())],
    }))
}

/// `toolConfig` from `tools` and `tool_choice`. `auto` is Converse's default and is left
/// out, since some Bedrock models refuse any `toolChoice`.
fn tool_config<'a>(
    req: &'a ChatRequest,
    settings: &ModelSettings,
) -> Result<Option<ToolConfig<'a>>, ApiError> {
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
        specs.push(Tool {
            tool_spec: ToolSpec {
                name: &f.name,
                description: f.description.as_deref().filter(|d| !d.is_empty()),
                input_schema: InputSchema {
                    json: f
                        .parameters
                        .clone()
                        .unwrap_or_else(|| json!({ "type": "object", "properties": {} })),
                },
            },
        });
    }
    let tool_choice = match &req.tool_choice {
        None | Some(ToolChoice::Auto) => None,
        Some(ToolChoice::Required) => Some(WireToolChoice::Any {}),
        Some(ToolChoice::Function(name)) => Some(WireToolChoice::Tool { name }),
        Some(ToolChoice::None) => {
            // Converse has no `none`: offer no tools, unless the conversation already holds
            // tool blocks (Converse then requires the tool definitions).
            let has_tool_blocks = req.messages.iter().any(|m| {
                m.role == Role::Tool || m.tool_calls.as_ref().is_some_and(|c| !c.is_empty())
            });
            if !has_tool_blocks {
                return Ok(None);
            }
            unsupported(
                settings,
                "tool_choice",
                "Bedrock cannot forbid tool calls in a conversation that already uses tools",
            )?;
            None
        }
    };
    Ok(Some(ToolConfig {
        tools: specs,
        tool_choice,
    }))
}

#[cfg(test)]
mod tests {
    use crate::config::ModelSettings;
    use crate::providers::bedrock::KEYS;
    use crate::providers::testing::*;
    use crate::testkit::test;
    use serde_json::{json, Value};

    const CLAUDE: &str = "anthropic.claude-3-5-sonnet-20240620-v1:0";

    fn converse_body(request: &str) -> Result<Value, crate::api::ApiError> {
        converse_body_with(request, ModelSettings::default())
    }

    fn converse_body_with(
        request: &str,
        settings: ModelSettings,
    ) -> Result<Value, crate::api::ApiError> {
        let p = provider(KEYS);
        let up = send_chat(p.as_ref(), request, &attempt_with(CLAUDE, settings))?;
        Ok(serde_json::from_slice(&up.body).unwrap())
    }

    struct Case {
        name: &'static str,
        /// The OpenAI request.
        request: &'static str,
        /// The Converse body.
        expected: Value,
    }

    #[test]
    fn chat_requests_to_converse() {
        let cases = [
            Case {
                name: "system, text, inference config, stop sequences",
                request: r#"{"model":"m","messages":[{"role":"system","content":"Be brief."},
                    {"role":"developer","content":[{"type":"text","text":"No jokes."}]},
                    {"role":"user","content":"Hi"}],
                    "max_tokens":100,"temperature":0.5,"top_p":0.9,"stop":["END",""],"user":"u1"}"#,
                expected: json!({
                    "system": [{"text": "Be brief."}, {"text": "No jokes."}],
                    "messages": [{"role": "user", "content": [{"text": "Hi"}]}],
                    "inferenceConfig": {"maxTokens": 100, "temperature": 0.5, "topP": 0.9, "stopSequences": ["END"]}
                }),
            },
            Case {
                name: "images inline, consecutive user turns merged",
                request: r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"What is this?"},
                    {"type":"image_url","image_url":{"url":"data:image/jpeg;base64,/9j/AA=="}}]},
                    {"role":"user","content":"Be precise."}],"max_completion_tokens":7}"#,
                expected: json!({
                    "messages": [{"role": "user", "content": [
                        {"text": "What is this?"},
                        {"image": {"format": "jpeg", "source": {"bytes": "/9j/AA=="}}},
                        {"text": "Be precise."}
                    ]}],
                    "inferenceConfig": {"maxTokens": 7}
                }),
            },
            Case {
                name: "tools, forced tool, tool use and grouped tool results",
                request: r#"{"model":"m","messages":[{"role":"user","content":"Weather in Paris and Rome?"},
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
                expected: json!({
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
            },
            Case {
                name: "required tool choice; auto is left out",
                request: r#"{"model":"m","messages":[{"role":"user","content":"x"}],"tool_choice":"required",
                    "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]}"#,
                expected: json!({
                    "messages": [{"role": "user", "content": [{"text": "x"}]}],
                    "toolConfig": {"tools": [{"toolSpec": {"name": "f", "inputSchema": {"json": {"type": "object"}}}}],
                                   "toolChoice": {"any": {}}}
                }),
            },
            Case {
                name: "tool_choice none without tool history offers no tools; native fields pass",
                request: r#"{"model":"m","messages":[{"role":"user","content":"x"}],"tool_choice":"none",
                    "tools":[{"type":"function","function":{"name":"f"}}],
                    "additionalModelRequestFields":{"top_k":5},"guardrailConfig":{"guardrailIdentifier":"g","guardrailVersion":"1"}}"#,
                expected: json!({
                    "messages": [{"role": "user", "content": [{"text": "x"}]}],
                    "additionalModelRequestFields": {"top_k": 5},
                    "guardrailConfig": {"guardrailIdentifier": "g", "guardrailVersion": "1"}
                }),
            },
        ];
        for case in cases {
            assert_eq!(
                converse_body(case.request).unwrap(),
                case.expected,
                "{}",
                case.name
            );
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

    /// A request's reasoning on a Bedrock model, and the Converse body it becomes.
    struct ReasoningCase {
        name: &'static str,
        model: &'static str,
        drop_unsupported_params: bool,
        /// The OpenAI request.
        request: &'static str,
        /// The Converse body, or the parameter a 400 names.
        expected: Result<Value, &'static str>,
    }

    #[test]
    fn reasoning_asks_claude_to_think_and_hands_signed_reasoning_back() {
        const TOOL_LOOP: &str = r#"[{"role":"user","content":"x"},
            {"role":"assistant","content":"Checking.","thinking_blocks":[{"type":"thinking","thinking":"Need f.","signature":"sig-1"},
              {"type":"redacted_thinking","data":"cmVk"}],
              "tool_calls":[{"id":"t1","type":"function","function":{"name":"f","arguments":"{}"}}]},
            {"role":"tool","tool_call_id":"t1","content":"ok"}]"#;
        let tool_loop = |thinking: bool| {
            let mut assistant = vec![
                json!({"text": "Checking."}),
                json!({"toolUse": {"toolUseId": "t1", "name": "f", "input": {}}}),
            ];
            if thinking {
                assistant.splice(0..0, [
                    json!({"reasoningContent": {"reasoningText": {"text": "Need f.", "signature": "sig-1"}}}),
                    json!({"reasoningContent": {"redactedContent": "cmVk"}}),
                ]);
            }
            json!([
                {"role": "user", "content": [{"text": "x"}]},
                {"role": "assistant", "content": assistant},
                {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": [{"text": "ok"}]}}]}
            ])
        };
        let tools = json!({"tools": [{"toolSpec": {"name": "f", "inputSchema": {"json": {"type": "object", "properties": {}}}}}]});
        let cases = [
            ReasoningCase {
                name: "reasoning_effort asks Claude to think; the cap is raised above the budget",
                model: CLAUDE,
                drop_unsupported_params: false,
                request: r#"{"model":"m","messages":[{"role":"user","content":"x"}],"reasoning_effort":"low","max_tokens":100,"temperature":1}"#,
                expected: Ok(json!({
                    "messages": [{"role": "user", "content": [{"text": "x"}]}],
                    "inferenceConfig": {"maxTokens": 1124},
                    "additionalModelRequestFields": {"thinking": {"type": "enabled", "budget_tokens": 1024}}
                })),
            },
            ReasoningCase {
                name: "a temperature other than 1 is refused while thinking",
                model: CLAUDE,
                drop_unsupported_params: false,
                request: r#"{"model":"m","messages":[{"role":"user","content":"x"}],"reasoning_effort":"medium","temperature":0.3}"#,
                expected: Err("temperature"),
            },
            ReasoningCase {
                name: "or dropped, with top_p below 0.95; a cap at the budget is raised by it",
                model: CLAUDE,
                drop_unsupported_params: true,
                request: r#"{"model":"m","messages":[{"role":"user","content":"x"}],"reasoning_effort":"medium","temperature":0.3,"top_p":0.5}"#,
                expected: Ok(json!({
                    "messages": [{"role": "user", "content": [{"text": "x"}]}],
                    "inferenceConfig": {"maxTokens": 8192},
                    "additionalModelRequestFields": {"thinking": {"type": "enabled", "budget_tokens": 4096}}
                })),
            },
            ReasoningCase {
                name: "other models do not take reasoning_effort",
                model: "amazon.nova-pro-v1:0",
                drop_unsupported_params: false,
                request: r#"{"model":"m","messages":[{"role":"user","content":"x"}],"reasoning_effort":"low"}"#,
                expected: Err("reasoning_effort"),
            },
            ReasoningCase {
                name: "the client's own thinking wins and keeps its fields",
                model: CLAUDE,
                drop_unsupported_params: false,
                request: r#"{"model":"m","messages":[{"role":"user","content":"x"}],"reasoning_effort":"high",
                    "additionalModelRequestFields":{"top_k":5,"thinking":{"type":"enabled","budget_tokens":2000}}}"#,
                expected: Ok(json!({
                    "messages": [{"role": "user", "content": [{"text": "x"}]}],
                    "additionalModelRequestFields": {"top_k": 5, "thinking": {"type": "enabled", "budget_tokens": 2000}}
                })),
            },
            ReasoningCase {
                name: "a tool loop continued with signed reasoning hands it back first and keeps thinking",
                model: CLAUDE,
                drop_unsupported_params: false,
                request: Box::leak(format!(r#"{{"model":"m","messages":{TOOL_LOOP},"reasoning_effort":"low","max_tokens":2000,
                    "tools":[{{"type":"function","function":{{"name":"f"}}}}]}}"#).into_boxed_str()),
                expected: Ok(json!({
                    "messages": tool_loop(true),
                    "inferenceConfig": {"maxTokens": 2000},
                    "toolConfig": tools,
                    "additionalModelRequestFields": {"thinking": {"type": "enabled", "budget_tokens": 1024}}
                })),
            },
            ReasoningCase {
                name: "a tool loop continued without signed reasoning runs without thinking",
                model: CLAUDE,
                drop_unsupported_params: false,
                request: r#"{"model":"m","reasoning_effort":"low","max_tokens":2000,"messages":[{"role":"user","content":"x"},
                    {"role":"assistant","content":"Checking.","thinking_blocks":[{"type":"thinking","thinking":"unsigned"}],
                      "tool_calls":[{"id":"t1","type":"function","function":{"name":"f","arguments":"{}"}}]},
                    {"role":"tool","tool_call_id":"t1","content":"ok"}],"tools":[{"type":"function","function":{"name":"f"}}]}"#,
                expected: Ok(json!({
                    "messages": tool_loop(false),
                    "inferenceConfig": {"maxTokens": 2000},
                    "toolConfig": tools
                })),
            },
            ReasoningCase {
                name: "without thinking, reasoning handed back is left out and emptied turns merge",
                model: CLAUDE,
                drop_unsupported_params: false,
                request: r#"{"model":"m","messages":[{"role":"user","content":"x"},
                    {"role":"assistant","thinking_blocks":[{"type":"thinking","thinking":"hm","signature":"s"}]},
                    {"role":"user","content":"y"}]}"#,
                expected: Ok(json!({
                    "messages": [{"role": "user", "content": [{"text": "x"}, {"text": "y"}]}]
                })),
            },
        ];
        for case in cases {
            let settings = ModelSettings {
                drop_unsupported_params: case.drop_unsupported_params,
                ..ModelSettings::default()
            };
            let p = provider(KEYS);
            let got = send_chat(
                p.as_ref(),
                case.request,
                &attempt_with(case.model, settings),
            )
            .map(|up| serde_json::from_slice::<Value>(&up.body).unwrap())
            .map_err(|e| e.param.unwrap_or_default());
            let expected = case.expected.map_err(str::to_owned);
            assert_eq!(got, expected, "{}", case.name);
        }
    }

    /// A request Converse cannot take as it is (`fields` name the case).
    struct Refusal {
        /// Fields beside the model (and one user message, unless they hold `messages`).
        fields: &'static str,
        /// The parameter the 400 names.
        param: &'static str,
        /// Refused as a parameter Converse lacks (dropped with `drop_unsupported_params`).
        unsupported: bool,
    }

    #[test]
    fn unsupported_requests_name_the_parameter() {
        let cases = [
            Refusal {
                fields: r#""n":2"#,
                param: "n",
                unsupported: true,
            },
            Refusal {
                fields: r#""logprobs":true"#,
                param: "logprobs",
                unsupported: true,
            },
            Refusal {
                fields: r#""presence_penalty":0.5"#,
                param: "presence_penalty",
                unsupported: true,
            },
            Refusal {
                fields: r#""seed":1"#,
                param: "seed",
                unsupported: true,
            },
            Refusal {
                fields: r#""response_format":{"type":"json_object"}"#,
                param: "response_format",
                unsupported: true,
            },
            Refusal {
                fields: r#""parallel_tool_calls":false"#,
                param: "parallel_tool_calls",
                unsupported: true,
            },
            Refusal {
                fields: r#""top_k":5"#,
                param: "top_k",
                unsupported: true,
            },
            Refusal {
                fields: r#""messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x/cat.png"}}]}]"#,
                param: "messages[0].content[0]",
                unsupported: false,
            },
            Refusal {
                fields: r#""messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"data:image/bmp;base64,AA"}}]}]"#,
                param: "messages[0].content[1]",
                unsupported: false,
            },
            Refusal {
                fields: r#""messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AA","format":"wav"}}]}]"#,
                param: "messages[0].content[0]",
                unsupported: false,
            },
            Refusal {
                fields: r#""messages":[{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{oops"}}]}]"#,
                param: "messages[0].tool_calls[0].function.arguments",
                unsupported: false,
            },
            Refusal {
                fields: r#""messages":[{"role":"tool","content":"r"}]"#,
                param: "messages[0].tool_call_id",
                unsupported: false,
            },
            Refusal {
                fields: r#""messages":[{"role":"function","name":"f","content":"r"}]"#,
                param: "messages[0].role",
                unsupported: false,
            },
            Refusal {
                fields: r#""tools":[{"type":"retrieval","function":{"name":"f"}}]"#,
                param: "tools[0].type",
                unsupported: false,
            },
            Refusal {
                fields: r#""messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"a","content":"r"}],
                   "tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"none""#,
                param: "tool_choice",
                unsupported: true,
            },
        ];
        for case in cases {
            let (fields, param) = (case.fields, case.param);
            let request = if fields.starts_with(r#""messages""#) {
                format!(r#"{{"model":"m",{fields}}}"#)
            } else {
                format!(r#"{{"model":"m","messages":[{{"role":"user","content":"x"}}],{fields}}}"#)
            };
            let err = converse_body(&request).unwrap_err();
            assert_refused(&err, param, case.unsupported, fields);
        }
    }

    /// A request Converse is certain to refuse, and the parameter the local 400 names.
    struct Rejected {
        name: &'static str,
        request: String,
        param: &'static str,
    }

    #[test]
    fn requests_converse_refuses_are_refused_here() {
        let user = r#"{"role":"user","content":"x"}"#;
        let calls = r#"{"role":"assistant","tool_calls":[{"id":"t1","type":"function","function":{"name":"f","arguments":"{}"}}]}"#;
        let result = r#"{"role":"tool","tool_call_id":"t1","content":"r"}"#;
        let image = |data: &str| {
            format!(
                r#"{{"role":"user","content":[{{"type":"image_url","image_url":{{"url":"data:image/png;base64,{data}"}}}}]}}"#
            )
        };
        let cases = [
            Rejected {
                name: "nothing but a system message",
                request: r#""messages":[{"role":"system","content":"S"}]"#.to_owned(),
                param: "messages",
            },
            Rejected {
                name: "a conversation that starts with the assistant",
                request: format!(
                    r#""messages":[{{"role":"system","content":"S"}},{{"role":"assistant","content":"Hi"}},{user}]"#
                ),
                param: "messages[1].role",
            },
            Rejected {
                name: "an empty user message before the assistant's",
                request: format!(
                    r#""messages":[{{"role":"user","content":""}},{{"role":"assistant","content":"Hi"}},{user}]"#
                ),
                param: "messages[1].role",
            },
            Rejected {
                name: "tool use in the history and no tools",
                request: format!(r#""messages":[{user},{calls},{result},{user}]"#),
                param: "tools",
            },
            Rejected {
                name: "a tool name over 64 characters",
                request: format!(
                    r#""messages":[{user}],"tools":[{{"type":"function","function":{{"name":"{}"}}}}]"#,
                    "f".repeat(65)
                ),
                param: "tools[0].function.name",
            },
            Rejected {
                name: "an image over 3.75 MB",
                request: format!(r#""messages":[{}]"#, image(&"A".repeat(5_300_000))),
                param: "messages[0].content[0].image_url",
            },
            Rejected {
                name: "21 images",
                request: format!(r#""messages":[{}]"#, vec![image("AAAA"); 21].join(",")),
                param: "messages[20].content[0].image_url",
            },
            Rejected {
                name: "a tool result for no call",
                request: format!(
                    r#""messages":[{user},{result}],"tools":[{{"type":"function","function":{{"name":"f"}}}}]"#
                ),
                param: "messages[1].tool_call_id",
            },
        ];
        let dropping = ModelSettings {
            drop_unsupported_params: true,
            ..ModelSettings::default()
        };
        for case in cases {
            let json = format!(r#"{{"model":"m",{}}}"#, case.request);
            let err = converse_body_with(&json, dropping.clone()).unwrap_err();
            assert_refused(&err, case.param, false, case.name);
        }
        // Out of Converse's range but within OpenAI's: unsupported, left out when dropped.
        let json = r#"{"model":"m","messages":[{"role":"user","content":"x"},{"role":"user","content":""}],"temperature":1.5}"#;
        let err = converse_body(json).unwrap_err();
        assert_refused(&err, "temperature", true, "temperature 1.5");
        assert_eq!(
            converse_body_with(json, dropping).unwrap(),
            json!({"messages": [{"role": "user", "content": [{"text": "x"}]}]})
        );
    }
}
