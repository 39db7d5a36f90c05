//! Google Gemini on AI Studio (`generativelanguage.googleapis.com`): `generateContent`,
//! `streamGenerateContent?alt=sse` and `batchEmbedContents`, authenticated with `x-goog-api-key`.
//!
//! The mapping itself (request body, answer, stream, error, embeddings) is public and
//! independent of paths and auth, so Vertex AI (`vertex.rs`) serves Gemini with the same
//! functions. One file per seam: `wire` (Gemini's types), `request`, `response`, `stream`,
//! `error`, `embeddings`, and `signature` (thought signatures carried in tool call ids); this
//! file holds the AI Studio provider (settings, auth, paths).
//!
//! Choices worth knowing (also in the operator docs):
//! - **Thought signatures.** Gemini returns an opaque `thoughtSignature` on function-call parts and
//!   Gemini 3 rejects the next turn unless it comes back on the same part. OpenAI clients echo
//!   only `tool_calls`, so the signature travels inside the tool call id:
//!   `call_<unique>_sig_<signature as unpadded base64url>` (ids stay within `[A-Za-z0-9_-]`, which
//!   Anthropic and Bedrock also accept). Assistant turns are decoded back; a turn whose calls carry
//!   no signature (history from another provider) gets Google's documented
//!   `skip_thought_signature_validator` on its first call. Signatures on text parts are optional
//!   for Gemini and are not kept.
//! - **Blocked prompts** (`promptFeedback.blockReason`, no candidates) answer 200 with one empty
//!   choice and `finish_reason: content_filter`, the same as a block during a stream (which cannot
//!   change its status any more) and as an answer blocked by `SAFETY` and the like.
//! - **Malformed tool calls** (`MALFORMED_FUNCTION_CALL` and kin) are not turned into `stop`: they
//!   are a 502 (JSON) or an error event (stream), so the client or the fallback sees the failure.
//! - **Candidates without content.** A candidate must say something: answer text or a function
//!   call (thoughts alone are not an answer). Without, only its `finishReason` can explain it: a
//!   safety or recitation block (`content_filter`) or `MAX_TOKENS` (thinking can use the whole
//!   budget; `length`). A candidate that stops (`STOP`, `OTHER`, or no reason) without content
//!   is no answer: a 502 `invalid_upstream_response`, or that error event in a stream.

mod embeddings;
mod error;
mod request;
mod response;
mod signature;
mod stream;
mod wire;

pub use embeddings::embedding_texts;
pub use error::google_error;
pub use request::generate_content_body;
pub use response::chat_completion;
pub use stream::GeminiStream;

use embeddings::{batch_embed_body, batch_embed_response};

use super::kinds::Kind;
use super::upstream::{Auth, Upstream};
use super::{
    Attempt, Provider, ProviderSetup, ResponseContext, StreamTranslator, Translated,
    UpstreamRequest,
};
use crate::api::chat::ChatRequest;
use crate::api::embeddings::EmbeddingsRequest;
use crate::api::ApiError;
use crate::config::Problem;
use serde::Deserialize;

const KIND: &str = "gemini";

pub struct Gemini {
    upstream: Upstream,
    api_version: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GeminiSettings {
    /// `v1beta` (default; every current feature) or `v1`.
    #[serde(default = "default_api_version")]
    api_version: String,
}

fn default_api_version() -> String {
    "v1beta".into()
}

pub fn build(
    setup: &ProviderSetup,
    kind: &'static Kind,
) -> Result<Box<dyn Provider>, Vec<Problem>> {
    let endpoint = setup.endpoint(kind, None).map_err(|p| vec![p])?;
    let settings: GeminiSettings = setup.settings().map_err(|p| vec![p])?;
    Ok(Box::new(Gemini {
        upstream: Upstream::new(
            endpoint,
            Auth::Header("x-goog-api-key", setup.api_key()),
            setup.headers()?,
            &[],
        ),
        api_version: settings.api_version,
    }))
}

impl Gemini {
    fn upstream_request(
        &self,
        model: &str,
        method: &str,
        body: Vec<u8>,
    ) -> Result<UpstreamRequest, ApiError> {
        let model = model.strip_prefix("models/").unwrap_or(model);
        let path = format!("/{}/models/{model}:{method}", self.api_version);
        self.upstream.request(&path, &[], body)
    }
}

impl Provider for Gemini {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    fn chat_request(
        &self,
        req: &ChatRequest,
        _raw: &[u8],
        attempt: &Attempt,
    ) -> Result<UpstreamRequest, ApiError> {
        let body = generate_content_body(req, attempt)?;
        self.upstream_request(attempt.upstream_model, chat_method(req.stream), body)
    }

    fn chat_response(&self, body: &[u8], ctx: &ResponseContext) -> Result<Translated, ApiError> {
        chat_completion(KIND, body, ctx)
    }

    fn stream_translator(&self, ctx: &ResponseContext) -> Box<dyn StreamTranslator> {
        Box::new(GeminiStream::new(KIND, ctx))
    }

    fn embeddings_request(
        &self,
        req: &EmbeddingsRequest,
        _raw: &[u8],
        attempt: &Attempt,
    ) -> Result<UpstreamRequest, ApiError> {
        let model = attempt.upstream_model;
        let body = batch_embed_body(req, model)?;
        self.upstream_request(model, "batchEmbedContents", body)
    }

    fn embeddings_response(
        &self,
        body: &[u8],
        ctx: &ResponseContext,
    ) -> Result<Translated, ApiError> {
        batch_embed_response(KIND, body, ctx)
    }

    fn provider_error(&self, status: u16, body: &[u8]) -> ApiError {
        google_error(status, body)
    }
}

/// The method after `models/{model}:` for a chat request (SSE when streaming).
pub fn chat_method(stream: bool) -> &'static str {
    if stream {
        "streamGenerateContent?alt=sse"
    } else {
        "generateContent"
    }
}

/// The provider section the tests build.
#[cfg(test)]
const YAML: &str = "kind: gemini\napi_key: {env: TEST_KEY}";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::testing::*;
    use crate::testkit::test;

    struct Case {
        name: &'static str,
        yaml: &'static str,
        model: &'static str,
        stream: bool,
        path: &'static str,
    }

    #[test]
    fn paths_and_auth() {
        let cases = [
            Case {
                name: "generateContent",
                yaml: YAML,
                model: "gemini-2.5-flash",
                stream: false,
                path: "/v1beta/models/gemini-2.5-flash:generateContent",
            },
            Case {
                name: "a stream, the model id with its models/ prefix",
                yaml: YAML,
                model: "models/gemini-2.5-flash",
                stream: true,
                path: "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
            },
            Case {
                name: "api_version and a base path",
                yaml: "kind: gemini\napi_key: {env: TEST_KEY}\napi_version: v1\nbase_url: http://mock:9/google",
                model: "gemini-2.0-flash",
                stream: false,
                path: "/google/v1/models/gemini-2.0-flash:generateContent",
            },
        ];
        for case in cases {
            let p = provider(case.yaml);
            let request = format!(
                r#"{{"model":"m","messages":[{{"role":"user","content":"hi"}}],"stream":{}}}"#,
                case.stream
            );
            let up = send_chat(p.as_ref(), &request, &attempt(case.model)).unwrap();
            assert_eq!(up.path, case.path, "{}", case.name);
            assert_eq!(
                up.headers,
                owned_pairs(&[("x-goog-api-key", "env-secret")]),
                "{}",
                case.name
            );
        }
        assert_eq!(
            provider(YAML).endpoint().host,
            "generativelanguage.googleapis.com"
        );
        let missing = provider("kind: gemini\napi_key: {env: UNSET}");
        let err = send_chat(
            missing.as_ref(),
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#,
            &attempt("g"),
        )
        .unwrap_err();
        assert!(err.message.contains("no api_key"), "{}", err.message);
    }

    #[test]
    fn config_problems() {
        assert_build_error("kind: gemini", "providers.test.api_key: required");
        assert_build_error(
            "kind: gemini\napi_key: k\nproject: p",
            "unknown field `project`",
        );
    }
}
