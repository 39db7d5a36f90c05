//! OpenAI wire types: what clients send and what they get back.

pub mod chat;
pub mod embeddings;
pub mod error;
pub mod models;

pub use error::{ApiError, ErrorKind};

/// The endpoints the gateway proxies to providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// OpenAI `POST /v1/chat/completions`: the canonical request every provider translates.
    ChatCompletions,
    /// OpenAI `POST /v1/embeddings`.
    Embeddings,
    /// Anthropic `POST /v1/messages`.
    Messages,
    /// Anthropic `POST /v1/messages/count_tokens`.
    CountTokens,
    /// OpenAI `POST /v1/responses`.
    Responses,
}

impl Operation {
    /// Its name in the configuration (`endpoint:`).
    pub fn config_name(self) -> &'static str {
        match self {
            Operation::ChatCompletions => "chat_completions",
            Operation::Embeddings => "embeddings",
            Operation::Messages => "messages",
            Operation::CountTokens => "count_tokens",
            Operation::Responses => "responses",
        }
    }

    /// The API the client speaks, which answers and errors are written in.
    pub fn api(self) -> Api {
        match self {
            Operation::ChatCompletions => Api::OpenAiChat,
            Operation::Embeddings => Api::OpenAiEmbeddings,
            Operation::Messages | Operation::CountTokens => Api::AnthropicMessages,
            Operation::Responses => Api::OpenAiResponses,
        }
    }

    /// Whether the request is a conversation (translated to a chat request for providers).
    pub fn is_chat(self) -> bool {
        matches!(
            self,
            Operation::ChatCompletions | Operation::Messages | Operation::Responses
        )
    }
}

/// The wire API a client speaks to the gateway (the `switchboard_api` metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Api {
    OpenAiChat,
    OpenAiEmbeddings,
    AnthropicMessages,
    OpenAiResponses,
}

impl Api {
    pub fn name(self) -> &'static str {
        match self {
            Api::OpenAiChat => "openai_chat",
            Api::OpenAiEmbeddings => "openai_embeddings",
            Api::AnthropicMessages => "anthropic_messages",
            Api::OpenAiResponses => "openai_responses",
        }
    }
}
