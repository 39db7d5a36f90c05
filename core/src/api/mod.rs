//! OpenAI wire types: what clients send and what they get back.

pub mod chat;
pub mod embeddings;
pub mod error;
pub mod models;

pub use error::{ApiError, ErrorKind};

/// The OpenAI endpoints the gateway serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    ChatCompletions,
    Embeddings,
}

impl Operation {
    /// Its name in the configuration (`endpoint:`).
    pub fn config_name(self) -> &'static str {
        match self {
            Operation::ChatCompletions => "chat_completions",
            Operation::Embeddings => "embeddings",
        }
    }
}
