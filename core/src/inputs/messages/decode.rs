//! A Messages request → the canonical request (an OpenAI chat completions body) and what its
//! answer is encoded with. The module doc says what maps to what.

use super::wire::{
    Block, Content, InputMessage, MessagesRequest, OutputFormat, Role, ThinkingDef, ToolDef,
};
use super::{Context, Untranslatable};
use crate::api::chat::ThinkingBlock;
use crate::api::{ApiError, Operation};
use crate::flow::gateway::parse_body;
use crate::inputs::Decoded;
use serde::Serialize;
use serde_json::{json, Value};

/// Top-level members that only tune how Anthropic serves the request (caching, context
/// editing, capacity, region, attribution): a translated request does without them.
const HINTS: [&str; 8] = [
    "cache_control",
    "context_management",
    "service_tier",
    "inference_geo",
    "speed",
    "diagnostics",
    "user_profile_id",
    "workspace_id",
];

const NOT_TRANSLATED: &str = "only Anthropic's Messages API has it";

/// Decodes a Messages (or count_tokens) request body.
pub fn decode(op: Operation, body: &[u8]) -> Result<Decoded, ApiError> {
    let req: MessagesRequest = parse_body(body)?;
    if op == Operation::Messages && req.max_tokens.is_none() {
        return Err(ApiError::invalid_param(
            "max_tokens",
            "Missing required parameter: `max_tokens`.",
        ));
    }
    if req.messages.is_empty() {
        return Err(ApiError::invalid_param(
            "messages",
            "`messages` must contain at least one message.",
        ));
    }
    let mut decoder = Decoder::default();
    let chat = decoder.request(req)?;
    let chat_body = serde_json::to_vec(&chat).map_err(|e| ApiError::server(e.to_string()))?;
    Ok(Decoded {
        chat_body,
        context: crate::inputs::Context::Messages(decoder.context),
    })
}

/// The canonical request, as an OpenAI chat completions body.
#[derive(Serialize)]
struct ChatBody {
    model: String,
    messages: Vec<ChatMessage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_k: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tools: Option<Vec<ChatTool>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parallel_tool_calls: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_effort: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<Value>,
}

#[derive(Serialize)]
struct ChatMessage {
    role: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<ChatContent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<Vec<ChatToolCall>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking_blocks: Option<Vec<ThinkingBlock>>,
}

impl ChatMessage {
    fn new(role: &'static str, content: ChatContent) -> Self {
        ChatMessage {
            role,
            content: Some(content),
            tool_calls: None,
            tool_call_id: None,
            thinking_blocks: None,
        }
    }
}

#[derive(Serialize)]
#[serde(untagged)]
enum ChatContent {
    Text(String),
    Parts(Vec<ChatPart>),
}

impl ChatContent {
    /// Text parts become one string (joined by blank lines, as `Message::text` reads them),
    /// which every OpenAI-speaking server takes; parts with images or files stay parts.
    fn from_parts(parts: Vec<ChatPart>) -> ChatContent {
        if !parts.iter().all(|p| matches!(p, ChatPart::Text { .. })) {
            return ChatContent::Parts(parts);
        }
        let texts: Vec<String> = parts
            .into_iter()
            .filter_map(|p| match p {
                ChatPart::Text { text } => Some(text),
                _ => None,
            })
            .collect();
        ChatContent::Text(texts.join("\n\n"))
    }
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ChatPart {
    Text { text: String },
    ImageUrl { image_url: ImageUrl },
    File { file: File },
}

#[derive(Serialize)]
struct ImageUrl {
    url: String,
}

#[derive(Serialize)]
struct File {
    filename: String,
    file_data: String,
}

#[derive(Serialize)]
struct ChatTool {
    #[serde(rename = "type")]
    kind: &'static str,
    function: ChatFunction,
}

#[derive(Serialize)]
struct ChatFunction {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    strict: Option<bool>,
}

#[derive(Serialize)]
struct ChatToolCall {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    function: ChatCall,
}

#[derive(Serialize)]
struct ChatCall {
    name: String,
    arguments: String,
}

/// Where a content block sits, for messages naming it: formatted only when one is made.
#[derive(Clone, Copy)]
struct At {
    message: usize,
    block: usize,
    /// The block inside a `tool_result`.
    inner: Option<usize>,
}

impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "messages[{}].content[{}]", self.message, self.block)?;
        match self.inner {
            Some(k) => write!(f, ".content[{k}]"),
            None => Ok(()),
        }
    }
}

#[derive(Default)]
struct Decoder {
    context: Context,
}

impl Decoder {
    fn untranslatable(&mut self, param: String, why: impl Into<String>) {
        self.context.untranslatable.push(Untranslatable {
            param,
            why: why.into(),
        });
    }

    fn request(&mut self, req: MessagesRequest) -> Result<ChatBody, ApiError> {
        for name in &req.other {
            if !HINTS.contains(&name.as_str()) {
                self.untranslatable(name.clone(), NOT_TRANSLATED);
            }
        }
        let mut messages = Vec::with_capacity(req.messages.len() + 1);
        if let Some(system) = req.system {
            if let Some(content) = self.system_content(system, None) {
                messages.push(ChatMessage::new("system", content));
            }
        }
        for (i, message) in req.messages.into_iter().enumerate() {
            self.message(i, message, &mut messages)?;
        }
        let tools = self.tools(req.tools.unwrap_or_default());
        let (tool_choice, parallel_tool_calls) = match (&tools, req.tool_choice) {
            (Some(_), Some(choice)) => tool_choice(choice)?,
            _ => (None, None),
        };
        if let Some(thinking) = &req.thinking {
            self.context.omit_thinking = thinking.display.as_deref() == Some("omitted");
        }
        // `output_config.effort` is left out: Claude Code sends `high` with every request,
        // and as `reasoning_effort` it would have models that cannot reason refuse it.
        let format = req
            .output_config
            .and_then(|c| c.format)
            .or(req.output_format);
        Ok(ChatBody {
            model: req.model,
            messages,
            max_completion_tokens: req.max_tokens,
            stream: req.stream,
            temperature: req.temperature,
            top_p: req.top_p,
            top_k: req.top_k,
            stop: req.stop_sequences.filter(|s| !s.is_empty()),
            user: req.metadata.and_then(|m| m.user_id),
            tools,
            tool_choice,
            parallel_tool_calls,
            reasoning_effort: req.thinking.as_ref().and_then(reasoning_effort),
            response_format: format.and_then(response_format),
        })
    }

    /// System text: only text blocks (`message`: where a system message sits).
    fn system_content(&mut self, content: Content, message: Option<usize>) -> Option<ChatContent> {
        let text = match content {
            Content::Text(text) => text,
            Content::Parts(blocks) => {
                let mut texts = Vec::with_capacity(blocks.len());
                for (j, block) in blocks.into_iter().enumerate() {
                    match (block.kind.as_str(), block.text) {
                        ("text", Some(text)) => texts.push(text),
                        (kind, _) => {
                            let param = match message {
                                Some(i) => format!("messages[{i}].content[{j}]"),
                                None => format!("system[{j}]"),
                            };
                            self.untranslatable(
                                param,
                                format!("a system prompt holds text only, not `{kind}` blocks"),
                            );
                        }
                    }
                }
                texts.join("\n\n")
            }
        };
        (!text.is_empty()).then_some(ChatContent::Text(text))
    }

    fn message(
        &mut self,
        i: usize,
        message: InputMessage,
        out: &mut Vec<ChatMessage>,
    ) -> Result<(), ApiError> {
        match (message.role, message.content) {
            (Role::System, content) => {
                if let Some(content) = self.system_content(content, Some(i)) {
                    out.push(ChatMessage::new("system", content));
                }
            }
            (Role::User, Content::Text(text)) => {
                out.push(ChatMessage::new("user", ChatContent::Text(text)))
            }
            (Role::User, Content::Parts(blocks)) => self.user(i, blocks, out)?,
            (Role::Assistant, Content::Text(text)) => {
                out.push(ChatMessage::new("assistant", ChatContent::Text(text)))
            }
            (Role::Assistant, Content::Parts(blocks)) => {
                if let Some(m) = self.assistant(i, blocks)? {
                    out.push(m);
                }
            }
        }
        Ok(())
    }

    /// Tool results become `tool` messages, in order; the other blocks one user message
    /// after them.
    fn user(
        &mut self,
        i: usize,
        blocks: Vec<Block>,
        out: &mut Vec<ChatMessage>,
    ) -> Result<(), ApiError> {
        let mut parts = Vec::new();
        for (j, block) in blocks.into_iter().enumerate() {
            let at = At {
                message: i,
                block: j,
                inner: None,
            };
            if block.kind == "tool_result" {
                let id = block
                    .tool_use_id
                    .ok_or_else(|| missing(at, "tool_use_id"))?;
                let content = match block.content {
                    None => ChatContent::Text(String::new()),
                    Some(Content::Text(text)) => ChatContent::Text(text),
                    Some(Content::Parts(inner)) => {
                        let mut result = Vec::with_capacity(inner.len());
                        for (k, block) in inner.into_iter().enumerate() {
                            let at = At {
                                inner: Some(k),
                                ..at
                            };
                            self.part(at, block, &mut result);
                        }
                        ChatContent::from_parts(result)
                    }
                };
                out.push(ChatMessage {
                    tool_call_id: Some(id),
                    ..ChatMessage::new("tool", content)
                });
            } else {
                self.part(at, block, &mut parts);
            }
        }
        if !parts.is_empty() {
            out.push(ChatMessage::new("user", ChatContent::from_parts(parts)));
        }
        Ok(())
    }

    /// A block of user content (or of a tool result) as a chat content part.
    fn part(&mut self, at: At, block: Block, parts: &mut Vec<ChatPart>) {
        match block.kind.as_str() {
            "text" => parts.push(ChatPart::Text {
                text: block.text.unwrap_or_default(),
            }),
            "image" => match image_url(block.source.as_ref()) {
                Some(url) => parts.push(ChatPart::ImageUrl {
                    image_url: ImageUrl { url },
                }),
                None => self.untranslatable(
                    at.to_string(),
                    "images are taken as base64 data or by URL, not as Anthropic file ids",
                ),
            },
            "document" => match document(block.source.as_ref(), block.title) {
                Some(part) => parts.push(part),
                None => self.untranslatable(
                    at.to_string(),
                    "documents are taken as base64 PDFs or text, not by URL or Anthropic file id",
                ),
            },
            "search_result" => {
                let source = block.source.as_ref().and_then(Value::as_str);
                let mut text = [block.title.as_deref(), source]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join("\n");
                if let Some(Content::Parts(inner)) = &block.content {
                    for t in inner.iter().filter_map(|b| b.text.as_deref()) {
                        text.push_str("\n\n");
                        text.push_str(t);
                    }
                }
                parts.push(ChatPart::Text { text });
            }
            kind => self.untranslatable(
                at.to_string(),
                format!("`{kind}` blocks exist only in Anthropic's Messages API"),
            ),
        }
    }

    /// An assistant turn: its text, tool calls and thinking (`None` when nothing is left).
    fn assistant(&mut self, i: usize, blocks: Vec<Block>) -> Result<Option<ChatMessage>, ApiError> {
        let mut texts = Vec::new();
        let mut calls = Vec::new();
        let mut thinking = Vec::new();
        for (j, block) in blocks.into_iter().enumerate() {
            let at = At {
                message: i,
                block: j,
                inner: None,
            };
            match block.kind.as_str() {
                "text" => texts.extend(block.text.filter(|t| !t.is_empty())),
                "tool_use" => calls.push(ChatToolCall {
                    id: block.id.ok_or_else(|| missing(at, "id"))?,
                    kind: "function",
                    function: ChatCall {
                        name: block.name.ok_or_else(|| missing(at, "name"))?,
                        arguments: block
                            .input
                            .map_or_else(|| "{}".to_owned(), |input| input.to_string()),
                    },
                }),
                "thinking" => {
                    let signature = block.signature.filter(|s| !s.is_empty());
                    self.context.unsigned_thinking |= signature.is_none();
                    thinking.push(ThinkingBlock::Thinking {
                        thinking: block.thinking.unwrap_or_default(),
                        signature,
                    });
                }
                "redacted_thinking" => thinking.push(ThinkingBlock::RedactedThinking {
                    data: block.data.ok_or_else(|| missing(at, "data"))?,
                }),
                // Server tools' calls and results (web search, code execution, MCP): what
                // the model wrote around them stays.
                kind if kind == "server_tool_use"
                    || kind == "mcp_tool_use"
                    || kind.ends_with("_tool_result") => {}
                kind => self.untranslatable(
                    at.to_string(),
                    format!("`{kind}` blocks exist only in Anthropic's Messages API"),
                ),
            }
        }
        if texts.is_empty() && calls.is_empty() && thinking.is_empty() {
            return Ok(None);
        }
        let content = match texts.len() {
            0 => None,
            1 => texts.pop().map(ChatContent::Text),
            _ => Some(ChatContent::Parts(
                texts
                    .into_iter()
                    .map(|text| ChatPart::Text { text })
                    .collect(),
            )),
        };
        Ok(Some(ChatMessage {
            role: "assistant",
            content,
            tool_calls: (!calls.is_empty()).then_some(calls),
            tool_call_id: None,
            thinking_blocks: (!thinking.is_empty()).then_some(thinking),
        }))
    }

    /// The client's own tools as functions; tools Anthropic defines or runs cannot be.
    fn tools(&mut self, tools: Vec<ToolDef>) -> Option<Vec<ChatTool>> {
        let mut out = Vec::with_capacity(tools.len());
        for (i, tool) in tools.into_iter().enumerate() {
            match tool.kind.as_deref() {
                None | Some("custom") => out.push(ChatTool {
                    kind: "function",
                    function: ChatFunction {
                        name: tool.name,
                        description: tool.description,
                        parameters: tool.input_schema,
                        strict: tool.strict,
                    },
                }),
                Some(kind) => self.untranslatable(
                    format!("tools[{i}]"),
                    format!("`{kind}` is a tool only Anthropic defines or runs"),
                ),
            }
        }
        (!out.is_empty()).then_some(out)
    }
}

fn missing(at: At, field: &str) -> ApiError {
    ApiError::invalid_param(
        format!("{at}.{field}"),
        format!("Missing required parameter: `{at}.{field}`."),
    )
}

/// `tool_choice` and `parallel_tool_calls` for Anthropic's `tool_choice`.
fn tool_choice(
    choice: super::wire::ToolChoiceDef,
) -> Result<(Option<Value>, Option<bool>), ApiError> {
    let parallel = choice.disable_parallel_tool_use.map(|off| !off);
    let value = match choice.kind.as_str() {
        "auto" => json!("auto"),
        "any" => json!("required"),
        "none" => json!("none"),
        "tool" => {
            let name = choice.name.ok_or_else(|| {
                ApiError::invalid_param(
                    "tool_choice.name",
                    "Missing required parameter: `tool_choice.name`.",
                )
            })?;
            json!({"type": "function", "function": {"name": name}})
        }
        other => {
            return Err(ApiError::invalid_param(
                "tool_choice.type",
                format!("Invalid value for `tool_choice.type`: `{other}` (expected auto, any, tool or none)."),
            ))
        }
    };
    Ok((Some(value), parallel))
}

/// `reasoning_effort` for a manual thinking budget (1024 is Anthropic's least); `adaptive`
/// thinking leaves the provider to decide.
fn reasoning_effort(thinking: &ThinkingDef) -> Option<&'static str> {
    let budget = Some(thinking)
        .filter(|t| t.kind == "enabled")
        .and_then(|t| t.budget_tokens)?;
    Some(match budget {
        0..=4095 => "low",
        4096..=16383 => "medium",
        _ => "high",
    })
}

/// `response_format` for a structured output format.
fn response_format(format: OutputFormat) -> Option<Value> {
    (format.kind == "json_schema").then(|| {
        json!({"type": "json_schema", "json_schema": {
            "name": "output", "schema": format.schema.unwrap_or_else(|| json!({})), "strict": true
        }})
    })
}

/// An image source as an image URL (a `data:` URL for base64 data).
fn image_url(source: Option<&Value>) -> Option<String> {
    let source = source?;
    let field = |name: &str| source.get(name).and_then(Value::as_str);
    match field("type")? {
        "base64" => Some(format!(
            "data:{};base64,{}",
            field("media_type")?,
            field("data")?
        )),
        "url" => field("url").map(str::to_owned),
        _ => None,
    }
}

/// A document source as a part: a base64 PDF as a file, text as text.
fn document(source: Option<&Value>, title: Option<String>) -> Option<ChatPart> {
    let source = source?;
    let field = |name: &str| source.get(name).and_then(Value::as_str);
    match field("type")? {
        "base64" if field("media_type") == Some("application/pdf") => Some(ChatPart::File {
            file: File {
                filename: title.unwrap_or_else(|| "document.pdf".to_owned()),
                file_data: format!("data:application/pdf;base64,{}", field("data")?),
            },
        }),
        "text" => {
            let text = field("data")?;
            Some(ChatPart::Text {
                text: match title {
                    Some(title) => format!("{title}\n\n{text}"),
                    None => text.to_owned(),
                },
            })
        }
        "content" => {
            let text = match source.get("content")? {
                Value::String(text) => text.clone(),
                Value::Array(blocks) => blocks
                    .iter()
                    .filter_map(|b| b.get("text").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join("\n\n"),
                _ => return None,
            };
            Some(ChatPart::Text { text })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inputs::messages::Context;
    use crate::testkit::test;

    fn decoded(op: Operation, json: &str) -> Result<(Value, Context), ApiError> {
        let d = decode(op, json.as_bytes())?;
        let crate::inputs::Context::Messages(ctx) = d.context else {
            panic!("a Messages context expected")
        };
        Ok((serde_json::from_slice(&d.chat_body).unwrap(), ctx))
    }

    /// A Messages request and its canonical form (`model` and `max_completion_tokens` are
    /// added to the expected body when it does not name them).
    struct Case {
        name: &'static str,
        /// The Messages request, `model` and `max_tokens` added when absent.
        request: &'static str,
        expected: &'static str,
        /// What is refused unless dropped.
        untranslatable: &'static [&'static str],
    }

    const CASES: &[Case] = &[
        Case {
            name: "system string, text, sampling, stop sequences, user id, stream",
            request: r#"{"system":"Be brief.","messages":[{"role":"user","content":"hi"}],"stream":true,
                "temperature":0.2,"top_p":0.9,"top_k":40,"stop_sequences":["END"],"metadata":{"user_id":"u-1"}}"#,
            expected: r#"{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"hi"}],
                "stream":true,"temperature":0.2,"top_p":0.9,"top_k":40,"stop":["END"],"user":"u-1"}"#,
            untranslatable: &[],
        },
        Case {
            name: "system blocks and a system message mid-conversation; hints dropped",
            request: r#"{"system":[{"type":"text","text":"A","cache_control":{"type":"ephemeral"}},{"type":"text","text":"B"}],
                "messages":[{"role":"user","content":[{"type":"text","text":"x","cache_control":{"type":"ephemeral"}}]},
                  {"role":"system","content":"Now in French."},{"role":"assistant","content":"ok"}],
                "context_management":{"edits":[{"type":"clear_tool_uses_20250919"}]},"service_tier":"auto",
                "cache_control":{"type":"ephemeral"},"stop_sequences":[]}"#,
            expected: r#"{"messages":[{"role":"system","content":"A\n\nB"},{"role":"user","content":"x"},
                {"role":"system","content":"Now in French."},{"role":"assistant","content":"ok"}]}"#,
            untranslatable: &[],
        },
        Case {
            name: "images, documents and search results",
            request: r#"{"messages":[{"role":"user","content":[
                {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBO"}},
                {"type":"image","source":{"type":"url","url":"https://x/cat.jpg"}},
                {"type":"document","title":"a.pdf","source":{"type":"base64","media_type":"application/pdf","data":"JVBE"}},
                {"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBF"}},
                {"type":"document","title":"Notes","source":{"type":"text","media_type":"text/plain","data":"n"}},
                {"type":"document","source":{"type":"content","content":[{"type":"text","text":"c1"},{"type":"text","text":"c2"}]}},
                {"type":"search_result","source":"https://s","title":"T","content":[{"type":"text","text":"r"}]},
                {"type":"text","text":"what?"}]}]}"#,
            expected: r#"{"messages":[{"role":"user","content":[
                {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBO"}},
                {"type":"image_url","image_url":{"url":"https://x/cat.jpg"}},
                {"type":"file","file":{"filename":"a.pdf","file_data":"data:application/pdf;base64,JVBE"}},
                {"type":"file","file":{"filename":"document.pdf","file_data":"data:application/pdf;base64,JVBF"}},
                {"type":"text","text":"Notes\n\nn"},{"type":"text","text":"c1\n\nc2"},
                {"type":"text","text":"T\nhttps://s\n\nr"},{"type":"text","text":"what?"}]}]}"#,
            untranslatable: &[],
        },
        Case {
            name: "a tool loop: thinking handed back, calls, results before the user's text",
            request: r#"{"messages":[{"role":"user","content":"weather?"},
                {"role":"assistant","content":[{"type":"thinking","thinking":"Need it.","signature":"sig"},
                  {"type":"redacted_thinking","data":"cmVk"},{"type":"text","text":"Checking."},
                  {"type":"tool_use","id":"t1","name":"weather","input":{"city":"Paris"}},
                  {"type":"tool_use","id":"t2","name":"clock","input":{}}]},
                {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"18C"},
                  {"type":"tool_result","tool_use_id":"t2","is_error":true,"content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},
                  {"type":"text","text":"thanks"}]}]}"#,
            expected: r#"{"messages":[{"role":"user","content":"weather?"},
                {"role":"assistant","content":"Checking.","tool_calls":[
                  {"id":"t1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}},
                  {"id":"t2","type":"function","function":{"name":"clock","arguments":"{}"}}],
                  "thinking_blocks":[{"type":"thinking","thinking":"Need it.","signature":"sig"},{"type":"redacted_thinking","data":"cmVk"}]},
                {"role":"tool","content":"18C","tool_call_id":"t1"},
                {"role":"tool","content":"a\n\nb","tool_call_id":"t2"},
                {"role":"user","content":"thanks"}]}"#,
            untranslatable: &[],
        },
        Case {
            name:
                "an image in a tool result keeps the result's parts; an empty result is empty text",
            request: r#"{"messages":[{"role":"user","content":[
                {"type":"tool_result","tool_use_id":"t1","content":[{"type":"text","text":"shot"},
                  {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBO"}}]},
                {"type":"tool_result","tool_use_id":"t2"}]}]}"#,
            expected: r#"{"messages":[{"role":"tool","tool_call_id":"t1","content":[{"type":"text","text":"shot"},
                {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBO"}}]},
                {"role":"tool","tool_call_id":"t2","content":""}]}"#,
            untranslatable: &[],
        },
        Case {
            name: "assistant text blocks stay apart; server tools' history is left out",
            request: r#"{"messages":[{"role":"user","content":"x"},
                {"role":"assistant","content":[{"type":"text","text":"a"},
                  {"type":"server_tool_use","id":"s1","name":"web_search","input":{"query":"q"}},
                  {"type":"web_search_tool_result","tool_use_id":"s1","content":[]},{"type":"text","text":"b"}]},
                {"role":"assistant","content":[{"type":"server_tool_use","id":"s2","name":"web_search","input":{}}]}]}"#,
            expected: r#"{"messages":[{"role":"user","content":"x"},
                {"role":"assistant","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]}"#,
            untranslatable: &[],
        },
        Case {
            name: "custom tools; tool_choice any without parallel calls",
            request: r#"{"messages":[{"role":"user","content":"x"}],
                "tools":[{"name":"f","description":"F","input_schema":{"type":"object"},"strict":true,"cache_control":{"type":"ephemeral"}},
                  {"type":"custom","name":"g","input_schema":{"type":"object","properties":{}},"defer_loading":true}],
                "tool_choice":{"type":"any","disable_parallel_tool_use":true}}"#,
            expected: r#"{"messages":[{"role":"user","content":"x"}],
                "tools":[{"type":"function","function":{"name":"f","description":"F","parameters":{"type":"object"},"strict":true}},
                  {"type":"function","function":{"name":"g","parameters":{"type":"object","properties":{}}}}],
                "tool_choice":"required","parallel_tool_calls":false}"#,
            untranslatable: &[],
        },
        Case {
            name: "tool_choice naming a tool; server tools are refused unless dropped",
            request: r#"{"messages":[{"role":"user","content":"x"}],
                "tools":[{"type":"web_search_20250305","name":"web_search","max_uses":3},{"name":"f","input_schema":{"type":"object"}}],
                "tool_choice":{"type":"tool","name":"f"}}"#,
            expected: r#"{"messages":[{"role":"user","content":"x"}],
                "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],
                "tool_choice":{"type":"function","function":{"name":"f"}}}"#,
            untranslatable: &["tools[0]"],
        },
        Case {
            name: "tool_choice none; without tools left, no tool_choice",
            request: r#"{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"bash_20250124","name":"bash"}],
                "tool_choice":{"type":"none"}}"#,
            expected: r#"{"messages":[{"role":"user","content":"x"}]}"#,
            untranslatable: &["tools[0]"],
        },
        Case {
            name: "a manual thinking budget becomes reasoning_effort",
            request: r#"{"messages":[{"role":"user","content":"x"}],"thinking":{"type":"enabled","budget_tokens":10000}}"#,
            expected: r#"{"messages":[{"role":"user","content":"x"}],"reasoning_effort":"medium"}"#,
            untranslatable: &[],
        },
        Case {
            name: "adaptive thinking leaves reasoning to the provider",
            request: r#"{"messages":[{"role":"user","content":"x"}],"thinking":{"type":"adaptive","display":"omitted"}}"#,
            expected: r#"{"messages":[{"role":"user","content":"x"}]}"#,
            untranslatable: &[],
        },
        Case {
            name: "output_config: a JSON schema; effort is left out",
            request: r#"{"messages":[{"role":"user","content":"x"}],"thinking":{"type":"adaptive"},
                "output_config":{"effort":"high","format":{"type":"json_schema","schema":{"type":"object"}}}}"#,
            expected: r#"{"messages":[{"role":"user","content":"x"}],
                "response_format":{"type":"json_schema","json_schema":{"name":"output","schema":{"type":"object"},"strict":true}}}"#,
            untranslatable: &[],
        },
        Case {
            name: "output_format (beta) and a large budget",
            request: r#"{"messages":[{"role":"user","content":"x"}],"thinking":{"type":"enabled","budget_tokens":31999},
                "output_format":{"type":"json_schema","schema":{"type":"object","properties":{}}}}"#,
            expected: r#"{"messages":[{"role":"user","content":"x"}],"reasoning_effort":"high",
                "response_format":{"type":"json_schema","json_schema":{"name":"output","schema":{"type":"object","properties":{}},"strict":true}}}"#,
            untranslatable: &[],
        },
        Case {
            name: "what only Anthropic can serve is named",
            request: r#"{"messages":[{"role":"user","content":[{"type":"text","text":"x"},
                  {"type":"image","source":{"type":"file","file_id":"file_1"}},
                  {"type":"document","source":{"type":"url","url":"https://x/a.pdf"}},
                  {"type":"container_upload","file_id":"file_2"}]},
                {"role":"assistant","content":[{"type":"text","text":"y"},{"type":"compaction","content":"z"}]}],
                "mcp_servers":[{"type":"url","url":"https://mcp","name":"m"}],"container":"c_1","frobnicate":1}"#,
            expected: r#"{"messages":[{"role":"user","content":"x"},{"role":"assistant","content":"y"}]}"#,
            untranslatable: &[
                "container",
                "frobnicate",
                "mcp_servers",
                "messages[0].content[1]",
                "messages[0].content[2]",
                "messages[0].content[3]",
                "messages[1].content[1]",
            ],
        },
    ];

    #[test]
    fn requests_decode_to_chat_requests() {
        for case in CASES {
            let mut request: Value = serde_json::from_str(case.request).unwrap();
            let obj = request.as_object_mut().unwrap();
            obj.entry("model").or_insert(json!("claude"));
            obj.entry("max_tokens").or_insert(json!(100));
            let (got, ctx) = decoded(Operation::Messages, &request.to_string())
                .unwrap_or_else(|e| panic!("{}: {e}", case.name));
            let mut want: Value = serde_json::from_str(case.expected).unwrap();
            let obj = want.as_object_mut().unwrap();
            obj.entry("model").or_insert(json!("claude"));
            obj.entry("max_completion_tokens").or_insert(json!(100));
            assert_eq!(got, want, "{}", case.name);
            let named: Vec<&str> = ctx
                .untranslatable
                .iter()
                .map(|u| u.param.as_str())
                .collect();
            assert_eq!(named, case.untranslatable, "{}", case.name);
            // The canonical body is a chat request every provider reads.
            let chat: crate::api::chat::ChatRequest = serde_json::from_value(got).unwrap();
            assert_eq!(chat.model, "claude", "{}", case.name);
        }
    }

    #[test]
    fn the_context_knows_how_thinking_goes_back() {
        let (_, ctx) = decoded(
            Operation::Messages,
            r#"{"model":"m","max_tokens":9,"thinking":{"type":"enabled","budget_tokens":1024,"display":"omitted"},
              "messages":[{"role":"user","content":"x"},
                {"role":"assistant","content":[{"type":"thinking","thinking":"t","signature":""},{"type":"text","text":"a"}]},
                {"role":"user","content":"y"}]}"#,
        )
        .unwrap();
        assert!(ctx.omit_thinking && ctx.unsigned_thinking);
        let (body, ctx) = decoded(
            Operation::Messages,
            r#"{"model":"m","max_tokens":9,"messages":[{"role":"user","content":"x"},
                {"role":"assistant","content":[{"type":"thinking","thinking":"t","signature":"s"}]},{"role":"user","content":"y"}]}"#,
        )
        .unwrap();
        assert!(!ctx.omit_thinking && !ctx.unsigned_thinking);
        assert_eq!(
            body["messages"][1],
            json!({"role":"assistant","thinking_blocks":[{"type":"thinking","thinking":"t","signature":"s"}]})
        );
    }

    #[test]
    fn count_tokens_needs_no_max_tokens() {
        let (body, _) = decoded(
            Operation::CountTokens,
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"name":"f","input_schema":{"type":"object"}}]}"#,
        )
        .unwrap();
        assert_eq!(body["max_completion_tokens"], Value::Null);
        assert_eq!(body["tools"][0]["function"]["name"], "f");
    }

    struct Refused {
        request: &'static str,
        /// The parameter the 400 names.
        param: &'static str,
        message: &'static str,
    }

    #[test]
    fn bad_requests_get_named_400s() {
        let cases = [
            Refused {
                request: r#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#,
                param: "max_tokens",
                message: "Missing required parameter: `max_tokens`.",
            },
            Refused {
                request: r#"{"model":"m","max_tokens":5,"messages":[]}"#,
                param: "messages",
                message: "at least one message",
            },
            Refused {
                request: r#"{"max_tokens":5,"messages":[{"role":"user","content":"x"}]}"#,
                param: "model",
                message: "Missing required parameter",
            },
            Refused {
                request: r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_result","content":"r"}]}]}"#,
                param: "messages[0].content[0].tool_use_id",
                message: "Missing required parameter",
            },
            Refused {
                request: r#"{"model":"m","max_tokens":5,"messages":[{"role":"assistant","content":[{"type":"tool_use","name":"f","input":{}}]}]}"#,
                param: "messages[0].content[0].id",
                message: "Missing required parameter",
            },
            Refused {
                request: r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"tools":[{"name":"f"}],"tool_choice":{"type":"sometimes"}}"#,
                param: "tool_choice.type",
                message: "Invalid value",
            },
            Refused {
                request: r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"tools":[{"name":"f"}],"tool_choice":{"type":"tool"}}"#,
                param: "tool_choice.name",
                message: "Missing required parameter",
            },
            Refused {
                request: r#"{"model":"m","max_tokens":-1,"messages":[{"role":"user","content":"x"}]}"#,
                param: "max_tokens",
                message: "Invalid value for `max_tokens`",
            },
        ];
        for case in cases {
            let err = decoded(Operation::Messages, case.request).unwrap_err();
            assert_eq!(err.status, 400, "{}", case.request);
            assert_eq!(err.param.as_deref(), Some(case.param), "{}", case.request);
            assert!(
                err.message.contains(case.message),
                "{}: {}",
                case.request,
                err.message
            );
        }
    }
}
