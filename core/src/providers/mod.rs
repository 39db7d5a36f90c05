//! One file per provider family. Each maps an OpenAI request to the provider's request, and
//! the provider's answer (JSON, stream, error) back to OpenAI's shape. Adding a provider means
//! adding its file, one line in `KINDS`, and its fixture table.

pub mod anthropic;
pub mod azure;
pub mod bedrock;
pub mod cohere;
pub mod endpoint;
pub mod gemini;
pub mod openai;
pub mod openai_compatible;
pub mod params;
pub mod sigv4;
pub mod vertex;

use crate::api::chat::{AssistantMessage, ChatCompletion, ChatRequest, Choice, FinishReason};
use crate::api::embeddings::{
    Embedding, EmbeddingVector, EmbeddingsRequest, EmbeddingsResponse, EmbeddingsUsage,
};
use crate::api::{Api, ApiError, Operation};

use crate::config::secret::{Env, Secret, SecretSpec};
use crate::config::{ModelSettings, Problem, ProviderSpec};
use crate::stream::MAX_EVENT_BYTES;
use crate::usage::Usage;
pub use endpoint::Endpoint;
use serde::de::DeserializeOwned;

/// Provider kinds and how to build each from its config section.
const KINDS: &[(&str, Builder)] = &[
    ("openai", openai::build),
    ("anthropic", anthropic::build),
    ("azure", azure::build),
    ("bedrock", bedrock::build),
    ("openai_compatible", openai_compatible::build),
    ("gemini", gemini::build),
    ("vertex", vertex::build),
    ("cohere", cohere::build),
    ("groq", openai_compatible::build),
    ("together", openai_compatible::build),
    ("fireworks", openai_compatible::build),
    ("deepseek", openai_compatible::build),
    ("mistral", openai_compatible::build),
    ("openrouter", openai_compatible::build),
    ("xai", openai_compatible::build),
    ("perplexity", openai_compatible::build),
    ("ollama", openai_compatible::build),
    ("vllm", openai_compatible::build),
];

type Builder = fn(&ProviderSetup) -> Result<Box<dyn Provider>, Vec<Problem>>;

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
    /// Whether the translator has written an error event (the stream was cut, broken, or the
    /// provider sent an error).
    fn failed(&self) -> bool {
        false
    }
}

pub trait Provider {
    fn kind(&self) -> &'static str;
    fn endpoint(&self) -> &Endpoint;

    fn chat_request(
        &self,
        req: &ChatRequest,
        raw: &[u8],
        attempt: &Attempt,
    ) -> Result<UpstreamRequest, ApiError>;

    fn chat_response(&self, body: &[u8], ctx: &ResponseContext) -> Result<Translated, ApiError>;

    fn chat_stream(&self, ctx: &ResponseContext) -> Box<dyn StreamTranslator>;

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

    /// Maps a provider error answer to the OpenAI error a client sees (status kept or mapped).
    fn error_response(&self, status: u16, body: &[u8]) -> ApiError;

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
    /// The provider's base URL, or the kind's default when it has one.
    pub fn endpoint(&self, default: Option<&str>) -> Result<Endpoint, Problem> {
        let url = self.spec.base_url.as_deref().or(default).ok_or_else(|| {
            Problem::new(
                format!("{}.base_url", self.path),
                format!("required for kind `{}`", self.spec.kind),
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

/// Every environment variable a provider section reads: those it names (`{env: NAME}`) and
/// those its kind reads when the section does not name them (the renderer lists them all in
/// `host_env_keys`).
pub fn env_names(spec: &ProviderSpec) -> Vec<&str> {
    let mut names: Vec<&str> = spec
        .api_key
        .iter()
        .chain(spec.headers.values())
        .filter_map(SecretSpec::env_name)
        .collect();
    for value in spec.settings.values() {
        let env = value
            .as_mapping()
            .filter(|m| m.len() == 1)
            .and_then(|m| m.get("env"))
            .and_then(|v| v.as_str());
        names.extend(env);
    }
    if spec.kind == "bedrock" {
        names.extend(bedrock::implied_env_names(spec));
    }
    names
}

/// Builds the provider a config section describes.
pub fn build(setup: &ProviderSetup) -> Result<Box<dyn Provider>, Vec<Problem>> {
    match KINDS.iter().find(|(kind, _)| *kind == setup.spec.kind) {
        Some((_, builder)) => builder(setup),
        None => Err(vec![Problem::new(
            format!("{}.kind", setup.path),
            format!(
                "unknown provider kind `{}` (known: {})",
                setup.spec.kind,
                KINDS.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
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

/// Appends one SSE `data:` event.
pub fn write_sse_data(out: &mut Vec<u8>, json: &[u8]) {
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(json);
    out.extend_from_slice(b"\n\n");
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

    /// Feeds the whole input at once.
    pub fn run_stream_whole<T: StreamTranslator>(
        make: impl Fn() -> T,
        input: &[u8],
    ) -> (Vec<u8>, Option<Usage>) {
        let mut t = make();
        let mut out = Vec::new();
        t.feed(input, &mut out);
        t.finish(&mut out);
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
            let mut t = make();
            let mut out = Vec::new();
            t.feed(a, &mut out);
            t.feed(b, &mut out);
            t.finish(&mut out);
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(expected),
                "split at {split}"
            );
        }
        let mut t = make();
        let mut out = Vec::new();
        for byte in input {
            t.feed(std::slice::from_ref(byte), &mut out);
        }
        t.finish(&mut out);
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(expected),
            "byte by byte"
        );
    }
}
