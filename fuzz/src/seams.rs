//! The seams a target exercises, each with the checks its output must pass.

use crate::checks::{
    assert_json, assert_object, assert_stream_shape, client_events, is_error_body, json,
    price_usage,
};
use crate::cuts::Cut;
use crate::eventstream;
use crate::providers::{self, Family};
use switchboard_core::api::chat::ChatRequest;
use switchboard_core::api::embeddings::EmbeddingsRequest;
use switchboard_core::flow::gateway::{self, parse_body};
use switchboard_core::limits::Caller;
use switchboard_core::providers::{Provider, ResponseContext, UpstreamRequest};
use switchboard_core::runtime::Runtime;
use switchboard_core::usage::Usage;

/// A client body as the gateway parses it (chat and embeddings), then translated for every
/// provider of the family, model and model settings. A translation may refuse; one it makes
/// must be sendable.
pub fn request(family: Family, data: &[u8]) {
    let chat = parse_body::<ChatRequest>(data).ok();
    let embeddings = parse_body::<EmbeddingsRequest>(data).ok();
    if chat.is_none() && embeddings.is_none() {
        return;
    }
    for provider in providers::of(family).iter() {
        for model in family.models() {
            for settings in &providers::settings() {
                let attempt = providers::attempt(model, settings);
                if let Some(req) = &chat {
                    if let Ok(up) = provider.chat_request(req, data, &attempt) {
                        assert_sendable(&up, provider.as_ref());
                    }
                }
                if let Some(req) = &embeddings {
                    if let Ok(up) = provider.embeddings_request(req, data, &attempt) {
                        assert_sendable(&up, provider.as_ref());
                    }
                }
            }
        }
    }
}

/// Asserts a provider request can be sent: a path and headers without spaces or line breaks,
/// and a JSON body.
pub fn assert_sendable(up: &UpstreamRequest, provider: &dyn Provider) {
    let kind = provider.kind();
    assert!(
        up.path.starts_with('/') && up.path.bytes().all(|b| b.is_ascii_graphic()),
        "{kind}: path {:?}",
        up.path
    );
    for (name, value) in &up.headers {
        assert!(
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':'),
            "{kind}: header name {name:?}"
        );
        assert!(
            !value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0),
            "{kind}: header {name}: {value:?}"
        );
    }
    assert_json(&up.body, &format!("{kind} request body"));
}

/// Answers and streams depend on the family's translation and the model, not on the section
/// (address, credentials, presets): one provider of the family translates them.
///
/// The provider's answer body under every model and context: a chat answer, an embeddings
/// answer, and an error answer with the status the first two bytes choose (400 to 599).
/// Translated answers are OpenAI's shapes; errors keep an error status.
pub fn answer(family: Family, data: &[u8]) {
    let Some((status, body)) = status_and_body(data) else {
        return;
    };
    let providers = providers::of(family);
    // Every family has providers (a unit test in `providers` holds it to that).
    let Some(provider) = providers.first() else {
        return;
    };
    let kind = provider.kind();
    for model in family.models() {
        for ctx in &providers::contexts(model) {
            if let Ok(t) = provider.chat_response(body, ctx) {
                match &t.body {
                    Some(answer) => assert_object(&json(answer, kind), "chat.completion", kind),
                    None => assert_json(body, "chat answer passed through"),
                }
                price_usage(t.usage);
            }
            if let Ok(t) = provider.embeddings_response(body, ctx) {
                match &t.body {
                    Some(answer) => assert_object(&json(answer, kind), "list", kind),
                    None => assert_json(body, "embeddings answer passed through"),
                }
                price_usage(t.usage);
            }
        }
    }
    let error = provider.error_response(status, body);
    assert!(
        (400..=599).contains(&error.status),
        "{kind}: {status} became {}",
        error.status
    );
    assert!(is_error_body(&json(&error.to_json(), "error answer")));
}

/// An answer input: the error status its first two bytes choose (400 to 599), and the body.
pub fn status_and_body(data: &[u8]) -> Option<(u16, &[u8])> {
    match data {
        [a, b, body @ ..] => Some((400 + u16::from_le_bytes([*a, *b]) % 200, body)),
        _ => None,
    }
}

/// Largest client stream for an upstream one of `n` bytes: a chunk per few input bytes, plus
/// the opening role chunk and the closing usage chunk or error. Beyond it, output grows faster
/// than input (a translator repeating what it has seen).
pub fn output_bound(n: usize) -> usize {
    64 * n + 4096
}

/// The provider's stream (the body of a [`Cut`]; Bedrock's built by [`eventstream::stream`])
/// translated in the fuzzer's pieces and whole: both must write the same client stream, read
/// the same usage, and that stream must be well-formed SSE of bounded size that ends in
/// `[DONE]` or one error.
pub fn stream(family: Family, data: &[u8]) {
    let cut = Cut::parse(data);
    let upstream = match family {
        Family::Bedrock => eventstream::stream(&cut),
        _ => cut.body.to_vec(),
    };
    let providers = providers::of(family);
    // Every family has providers (a unit test in `providers` holds it to that).
    let Some(provider) = providers.first() else {
        return;
    };
    for model in family.models() {
        for ctx in &providers::contexts(model) {
            let whole = translate(provider.as_ref(), ctx, &[&upstream]);
            let pieces = translate(provider.as_ref(), ctx, &cut.split(&upstream));
            assert!(
                whole == pieces,
                "{}: whole and cut streams differ:\n{}\n---\n{}",
                provider.kind(),
                String::from_utf8_lossy(&whole.0),
                String::from_utf8_lossy(&pieces.0)
            );
            let (out, usage) = whole;
            assert!(
                out.len() <= output_bound(upstream.len()),
                "{}: {} bytes out of {} in",
                provider.kind(),
                out.len(),
                upstream.len()
            );
            assert_stream_shape(&client_events(&out), family.translates_streams());
            price_usage(usage);
        }
    }
}

fn translate(
    provider: &dyn Provider,
    ctx: &ResponseContext,
    pieces: &[&[u8]],
) -> (Vec<u8>, Option<Usage>) {
    let mut translator = provider.chat_stream(ctx);
    let mut out = Vec::new();
    for piece in pieces {
        translator.feed(piece, &mut out);
    }
    translator.finish(&mut out);
    (out, translator.usage())
}

/// The configuration as the filter and the CLI load it: any text is a runtime or a list of
/// problems; a runtime lists its models as JSON.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let env = |name: &str| (name == "FUZZ_KEY").then(|| "k".to_owned());
    if let Ok(rt) = Runtime::from_text(text, &env) {
        let list = gateway::list_models(&rt, Caller::Anonymous);
        assert_object(&json(&list, "model list"), "list", "model list");
    }
}
