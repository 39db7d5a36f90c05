//! A Messages JSON answer → an OpenAI chat completion and its usage.

use super::wire::{WireBlock, WireMessage, WireUsage};
use crate::api::chat::{
    AssistantMessage, FinishReason, FunctionCallOut, ThinkingBlock, ToolCallOut,
};
use crate::api::ApiError;
use crate::providers::{invalid_answer, ResponseContext, Translated};

/// `stop_reason` → `finish_reason`. A tool call that only carried the json_schema answer
/// finishes as `stop`.
pub(super) fn finish_reason(stop_reason: Option<&str>, client_tool_calls: bool) -> FinishReason {
    match stop_reason {
        Some("max_tokens" | "model_context_window_exceeded") => FinishReason::Length,
        Some("tool_use") if client_tool_calls => FinishReason::ToolCalls,
        Some("refusal") => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}

/// Maps a Messages JSON answer to an OpenAI chat completion (`body: Some`) and its usage.
///
/// Contract: `kind` names the provider in error messages; `ctx.json_schema` names the tool
/// whose input is the structured answer. An answer that is not a Message is a 502.
pub fn chat_completion(
    kind: &str,
    body: &[u8],
    ctx: &ResponseContext,
) -> Result<Translated, ApiError> {
    let msg: WireMessage = serde_json::from_slice(body).map_err(|e| invalid_answer(kind, &e))?;
    // Always set on a whole answer; without it the answer did not end.
    if msg.stop_reason.is_none() {
        return Err(invalid_answer(kind, "no `stop_reason`"));
    }
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut thinking_blocks = Vec::new();
    let mut calls = Vec::new();
    let mut schema_answer = None;
    for mut block in msg.content {
        let block_type = std::mem::take(&mut block.kind);
        match (block_type.as_str(), block) {
            ("text", WireBlock { text: Some(t), .. }) => text.push_str(&t),
            (
                "thinking",
                WireBlock {
                    thinking: Some(t),
                    signature,
                    ..
                },
            ) => {
                reasoning.push_str(&t);
                thinking_blocks.push(ThinkingBlock::Thinking {
                    thinking: t,
                    signature,
                });
            }
            (
                "redacted_thinking",
                WireBlock {
                    data: Some(data), ..
                },
            ) => thinking_blocks.push(ThinkingBlock::RedactedThinking { data }),
            (
                "tool_use",
                WireBlock {
                    id: Some(id),
                    name: Some(name),
                    input: Some(input),
                    ..
                },
            ) => {
                let arguments = input.to_string();
                if ctx.json_schema == Some(name.as_str()) {
                    schema_answer = Some(arguments);
                } else {
                    calls.push(ToolCallOut {
                        id,
                        kind: "function",
                        function: FunctionCallOut { name, arguments },
                    });
                }
            }
            ("text" | "thinking" | "tool_use", _) => {
                return Err(invalid_answer(
                    kind,
                    format_args!("a `{block_type}` block without its fields"),
                ))
            }
            // Server tools and their results: nothing an OpenAI client reads.
            _ => {}
        }
    }
    let finish = finish_reason(msg.stop_reason.as_deref(), !calls.is_empty());
    // The structured answer is the content; prose around the tool call is not.
    let content = match schema_answer {
        Some(answer) => Some(answer),
        None if text.is_empty() && !calls.is_empty() => None,
        None => Some(text),
    };
    let usage = msg.usage.map(WireUsage::normalise);
    let message =
        AssistantMessage::new(content, reasoning, calls).with_thinking_blocks(thinking_blocks);
    Translated::one_choice(ctx, msg.id, msg.model, message, finish, usage)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::chat::UsageReport;
    use crate::providers::anthropic::PROVIDER;
    use crate::providers::testing::*;
    use crate::testkit::test;
    use serde_json::Value;

    fn ctx_schema(name: &'static str) -> ResponseContext<'static> {
        ResponseContext {
            json_schema: Some(name),
            ..ctx(false)
        }
    }

    struct Case {
        name: &'static str,
        /// The Messages answer.
        answer: &'static str,
        /// The json_schema response format the client asked for, by name.
        json_schema: Option<&'static str>,
        /// The OpenAI chat completion.
        expected: &'static str,
    }

    const RESPONSES: &[Case] = &[
        Case {
            name: "text, with cache reads and writes counted once",
            answer: r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-x-2025",
                "content":[{"type":"text","text":"Hello"},{"type":"text","text":" there"}],
                "stop_reason":"end_turn","stop_sequence":null,
                "usage":{"input_tokens":10,"output_tokens":5,"cache_read_input_tokens":100,"cache_creation_input_tokens":20}}"#,
            json_schema: None,
            expected: r#"{"id":"msg_1","object":"chat.completion","created":1700000000,"model":"claude-x-2025",
                "choices":[{"index":0,"message":{"role":"assistant","content":"Hello there"},"finish_reason":"stop","logprobs":null}],
                "usage":{"prompt_tokens":130,"completion_tokens":5,"total_tokens":135,
                  "prompt_tokens_details":{"cached_tokens":100,"cache_creation_tokens":20},
                  "completion_tokens_details":{"reasoning_tokens":0}}}"#,
        },
        Case {
            name: "tool calls with JSON string arguments",
            answer: r#"{"id":"msg_2","type":"message","role":"assistant","model":"claude-x",
                "content":[{"type":"tool_use","id":"toolu_1","name":"weather","input":{"city":"Paris"}},
                  {"type":"tool_use","id":"toolu_2","name":"clock","input":{}}],
                "stop_reason":"tool_use","usage":{"input_tokens":3,"output_tokens":4}}"#,
            json_schema: None,
            expected: r#"{"id":"msg_2","object":"chat.completion","created":1700000000,"model":"claude-x",
                "choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[
                  {"id":"toolu_1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}},
                  {"id":"toolu_2","type":"function","function":{"name":"clock","arguments":"{}"}}]},
                  "finish_reason":"tool_calls","logprobs":null}],
                "usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7,
                  "prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}"#,
        },
        Case {
            name: "thinking becomes reasoning_content, and with redacted thinking thinking_blocks",
            answer: r#"{"id":"msg_3","type":"message","role":"assistant","model":"claude-x",
                "content":[{"type":"thinking","thinking":"Let me think.","signature":"sig"},
                  {"type":"redacted_thinking","data":"xx"},{"type":"text","text":"42"}],
                "stop_reason":"max_tokens",
                "usage":{"input_tokens":3,"output_tokens":40,"output_tokens_details":{"thinking_tokens":30}}}"#,
            json_schema: None,
            expected: r#"{"id":"msg_3","object":"chat.completion","created":1700000000,"model":"claude-x",
                "choices":[{"index":0,"message":{"role":"assistant","content":"42","reasoning_content":"Let me think.",
                  "thinking_blocks":[{"type":"thinking","thinking":"Let me think.","signature":"sig"},
                    {"type":"redacted_thinking","data":"xx"}]},
                  "finish_reason":"length","logprobs":null}],
                "usage":{"prompt_tokens":3,"completion_tokens":40,"total_tokens":43,
                  "prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":30}}}"#,
        },
        Case {
            name: "the json_schema tool's input is the content",
            answer: r#"{"id":"msg_4","type":"message","role":"assistant","model":"claude-x",
                "content":[{"type":"text","text":"Here you go:"},{"type":"tool_use","id":"toolu_9","name":"person","input":{"name":"Ada"}}],
                "stop_reason":"tool_use","usage":{"input_tokens":1,"output_tokens":2}}"#,
            json_schema: Some("person"),
            expected: r#"{"id":"msg_4","object":"chat.completion","created":1700000000,"model":"claude-x",
                "choices":[{"index":0,"message":{"role":"assistant","content":"{\"name\":\"Ada\"}"},
                  "finish_reason":"stop","logprobs":null}],
                "usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3,
                  "prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}"#,
        },
        Case {
            name: "a refusal without content and fields left out",
            answer: r#"{"content":[],"stop_reason":"refusal"}"#,
            json_schema: None,
            expected: r#"{"id":"chatcmpl-req-1","object":"chat.completion","created":1700000000,"model":"up-model",
                "choices":[{"index":0,"message":{"role":"assistant","content":""},
                  "finish_reason":"content_filter","logprobs":null}]}"#,
        },
        Case {
            name: "an empty end_turn is a silent turn (Anthropic documents it)",
            answer: r#"{"id":"m","model":"c","content":[],"stop_reason":"end_turn","usage":{"input_tokens":9,"output_tokens":2}}"#,
            json_schema: None,
            expected: r#"{"id":"m","object":"chat.completion","created":1700000000,"model":"c",
                "choices":[{"index":0,"message":{"role":"assistant","content":""},"finish_reason":"stop","logprobs":null}],
                "usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11,
                  "prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}"#,
        },
        Case {
            name: "stop_sequence finishes as stop",
            answer: r#"{"id":"m","model":"c","content":[{"type":"text","text":"a"}],"stop_reason":"stop_sequence",
                "usage":{"input_tokens":1,"output_tokens":1}}"#,
            json_schema: None,
            expected: r#"{"id":"m","object":"chat.completion","created":1700000000,"model":"c",
                "choices":[{"index":0,"message":{"role":"assistant","content":"a"},"finish_reason":"stop","logprobs":null}],
                "usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2,
                  "prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}"#,
        },
    ];

    #[test]
    fn answers_map_to_chat_completions() {
        let p = provider(PROVIDER);
        for case in RESPONSES {
            let ctx = case.json_schema.map_or_else(|| ctx(false), ctx_schema);
            let t = p.chat_response(case.answer.as_bytes(), &ctx).unwrap();
            let got: Value = serde_json::from_slice(&t.body.unwrap()).unwrap();
            let want: Value = serde_json::from_str(case.expected).unwrap();
            assert_eq!(got, want, "{}", case.name);
            assert_eq!(
                t.usage
                    .as_ref()
                    .map(UsageReport::from)
                    .map(|r| serde_json::to_value(r).unwrap()),
                want.get("usage").cloned(),
                "{}",
                case.name
            );
        }
    }

    struct Broken {
        name: &'static str,
        answer: &'static str,
    }

    #[test]
    fn broken_answers_are_invalid_upstream_responses() {
        let cases = [
            Broken {
                name: "cut JSON",
                answer: r#"{"id":"#,
            },
            Broken {
                name: "no content",
                answer: r#"{"id":"x"}"#,
            },
            Broken {
                name: "not an object",
                answer: "[]",
            },
            Broken {
                name: "no stop_reason",
                answer: r#"{"id":"x","content":[{"type":"text","text":"Hi"}],"stop_reason":null}"#,
            },
            Broken {
                name: "a tool_use block without its input",
                answer: r#"{"content":[{"type":"tool_use","id":"t","name":"f"}],"stop_reason":"tool_use"}"#,
            },
        ];
        let p = provider(PROVIDER);
        for case in cases {
            let err = p
                .chat_response(case.answer.as_bytes(), &ctx(false))
                .unwrap_err();
            assert_eq!(err.status, 502, "{}", case.name);
            assert_eq!(
                err.code.as_deref(),
                Some("invalid_upstream_response"),
                "{}",
                case.name
            );
        }
    }
}
