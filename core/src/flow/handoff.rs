//! Carries a request from the gateway role to every upstream attempt of it, and the
//! per-request record back.
//!
//! Both roles run in one VM per worker when their `vm_config` is identical (the renderer
//! makes it so), so the parsed request is parked here, with its body, and found again by id:
//! the body is fetched from Envoy and parsed once. The parked entry also holds the request's `RequestRecord`, which each attempt
//! writes (deployment, failure, usage) and the gateway role reads when the response ends. Envoy hands every attempt the *same* request header map, already changed by
//! earlier attempts, so the parked entry also remembers which headers attempts added; the next
//! attempt removes them before adding its own (a fallback must never see the previous
//! provider's credentials).
//!
//! The id travels in the `x-switchboard-request` header as `<operation>.<id>`; it is opaque
//! and stays on the request (it must survive to the next attempt). If the roles do not share
//! a VM the upstream role misses and parses the body itself (and usage goes unrecorded).
//!
//! The first attempt does not even read that header (every value Envoy hands to the VM costs
//! a nested call into it, about as much as the rest of a host call ten times over): Envoy
//! starts the first attempt's upstream filters synchronously inside the continuation of the
//! gateway role's body callback, so the request parked last is the one the next upstream
//! `on_http_request_headers` belongs to. Every other callback of the VM forgets it first, and
//! the upstream role checks the body length too; anything else reads the header.

use crate::api::Operation;
use crate::flow::record::RequestRecord;
use crate::flow::ParsedRequest;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

pub struct Parked {
    pub request: ParsedRequest,
    /// The client's body as the gateway role read it (pass-through rewrites borrow from it).
    pub body: Vec<u8>,
    /// What answers the provider leaves unnamed are named after: the client's `x-request-id`
    /// when the gateway role read it, else an id of its own.
    pub request_id: String,
    /// Header names set by earlier attempts of this request.
    pub attempt_headers: RefCell<Vec<String>>,
    pub record: Rc<RefCell<RequestRecord>>,
}

thread_local! {
    static NEXT_ID: Cell<u64> = const { Cell::new(1) };
    static PENDING: RefCell<HashMap<u64, Rc<Parked>>> = RefCell::new(HashMap::new());
    static JUST_PARKED: RefCell<Option<Rc<Parked>>> = const { RefCell::new(None) };
}

/// Parks a request until the gateway role's request ends; returns the header value.
pub fn park(
    request: ParsedRequest,
    body: Vec<u8>,
    request_id: Option<String>,
    record: Rc<RefCell<RequestRecord>>,
) -> (u64, String) {
    let id = NEXT_ID.with(|n| {
        let id = n.get();
        n.set(id.wrapping_add(1));
        id
    });
    // Without the client's id: the arrival time and this worker's count.
    let request_id = request_id.unwrap_or_else(|| {
        let started = record.try_borrow().map_or(0, |r| r.started_ns());
        format!("{started:x}{id:x}")
    });
    let tag = request.operation().config_name();
    let parked = Rc::new(Parked {
        request,
        body,
        request_id,
        attempt_headers: RefCell::new(Vec::new()),
        record,
    });
    PENDING.with(|p| p.borrow_mut().insert(id, parked.clone()));
    JUST_PARKED.with(|j| j.replace(Some(parked)));
    (id, format!("{tag}.{id}"))
}

/// The operation and parked request a header value names (the request only if parked here).
pub fn find(header: &str) -> Option<(Operation, Option<Rc<Parked>>)> {
    let (tag, id) = header.split_once('.')?;
    let operation = *OPERATIONS.iter().find(|op| op.config_name() == tag)?;
    let parked = id
        .parse::<u64>()
        .ok()
        .and_then(|id| PENDING.with(|p| p.borrow().get(&id).cloned()));
    Some((operation, parked))
}

/// The request parked by the callback that ran just before this one, if no other ran since.
pub fn take_just_parked() -> Option<Rc<Parked>> {
    JUST_PARKED.with(|j| j.try_borrow_mut().ok().and_then(|mut slot| slot.take()))
}

/// Called on entry of every callback but the upstream role's request headers: whatever runs
/// now is not the synchronous start of the request parked last.
pub fn forget_just_parked() {
    JUST_PARKED.with(|j| {
        if let Ok(mut slot) = j.try_borrow_mut() {
            slot.take();
        }
    });
}

pub fn release(id: u64) {
    PENDING.with(|p| p.borrow_mut().remove(&id));
}

/// Every proxied operation, to find one by its tag.
const OPERATIONS: [Operation; 5] = [
    Operation::ChatCompletions,
    Operation::Embeddings,
    Operation::Messages,
    Operation::CountTokens,
    Operation::Responses,
];
