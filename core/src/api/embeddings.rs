//! OpenAI Embeddings wire types.

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct EmbeddingsRequest {
    pub model: String,
    pub input: EmbeddingInput,
    #[serde(default)]
    pub encoding_format: Option<String>,
    #[serde(default)]
    pub dimensions: Option<u32>,
    #[serde(default)]
    pub user: Option<String>,
}

/// `input` in all four shapes OpenAI accepts.
#[derive(Debug, Clone, PartialEq)]
pub enum EmbeddingInput {
    Text(String),
    Texts(Vec<String>),
    Tokens(Vec<u32>),
    TokenBatches(Vec<Vec<u32>>),
}

impl EmbeddingInput {
    /// The inputs as text, for providers that only embed text.
    pub fn texts(&self) -> Option<Vec<&str>> {
        match self {
            EmbeddingInput::Text(t) => Some(vec![t.as_str()]),
            EmbeddingInput::Texts(ts) => Some(ts.iter().map(String::as_str).collect()),
            EmbeddingInput::Tokens(_) | EmbeddingInput::TokenBatches(_) => None,
        }
    }
}

impl<'de> Deserialize<'de> for EmbeddingInput {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const EXPECTED: &str =
            "input must be a string, an array of strings, an array of token ids or an array of token arrays";
        let value = Value::deserialize(d)?;
        let parsed = match value {
            Value::String(s) => Some(EmbeddingInput::Text(s)),
            Value::Array(items) if items.is_empty() => None,
            Value::Array(items) => match items.first() {
                Some(Value::String(_)) => serde_json::from_value(Value::Array(items))
                    .ok()
                    .map(EmbeddingInput::Texts),
                Some(Value::Number(_)) => serde_json::from_value(Value::Array(items))
                    .ok()
                    .map(EmbeddingInput::Tokens),
                Some(Value::Array(_)) => serde_json::from_value(Value::Array(items))
                    .ok()
                    .map(EmbeddingInput::TokenBatches),
                _ => None,
            },
            _ => None,
        };
        parsed.ok_or_else(|| de::Error::custom(EXPECTED))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EmbeddingsResponse {
    pub object: &'static str,
    pub data: Vec<Embedding>,
    pub model: String,
    pub usage: EmbeddingsUsage,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Embedding {
    pub object: &'static str,
    pub index: u32,
    pub embedding: EmbeddingVector,
}

/// Floats, or base64 of little-endian f32s when the client asked `encoding_format: base64`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum EmbeddingVector {
    Floats(Vec<f32>),
    Base64(String),
}

impl EmbeddingVector {
    pub fn encode(values: Vec<f32>, base64: bool) -> Self {
        if !base64 {
            return EmbeddingVector::Floats(values);
        }
        use base64::Engine as _;
        let bytes: Vec<u8> = values.iter().flat_map(|f| f.to_le_bytes()).collect();
        EmbeddingVector::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EmbeddingsUsage {
    pub prompt_tokens: u64,
    pub total_tokens: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::test;

    #[test]
    fn input_shapes() {
        let cases = [
            (r#""a""#, Some(EmbeddingInput::Text("a".into()))),
            (
                r#"["a","b"]"#,
                Some(EmbeddingInput::Texts(vec!["a".into(), "b".into()])),
            ),
            (r#"[1,2]"#, Some(EmbeddingInput::Tokens(vec![1, 2]))),
            (
                r#"[[1],[2]]"#,
                Some(EmbeddingInput::TokenBatches(vec![vec![1], vec![2]])),
            ),
            (r#"[]"#, None),
            (r#"5"#, None),
            (r#"["a",1]"#, None),
        ];
        for (json, expected) in cases {
            let got: Result<EmbeddingInput, _> = serde_json::from_str(json);
            assert_eq!(got.ok(), expected, "{json}");
        }
    }

    #[test]
    fn base64_vectors_are_little_endian_f32() {
        let EmbeddingVector::Base64(s) = EmbeddingVector::encode(vec![1.0], true) else {
            panic!()
        };
        assert_eq!(s, "AACAPw==");
    }
}
