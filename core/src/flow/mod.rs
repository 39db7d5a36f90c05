//! The decisions of the two filter roles, as plain functions over bytes and typed values.
//! The filter crate only moves bytes between Envoy and these.

pub mod estimate;
pub mod gateway;
pub mod handoff;
pub mod metrics;
pub mod record;
pub mod upstream;

use crate::api::chat::ChatRequest;
use crate::api::embeddings::EmbeddingsRequest;
use crate::api::Operation;
use crate::inputs;

/// A client request as parsed once by the gateway role.
#[derive(Debug, Clone, PartialEq)]
pub enum ParsedRequest {
    Chat(Box<ChatRequest>),
    Embeddings(EmbeddingsRequest),
    /// A request of another input API (Messages, Responses), decoded into a chat request.
    Decoded(Box<DecodedRequest>),
}

/// A request of another input API and its canonical chat form.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedRequest {
    pub operation: Operation,
    /// The canonical request, parsed.
    pub chat: ChatRequest,
    /// The canonical request's body (what a provider that does not speak the input is given).
    pub chat_body: Vec<u8>,
    /// What encoding the answer back into the input needs.
    pub context: inputs::Context,
}

impl ParsedRequest {
    pub fn operation(&self) -> Operation {
        match self {
            ParsedRequest::Chat(_) => Operation::ChatCompletions,
            ParsedRequest::Embeddings(_) => Operation::Embeddings,
            ParsedRequest::Decoded(d) => d.operation,
        }
    }

    pub fn model(&self) -> &str {
        match self {
            ParsedRequest::Embeddings(r) => &r.model,
            other => other.chat().map_or("", |c| c.model.as_str()),
        }
    }

    /// The request as a chat request (`None` for embeddings).
    pub fn chat(&self) -> Option<&ChatRequest> {
        match self {
            ParsedRequest::Chat(r) => Some(r),
            ParsedRequest::Decoded(d) => Some(&d.chat),
            ParsedRequest::Embeddings(_) => None,
        }
    }

    pub fn is_stream(&self) -> bool {
        self.chat().is_some_and(|c| c.stream)
    }
}
