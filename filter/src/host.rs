//! The host behind a small trait: every call the filter makes into Envoy. In Envoy it is
//! `envoy::EnvoyHost` (proxy-wasm's host calls, which act on the context Envoy is calling
//! into); in tests, `fake::FakeHost`, which records every call, so what the README argues
//! about host calls ("a first attempt reads no request header") is asserted in milliseconds.

use switchboard_core::flow::metrics::Kind;

/// What a callback tells Envoy to do with the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Continue,
    /// Stop iteration until the filter continues it (or, on a body, buffer more of it).
    Pause,
}

/// A filter role: what it does in each callback Envoy makes, given the host.
pub trait Filter {
    /// Whether its request headers callback may take the request the gateway role parked just
    /// before (the upstream role's, on a first attempt: see `flow::handoff`).
    const TAKES_PARKED_REQUEST: bool = false;

    fn on_request_headers(&mut self, host: &impl Host, end_of_stream: bool) -> Action;
    fn on_request_body(&mut self, host: &impl Host, size: usize, end_of_stream: bool) -> Action;
    fn on_response_headers(&mut self, host: &impl Host, end_of_stream: bool) -> Action;
    fn on_response_body(&mut self, host: &impl Host, size: usize, end_of_stream: bool) -> Action;
    fn on_log(&mut self, _host: &impl Host) {}
}

/// Calls into the host on behalf of the context being called. Reads return owned values:
/// each is copied into the VM, which is what makes them the dearest calls a filter makes.
pub trait Host {
    /// Wall clock, nanoseconds since the Unix epoch.
    fn now_ns(&self) -> u64;

    fn request_header(&self, name: &str) -> Option<String>;
    /// Every request header in one call.
    fn request_headers(&self) -> Vec<(String, String)>;
    /// Sets (`Some`) or removes (`None`) a request header.
    fn set_request_header(&self, name: &str, value: Option<&str>);
    /// The first `size` bytes of the request body buffered so far.
    fn request_body(&self, size: usize) -> Vec<u8>;
    /// Replaces the first `size` bytes of the request body.
    fn set_request_body(&self, size: usize, body: &[u8]);

    fn response_header(&self, name: &str) -> Option<String>;
    fn set_response_header(&self, name: &str, value: Option<&str>);
    fn response_body(&self, size: usize) -> Vec<u8>;
    fn set_response_body(&self, size: usize, body: &[u8]);

    /// Answers the request here (a local reply) instead of the upstream.
    fn send_response(&self, status: u16, headers: &[(&str, &str)], body: &[u8]);

    fn property(&self, path: &[&str]) -> Option<Vec<u8>>;
    /// Sets filter state (`wasm.<path>` in Envoy).
    fn set_property(&self, path: &[&str], value: &[u8]);

    /// Defines a stat; its id, or `None` if Envoy refused it.
    fn define_metric(&self, kind: Kind, name: &str) -> Option<u32>;
    fn increment_metric(&self, id: u32, by: u64);
    /// Records a histogram value or sets a gauge.
    fn record_metric(&self, id: u32, value: u64);

    /// A shared-data entry (every worker of the Envoy sees it) and its CAS token.
    fn shared_data(&self, key: &str) -> Option<(Vec<u8>, u32)>;
    /// Writes a shared-data entry if its CAS token still matches; false on a conflict.
    fn set_shared_data(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool;
}

/// The limit store over the host's shared data (see `limits::store`).
pub struct SharedData<'h, H: Host>(pub &'h H);

impl<H: Host> switchboard_core::limits::store::Store for SharedData<'_, H> {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.0.shared_data(key)
    }

    fn set(
        &self,
        key: &str,
        value: &[u8],
        cas: Option<u32>,
    ) -> Result<(), switchboard_core::limits::store::Conflict> {
        if self.0.set_shared_data(key, value, cas) {
            Ok(())
        } else {
            Err(switchboard_core::limits::store::Conflict)
        }
    }
}
