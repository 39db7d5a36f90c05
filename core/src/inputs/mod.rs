//! Input APIs beside OpenAI chat: Anthropic Messages (`messages`) and OpenAI Responses
//! (`responses`). A request in one is decoded into an OpenAI chat body — the canonical request
//! every provider translates — and the provider's answer, once in OpenAI's shape, is encoded
//! back into the input's (JSON, stream events, errors). A provider that speaks the input itself
//! (`Provider::native_api`) is given the client's body instead, so nothing it supports is lost.

pub mod messages;
pub mod responses;

use crate::api::{Api, ApiError, Operation};
use crate::config::ModelSettings;
use std::borrow::Cow;

/// A request of an input API, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The canonical request: an OpenAI chat completions body, given to providers as the
    /// client's body would be.
    pub chat_body: Vec<u8>,
    /// What encoding the answer needs to know of the request.
    pub context: Context,
}

/// Per input API, what its answers are encoded with.
#[derive(Debug, Clone, PartialEq)]
pub enum Context {
    Messages(messages::Context),
    Responses(responses::Context),
}

/// Turns OpenAI chat SSE (as the provider translators write it) into an input API's stream.
pub trait StreamEncoder {
    /// Consumes OpenAI SSE bytes, split anywhere, appending the input's events to `out`.
    fn feed(&mut self, openai: &[u8], out: &mut Vec<u8>);
    /// The OpenAI stream ended: closes the input's stream (an error event if it was cut short
    /// or carried an error).
    fn finish(&mut self, out: &mut Vec<u8>);
    /// Whether the OpenAI stream reached its end (`[DONE]`) without an error.
    fn complete(&self) -> bool;
}

/// Decodes a request of `op` (an input API's endpoint) into the canonical chat body.
pub fn decode(op: Operation, body: &[u8]) -> Result<Decoded, ApiError> {
    match op {
        Operation::Messages | Operation::CountTokens => messages::decode(op, body),
        Operation::Responses => responses::decode(body),
        Operation::ChatCompletions | Operation::Embeddings => Err(ApiError::server(
            "an OpenAI chat or embeddings request needs no decoding",
        )),
    }
}

/// Whether a decoded request can go to a provider that does not speak its input API, else
/// the 400 it gets there; called on every such attempt. What only the input's own provider
/// serves is refused: Messages' server tools and the like (unless `settings` drop unsupported
/// parameters), Responses' `previous_response_id` (always).
pub fn check_translatable(context: &Context, settings: &ModelSettings) -> Result<(), ApiError> {
    match context {
        Context::Messages(ctx) => messages::check_translatable(ctx, settings),
        Context::Responses(ctx) => ctx.check_translatable(),
    }
}

/// The client's body as a provider speaking its input natively takes it.
pub fn native_body<'a>(context: &Context, raw: &'a [u8]) -> Result<Cow<'a, [u8]>, ApiError> {
    match context {
        Context::Messages(ctx) => messages::native_body(ctx, raw),
        Context::Responses(_) => Ok(Cow::Borrowed(raw)),
    }
}

/// Encodes an OpenAI chat completion (JSON) as the input's answer.
pub fn encode_answer(context: &Context, openai: &[u8]) -> Result<Vec<u8>, ApiError> {
    match context {
        Context::Messages(ctx) => messages::encode_answer(ctx, openai),
        Context::Responses(ctx) => responses::encode_answer(ctx, openai),
    }
}

/// The encoder of an OpenAI chat stream into the input's events.
pub fn stream_encoder(context: &Context) -> Box<dyn StreamEncoder> {
    match context {
        Context::Messages(ctx) => Box::new(messages::StreamEncoder::new(ctx)),
        Context::Responses(ctx) => Box::new(responses::StreamEncoder::new(ctx)),
    }
}

/// An error answer's body in the shape clients of `api` read.
pub fn error_body(api: Api, err: &ApiError) -> Vec<u8> {
    match api {
        Api::AnthropicMessages => messages::error_body(err),
        Api::OpenAiChat | Api::OpenAiEmbeddings | Api::OpenAiResponses => err.to_json(),
    }
}

/// Appends a stream's error event in the shape clients of `api` read.
pub fn write_stream_error(api: Api, err: &ApiError, out: &mut Vec<u8>) {
    match api {
        Api::AnthropicMessages => messages::write_stream_error(err, out),
        Api::OpenAiResponses => responses::write_stream_error(err, out),
        Api::OpenAiChat | Api::OpenAiEmbeddings => crate::providers::write_sse_error(out, err),
    }
}

/// The tools a translated request did not offer the provider, for the answer's
/// `x-switchboard-dropped-tools` header.
pub fn dropped_tools(context: &Context) -> Option<String> {
    match context {
        Context::Messages(_) => None,
        Context::Responses(ctx) => ctx.dropped_tools(),
    }
}
