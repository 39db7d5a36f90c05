//! A `/v2/chat` answer → an OpenAI chat completion and its usage.

use super::wire::{WireChatResponse, WireContent, WireUsage};
use super::KIND;
use crate::api::chat::{
    content_beside_tools, AssistantMessage, FinishReason, FunctionCallOut, ToolCallOut,
};
use crate::api::{ApiError, ErrorKind};
use crate::providers::{invalid_answer, no_content, ResponseContext, Translated};

pub(super) fn chat_completion(body: &[u8], ctx: &ResponseContext) -> Result<Translated, ApiError> {
    let answer: WireChatResponse =
        serde_json::from_slice(body).map_err(|e| invalid_answer(KIND, &e))?;
    let usage = answer.usage.map(WireUsage::normalise);
    let message = answer.message;
    let mut text = String::new();
    let mut reasoning = String::new();
    for part in message.content.unwrap_or_default() {
        match part {
            WireContent::Text { text: t } => text.push_str(&t),
            WireContent::Thinking { thinking } => reasoning.push_str(&thinking),
            WireContent::Other => {}
        }
    }
    if let Some(plan) = message.tool_plan.filter(|p| !p.is_empty()) {
        if !reasoning.is_empty() {
            reasoning.push_str("\n\n");
        }
        reasoning.push_str(&plan);
    }
    let tool_calls: Vec<ToolCallOut> = message
        .tool_calls
        .unwrap_or_default()
        .into_iter()
        .map(|call| ToolCallOut {
            id: call.id,
            kind: "function",
            function: FunctionCallOut {
                name: call.function.name,
                arguments: call.function.arguments.unwrap_or_else(|| "{}".to_owned()),
            },
        })
        .collect();
    let said = !text.is_empty() || !tool_calls.is_empty();
    let finish = finish_reason(answer.finish_reason.as_deref(), said)?;
    let content = content_beside_tools(text, &tool_calls);
    let message = AssistantMessage::new(content, reasoning, tool_calls);
    Translated::one_choice(ctx, answer.id, None, message, finish, usage)
}

/// Cohere's finish reason (required: an answer without one did not end); the ones that mean
/// the generation failed become errors, and so does a `COMPLETE` answer that `said` nothing
/// (no text, no tool call): only the token limit, a stop sequence or the toxicity filter
/// explain an empty one.
pub(super) fn finish_reason(reason: Option<&str>, said: bool) -> Result<FinishReason, ApiError> {
    match reason {
        None => Err(invalid_answer(KIND, "no `finish_reason`")),
        Some("MAX_TOKENS") => Ok(FinishReason::Length),
        Some("TOOL_CALL") if said => Ok(FinishReason::ToolCalls),
        Some("ERROR_TOXIC") => Ok(FinishReason::ContentFilter),
        Some("STOP_SEQUENCE") => Ok(FinishReason::Stop),
        Some("ERROR") => Err(ApiError::upstream(
            "the Cohere provider stopped generating because of an error",
        )
        .with_code("provider_error")),
        Some("TIMEOUT") => Err(ApiError::new(
            ErrorKind::Timeout,
            "the Cohere provider timed out while generating",
        )),
        // COMPLETE, and reasons added later.
        Some(_) if said => Ok(FinishReason::Stop),
        Some(_) => Err(no_content(KIND)),
    }
}

#[cfg(test)]
mod tests {
    use crate::api::ApiError;
    use crate::providers::cohere::YAML;
    use crate::providers::testing::*;
    use crate::testkit::test;
    use crate::usage::Usage;
    use serde_json::{json, Value};

    fn respond(body: Value) -> Result<(Value, Option<Usage>), ApiError> {
        let p = provider(YAML);
        let t = p.chat_response(body.to_string().as_bytes(), &ctx(false))?;
        Ok((serde_json::from_slice(&t.body.unwrap()).unwrap(), t.usage))
    }

    struct Case {
        name: &'static str,
        /// Cohere's answer.
        answer: Value,
        /// The OpenAI chat completion.
        expected: Value,
    }

    #[test]
    fn chat_responses() {
        let usage = json!({"billed_units":{"input_tokens":5,"output_tokens":3},
            "tokens":{"input_tokens":12.0,"output_tokens":3},"cached_tokens":4});
        let report = json!({"prompt_tokens":12,"completion_tokens":3,"total_tokens":15,
            "prompt_tokens_details":{"cached_tokens":4},"completion_tokens_details":{"reasoning_tokens":0}});
        let cases = [
            Case {
                name: "text, usage from processed tokens",
                answer: json!({"id":"co-1","finish_reason":"COMPLETE","usage":usage,
                    "message":{"role":"assistant","content":[{"type":"text","text":"Hello"},
                        {"type":"text","text":" there"}],"citations":[]}}),
                expected: json!({"id":"co-1","object":"chat.completion","created":1_700_000_000u64,"model":"up-model",
                    "choices":[{"index":0,"message":{"role":"assistant","content":"Hello there"},
                    "finish_reason":"stop","logprobs":null}],"usage":report}),
            },
            Case {
                name: "a tool plan and tool calls, one without arguments",
                answer: json!({"id":"co-2","finish_reason":"TOOL_CALL",
                    "message":{"role":"assistant","tool_plan":"I will call f.",
                        "tool_calls":[{"id":"f_1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}},
                            {"id":"g_2","type":"function","function":{"name":"g"}}]}}),
                expected: json!({"id":"co-2","object":"chat.completion","created":1_700_000_000u64,"model":"up-model",
                    "choices":[{"index":0,"message":{"role":"assistant","content":null,
                        "reasoning_content":"I will call f.","tool_calls":[
                        {"id":"f_1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}},
                        {"id":"g_2","type":"function","function":{"name":"g","arguments":"{}"}}]},
                    "finish_reason":"tool_calls","logprobs":null}]}),
            },
            Case {
                name: "thinking, cut at max tokens, usage from billed units",
                answer: json!({"finish_reason":"MAX_TOKENS","message":{"content":[{"type":"thinking","thinking":"hmm"},
                    {"type":"text","text":"Cut"}]},"usage":{"billed_units":{"input_tokens":2,"output_tokens":1}}}),
                expected: json!({"id":"chatcmpl-req-1","object":"chat.completion","created":1_700_000_000u64,"model":"up-model",
                    "choices":[{"index":0,"message":{"role":"assistant","content":"Cut","reasoning_content":"hmm"},
                    "finish_reason":"length","logprobs":null}],
                    "usage":{"prompt_tokens":2,"completion_tokens":1,"total_tokens":3,
                    "prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}),
            },
            Case {
                name: "a stop sequence and no content",
                answer: json!({"id":"co-4","finish_reason":"STOP_SEQUENCE","message":{"content":null}}),
                expected: json!({"id":"co-4","object":"chat.completion","created":1_700_000_000u64,"model":"up-model",
                    "choices":[{"index":0,"message":{"role":"assistant","content":""},
                    "finish_reason":"stop","logprobs":null}]}),
            },
            Case {
                name: "toxic output is filtered",
                answer: json!({"id":"co-5","finish_reason":"ERROR_TOXIC","message":{"content":[]}}),
                expected: json!({"id":"co-5","object":"chat.completion","created":1_700_000_000u64,"model":"up-model",
                    "choices":[{"index":0,"message":{"role":"assistant","content":""},
                    "finish_reason":"content_filter","logprobs":null}]}),
            },
        ];
        for case in cases {
            let (got, _) = respond(case.answer).unwrap();
            assert_eq!(got, case.expected, "{}", case.name);
        }
        let (_, usage) = respond(json!({"finish_reason":"COMPLETE","usage":usage,
            "message":{"content":[{"type":"text","text":"x"}]}}))
        .unwrap();
        assert_eq!(
            usage,
            Some(Usage {
                prompt_tokens: 12,
                completion_tokens: 3,
                cached_tokens: 4,
                ..Usage::default()
            })
        );
    }

    /// An answer (which names the case) that is an error, and the error.
    struct Failed {
        answer: &'static str,
        status: u16,
        code: Option<&'static str>,
    }

    #[test]
    fn broken_or_failed_chat_responses() {
        let p = provider(YAML);
        let cases = [
            Failed {
                answer: "{\"id\":",
                status: 502,
                code: Some("invalid_upstream_response"),
            },
            Failed {
                answer: "{\"id\":\"x\"}",
                status: 502,
                code: Some("invalid_upstream_response"),
            },
            Failed {
                answer: r#"{"message":{"tool_calls":[{"id":"c","function":{}}]}}"#,
                status: 502,
                code: Some("invalid_upstream_response"),
            },
            Failed {
                answer: r#"{"finish_reason":"ERROR","message":{}}"#,
                status: 502,
                code: Some("provider_error"),
            },
            Failed {
                answer: r#"{"finish_reason":"TIMEOUT","message":{}}"#,
                status: 504,
                code: None,
            },
            // A message without content, an empty one, and an answer that did not end.
            Failed {
                answer: r#"{"id":"co-1","finish_reason":"COMPLETE","message":{"role":"assistant"},"usage":{"tokens":{"input_tokens":3}}}"#,
                status: 502,
                code: Some("invalid_upstream_response"),
            },
            Failed {
                answer: r#"{"finish_reason":"COMPLETE","message":{"content":[{"type":"text","text":""}]}}"#,
                status: 502,
                code: Some("invalid_upstream_response"),
            },
            Failed {
                answer: r#"{"finish_reason":"TOOL_CALL","message":{"tool_plan":"I will call f."}}"#,
                status: 502,
                code: Some("invalid_upstream_response"),
            },
            Failed {
                answer: r#"{"message":{"content":[{"type":"text","text":"Hi"}]}}"#,
                status: 502,
                code: Some("invalid_upstream_response"),
            },
        ];
        for case in cases {
            let err = p
                .chat_response(case.answer.as_bytes(), &ctx(false))
                .unwrap_err();
            assert_eq!(
                (err.status, err.code.as_deref()),
                (case.status, case.code),
                "{}",
                case.answer
            );
        }
    }
}
