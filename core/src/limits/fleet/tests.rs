use super::service::{reference_engine_notes, service_config, Unit};
use super::*;
use crate::limits::budget::picos;
use crate::limits::keys::{sha256, to_hex};
use crate::limits::store::MemoryStore;
use crate::limits::time::{days_from_civil, parse_rfc3339};
use crate::runtime::Runtime;
use crate::testkit::test;

const FLEET: &str = "limits: {backend: fleet, service: {address: rls, port: 8081}}\n";

fn runtime(extra: &str) -> Result<Runtime, Vec<Problem>> {
    let text = format!(
        "providers: {{p: {{kind: openai, api_key: k}}}}\n\
         models: [{{name: m, deployments: [{{provider: p, model: x}}]}}]\n{extra}"
    );
    Runtime::from_text(&text, &|_: &str| None)
}

fn limits(extra: &str) -> Limits {
    runtime(&format!("{FLEET}{extra}")).unwrap().limits
}

fn hash(key: &str) -> String {
    to_hex(&sha256(key))
}

fn at(text: &str) -> u64 {
    parse_rfc3339(text).unwrap()
}

fn problems(section: &str) -> Vec<String> {
    runtime(section)
        .err()
        .unwrap_or_default()
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn the_limits_section_is_validated_with_paths() {
    let fleet = runtime(FLEET).unwrap().limits.fleet.unwrap();
    assert_eq!(
        fleet,
        Fleet {
            address: "rls".into(),
            port: 8081,
            timeout: DEFAULT_TIMEOUT,
            fail_open: false,
            domain: DEFAULT_DOMAIN.into(),
        }
    );
    let open = runtime(
        "limits: {backend: fleet, service: {address: a, port: 1}, timeout: 20ms, \
         failure_mode: open, domain: sb.prod}",
    )
    .unwrap()
    .limits
    .fleet
    .unwrap();
    assert_eq!(
        (open.timeout, open.fail_open, open.domain.as_str()),
        (Millis(20), true, "sb.prod")
    );
    assert!(runtime("").unwrap().limits.fleet.is_none());
    assert!(runtime("limits: {backend: local}")
        .unwrap()
        .limits
        .fleet
        .is_none());
    for (section, expected) in [
        (
            "limits: {backend: fleet}",
            "limits.service: the fleet backend needs",
        ),
        (
            "limits: {backend: fleet, service: {address: ' ', port: 0}}",
            "limits.service.address: must not be empty",
        ),
        (
            "limits: {backend: fleet, service: {address: a, port: 0}}",
            "limits.service.port: must not be 0",
        ),
        (
            "limits: {backend: fleet, service: {address: a, port: 1}, timeout: 0s}",
            "limits.timeout: must be between 1ms and 10s",
        ),
        (
            "limits: {backend: fleet, service: {address: a, port: 1}, timeout: 11s}",
            "limits.timeout: must be between",
        ),
        (
            "limits: {backend: fleet, service: {address: a, port: 1}, domain: 'a b'}",
            "limits.domain: `a b` must be made of",
        ),
        (
            "limits: {backend: redis}",
            "limits.backend: unknown variant `redis`",
        ),
        (
            "limits: {backend: fleet, service: {address: a, port: 1}, failure_mode: maybe}",
            "limits.failure_mode: unknown variant",
        ),
        (
            &format!(
                "{FLEET}keys: [{{name: a, sha256: {}, budget: {{usd: 0.00005, period: day}}}}]",
                hash("a")
            ),
            "keys[0].budget.usd: must be at least 0.0001 with the fleet backend",
        ),
    ] {
        let found = problems(section);
        assert!(
            found.iter().any(|p| p.contains(expected)),
            "{section}: want `{expected}` in {found:?}"
        );
    }
}

#[test]
fn money_counts_in_units_of_1e_4_usd_with_remainders_carried() {
    assert_eq!(PICOS_PER_UNIT, picos(0.0001));
    struct Case {
        name: &'static str,
        picos: u64,
        /// Units charged for a cost: rounded up.
        up: u64,
        /// Units of a cap: rounded down.
        down: u64,
    }
    let table = [
        Case {
            name: "nothing",
            picos: 0,
            up: 0,
            down: 0,
        },
        Case {
            name: "a picodollar",
            picos: 1,
            up: 1,
            down: 0,
        },
        Case {
            name: "one unit",
            picos: PICOS_PER_UNIT,
            up: 1,
            down: 1,
        },
        Case {
            name: "just over one unit",
            picos: PICOS_PER_UNIT + 1,
            up: 2,
            down: 1,
        },
        Case {
            name: "$50,000",
            picos: picos(50_000.0),
            up: 500_000_000,
            down: 500_000_000,
        },
    ];
    for case in table {
        assert_eq!(
            units_up(case.picos),
            case.up,
            "{}: {}",
            case.name,
            case.picos
        );
        assert_eq!(
            cap_units(case.picos),
            case.down,
            "{}: {}",
            case.name,
            case.picos
        );
    }
    // A $50,000 budget fits envoyproxy/ratelimit's uint32 limits; one charge Envoy's cap.
    assert!(cap_units(picos(50_000.0)) <= u64::from(u32::MAX));
    assert_eq!(cap_units(picos(100_000.0)), MAX_CHARGE);
    // Three requests of $0.00004 each: units are charged as whole ones accumulate.
    let mut carry = Carry::default();
    let small = picos(0.00004);
    let charged: Vec<u64> = (0..5).map(|_| carry.units("a", small)).collect();
    assert_eq!(charged, [0, 0, 1, 0, 1]);
    // Keys carry their own remainders; exact multiples leave none.
    assert_eq!(carry.units("b", 3 * PICOS_PER_UNIT), 3);
    assert_eq!(carry.units("a", picos(0.00002)), 0);
    assert_eq!(carry.units("a", picos(0.00008)), 1);
}

#[test]
fn windows_are_calendar_periods_in_utc() {
    // 2026-12-30 (a Wednesday) 13:45:10.5 UTC.
    let now = at("2026-12-30T13:45:10.5Z");
    struct Case {
        name: &'static str,
        unit: Unit,
        start: &'static str,
        end: Option<&'static str>,
    }
    let table = [
        Case {
            name: "the second",
            unit: Unit::Second,
            start: "2026-12-30T13:45:10Z",
            end: Some("2026-12-30T13:45:11Z"),
        },
        Case {
            name: "the minute",
            unit: Unit::Minute,
            start: "2026-12-30T13:45:00Z",
            end: Some("2026-12-30T13:46:00Z"),
        },
        Case {
            name: "the hour",
            unit: Unit::Hour,
            start: "2026-12-30T13:00:00Z",
            end: Some("2026-12-30T14:00:00Z"),
        },
        Case {
            name: "the day",
            unit: Unit::Day,
            start: "2026-12-30T00:00:00Z",
            end: Some("2026-12-31T00:00:00Z"),
        },
        Case {
            name: "the week from Monday the 28th runs into the next year whole",
            unit: Unit::Week,
            start: "2026-12-28T00:00:00Z",
            end: Some("2027-01-04T00:00:00Z"),
        },
        Case {
            name: "the month",
            unit: Unit::Month,
            start: "2026-12-01T00:00:00Z",
            end: Some("2027-01-01T00:00:00Z"),
        },
        Case {
            name: "the year",
            unit: Unit::Year,
            start: "2026-01-01T00:00:00Z",
            end: Some("2027-01-01T00:00:00Z"),
        },
        Case {
            name: "all time: from the epoch, no end",
            unit: Unit::Total,
            start: "1970-01-01T00:00:00Z",
            end: None,
        },
    ];
    for case in table {
        assert_eq!(
            case.unit.window(now),
            (at(case.start), case.end.map(at)),
            "{}: {:?}",
            case.name,
            case.unit
        );
    }
    assert_eq!(month_id(now), "2026-12");
    assert_eq!(month_id(at("2027-01-01T00:00:00Z")), "2027-01");
    assert_eq!(
        month_id(days_from_civil(2024, 2, 29) as u64 * DAY_MS),
        "2024-02"
    );
}

fn keys_and_teams() -> Limits {
    limits(&format!(
        "teams:\n\
         - {{name: t, budget: {{usd: 500, period: month}}, rpm: 600}}\n\
         - {{name: quiet, max_parallel: 9}}\n\
         keys:\n\
         - {{name: a, sha256: {}, team: t, rpm: 60, tpm: 1000, budget: {{usd: 5, period: day}}}}\n\
         - {{name: b, sha256: {}, team: t}}\n\
         - {{name: c, sha256: {}, max_parallel: 2}}\n\
         - {{name: d, sha256: {}, team: quiet, budget: {{usd: 1, period: total}}}}\n",
        hash("a"),
        hash("b"),
        hash("c"),
        hash("d")
    ))
}

#[test]
fn admission_names_and_charges_the_descriptors_of_key_and_team() {
    let l = keys_and_teams();
    let now = at("2026-12-02T10:00:00Z");
    let estimate = Estimate {
        tokens: 700,
        cost: picos(0.00123),
    };
    let state = |key| {
        reserve(&l, key, estimate, now).map(|(hold, state)| {
            let names: Vec<String> = state.iter().map(|(n, v)| format!("{n}={v}")).collect();
            (hold, names.join(" "))
        })
    };
    let (hold, names) = state(0).unwrap();
    assert_eq!(
        hold,
        Hold {
            key: 0,
            requests: true,
            tokens: Some(700),
            units: Some(13),
        }
    );
    assert_eq!(
        names,
        "sb_key=a sb_team=t sb_month=2026-12 sb_requests=1 sb_tokens=700 sb_usd=13"
    );
    assert!(hold.feeds(Stage::Rate) && hold.feeds(Stage::Budget));
    // Only the team limits: its name, rpm and its month's budget; no tokens counted.
    let (hold, names) = state(1).unwrap();
    assert_eq!((hold.tokens, hold.units), (None, Some(13)));
    assert_eq!(names, "sb_team=t sb_month=2026-12 sb_requests=1 sb_usd=13");
    // max_parallel stays in the Envoy: nothing for the service.
    assert_eq!(state(2), None);
    // A total budget and a team with nothing the fleet counts: no month, no team, no rate.
    let (hold, names) = state(3).unwrap();
    assert!(!hold.feeds(Stage::Rate) && hold.feeds(Stage::Budget));
    assert_eq!(names, "sb_key=d sb_usd=13");
}

fn outcome(tokens: u64, units: u64) -> Outcome {
    Outcome {
        tokens,
        cost: units * PICOS_PER_UNIT,
    }
}

#[test]
fn settlement_charges_the_difference_or_refunds_it() {
    let l = keys_and_teams();
    let hold = Hold {
        key: 0,
        requests: true,
        tokens: Some(700),
        units: Some(13),
    };
    let both = Counted {
        rate: true,
        budget: true,
    };
    let rate_only = Counted {
        rate: true,
        budget: false,
    };
    struct Case {
        name: &'static str,
        end: End,
        counted: Counted,
        /// The descriptors sent, `name=value` separated by spaces.
        sent: &'static str,
        missed: &'static [Stage],
    }
    let table = [
        Case {
            name: "used less than held: refunds",
            end: End::Finished(outcome(100, 5)),
            counted: both,
            sent: "sb_tokens_refund=600 sb_usd_refund=8",
            missed: &[],
        },
        Case {
            name: "used more: charges of the difference",
            end: End::Finished(outcome(900, 20)),
            counted: both,
            sent: "sb_tokens_extra=200 sb_usd_extra=7",
            missed: &[],
        },
        Case {
            name: "exactly the estimate: nothing to send",
            end: End::Finished(outcome(700, 13)),
            counted: both,
            sent: "",
            missed: &[],
        },
        Case {
            name: "a failed request (nothing used) gives back tokens and money; its request counts",
            end: End::Finished(Outcome::default()),
            counted: both,
            sent: "sb_tokens_refund=700 sb_usd_refund=13",
            missed: &[],
        },
        Case {
            name: "the budget call failed open: its whole spend is charged now, and it is a miss",
            end: End::Finished(outcome(100, 5)),
            counted: rate_only,
            sent: "sb_tokens_refund=600 sb_usd_extra=5",
            missed: &[Stage::Budget],
        },
        Case {
            name: "neither counted: everything after the fact, the request too",
            end: End::Finished(outcome(100, 5)),
            counted: Counted::default(),
            sent: "sb_requests_extra=1 sb_tokens_extra=100 sb_usd_extra=5",
            missed: &[Stage::Rate, Stage::Budget],
        },
        Case {
            // The refusing call counted nothing.
            name: "refused by the budget filter: the rate filter's request and tokens go back, \
                   nothing is a miss",
            end: End::Refused,
            counted: rate_only,
            sent: "sb_requests_refund=1 sb_tokens_refund=700",
            missed: &[],
        },
    ];
    for case in table {
        let mut carry = Carry::default();
        let s = settle(&l, &hold, case.end, case.counted, &mut carry);
        let got: Vec<String> = s.state.iter().map(|(n, v)| format!("{n}={v}")).collect();
        let label = format!("{}: {:?} {:?}", case.name, case.end, case.counted);
        assert_eq!(got.join(" "), case.sent, "{label}");
        assert_eq!(s.missed, case.missed, "{label}");
    }
    // Sub-unit costs reach the count as they add up to whole units.
    let mut carry = Carry::default();
    let tiny = Outcome {
        tokens: 700,
        cost: PICOS_PER_UNIT / 2,
    };
    let held_one = Hold {
        units: Some(1),
        ..hold.clone()
    };
    let sent: Vec<String> = (0..2)
        .map(|_| {
            let s = settle(&l, &held_one, End::Finished(tiny), both, &mut carry);
            s.state
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    assert_eq!(sent, ["sb_usd_refund=1", ""]);
}

#[test]
fn local_replies_become_openai_errors() {
    assert_eq!(
        local_reply("request_rate_limited", Some("budget")),
        Some(Reply::Refused(Stage::Budget))
    );
    assert_eq!(
        local_reply("request_rate_limited", Some("rate")),
        Some(Reply::Refused(Stage::Rate))
    );
    assert_eq!(
        local_reply("request_rate_limited", None),
        Some(Reply::Refused(Stage::Rate))
    );
    assert_eq!(
        local_reply("rate_limiter_error", None),
        Some(Reply::ServiceFailed)
    );
    assert_eq!(local_reply("via_upstream", Some("budget")), None);

    let l = keys_and_teams();
    let now = at("2026-12-02T10:00:30Z");
    let hold = reserve(
        &l,
        0,
        Estimate {
            tokens: 700,
            cost: 1,
        },
        now,
    )
    .unwrap()
    .0;
    assert_eq!(
        parse_over(&l, 0, "limit=tpm,key=a"),
        Some((Limit::Tokens, SubjectRef::Key(0)))
    );
    assert_eq!(
        parse_over(&l, 0, "limit=budget_month, team=t, period=2026-12"),
        Some((Limit::Budget, SubjectRef::Team(0)))
    );
    assert_eq!(parse_over(&l, 0, "limit=odd,key=a"), None);
    assert_eq!(parse_over(&l, 2, "limit=rpm,team=t"), None);

    struct Case {
        name: &'static str,
        stage: Stage,
        /// What the service said was over, if it did.
        over: Option<(Limit, SubjectRef)>,
        /// The service's retry-after, in seconds.
        retry: Option<u64>,
        status: u16,
        code: &'static str,
        retry_after: Option<u64>,
        message: &'static str,
    }
    let cases = [
        Case {
            name: "the service names the key's tokens per minute",
            stage: Stage::Rate,
            over: Some((Limit::Tokens, SubjectRef::Key(0))),
            retry: Some(30),
            status: 429,
            code: "rate_limit_exceeded",
            retry_after: Some(30),
            message: "Rate limit reached for key `a` on tokens per minute: limit 1000, requested \
                      700. Try again in 30s.",
        },
        Case {
            name: "without the service's word: the key's own rpm, to the end of the minute",
            stage: Stage::Rate,
            over: None,
            retry: None,
            status: 429,
            code: "rate_limit_exceeded",
            retry_after: Some(30),
            message: "Rate limit reached for key `a` on requests per minute: limit 60. Try again \
                      in 30s.",
        },
        Case {
            name: "the team's month budget, to the end of the month",
            stage: Stage::Budget,
            over: Some((Limit::Budget, SubjectRef::Team(0))),
            retry: None,
            status: 429,
            code: "insufficient_quota",
            retry_after: Some(29 * 86_400 + 14 * 3600 - 30),
            message: "Budget exceeded for team `t`: its $500.00 of this month are spent; \
                      it resets at 2027-01-01T00:00:00Z.",
        },
    ];
    for case in cases {
        let r = refusal(&l, &hold, case.stage, case.over, case.retry, now);
        assert_eq!(
            (r.error.status, r.error.code.as_deref(), r.error.retry_after),
            (case.status, Some(case.code), case.retry_after),
            "{}: {:?}",
            case.name,
            case.stage
        );
        assert_eq!(r.error.message, case.message, "{}", case.name);
        assert!(r.subject.is_some() && r.limit.is_some(), "{}", case.name);
    }
    // A key without a budget of its own is refused on its team's; a total budget never resets.
    let team_hold = reserve(&l, 1, Estimate::default(), now).unwrap().0;
    let r = refusal(&l, &team_hold, Stage::Budget, None, None, now);
    assert_eq!(r.subject, Some(SubjectRef::Team(0)));
    let total_hold = reserve(&l, 3, Estimate::default(), now).unwrap().0;
    let r = refusal(&l, &total_hold, Stage::Budget, None, None, now);
    assert_eq!(r.error.retry_after, None);
    assert!(r
        .error
        .message
        .ends_with("in total are spent; it does not reset."));
    let e = service_failed();
    assert_eq!((e.status, e.retry_after), (503, Some(1)));
}

#[test]
fn the_fleet_backend_keeps_only_parallel_requests_local() {
    let l = keys_and_teams();
    let names: Vec<String> = l.entries().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["sb.key.c.parallel", "sb.team.quiet.parallel"]);
    let store = MemoryStore::default();
    for (entry, initial) in l.entries() {
        crate::limits::store::ensure(&store, &entry, &initial);
    }
    let now = at("2026-12-02T10:00:00Z");
    // rpm 60 is the service's: a hundred admissions take nothing locally.
    for _ in 0..100 {
        let r = l.admit(&store, 0, Estimate::default(), now).unwrap();
        assert_eq!(r.holds.len(), 0);
    }
    // max_parallel still holds here.
    let _first = l.admit(&store, 2, Estimate::default(), now).unwrap();
    let _second = l.admit(&store, 2, Estimate::default(), now).unwrap();
    assert!(l.admit(&store, 2, Estimate::default(), now).is_err());
    assert_eq!(l.remaining_budget(&store, SubjectRef::Key(0), now), None);
}

#[test]
fn the_service_configuration_comes_from_keys_and_teams() {
    let l = keys_and_teams();
    let config = service_config(&l, "switchboard");
    let yaml = serde_yaml::to_string(&config).unwrap();
    let expected = "\
domain: switchboard
descriptors:
- key: limit
  value: rpm
  descriptors:
  - key: key
    value: a
    rate_limit:
      unit: minute
      requests_per_unit: 60
  - key: team
    value: t
    rate_limit:
      unit: minute
      requests_per_unit: 600
- key: limit
  value: tpm
  descriptors:
  - key: key
    value: a
    rate_limit:
      unit: minute
      requests_per_unit: 1000
- key: limit
  value: budget
  descriptors:
  - key: key
    value: a
    rate_limit:
      unit: day
      requests_per_unit: 50000
  - key: key
    value: d
    rate_limit:
      unit: total
      requests_per_unit: 10000
- key: limit
  value: budget_month
  descriptors:
  - key: team
    value: t
    descriptors:
    - key: period
      rate_limit:
        unit: year
        requests_per_unit: 5000000
";
    assert_eq!(yaml, expected);
    // What it parses back to is what was written; units read in any case.
    let back: service::ServiceConfig = serde_yaml::from_str(&yaml).unwrap();
    assert_eq!(back, config);
    let upper: service::RateLimitConfig =
        serde_yaml::from_str("{unit: MINUTE, requests_per_unit: 3}").unwrap();
    assert_eq!(upper.unit, Unit::Minute);
    assert!(serde_yaml::from_str::<service::RateLimitConfig>("{unit: fortnight}").is_err());
    assert_eq!(
        reference_engine_notes(&config),
        [
            "limit=budget,key=d: unit `total` is switchboard-rls's own (envoyproxy/ratelimit \
          refuses the file)"
        ]
    );
}
