//! Gateway role (listener filter, once per request): answers local endpoints and errors,
//! reads the body, picks the model group's cluster; owns the request's record and closes it
//! when the response ends (metrics, `x-switchboard*` answer headers, ledger fields). The
//! decisions are `flow`'s; this moves values between them and the host.

use crate::fleet::{Answer, FleetRequest};
use crate::host::{Action, Filter, Host, SharedData};
use crate::metrics::Stats;
use std::cell::RefCell;
use std::rc::Rc;
use switchboard_core::api::{Api, ApiError, Operation};
use switchboard_core::flow::gateway::{
    canonical_path, classify, decide, envoy_error, get_model, list_models, loggable_request_id,
    too_large, Endpoint,
};
use switchboard_core::flow::handoff;
use switchboard_core::flow::metrics::{MetricsSink, Rejection};
use switchboard_core::flow::record::{
    answer_headers, caller_fields, key_metrics, ledger_fragment, limit_miss, rejection, Bodiless,
    RequestLine, RequestRecord,
};
use switchboard_core::inputs;
use switchboard_core::limits::keys::presented;
use switchboard_core::limits::{settlement, Caller, Reservation};
use switchboard_core::names::{CLUSTER_HEADER, HANDOFF_HEADER, LEDGER_PROPERTY, TRANSLATED_HEADER};
use switchboard_core::runtime::Runtime;

pub struct GatewayFilter {
    rt: Rc<Runtime>,
    stats: Rc<Stats>,
    operation: Option<Operation>,
    handoff: Option<u64>,
    /// The answer did not come from our upstream role (e.g. Envoy's own 503): rewrite it.
    rewrite_error: Option<u16>,
    /// The record of a proxied request, shared with its upstream attempts once parked.
    record: Option<Rc<RefCell<RequestRecord>>>,
    /// Status of the response to the client.
    status: u16,
    /// A 2xx stream whose first chunk is not seen yet.
    awaiting_first_chunk: bool,
    finished: bool,
    caller: Caller,
    /// What an admitted request of a key holds on its limits until the response ends.
    reservation: Option<Reservation>,
    /// What it holds on the fleet's counters (`limits.backend: fleet`).
    fleet: Option<FleetRequest>,
    /// The path, for the ledger.
    line: RequestLine,
    /// The client's `x-request-id`, when read (generic instance), for answers the provider
    /// leaves unnamed.
    request_id: Option<String>,
    /// The request's `content-length`, when read (generic instance): too large is refused
    /// before the body arrives.
    declared_length: Option<u64>,
    /// This filter answered the request itself (its answer needs no rewriting).
    replied_locally: bool,
    /// This request's time inside the filter is measured (`options.overhead_sampling`).
    timed: bool,
}

thread_local! {
    /// Proxied requests this worker has seen, to time one in `overhead_sampling`.
    static REQUESTS_SEEN: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Whether to measure the next request's time inside the filter.
fn sample_overhead(every: u32) -> bool {
    REQUESTS_SEEN.with(|seen| {
        let n = seen.get();
        seen.set(n.wrapping_add(1));
        n % every.max(1) == 0
    })
}

impl Filter for GatewayFilter {
    fn on_request_headers(&mut self, host: &impl Host, end_of_stream: bool) -> Action {
        // The request's start: its duration needs it whether or not its overhead is timed.
        let start = host.now_ns();
        let action = self.request_headers(host, end_of_stream, start);
        self.charge(host, Some(start));
        action
    }

    fn on_request_body(&mut self, host: &impl Host, size: usize, end: bool) -> Action {
        let start = self.clock_if_timed(host);
        let action = self.request_body(host, size, end);
        self.charge(host, start);
        action
    }

    fn on_response_headers(&mut self, host: &impl Host, end_of_stream: bool) -> Action {
        let start = self.clock_if_timed(host);
        let action = self.response_headers(host, end_of_stream);
        if end_of_stream {
            self.finish(host, start);
        }
        self.charge(host, start);
        action
    }

    fn on_response_body(&mut self, host: &impl Host, size: usize, end: bool) -> Action {
        let first_chunk = self.awaiting_first_chunk && size > 0;
        if !(first_chunk || end || self.rewrite_error.is_some()) {
            // A chunk passing through: nothing to do, nothing worth a clock read.
            return Action::Continue;
        }
        let start = self.clock_if_timed(host);
        if first_chunk {
            // Time to first token is measured on every stream, timed or not.
            let now = start.unwrap_or_else(|| host.now_ns());
            self.awaiting_first_chunk = false;
            if let Some(Ok(mut r)) = self.record.as_ref().map(|r| r.try_borrow_mut()) {
                r.first_chunk(now);
            }
        }
        let action = self.response_body(host, size, end);
        if end {
            self.finish(host, start);
        }
        self.charge(host, start);
        action
    }

    fn on_log(&mut self, host: &impl Host) {
        // The response never ended (the client went away): still account for the request.
        if !self.finished {
            self.finish(host, None);
        }
        if let Some(id) = self.handoff.take() {
            handoff::release(id);
        }
    }
}

impl GatewayFilter {
    pub fn new(rt: Rc<Runtime>, stats: Rc<Stats>) -> Self {
        GatewayFilter {
            rt,
            stats,
            operation: None,
            handoff: None,
            rewrite_error: None,
            record: None,
            status: 0,
            awaiting_first_chunk: false,
            finished: false,
            caller: Caller::Anonymous,
            reservation: None,
            fleet: None,
            line: RequestLine::default(),
            request_id: None,
            declared_length: None,
            replied_locally: false,
            timed: false,
        }
    }

    /// The clock, for a request whose time inside the filter is measured.
    fn clock_if_timed(&self, host: &impl Host) -> Option<u64> {
        self.timed.then(|| host.now_ns())
    }

    /// Adds the time since `start` (when measured) to the request's filter overhead.
    fn charge(&self, host: &impl Host, start: Option<u64>) {
        let (Some(start), false, Some(record)) = (start, self.finished, &self.record) else {
            return;
        };
        let elapsed = host.now_ns().saturating_sub(start);
        if let Ok(mut r) = record.try_borrow_mut() {
            r.add_overhead(elapsed);
        }
    }

    /// Closes the request once: settles its key's reservation, metrics from its record (and
    /// its key's), then its ledger fields, who called included, as filter state for the HCM
    /// access log (which Envoy 1.40 writes after the last response callback and after `on_log`).
    fn finish(&mut self, host: &impl Host, callback_start: Option<u64>) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        // One clock read ends the request: its duration, its overhead and its limits' clock.
        let now = host.now_ns();
        let now_ms = now / 1_000_000;
        let callback_start = callback_start.unwrap_or(now);
        // First, whatever else fails: a reservation must never outlive its request.
        self.settle(host, now_ms);
        let mut sink = self.stats.sink(host);
        let finished = self.record.clone().and_then(|record| {
            let mut r = record.try_borrow_mut().ok()?;
            r.add_overhead(now.saturating_sub(callback_start));
            let summary = r.finish(&self.rt, self.status, now, &mut sink);
            Some((summary, r.model))
        });
        let remaining = match (&finished, self.caller, self.operation) {
            (Some((summary, model)), Caller::Key(key), Some(op)) => key_metrics(
                &self.rt,
                &SharedData(host),
                key,
                op,
                self.status,
                summary,
                *model,
                now_ms,
                &mut sink,
            ),
            _ => Vec::new(),
        };
        if !self.rt.options.writes_ledger() {
            return;
        }
        let caller = caller_fields(&self.rt.limits, self.caller, &remaining);
        let summary = finished.as_ref().map(|(summary, _)| summary);
        let fragment = ledger_fragment(&self.line, summary, &caller);
        host.set_property(&[LEDGER_PROPERTY], fragment.as_bytes());
    }

    /// Ends the request's hold on its key's limits, with what the record says it used.
    fn settle(&mut self, host: &impl Host, now_ms: u64) {
        let Some(reservation) = self.reservation.take() else {
            return;
        };
        let (usage, cost) = self
            .record
            .as_ref()
            .and_then(|r| r.try_borrow().ok().map(|r| r.usage_and_cost(&self.rt)))
            .unwrap_or((None, None));
        let outcome = settlement(&reservation, usage, cost, self.status);
        self.rt
            .limits
            .settle(&SharedData(host), &reservation, outcome, now_ms);
        if let (Some(fleet), Some(op)) = (self.fleet.take(), self.operation) {
            let key = fleet.key();
            let model = self
                .record
                .as_ref()
                .and_then(|r| r.try_borrow().ok()?.model);
            let missed = fleet.settle(host, &self.rt.limits, outcome);
            let mut sink = self.stats.sink(host);
            for stage in missed {
                sink.add(limit_miss(op, stage, key, model), 1);
            }
        }
    }

    fn reply_json(&mut self, host: &impl Host, status: u16, body: &[u8]) -> Action {
        self.replied_locally = true;
        self.status = status;
        host.send_response(status, &[("content-type", "application/json")], body);
        Action::Pause
    }

    /// The API the client speaks (OpenAI chat until the endpoint is known).
    fn api(&self) -> Api {
        self.operation.map_or(Api::OpenAiChat, Operation::api)
    }

    fn reply_error(&mut self, host: &impl Host, err: &ApiError) -> Action {
        self.replied_locally = true;
        self.status = err.status;
        let retry_after = err.retry_after.map(|s| s.to_string());
        let mut headers = vec![("content-type", "application/json")];
        if let Some(r) = retry_after.as_deref() {
            headers.push(("retry-after", r));
        }
        host.send_response(err.status, &headers, &inputs::error_body(self.api(), err));
        Action::Pause
    }

    /// What the request asks for, and the key headers (authorization, x-api-key, api-key).
    /// An instance the route gave one endpoint reads nothing but the key, and that only when
    /// keys matter: every value read from Envoy costs a nested call into the VM.
    fn request_line(
        &mut self,
        host: &impl Host,
    ) -> Result<(Endpoint, [Option<String>; 3]), ApiError> {
        if let Some(op) = self.rt.endpoint {
            self.line.path = canonical_path(op).to_owned();
            return Ok((Endpoint::Proxy(op), self.key_headers(host)));
        }
        // One host call for every header: the request line, the key and the declared length.
        // The key headers never reach a provider (the route removes them), nor do client-sent
        // `x-switchboard-*` headers (the strip filter before this one removes them).
        let mut key = [None, None, None];
        let mut method = String::new();
        for (name, value) in host.request_headers() {
            match name.as_str() {
                ":method" => method = value,
                ":path" => self.line.path = value,
                "x-request-id" => {
                    let (id, cleaned) = loggable_request_id(value);
                    if cleaned {
                        host.set_request_header("x-request-id", Some(&id));
                    }
                    self.request_id = Some(id);
                }
                "content-length" => self.declared_length = value.parse::<u64>().ok(),
                "authorization" => key[0] = Some(value),
                "x-api-key" => key[1] = Some(value),
                "api-key" => key[2] = Some(value),
                _ => {}
            }
        }
        Ok((classify(&method, &self.line.path)?, key))
    }

    /// The key headers, read one by one (most clients send `authorization`).
    fn key_headers(&self, host: &impl Host) -> [Option<String>; 3] {
        if !self.rt.limits.reads_keys() {
            return [None, None, None];
        }
        let authorization = host.request_header("authorization");
        if authorization.is_some() {
            return [authorization, None, None];
        }
        let x_api_key = host.request_header("x-api-key");
        let api_key = match x_api_key {
            Some(_) => None,
            None => host.request_header("api-key"),
        };
        [None, x_api_key, api_key]
    }

    fn request_headers(&mut self, host: &impl Host, end_of_stream: bool, start_ns: u64) -> Action {
        let (endpoint, key) = match self.request_line(host) {
            Ok(line) => line,
            Err(e) => return self.reply_error(host, &e),
        };
        if let Endpoint::Proxy(op) = endpoint {
            self.operation = Some(op);
        }
        // Health checks need no key; everything else does (unless the gateway is open).
        if endpoint != Endpoint::Health {
            let [authorization, x_api_key, api_key] = key;
            let presented = presented(
                authorization.as_deref(),
                x_api_key.as_deref(),
                api_key.as_deref(),
            );
            match self
                .rt
                .limits
                .authenticate(&presented, start_ns / 1_000_000)
            {
                Ok(caller) => self.caller = caller,
                Err(e) => {
                    if let Some(op) = self.operation {
                        let series = rejection(op, Rejection::InvalidKey, None, None);
                        self.stats.sink(host).add(series, 1);
                    }
                    return self.reply_error(host, &e);
                }
            }
        }
        match endpoint {
            Endpoint::Health => self.reply_json(host, 200, b"{\"status\":\"ok\"}"),
            Endpoint::ListModels => {
                let body = list_models(&self.rt, self.caller);
                self.reply_json(host, 200, &body)
            }
            Endpoint::GetModel(id) => match get_model(&self.rt, self.caller, &id) {
                Ok(body) => self.reply_json(host, 200, &body),
                Err(e) => self.reply_error(host, &e),
            },
            Endpoint::Proxy(op) => {
                self.timed = sample_overhead(self.rt.options.overhead_sampling.get());
                let record = RequestRecord::new(op, start_ns, self.timed);
                self.record = Some(Rc::new(RefCell::new(record)));
                if end_of_stream {
                    let empty = ApiError::invalid("The request body is empty; send a JSON object.");
                    return self.reply_error(host, &empty);
                }
                let limit = u64::from(self.rt.options.max_request_bytes);
                if self.declared_length.is_some_and(|n| n > limit) {
                    return self.reply_error(host, &too_large(self.rt.options.max_request_bytes));
                }
                // Wait for the body: the model, hence the cluster, is in it.
                Action::Pause
            }
        }
    }

    fn request_body(&mut self, host: &impl Host, body_size: usize, end_of_stream: bool) -> Action {
        let Some(op) = self.operation else {
            return Action::Continue;
        };
        let limit = self.rt.options.max_request_bytes;
        if body_size > limit as usize {
            return self.reply_error(host, &too_large(limit));
        }
        if !end_of_stream {
            return Action::Pause;
        }
        let body = host.request_body(body_size);
        let Some(record) = self.record.clone() else {
            return self.reply_error(host, &ApiError::server("request record missing"));
        };
        let rt = self.rt.clone();
        let now_ms = host.now_ns() / 1_000_000;
        let admitted = match decide(&rt, op, self.caller, &body, &SharedData(host), now_ms) {
            Ok(admitted) => admitted,
            Err(refused) => {
                if let Ok(mut r) = record.try_borrow_mut() {
                    r.model = refused.model;
                }
                if let Some(series) = refused.rejection {
                    self.stats.sink(host).add(series, 1);
                }
                return self.reply_error(host, &refused.error);
            }
        };
        if let Ok(mut r) = record.try_borrow_mut() {
            r.model = admitted.model;
            r.stream = admitted.request.is_stream();
        }
        self.reservation = admitted.reservation;
        if let Some(answer) = admitted.local_answer {
            return self.reply_json(host, 200, &answer);
        }
        if let (Some(r), Some(_)) = (&self.reservation, &rt.limits.fleet) {
            self.fleet = FleetRequest::reserve(host, &rt.limits, r.key, r.estimate, now_ms);
        }
        host.set_request_header(CLUSTER_HEADER, Some(admitted.cluster));
        let (id, header) = handoff::park(admitted.request, body, self.request_id.take(), record);
        if self.fleet.is_some() {
            // The ratelimit filters call the service before the router: the first attempt no
            // longer starts inside this callback, and other requests' may start first. It
            // finds its request by the handoff header.
            handoff::forget_just_parked();
        }
        self.handoff = Some(id);
        host.set_request_header(HANDOFF_HEADER, Some(&header));
        Action::Continue
    }

    fn response_headers(&mut self, host: &impl Host, end_of_stream: bool) -> Action {
        if self.replied_locally {
            // `status` is the one this filter sent.
            return Action::Continue;
        }
        let translated = self
            .record
            .as_ref()
            .and_then(|r| r.try_borrow().ok()?.translated_status());
        if let Some(status) = translated {
            // The upstream role's answer: it knows the status, no need to ask Envoy.
            self.status = status;
            let bodiless = self
                .record
                .as_ref()
                .and_then(|r| r.try_borrow_mut().ok()?.take_bodiless());
            if let (true, Some(answer)) = (end_of_stream, bodiless) {
                return self.reply_bodiless(host, status, &answer);
            }
            self.answer_headers(host, status);
            return Action::Continue;
        }
        let status = host
            .response_header(":status")
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or(0);
        self.status = status;
        // The upstream role's own refusal (it could not prepare the attempt) is marked.
        if host.response_header(TRANSLATED_HEADER).is_some() {
            host.set_response_header(TRANSLATED_HEADER, None);
            return Action::Continue;
        }
        if let Some(action) = self.fleet_reply(host, status) {
            return action;
        }
        if status < 400 || end_of_stream {
            return Action::Continue;
        }
        // Envoy's own error (no healthy upstream, connect failure, timeout): make it OpenAI's.
        self.rewrite_error = Some(status);
        host.set_response_header("content-length", None);
        host.set_response_header("content-type", Some("application/json"));
        Action::Continue
    }

    /// A ratelimit filter's local reply (fleet backend) answered in the client API's shape.
    fn fleet_reply(&mut self, host: &impl Host, status: u16) -> Option<Action> {
        let fleet = self.fleet.as_mut()?;
        let now_ms = host.now_ns() / 1_000_000;
        match fleet.local_reply(host, &self.rt.limits, status, now_ms)? {
            Answer::Refused(refusal) => {
                if let (Some(op), Some(limit)) = (self.operation, refusal.limit) {
                    let model = self
                        .record
                        .as_ref()
                        .and_then(|r| r.try_borrow().ok()?.model);
                    let series = rejection(op, Rejection::Limit(limit), refusal.subject, model);
                    self.stats.sink(host).add(series, 1);
                }
                Some(self.reply_error(host, &refusal.error))
            }
            Answer::Failed(error) => Some(self.reply_error(host, &error)),
        }
    }

    /// Gives an answer that came without a body the body the upstream role translated for it
    /// (Envoy offers no body to write to: the answer is replaced by a local reply).
    fn reply_bodiless(&mut self, host: &impl Host, status: u16, answer: &Bodiless) -> Action {
        self.replied_locally = true;
        let summary = self
            .record
            .as_ref()
            .and_then(|r| Some(answer_headers(&self.rt, &*r.try_borrow().ok()?)))
            .unwrap_or_default();
        let retry_after = answer.retry_after.map(|s| s.to_string());
        let mut headers = vec![("content-type", "application/json")];
        headers.extend(retry_after.as_deref().map(|r| ("retry-after", r)));
        headers.extend(summary.iter().map(|(n, v)| (*n, v.as_str())));
        host.send_response(status, &headers, &answer.body);
        Action::Pause
    }

    /// Which deployment answered (and, for JSON, its usage and cost), for the client.
    fn answer_headers(&mut self, host: &impl Host, status: u16) {
        let Some(record) = &self.record else {
            return;
        };
        let headers = match record.try_borrow() {
            Ok(r) => {
                self.awaiting_first_chunk = r.stream && (200..300).contains(&status);
                answer_headers(&self.rt, &r)
            }
            Err(_) => return,
        };
        for (name, value) in headers {
            host.set_response_header(name, Some(&value));
        }
    }

    fn response_body(&mut self, host: &impl Host, body_size: usize, end_of_stream: bool) -> Action {
        let Some(status) = self.rewrite_error else {
            return Action::Continue;
        };
        if !end_of_stream {
            return Action::Pause;
        }
        let original = host.response_body(body_size);
        let err = envoy_error(
            status,
            &String::from_utf8_lossy(&original),
            self.rt.options.max_request_bytes,
        );
        host.set_response_body(body_size, &inputs::error_body(self.api(), &err));
        Action::Continue
    }
}
