//! Gateway role (listener filter, once per request): answers local endpoints and errors,
//! reads the body, picks the model group's cluster; owns the request's record and closes it
//! when the response ends (metrics, `x-switchboard-*` answer headers, access-log fields).

use super::metrics::EnvoyMetrics;
use super::{handoff, now_ns, CLUSTER_HEADER, HANDOFF_HEADER, OWN_PREFIX, TRANSLATED_HEADER};
use crate::api::GatewayError;
use crate::config::Gateway;
use crate::flow::gateway::{
    admit, classify, envoy_error, get_model, list_models, too_large, Endpoint,
};
use crate::flow::record::{
    answer_headers, ledger_fragment, RequestLine, RequestRecord, LEDGER_PROPERTY,
};
use crate::providers::Operation;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use std::cell::RefCell;
use std::rc::Rc;

pub struct GatewayFilter {
    gw: Rc<Gateway>,
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
    /// Request id, method and path, for the ledger.
    line: RequestLine,
}

impl GatewayFilter {
    pub fn new(gw: Rc<Gateway>, metrics: Rc<EnvoyMetrics>) -> Self {
        GatewayFilter {
            gw,
            metrics,
            operation: None,
            handoff: None,
            rewrite_error: None,
            record: None,
            status: 0,
            awaiting_first_chunk: false,
            finished: false,
            line: RequestLine::default(),
        }
    }

    /// Adds the time since `since_ns` to the request's filter overhead.
    fn charge(&self, since_ns: u64) {
        if self.finished {
            return;
        }
        if let Some(record) = &self.record {
            let elapsed = now_ns(self).saturating_sub(since_ns);
            if let Ok(mut r) = record.try_borrow_mut() {
                r.add_overhead(elapsed);
            }
        }
    }

    /// Closes the request once: metrics from its record, then its ledger fields as filter
    /// state for the HCM access log (which Envoy 1.40 writes after the last response callback
    /// and after `on_log`).
    fn finish(&mut self, callback_start_ns: u64) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        let summary = self.record.clone().and_then(|record| {
            let now = now_ns(self);
            let mut r = record.try_borrow_mut().ok()?;
            r.add_overhead(now.saturating_sub(callback_start_ns));
            Some(r.finish(&self.gw, self.status, now, &mut &*self.metrics))
        });
        let fragment = ledger_fragment(&self.line, summary.as_ref(), &[]);
        self.set_property(vec![LEDGER_PROPERTY], Some(fragment.as_bytes()));
    }

    fn reply_json(&self, status: u16, body: &[u8]) {
        self.send_http_response(
            u32::from(status),
            vec![
                ("content-type", "application/json"),
                (TRANSLATED_HEADER, "local"),
            ],
            Some(body),
        );
    }

    fn reply_error(&self, err: &GatewayError) -> Action {
        let retry_after = err.retry_after.map(|s| s.to_string());
        let mut headers = vec![
            ("content-type", "application/json"),
            (TRANSLATED_HEADER, "local"),
        ];
        if let Some(r) = retry_after.as_deref() {
            headers.push(("retry-after", r));
        }
        self.send_http_response(u32::from(err.status), headers, Some(&err.to_json()));
        Action::Pause
    }

    /// Drops every `x-switchboard-*` header a client sent: routing is ours alone.
    fn strip_own_headers(&self) {
        for (name, _) in self.get_http_request_headers() {
            if name.starts_with(OWN_PREFIX) {
                self.set_http_request_header(&name, None);
            }
        }
    }
}

impl Context for GatewayFilter {}

impl HttpContext for GatewayFilter {
    fn on_http_request_headers(&mut self, _headers: usize, end_of_stream: bool) -> Action {
        let start = now_ns(self);
        let action = self.request_headers(end_of_stream, start);
        self.charge(start);
        action
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
        if end_of_stream {
            self.finish(start);
        }
        self.charge(start);
        action
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let first_chunk = self.awaiting_first_chunk && body_size > 0;
        if !(first_chunk || end_of_stream || self.rewrite_error.is_some()) {
            // A chunk passing through: nothing to do, nothing worth a clock read.
            return Action::Continue;
        }
        let start = now_ns(self);
        if first_chunk {
            self.awaiting_first_chunk = false;
            if let Some(Ok(mut r)) = self.record.as_ref().map(|r| r.try_borrow_mut()) {
                r.first_chunk(start);
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
        // The response never ended (the client went away): still account for the request.
        if !self.finished {
            let now = now_ns(self);
            self.finish(now);
        }
        if let Some(id) = self.handoff.take() {
            handoff::release(id);
        }
    }
}

impl GatewayFilter {
    fn request_headers(&mut self, end_of_stream: bool, start_ns: u64) -> Action {
        self.strip_own_headers();
        self.line = RequestLine {
            request_id: self
                .get_http_request_header("x-request-id")
                .unwrap_or_default(),
            method: self.get_http_request_header(":method").unwrap_or_default(),
            path: self.get_http_request_header(":path").unwrap_or_default(),
        };
        let endpoint = match classify(&self.line.method, &self.line.path) {
            Ok(e) => e,
            Err(e) => return self.reply_error(&e),
        };
        match endpoint {
            Endpoint::Health => {
                self.reply_json(200, b"{\"status\":\"ok\"}");
                Action::Pause
            }
            Endpoint::ListModels => {
                self.reply_json(200, &list_models(&self.gw));
                Action::Pause
            }
            Endpoint::GetModel(id) => match get_model(&self.gw, &id) {
                Ok(body) => {
                    self.reply_json(200, &body);
                    Action::Pause
                }
                Err(e) => self.reply_error(&e),
            },
            Endpoint::Proxy(op) => {
                self.record = Some(Rc::new(RefCell::new(RequestRecord::new(op, start_ns))));
                if end_of_stream {
                    return self.reply_error(&GatewayError::invalid(
                        "The request body is empty; send a JSON object.",
                    ));
                }
                let declared = self
                    .get_http_request_header("content-length")
                    .and_then(|v| v.parse::<u64>().ok());
                if declared.is_some_and(|n| n > u64::from(self.gw.options.max_request_bytes)) {
                    return self.reply_error(&too_large(self.gw.options.max_request_bytes));
                }
                self.operation = Some(op);
                // Wait for the body: the model, hence the cluster, is in it.
                Action::Pause
            }
        }
    }

    fn request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(op) = self.operation else {
            return Action::Continue;
        };
        let limit = self.gw.options.max_request_bytes;
        if body_size > limit as usize {
            return self.reply_error(&too_large(limit));
        }
        if !end_of_stream {
            return Action::Pause;
        }
        let body = self.get_http_request_body(0, body_size).unwrap_or_default();
        let admission = match admit(&self.gw, op, &body) {
            Ok(a) => a,
            Err(e) => return self.reply_error(&e),
        };
        self.set_http_request_header(CLUSTER_HEADER, Some(&admission.model.cluster));
        let Some(record) = self.record.clone() else {
            return self.reply_error(&GatewayError::server("request record missing"));
        };
        if let Ok(mut r) = record.try_borrow_mut() {
            r.model = self.gw.model_index(admission.request.model());
            r.stream = admission.request.is_stream();
        }
        let (id, header) = handoff::park(admission.request, record);
        self.handoff = Some(id);
        self.set_http_request_header(HANDOFF_HEADER, Some(&header));
        Action::Continue
    }

    fn response_headers(&mut self, end_of_stream: bool) -> Action {
        let status = self
            .get_http_response_header(":status")
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or(0);
        self.status = status;
        if let Some(translated) = self.get_http_response_header(TRANSLATED_HEADER) {
            self.set_http_response_header(TRANSLATED_HEADER, None);
            if translated != "local" {
                self.answer_headers(status);
            }
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
                answer_headers(&self.gw, &r)
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
            self.gw.options.max_request_bytes,
        );
        let json = err.to_json();
        self.set_http_response_body(0, body_size, &json);
        Action::Continue
    }
}
