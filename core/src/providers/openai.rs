//! OpenAI, and the wire shared by every OpenAI-speaking upstream (Azure, the compatible
//! presets): the request passes through with `model` replaced, answers pass through untouched
//! while usage is read off them, and the usage chunk is hidden from clients that did not ask.
//! Signed reasoning handed back on assistant turns (`thinking_blocks`, which only Anthropic
//! and Bedrock can take, and which OpenAI refuses as an unknown message field) is left out.

use super::{
    event_too_large, invalid_answer, stream_interrupted, write_sse_data, write_sse_error, Attempt,
    Credential, Endpoint, Provider, ProviderSetup, ResponseContext, StreamTranslator, Translated,
    UpstreamRequest, SSE_DONE,
};
use crate::api::chat::ChatRequest;
use crate::api::embeddings::EmbeddingsRequest;
use crate::api::Operation;
use crate::api::{ApiError, ErrorKind};
use crate::config::secret::Secret;
use crate::config::Problem;
use crate::stream::sse::{SseEvent, SseParser};
use crate::stream::MAX_EVENT_BYTES;
use crate::usage::Usage;
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// How an OpenAI-speaking upstream authenticates.
#[derive(Debug, Clone)]
pub enum Auth {
    None,
    Bearer(Credential),
    Header(&'static str, Credential),
}

/// Maps an operation and upstream model id to the request path (after the base path).
pub type Router = fn(&OpenAiWire, Operation, &str) -> String;

/// Any upstream that speaks OpenAI's API.
pub struct OpenAiWire {
    pub kind: &'static str,
    pub endpoint: Endpoint,
    pub auth: Auth,
    pub headers: Vec<(String, Secret)>,
    /// Accepts `stream_options.include_usage`; otherwise usage arrives (or not) unasked.
    pub stream_usage_option: bool,
    pub embeddings: bool,
    pub router: Router,
    /// Query string the router appends (Azure's `api-version`).
    pub query: String,
}

/// `/chat/completions` and `/embeddings` under the base path, as OpenAI's SDKs do.
pub fn plain_router(wire: &OpenAiWire, op: Operation, _model: &str) -> String {
    wire.endpoint.path(match op {
        // Messages reach an OpenAI-speaking provider as chat requests.
        Operation::ChatCompletions | Operation::Messages | Operation::CountTokens => {
            "/chat/completions"
        }
        Operation::Embeddings => "/embeddings",
        Operation::Responses => "/responses",
    })
}

pub fn build(setup: &ProviderSetup) -> Result<Box<dyn Provider>, Vec<Problem>> {
    let endpoint = setup
        .endpoint(Some("https://api.openai.com/v1"))
        .map_err(|p| vec![p])?;
    if setup.spec.api_key.is_none() {
        return Err(vec![Problem::new(
            format!("{}.api_key", setup.path),
            "required for kind `openai` (e.g. api_key: {env: OPENAI_API_KEY})",
        )]);
    }
    setup.settings::<NoSettings>().map_err(|p| vec![p])?;
    Ok(Box::new(OpenAiWire {
        kind: "openai",
        endpoint,
        auth: Auth::Bearer(setup.api_key()),
        headers: setup.headers()?,
        stream_usage_option: true,
        embeddings: true,
        router: plain_router,
        query: String::new(),
    }))
}

/// For kinds without settings of their own: any unknown key is a config error.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoSettings {}

impl OpenAiWire {
    fn upstream_request(
        &self,
        op: Operation,
        model: &str,
        body: Vec<u8>,
    ) -> Result<UpstreamRequest, ApiError> {
        let mut headers = Vec::with_capacity(self.headers.len() + 1);
        match &self.auth {
            Auth::None => {}
            Auth::Bearer(c) => {
                if let Some(key) = c.get()? {
                    headers.push(("authorization".to_owned(), format!("Bearer {key}")));
                }
            }
            Auth::Header(name, c) => {
                if let Some(key) = c.get()? {
                    headers.push(((*name).to_owned(), key.to_owned()));
                }
            }
        }
        for (name, value) in &self.headers {
            headers.push((name.clone(), value.expose().to_owned()));
        }
        let mut path = (self.router)(self, op, model);
        path.push_str(&self.query);
        Ok(UpstreamRequest {
            path,
            headers,
            body,
        })
    }
}

impl Provider for OpenAiWire {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn chat_request(
        &self,
        req: &ChatRequest,
        raw: &[u8],
        attempt: &Attempt,
    ) -> Result<UpstreamRequest, ApiError> {
        let model = attempt.upstream_model;
        // Usage is always asked for, so every stream can be accounted.
        let force_usage = req.stream && self.stream_usage_option;
        let body = if req.messages.iter().any(|m| m.thinking_blocks.is_some()) {
            rewrite_request(&without_thinking_blocks(raw)?, model, force_usage)?
        } else {
            rewrite_request(raw, model, force_usage)?
        };
        self.upstream_request(Operation::ChatCompletions, model, body)
    }

    fn chat_response(&self, body: &[u8], _ctx: &ResponseContext) -> Result<Translated, ApiError> {
        #[derive(Deserialize)]
        struct Probe {
            #[allow(dead_code)]
            choices: Vec<IgnoredAny>,
            #[serde(default)]
            usage: Option<WireUsage>,
        }
        let probe: Probe =
            serde_json::from_slice(body).map_err(|e| invalid_answer(self.kind, &e))?;
        Ok(Translated {
            body: None,
            usage: probe.usage.map(WireUsage::normalise),
        })
    }

    fn chat_stream(&self, ctx: &ResponseContext) -> Box<dyn StreamTranslator> {
        Box::new(PassthroughStream::new(ctx.include_usage))
    }

    fn embeddings_request(
        &self,
        _req: &EmbeddingsRequest,
        raw: &[u8],
        attempt: &Attempt,
    ) -> Result<UpstreamRequest, ApiError> {
        let model = attempt.upstream_model;
        if !self.embeddings {
            return Err(ApiError::invalid_param(
                "model",
                format!("{} does not serve embeddings", self.kind),
            ));
        }
        let body = rewrite_request(raw, model, false)?;
        self.upstream_request(Operation::Embeddings, model, body)
    }

    fn embeddings_response(
        &self,
        body: &[u8],
        _ctx: &ResponseContext,
    ) -> Result<Translated, ApiError> {
        #[derive(Deserialize)]
        struct Probe {
            #[allow(dead_code)]
            data: Vec<IgnoredAny>,
            #[serde(default)]
            usage: Option<WireUsage>,
        }
        let probe: Probe =
            serde_json::from_slice(body).map_err(|e| invalid_answer(self.kind, &e))?;
        Ok(Translated {
            body: None,
            usage: probe.usage.map(WireUsage::normalise),
        })
    }

    fn error_response(&self, status: u16, body: &[u8]) -> ApiError {
        openai_error(status, body)
    }
}

/// An OpenAI-shaped error body mapped to a gateway error, keeping status, message, param, code.
pub fn openai_error(status: u16, body: &[u8]) -> ApiError {
    #[derive(Deserialize)]
    struct Envelope {
        error: Detail,
    }
    #[derive(Deserialize)]
    struct Detail {
        #[serde(default)]
        message: Option<String>,
        #[serde(default, rename = "type")]
        kind: Option<String>,
        #[serde(default)]
        param: Option<String>,
        #[serde(default)]
        code: Option<Value>,
    }
    let mut kind = ErrorKind::from_status(status);
    let Ok(env) = serde_json::from_slice::<Envelope>(body) else {
        return ApiError::new(kind, super::error_message(body)).with_status(status);
    };
    if env.error.kind.as_deref() == Some("insufficient_quota") {
        kind = ErrorKind::InsufficientQuota;
    }
    let mut err = ApiError::new(
        kind,
        env.error
            .message
            .unwrap_or_else(|| "the provider returned an error".into()),
    )
    .with_status(status);
    err.param = env.error.param;
    err.code = match env.error.code {
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    err
}

/// Usage as OpenAI-speaking providers report it.
#[derive(Debug, Default, Deserialize)]
pub struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Debug, Default, Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
struct CompletionDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

impl WireUsage {
    pub fn normalise(self) -> Usage {
        Usage {
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.completion_tokens,
            cached_tokens: self
                .prompt_tokens_details
                .and_then(|d| d.cached_tokens)
                .unwrap_or(0),
            cache_write_tokens: 0,
            reasoning_tokens: self
                .completion_tokens_details
                .and_then(|d| d.reasoning_tokens)
                .unwrap_or(0),
        }
    }
}

/// The client's body with `model` replaced (and usage asked for on streams); every other
/// byte passes through as the client sent it. One pass finds the two members (borrowing
/// their values as raw JSON, skipping the rest) and only their bytes are replaced.
pub fn rewrite_request(
    raw: &[u8],
    model: &str,
    force_stream_usage: bool,
) -> Result<Vec<u8>, ApiError> {
    #[derive(Deserialize)]
    struct Members<'a> {
        #[serde(borrow)]
        model: Option<&'a RawValue>,
        /// Kept even when `null` (a second `stream_options` member must not be added).
        #[serde(borrow, default, deserialize_with = "raw_even_if_null")]
        stream_options: Option<&'a RawValue>,
    }
    fn raw_even_if_null<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<&'de RawValue>, D::Error> {
        <&RawValue>::deserialize(d).map(Some)
    }
    let members: Members =
        serde_json::from_slice(raw).map_err(|e| ApiError::invalid(e.to_string()))?;
    let model_json = serde_json::to_string(model).map_err(|e| ApiError::server(e.to_string()))?;
    let mut edits: Vec<(std::ops::Range<usize>, String)> = Vec::with_capacity(2);
    match members.model.and_then(|m| span_in(raw, m)) {
        Some(span) => edits.push((span, model_json)),
        None => return Err(ApiError::invalid_param("model", "`model` is required.")),
    }
    if force_stream_usage {
        let mut options: Map<String, Value> = members
            .stream_options
            .and_then(|o| serde_json::from_str(o.get()).ok())
            .unwrap_or_default();
        options.insert("include_usage".into(), Value::Bool(true));
        let options =
            serde_json::to_string(&options).map_err(|e| ApiError::server(e.to_string()))?;
        match members.stream_options.and_then(|o| span_in(raw, o)) {
            Some(span) => edits.push((span, options)),
            None => {
                // A new last member, before the object's closing brace.
                let close = raw
                    .iter()
                    .rposition(|&b| b == b'}')
                    .ok_or_else(|| ApiError::invalid("the body is not a JSON object"))?;
                edits.push((close..close, format!(",\"stream_options\":{options}")));
            }
        }
    }
    edits.sort_by_key(|(span, _)| span.start);
    let mut out = Vec::with_capacity(raw.len() + 64);
    let mut at = 0;
    for (span, text) in edits {
        out.extend_from_slice(raw.get(at..span.start).unwrap_or_default());
        out.extend_from_slice(text.as_bytes());
        at = span.end;
    }
    out.extend_from_slice(raw.get(at..).unwrap_or_default());
    Ok(out)
}

/// The body without the `thinking_blocks` of its messages (the rare request that has them is
/// written anew).
fn without_thinking_blocks(raw: &[u8]) -> Result<Vec<u8>, ApiError> {
    let mut body: Map<String, Value> =
        serde_json::from_slice(raw).map_err(|e| ApiError::invalid(e.to_string()))?;
    if let Some(Value::Array(messages)) = body.get_mut("messages") {
        for message in messages.iter_mut().filter_map(Value::as_object_mut) {
            message.remove("thinking_blocks");
        }
    }
    serde_json::to_vec(&body).map_err(|e| ApiError::server(e.to_string()))
}

/// Where a value borrowed from `raw` sits in it.
fn span_in(raw: &[u8], value: &RawValue) -> Option<std::ops::Range<usize>> {
    let start = (value.get().as_ptr() as usize).checked_sub(raw.as_ptr() as usize)?;
    let end = start.checked_add(value.get().len())?;
    (end <= raw.len()).then_some(start..end)
}

/// True when a chunk's JSON carries a `"usage": {` object (not `null`). Quotes inside JSON
/// strings are escaped, so an unescaped `"usage"` can only be a key.
fn has_usage_object(data: &str) -> bool {
    let mut rest = data;
    while let Some(i) = rest.find("\"usage\"") {
        rest = rest.get(i + 7..).unwrap_or_default();
        let after = rest.trim_start();
        if let Some(value) = after.strip_prefix(':') {
            if value.trim_start().starts_with('{') {
                return true;
            }
        }
    }
    false
}

/// OpenAI SSE to OpenAI SSE: events pass through; usage is read and, when the client did not
/// ask for it, removed; a stream cut before `[DONE]` ends with an error event.
pub struct PassthroughStream {
    parser: SseParser,
    include_usage: bool,
    usage: Option<Usage>,
    done: bool,
    errored: bool,
    events: Vec<SseEvent>,
}

impl PassthroughStream {
    pub fn new(include_usage: bool) -> Self {
        PassthroughStream {
            parser: SseParser::new(MAX_EVENT_BYTES),
            include_usage,
            usage: None,
            done: false,
            errored: false,
            events: Vec::new(),
        }
    }

    fn emit(&mut self, out: &mut Vec<u8>) {
        for event in std::mem::take(&mut self.events) {
            if self.done || self.errored {
                continue;
            }
            let data = event.data.as_str();
            if data == "[DONE]" {
                self.done = true;
                out.extend_from_slice(SSE_DONE);
                continue;
            }
            if data.starts_with("{\"error\"") {
                self.errored = true;
            }
            if has_usage_object(data) {
                if let Some(rewritten) = self.take_usage(data) {
                    if let Some(json) = rewritten {
                        write_sse_data(out, json.as_bytes());
                    }
                    continue;
                }
            }
            if let Some(name) = &event.event {
                out.extend_from_slice(b"event: ");
                out.extend_from_slice(name.as_bytes());
                out.push(b'\n');
            }
            write_sse_data(out, data.as_bytes());
        }
    }

    /// Records the usage of a chunk. Returns what to send instead when the client must not
    /// see it (`Some(None)`: drop the chunk), or `None` to send the chunk unchanged.
    fn take_usage(&mut self, data: &str) -> Option<Option<String>> {
        let mut chunk: Map<String, Value> = serde_json::from_str(data).ok()?;
        let usage = chunk.get("usage").cloned()?;
        if let Ok(u) = serde_json::from_value::<WireUsage>(usage) {
            self.usage = Some(u.normalise());
        }
        if self.include_usage {
            return None;
        }
        chunk.remove("usage");
        let has_choices = chunk
            .get("choices")
            .and_then(Value::as_array)
            .is_some_and(|c| !c.is_empty());
        if !has_choices {
            return Some(None);
        }
        Some(serde_json::to_string(&chunk).ok())
    }
}

impl StreamTranslator for PassthroughStream {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        if self.done || self.errored {
            return;
        }
        let events = &mut self.events;
        if self.parser.feed(chunk, |e| events.push(e)).is_err() {
            self.errored = true;
            write_sse_error(out, &event_too_large());
            return;
        }
        self.emit(out);
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        if !(self.done || self.errored) {
            let events = &mut self.events;
            self.parser.finish(|e| events.push(e));
            self.emit(out);
        }
        if !(self.done || self.errored) {
            self.errored = true;
            write_sse_error(out, &stream_interrupted());
        }
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::testing::*;
    use crate::testkit::test;

    struct Case {
        name: &'static str,
        /// The client's body.
        request: &'static str,
        force_stream_usage: bool,
        /// What is sent, `model` replaced by `gpt-4o-2024`.
        expected: &'static str,
    }

    #[test]
    fn request_passes_through_with_model_replaced() {
        let cases = [
            Case {
                name: "model replaced, unknown fields kept",
                request: r#"{"model":"public","messages":[{"role":"user","content":"hi"}],"top_k":3}"#,
                force_stream_usage: false,
                expected: r#"{"model":"gpt-4o-2024","messages":[{"role":"user","content":"hi"}],"top_k":3}"#,
            },
            Case {
                name: "usage asked for on a stream",
                request: r#"{"model":"public","messages":[],"stream":true}"#,
                force_stream_usage: true,
                expected: r#"{"model":"gpt-4o-2024","messages":[],"stream":true,"stream_options":{"include_usage":true}}"#,
            },
            Case {
                name: "include_usage forced, other stream options kept",
                request: r#"{"model":"p","messages":[],"stream":true,"stream_options":{"include_usage":false,"x":1}}"#,
                force_stream_usage: true,
                expected: r#"{"model":"gpt-4o-2024","messages":[],"stream":true,"stream_options":{"include_usage":true,"x":1}}"#,
            },
            Case {
                name: "a null stream_options replaced in place, spacing kept",
                request: "{ \"messages\": [],\n \"stream_options\": null, \"model\" : \"p\", \"stream\": true }\n",
                force_stream_usage: true,
                expected: "{ \"messages\": [],\n \"stream_options\": {\"include_usage\":true}, \"model\" : \"gpt-4o-2024\", \"stream\": true }\n",
            },
            Case {
                name: "a model key inside a string is not a member",
                request: r#"{"messages":[{"content":"\"model\": \"x\"}"}],"model":"p"}"#,
                force_stream_usage: false,
                expected: r#"{"messages":[{"content":"\"model\": \"x\"}"}],"model":"gpt-4o-2024"}"#,
            },
            Case {
                name: "trailing white space kept",
                request: r#"{"model":"p","messages":[],"stream":true}   "#,
                force_stream_usage: true,
                expected: r#"{"model":"gpt-4o-2024","messages":[],"stream":true,"stream_options":{"include_usage":true}}   "#,
            },
        ];
        for case in cases {
            let out = rewrite_request(
                case.request.as_bytes(),
                "gpt-4o-2024",
                case.force_stream_usage,
            )
            .unwrap();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                case.expected,
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn thinking_blocks_handed_back_are_left_out() {
        let p = provider("kind: openai\napi_key: sk-1");
        let up = send_chat(
            p.as_ref(),
            r#"{"model":"m","messages":[{"role":"user","content":"x"},
                {"role":"assistant","content":"A","reasoning_content":"r",
                  "thinking_blocks":[{"type":"thinking","thinking":"r","signature":"s"}]},
                {"role":"user","content":"y"}],"top_k":3}"#,
            &attempt("gpt-4o"),
        )
        .unwrap();
        let sent: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(
            sent,
            serde_json::json!({"model":"gpt-4o","messages":[{"role":"user","content":"x"},
                {"role":"assistant","content":"A","reasoning_content":"r"},
                {"role":"user","content":"y"}],"top_k":3})
        );
    }

    #[test]
    fn upstream_request_for_openai() {
        let p = provider("kind: openai\napi_key: sk-1\nheaders: {OpenAI-Project: proj}");
        let up = send_chat(
            p.as_ref(),
            r#"{"model":"m","messages":[],"stream":true}"#,
            &attempt("gpt-4o"),
        )
        .unwrap();
        assert_eq!(up.path, "/v1/chat/completions");
        assert_eq!(
            up.headers,
            owned_pairs(&[("authorization", "Bearer sk-1"), ("openai-project", "proj")])
        );
        assert!(String::from_utf8(up.body)
            .unwrap()
            .contains("\"include_usage\":true"));
    }

    #[test]
    fn usage_is_read_from_json_answers() {
        let p = provider("kind: openai\napi_key: k");
        let body = br#"{"id":"x","choices":[{"index":0}],"usage":{"prompt_tokens":10,"completion_tokens":5,
            "prompt_tokens_details":{"cached_tokens":4},"completion_tokens_details":{"reasoning_tokens":2}}}"#;
        let t = p.chat_response(body, &ctx(false)).unwrap();
        assert_eq!(t.body, None);
        assert_eq!(
            t.usage,
            Some(Usage {
                prompt_tokens: 10,
                completion_tokens: 5,
                cached_tokens: 4,
                cache_write_tokens: 0,
                reasoning_tokens: 2
            })
        );
        let err = p.chat_response(b"{\"id\":", &ctx(false)).unwrap_err();
        assert_eq!(err.status, 502);
        let err = p.chat_response(b"{\"id\":\"x\"}", &ctx(false)).unwrap_err();
        assert_eq!(err.status, 502);
    }

    #[test]
    fn errors_keep_openai_fields() {
        let cases = [
            ErrorCase {
                status: 429,
                body: r#"{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}"#,
                expected_status: 429,
                expected_type: "rate_limit_error",
                expected_code: Some("rate_limit_exceeded"),
            },
            ErrorCase {
                status: 429,
                body: r#"{"error":{"message":"no money","type":"insufficient_quota","code":"insufficient_quota"}}"#,
                expected_status: 429,
                expected_type: "insufficient_quota",
                expected_code: Some("insufficient_quota"),
            },
            ErrorCase {
                status: 400,
                body: r#"{"error":{"message":"bad","param":"x","code":null}}"#,
                expected_status: 400,
                expected_type: "invalid_request_error",
                expected_code: None,
            },
            ErrorCase {
                status: 503,
                body: "upstream overloaded",
                expected_status: 503,
                expected_type: "upstream_error",
                expected_code: None,
            },
        ];
        let p = provider("{kind: openai, api_key: k}");
        for case in cases {
            case.check(p.as_ref());
            assert!(
                p.embeddings_response(case.body.as_bytes(), &ctx(false))
                    .is_err(),
                "{}",
                case.body
            );
        }
    }

    const STREAM: &str = "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}],\"usage\":null}\n\n\
data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\\\"usage\\\": {lo\"}}],\"usage\":null}\n\n\
data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n\
data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}\n\n\
data: [DONE]\n\n";

    #[test]
    fn stream_hides_usage_unless_asked_at_every_split() {
        for include_usage in [false, true] {
            let whole =
                run_stream_whole(|| PassthroughStream::new(include_usage), STREAM.as_bytes());
            assert_every_split_matches(
                || PassthroughStream::new(include_usage),
                STREAM.as_bytes(),
                &whole.0,
            );
            let text = String::from_utf8(whole.0).unwrap();
            assert_eq!(
                text.contains("\"prompt_tokens\":3"),
                include_usage,
                "{text}"
            );
            assert!(text.ends_with("data: [DONE]\n\n"));
            assert!(text.contains("Hel\\\"usage\\\": {lo"));
            assert_eq!(whole.1.unwrap().total_tokens(), 5);
        }
    }

    #[test]
    fn cut_stream_ends_with_an_error_event() {
        let cut = &STREAM.as_bytes()[..STREAM
            .find("data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},")
            .unwrap()];
        let (out, _) = run_stream_whole(|| PassthroughStream::new(false), cut);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.ends_with("\"code\":\"stream_interrupted\"}}\n\n"),
            "{text}"
        );
        assert!(!text.contains("[DONE]"));
    }
}
