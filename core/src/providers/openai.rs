//! OpenAI, and the wire shared by every OpenAI-speaking upstream (Azure, the vendors' presets,
//! local servers, `openai_compatible`): the request passes through with `model` replaced,
//! answers pass through untouched while usage is read off them, and the usage chunk is hidden
//! from clients that did not ask. Signed reasoning handed back on assistant turns
//! (`thinking_blocks`, which only Anthropic and Bedrock can take, and which OpenAI refuses as
//! an unknown message field) is left out.
//!
//! What passes is checked first, by what OpenAI's API reference requires: a JSON answer holds
//! at least one choice and each choice its `message` (whose `content` may be `null` or empty:
//! tool calls, a refusal, or an answer that is empty by the model's choice); embeddings hold
//! their vectors. Each stream event is parsed once, whole: one that is not a chunk (broken
//! JSON, another shape) or that is the provider's error ends the client stream with an error
//! event, and so does `[DONE]` when no choice has finished (a `finish_reason`). Anything else
//! is a 502 (`invalid_upstream_response`).
//!
//! OpenAI itself also speaks the Responses API natively (`responses`).

mod responses;

use super::kinds::Kind;
use super::upstream::{Auth, Upstream};
use super::{
    event_too_large, invalid_answer, no_content, stream_interrupted, write_sse_data,
    write_sse_error, Attempt, Provider, ProviderSetup, ResponseContext, StreamTranslator,
    Translated, UpstreamRequest, SSE_DONE,
};
use crate::api::chat::ChatRequest;
use crate::api::embeddings::EmbeddingsRequest;
use crate::api::{Api, ApiError, ErrorKind, Operation};
use crate::config::Problem;
use crate::stream::sse::{SseEvent, SseParser};
use crate::stream::MAX_EVENT_BYTES;
use crate::usage::Usage;
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Maps an operation and upstream model id to the API path (under the base path).
pub type Router = fn(Operation, &str) -> String;

/// Any upstream that speaks OpenAI's API.
pub struct OpenAiWire {
    pub kind: &'static str,
    pub upstream: Upstream,
    pub preset: Preset,
    pub router: Router,
    /// Query string the router appends (Azure's `api-version`).
    pub query: String,
}

/// What an upstream supports of OpenAI's API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    /// Accepts `stream_options.include_usage` (else usage arrives, or not, unasked).
    pub stream_usage_option: bool,
    pub embeddings: bool,
}

impl Preset {
    /// Chat completions only.
    pub const CHAT: Preset = Preset {
        stream_usage_option: true,
        embeddings: false,
    };
    pub const CHAT_AND_EMBEDDINGS: Preset = Preset {
        stream_usage_option: true,
        embeddings: true,
    };
}

/// An operation's path as OpenAI names it (under `/v1`, or a host's own prefix).
pub fn api_path(op: Operation) -> &'static str {
    match op {
        // Messages reach an OpenAI-speaking provider as chat requests.
        Operation::ChatCompletions | Operation::Messages | Operation::CountTokens => {
            "/chat/completions"
        }
        Operation::Embeddings => "/embeddings",
        Operation::Responses => "/responses",
    }
}

/// OpenAI's paths right under the base path, as OpenAI's SDKs call them.
fn plain_router(op: Operation, _model: &str) -> String {
    api_path(op).to_owned()
}

/// OpenAI, and every kind that speaks its API at an address of its own as `preset` says
/// (the vendors, local servers, `openai_compatible`): a Bearer key when one is configured.
pub fn build(
    setup: &ProviderSetup,
    kind: &'static Kind,
    preset: &Preset,
) -> Result<Box<dyn Provider>, Vec<Problem>> {
    let endpoint = setup.endpoint(kind, None).map_err(|p| vec![p])?;
    setup.settings::<NoSettings>().map_err(|p| vec![p])?;
    let auth = if setup.spec.api_key.is_some() {
        Auth::Bearer(setup.api_key())
    } else {
        Auth::None
    };
    Ok(Box::new(OpenAiWire {
        kind: kind.name,
        upstream: Upstream::new(endpoint, auth, setup.headers()?, &[]),
        preset: *preset,
        router: plain_router,
        query: String::new(),
    }))
}

/// For kinds without settings of their own: any unknown key is a config error.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoSettings {}

impl OpenAiWire {
    /// An answer that passes through as it is, its usage read off it. It must hold what its
    /// operation answers with: at least one choice, each with its `message` (whose content
    /// may be empty or null, as OpenAI's API allows); embeddings, each with its vector.
    fn passthrough(&self, op: Operation, body: &[u8]) -> Result<Translated, ApiError> {
        /// A choice and an embedding, read for the member each must have.
        #[derive(Deserialize)]
        struct Choice {
            message: Option<Members>,
        }
        #[derive(Deserialize)]
        struct Embedding {
            embedding: Option<IgnoredAny>,
        }
        /// Any JSON object, its members skipped.
        #[derive(Deserialize)]
        struct Members {}
        #[derive(Deserialize)]
        struct Chat {
            #[serde(default)]
            choices: Option<Vec<Choice>>,
            #[serde(default)]
            usage: Option<WireUsage>,
        }
        #[derive(Deserialize)]
        struct Embeddings {
            #[serde(default)]
            data: Option<Vec<Embedding>>,
            #[serde(default)]
            usage: Option<WireUsage>,
        }
        let invalid = |e: serde_json::Error| invalid_answer(self.kind, e);
        // JSON is UTF-8, and serde skips what it does not read without checking it.
        let body = std::str::from_utf8(body).map_err(|e| invalid_answer(self.kind, e))?;
        let usage = match op {
            // Every conversation is answered as a chat completion on this wire.
            Operation::ChatCompletions
            | Operation::Messages
            | Operation::CountTokens
            | Operation::Responses => {
                let answer: Chat = serde_json::from_str(body).map_err(invalid)?;
                match answer.choices.as_deref() {
                    None => return Err(invalid_answer(self.kind, "no `choices`")),
                    Some([]) => return Err(no_content(self.kind)),
                    Some(choices) if choices.iter().any(|c| c.message.is_none()) => {
                        return Err(invalid_answer(self.kind, "a choice without its `message`"))
                    }
                    Some(_) => {}
                }
                answer.usage
            }
            Operation::Embeddings => {
                let answer: Embeddings = serde_json::from_str(body).map_err(invalid)?;
                match answer.data.as_deref() {
                    None => return Err(invalid_answer(self.kind, "no `data`")),
                    Some(data) if data.iter().any(|e| e.embedding.is_none()) => {
                        return Err(invalid_answer(self.kind, "an embedding without its vector"))
                    }
                    Some(_) => {}
                }
                answer.usage
            }
        };
        Ok(Translated {
            body: None,
            usage: usage.map(WireUsage::normalise),
        })
    }

    fn upstream_request(
        &self,
        op: Operation,
        model: &str,
        body: Vec<u8>,
    ) -> Result<UpstreamRequest, ApiError> {
        let mut path = (self.router)(op, model);
        path.push_str(&self.query);
        self.upstream.request(&path, &[], body)
    }
}

impl Provider for OpenAiWire {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    fn chat_request(
        &self,
        req: &ChatRequest,
        raw: &[u8],
        attempt: &Attempt,
    ) -> Result<UpstreamRequest, ApiError> {
        let model = attempt.upstream_model;
        // Usage is always asked for, so every stream can be accounted.
        let force_usage = req.stream && self.preset.stream_usage_option;
        let body = if req.messages.iter().any(|m| m.thinking_blocks.is_some()) {
            rewrite_request(&without_thinking_blocks(raw)?, model, force_usage)?
        } else {
            rewrite_request(raw, model, force_usage)?
        };
        self.upstream_request(Operation::ChatCompletions, model, body)
    }

    fn chat_response(&self, body: &[u8], _ctx: &ResponseContext) -> Result<Translated, ApiError> {
        self.passthrough(Operation::ChatCompletions, body)
    }

    fn stream_translator(&self, ctx: &ResponseContext) -> Box<dyn StreamTranslator> {
        Box::new(PassthroughStream::new(self.kind, ctx.include_usage))
    }

    fn embeddings_request(
        &self,
        _req: &EmbeddingsRequest,
        raw: &[u8],
        attempt: &Attempt,
    ) -> Result<UpstreamRequest, ApiError> {
        let model = attempt.upstream_model;
        if !self.preset.embeddings {
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
        self.passthrough(Operation::Embeddings, body)
    }

    fn provider_error(&self, status: u16, body: &[u8]) -> ApiError {
        openai_error(status, body)
    }

    /// OpenAI speaks Responses; the other upstreams of this wire are given chat requests.
    fn native_api(&self) -> Option<Api> {
        (self.kind == "openai").then_some(Api::OpenAiResponses)
    }

    fn native_request(
        &self,
        op: Operation,
        raw: &[u8],
        attempt: &Attempt,
    ) -> Result<UpstreamRequest, ApiError> {
        if self.native_api() != Some(op.api()) {
            return Err(ApiError::server(format!(
                "a {} provider does not speak {} natively",
                self.kind,
                op.config_name()
            )));
        }
        let model = attempt.upstream_model;
        let body = responses::native_body(raw, model)?;
        self.upstream_request(Operation::Responses, model, body)
    }

    fn native_response(
        &self,
        _op: Operation,
        body: &[u8],
        _ctx: &ResponseContext,
    ) -> Result<Translated, ApiError> {
        responses::native_answer(self.kind, body)
    }

    fn native_stream(&self, _op: Operation, _ctx: &ResponseContext) -> Box<dyn StreamTranslator> {
        Box::new(responses::ResponsesStream::new())
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

/// What the pass-through reads of a chunk. Each event is parsed once, whole (so broken JSON
/// is caught), keeping only what it needs: whether a choice finished, the usage, an error.
#[derive(Deserialize)]
struct ChunkProbe {
    #[serde(default)]
    choices: Option<AnyFinished>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<IgnoredAny>,
}

/// Whether any choice of a chunk has a `finish_reason`, read without keeping the choices.
struct AnyFinished(bool);

impl<'de> Deserialize<'de> for AnyFinished {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Choice {
            #[serde(default)]
            finish_reason: Option<IgnoredAny>,
        }
        struct Choices;
        impl<'de> serde::de::Visitor<'de> for Choices {
            type Value = AnyFinished;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of choices")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<AnyFinished, A::Error> {
                let mut finished = false;
                while let Some(choice) = seq.next_element::<Choice>()? {
                    finished |= choice.finish_reason.is_some();
                }
                Ok(AnyFinished(finished))
            }
        }
        d.deserialize_seq(Choices)
    }
}

/// An error event of an OpenAI-speaking provider, in the gateway's error shape: the `type`
/// kept when it is one OpenAI's clients know, else an upstream error.
fn stream_error(data: &str) -> ApiError {
    let error = openai_error(502, data.as_bytes());
    #[derive(Deserialize)]
    struct Envelope {
        error: Typed,
    }
    #[derive(Deserialize)]
    struct Typed {
        #[serde(rename = "type")]
        kind: String,
    }
    let kind = serde_json::from_str::<Envelope>(data)
        .ok()
        .and_then(|e| ErrorKind::from_type_name(&e.error.kind));
    match kind {
        Some(kind) => ApiError {
            kind,
            status: kind.default_status(),
            ..error
        },
        None => error,
    }
}

/// OpenAI SSE to OpenAI SSE: events pass through once each is known to be a whole chunk;
/// usage is read and, when the client did not ask for it, removed. The stream ends with an
/// error event instead of going on when an event is not a chunk (broken JSON, another shape)
/// or is the provider's error, and instead of `[DONE]` when no choice finished or the stream
/// is cut before it.
pub struct PassthroughStream {
    kind: &'static str,
    parser: SseParser,
    include_usage: bool,
    usage: Option<Usage>,
    /// A choice has finished (a stream without any did not answer).
    finished: bool,
    done: bool,
    errored: bool,
    events: Vec<SseEvent>,
}

impl PassthroughStream {
    pub fn new(kind: &'static str, include_usage: bool) -> Self {
        PassthroughStream {
            kind,
            parser: SseParser::new(MAX_EVENT_BYTES),
            include_usage,
            usage: None,
            finished: false,
            done: false,
            errored: false,
            events: Vec::new(),
        }
    }

    fn fail(&mut self, out: &mut Vec<u8>, error: &ApiError) {
        self.errored = true;
        write_sse_error(out, error);
    }

    fn emit(&mut self, out: &mut Vec<u8>) {
        for event in std::mem::take(&mut self.events) {
            if self.done || self.errored {
                return;
            }
            let data = event.data.as_str();
            if data.trim().is_empty() {
                continue;
            }
            if data == "[DONE]" {
                if self.finished {
                    self.done = true;
                    out.extend_from_slice(SSE_DONE);
                } else {
                    let error =
                        invalid_answer(self.kind, "the stream ended without any choice finishing");
                    self.fail(out, &error);
                }
                continue;
            }
            if !data.trim_start().starts_with('{') {
                let error = invalid_answer(self.kind, "an event that is not a JSON object");
                self.fail(out, &error);
                continue;
            }
            let probe = match serde_json::from_str::<ChunkProbe>(data) {
                Ok(probe) => probe,
                Err(e) => {
                    self.fail(out, &invalid_answer(self.kind, e));
                    continue;
                }
            };
            if probe.error.is_some() {
                self.fail(out, &stream_error(data));
                continue;
            }
            let Some(AnyFinished(finished)) = probe.choices else {
                self.fail(
                    out,
                    &invalid_answer(self.kind, "an event without `choices`"),
                );
                continue;
            };
            self.finished |= finished;
            if let Some(usage) = probe.usage {
                self.usage = Some(usage.normalise());
                if !self.include_usage {
                    if let Some(json) = without_usage(data) {
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
}

/// A chunk with its usage taken out, for a client that did not ask for it; `None` when
/// nothing else is left (the usage chunk, whose `choices` are empty).
fn without_usage(data: &str) -> Option<String> {
    let mut chunk: Map<String, Value> = serde_json::from_str(data).ok()?;
    chunk.remove("usage");
    let has_choices = chunk
        .get("choices")
        .and_then(Value::as_array)
        .is_some_and(|c| !c.is_empty());
    has_choices
        .then(|| serde_json::to_string(&chunk).ok())
        .flatten()
}

impl StreamTranslator for PassthroughStream {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        if self.done || self.errored {
            return;
        }
        let events = &mut self.events;
        let parsed = self.parser.feed(chunk, |e| events.push(e));
        self.emit(out);
        if parsed.is_err() && !(self.done || self.errored) {
            self.fail(out, &event_too_large());
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        if !(self.done || self.errored) {
            let events = &mut self.events;
            self.parser.finish(|e| events.push(e));
            self.emit(out);
        }
        if !(self.done || self.errored) {
            self.fail(out, &stream_interrupted());
        }
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }

    fn failed(&self) -> bool {
        self.errored
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::kinds::{BaseUrl, Build, KINDS};
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
        let body = br#"{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":null}}],"usage":{"prompt_tokens":10,"completion_tokens":5,
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
        // Each operation's list: an embeddings answer is no chat answer, nor the reverse.
        let err = p.chat_response(br#"{"data":[]}"#, &ctx(false)).unwrap_err();
        assert_eq!(err.status, 502);
        let err = p
            .embeddings_response(br#"{"choices":[]}"#, &ctx(false))
            .unwrap_err();
        assert_eq!(err.status, 502);
    }

    #[test]
    fn answers_without_what_their_api_requires_are_502() {
        let p = provider("kind: openai\napi_key: k");
        let chat = [
            // A choice without its message (the mock's `no_content`), no choice at all, a
            // message that is no object.
            r#"{"id":"c","object":"chat.completion","choices":[{"index":0,"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":0}}"#,
            r#"{"id":"c","choices":[]}"#,
            r#"{"id":"c","choices":[{"index":0,"message":"hi","finish_reason":"stop"}]}"#,
            r#"{"id":"c","choices":[{"index":0,"message":{"content":"a"}},{"index":1,"message":null}]}"#,
        ];
        for body in chat {
            let err = p.chat_response(body.as_bytes(), &ctx(false)).unwrap_err();
            assert_eq!(
                (err.status, err.code.as_deref()),
                (502, Some("invalid_upstream_response")),
                "{body}"
            );
        }
        // OpenAI's API allows a message without content (tool calls, a refusal, nothing said).
        for body in [
            r#"{"id":"c","choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":"no"},"finish_reason":"stop"}]}"#,
            r#"{"id":"c","choices":[{"index":0,"message":{"role":"assistant","content":""},"finish_reason":"stop"}]}"#,
        ] {
            assert!(
                p.chat_response(body.as_bytes(), &ctx(false)).is_ok(),
                "{body}"
            );
        }
        let err = p
            .embeddings_response(
                br#"{"object":"list","data":[{"object":"embedding","index":0}],"usage":{"prompt_tokens":2,"total_tokens":2}}"#,
                &ctx(false),
            )
            .unwrap_err();
        assert_eq!(err.code.as_deref(), Some("invalid_upstream_response"));
    }

    #[test]
    fn an_answer_that_is_not_utf8_does_not_pass_through() {
        let p = provider("kind: openai\napi_key: k");
        let chat = b"{\"choices\":[{\"index\":0,\"message\":{\"content\":\"\xff\"}}]}";
        let err = p.chat_response(chat, &ctx(false)).unwrap_err();
        assert_eq!(err.code.as_deref(), Some("invalid_upstream_response"));
        let embeddings = b"{\"data\":[{\"embedding\":[0.5],\"x\xff\":1}]}";
        let err = p.embeddings_response(embeddings, &ctx(false)).unwrap_err();
        assert_eq!(err.code.as_deref(), Some("invalid_upstream_response"));
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
            let whole = run_stream_whole(
                || PassthroughStream::new("openai", include_usage),
                STREAM.as_bytes(),
            );
            assert_every_split_matches(
                || PassthroughStream::new("openai", include_usage),
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
    fn an_event_of_several_data_lines_passes_through_whole() {
        let input = b"event: e\ndata: {\"choices\":\ndata: [{\"index\":0,\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
        let (out, _) = run_stream_whole(|| PassthroughStream::new("openai", false), input);
        assert_eq!(out, input);
    }

    #[test]
    fn cut_stream_ends_with_an_error_event() {
        let cut = &STREAM.as_bytes()[..STREAM
            .find("data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},")
            .unwrap()];
        let (out, _) = run_stream_whole(|| PassthroughStream::new("openai", false), cut);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.ends_with("\"code\":\"stream_interrupted\"}}\n\n"),
            "{text}"
        );
        assert!(!text.contains("[DONE]"));
    }

    /// A stream the pass-through must not forward as it is; `input` names the case.
    struct Broken {
        input: String,
        /// What the client sees (before the error event).
        forwarded: &'static str,
        /// The end of the error event that ends the client stream.
        ending: &'static str,
    }

    #[test]
    fn broken_streams_end_with_an_error_event_at_every_split() {
        const ROLE: &str = "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}\n\n";
        const TEXT: &str =
            "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n";
        const FINISH: &str = "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n";
        const DONE: &str = "data: [DONE]\n\n";
        let invalid =
            r#""type":"upstream_error","param":null,"code":"invalid_upstream_response"}}"#;
        let cases = [
            Broken {
                input: format!("{ROLE}{TEXT}data: {{\"id\":\"c\",\"choices\":[{{\"index\n\n{TEXT}{FINISH}{DONE}"),
                forwarded: "role, text",
                ending: invalid,
            },
            Broken {
                input: format!("{ROLE}data: [1,2]\n\n{FINISH}{DONE}"),
                forwarded: "role",
                ending: r#"invalid answer: an event that is not a JSON object","type":"upstream_error","param":null,"code":"invalid_upstream_response"}}"#,
            },
            Broken {
                input: format!("{ROLE}data: \"text\"\n\n{FINISH}{DONE}"),
                forwarded: "role",
                ending: invalid,
            },
            Broken {
                input: format!("{ROLE}data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\"}}\n\n{FINISH}{DONE}"),
                forwarded: "role",
                ending: r#"invalid answer: an event without `choices`","type":"upstream_error","param":null,"code":"invalid_upstream_response"}}"#,
            },
            Broken {
                input: format!("{ROLE}data: {{\"id\":\"c\",\"choices\":{{}}}}\n\n{FINISH}{DONE}"),
                forwarded: "role",
                ending: invalid,
            },
            Broken {
                input: format!("{ROLE}{TEXT}{DONE}"),
                forwarded: "role, text",
                ending: r#"invalid answer: the stream ended without any choice finishing","type":"upstream_error","param":null,"code":"invalid_upstream_response"}}"#,
            },
            Broken {
                input: DONE.to_owned(),
                forwarded: "",
                ending: invalid,
            },
            Broken {
                input: format!("{ROLE}{TEXT}event: error\ndata: {{\"error\":{{\"message\":\"The server had an error\",\"type\":\"server_error\",\"param\":null,\"code\":null}}}}\n\n{FINISH}{DONE}"),
                forwarded: "role, text",
                ending: r#"{"error":{"message":"The server had an error","type":"server_error","param":null,"code":null}}"#,
            },
            Broken {
                input: format!("{ROLE}data: {{\"error\":{{\"message\":\"slow down\",\"type\":\"tokens\",\"code\":\"rate_limit_exceeded\"}}}}\n\n"),
                forwarded: "role",
                ending: r#"{"error":{"message":"slow down","type":"upstream_error","param":null,"code":"rate_limit_exceeded"}}"#,
            },
            Broken {
                input: format!("{ROLE}{TEXT}"),
                forwarded: "role, text",
                ending: r#""code":"stream_interrupted"}}"#,
            },
        ];
        for case in cases {
            let name = &case.input;
            let make = || PassthroughStream::new("openai", true);
            let (out, _) = run_stream_whole(make, case.input.as_bytes());
            let text = String::from_utf8(out.clone()).unwrap();
            let forwarded = case
                .forwarded
                .split(", ")
                .filter(|f| !f.is_empty())
                .map(|f| match f {
                    "role" => ROLE,
                    _ => TEXT,
                })
                .collect::<String>();
            assert!(text.starts_with(&forwarded), "{name}: {text}");
            let error = text.get(forwarded.len()..).unwrap();
            assert!(error.starts_with("data: {\"error\":"), "{name}: {text}");
            assert!(error.trim_end().ends_with(case.ending), "{name}: {text}");
            assert_eq!(error.matches("data:").count(), 1, "{name}: {text}");
            assert_every_split_matches(make, case.input.as_bytes(), &out);
        }
    }

    #[test]
    fn an_event_over_the_limit_ends_the_stream_after_the_whole_ones_before_it() {
        let role = "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}\n\n";
        let huge = format!(
            "{role}data: {{\"choices\":[{{\"delta\":{{\"content\":\"{}\"}}}}]}}\n\n",
            "x".repeat(MAX_EVENT_BYTES)
        );
        let mut t = PassthroughStream::new("openai", false);
        let mut out = Vec::new();
        t.feed(huge.as_bytes(), &mut out);
        t.finish(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with(role), "{text}");
        assert!(
            text.ends_with("larger than 4 MiB\",\"type\":\"upstream_error\",\"param\":null,\"code\":null}}\n\n"),
            "{text}"
        );
        assert!(t.failed());
    }

    #[test]
    fn an_answer_that_finishes_without_content_passes() {
        // OpenAI's API allows an empty answer: a role, then the finish.
        let input = "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}\n\n\
data: \n\n\
data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n\
data: [DONE]\n\n";
        let expected = input.replace("data: \n\n", "");
        assert_every_split_matches(
            || PassthroughStream::new("openai", false),
            input.as_bytes(),
            expected.as_bytes(),
        );
    }

    #[test]
    fn every_preset_builds_and_routes() {
        let presets = KINDS.iter().filter_map(|kind| match &kind.build {
            Build::OpenAiWire(preset) => Some((kind, preset)),
            Build::Module(_) => None,
        });
        for (kind, preset) in presets {
            // The kind's own address, else one in the section.
            let (base, yaml) = match kind.base_url {
                BaseUrl::Fixed(url) => (url, format!("kind: {}\napi_key: k", kind.name)),
                _ => (
                    "http://h:1/v1",
                    format!("kind: {}\nbase_url: http://h:1/v1\napi_key: k", kind.name),
                ),
            };
            let p = provider(&yaml);
            let up = send_chat(
                p.as_ref(),
                r#"{"model":"m","messages":[],"stream":true}"#,
                &attempt("up"),
            )
            .unwrap();
            let base_path = base
                .splitn(4, '/')
                .nth(3)
                .map(|p| format!("/{p}"))
                .unwrap_or_default();
            assert_eq!(
                up.path,
                format!("{base_path}/chat/completions"),
                "{}",
                kind.name
            );
            assert_eq!(
                up.headers,
                owned_pairs(&[("authorization", "Bearer k")]),
                "{}",
                kind.name
            );
            let body = String::from_utf8(up.body).unwrap();
            assert_eq!(
                body.contains("include_usage"),
                preset.stream_usage_option,
                "{}",
                kind.name
            );
            let embeddings =
                send_embeddings(p.as_ref(), r#"{"model":"m","input":"x"}"#, &attempt("up"));
            assert_eq!(embeddings.is_ok(), preset.embeddings, "{}", kind.name);
        }
    }

    #[test]
    fn keyless_local_servers_send_no_auth() {
        let p = provider("kind: ollama");
        let up = send_chat(
            p.as_ref(),
            r#"{"model":"m","messages":[]}"#,
            &attempt("llama3"),
        )
        .unwrap();
        assert!(up.headers.is_empty());
        assert_eq!(p.endpoint().authority(), "127.0.0.1:11434");
    }

    #[test]
    fn config_problems() {
        assert_build_error(
            "kind: openai",
            "providers.test.api_key: required for kind `openai`",
        );
        assert_build_error(
            "kind: groq",
            "providers.test.api_key: required for kind `groq`",
        );
        assert_build_error(
            "kind: openai_compatible",
            "providers.test.base_url: required",
        );
        assert_build_error("kind: vllm\nregion: x", "unknown field `region`");
    }
}
