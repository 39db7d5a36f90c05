//! The proxy-wasm glue: the root context (configuration, the metrics tick), the HTTP contexts
//! dispatching each callback to a role, and `EnvoyHost`, the `Host` over proxy-wasm's host
//! calls (which act on whichever context Envoy is calling into).

mod abi;

use crate::gateway::GatewayFilter;
use crate::host::{Action, Filter, Host, SharedData};
use crate::metrics::{Stats, FLUSH_PERIOD};
use crate::upstream::UpstreamFilter;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{self, ContextType, LogLevel, MetricType};
use std::rc::Rc;
use std::time::UNIX_EPOCH;
use switchboard_core::config::Role;
use switchboard_core::flow::handoff;
use switchboard_core::flow::metrics::{Kind, Labels};
use switchboard_core::runtime::Runtime;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root { runtime: None, stats: None }) });
}}

struct Root {
    runtime: Option<Rc<Runtime>>,
    /// Stat names and ids for this configuration (the gateway role records the metrics).
    stats: Option<Rc<Stats>>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let Some(bytes) = self.get_plugin_configuration() else {
            log::error!("switchboard: no plugin configuration given");
            return false;
        };
        let text = String::from_utf8_lossy(&bytes);
        let vars = crate::env::host_env();
        match Runtime::from_text(&text, &|name: &str| vars.get(name).cloned()) {
            Ok(rt) => {
                log::info!(
                    "switchboard: {:?} role configured: {} providers, {} models",
                    rt.role,
                    rt.providers.len(),
                    rt.models.len()
                );
                if rt.role == Role::Gateway {
                    // Create every limit counter before traffic (see `limits::store`).
                    for (entry, initial) in rt.limits.entries() {
                        switchboard_core::limits::store::ensure(
                            &SharedData(&EnvoyHost),
                            &entry,
                            &initial,
                        );
                    }
                    // Gathered counters reach Envoy's stats every tick (see `metrics`).
                    self.set_tick_period(FLUSH_PERIOD);
                }
                self.stats = Some(Rc::new(Stats::new(Labels::new(&rt))));
                self.runtime = Some(Rc::new(rt));
                true
            }
            Err(problems) => {
                for p in problems {
                    log::error!("switchboard config: {p}");
                }
                false
            }
        }
    }

    fn on_tick(&mut self) {
        handoff::forget_just_parked();
        if let Some(stats) = &self.stats {
            stats.flush(&EnvoyHost);
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let rt = self.runtime.clone()?;
        Some(match rt.role {
            Role::Gateway => Box::new(Stream(GatewayFilter::new(rt, self.stats.clone()?))),
            Role::Upstream => Box::new(Stream(UpstreamFilter::new(rt))),
        })
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

fn envoy_action(action: Action) -> types::Action {
    match action {
        Action::Continue => types::Action::Continue,
        Action::Pause => types::Action::Pause,
    }
}

/// A role's HTTP context: each callback is handed to the role with the host. Every callback
/// but the one that may take it (`Filter::TAKES_PARKED_REQUEST`) first forgets the request the
/// gateway role parked last: whatever runs now is not the synchronous start of its first
/// attempt (see `flow::handoff`).
struct Stream<F: Filter>(F);

impl<F: Filter> Stream<F> {
    fn enter<T>(
        &mut self,
        takes_parked: bool,
        callback: impl FnOnce(&mut F, &EnvoyHost) -> T,
    ) -> T {
        if !takes_parked {
            handoff::forget_just_parked();
        }
        callback(&mut self.0, &EnvoyHost)
    }
}

impl<F: Filter> Context for Stream<F> {}

impl<F: Filter> HttpContext for Stream<F> {
    fn on_http_request_headers(&mut self, _headers: usize, end: bool) -> types::Action {
        envoy_action(self.enter(F::TAKES_PARKED_REQUEST, |f, h| f.on_request_headers(h, end)))
    }

    fn on_http_request_body(&mut self, size: usize, end: bool) -> types::Action {
        envoy_action(self.enter(false, |f, h| f.on_request_body(h, size, end)))
    }

    fn on_http_response_headers(&mut self, _headers: usize, end: bool) -> types::Action {
        envoy_action(self.enter(false, |f, h| f.on_response_headers(h, end)))
    }

    fn on_http_response_body(&mut self, size: usize, end: bool) -> types::Action {
        envoy_action(self.enter(false, |f, h| f.on_response_body(h, size, end)))
    }

    fn on_log(&mut self) {
        self.enter(false, |f, h| f.on_log(h));
    }
}

/// The host calls, through `abi` (no panics: a failed call reads as absent and writes as
/// nothing, logged at debug) and, for the rest, proxy-wasm's wrappers of calls that cannot fail
/// where the filter makes them.
struct EnvoyHost;

fn logged<T>(what: &str, result: Result<T, u32>) -> Option<T> {
    result
        .map_err(|status| log::debug!("switchboard: {what}: status {status}"))
        .ok()
}

impl Host for EnvoyHost {
    fn now_ns(&self) -> u64 {
        hostcalls::get_current_time()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }

    fn request_header(&self, name: &str) -> Option<String> {
        logged(name, abi::get_header(abi::REQUEST_HEADERS, name)).flatten()
    }

    fn request_headers(&self) -> Vec<(String, String)> {
        logged("request headers", abi::get_headers(abi::REQUEST_HEADERS)).unwrap_or_default()
    }

    fn set_request_header(&self, name: &str, value: Option<&str>) {
        logged(name, abi::set_header(abi::REQUEST_HEADERS, name, value));
    }

    fn request_body(&self, size: usize) -> Vec<u8> {
        logged("request body", abi::get_buffer(abi::REQUEST_BODY, size))
            .flatten()
            .unwrap_or_default()
    }

    fn set_request_body(&self, size: usize, body: &[u8]) {
        logged(
            "request body",
            abi::set_buffer(abi::REQUEST_BODY, size, body),
        );
    }

    fn response_header(&self, name: &str) -> Option<String> {
        logged(name, abi::get_header(abi::RESPONSE_HEADERS, name)).flatten()
    }

    fn set_response_header(&self, name: &str, value: Option<&str>) {
        logged(name, abi::set_header(abi::RESPONSE_HEADERS, name, value));
    }

    fn response_body(&self, size: usize) -> Vec<u8> {
        logged("response body", abi::get_buffer(abi::RESPONSE_BODY, size))
            .flatten()
            .unwrap_or_default()
    }

    fn set_response_body(&self, size: usize, body: &[u8]) {
        logged(
            "response body",
            abi::set_buffer(abi::RESPONSE_BODY, size, body),
        );
    }

    fn send_response(&self, status: u16, headers: &[(&str, &str)], body: &[u8]) {
        logged(
            "local reply",
            abi::send_local_response(u32::from(status), headers, body),
        );
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        logged("property", abi::get_property(path)).flatten()
    }

    fn set_property(&self, path: &[&str], value: &[u8]) {
        logged("property", abi::set_property(path, value));
    }

    fn define_metric(&self, kind: Kind, name: &str) -> Option<u32> {
        let kind = match kind {
            Kind::Counter => MetricType::Counter,
            Kind::Histogram => MetricType::Histogram,
            Kind::Gauge => MetricType::Gauge,
        };
        hostcalls::define_metric(kind, name).ok()
    }

    fn increment_metric(&self, id: u32, by: u64) {
        let _ = hostcalls::increment_metric(id, i64::try_from(by).unwrap_or(i64::MAX));
    }

    fn record_metric(&self, id: u32, value: u64) {
        let _ = hostcalls::record_metric(id, value);
    }

    fn shared_data(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        match hostcalls::get_shared_data(key) {
            Ok((Some(bytes), Some(cas))) => Some((bytes, cas)),
            _ => None,
        }
    }

    fn set_shared_data(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        hostcalls::set_shared_data(key, Some(value), cas).is_ok()
    }
}
