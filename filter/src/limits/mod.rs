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
pub mod config;
pub mod estimate;
pub mod keys;
pub mod store;
pub mod time;
pub mod window;

use crate::api::{ErrorKind, GatewayError};
use crate::config::Model;
use crate::usage::pricing::Cost;
use crate::usage::Usage;
use budget::{usd, Exhausted, Ledger};
use keys::{glob_match, sha256, Presented};
use std::collections::HashMap;
use store::{update, Busy, Change, Store};
use time::{Period, MINUTE_MS, SECOND_MS};
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
    pub error: GatewayError,
    pub subject: Option<SubjectRef>,
    pub limit: Option<Limit>,
}

impl From<GatewayError> for Refusal {
    fn from(error: GatewayError) -> Self {
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

/// Models a budgeted key can use whose first-priority deployments have no price: their
/// answers cost nothing against the budget. One line per key and model, for
/// `switchboard validate`.
pub fn unpriced_under_budget(gw: &crate::config::Gateway) -> Vec<String> {
    let mut out = Vec::new();
    for (i, key) in gw.limits.keys.iter().enumerate() {
        let team = key.team.and_then(|t| gw.limits.teams.get(t));
        let budgeted = std::iter::once(&key.subject)
            .chain(team)
            .filter(|s| s.quota.budget.is_some())
            .map(Subject::describe)
            .collect::<Vec<_>>();
        if budgeted.is_empty() {
            continue;
        }
        for model in gw
            .models
            .iter()
            .filter(|m| gw.limits.allows(Caller::Key(i), m))
        {
            let own = model.priorities.first().into_iter().flatten();
            if own.clone().any(|&d| gw.price(d).is_none()) {
                out.push(format!(
                    "keys[{i}] (`{}`): the budget of {} does not count model `{}`: it has \
                     deployments without a price",
                    key.subject.name,
                    budgeted.join(" and "),
                    model.name
                ));
            }
        }
    }
    out
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

fn unauthorized(message: &str) -> GatewayError {
    GatewayError::new(ErrorKind::Authentication, message).with_code("invalid_api_key")
}

fn busy() -> GatewayError {
    GatewayError::new(
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

    /// Who is calling, from the key the client sent.
    pub fn authenticate(&self, presented: &Presented, now_ms: u64) -> Result<Caller, GatewayError> {
        if self.keys.is_empty() && !self.auth_required {
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

    /// Whether the caller may use the model (by its name or any alias).
    pub fn allows(&self, caller: Caller, model: &Model) -> bool {
        let Caller::Key(i) = caller else {
            return true;
        };
        let Some(globs) = self.keys.get(i).map(|k| &k.models) else {
            return false;
        };
        let Some(globs) = globs else {
            return true;
        };
        std::iter::once(&model.name)
            .chain(&model.aliases)
            .any(|name| globs.iter().any(|g| glob_match(g, name)))
    }

    pub fn not_allowed(&self, caller: Caller, model: &str) -> GatewayError {
        let who = match caller {
            Caller::Key(i) => self.keys.get(i).map(|k| k.subject.describe()),
            Caller::Anonymous => None,
        };
        GatewayError::new(
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
                if on {
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
    /// Nothing stays taken on refusal.
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
            for limit in [
                Limit::Requests,
                Limit::Tokens,
                Limit::Parallel,
                Limit::Budget,
            ] {
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
    ) -> Result<Option<(u64, u64)>, GatewayError> {
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
        let s = self.subject(subject)?;
        let b = s.quota.budget?;
        let bytes = store.get(&s.entry(Limit::Budget)).map(|(v, _)| v);
        let ledger = Ledger::decode(bytes.as_deref()).at(b.period, now_ms);
        Some(ledger.remaining(b.cap))
    }
}

fn rate_limited(
    subject: &Subject,
    limit: Limit,
    cap: u64,
    amount: u64,
    full: Full,
) -> GatewayError {
    let what = if limit == Limit::Requests {
        "requests per minute"
    } else {
        "tokens per minute"
    };
    let who = subject.describe();
    let error = |message: String| {
        GatewayError::new(ErrorKind::RateLimit, message).with_code("rate_limit_exceeded")
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

fn too_parallel(subject: &Subject, cap: u64) -> GatewayError {
    GatewayError::new(
        ErrorKind::RateLimit,
        format!(
            "Too many parallel requests for {}: limit {cap}. Try again when one has finished.",
            subject.describe()
        ),
    )
    .with_code("rate_limit_exceeded")
    .with_retry_after(1)
}

fn over_budget(subject: &Subject, budget: Budget, e: Exhausted, now_ms: u64) -> GatewayError {
    let spent = format!(
        "Budget exceeded for {}: ${:.4} spent of ${:.2}",
        subject.describe(),
        usd(e.spent),
        usd(budget.cap)
    );
    let error = match e.resets_at_ms {
        Some(at) => GatewayError::new(
            ErrorKind::InsufficientQuota,
            format!(
                "{spent} this {}; it resets at {}.",
                budget.period.name(),
                time::format_utc(at)
            ),
        )
        .with_retry_after(retry_seconds(at.saturating_sub(now_ms))),
        None => GatewayError::new(
            ErrorKind::InsufficientQuota,
            format!("{spent} in total; it does not reset."),
        ),
    };
    error.with_code("insufficient_quota")
}

#[cfg(test)]
mod tests;
