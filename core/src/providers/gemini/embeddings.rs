//! Embeddings: an OpenAI request → `batchEmbedContents`, and its answer → OpenAI's.

use super::wire::{Content, Part};
use crate::api::embeddings::EmbeddingsRequest;
use crate::api::ApiError;
use crate::providers::{invalid_answer, ResponseContext, Translated};
use serde::{Deserialize, Serialize};

/// The texts to embed; Gemini takes no token arrays.
pub fn embedding_texts(req: &EmbeddingsRequest) -> Result<Vec<&str>, ApiError> {
    req.input.texts().ok_or_else(|| {
        ApiError::invalid_param(
            "input",
            "Gemini embeds text; token arrays are not supported",
        )
    })
}

/// `batchEmbedContents`: one request per input text.
pub fn batch_embed_body(req: &EmbeddingsRequest, model: &str) -> Result<Vec<u8>, ApiError> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct EmbedRequest<'a> {
        model: &'a str,
        content: Content,
        #[serde(skip_serializing_if = "Option::is_none")]
        output_dimensionality: Option<u32>,
    }
    #[derive(Serialize)]
    struct Batch<'a> {
        requests: Vec<EmbedRequest<'a>>,
    }
    let model = model.strip_prefix("models/").unwrap_or(model);
    let qualified = format!("models/{model}");
    let requests = embedding_texts(req)?
        .into_iter()
        .map(|text| EmbedRequest {
            model: &qualified,
            content: Content {
                role: None,
                parts: vec![Part {
                    text: Some(text.to_owned()),
                    ..Part::default()
                }],
            },
            output_dimensionality: req.dimensions,
        })
        .collect();
    serde_json::to_vec(&Batch { requests }).map_err(|e| ApiError::server(e.to_string()))
}

/// `{"embeddings":[{"values":[..]}]}` → OpenAI. AI Studio reports no token counts for embeddings.
pub fn batch_embed_response(
    kind: &str,
    body: &[u8],
    ctx: &ResponseContext,
) -> Result<Translated, ApiError> {
    #[derive(Deserialize)]
    struct Batch {
        embeddings: Vec<Values>,
    }
    #[derive(Deserialize)]
    struct Values {
        values: Vec<f32>,
    }
    let batch: Batch = serde_json::from_slice(body).map_err(|e| invalid_answer(kind, e))?;
    Translated::embeddings(
        batch.embeddings.into_iter().map(|e| e.values).collect(),
        None,
        ctx,
    )
}

#[cfg(test)]
mod tests {
    use crate::providers::gemini::YAML;
    use crate::providers::testing::*;
    use crate::testkit::test;
    use serde_json::{json, Value};

    #[test]
    fn embeddings() {
        let p = provider(YAML);
        let up = send_embeddings(
            p.as_ref(),
            r#"{"model":"e","input":["a","b"],"dimensions":8}"#,
            &attempt("gemini-embedding-001"),
        )
        .unwrap();
        assert_eq!(
            up.path,
            "/v1beta/models/gemini-embedding-001:batchEmbedContents"
        );
        assert_eq!(
            serde_json::from_slice::<Value>(&up.body).unwrap(),
            json!({"requests":[
                {"model":"models/gemini-embedding-001","content":{"parts":[{"text":"a"}]},"outputDimensionality":8},
                {"model":"models/gemini-embedding-001","content":{"parts":[{"text":"b"}]},"outputDimensionality":8}]})
        );
        let err = send_embeddings(p.as_ref(), r#"{"model":"e","input":[1,2]}"#, &attempt("e"))
            .unwrap_err();
        assert_eq!(err.param.as_deref(), Some("input"));

        let body = br#"{"embeddings":[{"values":[0.5,-1]},{"values":[1]}]}"#;
        let t = p.embeddings_response(body, &ctx(false)).unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&t.body.unwrap()).unwrap(),
            json!({"object":"list","data":[
                {"object":"embedding","index":0,"embedding":[0.5,-1.0]},
                {"object":"embedding","index":1,"embedding":[1.0]}],
                "model":"up-model","usage":{"prompt_tokens":0,"total_tokens":0}})
        );
        let mut b64 = ctx(false);
        b64.base64_embeddings = true;
        let t = p
            .embeddings_response(br#"{"embeddings":[{"values":[1]}]}"#, &b64)
            .unwrap();
        assert!(String::from_utf8(t.body.unwrap())
            .unwrap()
            .contains("\"embedding\":\"AACAPw==\""));
        let err = p.embeddings_response(b"{}", &ctx(false)).unwrap_err();
        assert_eq!(err.status, 502);
    }
}
