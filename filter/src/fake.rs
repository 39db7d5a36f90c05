//! A recording host for the roles' tests: it holds one stream's headers and bodies, a clock,
//! stats and shared data (shared between fakes, as Envoy's is between contexts), and records
//! every call in order, so a test can assert which values a role read from Envoy.

use crate::host::Host;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use switchboard_core::flow::metrics::Kind;

/// One call into the host, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Now,
    RequestHeader(String),
    RequestHeaders,
    SetRequestHeader(String, Option<String>),
    RequestBody,
    SetRequestBody(Vec<u8>),
    ResponseHeader(String),
    SetResponseHeader(String, Option<String>),
    ResponseBody,
    SetResponseBody(Vec<u8>),
    SendResponse(u16),
    Property(Vec<String>),
    SetProperty(Vec<String>, Vec<u8>),
    DefineMetric(String),
    IncrementMetric(u32, u64),
    RecordMetric(u32, u64),
    SharedData(String),
    SetSharedData(String),
}

impl Call {
    /// Whether the call copies a value from Envoy into the VM (the dear kind).
    pub fn is_read(&self) -> bool {
        matches!(
            self,
            Call::RequestHeader(_)
                | Call::RequestHeaders
                | Call::RequestBody
                | Call::ResponseHeader(_)
                | Call::ResponseBody
                | Call::Property(_)
        )
    }
}

/// The stats defined so far, by id (the index): name and value.
#[derive(Debug, Default)]
pub struct FakeStats {
    pub defined: Vec<(String, Kind, u64)>,
}

/// A local reply as sent: status, headers, body.
pub type LocalReply = (u16, Vec<(String, String)>, Vec<u8>);
/// Shared data: value and CAS token by key.
pub type SharedMap = HashMap<String, (Vec<u8>, u32)>;

#[derive(Default)]
pub struct FakeHost {
    pub calls: RefCell<Vec<Call>>,
    pub request_headers: RefCell<Vec<(String, String)>>,
    pub request_body: RefCell<Vec<u8>>,
    pub response_headers: RefCell<Vec<(String, String)>>,
    pub response_body: RefCell<Vec<u8>>,
    pub local_reply: RefCell<Option<LocalReply>>,
    pub properties: RefCell<HashMap<Vec<String>, Vec<u8>>>,
    pub stats: Rc<RefCell<FakeStats>>,
    pub shared: Rc<RefCell<SharedMap>>,
    /// Nanoseconds; each read advances it by a microsecond.
    pub clock: Cell<u64>,
}

impl FakeHost {
    /// A stream whose request has these headers and body.
    pub fn request(headers: &[(&str, &str)], body: &[u8]) -> FakeHost {
        let host = FakeHost::default();
        host.clock.set(1_700_000_000_000_000_000);
        *host.request_headers.borrow_mut() = pairs(headers);
        *host.request_body.borrow_mut() = body.to_vec();
        host
    }

    /// Another stream sharing this one's stats, shared data and clock (as an upstream
    /// attempt of the request does in Envoy).
    pub fn sibling(&self, headers: &[(&str, &str)], body: &[u8]) -> FakeHost {
        let mut host = FakeHost::request(headers, body);
        host.stats = self.stats.clone();
        host.shared = self.shared.clone();
        host.clock.set(self.clock.get());
        host
    }

    /// The provider's (or Envoy's) answer arrives on this stream.
    pub fn answer(&self, status: u16, headers: &[(&str, &str)], body: &[u8]) {
        let mut all = vec![(":status".to_owned(), status.to_string())];
        all.extend(pairs(headers));
        *self.response_headers.borrow_mut() = all;
        *self.response_body.borrow_mut() = body.to_vec();
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.borrow().clone()
    }

    /// The values read from Envoy, in order.
    pub fn reads(&self) -> Vec<Call> {
        self.calls().into_iter().filter(Call::is_read).collect()
    }

    pub fn forget_calls(&self) {
        self.calls.borrow_mut().clear();
    }

    pub fn request_header_value(&self, name: &str) -> Option<String> {
        find(&self.request_headers.borrow(), name)
    }

    pub fn response_header_value(&self, name: &str) -> Option<String> {
        find(&self.response_headers.borrow(), name)
    }

    /// A stat's value by its full name (counters as flushed, gauges as last set).
    pub fn stat(&self, name: &str) -> Option<u64> {
        let stats = self.stats.borrow();
        stats
            .defined
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, _, v)| *v)
    }

    fn record(&self, call: Call) {
        self.calls.borrow_mut().push(call);
    }
}

fn pairs(headers: &[(&str, &str)]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

fn find(headers: &[(String, String)], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
}

fn set(headers: &mut Vec<(String, String)>, name: &str, value: Option<&str>) {
    headers.retain(|(n, _)| n != name);
    if let Some(v) = value {
        headers.push((name.to_owned(), v.to_owned()));
    }
}

impl Host for FakeHost {
    fn now_ns(&self) -> u64 {
        self.record(Call::Now);
        let now = self.clock.get() + 1_000;
        self.clock.set(now);
        now
    }

    fn request_header(&self, name: &str) -> Option<String> {
        self.record(Call::RequestHeader(name.to_owned()));
        self.request_header_value(name)
    }

    fn request_headers(&self) -> Vec<(String, String)> {
        self.record(Call::RequestHeaders);
        self.request_headers.borrow().clone()
    }

    fn set_request_header(&self, name: &str, value: Option<&str>) {
        self.record(Call::SetRequestHeader(
            name.to_owned(),
            value.map(str::to_owned),
        ));
        set(&mut self.request_headers.borrow_mut(), name, value);
    }

    fn request_body(&self, size: usize) -> Vec<u8> {
        self.record(Call::RequestBody);
        let body = self.request_body.borrow();
        body.get(..size.min(body.len()))
            .unwrap_or_default()
            .to_vec()
    }

    fn set_request_body(&self, _size: usize, body: &[u8]) {
        self.record(Call::SetRequestBody(body.to_vec()));
        *self.request_body.borrow_mut() = body.to_vec();
    }

    fn response_header(&self, name: &str) -> Option<String> {
        self.record(Call::ResponseHeader(name.to_owned()));
        self.response_header_value(name)
    }

    fn set_response_header(&self, name: &str, value: Option<&str>) {
        self.record(Call::SetResponseHeader(
            name.to_owned(),
            value.map(str::to_owned),
        ));
        set(&mut self.response_headers.borrow_mut(), name, value);
    }

    fn response_body(&self, size: usize) -> Vec<u8> {
        self.record(Call::ResponseBody);
        let body = self.response_body.borrow();
        body.get(..size.min(body.len()))
            .unwrap_or_default()
            .to_vec()
    }

    fn set_response_body(&self, _size: usize, body: &[u8]) {
        self.record(Call::SetResponseBody(body.to_vec()));
        *self.response_body.borrow_mut() = body.to_vec();
    }

    fn send_response(&self, status: u16, headers: &[(&str, &str)], body: &[u8]) {
        self.record(Call::SendResponse(status));
        *self.local_reply.borrow_mut() = Some((status, pairs(headers), body.to_vec()));
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        let path: Vec<String> = path.iter().map(|p| (*p).to_owned()).collect();
        self.record(Call::Property(path.clone()));
        self.properties.borrow().get(&path).cloned()
    }

    fn set_property(&self, path: &[&str], value: &[u8]) {
        let path: Vec<String> = path.iter().map(|p| (*p).to_owned()).collect();
        self.record(Call::SetProperty(path.clone(), value.to_vec()));
        self.properties.borrow_mut().insert(path, value.to_vec());
    }

    fn define_metric(&self, kind: Kind, name: &str) -> Option<u32> {
        self.record(Call::DefineMetric(name.to_owned()));
        let mut stats = self.stats.borrow_mut();
        if let Some(i) = stats.defined.iter().position(|(n, _, _)| n == name) {
            return u32::try_from(i).ok();
        }
        stats.defined.push((name.to_owned(), kind, 0));
        u32::try_from(stats.defined.len() - 1).ok()
    }

    fn increment_metric(&self, id: u32, by: u64) {
        self.record(Call::IncrementMetric(id, by));
        if let Some(stat) = self.stats.borrow_mut().defined.get_mut(id as usize) {
            stat.2 += by;
        }
    }

    fn record_metric(&self, id: u32, value: u64) {
        self.record(Call::RecordMetric(id, value));
        if let Some(stat) = self.stats.borrow_mut().defined.get_mut(id as usize) {
            stat.2 = value;
        }
    }

    fn shared_data(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.record(Call::SharedData(key.to_owned()));
        self.shared.borrow().get(key).cloned()
    }

    fn set_shared_data(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        self.record(Call::SetSharedData(key.to_owned()));
        let mut shared = self.shared.borrow_mut();
        let current = shared.get(key).map(|(_, c)| *c);
        if cas.is_some() && cas != current {
            return false;
        }
        let next = current.map_or(1, |c| c + 1);
        shared.insert(key.to_owned(), (value.to_vec(), next));
        true
    }
}
