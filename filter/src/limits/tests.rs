//! Keys, access and the admission arithmetic over a `MemoryStore`.

use super::budget::picos;
use super::keys::{sha256, to_hex, Presented};
use super::store::MemoryStore;
use super::time::{days_from_civil, DAY_MS};
use super::*;
use crate::config::Gateway;
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

fn gateway(extra: &str) -> Gateway {
    let text = format!(
        "providers: {{p: {{kind: openai, api_key: k}}}}\n\
         models:\n\
         - {{name: gpt-4o, aliases: [gpt4], deployments: [{{provider: p, model: x}}]}}\n\
         - {{name: claude-haiku, deployments: [{{provider: p, model: y}}]}}\n\
         {extra}"
    );
    Gateway::from_text(&text, &|_: &str| None).unwrap()
}

fn problems(extra: &str) -> Vec<String> {
    let text = format!(
        "providers: {{p: {{kind: openai, api_key: k}}}}\n\
         models: [{{name: m, deployments: [{{provider: p, model: x}}]}}]\n{extra}"
    );
    match Gateway::from_text(&text, &|_: &str| None) {
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
            .any(|p| p.starts_with("keys[0].budget.period") && p.contains("unknown variant `year`")),
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
    assert!(!gateway("").limits.auth_required);
    let with_keys = gateway(&format!("keys: [{{name: a, sha256: \"{}\"}}]", hash("a")));
    assert!(with_keys.limits.auth_required);
    let open = gateway(&format!(
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
    let required = gateway(&keys).limits;
    let open = gateway(&format!("auth: {{required: false}}\n{keys}")).limits;
    let now = noon();
    // (presented, required gateway, open gateway); Err carries the message's start.
    type Expected = Result<Caller, &'static str>;
    let table: [(Presented, Expected, Expected); 6] = [
        (key("sk-live"), Ok(Caller::Key(0)), Ok(Caller::Key(0))),
        (key("sk-later"), Ok(Caller::Key(2)), Ok(Caller::Key(2))),
        (
            key("sk-old"),
            Err("The API key `old` has expired."),
            Err("The API key `old` has expired."),
        ),
        (
            key("sk-nope"),
            Err("Incorrect API key provided."),
            Ok(Caller::Anonymous),
        ),
        (
            Presented::None,
            Err("You didn't provide an API key."),
            Ok(Caller::Anonymous),
        ),
        (
            Presented::Malformed,
            Err("The Authorization header must be `Bearer <key>`."),
            Ok(Caller::Anonymous),
        ),
    ];
    for (presented, on_required, on_open) in table {
        for (limits, expected) in [(&required, on_required), (&open, on_open)] {
            let got = limits.authenticate(&presented, now);
            match (got, expected) {
                (Ok(caller), Ok(want)) => assert_eq!(caller, want, "{presented:?}"),
                (Err(e), Err(start)) => {
                    assert_eq!(
                        (e.status, e.code.as_deref()),
                        (401, Some("invalid_api_key"))
                    );
                    assert_eq!(e.kind.type_name(), "authentication_error");
                    assert!(e.message.starts_with(start), "{presented:?}: {}", e.message);
                    assert!(
                        !e.message.contains("sk-"),
                        "never echo a key: {}",
                        e.message
                    );
                }
                (got, want) => panic!("{presented:?}: got {got:?}, want {want:?}"),
            }
        }
    }
}

#[test]
fn model_globs_match_names_and_aliases() {
    let gw = gateway(&format!(
        "keys:\n\
         - {{name: all, sha256: \"{}\"}}\n\
         - {{name: claude, sha256: \"{}\", models: [\"claude-*\"]}}\n\
         - {{name: alias, sha256: \"{}\", models: [gpt4]}}\n",
        hash("1"),
        hash("2"),
        hash("3")
    ));
    let gpt = gw.model("gpt-4o").unwrap();
    let claude = gw.model("claude-haiku").unwrap();
    let l = &gw.limits;
    for (caller, on_gpt, on_claude) in [
        (Caller::Anonymous, true, true),
        (Caller::Key(0), true, true),
        (Caller::Key(1), false, true),
        (Caller::Key(2), true, false),
    ] {
        assert_eq!(l.allows(caller, gpt), on_gpt, "{caller:?} gpt");
        assert_eq!(l.allows(caller, claude), on_claude, "{caller:?} claude");
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
    gateway(keys_and_teams).limits
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
    let table = [
        // (usage, cost, status, outcome)
        (Some(used), cost, 200, (42, picos(0.001))),
        // Usage of an unpriced model: tokens count, money does not.
        (Some(used), None, 200, (42, 0)),
        // A failed request without usage gives everything back.
        (None, None, 429, (0, 0)),
        (None, None, 503, (0, 0)),
        // An answer that brought no usage (cut stream, client gone): the estimate.
        (None, None, 200, (500, picos(0.02))),
        (None, None, 0, (500, picos(0.02))),
    ];
    for (usage, cost, status, (tokens, money)) in table {
        assert_eq!(
            settlement(&reservation, usage, cost, status),
            Outcome {
                tokens,
                cost: money
            },
            "{usage:?} {status}"
        );
    }
}

#[test]
fn budgets_that_cannot_count_a_model_are_named() {
    let gw = gateway(&format!(
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
        unpriced_under_budget(&gw),
        [
            "keys[0] (`spends`): the budget of key `spends` does not count model `gpt-4o`: it \
             has deployments without a price",
            "keys[1] (`member`): the budget of team `t` does not count model `claude-haiku`: \
             it has deployments without a price",
        ]
    );
}
