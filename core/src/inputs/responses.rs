//! OpenAI Responses in: `POST /v1/responses` decoded into
//! the canonical OpenAI chat body, answers and streams encoded back into Responses shapes.

use crate::api::ApiError;

/// What encoding a Responses answer needs of its request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {}

pub fn decode(_body: &[u8]) -> Result<super::Decoded, ApiError> {
    Err(not_yet())
}

pub fn encode_answer(_ctx: &Context, _openai: &[u8]) -> Result<Vec<u8>, ApiError> {
    Err(not_yet())
}

pub fn write_stream_error(err: &ApiError, out: &mut Vec<u8>) {
    crate::providers::write_sse_error(out, err)
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
    ApiError::server("the Responses input is not built yet")
}
