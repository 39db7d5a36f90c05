//! The metrics Switchboard exports, named once here, and how a series becomes an Envoy stat
//! name. `proxy/metrics.rs` defines each series in Envoy once per VM and caches its id; the
//! recording logic (`flow::record`) only speaks to a [`MetricsSink`], so it is tested natively.
//!
//! Labels travel inside the stat name as `.<key>=<value>` segments, e.g.
//! `switchboard.requests.gen_ai_operation_name=chat.switchboard_api=openai_chat.gen_ai_request_model=gpt-4o...`, and
//! `switchboard render` writes one `stats_tags` regex per key that cuts the segment out and
//! turns it into a Prometheus label: `switchboard_requests{gen_ai_request_model="gpt-4o",...}`.
//! Values are configuration names only (never client input, never secrets), with everything
//! outside `[A-Za-z0-9_-]` replaced by `_`, so a value can hold neither `.` nor `=` and a
//! segment can only be read one way.

use crate::api::Operation;
use crate::limits::{Limit, SubjectRef};
use crate::names::STATS_PREFIX;
use crate::runtime::Runtime;

/// Every metric, with the OpenTelemetry GenAI name where one exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    /// Proxied requests, by status class of the answer the client got.
    Requests,
    /// Tokens by `gen_ai.token.type`: input (all prompt tokens), output (all completion
    /// tokens), and the subsets cache_read, cache_write (of input) and reasoning (of output).
    Tokens,
    /// Spend in nano-dollars (1e-9 USD): Envoy counters hold integers.
    Cost,
    /// Whole request, as the client saw it, in milliseconds.
    Duration,
    /// Streams: first response chunk, in milliseconds.
    TimeToFirstChunk,
    /// Time spent inside the filter's callbacks (both roles), in microseconds.
    Overhead,
    /// Requests that needed more than one attempt.
    Fallbacks,
    /// Failed attempts, by `error.type`.
    UpstreamErrors,
    /// Requests of a virtual key, by status class (labelled with the key and its team).
    KeyRequests,
    /// Spend of a virtual key in nano-dollars (labelled with the key and its team).
    KeyCost,
    /// Requests refused by authentication, model access or a limit, by `switchboard.reason`;
    /// labelled with the key or team whose limit refused (none for an unknown key).
    KeyRejections,
    /// What is left of a key's or team's budget in this period, nano-dollars (a gauge).
    BudgetRemaining,
    /// Fleet backend: requests of a key admitted without the rate-limit service counting
    /// them (it failed and `failure_mode` is open), by `switchboard.limit` (rate, budget).
    KeyLimitMisses,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Histogram,
    Gauge,
}

/// The label keys, as stat-name segment keys and as the tag names Prometheus shows
/// (dots become underscores there).
pub const LABELS: &[(&str, &str)] = &[
    ("gen_ai_operation_name", "gen_ai.operation.name"),
    ("switchboard_api", "switchboard.api"),
    ("gen_ai_request_model", "gen_ai.request.model"),
    ("gen_ai_provider_name", "gen_ai.provider.name"),
    ("switchboard_deployment", "switchboard.deployment"),
    ("http_status_class", "http.status_class"),
    ("gen_ai_token_type", "gen_ai.token.type"),
    ("error_type", "error.type"),
    ("switchboard_key", "switchboard.key"),
    ("switchboard_team", "switchboard.team"),
    ("switchboard_reason", "switchboard.reason"),
    ("switchboard_limit", "switchboard.limit"),
];

impl Metric {
    pub const ALL: [Metric; 13] = [
        Metric::Requests,
        Metric::Tokens,
        Metric::Cost,
        Metric::Duration,
        Metric::TimeToFirstChunk,
        Metric::Overhead,
        Metric::Fallbacks,
        Metric::UpstreamErrors,
        Metric::KeyRequests,
        Metric::KeyCost,
        Metric::KeyRejections,
        Metric::BudgetRemaining,
        Metric::KeyLimitMisses,
    ];

    /// The name after `switchboard.`; Prometheus shows `switchboard_` + dots as underscores.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Requests => "requests",
            Metric::Tokens => "gen_ai.client.token.usage",
            Metric::Cost => "cost_nano_usd",
            Metric::Duration => "gen_ai.client.operation.duration",
            Metric::TimeToFirstChunk => "gen_ai.client.operation.time_to_first_chunk",
            Metric::Overhead => "gateway.overhead",
            Metric::Fallbacks => "fallbacks",
            Metric::UpstreamErrors => "upstream.errors",
            Metric::KeyRequests => "key.requests",
            Metric::KeyCost => "key.cost_nano_usd",
            Metric::KeyRejections => "key.rejections",
            Metric::BudgetRemaining => "budget.remaining_nano_usd",
            Metric::KeyLimitMisses => "key.limit_misses",
        }
    }

    pub fn kind(self) -> Kind {
        match self {
            Metric::Duration | Metric::TimeToFirstChunk | Metric::Overhead => Kind::Histogram,
            Metric::BudgetRemaining => Kind::Gauge,
            _ => Kind::Counter,
        }
    }

    /// The metric's own label: its key and the value of each index `Series::extra` takes.
    fn extra_label(self) -> Option<(&'static str, &'static [&'static str])> {
        match self {
            Metric::Requests | Metric::KeyRequests => Some(("http_status_class", &STATUS_CLASSES)),
            Metric::KeyRejections => Some(("switchboard_reason", &Rejection::NAMES)),
            Metric::Tokens => Some(("gen_ai_token_type", &TokenType::NAMES)),
            Metric::UpstreamErrors => Some(("error_type", &ErrorType::NAMES)),
            Metric::KeyLimitMisses => Some(("switchboard_limit", &STAGES)),
            _ => None,
        }
    }
}

/// `Series::extra` of `Metric::KeyLimitMisses`: the index of a `limits::fleet::Stage`.
const STAGES: [&str; 2] = ["rate", "budget"];

const STATUS_CLASSES: [&str; 6] = ["other", "1xx", "2xx", "3xx", "4xx", "5xx"];

/// `Series::extra` of `Metric::Requests` for an HTTP status.
pub fn status_class(status: u16) -> u8 {
    match status / 100 {
        c @ 1..=5 => c as u8,
        _ => 0,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum TokenType {
    Input,
    Output,
    CacheRead,
    CacheWrite,
    Reasoning,
}

impl TokenType {
    const NAMES: [&'static str; 5] = ["input", "output", "cache_read", "cache_write", "reasoning"];
}

/// Why an attempt failed (`error.type` of `switchboard_upstream_errors`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ErrorType {
    /// 429 (after mapping the provider's error).
    RateLimited,
    /// 401 / 403.
    Auth,
    /// Other 4xx.
    BadRequest,
    /// 408 / 504, or no answer before Envoy's timeout.
    Timeout,
    /// 5xx.
    ServerError,
    /// A 2xx answer that was not what the provider's API promises (502 to the client).
    InvalidAnswer,
    /// No answer at all: connection refused or reset.
    NoResponse,
    /// The gateway could not build the provider request (missing credential, unsupported
    /// parameter); nothing was sent.
    NotSent,
    /// A stream that ended without completing.
    StreamInterrupted,
}

impl ErrorType {
    const NAMES: [&'static str; 9] = [
        "rate_limited",
        "auth",
        "bad_request",
        "timeout",
        "server_error",
        "invalid_answer",
        "no_response",
        "not_sent",
        "stream_interrupted",
    ];

    pub fn name(self) -> &'static str {
        Self::NAMES.get(self as usize).copied().unwrap_or("other")
    }

    /// A failed answer: the provider's status and the status the client would see.
    pub fn of_answer(provider_status: u16, client_status: u16) -> ErrorType {
        if (200..300).contains(&provider_status) {
            return ErrorType::InvalidAnswer;
        }
        match client_status {
            429 => ErrorType::RateLimited,
            401 | 403 => ErrorType::Auth,
            408 | 504 => ErrorType::Timeout,
            400..=499 => ErrorType::BadRequest,
            _ => ErrorType::ServerError,
        }
    }
}

/// Why the gateway refused a request itself (`switchboard.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Rejection {
    /// Missing, unknown, malformed or expired key (401).
    InvalidKey,
    /// The key may not use the model (403).
    ModelNotAllowed,
    /// A limit refused (429).
    Limit(Limit),
}

impl Rejection {
    const NAMES: [&'static str; 6] = [
        "invalid_key",
        "model_not_allowed",
        "rpm",
        "tpm",
        "parallel",
        "budget",
    ];

    /// `Series::extra` of `Metric::KeyRejections`.
    pub fn index(self) -> u8 {
        match self {
            Rejection::InvalidKey => 0,
            Rejection::ModelNotAllowed => 1,
            Rejection::Limit(Limit::Requests) => 2,
            Rejection::Limit(Limit::Tokens) => 3,
            Rejection::Limit(Limit::Parallel) => 4,
            Rejection::Limit(Limit::Budget) => 5,
        }
    }
}

/// Who a series is about: the public model the client asked for (`None` before it is
/// resolved) and the deployment that answered or was tried (`None` before any attempt). A
/// fallback is labelled with the model asked for and the deployment that served it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target {
    pub model: Option<usize>,
    pub deployment: Option<usize>,
}

/// One time series: a metric and its labels, all as small integers (the cache key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Series {
    pub metric: Metric,
    /// The endpoint: `gen_ai_operation_name` and the `switchboard_api` the client spoke.
    pub operation: Operation,
    pub target: Target,
    /// Index of the metric's own label value (status class, token type, error type).
    pub extra: u8,
    /// The virtual key or team of the key metrics (`None` for the others).
    pub subject: Option<SubjectRef>,
}

/// `gen_ai.operation.name` as OpenTelemetry spells it (every conversation API is `chat`).
fn operation_name(op: Operation) -> &'static str {
    match op {
        Operation::ChatCompletions | Operation::Messages | Operation::Responses => "chat",
        Operation::Embeddings => "embeddings",
        Operation::CountTokens => "count_tokens",
    }
}

/// Where recorded values go: Envoy's stats in the filter, a recorder in tests.
pub trait MetricsSink {
    /// Adds to a counter or records a histogram sample, by the metric's kind. A zero still
    /// defines the series, so dashboards see it from the first request.
    fn add(&mut self, series: Series, value: u64);
}

/// The model and provider/deployment label segments, built once per configuration so that
/// naming a new series only joins strings.
#[derive(Debug, Clone)]
pub struct Labels {
    models: Vec<String>,
    deployments: Vec<String>,
    /// `.switchboard_key=<key>.switchboard_team=<team or none>` per key.
    keys: Vec<String>,
    /// `.switchboard_team=<team>` per team.
    teams: Vec<String>,
    no_model: String,
    no_deployment: String,
}

const NONE: &str = "none";

impl Labels {
    pub fn new(rt: &Runtime) -> Labels {
        let model = |name: &str| format!(".gen_ai_request_model={}", sanitize(name));
        let deployment = |provider: &str, id: &str| {
            format!(
                ".gen_ai_provider_name={}.switchboard_deployment={}",
                sanitize(provider),
                sanitize(id)
            )
        };
        Labels {
            models: rt.models.iter().map(|m| model(&m.name)).collect(),
            deployments: rt
                .deployments
                .iter()
                .map(|d| {
                    let provider = rt.provider_of(d).map_or(NONE, |p| p.name.as_str());
                    deployment(provider, &d.id)
                })
                .collect(),
            keys: rt
                .limits
                .keys
                .iter()
                .map(|k| {
                    let team = k.team.and_then(|t| rt.limits.teams.get(t));
                    format!(
                        ".switchboard_key={}.switchboard_team={}",
                        sanitize(&k.subject.name),
                        sanitize(team.map_or(NONE, |t| t.name.as_str()))
                    )
                })
                .collect(),
            teams: rt
                .limits
                .teams
                .iter()
                .map(|t| format!(".switchboard_team={}", sanitize(&t.name)))
                .collect(),
            no_model: model(NONE),
            no_deployment: deployment(NONE, NONE),
        }
    }

    fn subject(&self, subject: Option<SubjectRef>) -> &str {
        match subject {
            Some(SubjectRef::Key(k)) => self.keys.get(k),
            Some(SubjectRef::Team(t)) => self.teams.get(t),
            None => None,
        }
        .map_or("", String::as_str)
    }

    /// The Envoy stat name of a series (before Envoy's `wasmcustom.` prefix).
    pub fn stat_name(&self, series: &Series) -> String {
        let subject = self.subject(series.subject);
        if series.metric == Metric::BudgetRemaining {
            return format!("{STATS_PREFIX}.{}{subject}", series.metric.name());
        }
        let model = series
            .target
            .model
            .and_then(|m| self.models.get(m))
            .unwrap_or(&self.no_model);
        let deployment = series
            .target
            .deployment
            .and_then(|d| self.deployments.get(d))
            .unwrap_or(&self.no_deployment);
        // Key metrics are per key and model, not per deployment.
        let (deployment, subject) = match series.metric {
            Metric::KeyRequests
            | Metric::KeyCost
            | Metric::KeyRejections
            | Metric::KeyLimitMisses => ("", subject),
            _ => (deployment.as_str(), ""),
        };
        let mut name = format!(
            "{STATS_PREFIX}.{}.gen_ai_operation_name={}.switchboard_api={}{model}{deployment}{subject}",
            series.metric.name(),
            operation_name(series.operation),
            series.operation.api().name()
        );
        if let Some((key, values)) = series.metric.extra_label() {
            let value = values.get(usize::from(series.extra)).unwrap_or(&"other");
            name.push_str(&format!(".{key}={value}"));
        }
        name
    }
}

/// A label value: anything outside `[A-Za-z0-9_-]` becomes `_`.
pub fn sanitize(value: &str) -> String {
    let clean: String = value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() {
        "_".into()
    } else {
        clean
    }
}

/// The `stats_tags` regex that turns the `key` segment of our stat names into a tag.
pub fn tag_regex(key: &str) -> String {
    format!(r"^wasmcustom\.{STATS_PREFIX}\..*?(\.{key}=([^.]*))")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::test;

    fn runtime() -> Runtime {
        Runtime::from_text(
            "providers: {open.ai: {kind: openai, api_key: k}}\nmodels:\n- {name: meta/llama-3.1, deployments: [{provider: open.ai, model: x}]}\n",
            &|_: &str| None,
        )
        .unwrap()
    }

    #[test]
    fn stat_names_carry_sanitised_labels() {
        let labels = Labels::new(&runtime());
        let cases = [
            (
                Series {
                    metric: Metric::Tokens,
                    operation: Operation::ChatCompletions,
                    target: Target {
                        model: Some(0),
                        deployment: Some(0),
                    },
                    extra: TokenType::CacheRead as u8,
                    subject: None,
                },
                "switchboard.gen_ai.client.token.usage.gen_ai_operation_name=chat.switchboard_api=openai_chat.gen_ai_request_model=meta_llama-3_1.gen_ai_provider_name=open_ai.switchboard_deployment=meta_llama-3_1_0.gen_ai_token_type=cache_read",
            ),
            (
                Series {
                    metric: Metric::Requests,
                    operation: Operation::Embeddings,
                    target: Target::default(),
                    extra: status_class(404),
                    subject: None,
                },
                "switchboard.requests.gen_ai_operation_name=embeddings.switchboard_api=openai_embeddings.gen_ai_request_model=none.gen_ai_provider_name=none.switchboard_deployment=none.http_status_class=4xx",
            ),
            (
                Series {
                    metric: Metric::Duration,
                    operation: Operation::ChatCompletions,
                    target: Target {
                        model: Some(0),
                        deployment: None,
                    },
                    extra: 0,
                    subject: None,
                },
                "switchboard.gen_ai.client.operation.duration.gen_ai_operation_name=chat.switchboard_api=openai_chat.gen_ai_request_model=meta_llama-3_1.gen_ai_provider_name=none.switchboard_deployment=none",
            ),
            (
                Series {
                    metric: Metric::UpstreamErrors,
                    operation: Operation::ChatCompletions,
                    target: Target {
                        model: Some(0),
                        deployment: Some(7),
                    },
                    extra: ErrorType::NoResponse as u8,
                    subject: None,
                },
                "switchboard.upstream.errors.gen_ai_operation_name=chat.switchboard_api=openai_chat.gen_ai_request_model=meta_llama-3_1.gen_ai_provider_name=none.switchboard_deployment=none.error_type=no_response",
            ),
        ];
        for (series, expected) in cases {
            assert_eq!(labels.stat_name(&series), expected);
        }
        assert_eq!(sanitize("a.b/c:d e"), "a_b_c_d_e");
        assert_eq!(sanitize(""), "_");
    }

    #[test]
    fn key_series_carry_the_key_and_its_team() {
        let hash = crate::limits::keys::to_hex(&crate::limits::keys::sha256("k"));
        let rt = Runtime::from_text(
            &format!(
                "providers: {{p: {{kind: openai, api_key: k}}}}\n\
                 models: [{{name: gpt, deployments: [{{provider: p, model: x}}]}}]\n\
                 teams: [{{name: web, budget: {{usd: 5, period: day}}}}]\n\
                 keys:\n\
                 - {{name: shop, sha256: \"{hash}\", team: web}}\n\
                 - {{name: solo, sha256: \"{}\"}}\n",
                crate::limits::keys::to_hex(&crate::limits::keys::sha256("s"))
            ),
            &|_: &str| None,
        )
        .unwrap();
        let labels = Labels::new(&rt);
        let series = |metric, extra, subject| Series {
            metric,
            operation: Operation::ChatCompletions,
            target: Target {
                model: Some(0),
                deployment: Some(0),
            },
            extra,
            subject,
        };
        let cases = [
            (
                series(Metric::KeyRequests, status_class(200), Some(SubjectRef::Key(0))),
                "switchboard.key.requests.gen_ai_operation_name=chat.switchboard_api=openai_chat.gen_ai_request_model=gpt.switchboard_key=shop.switchboard_team=web.http_status_class=2xx",
            ),
            (
                series(Metric::KeyCost, 0, Some(SubjectRef::Key(1))),
                "switchboard.key.cost_nano_usd.gen_ai_operation_name=chat.switchboard_api=openai_chat.gen_ai_request_model=gpt.switchboard_key=solo.switchboard_team=none",
            ),
            (
                series(
                    Metric::KeyRejections,
                    Rejection::Limit(Limit::Budget).index(),
                    Some(SubjectRef::Team(0)),
                ),
                "switchboard.key.rejections.gen_ai_operation_name=chat.switchboard_api=openai_chat.gen_ai_request_model=gpt.switchboard_team=web.switchboard_reason=budget",
            ),
            (
                series(Metric::KeyRejections, Rejection::InvalidKey.index(), None),
                "switchboard.key.rejections.gen_ai_operation_name=chat.switchboard_api=openai_chat.gen_ai_request_model=gpt.switchboard_reason=invalid_key",
            ),
            (
                series(Metric::BudgetRemaining, 0, Some(SubjectRef::Team(0))),
                "switchboard.budget.remaining_nano_usd.switchboard_team=web",
            ),
        ];
        for (series, expected) in cases {
            assert_eq!(labels.stat_name(&series), expected);
        }
        assert_eq!(Metric::BudgetRemaining.kind(), Kind::Gauge);
    }

    #[test]
    fn every_label_segment_is_cut_out_by_its_tag_regex() {
        // Checks the regex shape the renderer emits, with the same semantics Envoy applies:
        // group 1 is removed from the name, group 2 is the value.
        let name = "wasmcustom.switchboard.requests.gen_ai_operation_name=chat.switchboard_api=openai_chat.gen_ai_request_model=a-b.gen_ai_provider_name=p.switchboard_deployment=a-b_0.http_status_class=2xx";
        let mut rest = name.to_owned();
        let mut tags = Vec::new();
        for (key, tag) in LABELS {
            let segment = format!(".{key}=");
            if let Some(at) = rest.find(&segment) {
                let value_start = at + segment.len();
                let end = rest[value_start..]
                    .find('.')
                    .map_or(rest.len(), |i| value_start + i);
                tags.push((*tag, rest[value_start..end].to_owned()));
                rest.replace_range(at..end, "");
            }
            assert!(tag_regex(key).contains(&format!(r"(\.{key}=([^.]*))")));
        }
        assert_eq!(rest, "wasmcustom.switchboard.requests");
        assert_eq!(
            tags,
            [
                ("gen_ai.operation.name", "chat".to_owned()),
                ("switchboard.api", "openai_chat".to_owned()),
                ("gen_ai.request.model", "a-b".to_owned()),
                ("gen_ai.provider.name", "p".to_owned()),
                ("switchboard.deployment", "a-b_0".to_owned()),
                ("http.status_class", "2xx".to_owned()),
            ]
        );
    }

    #[test]
    fn failed_answers_are_typed() {
        struct Case {
            name: &'static str,
            /// The status the provider answered.
            provider: u16,
            /// The status the client gets.
            client: u16,
            expected: ErrorType,
        }
        let cases = [
            Case {
                name: "rate limited",
                provider: 429,
                client: 429,
                expected: ErrorType::RateLimited,
            },
            Case {
                name: "a throttle mapped to 429",
                provider: 400,
                client: 429,
                expected: ErrorType::RateLimited,
            },
            Case {
                name: "unauthorized",
                provider: 401,
                client: 401,
                expected: ErrorType::Auth,
            },
            Case {
                name: "not found",
                provider: 404,
                client: 404,
                expected: ErrorType::BadRequest,
            },
            Case {
                name: "a gateway timeout",
                provider: 504,
                client: 504,
                expected: ErrorType::Timeout,
            },
            Case {
                name: "unavailable",
                provider: 503,
                client: 503,
                expected: ErrorType::ServerError,
            },
            Case {
                name: "overloaded, mapped to 503",
                provider: 529,
                client: 503,
                expected: ErrorType::ServerError,
            },
            Case {
                name: "a success the gateway could not read",
                provider: 200,
                client: 502,
                expected: ErrorType::InvalidAnswer,
            },
        ];
        for case in cases {
            assert_eq!(
                ErrorType::of_answer(case.provider, case.client),
                case.expected,
                "{}",
                case.name
            );
        }
        assert_eq!(ErrorType::StreamInterrupted.name(), "stream_interrupted");
    }
}
