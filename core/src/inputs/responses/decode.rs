//! A Responses request → the canonical OpenAI chat body, and what its answer needs
//! ([`Context`]). What only a provider speaking Responses can serve is noted in the context
//! (`untranslatable`), not refused here: the request may yet go to OpenAI as it is.

use super::wire::{
    Content, FunctionCallItem, FunctionCallOutputItem, FunctionTool, MessageItem, NamespaceTool,
    Part, ReasoningConfig, ReasoningItem, Request, TextConfig, TypeProbe,
};
use super::{Context, NAMESPACE_SEPARATOR};
use crate::api::ApiError;
use crate::flow::gateway::parse_body;
use crate::inputs::Decoded;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

pub fn decode(body: &[u8]) -> Result<Decoded, ApiError> {
    let req: Request = parse_body(body)?;
    let mut decoder = Decoder::default();
    decoder.refuse_stored(&req);
    let items = decoder.input(&req)?;
    let tools = decoder.tools(req.tools.as_deref())?;
    let (tools, tool_choice) = decoder.tool_choice(req.tool_choice.as_deref(), tools)?;
    let text: TextConfig = match req.text.as_deref() {
        Some(raw) => member("text", raw)?,
        None => TextConfig::default(),
    };
    let reasoning = req.reasoning.clone().unwrap_or_default();
    let has_tools = !tools.is_empty();
    let chat = ChatBody {
        model: &req.model,
        messages: decoder.messages(req.instructions.as_deref(), items)?,
        stream: req.stream.unwrap_or(false),
        max_completion_tokens: req.max_output_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        tools,
        tool_choice: tool_choice.filter(|_| has_tools),
        parallel_tool_calls: req.parallel_tool_calls.filter(|_| has_tools),
        response_format: response_format(text)?,
        reasoning_effort: reasoning.effort.as_deref().map(|effort| match effort {
            // Responses' top effort; chat's is `xhigh`.
            "max" => "xhigh",
            other => other,
        }),
        user: req.user.as_deref().or(req.safety_identifier.as_deref()),
    };
    let chat_body = serde_json::to_vec(&chat).map_err(|e| ApiError::server(e.to_string()))?;
    let summary = reasoning
        .summary
        .as_deref()
        .or(reasoning.generate_summary.as_deref())
        .is_some_and(|s| s != "none");
    Ok(Decoded {
        chat_body,
        context: super::super::Context::Responses(Context {
            echo: echo(&req, &reasoning),
            summary,
            namespaced: decoder.namespaced,
            dropped_tools: decoder.dropped_tools,
            untranslatable: decoder.untranslatable,
        }),
    })
}

/// A member given raw, read as `T`; errors name the member and the path inside it.
fn member<'a, T: Deserialize<'a>>(name: &str, raw: &'a RawValue) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_str(raw.get());
    serde_path_to_error::deserialize(de).map_err(|e| {
        let inner = e.path().to_string();
        let param = match inner.as_str() {
            "." => name.to_owned(),
            path if path.starts_with('[') => format!("{name}{path}"),
            path => format!("{name}.{path}"),
        };
        let message = e.into_inner().to_string();
        let message = message.split(" at line ").next().unwrap_or_default();
        let missing = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.strip_suffix('`'));
        match missing {
            Some(field) => {
                let param = format!("{param}.{field}");
                let message = format!("Missing required parameter: '{param}'.");
                ApiError::invalid_param(param, message)
            }
            None => {
                ApiError::invalid_param(param.clone(), format!("Invalid `{param}`: {message}."))
            }
        }
    })
}

/// One input item, read by its kind.
enum Item {
    Message(MessageItem),
    FunctionCall(FunctionCallItem),
    FunctionCallOutput(FunctionCallOutputItem),
    Reasoning(ReasoningItem),
    /// An item a chat conversation cannot hold (outputs of hosted tools, compaction, …).
    Other,
}

#[derive(Default)]
struct Decoder {
    namespaced: Vec<(String, String, String)>,
    dropped_tools: Vec<String>,
    untranslatable: Option<ApiError>,
}

impl Decoder {
    /// Notes the first thing a translated path cannot serve.
    fn untranslatable(&mut self, param: &str, message: String) {
        if self.untranslatable.is_none() {
            self.untranslatable = Some(ApiError::invalid_param(param, message));
        }
    }

    fn refuse_stored(&mut self, req: &Request) {
        const STORED: &str = "this model is served through a translation that stores nothing: \
            send the whole conversation as `input` items";
        if req.previous_response_id.is_some() {
            self.untranslatable(
                "previous_response_id",
                format!("`previous_response_id` needs responses stored by OpenAI; {STORED}."),
            );
        }
        if req.conversation.is_some() {
            self.untranslatable(
                "conversation",
                format!("`conversation` needs conversations stored by OpenAI; {STORED}."),
            );
        }
        if req.prompt.is_some() {
            self.untranslatable(
                "prompt",
                "`prompt` needs prompt templates stored by OpenAI; this model is served through \
                 a translation: send `instructions` and `input` instead."
                    .to_owned(),
            );
        }
        if req.background == Some(true) {
            self.untranslatable(
                "background",
                "`background: true` needs responses stored by OpenAI; this model is served \
                 through a translation: leave `background` out."
                    .to_owned(),
            );
        }
    }

    /// The input items (a string is one user message).
    fn input(&mut self, req: &Request) -> Result<Vec<Item>, ApiError> {
        let Some(raw) = req.input.as_deref() else {
            if req.previous_response_id.is_none()
                && req.conversation.is_none()
                && req.prompt.is_none()
            {
                return Err(ApiError::invalid_param(
                    "input",
                    "Missing required parameter: 'input'.",
                ));
            }
            return Ok(Vec::new());
        };
        if let Ok(text) = serde_json::from_str::<String>(raw.get()) {
            return Ok(vec![Item::Message(MessageItem {
                role: "user".to_owned(),
                content: Content::Text(text),
            })]);
        }
        let raws: Vec<&RawValue> = serde_json::from_str(raw.get()).map_err(|_| {
            ApiError::invalid_param(
                "input",
                "Invalid type for 'input': expected a string or an array of input items.",
            )
        })?;
        let mut items = Vec::with_capacity(raws.len());
        for (i, raw) in raws.into_iter().enumerate() {
            let param = format!("input[{i}]");
            let probe: TypeProbe = member(&param, raw)?;
            let item = match probe.kind.as_deref().unwrap_or("message") {
                "message" => Item::Message(member(&param, raw)?),
                "function_call" => Item::FunctionCall(member(&param, raw)?),
                "function_call_output" => Item::FunctionCallOutput(member(&param, raw)?),
                "reasoning" => Item::Reasoning(member(&param, raw)?),
                "item_reference" => {
                    self.untranslatable(
                        &param,
                        "`item_reference` items need items stored by OpenAI; this model is \
                         served through a translation that stores nothing: send the items \
                         themselves."
                            .to_owned(),
                    );
                    Item::Other
                }
                _ => Item::Other,
            };
            items.push(item);
        }
        Ok(items)
    }

    /// Function tools, and those of namespaces (flattened); every other kind is dropped.
    fn tools(&mut self, raw: Option<&RawValue>) -> Result<Vec<ChatTool>, ApiError> {
        let Some(raw) = raw else {
            return Ok(Vec::new());
        };
        let raws: Vec<&RawValue> = member("tools", raw)?;
        let mut tools = Vec::with_capacity(raws.len());
        for (i, raw) in raws.into_iter().enumerate() {
            let param = format!("tools[{i}]");
            let probe: TypeProbe = member(&param, raw)?;
            match probe.kind.as_deref().unwrap_or_default() {
                "function" => tools.push(ChatTool::from(member::<FunctionTool>(&param, raw)?)),
                "namespace" => {
                    let namespace: NamespaceTool = member(&param, raw)?;
                    for (j, raw) in namespace.tools.iter().enumerate() {
                        let param = format!("{param}.tools[{j}]");
                        let probe: TypeProbe = member(&param, raw)?;
                        let kind = probe.kind.unwrap_or_default();
                        if kind != "function" {
                            self.drop_tool(&kind);
                            continue;
                        }
                        let function: FunctionTool = member(&param, raw)?;
                        let flat =
                            format!("{}{NAMESPACE_SEPARATOR}{}", namespace.name, function.name);
                        self.namespaced.push((
                            flat.clone(),
                            namespace.name.clone(),
                            function.name.clone(),
                        ));
                        let mut tool = ChatTool::from(function);
                        tool.function.name = flat;
                        tools.push(tool);
                    }
                }
                other => self.drop_tool(other),
            }
        }
        Ok(tools)
    }

    /// Notes a tool type not offered. The types are listed in a response header: what is
    /// not visible ASCII in a client's type (a line break would end the header) shows as `?`.
    fn drop_tool(&mut self, kind: &str) {
        let shown: String = kind
            .chars()
            .map(|c| if c.is_ascii_graphic() { c } else { '?' })
            .collect();
        if !self.dropped_tools.contains(&shown) {
            self.dropped_tools.push(shown);
        }
    }

    /// The chat `tool_choice`, and the tools it leaves (`allowed_tools` narrows them).
    fn tool_choice(
        &mut self,
        raw: Option<&RawValue>,
        mut tools: Vec<ChatTool>,
    ) -> Result<(Vec<ChatTool>, Option<Value>), ApiError> {
        let Some(raw) = raw else {
            return Ok((tools, None));
        };
        let choice: Value = member("tool_choice", raw)?;
        let kind = match &choice {
            Value::String(mode) => return Ok((tools, Some(Value::String(mode.clone())))),
            Value::Object(o) => o.get("type").and_then(Value::as_str).unwrap_or_default(),
            _ => {
                return Err(ApiError::invalid_param(
                    "tool_choice",
                    "`tool_choice` must be a string or an object.",
                ))
            }
        };
        match kind {
            "function" => {
                let name = choice.get("name").and_then(Value::as_str).ok_or_else(|| {
                    ApiError::invalid_param(
                        "tool_choice.name",
                        "Missing required parameter: 'tool_choice.name'.",
                    )
                })?;
                let choice = serde_json::json!({"type": "function", "function": {"name": name}});
                Ok((tools, Some(choice)))
            }
            "allowed_tools" => {
                let allowed: Vec<&str> = choice
                    .get("tools")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter(|t| t.get("type").and_then(Value::as_str) == Some("function"))
                    .filter_map(|t| t.get("name").and_then(Value::as_str))
                    .collect();
                tools.retain(|t| allowed.contains(&t.function.name.as_str()));
                let mode = choice.get("mode").and_then(Value::as_str).unwrap_or("auto");
                Ok((tools, Some(Value::String(mode.to_owned()))))
            }
            other => {
                self.untranslatable(
                    "tool_choice",
                    format!(
                        "`tool_choice` names a `{other}` tool, which only OpenAI runs; this model \
                         is served through a translation that offers function tools only."
                    ),
                );
                Ok((tools, None))
            }
        }
    }

    /// The chat conversation: `instructions` first, then the items in order. Consecutive
    /// assistant output (messages and function calls) is one assistant turn; reasoning passed
    /// back goes with the assistant turn after it.
    fn messages(
        &mut self,
        instructions: Option<&str>,
        items: Vec<Item>,
    ) -> Result<Vec<ChatMessage>, ApiError> {
        let mut messages = Vec::with_capacity(items.len() + 1);
        if let Some(text) = instructions.filter(|t| !t.is_empty()) {
            messages.push(ChatMessage::new(
                "system",
                Some(ChatContent::Text(text.to_owned())),
            ));
        }
        let mut turn = AssistantTurn::default();
        for (i, item) in items.into_iter().enumerate() {
            match item {
                Item::Message(m) if m.role == "assistant" => {
                    turn.parts.extend(self.assistant_parts(m.content));
                }
                Item::Message(m) => {
                    turn.flush(&mut messages);
                    let role = match m.role.as_str() {
                        "user" => "user",
                        // `system` is what every OpenAI-compatible server takes.
                        "system" | "developer" => "system",
                        other => {
                            return Err(ApiError::invalid_param(
                                format!("input[{i}].role"),
                                format!(
                                    "Invalid value: '{other}'. Supported values are: \
                                     'assistant', 'system', 'developer', and 'user'."
                                ),
                            ))
                        }
                    };
                    let content = self.content(m.content, &format!("input[{i}].content"));
                    messages.push(ChatMessage::new(role, Some(content)));
                }
                Item::FunctionCall(call) => turn.tool_calls.push(ChatToolCall {
                    id: call.call_id,
                    kind: "function",
                    function: ChatFunction {
                        name: match call.namespace {
                            Some(ns) => format!("{ns}{NAMESPACE_SEPARATOR}{}", call.name),
                            None => call.name,
                        },
                        arguments: call.arguments,
                    },
                }),
                Item::FunctionCallOutput(output) => {
                    turn.flush(&mut messages);
                    let content = self.content(output.output, &format!("input[{i}].output"));
                    let mut message = ChatMessage::new("tool", Some(content));
                    message.tool_call_id = Some(output.call_id);
                    messages.push(message);
                }
                Item::Reasoning(r) => {
                    let parts = r.content.filter(|c| !c.is_empty()).unwrap_or(r.summary);
                    for text in parts.into_iter().filter_map(|p| p.text) {
                        turn.reasoning.push(text);
                    }
                }
                Item::Other => {}
            }
        }
        turn.flush(&mut messages);
        Ok(messages)
    }

    fn assistant_parts(&mut self, content: Content) -> Vec<ChatPart> {
        match content {
            Content::Text(text) => vec![ChatPart::Text { text }],
            Content::Parts(parts) => parts
                .into_iter()
                .filter_map(|p| match p.kind.as_str() {
                    "refusal" => p.refusal.map(|refusal| ChatPart::Refusal { refusal }),
                    _ => p.text.map(|text| ChatPart::Text { text }),
                })
                .collect(),
        }
    }

    /// A user, system or tool message's content as chat parts.
    fn content(&mut self, content: Content, param: &str) -> ChatContent {
        let parts = match content {
            Content::Text(text) => return ChatContent::Text(text),
            Content::Parts(parts) => parts,
        };
        let mut out = Vec::with_capacity(parts.len());
        for (j, part) in parts.into_iter().enumerate() {
            let param = format!("{param}[{j}]");
            match self.part(part, &param) {
                Some(part) => out.push(part),
                None => continue,
            }
        }
        ChatContent::Parts(out)
    }

    fn part(&mut self, part: Part, param: &str) -> Option<ChatPart> {
        match part.kind.as_str() {
            "input_text" | "output_text" | "text" => Some(ChatPart::Text {
                text: part.text.unwrap_or_default(),
            }),
            "refusal" => Some(ChatPart::Refusal {
                refusal: part.refusal.unwrap_or_default(),
            }),
            "input_image" => match part.image_url {
                Some(url) => Some(ChatPart::ImageUrl {
                    image_url: ChatImage {
                        url,
                        detail: part.detail,
                    },
                }),
                None => {
                    self.stored_file(param);
                    None
                }
            },
            "input_file" if part.file_url.is_some() => {
                self.untranslatable(
                    param,
                    "An `input_file` given by `file_url` is fetched by OpenAI; this model is \
                     served through a translation: send the file as `file_data`."
                        .to_owned(),
                );
                None
            }
            "input_file" => match part.file_data {
                Some(file_data) => Some(ChatPart::File {
                    file: ChatFile {
                        file_data,
                        filename: part.filename,
                    },
                }),
                None => {
                    self.stored_file(param);
                    None
                }
            },
            "input_audio" => part
                .input_audio
                .map(|input_audio| ChatPart::InputAudio { input_audio }),
            other => {
                self.untranslatable(
                    param,
                    format!(
                        "Content parts of type `{other}` are not supported where a model is \
                         served through a translation."
                    ),
                );
                None
            }
        }
    }

    fn stored_file(&mut self, param: &str) {
        self.untranslatable(
            param,
            "A `file_id` names a file stored by OpenAI; this model is served through a \
             translation: send the image as `image_url` (a URL or data URL) or the file as \
             `file_data`."
                .to_owned(),
        );
    }
}

/// Assistant output gathered until the next turn of another role.
#[derive(Default)]
struct AssistantTurn {
    parts: Vec<ChatPart>,
    tool_calls: Vec<ChatToolCall>,
    reasoning: Vec<String>,
}

impl AssistantTurn {
    fn flush(&mut self, messages: &mut Vec<ChatMessage>) {
        let turn = std::mem::take(self);
        if turn.parts.is_empty() && turn.tool_calls.is_empty() {
            // Reasoning with no output after it has nothing to go with.
            return;
        }
        let only_text = turn
            .parts
            .iter()
            .all(|p| matches!(p, ChatPart::Text { .. }));
        let content = match turn.parts {
            parts if parts.is_empty() => None,
            parts if only_text => Some(ChatContent::Text(
                parts
                    .into_iter()
                    .filter_map(|p| match p {
                        ChatPart::Text { text } => Some(text),
                        _ => None,
                    })
                    .collect(),
            )),
            parts => Some(ChatContent::Parts(parts)),
        };
        let mut message = ChatMessage::new("assistant", content);
        message.tool_calls = turn.tool_calls;
        message.reasoning_content =
            (!turn.reasoning.is_empty()).then(|| turn.reasoning.join("\n\n"));
        messages.push(message);
    }
}

/// `text.format` → `response_format` (plain text needs none).
fn response_format(text: TextConfig) -> Result<Option<ResponseFormat>, ApiError> {
    let Some(format) = text.format else {
        return Ok(None);
    };
    match format.kind.as_str() {
        "text" => Ok(None),
        "json_object" => Ok(Some(ResponseFormat::JsonObject)),
        "json_schema" => {
            let name = format.name.ok_or_else(|| {
                ApiError::invalid_param(
                    "text.format.name",
                    "Missing required parameter: 'text.format.name'.",
                )
            })?;
            Ok(Some(ResponseFormat::JsonSchema {
                json_schema: JsonSchema {
                    name,
                    description: format.description,
                    schema: format.schema,
                    strict: format.strict,
                },
            }))
        }
        other => Err(ApiError::invalid_param(
            "text.format.type",
            format!(
                "Invalid value: '{other}'. Supported values are: 'text', 'json_object', and \
                 'json_schema'."
            ),
        )),
    }
}

/// The response object's members that echo the request (JSON members, no braces).
fn echo(req: &Request, reasoning: &ReasoningConfig) -> String {
    fn json<T: Serialize>(value: &T) -> String {
        serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
    }
    fn raw_or(raw: Option<&RawValue>, default: &str) -> String {
        raw.map_or_else(|| default.to_owned(), |r| compact(r.get()))
    }
    let reasoning = ReasoningConfig {
        effort: reasoning.effort.clone(),
        summary: reasoning
            .summary
            .clone()
            .or_else(|| reasoning.generate_summary.clone()),
        generate_summary: None,
    };
    let members = [
        ("instructions", json(&req.instructions)),
        ("max_output_tokens", json(&req.max_output_tokens)),
        ("max_tool_calls", json(&req.max_tool_calls)),
        ("metadata", raw_or(req.metadata.as_deref(), "{}")),
        (
            "parallel_tool_calls",
            json(&req.parallel_tool_calls.unwrap_or(true)),
        ),
        ("previous_response_id", "null".to_owned()),
        ("prompt_cache_key", json(&req.prompt_cache_key)),
        ("reasoning", json(&reasoning)),
        ("safety_identifier", json(&req.safety_identifier)),
        ("service_tier", json(&"default")),
        // Nothing is stored on a translated path, whatever was asked.
        ("store", "false".to_owned()),
        ("temperature", json(&req.temperature.unwrap_or(1.0))),
        (
            "text",
            raw_or(req.text.as_deref(), r#"{"format":{"type":"text"}}"#),
        ),
        (
            "tool_choice",
            raw_or(req.tool_choice.as_deref(), r#""auto""#),
        ),
        ("tools", raw_or(req.tools.as_deref(), "[]")),
        ("top_logprobs", json(&req.top_logprobs.unwrap_or(0))),
        ("top_p", json(&req.top_p.unwrap_or(1.0))),
        (
            "truncation",
            json(&req.truncation.as_deref().unwrap_or("disabled")),
        ),
        ("user", json(&req.user)),
        ("background", "false".to_owned()),
    ];
    let mut out = String::with_capacity(members.iter().map(|(k, v)| k.len() + v.len() + 4).sum());
    for (key, value) in members {
        if !out.is_empty() {
            out.push(',');
        }
        out.push('"');
        out.push_str(key);
        out.push_str("\":");
        out.push_str(&value);
    }
    out
}

/// A raw member on one line: the echo goes into stream events, whose data must be one line,
/// and a client's pretty-printed member would end it early (re-written by serde_json then).
fn compact(json: &str) -> String {
    if !json.contains(['\n', '\r']) {
        return json.to_owned();
    }
    serde_json::from_str::<serde_json::Value>(json)
        .and_then(|value| serde_json::to_string(&value))
        .unwrap_or_else(|_| "null".to_owned())
}

// ---------------------------------------------------------------------------------------------
// The chat body written

#[derive(Serialize)]
struct ChatBody<'a> {
    model: &'a str,
    messages: Vec<ChatMessage>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<ChatTool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parallel_tool_calls: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<ResponseFormat>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_effort: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ResponseFormat {
    JsonObject,
    JsonSchema { json_schema: JsonSchema },
}

#[derive(Serialize)]
struct JsonSchema {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    schema: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    strict: Option<bool>,
}

#[derive(Serialize)]
struct ChatMessage {
    role: &'static str,
    content: Option<ChatContent>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ChatToolCall>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<String>,
}

impl ChatMessage {
    fn new(role: &'static str, content: Option<ChatContent>) -> Self {
        ChatMessage {
            role,
            content,
            tool_calls: Vec::new(),
            tool_call_id: None,
            reasoning_content: None,
        }
    }
}

#[derive(Serialize)]
#[serde(untagged)]
enum ChatContent {
    Text(String),
    Parts(Vec<ChatPart>),
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ChatPart {
    Text { text: String },
    ImageUrl { image_url: ChatImage },
    File { file: ChatFile },
    InputAudio { input_audio: super::wire::AudioData },
    Refusal { refusal: String },
}

#[derive(Serialize)]
struct ChatImage {
    url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

#[derive(Serialize)]
struct ChatFile {
    file_data: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    filename: Option<String>,
}

#[derive(Serialize)]
struct ChatToolCall {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    function: ChatFunction,
}

#[derive(Serialize)]
struct ChatFunction {
    name: String,
    arguments: String,
}

#[derive(Serialize)]
struct ChatTool {
    #[serde(rename = "type")]
    kind: &'static str,
    function: ChatFunctionDefinition,
}

#[derive(Serialize)]
struct ChatFunctionDefinition {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    strict: Option<bool>,
}

impl From<FunctionTool> for ChatTool {
    fn from(f: FunctionTool) -> Self {
        ChatTool {
            kind: "function",
            function: ChatFunctionDefinition {
                name: f.name,
                description: f.description,
                parameters: f.parameters,
                strict: f.strict,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Operation;
    use crate::flow::gateway::parse_request;
    use crate::testkit::test;
    use serde_json::json;

    fn decoded(request: &Value) -> (Value, Context) {
        let body = serde_json::to_vec(request).unwrap();
        let d = decode(&body).unwrap();
        // Every canonical body is a valid chat request.
        parse_request(Operation::Responses, &body).unwrap();
        let crate::inputs::Context::Responses(ctx) = d.context else {
            panic!("a Responses context expected")
        };
        (serde_json::from_slice(&d.chat_body).unwrap(), ctx)
    }

    struct Case {
        name: &'static str,
        request: Value,
        chat: Value,
    }

    #[test]
    fn requests_become_chat_bodies() {
        let weather = json!({"type": "object", "properties": {"city": {"type": "string"}}});
        let cases = [
            Case {
                name: "string input, instructions and sampling",
                request: json!({"model": "m", "input": "hi", "instructions": "be brief",
                    "max_output_tokens": 50, "temperature": 0.2, "top_p": 0.9, "stream": true,
                    "user": "u-1", "store": false, "metadata": {"k": "v"},
                    "prompt_cache_key": "pck", "include": ["reasoning.encrypted_content"],
                    "client_metadata": {"session_id": "s"}, "truncation": "auto"}),
                chat: json!({"model": "m", "messages": [
                        {"role": "system", "content": "be brief"},
                        {"role": "user", "content": "hi"}],
                    "stream": true, "max_completion_tokens": 50, "temperature": 0.2,
                    "top_p": 0.9, "user": "u-1"}),
            },
            Case {
                name: "message items of every role and part kind",
                request: json!({"model": "m", "input": [
                    {"type": "message", "role": "developer",
                     "content": [{"type": "input_text", "text": "rules"}]},
                    {"role": "system", "content": "sys"},
                    {"role": "user", "content": [
                        {"type": "input_text", "text": "look"},
                        {"type": "input_image", "image_url": "data:image/png;base64,AAA", "detail": "low"},
                        {"type": "input_file", "file_data": "data:application/pdf;base64,BBB", "filename": "a.pdf"},
                        {"type": "input_audio", "input_audio": {"data": "CCC", "format": "wav"}}]},
                    {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
                     "content": [{"type": "output_text", "text": "seen", "annotations": []}]},
                    {"role": "user", "content": "and?"}]}),
                chat: json!({"model": "m", "messages": [
                    {"role": "system", "content": [{"type": "text", "text": "rules"}]},
                    {"role": "system", "content": "sys"},
                    {"role": "user", "content": [
                        {"type": "text", "text": "look"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA", "detail": "low"}},
                        {"type": "file", "file": {"file_data": "data:application/pdf;base64,BBB", "filename": "a.pdf"}},
                        {"type": "input_audio", "input_audio": {"data": "CCC", "format": "wav"}}]},
                    {"role": "assistant", "content": "seen"},
                    {"role": "user", "content": "and?"}]}),
            },
            Case {
                name: "a tool round trip: reasoning, text and calls are one assistant turn",
                request: json!({"model": "m", "input": [
                    {"role": "user", "content": "weather in Paris and Rome?"},
                    {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Two cities."}],
                     "encrypted_content": "gAAAA"},
                    {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
                    {"type": "function_call", "id": "fc_1", "call_id": "call_a", "name": "get_weather",
                     "arguments": "{\"city\":\"Paris\"}", "status": "completed"},
                    {"type": "function_call", "call_id": "call_b", "name": "get_weather",
                     "arguments": "{\"city\":\"Rome\"}"},
                    {"type": "function_call_output", "call_id": "call_a", "output": "18C"},
                    {"type": "function_call_output", "call_id": "call_b",
                     "output": [{"type": "input_text", "text": "21C"}]},
                    {"type": "reasoning", "id": "rs_2", "summary": [], "encrypted_content": "gAAAA"}],
                    "tools": [{"type": "function", "name": "get_weather", "description": "Weather",
                               "parameters": weather, "strict": true}],
                    "tool_choice": "auto", "parallel_tool_calls": true}),
                chat: json!({"model": "m", "messages": [
                    {"role": "user", "content": "weather in Paris and Rome?"},
                    {"role": "assistant", "content": "Checking.", "reasoning_content": "Two cities.",
                     "tool_calls": [
                        {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                        {"id": "call_b", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}}]},
                    {"role": "tool", "tool_call_id": "call_a", "content": "18C"},
                    {"role": "tool", "tool_call_id": "call_b", "content": [{"type": "text", "text": "21C"}]}],
                    "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
                               "parameters": weather, "strict": true}}],
                    "tool_choice": "auto", "parallel_tool_calls": true}),
            },
            Case {
                name: "reasoning content is preferred to its summary; a call alone has no content",
                request: json!({"model": "m", "input": [
                    {"role": "user", "content": "x"},
                    {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "short"}],
                     "content": [{"type": "reasoning_text", "text": "long"}]},
                    {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
                    {"type": "function_call_output", "call_id": "c", "output": "ok"}]}),
                chat: json!({"model": "m", "messages": [
                    {"role": "user", "content": "x"},
                    {"role": "assistant", "content": null, "reasoning_content": "long", "tool_calls": [
                        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                    {"role": "tool", "tool_call_id": "c", "content": "ok"}]}),
            },
            Case {
                name:
                    "namespace tools flattened, hosted and custom tools dropped, calls named back",
                request: json!({"model": "m", "input": [
                    {"role": "user", "content": "spawn"},
                    {"type": "function_call", "call_id": "c1", "namespace": "agents", "name": "spawn",
                     "arguments": "{}"},
                    {"type": "function_call_output", "call_id": "c1", "output": "spawned"},
                    {"type": "web_search_call", "id": "ws_1", "status": "completed",
                     "action": {"type": "search", "query": "q"}},
                    {"type": "compaction", "encrypted_content": "gAAAA"}],
                    "tools": [
                        {"type": "web_search", "external_web_access": true},
                        {"type": "namespace", "name": "agents", "description": "Sub-agents", "tools": [
                            {"type": "function", "name": "spawn", "parameters": {"type": "object"}, "strict": false},
                            {"type": "custom", "name": "grammar"}]},
                        {"type": "file_search", "vector_store_ids": ["vs_1"]},
                        {"type": "web_search"}],
                    "tool_choice": {"type": "function", "name": "agents__spawn"}}),
                chat: json!({"model": "m", "messages": [
                    {"role": "user", "content": "spawn"},
                    {"role": "assistant", "content": null, "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "agents__spawn", "arguments": "{}"}}]},
                    {"role": "tool", "tool_call_id": "c1", "content": "spawned"}],
                    "tools": [{"type": "function", "function": {"name": "agents__spawn",
                               "parameters": {"type": "object"}, "strict": false}}],
                    "tool_choice": {"type": "function", "function": {"name": "agents__spawn"}}}),
            },
            Case {
                name: "no tool left: tool_choice and parallel_tool_calls are not sent",
                request: json!({"model": "m", "input": "x", "tools": [{"type": "web_search"}],
                    "tool_choice": "required", "parallel_tool_calls": false}),
                chat: json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}),
            },
            Case {
                name: "allowed_tools narrows the tools offered",
                request: json!({"model": "m", "input": "x", "tools": [
                        {"type": "function", "name": "a"}, {"type": "function", "name": "b"}],
                    "tool_choice": {"type": "allowed_tools", "mode": "required",
                                    "tools": [{"type": "function", "name": "b"}, {"type": "web_search"}]}}),
                chat: json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
                    "tools": [{"type": "function", "function": {"name": "b"}}], "tool_choice": "required"}),
            },
            Case {
                name: "reasoning effort, max as xhigh; json_schema format",
                request: json!({"model": "m", "input": "x", "reasoning": {"effort": "max", "summary": "auto"},
                    "text": {"format": {"type": "json_schema", "name": "person", "strict": true,
                             "schema": {"type": "object", "properties": {"name": {"type": "string"}}}},
                             "verbosity": "low"}}),
                chat: json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
                    "reasoning_effort": "xhigh",
                    "response_format": {"type": "json_schema", "json_schema": {"name": "person", "strict": true,
                        "schema": {"type": "object", "properties": {"name": {"type": "string"}}}}}}),
            },
            Case {
                name: "json_object and text formats; safety_identifier as user",
                request: json!({"model": "m", "input": "x", "text": {"format": {"type": "json_object"}},
                    "reasoning": {"effort": "low"}, "safety_identifier": "hashed"}),
                chat: json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
                    "response_format": {"type": "json_object"}, "reasoning_effort": "low", "user": "hashed"}),
            },
            Case {
                name: "plain text format needs no response_format; nulls are absent",
                request: json!({"model": "m", "input": "x", "text": {"format": {"type": "text"}},
                    "instructions": null, "temperature": null, "tools": null, "tool_choice": null}),
                chat: json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}),
            },
        ];
        for case in cases {
            let (chat, _) = decoded(&case.request);
            assert_eq!(chat, case.chat, "{}", case.name);
        }
    }

    #[test]
    fn the_context_knows_summaries_namespaces_and_dropped_tools() {
        let (_, ctx) = decoded(&json!({"model": "m", "input": "x",
            "reasoning": {"summary": "auto"},
            "tools": [{"type": "web_search"}, {"type": "namespace", "name": "ns", "tools": [
                {"type": "function", "name": "f"}, {"type": "custom", "name": "c"}]},
                {"type": "local_shell"}, {"type": "web_search_preview"}, {"type": "web_search"}]}));
        assert!(ctx.summary);
        assert_eq!(
            ctx.call_name("ns__f"),
            (Some("ns".to_owned()), "f".to_owned())
        );
        assert_eq!(ctx.call_name("f"), (None, "f".to_owned()));
        assert_eq!(
            ctx.dropped_tools().as_deref(),
            Some("web_search, custom, local_shell, web_search_preview")
        );
        assert_eq!(ctx.check_translatable(), Ok(()));

        for reasoning in [
            json!(null),
            json!({"summary": "none"}),
            json!({"effort": "high"}),
        ] {
            let (_, ctx) = decoded(&json!({"model": "m", "input": "x", "reasoning": reasoning}));
            assert!(!ctx.summary, "{reasoning}");
            assert_eq!(ctx.dropped_tools(), None);
        }
        let (_, ctx) = decoded(
            &json!({"model": "m", "input": "x", "reasoning": {"generate_summary": "concise"}}),
        );
        assert!(ctx.summary);
    }

    #[test]
    fn dropped_tool_types_are_header_safe() {
        let (_, ctx) = decoded(&json!({"model": "m", "input": "x", "tools": [
            {"type": "web\r\nx-injected: 1"}, {"type": "caf\u{e9} tool"}, {"type": "web_search"}]}));
        assert_eq!(
            ctx.dropped_tools().as_deref(),
            Some("web??x-injected:?1, caf??tool, web_search")
        );
    }

    #[test]
    fn what_needs_openai_storage_is_refused_only_where_translated() {
        let cases = [
            (
                json!({"model": "m", "previous_response_id": "resp_1", "input": "more",
                       "conversation": "conv_1"}),
                "previous_response_id",
            ),
            (
                json!({"model": "m", "previous_response_id": "resp_1"}),
                "previous_response_id",
            ),
            (
                json!({"model": "m", "conversation": {"id": "conv_1"}}),
                "conversation",
            ),
            (
                json!({"model": "m", "prompt": {"id": "pmpt_1"}, "input": "x"}),
                "prompt",
            ),
            (
                json!({"model": "m", "input": "x", "background": true}),
                "background",
            ),
            (
                json!({"model": "m", "input": [{"role": "user", "content": "x"},
                       {"type": "item_reference", "id": "msg_1"}]}),
                "input[1]",
            ),
            (
                json!({"model": "m", "input": [{"role": "user", "content": [
                       {"type": "input_image", "file_id": "file-1", "detail": "auto"}]}]}),
                "input[0].content[0]",
            ),
            (
                json!({"model": "m", "input": [{"role": "user", "content": [
                       {"type": "input_file", "file_url": "https://x/a.pdf"}]}]}),
                "input[0].content[0]",
            ),
            (
                json!({"model": "m", "input": [{"type": "function_call_output", "call_id": "c",
                       "output": [{"type": "input_file", "file_id": "file-2"}]}]}),
                "input[0].output[0]",
            ),
            (
                json!({"model": "m", "input": "x", "tools": [{"type": "file_search"}],
                       "tool_choice": {"type": "file_search"}}),
                "tool_choice",
            ),
        ];
        for (request, param) in cases {
            let body = serde_json::to_vec(&request).unwrap();
            let d = decode(&body).unwrap_or_else(|e| panic!("{request}: {e}"));
            let crate::inputs::Context::Responses(ctx) = d.context else {
                panic!("a Responses context expected")
            };
            let err = ctx.check_translatable().unwrap_err();
            assert_eq!(
                (err.status, err.param.as_deref()),
                (400, Some(param)),
                "{request}"
            );
        }
    }

    #[test]
    fn malformed_requests_are_refused_naming_the_field() {
        let cases = [
            (json!({"input": "x"}), "model"),
            (json!({"model": "m"}), "input"),
            (json!({"model": "m", "input": 5}), "input"),
            (
                json!({"model": "m", "input": [{"role": "tool", "content": "x"}]}),
                "input[0].role",
            ),
            (
                json!({"model": "m", "input": [{"role": "user"}]}),
                "input[0].content",
            ),
            (
                json!({"model": "m", "input": [{"type": "function_call", "name": "f", "arguments": "{}"}]}),
                "input[0].call_id",
            ),
            (
                json!({"model": "m", "input": "x", "tools": {"type": "function"}}),
                "tools",
            ),
            (
                json!({"model": "m", "input": "x", "tools": [{"type": "function"}]}),
                "tools[0].name",
            ),
            (
                json!({"model": "m", "input": [{"role": "user", "content": [{"text": "x"}]}]}),
                "input[0].content[0].type",
            ),
            (
                json!({"model": "m", "input": "x", "tool_choice": {"type": "function"}}),
                "tool_choice.name",
            ),
            (
                json!({"model": "m", "input": "x", "tool_choice": 3}),
                "tool_choice",
            ),
            (
                json!({"model": "m", "input": "x", "text": {"format": {"type": "yaml"}}}),
                "text.format.type",
            ),
            (
                json!({"model": "m", "input": "x", "text": {"format": {"type": "json_schema"}}}),
                "text.format.name",
            ),
            (
                json!({"model": "m", "input": "x", "temperature": "hot"}),
                "temperature",
            ),
        ];
        for (request, param) in cases {
            let body = serde_json::to_vec(&request).unwrap();
            let err = decode(&body)
                .err()
                .unwrap_or_else(|| panic!("{request} decoded"));
            assert_eq!(
                (err.status, err.param.as_deref()),
                (400, Some(param)),
                "{request}: {}",
                err.message
            );
        }
    }

    #[test]
    fn the_echo_of_a_pretty_printed_request_is_one_line() {
        // Line breaks of every kind and tabs between tokens; spaces and escapes in strings.
        let body = r#"{"model": "m", "input": "x",
          "metadata": {
            "k": "a \" \\\" b"
          },
          "text": {"format": {"type": "json_schema", "name": "n a",
            "schema": {"type": "object"}}}}"#
            .replace('\n', "\r\n\t");
        let d = decode(body.as_bytes()).unwrap();
        let crate::inputs::Context::Responses(ctx) = d.context else {
            panic!("a Responses context expected")
        };
        assert!(!ctx.echo.contains(['\n', '\r']), "{}", ctx.echo);
        let echo: Value = serde_json::from_str(&format!("{{{}}}", ctx.echo)).unwrap();
        assert_eq!(echo["metadata"], json!({"k": "a \" \\\" b"}));
        assert_eq!(
            echo["text"],
            json!({"format": {"type": "json_schema", "name": "n a", "schema": {"type": "object"}}})
        );
    }

    #[test]
    fn the_echo_repeats_the_request_with_defaults() {
        let (_, ctx) = decoded(
            &json!({"model": "m", "input": "x", "instructions": "be brief",
            "tools": [{"type": "web_search"}], "tool_choice": "auto", "store": true,
            "text": {"format": {"type": "json_object"}}, "reasoning": {"effort": "low"},
            "metadata": {"k": "v"}, "max_output_tokens": 9}),
        );
        let echo: Value = serde_json::from_str(&format!("{{{}}}", ctx.echo)).unwrap();
        assert_eq!(
            echo,
            json!({"instructions": "be brief", "max_output_tokens": 9, "max_tool_calls": null,
                "metadata": {"k": "v"}, "parallel_tool_calls": true, "previous_response_id": null,
                "prompt_cache_key": null, "reasoning": {"effort": "low", "summary": null},
                "safety_identifier": null, "service_tier": "default", "store": false,
                "temperature": 1.0, "text": {"format": {"type": "json_object"}},
                "tool_choice": "auto", "tools": [{"type": "web_search"}], "top_logprobs": 0,
                "top_p": 1.0, "truncation": "disabled", "user": null, "background": false})
        );
    }
}
