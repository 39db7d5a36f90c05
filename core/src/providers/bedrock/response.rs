//! A Converse answer → an OpenAI chat completion and its usage.

use super::wire::ConverseResponse;
use super::KIND;
use crate::api::chat::{
    content_beside_tools, AssistantMessage, FinishReason, FunctionCallOut, ThinkingBlock,
    ToolCallOut,
};
use crate::api::ApiError;
use crate::providers::{invalid_answer, ResponseContext, Translated};

pub(super) fn chat_completion(body: &[u8], ctx: &ResponseContext) -> Result<Translated, ApiError> {
    let answer: ConverseResponse =
        serde_json::from_slice(body).map_err(|e| invalid_answer(KIND, &e))?;
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut thinking_blocks = Vec::new();
    let mut tool_calls = Vec::new();
    for block in answer.output.message.content {
        if let Some(t) = block.text {
            text.push_str(&t);
        }
        if let Some(r) = block.reasoning_content {
            if let Some(said) = r.reasoning_text {
                reasoning.push_str(&said.text);
                if said.signature.is_some() {
                    thinking_blocks.push(ThinkingBlock::Thinking {
                        thinking: said.text,
                        signature: said.signature,
                    });
                }
            }
            if let Some(data) = r.redacted_content {
                thinking_blocks.push(ThinkingBlock::RedactedThinking { data });
            }
        }
        if let Some(tool) = block.tool_use {
            tool_calls.push(ToolCallOut {
                id: tool.tool_use_id,
                kind: "function",
                function: FunctionCallOut {
                    name: tool.name,
                    arguments: tool.input.to_string(),
                },
            });
        }
    }
    let finish = finish_reason(&answer.stop_reason);
    let usage = answer.usage.map(|u| u.normalise());
    let content = content_beside_tools(text, &tool_calls);
    let message =
        AssistantMessage::new(content, reasoning, tool_calls).with_thinking_blocks(thinking_blocks);
    Translated::one_choice(ctx, None, None, message, finish, usage)
}

pub(super) fn finish_reason(stop_reason: &str) -> FinishReason {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "guardrail_intervened" | "content_filtered" => FinishReason::ContentFilter,
        // end_turn, stop_sequence
        _ => FinishReason::Stop,
    }
}

#[cfg(test)]
mod tests {
    use crate::providers::bedrock::KEYS;
    use crate::providers::testing::*;
    use crate::testkit::test;
    use crate::usage::Usage;
    use serde_json::{json, Value};

    struct Case {
        name: &'static str,
        /// The Converse answer.
        answer: &'static str,
        /// The OpenAI chat completion.
        expected: Value,
        usage: Usage,
    }

    #[test]
    fn converse_answers_to_chat_completions() {
        let cases = [
            Case {
                name: "text with cache usage",
                answer: r#"{"output":{"message":{"role":"assistant","content":[{"text":"Hello"},{"text":" there"}]}},
                    "stopReason":"end_turn","usage":{"inputTokens":10,"outputTokens":3,"totalTokens":33,
                    "cacheReadInputTokens":15,"cacheWriteInputTokens":5},"metrics":{"latencyMs":120}}"#,
                expected: json!({"id":"chatcmpl-req-1","object":"chat.completion","created":1_700_000_000,"model":"up-model",
                       "choices":[{"index":0,"message":{"role":"assistant","content":"Hello there"},
                                   "finish_reason":"stop","logprobs":null}],
                       "usage":{"prompt_tokens":30,"completion_tokens":3,"total_tokens":33,
                                "prompt_tokens_details":{"cached_tokens":15,"cache_creation_tokens":5},
                                "completion_tokens_details":{"reasoning_tokens":0}}}),
                usage: Usage {
                    prompt_tokens: 30,
                    completion_tokens: 3,
                    cached_tokens: 15,
                    cache_write_tokens: 5,
                    reasoning_tokens: 0,
                },
            },
            Case {
                name: "tool use with reasoning",
                answer: r#"{"output":{"message":{"role":"assistant","content":[
                    {"reasoningContent":{"reasoningText":{"text":"Need weather.","signature":"sig"}}},
                    {"reasoningContent":{"redactedContent":"cmVk"}},
                    {"toolUse":{"toolUseId":"tooluse_1","name":"weather","input":{"city":"Paris"}}}]}},
                    "stopReason":"tool_use","usage":{"inputTokens":5,"outputTokens":8,"totalTokens":13}}"#,
                expected: json!({"id":"chatcmpl-req-1","object":"chat.completion","created":1_700_000_000,"model":"up-model",
                       "choices":[{"index":0,"message":{"role":"assistant","content":null,
                                   "reasoning_content":"Need weather.",
                                   "thinking_blocks":[{"type":"thinking","thinking":"Need weather.","signature":"sig"},
                                     {"type":"redacted_thinking","data":"cmVk"}],
                                   "tool_calls":[{"id":"tooluse_1","type":"function",
                                     "function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}}]},
                                   "finish_reason":"tool_calls","logprobs":null}],
                       "usage":{"prompt_tokens":5,"completion_tokens":8,"total_tokens":13,
                                "prompt_tokens_details":{"cached_tokens":0},
                                "completion_tokens_details":{"reasoning_tokens":0}}}),
                usage: Usage {
                    prompt_tokens: 5,
                    completion_tokens: 8,
                    ..Usage::default()
                },
            },
        ];
        let p = provider(KEYS);
        for case in cases {
            let t = p
                .chat_response(case.answer.as_bytes(), &ctx(false))
                .unwrap();
            let got: Value = serde_json::from_slice(&t.body.unwrap()).unwrap();
            assert_eq!(got, case.expected, "{}", case.name);
            assert_eq!(t.usage, Some(case.usage), "{}", case.name);
        }
    }

    struct FinishCase {
        stop_reason: &'static str,
        finish_reason: &'static str,
    }

    #[test]
    fn stop_reasons_map_to_finish_reasons() {
        let cases = [
            FinishCase {
                stop_reason: "max_tokens",
                finish_reason: "length",
            },
            FinishCase {
                stop_reason: "stop_sequence",
                finish_reason: "stop",
            },
            FinishCase {
                stop_reason: "guardrail_intervened",
                finish_reason: "content_filter",
            },
            FinishCase {
                stop_reason: "content_filtered",
                finish_reason: "content_filter",
            },
        ];
        let p = provider(KEYS);
        for case in cases {
            let body = format!(
                r#"{{"output":{{"message":{{"role":"assistant","content":[{{"text":"x"}}]}}}},"stopReason":"{}"}}"#,
                case.stop_reason
            );
            let t = p.chat_response(body.as_bytes(), &ctx(false)).unwrap();
            let got: Value = serde_json::from_slice(&t.body.unwrap()).unwrap();
            assert_eq!(
                got["choices"][0]["finish_reason"], case.finish_reason,
                "{}",
                case.stop_reason
            );
        }
    }

    #[test]
    fn an_empty_content_list_is_an_empty_answer() {
        let p = provider(KEYS);
        for (stop_reason, finish_reason) in
            [("end_turn", "stop"), ("content_filtered", "content_filter")]
        {
            let body = format!(
                r#"{{"output":{{"message":{{"role":"assistant","content":[]}}}},"stopReason":"{stop_reason}"}}"#
            );
            let t = p.chat_response(body.as_bytes(), &ctx(false)).unwrap();
            let got: Value = serde_json::from_slice(&t.body.unwrap()).unwrap();
            assert_eq!(
                (
                    &got["choices"][0]["message"]["content"],
                    &got["choices"][0]["finish_reason"]
                ),
                (&json!(""), &json!(finish_reason)),
                "{stop_reason}"
            );
        }
    }

    #[test]
    fn broken_answers_are_invalid_upstream_responses() {
        let p = provider(KEYS);
        for broken in [
            r#"{"output":"#,
            r#"{"stopReason":"end_turn"}"#,
            "[]",
            // The message without its content, and an answer without its stop reason.
            r#"{"output":{"message":{"role":"assistant"}},"stopReason":"end_turn","usage":{"inputTokens":3}}"#,
            r#"{"output":{"message":{"role":"assistant","content":[{"text":"Hi"}]}}}"#,
        ] {
            let err = p.chat_response(broken.as_bytes(), &ctx(false)).unwrap_err();
            assert_eq!(err.status, 502, "{broken}");
            assert_eq!(
                err.code.as_deref(),
                Some("invalid_upstream_response"),
                "{broken}"
            );
        }
    }
}
