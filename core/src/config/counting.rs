//! The `limits` section: where keys' and teams' limits and budgets are counted. `local` (the
//! default) counts in the Envoy's own shared data; `fleet` counts in a rate-limit service
//! speaking Envoy's global rate-limit protocol, shared by every Envoy that points at it
//! (`limits::fleet` validates it and holds the decisions).

use super::duration::Millis;
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountingSpec {
    #[serde(default)]
    pub backend: Backend,
    /// The rate-limit service (gRPC, HTTP/2); required by `fleet`.
    #[serde(default)]
    pub service: Option<ServiceSpec>,
    /// Bound on each call to the service (default 100ms).
    #[serde(default)]
    pub timeout: Option<Millis>,
    /// What a request gets when the service cannot answer in time.
    #[serde(default)]
    pub failure_mode: FailureMode,
    /// The service's domain the descriptors belong to (default `switchboard`).
    #[serde(default)]
    pub domain: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Envoy shared data: one Envoy's counters, gone when it restarts.
    #[default]
    Local,
    /// A rate-limit service backed by Redis: counters shared by a fleet, kept across restarts.
    Fleet,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    pub address: String,
    pub port: u16,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureMode {
    /// Refuse the request with a 503: no request goes uncounted.
    #[default]
    Closed,
    /// Serve the request uncounted (counted as a miss in `switchboard_key_limit_misses`).
    Open,
}
