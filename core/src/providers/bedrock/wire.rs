//! Bedrock's wire types: the Converse request and answer, the payloads of ConverseStream
//! events, and the InvokeModel bodies of the Titan and Cohere embedding models. Answers are read
//! leniently: fields and blocks added later are ignored.

use crate::usage::Usage;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

// ---------------------------------------------------------------------------------------------
// Converse request

/// A Converse request body (the model is in the path).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ConverseRequest<'a> {
    pub(super) messages: Vec<Turn>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) system: Vec<ContentBlock>,
    #[serde(skip_serializing_if = "InferenceConfig::is_empty")]
    pub(super) inference_config: InferenceConfig<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) tool_config: Option<ToolConfig<'a>>,
    /// The client's, with the thinking `reasoning_effort` asks of Claude.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) additional_model_request_fields: Option<Value>,
    /// The other Converse-native fields the client sent, passed as they are.
    #[serde(flatten)]
    pub(super) native: BTreeMap<&'a str, &'a Value>,
}

/// One turn; Converse wants user and assistant turns to alternate.
#[derive(Serialize)]
pub(super) struct Turn {
    pub(super) role: &'static str,
    pub(super) content: Vec<ContentBlock>,
}

/// A content block: an object with one member named after its type.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) enum ContentBlock {
    Text(String),
    Image(Image),
    ToolUse(ToolUse),
    ToolResult(ToolResult),
    /// Signed reasoning of an earlier assistant turn, handed back.
    ReasoningContent(ReasoningContent),
}

/// Reasoning as Converse hands it back: text with its signature, or encrypted.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) enum ReasoningContent {
    ReasoningText {
        text: String,
        signature: String,
    },
    /// Base64, as the answer carried it.
    RedactedContent(String),
}

#[derive(Serialize)]
pub(super) struct Image {
    /// `png`, `jpeg`, `gif` or `webp`.
    pub(super) format: &'static str,
    pub(super) source: ImageSource,
}

#[derive(Serialize)]
pub(super) struct ImageSource {
    /// Base64, as the data URL carried it.
    pub(super) bytes: String,
}

/// A tool call: what an assistant turn sends back, and what an answer holds.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ToolUse {
    pub(super) tool_use_id: String,
    pub(super) name: String,
    #[serde(default)]
    pub(super) input: Value,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ToolResult {
    pub(super) tool_use_id: String,
    pub(super) content: Vec<ContentBlock>,
}

#[derive(Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct InferenceConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) top_p: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) stop_sequences: Vec<&'a str>,
}

impl InferenceConfig<'_> {
    fn is_empty(&self) -> bool {
        self.max_tokens.is_none()
            && self.temperature.is_none()
            && self.top_p.is_none()
            && self.stop_sequences.is_empty()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ToolConfig<'a> {
    pub(super) tools: Vec<Tool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) tool_choice: Option<ToolChoice<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Tool<'a> {
    pub(super) tool_spec: ToolSpec<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ToolSpec<'a> {
    pub(super) name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) description: Option<&'a str>,
    pub(super) input_schema: InputSchema,
}

#[derive(Serialize)]
pub(super) struct InputSchema {
    pub(super) json: Value,
}

/// `auto` is Converse's default and never sent.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) enum ToolChoice<'a> {
    Any {},
    Tool { name: &'a str },
}

// ---------------------------------------------------------------------------------------------
// Converse answer

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ConverseResponse {
    pub(super) output: ConverseOutput,
    /// Required: an answer without it did not end.
    pub(super) stop_reason: String,
    #[serde(default)]
    pub(super) usage: Option<WireUsage>,
}

#[derive(Deserialize)]
pub(super) struct ConverseOutput {
    pub(super) message: OutputMessage,
}

/// The answer: `content` is required (it may be empty, as Claude's silent turns are).
#[derive(Deserialize)]
pub(super) struct OutputMessage {
    pub(super) content: Vec<OutputBlock>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct OutputBlock {
    #[serde(default)]
    pub(super) text: Option<String>,
    #[serde(default)]
    pub(super) tool_use: Option<ToolUse>,
    #[serde(default)]
    pub(super) reasoning_content: Option<ReasoningBlock>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ReasoningBlock {
    #[serde(default)]
    pub(super) reasoning_text: Option<ReasoningText>,
    /// Encrypted reasoning (base64).
    #[serde(default)]
    pub(super) redacted_content: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct ReasoningText {
    pub(super) text: String,
    #[serde(default)]
    pub(super) signature: Option<String>,
}

/// Converse usage: `inputTokens` excludes the tokens read from or written to the cache.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireUsage {
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
    pub(super) fn normalise(&self) -> Usage {
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
// ConverseStream event payloads

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct BlockStart {
    pub(super) content_block_index: u32,
    #[serde(default)]
    pub(super) start: BlockStartBody,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct BlockStartBody {
    #[serde(default)]
    pub(super) tool_use: Option<ToolUseStart>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ToolUseStart {
    pub(super) tool_use_id: String,
    pub(super) name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct BlockDelta {
    pub(super) content_block_index: u32,
    pub(super) delta: BlockDeltaBody,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct BlockDeltaBody {
    #[serde(default)]
    pub(super) text: Option<String>,
    #[serde(default)]
    pub(super) tool_use: Option<ToolUseDelta>,
    #[serde(default)]
    pub(super) reasoning_content: Option<ReasoningDelta>,
}

#[derive(Deserialize)]
pub(super) struct ToolUseDelta {
    #[serde(default)]
    pub(super) input: String,
}

/// A reasoning delta carries `text`, the `signature` that closes the reasoning, or a
/// `redactedContent` block.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ReasoningDelta {
    #[serde(default)]
    pub(super) text: Option<String>,
    #[serde(default)]
    pub(super) signature: Option<String>,
    #[serde(default)]
    pub(super) redacted_content: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct MessageStop {
    pub(super) stop_reason: String,
}

#[derive(Deserialize)]
pub(super) struct StreamMetadata {
    #[serde(default)]
    pub(super) usage: Option<WireUsage>,
}

// ---------------------------------------------------------------------------------------------
// InvokeModel embeddings

/// The body of an embeddings request, in the model family's own shape.
#[derive(Serialize)]
#[serde(untagged)]
pub(super) enum EmbeddingsBody<'a> {
    Titan(TitanEmbed<'a>),
    Cohere(CohereEmbed<'a>),
}

/// Titan embeds one text per request.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TitanEmbed<'a> {
    pub(super) input_text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) dimensions: Option<u32>,
}

#[derive(Serialize)]
pub(super) struct CohereEmbed<'a> {
    pub(super) texts: Vec<&'a str>,
    /// What the texts are for (`search_document`, `search_query`, ...).
    pub(super) input_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) output_dimension: Option<u32>,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum InvokeEmbeddings {
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
pub(super) enum CohereEmbeddings {
    Floats(Vec<Vec<f32>>),
    ByType { float: Vec<Vec<f32>> },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::testing::UsageCase;
    use crate::testkit::test;
    use serde_json::json;

    #[test]
    fn usage_counts_cache_tokens_in_the_prompt() {
        let cases = [
            UsageCase {
                name: "cache reads and writes",
                usage: r#"{"inputTokens":10,"outputTokens":3,"totalTokens":33,
                    "cacheReadInputTokens":15,"cacheWriteInputTokens":5}"#,
                expected: Usage {
                    prompt_tokens: 30,
                    completion_tokens: 3,
                    cached_tokens: 15,
                    cache_write_tokens: 5,
                    reasoning_tokens: 0,
                },
            },
            UsageCase {
                name: "nothing reported",
                usage: "{}",
                expected: Usage::default(),
            },
        ];
        for case in cases {
            case.check(|u: WireUsage| u.normalise());
        }
    }

    #[test]
    fn content_blocks_are_objects_named_after_their_type() {
        let blocks = vec![
            ContentBlock::Text("hi".into()),
            ContentBlock::Image(Image {
                format: "png",
                source: ImageSource { bytes: "AA".into() },
            }),
            ContentBlock::ToolUse(ToolUse {
                tool_use_id: "t1".into(),
                name: "f".into(),
                input: json!({}),
            }),
            ContentBlock::ToolResult(ToolResult {
                tool_use_id: "t1".into(),
                content: vec![ContentBlock::Text("ok".into())],
            }),
            ContentBlock::ReasoningContent(ReasoningContent::ReasoningText {
                text: "hm".into(),
                signature: "sig".into(),
            }),
            ContentBlock::ReasoningContent(ReasoningContent::RedactedContent("cmVk".into())),
        ];
        assert_eq!(
            serde_json::to_value(blocks).unwrap(),
            json!([
                {"text": "hi"},
                {"image": {"format": "png", "source": {"bytes": "AA"}}},
                {"toolUse": {"toolUseId": "t1", "name": "f", "input": {}}},
                {"toolResult": {"toolUseId": "t1", "content": [{"text": "ok"}]}},
                {"reasoningContent": {"reasoningText": {"text": "hm", "signature": "sig"}}},
                {"reasoningContent": {"redactedContent": "cmVk"}}
            ])
        );
        let choices = [ToolChoice::Any {}, ToolChoice::Tool { name: "f" }];
        assert_eq!(
            serde_json::to_value(choices).unwrap(),
            json!([{"any": {}}, {"tool": {"name": "f"}}])
        );
    }
}
