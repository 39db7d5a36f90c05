//! Upstream role (cluster filter, once per attempt): rewrites the request for the provider
//! Envoy picked, and translates its answer back; tells the request's record how the attempt
//! went (deployment, failure type, usage) and how long its callbacks took.

use super::handoff::{self, Parked};
use super::{
    now_ms, now_ns, CLUSTER_HEADER, DEPLOYMENT_PROPERTY, HANDOFF_HEADER, TRANSLATED_HEADER,
};
use crate::api::GatewayError;
use crate::config::Gateway;
use crate::flow::gateway::parse_body;
use crate::flow::metrics::ErrorType;
use crate::flow::record::RequestRecord;
use crate::flow::upstream::{BodyPlan, Exchange};
use crate::flow::ParsedRequest;
use crate::providers::{Operation, UpstreamRequest};
use crate::usage::Usage;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use std::cell::RefCell;
use std::rc::Rc;

/// Client headers that must not reach a provider: the client's own credentials (AWS's
/// included: an unsigned security token would change whose request it is) and encodings we
/// could not translate.
const DROPPED_REQUEST_HEADERS: [&str; 8] = [
    "authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "x-amz-security-token",
    "x-amz-date",
    "x-amz-content-sha256",
    "accept-encoding",
];

pub struct UpstreamFilter {
    gw: Rc<Gateway>,
    exchange: Option<Exchange>,
    plan: BodyPlan,
    status: u16,
    /// The request's record (when the gateway role parked it in this VM).
    record: Option<Rc<RefCell<RequestRecord>>>,
}

impl UpstreamFilter {
    pub fn new(gw: Rc<Gateway>) -> Self {
        UpstreamFilter {
            gw,
            exchange: None,
            plan: BodyPlan::Buffer,
            status: 0,
            record: None,
        }
    }

    fn with_record(&self, update: impl FnOnce(&mut RequestRecord)) {
        if let Some(Ok(mut r)) = self.record.as_ref().map(|r| r.try_borrow_mut()) {
            update(&mut r);
        }
    }

    /// Adds the time since `since_ns` to the request's filter overhead.
    fn charge(&self, since_ns: u64) {
        if self.record.is_some() {
            let elapsed = now_ns(self).saturating_sub(since_ns);
            self.with_record(|r| r.add_overhead(elapsed));
        }
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

    /// The request the gateway role parsed, or (roles in different VMs) parsed again here.
    /// Clears the headers earlier attempts of this request added.
    fn request(&self, raw: &[u8]) -> Result<Source, GatewayError> {
        let header = self
            .get_http_request_header(HANDOFF_HEADER)
            .unwrap_or_default();
        let (operation, parked) = handoff::find(&header)
            .ok_or_else(|| GatewayError::server("the request did not pass the gateway role"))?;
        if let Some(parked) = parked {
            for name in parked.attempt_headers.borrow_mut().drain(..) {
                self.set_http_request_header(&name, None);
            }
            return Ok(Source::Parked(parked));
        }
        Ok(Source::Parsed(Box::new(match operation {
            Operation::ChatCompletions => ParsedRequest::Chat(Box::new(parse_body(raw)?)),
            Operation::Embeddings => ParsedRequest::Embeddings(parse_body(raw)?),
        })))
    }

    fn prepare(&mut self, raw: &[u8]) -> Result<UpstreamRequest, GatewayError> {
        let deployment = self
            .get_property(DEPLOYMENT_PROPERTY.to_vec())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .ok_or_else(|| {
                GatewayError::server("the chosen endpoint carries no switchboard deployment")
            })?;
        let source = self.request(raw)?;
        if let Source::Parked(parked) = &source {
            self.record = Some(parked.record.clone());
            if let Some((index, _)) = self.gw.deployment_index(&deployment) {
                self.with_record(|r| r.begin_attempt(index));
            }
        }
        let request_id = match &source {
            Source::Parked(parked) => parked.request_id.clone(),
            Source::Parsed(_) => self
                .get_http_request_header("x-request-id")
                .unwrap_or_default(),
        };
        let (exchange, upstream) = Exchange::begin(
            &self.gw,
            &deployment,
            source.request(),
            raw,
            &request_id,
            now_ms(self),
        )
        .inspect_err(|_| self.with_record(|r| r.attempt_failed(ErrorType::NotSent)))?;
        if let Source::Parked(parked) = &source {
            let mut added = parked.attempt_headers.borrow_mut();
            added.extend(upstream.headers.iter().map(|(name, _)| name.clone()));
        }
        self.exchange = Some(exchange);
        Ok(upstream)
    }

    fn send_upstream(&self, up: &UpstreamRequest, body_size: usize, authority: &str) {
        for (name, _) in self.get_http_request_headers() {
            if name == CLUSTER_HEADER || DROPPED_REQUEST_HEADERS.contains(&name.as_str()) {
                self.set_http_request_header(&name, None);
            }
        }
        self.set_http_request_header(":path", Some(&up.path));
        self.set_http_request_header(":authority", Some(authority));
        self.set_http_request_header("content-type", Some("application/json"));
        self.set_http_request_header("content-length", Some(&up.body.len().to_string()));
        for (name, value) in &up.headers {
            self.set_http_request_header(name, Some(value));
        }
        self.set_http_request_body(0, body_size, &up.body);
    }

    fn reply_error(&self, err: &GatewayError) -> Action {
        self.send_http_response(
            u32::from(err.status),
            vec![
                ("content-type", "application/json"),
                (TRANSLATED_HEADER, "1"),
            ],
            Some(&err.to_json()),
        );
        Action::Pause
    }
}

/// Where this attempt's parsed request comes from.
enum Source {
    Parked(Rc<Parked>),
    Parsed(Box<ParsedRequest>),
}

impl Source {
    fn request(&self) -> &ParsedRequest {
        match self {
            Source::Parked(p) => &p.request,
            Source::Parsed(r) => r,
        }
    }
}

impl Context for UpstreamFilter {}

impl HttpContext for UpstreamFilter {
    fn on_http_request_headers(&mut self, _headers: usize, end_of_stream: bool) -> Action {
        if end_of_stream {
            return Action::Continue;
        }
        Action::Pause
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let start = now_ns(self);
        let action = self.request_body(body_size, end_of_stream);
        self.charge(start);
        action
    }

    fn on_http_response_headers(&mut self, _headers: usize, end_of_stream: bool) -> Action {
        let start = now_ns(self);
        let action = self.response_headers(end_of_stream);
        self.charge(start);
        action
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let start = now_ns(self);
        let action = self.response_body(body_size, end_of_stream);
        self.charge(start);
        action
    }
}

impl UpstreamFilter {
    fn request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if !end_of_stream {
            return Action::Pause;
        }
        let raw = self.get_http_request_body(0, body_size).unwrap_or_default();
        match self.prepare(&raw) {
            Ok(up) => {
                let authority = self
                    .exchange
                    .as_ref()
                    .and_then(|ex| self.gw.deployments.get(ex.deployment))
                    .and_then(|d| self.gw.provider_of(d))
                    .map(|p| p.provider.endpoint().authority())
                    .unwrap_or_default();
                self.send_upstream(&up, body_size, &authority);
                Action::Continue
            }
            Err(e) => self.reply_error(&e),
        }
    }

    fn response_headers(&mut self, end_of_stream: bool) -> Action {
        if self.exchange.is_none() {
            return Action::Continue;
        }
        self.status = self
            .get_http_response_header(":status")
            .and_then(|s| s.parse().ok())
            .unwrap_or(502);
        if let Some(exchange) = self.exchange.as_mut() {
            self.plan = exchange.response_headers(&self.gw, self.status);
        }
        self.with_record(RequestRecord::answer_translated);
        if self.record.is_none() {
            // No shared record (the roles run in different VMs): tell the gateway role by header.
            self.set_http_response_header(TRANSLATED_HEADER, Some("1"));
        }
        if end_of_stream {
            self.answered(None, self.status, true);
        }
        match self.plan {
            BodyPlan::Stream => {
                self.with_record(RequestRecord::answer_started);
                self.set_http_response_header("content-length", None);
                self.set_http_response_header("content-type", Some("text/event-stream"));
                self.set_http_response_header("content-encoding", None);
                Action::Continue
            }
            BodyPlan::Buffer if end_of_stream => Action::Continue,
            // Headers wait for the translated body: its status and length may change.
            BodyPlan::Buffer => Action::Pause,
        }
    }

    fn response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(mut exchange) = self.exchange.take() else {
            return Action::Continue;
        };
        let action = match self.plan {
            BodyPlan::Stream => {
                self.stream_body(&mut exchange, body_size, end_of_stream);
                Action::Continue
            }
            BodyPlan::Buffer => self.buffered_body(&mut exchange, body_size, end_of_stream),
        };
        self.exchange = Some(exchange);
        action
    }

    fn stream_body(&self, exchange: &mut Exchange, body_size: usize, end_of_stream: bool) {
        let chunk = self
            .get_http_response_body(0, body_size)
            .unwrap_or_default();
        let mut out = Vec::with_capacity(chunk.len() + 64);
        exchange.stream_chunk(&chunk, &mut out);
        if end_of_stream {
            exchange.stream_end(&mut out);
            self.answered(exchange.usage(), self.status, exchange.stream_complete());
        }
        // Most chunks of a pass-through stream leave as they came: no copy back into Envoy.
        if out != chunk {
            self.set_http_response_body(0, body_size, &out);
        }
    }

    fn buffered_body(
        &self,
        exchange: &mut Exchange,
        body_size: usize,
        end_of_stream: bool,
    ) -> Action {
        let limit = self.gw.options.max_response_bytes as usize;
        if body_size > limit {
            let err = GatewayError::upstream(format!(
                "the provider's answer is larger than this gateway's limit of {limit} bytes"
            ));
            self.replace_answer(err.status, None, &err.to_json(), body_size);
            self.answered(None, err.status, true);
            return Action::Continue;
        }
        if !end_of_stream {
            return Action::Pause;
        }
        let body = self
            .get_http_response_body(0, body_size)
            .unwrap_or_default();
        let answer = exchange.buffered(&self.gw, self.status, &body);
        self.answered(exchange.usage(), answer.status, true);
        if let Some(new_body) = answer.body {
            self.replace_answer(answer.status, answer.retry_after, &new_body, body_size);
        }
        Action::Continue
    }

    /// Replaces the buffered answer (status, headers and body) with a translated one.
    fn replace_answer(&self, status: u16, retry_after: Option<u64>, body: &[u8], old_size: usize) {
        if status != self.status {
            self.set_http_response_header(":status", Some(&status.to_string()));
        }
        if let Some(seconds) = retry_after {
            self.set_http_response_header("retry-after", Some(&seconds.to_string()));
        }
        self.set_http_response_header("content-type", Some("application/json"));
        self.set_http_response_header("content-encoding", None);
        self.set_http_response_header("content-length", Some(&body.len().to_string()));
        self.set_http_response_body(0, old_size, body);
    }
}
