//! The filter configuration's schema: one YAML (or JSON) document, read by the filter in Envoy
//! and by the `switchboard` CLI. Parsing reports syntax and type errors with their path;
//! `runtime::Runtime` assembles the validated document into what the filter runs on.

pub mod access;
pub mod counting;
pub mod duration;
pub mod problem;
pub mod secret;

use crate::usage::pricing::PriceSpec;
use access::{AuthSpec, KeySpec, TeamSpec};
use counting::CountingSpec;
use duration::Millis;
pub use problem::Problem;
use secret::SecretSpec;
use serde::Deserialize;
use std::collections::BTreeMap;
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
    pub endpoint: Option<crate::api::Operation>,
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
    /// Where limits and budgets are counted: this Envoy, or a fleet's rate-limit service.
    #[serde(default)]
    pub limits: CountingSpec,
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
    /// Envoy's circuit breakers on every model group's cluster (`switchboard render`).
    #[serde(default)]
    pub circuit_breakers: CircuitBreakers,
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

/// How much one model group's cluster may have in flight in one Envoy. Every fallback is a
/// retry to Envoy, so retries get the same room as requests: with Envoy's default of 3
/// concurrent retries per cluster, fallback silently stopped working under load (the retry
/// overflowed and the client got the primary's error). What overflows is counted in Envoy's
/// `envoy_cluster_upstream_{cx,rq_pending,rq_retry}_overflow` stats.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircuitBreakers {
    /// Connections to the cluster's providers (HTTP/1.1 needs one per request in flight).
    #[serde(default = "default_circuit_limit")]
    pub max_connections: u32,
    /// Requests waiting for a connection.
    #[serde(default = "default_circuit_limit")]
    pub max_pending_requests: u32,
    /// Requests in flight.
    #[serde(default = "default_circuit_limit")]
    pub max_requests: u32,
    /// Retries (fallbacks included) in flight; default: as many as requests.
    #[serde(default)]
    pub max_retries: Option<u32>,
}

impl Default for CircuitBreakers {
    fn default() -> Self {
        CircuitBreakers {
            max_connections: default_circuit_limit(),
            max_pending_requests: default_circuit_limit(),
            max_requests: default_circuit_limit(),
            max_retries: None,
        }
    }
}

impl CircuitBreakers {
    pub fn max_retries(&self) -> u32 {
        self.max_retries.unwrap_or(self.max_requests)
    }
}

fn default_circuit_limit() -> u32 {
    1024
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
            circuit_breakers: CircuitBreakers::default(),
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

/// Parses the document text (YAML or JSON); syntax and type errors carry their path.
pub fn parse_document(text: &str) -> Result<Document, Problem> {
    let de = serde_yaml::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        Problem::new(path, e.into_inner().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::test;

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
}
