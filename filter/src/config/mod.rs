//! The filter configuration: one YAML (or JSON) document, read by the filter in Envoy and by
//! the `switchboard` CLI. `Gateway::from_document` turns it into the validated runtime model,
//! reporting every problem with its path.

pub mod duration;
pub mod secret;

use crate::limits::config::{AuthSpec, KeySpec, TeamSpec};
use crate::limits::Limits;
use crate::providers::{self, Provider, ProviderSetup};
use crate::usage::pricing::{Price, PriceSpec};
use duration::Millis;
use secret::{Env, SecretSpec};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::num::NonZeroU32;

/// Which of the two filter instances this configuration drives (DESIGN §1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    #[default]
    Gateway,
    Upstream,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    #[serde(default)]
    pub role: Role,
    /// Set by `switchboard render` on gateway-role instances that serve one endpoint, which
    /// their route guarantees: they need not read the request line.
    #[serde(default)]
    pub endpoint: Option<providers::Operation>,
    #[serde(default)]
    pub listener: Listener,
    #[serde(default)]
    pub admin: Admin,
    #[serde(default)]
    pub options: Options,
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderSpec>,
    #[serde(default)]
    pub models: Vec<ModelSpec>,
    /// Whether requests need a virtual key (default: when `keys` are configured).
    #[serde(default)]
    pub auth: AuthSpec,
    /// Virtual keys clients use instead of provider keys.
    #[serde(default)]
    pub keys: Vec<KeySpec>,
    /// Budgets and limits shared by the keys of a team.
    #[serde(default)]
    pub teams: Vec<TeamSpec>,
}

/// Where the rendered Envoy listens (used by `switchboard render` only).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    #[serde(default = "default_listen_address")]
    pub address: String,
    #[serde(default = "default_listen_port")]
    pub port: u16,
}

impl Default for Listener {
    fn default() -> Self {
        Listener {
            address: default_listen_address(),
            port: default_listen_port(),
        }
    }
}

/// Envoy's admin interface (used by `switchboard render` only); loopback by default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    #[serde(default = "default_listen_address")]
    pub address: String,
    #[serde(default = "default_admin_port")]
    pub port: u16,
}

impl Default for Admin {
    fn default() -> Self {
        Admin {
            address: default_listen_address(),
            port: default_admin_port(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Largest request body accepted; larger ones get a 413.
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: u32,
    /// Largest non-streamed upstream answer the filter buffers to translate.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: u32,
    /// Whole-request deadline, streams included.
    #[serde(default = "default_request_timeout")]
    pub request_timeout: Millis,
    /// Deadline for one attempt to produce response headers; a slow provider then falls back.
    #[serde(default)]
    pub per_try_timeout: Option<Millis>,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: Millis,
    /// Retries after the first attempt; default: enough to walk every fallback priority.
    #[serde(default)]
    pub retries: Option<u32>,
    /// CA bundle for https providers.
    #[serde(default = "default_ca_bundle")]
    pub ca_bundle: String,
    /// Where `switchboard render` sends the per-request JSON access log (the spend ledger):
    /// `stdout`, `off`, or a file path.
    #[serde(default = "default_access_log")]
    pub access_log: String,
    /// A LiteLLM `model_prices_and_context_window.json` that `switchboard render`/`validate`
    /// read prices from (relative to the configuration file); `--prices` overrides it.
    #[serde(default)]
    pub prices_file: Option<String>,
    /// The time inside the filter (the overhead histogram, the ledger's `overhead_us`) is
    /// measured on one request in this many: each measurement reads the host clock twice per
    /// callback, a cost every request would otherwise pay. 1 measures every request.
    #[serde(default = "default_overhead_sampling")]
    pub overhead_sampling: NonZeroU32,
}

impl Options {
    /// Whether an access log (the spend ledger) is rendered at all (`access_log: off`).
    pub fn writes_ledger(&self) -> bool {
        self.access_log != "off"
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_request_bytes: default_max_request_bytes(),
            max_response_bytes: default_max_response_bytes(),
            request_timeout: default_request_timeout(),
            per_try_timeout: None,
            connect_timeout: default_connect_timeout(),
            retries: None,
            ca_bundle: default_ca_bundle(),
            access_log: default_access_log(),
            prices_file: None,
            overhead_sampling: default_overhead_sampling(),
        }
    }
}

fn default_listen_address() -> String {
    "127.0.0.1".into()
}
fn default_listen_port() -> u16 {
    10000
}
fn default_admin_port() -> u16 {
    9901
}
fn default_max_request_bytes() -> u32 {
    4 * 1024 * 1024
}
fn default_max_response_bytes() -> u32 {
    32 * 1024 * 1024
}
fn default_request_timeout() -> Millis {
    Millis(600_000)
}
fn default_connect_timeout() -> Millis {
    Millis(5_000)
}
fn default_ca_bundle() -> String {
    "/etc/ssl/certs/ca-certificates.crt".into()
}
fn default_access_log() -> String {
    "stdout".into()
}
fn default_overhead_sampling() -> NonZeroU32 {
    NonZeroU32::new(16).unwrap_or(NonZeroU32::MIN)
}
fn default_weight() -> u32 {
    1
}

/// One upstream account: a kind (which API it speaks), where it is, and how to authenticate.
/// Kind-specific settings (e.g. Azure's `api_version`) sit beside the common fields.
#[derive(Debug, Clone, Deserialize)]
pub struct ProviderSpec {
    pub kind: String,
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default)]
    pub api_key: Option<SecretSpec>,
    /// Extra headers sent to the provider on every request (values may be secrets).
    #[serde(default)]
    pub headers: BTreeMap<String, SecretSpec>,
    #[serde(flatten)]
    pub settings: serde_yaml::Mapping,
}

impl ProviderSpec {
    /// Every environment variable this provider reads.
    pub fn env_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .api_key
            .iter()
            .chain(self.headers.values())
            .filter_map(SecretSpec::env_name)
            .collect();
        for value in self.settings.values() {
            let env = value
                .as_mapping()
                .filter(|m| m.len() == 1)
                .and_then(|m| m.get("env"))
                .and_then(|v| v.as_str());
            names.extend(env);
        }
        names.extend(providers::implied_env_names(self));
        names
    }
}

/// A public model name clients use, served by one or more deployments.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub deployments: Vec<DeploymentSpec>,
    /// Other models tried in order when every deployment of this one fails.
    #[serde(default)]
    pub fallbacks: Vec<String>,
    /// Default price of the model's deployments (USD per million tokens).
    #[serde(default)]
    pub price: Option<PriceSpec>,
    #[serde(flatten)]
    pub settings: ModelSettings,
}

/// Per-model translation settings, applied on whichever deployment of the model is attempted.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ModelSettings {
    /// Output cap sent when the client gives none (providers such as Anthropic require one).
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// Silently drop request parameters the provider cannot honour instead of answering 400.
    #[serde(default)]
    pub drop_unsupported_params: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentSpec {
    pub provider: String,
    /// The provider's own model id (for Azure: the deployment name).
    pub model: String,
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// This deployment's price (USD per million tokens); wins over the model's.
    #[serde(default)]
    pub price: Option<PriceSpec>,
    /// The LiteLLM price-file key to price this deployment as (e.g. `azure/gpt-4o` for an
    /// Azure deployment with a name of its own); used by `switchboard render --prices`.
    #[serde(default)]
    pub price_as: Option<String>,
}

/// A configuration problem, located by its path in the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl Problem {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Parses the document text (YAML or JSON); syntax and type errors carry their path.
pub fn parse_document(text: &str) -> Result<Document, Problem> {
    let de = serde_yaml::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        Problem::new(path, e.into_inner().to_string())
    })
}

// -----------------------------------------------------------------------------------------
// The validated runtime model.

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

pub struct Gateway {
    pub role: Role,
    /// The one endpoint this gateway-role instance serves (`Document::endpoint`).
    pub endpoint: Option<providers::Operation>,
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

impl Gateway {
    /// Parses and validates a document, reporting every problem found.
    pub fn from_text(text: &str, env: &dyn Env) -> Result<Gateway, Vec<Problem>> {
        let doc = parse_document(text).map_err(|p| vec![p])?;
        Gateway::from_document(&doc, env)
    }

    pub fn from_document(doc: &Document, env: &dyn Env) -> Result<Gateway, Vec<Problem>> {
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

        let limits = crate::limits::config::build(&doc.auth, &doc.keys, &doc.teams, &mut problems);

        if !problems.is_empty() {
            return Err(problems);
        }
        let deployment_lookup = deployments
            .iter()
            .enumerate()
            .map(|(i, d)| (d.id.clone(), i))
            .collect();
        Ok(Gateway {
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
    let base: String = std::iter::once("sb_")
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
        let gw = Gateway::from_text(GOOD, &env).unwrap();
        let m = gw.model("gpt4").unwrap();
        assert_eq!(m.name, "gpt-4o");
        assert_eq!(m.cluster, "sb_gpt-4o");
        assert_eq!(m.priorities.len(), 2);
        let p0: Vec<&str> = m.priorities[0]
            .iter()
            .map(|&d| gw.deployments[d].id.as_str())
            .collect();
        assert_eq!(p0, ["gpt-4o/0", "gpt-4o/1"]);
        let fb = &gw.deployments[m.priorities[1][0]];
        assert_eq!(fb.upstream_model, "gpt-4o-mini");
        assert_eq!(gw.deployment("gpt-4o/1").unwrap().upstream_model, "prod-4o");
        assert_eq!(gw.retries(), 1);
        // Only a cluster of one deployment, fallbacks included, names its deployment alone.
        assert_eq!(m.sole_deployment(), None);
        let mini = gw.model("mini").unwrap();
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
        let problems: Vec<String> = Gateway::from_text(text, &env)
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
        let gw = Gateway::from_text(text, &env).unwrap();
        let input = |id: &str| {
            let (i, _) = gw.deployment_index(id).unwrap();
            gw.price(i).map(|p| (p.base.input, p.base.cache_read))
        };
        assert_eq!(input("a/0"), Some((2_500_000, 2_500_000)));
        assert_eq!(input("a/1"), Some((1_000_000, 500_000)));
        assert_eq!(input("free/0"), None);
        let bad = text.replace("input: 2.5", "input: -2.5");
        let problems = Gateway::from_text(&bad, &env).err().unwrap();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0]
            .to_string()
            .starts_with("models[0].price.input: must be"));
    }

    #[test]
    fn syntax_and_type_errors_carry_paths() {
        let err = parse_document("models:\n  - name: a\n    deployments: 5\n").unwrap_err();
        assert_eq!(err.path, "models[0].deployments");
        let err = parse_document("options: {max_request_bytes: lots}").unwrap_err();
        assert_eq!(err.path, "options.max_request_bytes");
        let err = parse_document("options: {overhead_sampling: 0}").unwrap_err();
        assert_eq!(err.path, "options.overhead_sampling");
        let err = parse_document("bogus: 1").unwrap_err();
        assert!(err.message.contains("unknown field `bogus`"), "{err}");
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
