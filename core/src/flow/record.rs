//! The per-request record. The gateway role opens it when a proxied request arrives; every
//! upstream attempt writes what happened to it (which deployment, how it failed, the usage of
//! the answer); the gateway role, which owns the downstream response, closes it when the
//! response ends: metrics, response headers and the access-log fields all come from here.
//!
//! Only the attempt whose 2xx answer reaches the client is priced: failed attempts cost
//! nothing, and count as upstream errors by type.

use super::metrics::{
    status_class, ErrorType, Metric, MetricsSink, Rejection, Series, Target, TokenType,
};
use crate::api::Operation;
use crate::limits::store::Store;
use crate::limits::{Caller, Limits, SubjectRef};
use crate::names::{ANSWER_HEADER, COST_HEADER};
use crate::runtime::Runtime;
use crate::usage::pricing::Cost;
use crate::usage::Usage;
use serde::Serialize;
use serde_json::value::RawValue;
use std::fmt::Write as _;

/// What is known about one request, in host-clock nanoseconds where a time.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    pub operation: Operation,
    /// The public model, once resolved.
    pub model: Option<usize>,
    pub stream: bool,
    started_ns: u64,
    first_chunk_ns: Option<u64>,
    /// Time inside the filter's callbacks, for the requests whose overhead is measured (each
    /// measurement costs two clock reads per callback, so not every request pays for one).
    overhead_ns: Option<u64>,
    attempts: u32,
    /// Deployment of the latest attempt, and whether its answer was seen.
    current: Option<(usize, bool)>,
    failures: Vec<(usize, ErrorType)>,
    answer: Option<Answer>,
    /// The status of the latest attempt's answer, once the upstream role released it in
    /// OpenAI's shape. `None`: the answer the gateway sees is Envoy's own (e.g. a
    /// connect-failure 503, or a timeout that struck while the upstream role buffered).
    translated_status: Option<u16>,
    /// The translated answer's body when the provider's answer had none, which the upstream
    /// role cannot add (Envoy has no body to write to): the gateway role answers with it.
    bodiless: Option<Bodiless>,
}

/// An answer that must be given a body by the gateway role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bodiless {
    pub body: Vec<u8>,
    pub retry_after: Option<u64>,
}

/// The attempt whose answer the client got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Answer {
    deployment: usize,
    usage: Option<Usage>,
}

/// The request's outcome, for headers and the access log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub model: Option<String>,
    pub provider: Option<String>,
    pub deployment: Option<String>,
    pub attempts: u32,
    pub usage: Option<Usage>,
    /// `None` when the usage or the deployment's price is unknown.
    pub cost: Option<Cost>,
    pub duration_ms: u64,
    pub time_to_first_chunk_ms: Option<u64>,
    /// `None` for a request whose overhead was not measured.
    pub overhead_us: Option<u64>,
}

/// At most this many failures are kept (more attempts than this need a strange retry policy).
const MAX_FAILURES: usize = 16;

impl RequestRecord {
    /// A request that started at `started_ns`; `timed`: measure its time inside the filter.
    pub fn new(operation: Operation, started_ns: u64, timed: bool) -> Self {
        RequestRecord {
            operation,
            model: None,
            stream: false,
            started_ns,
            first_chunk_ns: None,
            overhead_ns: timed.then_some(0),
            attempts: 0,
            current: None,
            failures: Vec::new(),
            answer: None,
            translated_status: None,
            bodiless: None,
        }
    }

    /// Whether this request's time inside the filter is measured.
    pub fn is_timed(&self) -> bool {
        self.overhead_ns.is_some()
    }

    pub fn add_overhead(&mut self, ns: u64) {
        if let Some(total) = self.overhead_ns.as_mut() {
            *total = total.saturating_add(ns);
        }
    }

    /// Attempts begun so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// When the request started (host clock, ns).
    pub fn started_ns(&self) -> u64 {
        self.started_ns
    }

    /// The gateway role saw response bytes of a stream.
    pub fn first_chunk(&mut self, now_ns: u64) {
        self.first_chunk_ns.get_or_insert(now_ns);
    }

    /// An upstream attempt starts on a deployment. An earlier attempt that never saw an
    /// answer was refused or reset before one.
    pub fn begin_attempt(&mut self, deployment: usize) {
        if let Some((previous, false)) = self.current {
            self.fail(previous, ErrorType::NoResponse);
        }
        self.attempts = self.attempts.saturating_add(1);
        self.current = Some((deployment, false));
        self.translated_status = None;
    }

    /// The upstream role released the latest attempt's answer, translated, with `status`.
    pub fn answer_translated(&mut self, status: u16) {
        self.translated_status = Some(status);
        self.bodiless = None;
    }

    /// The upstream role translated an answer that came without a body into `body`.
    pub fn answer_without_body(&mut self, status: u16, body: Bodiless) {
        self.translated_status = Some(status);
        self.bodiless = Some(body);
    }

    /// The body the answer reaching the client still needs (see `answer_without_body`).
    pub fn take_bodiless(&mut self) -> Option<Bodiless> {
        self.bodiless.take()
    }

    /// The status of the answer reaching the client when it is the upstream role's
    /// translation (the gateway role then need not ask Envoy for it).
    pub fn translated_status(&self) -> Option<u16> {
        self.translated_status
    }

    /// The attempt in flight failed (its error answer, or it could not be sent). Only its
    /// first outcome counts.
    pub fn attempt_failed(&mut self, error: ErrorType) {
        if let Some((deployment, seen @ false)) = self.current.as_mut() {
            *seen = true;
            let deployment = *deployment;
            self.fail(deployment, error);
        }
    }

    /// The attempt in flight started a 2xx stream: it is the answer, its usage comes at the end.
    pub fn answer_started(&mut self) {
        if let Some((deployment, seen)) = self.current.as_mut() {
            *seen = true;
            self.answer = Some(Answer {
                deployment: *deployment,
                usage: None,
            });
        }
    }

    /// The attempt in flight answered 2xx; `usage` as the provider reported it. A stream that
    /// did not complete still answered (the client got its start) and is also a failure.
    pub fn attempt_answered(&mut self, usage: Option<Usage>, complete: bool) {
        if let Some((deployment, seen)) = self.current.as_mut() {
            *seen = true;
            let deployment = *deployment;
            self.answer = Some(Answer { deployment, usage });
            if !complete {
                self.fail(deployment, ErrorType::StreamInterrupted);
            }
        }
    }

    fn fail(&mut self, deployment: usize, error: ErrorType) {
        if self.failures.len() < MAX_FAILURES {
            self.failures.push((deployment, error));
        }
    }

    /// What the series of this request are labelled with: the model asked for, and the
    /// deployment that answered, else the last one tried.
    fn target(&self) -> Target {
        Target {
            model: self.model,
            deployment: self
                .answer
                .map(|a| a.deployment)
                .or(self.current.map(|(d, _)| d)),
        }
    }

    /// Usage and cost of the answer, known as soon as the answering attempt ended.
    pub fn usage_and_cost(&self, rt: &Runtime) -> (Option<Usage>, Option<Cost>) {
        let Some(answer) = self.answer else {
            return (None, None);
        };
        let cost = answer
            .usage
            .zip(rt.price(answer.deployment))
            .map(|(usage, price)| price.cost(&usage));
        (answer.usage, cost)
    }

    /// Closes the record: records every metric into `sink` and returns the summary. `status`
    /// is what the client got; `now_ns` is when the response ended.
    pub fn finish(
        &mut self,
        rt: &Runtime,
        status: u16,
        now_ns: u64,
        sink: &mut dyn MetricsSink,
    ) -> Summary {
        if let Some((deployment, false)) = self.current {
            // The last attempt never answered: Envoy gave up on it (timeout) or it was reset.
            let error = if status == 504 {
                ErrorType::Timeout
            } else {
                ErrorType::NoResponse
            };
            self.current = Some((deployment, true));
            self.fail(deployment, error);
        }
        let operation = self.operation;
        let target = self.target();
        let mut add = |metric: Metric, target: Target, extra: u8, value: u64| {
            sink.add(
                Series {
                    metric,
                    operation,
                    target,
                    extra,
                    subject: None,
                },
                value,
            )
        };
        add(Metric::Requests, target, status_class(status), 1);
        let (usage, cost) = self.usage_and_cost(rt);
        if let Some(u) = usage {
            for (kind, n) in [
                (TokenType::Input, u.prompt_tokens),
                (TokenType::Output, u.completion_tokens),
                (TokenType::CacheRead, u.cached_tokens),
                (TokenType::CacheWrite, u.cache_write_tokens),
                (TokenType::Reasoning, u.reasoning_tokens),
            ] {
                add(Metric::Tokens, target, kind as u8, n);
            }
        }
        if let Some(c) = cost {
            add(Metric::Cost, target, 0, c.nano_usd());
        }
        let duration_ms = now_ns.saturating_sub(self.started_ns) / 1_000_000;
        add(Metric::Duration, target, 0, duration_ms);
        let ttft_ms = match (self.stream, self.answer, self.first_chunk_ns) {
            (true, Some(_), Some(at)) => Some(at.saturating_sub(self.started_ns) / 1_000_000),
            _ => None,
        };
        if let Some(ms) = ttft_ms {
            add(Metric::TimeToFirstChunk, target, 0, ms);
        }
        let overhead_us = self.overhead_ns.map(|ns| ns / 1000);
        if let Some(us) = overhead_us {
            add(Metric::Overhead, target, 0, us);
        }
        if self.attempts > 1 {
            add(Metric::Fallbacks, target, 0, 1);
        }
        for &(deployment, error) in &self.failures {
            let failed = Target {
                model: self.model,
                deployment: Some(deployment),
            };
            add(Metric::UpstreamErrors, failed, error as u8, 1);
        }
        let deployment = target.deployment.and_then(|d| rt.deployments.get(d));
        Summary {
            model: self
                .model
                .or(deployment.map(|d| d.model))
                .and_then(|m| rt.models.get(m))
                .map(|m| m.name.clone()),
            provider: deployment
                .and_then(|d| rt.provider_of(d))
                .map(|p| p.name.clone()),
            deployment: deployment.map(|d| d.id.clone()),
            attempts: self.attempts,
            usage,
            cost,
            duration_ms,
            time_to_first_chunk_ms: ttft_ms,
            overhead_us,
        }
    }
}

/// What the gateway role knows of the request line, for the ledger: the path as the client
/// sent it (`%REQ(:PATH)%` in the access log would show the provider's: every attempt
/// rewrites the one header map), or its endpoint's when the route chose the instance. The
/// method and request id come from Envoy's own access-log fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestLine {
    pub path: String,
}

/// The request's fields in the spend ledger, in log order; unknown values are `null`, never 0.
#[derive(Serialize)]
struct LedgerFields<'a> {
    path: &'a str,
    model: Option<&'a str>,
    provider: Option<&'a str>,
    deployment: Option<&'a str>,
    attempts: u32,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cached_tokens: Option<u64>,
    cache_write_tokens: Option<u64>,
    reasoning_tokens: Option<u64>,
    /// Exact decimal USD, written as a JSON number.
    cost_usd: Option<Box<RawValue>>,
    time_to_first_chunk_ms: Option<u64>,
    overhead_us: Option<u64>,
}

/// The ledger fields as JSON object members after a comma (`,"path":"…",…`): the
/// rendered access log appends them to Envoy's own fields inside one JSON object, and a
/// request the filter never saw simply has none (Envoy writes an absent value as nothing).
/// Strings are JSON-escaped here: Envoy's text format would not escape them. `extra` fields
/// (e.g. who called) follow as strings.
pub fn ledger_fragment(
    request: &RequestLine,
    summary: Option<&Summary>,
    extra: &[(&str, String)],
) -> String {
    let usage = summary.and_then(|s| s.usage);
    let fields = LedgerFields {
        path: &request.path,
        model: summary.and_then(|s| s.model.as_deref()),
        provider: summary.and_then(|s| s.provider.as_deref()),
        deployment: summary.and_then(|s| s.deployment.as_deref()),
        attempts: summary.map_or(0, |s| s.attempts),
        input_tokens: usage.map(|u| u.prompt_tokens),
        output_tokens: usage.map(|u| u.completion_tokens),
        cached_tokens: usage.map(|u| u.cached_tokens),
        cache_write_tokens: usage.map(|u| u.cache_write_tokens),
        reasoning_tokens: usage.map(|u| u.reasoning_tokens),
        cost_usd: summary
            .and_then(|s| s.cost)
            .and_then(|c| RawValue::from_string(c.usd()).ok()),
        time_to_first_chunk_ms: summary.and_then(|s| s.time_to_first_chunk_ms),
        overhead_us: summary.and_then(|s| s.overhead_us),
    };
    // The object's members, after a comma: `{...}` becomes `,...` in place.
    let mut fragment = serde_json::to_string(&fields).unwrap_or_default();
    if !(fragment.starts_with('{') && fragment.ends_with('}')) {
        return String::new();
    }
    fragment.pop();
    fragment.replace_range(..1, ",");
    for (name, value) in extra {
        if let (Ok(name), Ok(value)) = (serde_json::to_string(name), serde_json::to_string(value)) {
            let _ = write!(fragment, ",{name}:{value}");
        }
    }
    fragment
}

/// The ledger's `extra` fields of a virtual key's request: the key, its team, and what is left
/// of their budgets after this request (pico-dollars in `remaining`, as `Limits` counts them).
pub fn caller_fields(
    limits: &Limits,
    caller: Caller,
    remaining: &[(SubjectRef, u64)],
) -> Vec<(&'static str, String)> {
    let Caller::Key(k) = caller else {
        return Vec::new();
    };
    let Some(key) = limits.keys.get(k) else {
        return Vec::new();
    };
    let mut fields = vec![("key", key.subject.name.clone())];
    if let Some(team) = key.team.and_then(|t| limits.teams.get(t)) {
        fields.push(("team", team.name.clone()));
    }
    for &(subject, left) in remaining {
        let name = match subject {
            SubjectRef::Key(_) => "key_budget_remaining_usd",
            SubjectRef::Team(_) => "team_budget_remaining_usd",
        };
        fields.push((name, Cost(left).usd()));
    }
    fields
}

/// The headers of a proxied answer: `x-switchboard`, an RFC 8941 dictionary of the deployment
/// that answered, its provider, the attempts it took and (JSON answers) the usage; and
/// `x-switchboard-cost` in USD, when known. Two headers, not one per field: every header
/// written is a host call, each dearer than everything computed here.
pub fn answer_headers(rt: &Runtime, record: &RequestRecord) -> Vec<(&'static str, String)> {
    let mut headers = Vec::with_capacity(2);
    let deployment = record
        .target()
        .deployment
        .and_then(|d| rt.deployments.get(d));
    let Some(deployment) = deployment else {
        return headers;
    };
    let mut summary = String::with_capacity(160);
    if let Some(p) = rt.provider_of(deployment) {
        summary.push_str("provider=");
        push_sf_string(&mut summary, &p.name);
        summary.push_str(", ");
    }
    summary.push_str("deployment=");
    push_sf_string(&mut summary, &deployment.id);
    // Writing to a String cannot fail.
    let _ = write!(summary, ", attempts={}", record.attempts);
    let (usage, cost) = record.usage_and_cost(rt);
    if let Some(u) = usage {
        let _ = write!(
            summary,
            ", input={}, output={}, cached={}, cache-write={}, reasoning={}",
            u.prompt_tokens,
            u.completion_tokens,
            u.cached_tokens,
            u.cache_write_tokens,
            u.reasoning_tokens
        );
    }
    headers.push((ANSWER_HEADER, summary));
    if let Some(c) = cost {
        headers.push((COST_HEADER, c.usd()));
    }
    headers
}

/// The series counting a request the gateway refused itself (`model`: once the body named it),
/// labelled with the key or team whose check refused it.
pub fn rejection(
    op: Operation,
    reason: Rejection,
    subject: Option<SubjectRef>,
    model: Option<usize>,
) -> Series {
    Series {
        metric: Metric::KeyRejections,
        operation: op,
        target: Target {
            model,
            deployment: None,
        },
        extra: reason.index(),
        subject,
    }
}

/// The series counting a request of `key` that the fleet's `stage` let through uncounted.
pub fn limit_miss(
    op: Operation,
    stage: crate::limits::fleet::Stage,
    key: usize,
    model: Option<usize>,
) -> Series {
    Series {
        metric: Metric::KeyLimitMisses,
        operation: op,
        target: Target {
            model,
            deployment: None,
        },
        extra: stage as u8,
        subject: Some(SubjectRef::Key(key)),
    }
}

/// Records a finished request of a virtual key: its requests and spend, and the budgets left
/// to it and its team (also returned, for the ledger), as `store` holds them now.
#[allow(clippy::too_many_arguments)]
pub fn key_metrics(
    rt: &Runtime,
    store: &dyn Store,
    key: usize,
    op: Operation,
    status: u16,
    summary: &Summary,
    model: Option<usize>,
    now_ms: u64,
    sink: &mut dyn MetricsSink,
) -> Vec<(SubjectRef, u64)> {
    let limits = &rt.limits;
    let series = |metric, extra, subject| Series {
        metric,
        operation: op,
        target: Target {
            model,
            deployment: None,
        },
        extra,
        subject: Some(subject),
    };
    let me = SubjectRef::Key(key);
    sink.add(series(Metric::KeyRequests, status_class(status), me), 1);
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
        if let Some(left) = limits.remaining_budget(store, subject, now_ms) {
            sink.add(
                series(Metric::BudgetRemaining, 0, subject),
                Cost(left).nano_usd(),
            );
            remaining.push((subject, left));
        }
    }
    remaining
}

/// Appends `value` as an RFC 8941 string (printable ASCII; anything else becomes `?`).
fn push_sf_string(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::metrics::Labels;
    use crate::testkit::test;
    use std::collections::BTreeMap;

    /// Records what the filter would send to Envoy, by stat name.
    #[derive(Default)]
    struct Recorder {
        labels: Option<Labels>,
        values: BTreeMap<String, Vec<u64>>,
    }

    impl MetricsSink for Recorder {
        fn add(&mut self, series: Series, value: u64) {
            let name = self.labels.as_ref().unwrap().stat_name(&series);
            let name = name.replace("switchboard.", "").replace(
                "gen_ai_operation_name=chat.switchboard_api=openai_chat.",
                "",
            );
            self.values.entry(name).or_default().push(value);
        }
    }

    fn runtime() -> Runtime {
        Runtime::from_text(
            r#"
providers:
  oa: {kind: openai, api_key: k}
  az: {kind: azure, api_key: k, base_url: "https://x.openai.azure.com"}
models:
  - name: gpt
    price: {input: 3, output: 15, cache_read: 0.3, cache_write: 3.75}
    deployments: [{provider: oa, model: g}]
    fallbacks: [backup]
  - name: backup
    deployments: [{provider: az, model: b, price: {input: 1, output: 2}}]
  - name: unpriced
    deployments: [{provider: oa, model: u}]
"#,
            &|_: &str| None,
        )
        .unwrap()
    }

    fn usage(prompt: u64, completion: u64, cached: u64, reasoning: u64) -> Usage {
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            cached_tokens: cached,
            cache_write_tokens: 0,
            reasoning_tokens: reasoning,
        }
    }

    fn finish(record: &mut RequestRecord, status: u16) -> (Summary, Vec<(String, Vec<u64>)>) {
        let rt = runtime();
        let mut sink = Recorder {
            labels: Some(Labels::new(&rt)),
            ..Default::default()
        };
        let summary = record.finish(&rt, status, 250_000_000 + 1_000_000_000, &mut sink);
        (summary, sink.values.into_iter().collect())
    }

    const GPT: &str =
        "gen_ai_request_model=gpt.gen_ai_provider_name=oa.switchboard_deployment=gpt_0";
    /// The fallback deployment serving a request for `gpt`.
    const BACKUP: &str =
        "gen_ai_request_model=gpt.gen_ai_provider_name=az.switchboard_deployment=backup_0";

    fn series(metric: &str, labels: &str, extra: &str, values: &[u64]) -> (String, Vec<u64>) {
        let name = if extra.is_empty() {
            format!("{metric}.{labels}")
        } else {
            format!("{metric}.{labels}.{extra}")
        };
        (name, values.to_vec())
    }

    #[test]
    fn a_streamed_answer_is_counted_and_priced() {
        let mut r = RequestRecord::new(Operation::ChatCompletions, 1_000_000_000, true);
        r.model = Some(0);
        r.stream = true;
        r.begin_attempt(0);
        r.answer_started();
        r.first_chunk(1_000_000_000 + 40_000_000);
        r.add_overhead(85_000);
        r.attempt_answered(Some(usage(120, 30, 20, 5)), true);
        let (summary, values) = finish(&mut r, 200);
        // 100*3 + 20*0.3 + 30*15 = 756 µ$/M → $0.000756 = 756000 nano-dollars
        assert_eq!(summary.cost, Some(Cost(756_000_000)));
        assert_eq!(
            values,
            [
                series("cost_nano_usd", GPT, "", &[756_000]),
                series("gateway.overhead", GPT, "", &[85]),
                series("gen_ai.client.operation.duration", GPT, "", &[250]),
                series(
                    "gen_ai.client.operation.time_to_first_chunk",
                    GPT,
                    "",
                    &[40]
                ),
                series(
                    "gen_ai.client.token.usage",
                    GPT,
                    "gen_ai_token_type=cache_read",
                    &[20]
                ),
                series(
                    "gen_ai.client.token.usage",
                    GPT,
                    "gen_ai_token_type=cache_write",
                    &[0]
                ),
                series(
                    "gen_ai.client.token.usage",
                    GPT,
                    "gen_ai_token_type=input",
                    &[120]
                ),
                series(
                    "gen_ai.client.token.usage",
                    GPT,
                    "gen_ai_token_type=output",
                    &[30]
                ),
                series(
                    "gen_ai.client.token.usage",
                    GPT,
                    "gen_ai_token_type=reasoning",
                    &[5]
                ),
                series("requests", GPT, "http_status_class=2xx", &[1]),
            ]
        );
        // The ledger fragment completes Envoy's fields into one JSON object.
        let line = RequestLine {
            path: "/v1/chat/\"completions\"".into(),
        };
        let fragment = ledger_fragment(&line, Some(&summary), &[("key", "shop\n".into())]);
        let entry: serde_json::Value =
            serde_json::from_str(&format!("{{\"status\":200{fragment}}}")).unwrap();
        assert_eq!(
            entry,
            serde_json::json!({
                "status": 200, "path": "/v1/chat/\"completions\"", "model": "gpt", "provider": "oa",
                "deployment": "gpt/0", "attempts": 1, "input_tokens": 120, "output_tokens": 30,
                "cached_tokens": 20, "cache_write_tokens": 0, "reasoning_tokens": 5,
                "cost_usd": 0.000756, "time_to_first_chunk_ms": 40, "overhead_us": 85,
                "key": "shop\n"
            })
        );
        assert!(
            fragment.contains(r#""cost_usd":0.000756,"#),
            "exact decimal: {fragment}"
        );
    }

    #[test]
    fn failed_attempts_cost_nothing_and_count_as_errors() {
        let mut r = RequestRecord::new(Operation::ChatCompletions, 1_000_000_000, true);
        r.model = Some(0);
        r.begin_attempt(0);
        // The provider's 429 answer; usage on an error answer is never priced.
        r.attempt_failed(ErrorType::of_answer(429, 429));
        r.begin_attempt(1);
        r.attempt_answered(Some(usage(1000, 500, 0, 0)), true);
        let rt = runtime();
        let headers = answer_headers(&rt, &r);
        let (summary, values) = finish(&mut r, 200);
        // Only the answer: 1000*1 + 500*2 = 2000 µ$/M → $0.002
        assert_eq!(summary.cost.map(Cost::usd).as_deref(), Some("0.002"));
        assert_eq!(summary.attempts, 2);
        let names: Vec<&str> = values.iter().map(|(n, _)| n.as_str()).collect();
        assert!(
            names.contains(&format!("fallbacks.{BACKUP}").as_str()),
            "{names:#?}"
        );
        assert!(values.contains(&series(
            "upstream.errors",
            GPT,
            "error_type=rate_limited",
            &[1]
        )));
        assert!(values.contains(&series("cost_nano_usd", BACKUP, "", &[2_000_000])));
        assert!(!names
            .iter()
            .any(|n| n.starts_with("cost_nano_usd.") && n.contains("gpt_0")));
        assert!(!names.iter().any(|n| n.contains("time_to_first_chunk")));
        assert_eq!(
            headers,
            [
                (
                    "x-switchboard",
                    "provider=\"az\", deployment=\"backup/0\", attempts=2, input=1000, \
                     output=500, cached=0, cache-write=0, reasoning=0"
                        .to_owned()
                ),
                ("x-switchboard-cost", "0.002".to_owned()),
            ]
        );
    }

    #[test]
    fn names_in_the_answer_header_are_structured_field_strings() {
        let mut out = String::new();
        push_sf_string(&mut out, "a \"quoted\" \\ name é");
        assert_eq!(out, r#""a \"quoted\" \\ name ?""#);
    }

    #[test]
    fn attempts_without_an_answer_are_no_response_or_timeout() {
        let mut r = RequestRecord::new(Operation::ChatCompletions, 1_000_000_000, true);
        r.model = Some(0);
        r.begin_attempt(0); // connection refused: Envoy retries without an answer
        r.begin_attempt(1); // the fallback hangs until Envoy's timeout
        let (summary, values) = finish(&mut r, 504);
        assert_eq!(summary.cost, None);
        assert_eq!(summary.usage, None);
        assert!(values.contains(&series(
            "upstream.errors",
            GPT,
            "error_type=no_response",
            &[1]
        )));
        assert!(values.contains(&series(
            "upstream.errors",
            BACKUP,
            "error_type=timeout",
            &[1]
        )));
        assert!(values.contains(&series("requests", BACKUP, "http_status_class=5xx", &[1])));
        assert!(!values
            .iter()
            .any(|(n, _)| n.starts_with("gen_ai.client.token")));
    }

    #[test]
    fn refusals_before_routing_and_unpriced_answers() {
        let mut bad = RequestRecord::new(Operation::Embeddings, 1_000_000_000, false);
        let rt = runtime();
        assert!(answer_headers(&rt, &bad).is_empty());
        let (summary, values) = finish(&mut bad, 400);
        assert_eq!(summary.model, None);
        assert_eq!(summary.overhead_us, None, "not measured: not reported as 0");
        assert!(!values
            .iter()
            .any(|(n, _)| n.starts_with("gateway.overhead")));
        let none =
            "gen_ai_request_model=none.gen_ai_provider_name=none.switchboard_deployment=none";
        assert!(values.contains(&(
            format!("requests.gen_ai_operation_name=embeddings.switchboard_api=openai_embeddings.{none}.http_status_class=4xx"),
            vec![1]
        )));
        let fragment = ledger_fragment(&RequestLine::default(), Some(&summary), &[]);
        assert_eq!(
            fragment,
            r#","path":"","model":null,"provider":null,"deployment":null,"attempts":0,"input_tokens":null,"output_tokens":null,"cached_tokens":null,"cache_write_tokens":null,"reasoning_tokens":null,"cost_usd":null,"time_to_first_chunk_ms":null,"overhead_us":null"#
        );

        let mut unpriced = RequestRecord::new(Operation::ChatCompletions, 1_000_000_000, false);
        unpriced.model = Some(2);
        unpriced.begin_attempt(2);
        unpriced.attempt_answered(Some(usage(10, 5, 0, 0)), false);
        let (summary, values) = finish(&mut unpriced, 200);
        assert_eq!(summary.cost, None, "no price: cost unknown, not zero");
        assert!(!values.iter().any(|(n, _)| n.starts_with("cost")));
        let tokens = values
            .iter()
            .filter(|(n, _)| n.starts_with("gen_ai.client.token"))
            .count();
        assert_eq!(tokens, 5);
        assert!(values
            .iter()
            .any(|(n, v)| n.ends_with("error_type=stream_interrupted") && v == &[1]));
    }

    #[test]
    fn key_requests_log_the_key_team_and_budgets_left() {
        let hash = |k: &str| crate::limits::keys::to_hex(&crate::limits::keys::sha256(k));
        let rt = Runtime::from_text(
            &format!(
                "providers: {{p: {{kind: openai, api_key: k}}}}\n\
                 models: [{{name: gpt, deployments: [{{provider: p, model: x}}]}}]\n\
                 teams: [{{name: web}}]\n\
                 keys: [{{name: shop, sha256: \"{}\", team: web}}, {{name: solo, sha256: \"{}\"}}]\n",
                hash("a"),
                hash("b")
            ),
            &|_: &str| None,
        )
        .unwrap();
        let limits = &rt.limits;
        let remaining = [
            (SubjectRef::Key(0), 2_500_000_000_000),
            (SubjectRef::Team(0), 0),
        ];
        assert_eq!(
            caller_fields(limits, Caller::Key(0), &remaining),
            [
                ("key", "shop".to_owned()),
                ("team", "web".to_owned()),
                ("key_budget_remaining_usd", "2.5".to_owned()),
                ("team_budget_remaining_usd", "0".to_owned()),
            ]
        );
        assert_eq!(
            caller_fields(limits, Caller::Key(1), &[]),
            [("key", "solo".to_owned())]
        );
        assert!(caller_fields(limits, Caller::Anonymous, &[]).is_empty());
        // They close the ledger line as string members.
        let fields = caller_fields(limits, Caller::Key(0), &remaining);
        let fragment = ledger_fragment(&RequestLine::default(), None, &fields);
        let entry: serde_json::Value =
            serde_json::from_str(&format!("{{\"status\":429{fragment}}}")).unwrap();
        assert_eq!(entry["key"], "shop");
        assert_eq!(entry["team"], "web");
        assert_eq!(entry["key_budget_remaining_usd"], "2.5");
        assert_eq!(entry["team_budget_remaining_usd"], "0");
    }
}
