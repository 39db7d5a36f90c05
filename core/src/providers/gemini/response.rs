//! A `generateContent` answer → an OpenAI chat completion and its usage.

use super::signature::tool_call_id;
use super::wire::{GenerateContentResponse, Part, UsageMetadata};
use crate::api::chat::{
    content_beside_tools, AssistantMessage, ChatCompletion, Choice, FinishReason, FunctionCallOut,
    ToolCallOut,
};
use crate::api::ApiError;
use crate::providers::{invalid_answer, no_content, ResponseContext, Translated};
use serde_json::Value;

/// How a candidate ended, in OpenAI's words. Tool-call failures are errors, not endings, and
/// so is a candidate that stopped without answer text or a tool call (`has_text`): only a
/// filter or the token limit explain an empty one.
pub(super) fn finish_reason(
    kind: &str,
    reason: &str,
    message: Option<&str>,
    has_tool_calls: bool,
    has_text: bool,
) -> Result<FinishReason, ApiError> {
    Ok(match reason {
        "MAX_TOKENS" => FinishReason::Length,
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION" => FinishReason::ContentFilter,
        "MALFORMED_FUNCTION_CALL" | "UNEXPECTED_TOOL_CALL" | "TOO_MANY_TOOL_CALLS" => {
            return Err(ApiError::upstream(format!(
                "the {kind} model produced an unusable tool call ({reason}){}",
                message.map(|m| format!(": {m}")).unwrap_or_default()
            ))
            .with_code(reason.to_ascii_lowercase()))
        }
        _ if has_tool_calls => FinishReason::ToolCalls,
        _ if !has_text => return Err(no_content(kind)),
        _ => FinishReason::Stop,
    })
}

/// What one candidate's parts say, split the way OpenAI clients read it.
#[derive(Default)]
struct Said {
    text: String,
    reasoning: String,
    calls: Vec<(String, String, Option<String>)>,
}

fn read_parts(parts: Vec<Part>) -> Said {
    let mut said = Said::default();
    for part in parts {
        if let Some(call) = part.function_call {
            said.calls
                .push((call.name, arguments(&call.args), part.thought_signature));
        } else if let Some(text) = part.text {
            if part.thought == Some(true) {
                said.reasoning.push_str(&text);
            } else {
                said.text.push_str(&text);
            }
        }
    }
    said
}

/// Function call `args` as the JSON text OpenAI's `arguments` holds.
pub(super) fn arguments(args: &Value) -> String {
    if args.is_null() {
        return "{}".into();
    }
    serde_json::to_string(args).unwrap_or_else(|_| "{}".into())
}

/// A `generateContent` answer → an OpenAI chat completion.
pub fn chat_completion(
    kind: &str,
    body: &[u8],
    ctx: &ResponseContext,
) -> Result<Translated, ApiError> {
    let answer: GenerateContentResponse =
        serde_json::from_slice(body).map_err(|e| invalid_answer(kind, e))?;
    let usage = answer.usage_metadata.map(UsageMetadata::normalise);
    let mut choices = Vec::with_capacity(answer.candidates.len().max(1));
    let mut calls_made = 0;
    if answer.candidates.is_empty() {
        if answer.blocked().is_none() {
            return Err(invalid_answer(kind, "no candidates"));
        }
        choices.push(Choice {
            index: 0,
            message: AssistantMessage {
                role: "assistant",
                content: Some(String::new()),
                ..AssistantMessage::default()
            },
            finish_reason: Some(FinishReason::ContentFilter),
            logprobs: None,
        });
    }
    for (position, candidate) in answer.candidates.into_iter().enumerate() {
        let said = read_parts(candidate.content.map(|c| c.parts).unwrap_or_default());
        let finish = finish_reason(
            kind,
            candidate.finish_reason.as_deref().unwrap_or("STOP"),
            candidate.finish_message.as_deref(),
            !said.calls.is_empty(),
            !said.text.is_empty(),
        )?;
        let tool_calls: Vec<ToolCallOut> = said
            .calls
            .into_iter()
            .map(|(name, arguments, signature)| {
                calls_made += 1;
                ToolCallOut {
                    id: tool_call_id(ctx.request_id, calls_made - 1, signature.as_deref()),
                    kind: "function",
                    function: FunctionCallOut { name, arguments },
                }
            })
            .collect();
        let content = content_beside_tools(said.text, &tool_calls);
        choices.push(Choice::new(
            candidate.index.unwrap_or(position as u32),
            AssistantMessage::new(content, said.reasoning, tool_calls),
            finish,
        ));
    }
    let id = answer
        .response_id
        .unwrap_or_else(|| format!("chatcmpl-{}", ctx.request_id));
    let model = answer
        .model_version
        .unwrap_or_else(|| ctx.upstream_model.to_owned());
    Translated::completion(
        &ChatCompletion::new(id, ctx.created, model, choices, usage),
        usage,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::gemini::YAML;
    use crate::providers::testing::*;
    use crate::testkit::test;
    use serde_json::json;

    struct Case {
        name: &'static str,
        /// Gemini's answer.
        answer: Value,
        /// The OpenAI chat completion.
        expected: Value,
    }

    #[test]
    fn answers() {
        let usage = json!({"promptTokenCount":10,"candidatesTokenCount":5,"totalTokenCount":22,
            "cachedContentTokenCount":4,"thoughtsTokenCount":7});
        let usage_out = json!({"prompt_tokens":10,"completion_tokens":12,"total_tokens":22,
            "prompt_tokens_details":{"cached_tokens":4},"completion_tokens_details":{"reasoning_tokens":7}});
        let cases = [
            Case {
                name: "text with thoughts",
                answer: json!({"candidates":[{"content":{"role":"model","parts":[
                    {"text":"thinking...","thought":true},{"text":"Hel"},{"text":"lo","thoughtSignature":"c2ln"}]},
                    "finishReason":"STOP","index":0}],
                    "usageMetadata":usage,"modelVersion":"gemini-2.5-flash","responseId":"resp-1"}),
                expected: json!({"id":"resp-1","object":"chat.completion","created":1_700_000_000,"model":"gemini-2.5-flash",
                    "choices":[{"index":0,"message":{"role":"assistant","content":"Hello","reasoning_content":"thinking..."},
                    "finish_reason":"stop","logprobs":null}],"usage":usage_out}),
            },
            Case {
                name: "tool calls keep their signature in the id",
                answer: json!({"candidates":[{"content":{"role":"model","parts":[
                    {"functionCall":{"name":"weather","args":{"city":"Paris"}},"thoughtSignature":"Zm9v+/8="},
                    {"functionCall":{"name":"time","args":{}}}]},"finishReason":"STOP"}]}),
                expected: json!({"id":"chatcmpl-req-1","object":"chat.completion","created":1_700_000_000,"model":"up-model",
                    "choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[
                        {"id":"call_req1-0_sig_Zm9v-_8","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}},
                        {"id":"call_req1-1","type":"function","function":{"name":"time","arguments":"{}"}}]},
                    "finish_reason":"tool_calls","logprobs":null}]}),
            },
            Case {
                name: "length, safety and several candidates",
                answer: json!({"candidates":[
                    {"content":{"parts":[{"text":"cut"}]},"finishReason":"MAX_TOKENS","index":0},
                    {"content":{"parts":[]},"finishReason":"SAFETY","index":1},
                    {"finishReason":"RECITATION","index":2}]}),
                expected: json!({"id":"chatcmpl-req-1","object":"chat.completion","created":1_700_000_000,"model":"up-model",
                    "choices":[
                        {"index":0,"message":{"role":"assistant","content":"cut"},"finish_reason":"length","logprobs":null},
                        {"index":1,"message":{"role":"assistant","content":""},"finish_reason":"content_filter","logprobs":null},
                        {"index":2,"message":{"role":"assistant","content":""},"finish_reason":"content_filter","logprobs":null}]}),
            },
            Case {
                name: "the token limit reached while thinking: an empty length answer",
                answer: json!({"candidates":[{"content":{"role":"model"},"finishReason":"MAX_TOKENS","index":0}]}),
                expected: json!({"id":"chatcmpl-req-1","object":"chat.completion","created":1_700_000_000,"model":"up-model",
                    "choices":[{"index":0,"message":{"role":"assistant","content":""},"finish_reason":"length","logprobs":null}]}),
            },
            Case {
                name: "a blocked prompt is an empty content_filter answer",
                answer: json!({"promptFeedback":{"blockReason":"PROHIBITED_CONTENT"},
                    "usageMetadata":{"promptTokenCount":8,"totalTokenCount":8}}),
                expected: json!({"id":"chatcmpl-req-1","object":"chat.completion","created":1_700_000_000,"model":"up-model",
                    "choices":[{"index":0,"message":{"role":"assistant","content":""},"finish_reason":"content_filter","logprobs":null}],
                    "usage":{"prompt_tokens":8,"completion_tokens":0,"total_tokens":8,
                        "prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}),
            },
        ];
        let p = provider(YAML);
        for case in cases {
            let t = p
                .chat_response(case.answer.to_string().as_bytes(), &ctx(false))
                .unwrap();
            let got: Value = serde_json::from_slice(&t.body.unwrap()).unwrap();
            assert_eq!(got, case.expected, "{}", case.name);
        }
    }

    struct Broken {
        /// The answer, which names the case.
        answer: &'static str,
        code: &'static str,
    }

    #[test]
    fn broken_answers_are_502() {
        let cases = [
            Broken {
                answer: "{\"candidates\": [",
                code: "invalid_upstream_response",
            },
            Broken {
                answer: "{}",
                code: "invalid_upstream_response",
            },
            Broken {
                answer: "[1,2]",
                code: "invalid_upstream_response",
            },
            Broken {
                answer: r#"{"candidates":[{"content":{"parts":[]},"finishReason":"MALFORMED_FUNCTION_CALL","finishMessage":"bad call"}]}"#,
                code: "malformed_function_call",
            },
            // Candidates that stopped without a word: no answer.
            Broken {
                answer: r#"{"candidates":[{"index":0,"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":3},"responseId":"r"}"#,
                code: "invalid_upstream_response",
            },
            Broken {
                answer: r#"{"candidates":[{"content":{"role":"model"},"finishReason":"STOP"}]}"#,
                code: "invalid_upstream_response",
            },
            Broken {
                answer: r#"{"candidates":[{"content":{"role":"model","parts":[{"text":""}]}}]}"#,
                code: "invalid_upstream_response",
            },
            Broken {
                answer: r#"{"candidates":[{"content":{"parts":[{"text":"hmm","thought":true}]},"finishReason":"STOP"}]}"#,
                code: "invalid_upstream_response",
            },
            Broken {
                answer: r#"{"candidates":[{"content":{"parts":[{"text":"a"}]},"finishReason":"STOP","index":0},
                    {"finishReason":"OTHER","index":1}]}"#,
                code: "invalid_upstream_response",
            },
        ];
        for case in cases {
            let err = provider(YAML)
                .chat_response(case.answer.as_bytes(), &ctx(false))
                .unwrap_err();
            assert_eq!(err.status, 502, "{}", case.answer);
            assert_eq!(err.code.as_deref(), Some(case.code), "{}", case.answer);
        }
    }
}
