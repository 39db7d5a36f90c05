//! The Responses API's wire: the request members decoding reads, the output items, usage and
//! response object answers carry (JSON and stream events), the OpenAI chat answer the provider
//! translators hand over, and the ids this gateway mints.

use crate::api::chat::TextOrParts;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

// ---------------------------------------------------------------------------------------------
// Requests

/// A Responses request's top-level members. Objects the answer echoes are kept raw; the typed
/// view decoding needs is read from them (`decode`).
#[derive(Debug, Deserialize)]
pub struct Request {
    pub model: String,
    #[serde(default)]
    pub input: Option<Box<RawValue>>,
    #[serde(default)]
    pub instructions: Option<String>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub tools: Option<Box<RawValue>>,
    #[serde(default)]
    pub tool_choice: Option<Box<RawValue>>,
    #[serde(default)]
    pub parallel_tool_calls: Option<bool>,
    #[serde(default)]
    pub reasoning: Option<ReasoningConfig>,
    #[serde(default)]
    pub text: Option<Box<RawValue>>,
    #[serde(default)]
    pub max_output_tokens: Option<u32>,
    #[serde(default)]
    pub max_tool_calls: Option<u32>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub top_logprobs: Option<u32>,
    #[serde(default)]
    pub truncation: Option<String>,
    #[serde(default)]
    pub metadata: Option<Box<RawValue>>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub safety_identifier: Option<String>,
    #[serde(default)]
    pub prompt_cache_key: Option<String>,
    #[serde(default)]
    pub background: Option<bool>,
    /// Members that need what OpenAI stores: refused where the request is translated.
    #[serde(default)]
    pub previous_response_id: Option<String>,
    #[serde(default)]
    pub conversation: Option<Box<RawValue>>,
    #[serde(default)]
    pub prompt: Option<Box<RawValue>>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ReasoningConfig {
    #[serde(default)]
    pub effort: Option<String>,
    #[serde(default)]
    pub summary: Option<String>,
    /// The deprecated spelling of `summary`.
    #[serde(default, skip_serializing)]
    pub generate_summary: Option<String>,
}

/// Only an item's or tool's `type`: every kind is read by its own struct (their members
/// differ in type from kind to kind).
#[derive(Debug, Deserialize)]
pub struct TypeProbe {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
}

/// `type: message` (the default): any role, content a string or parts.
#[derive(Debug, Deserialize)]
pub struct MessageItem {
    pub role: String,
    pub content: Content,
}

#[derive(Debug, Deserialize)]
pub struct FunctionCallItem {
    pub call_id: String,
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub arguments: String,
}

#[derive(Debug, Deserialize)]
pub struct FunctionCallOutputItem {
    pub call_id: String,
    pub output: Content,
}

/// A reasoning item passed back: its summary and (open models) its text; `encrypted_content`
/// is OpenAI's alone to read.
#[derive(Debug, Deserialize)]
pub struct ReasoningItem {
    #[serde(default)]
    pub summary: Vec<Part>,
    #[serde(default)]
    pub content: Option<Vec<Part>>,
}

/// A message's content, or a function call's output: a string or typed parts.
pub type Content = TextOrParts<Part>;

/// One content part, whatever its type (`input_text`, `output_text`, `input_image`,
/// `input_file`, `input_audio`, `refusal`, `summary_text`, `reasoning_text`): the members of
/// all, none required.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Part {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub image_url: Option<String>,
    #[serde(default)]
    pub detail: Option<String>,
    #[serde(default)]
    pub file_id: Option<String>,
    #[serde(default)]
    pub file_data: Option<String>,
    #[serde(default)]
    pub file_url: Option<String>,
    #[serde(default)]
    pub filename: Option<String>,
    #[serde(default)]
    pub refusal: Option<String>,
    #[serde(default)]
    pub input_audio: Option<AudioData>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct AudioData {
    pub data: String,
    pub format: String,
}

#[derive(Debug, Deserialize)]
pub struct FunctionTool {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub parameters: Option<Box<RawValue>>,
    #[serde(default)]
    pub strict: Option<bool>,
}

/// Function (and custom) tools grouped under a name; calls name the namespace beside the
/// function.
#[derive(Debug, Deserialize)]
pub struct NamespaceTool {
    pub name: String,
    #[serde(default)]
    pub tools: Vec<Box<RawValue>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct TextConfig {
    #[serde(default)]
    pub format: Option<TextFormat>,
}

#[derive(Debug, Deserialize)]
pub struct TextFormat {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub schema: Option<Box<RawValue>>,
    #[serde(default)]
    pub strict: Option<bool>,
}

// ---------------------------------------------------------------------------------------------
// Answers

/// Where an output item stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    InProgress,
    Completed,
    Incomplete,
}

/// One item of a response's `output`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputItem {
    Reasoning {
        id: String,
        summary: Vec<TextPart>,
        /// The reasoning text itself, when no summary was asked for.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        content: Vec<TextPart>,
    },
    Message {
        id: String,
        status: ItemStatus,
        role: &'static str,
        content: Vec<OutputContent>,
    },
    FunctionCall {
        id: String,
        status: ItemStatus,
        call_id: String,
        name: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
        arguments: String,
    },
}

impl OutputItem {
    pub fn id(&self) -> &str {
        match self {
            OutputItem::Reasoning { id, .. }
            | OutputItem::Message { id, .. }
            | OutputItem::FunctionCall { id, .. } => id,
        }
    }
}

/// `summary_text` and `reasoning_text` parts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TextPart {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub text: String,
}

impl TextPart {
    pub fn summary(text: String) -> Self {
        TextPart {
            kind: "summary_text",
            text,
        }
    }

    pub fn reasoning(text: String) -> Self {
        TextPart {
            kind: "reasoning_text",
            text,
        }
    }
}

/// A part of an assistant message.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputContent {
    OutputText {
        text: String,
        annotations: [(); 0],
        logprobs: [(); 0],
    },
    Refusal {
        refusal: String,
    },
}

impl OutputContent {
    pub fn text(text: String) -> Self {
        OutputContent::OutputText {
            text,
            annotations: [],
            logprobs: [],
        }
    }
}

/// Token usage as Responses reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponsesUsage {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub input_tokens_details: InputTokensDetails,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub output_tokens_details: OutputTokensDetails,
    #[serde(default)]
    pub total_tokens: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputTokensDetails {
    #[serde(default)]
    pub cached_tokens: u64,
    #[serde(default)]
    pub cache_write_tokens: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputTokensDetails {
    #[serde(default)]
    pub reasoning_tokens: u64,
}

impl ResponsesUsage {
    /// The gateway's accounting of a Responses usage object (cache writes are not priced apart
    /// on OpenAI: they count as input, as on the chat path).
    pub fn normalise(self) -> crate::usage::Usage {
        crate::usage::Usage {
            prompt_tokens: self.input_tokens,
            completion_tokens: self.output_tokens,
            cached_tokens: self.input_tokens_details.cached_tokens,
            cache_write_tokens: 0,
            reasoning_tokens: self.output_tokens_details.reasoning_tokens,
        }
    }
}

/// Why a response stopped short.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct IncompleteDetails {
    pub reason: &'static str,
}

/// `error` of a failed response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResponseError {
    pub code: String,
    pub message: String,
}

/// A response object's own members; the members echoing the request are added by
/// [`response_json`].
#[derive(Debug, Serialize)]
pub struct ResponseObject<'a> {
    pub id: &'a str,
    pub object: &'static str,
    pub created_at: u64,
    pub status: &'static str,
    pub error: Option<&'a ResponseError>,
    pub incomplete_details: Option<IncompleteDetails>,
    pub model: &'a str,
    pub output: &'a [OutputItem],
    pub usage: Option<&'a ResponsesUsage>,
}

/// The response object as JSON, `echo` (members echoing the request, without braces) added.
pub fn response_json(response: &ResponseObject, echo: &str) -> Vec<u8> {
    let mut out = serde_json::to_vec(response).unwrap_or_else(|_| b"{}".to_vec());
    if !echo.is_empty() && out.last() == Some(&b'}') {
        out.pop();
        if out.len() > 1 {
            out.push(b',');
        }
        out.extend_from_slice(echo.as_bytes());
        out.push(b'}');
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The OpenAI chat answer the provider translators hand over (JSON and stream chunks), read
// leniently: OpenAI-compatible providers' answers pass through them as they came.

#[derive(Debug, Deserialize)]
pub struct ChatAnswer {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub created: Option<u64>,
    #[serde(default)]
    pub model: Option<String>,
    pub choices: Vec<ChatChoice>,
    #[serde(default)]
    pub usage: Option<ChatUsage>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ChatChoice {
    #[serde(default)]
    pub index: u32,
    /// A JSON answer's message.
    #[serde(default)]
    pub message: Option<ChatMessage>,
    /// A stream chunk's delta.
    #[serde(default)]
    pub delta: Option<ChatMessage>,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

/// An answer's message or a chunk's delta.
#[derive(Debug, Default, Deserialize)]
pub struct ChatMessage {
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub reasoning_content: Option<String>,
    /// How some OpenAI-compatible servers name `reasoning_content`.
    #[serde(default)]
    pub reasoning: Option<String>,
    #[serde(default)]
    pub refusal: Option<String>,
    #[serde(default)]
    pub tool_calls: Vec<ChatToolCall>,
}

impl ChatMessage {
    pub fn reasoning_text(&self) -> Option<&str> {
        self.reasoning_content
            .as_deref()
            .or(self.reasoning.as_deref())
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ChatToolCall {
    /// Stream deltas say which call they continue.
    #[serde(default)]
    pub index: Option<u32>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub function: ChatFunction,
}

#[derive(Debug, Default, Deserialize)]
pub struct ChatFunction {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub arguments: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ChatUsage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    #[serde(default)]
    pub prompt_tokens_details: Option<ChatPromptDetails>,
    #[serde(default)]
    pub completion_tokens_details: Option<ChatCompletionDetails>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ChatPromptDetails {
    #[serde(default)]
    pub cached_tokens: Option<u64>,
    #[serde(default)]
    pub cache_creation_tokens: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ChatCompletionDetails {
    #[serde(default)]
    pub reasoning_tokens: Option<u64>,
}

impl ChatUsage {
    pub fn to_responses(&self) -> ResponsesUsage {
        let prompt = self.prompt_tokens_details.as_ref();
        ResponsesUsage {
            input_tokens: self.prompt_tokens,
            input_tokens_details: InputTokensDetails {
                cached_tokens: prompt.and_then(|p| p.cached_tokens).unwrap_or(0),
                cache_write_tokens: prompt.and_then(|p| p.cache_creation_tokens).unwrap_or(0),
            },
            output_tokens: self.completion_tokens,
            output_tokens_details: OutputTokensDetails {
                reasoning_tokens: self
                    .completion_tokens_details
                    .as_ref()
                    .and_then(|c| c.reasoning_tokens)
                    .unwrap_or(0),
            },
            total_tokens: self.prompt_tokens + self.completion_tokens,
        }
    }
}

/// `{"error":{"message","type","param","code"}}`, as translators end failed streams.
#[derive(Debug, Deserialize)]
pub struct ChatError {
    pub error: ChatErrorDetail,
}

#[derive(Debug, Default, Deserialize)]
pub struct ChatErrorDetail {
    #[serde(default)]
    pub message: Option<String>,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub param: Option<String>,
    #[serde(default)]
    pub code: Option<serde_json::Value>,
}

// ---------------------------------------------------------------------------------------------
// Ids

/// Marks the ids this gateway mints for translated answers (`resp_sb_…`, `msg_sb_…`,
/// `rs_sb_…`, `fc_sb_…`). OpenAI's own ids are hexadecimal after their prefix, so no id of
/// OpenAI's carries it: items a client passes back are told apart by it.
const MINTED_MARK: &str = "sb_";

/// `{prefix}_sb_{base}`, `base` unique per answer (the chat completion's id).
pub fn minted_id(prefix: &str, base: &str) -> String {
    format!("{prefix}_{MINTED_MARK}{base}")
}

/// Whether an item id is one this gateway minted.
pub fn is_minted(id: &str) -> bool {
    id.split_once('_')
        .is_some_and(|(_, rest)| rest.starts_with(MINTED_MARK))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::test;

    #[test]
    fn minted_ids_are_told_apart_from_openai_ids() {
        struct Case {
            name: &'static str,
            id: String,
            minted: bool,
        }
        let cases = [
            Case {
                name: "a minted reasoning id",
                id: minted_id("rs", "chatcmpl-1"),
                minted: true,
            },
            Case {
                name: "a minted function call id",
                id: minted_id("fc", "msg_01_0"),
                minted: true,
            },
            Case {
                name: "OpenAI's reasoning id",
                id: "rs_67ccd2bed1ec8190b14f964abc05426".to_owned(),
                minted: false,
            },
            Case {
                name: "OpenAI's message id",
                id: "msg_01a235fd-8fbe-7b03-839c-794824325c36".to_owned(),
                minted: false,
            },
            Case {
                name: "the marker alone",
                id: "fc_sb".to_owned(),
                minted: false,
            },
            Case {
                name: "the marker without a type",
                id: "sb_x".to_owned(),
                minted: false,
            },
        ];
        for case in cases {
            assert_eq!(
                is_minted(&case.id),
                case.minted,
                "{}: {}",
                case.name,
                case.id
            );
        }
    }

    #[test]
    fn response_json_adds_the_echo() {
        let usage = ResponsesUsage::default();
        let object = ResponseObject {
            id: "resp_1",
            object: "response",
            created_at: 7,
            status: "completed",
            error: None,
            incomplete_details: None,
            model: "m",
            output: &[],
            usage: Some(&usage),
        };
        let json = response_json(&object, r#""tools":[],"store":false"#);
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["tools"], serde_json::json!([]));
        assert_eq!(v["store"], false);
        assert_eq!(v["usage"]["input_tokens_details"]["cache_write_tokens"], 0);
        assert_eq!(response_json(&object, "").last(), Some(&b'}'));
    }
}
