//! Anthropic's Messages API: `POST {base}/v1/messages` with `x-api-key` and `anthropic-version`.
//!
//! The translation is kept apart from auth and paths so that other hosts of Claude (Vertex AI's
//! `rawPredict`, Bedrock's `InvokeModel`) reuse it as is:
//! - [`messages_request`]: an OpenAI chat request → the Messages body (model and body-level
//!   `anthropic_version` optional, as those hosts want them elsewhere or spelled differently);
//! - [`chat_completion`]: a Messages JSON answer → an OpenAI chat completion and its usage;
//! - [`MessagesEvents`]: Messages stream events, one JSON document at a time → OpenAI chunks
//!   (for hosts with another framing); [`MessagesStream`] adds Anthropic's SSE framing;
//! - [`anthropic_error`]: an Anthropic error answer → the OpenAI error a client expects.
//!
//! One file per seam: `wire` (the Messages API's types), `request`, `response`, `stream`,
//! `error`; this file holds the first-party provider (settings, auth, path).
//!
//! Where the two APIs differ, this is what happens:
//! - `reasoning_effort` → `thinking` with a budget of 1024 (minimal, low), 4096 (medium),
//!   16384 (high) or 32768 (xhigh) tokens; `none` leaves thinking off. Anthropic wants
//!   `max_tokens` above the budget: a smaller cap becomes budget + cap, so the visible answer
//!   keeps the room the client asked for. A native `thinking` object is passed through as is.
//! - `response_format: json_schema` → a tool named after the schema that the model is made to
//!   call; its input comes back as the message `content` (a JSON string), finish reason `stop`.
//!   With thinking on (Anthropic then refuses forced tools) the tool is offered and asked for
//!   in the system prompt instead.
//! - `response_format: json_object` → a system instruction to answer with one JSON object only.
//! - Thinking comes back as `reasoning_content` and, signed, as `thinking_blocks` (LiteLLM's
//!   convention; in streams the signature closes the block, see `api::chat::ThinkingBlock`).
//!   Clients that hand `thinking_blocks` back on assistant turns get them replayed first in
//!   their turn while thinking is on (left out otherwise); an echoed `reasoning_content` is
//!   not (it has no signature). A request that continues a tool loop whose assistant turn
//!   carries no signed thinking runs without thinking, as Anthropic would refuse it.
//! - Tool calls in the history of a request without `tools`: the tools used are declared with
//!   an open schema and `tool_choice: none`, as Anthropic refuses tool blocks without tools.
//!
//! Answers: a Message must have its `content` list and its `stop_reason` (always set on a whole
//! answer; a stream's `message_delta` gives it before `message_stop`), else it is a 502
//! (`invalid_upstream_response`). An empty `content` is an answer: Anthropic documents empty
//! `end_turn` turns (a model that deems its turn complete, often right after tool results) and
//! refusals without text; they come out as an empty `content` with `finish_reason` `stop` or
//! `content_filter`, in JSON and in streams alike.

mod error;
mod native;
mod request;
mod response;
mod stream;
mod wire;

pub use error::anthropic_error;
pub use native::NativeStream;
pub use request::{messages_request, thinking_budget, MessagesOptions};
pub use response::chat_completion;
pub use stream::{MessagesEvents, MessagesStream};
pub use wire::MessagesRequest;

use super::kinds::Kind;
use super::openai::rewrite_request;
use super::upstream::{Auth, Upstream};
use super::{
    Attempt, Provider, ProviderSetup, ResponseContext, StreamTranslator, Translated,
    UpstreamRequest,
};
use crate::api::chat::ChatRequest;
use crate::api::{Api, ApiError, Operation};
use crate::config::Problem;
use serde::Deserialize;

/// The Messages API's version; the rendered Messages routes give it to requests that name
/// none.
pub const DEFAULT_VERSION: &str = "2023-06-01";
const KIND: &str = "anthropic";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnthropicSettings {
    #[serde(default = "default_version")]
    anthropic_version: String,
    /// Beta features, sent as one comma-separated `anthropic-beta` header.
    #[serde(default)]
    beta: Vec<String>,
    /// Output cap when neither the client nor the model's `max_tokens` gives one.
    #[serde(default = "default_max_tokens")]
    default_max_tokens: u32,
}

fn default_version() -> String {
    DEFAULT_VERSION.into()
}

fn default_max_tokens() -> u32 {
    4096
}

/// The first-party Anthropic API.
pub struct Anthropic {
    upstream: Upstream,
    version: String,
    beta: Option<String>,
    options: MessagesOptions,
}

pub fn build(
    setup: &ProviderSetup,
    kind: &'static Kind,
) -> Result<Box<dyn Provider>, Vec<Problem>> {
    let mut problems = Vec::new();
    let endpoint = setup.endpoint(kind, None).map_err(|p| vec![p])?;
    let settings: AnthropicSettings = setup.settings().map_err(|p| vec![p])?;
    if settings.default_max_tokens == 0 {
        problems.push(Problem::new(
            format!("{}.default_max_tokens", setup.path),
            "must be at least 1",
        ));
    }
    let headers = match setup.headers() {
        Ok(h) => h,
        Err(mut p) => {
            problems.append(&mut p);
            Vec::new()
        }
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Box::new(Anthropic {
        upstream: Upstream::new(
            endpoint,
            Auth::Header("x-api-key", setup.api_key()),
            headers,
            &[],
        ),
        version: settings.anthropic_version,
        beta: (!settings.beta.is_empty()).then(|| settings.beta.join(",")),
        options: MessagesOptions {
            default_max_tokens: settings.default_max_tokens,
        },
    }))
}

impl Provider for Anthropic {
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
        let model = attempt.upstream_model;
        let body = messages_request(req, Some(model), attempt.settings, &self.options)?;
        let body = serde_json::to_vec(&body).map_err(|e| ApiError::server(e.to_string()))?;
        let mut own = vec![("anthropic-version", self.version.as_str())];
        own.extend(self.beta.as_deref().map(|beta| ("anthropic-beta", beta)));
        self.upstream.request("/v1/messages", &own, body)
    }

    fn chat_response(&self, body: &[u8], ctx: &ResponseContext) -> Result<Translated, ApiError> {
        chat_completion(KIND, body, ctx)
    }

    fn stream_translator(&self, ctx: &ResponseContext) -> Box<dyn StreamTranslator> {
        Box::new(MessagesStream::new(KIND, ctx))
    }

    fn provider_error(&self, status: u16, body: &[u8]) -> ApiError {
        anthropic_error(status, body)
    }

    fn native_api(&self) -> Option<Api> {
        Some(Api::AnthropicMessages)
    }

    /// The client's body with `model` replaced. Its `anthropic-version` and `anthropic-beta`
    /// headers reach Anthropic as they are (its betas go with the fields of its body), so
    /// the provider's own `anthropic_version` and `beta` are not sent; a request without a
    /// version gets `DEFAULT_VERSION` from the rendered Messages routes.
    fn native_request(
        &self,
        op: Operation,
        raw: &[u8],
        attempt: &Attempt,
    ) -> Result<UpstreamRequest, ApiError> {
        let path = native::native_path(op)?;
        let body = rewrite_request(raw, attempt.upstream_model, false)?;
        self.upstream.request(path, &[], body)
    }

    fn native_response(
        &self,
        op: Operation,
        body: &[u8],
        _ctx: &ResponseContext,
    ) -> Result<Translated, ApiError> {
        native::native_response(KIND, op, body)
    }

    fn native_stream(&self, _op: Operation, _ctx: &ResponseContext) -> Box<dyn StreamTranslator> {
        Box::new(NativeStream::new(KIND))
    }
}

/// The provider section most tests build.
#[cfg(test)]
const PROVIDER: &str = "kind: anthropic\napi_key: sk-ant";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::testing::*;
    use crate::testkit::test;
    use serde_json::Value;

    struct Case {
        name: &'static str,
        yaml: String,
        path: &'static str,
        headers: &'static [(&'static str, &'static str)],
    }

    #[test]
    fn upstream_request_path_and_headers() {
        let cases = [
            Case {
                name: "defaults",
                yaml: PROVIDER.to_owned(),
                path: "/v1/messages",
                headers: &[("x-api-key", "sk-ant"), ("anthropic-version", "2023-06-01")],
            },
            Case {
                name: "base path, key from the environment, version, betas and extra headers",
                yaml: "kind: anthropic\nbase_url: http://mock:9/mock/status=529\napi_key: {env: TEST_KEY}\n\
                       anthropic_version: 2024-01-01\nbeta: [prompt-caching-2024-07-31, output-128k-2025-02-19]\n\
                       headers: {X-Team: blue}"
                    .to_owned(),
                path: "/mock/status=529/v1/messages",
                headers: &[
                    ("x-api-key", "env-secret"),
                    ("anthropic-version", "2024-01-01"),
                    (
                        "anthropic-beta",
                        "prompt-caching-2024-07-31,output-128k-2025-02-19",
                    ),
                    ("x-team", "blue"),
                ],
            },
        ];
        for case in cases {
            let p = provider(&case.yaml);
            assert_eq!(p.kind(), "anthropic");
            let up = send_chat(
                p.as_ref(),
                r#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#,
                &attempt("claude-x"),
            )
            .unwrap();
            assert_eq!(up.path, case.path, "{}", case.name);
            assert_eq!(up.headers, owned_pairs(case.headers), "{}", case.name);
            let body: Value = serde_json::from_slice(&up.body).unwrap();
            assert_eq!(body["model"], "claude-x", "{}", case.name);
        }
        let p = provider(PROVIDER);
        assert_eq!(p.endpoint().host, "api.anthropic.com");
        assert!(p.endpoint().tls);
    }

    #[test]
    fn config_problems() {
        assert_build_error("kind: anthropic", "providers.test.api_key: required");
        assert_build_error(
            "kind: anthropic\napi_key: k\nanthropic_versoin: x",
            "unknown field `anthropic_versoin`",
        );
        assert_build_error(
            "kind: anthropic\napi_key: k\ndefault_max_tokens: 0",
            "providers.test.default_max_tokens: must be at least 1",
        );
        let p = provider("kind: anthropic\napi_key: {env: UNSET_KEY}");
        let err = send_chat(
            p.as_ref(),
            r#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#,
            &attempt("c"),
        )
        .unwrap_err();
        assert!(err.message.contains("no api_key"), "{}", err.message);
    }
}
