//! Virtual keys, model access, budgets and rate limits: the decisions, over a `Store`.
//!
//! A request with a key is admitted by taking, in order, the key's and then its team's
//! requests-per-minute, tokens-per-minute, parallel-request and budget counters. Tokens and
//! budget take an *estimate* (see `estimate`); when the request ends `settle` replaces the
//! estimate by what was really used. If any counter refuses, those already taken are given
//! back. Every counter changes through a CAS loop (`store::update`), so workers sharing the
//! store never lose an update.
//!
//! State is one store entry per key or team per limit, e.g. `sb.key.app-a.rpm`, whose value
//! carries its own window or period start: the number of entries is fixed by the config.

pub mod budget;
pub mod fleet;
pub mod keys;
pub mod setup;
pub mod store;
pub mod time;
pub mod window;

use crate::api::{ApiError, ErrorKind};
use crate::config::access::Period;
use crate::usage::pricing::Cost;
use crate::usage::Usage;
use budget::{usd, Exhausted, Ledger};
use keys::{glob_match, sha256, Presented};
use std::collections::HashMap;
use store::{update, Busy, Change, Store};
use time::{MINUTE_MS, SECOND_MS};
use window::{Full, Window};

/// A budget: a cap in pico-dollars per period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub cap: u64,
    pub period: Period,
}

/// What a key or a team may use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Quota {
    pub budget: Option<Budget>,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub max_parallel: Option<u64>,
}

/// A key or a team: something limits apply to.
#[derive(Debug, Clone)]
pub struct Subject {
    pub name: String,
    pub is_team: bool,
    pub quota: Quota,
    /// Prefix of its store entries.
    state: String,
}

impl Subject {
    fn key(name: &str, quota: Quota) -> Subject {
        Subject {
            name: name.to_owned(),
            is_team: false,
            quota,
            state: format!("sb.key.{name}"),
        }
    }

    fn team(name: &str, quota: Quota) -> Subject {
        Subject {
            name: name.to_owned(),
            is_team: true,
            quota,
            state: format!("sb.team.{name}"),
        }
    }

    fn entry(&self, limit: Limit) -> String {
        format!("{}.{}", self.state, limit.name())
    }

    /// `key `app-a`` or `team `platform``, for messages.
    pub fn describe(&self) -> String {
        let kind = if self.is_team { "team" } else { "key" };
        format!("{kind} `{}`", self.name)
    }
}

#[derive(Debug, Clone)]
pub struct VirtualKey {
    pub subject: Subject,
    /// Index into `Limits::teams`.
    pub team: Option<usize>,
    /// Model-name globs; `None`: every model.
    pub models: Option<Vec<String>>,
    pub expires_ms: Option<u64>,
}

/// The keys and teams of the configuration.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    /// Refuse requests that carry no valid key.
    pub auth_required: bool,
    pub keys: Vec<VirtualKey>,
    pub teams: Vec<Subject>,
    by_hash: HashMap<[u8; 32], usize>,
    /// The `fleet` backend: rpm, tpm and budgets are counted by its service (see `fleet`);
    /// only `max_parallel` stays in this Envoy's store.
    pub fleet: Option<fleet::Fleet>,
}

/// Who is calling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// No key (or, on an open gateway, an unknown one): no limits apply.
    Anonymous,
    /// Index into `Limits::keys`.
    Key(usize),
}

/// The kinds of limit, also the suffix of their store entries and their metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Requests,
    Tokens,
    Parallel,
    Budget,
}

impl Limit {
    pub fn name(self) -> &'static str {
        match self {
            Limit::Requests => "rpm",
            Limit::Tokens => "tpm",
            Limit::Parallel => "parallel",
            Limit::Budget => "budget",
        }
    }
}

/// What a request is expected to use: reserved before the call, corrected after it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Estimate {
    pub tokens: u64,
    /// Pico-dollars.
    pub cost: u64,
}

/// A key or team, by index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SubjectRef {
    Key(usize),
    Team(usize),
}

/// One counter a reservation holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Hold {
    subject: SubjectRef,
    limit: Limit,
    /// Window start for rpm/tpm.
    window_start: u64,
    amount: u64,
}

/// What an admitted request holds until it is settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub key: usize,
    pub estimate: Estimate,
    holds: Vec<Hold>,
}

/// Why a request was refused: the client's error and, for metrics, what refused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub error: ApiError,
    pub subject: Option<SubjectRef>,
    pub limit: Option<Limit>,
}

impl From<ApiError> for Refusal {
    fn from(error: ApiError) -> Self {
        Refusal {
            error,
            subject: None,
            limit: None,
        }
    }
}

/// What a request really used, for `settle`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    pub tokens: u64,
    /// Pico-dollars.
    pub cost: u64,
}

/// What a finished request used, for `Limits::settle`: the provider's usage and its cost when
/// the answer reported usage (an unpriced model costs 0); nothing when it failed (status
/// 400 and up) without usage; otherwise — an answer that ended without usage, a cut stream,
/// a client gone before the end — the estimate, as the provider has likely billed it.
pub fn settlement(
    reservation: &Reservation,
    usage: Option<Usage>,
    cost: Option<Cost>,
    status: u16,
) -> Outcome {
    match usage {
        Some(u) => Outcome {
            tokens: u.total_tokens(),
            cost: cost.map_or(0, |c| c.0),
        },
        None if status >= 400 => Outcome::default(),
        None => Outcome {
            tokens: reservation.estimate.tokens,
            cost: reservation.estimate.cost,
        },
    }
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(ErrorKind::Authentication, message).with_code("invalid_api_key")
}

fn busy() -> ApiError {
    ApiError::new(
        ErrorKind::Upstream,
        "The gateway's limit counters are busy; retry the request.",
    )
    .with_status(503)
    .with_retry_after(1)
}

/// Whole seconds to wait, rounded up, at least 1.
fn retry_seconds(wait_ms: u64) -> u64 {
    wait_ms.div_ceil(SECOND_MS).max(1)
}

impl Limits {
    pub fn subject(&self, s: SubjectRef) -> Option<&Subject> {
        match s {
            SubjectRef::Key(i) => self.keys.get(i).map(|k| &k.subject),
            SubjectRef::Team(i) => self.teams.get(i),
        }
    }

    /// Whether a caller's key matters at all (keys exist, or one is required): an open
    /// gateway without keys need not read the key headers.
    pub fn reads_keys(&self) -> bool {
        !self.keys.is_empty() || self.auth_required
    }

    /// Who is calling, from the key the client sent.
    pub fn authenticate(&self, presented: &Presented, now_ms: u64) -> Result<Caller, ApiError> {
        if !self.reads_keys() {
            // An open gateway without keys: nothing to look up (no hashing on the hot path).
            return Ok(Caller::Anonymous);
        }
        let key = match presented {
            Presented::Key(key) => key,
            Presented::None if self.auth_required => {
                return Err(unauthorized(
                    "You didn't provide an API key. Send it as `Authorization: Bearer <key>` \
                     (or in an `x-api-key` or `api-key` header).",
                ))
            }
            Presented::Malformed if self.auth_required => {
                return Err(unauthorized(
                    "The Authorization header must be `Bearer <key>`.",
                ))
            }
            Presented::None | Presented::Malformed => return Ok(Caller::Anonymous),
        };
        let found = self
            .by_hash
            .get(&sha256(key))
            .and_then(|&i| self.keys.get(i).map(|k| (i, k)));
        match found {
            Some((_, k)) if k.expires_ms.is_some_and(|at| now_ms >= at) => Err(unauthorized(
                &format!("The API key `{}` has expired.", k.subject.name),
            )),
            Some((i, _)) => Ok(Caller::Key(i)),
            // An open gateway serves unknown keys as anonymous callers: clients of open
            // gateways send placeholder keys.
            None if !self.auth_required => Ok(Caller::Anonymous),
            None => Err(unauthorized("Incorrect API key provided.")),
        }
    }

    /// Whether the caller may use the model known by `names` (its name and aliases).
    pub fn allows<'n>(&self, caller: Caller, mut names: impl Iterator<Item = &'n str>) -> bool {
        let Caller::Key(i) = caller else {
            return true;
        };
        let Some(globs) = self.keys.get(i).map(|k| &k.models) else {
            return false;
        };
        let Some(globs) = globs else {
            return true;
        };
        names.any(|name| globs.iter().any(|g| glob_match(g, name)))
    }

    pub fn not_allowed(&self, caller: Caller, model: &str) -> ApiError {
        let who = match caller {
            Caller::Key(i) => self.keys.get(i).map(|k| k.subject.describe()),
            Caller::Anonymous => None,
        };
        ApiError::new(
            ErrorKind::Permission,
            format!(
                "The {} is not allowed to use the model `{model}`.",
                who.unwrap_or_else(|| "caller".into())
            ),
        )
        .with_param("model")
        .with_code("model_not_allowed")
    }

    /// The key's subject, then its team's.
    fn subjects(&self, key: usize) -> impl Iterator<Item = (SubjectRef, &Subject)> {
        let own = self.keys.get(key);
        let team = own.and_then(|k| k.team);
        own.map(|k| (SubjectRef::Key(key), &k.subject))
            .into_iter()
            .chain(team.and_then(|t| self.teams.get(t).map(|s| (SubjectRef::Team(t), s))))
    }

    /// The limits counted in this Envoy's store: all of them with the local backend, only
    /// parallel requests (in flight here) with the fleet backend.
    fn local_limits(&self) -> &'static [Limit] {
        if self.fleet.is_some() {
            &[Limit::Parallel]
        } else {
            &[
                Limit::Requests,
                Limit::Tokens,
                Limit::Parallel,
                Limit::Budget,
            ]
        }
    }

    /// Every store entry with its initial value, to create before traffic (see `store`).
    pub fn entries(&self) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        let subjects = self.keys.iter().map(|k| &k.subject).chain(&self.teams);
        for s in subjects {
            let q = &s.quota;
            for (limit, on) in [
                (Limit::Requests, q.rpm.is_some()),
                (Limit::Tokens, q.tpm.is_some()),
                (Limit::Parallel, q.max_parallel.is_some()),
                (Limit::Budget, q.budget.is_some()),
            ] {
                if on && self.local_limits().contains(&limit) {
                    let initial = match limit {
                        Limit::Requests | Limit::Tokens => Window::default().encode(),
                        Limit::Parallel => store::encode([0]),
                        Limit::Budget => Ledger::default().encode(),
                    };
                    out.push((s.entry(limit), initial));
                }
            }
        }
        out
    }

    /// Admits a request of `key` expected to use `estimate`, or says which limit refuses it.
    /// Nothing stays taken on refusal. Only the limits counted locally are taken (with the
    /// fleet backend the rest are the rendered ratelimit filters' work).
    pub fn admit(
        &self,
        store: &dyn Store,
        key: usize,
        estimate: Estimate,
        now_ms: u64,
    ) -> Result<Reservation, Refusal> {
        let mut reservation = Reservation {
            key,
            estimate,
            holds: Vec::new(),
        };
        for (subject_ref, subject) in self.subjects(key) {
            for &limit in self.local_limits() {
                match self.take(store, subject, limit, estimate, now_ms) {
                    Ok(None) => {}
                    Ok(Some((window_start, amount))) => reservation.holds.push(Hold {
                        subject: subject_ref,
                        limit,
                        window_start,
                        amount,
                    }),
                    Err(error) => {
                        self.release(store, &reservation, now_ms);
                        return Err(Refusal {
                            error,
                            subject: Some(subject_ref),
                            limit: Some(limit),
                        });
                    }
                }
            }
        }
        Ok(reservation)
    }

    /// Takes one counter; `Ok(None)` when the subject has no such limit.
    fn take(
        &self,
        store: &dyn Store,
        subject: &Subject,
        limit: Limit,
        estimate: Estimate,
        now_ms: u64,
    ) -> Result<Option<(u64, u64)>, ApiError> {
        let q = &subject.quota;
        let entry = subject.entry(limit);
        let result = match limit {
            Limit::Requests | Limit::Tokens => {
                let (cap, amount) = match limit {
                    Limit::Requests => (q.rpm, 1),
                    _ => (q.tpm, estimate.tokens),
                };
                let Some(cap) = cap else { return Ok(None) };
                update(store, &entry, |bytes| {
                    match Window::decode(bytes).take(amount, cap, now_ms, MINUTE_MS) {
                        Ok(w) => Change::Write(w.encode(), Ok((w.start_ms, amount))),
                        Err(full) => Change::Keep(Err(full)),
                    }
                })
                .map(|r| r.map_err(|full| rate_limited(subject, limit, cap, amount, full)))
            }
            Limit::Parallel => {
                let Some(cap) = q.max_parallel else {
                    return Ok(None);
                };
                update(store, &entry, |bytes| {
                    let [running] = store::decode(bytes).unwrap_or([0]);
                    if running >= cap {
                        Change::Keep(Err(too_parallel(subject, cap)))
                    } else {
                        Change::Write(store::encode([running + 1]), Ok((0, 1)))
                    }
                })
            }
            Limit::Budget => {
                let Some(b) = q.budget else { return Ok(None) };
                update(store, &entry, |bytes| {
                    match Ledger::decode(bytes).reserve(estimate.cost, b.cap, b.period, now_ms) {
                        Ok(l) => Change::Write(l.encode(), Ok((0, estimate.cost))),
                        Err(e) => Change::Keep(Err(over_budget(subject, b, e, now_ms))),
                    }
                })
            }
        };
        match result {
            Ok(r) => r.map(Some),
            Err(Busy) => Err(busy()),
        }
    }

    /// Gives back everything a reservation holds: another limit refused the request.
    fn release(&self, store: &dyn Store, reservation: &Reservation, now_ms: u64) {
        self.correct(store, reservation, Outcome::default(), false, now_ms);
    }

    /// Replaces the reservation's estimate by what the request really used, and ends its
    /// parallel slot. Its requests-per-minute count stays: the request was made.
    pub fn settle(
        &self,
        store: &dyn Store,
        reservation: &Reservation,
        outcome: Outcome,
        now_ms: u64,
    ) {
        self.correct(store, reservation, outcome, true, now_ms);
    }

    fn correct(
        &self,
        store: &dyn Store,
        reservation: &Reservation,
        outcome: Outcome,
        made: bool,
        now_ms: u64,
    ) {
        for hold in &reservation.holds {
            let Some(subject) = self.subject(hold.subject) else {
                continue;
            };
            let entry = subject.entry(hold.limit);
            let result = match hold.limit {
                Limit::Requests if made => Ok(()),
                Limit::Requests | Limit::Tokens => {
                    // Tokens become the real count; a request never made counts nothing.
                    let actual = if hold.limit == Limit::Tokens {
                        outcome.tokens
                    } else {
                        0
                    };
                    update(store, &entry, |bytes| {
                        let w = Window::decode(bytes).settle(
                            hold.window_start,
                            hold.amount,
                            actual,
                            now_ms,
                            MINUTE_MS,
                        );
                        Change::Write(w.encode(), ())
                    })
                }
                Limit::Parallel => update(store, &entry, |bytes| {
                    let [running] = store::decode(bytes).unwrap_or([0]);
                    Change::Write(store::encode([running.saturating_sub(1)]), ())
                }),
                Limit::Budget => {
                    let Some(b) = subject.quota.budget else {
                        continue;
                    };
                    update(store, &entry, |bytes| {
                        let l = Ledger::decode(bytes).settle(
                            hold.amount,
                            outcome.cost,
                            b.period,
                            now_ms,
                        );
                        Change::Write(l.encode(), ())
                    })
                }
            };
            if result.is_err() {
                log::error!(
                    "switchboard: could not settle the {} counter of {}: store busy",
                    hold.limit.name(),
                    subject.describe()
                );
            }
        }
    }

    /// What is left of a subject's budget now (pico-dollars), for gauges.
    pub fn remaining_budget(
        &self,
        store: &dyn Store,
        subject: SubjectRef,
        now_ms: u64,
    ) -> Option<u64> {
        if self.fleet.is_some() {
            // Counted by the fleet's service: this Envoy does not know.
            return None;
        }
        let s = self.subject(subject)?;
        let b = s.quota.budget?;
        let bytes = store.get(&s.entry(Limit::Budget)).map(|(v, _)| v);
        let ledger = Ledger::decode(bytes.as_deref()).at(b.period, now_ms);
        Some(ledger.remaining(b.cap))
    }
}

fn rate_limited(subject: &Subject, limit: Limit, cap: u64, amount: u64, full: Full) -> ApiError {
    let what = if limit == Limit::Requests {
        "requests per minute"
    } else {
        "tokens per minute"
    };
    let who = subject.describe();
    let error = |message: String| {
        ApiError::new(ErrorKind::RateLimit, message).with_code("rate_limit_exceeded")
    };
    match full.wait_ms {
        Some(wait) => {
            let seconds = retry_seconds(wait);
            error(format!(
                "Rate limit reached for {who} on {what}: limit {cap}, used {}, requested \
                 {amount}. Try again in {seconds}s.",
                full.used
            ))
            .with_retry_after(seconds)
        }
        None => error(format!(
            "Request too large for {who} on {what}: limit {cap}, requested {amount}. \
             Lower `max_tokens` or the size of the prompt."
        )),
    }
}

fn too_parallel(subject: &Subject, cap: u64) -> ApiError {
    ApiError::new(
        ErrorKind::RateLimit,
        format!(
            "Too many parallel requests for {}: limit {cap}. Try again when one has finished.",
            subject.describe()
        ),
    )
    .with_code("rate_limit_exceeded")
    .with_retry_after(1)
}

fn over_budget(subject: &Subject, budget: Budget, e: Exhausted, now_ms: u64) -> ApiError {
    let spent = format!(
        "Budget exceeded for {}: ${:.4} spent of ${:.2}",
        subject.describe(),
        usd(e.spent),
        usd(budget.cap)
    );
    let error = match e.resets_at_ms {
        Some(at) => ApiError::new(
            ErrorKind::InsufficientQuota,
            format!(
                "{spent} this {}; it resets at {}.",
                budget.period.name(),
                time::format_utc(at)
            ),
        )
        .with_retry_after(retry_seconds(at.saturating_sub(now_ms))),
        None => ApiError::new(
            ErrorKind::InsufficientQuota,
            format!("{spent} in total; it does not reset."),
        ),
    };
    error.with_code("insufficient_quota")
}

// Keys, access and the admission arithmetic over a `MemoryStore`.
#[cfg(test)]
mod tests {
    use super::budget::picos;
    use super::keys::{sha256, to_hex, Presented};
    use super::store::MemoryStore;
    use super::time::{days_from_civil, DAY_MS};
    use super::*;
    use crate::runtime::{unpriced_under_budget, Runtime};
    use crate::testkit::test;
    use crate::usage::pricing::Cost;
    use crate::usage::Usage;

    /// 2026-03-18 10:00:30 UTC.
    fn noon() -> u64 {
        days_from_civil(2026, 3, 18) as u64 * DAY_MS + 36_030_000
    }

    fn hash(key: &str) -> String {
        to_hex(&sha256(key))
    }

    fn runtime(extra: &str) -> Runtime {
        let text = format!(
            "providers: {{p: {{kind: openai, api_key: k}}}}\n\
         models:\n\
         - {{name: gpt-4o, aliases: [gpt4], deployments: [{{provider: p, model: x}}]}}\n\
         - {{name: claude-haiku, deployments: [{{provider: p, model: y}}]}}\n\
         {extra}"
        );
        Runtime::from_text(&text, &|_: &str| None).unwrap()
    }

    fn problems(extra: &str) -> Vec<String> {
        let text = format!(
            "providers: {{p: {{kind: openai, api_key: k}}}}\n\
         models: [{{name: m, deployments: [{{provider: p, model: x}}]}}]\n{extra}"
        );
        match Runtime::from_text(&text, &|_: &str| None) {
            Ok(_) => Vec::new(),
            Err(problems) => problems.iter().map(ToString::to_string).collect(),
        }
    }

    fn key(name: &str) -> Presented {
        Presented::Key(name.to_owned())
    }

    #[test]
    fn config_problems_carry_paths() {
        let good = hash("a");
        let text = format!(
            r#"
auth: {{required: true}}
teams:
  - {{name: t1, rpm: 0, budget: {{usd: -5, period: day}}}}
  - {{name: t1}}
keys:
  - {{name: "bad name", sha256: "{good}", team: ghost}}
  - {{name: k2, sha256: nothex, models: []}}
  - {{name: k3, sha256: "{good}", expires: "2026-02-30", tpm: 0, models: ["gpt-*", ""]}}
  - {{name: k3, sha256: "{}", max_parallel: 0}}
"#,
            hash("b")
        );
        let found = problems(&text);
        for expected in [
            "teams[0].rpm: must be at least 1",
            "teams[0].budget.usd: must be a positive amount of dollars",
            "teams[1].name: team `t1` is declared twice",
            "keys[0].name: `bad name` must be 1 to 64 characters",
            "keys[0].team: unknown team `ghost`",
            "keys[1].sha256: must be the 64 hex digits",
            "keys[1].models: lists no model",
            "keys[2].sha256: the same key as keys[0]",
            "keys[2].expires: invalid date `2026-02-30`",
            "keys[2].tpm: must be at least 1",
            "keys[2].models[1]: must not be empty",
            "keys[3].name: key `k3` is declared twice",
            "keys[3].max_parallel: must be at least 1",
        ] {
            assert!(
                found.iter().any(|p| p.starts_with(expected)),
                "missing `{expected}` in {found:#?}"
            );
        }
        let unknown = problems(&format!(
            "keys: [{{name: a, sha256: \"{good}\", budget: {{usd: 1, period: year}}}}]"
        ));
        assert!(
            unknown
                .iter()
                .any(|p| p.starts_with("keys[0].budget.period")
                    && p.contains("unknown variant `year`")),
            "{unknown:#?}"
        );
        let bogus = problems(&format!("keys: [{{name: a, sha256: \"{good}\", rmp: 5}}]"));
        assert!(
            bogus.iter().any(|p| p.contains("unknown field `rmp`")),
            "{bogus:#?}"
        );
        assert_eq!(
            problems("auth: {required: true}"),
            ["auth.required: is true but no keys are configured: every request would be refused"]
        );
        assert!(problems("auth: {required: false}").is_empty());
    }

    #[test]
    fn auth_is_required_by_default_only_with_keys() {
        assert!(!runtime("").limits.auth_required);
        let with_keys = runtime(&format!("keys: [{{name: a, sha256: \"{}\"}}]", hash("a")));
        assert!(with_keys.limits.auth_required);
        let open = runtime(&format!(
            "auth: {{required: false}}\nkeys: [{{name: a, sha256: \"{}\"}}]",
            hash("a")
        ));
        assert!(!open.limits.auth_required);
    }

    #[test]
    fn authenticates_by_hash_and_expiry() {
        let keys = format!(
            "keys:\n\
         - {{name: live, sha256: \"{}\"}}\n\
         - {{name: old, sha256: \"{}\", expires: \"2026-03-18T10:00:00Z\"}}\n\
         - {{name: later, sha256: \"{}\", expires: \"2026-03-19\"}}\n",
            hash("sk-live"),
            hash("sk-old"),
            hash("sk-later").to_uppercase()
        );
        let required = runtime(&keys).limits;
        let open = runtime(&format!("auth: {{required: false}}\n{keys}")).limits;
        let now = noon();
        /// Err carries the message's start.
        type Expected = Result<Caller, &'static str>;
        struct Case {
            name: &'static str,
            presented: Presented,
            on_required: Expected,
            on_open: Expected,
        }
        let table = [
            Case {
                name: "a live key",
                presented: key("sk-live"),
                on_required: Ok(Caller::Key(0)),
                on_open: Ok(Caller::Key(0)),
            },
            Case {
                name: "a key that expires later, its hash in upper case",
                presented: key("sk-later"),
                on_required: Ok(Caller::Key(2)),
                on_open: Ok(Caller::Key(2)),
            },
            Case {
                name: "an expired key, refused even when auth is open",
                presented: key("sk-old"),
                on_required: Err("The API key `old` has expired."),
                on_open: Err("The API key `old` has expired."),
            },
            Case {
                name: "an unknown key",
                presented: key("sk-nope"),
                on_required: Err("Incorrect API key provided."),
                on_open: Ok(Caller::Anonymous),
            },
            Case {
                name: "no key",
                presented: Presented::None,
                on_required: Err("You didn't provide an API key."),
                on_open: Ok(Caller::Anonymous),
            },
            Case {
                name: "a malformed authorization header",
                presented: Presented::Malformed,
                on_required: Err("The Authorization header must be `Bearer <key>`."),
                on_open: Ok(Caller::Anonymous),
            },
        ];
        for case in table {
            let (name, presented) = (case.name, &case.presented);
            for (limits, expected) in [(&required, case.on_required), (&open, case.on_open)] {
                let got = limits.authenticate(presented, now);
                match (got, expected) {
                    (Ok(caller), Ok(want)) => assert_eq!(caller, want, "{name}: {presented:?}"),
                    (Err(e), Err(start)) => {
                        assert_eq!(
                            (e.status, e.code.as_deref()),
                            (401, Some("invalid_api_key")),
                            "{name}"
                        );
                        assert_eq!(e.kind.type_name(), "authentication_error", "{name}");
                        assert!(
                            e.message.starts_with(start),
                            "{name}: {presented:?}: {}",
                            e.message
                        );
                        assert!(
                            !e.message.contains("sk-"),
                            "{name}: never echo a key: {}",
                            e.message
                        );
                    }
                    (got, want) => panic!("{name}: {presented:?}: got {got:?}, want {want:?}"),
                }
            }
        }
    }

    #[test]
    fn model_globs_match_names_and_aliases() {
        let rt = runtime(&format!(
            "keys:\n\
         - {{name: all, sha256: \"{}\"}}\n\
         - {{name: claude, sha256: \"{}\", models: [\"claude-*\"]}}\n\
         - {{name: alias, sha256: \"{}\", models: [gpt4]}}\n",
            hash("1"),
            hash("2"),
            hash("3")
        ));
        let gpt = rt.model("gpt-4o").unwrap();
        let claude = rt.model("claude-haiku").unwrap();
        let l = &rt.limits;
        struct Case {
            name: &'static str,
            caller: Caller,
            allows_gpt: bool,
            allows_claude: bool,
        }
        let table = [
            Case {
                name: "anonymous: every model",
                caller: Caller::Anonymous,
                allows_gpt: true,
                allows_claude: true,
            },
            Case {
                name: "a key without models: every model",
                caller: Caller::Key(0),
                allows_gpt: true,
                allows_claude: true,
            },
            Case {
                name: "a key limited to a glob",
                caller: Caller::Key(1),
                allows_gpt: false,
                allows_claude: true,
            },
            Case {
                name: "a key limited to an alias",
                caller: Caller::Key(2),
                allows_gpt: true,
                allows_claude: false,
            },
        ];
        for case in table {
            let (name, caller) = (case.name, case.caller);
            assert_eq!(
                l.allows(caller, gpt.names()),
                case.allows_gpt,
                "{name}: {caller:?} gpt"
            );
            assert_eq!(
                l.allows(caller, claude.names()),
                case.allows_claude,
                "{name}: {caller:?} claude"
            );
        }
        let e = l.not_allowed(Caller::Key(1), "gpt-4o");
        assert_eq!((e.status, e.kind.type_name()), (403, "permission_error"));
        assert_eq!(
            (e.code.as_deref(), e.param.as_deref()),
            (Some("model_not_allowed"), Some("model"))
        );
        assert_eq!(
            e.message,
            "The key `claude` is not allowed to use the model `gpt-4o`."
        );
    }

    fn limits(keys_and_teams: &str) -> Limits {
        runtime(keys_and_teams).limits
    }

    fn estimate(tokens: u64, usd: f64) -> Estimate {
        Estimate {
            tokens,
            cost: picos(usd),
        }
    }

    fn ready(l: &Limits) -> MemoryStore {
        let store = MemoryStore::default();
        for (entry, initial) in l.entries() {
            store::ensure(&store, &entry, &initial);
        }
        store
    }

    #[test]
    fn requests_per_minute_refuse_with_retry_after() {
        let l = limits(&format!(
            "keys: [{{name: a, sha256: \"{}\", rpm: 3}}]",
            hash("a")
        ));
        let s = ready(&l);
        let t = noon();
        for i in 0..3 {
            let r = l.admit(&s, 0, Estimate::default(), t + i).unwrap();
            l.settle(&s, &r, Outcome::default(), t + i);
        }
        let refusal = l.admit(&s, 0, Estimate::default(), t + 10).unwrap_err();
        assert_eq!(
            (refusal.subject, refusal.limit),
            (Some(SubjectRef::Key(0)), Some(Limit::Requests))
        );
        let e = refusal.error;
        assert_eq!(
            (e.status, e.code.as_deref()),
            (429, Some("rate_limit_exceeded"))
        );
        assert_eq!(e.kind.type_name(), "rate_limit_error");
        // 30 s into the minute: the three fade out of the sliding minute 20 s into the next one.
        assert_eq!(e.retry_after, Some(30 + 20));
        assert_eq!(
            e.message,
            "Rate limit reached for key `a` on requests per minute: limit 3, used 3, requested 1. \
         Try again in 50s."
        );
        assert!(l.admit(&s, 0, Estimate::default(), t + 50_000).is_ok());
    }

    #[test]
    fn a_refusal_gives_back_what_was_taken() {
        let l = limits(&format!(
            "teams: [{{name: t, rpm: 100, budget: {{usd: 1, period: day}}}}]\n\
         keys:\n\
         - {{name: a, sha256: \"{}\", team: t, rpm: 10, tpm: 1000, max_parallel: 5}}\n\
         - {{name: b, sha256: \"{}\", team: t}}\n",
            hash("a"),
            hash("b")
        ));
        let s = ready(&l);
        let t = noon();
        // The key's counters accept, the team budget refuses: nothing of the key's stays taken.
        let refusal = l.admit(&s, 0, estimate(500, 2.0), t).unwrap_err();
        assert_eq!(
            (refusal.subject, refusal.limit),
            (Some(SubjectRef::Team(0)), Some(Limit::Budget))
        );
        assert_eq!(refusal.error.code.as_deref(), Some("insufficient_quota"));
        let read = |entry: &str| s.get(entry).map(|(v, _)| v);
        assert_eq!(Window::decode(read("sb.key.a.rpm").as_deref()).current, 0);
        assert_eq!(Window::decode(read("sb.key.a.tpm").as_deref()).current, 0);
        assert_eq!(Window::decode(read("sb.team.t.rpm").as_deref()).current, 0);
        assert_eq!(
            store::decode::<1>(read("sb.key.a.parallel").as_deref()),
            Some([0])
        );
        // And a request that fits holds all of them until it settles.
        let r = l.admit(&s, 0, estimate(500, 0.5), t).unwrap();
        assert_eq!(
            store::decode::<1>(read("sb.key.a.parallel").as_deref()),
            Some([1])
        );
        assert_eq!(Window::decode(read("sb.key.a.tpm").as_deref()).current, 500);
        l.settle(
            &s,
            &r,
            Outcome {
                tokens: 120,
                cost: picos(0.1),
            },
            t + 900,
        );
        assert_eq!(
            store::decode::<1>(read("sb.key.a.parallel").as_deref()),
            Some([0])
        );
        assert_eq!(Window::decode(read("sb.key.a.tpm").as_deref()).current, 120);
        assert_eq!(Window::decode(read("sb.key.a.rpm").as_deref()).current, 1);
        assert_eq!(
            l.remaining_budget(&s, SubjectRef::Team(0), t + 900),
            Some(picos(0.9))
        );
        assert_eq!(l.remaining_budget(&s, SubjectRef::Key(0), t), None);
    }

    #[test]
    fn tokens_per_minute_reserve_the_estimate_and_settle_to_the_real_count() {
        let l = limits(&format!(
            "keys: [{{name: a, sha256: \"{}\", tpm: 1000}}]",
            hash("a")
        ));
        let s = ready(&l);
        let t = noon();
        let first = l.admit(&s, 0, estimate(600, 0.0), t).unwrap();
        // In flight, the estimate counts: 600 + 600 > 1000.
        let e = l.admit(&s, 0, estimate(600, 0.0), t + 1).unwrap_err().error;
        assert_eq!(e.code.as_deref(), Some("rate_limit_exceeded"));
        assert!(
            e.message
                .contains("tokens per minute: limit 1000, used 600, requested 600"),
            "{}",
            e.message
        );
        // Settled at 100 real tokens, there is room again.
        l.settle(
            &s,
            &first,
            Outcome {
                tokens: 100,
                cost: 0,
            },
            t + 2,
        );
        assert!(l.admit(&s, 0, estimate(600, 0.0), t + 3).is_ok());
        // Larger than the whole limit: never fits, no retry-after.
        let e = l
            .admit(&s, 0, estimate(1001, 0.0), t + 4)
            .unwrap_err()
            .error;
        assert_eq!((e.status, e.retry_after), (429, None));
        assert!(
            e.message
                .starts_with("Request too large for key `a` on tokens per minute"),
            "{}",
            e.message
        );
    }

    #[test]
    fn parallel_slots_end_with_the_request() {
        let l = limits(&format!(
            "keys: [{{name: a, sha256: \"{}\", max_parallel: 2}}]",
            hash("a")
        ));
        let s = ready(&l);
        let t = noon();
        let r1 = l.admit(&s, 0, Estimate::default(), t).unwrap();
        let _r2 = l.admit(&s, 0, Estimate::default(), t).unwrap();
        let e = l.admit(&s, 0, Estimate::default(), t).unwrap_err().error;
        assert_eq!(
            (e.status, e.retry_after, e.code.as_deref()),
            (429, Some(1), Some("rate_limit_exceeded"))
        );
        l.settle(&s, &r1, Outcome::default(), t);
        assert!(l.admit(&s, 0, Estimate::default(), t).is_ok());
    }

    #[test]
    fn budgets_refuse_until_the_period_resets() {
        let l = limits(&format!(
            "keys:\n\
         - {{name: day, sha256: \"{}\", budget: {{usd: 1, period: day}}}}\n\
         - {{name: once, sha256: \"{}\", budget: {{usd: 1, period: total}}}}\n",
            hash("d"),
            hash("o")
        ));
        let s = ready(&l);
        let t = noon();
        for k in [0, 1] {
            let r = l.admit(&s, k, estimate(0, 0.8), t).unwrap();
            l.settle(
                &s,
                &r,
                Outcome {
                    tokens: 0,
                    cost: picos(1.0),
                },
                t,
            );
        }
        let e = l.admit(&s, 0, estimate(0, 0.01), t).unwrap_err().error;
        assert_eq!((e.status, e.kind.type_name()), (429, "insufficient_quota"));
        assert_eq!(e.code.as_deref(), Some("insufficient_quota"));
        // 10:00:30 to midnight.
        assert_eq!(e.retry_after, Some(14 * 3600 - 30));
        assert_eq!(
            e.message,
            "Budget exceeded for key `day`: $1.0000 spent of $1.00 this day; it resets at \
         2026-03-19T00:00:00Z."
        );
        let e = l.admit(&s, 1, estimate(0, 0.01), t).unwrap_err().error;
        assert_eq!(e.retry_after, None);
        assert!(
            e.message.ends_with("in total; it does not reset."),
            "{}",
            e.message
        );
        // The next day the daily budget is fresh; the total one is not.
        let tomorrow = t + DAY_MS;
        assert!(l.admit(&s, 0, estimate(0, 0.5), tomorrow).is_ok());
        assert!(l.admit(&s, 1, estimate(0, 0.5), tomorrow).is_err());
    }

    #[test]
    fn concurrent_requests_overshoot_by_at_most_their_underestimate() {
        // 20 requests in flight at once, each estimated at $0.10 and really costing $0.07..$0.12
        // against a $1 cap: admissions stop at the cap, and spend never passes it by more than
        // what real costs exceeded their estimates.
        let l = limits(&format!(
            "keys: [{{name: a, sha256: \"{}\", budget: {{usd: 1, period: total}}}}]",
            hash("a")
        ));
        let s = ready(&l);
        let t = noon();
        let cap = picos(1.0);
        let est = picos(0.10);
        let mut spent = 0u64;
        let mut worst_excess = 0u64;
        for round in 0..10u64 {
            let flight: Vec<_> = (0..20)
                .filter_map(|_| l.admit(&s, 0, estimate(0, 0.10), t + round).ok())
                .collect();
            for (i, r) in flight.iter().enumerate() {
                let real = picos(0.07) + (i as u64 % 6) * picos(0.01);
                worst_excess = worst_excess.max(real.saturating_sub(est));
                spent += real;
                l.settle(
                    &s,
                    r,
                    Outcome {
                        tokens: 0,
                        cost: real,
                    },
                    t + round,
                );
            }
        }
        let flight_max = cap / est;
        assert!(spent > cap - est, "the budget was used: {spent}");
        assert!(
            spent <= cap + flight_max * worst_excess,
            "overshoot {} exceeds what estimates missed",
            spent - cap
        );
        // What is left is less than one more request's estimate.
        assert!(l.remaining_budget(&s, SubjectRef::Key(0), t).unwrap() < est);
    }

    #[test]
    fn teams_share_their_limits_across_keys() {
        let l = limits(&format!(
            "teams: [{{name: t, rpm: 3}}]\n\
         keys:\n\
         - {{name: a, sha256: \"{}\", team: t}}\n\
         - {{name: b, sha256: \"{}\", team: t}}\n",
            hash("a"),
            hash("b")
        ));
        let s = ready(&l);
        let t = noon();
        for k in [0, 1, 0] {
            assert!(l.admit(&s, k, Estimate::default(), t).is_ok());
        }
        let refusal = l.admit(&s, 1, Estimate::default(), t).unwrap_err();
        assert_eq!(refusal.subject, Some(SubjectRef::Team(0)));
        assert!(
            refusal.error.message.contains("team `t`"),
            "{}",
            refusal.error.message
        );
    }

    #[test]
    fn store_entries_are_one_per_subject_and_limit() {
        let l = limits(&format!(
            "teams: [{{name: t, budget: {{usd: 5, period: week}}}}]\n\
         keys: [{{name: a, sha256: \"{}\", team: t, rpm: 1, tpm: 2, max_parallel: 3}}]\n",
            hash("a")
        ));
        let names: Vec<String> = l.entries().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "sb.key.a.rpm",
                "sb.key.a.tpm",
                "sb.key.a.parallel",
                "sb.team.t.budget"
            ]
        );
    }

    #[test]
    fn settles_on_usage_else_on_status() {
        let reservation = Reservation {
            key: 0,
            estimate: estimate(500, 0.02),
            holds: Vec::new(),
        };
        let used = Usage {
            prompt_tokens: 30,
            completion_tokens: 12,
            ..Usage::default()
        };
        let cost = Some(Cost(picos(0.001)));
        struct Case {
            name: &'static str,
            usage: Option<Usage>,
            cost: Option<Cost>,
            status: u16,
            expected: Outcome,
        }
        let table = [
            Case {
                name: "usage of a priced model",
                usage: Some(used),
                cost,
                status: 200,
                expected: Outcome {
                    tokens: 42,
                    cost: picos(0.001),
                },
            },
            Case {
                name: "usage of an unpriced model: tokens count, money does not",
                usage: Some(used),
                cost: None,
                status: 200,
                expected: Outcome {
                    tokens: 42,
                    cost: 0,
                },
            },
            Case {
                name: "a refusal without usage gives everything back",
                usage: None,
                cost: None,
                status: 429,
                expected: Outcome { tokens: 0, cost: 0 },
            },
            Case {
                name: "an upstream failure without usage gives everything back",
                usage: None,
                cost: None,
                status: 503,
                expected: Outcome { tokens: 0, cost: 0 },
            },
            Case {
                name: "an answer without usage (a cut stream): the estimate",
                usage: None,
                cost: None,
                status: 200,
                expected: Outcome {
                    tokens: 500,
                    cost: picos(0.02),
                },
            },
            Case {
                name: "no answer at all (client gone): the estimate",
                usage: None,
                cost: None,
                status: 0,
                expected: Outcome {
                    tokens: 500,
                    cost: picos(0.02),
                },
            },
        ];
        for case in table {
            assert_eq!(
                settlement(&reservation, case.usage, case.cost, case.status),
                case.expected,
                "{}: {:?} {}",
                case.name,
                case.usage,
                case.status
            );
        }
    }

    #[test]
    fn budgets_that_cannot_count_a_model_are_named() {
        let rt = runtime(&format!(
            "teams: [{{name: t, budget: {{usd: 1, period: day}}}}]\n\
         keys:\n\
         - {{name: spends, sha256: \"{}\", budget: {{usd: 1, period: day}}, models: [gpt4]}}\n\
         - {{name: member, sha256: \"{}\", team: t, models: [\"claude-*\"]}}\n\
         - {{name: free, sha256: \"{}\"}}\n",
            hash("1"),
            hash("2"),
            hash("3")
        ));
        assert_eq!(
            unpriced_under_budget(&rt),
            [
                "keys[0] (`spends`): the budget of key `spends` does not count model `gpt-4o`: it \
             has deployments without a price",
                "keys[1] (`member`): the budget of team `t` does not count model `claude-haiku`: \
             it has deployments without a price",
            ]
        );
    }
}
