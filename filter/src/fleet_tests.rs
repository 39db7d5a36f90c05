//! The gateway role with the `fleet` backend against the recording host: what it writes for
//! the rendered ratelimit filters, how it reads their local replies, what it settles.

use crate::fake::{Call, FakeHost};
use crate::host::{Action, Filter};
use crate::tests::{answer, attempt, respond, send, Roles, SUCCESS};
use switchboard_core::limits::fleet::{state, Stage, LIMIT_HEADER, OVER_HEADER};
use switchboard_core::names::{HANDOFF_HEADER, LEDGER_PROPERTY};

/// `secret`'s SHA-256.
const SECRET_HASH: &str = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b";

fn config() -> String {
    format!(
        r#"
providers:
  oa: {{kind: openai, api_key: sk-up, base_url: "http://mock:9/v1"}}
models:
  - {{name: priced, price: {{input: 10, output: 30}}, max_tokens: 100,
      deployments: [{{provider: oa, model: gpt-up}}]}}
limits: {{backend: fleet, service: {{address: rls, port: 8081}}}}
teams: [{{name: t, budget: {{usd: 100, period: month}}}}]
keys:
  - {{name: app, sha256: "{SECRET_HASH}", team: t, rpm: 10, tpm: 10000, max_parallel: 4,
      budget: {{usd: 1, period: day}}}}
"#
    )
}

const CHAT: &[u8] = br#"{"model":"priced","messages":[{"role":"user","content":"hi"}]}"#;

fn property(host: &FakeHost, name: &str) -> Option<String> {
    let properties = host.properties.borrow();
    let value = properties.get(&vec![name.to_owned()])?;
    Some(String::from_utf8_lossy(value).into_owned())
}

fn number(host: &FakeHost, name: &str) -> u64 {
    property(host, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} not set"))
}

/// Envoy's word that the service answered this admission filter's call.
fn answered(host: &FakeHost, stage: Stage) {
    let path = ["metadata", "filter_metadata", stage.metadata_namespace()];
    host.properties
        .borrow_mut()
        .insert(path.map(str::to_owned).to_vec(), b"{}".to_vec());
}

/// A ratelimit filter's local reply reaching the gateway role.
fn local_reply(host: &FakeHost, status: u16, details: &str, headers: &[(&str, &str)]) {
    host.answer(status, headers, b"");
    host.properties.borrow_mut().insert(
        vec!["response".into(), "code_details".into()],
        details.as_bytes().to_vec(),
    );
}

fn admitted(roles: &Roles) -> (crate::gateway::GatewayFilter, FakeHost) {
    let downstream = FakeHost::request(&[("authorization", "Bearer secret")], CHAT);
    let mut gateway = roles.gateway();
    assert_eq!(send(&mut gateway, &downstream), Action::Continue);
    (gateway, downstream)
}

/// The first attempt's host: it finds its request by the handoff header.
fn first_attempt(downstream: &FakeHost) -> FakeHost {
    let handoff = downstream.request_header_value(HANDOFF_HEADER).unwrap();
    downstream.sibling(&[(HANDOFF_HEADER, &handoff)], CHAT)
}

fn stat(host: &FakeHost, parts: &[&str]) -> Option<u64> {
    host.stats
        .borrow()
        .defined
        .iter()
        .find(|(name, _, _)| parts.iter().all(|p| name.contains(p)))
        .map(|(_, _, v)| *v)
}

#[test]
fn fleet_mode_sets_the_charges_filter_state_and_reads_no_shared_data() {
    let roles = Roles::new(&config(), Some("chat_completions"));
    let (mut gateway, downstream) = admitted(&roles);
    assert_eq!(property(&downstream, state::KEY).as_deref(), Some("app"));
    assert_eq!(property(&downstream, state::TEAM).as_deref(), Some("t"));
    assert_eq!(property(&downstream, state::REQUESTS).as_deref(), Some("1"));
    let month = property(&downstream, state::MONTH).unwrap();
    assert!(month.len() == 7 && month.starts_with("20"), "{month}");
    let tokens = number(&downstream, state::TOKENS);
    let units = number(&downstream, state::USD);
    // The estimate: 100 answer tokens at $30/M alone are $0.003, 30 units.
    assert!(tokens > 100 && units > 30, "{tokens} {units}");
    // Only max_parallel is counted in this Envoy.
    let shared: Vec<Call> = downstream
        .calls()
        .into_iter()
        .filter(|c| matches!(c, Call::SharedData(_) | Call::SetSharedData(_)))
        .collect();
    assert!(!shared.is_empty());
    assert!(
        shared.iter().all(|c| matches!(c,
            Call::SharedData(k) | Call::SetSharedData(k) if k == "sb.key.app.parallel")),
        "{shared:?}"
    );

    // The answer: 5 tokens, $0.00009 (under one unit, carried). Both calls were counted.
    let upstream_host = first_attempt(&downstream);
    let mut upstream = roles.upstream();
    attempt(&mut upstream, &upstream_host);
    upstream_host.answer(200, &[("content-type", "application/json")], SUCCESS);
    answer(&mut upstream, &upstream_host);
    answered(&downstream, Stage::Rate);
    answered(&downstream, Stage::Budget);
    downstream.answer(200, &[], SUCCESS);
    respond(&mut gateway, &downstream);
    assert_eq!(number(&downstream, state::TOKENS_REFUND), tokens - 5);
    assert_eq!(number(&downstream, state::USD_REFUND), units);
    for unset in [
        state::TOKENS_EXTRA,
        state::USD_EXTRA,
        state::REQUESTS_REFUND,
        state::REQUESTS_EXTRA,
    ] {
        assert_eq!(property(&downstream, unset), None, "{unset}");
    }
    // The budget left is the service's to know: the ledger does not claim it.
    let ledger = property(&downstream, LEDGER_PROPERTY).unwrap();
    assert!(ledger.contains(r#""key":"app""#), "{ledger}");
    assert!(!ledger.contains("budget_remaining"), "{ledger}");
    let shared_after = downstream
        .calls()
        .into_iter()
        .filter(|c| matches!(c, Call::SharedData(k) if !k.ends_with(".parallel")))
        .count();
    assert_eq!(shared_after, 0);
}

#[test]
fn a_budget_refusal_is_an_openai_429_and_gives_back_the_rate_filters_charges() {
    let roles = Roles::new(&config(), Some("chat_completions"));
    let (mut gateway, downstream) = admitted(&roles);
    let tokens = number(&downstream, state::TOKENS);
    answered(&downstream, Stage::Rate);
    local_reply(
        &downstream,
        429,
        "request_rate_limited",
        &[
            (LIMIT_HEADER, "budget"),
            (OVER_HEADER, "limit=budget_month,team=t,period=2026-12"),
        ],
    );
    assert_eq!(
        gateway.on_response_headers(&downstream, true),
        Action::Pause
    );
    gateway.on_log(&downstream);
    let (status, headers, body) = downstream.local_reply.borrow().clone().unwrap();
    assert_eq!(status, 429);
    assert!(
        headers.iter().any(|(n, _)| n == "retry-after"),
        "{headers:?}"
    );
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"]["code"], "insufficient_quota");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("Budget exceeded for team `t`"),
        "{message}"
    );
    // The rate filter counted the request and its tokens: both go back. The refusing call
    // counted nothing.
    assert_eq!(number(&downstream, state::REQUESTS_REFUND), 1);
    assert_eq!(number(&downstream, state::TOKENS_REFUND), tokens);
    assert_eq!(property(&downstream, state::USD_REFUND), None);
    roles.stats.flush(&downstream);
    assert_eq!(
        stat(
            &downstream,
            &["key.rejections", "switchboard_team=t", "reason=budget"]
        ),
        Some(1)
    );
}

#[test]
fn a_rate_refusal_names_its_limit_and_refunds_nothing() {
    let roles = Roles::new(&config(), Some("chat_completions"));
    let (mut gateway, downstream) = admitted(&roles);
    local_reply(
        &downstream,
        429,
        "request_rate_limited",
        &[
            (LIMIT_HEADER, "rate"),
            (OVER_HEADER, "limit=rpm,key=app"),
            ("retry-after", "12"),
        ],
    );
    gateway.on_response_headers(&downstream, true);
    gateway.on_log(&downstream);
    let (status, headers, body) = downstream.local_reply.borrow().clone().unwrap();
    assert_eq!(status, 429);
    assert!(headers.contains(&("retry-after".into(), "12".into())));
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("key `app` on requests per minute: limit 10"));
    for name in [
        state::REQUESTS_REFUND,
        state::TOKENS_REFUND,
        state::USD_REFUND,
    ] {
        assert_eq!(property(&downstream, name), None, "{name}");
    }
    roles.stats.flush(&downstream);
    assert_eq!(
        stat(
            &downstream,
            &["key.rejections", "switchboard_key=app", "reason=rpm"]
        ),
        Some(1)
    );
}

#[test]
fn a_failed_service_is_a_503_when_failing_closed() {
    let roles = Roles::new(&config(), Some("chat_completions"));
    let (mut gateway, downstream) = admitted(&roles);
    local_reply(&downstream, 500, "rate_limiter_error", &[]);
    gateway.on_response_headers(&downstream, true);
    gateway.on_log(&downstream);
    let (status, headers, body) = downstream.local_reply.borrow().clone().unwrap();
    assert_eq!(status, 503);
    assert!(headers.contains(&("retry-after".into(), "1".into())));
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"]["type"], "upstream_error");
    // Envoy's other errors are not mistaken for it.
    let roles = Roles::new(&config(), Some("chat_completions"));
    let (mut gateway, downstream) = admitted(&roles);
    local_reply(&downstream, 503, "no_healthy_upstream", &[]);
    gateway.on_response_headers(&downstream, true);
    assert!(downstream.local_reply.borrow().is_none());
}

#[test]
fn an_uncounted_admission_is_a_miss_charged_after_the_fact() {
    let roles = Roles::new(&config(), Some("chat_completions"));
    let (mut gateway, downstream) = admitted(&roles);
    let upstream_host = first_attempt(&downstream);
    let mut upstream = roles.upstream();
    attempt(&mut upstream, &upstream_host);
    upstream_host.answer(200, &[("content-type", "application/json")], SUCCESS);
    answer(&mut upstream, &upstream_host);
    // No metadata: the service never answered either admission filter (fail-open).
    downstream.answer(200, &[], SUCCESS);
    respond(&mut gateway, &downstream);
    assert_eq!(number(&downstream, state::REQUESTS_EXTRA), 1);
    assert_eq!(number(&downstream, state::TOKENS_EXTRA), 5);
    assert_eq!(property(&downstream, state::TOKENS_REFUND), None);
    roles.stats.flush(&downstream);
    for stage in ["switchboard_limit=rate", "switchboard_limit=budget"] {
        assert_eq!(
            stat(
                &downstream,
                &["key.limit_misses", "switchboard_key=app", stage]
            ),
            Some(1),
            "{stage}"
        );
    }
}

#[test]
fn requests_without_fleet_limits_write_nothing_for_the_service() {
    let config = config().replace(
        "team: t, rpm: 10, tpm: 10000, max_parallel: 4,\n      budget: {usd: 1, period: day}",
        "max_parallel: 4",
    );
    assert!(config.contains("max_parallel: 4}"), "{config}");
    let roles = Roles::new(&config, Some("chat_completions"));
    let (_, downstream) = admitted(&roles);
    let written: Vec<Call> = downstream
        .calls()
        .into_iter()
        .filter(|c| matches!(c, Call::SetProperty(p, _) if p[0].starts_with("sb_")))
        .collect();
    assert_eq!(written, []);
}

#[test]
fn a_first_attempt_finds_its_request_by_the_handoff_header() {
    // With the service called between the gateway role and the router, another request's
    // first attempt may start before this one's: none may take the request parked last.
    let roles = Roles::new(&config(), Some("chat_completions"));
    let (mut first, first_host) = admitted(&roles);
    let other = br#"{"model":"priced","messages":[{"role":"user","content":"ho"}]}"#;
    let other_host = FakeHost::request(&[("authorization", "Bearer secret")], other);
    assert_eq!(send(&mut roles.gateway(), &other_host), Action::Continue);
    let handoff = first_host.request_header_value(HANDOFF_HEADER).unwrap();
    let upstream_host = first_host.sibling(&[(HANDOFF_HEADER, &handoff)], CHAT);
    let mut upstream = roles.upstream();
    attempt(&mut upstream, &upstream_host);
    assert!(upstream_host
        .reads()
        .contains(&Call::RequestHeader(HANDOFF_HEADER.into())));
    upstream_host.answer(200, &[("content-type", "application/json")], SUCCESS);
    answer(&mut upstream, &upstream_host);
    // The answer landed in the first request's record: its gateway role needs no status.
    answered(&first_host, Stage::Rate);
    answered(&first_host, Stage::Budget);
    first_host.answer(200, &[], SUCCESS);
    first_host.forget_calls();
    respond(&mut first, &first_host);
    assert!(!first_host
        .reads()
        .contains(&Call::ResponseHeader(":status".into())));
}
