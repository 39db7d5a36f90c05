//! The roles against the recording host: one request through the gateway role, its attempts
//! through the upstream role, and the answer back, asserting what each read from and wrote to
//! Envoy. The README's host-call claims are asserted here, not only measured by the bench.

use crate::fake::{Call, FakeHost};
use crate::gateway::GatewayFilter;
use crate::host::{Action, Filter, Host};
use crate::metrics::Stats;
use crate::upstream::UpstreamFilter;
use std::rc::Rc;
use switchboard_core::flow::handoff;
use switchboard_core::flow::metrics::Labels;
use switchboard_core::names::{
    CLUSTER_HEADER, DEPLOYMENT_PROPERTY, DROPPED_TOOLS_HEADER, HANDOFF_HEADER, LEDGER_PROPERTY,
};
use switchboard_core::runtime::Runtime;

pub(crate) const CONFIG: &str = r#"
providers:
  oa: {kind: openai, api_key: sk-up, base_url: "http://mock:9/v1"}
  an: {kind: anthropic, api_key: sk-an, base_url: "http://mock:9"}
models:
  - {name: solo, deployments: [{provider: oa, model: gpt-up}]}
  - {name: pair, deployments: [{provider: oa, model: a}, {provider: an, model: claude-b}], max_tokens: 64}
"#;

pub(crate) const CHAT: &[u8] = br#"{"model":"solo","messages":[{"role":"user","content":"hi"}]}"#;
pub(crate) const SUCCESS: &[u8] =
    br#"{"id":"c1","object":"chat.completion","created":1,"model":"gpt-up","choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#;

/// The two roles of one configuration, as Envoy instantiates them; `endpoint`: the gateway
/// instance serves that endpoint alone (the fast routes).
pub(crate) struct Roles {
    gateway_rt: Rc<Runtime>,
    upstream_rt: Rc<Runtime>,
    pub(crate) stats: Rc<Stats>,
}

impl Roles {
    pub(crate) fn new(config: &str, endpoint: Option<&str>) -> Roles {
        let with_role = |role: &str| {
            let mut text = format!("role: {role}\n{config}");
            if let (Some(op), "gateway") = (endpoint, role) {
                text = format!("endpoint: {op}\n{text}");
            }
            Rc::new(Runtime::from_text(&text, &|_: &str| None).unwrap())
        };
        let gateway_rt = with_role("gateway");
        let stats = Rc::new(Stats::new(Labels::new(&gateway_rt)));
        Roles {
            upstream_rt: with_role("upstream"),
            gateway_rt,
            stats,
        }
    }

    pub(crate) fn gateway(&self) -> GatewayFilter {
        GatewayFilter::new(self.gateway_rt.clone(), self.stats.clone())
    }

    pub(crate) fn upstream(&self) -> UpstreamFilter {
        UpstreamFilter::new(self.upstream_rt.clone())
    }
}

/// Runs the gateway role's request callbacks; returns the body callback's action.
pub(crate) fn send(gateway: &mut GatewayFilter, host: &FakeHost) -> Action {
    handoff::forget_just_parked();
    assert_eq!(gateway.on_request_headers(host, false), Action::Pause);
    let size = host.request_body.borrow().len();
    handoff::forget_just_parked();
    gateway.on_request_body(host, size, true)
}

/// Starts an attempt the way Envoy does: synchronously after the gateway role's body callback.
pub(crate) fn attempt(upstream: &mut UpstreamFilter, host: &FakeHost) -> Action {
    assert_eq!(upstream.on_request_headers(host, false), Action::Pause);
    let size = host.request_body.borrow().len();
    handoff::forget_just_parked();
    upstream.on_request_body(host, size, true)
}

pub(crate) fn answer(upstream: &mut UpstreamFilter, host: &FakeHost) {
    handoff::forget_just_parked();
    upstream.on_response_headers(host, false);
    let size = host.response_body.borrow().len();
    upstream.on_response_body(host, size, true);
}

pub(crate) fn respond(gateway: &mut GatewayFilter, host: &FakeHost) {
    gateway.on_response_headers(host, false);
    let size = host.response_body.borrow().len();
    gateway.on_response_body(host, size, true);
    gateway.on_log(host);
}

#[test]
fn a_first_attempt_reads_no_request_header() {
    let roles = Roles::new(CONFIG, Some("chat_completions"));
    let downstream = FakeHost::request(&[], CHAT);
    let mut gateway = roles.gateway();
    assert_eq!(send(&mut gateway, &downstream), Action::Continue);
    assert_eq!(
        downstream.request_header_value(CLUSTER_HEADER).as_deref(),
        Some("sb_solo")
    );

    let upstream_host = downstream.sibling(&[], CHAT);
    let mut upstream = roles.upstream();
    assert_eq!(attempt(&mut upstream, &upstream_host), Action::Continue);
    let header_reads: Vec<Call> = upstream_host
        .reads()
        .into_iter()
        .filter(|c| matches!(c, Call::RequestHeader(_) | Call::RequestHeaders))
        .collect();
    assert_eq!(
        header_reads,
        [],
        "the parked request is taken without the handoff header"
    );
    // The one deployment of the model needs no endpoint metadata either: the only read is
    // nothing at all (the parked body is the gateway role's).
    assert_eq!(upstream_host.reads(), []);
    assert_eq!(
        upstream_host.request_header_value(":path").as_deref(),
        Some("/v1/chat/completions")
    );
    assert_eq!(
        upstream_host.request_header_value(":authority").as_deref(),
        Some("mock:9")
    );
    assert_eq!(
        upstream_host
            .request_header_value("authorization")
            .as_deref(),
        Some("Bearer sk-up")
    );
}

#[test]
fn an_open_endpoint_instance_reads_no_request_header() {
    let roles = Roles::new(CONFIG, Some("chat_completions"));
    let downstream = FakeHost::request(&[("authorization", "Bearer whoever")], CHAT);
    send(&mut roles.gateway(), &downstream);
    assert_eq!(downstream.reads(), [Call::RequestBody]);
}

#[test]
fn the_generic_instance_reads_all_headers_once() {
    let roles = Roles::new(CONFIG, None);
    let downstream = FakeHost::request(
        &[(":method", "POST"), (":path", "/v1/chat/completions")],
        CHAT,
    );
    assert_eq!(send(&mut roles.gateway(), &downstream), Action::Continue);
    assert_eq!(
        downstream.reads(),
        [Call::RequestHeaders, Call::RequestBody]
    );
    assert_eq!(
        downstream.request_header_value(CLUSTER_HEADER).as_deref(),
        Some("sb_solo")
    );
}

#[test]
fn a_success_answer_reads_no_status() {
    let roles = Roles::new(CONFIG, Some("chat_completions"));
    let downstream = FakeHost::request(&[], CHAT);
    let mut gateway = roles.gateway();
    send(&mut gateway, &downstream);
    let upstream_host = downstream.sibling(&[], CHAT);
    let mut upstream = roles.upstream();
    attempt(&mut upstream, &upstream_host);
    upstream_host.answer(200, &[("content-type", "application/json")], SUCCESS);
    upstream_host.forget_calls();
    answer(&mut upstream, &upstream_host);
    assert_eq!(upstream_host.reads(), [Call::ResponseBody]);
    // OpenAI's own JSON success passes as it came: no body written back.
    assert!(!upstream_host
        .calls()
        .iter()
        .any(|c| matches!(c, Call::SetResponseBody(_))));

    // The gateway role knows the status from the record, not from Envoy.
    downstream.answer(200, &[], SUCCESS);
    downstream.forget_calls();
    respond(&mut gateway, &downstream);
    assert!(!downstream
        .reads()
        .contains(&Call::ResponseHeader(":status".into())));
    let summary = downstream.response_header_value("x-switchboard").unwrap();
    assert!(
        summary.starts_with(r#"provider="oa", deployment="solo/0", attempts=1, input=3, output=2"#),
        "{summary}"
    );
    let ledger = downstream.properties.borrow()[&vec![LEDGER_PROPERTY.to_owned()]].clone();
    let ledger = String::from_utf8(ledger).unwrap();
    assert!(ledger.contains(r#""input_tokens":3"#), "{ledger}");
}

#[test]
fn an_error_answer_is_read_with_its_status_and_made_openai_shaped() {
    let roles = Roles::new(CONFIG, Some("chat_completions"));
    let downstream = FakeHost::request(&[], CHAT);
    send(&mut roles.gateway(), &downstream);
    let upstream_host = downstream.sibling(&[], CHAT);
    let mut upstream = roles.upstream();
    attempt(&mut upstream, &upstream_host);
    upstream_host.answer(
        429,
        &[],
        br#"{"error":{"message":"slow down","type":"rate_limit"}}"#,
    );
    answer(&mut upstream, &upstream_host);
    assert_eq!(
        upstream_host
            .reads()
            .iter()
            .filter(|c| **c == Call::ResponseHeader(":status".into()))
            .count(),
        1
    );
    let body: serde_json::Value =
        serde_json::from_slice(&upstream_host.response_body.borrow()).unwrap();
    assert_eq!(body["error"]["message"], "slow down");
}

#[test]
fn a_retry_reads_the_handoff_and_removes_the_previous_providers_headers() {
    let body = br#"{"model":"pair","messages":[{"role":"user","content":"hi"}]}"#;
    let roles = Roles::new(CONFIG, Some("chat_completions"));
    let downstream = FakeHost::request(&[], body);
    send(&mut roles.gateway(), &downstream);
    let handoff_id = downstream.request_header_value(HANDOFF_HEADER).unwrap();

    // First attempt: Envoy picked the OpenAI deployment (two deployments: metadata is read).
    let first = downstream.sibling(&[(HANDOFF_HEADER, &handoff_id)], body);
    first.properties.borrow_mut().insert(
        DEPLOYMENT_PROPERTY.map(str::to_owned).to_vec(),
        b"pair/0".to_vec(),
    );
    attempt(&mut roles.upstream(), &first);
    assert_eq!(
        first.reads(),
        [Call::Property(
            DEPLOYMENT_PROPERTY.map(str::to_owned).to_vec()
        )]
    );
    assert_eq!(
        first.request_header_value("authorization").as_deref(),
        Some("Bearer sk-up")
    );

    // The retry sees the same header map, changed by the first attempt, and no parked
    // request of its own (another callback ran since).
    handoff::forget_just_parked();
    let retry = downstream.sibling(&[], body);
    *retry.request_headers.borrow_mut() = first.request_headers.borrow().clone();
    retry.properties.borrow_mut().insert(
        DEPLOYMENT_PROPERTY.map(str::to_owned).to_vec(),
        b"pair/1".to_vec(),
    );
    let mut second = roles.upstream();
    assert_eq!(second.on_request_headers(&retry, false), Action::Pause);
    handoff::forget_just_parked();
    assert_eq!(
        second.on_request_body(&retry, body.len(), true),
        Action::Continue
    );
    assert!(retry
        .reads()
        .contains(&Call::RequestHeader(HANDOFF_HEADER.into())));
    assert_eq!(retry.request_header_value("authorization"), None);
    assert_eq!(
        retry.request_header_value("x-api-key").as_deref(),
        Some("sk-an")
    );
    assert_eq!(
        retry.request_header_value(":path").as_deref(),
        Some("/v1/messages")
    );
}

#[test]
fn envoys_own_error_becomes_an_openai_error() {
    let roles = Roles::new(CONFIG, Some("chat_completions"));
    let downstream = FakeHost::request(&[], CHAT);
    let mut gateway = roles.gateway();
    send(&mut gateway, &downstream);
    downstream.answer(
        503,
        &[("content-type", "text/plain")],
        b"upstream connect error or disconnect/reset before headers",
    );
    respond(&mut gateway, &downstream);
    let body: serde_json::Value =
        serde_json::from_slice(&downstream.response_body.borrow()).unwrap();
    assert_eq!(body["error"]["type"], "upstream_error");
    assert_eq!(
        downstream.response_header_value("content-type").as_deref(),
        Some("application/json")
    );
}

#[test]
fn a_bad_key_is_refused_counted_and_never_forwarded() {
    let hash = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"; // "secret"
    let config = format!("{CONFIG}keys: [{{name: app, sha256: \"{hash}\"}}]\n");
    let roles = Roles::new(&config, Some("chat_completions"));
    let downstream = FakeHost::request(&[("authorization", "Bearer wrong")], CHAT);
    let mut gateway = roles.gateway();
    assert_eq!(
        gateway.on_request_headers(&downstream, false),
        Action::Pause
    );
    assert_eq!(
        downstream.reads(),
        [Call::RequestHeader("authorization".into())]
    );
    let (status, _, body) = downstream.local_reply.borrow().clone().unwrap();
    assert_eq!(status, 401);
    assert!(String::from_utf8_lossy(&body).contains("invalid_api_key"));
    roles.stats.flush(&downstream);
    let refused = downstream
        .stats
        .borrow()
        .defined
        .iter()
        .find(|(name, _, _)| name.contains("key.rejections") && name.contains("invalid_key"))
        .map(|(_, _, v)| *v);
    assert_eq!(refused, Some(1));

    // The right key is admitted, and its request settles when the answer ends.
    let downstream = FakeHost::request(&[("authorization", "Bearer secret")], CHAT);
    let mut gateway = roles.gateway();
    assert_eq!(send(&mut gateway, &downstream), Action::Continue);
    downstream.answer(502, &[], b"");
    gateway.on_response_headers(&downstream, true);
    gateway.on_log(&downstream);
    let ledger = downstream.properties.borrow()[&vec![LEDGER_PROPERTY.to_owned()]].clone();
    assert!(String::from_utf8_lossy(&ledger).contains(r#""key":"app""#));
}

#[test]
fn counters_wait_for_the_flush_and_reach_envoy_once() {
    let roles = Roles::new(CONFIG, Some("chat_completions"));
    let downstream = FakeHost::request(&[], CHAT);
    let mut gateway = roles.gateway();
    send(&mut gateway, &downstream);
    downstream.answer(503, &[], b"no healthy upstream");
    respond(&mut gateway, &downstream);
    let increments = |host: &FakeHost| {
        host.calls()
            .iter()
            .filter(|c| matches!(c, Call::IncrementMetric(..)))
            .count()
    };
    assert_eq!(
        increments(&downstream),
        0,
        "counters are gathered in the VM"
    );
    roles.stats.flush(&downstream);
    assert!(increments(&downstream) > 0);
    let after_first = increments(&downstream);
    roles.stats.flush(&downstream);
    assert_eq!(increments(&downstream), after_first, "nothing twice");
}

#[test]
fn fake_host_cas_refuses_a_stale_token() {
    let host = FakeHost::default();
    assert!(host.set_shared_data("k", b"1", None));
    let (_, cas) = host.shared_data("k").unwrap();
    assert!(host.set_shared_data("k", b"2", Some(cas)));
    assert!(!host.set_shared_data("k", b"3", Some(cas)));
}

#[test]
fn a_translated_responses_answer_names_the_tools_it_dropped() {
    let body = br#"{"model":"pair","input":"hi","tools":[{"type":"web_search"},{"type":"function","name":"f"}]}"#;
    let anthropic_answer = br#"{"id":"msg_1","model":"claude-b","stop_reason":"end_turn","usage":{"input_tokens":2,"output_tokens":1},"content":[{"type":"text","text":"hello"}]}"#;
    let openai_answer = br#"{"id":"resp_1","object":"response","output":[],"usage":{"input_tokens":2,"output_tokens":1,"total_tokens":3}}"#;
    struct Case {
        name: &'static str,
        deployment: &'static str,
        answer_body: &'static [u8],
        /// The tools the answer's header names.
        dropped: Option<&'static str>,
    }
    let cases = [
        Case {
            name: "translated for Anthropic: web_search dropped",
            deployment: "pair/1",
            answer_body: anthropic_answer,
            dropped: Some("web_search"),
        },
        Case {
            name: "OpenAI's own Responses: nothing dropped",
            deployment: "pair/0",
            answer_body: openai_answer,
            dropped: None,
        },
    ];
    for case in cases {
        let (name, deployment) = (case.name, case.deployment);
        let roles = Roles::new(CONFIG, Some("responses"));
        let downstream = FakeHost::request(&[], body);
        send(&mut roles.gateway(), &downstream);
        let upstream_host = downstream.sibling(&[], body);
        upstream_host.properties.borrow_mut().insert(
            DEPLOYMENT_PROPERTY.map(str::to_owned).to_vec(),
            deployment.as_bytes().to_vec(),
        );
        let mut upstream = roles.upstream();
        assert_eq!(attempt(&mut upstream, &upstream_host), Action::Continue);
        upstream_host.answer(
            200,
            &[("content-type", "application/json")],
            case.answer_body,
        );
        answer(&mut upstream, &upstream_host);
        assert_eq!(
            upstream_host
                .response_header_value(DROPPED_TOOLS_HEADER)
                .as_deref(),
            case.dropped,
            "{name}: {deployment}"
        );
        let answered: serde_json::Value =
            serde_json::from_slice(&upstream_host.response_body.borrow()).unwrap();
        assert!(
            answered["output"].is_array(),
            "{name}: {deployment}: {answered}"
        );
    }
}
