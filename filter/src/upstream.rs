//! Upstream role (cluster filter, once per attempt): rewrites the request for the provider
//! Envoy picked, and translates its answer back; tells the request's record how the attempt
//! went (deployment, failure type, usage) and how long its callbacks took.
//!
//! Every value Envoy hands to the VM costs a nested call into it, which makes reading one
//! header about ten times dearer than writing one: this role reads no request header on a
//! first attempt (the gateway role's handoff, see `flow::handoff`), and no status when the
//! answer reads as a success. The client's credentials, the routing header and
//! `accept-encoding` never reach it: the rendered route removes them, and sets `content-type`.

use crate::host::{Action, Filter, Host};
use std::cell::RefCell;
use std::rc::Rc;
use switchboard_core::api::{Api, ApiError};
use switchboard_core::flow::gateway::parse_request;
use switchboard_core::flow::handoff::{self, Parked};
use switchboard_core::flow::metrics::ErrorType;
use switchboard_core::flow::record::{Bodiless, RequestRecord};
use switchboard_core::flow::upstream::{
    failed_stream_error, request_rewrite, Answer, BodyPlan, Exchange,
};
use switchboard_core::flow::ParsedRequest;
use switchboard_core::inputs;
use switchboard_core::names::{
    DEPLOYMENT_PROPERTY, DROPPED_TOOLS_HEADER, HANDOFF_HEADER, TRANSLATED_HEADER,
};
use switchboard_core::runtime::Runtime;
use switchboard_core::usage::Usage;

pub struct UpstreamFilter {
    rt: Rc<Runtime>,
    exchange: Option<Exchange>,
    plan: BodyPlan,
    /// The provider's status; 0 until asked of Envoy (a success answer never is).
    status: u16,
    /// The request's record (when the gateway role parked it in this VM).
    record: Option<Rc<RefCell<RequestRecord>>>,
    /// The request the gateway role parked just before this attempt's filters started.
    just_parked: Option<Rc<Parked>>,
    /// The API the client speaks, for errors of this role's own (OpenAI's until known).
    api: Api,
    /// A stream whose headers wait for its first event: the bytes of it already translated.
    held_stream: Option<usize>,
}

impl Filter for UpstreamFilter {
    const TAKES_PARKED_REQUEST: bool = true;

    /// The one callback that may follow the gateway role's park directly (see `handoff`):
    /// the envoy layer does not forget the parked request before it.
    fn on_request_headers(&mut self, _host: &impl Host, end_of_stream: bool) -> Action {
        self.just_parked = handoff::take_just_parked();
        if end_of_stream {
            return Action::Continue;
        }
        Action::Pause
    }

    fn on_request_body(&mut self, host: &impl Host, size: usize, end: bool) -> Action {
        if !end {
            return Action::Pause;
        }
        let source = match self.source(host, size) {
            Ok(source) => source,
            Err(e) => return self.reply_error(host, &e),
        };
        if let Source::Parked(parked) = &source {
            self.record = Some(parked.record.clone());
        }
        self.api = source.request().operation().api();
        let first = self.record_attempts() == 0;
        let start = self.clock_if_timed(host);
        let action = match self.prepare(host, &source) {
            Ok(up) => {
                let rewrite =
                    request_rewrite(&self.rt, self.exchange.as_ref(), &up, source.body(), first);
                host.set_request_header(":path", Some(&up.path));
                host.set_request_header(":authority", Some(&rewrite.authority));
                if let Some(length) = &rewrite.content_length {
                    host.set_request_header("content-length", Some(length));
                }
                for (name, value) in &up.headers {
                    host.set_request_header(name, Some(value));
                }
                if rewrite.body_changed {
                    host.set_request_body(size, &up.body);
                }
                Action::Continue
            }
            Err(e) => self.reply_error(host, &e),
        };
        self.charge(host, start);
        action
    }

    fn on_response_headers(&mut self, host: &impl Host, end_of_stream: bool) -> Action {
        let start = self.clock_if_timed(host);
        let action = self.response_headers(host, end_of_stream);
        self.charge(host, start);
        action
    }

    fn on_response_body(&mut self, host: &impl Host, size: usize, end: bool) -> Action {
        let start = self.clock_if_timed(host);
        let action = self.response_body(host, size, end);
        self.charge(host, start);
        action
    }
}

impl UpstreamFilter {
    pub fn new(rt: Rc<Runtime>) -> Self {
        UpstreamFilter {
            rt,
            exchange: None,
            plan: BodyPlan::Buffer,
            status: 0,
            record: None,
            just_parked: None,
            api: Api::OpenAiChat,
            held_stream: None,
        }
    }

    fn with_record(&self, update: impl FnOnce(&mut RequestRecord)) {
        if let Some(Ok(mut r)) = self.record.as_ref().map(|r| r.try_borrow_mut()) {
            update(&mut r);
        }
    }

    /// Attempts the record has seen so far (without a record nothing is known: `u32::MAX`).
    fn record_attempts(&self) -> u32 {
        self.record
            .as_ref()
            .and_then(|r| r.try_borrow().ok())
            .map_or(u32::MAX, |r| r.attempts())
    }

    /// The clock, for a request whose time inside the filter is measured.
    fn clock_if_timed(&self, host: &impl Host) -> Option<u64> {
        let timed = self
            .record
            .as_ref()
            .and_then(|r| r.try_borrow().ok())
            .is_some_and(|r| r.is_timed());
        timed.then(|| host.now_ns())
    }

    /// Adds the time since `start` (when measured) to the request's filter overhead.
    fn charge(&self, host: &impl Host, start: Option<u64>) {
        if let Some(start) = start {
            let elapsed = host.now_ns().saturating_sub(start);
            self.with_record(|r| r.add_overhead(elapsed));
        }
    }

    /// The provider's status, asked of Envoy once.
    fn provider_status(&mut self, host: &impl Host) -> u16 {
        if self.status == 0 {
            self.status = host
                .response_header(":status")
                .and_then(|s| s.parse().ok())
                .unwrap_or(502);
        }
        self.status
    }

    /// The attempt's answer, as the client would see it (`client_status`).
    fn answered(&self, usage: Option<Usage>, client_status: u16, complete: bool) {
        let provider_status = self.status;
        self.with_record(|r| {
            if (200..300).contains(&client_status) {
                r.attempt_answered(usage, complete);
            } else {
                r.attempt_failed(ErrorType::of_answer(provider_status, client_status));
            }
        });
    }

    /// This attempt's request: the one the gateway role parked just before (first attempts),
    /// else the one the handoff header names (clearing the headers earlier attempts added),
    /// else (roles in different VMs) the body, parsed again here.
    fn source(&mut self, host: &impl Host, body_size: usize) -> Result<Source, ApiError> {
        if let Some(parked) = self.just_parked.take() {
            if parked.body.len() == body_size {
                return Ok(Source::Parked(parked));
            }
            log::warn!("switchboard: the request parked last is not this attempt's");
        }
        let header = host.request_header(HANDOFF_HEADER).unwrap_or_default();
        let (operation, parked) = handoff::find(&header)
            .ok_or_else(|| ApiError::server("the request did not pass the gateway role"))?;
        if let Some(parked) = parked {
            let added = parked
                .attempt_headers
                .try_borrow_mut()
                .map(|mut names| std::mem::take(&mut *names))
                .unwrap_or_default();
            for name in added {
                host.set_request_header(&name, None);
            }
            return Ok(Source::Parked(parked));
        }
        let body = host.request_body(body_size);
        let request = parse_request(operation, &body)?;
        Ok(Source::Parsed {
            request: Box::new(request),
            body,
            request_id: host.request_header("x-request-id").unwrap_or_default(),
        })
    }

    /// The deployment this attempt goes to: the model's only one, or the one whose endpoint
    /// Envoy picked (its metadata).
    fn deployment(&self, host: &impl Host, source: &Source) -> Result<usize, ApiError> {
        if let Some(sole) = source.sole_deployment(&self.rt) {
            return Ok(sole);
        }
        let id = host
            .property(&DEPLOYMENT_PROPERTY)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .ok_or_else(|| {
                ApiError::server("the chosen endpoint carries no switchboard deployment")
            })?;
        self.rt
            .deployment_index(&id)
            .map(|(index, _)| index)
            .ok_or_else(|| ApiError::server(format!("no deployment `{id}` in this configuration")))
    }

    /// When the attempt is sent, in Unix ms: the request's arrival, unless the provider
    /// signs the time (then the clock, read once more: a host call the others need not pay).
    fn attempt_time_ms(&self, host: &impl Host, source: &Source, deployment: usize) -> u64 {
        let arrived = match source {
            Source::Parked(p) if !self.rt.signs_with_time(deployment) => {
                p.record.try_borrow().ok().map(|r| r.started_ns())
            }
            _ => None,
        };
        arrived.unwrap_or_else(|| host.now_ns()) / 1_000_000
    }

    fn prepare(
        &mut self,
        host: &impl Host,
        source: &Source,
    ) -> Result<switchboard_core::providers::UpstreamRequest, ApiError> {
        let deployment = self.deployment(host, source)?;
        self.with_record(|r| r.begin_attempt(deployment));
        let (exchange, upstream) = Exchange::begin(
            &self.rt,
            deployment,
            source.request(),
            source.body(),
            source.request_id(),
            self.attempt_time_ms(host, source, deployment),
        )
        .inspect_err(|_| self.with_record(|r| r.attempt_failed(ErrorType::NotSent)))?;
        if let Source::Parked(parked) = source {
            if let Ok(mut added) = parked.attempt_headers.try_borrow_mut() {
                added.extend(upstream.headers.iter().map(|(name, _)| name.clone()));
            }
        }
        self.exchange = Some(exchange);
        Ok(upstream)
    }

    fn reply_error(&self, host: &impl Host, err: &ApiError) -> Action {
        host.send_response(
            err.status,
            &[
                ("content-type", "application/json"),
                (TRANSLATED_HEADER, "1"),
            ],
            &inputs::error_body(self.api, err),
        );
        Action::Pause
    }

    fn response_headers(&mut self, host: &impl Host, end_of_stream: bool) -> Action {
        let Some(stream) = self.exchange.as_ref().map(Exchange::is_stream) else {
            return Action::Continue;
        };
        if self.record.is_none() {
            // No shared record (the roles run in different VMs): tell the gateway role by header.
            host.set_response_header(TRANSLATED_HEADER, Some("1"));
        }
        if let Some(dropped) = self.exchange.as_ref().and_then(Exchange::dropped_tools) {
            host.set_response_header(DROPPED_TOOLS_HEADER, Some(&dropped));
        }
        if end_of_stream {
            return self.bodiless_answer(host);
        }
        // A JSON answer's status waits for its body, which tells a success by itself.
        if stream {
            let status = self.provider_status(host);
            if let Some(exchange) = self.exchange.as_mut() {
                self.plan = exchange.response_headers(&self.rt, status);
            }
        }
        match self.plan {
            // A stream's headers wait for its first event: a stream that fails before it (empty,
            // broken, an error event) is still an error answer the router can fall back from.
            BodyPlan::Stream => {
                self.held_stream = Some(0);
                Action::Pause
            }
            // Headers wait for the translated body: its status and length may change.
            BodyPlan::Buffer | BodyPlan::Discard => Action::Pause,
        }
    }

    /// An answer that ends with its headers (no body at all): a success without content is
    /// invalid, and an error without a body still needs the client API's error body. Both are
    /// answered here, before the router sees the status, so an invalid success falls back.
    fn bodiless_answer(&mut self, host: &impl Host) -> Action {
        let status = self.provider_status(host);
        let Some(exchange) = self.exchange.as_mut() else {
            return Action::Continue;
        };
        let answer = exchange.buffered(&self.rt, status, b"");
        let usage = exchange.usage();
        self.answered(usage, answer.status, true);
        let bodiless = Bodiless {
            body: answer.body.unwrap_or_default(),
            retry_after: answer.retry_after,
        };
        self.with_record(|r| r.answer_without_body(answer.status, bodiless));
        // The router reads the status: an empty success becomes a 502 it falls back from.
        if answer.status != status {
            host.set_response_header(":status", Some(&answer.status.to_string()));
        }
        Action::Continue
    }

    fn response_body(&mut self, host: &impl Host, body_size: usize, end_of_stream: bool) -> Action {
        let Some(mut exchange) = self.exchange.take() else {
            return Action::Continue;
        };
        let action = match self.plan {
            BodyPlan::Stream => self.stream_body(host, &mut exchange, body_size, end_of_stream),
            BodyPlan::Buffer | BodyPlan::Discard => {
                self.buffered_body(host, &mut exchange, body_size, end_of_stream)
            }
        };
        self.exchange = Some(exchange);
        action
    }

    fn stream_body(
        &mut self,
        host: &impl Host,
        exchange: &mut Exchange,
        body_size: usize,
        end: bool,
    ) -> Action {
        let buffered = host.response_body(body_size);
        // While the headers are held, Envoy buffers what came so far: only the new part is fed.
        let consumed = self.held_stream.unwrap_or(0);
        let chunk = buffered.get(consumed..).unwrap_or_default();
        let mut out = Vec::with_capacity(chunk.len() + 64);
        exchange.stream_chunk(chunk, &mut out);
        if end {
            exchange.stream_end(&mut out);
        }
        if self.held_stream.is_some() {
            if exchange.failed_before_first_event() {
                return self.failed_stream_start(host, exchange, &out, body_size);
            }
            if out.is_empty() && !end {
                self.held_stream = Some(buffered.len());
                return Action::Pause;
            }
            self.start_stream(host);
        }
        if end {
            self.answered(exchange.usage(), self.status, exchange.stream_complete());
        }
        // Most chunks of a pass-through stream leave as they came: no copy back into Envoy.
        if out != buffered {
            host.set_response_body(body_size, &out);
        }
        Action::Continue
    }

    /// The stream's first event arrived: its headers go out as a stream's.
    fn start_stream(&mut self, host: &impl Host) {
        self.held_stream = None;
        let status = self.status;
        self.with_record(|r| {
            r.answer_started();
            r.answer_translated(status);
        });
        host.set_response_header("content-length", None);
        host.set_response_header("content-type", Some("text/event-stream"));
        host.set_response_header("content-encoding", None);
    }

    /// The stream failed before its first event: the attempt answers as a JSON error instead,
    /// with a status the router can fall back from.
    fn failed_stream_start(
        &mut self,
        host: &impl Host,
        exchange: &Exchange,
        out: &[u8],
        body_size: usize,
    ) -> Action {
        self.held_stream = None;
        let answer = exchange.error_answer(&failed_stream_error(out));
        self.answered(None, answer.status, true);
        self.with_record(|r| r.answer_translated(answer.status));
        self.replace_answer(host, &answer, body_size, false);
        self.plan = BodyPlan::Discard;
        Action::Continue
    }

    fn buffered_body(
        &mut self,
        host: &impl Host,
        exchange: &mut Exchange,
        body_size: usize,
        end_of_stream: bool,
    ) -> Action {
        if self.plan == BodyPlan::Discard {
            // The answer was replaced: the rest of the provider's never reaches the client.
            host.set_response_body(body_size, b"");
            return Action::Continue;
        }
        if let Some(answer) = exchange.oversized(&self.rt, body_size) {
            // The failure's type follows the provider's status.
            self.provider_status(host);
            self.replace_answer(host, &answer, body_size, false);
            self.answered(None, answer.status, true);
            self.with_record(|r| r.answer_translated(answer.status));
            self.plan = BodyPlan::Discard;
            return Action::Continue;
        }
        if !end_of_stream {
            return Action::Pause;
        }
        let body = host.response_body(body_size);
        let success = match self.status {
            0 => exchange.buffered_success(&self.rt, &body),
            _ => None,
        };
        let read_as_success = success.is_some();
        let answer = match success {
            Some(answer) => {
                self.status = answer.status;
                answer
            }
            None => {
                let status = self.provider_status(host);
                exchange.buffered(&self.rt, status, &body)
            }
        };
        self.answered(exchange.usage(), answer.status, true);
        self.with_record(|r| r.answer_translated(answer.status));
        self.replace_answer(host, &answer, body_size, read_as_success);
        Action::Continue
    }

    /// Replaces the buffered answer (status, headers and body) with a translated one, if the
    /// answer has one. A provider's JSON success, parsed here, already has a JSON type and no
    /// encoding.
    fn replace_answer(
        &self,
        host: &impl Host,
        answer: &Answer,
        old_size: usize,
        from_provider_json: bool,
    ) {
        let Some(body) = answer.body.as_deref() else {
            return;
        };
        if answer.status != self.status {
            host.set_response_header(":status", Some(&answer.status.to_string()));
        }
        if let Some(seconds) = answer.retry_after {
            host.set_response_header("retry-after", Some(&seconds.to_string()));
        }
        if !from_provider_json {
            host.set_response_header("content-type", Some("application/json"));
            host.set_response_header("content-encoding", None);
        }
        host.set_response_header("content-length", Some(&body.len().to_string()));
        host.set_response_body(old_size, body);
    }
}

/// Where this attempt's parsed request comes from.
enum Source {
    Parked(Rc<Parked>),
    Parsed {
        request: Box<ParsedRequest>,
        body: Vec<u8>,
        request_id: String,
    },
}

impl Source {
    fn request(&self) -> &ParsedRequest {
        match self {
            Source::Parked(p) => &p.request,
            Source::Parsed { request, .. } => request,
        }
    }

    fn body(&self) -> &[u8] {
        match self {
            Source::Parked(p) => &p.body,
            Source::Parsed { body, .. } => body,
        }
    }

    /// The id answers the provider leaves unnamed are named after.
    fn request_id(&self) -> &str {
        match self {
            Source::Parked(p) => &p.request_id,
            Source::Parsed { request_id, .. } => request_id,
        }
    }

    /// The model's only deployment, when the gateway role resolved the model.
    fn sole_deployment(&self, rt: &Runtime) -> Option<usize> {
        let Source::Parked(parked) = self else {
            return None;
        };
        let model = parked.record.try_borrow().ok()?.model?;
        rt.models.get(model)?.sole_deployment()
    }
}
