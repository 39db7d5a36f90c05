//! Upstream role: one attempt on one deployment. Builds the provider request, then turns the
//! provider's answer (JSON, stream or error) into what the client sees.

use super::ParsedRequest;
use crate::api::chat::{ChatRequest, ResponseFormat};
use crate::api::{Api, ApiError, Operation};
use crate::inputs::{self, StreamEncoder};
use crate::providers::{
    invalid_answer, Attempt, Provider, ResponseContext, StreamTranslator, Translated,
    UpstreamRequest,
};
use crate::runtime::Runtime;
use crate::usage::Usage;

/// State of one attempt, from request to the end of its answer.
pub struct Exchange {
    operation: Operation,
    provider: usize,
    pub deployment: usize,
    stream: bool,
    include_usage: bool,
    base64_embeddings: bool,
    upstream_model: String,
    json_schema: Option<String>,
    request_id: String,
    created: u64,
    /// How the provider's answer becomes the client's.
    answer: AnswerPath,
    translator: Option<Box<dyn StreamTranslator>>,
    /// Encodes the translator's OpenAI stream into another input API's events.
    encoder: Option<Box<dyn StreamEncoder>>,
    usage: Option<Usage>,
    /// The client stream so far ends with `[DONE]`: every translator ends a complete stream
    /// so, and a cut or failed one with an error event instead.
    stream_done: bool,
    /// The translator has written an event that is not its error event.
    emitted: bool,
}

/// How a provider's answer reaches the client.
enum AnswerPath {
    /// Translated to OpenAI's shape (the client speaks OpenAI).
    OpenAi,
    /// The provider speaks the client's API: its answer passes through, its usage read.
    Native,
    /// Translated to OpenAI's shape, then encoded into the client's API.
    Encoded(inputs::Context),
}

/// How to handle the answer's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyPlan {
    /// Translate chunk by chunk as it arrives.
    Stream,
    /// Buffer to the end, then translate (JSON answers and all errors).
    Buffer,
    /// The answer was replaced before its end (too large): drop the rest.
    Discard,
}

/// A buffered answer after translation. `body: None` keeps the provider's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: Option<Vec<u8>>,
    pub retry_after: Option<u64>,
}

impl Exchange {
    /// Prepares the attempt on the deployment (by index) Envoy picked; `raw`: the client's
    /// body.
    pub fn begin(
        rt: &Runtime,
        index: usize,
        request: &ParsedRequest,
        raw: &[u8],
        request_id: &str,
        now_ms: u64,
    ) -> Result<(Exchange, UpstreamRequest), ApiError> {
        let deployment = rt
            .deployments
            .get(index)
            .ok_or_else(|| ApiError::server("no such deployment in this configuration"))?;
        let provider = rt
            .provider_of(deployment)
            .ok_or_else(|| ApiError::server("deployment without provider"))?;
        let default_settings = Default::default();
        let attempt = Attempt {
            upstream_model: &deployment.upstream_model,
            settings: rt.settings_of(deployment).unwrap_or(&default_settings),
            now_ms,
        };
        let p = provider.provider.as_ref();
        let operation = request.operation();
        let (upstream, answer) = match request {
            ParsedRequest::Chat(req) => (p.chat_request(req, raw, &attempt)?, AnswerPath::OpenAi),
            ParsedRequest::Embeddings(req) => (
                p.embeddings_request(req, raw, &attempt)?,
                AnswerPath::OpenAi,
            ),
            ParsedRequest::Decoded(d) if p.native_api() == Some(operation.api()) => (
                p.native_request(operation, &inputs::native_body(&d.context, raw)?, &attempt)?,
                AnswerPath::Native,
            ),
            ParsedRequest::Decoded(_) if operation == Operation::CountTokens => {
                // The gateway counts itself unless every deployment can (`local_token_count`).
                return Err(ApiError::server(format!(
                    "a {} provider cannot count tokens",
                    p.kind()
                )));
            }
            ParsedRequest::Decoded(d) => {
                inputs::check_translatable(&d.context, attempt.settings)?;
                (
                    p.chat_request(&d.chat, &d.chat_body, &attempt)?,
                    AnswerPath::Encoded(d.context.clone()),
                )
            }
        };
        let chat = request.chat();
        let base64_embeddings = matches!(request,
            ParsedRequest::Embeddings(e) if e.encoding_format.as_deref() == Some("base64"));
        Ok((
            Exchange {
                operation,
                provider: deployment.provider,
                deployment: index,
                stream: request.is_stream(),
                // A stream encoded into another API reports usage in its own events: the
                // translator must pass the usage chunk on.
                include_usage: matches!(answer, AnswerPath::Encoded(_))
                    || chat.is_some_and(ChatRequest::wants_stream_usage),
                base64_embeddings,
                upstream_model: deployment.upstream_model.clone(),
                json_schema: chat.and_then(|c| match &c.response_format {
                    Some(ResponseFormat::JsonSchema { json_schema }) => {
                        Some(json_schema.name.clone())
                    }
                    _ => None,
                }),
                request_id: request_id.to_owned(),
                created: now_ms / 1000,
                answer,
                translator: None,
                encoder: None,
                usage: None,
                stream_done: false,
                emitted: false,
            },
            upstream,
        ))
    }

    fn provider<'g>(&self, rt: &'g Runtime) -> Option<&'g dyn Provider> {
        rt.providers.get(self.provider).map(|p| p.provider.as_ref())
    }

    fn context(&self) -> ResponseContext<'_> {
        ResponseContext {
            upstream_model: &self.upstream_model,
            include_usage: self.include_usage,
            base64_embeddings: self.base64_embeddings,
            created: self.created,
            request_id: &self.request_id,
            json_schema: self.json_schema.as_deref(),
        }
    }

    /// Decides, from the status, whether the answer streams or is buffered.
    pub fn response_headers(&mut self, rt: &Runtime, status: u16) -> BodyPlan {
        if !(self.stream && (200..300).contains(&status)) {
            return BodyPlan::Buffer;
        }
        let Some(p) = self.provider(rt) else {
            return BodyPlan::Buffer;
        };
        let ctx = self.context();
        let (translator, encoder) = match &self.answer {
            AnswerPath::OpenAi => (p.chat_stream(&ctx), None),
            AnswerPath::Native => (p.native_stream(self.operation, &ctx), None),
            AnswerPath::Encoded(input) => {
                (p.chat_stream(&ctx), Some(inputs::stream_encoder(input)))
            }
        };
        self.translator = Some(translator);
        self.encoder = encoder;
        BodyPlan::Stream
    }

    pub fn stream_chunk(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        self.stream_step(out, |t, translated| t.feed(chunk, translated), |_, _| {});
    }

    pub fn stream_end(&mut self, out: &mut Vec<u8>) {
        self.stream_step(
            out,
            |t, translated| t.finish(translated),
            |e, out| e.finish(out),
        );
        self.usage = self.translator.as_ref().and_then(|t| t.usage());
    }

    /// One step of the stream: the translator's output (`translate`), through the encoder
    /// when the client speaks another API (`encoder_end` closes it at the stream's end).
    fn stream_step(
        &mut self,
        out: &mut Vec<u8>,
        translate: impl FnOnce(&mut dyn StreamTranslator, &mut Vec<u8>),
        encoder_end: impl FnOnce(&mut dyn StreamEncoder, &mut Vec<u8>),
    ) {
        let Some(t) = self.translator.as_mut() else {
            return;
        };
        let Some(encoder) = self.encoder.as_mut() else {
            let start = out.len();
            translate(t.as_mut(), out);
            let step = out.get(start..).unwrap_or_default();
            self.emitted = self.emitted || emits_an_event(step, t.failed());
            if !step.is_empty() {
                self.stream_done = t.complete(out);
            }
            return;
        };
        let mut openai = Vec::new();
        translate(t.as_mut(), &mut openai);
        self.emitted = self.emitted || emits_an_event(&openai, t.failed());
        encoder.feed(&openai, out);
        encoder_end(encoder.as_mut(), out);
        self.stream_done = encoder.complete();
    }

    /// The stream failed before any event of its own reached the output: only its error
    /// event would (the translators write the error event last, and nothing after it).
    pub fn failed_before_first_event(&self) -> bool {
        !self.emitted && self.translator.as_ref().is_some_and(|t| t.failed())
    }

    /// The stream reached its end (not cut short, no error event at its end).
    pub fn stream_complete(&self) -> bool {
        self.stream_done
    }

    /// Translates a whole answer: success bodies through the provider's mapping, errors into
    /// the client API's error shape.
    pub fn buffered(&mut self, rt: &Runtime, status: u16, body: &[u8]) -> Answer {
        let Some(p) = self.provider(rt) else {
            return self.error_answer(&ApiError::server("provider vanished"));
        };
        if !(200..300).contains(&status) {
            return self.error_answer(&p.error_response(status, body));
        }
        if body.iter().all(u8::is_ascii_whitespace) {
            return self.error_answer(&invalid_answer(
                p.kind(),
                format_args!("a {status} without a body"),
            ));
        }
        match self.translate(p, body) {
            Ok(t) => {
                self.usage = t.usage;
                Answer {
                    status,
                    body: t.body,
                    retry_after: None,
                }
            }
            Err(e) => self.error_answer(&e),
        }
    }

    /// Translates a whole answer whose status was not asked of Envoy (that costs a host call)
    /// as the success it reads as; `None` when it does not read as one, and the status must
    /// decide (`buffered`). No provider's error body reads as its success (each provider's
    /// error table checks this).
    pub fn buffered_success(&mut self, rt: &Runtime, body: &[u8]) -> Option<Answer> {
        let p = self.provider(rt)?;
        let t = self.translate(p, body).ok()?;
        self.usage = t.usage;
        Some(Answer {
            status: 200,
            body: t.body,
            retry_after: None,
        })
    }

    /// A success body in the client's API, and its usage (`body: None`: the provider's bytes
    /// already are the answer).
    fn translate(&self, p: &dyn Provider, body: &[u8]) -> Result<Translated, ApiError> {
        let ctx = self.context();
        match &self.answer {
            AnswerPath::Native => p.native_response(self.operation, body, &ctx),
            AnswerPath::OpenAi if self.operation == Operation::Embeddings => {
                p.embeddings_response(body, &ctx)
            }
            AnswerPath::OpenAi => p.chat_response(body, &ctx),
            AnswerPath::Encoded(input) => {
                let openai = p.chat_response(body, &ctx)?;
                let encoded = inputs::encode_answer(input, openai.body.as_deref().unwrap_or(body))?;
                Ok(Translated {
                    body: Some(encoded),
                    usage: openai.usage,
                })
            }
        }
    }

    /// The answer to a buffered provider answer larger than `options.max_response_bytes`.
    pub fn oversized(&self, rt: &Runtime, body_size: usize) -> Option<Answer> {
        let limit = rt.options.max_response_bytes as usize;
        (body_size > limit).then(|| {
            self.error_answer(&ApiError::upstream(format!(
                "the provider's answer is larger than this gateway's limit of {limit} bytes"
            )))
        })
    }

    /// An error answer in the client API's shape.
    pub fn error_answer(&self, e: &ApiError) -> Answer {
        error_answer(self.operation.api(), e)
    }

    /// The tools of the client's request this attempt did not offer the provider (a
    /// translated request), for the `x-switchboard-dropped-tools` answer header.
    pub fn dropped_tools(&self) -> Option<String> {
        match &self.answer {
            AnswerPath::Encoded(input) => inputs::dropped_tools(input),
            AnswerPath::OpenAi | AnswerPath::Native => None,
        }
    }

    /// The client asked for a stream (its answer's plan depends on the status).
    pub fn is_stream(&self) -> bool {
        self.stream
    }

    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }
}

/// Whether a translator's output step holds an event other than its error event (which a
/// failed translator writes last): SSE events end with a blank line. Called until the first
/// event, so a stream pays for it once.
fn emits_an_event(step: &[u8], failed: bool) -> bool {
    let needed = 1 + usize::from(failed);
    memchr::memmem::find_iter(step, b"\n\n")
        .take(needed)
        .count()
        == needed
}

/// The error a stream that failed before its first event answers with: its error event's
/// message and code (in any client API's shape: `{"error":{…}}`, Anthropic's
/// `{"type":"error","error":{…}}`, Responses' `{"type":"error","message","code"}`), as a 502.
pub fn failed_stream_error(out: &[u8]) -> ApiError {
    #[derive(serde::Deserialize)]
    struct Event {
        #[serde(default)]
        error: Option<Detail>,
        #[serde(default)]
        message: Option<String>,
        #[serde(default)]
        code: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Detail {
        message: String,
        #[serde(default)]
        code: Option<String>,
    }
    let text = String::from_utf8_lossy(out);
    let (message, code) = text
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str::<Event>(data.trim()).ok())
        .find_map(|e| match e.error {
            Some(d) => Some((d.message, d.code)),
            None => e.message.map(|m| (m, e.code)),
        })
        .unwrap_or_else(|| ("it ended without any".to_owned(), None));
    let error = ApiError::upstream(format!(
        "the provider's stream failed before its first event: {message}"
    ));
    match code {
        Some(code) => error.with_code(code),
        None => error,
    }
}

/// How the client's request changes for the provider, beyond path and the provider's own
/// headers: what the upstream role must write, and nothing it need not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRewrite {
    /// `:authority`: the provider's host (and port, when not the scheme's default).
    pub authority: String,
    /// A new `content-length`: when the body changed size, or on a later attempt (which finds
    /// the length the previous provider got).
    pub content_length: Option<String>,
    /// Whether the body must be written (an unchanged one is not copied back into Envoy).
    pub body_changed: bool,
}

/// The rewrite of an attempt's request (`first`: no earlier attempt changed its headers).
pub fn request_rewrite(
    rt: &Runtime,
    exchange: Option<&Exchange>,
    up: &UpstreamRequest,
    client_body: &[u8],
    first: bool,
) -> RequestRewrite {
    let authority = exchange
        .and_then(|ex| rt.deployments.get(ex.deployment))
        .and_then(|d| rt.provider_of(d))
        .map(|p| p.provider.endpoint().authority())
        .unwrap_or_default();
    let resized = up.body.len() != client_body.len();
    RequestRewrite {
        authority,
        content_length: (!first || resized).then(|| up.body.len().to_string()),
        body_changed: up.body != client_body,
    }
}

/// An error answer in the shape clients of `api` read.
pub fn error_answer(api: Api, e: &ApiError) -> Answer {
    Answer {
        status: e.status,
        body: Some(inputs::error_body(api, e)),
        retry_after: e.retry_after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::gateway::admit;
    use crate::testkit::test;

    fn runtime() -> Runtime {
        Runtime::from_text(
            r#"
providers:
  oa: {kind: openai, api_key: sk, base_url: "http://mock:9/v1"}
  az: {kind: azure, api_key: {env: MISSING}, base_url: "http://mock:9"}
models:
  - {name: gpt, deployments: [{provider: oa, model: gpt-up}], fallbacks: [azure-gpt]}
  - {name: azure-gpt, deployments: [{provider: az, model: dep}]}
"#,
            &|_: &str| None,
        )
        .unwrap()
    }

    fn begin(
        rt: &Runtime,
        deployment: &str,
        body: &str,
    ) -> Result<(Exchange, UpstreamRequest), ApiError> {
        let a = admit(rt, Operation::ChatCompletions, body.as_bytes()).unwrap();
        let (index, _) = rt.deployment_index(deployment).unwrap();
        Exchange::begin(rt, index, &a.request, body.as_bytes(), "r1", 1_000_000)
    }

    #[test]
    fn a_stream_failed_before_its_first_event_answers_with_its_error_events_message() {
        let cases = [
            (
                &b"data: {\"error\":{\"message\":\"cut\",\"type\":\"x\",\"code\":\"stream_interrupted\"}}\n\n"[..],
                "cut",
            ),
            (
                b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"gone\"}}\n\n",
                "gone",
            ),
            (
                b"event: error\ndata: {\"type\":\"error\",\"code\":null,\"message\":\"late\",\"sequence_number\":3}\n\n",
                "late",
            ),
            (b"", "it ended without any"),
        ];
        for (out, expected) in cases {
            let e = failed_stream_error(out);
            assert_eq!(e.status, 502);
            assert_eq!(
                e.message,
                format!("the provider's stream failed before its first event: {expected}")
            );
        }
        assert_eq!(
            failed_stream_error(cases[0].0).code.as_deref(),
            Some("stream_interrupted")
        );
    }

    const BODY: &str = r#"{"model":"gpt","messages":[{"role":"user","content":"hi"}]}"#;

    #[test]
    fn translates_json_and_error_answers() {
        let rt = runtime();
        let (mut ex, up) = begin(&rt, "gpt/0", BODY).unwrap();
        assert_eq!(up.path, "/v1/chat/completions");
        assert_eq!(ex.response_headers(&rt, 200), BodyPlan::Buffer);
        let success = br#"{"choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],
            "usage":{"prompt_tokens":2,"completion_tokens":1}}"#;
        let ok = ex.buffered(&rt, 200, success);
        assert_eq!(
            ok,
            Answer {
                status: 200,
                body: None,
                retry_after: None
            }
        );
        assert_eq!(ex.usage().unwrap().total_tokens(), 3);

        assert_eq!(ex.buffered_success(&rt, success), Some(ok.clone()));
        assert_eq!(
            ex.buffered_success(&rt, br#"{"error":{"message":"slow down"}}"#),
            None
        );
        let broken = ex.buffered(&rt, 200, b"{\"choices\": [");
        assert_eq!(broken.status, 502);
        let err = ex.buffered(&rt, 503, b"<html>busy</html>");
        assert_eq!(err.status, 503);
        let v: serde_json::Value = serde_json::from_slice(&err.body.unwrap()).unwrap();
        assert_eq!(v["error"]["message"], "<html>busy</html>");
    }

    #[test]
    fn missing_credentials_fail_the_attempt_not_the_config() {
        let rt = runtime();
        let err = begin(&rt, "azure-gpt/0", BODY).err().unwrap();
        assert_eq!(err.status, 500);
        assert!(
            err.message.contains("provider `az` has no api_key"),
            "{}",
            err.message
        );
        assert!(rt.deployment_index("nope/0").is_none());
        let a = admit(&rt, Operation::ChatCompletions, BODY.as_bytes()).unwrap();
        let beyond = rt.deployments.len();
        assert!(Exchange::begin(&rt, beyond, &a.request, BODY.as_bytes(), "r1", 0).is_err());
    }

    #[test]
    fn streams_only_successful_stream_requests() {
        let rt = runtime();
        let body = r#"{"model":"gpt","messages":[{"role":"user","content":"hi"}],"stream":true}"#;
        let (mut ex, _) = begin(&rt, "gpt/0", body).unwrap();
        assert_eq!(ex.response_headers(&rt, 429), BodyPlan::Buffer);
        assert_eq!(ex.response_headers(&rt, 200), BodyPlan::Stream);
        let mut out = Vec::new();
        ex.stream_chunk(
            b"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
            &mut out,
        );
        out.clear();
        ex.stream_chunk(b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}\n\ndata: [DONE]\n\n", &mut out);
        ex.stream_end(&mut out);
        assert_eq!(out, b"data: [DONE]\n\n");
        assert_eq!(ex.usage().unwrap().total_tokens(), 2);
        assert!(ex.stream_complete());

        let (mut cut, _) = begin(&rt, "gpt/0", body).unwrap();
        assert_eq!(cut.response_headers(&rt, 200), BodyPlan::Stream);
        let mut out = Vec::new();
        cut.stream_chunk(b"data: {\"choices\":[]}\n\n", &mut out);
        cut.stream_end(&mut out);
        assert!(!cut.stream_complete(), "{}", String::from_utf8_lossy(&out));
    }

    fn messages_runtime() -> Runtime {
        Runtime::from_text(
            r#"
providers:
  an: {kind: anthropic, api_key: k, base_url: "http://mock:9"}
  oa: {kind: openai, api_key: sk, base_url: "http://mock:9/v1"}
models:
  - {name: claude, deployments: [{provider: an, model: claude-x}], fallbacks: [gpt]}
  - {name: gpt, deployments: [{provider: oa, model: gpt-up}]}
  - {name: gpt-lenient, drop_unsupported_params: true, deployments: [{provider: oa, model: gpt-up}]}
"#,
            &|_: &str| None,
        )
        .unwrap()
    }

    fn begin_messages(
        rt: &Runtime,
        op: Operation,
        deployment: &str,
        body: &str,
    ) -> Result<(Exchange, UpstreamRequest), ApiError> {
        let request = crate::flow::gateway::parse_request(op, body.as_bytes()).unwrap();
        let (index, _) = rt.deployment_index(deployment).unwrap();
        Exchange::begin(rt, index, &request, body.as_bytes(), "r1", 1_000_000)
    }

    const MESSAGES: &str =
        r#"{"model":"claude","max_tokens":50,"messages":[{"role":"user","content":"hi"}]}"#;

    #[test]
    fn messages_pass_through_to_anthropic() {
        let rt = messages_runtime();
        let (mut ex, up) = begin_messages(&rt, Operation::Messages, "claude/0", MESSAGES).unwrap();
        assert_eq!(up.path, "/v1/messages");
        assert_eq!(
            up.body,
            br#"{"model":"claude-x","max_tokens":50,"messages":[{"role":"user","content":"hi"}]}"#
        );
        let answer = ex.buffered(
            &rt,
            200,
            br#"{"id":"msg_1","content":[{"type":"text","text":"yo"}],"usage":{"input_tokens":2,"output_tokens":3}}"#,
        );
        assert_eq!((answer.status, answer.body), (200, None));
        assert_eq!(ex.usage().unwrap().total_tokens(), 5);
        let overloaded = ex.buffered(
            &rt,
            529,
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        );
        let v: serde_json::Value = serde_json::from_slice(&overloaded.body.unwrap()).unwrap();
        assert_eq!(overloaded.status, 503);
        assert_eq!(
            v,
            serde_json::json!({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})
        );
    }

    #[test]
    fn messages_are_translated_for_other_providers() {
        let rt = messages_runtime();
        let body = r#"{"model":"gpt","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
        let (mut ex, up) = begin_messages(&rt, Operation::Messages, "gpt/0", body).unwrap();
        assert_eq!(up.path, "/v1/chat/completions");
        let sent: serde_json::Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(sent["model"], "gpt-up");
        assert_eq!(sent["stream_options"]["include_usage"], true);
        assert_eq!(ex.response_headers(&rt, 200), BodyPlan::Stream);
        let mut out = Vec::new();
        ex.stream_chunk(
            b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"yo\"},\"finish_reason\":\"stop\"}]}\n\n\
              data: {\"choices\":[],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":1}}\n\ndata: [DONE]\n\n",
            &mut out,
        );
        ex.stream_end(&mut out);
        let out = String::from_utf8(out).unwrap();
        assert!(out.starts_with("event: message_start\n"), "{out}");
        assert!(out.contains(r#""text_delta","text":"yo""#), "{out}");
        assert!(
            out.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"),
            "{out}"
        );
        assert!(ex.stream_complete());
        assert_eq!(ex.usage().unwrap().total_tokens(), 3);

        // What only Anthropic serves is refused by name, unless the model drops it.
        let server_tool = r#"{"model":"gpt","max_tokens":50,"messages":[{"role":"user","content":"hi"}],
            "tools":[{"type":"web_search_20250305","name":"web_search"}]}"#;
        let err = begin_messages(&rt, Operation::Messages, "gpt/0", server_tool)
            .err()
            .unwrap();
        assert_eq!((err.status, err.param.as_deref()), (400, Some("tools[0]")));
        assert!(begin_messages(&rt, Operation::Messages, "gpt-lenient/0", server_tool).is_ok());
        // Anthropic serves it as it is.
        assert!(begin_messages(&rt, Operation::Messages, "claude/0", server_tool).is_ok());
        // Counting is native or done by the gateway, never a completion.
        assert!(begin_messages(&rt, Operation::CountTokens, "gpt/0", MESSAGES).is_err());
    }

    /// The OpenAI key of `translated_runtime`, which its provider echoes in errors.
    const OPENAI_KEY: &str = "sk-proj-Tq8vX2mN5pL9rK3wZ7yB4cF6";

    /// Messages clients on providers that do not speak Messages (and Anthropic, natively).
    fn translated_runtime() -> Runtime {
        Runtime::from_text(
            &format!(
                r#"
providers:
  an: {{kind: anthropic, api_key: sk-ant-api03-Zq7Xw2Lm9Kp4Rt8Yv3Bn6, base_url: "http://mock:9"}}
  oa: {{kind: openai, api_key: {OPENAI_KEY}, base_url: "http://mock:9/v1"}}
  br: {{kind: bedrock, region: us-east-1, access_key_id: AKIDEXAMPLE, secret_access_key: wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY}}
models:
  - {{name: claude, deployments: [{{provider: an, model: claude-x}}]}}
  - {{name: gpt, deployments: [{{provider: oa, model: gpt-up}}]}}
  - {{name: claude-br, deployments: [{{provider: br, model: "anthropic.claude-sonnet-4-5-v1:0"}}]}}
"#
            ),
            &|_: &str| None,
        )
        .unwrap()
    }

    /// A tool loop whose assistant turn carries signed thinking, with thinking on.
    fn signed_tool_loop(tool: &str) -> String {
        format!(
            r#"{{"model":"m","max_tokens":2000,"thinking":{{"type":"enabled","budget_tokens":1024}},
            "tools":[{{"name":"{tool}","input_schema":{{"type":"object"}}}}],
            "messages":[{{"role":"user","content":"x"}},
              {{"role":"assistant","content":[{{"type":"thinking","thinking":"Need f.","signature":"sig-1"}},
                {{"type":"tool_use","id":"t1","name":"{tool}","input":{{}}}}]}},
              {{"role":"user","content":[{{"type":"tool_result","tool_use_id":"t1","content":"ok"}}]}}]}}"#
        )
    }

    #[test]
    fn translated_messages_meet_the_providers_constraints_thinking_included() {
        let rt = translated_runtime();
        let body =
            |up: &UpstreamRequest| serde_json::from_slice::<serde_json::Value>(&up.body).unwrap();
        // Signed thinking handed back passes Converse's checks and goes back first in its turn.
        let (_, up) = begin_messages(
            &rt,
            Operation::Messages,
            "claude-br/0",
            &signed_tool_loop("f"),
        )
        .unwrap();
        let sent = body(&up);
        assert_eq!(
            sent["messages"][1]["content"][0],
            serde_json::json!({"reasoningContent": {"reasoningText": {"text": "Need f.", "signature": "sig-1"}}})
        );
        assert_eq!(
            sent["additionalModelRequestFields"]["thinking"]["type"],
            "enabled"
        );
        // OpenAI gets the same loop without the thinking it cannot take.
        let (_, up) =
            begin_messages(&rt, Operation::Messages, "gpt/0", &signed_tool_loop("f")).unwrap();
        let sent = body(&up);
        assert_eq!(sent["messages"][1]["tool_calls"][0]["id"], "t1");
        assert!(
            sent["messages"][1].get("thinking_blocks").is_none(),
            "{sent}"
        );
        // What Converse is certain to refuse is refused here, in Anthropic's words.
        let long_name = "f".repeat(65);
        let err = begin_messages(
            &rt,
            Operation::Messages,
            "claude-br/0",
            &signed_tool_loop(&long_name),
        )
        .err()
        .unwrap();
        assert_eq!(err.status, 400);
        assert!(
            err.message
                .starts_with("Bedrock's Converse API takes tool names of 1 to 64"),
            "{}",
            err.message
        );
        let v: serde_json::Value =
            serde_json::from_slice(&error_answer(Api::AnthropicMessages, &err).body.unwrap())
                .unwrap();
        assert_eq!(v["error"]["type"], "invalid_request_error");
        // Anthropic itself gets the client's body: its own limits are its to enforce.
        assert!(begin_messages(
            &rt,
            Operation::Messages,
            "claude/0",
            &signed_tool_loop(&long_name)
        )
        .is_ok());
    }

    #[test]
    fn messages_errors_hide_the_providers_credentials() {
        let rt = translated_runtime();
        let echo = format!(
            r#"{{"error":{{"message":"Incorrect API key provided: {OPENAI_KEY}.","type":"invalid_request_error","code":"invalid_api_key"}}}}"#
        );
        // A translated JSON answer.
        let (mut ex, _) = begin_messages(&rt, Operation::Messages, "gpt/0", MESSAGES).unwrap();
        let answer = ex.buffered(&rt, 401, echo.as_bytes());
        let v: serde_json::Value = serde_json::from_slice(&answer.body.unwrap()).unwrap();
        assert_eq!(
            (answer.status, v),
            (
                401,
                serde_json::json!({"type":"error","error":{"type":"authentication_error",
                    "message":"Incorrect API key provided: [REDACTED]."}})
            )
        );
        // A translated stream's error event.
        let stream = r#"{"model":"gpt","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
        let (mut ex, _) = begin_messages(&rt, Operation::Messages, "gpt/0", stream).unwrap();
        assert_eq!(ex.response_headers(&rt, 200), BodyPlan::Stream);
        let mut out = Vec::new();
        ex.stream_chunk(
            format!(
                "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"yo\"}}}}]}}\n\ndata: {echo}\n\n"
            )
            .as_bytes(),
            &mut out,
        );
        ex.stream_end(&mut out);
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.ends_with("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":\"Incorrect API key provided: [REDACTED].\"}}\n\n"),
            "{out}"
        );
        assert!(!out.contains(OPENAI_KEY), "{out}");
        // Anthropic's own error answer, on the native path.
        let (mut ex, _) = begin_messages(&rt, Operation::Messages, "claude/0", MESSAGES).unwrap();
        let answer = ex.buffered(
            &rt,
            401,
            br#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key: sk-ant-api03-Zq7Xw2Lm9Kp4Rt8Yv3Bn6"}}"#,
        );
        let v: serde_json::Value = serde_json::from_slice(&answer.body.unwrap()).unwrap();
        assert_eq!(
            v["error"],
            serde_json::json!({"type":"authentication_error","message":"invalid x-api-key: [REDACTED]"})
        );
    }

    #[test]
    fn a_stream_failed_before_its_first_event_is_told_from_one_that_started() {
        let rt = runtime();
        let body = r#"{"model":"gpt","messages":[{"role":"user","content":"hi"}],"stream":true}"#;
        let good = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n";
        struct Case<'a> {
            name: &'static str,
            /// What arrives, in what pieces.
            pieces: &'a [&'a str],
            before_first: bool,
        }
        let one_piece = format!("{good}data: {{broken\n\n");
        let cases = [
            Case {
                name: "broken from the start",
                pieces: &["data: {broken\n\n"],
                before_first: true,
            },
            Case {
                name: "broken after an event",
                pieces: &[good, "data: {broken\n\n"],
                before_first: false,
            },
            Case {
                name: "broken after an event in the same piece",
                pieces: &[&one_piece],
                before_first: false,
            },
            Case {
                name: "not broken",
                pieces: &[good],
                before_first: false,
            },
        ];
        for case in cases {
            let (mut ex, _) = begin(&rt, "gpt/0", body).unwrap();
            assert_eq!(
                ex.response_headers(&rt, 200),
                BodyPlan::Stream,
                "{}",
                case.name
            );
            let mut out = Vec::new();
            for piece in case.pieces {
                ex.stream_chunk(piece.as_bytes(), &mut out);
            }
            assert_eq!(
                ex.failed_before_first_event(),
                case.before_first,
                "{}: {:?}",
                case.name,
                case.pieces
            );
        }
    }

    #[test]
    fn anthropic_answers_know_the_json_schema_and_overload_falls_back() {
        let rt = Runtime::from_text(
            r#"
providers:
  an: {kind: anthropic, api_key: k, base_url: "http://mock:9"}
models:
  - {name: claude, deployments: [{provider: an, model: claude-x}]}
"#,
            &|_: &str| None,
        )
        .unwrap();
        let body = r#"{"model":"claude","messages":[{"role":"user","content":"hi"}],
            "response_format":{"type":"json_schema","json_schema":{"name":"person","schema":{"type":"object"}}}}"#;
        let (mut ex, up) = begin(&rt, "claude/0", body).unwrap();
        assert_eq!(up.path, "/v1/messages");
        assert_eq!(ex.response_headers(&rt, 200), BodyPlan::Buffer);
        let answer = ex.buffered(
            &rt,
            200,
            br#"{"id":"msg_1","model":"claude-x","stop_reason":"tool_use","usage":{"input_tokens":2,"output_tokens":3},
                "content":[{"type":"tool_use","id":"t","name":"person","input":{"name":"Ada"}}]}"#,
        );
        let v: serde_json::Value = serde_json::from_slice(&answer.body.unwrap()).unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], r#"{"name":"Ada"}"#);
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        assert_eq!(ex.usage().unwrap().total_tokens(), 5);

        let overloaded = ex.buffered(
            &rt,
            529,
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        );
        assert_eq!(overloaded.status, 503);
    }

    fn responses_runtime() -> Runtime {
        Runtime::from_text(
            r#"
providers:
  oa: {kind: openai, api_key: sk, base_url: "http://mock:9/v1"}
  an: {kind: anthropic, api_key: k, base_url: "http://mock:9"}
models:
  - {name: gpt, deployments: [{provider: oa, model: gpt-up}]}
  - {name: claude, deployments: [{provider: an, model: claude-x}]}
"#,
            &|_: &str| None,
        )
        .unwrap()
    }

    fn begin_responses(
        rt: &Runtime,
        deployment: &str,
        body: &str,
    ) -> Result<(Exchange, UpstreamRequest), ApiError> {
        let a = admit(rt, Operation::Responses, body.as_bytes()).unwrap();
        let (index, _) = rt.deployment_index(deployment).unwrap();
        Exchange::begin(rt, index, &a.request, body.as_bytes(), "r1", 1_000_000)
    }

    #[test]
    fn responses_pass_through_to_openai() {
        let rt = responses_runtime();
        let body = r#"{"model":"gpt","input":"hi","tools":[{"type":"web_search"}],"previous_response_id":"resp_1"}"#;
        let (mut ex, up) = begin_responses(&rt, "gpt/0", body).unwrap();
        assert_eq!(up.path, "/v1/responses");
        assert_eq!(
            String::from_utf8(up.body).unwrap(),
            body.replace(r#""model":"gpt""#, r#""model":"gpt-up""#)
        );
        assert_eq!(ex.dropped_tools(), None);
        let answer = ex.buffered(
            &rt,
            200,
            br#"{"id":"resp_1","object":"response","output":[],"usage":{"input_tokens":3,"output_tokens":2,"total_tokens":5}}"#,
        );
        assert_eq!(answer.body, None);
        assert_eq!(ex.usage().unwrap().total_tokens(), 5);

        let stream = r#"{"model":"gpt","input":"hi","stream":true}"#;
        let (mut ex, _) = begin_responses(&rt, "gpt/0", stream).unwrap();
        assert_eq!(ex.response_headers(&rt, 200), BodyPlan::Stream);
        let events = "event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":0,\"response\":{\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}}\n\n";
        let mut out = Vec::new();
        ex.stream_chunk(events.as_bytes(), &mut out);
        ex.stream_end(&mut out);
        assert_eq!(out, events.as_bytes());
        assert!(ex.stream_complete());
        assert_eq!(ex.usage().unwrap().total_tokens(), 2);
    }

    #[test]
    fn responses_are_translated_for_other_providers() {
        let rt = responses_runtime();
        let body = r#"{"model":"claude","input":"hi","tools":[{"type":"web_search"},{"type":"function","name":"f"}]}"#;
        let (mut ex, up) = begin_responses(&rt, "claude/0", body).unwrap();
        assert_eq!(up.path, "/v1/messages");
        let sent: serde_json::Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(sent["tools"][0]["name"], "f");
        assert_eq!(sent["tools"].as_array().unwrap().len(), 1);
        assert_eq!(ex.dropped_tools().as_deref(), Some("web_search"));
        let answer = ex.buffered(
            &rt,
            200,
            br#"{"id":"msg_1","model":"claude-x","stop_reason":"end_turn","usage":{"input_tokens":2,"output_tokens":3},
                "content":[{"type":"text","text":"Hello"}]}"#,
        );
        let v: serde_json::Value = serde_json::from_slice(&answer.body.unwrap()).unwrap();
        assert_eq!(v["object"], "response");
        assert_eq!(v["output"][0]["content"][0]["text"], "Hello");
        assert_eq!(v["usage"]["total_tokens"], 5);
        assert_eq!(ex.usage().unwrap().total_tokens(), 5);
        // Errors are OpenAI's error JSON.
        let err = ex.buffered(
            &rt,
            429,
            br#"{"type":"error","error":{"type":"rate_limit_error","message":"slow"}}"#,
        );
        let v: serde_json::Value = serde_json::from_slice(&err.body.unwrap()).unwrap();
        assert_eq!(
            (err.status, v["error"]["message"].as_str()),
            (429, Some("slow"))
        );

        let stream = r#"{"model":"claude","input":"hi","stream":true}"#;
        let (mut ex, _) = begin_responses(&rt, "claude/0", stream).unwrap();
        assert_eq!(ex.response_headers(&rt, 200), BodyPlan::Stream);
        let mut out = Vec::new();
        ex.stream_chunk(
            b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"claude-x\",\"usage\":{\"input_tokens\":2,\"output_tokens\":0}}}\n\n\
event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n\
event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n\
event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":1}}\n\n\
event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
            &mut out,
        );
        ex.stream_end(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("event: response.created\n"), "{text}");
        assert!(text.contains("\"delta\":\"Hi\""), "{text}");
        assert!(text.contains("event: response.completed\n"), "{text}");
        assert!(ex.stream_complete(), "{text}");
        assert_eq!(ex.usage().unwrap().total_tokens(), 3);
    }

    #[test]
    fn what_needs_openai_storage_is_refused_only_on_translated_attempts() {
        let rt = responses_runtime();
        let body = r#"{"model":"claude","previous_response_id":"resp_1","input":"more"}"#;
        let err = begin_responses(&rt, "claude/0", body).err().unwrap();
        assert_eq!(
            (err.status, err.param.as_deref()),
            (400, Some("previous_response_id"))
        );
        let body = r#"{"model":"gpt","previous_response_id":"resp_1","input":"more"}"#;
        assert!(begin_responses(&rt, "gpt/0", body).is_ok());
    }
}
