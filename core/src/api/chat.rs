//! OpenAI Chat Completions wire types: the request clients send and the answers they expect.
//!
//! Requests are deserialized once, with every known field typed (so wrong types are reported
//! with their path) and unknown top-level fields kept in `extra` (so a translator can refuse
//! them by name and pass-through providers lose nothing).

use crate::usage::Usage;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<Message>,
    pub stream: bool,
    pub stream_options: Option<StreamOptions>,
    pub max_tokens: Option<u32>,
    pub max_completion_tokens: Option<u32>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub n: Option<u32>,
    pub stop: Option<Stop>,
    pub presence_penalty: Option<f64>,
    pub frequency_penalty: Option<f64>,
    pub logit_bias: Option<Map<String, Value>>,
    pub logprobs: Option<bool>,
    pub top_logprobs: Option<u32>,
    pub seed: Option<i64>,
    pub user: Option<String>,
    pub tools: Option<Vec<Tool>>,
    pub tool_choice: Option<ToolChoice>,
    pub parallel_tool_calls: Option<bool>,
    pub response_format: Option<ResponseFormat>,
    pub reasoning_effort: Option<String>,
    pub metadata: Option<Map<String, Value>>,
    /// Top-level fields this gateway does not model, kept verbatim.
    pub extra: Map<String, Value>,
}

impl ChatRequest {
    /// The output cap the client asked for, whichever spelling it used.
    pub fn max_output_tokens(&self) -> Option<u32> {
        self.max_completion_tokens.or(self.max_tokens)
    }

    /// Whether the client asked to see a usage chunk at the end of a stream.
    pub fn wants_stream_usage(&self) -> bool {
        self.stream
            && self
                .stream_options
                .as_ref()
                .and_then(|o| o.include_usage)
                .unwrap_or(false)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    Developer,
    User,
    Assistant,
    Tool,
    Function,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Message {
    pub role: Role,
    #[serde(default)]
    pub content: Option<MessageContent>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub tool_calls: Option<Vec<ToolCall>>,
    #[serde(default)]
    pub tool_call_id: Option<String>,
    /// Reasoning text a client echoes back on assistant turns (kept for providers that replay it).
    #[serde(default)]
    pub reasoning_content: Option<String>,
    /// Signed reasoning a client hands back on assistant turns, as the answer gave it: what
    /// providers with signed reasoning (Anthropic, Bedrock) need to continue a turn.
    #[serde(default)]
    pub thinking_blocks: Option<Vec<ThinkingBlock>>,
}

/// A block of signed reasoning, in LiteLLM's convention: Anthropic's `thinking` (its text and
/// the signature that lets it be handed back) and `redacted_thinking` (encrypted) blocks,
/// Bedrock's `reasoningText` and `redactedContent`.
///
/// On answers, `message.thinking_blocks` holds the whole blocks beside `reasoning_content`
/// (their text). In streams the text goes in `reasoning_content` deltas only; a thinking
/// block ends with a `thinking_blocks` delta carrying its signature (`thinking` empty), and a
/// redacted block comes whole in one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ThinkingBlock {
    Thinking {
        #[serde(default)]
        thinking: String,
        /// Absent or empty when the provider did not sign it (it cannot be handed back).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<String>,
    },
    RedactedThinking {
        data: String,
    },
}

impl ThinkingBlock {
    /// Whether a provider that checks signatures can take the block back.
    pub fn is_signed(&self) -> bool {
        match self {
            ThinkingBlock::Thinking { signature, .. } => {
                signature.as_deref().is_some_and(|s| !s.is_empty())
            }
            ThinkingBlock::RedactedThinking { .. } => true,
        }
    }
}

impl Message {
    /// All text of the message, parts joined by blank lines (for providers that take plain text).
    pub fn text(&self) -> String {
        match &self.content {
            None => String::new(),
            Some(MessageContent::Text(t)) => t.clone(),
            Some(MessageContent::Parts(parts)) => parts
                .iter()
                .filter_map(|p| match p {
                    ContentPart::Text { text } => Some(text.as_str()),
                    ContentPart::Refusal { refusal } => Some(refusal.as_str()),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join("\n\n"),
        }
    }
}

/// `content` is either a string or an array of typed parts.
pub type MessageContent = TextOrParts<ContentPart>;

/// A member that is a string or an array of typed parts, as message content is in every chat
/// API (OpenAI chat, Anthropic Messages, OpenAI Responses).
#[derive(Debug, Clone, PartialEq)]
pub enum TextOrParts<P> {
    Text(String),
    Parts(Vec<P>),
}

impl<'de, P: Deserialize<'de>> Deserialize<'de> for TextOrParts<P> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ContentVisitor<P>(std::marker::PhantomData<P>);
        impl<'de, P: Deserialize<'de>> Visitor<'de> for ContentVisitor<P> {
            type Value = TextOrParts<P>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an array of content parts")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(TextOrParts::Text(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(TextOrParts::Text(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut parts = Vec::with_capacity(seq.size_hint().unwrap_or(1));
                while let Some(p) = seq.next_element()? {
                    parts.push(p);
                }
                Ok(TextOrParts::Parts(parts))
            }
        }
        d.deserialize_any(ContentVisitor(std::marker::PhantomData))
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    Text { text: String },
    ImageUrl { image_url: ImageUrl },
    InputAudio { input_audio: InputAudio },
    File { file: Map<String, Value> },
    Refusal { refusal: String },
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ImageUrl {
    pub url: String,
    #[serde(default)]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct InputAudio {
    pub data: String,
    pub format: String,
}

/// An image reference split into what providers need: a remote URL or inline bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource<'a> {
    Url(&'a str),
    Base64 { media_type: &'a str, data: &'a str },
}

impl ImageUrl {
    /// Splits `data:<media>;base64,<data>` URLs; anything else is a remote URL.
    pub fn source(&self) -> ImageSource<'_> {
        if let Some(rest) = self.url.strip_prefix("data:") {
            if let Some((meta, data)) = rest.split_once(',') {
                if let Some(media_type) = meta.strip_suffix(";base64") {
                    return ImageSource::Base64 { media_type, data };
                }
            }
        }
        ImageSource::Url(&self.url)
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ToolCall {
    pub id: String,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    pub function: FunctionCall,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FunctionCall {
    pub name: String,
    #[serde(default)]
    pub arguments: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Tool {
    #[serde(rename = "type")]
    pub kind: String,
    pub function: FunctionDefinition,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FunctionDefinition {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub parameters: Option<Value>,
    #[serde(default)]
    pub strict: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    None,
    Auto,
    Required,
    Function(String),
}

impl<'de> Deserialize<'de> for ToolChoice {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Named {
            function: NamedFunction,
        }
        #[derive(Deserialize)]
        struct NamedFunction {
            name: String,
        }
        match Value::deserialize(d)? {
            Value::String(s) => match s.as_str() {
                "none" => Ok(ToolChoice::None),
                "auto" => Ok(ToolChoice::Auto),
                "required" => Ok(ToolChoice::Required),
                other => Err(de::Error::custom(format!(
                    "unknown tool_choice `{other}`, expected none, auto, required or an object"
                ))),
            },
            v @ Value::Object(_) => serde_json::from_value::<Named>(v)
                .map(|n| ToolChoice::Function(n.function.name))
                .map_err(|e| de::Error::custom(format!("invalid named tool_choice: {e}"))),
            _ => Err(de::Error::custom(
                "tool_choice must be a string or an object",
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormat {
    Text,
    JsonObject,
    JsonSchema { json_schema: JsonSchemaFormat },
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct JsonSchemaFormat {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub schema: Option<Value>,
    #[serde(default)]
    pub strict: Option<bool>,
}

/// `stop` is a string or a list of strings; normalised to a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stop(pub Vec<String>);

impl<'de> Deserialize<'de> for Stop {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct StopVisitor;
        impl<'de> Visitor<'de> for StopVisitor {
            type Value = Stop;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Stop, E> {
                Ok(Stop(vec![v.to_owned()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Stop, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(Stop(out))
            }
        }
        d.deserialize_any(StopVisitor)
    }
}

impl<'de> Deserialize<'de> for ChatRequest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ChatRequestVisitor)
    }
}

struct ChatRequestVisitor;

/// The members `ChatRequest` reads itself (the others are kept in `extra`).
const KNOWN_MEMBERS: [&str; 23] = [
    "model",
    "messages",
    "stream",
    "stream_options",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "n",
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "seed",
    "user",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "reasoning_effort",
    "metadata",
];

impl<'de> Visitor<'de> for ChatRequestVisitor {
    type Value = ChatRequest;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a chat completion request object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ChatRequest, A::Error> {
        let mut req = ChatRequest::default();
        let mut model = None;
        let mut messages = None;
        // Known members seen so far, one bit each (`KNOWN_MEMBERS`): a member given twice is
        // refused, as serde refuses it in every derived struct, rather than the last one winning.
        let mut seen = 0u32;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let known = KNOWN_MEMBERS.iter().position(|k| *k == key.as_ref());
            let twice = match known {
                Some(bit) => {
                    let twice = seen & 1 << bit != 0;
                    seen |= 1 << bit;
                    twice
                }
                None => req.extra.contains_key(key.as_ref()),
            };
            if twice {
                return Err(de::Error::custom(format_args!("duplicate field `{key}`")));
            }
            // `null` for an optional field means "not set", as in OpenAI's API.
            match key.as_ref() {
                "model" => model = Some(map.next_value::<String>()?),
                "messages" => messages = Some(map.next_value::<Vec<Message>>()?),
                "stream" => req.stream = map.next_value::<Option<bool>>()?.unwrap_or(false),
                "stream_options" => req.stream_options = map.next_value()?,
                "max_tokens" => req.max_tokens = map.next_value()?,
                "max_completion_tokens" => req.max_completion_tokens = map.next_value()?,
                "temperature" => req.temperature = map.next_value()?,
                "top_p" => req.top_p = map.next_value()?,
                "n" => req.n = map.next_value()?,
                "stop" => req.stop = map.next_value()?,
                "presence_penalty" => req.presence_penalty = map.next_value()?,
                "frequency_penalty" => req.frequency_penalty = map.next_value()?,
                "logit_bias" => req.logit_bias = map.next_value()?,
                "logprobs" => req.logprobs = map.next_value()?,
                "top_logprobs" => req.top_logprobs = map.next_value()?,
                "seed" => req.seed = map.next_value()?,
                "user" => req.user = map.next_value()?,
                "tools" => req.tools = map.next_value()?,
                "tool_choice" => req.tool_choice = map.next_value()?,
                "parallel_tool_calls" => req.parallel_tool_calls = map.next_value()?,
                "response_format" => req.response_format = map.next_value()?,
                "reasoning_effort" => req.reasoning_effort = map.next_value()?,
                "metadata" => req.metadata = map.next_value()?,
                other => {
                    let value: Value = map.next_value()?;
                    req.extra.insert(other.to_owned(), value);
                }
            }
        }
        req.model = model.ok_or_else(|| de::Error::missing_field("model"))?;
        req.messages = messages.ok_or_else(|| de::Error::missing_field("messages"))?;
        Ok(req)
    }
}

// ---------------------------------------------------------------------------------------------
// Answers

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    Stop,
    Length,
    ToolCalls,
    ContentFilter,
    FunctionCall,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatCompletion {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub choices: Vec<Choice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Choice {
    pub index: u32,
    pub message: AssistantMessage,
    pub finish_reason: Option<FinishReason>,
    pub logprobs: Option<Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AssistantMessage {
    pub role: &'static str,
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking_blocks: Option<Vec<ThinkingBlock>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCallOut>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolCallOut {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: FunctionCallOut,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunctionCallOut {
    pub name: String,
    pub arguments: String,
}

impl ChatCompletion {
    /// A `chat.completion` answer.
    pub fn new(
        id: String,
        created: u64,
        model: String,
        choices: Vec<Choice>,
        usage: Option<Usage>,
    ) -> Self {
        ChatCompletion {
            id,
            object: "chat.completion",
            created,
            model,
            choices,
            usage: usage.as_ref().map(UsageReport::from),
        }
    }
}

impl Choice {
    pub fn new(index: u32, message: AssistantMessage, finish_reason: FinishReason) -> Self {
        Choice {
            index,
            message,
            finish_reason: Some(finish_reason),
            logprobs: None,
        }
    }
}

impl AssistantMessage {
    /// An assistant turn from a provider's parts; empty reasoning and tool calls are left out.
    pub fn new(content: Option<String>, reasoning: String, tool_calls: Vec<ToolCallOut>) -> Self {
        AssistantMessage {
            role: "assistant",
            content,
            reasoning_content: (!reasoning.is_empty()).then_some(reasoning),
            thinking_blocks: None,
            tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
            refusal: None,
        }
    }

    /// The signed reasoning blocks of the turn (left out when there are none).
    pub fn with_thinking_blocks(mut self, blocks: Vec<ThinkingBlock>) -> Self {
        self.thinking_blocks = (!blocks.is_empty()).then_some(blocks);
        self
    }
}

/// The text of an answer as OpenAI gives it: `null` when the turn is only tool calls.
pub fn content_beside_tools(text: String, tool_calls: &[ToolCallOut]) -> Option<String> {
    (!text.is_empty() || tool_calls.is_empty()).then_some(text)
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatChunk {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub choices: Vec<ChunkChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageReport>,
}

impl ChatChunk {
    /// A `chat.completion.chunk` without usage.
    pub fn new(id: String, created: u64, model: String, choices: Vec<ChunkChoice>) -> Self {
        ChatChunk {
            id,
            object: "chat.completion.chunk",
            created,
            model,
            choices,
            usage: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChunkChoice {
    pub index: u32,
    pub delta: Delta,
    pub finish_reason: Option<FinishReason>,
    pub logprobs: Option<Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Delta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    /// A signature closing a thinking block, or a whole redacted block (see `ThinkingBlock`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking_blocks: Option<Vec<ThinkingBlock>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCallDelta>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolCallDelta {
    pub index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    pub function: FunctionDelta,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FunctionDelta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
}

/// OpenAI's `usage` object as clients read it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UsageReport {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_tokens_details: Option<CompletionTokensDetails>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PromptTokensDetails {
    pub cached_tokens: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub cache_creation_tokens: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CompletionTokensDetails {
    pub reasoning_tokens: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl From<&Usage> for UsageReport {
    /// The `usage` object OpenAI clients read.
    fn from(usage: &Usage) -> Self {
        UsageReport {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            total_tokens: usage.total_tokens(),
            prompt_tokens_details: Some(PromptTokensDetails {
                cached_tokens: usage.cached_tokens,
                cache_creation_tokens: usage.cache_write_tokens,
            }),
            completion_tokens_details: Some(CompletionTokensDetails {
                reasoning_tokens: usage.reasoning_tokens,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::test;

    fn parse(json: &str) -> Result<ChatRequest, String> {
        let de = &mut serde_json::Deserializer::from_str(json);
        serde_path_to_error::deserialize(de).map_err(|e| e.to_string())
    }

    #[test]
    fn parses_full_request_and_keeps_unknown_fields() {
        let req = parse(
            r#"{"model":"m","messages":[{"role":"system","content":"s"},
            {"role":"user","content":[{"type":"text","text":"hi"},
              {"type":"image_url","image_url":{"url":"data:image/png;base64,AAA"}}]},
            {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function",
              "function":{"name":"f","arguments":"{}"}}]},
            {"role":"tool","tool_call_id":"c1","content":"42"}],
            "stream":true,"stream_options":{"include_usage":true},"stop":"END",
            "tool_choice":{"type":"function","function":{"name":"f"}},
            "response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{}}},
            "top_k":5,"temperature":null}"#,
        )
        .unwrap();
        assert_eq!(req.messages.len(), 4);
        assert!(req.wants_stream_usage());
        assert_eq!(req.stop, Some(Stop(vec!["END".into()])));
        assert_eq!(req.tool_choice, Some(ToolChoice::Function("f".into())));
        assert_eq!(req.extra.get("top_k"), Some(&Value::from(5)));
        assert_eq!(req.temperature, None);
        let Some(MessageContent::Parts(parts)) = &req.messages[1].content else {
            panic!("parts expected")
        };
        let ContentPart::ImageUrl { image_url } = &parts[1] else {
            panic!("image expected")
        };
        assert_eq!(
            image_url.source(),
            ImageSource::Base64 {
                media_type: "image/png",
                data: "AAA"
            }
        );
    }

    #[test]
    fn thinking_blocks_round_trip_in_litellms_shape() {
        let req = parse(
            r#"{"model":"m","messages":[{"role":"assistant","content":"A",
              "thinking_blocks":[{"type":"thinking","thinking":"t","signature":"s"},
                {"type":"thinking","thinking":"u"},{"type":"redacted_thinking","data":"d"}]}]}"#,
        )
        .unwrap();
        let blocks = req.messages[0].thinking_blocks.clone().unwrap();
        assert_eq!(
            blocks
                .iter()
                .map(ThinkingBlock::is_signed)
                .collect::<Vec<_>>(),
            [true, false, true]
        );
        assert_eq!(
            serde_json::to_value(&blocks).unwrap(),
            serde_json::json!([{"type":"thinking","thinking":"t","signature":"s"},
                {"type":"thinking","thinking":"u"},{"type":"redacted_thinking","data":"d"}])
        );
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (r#"{"messages":[]}"#, "missing field `model`"),
            (r#"{"model":"m"}"#, "missing field `messages`"),
            (
                r#"{"model":"m","messages":[],"temperature":"hot"}"#,
                "temperature: invalid type",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":5}]}"#,
                "messages[0].content: invalid type",
            ),
            (
                r#"{"model":"m","messages":[{"role":"wizard","content":"x"}]}"#,
                "messages[0].role: unknown variant `wizard`",
            ),
            (r#"{"model":7,"messages":[]}"#, "model: invalid type"),
        ];
        for (json, expected) in cases {
            let err = parse(json).unwrap_err();
            assert!(err.contains(expected), "{json}: got {err}");
        }
    }
}
