//! The `auth`, `keys` and `teams` sections of the filter YAML validated into `Limits`, every
//! problem reported with its path.

use super::budget::{picos, MAX_BUDGET_USD};
use super::keys::{parse_sha256, to_hex};
use super::time::parse_rfc3339;
use super::{Budget, Limits, Quota, Subject, VirtualKey};
use crate::config::access::{AuthSpec, BudgetSpec, KeySpec, TeamSpec};
use crate::config::Problem;
use std::collections::HashMap;

/// Names become parts of shared-data keys and metric names: keep them plain.
/// The name of the `index`th key or team: well formed, and not one `seen` already holds
/// (`seen` maps names to their index; `kind` is for the message).
fn check_name(
    kind: &str,
    name: &str,
    index: usize,
    path: &str,
    seen: &mut HashMap<String, usize>,
    problems: &mut Vec<Problem>,
) {
    let plain = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if name.is_empty() || name.len() > 64 || !plain {
        problems.push(Problem::new(
            format!("{path}.name"),
            format!("`{name}` must be 1 to 64 characters from A-Z, a-z, 0-9, `_` and `-`"),
        ));
    }
    if seen.insert(name.to_owned(), index).is_some() {
        problems.push(Problem::new(
            format!("{path}.name"),
            format!("{kind} `{name}` is declared twice"),
        ));
    }
}

fn quota(
    path: &str,
    budget: &Option<BudgetSpec>,
    limits: [(&str, Option<u64>); 3],
    problems: &mut Vec<Problem>,
) -> Quota {
    let budget = budget.as_ref().and_then(|b| {
        if b.usd.is_finite() && b.usd > 0.0 && b.usd <= MAX_BUDGET_USD {
            Some(Budget {
                cap: picos(b.usd),
                period: b.period,
            })
        } else {
            problems.push(Problem::new(
                format!("{path}.budget.usd"),
                format!("must be a positive amount of dollars, at most {MAX_BUDGET_USD}"),
            ));
            None
        }
    });
    for (field, value) in limits {
        if value == Some(0) {
            problems.push(Problem::new(
                format!("{path}.{field}"),
                "must be at least 1 (leave it out for no limit)",
            ));
        }
    }
    let [(_, rpm), (_, tpm), (_, max_parallel)] = limits;
    Quota {
        budget,
        rpm,
        tpm,
        max_parallel,
    }
}

/// Validates the sections into the runtime `Limits`, adding to `problems`.
pub fn build(
    auth: &AuthSpec,
    keys: &[KeySpec],
    teams: &[TeamSpec],
    problems: &mut Vec<Problem>,
) -> Limits {
    let mut team_list = Vec::new();
    let mut team_lookup = HashMap::new();
    for (i, t) in teams.iter().enumerate() {
        let path = format!("teams[{i}]");
        check_name("team", &t.name, i, &path, &mut team_lookup, problems);
        let quota = quota(
            &path,
            &t.budget,
            [
                ("rpm", t.rpm),
                ("tpm", t.tpm),
                ("max_parallel", t.max_parallel),
            ],
            problems,
        );
        team_list.push(Subject::team(&t.name, quota));
    }

    let mut key_list = Vec::new();
    let mut names = HashMap::new();
    let mut by_hash = HashMap::new();
    for (i, k) in keys.iter().enumerate() {
        let path = format!("keys[{i}]");
        check_name("key", &k.name, i, &path, &mut names, problems);
        match parse_sha256(&k.sha256) {
            Some(hash) => {
                if let Some(first) = by_hash.insert(hash, key_list.len()) {
                    problems.push(Problem::new(
                        format!("{path}.sha256"),
                        format!("the same key as keys[{first}]"),
                    ));
                }
            }
            None => problems.push(Problem::new(
                format!("{path}.sha256"),
                "must be the 64 hex digits of the key's SHA-256 (`switchboard key new` prints it)",
            )),
        }
        let team = k.team.as_ref().and_then(|name| {
            let found = team_lookup.get(name).copied();
            if found.is_none() {
                problems.push(Problem::new(
                    format!("{path}.team"),
                    format!("unknown team `{name}` (declare it under `teams`)"),
                ));
            }
            found
        });
        if let Some(models) = &k.models {
            if models.is_empty() {
                problems.push(Problem::new(
                    format!("{path}.models"),
                    "lists no model: name at least one glob, or leave it out to allow every model",
                ));
            }
            for (j, m) in models.iter().enumerate() {
                if m.trim().is_empty() {
                    problems.push(Problem::new(
                        format!("{path}.models[{j}]"),
                        "must not be empty",
                    ));
                }
            }
        }
        let expires_ms = k.expires.as_ref().and_then(|text| {
            parse_rfc3339(text)
                .map_err(|m| problems.push(Problem::new(format!("{path}.expires"), m)))
                .ok()
        });
        let quota = quota(
            &path,
            &k.budget,
            [
                ("rpm", k.rpm),
                ("tpm", k.tpm),
                ("max_parallel", k.max_parallel),
            ],
            problems,
        );
        key_list.push(VirtualKey {
            subject: Subject::key(&k.name, quota),
            team,
            models: k.models.clone(),
            expires_ms,
        });
    }

    let required = auth.required.unwrap_or(!keys.is_empty());
    if required && keys.is_empty() {
        problems.push(Problem::new(
            "auth.required",
            "is true but no keys are configured: every request would be refused",
        ));
    }
    Limits {
        auth_required: required,
        keys: key_list,
        teams: team_list,
        by_hash,
        fleet: None,
    }
}

/// The config line for a key: what `switchboard key new` prints.
pub fn key_entry(name: &str, key: &str) -> String {
    format!(
        "- {{name: {name}, sha256: {}}}",
        to_hex(&super::keys::sha256(key))
    )
}
