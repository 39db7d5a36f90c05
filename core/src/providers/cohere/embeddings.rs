//! Embeddings: an OpenAI request → `/v2/embed`, and its answer → OpenAI's.

use super::wire::{count, EmbedBody, EmbedInputType, WireEmbedResponse};
use super::KIND;
use crate::api::embeddings::EmbeddingsRequest;
use crate::api::ApiError;
use crate::providers::{invalid_answer, ResponseContext, Translated};
use crate::usage::Usage;

pub(super) fn embed_body<'a>(
    req: &'a EmbeddingsRequest,
    model: &'a str,
    input_type: EmbedInputType,
) -> Result<EmbedBody<'a>, ApiError> {
    let texts = req.input.texts().ok_or_else(|| {
        ApiError::invalid_param(
            "input",
            "Cohere embeds text only; send strings, not token ids",
        )
    })?;
    Ok(EmbedBody {
        model,
        texts,
        input_type,
        embedding_types: ["float"],
        output_dimension: req.dimensions,
    })
}

/// The float vectors, with the usage Cohere reports (billed input tokens first).
pub(super) fn embed_response(body: &[u8], ctx: &ResponseContext) -> Result<Translated, ApiError> {
    let answer: WireEmbedResponse =
        serde_json::from_slice(body).map_err(|e| invalid_answer(KIND, &e))?;
    let input_tokens = answer.meta.and_then(|m| {
        m.billed_units
            .and_then(|b| b.input_tokens)
            .or(m.tokens.and_then(|t| t.input_tokens))
    });
    let usage = input_tokens.map(|n| Usage {
        prompt_tokens: count(Some(n)),
        ..Usage::default()
    });
    Translated::embeddings(answer.embeddings.float, usage, ctx)
}

#[cfg(test)]
mod tests {
    use crate::providers::cohere::YAML;
    use crate::providers::testing::*;
    use crate::testkit::test;
    use serde_json::{json, Value};

    /// The vectors a client sees, as floats or base64.
    struct Vectors {
        base64: bool,
        expected: Value,
    }

    #[test]
    fn embeddings() {
        let p = provider("kind: cohere\napi_key: k\nembed_input_type: search_query");
        let (req, raw) =
            embeddings_request(r#"{"model":"e","input":["a","b"],"dimensions":256,"user":"u"}"#);
        let up = p
            .embeddings_request(&req, raw.as_bytes(), &attempt("embed-v4.0"))
            .unwrap();
        assert_eq!(up.path, "/v2/embed");
        let body: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(
            body,
            json!({"model":"embed-v4.0","texts":["a","b"],"input_type":"search_query",
                "embedding_types":["float"],"output_dimension":256})
        );
        let (req, raw) = embeddings_request(r#"{"model":"e","input":"a"}"#);
        let up = provider(YAML)
            .embeddings_request(&req, raw.as_bytes(), &attempt("embed-v4.0"))
            .unwrap();
        let body: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(body["input_type"], "search_document");
        assert_eq!(body["texts"], json!(["a"]));

        let (req, raw) = embeddings_request(r#"{"model":"e","input":[1,2]}"#);
        let err = p
            .embeddings_request(&req, raw.as_bytes(), &attempt("embed-v4.0"))
            .unwrap_err();
        assert_eq!((err.status, err.param.as_deref()), (400, Some("input")));

        let answer = br#"{"id":"x","response_type":"embeddings_by_type","texts":["a","b"],
            "embeddings":{"float":[[1.0,0.5],[0.25,-2]]},
            "meta":{"api_version":{"version":"2"},"billed_units":{"input_tokens":4}}}"#;
        let cases = [
            Vectors {
                base64: false,
                expected: json!([[1.0, 0.5], [0.25, -2.0]]),
            },
            Vectors {
                base64: true,
                expected: json!(["AACAPwAAAD8=", "AACAPgAAAMA="]),
            },
        ];
        for case in cases {
            let (base64, vectors) = (case.base64, case.expected);
            let mut c = ctx(false);
            c.base64_embeddings = base64;
            let t = p.embeddings_response(answer, &c).unwrap();
            let got: Value = serde_json::from_slice(&t.body.unwrap()).unwrap();
            assert_eq!(
                got,
                json!({"object":"list","model":"up-model","usage":{"prompt_tokens":4,"total_tokens":4},
                    "data":[{"object":"embedding","index":0,"embedding":vectors[0]},
                        {"object":"embedding","index":1,"embedding":vectors[1]}]}),
                "base64: {base64}"
            );
            assert_eq!(t.usage.unwrap().prompt_tokens, 4);
        }
        for broken in [&b"{"[..], br#"{"embeddings":{"int8":[[1]]}}"#] {
            let err = p.embeddings_response(broken, &ctx(false)).unwrap_err();
            assert_eq!(err.status, 502);
        }
    }
}
