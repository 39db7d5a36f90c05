//! The input APIs beside OpenAI chat (Anthropic Messages, OpenAI Responses): client bodies
//! decoded as the gateway does and sent to every provider (translated, or as they are to the
//! provider that speaks the input), OpenAI answers and streams encoded back into the input's.

use crate::checks::{
    assert_json, assert_messages_stream, assert_responses_stream, client_events, is_error_body,
    json, price_usage,
};
use crate::cuts::Cut;
use crate::providers::{self, Family};
use crate::seams::{assert_sendable, output_bound, status_and_body};
use serde_json::Value;
use switchboard_core::api::{Api, ApiError, Operation};
use switchboard_core::flow::gateway::parse_request;
use switchboard_core::flow::{DecodedRequest, ParsedRequest};
use switchboard_core::inputs::{self, Context};
use switchboard_core::providers::{Attempt, Provider, ResponseContext};
use switchboard_core::stream::MAX_EVENT_BYTES;
use switchboard_core::usage::Usage;

/// The input APIs, three targets each (`request_`, `answer_`, `stream_`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    Messages,
    Responses,
}

/// Every family, for the providers a decoded request goes to.
const FAMILIES: [Family; 6] = [
    Family::OpenAi,
    Family::Anthropic,
    Family::Cohere,
    Family::Bedrock,
    Family::Gemini,
    Family::Vertex,
];

/// An OpenAI chat completion with every kind of output (reasoning, signed thinking, text, a
/// tool call) and usage: what a decoded request's context must be able to encode.
const FULL_ANSWER: &[u8] = br#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"up",
"choices":[{"index":0,"finish_reason":"tool_calls","message":{"role":"assistant","content":"Checking.",
"reasoning_content":"Need it.","thinking_blocks":[{"type":"thinking","thinking":"Need it.","signature":"sig"}],
"tool_calls":[{"id":"c1","type":"function","function":{"name":"ns__f","arguments":"{\"city\":\"Paris\"}"}}]}}],
"usage":{"prompt_tokens":9,"completion_tokens":7,"total_tokens":16}}"#;

/// The same answer as an OpenAI chat stream.
const FULL_STREAM: &[u8] = b"data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"up\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"reasoning_content\":\"Need it.\"}}]}\n\n\
data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"up\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Checking.\"}}]}\n\n\
data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"up\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"ns__f\",\"arguments\":\"{}\"}}]},\"finish_reason\":\"tool_calls\"}]}\n\n\
data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"up\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":7,\"total_tokens\":16}}\n\n\
data: [DONE]\n\n";

impl Input {
    /// The operations whose requests are in the input's shape.
    fn operations(self) -> &'static [Operation] {
        match self {
            Input::Messages => &[Operation::Messages, Operation::CountTokens],
            Input::Responses => &[Operation::Responses],
        }
    }

    fn api(self) -> Api {
        match self {
            Input::Messages => Api::AnthropicMessages,
            Input::Responses => Api::OpenAiResponses,
        }
    }

    /// Requests whose contexts the answer and stream targets encode under: a plain one, and
    /// one changing what encoding does (thinking not displayed; a reasoning summary, a
    /// namespace's functions, the request echoed in the response).
    fn context_requests(self) -> &'static [&'static str] {
        match self {
            Input::Messages => &[
                r#"{"model":"m","max_tokens":9,"messages":[{"role":"user","content":"x"}]}"#,
                r#"{"model":"m","max_tokens":9,"messages":[{"role":"user","content":"x"}],
                    "thinking":{"type":"enabled","budget_tokens":1024,"display":"omitted"}}"#,
            ],
            Input::Responses => &[
                r#"{"model":"m","input":"x"}"#,
                r#"{"model":"m","input":"x","instructions":"be brief","reasoning":{"summary":"auto"},
                    "tools":[{"type":"web_search"},{"type":"namespace","name":"ns","tools":[{"type":"function","name":"f"}]}],
                    "metadata":{"k":"v"},"text":{"format":{"type":"json_object"}}}"#,
            ],
        }
    }

    fn contexts(self) -> Vec<Context> {
        let op = self.operations().first().copied();
        self.context_requests()
            .iter()
            .map(
                |request| match op.map(|op| inputs::decode(op, request.as_bytes())) {
                    Some(Ok(decoded)) => decoded.context,
                    other => panic!("context request {request}: {other:?}"),
                },
            )
            .collect()
    }

    /// The provider that speaks the input itself: Anthropic for Messages, OpenAI for Responses.
    fn native_provider(self) -> providers::Providers {
        match self {
            Input::Messages => providers::of(Family::Anthropic),
            Input::Responses => providers::of(Family::OpenAi),
        }
    }

    /// Asserts `answer` is the input's answer object.
    fn assert_answer(self, answer: &[u8]) {
        let value = json(answer, "encoded answer");
        match self {
            Input::Messages => {
                assert_eq!(value["type"], "message", "{value}");
                assert_eq!(value["role"], "assistant", "{value}");
                let blocks = value["content"].as_array();
                let typed = |b: &Value| b["type"].is_string();
                assert!(blocks.is_some_and(|b| b.iter().all(typed)), "{value}");
            }
            Input::Responses => {
                assert_eq!(value["object"], "response", "{value}");
                assert!(value["status"].is_string(), "{value}");
                let items = value["output"].as_array();
                let typed = |i: &Value| i["type"].is_string();
                assert!(items.is_some_and(|i| i.iter().all(typed)), "{value}");
            }
        }
    }

    /// Asserts `err` is an error status whose body is the input's error answer.
    fn assert_error(self, err: &ApiError) {
        assert!((400..=599).contains(&err.status), "status {}", err.status);
        let body = json(&inputs::error_body(self.api(), err), "error answer");
        match self {
            Input::Messages => {
                assert_eq!(body["type"], "error", "{body}");
                assert!(body["error"]["type"].is_string(), "{body}");
                assert!(body["error"]["message"].is_string(), "{body}");
            }
            Input::Responses => assert!(is_error_body(&body), "{body}"),
        }
    }

    /// Asserts `out` is the input's client stream, complete (its terminal event) or not (an
    /// error at its end).
    fn assert_stream(self, out: &[u8], complete: bool) {
        let events = client_events(out);
        match self {
            Input::Messages => assert_messages_stream(&events, complete),
            Input::Responses => assert_responses_stream(&events, complete),
        }
    }
}

/// A client body of the input, parsed as the gateway parses it (`parse_request`: decoded,
/// then the canonical body read as a chat request); a refusal must be the input's error
/// answer. A decoded request goes to every provider of every kind, model and model settings
/// as an attempt sends it (`flow::upstream::Exchange::begin`): to the provider speaking the
/// input, the client's body (`native_body`); to the others, the canonical body, unless what
/// it cannot carry is refused. Each request made must be sendable. Its context must encode an
/// answer and a stream with every kind of output, and give a header value of visible ASCII
/// for the dropped tools.
pub fn request(input: Input, data: &[u8]) {
    for &op in input.operations() {
        let decoded = match parse_request(op, data) {
            Ok(ParsedRequest::Decoded(decoded)) => decoded,
            Ok(other) => panic!("{op:?} parsed as {:?}", other.operation()),
            Err(e) => {
                input.assert_error(&e);
                continue;
            }
        };
        assert_encodes(input, &decoded.context);
        if let Some(dropped) = inputs::dropped_tools(&decoded.context) {
            assert!(
                dropped.bytes().all(|b| b == b' ' || b.is_ascii_graphic()),
                "dropped-tools header {dropped:?}"
            );
        }
        for family in FAMILIES {
            for provider in providers::of(family).iter() {
                for model in family.models() {
                    for settings in &providers::settings() {
                        let attempt = providers::attempt(model, settings);
                        send(provider.as_ref(), &decoded, data, &attempt);
                    }
                }
            }
        }
    }
}

/// One attempt of a decoded request, as `Exchange::begin` makes it: refusals are errors,
/// requests made are sendable.
fn send(provider: &dyn Provider, decoded: &DecodedRequest, raw: &[u8], attempt: &Attempt) {
    let op = decoded.operation;
    let made = if provider.native_api() == Some(op.api()) {
        inputs::native_body(&decoded.context, raw)
            .and_then(|body| provider.native_request(op, &body, attempt))
    } else if op == Operation::CountTokens {
        return; // counted by the gateway itself (`local_token_count`)
    } else {
        inputs::check_translatable(&decoded.context, attempt.settings)
            .and_then(|()| provider.chat_request(&decoded.chat, &decoded.chat_body, attempt))
    };
    match made {
        Ok(up) => assert_sendable(&up, provider),
        Err(e) => assert!((400..=599).contains(&e.status), "status {}", e.status),
    }
}

/// A decoded request's context encodes an answer and a stream with every kind of output.
fn assert_encodes(input: Input, context: &Context) {
    match inputs::encode_answer(context, FULL_ANSWER) {
        Ok(answer) => input.assert_answer(&answer),
        Err(e) => panic!("the full answer is refused: {e:?}"),
    }
    let mut encoder = inputs::stream_encoder(context);
    let mut out = Vec::new();
    encoder.feed(FULL_STREAM, &mut out);
    encoder.finish(&mut out);
    assert!(
        encoder.complete(),
        "the full stream is not complete: {}",
        String::from_utf8_lossy(&out)
    );
    input.assert_stream(&out, true);
}

/// An OpenAI chat answer body (after the two bytes choosing an error status, as in every
/// answer seed) encoded into the input's answer under each context: the input's answer
/// object, or an error of its API. The body as an error answer of that status, from an
/// OpenAI-wire provider and from the provider speaking the input, is the input's error
/// answer. The native provider's check of the body as its own answer does not panic, and
/// passes only JSON.
pub fn answer(input: Input, data: &[u8]) {
    let Some((status, body)) = status_and_body(data) else {
        return;
    };
    for context in input.contexts() {
        match inputs::encode_answer(&context, body) {
            Ok(answer) => input.assert_answer(&answer),
            Err(e) => input.assert_error(&e),
        }
    }
    let native = input.native_provider();
    let openai = providers::of(Family::OpenAi);
    for provider in [native.first(), openai.first()].into_iter().flatten() {
        input.assert_error(&provider.error_response(status, body));
    }
    let Some(provider) = native.first() else {
        return;
    };
    let model = Family::OpenAi.models().first().copied().unwrap_or_default();
    for ctx in &providers::contexts(model) {
        for &op in input.operations() {
            if let Ok(t) = provider.native_response(op, body, ctx) {
                if let Some(answer) = &t.body {
                    assert_json(answer, "native answer");
                } else {
                    assert_json(body, "native answer passed through");
                }
                price_usage(t.usage);
            }
        }
    }
}

/// Flag: the stream is the native provider's (Anthropic's Messages events, OpenAI's
/// Responses events), passed through; else an OpenAI chat stream to encode.
pub const NATIVE: u8 = 1;

/// A stream (the body of a [`Cut`]) fed whole and in the fuzzer's pieces.
///
/// An OpenAI chat stream goes through an OpenAI-wire provider's translator and the input's
/// encoder, as a translated attempt streams (`Exchange::stream_step`), under each context:
/// whole and cut must write the same client stream and usage; that stream is well-formed
/// SSE of the input's events, of bounded size, ending in the input's terminal event when
/// complete and in an error event when not.
///
/// The native provider's stream (flag [`NATIVE`]) passes through, read for its usage and end:
/// whole and cut agree on those, and the client gets the provider's bytes (Responses: re-cut
/// at event boundaries, the same whole and cut) then at most the gateway's error event.
pub fn stream(input: Input, data: &[u8]) {
    let cut = Cut::parse(data);
    if cut.flags & NATIVE != 0 {
        return native_stream(input, &cut);
    }
    let openai = providers::of(Family::OpenAi);
    let Some(provider) = openai.first() else {
        return;
    };
    let model = Family::OpenAi.models().first().copied().unwrap_or_default();
    let upstream = cut.body;
    for context in input.contexts() {
        for ctx in &providers::contexts(model) {
            // An encoded stream's translator passes usage on, for the input's own events.
            let ctx = ResponseContext {
                include_usage: true,
                ..ctx.clone()
            };
            let whole = encode(provider.as_ref(), &ctx, &context, &[upstream]);
            let pieces = encode(provider.as_ref(), &ctx, &context, &cut.split(upstream));
            assert!(
                whole == pieces,
                "whole and cut streams differ:\n{}\n---\n{}",
                String::from_utf8_lossy(&whole.0),
                String::from_utf8_lossy(&pieces.0)
            );
            let (out, usage, complete) = whole;
            assert!(
                out.len() <= output_bound(upstream.len()),
                "{} bytes out of {} in",
                out.len(),
                upstream.len()
            );
            input.assert_stream(&out, complete);
            price_usage(usage);
        }
    }
}

/// The client stream, the usage read and whether the stream completed.
type Encoded = (Vec<u8>, Option<Usage>, bool);

fn encode(
    provider: &dyn Provider,
    ctx: &ResponseContext,
    context: &Context,
    pieces: &[&[u8]],
) -> Encoded {
    let mut translator = provider.chat_stream(ctx);
    let mut encoder = inputs::stream_encoder(context);
    let mut out = Vec::new();
    for piece in pieces {
        let mut openai = Vec::new();
        translator.feed(piece, &mut openai);
        encoder.feed(&openai, &mut out);
    }
    let mut openai = Vec::new();
    translator.finish(&mut openai);
    encoder.feed(&openai, &mut out);
    encoder.finish(&mut out);
    (out, translator.usage(), encoder.complete())
}

fn native_stream(input: Input, cut: &Cut) {
    let native = input.native_provider();
    let Some(provider) = native.first() else {
        return;
    };
    let op = input
        .operations()
        .first()
        .copied()
        .unwrap_or(Operation::Messages);
    let model = Family::OpenAi.models().first().copied().unwrap_or_default();
    let upstream = cut.body;
    for ctx in &providers::contexts(model) {
        let pass = |pieces: &[&[u8]]| {
            let mut translator = provider.native_stream(op, ctx);
            let mut out = Vec::new();
            for piece in pieces {
                translator.feed(piece, &mut out);
            }
            translator.finish(&mut out);
            let complete = translator.complete(&out);
            (out, translator.usage(), complete)
        };
        let whole = pass(&[upstream]);
        let pieces = pass(&cut.split(upstream));
        price_usage(whole.1);
        // An event over the limit ends the stream where the limit is reached, which the cuts
        // decide.
        if upstream.len() > MAX_EVENT_BYTES {
            continue;
        }
        assert_eq!(
            (whole.1, whole.2),
            (pieces.1, pieces.2),
            "whole and cut streams read differently"
        );
        match input {
            // Passed through as it comes: whole, the stream and the error appended, if any;
            // cut, the pieces before the failure and the same error.
            Input::Messages => {
                let Some(appended) = whole.0.strip_prefix(upstream) else {
                    panic!("the stream did not pass through");
                };
                if whole.2 {
                    assert!(appended.is_empty(), "appended to a complete stream");
                } else if !appended.is_empty() {
                    let events = client_events(appended);
                    let names: Vec<_> = events.iter().map(|e| e.name).collect();
                    assert_eq!(names, [Some("error")], "appended");
                }
                let passed = pieces.0.strip_suffix(appended);
                assert!(
                    passed.is_some_and(|p| upstream.starts_with(p)),
                    "the cut stream is not the pieces passed and the same error"
                );
            }
            // Re-cut at event boundaries: the same whole and cut.
            Input::Responses => assert!(
                whole.0 == pieces.0,
                "whole and cut streams differ:\n{}\n---\n{}",
                String::from_utf8_lossy(&whole.0),
                String::from_utf8_lossy(&pieces.0)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_context_encodes_every_kind_of_output() {
        for input in [Input::Messages, Input::Responses] {
            let contexts = input.contexts();
            assert_eq!(contexts.len(), input.context_requests().len());
            for context in &contexts {
                assert_encodes(input, context);
            }
        }
    }

    #[test]
    fn the_native_providers_speak_their_inputs() {
        for input in [Input::Messages, Input::Responses] {
            let native = input.native_provider();
            let api = native.first().and_then(|p| p.native_api());
            assert_eq!(api, Some(input.api()), "{input:?}");
        }
    }
}
