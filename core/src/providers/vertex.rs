//! Vertex AI: Gemini (publisher `google`) and Claude (publisher `anthropic`) under
//! `/v1/projects/{project}/locations/{location}/publishers/{publisher}/models/{model}:{method}`,
//! authenticated with an OAuth access token (`authorization: Bearer`). The publisher follows
//! from the model id: `claude-*` is Anthropic's, anything else Google's.
//!
//! Gemini speaks the same `generateContent` wire as AI Studio (see `gemini.rs`); embedding models
//! use `:predict` (`instances[].content` → `predictions[].embeddings.values`). Claude takes the
//! Anthropic Messages body (see `anthropic.rs`) on `:rawPredict` / `:streamRawPredict`, without
//! `model` (it is in the path) and with `anthropic_version: vertex-2023-10-16` in the body.
//!
//! Answers are checked by their publisher's rules (see `gemini` and `anthropic`): a Gemini
//! candidate that stops without content is a 502, an empty Claude `end_turn` is an answer.
//!
//! Tokens: Google access tokens expire after an hour, and the filter (a Wasm sandbox) can read
//! neither files nor commands. It takes the token from the environment (`api_key: {env: ...}`)
//! when Envoy starts; operators refresh it from outside and hot-restart Envoy (see
//! `examples/vertex.yaml`).

use super::anthropic::{self, MessagesOptions, MessagesStream};
use super::gemini::{self, GeminiStream};
use super::kinds::Kind;
use super::upstream::{Auth, Upstream};
use super::{
    Attempt, Credential, Provider, ProviderSetup, ResponseContext, StreamTranslator, Translated,
    UpstreamRequest,
};
use crate::api::chat::ChatRequest;
use crate::api::embeddings::EmbeddingsRequest;
use crate::api::ApiError;
use crate::config::secret::SecretSpec;
use crate::config::Problem;
use crate::usage::Usage;
use serde::{Deserialize, Serialize};

const KIND: &str = "vertex";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VertexSettings {
    /// The Google Cloud project id (a literal or `{env: NAME}`).
    project: SecretSpec,
    /// A region such as `us-central1`, or `global`.
    location: String,
    /// `anthropic_version` sent in Claude request bodies.
    #[serde(default = "default_anthropic_version")]
    anthropic_version: String,
    /// Claude output cap when neither the client nor the model's `max_tokens` gives one.
    #[serde(default = "default_max_tokens")]
    default_max_tokens: u32,
}

fn default_anthropic_version() -> String {
    "vertex-2023-10-16".into()
}

fn default_max_tokens() -> u32 {
    4096
}

pub struct Vertex {
    /// Authenticated with an OAuth access token as Bearer.
    upstream: Upstream,
    project: Credential,
    location: String,
    anthropic_version: String,
    claude: MessagesOptions,
}

/// Who publishes a model on Vertex, which decides its path and wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Publisher {
    Google,
    Anthropic,
}

fn publisher(model: &str) -> Publisher {
    if model.starts_with("claude-") {
        Publisher::Anthropic
    } else {
        Publisher::Google
    }
}

impl Publisher {
    fn name(self) -> &'static str {
        match self {
            Publisher::Google => "google",
            Publisher::Anthropic => "anthropic",
        }
    }
}

pub fn build(
    setup: &ProviderSetup,
    kind: &'static Kind,
) -> Result<Box<dyn Provider>, Vec<Problem>> {
    let settings = setup.settings::<VertexSettings>().map_err(|p| vec![p])?;
    let mut problems = Vec::new();
    let location_ok = !settings.location.is_empty()
        && settings
            .location
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if settings.default_max_tokens == 0 {
        problems.push(Problem::new(
            format!("{}.default_max_tokens", setup.path),
            "must be at least 1",
        ));
    }
    if !location_ok {
        problems.push(Problem::new(
            format!("{}.location", setup.path),
            format!(
                "`{}` is not a Vertex AI location (e.g. us-central1, europe-west4, global)",
                settings.location
            ),
        ));
    }
    let endpoint = setup.endpoint(kind, Some(&settings.location));
    let headers = setup.headers();
    match (endpoint, headers) {
        (Ok(endpoint), Ok(headers)) if problems.is_empty() => Ok(Box::new(Vertex {
            upstream: Upstream::new(endpoint, Auth::Bearer(setup.api_key()), headers, &[]),
            project: setup.credential("project", Some(&settings.project)),
            location: settings.location,
            anthropic_version: settings.anthropic_version,
            claude: MessagesOptions {
                default_max_tokens: settings.default_max_tokens,
            },
        })),
        (endpoint, headers) => {
            problems.extend(endpoint.err());
            problems.extend(headers.err().into_iter().flatten());
            Err(problems)
        }
    }
}

impl Vertex {
    fn upstream_request(
        &self,
        model: &str,
        method: &str,
        body: Vec<u8>,
    ) -> Result<UpstreamRequest, ApiError> {
        let project = self.project.get()?.unwrap_or_default();
        let path = format!(
            "/v1/projects/{project}/locations/{}/publishers/{}/models/{model}:{method}",
            self.location,
            publisher(model).name()
        );
        self.upstream.request(&path, &[], body)
    }
}

impl Provider for Vertex {
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
        match publisher(model) {
            Publisher::Google => {
                let body = gemini::generate_content_body(req, attempt)?;
                self.upstream_request(model, gemini::chat_method(req.stream), body)
            }
            Publisher::Anthropic => {
                let mut body =
                    anthropic::messages_request(req, None, attempt.settings, &self.claude)?;
                body.anthropic_version = Some(self.anthropic_version.clone());
                let body =
                    serde_json::to_vec(&body).map_err(|e| ApiError::server(e.to_string()))?;
                let method = if req.stream {
                    "streamRawPredict"
                } else {
                    "rawPredict"
                };
                self.upstream_request(model, method, body)
            }
        }
    }

    fn chat_response(&self, body: &[u8], ctx: &ResponseContext) -> Result<Translated, ApiError> {
        match publisher(ctx.upstream_model) {
            Publisher::Google => gemini::chat_completion(KIND, body, ctx),
            Publisher::Anthropic => anthropic::chat_completion(KIND, body, ctx),
        }
    }

    fn stream_translator(&self, ctx: &ResponseContext) -> Box<dyn StreamTranslator> {
        match publisher(ctx.upstream_model) {
            Publisher::Google => Box::new(GeminiStream::new(KIND, ctx)),
            Publisher::Anthropic => Box::new(MessagesStream::new(KIND, ctx)),
        }
    }

    fn embeddings_request(
        &self,
        req: &EmbeddingsRequest,
        _raw: &[u8],
        attempt: &Attempt,
    ) -> Result<UpstreamRequest, ApiError> {
        let model = attempt.upstream_model;
        if publisher(model) == Publisher::Anthropic {
            return Err(ApiError::invalid_param(
                "model",
                format!("`{model}` is a Claude model, which has no embeddings endpoint"),
            ));
        }
        let body = predict_body(req)?;
        self.upstream_request(model, "predict", body)
    }

    fn embeddings_response(
        &self,
        body: &[u8],
        ctx: &ResponseContext,
    ) -> Result<Translated, ApiError> {
        predict_response(body, ctx)
    }

    /// Vertex itself answers in Google's error shape (quota, auth, unknown model); Claude's own
    /// errors pass through in Anthropic's.
    fn provider_error(&self, status: u16, body: &[u8]) -> ApiError {
        if is_anthropic_error(body) {
            anthropic::anthropic_error(status, body)
        } else {
            gemini::google_error(status, body)
        }
    }
}

/// `{"type":"error","error":{"type":..,"message":..}}`, as opposed to Google's
/// `{"error":{"code":..,"status":..}}`.
fn is_anthropic_error(body: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(default, rename = "type")]
        kind: Option<String>,
        #[serde(default)]
        error: Option<Inner>,
    }
    #[derive(Deserialize)]
    struct Inner {
        #[serde(default, rename = "type")]
        kind: Option<String>,
    }
    serde_json::from_slice::<Probe>(body).is_ok_and(|p| {
        p.kind.as_deref() == Some("error") || p.error.is_some_and(|e| e.kind.is_some())
    })
}

/// `:predict` for embedding models: one instance per input text.
fn predict_body(req: &EmbeddingsRequest) -> Result<Vec<u8>, ApiError> {
    #[derive(Serialize)]
    struct Predict<'a> {
        instances: Vec<Instance<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        parameters: Option<Parameters>,
    }
    #[derive(Serialize)]
    struct Instance<'a> {
        content: &'a str,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Parameters {
        output_dimensionality: u32,
    }
    let body = Predict {
        instances: gemini::embedding_texts(req)?
            .into_iter()
            .map(|content| Instance { content })
            .collect(),
        parameters: req.dimensions.map(|d| Parameters {
            output_dimensionality: d,
        }),
    };
    serde_json::to_vec(&body).map_err(|e| ApiError::server(e.to_string()))
}

/// `{"predictions":[{"embeddings":{"values":[..],"statistics":{"token_count":N}}}]}` → OpenAI.
fn predict_response(body: &[u8], ctx: &ResponseContext) -> Result<Translated, ApiError> {
    #[derive(Deserialize)]
    struct Predictions {
        predictions: Vec<Prediction>,
    }
    #[derive(Deserialize)]
    struct Prediction {
        embeddings: Values,
    }
    #[derive(Deserialize)]
    struct Values {
        values: Vec<f32>,
        #[serde(default)]
        statistics: Option<Statistics>,
    }
    #[derive(Deserialize)]
    struct Statistics {
        #[serde(default)]
        token_count: f64,
    }
    let answer: Predictions = serde_json::from_slice(body).map_err(|e| {
        ApiError::upstream(format!(
            "the {KIND} provider returned an invalid answer: {e}"
        ))
        .with_code("invalid_upstream_response")
    })?;
    let mut tokens = 0u64;
    let mut vectors = Vec::with_capacity(answer.predictions.len());
    for p in answer.predictions {
        tokens += p.embeddings.statistics.map_or(0, |s| s.token_count as u64);
        vectors.push(p.embeddings.values);
    }
    let usage = Usage {
        prompt_tokens: tokens,
        ..Usage::default()
    };
    Translated::embeddings(vectors, Some(usage), ctx)
}

#[cfg(test)]
mod tests {
    use crate::providers::testing::*;
    use crate::testkit::test;
    use serde_json::{json, Value};

    const YAML: &str =
        "kind: vertex\napi_key: {env: TEST_KEY}\nproject: my-proj\nlocation: us-central1";

    struct GeminiCase {
        name: &'static str,
        yaml: &'static str,
        model: &'static str,
        stream: bool,
        host: &'static str,
        path: &'static str,
        /// The access token sent as Bearer.
        token: &'static str,
    }

    #[test]
    fn gemini_paths_hosts_and_auth() {
        let cases = [
            GeminiCase {
                name: "a region, the key from the environment",
                yaml: YAML,
                model: "gemini-2.5-flash",
                stream: false,
                host: "us-central1-aiplatform.googleapis.com",
                path: "/v1/projects/my-proj/locations/us-central1/publishers/google/models/gemini-2.5-flash:generateContent",
                token: "env-secret",
            },
            GeminiCase {
                name: "global, a stream",
                yaml: "kind: vertex\napi_key: t\nproject: p\nlocation: global",
                model: "gemini-3-pro-preview",
                stream: true,
                host: "aiplatform.googleapis.com",
                path: "/v1/projects/p/locations/global/publishers/google/models/gemini-3-pro-preview:streamGenerateContent?alt=sse",
                token: "t",
            },
            GeminiCase {
                name: "a base path",
                yaml: "kind: vertex\napi_key: t\nproject: p\nlocation: europe-west4\nbase_url: http://mock:9/vx",
                model: "gemini-2.0-flash",
                stream: false,
                host: "mock",
                path: "/vx/v1/projects/p/locations/europe-west4/publishers/google/models/gemini-2.0-flash:generateContent",
                token: "t",
            },
        ];
        for case in cases {
            let p = provider(case.yaml);
            assert_eq!(p.endpoint().host, case.host, "{}", case.name);
            let request = format!(
                r#"{{"model":"m","messages":[{{"role":"user","content":"hi"}}],"stream":{}}}"#,
                case.stream
            );
            let up = send_chat(p.as_ref(), &request, &attempt(case.model)).unwrap();
            assert_eq!(up.path, case.path, "{}", case.name);
            let bearer = format!("Bearer {}", case.token);
            assert_eq!(
                up.headers,
                owned_pairs(&[("authorization", &bearer)]),
                "{}",
                case.name
            );
            assert_eq!(
                serde_json::from_slice::<Value>(&up.body).unwrap(),
                json!({"contents":[{"role":"user","parts":[{"text":"hi"}]}]}),
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn gemini_answers_and_errors_use_the_gemini_mapping() {
        let p = provider(YAML);
        let body = br#"{"candidates":[{"content":{"parts":[{"text":"hi"}]},"finishReason":"STOP"}],
            "usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":1}}"#;
        let mut c = ctx(false);
        c.upstream_model = "gemini-2.5-flash";
        let t = p.chat_response(body, &c).unwrap();
        let v: Value = serde_json::from_slice(&t.body.unwrap()).unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], "hi");
        assert_eq!(t.usage.unwrap().total_tokens(), 4);

        let mut out = Vec::new();
        let mut s = p.chat_stream(&c);
        s.feed(b"data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"}]},\"finishReason\":\"STOP\"}]}\n\n", &mut out);
        s.finish(&mut out);
        assert!(String::from_utf8(out)
            .unwrap()
            .ends_with("data: [DONE]\n\n"));

        let e = p.error_response(
            429,
            br#"{"error":{"code":429,"message":"Resource exhausted","status":"RESOURCE_EXHAUSTED"}}"#,
        );
        assert_eq!((e.status, e.message.as_str()), (429, "Resource exhausted"));
    }

    #[test]
    fn embeddings_use_predict() {
        let p = provider(YAML);
        let (req, raw) = embeddings_request(r#"{"model":"e","input":["a","b"],"dimensions":4}"#);
        let up = p
            .embeddings_request(&req, raw.as_bytes(), &attempt("text-embedding-005"))
            .unwrap();
        assert_eq!(
            up.path,
            "/v1/projects/my-proj/locations/us-central1/publishers/google/models/text-embedding-005:predict"
        );
        assert_eq!(
            serde_json::from_slice::<Value>(&up.body).unwrap(),
            json!({"instances":[{"content":"a"},{"content":"b"}],"parameters":{"outputDimensionality":4}})
        );
        let body = br#"{"predictions":[
            {"embeddings":{"values":[0.5],"statistics":{"token_count":2,"truncated":false}}},
            {"embeddings":{"values":[1.5],"statistics":{"token_count":3.0,"truncated":false}}}]}"#;
        let t = p.embeddings_response(body, &ctx(false)).unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&t.body.unwrap()).unwrap(),
            json!({"object":"list","data":[
                {"object":"embedding","index":0,"embedding":[0.5]},
                {"object":"embedding","index":1,"embedding":[1.5]}],
                "model":"up-model","usage":{"prompt_tokens":5,"total_tokens":5}})
        );
        assert_eq!(t.usage.unwrap().prompt_tokens, 5);
        assert_eq!(
            p.embeddings_response(b"{\"predictions\":{}}", &ctx(false))
                .unwrap_err()
                .status,
            502
        );
    }

    /// A Claude request, streamed or not (which names the case).
    struct ClaudeCase {
        stream: bool,
        method: &'static str,
        /// The body's `stream` member.
        stream_field: Option<bool>,
    }

    #[test]
    fn claude_uses_raw_predict_with_the_vertex_anthropic_version() {
        let p = provider(YAML);
        let cases = [
            ClaudeCase {
                stream: false,
                method: "rawPredict",
                stream_field: None,
            },
            ClaudeCase {
                stream: true,
                method: "streamRawPredict",
                stream_field: Some(true),
            },
        ];
        for case in cases {
            let (stream, method, stream_field) = (case.stream, case.method, case.stream_field);
            let (req, raw) = chat_request(&format!(
                r#"{{"model":"m","messages":[{{"role":"system","content":"s"}},{{"role":"user","content":"hi"}}],"stream":{stream}}}"#
            ));
            let up = p
                .chat_request(&req, raw.as_bytes(), &attempt("claude-sonnet-4-5@20250929"))
                .unwrap();
            assert_eq!(
                up.path,
                format!("/v1/projects/my-proj/locations/us-central1/publishers/anthropic/models/claude-sonnet-4-5@20250929:{method}"),
                "{method}"
            );
            assert_eq!(
                up.headers,
                [("authorization".to_string(), "Bearer env-secret".to_string())]
            );
            let body: Value = serde_json::from_slice(&up.body).unwrap();
            assert_eq!(body.get("model"), None);
            assert_eq!(body["anthropic_version"], "vertex-2023-10-16");
            assert_eq!(body["max_tokens"], 4096);
            assert_eq!(
                body["messages"],
                json!([{"role":"user","content":[{"type":"text","text":"hi"}]}])
            );
            assert_eq!(
                body.get("stream").and_then(Value::as_bool),
                stream_field,
                "{method}"
            );
        }
        let p = provider(&format!(
            "{YAML}\ndefault_max_tokens: 1000\nanthropic_version: vertex-2099-01-01"
        ));
        let (req, raw) =
            chat_request(r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#);
        let up = p
            .chat_request(&req, raw.as_bytes(), &attempt("claude-opus-4-1"))
            .unwrap();
        let body: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(
            (
                body["max_tokens"].as_u64(),
                body["anthropic_version"].as_str()
            ),
            (Some(1000), Some("vertex-2099-01-01"))
        );
        let (req, raw) = embeddings_request(r#"{"model":"e","input":"x"}"#);
        let err = p
            .embeddings_request(&req, raw.as_bytes(), &attempt("claude-opus-4-1"))
            .unwrap_err();
        assert_eq!(err.param.as_deref(), Some("model"));
    }

    fn claude_ctx() -> crate::providers::ResponseContext<'static> {
        let mut c = ctx(false);
        c.upstream_model = "claude-sonnet-4-5@20250929";
        c
    }

    #[test]
    fn claude_answers_streams_and_errors_use_the_anthropic_mapping() {
        let p = provider(YAML);
        let body =
            br#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5",
            "content":[{"type":"text","text":"hi there"}],"stop_reason":"end_turn",
            "usage":{"input_tokens":3,"output_tokens":2}}"#;
        let t = p.chat_response(body, &claude_ctx()).unwrap();
        let v: Value = serde_json::from_slice(&t.body.unwrap()).unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], "hi there");
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        assert_eq!(t.usage.unwrap().total_tokens(), 5);

        let sse = concat!(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n",
            "event: ping\ndata: {\"type\":\"ping\"}\n\n",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hi \"}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"there\"}}\n\n",
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":2}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        );
        let make = || Boxed(p.chat_stream(&claude_ctx()));
        let (whole, usage) = run_stream_whole(make, sse.as_bytes());
        let text = String::from_utf8(whole.clone()).unwrap();
        assert!(text.contains("\"content\":\"hi \""), "{text}");
        assert!(text.contains("\"finish_reason\":\"stop\""), "{text}");
        assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
        assert_eq!(usage.unwrap().total_tokens(), 5);
        assert_every_split_matches(make, sse.as_bytes(), &whole);

        let cases = [
            ErrorCase {
                status: 529,
                body: r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
                expected_status: 503,
                expected_type: "upstream_error",
                expected_code: Some("overloaded_error"),
            },
            ErrorCase {
                status: 429,
                body: r#"{"error":{"code":429,"message":"Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model","status":"RESOURCE_EXHAUSTED"}}"#,
                expected_status: 429,
                expected_type: "rate_limit_error",
                expected_code: Some("resource_exhausted"),
            },
            ErrorCase {
                status: 404,
                body: r#"{"error":{"code":404,"message":"Publisher Model `claude-x` not found.","status":"NOT_FOUND"}}"#,
                expected_status: 404,
                expected_type: "invalid_request_error",
                expected_code: Some("not_found"),
            },
        ];
        for case in cases {
            let e = case.check(p.as_ref());
            assert!(!e.message.is_empty());
        }
    }

    /// A boxed translator as a sized `StreamTranslator` for the split helpers.
    struct Boxed(Box<dyn crate::providers::StreamTranslator>);

    impl crate::providers::StreamTranslator for Boxed {
        fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
            self.0.feed(chunk, out)
        }
        fn finish(&mut self, out: &mut Vec<u8>) {
            self.0.finish(out)
        }
        fn usage(&self) -> Option<crate::usage::Usage> {
            self.0.usage()
        }
        fn failed(&self) -> bool {
            self.0.failed()
        }
    }

    #[test]
    fn requests_either_publisher_refuses_are_refused_here() {
        let p = provider("kind: vertex\napi_key: t\nproject: p\nlocation: us-east5");
        struct Case {
            name: &'static str,
            model: &'static str,
            /// The request's members after `model`.
            fields: &'static str,
            /// The parameter the 400 names.
            param: &'static str,
        }
        let cases = [
            Case {
                name: "Claude: only a system message",
                model: "claude-sonnet-4-5",
                fields: r#""messages":[{"role":"system","content":"S"}]"#,
                param: "messages",
            },
            Case {
                name: "Claude: a blank stop sequence",
                model: "claude-sonnet-4-5",
                fields: r#""messages":[{"role":"user","content":"x"}],"stop":" ""#,
                param: "stop",
            },
            Case {
                name: "Gemini: only a system message",
                model: "gemini-2.5-pro",
                fields: r#""messages":[{"role":"system","content":"S"}]"#,
                param: "messages",
            },
            Case {
                name: "Gemini: six stop sequences",
                model: "gemini-2.5-pro",
                fields: r#""messages":[{"role":"user","content":"x"}],"stop":["1","2","3","4","5","6"]"#,
                param: "stop",
            },
        ];
        for case in cases {
            let json = format!(r#"{{"model":"m",{}}}"#, case.fields);
            let err = send_chat(p.as_ref(), &json, &attempt(case.model)).unwrap_err();
            assert_refused(
                &err,
                case.param,
                false,
                &format!("{}: {} {}", case.name, case.model, case.fields),
            );
        }
    }

    #[test]
    fn project_from_env_fails_requests_only_when_unset() {
        let p = provider("kind: vertex\napi_key: t\nproject: {env: TEST_KEY}\nlocation: us-east5");
        let (req, raw) =
            chat_request(r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#);
        let up = p
            .chat_request(&req, raw.as_bytes(), &attempt("gemini-2.5-pro"))
            .unwrap();
        assert!(up
            .path
            .starts_with("/v1/projects/env-secret/locations/us-east5/"));
        let p = provider("kind: vertex\napi_key: t\nproject: {env: UNSET}\nlocation: us-east5");
        let err = p
            .chat_request(&req, raw.as_bytes(), &attempt("gemini-2.5-pro"))
            .unwrap_err();
        assert!(err.message.contains("no project"), "{}", err.message);
    }

    /// A section (which names the case) and the problem it has.
    struct Problem {
        yaml: &'static str,
        expected: &'static str,
    }

    #[test]
    fn config_problems() {
        let cases = [
            Problem {
                yaml: "kind: vertex\napi_key: t\nlocation: us-central1",
                expected: "missing field `project`",
            },
            Problem {
                yaml: "kind: vertex\napi_key: t\nproject: p",
                expected: "missing field `location`",
            },
            Problem {
                yaml: "kind: vertex\nproject: p\nlocation: us-central1",
                expected: "providers.test.api_key: required",
            },
            Problem {
                yaml: "kind: vertex\napi_key: t\nproject: p\nlocation: US Central",
                expected: "providers.test.location: `US Central` is not a Vertex AI location",
            },
            Problem {
                yaml: "kind: vertex\napi_key: t\nproject: p\nlocation: global\nregion: x",
                expected: "unknown field `region`",
            },
        ];
        for case in cases {
            assert_build_error(case.yaml, case.expected);
        }
    }
}
