//! Gateway role (listener filter, once per request): answers local endpoints and errors,
//! reads the body, picks the model group's cluster.

use super::{handoff, CLUSTER_HEADER, HANDOFF_HEADER, OWN_PREFIX, TRANSLATED_HEADER};
use crate::api::GatewayError;
use crate::config::Gateway;
use crate::flow::gateway::{
    admit, classify, envoy_error, get_model, list_models, too_large, Endpoint,
};
use crate::providers::Operation;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use std::rc::Rc;

pub struct GatewayFilter {
    gw: Rc<Gateway>,
    operation: Option<Operation>,
    handoff: Option<u64>,
    /// The answer did not come from our upstream role (e.g. Envoy's own 503): rewrite it.
    rewrite_error: Option<u16>,
}

impl GatewayFilter {
    pub fn new(gw: Rc<Gateway>) -> Self {
        GatewayFilter {
            gw,
            operation: None,
            handoff: None,
            rewrite_error: None,
        }
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
        self.strip_own_headers();
        let method = self.get_http_request_header(":method").unwrap_or_default();
        let path = self.get_http_request_header(":path").unwrap_or_default();
        let endpoint = match classify(&method, &path) {
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

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
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
        let (id, header) = handoff::park(admission.request);
        self.handoff = Some(id);
        self.set_http_request_header(HANDOFF_HEADER, Some(&header));
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _headers: usize, end_of_stream: bool) -> Action {
        if self.get_http_response_header(TRANSLATED_HEADER).is_some() {
            self.set_http_response_header(TRANSLATED_HEADER, None);
            return Action::Continue;
        }
        let status = self
            .get_http_response_header(":status")
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or(0);
        if status < 400 || end_of_stream {
            return Action::Continue;
        }
        // Envoy's own error (no healthy upstream, connect failure, timeout): make it OpenAI's.
        self.rewrite_error = Some(status);
        self.set_http_response_header("content-length", None);
        self.set_http_response_header("content-type", Some("application/json"));
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
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

    fn on_log(&mut self) {
        if let Some(id) = self.handoff.take() {
            handoff::release(id);
        }
    }
}
