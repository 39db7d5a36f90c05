//! Upstream role (cluster filter, once per attempt): rewrites the request for the provider
//! Envoy picked, and translates its answer back; tells the request's record how the attempt
//! went (deployment, failure type, usage) and how long its callbacks took.

use super::handoff::{self, Parked};
use super::{now_ns, CLUSTER_HEADER, DEPLOYMENT_PROPERTY, HANDOFF_HEADER, TRANSLATED_HEADER};
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

    /// The request the gateway role parsed, or (roles in different VMs) read and parsed again
    /// here. Clears the headers earlier attempts of this request added.
    fn request(&self, headers: &Headers, body_size: usize) -> Result<Source, GatewayError> {
        let (operation, parked) = handoff::find(header(headers, HANDOFF_HEADER).unwrap_or(""))
            .ok_or_else(|| GatewayError::server("the request did not pass the gateway role"))?;
        if let Some(parked) = parked {
            for name in parked.attempt_headers.borrow_mut().drain(..) {
                self.set_http_request_header(&name, None);
            }
            return Ok(Source::Parked(parked));
        }
        let body = self.get_http_request_body(0, body_size).unwrap_or_default();
        let request = match operation {
            Operation::ChatCompletions => ParsedRequest::Chat(Box::new(parse_body(&body)?)),
            Operation::Embeddings => ParsedRequest::Embeddings(parse_body(&body)?),
        };
        Ok(Source::Parsed {
            request: Box::new(request),
            body,
            request_id: header(headers, "x-request-id").unwrap_or("").to_owned(),
        })
    }

    /// The deployment this attempt goes to: the model's only one, or the one whose endpoint
    /// Envoy picked (its metadata).
    fn deployment(&self, source: &Source) -> Result<usize, GatewayError> {
        if let Some(sole) = source.sole_deployment(&self.gw) {
            return Ok(sole);
        }
        let id = self
            .get_property(DEPLOYMENT_PROPERTY.to_vec())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .ok_or_else(|| {
                GatewayError::server("the chosen endpoint carries no switchboard deployment")
            })?;
        self.gw
            .deployment_index(&id)
            .map(|(index, _)| index)
            .ok_or_else(|| {
                GatewayError::server(format!("no deployment `{id}` in this configuration"))
            })
    }

    fn prepare(
        &mut self,
        headers: &Headers,
        body_size: usize,
        now_ms: u64,
    ) -> Result<(Source, UpstreamRequest), GatewayError> {
        let source = self.request(headers, body_size)?;
        let deployment = self.deployment(&source)?;
        if let Source::Parked(parked) = &source {
            self.record = Some(parked.record.clone());
            self.with_record(|r| r.begin_attempt(deployment));
        }
        let (exchange, upstream) = Exchange::begin(
            &self.gw,
            deployment,
            source.request(),
            source.body(),
            source.request_id(),
            now_ms,
        )
        .inspect_err(|_| self.with_record(|r| r.attempt_failed(ErrorType::NotSent)))?;
        if let Source::Parked(parked) = &source {
            let mut added = parked.attempt_headers.borrow_mut();
            added.extend(upstream.headers.iter().map(|(name, _)| name.clone()));
        }
        self.exchange = Some(exchange);
        Ok((source, upstream))
    }

    /// Rewrites the request for the provider. `headers` are the request's as this attempt
    /// found them: only what differs is written (every header is a host call).
    fn send_upstream(
        &self,
        headers: &Headers,
        up: &UpstreamRequest,
        client_body: &[u8],
        body_size: usize,
        authority: &str,
    ) {
        for (name, _) in headers {
            let ours = up.headers.iter().any(|(n, _)| n == name);
            if !ours && (name == CLUSTER_HEADER || DROPPED_REQUEST_HEADERS.contains(&name.as_str()))
            {
                self.set_http_request_header(name, None);
            }
        }
        let length = up.body.len().to_string();
        for (name, value) in [
            (":path", up.path.as_str()),
            (":authority", authority),
            ("content-type", "application/json"),
            ("content-length", length.as_str()),
        ] {
            if header(headers, name) != Some(value) {
                self.set_http_request_header(name, Some(value));
            }
        }
        for (name, value) in &up.headers {
            self.set_http_request_header(name, Some(value));
        }
        if up.body != client_body {
            self.set_http_request_body(0, body_size, &up.body);
        }
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

    /// The client request's `x-request-id` (ids of answers the provider leaves unnamed).
    fn request_id(&self) -> &str {
        match self {
            Source::Parked(p) => &p.request_id,
            Source::Parsed { request_id, .. } => request_id,
        }
    }

    /// The model's only deployment, when the gateway role resolved the model.
    fn sole_deployment(&self, gw: &Gateway) -> Option<usize> {
        let Source::Parked(parked) = self else {
            return None;
        };
        let model = parked.record.try_borrow().ok()?.model?;
        gw.models.get(model)?.sole_deployment()
    }
}

/// The request's headers, as one host call returns them.
type Headers = Vec<(String, String)>;

/// A header's value (names from Envoy are lower case).
fn header<'h>(headers: &'h Headers, name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
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
        let action = self.request_body(body_size, end_of_stream, start);
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
    fn request_body(&mut self, body_size: usize, end_of_stream: bool, now_ns: u64) -> Action {
        if !end_of_stream {
            return Action::Pause;
        }
        // One host call tells the handoff id, what to drop and what is already right.
        let headers = self.get_http_request_headers();
        match self.prepare(&headers, body_size, now_ns / 1_000_000) {
            Ok((source, up)) => {
                let authority = self
                    .exchange
                    .as_ref()
                    .and_then(|ex| self.gw.deployments.get(ex.deployment))
                    .and_then(|d| self.gw.provider_of(d))
                    .map(|p| p.provider.endpoint().authority())
                    .unwrap_or_default();
                self.send_upstream(&headers, &up, source.body(), body_size, &authority);
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
        if self.record.is_none() {
            // No shared record (the roles run in different VMs): tell the gateway role by header.
            self.set_http_response_header(TRANSLATED_HEADER, Some("1"));
        }
        if end_of_stream {
            self.answered(None, self.status, true);
        }
        let status = self.status;
        match self.plan {
            BodyPlan::Stream => {
                self.with_record(|r| {
                    r.answer_started();
                    r.answer_translated(status);
                });
                self.set_http_response_header("content-length", None);
                self.set_http_response_header("content-type", Some("text/event-stream"));
                self.set_http_response_header("content-encoding", None);
                Action::Continue
            }
            BodyPlan::Buffer if end_of_stream => {
                self.with_record(|r| r.answer_translated(status));
                Action::Continue
            }
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
            self.with_record(|r| r.answer_translated(err.status));
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
        self.with_record(|r| r.answer_translated(answer.status));
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
