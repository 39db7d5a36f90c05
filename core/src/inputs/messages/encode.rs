//! An OpenAI chat completion → a Messages `message` answer.

use super::wire::{BlockOut, MessageOut, OutputDetails, UsageOut};
use super::Context;
use crate::api::chat::ThinkingBlock;
use crate::api::ApiError;
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct Completion {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    choices: Vec<CompletionChoice>,
    #[serde(default)]
    usage: Option<OpenAiUsage>,
}

#[derive(Deserialize)]
struct CompletionChoice {
    #[serde(default)]
    message: Option<AnswerMessage>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct AnswerMessage {
    /// A string; some OpenAI-speaking servers give text parts.
    #[serde(default)]
    content: Option<Value>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    reasoning_content: Option<String>,
    #[serde(default)]
    thinking_blocks: Option<Vec<ThinkingBlock>>,
    #[serde(default)]
    tool_calls: Option<Vec<AnswerToolCall>>,
}

#[derive(Deserialize)]
struct AnswerToolCall {
    id: String,
    function: AnswerFunction,
}

#[derive(Deserialize)]
struct AnswerFunction {
    name: String,
    #[serde(default)]
    arguments: String,
}

/// Usage as the OpenAI shape reports it (with the gateway's `cache_creation_tokens`).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub(super) struct OpenAiUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_tokens: Option<u64>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
struct CompletionDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

impl OpenAiUsage {
    /// Anthropic's usage: `input_tokens` without the cache reads and writes.
    pub(super) fn anthropic(&self) -> UsageOut {
        let details = self.prompt_tokens_details.unwrap_or_default();
        let read = details.cached_tokens.unwrap_or(0);
        let written = details.cache_creation_tokens.unwrap_or(0);
        let thinking = self
            .completion_tokens_details
            .and_then(|d| d.reasoning_tokens)
            .filter(|t| *t > 0);
        UsageOut {
            input_tokens: self.prompt_tokens.saturating_sub(read + written),
            cache_creation_input_tokens: written,
            cache_read_input_tokens: read,
            output_tokens: self.completion_tokens,
            output_tokens_details: thinking
                .map(|thinking_tokens| OutputDetails { thinking_tokens }),
        }
    }
}

/// `finish_reason` → `stop_reason`; a turn that calls tools stops for them whatever the
/// provider said.
pub(super) fn stop_reason(finish_reason: Option<&str>, calls_tools: bool) -> &'static str {
    match finish_reason {
        _ if calls_tools => "tool_use",
        Some("length") => "max_tokens",
        Some("tool_calls" | "function_call") => "tool_use",
        Some("content_filter") => "refusal",
        _ => "end_turn",
    }
}

/// An answer the input cannot be given: a 502, as for any provider answer that is not what
/// its API promises.
pub(super) fn invalid(what: impl std::fmt::Display) -> ApiError {
    ApiError::upstream(format!(
        "the provider's answer cannot be given as a Messages answer: {what}"
    ))
    .with_code("invalid_upstream_response")
}

/// Thinking blocks as a Messages answer gives them (text left out when asked so; unsigned
/// reasoning, which has nothing to hand back, left out with it).
pub(super) fn thinking_out(block: ThinkingBlock, ctx: &Context) -> Option<BlockOut> {
    match block {
        ThinkingBlock::Thinking {
            thinking,
            signature,
        } => {
            let signature = signature.unwrap_or_default();
            if ctx.omit_thinking && signature.is_empty() {
                return None;
            }
            Some(BlockOut::Thinking {
                thinking: if ctx.omit_thinking {
                    String::new()
                } else {
                    thinking
                },
                signature,
            })
        }
        ThinkingBlock::RedactedThinking { data } => Some(BlockOut::RedactedThinking { data }),
    }
}

/// Encodes an OpenAI chat completion (its first choice) as a Messages answer.
pub fn encode_answer(ctx: &Context, openai: &[u8]) -> Result<Vec<u8>, ApiError> {
    let completion: Completion = serde_json::from_slice(openai).map_err(invalid)?;
    let choice = completion
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| invalid("no choices"))?;
    let message = choice.message.ok_or_else(|| invalid("no message"))?;
    let mut content = Vec::new();
    match message.thinking_blocks {
        Some(blocks) => content.extend(blocks.into_iter().filter_map(|b| thinking_out(b, ctx))),
        None => {
            let reasoning = message.reasoning_content.filter(|r| !r.is_empty());
            content.extend(reasoning.and_then(|thinking| {
                let unsigned = ThinkingBlock::Thinking {
                    thinking,
                    signature: None,
                };
                thinking_out(unsigned, ctx)
            }));
        }
    }
    let text = match message.content {
        Some(Value::String(text)) => text,
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        Some(Value::Null) | None => String::new(),
        Some(other) => return Err(invalid(format_args!("message content {other}"))),
    };
    let refused = message.refusal.filter(|r| !r.is_empty());
    let refusal = refused.is_some();
    for text in [Some(text), refused].into_iter().flatten() {
        if !text.is_empty() {
            content.push(BlockOut::Text { text });
        }
    }
    let calls = message.tool_calls.unwrap_or_default();
    let calls_tools = !calls.is_empty();
    for call in calls {
        content.push(BlockOut::ToolUse {
            input: tool_input(&call.function.arguments)?,
            id: call.id,
            name: call.function.name,
        });
    }
    let id = completion.id.unwrap_or_default();
    let model = completion.model.unwrap_or_default();
    let mut answer = MessageOut::new(&id, &model);
    answer.content = content;
    answer.stop_reason = Some(if refusal {
        "refusal"
    } else {
        stop_reason(choice.finish_reason.as_deref(), calls_tools)
    });
    answer.usage = completion.usage.map(|u| u.anthropic()).unwrap_or_default();
    serde_json::to_vec(&answer).map_err(|e| ApiError::server(e.to_string()))
}

/// A tool call's arguments as the `input` object Messages has.
fn tool_input(arguments: &str) -> Result<Value, ApiError> {
    if arguments.trim().is_empty() {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    match serde_json::from_str(arguments) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(invalid("tool call arguments that are not a JSON object")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::test;
    use serde_json::json;

    struct Case {
        name: &'static str,
        /// The OpenAI chat completion.
        answer: &'static str,
        omit_thinking: bool,
        /// The Messages answer.
        expected: Value,
    }

    const USAGE: &str = r#"{"prompt_tokens":130,"completion_tokens":7,"total_tokens":137,
        "prompt_tokens_details":{"cached_tokens":100,"cache_creation_tokens":20},"completion_tokens_details":{"reasoning_tokens":0}}"#;

    fn answer(message: &str, finish: &str) -> String {
        format!(
            r#"{{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"up-model",
            "choices":[{{"index":0,"message":{message},"finish_reason":{finish},"logprobs":null}}],"usage":{USAGE}}}"#
        )
    }

    fn message(content: Value, stop_reason: &str) -> Value {
        json!({"id":"chatcmpl-1","type":"message","role":"assistant","model":"up-model","content":content,
            "stop_reason":stop_reason,"stop_sequence":null,
            "usage":{"input_tokens":10,"cache_creation_input_tokens":20,"cache_read_input_tokens":100,"output_tokens":7}})
    }

    #[test]
    fn answers_encode_to_messages() {
        let cases = [
            Case {
                name: "text; cache reads and writes outside input_tokens",
                answer: Box::leak(answer(r#"{"role":"assistant","content":"Hello"}"#, r#""stop""#).into_boxed_str()),
                omit_thinking: false,
                expected: message(json!([{"type":"text","text":"Hello"}]), "end_turn"),
            },
            Case {
                name: "signed thinking, redacted thinking, text and tool calls, in that order",
                answer: Box::leak(answer(
                    r#"{"role":"assistant","content":"Checking.","reasoning_content":"Need it.",
                      "thinking_blocks":[{"type":"thinking","thinking":"Need it.","signature":"sig"},{"type":"redacted_thinking","data":"cmVk"}],
                      "tool_calls":[{"id":"c1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}},
                        {"id":"c2","type":"function","function":{"name":"clock","arguments":""}}]}"#,
                    r#""tool_calls""#,
                ).into_boxed_str()),
                omit_thinking: false,
                expected: message(json!([
                    {"type":"thinking","thinking":"Need it.","signature":"sig"},
                    {"type":"redacted_thinking","data":"cmVk"},
                    {"type":"text","text":"Checking."},
                    {"type":"tool_use","id":"c1","name":"weather","input":{"city":"Paris"}},
                    {"type":"tool_use","id":"c2","name":"clock","input":{}}
                ]), "tool_use"),
            },
            Case {
                name: "thinking asked without display: text left out, signature kept",
                answer: Box::leak(answer(
                    r#"{"role":"assistant","content":"42","reasoning_content":"hm",
                      "thinking_blocks":[{"type":"thinking","thinking":"hm","signature":"sig"}]}"#,
                    r#""length""#,
                ).into_boxed_str()),
                omit_thinking: true,
                expected: message(json!([{"type":"thinking","thinking":"","signature":"sig"},{"type":"text","text":"42"}]), "max_tokens"),
            },
            Case {
                name: "unsigned reasoning is a thinking block with an empty signature",
                answer: Box::leak(answer(r#"{"role":"assistant","content":"42","reasoning_content":"hm"}"#, r#""stop""#).into_boxed_str()),
                omit_thinking: false,
                expected: message(json!([{"type":"thinking","thinking":"hm","signature":""},{"type":"text","text":"42"}]), "end_turn"),
            },
            Case {
                name: "unsigned reasoning, not to be displayed, is left out",
                answer: Box::leak(answer(r#"{"role":"assistant","content":"42","reasoning_content":"hm"}"#, r#""stop""#).into_boxed_str()),
                omit_thinking: true,
                expected: message(json!([{"type":"text","text":"42"}]), "end_turn"),
            },
            Case {
                name: "a refusal, and a content filter",
                answer: Box::leak(answer(r#"{"role":"assistant","content":null,"refusal":"No."}"#, r#""stop""#).into_boxed_str()),
                omit_thinking: false,
                expected: message(json!([{"type":"text","text":"No."}]), "refusal"),
            },
            Case {
                name: "content filtered, empty content",
                answer: Box::leak(answer(r#"{"role":"assistant","content":""}"#, r#""content_filter""#).into_boxed_str()),
                omit_thinking: false,
                expected: message(json!([]), "refusal"),
            },
            Case {
                name: "tool calls finishing as stop still stop for the tools; text parts",
                answer: Box::leak(answer(
                    r#"{"role":"assistant","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}],
                      "tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":" {} "}}]}"#,
                    "null",
                ).into_boxed_str()),
                omit_thinking: false,
                expected: message(json!([{"type":"text","text":"ab"},{"type":"tool_use","id":"c1","name":"f","input":{}}]), "tool_use"),
            },
        ];
        for case in cases {
            let ctx = Context {
                omit_thinking: case.omit_thinking,
                ..Context::default()
            };
            let got: Value =
                serde_json::from_slice(&encode_answer(&ctx, case.answer.as_bytes()).unwrap())
                    .unwrap();
            assert_eq!(got, case.expected, "{}", case.name);
        }
    }

    #[test]
    fn usage_reports_reasoning_and_nothing_when_absent() {
        let got: Value = serde_json::from_slice(
            &encode_answer(
                &Context::default(),
                br#"{"id":"x","model":"m","choices":[{"message":{"content":"a"},"finish_reason":"stop"}],
                "usage":{"prompt_tokens":5,"completion_tokens":9,"completion_tokens_details":{"reasoning_tokens":4}}}"#,
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            got["usage"],
            json!({"input_tokens":5,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,
                "output_tokens":9,"output_tokens_details":{"thinking_tokens":4}})
        );
        let got: Value = serde_json::from_slice(
            &encode_answer(
                &Context::default(),
                br#"{"choices":[{"message":{"content":"a"}}]}"#,
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(got["usage"]["input_tokens"], 0);
        assert_eq!(got["stop_reason"], "end_turn");
    }

    #[test]
    fn answers_that_cannot_be_given_are_502s() {
        let cases = [
            ("not JSON", "{\"choices\":"),
            ("no choices", r#"{"choices":[]}"#),
            ("no message", r#"{"choices":[{"finish_reason":"stop"}]}"#),
            (
                "arguments that are not an object",
                r#"{"choices":[{"message":{"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"[1]"}}]}}]}"#,
            ),
            (
                "arguments that are not JSON",
                r#"{"choices":[{"message":{"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{\"a\":"}}]}}]}"#,
            ),
        ];
        for (name, answer) in cases {
            let err = encode_answer(&Context::default(), answer.as_bytes()).unwrap_err();
            assert_eq!(
                (err.status, err.code.as_deref()),
                (502, Some("invalid_upstream_response")),
                "{name}"
            );
        }
    }
}
