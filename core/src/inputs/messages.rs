//! Anthropic Messages in: `POST /v1/messages` (and `/v1/messages/count_tokens`) decoded into
//! the canonical OpenAI chat body, answers and streams encoded back into Messages' shapes.

use crate::api::ApiError;

/// What encoding a Messages answer needs of its request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {}

pub fn decode(_body: &[u8]) -> Result<super::Decoded, ApiError> {
    Err(not_yet())
}

pub fn encode_answer(_ctx: &Context, _openai: &[u8]) -> Result<Vec<u8>, ApiError> {
    Err(not_yet())
}

/// `{"type":"error","error":{"type":…,"message":…}}`
pub fn error_body(err: &ApiError) -> Vec<u8> {
    err.to_json()
}

pub fn write_stream_error(err: &ApiError, out: &mut Vec<u8>) {
    crate::providers::write_sse_error(out, err)
}

/// `{"input_tokens": N}`: what count_tokens answers.
pub fn count_tokens_answer(input_tokens: u64) -> Vec<u8> {
    format!("{{\"input_tokens\":{input_tokens}}}").into_bytes()
}

pub struct StreamEncoder {}

impl StreamEncoder {
    pub fn new(_ctx: &Context) -> Self {
        StreamEncoder {}
    }
}

impl super::StreamEncoder for StreamEncoder {
    fn feed(&mut self, _openai: &[u8], _out: &mut Vec<u8>) {}
    fn finish(&mut self, _out: &mut Vec<u8>) {}
    fn complete(&self) -> bool {
        false
    }
}

fn not_yet() -> ApiError {
    ApiError::server("the Messages input is not built yet")
}
