//! Gateway role (listener filter, once per request): answers local endpoints and errors,
//! reads the body, picks the model group's cluster; owns the request's record and closes it
//! when the response ends (metrics, `x-switchboard-*` answer headers, access-log fields).

use crate::metrics::EnvoyMetrics;
use crate::now_ns;
use crate::shared::SharedData;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use std::cell::RefCell;
use std::rc::Rc;
use switchboard_core::api::ApiError;
use switchboard_core::api::Operation;
use switchboard_core::flow::gateway::{
    admit, canonical_path, check_access, classify, envoy_error, estimate, get_model, list_models,
    too_large, Endpoint,
};
use switchboard_core::flow::handoff;
use switchboard_core::flow::metrics::{
    status_class, Metric, MetricsSink, Rejection, Series, Target,
};
use switchboard_core::flow::record::{
    answer_headers, caller_fields, ledger_fragment, RequestLine, RequestRecord, Summary,
};
use switchboard_core::limits::keys::presented;
use switchboard_core::limits::{settlement, Caller, Reservation, SubjectRef};
use switchboard_core::names::{
    CLUSTER_HEADER, HANDOFF_HEADER, LEDGER_PROPERTY, OWN_HEADER_PREFIX, TRANSLATED_HEADER,
};
use switchboard_core::runtime::Runtime;
use switchboard_core::usage::pricing::Cost;

pub struct GatewayFilter {
    rt: Rc<Runtime>,
    metrics: Rc<EnvoyMetrics>,
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

impl GatewayFilter {
    pub fn new(rt: Rc<Runtime>, metrics: Rc<EnvoyMetrics>) -> Self {
        GatewayFilter {
            rt,
            metrics,
            operation: None,
            handoff: None,
            rewrite_error: None,
            record: None,
            status: 0,
            awaiting_first_chunk: false,
            finished: false,
            caller: Caller::Anonymous,
            reservation: None,
            line: RequestLine::default(),
            request_id: None,
            declared_length: None,
            replied_locally: false,
            timed: false,
        }
    }

    /// The clock, for a request whose time inside the filter is measured.
    fn clock_if_timed(&self) -> Option<u64> {
        self.timed.then(|| now_ns(self))
    }

    /// Adds the time since `start` (when measured) to the request's filter overhead.
    fn charge(&self, start: Option<u64>) {
        let (Some(start), false, Some(record)) = (start, self.finished, &self.record) else {
            return;
        };
        let elapsed = now_ns(self).saturating_sub(start);
        if let Ok(mut r) = record.try_borrow_mut() {
            r.add_overhead(elapsed);
        }
    }

    /// Closes the request once: settles its key's reservation, metrics from its record (and
    /// its key's), then its ledger fields, who called included, as filter state for the HCM
    /// access log (which Envoy 1.40 writes after the last response callback and after `on_log`).
    fn finish(&mut self, callback_start: Option<u64>) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        // One clock read ends the request: its duration, its overhead and its limits' clock.
        let now = now_ns(self);
        let callback_start = callback_start.unwrap_or(now);
        // First, whatever else fails: a reservation must never outlive its request.
        self.settle(now / 1_000_000);
        let finished = self.record.clone().and_then(|record| {
            let mut r = record.try_borrow_mut().ok()?;
            r.add_overhead(now.saturating_sub(callback_start));
            let summary = r.finish(&self.rt, self.status, now, &mut &*self.metrics);
            Some((summary, r.model))
        });
        let remaining = finished
            .as_ref()
            .map(|(summary, model)| self.key_metrics(summary, *model, now / 1_000_000))
            .unwrap_or_default();
        if !self.rt.options.writes_ledger() {
            return;
        }
        let caller = caller_fields(&self.rt.limits, self.caller, &remaining);
        let summary = finished.as_ref().map(|(summary, _)| summary);
        let fragment = ledger_fragment(&self.line, summary, &caller);
        self.set_property(vec![LEDGER_PROPERTY], Some(fragment.as_bytes()));
    }

    /// Ends the request's hold on its key's limits, with what the record says it used.
    fn settle(&mut self, now_ms: u64) {
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
            .settle(&SharedData, &reservation, outcome, now_ms);
    }

    /// The key's requests, spend and remaining budgets (key and team); returns the latter.
    fn key_metrics(
        &self,
        summary: &Summary,
        model: Option<usize>,
        now_ms: u64,
    ) -> Vec<(SubjectRef, u64)> {
        let Caller::Key(key) = self.caller else {
            return Vec::new();
        };
        let Some(op) = self.operation else {
            return Vec::new();
        };
        let limits = &self.rt.limits;
        let mut sink = &*self.metrics;
        let series = |metric, extra, subject| Series {
            metric,
            operation: op.into(),
            target: Target {
                model,
                deployment: None,
            },
            extra,
            subject: Some(subject),
        };
        let me = SubjectRef::Key(key);
        sink.add(
            series(Metric::KeyRequests, status_class(self.status), me),
            1,
        );
        if let Some(cost) = summary.cost {
            sink.add(series(Metric::KeyCost, 0, me), cost.nano_usd());
        }
        let team = limits
            .keys
            .get(key)
            .and_then(|k| k.team)
            .map(SubjectRef::Team);
        let mut remaining = Vec::new();
        for subject in std::iter::once(me).chain(team) {
            if let Some(left) = limits.remaining_budget(&SharedData, subject, now_ms) {
                sink.add(
                    series(Metric::BudgetRemaining, 0, subject),
                    Cost(left).nano_usd(),
                );
                remaining.push((subject, left));
            }
        }
        remaining
    }

    /// Counts a request the gateway refused itself (`model`: once the body named it).
    fn rejected(&self, reason: Rejection, subject: Option<SubjectRef>, model: Option<usize>) {
        let Some(op) = self.operation else {
            return;
        };
        let mut sink = &*self.metrics;
        sink.add(
            Series {
                metric: Metric::KeyRejections,
                operation: op.into(),
                target: Target {
                    model,
                    deployment: None,
                },
                extra: reason.index(),
                subject,
            },
            1,
        );
    }

    fn reply_json(&mut self, status: u16, body: &[u8]) {
        self.replied_locally = true;
        self.status = status;
        self.send_http_response(
            u32::from(status),
            vec![("content-type", "application/json")],
            Some(body),
        );
    }

    fn reply_error(&mut self, err: &ApiError) -> Action {
        self.replied_locally = true;
        self.status = err.status;
        let retry_after = err.retry_after.map(|s| s.to_string());
        let mut headers = vec![("content-type", "application/json")];
        if let Some(r) = retry_after.as_deref() {
            headers.push(("retry-after", r));
        }
        self.send_http_response(u32::from(err.status), headers, Some(&err.to_json()));
        Action::Pause
    }
}

impl Context for GatewayFilter {}

impl HttpContext for GatewayFilter {
    fn on_http_request_headers(&mut self, _headers: usize, end_of_stream: bool) -> Action {
        handoff::forget_just_parked();
        // The request's start: its duration needs it whether or not its overhead is timed.
        let start = now_ns(self);
        let action = self.request_headers(end_of_stream, start);
        self.charge(Some(start));
        action
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        handoff::forget_just_parked();
        let start = self.clock_if_timed();
        let action = self.request_body(body_size, end_of_stream);
        self.charge(start);
        action
    }

    fn on_http_response_headers(&mut self, _headers: usize, end_of_stream: bool) -> Action {
        handoff::forget_just_parked();
        let start = self.clock_if_timed();
        let action = self.response_headers(end_of_stream);
        if end_of_stream {
            self.finish(start);
        }
        self.charge(start);
        action
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        handoff::forget_just_parked();
        let first_chunk = self.awaiting_first_chunk && body_size > 0;
        if !(first_chunk || end_of_stream || self.rewrite_error.is_some()) {
            // A chunk passing through: nothing to do, nothing worth a clock read.
            return Action::Continue;
        }
        let start = self.clock_if_timed();
        if first_chunk {
            // Time to first token is measured on every stream, timed or not.
            let now = start.unwrap_or_else(|| now_ns(self));
            self.awaiting_first_chunk = false;
            if let Some(Ok(mut r)) = self.record.as_ref().map(|r| r.try_borrow_mut()) {
                r.first_chunk(now);
            }
        }
        let action = self.response_body(body_size, end_of_stream);
        if end_of_stream {
            self.finish(start);
        }
        self.charge(start);
        action
    }

    fn on_log(&mut self) {
        handoff::forget_just_parked();
        // The response never ended (the client went away): still account for the request.
        if !self.finished {
            self.finish(None);
        }
        if let Some(id) = self.handoff.take() {
            handoff::release(id);
        }
    }
}

impl GatewayFilter {
    /// What the request asks for, and the key headers (authorization, x-api-key, api-key).
    /// An instance the route gave one endpoint reads nothing but the key, and that only when
    /// keys matter: every value read from Envoy costs a nested call into the VM.
    fn request_line(&mut self) -> Result<(Endpoint, [Option<String>; 3]), ApiError> {
        if let Some(op) = self.rt.endpoint {
            self.line.path = canonical_path(op).to_owned();
            return Ok((Endpoint::Proxy(op), self.key_headers()));
        }
        // One host call for every header: the request line, the key, the declared length, and
        // any `x-switchboard-*` header a client sent, dropped (routing is ours alone). The
        // key headers themselves never reach a provider: the route removes them.
        let mut key = [None, None, None];
        let mut method = String::new();
        for (name, value) in self.get_http_request_headers() {
            match name.as_str() {
                ":method" => method = value,
                ":path" => self.line.path = value,
                "x-request-id" => self.request_id = Some(self.loggable_request_id(value)),
                "content-length" => self.declared_length = value.parse::<u64>().ok(),
                "authorization" => key[0] = Some(value),
                "x-api-key" => key[1] = Some(value),
                "api-key" => key[2] = Some(value),
                own if own.starts_with(OWN_HEADER_PREFIX) => {
                    self.set_http_request_header(own, None)
                }
                _ => {}
            }
        }
        Ok((classify(&method, &self.line.path)?, key))
    }

    /// The key headers, read one by one (most clients send `authorization`).
    fn key_headers(&self) -> [Option<String>; 3] {
        if !self.rt.limits.reads_keys() {
            return [None, None, None];
        }
        let authorization = self.get_http_request_header("authorization");
        if authorization.is_some() {
            return [authorization, None, None];
        }
        let x_api_key = self.get_http_request_header("x-api-key");
        let api_key = match x_api_key {
            Some(_) => None,
            None => self.get_http_request_header("api-key"),
        };
        [None, x_api_key, api_key]
    }

    /// The request id, made safe for the access log's JSON line: it is written there by
    /// Envoy unescaped, so quotes, backslashes and control characters are replaced.
    fn loggable_request_id(&self, id: String) -> String {
        let safe = |c: char| (' '..='~').contains(&c) && c != '"' && c != '\\';
        if id.chars().all(safe) {
            return id;
        }
        let cleaned: String = id.chars().map(|c| if safe(c) { c } else { '_' }).collect();
        self.set_http_request_header("x-request-id", Some(&cleaned));
        cleaned
    }

    fn request_headers(&mut self, end_of_stream: bool, start_ns: u64) -> Action {
        let (endpoint, key) = match self.request_line() {
            Ok(line) => line,
            Err(e) => return self.reply_error(&e),
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
            let caller = self
                .rt
                .limits
                .authenticate(&presented, start_ns / 1_000_000);
            if let Err(e) = caller.map(|c| self.caller = c) {
                self.rejected(Rejection::InvalidKey, None, None);
                return self.reply_error(&e);
            }
        }
        match endpoint {
            Endpoint::Health => {
                self.reply_json(200, b"{\"status\":\"ok\"}");
                Action::Pause
            }
            Endpoint::ListModels => {
                self.reply_json(200, &list_models(&self.rt, self.caller));
                Action::Pause
            }
            Endpoint::GetModel(id) => match get_model(&self.rt, self.caller, &id) {
                Ok(body) => {
                    self.reply_json(200, &body);
                    Action::Pause
                }
                Err(e) => self.reply_error(&e),
            },
            Endpoint::Proxy(op) => {
                self.timed = sample_overhead(self.rt.options.overhead_sampling.get());
                let record = RequestRecord::new(op, start_ns, self.timed);
                self.record = Some(Rc::new(RefCell::new(record)));
                if end_of_stream {
                    return self.reply_error(&ApiError::invalid(
                        "The request body is empty; send a JSON object.",
                    ));
                }
                let limit = u64::from(self.rt.options.max_request_bytes);
                if self.declared_length.is_some_and(|n| n > limit) {
                    return self.reply_error(&too_large(self.rt.options.max_request_bytes));
                }
                // Wait for the body: the model, hence the cluster, is in it.
                Action::Pause
            }
        }
    }

    fn request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(op) = self.operation else {
            return Action::Continue;
        };
        let limit = self.rt.options.max_request_bytes;
        if body_size > limit as usize {
            return self.reply_error(&too_large(limit));
        }
        if !end_of_stream {
            return Action::Pause;
        }
        let body = self.get_http_request_body(0, body_size).unwrap_or_default();
        let admission = match admit(&self.rt, op, &body) {
            Ok(a) => a,
            Err(e) => return self.reply_error(&e),
        };
        let Some(record) = self.record.clone() else {
            return self.reply_error(&ApiError::server("request record missing"));
        };
        if let Ok(mut r) = record.try_borrow_mut() {
            r.model = self.rt.model_index(admission.request.model());
            r.stream = admission.request.is_stream();
        }
        let requested = admission.request.model();
        let model = self.rt.model_index(requested);
        if let Err(e) = check_access(&self.rt, self.caller, admission.model, requested) {
            let key = match self.caller {
                Caller::Key(k) => Some(SubjectRef::Key(k)),
                Caller::Anonymous => None,
            };
            self.rejected(Rejection::ModelNotAllowed, key, model);
            return self.reply_error(&e);
        }
        if let Caller::Key(key) = self.caller {
            let expected = estimate(&self.rt, &admission);
            match self
                .rt
                .limits
                .admit(&SharedData, key, expected, now_ns(self) / 1_000_000)
            {
                Ok(r) => self.reservation = Some(r),
                Err(refusal) => {
                    if let Some(limit) = refusal.limit {
                        self.rejected(Rejection::Limit(limit), refusal.subject, model);
                    }
                    return self.reply_error(&refusal.error);
                }
            }
        }
        self.set_http_request_header(CLUSTER_HEADER, Some(&admission.model.cluster));
        let (id, header) = handoff::park(admission.request, body, self.request_id.take(), record);
        self.handoff = Some(id);
        self.set_http_request_header(HANDOFF_HEADER, Some(&header));
        Action::Continue
    }

    fn response_headers(&mut self, end_of_stream: bool) -> Action {
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
            self.answer_headers(status);
            return Action::Continue;
        }
        let status = self
            .get_http_response_header(":status")
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or(0);
        self.status = status;
        // The upstream role's own refusal (it could not prepare the attempt) is marked.
        if self.get_http_response_header(TRANSLATED_HEADER).is_some() {
            self.set_http_response_header(TRANSLATED_HEADER, None);
            return Action::Continue;
        }
        if status < 400 || end_of_stream {
            return Action::Continue;
        }
        // Envoy's own error (no healthy upstream, connect failure, timeout): make it OpenAI's.
        self.rewrite_error = Some(status);
        self.set_http_response_header("content-length", None);
        self.set_http_response_header("content-type", Some("application/json"));
        Action::Continue
    }

    /// Which deployment answered (and, for JSON, its usage and cost), for the client.
    fn answer_headers(&mut self, status: u16) {
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
            self.set_http_response_header(name, Some(&value));
        }
    }

    fn response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(status) = self.rewrite_error else {
            return Action::Continue;
        };
        if !end_of_stream {
            return Action::Pause;
        }
        let original = self
            .get_http_response_body(0, body_size)
            .unwrap_or_default();
        let err = envoy_error(
            status,
            &String::from_utf8_lossy(&original),
            self.rt.options.max_request_bytes,
        );
        let json = err.to_json();
        self.set_http_response_body(0, body_size, &json);
        Action::Continue
    }
}
