//! The rate-limit service's configuration, in envoyproxy/ratelimit's format (a domain, nested
//! descriptors of `key` and optional `value`, `rate_limit: {unit, requests_per_unit}`), which
//! `switchboard-rls` reads too: `switchboard render --rls-config` writes it from the keys and
//! teams, so one filter YAML stays the single source of truth. Also the windows each unit
//! counts in, as `switchboard-rls` applies them (calendar periods in UTC).
//!
//! Generated entries, under `limit=<kind>`: `rpm` and `tpm` per key and team (unit `minute`);
//! `budget` for day (`day`), week (`week`) and total (`total`) budgets; `budget_month` for month
//! budgets, with a nested `period` entry (the month, `2026-12`) counted in a `year` window. The
//! unit `total` (never resets) is `switchboard-rls`'s own and written only for total budgets:
//! envoyproxy/ratelimit refuses a file that holds one.

use super::super::time::{civil_from_days, days_from_civil, DAY_MS, MINUTE_MS, SECOND_MS};
use super::super::{Limits, Quota};
use super::{cap_units, descriptor};
use crate::config::access::Period;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One configuration file of the service: a domain and its descriptor tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    pub domain: String,
    #[serde(default)]
    pub descriptors: Vec<DescriptorConfig>,
}

/// A node of the tree: a descriptor entry's key and, optionally, its value (without a value,
/// every distinct value gets a counter of its own).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DescriptorConfig {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub descriptors: Vec<DescriptorConfig>,
    /// Count, but never refuse.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shadow_mode: bool,
    /// envoyproxy/ratelimit's per-descriptor stats switch; accepted and ignored.
    #[serde(default, skip_serializing)]
    pub detailed_metric: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    pub unit: Unit,
    #[serde(default)]
    pub requests_per_unit: u64,
    /// Never refuse, count nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unlimited: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The window a limit counts in. `switchboard-rls` uses calendar periods in UTC (weeks from
/// Monday); `Total` never resets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Year,
    Total,
}

impl Unit {
    const NAMES: [(Unit, &'static str); 8] = [
        (Unit::Second, "second"),
        (Unit::Minute, "minute"),
        (Unit::Hour, "hour"),
        (Unit::Day, "day"),
        (Unit::Week, "week"),
        (Unit::Month, "month"),
        (Unit::Year, "year"),
        (Unit::Total, "total"),
    ];

    pub fn name(self) -> &'static str {
        Unit::NAMES
            .iter()
            .find(|(u, _)| *u == self)
            .map_or("total", |(_, n)| n)
    }

    /// The window holding `now`: its start and its end (`None`: it never ends).
    pub fn window(self, now_ms: u64) -> (u64, Option<u64>) {
        let fixed = |len: u64| {
            let start = now_ms - now_ms % len;
            (start, Some(start + len))
        };
        let period = |p: Period| (p.start(now_ms), p.end(now_ms));
        match self {
            Unit::Second => fixed(SECOND_MS),
            Unit::Minute => fixed(MINUTE_MS),
            Unit::Hour => fixed(60 * MINUTE_MS),
            Unit::Day => period(Period::Day),
            Unit::Week => period(Period::Week),
            Unit::Month => period(Period::Month),
            Unit::Year => {
                let (y, _, _) = civil_from_days((now_ms / DAY_MS) as i64);
                let jan1 = |year| days_from_civil(year, 1, 1).max(0) as u64 * DAY_MS;
                (jan1(y), Some(jan1(y + 1)))
            }
            Unit::Total => (0, None),
        }
    }
}

impl Serialize for Unit {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Unit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Unit::NAMES
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(&text))
            .map(|(u, _)| *u)
            .ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "unknown unit `{text}` (second, minute, hour, day, week, month, year, total)"
                ))
            })
    }
}

/// A node of the tree, limited in `unit` when `limit` is given.
fn node(key: &str, value: Option<&str>, limit: Option<(Unit, u64)>) -> DescriptorConfig {
    DescriptorConfig {
        key: key.to_owned(),
        value: value.map(str::to_owned),
        rate_limit: limit.map(|(unit, requests_per_unit)| RateLimitConfig {
            unit,
            requests_per_unit,
            unlimited: false,
            name: None,
        }),
        descriptors: Vec::new(),
        shadow_mode: false,
        detailed_metric: false,
    }
}

/// The service configuration for the keys and teams of `limits`, in `domain`.
pub fn service_config(limits: &Limits, domain: &str) -> ServiceConfig {
    let subjects = limits
        .keys
        .iter()
        .map(|k| (descriptor::KEY, &k.subject))
        .chain(limits.teams.iter().map(|t| (descriptor::TEAM, t)));
    let (mut rpm, mut tpm, mut budget, mut budget_month) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (kind, subject) in subjects {
        let q: &Quota = &subject.quota;
        let entry = |limit| node(kind, Some(&subject.name), limit);
        if let Some(n) = q.rpm {
            rpm.push(entry(Some((Unit::Minute, n))));
        }
        if let Some(n) = q.tpm {
            tpm.push(entry(Some((Unit::Minute, n))));
        }
        let Some(b) = q.budget else { continue };
        let units = cap_units(b.cap);
        match b.period {
            Period::Day => budget.push(entry(Some((Unit::Day, units)))),
            Period::Week => budget.push(entry(Some((Unit::Week, units)))),
            Period::Total => budget.push(entry(Some((Unit::Total, units)))),
            // One counter per month (the `period` value), each living in a year-long window.
            Period::Month => budget_month.push(DescriptorConfig {
                descriptors: vec![node(descriptor::PERIOD, None, Some((Unit::Year, units)))],
                ..entry(None)
            }),
        }
    }
    let group = |limit: &str, entries: Vec<DescriptorConfig>| {
        (!entries.is_empty()).then(|| DescriptorConfig {
            descriptors: entries,
            ..node(descriptor::LIMIT, Some(limit), None)
        })
    };
    let descriptors = [
        group(descriptor::RPM, rpm),
        group(descriptor::TPM, tpm),
        group(descriptor::BUDGET, budget),
        group(descriptor::BUDGET_MONTH, budget_month),
    ]
    .into_iter()
    .flatten()
    .collect();
    ServiceConfig {
        domain: domain.to_owned(),
        descriptors,
    }
}

/// Where the configuration needs more than envoyproxy/ratelimit can load or count exactly,
/// one line each (for `switchboard validate` and `render`).
pub fn reference_engine_notes(config: &ServiceConfig) -> Vec<String> {
    let mut notes = Vec::new();
    let mut walk = vec![(String::new(), &config.descriptors)];
    while let Some((path, nodes)) = walk.pop() {
        for d in nodes {
            let here = format!(
                "{path}{}{}={}",
                if path.is_empty() { "" } else { "," },
                d.key,
                d.value.as_deref().unwrap_or("*")
            );
            if let Some(r) = &d.rate_limit {
                if r.unit == Unit::Total {
                    notes.push(format!(
                        "{here}: unit `total` is switchboard-rls's own (envoyproxy/ratelimit \
                         refuses the file)"
                    ));
                }
                if r.requests_per_unit > u64::from(u32::MAX) {
                    notes.push(format!(
                        "{here}: {} exceeds envoyproxy/ratelimit's uint32 limits",
                        r.requests_per_unit
                    ));
                }
            }
            walk.push((here, &d.descriptors));
        }
    }
    notes.sort();
    notes
}
