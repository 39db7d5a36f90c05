//! The providers. Each maps an OpenAI request to the provider's request, and the provider's
//! answer (JSON, stream, error) back to OpenAI's shape. A provider with a wire of its own is a
//! folder with one file per seam (`wire`, `request`, `response`, `stream`, `error`, and
//! `embeddings` where it embeds), each with its tests; the OpenAI wire (`openai.rs`, which
//! also serves the OpenAI-compatible kinds) and the kinds that reuse another's translation
//! (`azure.rs`, `vertex.rs`) are single files. `kinds.rs` describes every kind in one table.

pub mod anthropic;
pub mod azure;
pub mod bedrock;
pub mod checks;
pub mod cohere;
pub mod endpoint;
pub mod gemini;
pub mod kinds;
pub mod openai;
pub mod params;
pub mod redact;
pub mod sigv4;
pub mod upstream;
pub mod vertex;

use crate::api::chat::{
    AssistantMessage, ChatChunk, ChatCompletion, ChatRequest, Choice, FinishReason, UsageReport,
};
use crate::api::embeddings::{
    Embedding, EmbeddingVector, EmbeddingsRequest, EmbeddingsResponse, EmbeddingsUsage,
};
use crate::api::{Api, ApiError, Operation};

use crate::config::secret::{Env, Secret, SecretSpec};
use crate::config::{ModelSettings, Problem, ProviderSpec};
use crate::stream::MAX_EVENT_BYTES;
use crate::usage::Usage;
pub use endpoint::Endpoint;
pub use kinds::Kind;
pub use redact::Secrets;
use serde::de::DeserializeOwned;
pub use upstream::Upstream;

/// What the upstream role knows when it prepares one attempt.
pub struct Attempt<'a> {
    /// The provider's own model id (for Azure: the deployment name).
    pub upstream_model: &'a str,
    pub settings: &'a ModelSettings,
    /// Wall clock, for request signing.
    pub now_ms: u64,
}

/// The provider request for one attempt. The method is always POST; `headers` are set on top
/// of the client's (auth headers of the client are removed before).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamRequest {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What response translation needs to know about the request.
#[derive(Debug, Clone)]
pub struct ResponseContext<'a> {
    pub upstream_model: &'a str,
    /// The client asked for a usage chunk (`stream_options.include_usage`).
    pub include_usage: bool,
    /// Base64 embeddings were asked for (`encoding_format: base64`).
    pub base64_embeddings: bool,
    /// Unix seconds, for `created` when the provider gives none.
    pub created: u64,
    /// Unique per request, for ids when the provider gives none.
    pub request_id: &'a str,
    /// The name of the `json_schema` response format the client asked for: providers that
    /// answer it through a forced tool turn that tool's call back into `content`.
    pub json_schema: Option<&'a str>,
}

/// A translated answer. `body: None` means the provider's bytes already are the answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Translated {
    pub body: Option<Vec<u8>>,
    pub usage: Option<Usage>,
}

impl Translated {
    /// A translated chat answer and the usage it reports.
    pub fn completion(
        completion: &ChatCompletion,
        usage: Option<Usage>,
    ) -> Result<Translated, ApiError> {
        let body = serde_json::to_vec(completion).map_err(|e| ApiError::server(e.to_string()))?;
        Ok(Translated {
            body: Some(body),
            usage,
        })
    }

    /// A translated answer with one choice, the assistant's `message` (`id` and `model` as the
    /// provider named them, else made up from `ctx`).
    pub fn one_choice(
        ctx: &ResponseContext,
        id: Option<String>,
        model: Option<String>,
        message: AssistantMessage,
        finish: FinishReason,
        usage: Option<Usage>,
    ) -> Result<Translated, ApiError> {
        let completion = ChatCompletion::new(
            id.unwrap_or_else(|| format!("chatcmpl-{}", ctx.request_id)),
            ctx.created,
            model.unwrap_or_else(|| ctx.upstream_model.to_owned()),
            vec![Choice::new(0, message, finish)],
            usage,
        );
        Translated::completion(&completion, usage)
    }

    /// An OpenAI embeddings answer from vectors in input order, and the usage to record (the
    /// answer counts no prompt tokens when the provider reported none).
    pub fn embeddings(
        vectors: Vec<Vec<f32>>,
        usage: Option<Usage>,
        ctx: &ResponseContext,
    ) -> Result<Translated, ApiError> {
        let prompt_tokens = usage.map_or(0, |u| u.prompt_tokens);
        let response = EmbeddingsResponse {
            object: "list",
            data: vectors
                .into_iter()
                .zip(0..)
                .map(|(values, index)| Embedding {
                    object: "embedding",
                    index,
                    embedding: EmbeddingVector::encode(values, ctx.base64_embeddings),
                })
                .collect(),
            model: ctx.upstream_model.to_owned(),
            usage: EmbeddingsUsage {
                prompt_tokens,
                total_tokens: prompt_tokens,
            },
        };
        let body = serde_json::to_vec(&response).map_err(|e| ApiError::server(e.to_string()))?;
        Ok(Translated {
            body: Some(body),
            usage,
        })
    }
}

/// Turns a provider's response stream into OpenAI SSE, whatever way the bytes are split.
pub trait StreamTranslator {
    /// Consumes the next upstream bytes, appending what the client should see to `out`.
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>);
    /// The upstream stream ended: close the client stream (an error event if it was cut short).
    fn finish(&mut self, out: &mut Vec<u8>);
    /// Usage reported by the provider so far.
    fn usage(&self) -> Option<Usage>;
    /// Whether the client stream is complete, `out` being what was last appended to it: an
    /// OpenAI stream is when it ends with `[DONE]` (a cut or failed one ends with an error
    /// event instead).
    fn complete(&self, out: &[u8]) -> bool {
        out.ends_with(SSE_DONE)
    }
    /// True once the translator has written an error event (the provider's stream was cut,
    /// broken or too large, or the provider reported an error in it): nothing follows it.
    fn failed(&self) -> bool {
        false
    }
}

pub trait Provider {
    fn kind(&self) -> &'static str;
    /// Where and how this provider is reached.
    fn upstream(&self) -> &Upstream;

    fn endpoint(&self) -> &Endpoint {
        &self.upstream().endpoint
    }

    /// The credentials this provider sends: hidden from every error a client sees.
    fn secrets(&self) -> &Secrets {
        &self.upstream().secrets
    }

    fn chat_request(
        &self,
        req: &ChatRequest,
        raw: &[u8],
        attempt: &Attempt,
    ) -> Result<UpstreamRequest, ApiError>;

    fn chat_response(&self, body: &[u8], ctx: &ResponseContext) -> Result<Translated, ApiError>;

    /// The provider's own stream translation; clients get it through [`Provider::chat_stream`].
    fn stream_translator(&self, ctx: &ResponseContext) -> Box<dyn StreamTranslator>;

    /// The translator of a chat stream, whose error event never shows a credential.
    fn chat_stream(&self, ctx: &ResponseContext) -> Box<dyn StreamTranslator> {
        Box::new(redact::RedactedStream::new(
            self.stream_translator(ctx),
            self.secrets().clone(),
        ))
    }

    fn embeddings_request(
        &self,
        _req: &EmbeddingsRequest,
        _raw: &[u8],
        attempt: &Attempt,
    ) -> Result<UpstreamRequest, ApiError> {
        Err(ApiError::invalid_param(
            "model",
            format!(
                "model `{}` is served by a {} provider, which has no embeddings endpoint",
                attempt.upstream_model,
                self.kind()
            ),
        ))
    }

    fn embeddings_response(
        &self,
        _body: &[u8],
        _ctx: &ResponseContext,
    ) -> Result<Translated, ApiError> {
        Err(ApiError::server("embeddings are not supported"))
    }

    /// Maps a provider error answer to the OpenAI error it means (status kept or mapped);
    /// clients get it through [`Provider::error_response`].
    fn provider_error(&self, status: u16, body: &[u8]) -> ApiError;

    /// The OpenAI error a client sees for a provider error answer, credentials hidden.
    fn error_response(&self, status: u16, body: &[u8]) -> ApiError {
        self.secrets().error(self.provider_error(status, body))
    }

    /// The client API this provider speaks itself (Anthropic: Messages; OpenAI: Responses):
    /// requests in it pass through with the model replaced, answers pass through with their
    /// usage read, so nothing the provider supports is lost in translation.
    fn native_api(&self) -> Option<Api> {
        None
    }

    /// The client's body of `op` (in `native_api`) made this attempt's request.
    fn native_request(
        &self,
        op: Operation,
        _raw: &[u8],
        _attempt: &Attempt,
    ) -> Result<UpstreamRequest, ApiError> {
        Err(ApiError::server(format!(
            "a {} provider does not speak {} natively",
            self.kind(),
            op.config_name()
        )))
    }

    /// A native success answer of `op`: checked, and its usage read (`body: None` keeps it).
    fn native_response(
        &self,
        op: Operation,
        _body: &[u8],
        _ctx: &ResponseContext,
    ) -> Result<Translated, ApiError> {
        Err(ApiError::server(format!(
            "a {} provider does not speak {} natively",
            self.kind(),
            op.config_name()
        )))
    }

    /// A native stream of `op`, passed through while its usage is read and its end checked.
    fn native_stream(&self, _op: Operation, ctx: &ResponseContext) -> Box<dyn StreamTranslator> {
        self.chat_stream(ctx)
    }

    /// Whether a request must carry the time it is sent (a signature over it). Others get
    /// the time the request arrived: a clock read is a host call every attempt would pay.
    fn signs_with_time(&self) -> bool {
        false
    }
}

/// Everything a provider builder needs: its config section, the environment, and the path
/// to report problems at.
pub struct ProviderSetup<'a> {
    pub name: &'a str,
    pub spec: &'a ProviderSpec,
    pub env: &'a dyn Env,
    pub path: String,
}

impl ProviderSetup<'_> {
    /// The section's base URL, else `kind`'s default (`setting`: the section's value of the
    /// setting a templated default is filled from).
    pub fn endpoint(&self, kind: &Kind, setting: Option<&str>) -> Result<Endpoint, Problem> {
        let default = kind.base_url.default_for(setting);
        let url = self
            .spec
            .base_url
            .as_deref()
            .or(default.as_deref())
            .ok_or_else(|| {
                Problem::new(
                    format!("{}.base_url", self.path),
                    format!("required for kind `{}`", kind.name),
                )
            })?;
        Endpoint::parse(url).map_err(|m| Problem::new(format!("{}.base_url", self.path), m))
    }

    /// A secret; an unset environment variable becomes a `Credential::Missing` that fails the
    /// requests that need it (and is logged at startup), not the whole configuration.
    pub fn credential(&self, field: &str, spec: Option<&SecretSpec>) -> Credential {
        match spec {
            None => Credential::None,
            Some(spec) => match spec.resolve(self.env) {
                Ok(secret) => Credential::Present(secret),
                Err(why) => {
                    log::warn!("{}.{field}: {why}", self.path);
                    Credential::Missing(format!(
                        "provider `{}` has no {field} configured",
                        self.name
                    ))
                }
            },
        }
    }

    pub fn api_key(&self) -> Credential {
        self.credential("api_key", self.spec.api_key.as_ref())
    }

    /// Static extra headers, resolved.
    pub fn headers(&self) -> Result<Vec<(String, Secret)>, Vec<Problem>> {
        let mut out = Vec::new();
        let mut problems = Vec::new();
        for (name, spec) in &self.spec.headers {
            match spec.resolve(self.env) {
                Ok(v) => out.push((name.to_ascii_lowercase(), v)),
                Err(why) => {
                    problems.push(Problem::new(format!("{}.headers.{name}", self.path), why))
                }
            }
        }
        if problems.is_empty() {
            Ok(out)
        } else {
            Err(problems)
        }
    }

    /// Kind-specific settings, parsed into the provider's own struct (unknown keys refused).
    pub fn settings<T: DeserializeOwned>(&self) -> Result<T, Problem> {
        let value = serde_yaml::Value::Mapping(self.spec.settings.clone());
        serde_path_to_error::deserialize(value).map_err(|e| {
            let inner = e.path().to_string();
            let path = if inner == "." {
                self.path.clone()
            } else {
                format!("{}.{inner}", self.path)
            };
            Problem::new(path, e.into_inner().to_string())
        })
    }
}

/// A provider credential as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    None,
    Present(Secret),
    /// Configured from an environment variable that is not set; the message is client-safe.
    Missing(String),
}

impl Credential {
    /// The secret, `None` when not configured, or the error a request needing it gets.
    pub fn get(&self) -> Result<Option<&str>, ApiError> {
        match self {
            Credential::None => Ok(None),
            Credential::Present(s) => Ok(Some(s.expose())),
            Credential::Missing(m) => Err(ApiError::server(m.clone())),
        }
    }
}

/// An environment variable a provider section reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvVar<'a> {
    pub name: &'a str,
    /// The provider cannot serve without it (an optional one is used when set).
    pub required: bool,
}

/// Every environment variable a provider section reads, once: those it names (`{env: NAME}`,
/// each needed) and those its kind reads when the section does not name them.
pub fn env_vars(spec: &ProviderSpec) -> Vec<EnvVar<'_>> {
    let named = spec
        .api_key
        .iter()
        .chain(spec.headers.values())
        .filter_map(SecretSpec::env_name)
        .chain(spec.settings.values().filter_map(|value| {
            value
                .as_mapping()
                .filter(|m| m.len() == 1)
                .and_then(|m| m.get("env"))
                .and_then(|v| v.as_str())
        }))
        .map(|name| EnvVar {
            name,
            required: true,
        });
    let implied = kinds::find(&spec.kind)
        .map(|kind| kind.implied_env_for(spec))
        .unwrap_or_default()
        .into_iter()
        .map(|v| EnvVar {
            name: v.name,
            required: v.required,
        });
    let mut vars: Vec<EnvVar> = Vec::new();
    for var in named.chain(implied) {
        if !vars.iter().any(|v| v.name == var.name) {
            vars.push(var);
        }
    }
    vars
}

/// The names of [`env_vars`] (the renderer lists them in `host_env_keys`).
pub fn env_names(spec: &ProviderSpec) -> Vec<&str> {
    env_vars(spec).into_iter().map(|v| v.name).collect()
}

/// Builds the provider a config section describes.
pub fn build(setup: &ProviderSetup) -> Result<Box<dyn Provider>, Vec<Problem>> {
    match kinds::find(&setup.spec.kind) {
        Some(kind) => kind.build(setup),
        None => Err(vec![Problem::new(
            format!("{}.kind", setup.path),
            format!(
                "unknown provider kind `{}` (known: {})",
                setup.spec.kind,
                kinds::KINDS
                    .iter()
                    .map(|k| k.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )]),
    }
}

/// Pulls a provider's error message out of the usual `{"error":{"message":..}}` or
/// `{"message":..}` shapes; falls back to the raw text, cut short.
pub fn error_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Envelope {
        #[serde(default)]
        error: Option<serde_json::Value>,
        #[serde(default)]
        message: Option<String>,
    }
    if let Ok(env) = serde_json::from_slice::<Envelope>(body) {
        match env.error {
            Some(serde_json::Value::String(s)) => return s,
            Some(serde_json::Value::Object(o)) => {
                if let Some(m) = o.get("message").and_then(|m| m.as_str()) {
                    return m.to_owned();
                }
            }
            _ => {}
        }
        if let Some(m) = env.message {
            return m;
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        "the provider returned an error without a body".to_owned()
    } else {
        text.chars().take(500).collect()
    }
}

/// A 502 for an answer that is not what the provider's API promises; `what` says how.
pub fn invalid_answer(kind: &str, what: impl std::fmt::Display) -> ApiError {
    ApiError::upstream(format!(
        "the {kind} provider returned an invalid answer: {what}"
    ))
    .with_code("invalid_upstream_response")
}

/// A 502 for a success answer that says nothing: no text, no tool call, and no ending (a
/// content filter, the token limit) that explains why.
pub fn no_content(kind: &str) -> ApiError {
    invalid_answer(kind, "an answer without content")
}

/// How a client stream ends when the provider's ends before it is complete.
pub fn stream_interrupted() -> ApiError {
    ApiError::upstream("the provider's stream ended before it was complete")
        .with_code("stream_interrupted")
}

/// How a client stream ends when the provider sends an event over [`MAX_EVENT_BYTES`].
pub fn event_too_large() -> ApiError {
    ApiError::upstream(format!(
        "the provider sent a stream event larger than {} MiB",
        MAX_EVENT_BYTES >> 20
    ))
}

/// Appends one SSE event of `data`: a `data:` line per line of it (a passed-through event
/// may hold several, which a client joins back with `\n`).
pub fn write_sse_data(out: &mut Vec<u8>, data: &[u8]) {
    // Line ends are found word at a time: every event of every stream comes through here.
    out.reserve(data.len() + 8);
    let mut rest = data;
    loop {
        let end = memchr::memchr(b'\n', rest);
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(rest.get(..end.unwrap_or(rest.len())).unwrap_or_default());
        out.push(b'\n');
        match end.and_then(|at| rest.get(at + 1..)) {
            Some(next) => rest = next,
            None => break,
        }
    }
    out.push(b'\n');
}

/// Appends a serialisable value as one SSE `data:` event.
pub fn write_sse_json<T: serde::Serialize>(out: &mut Vec<u8>, value: &T) {
    out.extend_from_slice(b"data: ");
    if serde_json::to_writer(&mut *out, value).is_err() {
        out.extend_from_slice(b"{}");
    }
    out.extend_from_slice(b"\n\n");
}

pub const SSE_DONE: &[u8] = b"data: [DONE]\n\n";

/// Ends a client stream that completed: a usage chunk (`chunk()` without its choices) when
/// there is `usage` to report, then `[DONE]`.
pub fn write_stream_end(
    out: &mut Vec<u8>,
    usage: Option<Usage>,
    chunk: impl FnOnce() -> ChatChunk,
) {
    if let Some(usage) = usage {
        let mut chunk = chunk();
        chunk.choices.clear();
        chunk.usage = Some(UsageReport::from(&usage));
        write_sse_json(out, &chunk);
    }
    out.extend_from_slice(SSE_DONE);
}

/// Appends an OpenAI-shaped error event, which the `openai` SDKs raise as an APIError.
pub fn write_sse_error(out: &mut Vec<u8>, error: &ApiError) {
    write_sse_data(out, &error.to_json());
}

/// Fixtures shared by the providers' table tests.
#[cfg(test)]
pub mod testing {
    use super::{
        Attempt, Provider, ProviderSetup, ResponseContext, StreamTranslator, UpstreamRequest,
    };
    use crate::api::chat::ChatRequest;
    use crate::api::embeddings::EmbeddingsRequest;
    use crate::api::ApiError;
    use crate::config::Problem;
    use crate::config::{ModelSettings, ProviderSpec};
    use crate::usage::Usage;

    fn test_env(name: &str) -> Option<String> {
        match name {
            "TEST_KEY" => Some("env-secret".into()),
            _ => None,
        }
    }

    /// Builds a provider from its YAML section, named `test`.
    fn build(yaml: &str) -> Result<Box<dyn Provider>, Vec<Problem>> {
        let spec: ProviderSpec = serde_yaml::from_str(yaml).unwrap();
        super::build(&ProviderSetup {
            name: "test",
            spec: &spec,
            env: &test_env,
            path: "providers.test".into(),
        })
    }

    /// Builds a provider from its YAML section (named `test`).
    pub fn provider(yaml: &str) -> Box<dyn Provider> {
        match build(yaml) {
            Ok(p) => p,
            Err(problems) => panic!("{yaml}: {problems:?}"),
        }
    }

    /// Asserts building fails with a problem starting with `expected`.
    pub fn assert_build_error(yaml: &str, expected: &str) {
        let problems: Vec<String> = match build(yaml) {
            Ok(_) => panic!("{yaml} should not build"),
            Err(p) => p.iter().map(ToString::to_string).collect(),
        };
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{yaml}: wanted `{expected}` in {problems:?}"
        );
    }

    pub fn chat_request(json: &str) -> (ChatRequest, String) {
        (serde_json::from_str(json).unwrap(), json.to_string())
    }

    pub fn embeddings_request(json: &str) -> (EmbeddingsRequest, String) {
        (serde_json::from_str(json).unwrap(), json.to_string())
    }

    /// The provider request for a chat request given as JSON.
    pub fn send_chat(
        provider: &dyn Provider,
        json: &str,
        attempt: &Attempt,
    ) -> Result<UpstreamRequest, ApiError> {
        let (req, raw) = chat_request(json);
        provider.chat_request(&req, raw.as_bytes(), attempt)
    }

    /// The provider request for an embeddings request given as JSON.
    pub fn send_embeddings(
        provider: &dyn Provider,
        json: &str,
        attempt: &Attempt,
    ) -> Result<UpstreamRequest, ApiError> {
        let (req, raw) = embeddings_request(json);
        provider.embeddings_request(&req, raw.as_bytes(), attempt)
    }

    /// Asserts `err` is a 400 naming `param`, worded as a parameter the provider lacks
    /// (`params::unsupported`) exactly when `unsupported`; `case` names the case.
    pub fn assert_refused(err: &ApiError, param: &str, unsupported: bool, case: &str) {
        assert_eq!(
            (err.status, err.param.as_deref()),
            (400, Some(param)),
            "{case}: {}",
            err.message
        );
        let worded = err
            .message
            .starts_with(&format!("Unsupported parameter `{param}`: "));
        assert_eq!(worded, unsupported, "{case}: {}", err.message);
    }

    /// A provider's usage object (JSON) and the usage it means.
    pub struct UsageCase {
        pub name: &'static str,
        pub usage: &'static str,
        pub expected: Usage,
    }

    impl UsageCase {
        /// Asserts `normalise` reads the usage object as expected.
        pub fn check<W: serde::de::DeserializeOwned>(&self, normalise: impl Fn(W) -> Usage) {
            let usage: W = serde_json::from_str(self.usage).unwrap();
            assert_eq!(normalise(usage), self.expected, "{}", self.name);
        }
    }

    /// Header pairs as `UpstreamRequest::headers` holds them.
    pub fn owned_pairs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// A provider's error answer and the OpenAI error a client sees.
    pub struct ErrorCase {
        /// The provider's status and body (the body names the case on failure).
        pub status: u16,
        pub body: &'static str,
        pub expected_status: u16,
        /// The OpenAI error type.
        pub expected_type: &'static str,
        pub expected_code: Option<&'static str>,
    }

    impl ErrorCase {
        /// Asserts `provider` maps the answer as expected, and that the same body is no
        /// valid chat answer; returns the error for further checks.
        pub fn check(&self, provider: &dyn Provider) -> ApiError {
            let name = format!("{} {}", self.status, self.body);
            let e = provider.error_response(self.status, self.body.as_bytes());
            assert!(
                provider
                    .chat_response(self.body.as_bytes(), &ctx(false))
                    .is_err(),
                "{name}"
            );
            assert_eq!(
                (e.status, e.kind.type_name(), e.code.as_deref()),
                (self.expected_status, self.expected_type, self.expected_code),
                "{name}"
            );
            e
        }
    }

    /// An attempt on a deployment of `upstream_model` with default model settings.
    pub fn attempt(upstream_model: &str) -> Attempt<'static> {
        attempt_with(upstream_model, ModelSettings::default())
    }

    pub fn attempt_with(upstream_model: &str, settings: ModelSettings) -> Attempt<'static> {
        Attempt {
            upstream_model: Box::leak(upstream_model.to_owned().into_boxed_str()),
            settings: Box::leak(Box::new(settings)),
            now_ms: 1_700_000_000_000,
        }
    }

    pub fn ctx(include_usage: bool) -> ResponseContext<'static> {
        ResponseContext {
            upstream_model: "up-model",
            include_usage,
            base64_embeddings: false,
            created: 1_700_000_000,
            request_id: "req-1",
            json_schema: None,
        }
    }

    /// Whether the last event of a client stream is a whole error event: OpenAI's
    /// (`data: {"error":…}`) or an input API's (`data: {"type":"error",…}`, as Anthropic's
    /// native streams have them).
    pub fn ends_with_error_event(out: &[u8]) -> bool {
        let text = String::from_utf8_lossy(out);
        let Some(events) = text.strip_suffix("\n\n") else {
            return false;
        };
        let last = events.rsplit("\n\n").next().unwrap_or_default();
        last.lines().any(|line| {
            line.starts_with("data: {\"error\"") || line.starts_with("data: {\"type\":\"error\"")
        })
    }

    /// Asserts the translator says it failed exactly when its output ends with an error
    /// event, and that nothing follows an error event.
    pub fn assert_failed_matches<T: StreamTranslator>(t: &T, out: &[u8], at: &str) {
        assert_eq!(
            t.failed(),
            ends_with_error_event(out),
            "{at}: failed() disagrees with {}",
            String::from_utf8_lossy(out)
        );
    }

    /// Feeds `pieces` one after the other, then finishes, checking `failed()` at every step.
    fn run_pieces<T: StreamTranslator>(mut t: T, pieces: &[&[u8]], at: &str) -> (Vec<u8>, T) {
        let mut out = Vec::new();
        for piece in pieces {
            let before = out.len();
            let failed_before = t.failed();
            t.feed(piece, &mut out);
            assert!(
                !failed_before || out.len() == before,
                "{at}: output after the error event"
            );
            assert_failed_matches(&t, &out, at);
        }
        let before = out.len();
        let failed_before = t.failed();
        t.finish(&mut out);
        assert!(
            !failed_before || out.len() == before,
            "{at}: output after the error event"
        );
        assert_failed_matches(&t, &out, at);
        (out, t)
    }

    /// Feeds the whole input at once.
    pub fn run_stream_whole<T: StreamTranslator>(
        make: impl Fn() -> T,
        input: &[u8],
    ) -> (Vec<u8>, Option<Usage>) {
        let (out, t) = run_pieces(make(), &[input], "whole");
        (out, t.usage())
    }

    /// Splits the input at every byte boundary (two pieces), and also feeds it byte by byte;
    /// every way must give exactly `expected`.
    pub fn assert_every_split_matches<T: StreamTranslator>(
        make: impl Fn() -> T,
        input: &[u8],
        expected: &[u8],
    ) {
        for split in 0..=input.len() {
            let (a, b) = input.split_at(split);
            let at = format!("split at {split}");
            let (out, _) = run_pieces(make(), &[a, b], &at);
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(expected),
                "{at}"
            );
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        let (out, _) = run_pieces(make(), &bytes, "byte by byte");
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(expected),
            "byte by byte"
        );
    }
}
