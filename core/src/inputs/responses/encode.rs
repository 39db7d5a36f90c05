//! An OpenAI chat completion → a Responses `response` object.

use super::wire::{
    minted_id, response_json, ChatAnswer, ChatMessage, IncompleteDetails, ItemStatus,
    OutputContent, OutputItem, ResponseObject, TextPart,
};
use super::Context;
use crate::api::ApiError;

pub fn encode_answer(ctx: &Context, openai: &[u8]) -> Result<Vec<u8>, ApiError> {
    let answer: ChatAnswer = serde_json::from_slice(openai).map_err(|e| {
        ApiError::upstream(format!(
            "the provider's answer cannot be given as a Responses answer: {e}"
        ))
    })?;
    let base = answer.id.unwrap_or_default();
    let choice = answer.choices.into_iter().find(|c| c.index == 0);
    let finish = choice.as_ref().and_then(|c| c.finish_reason.clone());
    let message = choice.and_then(|c| c.message).unwrap_or_default();
    let (status, incomplete_details) = outcome(finish.as_deref());
    let output = output_items(ctx, &base, message, item_status(incomplete_details));
    let usage = answer.usage.map(|u| u.to_responses());
    let id = minted_id("resp", &base);
    let response = ResponseObject {
        id: &id,
        object: "response",
        created_at: answer.created.unwrap_or_default(),
        status,
        error: None,
        incomplete_details,
        model: answer.model.as_deref().unwrap_or_default(),
        output: &output,
        usage: usage.as_ref(),
    };
    Ok(response_json(&response, &ctx.echo))
}

/// The response's status for a chat finish reason, and why it is incomplete.
pub(super) fn outcome(finish: Option<&str>) -> (&'static str, Option<IncompleteDetails>) {
    let reason = match finish {
        Some("length") => "max_output_tokens",
        Some("content_filter") => "content_filter",
        _ => return ("completed", None),
    };
    ("incomplete", Some(IncompleteDetails { reason }))
}

/// The status of the output items of a response that ended so.
pub(super) fn item_status(incomplete: Option<IncompleteDetails>) -> ItemStatus {
    match incomplete {
        Some(_) => ItemStatus::Incomplete,
        None => ItemStatus::Completed,
    }
}

/// A reasoning item holding `text`: as its summary when one was asked for.
pub(super) fn reasoning_item(ctx: &Context, id: String, text: String) -> OutputItem {
    let (summary, content) = match ctx.summary {
        true => (vec![TextPart::summary(text)], Vec::new()),
        false => (Vec::new(), vec![TextPart::reasoning(text)]),
    };
    OutputItem::Reasoning {
        id,
        summary,
        content,
    }
}

/// The output items of one assistant message: reasoning, the message, the function calls.
fn output_items(
    ctx: &Context,
    base: &str,
    message: ChatMessage,
    status: ItemStatus,
) -> Vec<OutputItem> {
    let mut output = Vec::with_capacity(2 + message.tool_calls.len());
    if let Some(text) = message.reasoning_text().filter(|t| !t.is_empty()) {
        output.push(reasoning_item(ctx, minted_id("rs", base), text.to_owned()));
    }
    let text = message.content.unwrap_or_default();
    let mut content = Vec::new();
    if !text.is_empty() || (message.tool_calls.is_empty() && message.refusal.is_none()) {
        content.push(OutputContent::text(text));
    }
    if let Some(refusal) = message.refusal {
        content.push(OutputContent::Refusal { refusal });
    }
    if !content.is_empty() {
        output.push(OutputItem::Message {
            id: minted_id("msg", base),
            status,
            role: "assistant",
            content,
        });
    }
    for (i, call) in message.tool_calls.into_iter().enumerate() {
        let (namespace, name) = ctx.call_name(call.function.name.as_deref().unwrap_or_default());
        output.push(OutputItem::FunctionCall {
            id: minted_id("fc", &format!("{base}_{i}")),
            status,
            call_id: call.id.unwrap_or_default(),
            name,
            namespace,
            arguments: call.function.arguments.unwrap_or_default(),
        });
    }
    output
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::test;
    use serde_json::{json, Value};

    /// The context of a request (its echo, summary choice and namespaces).
    pub(crate) fn context(request: Value) -> Context {
        let d = super::super::decode(&serde_json::to_vec(&request).unwrap()).unwrap();
        match d.context {
            crate::inputs::Context::Responses(ctx) => ctx,
            crate::inputs::Context::Messages(_) => panic!("a Responses context expected"),
        }
    }

    const ECHOED: [&str; 20] = [
        "instructions",
        "max_output_tokens",
        "max_tool_calls",
        "metadata",
        "parallel_tool_calls",
        "previous_response_id",
        "prompt_cache_key",
        "reasoning",
        "safety_identifier",
        "service_tier",
        "store",
        "temperature",
        "text",
        "tool_choice",
        "tools",
        "top_logprobs",
        "top_p",
        "truncation",
        "user",
        "background",
    ];

    struct Case {
        name: &'static str,
        request: Value,
        completion: Value,
        /// The response object's own members (the echo is checked apart).
        expected: Value,
    }

    fn usage(prompt: u64, completion: u64) -> Value {
        json!({"prompt_tokens": prompt, "completion_tokens": completion,
               "total_tokens": prompt + completion,
               "prompt_tokens_details": {"cached_tokens": 4, "cache_creation_tokens": 2},
               "completion_tokens_details": {"reasoning_tokens": 3}})
    }

    fn responses_usage(input: u64, output: u64) -> Value {
        json!({"input_tokens": input,
               "input_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 2},
               "output_tokens": output, "output_tokens_details": {"reasoning_tokens": 3},
               "total_tokens": input + output})
    }

    fn own(status: &str, output: Value, usage: Value) -> Value {
        json!({"id": "resp_sb_c1", "object": "response", "created_at": 1700,
               "status": status, "error": null, "incomplete_details": null,
               "model": "up-model", "output": output, "usage": usage})
    }

    #[test]
    fn completions_become_response_objects() {
        let cases = [
            Case {
                name: "text",
                request: json!({"model": "m", "input": "hi"}),
                completion: json!({"id": "c1", "object": "chat.completion", "created": 1700,
                    "model": "up-model", "choices": [{"index": 0, "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "Hello"}}], "usage": usage(10, 5)}),
                expected: own(
                    "completed",
                    json!([
                    {"type": "message", "id": "msg_sb_c1", "status": "completed", "role": "assistant",
                     "content": [{"type": "output_text", "text": "Hello", "annotations": [], "logprobs": []}]}]),
                    responses_usage(10, 5),
                ),
            },
            Case {
                name: "reasoning as a summary when one was asked for, then text",
                request: json!({"model": "m", "input": "hi", "reasoning": {"summary": "auto"}}),
                completion: json!({"id": "c1", "created": 1700, "model": "up-model",
                    "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant",
                    "content": "42", "reasoning_content": "Let me think."}}], "usage": usage(1, 2)}),
                expected: own(
                    "completed",
                    json!([
                    {"type": "reasoning", "id": "rs_sb_c1",
                     "summary": [{"type": "summary_text", "text": "Let me think."}]},
                    {"type": "message", "id": "msg_sb_c1", "status": "completed", "role": "assistant",
                     "content": [{"type": "output_text", "text": "42", "annotations": [], "logprobs": []}]}]),
                    responses_usage(1, 2),
                ),
            },
            Case {
                name: "reasoning as content when no summary was asked for (`reasoning` spelling)",
                request: json!({"model": "m", "input": "hi", "reasoning": {"effort": "low"}}),
                completion: json!({"id": "c1", "created": 1700, "model": "up-model",
                    "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant",
                    "content": "42", "reasoning": "Hmm."}}]}),
                expected: own(
                    "completed",
                    json!([
                    {"type": "reasoning", "id": "rs_sb_c1", "summary": [],
                     "content": [{"type": "reasoning_text", "text": "Hmm."}]},
                    {"type": "message", "id": "msg_sb_c1", "status": "completed", "role": "assistant",
                     "content": [{"type": "output_text", "text": "42", "annotations": [], "logprobs": []}]}]),
                    Value::Null,
                ),
            },
            Case {
                name: "tool calls only: no message; namespaced calls named apart",
                request: json!({"model": "m", "input": "hi", "tools": [
                    {"type": "function", "name": "get_weather"},
                    {"type": "namespace", "name": "agents", "tools": [{"type": "function", "name": "spawn"}]}]}),
                completion: json!({"id": "c1", "created": 1700, "model": "up-model",
                    "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant",
                    "content": null, "tool_calls": [
                        {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                        {"id": "call_b", "type": "function", "function": {"name": "agents__spawn", "arguments": "{}"}}]}}],
                    "usage": usage(8, 9)}),
                expected: own(
                    "completed",
                    json!([
                    {"type": "function_call", "id": "fc_sb_c1_0", "status": "completed", "call_id": "call_a",
                     "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
                    {"type": "function_call", "id": "fc_sb_c1_1", "status": "completed", "call_id": "call_b",
                     "name": "spawn", "namespace": "agents", "arguments": "{}"}]),
                    responses_usage(8, 9),
                ),
            },
            Case {
                name: "cut at the token limit: incomplete",
                request: json!({"model": "m", "input": "hi", "max_output_tokens": 5}),
                completion: json!({"id": "c1", "created": 1700, "model": "up-model",
                    "choices": [{"index": 0, "finish_reason": "length", "message": {"role": "assistant",
                    "content": "Hel"}}], "usage": usage(3, 5)}),
                expected: {
                    let mut v = own(
                        "incomplete",
                        json!([
                        {"type": "message", "id": "msg_sb_c1", "status": "incomplete", "role": "assistant",
                         "content": [{"type": "output_text", "text": "Hel", "annotations": [], "logprobs": []}]}]),
                        responses_usage(3, 5),
                    );
                    v["incomplete_details"] = json!({"reason": "max_output_tokens"});
                    v
                },
            },
            Case {
                name: "content filter: incomplete; a refusal is a refusal part",
                request: json!({"model": "m", "input": "hi"}),
                completion: json!({"id": "c1", "created": 1700, "model": "up-model",
                    "choices": [{"index": 0, "finish_reason": "content_filter", "message": {"role": "assistant",
                    "content": null, "refusal": "I can't."}}]}),
                expected: {
                    let mut v = own(
                        "incomplete",
                        json!([
                        {"type": "message", "id": "msg_sb_c1", "status": "incomplete", "role": "assistant",
                         "content": [{"type": "refusal", "refusal": "I can't."}]}]),
                        Value::Null,
                    );
                    v["incomplete_details"] = json!({"reason": "content_filter"});
                    v
                },
            },
            Case {
                name: "an empty answer is an empty message",
                request: json!({"model": "m", "input": "hi"}),
                completion: json!({"id": "c1", "created": 1700, "model": "up-model",
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": null}}]}),
                expected: own(
                    "completed",
                    json!([
                    {"type": "message", "id": "msg_sb_c1", "status": "completed", "role": "assistant",
                     "content": [{"type": "output_text", "text": "", "annotations": [], "logprobs": []}]}]),
                    Value::Null,
                ),
            },
        ];
        for case in cases {
            let ctx = context(case.request);
            let body = encode_answer(&ctx, &serde_json::to_vec(&case.completion).unwrap()).unwrap();
            let mut got: Value = serde_json::from_slice(&body).unwrap();
            let object = got.as_object_mut().unwrap();
            for key in ECHOED {
                assert!(
                    object.remove(key).is_some(),
                    "{}: {key} not echoed",
                    case.name
                );
            }
            assert_eq!(got, case.expected, "{}", case.name);
        }
    }

    #[test]
    fn the_echo_is_the_request_s() {
        let ctx = context(
            json!({"model": "m", "input": "hi", "instructions": "be brief",
            "tools": [{"type": "function", "name": "f"}], "tool_choice": "required",
            "temperature": 0.5, "parallel_tool_calls": false}),
        );
        let completion = json!({"id": "c1", "created": 1, "model": "up",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"content": "x"}}]});
        let body = encode_answer(&ctx, &serde_json::to_vec(&completion).unwrap()).unwrap();
        let got: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(got["instructions"], "be brief");
        assert_eq!(got["tools"], json!([{"type": "function", "name": "f"}]));
        assert_eq!(got["tool_choice"], "required");
        assert_eq!(got["temperature"], 0.5);
        assert_eq!(got["parallel_tool_calls"], false);
        assert_eq!(got["store"], false);
    }

    #[test]
    fn an_unreadable_completion_is_an_upstream_error() {
        let ctx = context(json!({"model": "m", "input": "hi"}));
        for body in [&b"{\"choices\": ["[..], b"[]", b"{\"choices\": 3}"] {
            let err = encode_answer(&ctx, body).unwrap_err();
            assert_eq!(err.status, 502, "{}", String::from_utf8_lossy(body));
        }
    }
}
