//! The decisions of the two filter roles, as plain functions over bytes and typed values.
//! `proxy/` only moves bytes between Envoy and these.

pub mod estimate;
pub mod gateway;
pub mod handoff;
pub mod metrics;
pub mod record;
pub mod upstream;

use crate::api::chat::ChatRequest;
use crate::api::embeddings::EmbeddingsRequest;
use crate::api::Operation;

/// A client request as parsed once by the gateway role.
#[derive(Debug, Clone, PartialEq)]
pub enum ParsedRequest {
    Chat(Box<ChatRequest>),
    Embeddings(EmbeddingsRequest),
}

impl ParsedRequest {
    pub fn operation(&self) -> Operation {
        match self {
            ParsedRequest::Chat(_) => Operation::ChatCompletions,
            ParsedRequest::Embeddings(_) => Operation::Embeddings,
        }
    }

    pub fn model(&self) -> &str {
        match self {
            ParsedRequest::Chat(r) => &r.model,
            ParsedRequest::Embeddings(r) => &r.model,
        }
    }

    pub fn is_stream(&self) -> bool {
        matches!(self, ParsedRequest::Chat(r) if r.stream)
    }
}
