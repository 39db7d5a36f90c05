//! Cohere v2: `/v2/chat` (messages, tools, typed SSE events) and `/v2/embed`, with
//! `Authorization: Bearer`.
//!
//! Choices made where the two APIs do not line up:
//! - `tool_plan` (the text Cohere writes before calling tools) and `thinking` content are
//!   returned as `reasoning_content`; an assistant turn that comes back with `tool_calls` and
//!   `reasoning_content` sends it as `tool_plan` again.
//! - `tool_choice` `required`/`none` become `REQUIRED`/`NONE`; a named tool cannot be forced
//!   (400 naming `tool_choice`, or left out with `drop_unsupported_params`).
//! - Finish `ERROR` answers 502 (a stream ends with an error event), `TIMEOUT` 504,
//!   `ERROR_TOXIC` finishes with `content_filter`.
//! - An answer must have its `finish_reason` and say something: text or tool calls (a tool plan
//!   or thinking alone is not an answer). `MAX_TOKENS`, `STOP_SEQUENCE` and `ERROR_TOXIC`
//!   explain an empty one; a `COMPLETE` (or `TOOL_CALL`) answer without them is a 502
//!   `invalid_upstream_response`, or that error event in a stream.
//! - Status 402 (billing) becomes 429 `insufficient_quota` like OpenAI's, so fallbacks move on;
//!   498 (invalid token) becomes 401; 499 (cancelled, retryable per Cohere) and 503 become 503;
//!   other 5xx become 502.
//! - Usage reads `usage.tokens` (what the model processed), `billed_units` when absent.
//! - Citations are not translated; `user` and `metadata` (informational) are not sent.
//! - Cohere-only fields a client adds (`k`, `safety_mode`, `thinking`, `priority`) pass through.
//!
//! One file per seam: `wire` (Cohere's types), `request`, `response`, `stream`, `error`,
//! `embeddings`; this file holds the provider (settings, auth, paths).

mod embeddings;
mod error;
mod request;
mod response;
mod stream;
mod wire;

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
use serde::{Deserialize, Serialize};
use wire::EmbedInputType;

const KIND: &str = "cohere";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CohereSettings {
    /// What the embedded texts are for; Cohere's v3+ embedding models require it.
    #[serde(default)]
    embed_input_type: EmbedInputType,
}

pub struct Cohere {
    upstream: Upstream,
    embed_input_type: EmbedInputType,
}

pub fn build(
    setup: &ProviderSetup,
    kind: &'static Kind,
) -> Result<Box<dyn Provider>, Vec<Problem>> {
    let endpoint = setup.endpoint(kind, None).map_err(|p| vec![p])?;
    let settings: CohereSettings = setup.settings().map_err(|p| vec![p])?;
    Ok(Box::new(Cohere {
        upstream: Upstream::new(
            endpoint,
            Auth::Bearer(setup.api_key()),
            setup.headers()?,
            &[],
        ),
        embed_input_type: settings.embed_input_type,
    }))
}

impl Cohere {
    fn upstream_request<T: Serialize>(
        &self,
        api_path: &str,
        body: &T,
    ) -> Result<UpstreamRequest, ApiError> {
        let body = serde_json::to_vec(body).map_err(|e| ApiError::server(e.to_string()))?;
        self.upstream.request(api_path, &[], body)
    }
}

impl Provider for Cohere {
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
        let body = request::chat_body(req, attempt)?;
        self.upstream_request("/v2/chat", &body)
    }

    fn chat_response(&self, body: &[u8], ctx: &ResponseContext) -> Result<Translated, ApiError> {
        response::chat_completion(body, ctx)
    }

    fn stream_translator(&self, ctx: &ResponseContext) -> Box<dyn StreamTranslator> {
        Box::new(stream::CohereStream::new(ctx))
    }

    fn embeddings_request(
        &self,
        req: &EmbeddingsRequest,
        _raw: &[u8],
        attempt: &Attempt,
    ) -> Result<UpstreamRequest, ApiError> {
        let body = embeddings::embed_body(req, attempt.upstream_model, self.embed_input_type)?;
        self.upstream_request("/v2/embed", &body)
    }

    fn embeddings_response(
        &self,
        body: &[u8],
        ctx: &ResponseContext,
    ) -> Result<Translated, ApiError> {
        embeddings::embed_response(body, ctx)
    }

    fn provider_error(&self, status: u16, body: &[u8]) -> ApiError {
        error::cohere_error(status, body)
    }
}

/// The provider section most tests build.
#[cfg(test)]
const YAML: &str = "kind: cohere\napi_key: co-key";

#[cfg(test)]
mod tests {
    use crate::providers::testing::*;
    use crate::testkit::test;

    #[test]
    fn upstream_path_and_auth() {
        let p = provider("kind: cohere\napi_key: {env: TEST_KEY}\nheaders: {X-Client-Name: sb}");
        assert_eq!(p.endpoint().authority(), "api.cohere.com");
        let (req, raw) =
            chat_request(r#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#);
        let up = p
            .chat_request(&req, raw.as_bytes(), &attempt("command-a"))
            .unwrap();
        assert_eq!(up.path, "/v2/chat");
        assert_eq!(
            up.headers,
            [
                ("authorization".to_string(), "Bearer env-secret".to_string()),
                ("x-client-name".to_string(), "sb".to_string())
            ]
        );
        let p = provider("kind: cohere\napi_key: k\nbase_url: http://mock:9/mock/status=429");
        let (req, raw) = embeddings_request(r#"{"model":"e","input":"x"}"#);
        let up = p
            .embeddings_request(&req, raw.as_bytes(), &attempt("embed-v4.0"))
            .unwrap();
        assert_eq!(up.path, "/mock/status=429/v2/embed");
    }

    #[test]
    fn config_problems() {
        assert_build_error(
            "kind: cohere",
            "providers.test.api_key: required for kind `cohere`",
        );
        assert_build_error(
            "kind: cohere\napi_key: k\nembed_input_type: search",
            "providers.test.embed_input_type: unknown variant `search`",
        );
        assert_build_error(
            "kind: cohere\napi_key: k\nregion: x",
            "unknown field `region`",
        );
    }
}
