//! Cohere v2's wire types: the chat request, its answer, stream events, and `/v2/embed`.
//! Answers are read leniently: content and event types added later are ignored.

use crate::usage::Usage;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use std::collections::BTreeMap;

/// What the embedded texts are for; Cohere's v3+ embedding models require it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum EmbedInputType {
    #[default]
    SearchDocument,
    SearchQuery,
    Classification,
    Clustering,
}

#[derive(Serialize)]
pub(super) struct ChatBody<'a> {
    pub(super) model: &'a str,
    pub(super) messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) strict_tools: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) tool_choice: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) response_format: Option<WireResponseFormat<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) stop_sequences: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) frequency_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) presence_penalty: Option<f64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(super) stream: bool,
    #[serde(flatten)]
    pub(super) native: BTreeMap<&'a str, &'a Value>,
}

#[derive(Serialize)]
#[serde(tag = "role", rename_all = "lowercase")]
pub(super) enum WireMessage<'a> {
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
pub(super) enum UserContent<'a> {
    Text(&'a str),
    Parts(Vec<WirePart<'a>>),
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum WirePart<'a> {
    Text { text: &'a str },
    ImageUrl { image_url: WireImage<'a> },
}

#[derive(Serialize)]
pub(super) struct WireImage<'a> {
    pub(super) url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) detail: Option<&'a str>,
}

#[derive(Serialize)]
pub(super) struct WireToolCall<'a> {
    pub(super) id: &'a str,
    #[serde(rename = "type")]
    pub(super) kind: &'static str,
    pub(super) function: WireFunctionCall<'a>,
}

#[derive(Serialize)]
pub(super) struct WireFunctionCall<'a> {
    pub(super) name: &'a str,
    pub(super) arguments: &'a str,
}

#[derive(Serialize)]
pub(super) struct WireTool<'a> {
    #[serde(rename = "type")]
    pub(super) kind: &'static str,
    pub(super) function: WireFunction<'a>,
}

#[derive(Serialize)]
pub(super) struct WireFunction<'a> {
    pub(super) name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) description: Option<&'a str>,
    pub(super) parameters: &'a Value,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum WireResponseFormat<'a> {
    JsonObject {
        #[serde(skip_serializing_if = "Option::is_none")]
        json_schema: Option<&'a Value>,
    },
}

#[derive(Deserialize)]
pub(super) struct WireChatResponse {
    #[serde(default)]
    pub(super) id: Option<String>,
    #[serde(default)]
    pub(super) finish_reason: Option<String>,
    pub(super) message: WireAssistant,
    #[serde(default)]
    pub(super) usage: Option<WireUsage>,
}

#[derive(Deserialize)]
pub(super) struct WireAssistant {
    #[serde(default)]
    pub(super) content: Option<Vec<WireContent>>,
    #[serde(default)]
    pub(super) tool_calls: Option<Vec<WireToolCallIn>>,
    #[serde(default)]
    pub(super) tool_plan: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub(super) enum WireContent {
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
pub(super) struct WireToolCallIn {
    pub(super) id: String,
    pub(super) function: WireFunctionIn,
}

#[derive(Deserialize)]
pub(super) struct WireFunctionIn {
    pub(super) name: String,
    #[serde(default)]
    pub(super) arguments: Option<String>,
}

/// Cohere's usage: counts may be written as floats.
#[derive(Debug, Default, Deserialize)]
pub(super) struct WireUsage {
    #[serde(default)]
    pub(super) tokens: Option<TokenCounts>,
    #[serde(default)]
    pub(super) billed_units: Option<TokenCounts>,
    #[serde(default)]
    pub(super) cached_tokens: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct TokenCounts {
    #[serde(default)]
    pub(super) input_tokens: Option<f64>,
    #[serde(default)]
    pub(super) output_tokens: Option<f64>,
}

impl WireUsage {
    pub(super) fn normalise(self) -> Usage {
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
pub(super) fn count(v: Option<f64>) -> u64 {
    v.map_or(0, |n| n.max(0.0) as u64)
}

#[derive(Deserialize)]
pub(super) struct WireEvent<'a> {
    #[serde(default, rename = "type")]
    pub(super) kind: Option<String>,
    #[serde(default)]
    pub(super) id: Option<String>,
    #[serde(default, borrow)]
    pub(super) delta: Option<&'a RawValue>,
}

#[derive(Deserialize, Default)]
pub(super) struct MessageDelta {
    #[serde(default)]
    pub(super) message: Option<DeltaMessage>,
}

#[derive(Deserialize, Default)]
pub(super) struct DeltaMessage {
    #[serde(default)]
    pub(super) content: Option<DeltaContent>,
    #[serde(default)]
    pub(super) tool_plan: Option<String>,
    #[serde(default)]
    pub(super) tool_calls: Option<DeltaToolCall>,
}

#[derive(Deserialize, Default)]
pub(super) struct DeltaContent {
    #[serde(default)]
    pub(super) text: Option<String>,
    #[serde(default)]
    pub(super) thinking: Option<String>,
}

#[derive(Deserialize, Default)]
pub(super) struct DeltaToolCall {
    #[serde(default)]
    pub(super) id: Option<String>,
    #[serde(default)]
    pub(super) function: Option<DeltaFunction>,
}

#[derive(Deserialize, Default)]
pub(super) struct DeltaFunction {
    #[serde(default)]
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) arguments: Option<String>,
}

#[derive(Deserialize, Default)]
pub(super) struct EndDelta {
    #[serde(default)]
    pub(super) finish_reason: Option<String>,
    #[serde(default)]
    pub(super) usage: Option<WireUsage>,
    #[serde(default)]
    pub(super) error: Option<String>,
}

#[derive(Serialize)]
pub(super) struct EmbedBody<'a> {
    pub(super) model: &'a str,
    pub(super) texts: Vec<&'a str>,
    pub(super) input_type: EmbedInputType,
    pub(super) embedding_types: [&'static str; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) output_dimension: Option<u32>,
}

#[derive(Deserialize)]
pub(super) struct WireEmbedResponse {
    pub(super) embeddings: WireEmbeddings,
    #[serde(default)]
    pub(super) meta: Option<WireEmbedMeta>,
}

#[derive(Deserialize)]
pub(super) struct WireEmbeddings {
    pub(super) float: Vec<Vec<f32>>,
}

#[derive(Deserialize)]
pub(super) struct WireEmbedMeta {
    #[serde(default)]
    pub(super) billed_units: Option<TokenCounts>,
    #[serde(default)]
    pub(super) tokens: Option<TokenCounts>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::testing::UsageCase;
    use crate::testkit::test;

    #[test]
    fn usage_prefers_processed_tokens_to_billed_units() {
        let cases = [
            UsageCase {
                name: "tokens (written as floats) win over billed units",
                usage: r#"{"billed_units":{"input_tokens":5,"output_tokens":3},
                    "tokens":{"input_tokens":12.0,"output_tokens":3},"cached_tokens":4}"#,
                expected: Usage {
                    prompt_tokens: 12,
                    completion_tokens: 3,
                    cached_tokens: 4,
                    ..Usage::default()
                },
            },
            UsageCase {
                name: "billed units alone",
                usage: r#"{"billed_units":{"input_tokens":2,"output_tokens":1}}"#,
                expected: Usage {
                    prompt_tokens: 2,
                    completion_tokens: 1,
                    ..Usage::default()
                },
            },
            UsageCase {
                name: "cached tokens never exceed the prompt",
                usage: r#"{"tokens":{"input_tokens":3,"output_tokens":1},"cached_tokens":9}"#,
                expected: Usage {
                    prompt_tokens: 3,
                    completion_tokens: 1,
                    cached_tokens: 3,
                    ..Usage::default()
                },
            },
        ];
        for case in cases {
            case.check(WireUsage::normalise);
        }
    }
}
