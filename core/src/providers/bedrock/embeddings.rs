//! Embeddings through InvokeModel: the Titan and Cohere models' own bodies and answers.

use super::wire::{CohereEmbed, CohereEmbeddings, EmbeddingsBody, InvokeEmbeddings, TitanEmbed};
use super::KIND;
use crate::api::embeddings::EmbeddingsRequest;
use crate::api::ApiError;
use crate::config::ModelSettings;
use crate::providers::params::unsupported;
use crate::providers::{invalid_answer, ResponseContext, Translated};
use crate::usage::Usage;
use serde::Deserialize;

enum EmbeddingFamily {
    Titan,
    Cohere,
}

impl EmbeddingFamily {
    /// By model id; ids may carry a cross-region prefix (`us.`) or be ARNs.
    fn of(model: &str) -> Option<EmbeddingFamily> {
        if model.contains("amazon.titan-embed") {
            Some(EmbeddingFamily::Titan)
        } else if model.contains("cohere.embed") {
            Some(EmbeddingFamily::Cohere)
        } else {
            None
        }
    }
}

pub(super) fn invoke_request<'a>(
    req: &'a EmbeddingsRequest,
    raw: &[u8],
    model: &str,
    settings: &ModelSettings,
) -> Result<EmbeddingsBody<'a>, ApiError> {
    let texts = req.input.texts().ok_or_else(|| {
        ApiError::invalid_param("input", "Bedrock embeds text; token ids are not supported")
    })?;
    let family = EmbeddingFamily::of(model).ok_or_else(|| {
        ApiError::invalid_param(
            "model",
            format!(
                "`{model}` is not a Bedrock embeddings model this gateway knows (amazon.titan-embed-*, cohere.embed-*)"
            ),
        )
    })?;
    // `dimensions` where the model takes it, else refused or dropped.
    let dimensions = |takes_them: bool| -> Result<Option<u32>, ApiError> {
        match req.dimensions {
            Some(d) if takes_them => Ok(Some(d)),
            Some(_) => {
                unsupported(
                    settings,
                    "dimensions",
                    &format!("`{model}` does not support it"),
                )?;
                Ok(None)
            }
            None => Ok(None),
        }
    };
    Ok(match family {
        EmbeddingFamily::Titan => {
            let [text] = texts.as_slice() else {
                return Err(ApiError::invalid_param(
                    "input",
                    "amazon.titan-embed models embed one text per request: send a single string, or use a cohere.embed model for batches",
                ));
            };
            EmbeddingsBody::Titan(TitanEmbed {
                input_text: text,
                dimensions: dimensions(model.contains("titan-embed-text-v2"))?,
            })
        }
        EmbeddingFamily::Cohere => EmbeddingsBody::Cohere(CohereEmbed {
            output_dimension: dimensions(model.contains("embed-v4"))?,
            texts,
            input_type: cohere_input_type(raw),
        }),
    })
}

/// Cohere needs to know what the texts are for; clients may say so with `input_type`
/// (`search_query`, `classification`...), documents being the common case.
fn cohere_input_type(raw: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(default)]
        input_type: Option<String>,
    }
    serde_json::from_slice::<Probe>(raw)
        .ok()
        .and_then(|p| p.input_type)
        .unwrap_or_else(|| "search_document".to_owned())
}

/// Titan's or Cohere's answer → OpenAI's.
pub(super) fn invoke_response(body: &[u8], ctx: &ResponseContext) -> Result<Translated, ApiError> {
    let answer: InvokeEmbeddings =
        serde_json::from_slice(body).map_err(|e| invalid_answer(KIND, &e))?;
    let (vectors, prompt_tokens) = match answer {
        InvokeEmbeddings::Titan {
            embedding,
            input_text_token_count,
        } => (vec![embedding], input_text_token_count),
        // Cohere on Bedrock reports its token count in a response header only.
        InvokeEmbeddings::Cohere { embeddings } => match embeddings {
            CohereEmbeddings::Floats(v) | CohereEmbeddings::ByType { float: v } => (v, 0),
        },
    };
    let usage = Usage {
        prompt_tokens,
        ..Usage::default()
    };
    Translated::embeddings(vectors, Some(usage), ctx)
}

#[cfg(test)]
mod tests {
    use crate::providers::bedrock::KEYS;
    use crate::providers::sigv4;
    use crate::providers::testing::*;
    use crate::testkit::test;
    use serde_json::{json, Value};

    /// An embeddings request to a model (which names the case).
    struct Case {
        model: &'static str,
        request: &'static str,
        /// The InvokeModel body.
        expected: Value,
    }

    struct Refusal {
        model: &'static str,
        request: &'static str,
        /// The parameter the 400 names.
        param: &'static str,
    }

    #[test]
    fn embeddings_requests_to_invoke_model() {
        let p = provider(KEYS);
        let cases = [
            Case {
                model: "amazon.titan-embed-text-v2:0",
                request: r#"{"model":"e","input":"hello","dimensions":256}"#,
                expected: json!({"inputText": "hello", "dimensions": 256}),
            },
            Case {
                model: "amazon.titan-embed-text-v1",
                request: r#"{"model":"e","input":["only one"]}"#,
                expected: json!({"inputText": "only one"}),
            },
            Case {
                model: "cohere.embed-english-v3",
                request: r#"{"model":"e","input":["a","b"]}"#,
                expected: json!({"texts": ["a", "b"], "input_type": "search_document"}),
            },
            Case {
                model: "us.cohere.embed-v4:0",
                request: r#"{"model":"e","input":"q","input_type":"search_query","dimensions":512}"#,
                expected: json!({"texts": ["q"], "input_type": "search_query", "output_dimension": 512}),
            },
        ];
        for case in cases {
            let model = case.model;
            let up = send_embeddings(p.as_ref(), case.request, &attempt(model)).unwrap();
            assert_eq!(
                up.path,
                format!("/model/{}/invoke", sigv4::uri_encode(model))
            );
            assert!(up.headers.iter().any(|(n, _)| n == "authorization"));
            let body: Value = serde_json::from_slice(&up.body).unwrap();
            assert_eq!(body, case.expected, "{model}");
        }
        let refused = [
            Refusal {
                model: "amazon.titan-embed-text-v2:0",
                request: r#"{"model":"e","input":["a","b"]}"#,
                param: "input",
            },
            Refusal {
                model: "amazon.titan-embed-text-v1",
                request: r#"{"model":"e","input":"a","dimensions":8}"#,
                param: "dimensions",
            },
            Refusal {
                model: "cohere.embed-english-v3",
                request: r#"{"model":"e","input":[1,2]}"#,
                param: "input",
            },
            Refusal {
                model: "meta.llama3-8b-instruct-v1:0",
                request: r#"{"model":"e","input":"a"}"#,
                param: "model",
            },
        ];
        for case in refused {
            let err = send_embeddings(p.as_ref(), case.request, &attempt(case.model)).unwrap_err();
            assert_eq!(
                (err.status, err.param.as_deref()),
                (400, Some(case.param)),
                "{} {}",
                case.model,
                case.request
            );
        }
    }

    /// A model's answer (which names the case) and what the client sees.
    struct Answer {
        answer: &'static str,
        /// The client asked for base64 vectors.
        base64: bool,
        expected: Value,
    }

    #[test]
    fn embeddings_answers_to_openai() {
        let p = provider(KEYS);
        let cases = [
            Answer {
                answer: r#"{"embedding":[0.5,-1.0],"inputTextTokenCount":3}"#,
                base64: false,
                expected: json!({"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.5,-1.0]}],
                       "model":"up-model","usage":{"prompt_tokens":3,"total_tokens":3}}),
            },
            Answer {
                answer: r#"{"id":"x","embeddings":[[1.0],[2.0]],"texts":["a","b"],"response_type":"embeddings_floats"}"#,
                base64: false,
                expected: json!({"object":"list","data":[{"object":"embedding","index":0,"embedding":[1.0]},
                                                {"object":"embedding","index":1,"embedding":[2.0]}],
                       "model":"up-model","usage":{"prompt_tokens":0,"total_tokens":0}}),
            },
            Answer {
                answer: r#"{"id":"x","embeddings":{"float":[[1.0]]},"response_type":"embeddings_by_type"}"#,
                base64: true,
                expected: json!({"object":"list","data":[{"object":"embedding","index":0,"embedding":"AACAPw=="}],
                       "model":"up-model","usage":{"prompt_tokens":0,"total_tokens":0}}),
            },
        ];
        for case in cases {
            let mut c = ctx(false);
            c.base64_embeddings = case.base64;
            let t = p.embeddings_response(case.answer.as_bytes(), &c).unwrap();
            let got: Value = serde_json::from_slice(&t.body.unwrap()).unwrap();
            assert_eq!(got, case.expected, "{}", case.answer);
        }
        let err = p
            .embeddings_response(b"{\"vectors\":[]}", &ctx(false))
            .unwrap_err();
        assert_eq!(err.status, 502);
    }
}
