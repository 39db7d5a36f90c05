//! The names Envoy and the filter share: headers, metadata, filter state, filter and VM names.
//! `switchboard render` writes them into the bootstrap and the filter reads them back, so each
//! is spelled here once.

use crate::api::Operation;

/// Prefix of every header that is the gateway's own; clients cannot send them.
pub const OWN_HEADER_PREFIX: &str = "x-switchboard-";
/// Request header the gateway role sets to pick the model group's cluster (the route's
/// `cluster_header`).
pub const CLUSTER_HEADER: &str = "x-switchboard-cluster";
/// Request header carrying the gateway role's handoff id to retries of the upstream role.
pub const HANDOFF_HEADER: &str = "x-switchboard-request";
/// Response header by which the upstream role tells the gateway role an answer is already
/// in the client's shape (when the roles share no record). Never reaches clients.
pub const TRANSLATED_HEADER: &str = "x-switchboard-translated";
/// Response header: who answered and, on JSON answers, the usage (an RFC 8941 dictionary).
pub const ANSWER_HEADER: &str = "x-switchboard";
/// Response header: the answer's cost in USD, when known.
pub const COST_HEADER: &str = "x-switchboard-cost";
/// Response header: the types of the request's tools a translated attempt did not offer the
/// provider (Responses' hosted tools, say), comma-separated.
pub const DROPPED_TOOLS_HEADER: &str = "x-switchboard-dropped-tools";

/// Namespace of the endpoint metadata naming each deployment (`filter_metadata`).
pub const METADATA_NAMESPACE: &str = "switchboard";
/// Key under `METADATA_NAMESPACE` holding the deployment id.
pub const DEPLOYMENT_KEY: &str = "deployment";
/// Property path the upstream role reads to learn which deployment Envoy picked.
pub const DEPLOYMENT_PROPERTY: [&str; 5] = [
    "xds",
    "upstream_host_metadata",
    "filter_metadata",
    METADATA_NAMESPACE,
    DEPLOYMENT_KEY,
];
/// Filter state the gateway role writes the ledger's fields to; Envoy names it
/// `wasm.<this>` (`%FILTER_STATE(wasm.switchboard:PLAIN)%` in the access log).
pub const LEDGER_PROPERTY: &str = "switchboard";

/// The VM every filter instance shares (identical `vm_config`), and the root context id.
pub const VM_ID: &str = "switchboard";
/// Gateway-role instance that reads the request line itself (every request but the fast
/// path's).
pub const GENERIC_FILTER: &str = "switchboard";
/// The filter that removes client-sent `x-switchboard-*` and `x-envoy-*` headers first.
pub const STRIP_FILTER: &str = "switchboard-strip";
/// The upstream-role instance. Its own name: routes switch filters on and off by name, and
/// upstream filters obey that too.
pub const UPSTREAM_FILTER: &str = "switchboard-upstream";
/// Prefix of the Envoy stats the filter defines (Envoy adds `wasmcustom.`).
pub const STATS_PREFIX: &str = "switchboard";
/// Prefix of the model groups' cluster names.
pub const CLUSTER_PREFIX: &str = "sb_";

/// The gateway-role instance of one endpoint, enabled only on that endpoint's routes: it
/// need not read the request line.
pub fn endpoint_filter(op: Operation) -> &'static str {
    match op {
        Operation::ChatCompletions => "switchboard-chat",
        Operation::Embeddings => "switchboard-embeddings",
        Operation::Messages => "switchboard-messages",
        Operation::CountTokens => "switchboard-count-tokens",
        Operation::Responses => "switchboard-responses",
    }
}
