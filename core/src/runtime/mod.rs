//! The runtime: a validated configuration document assembled into what the filter runs on —
//! providers built, models resolved into deployments and fallback priorities, prices, limits —
//! every problem reported with its path. It sits above `config` (the schema), `providers` and
//! `limits`, which know nothing of each other.

use crate::api::Operation;
use crate::config::secret::Env;
use crate::config::{parse_document, Document, ModelSettings, Options, Problem, Role};
use crate::limits::{Caller, Limits, Subject};
use crate::names::CLUSTER_PREFIX;
use crate::providers::{self, Provider, ProviderSetup};
use crate::usage::pricing::{Price, PriceSpec};
use std::collections::HashMap;

/// One deployment: a model id at one provider.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// Stable id carried in the Envoy endpoint metadata, e.g. `gpt-4o/0`.
    pub id: String,
    /// Index of the public model that owns it (its settings apply).
    pub model: usize,
    pub provider: usize,
    pub upstream_model: String,
    pub weight: u32,
}

#[derive(Debug, Clone)]
pub struct Model {
    pub name: String,
    pub aliases: Vec<String>,
    /// Envoy cluster holding this model's deployments and its fallbacks'.
    pub cluster: String,
    /// Deployment indices per Envoy priority: [own, fallback 1, fallback 2, ...].
    pub priorities: Vec<Vec<usize>>,
    pub settings: ModelSettings,
}

impl Model {
    /// The names clients may use for it: its own, then its aliases.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.name.as_str()).chain(self.aliases.iter().map(String::as_str))
    }

    /// The deployment every attempt goes to when the model's cluster holds just one (its own
    /// and its fallbacks' together): the upstream role then need not ask Envoy which it is.
    pub fn sole_deployment(&self) -> Option<usize> {
        let mut all = self.priorities.iter().flatten();
        let first = *all.next()?;
        all.all(|&d| d == first).then_some(first)
    }
}

pub struct ProviderEntry {
    pub name: String,
    pub provider: Box<dyn Provider>,
}

pub struct Runtime {
    pub role: Role,
    /// The one endpoint this gateway-role instance serves (`Document::endpoint`).
    pub endpoint: Option<Operation>,
    pub options: Options,
    pub providers: Vec<ProviderEntry>,
    pub models: Vec<Model>,
    pub deployments: Vec<Deployment>,
    pub limits: Limits,
    /// Price of each deployment (by index); `None`: no price configured, cost unknown.
    prices: Vec<Option<Price>>,
    model_lookup: HashMap<String, usize>,
    deployment_lookup: HashMap<String, usize>,
}

impl Runtime {
    /// Parses and validates a document, reporting every problem found.
    pub fn from_text(text: &str, env: &dyn Env) -> Result<Runtime, Vec<Problem>> {
        let doc = parse_document(text).map_err(|p| vec![p])?;
        Runtime::from_document(&doc, env)
    }

    pub fn from_document(doc: &Document, env: &dyn Env) -> Result<Runtime, Vec<Problem>> {
        let mut problems = Vec::new();

        let mut providers = Vec::new();
        let mut provider_lookup = HashMap::new();
        for (name, spec) in &doc.providers {
            let setup = ProviderSetup {
                name,
                spec,
                env,
                path: format!("providers.{name}"),
            };
            match providers::build(&setup) {
                Ok(provider) => {
                    provider_lookup.insert(name.as_str(), providers.len());
                    providers.push(ProviderEntry {
                        name: name.clone(),
                        provider,
                    });
                }
                Err(mut p) => problems.append(&mut p),
            }
        }

        let mut model_lookup = HashMap::new();
        for (i, m) in doc.models.iter().enumerate() {
            let path = format!("models[{i}]");
            if m.name.trim().is_empty() {
                problems.push(Problem::new(format!("{path}.name"), "must not be empty"));
            }
            for (j, name) in std::iter::once(&m.name).chain(&m.aliases).enumerate() {
                if *model_lookup.entry(name.clone()).or_insert(i) != i {
                    let at = if j == 0 {
                        format!("{path}.name")
                    } else {
                        format!("{path}.aliases[{}]", j - 1)
                    };
                    problems.push(Problem::new(
                        at,
                        format!("model name `{name}` is used twice"),
                    ));
                }
            }
            if m.deployments.is_empty() {
                problems.push(Problem::new(
                    format!("{path}.deployments"),
                    "a model needs at least one deployment",
                ));
            }
        }

        let mut deployments = Vec::new();
        let mut prices = Vec::new();
        let mut own_deployments: Vec<Vec<usize>> = Vec::new();
        for (i, m) in doc.models.iter().enumerate() {
            let mut own = Vec::new();
            for (j, d) in m.deployments.iter().enumerate() {
                let path = format!("models[{i}].deployments[{j}]");
                if d.model.trim().is_empty() {
                    problems.push(Problem::new(format!("{path}.model"), "must not be empty"));
                }
                if d.weight == 0 {
                    problems.push(Problem::new(format!("{path}.weight"), "must be at least 1"));
                }
                let Some(&provider) = provider_lookup.get(d.provider.as_str()) else {
                    // A provider that exists but failed to build has reported its own problem.
                    if !doc.providers.contains_key(&d.provider) {
                        problems.push(Problem::new(
                            format!("{path}.provider"),
                            format!("unknown provider `{}`", d.provider),
                        ));
                    }
                    continue;
                };
                let price = match (&d.price, &m.price) {
                    (Some(spec), _) => checked_price(spec, &format!("{path}.price"), &mut problems),
                    (None, Some(spec)) => {
                        checked_price(spec, &format!("models[{i}].price"), &mut problems)
                    }
                    (None, None) => None,
                };
                own.push(deployments.len());
                deployments.push(Deployment {
                    id: format!("{}/{j}", m.name),
                    model: i,
                    provider,
                    upstream_model: d.model.clone(),
                    weight: d.weight,
                });
                prices.push(price);
            }
            own_deployments.push(own);
        }

        let mut models = Vec::new();
        let mut clusters: HashMap<String, usize> = HashMap::new();
        for (i, m) in doc.models.iter().enumerate() {
            let mut priorities = vec![own_deployments.get(i).cloned().unwrap_or_default()];
            for (k, fallback) in m.fallbacks.iter().enumerate() {
                let path = format!("models[{i}].fallbacks[{k}]");
                match model_lookup.get(fallback) {
                    Some(&f) if f == i => {
                        problems.push(Problem::new(path, "a model cannot fall back to itself"))
                    }
                    Some(&f) => {
                        priorities.push(own_deployments.get(f).cloned().unwrap_or_default())
                    }
                    None => {
                        problems.push(Problem::new(path, format!("unknown model `{fallback}`")))
                    }
                }
            }
            models.push(Model {
                name: m.name.clone(),
                aliases: m.aliases.clone(),
                cluster: cluster_name(&m.name, &mut clusters),
                priorities,
                settings: m.settings.clone(),
            });
        }

        let mut limits =
            crate::limits::setup::build(&doc.auth, &doc.keys, &doc.teams, &mut problems);
        limits.fleet = crate::limits::fleet::build(&doc.limits, &mut problems);
        if limits.fleet.is_some() {
            crate::limits::fleet::check_budgets(&limits, &mut problems);
        }

        if !problems.is_empty() {
            return Err(problems);
        }
        let deployment_lookup = deployments
            .iter()
            .enumerate()
            .map(|(i, d)| (d.id.clone(), i))
            .collect();
        Ok(Runtime {
            role: doc.role,
            endpoint: doc.endpoint,
            options: doc.options.clone(),
            providers,
            models,
            deployments,
            limits,
            prices,
            model_lookup,
            deployment_lookup,
        })
    }

    /// The public model a client's `model` names (by name or alias).
    pub fn model(&self, name: &str) -> Option<&Model> {
        self.model_lookup
            .get(name)
            .and_then(|&i| self.models.get(i))
    }

    /// Index of the public model a client's `model` names.
    pub fn model_index(&self, name: &str) -> Option<usize> {
        self.model_lookup.get(name).copied()
    }

    /// The deployment an Envoy endpoint's metadata names.
    pub fn deployment(&self, id: &str) -> Option<&Deployment> {
        self.deployment_index(id).map(|(_, d)| d)
    }

    /// The deployment an Envoy endpoint's metadata names, with its index.
    pub fn deployment_index(&self, id: &str) -> Option<(usize, &Deployment)> {
        let i = *self.deployment_lookup.get(id)?;
        self.deployments.get(i).map(|d| (i, d))
    }

    pub fn provider_of(&self, deployment: &Deployment) -> Option<&ProviderEntry> {
        self.providers.get(deployment.provider)
    }

    /// The price of a deployment (by index), its own or its model's.
    pub fn price(&self, deployment: usize) -> Option<&Price> {
        self.prices.get(deployment)?.as_ref()
    }

    /// Whether a deployment's provider signs each request with the time it is sent (the
    /// others are given the time the request arrived: a clock read is a host call).
    pub fn signs_with_time(&self, deployment: usize) -> bool {
        self.deployments
            .get(deployment)
            .and_then(|d| self.provider_of(d))
            .is_some_and(|p| p.provider.signs_with_time())
    }

    pub fn settings_of(&self, deployment: &Deployment) -> Option<&ModelSettings> {
        self.models.get(deployment.model).map(|m| &m.settings)
    }

    /// Retries the route allows: enough to reach the deepest fallback, at least one.
    pub fn retries(&self) -> u32 {
        self.options.retries.unwrap_or_else(|| {
            let deepest = self.models.iter().map(|m| m.priorities.len()).max();
            deepest.unwrap_or(1).saturating_sub(1).max(1) as u32
        })
    }
}

/// A validated price, or its problems reported at `path`. A model-level price shared by
/// several deployments reports once.
fn checked_price(spec: &PriceSpec, path: &str, problems: &mut Vec<Problem>) -> Option<Price> {
    match Price::from_spec(spec) {
        Ok(price) => Some(price),
        Err(found) => {
            for (field, message) in found {
                let problem = Problem::new(format!("{path}.{field}"), message);
                if !problems.contains(&problem) {
                    problems.push(problem);
                }
            }
            None
        }
    }
}

/// Envoy cluster name for a model: `sb_` + the name with anything outside `[A-Za-z0-9_-]`
/// replaced (dots would split Envoy's stat names), made unique.
fn cluster_name(model: &str, taken: &mut HashMap<String, usize>) -> String {
    let base: String = std::iter::once(CLUSTER_PREFIX)
        .flat_map(str::chars)
        .chain(model.chars().map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        }))
        .collect();
    let n = taken.entry(base.clone()).or_insert(0);
    *n += 1;
    if *n == 1 {
        base
    } else {
        format!("{base}_{n}")
    }
}

/// Models a budgeted key can use whose first-priority deployments have no price: their
/// answers cost nothing against the budget. One line per key and model, for
/// `switchboard validate`.
pub fn unpriced_under_budget(rt: &Runtime) -> Vec<String> {
    let mut out = Vec::new();
    for (i, key) in rt.limits.keys.iter().enumerate() {
        let team = key.team.and_then(|t| rt.limits.teams.get(t));
        let budgeted = std::iter::once(&key.subject)
            .chain(team)
            .filter(|s| s.quota.budget.is_some())
            .map(Subject::describe)
            .collect::<Vec<_>>();
        if budgeted.is_empty() {
            continue;
        }
        for model in rt
            .models
            .iter()
            .filter(|m| rt.limits.allows(Caller::Key(i), m.names()))
        {
            let own = model.priorities.first().into_iter().flatten();
            if own.clone().any(|&d| rt.price(d).is_none()) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::test;

    fn env(name: &str) -> Option<String> {
        (name == "OPENAI_API_KEY").then(|| "sk-test".to_string())
    }

    const GOOD: &str = r#"
providers:
  openai: {kind: openai, api_key: {env: OPENAI_API_KEY}}
  azure: {kind: azure, base_url: "https://r.openai.azure.com", api_key: literal, api_version: "2024-10-21"}
models:
  - name: gpt-4o
    aliases: [gpt4]
    deployments:
      - {provider: openai, model: gpt-4o-2024-08-06, weight: 3}
      - {provider: azure, model: prod-4o}
    fallbacks: [mini]
  - name: mini
    deployments: [{provider: openai, model: gpt-4o-mini}]
"#;

    #[test]
    fn builds_runtime_model() {
        let rt = Runtime::from_text(GOOD, &env).unwrap();
        let m = rt.model("gpt4").unwrap();
        assert_eq!(m.name, "gpt-4o");
        assert_eq!(m.cluster, "sb_gpt-4o");
        assert_eq!(m.priorities.len(), 2);
        let p0: Vec<&str> = m.priorities[0]
            .iter()
            .map(|&d| rt.deployments[d].id.as_str())
            .collect();
        assert_eq!(p0, ["gpt-4o/0", "gpt-4o/1"]);
        let fb = &rt.deployments[m.priorities[1][0]];
        assert_eq!(fb.upstream_model, "gpt-4o-mini");
        assert_eq!(rt.deployment("gpt-4o/1").unwrap().upstream_model, "prod-4o");
        assert_eq!(rt.retries(), 1);
        // Only a cluster of one deployment, fallbacks included, names its deployment alone.
        assert_eq!(m.sole_deployment(), None);
        let mini = rt.model("mini").unwrap();
        assert_eq!(mini.sole_deployment(), Some(m.priorities[1][0]));
    }

    #[test]
    fn reports_every_problem_with_its_path() {
        let text = r#"
providers:
  openai: {kind: openai, api_key: k}
  odd: {kind: antropic}
models:
  - name: a
    deployments: [{provider: nope, model: x}, {provider: openai, model: y, weight: 0}]
    fallbacks: [a, ghost]
  - name: a
    deployments: []
"#;
        let problems: Vec<String> = Runtime::from_text(text, &env)
            .err()
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        for expected in [
            "providers.odd.kind: unknown provider kind `antropic`",
            "models[0].deployments[0].provider: unknown provider `nope`",
            "models[0].deployments[1].weight: must be at least 1",
            "models[0].fallbacks[0]: a model cannot fall back to itself",
            "models[0].fallbacks[1]: unknown model `ghost`",
            "models[1].name: model name `a` is used twice",
            "models[1].deployments: a model needs at least one deployment",
        ] {
            assert!(
                problems.iter().any(|p| p.starts_with(expected)),
                "missing `{expected}` in {problems:#?}"
            );
        }
    }

    #[test]
    fn deployments_take_their_own_price_else_the_models() {
        let text = r#"
providers:
  openai: {kind: openai, api_key: k}
models:
  - name: a
    price: {input: 2.5, output: 10}
    deployments:
      - {provider: openai, model: x}
      - {provider: openai, model: y, price: {input: 1, output: 2, cache_read: 0.5}}
  - name: free
    deployments: [{provider: openai, model: z}]
"#;
        let rt = Runtime::from_text(text, &env).unwrap();
        let input = |id: &str| {
            let (i, _) = rt.deployment_index(id).unwrap();
            rt.price(i).map(|p| (p.base.input, p.base.cache_read))
        };
        assert_eq!(input("a/0"), Some((2_500_000, 2_500_000)));
        assert_eq!(input("a/1"), Some((1_000_000, 500_000)));
        assert_eq!(input("free/0"), None);
        let bad = text.replace("input: 2.5", "input: -2.5");
        let problems = Runtime::from_text(&bad, &env).err().unwrap();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0]
            .to_string()
            .starts_with("models[0].price.input: must be"));
    }

    #[test]
    fn cluster_names_are_sanitised_and_unique() {
        let mut taken = HashMap::new();
        assert_eq!(
            cluster_name("meta/llama-3.1", &mut taken),
            "sb_meta_llama-3_1"
        );
        assert_eq!(
            cluster_name("meta/llama-3:1", &mut taken),
            "sb_meta_llama-3_1_2"
        );
    }
}
