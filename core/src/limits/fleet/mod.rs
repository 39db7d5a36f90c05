//! The `fleet` counting backend: keys' and teams' requests, tokens and budgets counted by a
//! rate-limit service (Envoy's global rate-limit protocol, counters in Redis) that every Envoy
//! of a fleet shares, through Envoy's own `envoy.filters.http.ratelimit`. The gateway role
//! feeds it with filter state; these are its decisions, as plain functions:
//!
//! - **admission** (`reserve`): which filter state names the request's descriptors (the key,
//!   its team, the calendar month) and charges them (1 request, the estimated tokens, the
//!   estimated cost in budget units rounded up), read by the rendered filters
//!   (`envoy.rate_limit_descriptors.expr`, `hits_addend: %FILTER_STATE(wasm.sb_…:PLAIN)%`);
//! - **refusals** (`local_reply`, `refusal`): the ratelimit filters' local replies (429 with
//!   `x-switchboard-limit`, `rate_limiter_error` 500) as OpenAI errors;
//! - **settlement** (`settle`): when the answer ends, the difference between what was reserved
//!   and what was used, as a charge or a refund (negative hits) that the settle filter sends
//!   when the stream is done.
//!
//! Three ratelimit filters follow the gateway role: `switchboard-settle` (stream-done charges
//! only, marked as settlements so the service never refuses them), `switchboard-rate` (rpm and
//! tpm) and `switchboard-budget` (budgets). Two admission filters, so a refusal says which
//! kind of limit refused; the service counts a call all or nothing, so a refused call needs no
//! refund, and what the other filter took is given back at settlement.
//!
//! Money is counted in **budget units of 1e-4 USD** (`PICOS_PER_UNIT`): a $50,000 monthly team
//! budget is 5e8 units, within the uint32 limits of envoyproxy/ratelimit (≤ $429,496 per
//! window) and Envoy's cap on one charge (1e9 units, $100,000); finer units would not fit
//! realistic budgets there. The filter keeps its pico-dollar costs and carries each key's
//! remainder below one unit to its next request (`Carry`), so nothing is lost to rounding;
//! reservations round up, so an estimate never undercounts.

pub mod service;

use super::time::{civil_from_days, format_utc, DAY_MS, SECOND_MS};
use super::{Estimate, Limit, Limits, Outcome, Quota, Refusal, SubjectRef};
use crate::api::{ApiError, ErrorKind};
use crate::config::access::Period;
use crate::config::counting::{Backend, CountingSpec, FailureMode};
use crate::config::duration::Millis;
use crate::config::Problem;
use std::collections::HashMap;

/// One budget unit in pico-dollars: 1e-4 USD.
pub const PICOS_PER_UNIT: u64 = 100_000_000;
/// Envoy skips a charge above this (`hits_addend`), so none is sent larger.
pub const MAX_CHARGE: u64 = 1_000_000_000;

/// The service's domain when the configuration names none.
pub const DEFAULT_DOMAIN: &str = "switchboard";
/// Default bound on each call to the service.
pub const DEFAULT_TIMEOUT: Millis = Millis(100);
/// The Envoy cluster of the service.
pub const SERVICE_CLUSTER: &str = "switchboard_rls";
/// The ratelimit filter that sends settlements (stream-done charges and refunds only).
pub const SETTLE_FILTER: &str = "switchboard-settle";
/// gRPC metadata on the settle filter's calls: the service counts them and never refuses.
pub const SETTLE_METADATA: &str = "x-switchboard-settle";
/// Response header a ratelimit filter adds to its refusals: which filter refused.
pub const LIMIT_HEADER: &str = "x-switchboard-limit";
/// Response header `switchboard-rls` adds to a refusal: the descriptor over its limit, e.g.
/// `limit=tpm,team=platform`.
pub const OVER_HEADER: &str = "x-switchboard-over";

/// Descriptor entry keys and the values of `limit`.
pub mod descriptor {
    pub const LIMIT: &str = "limit";
    pub const KEY: &str = "key";
    pub const TEAM: &str = "team";
    pub const PERIOD: &str = "period";
    pub const RPM: &str = "rpm";
    pub const TPM: &str = "tpm";
    /// Day, week and total budgets: the service's window is the period.
    pub const BUDGET: &str = "budget";
    /// Month budgets carry the month (`2026-12`) in a `period` entry, so an engine whose
    /// windows are not calendar months (envoyproxy/ratelimit's are 30 days) can count them
    /// in a year-long window and still start each month afresh.
    pub const BUDGET_MONTH: &str = "budget_month";
}

/// Filter state the gateway role writes (Envoy names it `wasm.<name>`).
pub mod state {
    /// Descriptor values: the key's and the team's names, the calendar month.
    pub const KEY: &str = "sb_key";
    pub const TEAM: &str = "sb_team";
    pub const MONTH: &str = "sb_month";
    /// Admission charges: requests (1), estimated tokens, estimated budget units.
    pub const REQUESTS: &str = "sb_requests";
    pub const TOKENS: &str = "sb_tokens";
    pub const USD: &str = "sb_usd";
    /// Settlement charges (positive) and refunds (negative hits), sent when the stream ends.
    pub const REQUESTS_EXTRA: &str = "sb_requests_extra";
    pub const REQUESTS_REFUND: &str = "sb_requests_refund";
    pub const TOKENS_EXTRA: &str = "sb_tokens_extra";
    pub const TOKENS_REFUND: &str = "sb_tokens_refund";
    pub const USD_EXTRA: &str = "sb_usd_extra";
    pub const USD_REFUND: &str = "sb_usd_refund";
}

/// The two admission filters, each one call to the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// Requests and tokens per minute.
    Rate,
    Budget,
}

impl Stage {
    pub const ALL: [Stage; 2] = [Stage::Rate, Stage::Budget];

    /// Its Envoy filter name.
    pub fn filter(self) -> &'static str {
        match self {
            Stage::Rate => "switchboard-rate",
            Stage::Budget => "switchboard-budget",
        }
    }

    /// Its value of `LIMIT_HEADER` on refusals, and its metric label.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Rate => "rate",
            Stage::Budget => "budget",
        }
    }

    /// The dynamic-metadata namespace its service answers land in: present once the service
    /// answered this filter's call (the admission was counted).
    pub fn metadata_namespace(self) -> &'static str {
        match self {
            Stage::Rate => "switchboard.rate",
            Stage::Budget => "switchboard.budget",
        }
    }
}

/// The `fleet` backend's settings, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fleet {
    pub address: String,
    pub port: u16,
    pub timeout: Millis,
    /// Serve (uncounted) when the service fails, instead of refusing with a 503.
    pub fail_open: bool,
    pub domain: String,
}

/// Longest call bound accepted: the service is on every request's path.
const MAX_TIMEOUT: Millis = Millis(10_000);

/// Validates the `limits` section; `Some` for the `fleet` backend.
pub fn build(spec: &CountingSpec, problems: &mut Vec<Problem>) -> Option<Fleet> {
    if spec.backend == Backend::Local {
        return None;
    }
    let Some(service) = &spec.service else {
        problems.push(Problem::new(
            "limits.service",
            "the fleet backend needs the rate-limit service: `service: {address: …, port: …}`",
        ));
        return None;
    };
    if service.address.trim().is_empty() {
        problems.push(Problem::new("limits.service.address", "must not be empty"));
    }
    if service.port == 0 {
        problems.push(Problem::new("limits.service.port", "must not be 0"));
    }
    let timeout = spec.timeout.unwrap_or(DEFAULT_TIMEOUT);
    if timeout.0 == 0 || timeout > MAX_TIMEOUT {
        problems.push(Problem::new(
            "limits.timeout",
            "must be between 1ms and 10s: every limited request waits for the service",
        ));
    }
    let domain = spec.domain.as_deref().unwrap_or(DEFAULT_DOMAIN);
    let plain = domain
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if domain.is_empty() || !plain {
        problems.push(Problem::new(
            "limits.domain",
            format!("`{domain}` must be made of A-Z, a-z, 0-9, `_`, `-` and `.`"),
        ));
    }
    Some(Fleet {
        address: service.address.clone(),
        port: service.port,
        timeout,
        fail_open: spec.failure_mode == FailureMode::Open,
        domain: domain.to_owned(),
    })
}

/// Budgets smaller than one unit cannot be counted by the service.
pub fn check_budgets(limits: &Limits, problems: &mut Vec<Problem>) {
    let subjects = limits
        .keys
        .iter()
        .enumerate()
        .map(|(i, k)| (format!("keys[{i}]"), &k.subject))
        .chain(
            limits
                .teams
                .iter()
                .enumerate()
                .map(|(i, t)| (format!("teams[{i}]"), t)),
        );
    for (path, subject) in subjects {
        if subject.quota.budget.is_some_and(|b| b.cap < PICOS_PER_UNIT) {
            problems.push(Problem::new(
                format!("{path}.budget.usd"),
                "must be at least 0.0001 with the fleet backend (it counts in units of 1e-4 USD)",
            ));
        }
    }
}

/// Pico-dollars as whole budget units, rounded up (reservations: never undercount).
pub fn units_up(picos: u64) -> u64 {
    picos.div_ceil(PICOS_PER_UNIT)
}

/// A budget cap in units, rounded down (a cap never grows).
pub fn cap_units(picos: u64) -> u64 {
    picos / PICOS_PER_UNIT
}

/// What each key spent below one budget unit, carried to its next request (per worker VM):
/// the fleet's count lags the real spend by less than one unit per key and worker.
#[derive(Debug, Default)]
pub struct Carry(HashMap<String, u64>);

impl Carry {
    /// `picos` more spent by `key`: the whole units to charge now; the rest is carried.
    pub fn units(&mut self, key: &str, picos: u64) -> u64 {
        let carried = self.0.get(key).copied().unwrap_or(0);
        let total = carried.saturating_add(picos);
        let rest = total % PICOS_PER_UNIT;
        if rest == 0 {
            self.0.remove(key);
        } else {
            self.0.insert(key.to_owned(), rest);
        }
        total / PICOS_PER_UNIT
    }
}

/// The calendar month (UTC) holding `now`, as month budgets' `period`: `2026-12`.
pub fn month_id(now_ms: u64) -> String {
    let (y, m, _) = civil_from_days((now_ms / DAY_MS) as i64);
    format!("{y:04}-{m:02}")
}

/// What an admitted request holds on the fleet counters until it is settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub key: usize,
    /// One request was charged to rpm.
    pub requests: bool,
    /// Tokens reserved on tpm.
    pub tokens: Option<u64>,
    /// Budget units reserved.
    pub units: Option<u64>,
}

impl Hold {
    /// Whether the request fed this admission filter a descriptor (it called the service).
    pub fn feeds(&self, stage: Stage) -> bool {
        match stage {
            Stage::Rate => self.requests || self.tokens.is_some(),
            Stage::Budget => self.units.is_some(),
        }
    }
}

/// Filter state to write: name and value.
pub type State = Vec<(&'static str, String)>;

fn has_fleet_limit(q: &Quota) -> bool {
    q.rpm.is_some() || q.tpm.is_some() || q.budget.is_some()
}

/// Admission of a request of `key` expected to use `estimate`: what it holds, and the filter
/// state naming and charging its descriptors. `None` when neither the key nor its team has a
/// limit the fleet counts (no call to the service at all).
pub fn reserve(
    limits: &Limits,
    key: usize,
    estimate: Estimate,
    now_ms: u64,
) -> Option<(Hold, State)> {
    let own = &limits.keys.get(key)?.subject;
    let team = limits
        .keys
        .get(key)
        .and_then(|k| k.team)
        .and_then(|t| limits.teams.get(t));
    let quotas = || std::iter::once(&own.quota).chain(team.map(|t| &t.quota));
    let hold = Hold {
        key,
        requests: quotas().any(|q| q.rpm.is_some()),
        tokens: quotas()
            .any(|q| q.tpm.is_some())
            .then(|| estimate.tokens.min(MAX_CHARGE)),
        units: quotas()
            .any(|q| q.budget.is_some())
            .then(|| units_up(estimate.cost).min(MAX_CHARGE)),
    };
    if !hold.feeds(Stage::Rate) && !hold.feeds(Stage::Budget) {
        return None;
    }
    let mut state = State::new();
    if has_fleet_limit(&own.quota) {
        state.push((state::KEY, own.name.clone()));
    }
    if let Some(t) = team.filter(|t| has_fleet_limit(&t.quota)) {
        state.push((state::TEAM, t.name.clone()));
    }
    if quotas().any(|q| q.budget.is_some_and(|b| b.period == Period::Month)) {
        state.push((state::MONTH, month_id(now_ms)));
    }
    if hold.requests {
        state.push((state::REQUESTS, "1".into()));
    }
    if let Some(tokens) = hold.tokens {
        state.push((state::TOKENS, tokens.to_string()));
    }
    if let Some(units) = hold.units {
        state.push((state::USD, units.to_string()));
    }
    Some((hold, state))
}

/// Which admission filters' calls the service answered (so their charges were counted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counted {
    pub rate: bool,
    pub budget: bool,
}

impl Counted {
    fn of(self, stage: Stage) -> bool {
        match stage {
            Stage::Rate => self.rate,
            Stage::Budget => self.budget,
        }
    }
}

/// How a held request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// A limit refused it, or the service failed (closed): nothing of it stays counted.
    Refused,
    /// It went to the provider; what it used (see `limits::settlement`).
    Finished(Outcome),
}

/// The settlement's filter state, and the admission filters whose call went uncounted (the
/// service failed and the filter let the request through: a miss).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Settlement {
    pub state: State,
    pub missed: Vec<Stage>,
}

/// Replaces what `hold` reserved by what the request used: charges of the difference, or
/// refunds (negative hits; the service floors counters at 0). A filter whose call went
/// uncounted charges everything now, so the spend still reaches the fleet's count.
pub fn settle(
    limits: &Limits,
    hold: &Hold,
    end: End,
    counted: Counted,
    carry: &mut Carry,
) -> Settlement {
    let mut out = Settlement::default();
    let outcome = match end {
        End::Refused => {
            // Give back what the filters that counted took.
            if counted.rate {
                charge(
                    &mut out.state,
                    state::REQUESTS_REFUND,
                    u64::from(hold.requests),
                );
                charge(
                    &mut out.state,
                    state::TOKENS_REFUND,
                    hold.tokens.unwrap_or(0),
                );
            }
            if counted.budget {
                charge(&mut out.state, state::USD_REFUND, hold.units.unwrap_or(0));
            }
            return out;
        }
        End::Finished(outcome) => outcome,
    };
    for stage in Stage::ALL {
        if !hold.feeds(stage) {
            continue;
        }
        let was_counted = counted.of(stage);
        if !was_counted {
            out.missed.push(stage);
        }
        // What the admission took, when it was counted at all.
        let reserved = |amount: Option<u64>| if was_counted { amount.unwrap_or(0) } else { 0 };
        match stage {
            Stage::Rate => {
                if hold.requests && !was_counted {
                    charge(&mut out.state, state::REQUESTS_EXTRA, 1);
                }
                if hold.tokens.is_some() {
                    let (extra, refund) = (state::TOKENS_EXTRA, state::TOKENS_REFUND);
                    let held = reserved(hold.tokens);
                    difference(&mut out.state, extra, refund, held, outcome.tokens);
                }
            }
            Stage::Budget => {
                let name = limits
                    .keys
                    .get(hold.key)
                    .map_or("", |k| k.subject.name.as_str());
                let used = carry.units(name, outcome.cost);
                let (extra, refund) = (state::USD_EXTRA, state::USD_REFUND);
                difference(&mut out.state, extra, refund, reserved(hold.units), used);
            }
        }
    }
    out
}

/// A charge (or refund) of `amount`, if there is one, no larger than Envoy sends.
fn charge(state: &mut State, name: &'static str, amount: u64) {
    if amount > 0 {
        state.push((name, amount.min(MAX_CHARGE).to_string()));
    }
}

/// Charges what was used beyond what was held, or refunds what was held beyond use.
fn difference(state: &mut State, extra: &'static str, refund: &'static str, held: u64, used: u64) {
    if used >= held {
        charge(state, extra, used - held);
    } else {
        charge(state, refund, held - used);
    }
}

/// A local reply of the ratelimit filters, as the gateway role sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// The service said over limit, in this admission filter's call.
    Refused(Stage),
    /// The service failed and the filter fails closed (`rate_limiter_error`).
    ServiceFailed,
}

/// What a local reply is, from Envoy's `response.code_details` and the refusing filter's
/// `LIMIT_HEADER`; `None` for any other reply.
pub fn local_reply(code_details: &str, limit_header: Option<&str>) -> Option<Reply> {
    match code_details {
        "request_rate_limited" => Some(Reply::Refused(match limit_header {
            Some(v) if v == Stage::Budget.name() => Stage::Budget,
            _ => Stage::Rate,
        })),
        "rate_limiter_error" => Some(Reply::ServiceFailed),
        _ => None,
    }
}

/// The descriptor the service named over its limit (`OVER_HEADER`, e.g.
/// `limit=tpm,team=platform`): which limit of the key or its team.
pub fn parse_over(limits: &Limits, key: usize, header: &str) -> Option<(Limit, SubjectRef)> {
    let mut limit = None;
    let mut subject = None;
    for entry in header.split(',') {
        let (k, v) = entry.trim().split_once('=')?;
        match k {
            descriptor::LIMIT => {
                limit = Some(match v {
                    descriptor::RPM => Limit::Requests,
                    descriptor::TPM => Limit::Tokens,
                    descriptor::BUDGET | descriptor::BUDGET_MONTH => Limit::Budget,
                    _ => return None,
                })
            }
            descriptor::KEY => subject = Some(SubjectRef::Key(key)),
            descriptor::TEAM => subject = limits.keys.get(key)?.team.map(SubjectRef::Team),
            _ => {}
        }
    }
    Some((limit?, subject?))
}

/// The error a refusal of `stage` gives the client. `over`: the descriptor the service named
/// (without it, the key's own limit of that kind, else its team's); `retry_after`: Envoy's
/// `retry-after` (rate limits: the end of the service's minute window).
pub fn refusal(
    limits: &Limits,
    hold: &Hold,
    stage: Stage,
    over: Option<(Limit, SubjectRef)>,
    retry_after: Option<u64>,
    now_ms: u64,
) -> Refusal {
    let quota = |s: SubjectRef| limits.subject(s).map(|s| &s.quota);
    let key = SubjectRef::Key(hold.key);
    let team = limits
        .keys
        .get(hold.key)
        .and_then(|k| k.team)
        .map(SubjectRef::Team);
    let (limit, subject) = over.unwrap_or_else(|| {
        let limit = match stage {
            Stage::Budget => Limit::Budget,
            Stage::Rate if hold.requests => Limit::Requests,
            Stage::Rate => Limit::Tokens,
        };
        let has = |s: SubjectRef| {
            quota(s).is_some_and(|q| match limit {
                Limit::Requests => q.rpm.is_some(),
                Limit::Tokens => q.tpm.is_some(),
                _ => q.budget.is_some(),
            })
        };
        let subject = match team {
            Some(t) if !has(key) => t,
            _ => key,
        };
        (limit, subject)
    });
    let who = limits
        .subject(subject)
        .map_or_else(|| "key".into(), |s| s.describe());
    let q = quota(subject).cloned().unwrap_or_default();
    let error = match limit {
        Limit::Budget => over_budget(&who, q.budget, now_ms),
        Limit::Tokens => {
            let requested = hold.tokens.unwrap_or(0);
            rate_limited(
                format!(
                    "Rate limit reached for {who} on tokens per minute: limit {}, requested \
                     {requested}.",
                    q.tpm.unwrap_or(0)
                ),
                retry_after,
                now_ms,
            )
        }
        _ => rate_limited(
            format!(
                "Rate limit reached for {who} on requests per minute: limit {}.",
                q.rpm.unwrap_or(0)
            ),
            retry_after,
            now_ms,
        ),
    };
    Refusal {
        error,
        subject: Some(subject),
        limit: Some(limit),
    }
}

fn rate_limited(message: String, retry_after: Option<u64>, now_ms: u64) -> ApiError {
    // Without Envoy's figure, the end of the minute (the service's window).
    let seconds = retry_after
        .unwrap_or_else(|| 60 - (now_ms / SECOND_MS) % 60)
        .max(1);
    ApiError::new(
        ErrorKind::RateLimit,
        format!("{message} Try again in {seconds}s."),
    )
    .with_code("rate_limit_exceeded")
    .with_retry_after(seconds)
}

fn over_budget(who: &str, budget: Option<super::Budget>, now_ms: u64) -> ApiError {
    let Some(b) = budget else {
        return ApiError::new(
            ErrorKind::InsufficientQuota,
            format!("Budget exceeded for {who}."),
        )
        .with_code("insufficient_quota");
    };
    let spent = format!(
        "Budget exceeded for {who}: its ${:.2}",
        super::budget::usd(b.cap)
    );
    let error = match b.period.end(now_ms) {
        Some(at) => ApiError::new(
            ErrorKind::InsufficientQuota,
            format!(
                "{spent} of this {} are spent; it resets at {}.",
                b.period.name(),
                format_utc(at)
            ),
        )
        .with_retry_after(at.saturating_sub(now_ms).div_ceil(SECOND_MS).max(1)),
        None => ApiError::new(
            ErrorKind::InsufficientQuota,
            format!("{spent} in total are spent; it does not reset."),
        ),
    };
    error.with_code("insufficient_quota")
}

/// The 503 of a request refused because the service failed (fail-closed), like the local
/// backend's busy counters.
pub fn service_failed() -> ApiError {
    ApiError::new(
        ErrorKind::Upstream,
        "The gateway's rate-limit service is unavailable; retry the request.",
    )
    .with_status(503)
    .with_code("rate_limit_service_unavailable")
    .with_retry_after(1)
}

#[cfg(test)]
mod tests;
