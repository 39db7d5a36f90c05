//! OpenAI wire types: what clients send and what they get back.

pub mod chat;
pub mod embeddings;
pub mod error;
pub mod models;

pub use error::{ErrorKind, GatewayError};
