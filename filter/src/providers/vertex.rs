//! Vertex AI: Gemini (publisher `google`) and Claude (publisher `anthropic`) under
//! `/v1/projects/{project}/locations/{location}/publishers/{publisher}/models/{model}:{method}`,
//! authenticated with an OAuth access token (`authorization: Bearer`).
//!
//! Gemini speaks the same `generateContent` wire as AI Studio (see `gemini.rs`); embedding models
//! use `:predict` (`instances[].content` → `predictions[].embeddings.values`).
//!
//! Tokens: Google access tokens expire after an hour, and the filter (a Wasm sandbox) can read
//! neither files nor commands. It takes the token from the environment (`api_key: {env: ...}`)
//! when Envoy starts; operators refresh it from outside and hot-restart Envoy (see
//! `examples/vertex.yaml`).

use super::gemini::{self, GeminiStream};
use super::{
    Attempt, Credential, Endpoint, Provider, ProviderSetup, ResponseContext, StreamTranslator,
    Translated, UpstreamRequest,
};
use crate::api::chat::ChatRequest;
use crate::api::embeddings::EmbeddingsRequest;
use crate::api::GatewayError;
use crate::config::secret::{Secret, SecretSpec};
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
}

pub struct Vertex {
    endpoint: Endpoint,
    token: Credential,
    project: Credential,
    location: String,
    headers: Vec<(String, Secret)>,
}

/// Who publishes a model on Vertex, which decides its path and wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Publisher {
    Google,
}

fn publisher(_model: &str) -> Publisher {
    Publisher::Google
}

impl Publisher {
    fn name(self) -> &'static str {
        match self {
            Publisher::Google => "google",
        }
    }
}

/// `https://{location}-aiplatform.googleapis.com`, or the global host for `global`.
fn default_base_url(location: &str) -> String {
    if location == "global" {
        "https://aiplatform.googleapis.com".to_owned()
    } else {
        format!("https://{location}-aiplatform.googleapis.com")
    }
}

pub fn build(setup: &ProviderSetup) -> Result<Box<dyn Provider>, Vec<Problem>> {
    let mut problems = Vec::new();
    let settings = match setup.settings::<VertexSettings>() {
        Ok(s) => Some(s),
        Err(p) => {
            problems.push(p);
            None
        }
    };
    if setup.spec.api_key.is_none() {
        problems.push(Problem::new(
            format!("{}.api_key", setup.path),
            "required for kind `vertex`: an OAuth access token, e.g. api_key: {env: VERTEX_ACCESS_TOKEN}",
        ));
    }
    let Some(settings) = settings else {
        return Err(problems);
    };
    let location_ok = !settings.location.is_empty()
        && settings
            .location
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !location_ok {
        problems.push(Problem::new(
            format!("{}.location", setup.path),
            format!(
                "`{}` is not a Vertex AI location (e.g. us-central1, europe-west4, global)",
                settings.location
            ),
        ));
    }
    let endpoint = setup.endpoint(Some(&default_base_url(&settings.location)));
    let headers = setup.headers();
    match (endpoint, headers) {
        (Ok(endpoint), Ok(headers)) if problems.is_empty() => Ok(Box::new(Vertex {
            endpoint,
            token: setup.api_key(),
            project: setup.credential("project", Some(&settings.project)),
            location: settings.location,
            headers,
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
    ) -> Result<UpstreamRequest, GatewayError> {
        let project = self.project.get()?.unwrap_or_default();
        let mut headers = Vec::with_capacity(self.headers.len() + 1);
        if let Some(token) = self.token.get()? {
            headers.push(("authorization".to_owned(), format!("Bearer {token}")));
        }
        for (name, value) in &self.headers {
            headers.push((name.clone(), value.expose().to_owned()));
        }
        let path = self.endpoint.path(&format!(
            "/v1/projects/{project}/locations/{}/publishers/{}/models/{model}:{method}",
            self.location,
            publisher(model).name()
        ));
        Ok(UpstreamRequest {
            path,
            headers,
            body,
        })
    }
}

impl Provider for Vertex {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn chat_request(
        &self,
        req: &ChatRequest,
        _raw: &[u8],
        attempt: &Attempt,
    ) -> Result<UpstreamRequest, GatewayError> {
        let model = attempt.deployment.upstream_model.as_str();
        match publisher(model) {
            Publisher::Google => {
                let body = gemini::generate_content_body(req, attempt)?;
                self.upstream_request(model, gemini::chat_method(req.stream), body)
            }
        }
    }

    fn chat_response(
        &self,
        body: &[u8],
        ctx: &ResponseContext,
    ) -> Result<Translated, GatewayError> {
        match publisher(ctx.upstream_model) {
            Publisher::Google => gemini::chat_completion(KIND, body, ctx),
        }
    }

    fn chat_stream(&self, ctx: &ResponseContext) -> Box<dyn StreamTranslator> {
        match publisher(ctx.upstream_model) {
            Publisher::Google => Box::new(GeminiStream::new(KIND, ctx)),
        }
    }

    fn embeddings_request(
        &self,
        req: &EmbeddingsRequest,
        _raw: &[u8],
        attempt: &Attempt,
    ) -> Result<UpstreamRequest, GatewayError> {
        let model = attempt.deployment.upstream_model.as_str();
        let body = predict_body(req)?;
        self.upstream_request(model, "predict", body)
    }

    fn embeddings_response(
        &self,
        body: &[u8],
        ctx: &ResponseContext,
    ) -> Result<Translated, GatewayError> {
        predict_response(body, ctx)
    }

    fn error_response(&self, status: u16, body: &[u8]) -> GatewayError {
        gemini::google_error(status, body)
    }
}

/// `:predict` for embedding models: one instance per input text.
fn predict_body(req: &EmbeddingsRequest) -> Result<Vec<u8>, GatewayError> {
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
    serde_json::to_vec(&body).map_err(|e| GatewayError::server(e.to_string()))
}

/// `{"predictions":[{"embeddings":{"values":[..],"statistics":{"token_count":N}}}]}` → OpenAI.
fn predict_response(body: &[u8], ctx: &ResponseContext) -> Result<Translated, GatewayError> {
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
        GatewayError::upstream(format!(
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
    gemini::embeddings_answer(vectors, Some(usage), ctx)
}

#[cfg(test)]
mod tests {
    use crate::providers::testing::*;
    use serde_json::{json, Value};

    const YAML: &str =
        "kind: vertex\napi_key: {env: TEST_KEY}\nproject: my-proj\nlocation: us-central1";

    #[test]
    fn gemini_paths_hosts_and_auth() {
        let cases = [
            (
                YAML,
                "gemini-2.5-flash",
                false,
                "us-central1-aiplatform.googleapis.com",
                "/v1/projects/my-proj/locations/us-central1/publishers/google/models/gemini-2.5-flash:generateContent",
            ),
            (
                "kind: vertex\napi_key: t\nproject: p\nlocation: global",
                "gemini-3-pro-preview",
                true,
                "aiplatform.googleapis.com",
                "/v1/projects/p/locations/global/publishers/google/models/gemini-3-pro-preview:streamGenerateContent?alt=sse",
            ),
            (
                "kind: vertex\napi_key: t\nproject: p\nlocation: europe-west4\nbase_url: http://mock:9/vx",
                "gemini-2.0-flash",
                false,
                "mock",
                "/vx/v1/projects/p/locations/europe-west4/publishers/google/models/gemini-2.0-flash:generateContent",
            ),
        ];
        for (yaml, model, stream, host, path) in cases {
            let p = provider(yaml);
            assert_eq!(p.endpoint().host, host);
            let (req, raw) = chat_request(&format!(
                r#"{{"model":"m","messages":[{{"role":"user","content":"hi"}}],"stream":{stream}}}"#
            ));
            let up = p
                .chat_request(&req, raw.as_bytes(), &attempt(model))
                .unwrap();
            assert_eq!(up.path, path);
            let token = if yaml == YAML { "env-secret" } else { "t" };
            assert_eq!(
                up.headers,
                [("authorization".to_string(), format!("Bearer {token}"))]
            );
            assert_eq!(
                serde_json::from_slice::<Value>(&up.body).unwrap(),
                json!({"contents":[{"role":"user","parts":[{"text":"hi"}]}]})
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

    #[test]
    fn project_from_env_fails_requests_only_when_unset() {
        let p = provider("kind: vertex\napi_key: t\nproject: {env: TEST_KEY}\nlocation: us-east5");
        let (req, raw) = chat_request(r#"{"model":"m","messages":[]}"#);
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

    #[test]
    fn config_problems() {
        let cases = [
            (
                "kind: vertex\napi_key: t\nlocation: us-central1",
                "missing field `project`",
            ),
            (
                "kind: vertex\napi_key: t\nproject: p",
                "missing field `location`",
            ),
            (
                "kind: vertex\nproject: p\nlocation: us-central1",
                "providers.test.api_key: required",
            ),
            (
                "kind: vertex\napi_key: t\nproject: p\nlocation: US Central",
                "providers.test.location: `US Central` is not a Vertex AI location",
            ),
            (
                "kind: vertex\napi_key: t\nproject: p\nlocation: global\nregion: x",
                "unknown field `region`",
            ),
        ];
        for (yaml, expected) in cases {
            assert_build_error(yaml, expected);
        }
    }
}
